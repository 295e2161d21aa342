"""Gates on the numbers in the notebooks' prose: prose never types a number that a run produces.

A notebook's markdown is written once and read on every machine, seed and dataset, so a number a run measures
(a Dice of 0.913, an epoch of 14 s, 4.8% of the pixels) belongs in a *reading*: a code cell tagged ``reading``
that renders Markdown from the run's variables. ``prose_problems`` finds such numbers in markdown cells:

- a decimal with two or more places (0.913, 0.15), a single-dot one: versions such as 2.11.0 are not;
- a time: a number or range with a unit of seconds, minutes or hours (14 s, 5-6 s, about 2 minutes, 2 h);
- a percentage (4.8%, 80 %, 12 percent).

Constants pass: integers (31,037,698 parameters, 5,088 images, 1918x1280), versions, a "90-minute lab" (a plan,
not a measurement), anything inside ``$...$`` math, `code spans`, fenced code, link targets and HTML tags. Two
markers exempt published numbers: a markdown cell tagged ``reference`` (``# %% [markdown] tags=["reference"]``,
e.g. a table of the papers' results), and ``<!-- constant -->`` right after one number (a single published
constant inside prose: "the paper reports 0.988 <!-- constant -->"); both are invisible once rendered.

``reading_problems`` checks executed notebooks (``make tutorial``'s build/notebooks/): every ``reading`` cell ran,
displayed Markdown, and shows no placeholder where a number should be (``{...}`` left unformatted, TBD, nan).

    python -m tools.prose prose    notebooks/NN_slug.py notebooks/exercises/NN_slug.ipynb ...
    python -m tools.prose readings build/notebooks/*.ipynb

(also ``python -m tools.notebooks prose|readings ...``). Left out: numbers in code comments and printed
output, and whether a reading's number is right. Taught in: no notebook; the course's upkeep.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REFERENCE_TAG = "reference"  # a markdown cell of published numbers (papers, datasets): not checked
READING_TAG = "reading"  # a code cell that displays Markdown rendered from the run's variables
CONSTANT_MARKER = "<!-- constant -->"  # right after one number in prose: a published constant

_NUMBER = r"\d+(?:[.,]\d+)*"
_SPAN = rf"{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?"  # 5-6, 3 to 4
_TIME_UNIT = r"(?:ms|milliseconds?|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)"
RUN_DEPENDENT = {
    "decimal": re.compile(r"(?<![\w.])\d*\.\d{2,}(?![\w.]*\.\d)(?!\w)"),
    "time": re.compile(rf"(?<![\w.-]){_SPAN}\s?{_TIME_UNIT}(?![\w-])"),
    "percentage": re.compile(rf"(?<![\w.]){_SPAN}\s?(?:%|percent\b)"),
}
_VERSIONED = r"(?:[Pp]ython|[Vv]ersion|torch\w*|CUDA|numpy|pillow|albumentations|ipywidgets|matplotlib|jupyter\w*)"
# What may hold numbers freely, blanked before the search (kept as spaces so that context offsets still hold):
_EXEMPT = [
    re.compile(r"^(`{3,}|~{3,}).*?^\1", re.M | re.S),  # fenced code
    re.compile(r"(`+)[^\n]+?\1|``.+?``", re.S),  # code spans
    re.compile(r"\$\$.+?\$\$", re.S),  # display math
    re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\\\s])\$"),  # inline math
    re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+"),  # link targets and bare URLs
    re.compile(r"arXiv:\s*\d{4}\.\d{4,5}(?:v\d+)?|doi:\S+", re.I),  # paper identifiers
    re.compile(rf"\b{_VERSIONED}\s+v?\d+(?:\.\d+)+"),  # Python 3.10, torch 2.11
    re.compile(r"\d+\.\d+\s*(?:thousand|million|billion|[kMB]\b)"),  # a count: 1.28 million photos
    re.compile(rf"{_SPAN}\s?(?:%|percent|{_TIME_UNIT})?[*_]*\s*{re.escape(CONSTANT_MARKER)}"),  # a marked constant
    re.compile(r"<[^>\n]*>"),  # HTML tags and comments
    re.compile(r"\((?:core|optional)\b[^)\n]*\)"),  # a section's human time in a lab: "(core, ~15 min)"
]
_PLACEHOLDER = re.compile(r"[{}]|\bTBD\b|\bTODO\b|\bXXX\b|\bnan\b|(?<![\w-])[+-]?inf\b", re.I)


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group())


def strip_exempt(text: str) -> str:
    """``text`` with code, math, link targets, HTML and marked constants blanked out (same length)."""
    for pattern in _EXEMPT:
        text = pattern.sub(_blank, text)
    return text


def run_dependent_numbers(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of each run-dependent number in markdown ``text``, in reading order."""
    searched = strip_exempt(text)
    found = [(kind, m.start(), m.end()) for kind, pattern in RUN_DEPENDENT.items() for m in pattern.finditer(searched)]
    kept: list[tuple[str, int, int]] = []
    for kind, start, end in sorted(found, key=lambda hit: (hit[1], -hit[2])):
        if not kept or start >= kept[-1][2]:  # 4.85% is one percentage, not also a decimal
            kept.append((kind, start, end))
    return kept


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    """The number at text[start:end] with up to ``width`` characters either side, within its paragraph."""
    first = text.rfind("\n\n", 0, start) + 1  # the paragraph's start (0 when it is the first)
    last = text.find("\n\n", end)
    last = len(text) if last < 0 else last
    low, high = max(first, start - width), min(last, end + width)
    snippet = ("..." if low > first else "") + text[low:high] + ("..." if high < last else "")
    return " ".join(snippet.split())


