"""Tools for the notebooks themselves: the sync gate, student copies and the full-mode runner.

The ``notebooks/NN_slug.py`` files (jupytext py:percent) are the sources we edit; each paired ``.ipynb`` is
committed without outputs so that Open-in-Colab links work, and so is its student copy,
``notebooks/exercises/NN_slug.ipynb``, where each exercise's solution is replaced by a stub (and each
prediction by ``None``). This module
writes the copies, checks that all three agree (cells and their tags), and runs every notebook in order for
``make tutorial``. It teaches no segmentation; the Makefile calls it:

    python -m tools.notebooks check   notebooks/*.py
    python -m tools.notebooks student notebooks/*.py   # -> notebooks/exercises/NN_slug.ipynb
    python -m tools.notebooks run     notebooks/*.ipynb --out build/notebooks
    python -m tools.notebooks prose   notebooks/*.py notebooks/exercises/*.ipynb  # tools/prose.py's gates
    python -m tools.notebooks readings build/notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

from unet_tutorial.course.exercises import STUB_MESSAGE
from unet_tutorial.course.predictions import PREDICTION_TAG, blank_predictions

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"  # a cell that discusses an exercise's result: left out of the student copy (the answer key)
HINT_PREFIX = "# Hint:"
EXERCISES_DIR = "exercises"  # student copies: notebooks/exercises/NN_slug.ipynb


def cell_sources(notebook) -> list[tuple[str, str]]:
    """(cell_type, source) for every cell of an nbformat notebook."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def cell_tags(notebook) -> list[list[str]]:
    """The tags of every cell (``skip-execution``, ``solution``, ...), in order."""
    return [list(cell.metadata.get("tags", [])) for cell in notebook.cells]


def student_path(py_path: str | Path) -> Path:
    """Where the student copy of ``notebooks/NN_slug.py`` lives: ``notebooks/exercises/NN_slug.ipynb``."""
    py_path = Path(py_path)
    return py_path.parent / EXERCISES_DIR / (py_path.stem + ".ipynb")


