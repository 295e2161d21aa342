"""Where the course is published: one repository URL and one version, written into every notebook.

Each notebook's title cell carries two Open-in-Colab badges (the notebook, and its exercise version in
``notebooks/exercises/``), and its setup cell installs this package from the git tag ``v<version>``, so that a
copy of a notebook saved in someone's Drive keeps getting the package it was written for. The URL lives in
``utils.REPO_URL`` and the version in ``unet_tutorial.__version__``; ``make badges`` (``python -m
tools.release notebooks/NN_slug.py ...``) rewrites those lines from them. Left out: publishing and
tagging themselves (CONTRIBUTING.md says how). Taught in: no notebook; this is the course's upkeep.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from unet_tutorial import __version__
from unet_tutorial.utils import REPO_URL

BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_LINE = re.compile(r"^# [^\n]*\[!\[Open[^\n]*\]\(https://colab\.research\.google\.com/[^\n]*\n", re.M)
_PIP_LINE = re.compile(r'(# %pip install [^\n]*)"unet_tutorial @ git\+[^"]*"')


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


def install_spec(version: str = __version__) -> str:
    """What the setup cell installs: the package at the git tag of ``version``."""
    return f"unet_tutorial @ git+{REPO_URL}@v{version}"


def render(text: str, stem: str, version: str = __version__) -> str:
    """``text`` (a py:percent notebook source) with its badge lines and setup cell's install line rewritten.

    Raises:
        ValueError: the source has no badge line in its title or no ``# %pip install`` line for the package.
    """
    if not _BADGE_LINE.search(text) or not _PIP_LINE.search(text):
        raise ValueError(
            f"{stem}: expected an Open-in-Colab badge line in the title cell and a setup cell line "
            f'# %pip install ... "unet_tutorial @ git+..." (see notebooks/01_unet_from_scratch.py)'
        )
    first = _BADGE_LINE.search(text).start()  # the new lines go where the first old one was
    text = _BADGE_LINE.sub("", text)
    text = text[:first] + badge_lines(stem) + text[first:]
    return _PIP_LINE.sub(lambda m: f'{m.group(1)}"{install_spec(version)}"', text)


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
    changed = write_badges(sys.argv[1:] if argv is None else argv)
    print(f"badges and setup cells for {REPO_URL} v{__version__}: "
          f"{', '.join(map(str, changed)) or 'all up to date'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
