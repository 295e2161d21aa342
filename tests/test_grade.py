"""The grader of handed-in notebooks, on planted submissions of a tiny exercise notebook.

The planted notebook has three exercises whose checks live in tests/grade_fixtures/planted_checks.py (real
checks without torch, so that each kernel starts in about a second); its student stubs are made by the course's
own ``tools.notebooks.stub_source``. One run grades a whole planted class, so the kernels start once per file.
"""

import ast
import csv
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import notebooks
from unet_tutorial.course import exercises, grade

FIXTURES = Path(__file__).resolve().parent / "grade_fixtures"
ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = {  # the learner's cell of each exercise, solved
    "double": '# Hint: multiply by two.\ndef double(x):\n    """Twice x."""\n    return 2 * x\n',
    "answer": "# Hint: height times width.\nANSWER = 6 * 7\n",
    "halves": "# Hint: cut at len // 2.\ndef halves(values):\n    middle = len(values) // 2\n"
    "    return values[:middle], values[middle:]\n",
}
CHECKS = {"double": "check_double(double)", "answer": "check_answer(ANSWER)", "halves": "check_halves(halves)"}
STUBS = {name: notebooks.stub_source(source) for name, source in SOLUTIONS.items()}
MALICIOUS = """import os
import shutil

for name in os.listdir("."):  # the grader's temporary folder, not the teacher's
    shutil.rmtree(name) if os.path.isdir(name) else os.remove(name)
for folder in (".", os.environ.get("PWD", "."), os.environ.get("OLDPWD", ".")):
    with open(os.path.join(folder, "grades.csv"), "w") as f:
        f.write("student,status\\nmallory,passed\\n")


def double(x):
    return 2 * x
"""


def planted(path: Path, answers: dict[str, str] | None = None, author: str | None = None) -> Path:
    """Write a submission: a title, a setup cell, then per exercise a heading, the learner's cell (the solution
    unless ``answers`` gives another source) tagged as in an exercise copy, and the self-check cell."""
    cells = [
        new_markdown_cell("# 99 · Planted exercises\n\nWhat you will learn: nothing."),
        new_code_cell(f"import sys\n\nsys.path.insert(0, {str(FIXTURES)!r})"),
    ]
    for number, (name, solution) in enumerate(SOLUTIONS.items(), 1):
        cells += [
            new_markdown_cell(f"## Exercises\n\n### Exercise {number}: {name}\nAsk something."),
            new_code_cell((answers or {}).get(name, solution), metadata={"tags": ["exercise"]}),
            new_code_cell(f"from planted_checks import check_{name}\n\n{CHECKS[name]}"),
            new_markdown_cell("Our run's answer.", metadata={"tags": ["answer"]}),
        ]
    notebook = new_notebook(cells=cells, metadata={"authors": [{"name": author}]} if author else {})
    nbformat.write(notebook, path)
    return path


def read_grades(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "file", "notebook", "exercise", "status", "message", "seconds"]
    return {(Path(row["file"]).name, row["exercise"]): row for row in rows}


