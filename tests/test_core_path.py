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


def test_no_optional_exercise_stops_run_all_before_the_core_ends(tmp_path):
    """In an exercise copy an unsolved stub stops "Run all": an optional exercise must come after the core's code."""
    blocking = """# %% [markdown]
# ## 1. Core (core, ~10 min)

# %%
a = 1

# %% [markdown]
# ### Exercise 1: extra (optional)

# %% tags=["solution"]
b = a + 1

# %% [markdown]
# ## 2. More core (core, ~5 min)

# %%
c = a * 2
"""
    source = tmp_path / "00_blocking.py"
    source.write_text(blocking)
    assert core_path.stubs_before_core(source) == ["Exercise 1: extra (optional) before 2. More core (core, ~5 min)"]
    source.write_text(blocking.split("# %% [markdown]\n# ## 2. More core")[0])  # the exercise last: nothing blocks
    assert core_path.stubs_before_core(source) == []
    for notebook in sorted(Path(__file__).parents[1].glob("notebooks/[0-9][0-9]_*.py")):
        assert core_path.stubs_before_core(notebook) == [], notebook.name