def _compare(expected, committed, committed_path: Path, source: Path, fix: str) -> list[str]:
    problems = []
    if cell_sources(expected) != cell_sources(committed):
        problems.append(f"{committed_path} differs from {source}: run '{fix}' and commit both")
    elif cell_tags(expected) != cell_tags(committed):
        problems.append(f"{committed_path}: cell tags differ from {source}'s: run '{fix}' and commit both")
    for index, cell in enumerate(committed.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{committed_path} cell {index} carries outputs: run '{fix}' to strip them")
            break
    return problems


def pairing_problems(py_path: str | Path) -> list[str]:
    """What is wrong with a notebook's .ipynb or its student copy: missing, out of date, or carrying outputs.

    Both must hold the cells of the .py source (the student copy with its solutions stubbed), and the same
    cell tags (``solution``, ``skip-execution``, ...), so that a tag set in one place is not lost in another.
    """
    import jupytext
    import nbformat

    py_path = Path(py_path)
    ipynb_path = py_path.with_suffix(".ipynb")
    if not ipynb_path.exists():
        return [f"{ipynb_path} is missing: run 'make sync' and commit it"]
    expected = jupytext.read(py_path)
    problems = _compare(expected, nbformat.read(ipynb_path, as_version=4), ipynb_path, py_path, "make sync")
    copy_path = student_path(py_path)
    if not copy_path.exists():
        return problems + [f"{copy_path} is missing: run 'make student' and commit it"]
    committed = nbformat.read(copy_path, as_version=4)
    return problems + _compare(student_notebook(py_path), committed, copy_path, py_path, "make student")


def _raise_line(hint: str, where: str = "") -> str:
    """The line a stub raises: the hint itself, or ``where`` it is (once in a cell is enough), or nothing."""
    message = STUB_MESSAGE + (f" Hint: {hint}" if hint else where)
    return f"raise NotImplementedError({message!r})"


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(getattr(node.value, "value", None), str)


def _first_line(node: ast.stmt) -> int:
    """The 1-based line where a statement starts, decorators included."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _stub_def(node: ast.stmt, lines: list[str], raise_line: str) -> list[str]:
    """A def or class as written (signature, docstring), its body replaced by ``raise_line``.

    Comment lines inside the definition belong to the solution and are dropped; a class keeps its methods,
    stubbed.
    """
    body = node.body
    if body[0].lineno == node.lineno:
        raise ValueError(f"stub_source: put the body of {node.name!r} on its own lines, not after the colon")
    end = body[0].end_lineno if _is_docstring(body[0]) else body[0].lineno - 1
    kept = [line for line in lines[_first_line(node) - 1 : end] if not line.lstrip().startswith("#")]
    indent = " " * body[0].col_offset
    if isinstance(node, ast.ClassDef):
        methods = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for method in methods:
            kept += [""] + _stub_def(method, lines, raise_line)
        if not methods and not _is_docstring(body[0]):
            kept.append(indent + "pass")
        return kept
    return kept + [indent + raise_line]


def _blank_lines(before: ast.stmt, node: ast.stmt | None, lines: list[str]) -> list[str]:
    """The blank lines between two kept statements: as written between imports, else as PEP 8 spaces them."""
    imports = (ast.Import, ast.ImportFrom)
    if isinstance(before, imports) and isinstance(node, imports):
        return [""] * sum(not line.strip() for line in lines[before.end_lineno : node.lineno - 1])
    return [""] if isinstance(before, imports) and node is None else ["", ""]  # None: the final raise


def stub_source(source: str) -> str:
    """The student version of a solution cell: the comments before its first statement, then stubs.

    Only the comment lines above the first statement are kept (a comment further down belongs to the
    solution and would give it away); the first ``# Hint:`` among them, with the lines after it, goes into
    the error message the cell raises at its end (a stubbed function's message points at it). Imports are
    kept, and functions and classes keep their signatures and docstrings as written, so the self-check that
    follows can call them and fails. Other top-level statements are dropped and the cell ends by raising.
    """
    lines = source.splitlines()
    module = ast.parse(source)
    first = _first_line(module.body[0]) if module.body else len(lines) + 1
    header = [line for line in lines[: first - 1] if line.strip()]  # only comments can come before it
    hint_at = next((i for i, line in enumerate(header) if line.lstrip().startswith(HINT_PREFIX)), len(header))
    hint = " ".join(line.lstrip().lstrip("#").strip() for line in header[hint_at:])  # with the lines that go on
    raise_line = _raise_line(hint.removeprefix(HINT_PREFIX.lstrip("# ")).strip())
    # a function's stub points at the hint instead of repeating it: the cell's own last line raises with it
    def_raise_line = _raise_line("", " The hint is at the top of this cell." if hint else "")

    pieces: list[tuple[ast.stmt | None, list[str]]] = []  # (statement, its student lines); None: the final raise
    for node in module.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            pieces.append((node, lines[node.lineno - 1 : node.end_lineno]))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            pieces.append((node, _stub_def(node, lines, def_raise_line)))
    if len(pieces) < len(module.body) or not pieces:  # loose code, or nothing kept: the cell raises at its end
        pieces.append((None, [raise_line]))
    out = header + ["# Your code here:"] + pieces[0][1]
    for (before, _), (node, piece) in zip(pieces, pieces[1:]):
        out += _blank_lines(before, node, lines) + piece
    return "\n".join(out)


def _colab_badges_to(title: str, notebook_name: str) -> str:
    """The title cell of a student copy: its Open-in-Colab badges open ``notebooks/exercises/<notebook_name>``.

    A line with a badge to the solutions (and its words, "with the solutions") is dropped when another line
    already opens the exercise copy; without such a line, its links are pointed at the copy instead.
    """
    colab = r"(https://colab\.research\.google\.com/github/[^\s)]+?/blob/[^\s)/]+/)notebooks/"
    solutions = re.compile(colab + re.escape(notebook_name))
    exercises = re.compile(colab + EXERCISES_DIR + "/" + re.escape(notebook_name))
    lines = title.split("\n")
    has_exercise_badge = any(exercises.search(line) for line in lines)
    kept = [
        solutions.sub(rf"\g<1>notebooks/{EXERCISES_DIR}/{notebook_name}", line)
        for line in lines
        if not (has_exercise_badge and solutions.search(line))
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept))  # no double blank line where a badge line was


def student_notebook(py_path: str | Path):
    """The student copy: each ``solution`` cell a stub tagged ``exercise``, each ``prediction`` cell's values
    ``None``, each ``answer`` cell left out (the answer key stays in the solution notebook a teacher opens), the
    badges leading to the copy."""
    import jupytext

    notebook = jupytext.read(py_path)
    notebook.metadata.pop("jupytext", None)  # the copy is not paired with a .py
    paired = Path(py_path).with_suffix(".ipynb")
    if paired.is_file():  # the paired notebook's cell ids (jupytext --update keeps them): a rerun changes nothing
        ids = [cell.get("id") for cell in jupytext.read(paired).cells]
        if len(ids) == len(notebook.cells) and all(ids):
            for cell, cell_id in zip(notebook.cells, ids):
                cell["id"] = cell_id
    notebook.cells[0].source = _colab_badges_to(notebook.cells[0].source, Path(py_path).stem + ".ipynb")
    for cell in notebook.cells:
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != SOLUTION_TAG] + ["exercise"]
        elif PREDICTION_TAG in cell.metadata.get("tags", []):  # the learner's own, before the run
            cell.source = blank_predictions(cell.source)
    notebook.cells = [cell for cell in notebook.cells if ANSWER_TAG not in cell.metadata.get("tags", [])]
    return notebook


def make_student(py_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the student copy, ``notebooks/exercises/NN_slug.ipynb`` (or ``out_dir/NN_slug.ipynb``)."""
    import nbformat

    notebook = student_notebook(py_path)
    out_path = student_path(py_path) if out_dir is None else Path(out_dir) / (Path(py_path).stem + ".ipynb")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_path)
    exercises = sum("exercise" in c.metadata.get("tags", []) for c in notebook.cells)
    print(f"{out_path}: {exercises} exercise(s) turned into stubs")
    return out_path


def exercise_pairs(py_path: str | Path) -> list[tuple[str, str]]:
    """(solution source, self-check source) for each ``solution`` cell and the code cell after it."""
    import jupytext

    cells = jupytext.read(py_path).cells
    pairs = []
    for index, cell in enumerate(cells):
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            check = next((c for c in cells[index + 1 :] if c.cell_type == "code"), None)
            if check is None:
                raise ValueError(f"{py_path}: the solution cell {index} has no self-check cell after it")
            pairs.append((cell.source, check.source))
    return pairs


def run_notebooks(paths: list[str], out_dir: str | Path, timeout: int | None = None) -> list[dict]:
    """Execute notebooks in order (full mode unless the environment says so) and save them with outputs.

    Each notebook records its headline metric with ``utils.report_metric``; returns one row per notebook, also
    written, with the date, the mode and the machine, to ``out_dir/run.json`` (``make results`` reads both).
    """
    import nbformat
    from nbclient import NotebookClient

    from tools import results
    from unet_tutorial.utils import smoke_mode

    out_dir = Path(out_dir)
    report_dir = out_dir / "metrics"
    os.environ["UNET_TUTORIAL_REPORT"] = str(report_dir.resolve())
    mode, machine = "smoke" if smoke_mode() else "full", results.machine()
    rows = []
    for path in paths:
        path = Path(path)
        metric_file = report_dir / f"{path.stem}.json"
        metric_file.unlink(missing_ok=True)  # a notebook that fails early must not keep an older run's metric
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        error = None
        try:
            client.execute()
        except Exception as exc:  # keep going: the table says which notebook failed and why
            error = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
        seconds = time.perf_counter() - start
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out_dir / path.name)
        metric = json.loads(metric_file.read_text()) if metric_file.exists() else {}
        rows.append(
            {
                "notebook": path.stem,
                "seconds": seconds,
                "metric": metric.get("metric", "-"),
                "value": metric.get("value"),
                "error": error,
            }
        )
        print(format_row(rows[-1]), flush=True)
        results.write_run(out_dir, rows, mode, machine)  # after each notebook: an interrupted run keeps its rows
    return rows


