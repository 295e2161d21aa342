"""Tools for the notebooks themselves: the sync gate, student copies and the full-mode runner.

The ``notebooks/NN_slug.py`` files (jupytext py:percent) are the sources we edit; each paired ``.ipynb`` is
committed without outputs so that Open-in-Colab links work. This module checks that pairing, writes the student
copies where each exercise's solution is replaced by a stub, and runs every notebook in order for
``make tutorial``. It teaches no segmentation; the Makefile calls it:

    python -m unet_tutorial.notebook_tools check   notebooks/*.py
    python -m unet_tutorial.notebook_tools student notebooks/*.py --out student
    python -m unet_tutorial.notebook_tools run     notebooks/*.ipynb --out build/notebooks
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

SOLUTION_TAG = "solution"
HINT_PREFIX = "# Hint:"


def cell_sources(notebook) -> list[tuple[str, str]]:
    """(cell_type, source) for every cell of an nbformat notebook."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def pairing_problems(py_path: str | Path) -> list[str]:
    """What is wrong with a notebook pair: an .ipynb that differs from its .py source, or carries outputs."""
    import jupytext
    import nbformat

    py_path = Path(py_path)
    ipynb_path = py_path.with_suffix(".ipynb")
    if not ipynb_path.exists():
        return [f"{ipynb_path} is missing: run 'make sync' and commit it"]
    expected = jupytext.read(py_path)
    committed = nbformat.read(ipynb_path, as_version=4)
    problems = []
    if cell_sources(expected) != cell_sources(committed):
        problems.append(f"{ipynb_path} differs from {py_path}: run 'make sync' and commit both")
    for index, cell in enumerate(committed.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{ipynb_path} cell {index} carries outputs: run 'make sync' to strip them")
            break
    return problems


def stub_source(source: str) -> str:
    """The student version of a solution cell: comments kept, every body replaced by a NotImplementedError.

    Functions and classes keep their signatures and docstrings, so the self-check that follows can call them
    and fails with the hint. Top-level statements other than imports are dropped and the cell ends by raising.
    """
    lines = source.splitlines()
    header = [line for line in lines if line.lstrip().startswith("#")]
    hints = [line.split(HINT_PREFIX, 1)[1].strip() for line in header if line.strip().startswith(HINT_PREFIX)]
    message = "Exercise: replace this line with your solution." + (f" Hint: {hints[0]}" if hints else "")
    raise_stmt = ast.parse(f"raise NotImplementedError({message!r})").body[0]

    def stub_function(node: ast.FunctionDef) -> ast.FunctionDef:
        docstring = ast.get_docstring(node)
        node.body = ([ast.Expr(ast.Constant(docstring))] if docstring else []) + [raise_stmt]
        return node

    kept: list[ast.stmt] = []
    loose_code = False
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kept.append(stub_function(node))
        elif isinstance(node, ast.ClassDef):
            node.body = [stub_function(n) if isinstance(n, ast.FunctionDef) else n for n in node.body
                         if isinstance(n, (ast.FunctionDef, ast.Expr))] or [ast.Pass()]
            kept.append(node)
        else:
            loose_code = True
    if loose_code or not kept:
        kept.append(raise_stmt)
    body = ast.unparse(ast.Module(body=kept, type_ignores=[]))
    return "\n".join(header + ["# Your code here:", body])


def make_student(py_path: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/NN_slug.ipynb``: the notebook with each ``solution``-tagged cell turned into a stub."""
    import jupytext
    import nbformat

    notebook = jupytext.read(py_path)
    solutions = 0
    for cell in notebook.cells:
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != SOLUTION_TAG] + ["exercise"]
            solutions += 1
    out_path = Path(out_dir) / (Path(py_path).stem + ".ipynb")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_path)
    print(f"{out_path}: {solutions} exercise(s) turned into stubs")
    return out_path


def exercise_pairs(py_path: str | Path) -> list[tuple[str, str]]:
    """(solution source, self-check source) for each ``solution`` cell and the code cell after it."""
    import jupytext

    cells = jupytext.read(py_path).cells
    pairs = []
    for index, cell in enumerate(cells):
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            check = next((c for c in cells[index + 1:] if c.cell_type == "code"), None)
            if check is None:
                raise ValueError(f"{py_path}: the solution cell {index} has no self-check cell after it")
            pairs.append((cell.source, check.source))
    return pairs


def run_notebooks(paths: list[str], out_dir: str | Path, timeout: int | None = None) -> list[dict]:
    """Execute notebooks in order (full mode unless the environment says otherwise) and save them with outputs.

    Each notebook records its headline metric with ``utils.report_metric``; returns one row per notebook.
    """
    import nbformat
    from nbclient import NotebookClient

    out_dir = Path(out_dir)
    report_dir = out_dir / "metrics"
    os.environ["UNET_TUTORIAL_REPORT"] = str(report_dir.resolve())
    rows = []
    for path in paths:
        path = Path(path)
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        error = None
        try:
            client.execute()
        except Exception as exc:  # keep going: the table says which notebook failed and why
            error = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
        seconds = time.perf_counter() - start
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out_dir / path.name)
        metric_file = report_dir / f"{path.stem}.json"
        metric = json.loads(metric_file.read_text()) if metric_file.exists() else {}
        rows.append({"notebook": path.stem, "seconds": seconds, "metric": metric.get("metric", "-"),
                     "value": metric.get("value"), "error": error})
        print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    value = "-" if row["value"] is None else f"{row['value']:.4f}"
    status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
    return f"{row['notebook']:<28} {row['seconds']:>8.1f} s  {row['metric']:<14} {value:>8}  {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unet_tutorial.notebook_tools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="fail when an .ipynb differs from its .py or carries outputs")
    check.add_argument("sources", nargs="+")
    student = sub.add_parser("student", help="write student copies with the solutions stubbed out")
    student.add_argument("sources", nargs="+")
    student.add_argument("--out", default="student")
    run = sub.add_parser("run", help="execute notebooks in order, save them with outputs, print a table")
    run.add_argument("notebooks", nargs="+")
    run.add_argument("--out", default="build/notebooks")
    run.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    args = parser.parse_args(argv)

    if args.command == "check":
        problems = [p for source in args.sources for p in pairing_problems(source)]
        print("\n".join(problems) or f"{len(args.sources)} notebook pair(s) in sync, without outputs")
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