def test_a_planted_class_is_graded_row_by_row_and_no_notebook_touches_the_teachers_files(tmp_path, monkeypatch, capsys):
    teacher = tmp_path / "teacher"
    handed_in = teacher / "handed_in"
    handed_in.mkdir(parents=True)
    monkeypatch.chdir(teacher)
    planted(handed_in / "alice.ipynb", author="Alice Liddell")
    planted(handed_in / "bob.ipynb", STUBS)
    planted(handed_in / "carol.ipynb", {"answer": "ANSWER = 41\n", "halves": "import os\n\nos._exit(1)\n"})
    planted(handed_in / "dave.ipynb", {"double": "raise ValueError('my own bug')\n"})
    planted(handed_in / "erin.ipynb", {"answer": "while True:\n    pass\n"})
    (handed_in / "frank.ipynb").write_text('{"cells": [ not json')
    planted(handed_in / "mallory.ipynb", {"double": MALICIOUS})
    (teacher / "notes.txt").write_text("the teacher's own notes")
    before = {p.name: p.read_bytes() for p in handed_in.iterdir()}

    assert grade.main(["handed_in", "--out", "grades.csv", "--timeout", "3", "--jobs", "2"]) == 0

    rows = read_grades(teacher / "grades.csv")
    status = {key: row["status"] for key, row in rows.items()}
    assert len(rows) == 7 * 3, "every student gets a row for every exercise"
    for file in ("alice.ipynb", "mallory.ipynb"):
        assert [status[file, name] for name in SOLUTIONS] == ["passed"] * 3, file
    assert {row["student"] for (file, _), row in rows.items() if file == "alice.ipynb"} == {"Alice Liddell"}
    assert rows["alice.ipynb", "double"]["notebook"] == "99 · Planted exercises"
    assert [status["bob.ipynb", name] for name in SOLUTIONS] == ["not attempted"] * 3
    assert [status["carol.ipynb", name] for name in SOLUTIONS] == ["passed", "failed", "error"]
    assert rows["carol.ipynb", "answer"]["message"] == "you said 41: a 6 x 7 image has 6 * 7 pixels"
    assert "killed its kernel" in rows["carol.ipynb", "halves"]["message"]
    assert [status["dave.ipynb", name] for name in SOLUTIONS] == ["error", "passed", "passed"]
    assert rows["dave.ipynb", "double"]["message"] == "ValueError: my own bug (in the exercise cell)"
    assert [status["erin.ipynb", name] for name in SOLUTIONS] == ["passed", "timed out", "not reached"]
    assert "the notebook's time limit (3 s)" in rows["erin.ipynb", "answer"]["message"]
    assert [status["frank.ipynb", name] for name in SOLUTIONS] == ["error"] * 3
    assert "not a readable notebook" in rows["frank.ipynb", "double"]["message"]

    assert sorted(p.name for p in teacher.iterdir()) == ["grades.csv", "handed_in", "notes.txt"]
    assert (teacher / "notes.txt").read_text() == "the teacher's own notes"
    assert {p.name: p.read_bytes() for p in handed_in.iterdir()} == before
    table = capsys.readouterr().out
    assert "Alice Liddell" in table and "3/3" in table and "totals: 10 passed" in table, table


def test_find_exercises_finds_every_exercise_of_the_course_and_its_cells():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for notebook, tag in ((path, "solution"), (path.parent / "exercises" / path.name, "exercise")):
            cells = nbformat.read(notebook, as_version=4).cells
            found = grade.find_exercises(nbformat.read(notebook, as_version=4))
            tagged = [i for i, cell in enumerate(cells) if tag in cell.metadata.get("tags", [])]
            assert [e.exercise_cell for e in found] == tagged, notebook
            assert all(f"check_{e.name}(" in cells[e.check_cell].source for e in found), notebook


def test_the_learners_cell_is_the_tagged_one_else_the_code_cell_before_the_check():
    cells = [new_code_cell("x = 1"), new_code_cell("y = 2", metadata={"tags": ["exercise"]}), new_code_cell("z = 3")]
    cells += [new_code_cell("check_one(y)"), new_code_cell("w = 4"), new_code_cell("# check_two(w) is a comment")]
    cells += [new_code_cell("if w:\n    check_two(w)")]
    found = grade.find_exercises(new_notebook(cells=cells))
    assert [(e.name, e.exercise_cell, e.check_cell) for e in found] == [("one", 1, 3), ("two", 5, 6)]


def test_the_grader_reads_what_the_stubs_raise_and_what_the_checks_print(capsys):
    for source in SOLUTIONS.values():
        stub = ast.parse(notebooks.stub_source(source))
        raised = [node.exc for node in ast.walk(stub) if isinstance(node, ast.Raise)]
        assert raised and all(r.func.id == "NotImplementedError" for r in raised)
        assert all(r.args[0].value.startswith(grade.STUB_MESSAGE) for r in raised)
    exercises.passed("bilinear_up")
    assert grade.PASSED_LINE.format(name="bilinear_up") in capsys.readouterr().out


