"""release.py and the version: one URL and one version in every badge and setup cell (``make badges``)."""

import re
from pathlib import Path

import pytest

from tools import release
from unet_tutorial import __version__
from unet_tutorial.utils import REPO_URL

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebooks_are_up_to_date_with_make_badges(source):
    text = source.read_text()
    assert release.render(text, source.stem) == text, f"{source.name}: run `make badges`"
    assert f"blob/main/notebooks/exercises/{source.stem}.ipynb" in text
    assert f'"unet_tutorial @ git+{REPO_URL}@v{__version__}"' in text


def test_every_notebook_has_the_same_setup_cell():
    # CI's colab job runs notebook 01's setup cell (.ci/colab_setup.py); the others must be the same cell.
    cells = {p.name: p.read_text().split("\n# %%")[2] for p in SOURCES}
    assert len(set(cells.values())) == 1, f"setup cells differ: {sorted(cells)}"


def test_render_rewrites_an_old_notebook_and_is_idempotent():
    old = (
        "# %% [markdown]\n# # 09 · Demo\n#\n"
        "# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/someone/fork/blob/main/notebooks/09_demo.ipynb)\n#\n"
        "# %%\nif True:\n"
        '    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+https://github.com/someone/fork@main"\n'
    )
    new = release.render(old, "09_demo", version="1.2.3")
    assert release.render(new, "09_demo", version="1.2.3") == new
    assert "someone/fork" not in new and new.count("colab-badge.svg") == 2
    assert release.colab_url("notebooks/exercises/09_demo.ipynb") in new
    assert f'"unet_tutorial @ git+{REPO_URL}@v1.2.3"' in new
    assert new.startswith("# %% [markdown]\n# # 09 · Demo\n#\n# [![Open In Colab]")


def test_render_refuses_a_notebook_without_badge_or_install_line():
    with pytest.raises(ValueError, match="badge"):
        release.render("# %%\nx = 1\n", "09_demo")


def test_version_has_one_source():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "unet_tutorial.__version__"' in pyproject
    assert '\nversion = "' not in pyproject, "the version lives in unet_tutorial/__init__.py only"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