def format_row(row: dict) -> str:
    value = "-" if row["value"] is None else f"{row['value']:.4f}"
    status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
    return f"{row['notebook']:<28} {row['seconds']:>8.1f} s  {row['metric']:<14} {value:>8}  {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.notebooks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="fail when an .ipynb or its student copy differs from its .py (cells or tags) or carries outputs"
    )
    check.add_argument("sources", nargs="+")
    student = sub.add_parser("student", help="write student copies with the solutions stubbed out")
    student.add_argument("sources", nargs="+")
    student.add_argument("--out", default=None, help="folder (default: notebooks/exercises/ by the sources)")
    run = sub.add_parser("run", help="execute notebooks in order, save them with outputs, print a table")
    run.add_argument("notebooks", nargs="+")
    run.add_argument("--out", default="build/notebooks")
    run.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    for name, what in (("prose", "run-dependent numbers in markdown"), ("readings", "executed reading cells")):
        sub.add_parser(name, help=f"tools/prose.py: fail on {what}").add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)

    if args.command in ("prose", "readings"):
        from tools import prose

        return prose.main([args.command, *args.notebooks])
    if args.command == "check":
        problems = [p for source in args.sources for p in pairing_problems(source)]
        done = f"{len(args.sources)} notebook pair(s) and their student copies in sync, without outputs"
        print("\n".join(problems) or done)
        return 1 if problems else 0
    if args.command == "student":
        for source in args.sources:
            make_student(source, args.out)
        return 0
    print(f"{'notebook':<28} {'time':>10}  {'metric':<14} {'value':>8}  status")
    rows = run_notebooks(args.notebooks, args.out, args.timeout)
    return 1 if any(row["error"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