def test_a_bad_argument_is_one_line_naming_it(tmp_path, capsys):
    assert grade.main([str(tmp_path / "handed_in" / "*.ipynb")]) == 2
    assert "*.ipynb: no such file or folder" in capsys.readouterr().err
    submission = planted(tmp_path / "alice.ipynb")
    assert grade.main([str(submission), "--out", str(submission)]) == 2
    assert "would overwrite a notebook" in capsys.readouterr().err


def test_students_whose_files_share_a_name_are_told_apart_by_their_folder(tmp_path):
    for student in ("ann", "ben"):  # a folder per student, as a learning platform exports them
        (tmp_path / student).mkdir()
        nbformat.write(new_notebook(cells=[new_markdown_cell("# 99 · Planted")]), tmp_path / student / "02.ipynb")
    rows = grade.grade_files([tmp_path / "ann" / "02.ipynb", tmp_path / "ben" / "02.ipynb"])
    assert [(row.student, row.status) for row in rows] == [("ann/02", "error"), ("ben/02", "error")]
    assert "no cell calls a check_" in rows[0].message


def test_the_csv_quotes_what_a_spreadsheet_would_run_as_a_formula(tmp_path):
    rows = [grade.Row("=HYPERLINK(1)", "a.ipynb", "99", "double", "failed", "-1 is not 2", 0.5)]
    grade.write_csv(rows, tmp_path / "grades.csv")
    row = next(iter(read_grades(tmp_path / "grades.csv").values()))
    assert (row["student"], row["message"], row["seconds"]) == ("'=HYPERLINK(1)", "'-1 is not 2", "0.5")


@pytest.mark.slow
def test_the_committed_notebook_02_grades_as_not_attempted_and_its_solutions_as_passed(tmp_path):
    copy = ROOT / "notebooks" / "exercises" / "02_losses_and_metrics.ipynb"
    solved = tmp_path / "solved_02_losses_and_metrics.ipynb"
    solved.write_text((ROOT / "notebooks" / "02_losses_and_metrics.ipynb").read_text())
    out = tmp_path / "grades.csv"
    assert grade.main([str(copy), str(solved), "--out", str(out), "--jobs", "2"]) == 0
    rows = read_grades(out)
    names = ["frequency_weighted_iou", "best_threshold", "empty_image_dice"]
    assert [rows[copy.name, n]["status"] for n in names] == ["not attempted"] * 3, rows
    assert [rows[solved.name, n]["status"] for n in names] == ["passed"] * 3, rows


def test_each_students_predictions_are_listed_beside_the_exercises_and_not_counted_as_passed(tmp_path, capsys):
    cells = [
        new_markdown_cell("# 99 · Planted exercises"),
        new_code_cell(f"import sys\n\nsys.path.insert(0, {str(FIXTURES)!r})"),
        new_markdown_cell("> **Predict first**: larger or smaller?"),
        new_code_cell('my_se_prediction = "larger"  # "larger" or "smaller"', metadata={"tags": ["prediction"]}),
        new_code_cell(SOLUTIONS["answer"], metadata={"tags": ["exercise"]}),
        new_code_cell(f"from planted_checks import check_answer\n\n{CHECKS['answer']}"),
    ]
    nbformat.write(new_notebook(cells=cells), tmp_path / "alice.ipynb")
    cells[3].source = notebooks.blank_predictions(cells[3].source)
    nbformat.write(new_notebook(cells=cells), tmp_path / "bob.ipynb")
    nbformat.write(new_notebook(cells=cells[:3] + cells[4:]), tmp_path / "carol.ipynb")

    assert grade.main([str(tmp_path), "--out", str(tmp_path / "grades.csv"), "--timeout", "30"]) == 0

    rows = read_grades(tmp_path / "grades.csv")
    predicted = {file: (row["status"], row["message"]) for (file, name), row in rows.items() if "prediction" in name}
    assert predicted == {
        "alice.ipynb": ("predicted", "larger"),
        "bob.ipynb": ("not attempted", "not written"),
        "carol.ipynb": (
            "error",
            "no cell tagged prediction sets my_se_prediction in this file: deleted, or not valid Python?",
        ),
    }
    assert {rows[file, "answer"]["status"] for file in predicted} == {"passed"}
    table = capsys.readouterr().out
    assert "prediction: my_se_prediction" in table and "pred" in table and "1/1" in table, table
