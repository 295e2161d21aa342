"""Grade handed-in exercise notebooks: run each in smoke mode, read what its self-checks said, write a CSV.

    python -m unet_tutorial.course.grade handed_in/*.ipynb --out grades.csv

The idea: the exercise copies grade themselves. Each exercise is a code cell (tagged ``exercise`` in the copy,
``solution`` in the solved notebook) and then a cell that calls a self-check ``check_<name>(...)`` from
``unet_tutorial.course.exercises``, which raises AssertionError with a message or prints ``✓ <name>: all checks
passed``. So we run the student's notebook and read each pair of cells: passed (the ✓ line), failed (the
check's AssertionError), not attempted (the stub's NotImplementedError, or an empty cell), error (any other
exception, or a check that never ran), timed out, not reached (the run stopped before it). Each notebook runs in
a worker process with its own kernel (``cell_runner``), cell by cell so that a failure does not stop the next one,
in a fresh temporary folder: one that deletes the files around it or writes ``grades.csv`` touches only that
folder; the CSV is written at the end, atomically.

Why not nbgrader or otter-grader: both grade notebooks authored in their own format. nbgrader wants its cell
metadata (grade ids, points, checksums of read-only cells), a course folder layout and a gradebook database;
otter wants a master notebook with ``# BEGIN QUESTION`` cells and test files of its own, and runs submissions
in Docker. Ours are made by ``tools/notebooks.py`` and tested by the self-checks the learner already ran:
either tool would add a second format and a second set of tests that could disagree with the first.

What it leaves out: points, hidden tests, manual grading and feedback files (theirs); a sandbox (a notebook runs
with your permissions, can touch anything you can or print a fake ✓ line: grade untrusted work in a throwaway
container or account); a full-mode result (smoke mode proves the method on tiny data, not the numbers).
Taught in: TEACHING.md (grading); the command line's ``grade``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import os
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from unet_tutorial.course.cell_runner import run_notebook
from unet_tutorial.course.exercises import STUB_MESSAGE
from unet_tutorial.course.predictions import recorded_predictions

SHORT = {"passed": "pass", "failed": "FAIL", "not attempted": "todo", "error": "ERROR", "timed out": "TIME"}
SHORT |= {"not reached": "--", "predicted": "pred"}  # each status, as the summary table writes it
STATUSES = tuple(SHORT)
PASSED_LINE = "✓ {name}: all checks passed"  # what each self-check prints (exercises.passed)
CHECK_CALL = re.compile(r"(?<![\w.])check_(\w+)\s*\(")
HEADING = re.compile(r"^#{1,4}\s+(.*)$", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FORMULA = ("=", "+", "-", "@")  # how a spreadsheet formula starts
PREDICTION = "prediction: "  # how a prediction's row names it: not an exercise, not counted as one


@dataclass
class Exercise:
    """One exercise of a notebook: its name (the check's, without ``check_``) and the cells that hold it."""

    name: str
    exercise_cell: int | None  # the learner's cell (see find_exercises); None when there is none
    check_cell: int


@dataclass
class Row:
    """One line of the CSV: a student's result on one exercise."""

    student: str
    file: str
    notebook: str
    exercise: str
    status: str
    message: str
    seconds: float


def find_exercises(notebook) -> list[Exercise]:
    """The exercises of an nbformat notebook: each code cell that calls a ``check_*`` function, with the learner's
    cell: the last one tagged ``exercise`` (the copy) or ``solution`` (the solved notebook) since the previous
    check, else the code cell just before (a copy whose tags were lost on the way is graded the same)."""
    exercises, previous_code, tagged = [], None, None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("#"))
        call = CHECK_CALL.search(code)
        if {"exercise", "solution"} & set(cell.metadata.get("tags", [])):
            tagged = index  # the learner's cell, even where its stub's message names the check (a hint)
        elif call and call.group(1) not in {e.name for e in exercises}:
            exercises.append(Exercise(call.group(1), previous_code if tagged is None else tagged, index))
            tagged = None
        previous_code = index
    return exercises


