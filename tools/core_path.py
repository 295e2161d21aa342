"""Each notebook's core path alone: the notebook with its optional sections left out, what a 90-minute lab runs.

A heading marked ``(optional ...)`` starts an optional part, which runs until the next heading of the same or a
higher level (``##`` ends a ``##`` or a ``###``; ``###`` ends only a ``###``). Everything else is the core, in the
notebook's order. The core must run alone: optional parts may use what the core built, never the other way round.
``make core`` writes the core notebooks and runs them in smoke mode:

    python -m tools.core_path notebooks/[0-9][0-9]_*.py --out build/core
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HEADING = re.compile(r"^(#{1,6}) (.*)$")


def _heading(cell) -> tuple[int, str] | None:
    """(level, text) of a markdown cell's first line when it is a heading, else None."""
    if cell.cell_type != "markdown":
        return None
    match = HEADING.match(cell.source.split("\n", 1)[0])
    return (len(match.group(1)), match.group(2)) if match else None


def core_notebook(py_path: str | Path):
    """The notebook of a jupytext py:percent source without its optional parts."""
    import jupytext

    notebook = jupytext.read(py_path)
    kept, skipping = [], None  # skipping: the level of the optional heading being skipped
    for cell in notebook.cells:
        heading = _heading(cell)
        if heading and skipping is not None and heading[0] <= skipping:
            skipping = None
        if heading and skipping is None and "(optional" in heading[1]:
            skipping = heading[0]
        if skipping is None:
            kept.append(cell)
    notebook.cells = kept
    return notebook


def stubs_before_core(py_path: str | Path) -> list[str]:
    """Optional exercises that come before a core code cell: in the exercise version an unsolved one stops "Run
    all" there, before the core's end. Each as "<its heading> before <the core heading after it>"; none is right."""
    import jupytext

    found, skipping, optional_heading, current = [], None, None, ""
    pending: list[str] = []  # optional exercises' headings seen, not yet followed by core code
    for cell in jupytext.read(py_path).cells:
        heading = _heading(cell)
        if heading and skipping is not None and heading[0] <= skipping:
            skipping = None
        if heading and skipping is None and "(optional" in heading[1]:
            skipping, optional_heading = heading[0], heading[1]
        if heading:
            current = heading[1]
        solution = "solution" in cell.metadata.get("tags", [])
        if skipping is not None and solution and optional_heading not in pending:
            pending.append(optional_heading)
        elif skipping is None and cell.cell_type == "code" and pending:
            found += [f"{stub} before {current}" for stub in pending]
            pending = []
    return found


def write_core(py_path: str | Path, out_dir: str | Path) -> Path:
    import nbformat

    out = Path(out_dir) / (Path(py_path).stem + "_core.ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(core_notebook(py_path), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.core_path", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sources", nargs="+", help="notebooks/NN_slug.py")
    parser.add_argument("--out", default="build/core")
    args = parser.parse_args(argv)
    for source in args.sources:
        out = write_core(source, args.out)
        print(f"{out}: the core of {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