def _read(path: Path):
    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    import nbformat

    return nbformat.read(path, as_version=4)


def prose_problems(path: str | Path) -> list[str]:
    """One line per markdown cell of ``path`` (a .py source or an .ipynb) that types a run-dependent number:
    ``file: cell N: "...number in context..." (kind number)``, N counting cells from 0 as the sync gate does."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: no such notebook (give notebooks/NN_slug.py sources or .ipynb files)"]
    problems = []
    for index, cell in enumerate(_read(path).cells):
        if cell.cell_type != "markdown" or REFERENCE_TAG in cell.metadata.get("tags", []):
            continue
        hits = run_dependent_numbers(cell.source)
        if hits:
            quoted = "; ".join(
                f'"{_context(cell.source, start, end)}" ({kind} {cell.source[start:end]})' for kind, start, end in hits
            )
            problems.append(f"{path}: cell {index}: {quoted}")
    return problems


def _output_text(output) -> str:
    if output.output_type == "stream":
        return output.get("text", "")
    if output.output_type == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    return data.get("text/markdown") or data.get("text/plain") or ""


def reading_problems(path: str | Path) -> list[str]:
    """What is wrong with the ``reading`` cells of an executed notebook: one not run, one that displayed no
    Markdown or raised, or one whose output shows a placeholder ({...} unformatted, TBD, nan) for a number."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        return [f"{path}: no such notebook (run `make tutorial`, then give build/notebooks/*.ipynb)"]
    problems = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or READING_TAG not in cell.metadata.get("tags", []):
            continue
        outputs = cell.get("outputs", [])
        if cell.get("execution_count") is None:
            problems.append(f"{path}: cell {index}: the reading did not run (is this an executed notebook?)")
        elif any(o.output_type == "error" for o in outputs):
            error = next(o for o in outputs if o.output_type == "error")
            problems.append(f"{path}: cell {index}: the reading raised {_output_text(error)}")
        elif not any("text/markdown" in o.get("data", {}) for o in outputs):
            problems.append(f"{path}: cell {index}: the reading displayed no Markdown (display(Markdown(...)))")
        for output in outputs:
            text = _output_text(output)
            searched = strip_exempt(text)  # braces of $math$ and `code` are fine
            for match in _PLACEHOLDER.finditer(searched):
                problems.append(
                    f'{path}: cell {index}: placeholder "{_context(text, match.start(), match.end())}" in the reading'
                )
                break
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.prose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prose", help="fail on run-dependent numbers in markdown cells").add_argument("notebooks", nargs="+")
    sub.add_parser("readings", help="check the reading cells of executed notebooks").add_argument(
        "notebooks", nargs="+"
    )
    args = parser.parse_args(argv)
    check = prose_problems if args.command == "prose" else reading_problems
    problems = [line for notebook in args.notebooks for line in check(notebook)]
    what = "run-dependent numbers in prose" if args.command == "prose" else "reading cells"
    print("\n".join(problems) or f"{len(args.notebooks)} notebook(s): {what} ok")
    if problems and args.command == "prose":
        print(
            f"{len(problems)} cell(s): render such numbers in a cell tagged {READING_TAG!r}, tag a cell of published "
            f'numbers ["{REFERENCE_TAG}"], or mark one published constant with {CONSTANT_MARKER} right after it',
            file=sys.stderr,
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