def notebook_title(notebook, default: str) -> str:
    """The first heading of the first markdown cell (``02 · Losses and metrics``), else ``default``."""
    first = next((cell for cell in notebook.cells if cell.cell_type == "markdown"), None)
    found = HEADING.search(first.source) if first else None
    return found.group(1).strip() if found else default


def student_name(notebook, default: str) -> str:
    """The notebook's ``authors`` metadata (nbformat's field) if filled in, else ``default``."""
    authors = notebook.metadata.get("authors")
    authors = authors if isinstance(authors, list) else []  # edited by hand: not nbformat's list of {"name": ...}
    names = [a.get("name", "").strip() for a in authors if isinstance(a, dict)]
    return ", ".join(n for n in names if n) or default


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(ANSI.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify(exercise: Exercise, records: dict[int, dict], stopped: str, source: str) -> tuple[str, str]:
    """(status, message) of one exercise, from its cells' records; ``source``: the learner's cell."""
    if exercise.exercise_cell is not None and _holds_no_code(source):
        return "not attempted", "the exercise cell holds no code"
    for index in (exercise.exercise_cell, exercise.check_cell):
        if index is None:
            continue
        where = "the self-check cell" if index == exercise.check_cell else "the exercise cell"
        record = records.get(index)
        if record is None:
            last = max(records, default=None)
            why = stopped or (f"cell {last + 1} {_stop_reason(records[last])}" if last is not None else "")
            return "not reached", f"the run stopped before {where} (cell {index + 1}): {why or 'no reason given'}"
        if record["status"] in ("timeout", "dead"):
            status = "timed out" if record["status"] == "timeout" else "error"
            return status, f"{where} (cell {index + 1}) {_stop_reason(record)}"
        if record["status"] == "error":
            ename, evalue = record.get("ename", ""), _one_line(record.get("evalue", ""))
            if ename == "NotImplementedError" and evalue.startswith(STUB_MESSAGE):
                return "not attempted", "the stub is still in place"
            if ename == "AssertionError" and index == exercise.check_cell:
                return "failed", evalue or "the self-check failed without a message"
            return "error", f"{ename}: {evalue} (in {where})" if evalue else f"{ename} (in {where})"
    printed = records[exercise.check_cell].get("stdout", "")
    if PASSED_LINE.format(name=exercise.name) in printed:
        return "passed", ""
    lines = printed.strip().splitlines()
    said = f" It printed: {_one_line(lines[-1], 120)}" if lines else ""
    return "error", f"check_{exercise.name} did not report success: was its call removed or skipped?{said}"


def _holds_no_code(source: str) -> bool:
    try:
        return not ast.parse(source).body
    except SyntaxError:
        return False


def _stop_reason(record: dict) -> str:
    if record["status"] == "dead":
        return "killed its kernel (out of memory? exit()?)"
    limit = "the notebook's time limit" if record.get("by_notebook") else "the time limit per cell"
    return f"ran past {limit} ({record['limit']} s)"


def grade_file(
    path: Path, timeout: float = 300, cell_timeout: float = 120, threads: int = 0, student: str = ""
) -> list[Row]:
    """The rows of one handed-in notebook: one per exercise, or one error row when it cannot be graded.

    ``threads``: for torch in its kernel (0: all the cores), unless ``OMP_NUM_THREADS`` is set; ``student``:
    the name to use when the notebook's metadata has none (default: the file's name).
    """
    import nbformat

    student, file = student or path.stem, str(path)
    try:
        notebook = nbformat.reads(path.read_bytes().decode("utf-8-sig"), as_version=4)  # a Windows editor's BOM too
        exercises = find_exercises(notebook)
        student, title = student_name(notebook, student), notebook_title(notebook, path.stem)
    except Exception as exc:  # a student's file: any way of being broken is a row of the CSV, not a crash
        why = _one_line(f"{type(exc).__name__}: {exc}", 160)
        message = f"not a readable notebook ({why}); ask for it again (Colab: File > Download > Download .ipynb)"
        return [Row(student, file, "", "", "error", message, 0.0)]
    if not exercises:
        message = "no cell calls a check_... self-check: is this one of the course's exercise notebooks?"
        return [Row(student, file, title, "", "error", message, 0.0)]
    last = max(e.check_cell for e in exercises)
    records, stopped = run_notebook(notebook, timeout, cell_timeout, last, threads or os.cpu_count() or 1)
    rows = []
    for exercise in exercises:
        cells = [i for i in (exercise.exercise_cell, exercise.check_cell) if i is not None]
        status, message = classify(exercise, records, stopped, notebook.cells[cells[0]].source)
        seconds = sum(records.get(i, {}).get("seconds", 0.0) for i in cells)
        rows.append(Row(student, file, title, exercise.name, status, message, round(seconds, 1)))
    for name, value in recorded_predictions(notebook):  # read from the source: the student's, as handed in
        status = "predicted" if value else "not attempted"
        rows.append(Row(student, file, title, f"{PREDICTION}{name}", status, value or "not written", 0.0))
    return rows


def grade_files(paths: list[Path], timeout: float = 300, cell_timeout: float = 120, jobs: int = 1) -> list[Row]:
    """Grade notebooks (``jobs`` at a time), printing a line as each ends; rows in the order of ``paths``.

    A student is named by the notebook's ``authors`` metadata, else by the file's name (with its folder's, where
    files share a name). Every student gets a row for every exercise of their notebook: an exercise whose
    self-check cell is missing from a file is an error, and so is every exercise of an unreadable file (when all
    the readable ones are the same notebook, so that its exercises are known).
    """
    results: list[list[Row]] = [[] for _ in paths]
    stems = [path.stem for path in paths]  # files of the same name (a folder per student): the folder's name too
    names = [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(grade_file, path, timeout, cell_timeout, threads, name): i
            for i, (path, name) in enumerate(zip(paths, names))
        }
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            results[i] = future.result()
            print(f"[{done}/{len(paths)}] {paths[i]}: {_counts(results[i])}", flush=True)
    return _every_exercise(results)


def _every_exercise(results: list[list[Row]]) -> list[Row]:
    """Each file's rows, with an error row for each exercise of its notebook that it lacks."""
    exercises: dict[str, list[str]] = {}  # notebook -> its exercises, in order
    for row in (row for rows in results for row in rows if row.exercise):
        exercises.setdefault(row.notebook, [])
        if row.exercise not in exercises[row.notebook]:
            exercises[row.notebook].append(row.exercise)
    filled = []
    for rows in results:
        first = rows[0]
        notebook = first.notebook or (next(iter(exercises)) if len(exercises) == 1 else "")
        if not first.exercise:  # the file could not be graded: an error for each exercise, where they are known
            filled += [Row(**{**vars(first), "notebook": notebook, "exercise": n}) for n in exercises.get(notebook, [])]
            filled += [] if exercises.get(notebook) else rows
            continue
        have = {row.exercise for row in rows}
        missing = "no cell calls check_{} in this file: was it deleted?"
        predicted = "no cell tagged prediction sets {} in this file: deleted, or not valid Python?"
        why = {
            n: predicted.format(n.removeprefix(PREDICTION)) if n.startswith(PREDICTION) else missing.format(n)
            for n in exercises[notebook]
        }
        rows = rows + [
            Row(first.student, first.file, notebook, n, "error", why[n], 0.0)
            for n in exercises[notebook]
            if n not in have
        ]
        filled += sorted(rows, key=lambda row: exercises[notebook].index(row.exercise))
    return filled


def _counts(rows: list[Row]) -> str:
    counts = {status: sum(row.status == status for row in rows) for status in STATUSES}
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def write_csv(rows: list[Row], out: Path) -> None:
    """Write the rows to ``out`` atomically: a half-written file never replaces a good one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", suffix=".tmp", delete=False
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow([field.name for field in fields(Row)])
        for row in rows:  # a student's text that a spreadsheet would run as a formula is quoted
            writer.writerow([f"'{v}" if isinstance(v, str) and v.startswith(FORMULA) else v for v in astuple(row)])
    os.replace(handle.name, out)


def summary(rows: list[Row]) -> str:
    """A table per notebook: one line per student, a short status per exercise, the number passed; totals."""
    lines = []
    for notebook in dict.fromkeys(row.notebook for row in rows):
        group = [row for row in rows if row.notebook == notebook]
        names = list(dict.fromkeys(row.exercise for row in group if row.exercise))
        students = list(dict.fromkeys((row.student, row.file) for row in group))
        width = min(28, max(len("student"), *(len(student) for student, _ in students)))
        lines += [f"{notebook or 'files that could not be read'}"] + [f"  {i}. {n}" for i, n in enumerate(names, 1)]
        lines.append(f"{'student':<{width}}" + "".join(f"{i:>7}" for i in range(1, len(names) + 1)) + "  passed")
        for student, file in students:
            mine = {row.exercise: row for row in group if (row.student, row.file) == (student, file)}
            if "" in mine:
                lines.append(f"{student[:width]:<{width}}  {SHORT['error']}: {mine[''].message}")
                continue
            short = "".join(f"{SHORT[mine[n].status] if n in mine else '':>7}" for n in names)
            passed = sum(row.status == "passed" for row in mine.values())
            graded = sum(not n.startswith(PREDICTION) for n in names)
            lines.append(f"{student[:width]:<{width}}{short}  {passed}/{graded}")
        lines.append("")
    legend = ", ".join(f"{short} {status}" for status, short in SHORT.items())
    return "\n".join(lines + [f"totals: {_counts(rows) or 'no rows'}", f"({legend}; the messages are in the CSV)"])


def _expand(items: list[str]) -> tuple[list[Path], str]:
    """The notebooks named: files as given, folders as their ``*.ipynb``; or what is wrong with the names."""
    paths = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths += sorted(path.glob("*.ipynb"))
        elif path.is_file():
            paths.append(path)
        else:
            return [], f"{item}: no such file or folder (a pattern that matched nothing?)"
    paths = list(dict.fromkeys(paths))
    return paths, "" if paths else f"no .ipynb file in {', '.join(items)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The grader's arguments, for this module's ``main`` and for ``python -m unet_tutorial grade``."""
    parser.add_argument("notebooks", nargs="+", help="the handed-in .ipynb files, or folders of them")
    parser.add_argument("--out", default="grades.csv", help="the CSV to write (default: grades.csv)")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds per notebook, from when its kernel is ready (default: 300)"
    )
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default: 120)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its kernel (default: 1)")


