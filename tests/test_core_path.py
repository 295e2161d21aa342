"""tools/core_path.py: a notebook's core path, its optional parts left out, for a lab that runs the core alone."""

from pathlib import Path

import jupytext
import nbformat

from tools import core_path

SOURCE = """# %% [markdown]
# # Title

# %%
a = 1

# %% [markdown]
# ## 1. Core (core, ~10 min)

# %%
b = a + 1

# %% [markdown]
# ## 2. Extra (optional)
#
# ### A subsection of the optional part

# %%
unused = b * 10

# %% [markdown]
# ### Still optional, one level down

# %%
also_unused = 0

# %% [markdown]
# ## Exercises (core, ~5 min)
#
# ### Experiment 1 (core, ~5 min)

# %%
c = b + 1

# %% [markdown]
# ### Experiment 2 (optional)

# %%
d = unused

# %% [markdown]
# ## Summary
"""


def kept_code(tmp_path: Path) -> list[str]:
    path = tmp_path / "01_demo.py"
    path.write_text(SOURCE)
    return [cell.source for cell in core_path.core_notebook(path).cells if cell.cell_type == "code"]


def test_optional_parts_run_to_the_next_heading_of_their_level_or_higher(tmp_path):
    assert kept_code(tmp_path) == ["a = 1", "b = a + 1", "c = b + 1"]


def test_the_core_keeps_the_core_headings_and_the_summary(tmp_path):
    path = tmp_path / "01_demo.py"
    path.write_text(SOURCE)
    firsts = [c.source.splitlines()[0] for c in core_path.core_notebook(path).cells if c.cell_type == "markdown"]
    assert firsts == ["# Title", "## 1. Core (core, ~10 min)", "## Exercises (core, ~5 min)", "## Summary"]


def test_the_cli_writes_one_core_notebook_per_source(tmp_path):
    path = tmp_path / "01_demo.py"
    path.write_text(SOURCE)
    assert core_path.main([str(path), "--out", str(tmp_path / "core")]) == 0
    written = nbformat.read(tmp_path / "core" / "01_demo_core.ipynb", as_version=4)
    assert [c.source for c in written.cells if c.cell_type == "code"] == ["a = 1", "b = a + 1", "c = b + 1"]


def test_every_notebook_has_a_core_and_optional_parts():
    for source in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py")):
        core, full = core_path.core_notebook(source), jupytext.read(source)
        assert 0 < len(core.cells) < len(full.cells), f"{source.name}: no optional part marked, or no core"
