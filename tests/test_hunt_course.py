"""Bad input to the course's tooling, without kernels: the grader's arguments and odd files, ``compare`` with
scores that are not numbers, and a notebook source that is not UTF-8."""

import math
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tools.settings import notebook_settings
from unet_tutorial.course import cell_runner, grade
from unet_tutorial.course.reading import compare
from unet_tutorial.utils import MODE_ENV, SMOKE_ENV


@pytest.fixture
def submission(tmp_path) -> Path:
    notebook = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("check_double(x)")])
    nbformat.write(notebook, tmp_path / "alice.ipynb")
    return tmp_path / "alice.ipynb"


@pytest.mark.parametrize("flags", [["--timeout", "nan"], ["--cell-timeout", "nan"], ["--timeout", "inf"],
                                   ["--cell-timeout", "-1"], ["--jobs", "0"]])  # fmt: skip
def test_time_limits_that_are_not_finite_positive_seconds_are_refused_before_grading(
    submission, flags, capsys, monkeypatch
):
    # nan slipped past "min(...) <= 0": subprocess's wait(timeout=nan) raised ValueError after the kernel started
    monkeypatch.setattr(grade, "run_notebook", None)  # no kernel may start
    assert grade.main([str(submission), *flags, "--out", str(submission.parent / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade: ") and err.count("\n") == 1 and flags[0] in err, err


def test_an_out_that_cannot_be_written_is_refused_before_grading(submission, tmp_path, capsys, monkeypatch):
    # it used to fail only after every notebook had run: an afternoon of grading, then no CSV
    monkeypatch.setattr(grade, "run_notebook", None)
    (tmp_path / "a_file").write_text("not a folder")
    assert grade.main([str(submission), "--out", str(tmp_path / "a_file" / "grades.csv")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot be written" in err and err.count("\n") == 1, err


def test_a_notebook_saved_with_a_byte_order_mark_or_odd_authors_is_graded(submission, monkeypatch):
    monkeypatch.setattr(grade, "run_notebook", lambda *args: ({}, "stopped on purpose"))
    notebook = nbformat.read(submission, as_version=4)
    notebook.metadata["authors"] = 5  # edited by hand: not nbformat's list of {"name": ...}
    bom = submission.with_name("bob.ipynb")
    bom.write_bytes(b"\xef\xbb\xbf" + nbformat.writes(notebook).encode())  # Windows editors add one
    rows = grade.grade_file(bom)
    assert [(row.student, row.exercise, row.status) for row in rows] == [("bob", "double", "not reached")], rows


def test_the_kernel_runs_in_smoke_mode_whatever_mode_the_teachers_shell_forces(tmp_path, monkeypatch):
    monkeypatch.setenv(MODE_ENV, "gpu")  # left over from reading a notebook's GPU settings: full-size runs
    env = cell_runner._kernel_env(tmp_path, threads=1)
    assert env[SMOKE_ENV] == "1" and env[MODE_ENV] == "smoke"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_compare_names_the_images_whose_scores_are_not_numbers(bad):
    # it used to read "B scored higher than A by nan Dice (± nan over 3 images)"
    with pytest.raises(ValueError, match=r"compare: image 2 of ImageNet scored (nan|inf).*not finite"):
        compare("ImageNet", [0.5, bad, 0.7], "random", [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match=r"images 1, 3 of random"):
        compare("ImageNet", [0.5, 0.6, 0.7], "random", [bad, 0.5, bad])


def test_compare_says_when_two_arms_scored_the_same():
    gap = compare("A", [0.5, 0.6, 0.7], "B", [0.5, 0.6, 0.7])
    assert not gap.clear and gap.sentence() == "A and B scored the same on all 3 images"
    assert compare("A", [0.5, 0.7], "B", [0.6, 0.6]).sentence() == "A and B scored the same on average over 2 images"


def test_a_settings_source_is_read_as_utf8_and_a_bad_byte_names_the_file(tmp_path):
    good = tmp_path / "good.py"
    good.write_bytes('# %% tags=["settings"]\nTITLE = "02 · Losses"\n'.encode())
    assert notebook_settings(good, "smoke") == {"TITLE": "02 · Losses"}
    bad = tmp_path / "bad.py"
    bad.write_bytes('# %% tags=["settings"]\nTITLE = "é"\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"bad.py is not UTF-8 text"):
        notebook_settings(bad, "smoke")