def run(args: argparse.Namespace) -> int:
    """Grade ``args.notebooks``, write ``args.out``, print the summary; 2 (and one line) on a bad argument."""
    paths, problem = _expand(args.notebooks)
    problem = problem or _argument_problem(paths, Path(args.out), args)
    if problem:
        print(f"grade: {problem}", file=sys.stderr)
        return 2
    print(f"grading {len(paths)} notebook(s) in smoke mode, at most {args.timeout:g} s each", flush=True)
    rows = grade_files(paths, args.timeout, args.cell_timeout, args.jobs)
    write_csv(rows, Path(args.out))
    print("\n" + summary(rows) + f"\n{args.out}: {len(rows)} rows")
    return 0


def _argument_problem(paths: list[Path], out: Path, args: argparse.Namespace) -> str:
    import importlib.util

    needed = [name for name in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(name) is None]
    if needed:
        return f"the grader needs {', '.join(needed)}: pip install {' '.join(needed)}"
    if out.suffix == ".ipynb" or out.resolve() in {path.resolve() for path in paths}:
        return f"--out {out} would overwrite a notebook: name a .csv file, e.g. --out grades.csv"
    if out.is_dir():
        return f"--out {out} is a folder: name a .csv file, e.g. --out {out / 'grades.csv'}"
    if not all(0 < t and math.isfinite(t) for t in (args.timeout, args.cell_timeout)) or args.jobs < 1:
        return (
            f"--timeout {args.timeout:g} --cell-timeout {args.cell_timeout:g} --jobs {args.jobs}: the time limits "
            "must be positive numbers of seconds (e.g. 300 and 120) and --jobs at least 1"
        )
    try:  # now, not after an afternoon of grading
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as error:
        return f"--out {out} cannot be written ({error.strerror or error}); name a .csv file in a folder you can write"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m unet_tutorial.course.grade", description=__doc__.split("\n\n")[0].strip()
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
