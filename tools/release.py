"""Where the course is published: one repository URL and one version, written into every notebook.

Each notebook's title cell carries two Open-in-Colab badges (the notebook, and its exercise version in
``notebooks/exercises/``), and its setup cell installs this package from the git tag ``v<version>``, so that a
copy of a notebook saved in someone's Drive keeps getting the package it was written for. Until that tag is
pushed, the cell installs ``main`` instead and says so; either way it prints the ref and the commit pip
installed. The URL lives in ``utils.REPO_URL`` and the version in ``unet_tutorial.__version__``; ``make badges``
(``python -m tools.release notebooks/NN_slug.py ...``) rewrites the badge lines and the whole setup cell from
them. Left out: publishing and tagging themselves (CONTRIBUTING.md says how; ``.ci/colab_setup.py`` runs the
cell against local repositories with and without the tag). Taught in: no notebook; this is the course's upkeep.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from unet_tutorial import __version__
from unet_tutorial.utils import REPO_URL

BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_LINE = re.compile(r"^# [^\n]*\[!\[Open[^\n]*\]\(https://colab\.research\.google\.com/[^\n]*\n", re.M)
_CELL_MARKER = re.compile(r"^# %%.*\n", re.M)
_PIP_LINE = re.compile(r"^\s*# %pip install [^\n]*unet_tutorial", re.M)

# The setup cell (the notebook's second cell). It must not import unet_tutorial, which is not installed yet.
# `%pip` expands {REPO} and {ref} from the notebook's variables (IPython does so in every line magic); the
# cell's layout is by hand (`make format` leaves the notebooks' sources alone).
SETUP_CELL = """\
# Setup: on Colab, install this course's package at the release this notebook was written for (its git tag), or
# from main while that tag is not published yet; it prints which one came, and its commit. Colab's own torch,
# torchvision and ipywidgets are pinned with a constraints file so that pip never reinstalls them; pinned by their
# installed versions (torch.__version__ may say 2.11.0+cu130 where pip knows 2.11.0).
import sys

if "google.colab" in sys.modules:
    import json
    import subprocess
    from importlib.metadata import distribution, version

    REPO, TAG = "{repo}", "{tag}"
    with open("/tmp/keep.txt", "w") as f:
        f.write(f"torch=={{version('torch')}}\\ntorchvision=={{version('torchvision')}}\\n"
                f"ipywidgets=={{version('ipywidgets')}}\\n")
    tagged = subprocess.run(["git", "ls-remote", "--exit-code", REPO, f"refs/tags/{{TAG}}"], capture_output=True)
    ref = TAG if tagged.returncode == 0 else "main"  # ls-remote exits with 2 when the repository has no such tag
    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+{{REPO}}@{{ref}}"
    vcs = json.loads(distribution("unet_tutorial").read_text("direct_url.json"))["vcs_info"]  # what pip installed
    print(f"unet_tutorial {{version('unet_tutorial')}} from {{vcs['requested_revision']}}, commit {{vcs['commit_id']}}"
          + ("" if ref == TAG else f" ({{TAG}} is not published yet)"))
"""


def colab_url(path: str) -> str:
    """The Colab address that opens ``path`` (e.g. "notebooks/01_unet_from_scratch.ipynb") from ``main``."""
    return f"https://colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/{path}"


def badge_lines(stem: str) -> str:
    """The title cell's two badge lines (py:percent comments) for the notebook ``notebooks/<stem>.ipynb``."""
    return (
        f"# [![Open In Colab]({BADGE_SVG})]({colab_url(f'notebooks/{stem}.ipynb')}) with the solutions ·\n"
        f"# [![Open the exercise version in Colab]({BADGE_SVG})]"
        f"({colab_url(f'notebooks/exercises/{stem}.ipynb')}) the exercise version: you write the solutions\n"
    )


def release_tag(version: str = __version__) -> str:
    """The git tag of a release: ``v<version>``."""
    return f"v{version}"


def setup_cell(version: str = __version__, repo: str = REPO_URL) -> str:
    """The setup cell's code: install ``repo`` at the tag of ``version`` if published, else at main."""
    return SETUP_CELL.format(repo=repo, tag=release_tag(version))


def render(text: str, stem: str, version: str = __version__) -> str:
    """``text`` (a py:percent notebook source) with its badge lines and its whole setup cell rewritten.

    Raises:
        ValueError: the source has no badge line in its title, or its second cell is not a code cell with a
            ``# %pip install`` line for the package.
    """
    markers = list(_CELL_MARKER.finditer(text))
    setup = markers[1] if len(markers) > 1 else None
    end = markers[2].start() if len(markers) > 2 else len(text)
    if (
        not _BADGE_LINE.search(text)
        or setup is None
        or "[markdown]" in setup.group()
        or not _PIP_LINE.search(text, setup.end(), end)
    ):
        raise ValueError(
            f"{stem}: expected an Open-in-Colab badge line in the title cell and, as the second cell, a setup "
            f'cell with a line # %pip install ... "unet_tutorial @ git+..." (see notebooks/01_unet_from_scratch.py)'
        )
    blank = "\n" if end < len(text) else ""  # a blank line before the next cell, as jupytext writes it
    text = text[: setup.end()] + setup_cell(version) + blank + text[end:]
    first = _BADGE_LINE.search(text).start()  # the new lines go where the first old one was
    text = _BADGE_LINE.sub("", text)
    return text[:first] + badge_lines(stem) + text[first:]


def write_badges(sources: list[str | Path]) -> list[Path]:
    """Rewrite each notebook source in place (see ``render``); returns the files that changed."""
    changed = []
    for source in map(Path, sources):
        text = source.read_text()
        new = render(text, source.stem)
        if new != text:
            source.write_text(new)
            changed.append(source)
    return changed


def main(argv: list[str] | None = None) -> int:
    sources = sys.argv[1:] if argv is None else argv
    try:
        changed = write_badges(sources)
    except ValueError as error:
        print(f"tools.release: {error}", file=sys.stderr)
        return 1
    print(f"badges and setup cells for {REPO_URL} {release_tag()}: "
          f"{', '.join(map(str, changed)) or 'all up to date'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
