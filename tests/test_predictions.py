"""Predictions kept in variables: checked on the way in, blanked in the exercise copies, read by the grader, and a
reading that waits for one."""

import ast
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import notebooks
from unet_tutorial.course.predictions import (
    Prediction,
    blank_predictions,
    predicted,
    reading_after,
    recorded_predictions,
)

SIZES = ("larger", "smaller", "about the same")


@pytest.fixture
def shown(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda markdown: shown.append(markdown.data))
    return shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bigger", 'my_se_prediction = \'bigger\': write one of "larger", "smaller" or "about the same"'),
        (2, 'my_se_prediction = 2: write one of "larger", "smaller" or "about the same"'),
    ],
)
def test_a_prediction_outside_its_choices_is_refused_naming_the_variable_and_the_choices(value, message):
    with pytest.raises(ValueError) as error:
        Prediction("my_se_prediction", value, SIZES)
    assert str(error.value) == message


@pytest.mark.parametrize("value", [1.5, -0.1, True, "0.5"])
def test_a_number_must_be_a_number_in_its_range(value):
    with pytest.raises(ValueError, match=r"my_share = .*: write a number from 0 to 1"):
        Prediction("my_share", value, between=(0, 1))


def test_a_prediction_is_read_whatever_its_case_and_spaces():
    assert Prediction("my_se_prediction", " Larger ", SIZES).said() == "larger"
    assert Prediction("my_share", 0.25, between=(0, 1)).said() == "0.25"


def test_without_a_prediction_the_reading_asks_for_one_and_keeps_its_verdict(shown):
    said = [(Prediction("my_se_prediction", None, SIZES), "larger"), (Prediction("my_share", 0.5, between=(0, 1)), "")]
    reading_after(said, "**The verdict.** Numbers.", "Why.")
    (box,) = shown
    assert '`my_se_prediction` to "larger", "smaller" or "about the same"' in box and "my_share" not in box
    assert "verdict" not in box and "Why." not in box


def test_a_written_prediction_opens_the_reading_with_whether_it_held(shown):
    reading_after([(Prediction("my_se_prediction", "larger", SIZES), "larger")], "**The verdict.**", "Why.")
    reading_after([(Prediction("my_se_prediction", "smaller", SIZES), "larger")], "**The verdict.**")
    held, missed = shown
    assert held.startswith("*You predicted **larger**; this run: **larger**. It held.*")
    assert "**The verdict.**" in held and "Why." in held
    assert "It missed: what did you assume" in missed
    reading_after(
        [(Prediction("my_leak_prediction", "higher", ("higher", "within the noise")), "within the noise")], ""
    )
    assert "can neither confirm nor refute it" in shown[-1]
    share = Prediction("my_share", 0.3, between=(0, 1))
    reading_after([(share, "0.62", False), (share, "")], "Text.")
    assert "You predicted **0.3**; this run: **0.62**. It missed" in shown[-1]
    assert "You predicted **0.3**; this run cannot judge it" in shown[-1]


def test_the_exercise_copy_blanks_each_value_and_keeps_the_names_and_comments():
    source = (
        '# Before you run the next cell\nmy_se_prediction = "larger"  # "larger", "smaller" or "about the same"\n'
        'my_leak_prediction = (\n    "higher"\n)\nmy_share = 0.5'
    )
    blanked = blank_predictions(source)
    assert blanked == (
        '# Before you run the next cell\nmy_se_prediction = None  # "larger", "smaller" or "about the same"\n'
        "my_leak_prediction = None\nmy_share = None"
    )
    ast.parse(blanked)


def test_the_grader_reads_each_prediction_from_the_tagged_cells_only():
    notebook = new_notebook(
        cells=[
            new_markdown_cell("> **Predict first**"),
            new_code_cell('my_se_prediction = "larger"\nmy_share = 0.4', metadata={"tags": ["prediction"]}),
            new_code_cell("my_leak_prediction = None", metadata={"tags": ["prediction"]}),
            new_code_cell("my_step_prediction = 'fast' + 'er'", metadata={"tags": ["prediction"]}),
            new_code_cell("my_other = 'not a prediction'"),
            new_code_cell("my_broken = (", metadata={"tags": ["prediction"]}),
        ]
    )
    assert recorded_predictions(notebook) == [
        ("my_se_prediction", "larger"),
        ("my_share", "0.4"),
        ("my_leak_prediction", ""),
        ("my_step_prediction", "'fast' + 'er'"),
    ]


def test_every_prediction_cell_of_the_course_is_blank_in_its_copy_and_read_after_it():
    import jupytext

    found = 0
    for source in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py")):
        solved, copy = jupytext.read(source), notebooks.student_notebook(source)
        code = "\n".join(cell.source for cell in solved.cells if cell.cell_type == "code")
        for name, value in recorded_predictions(solved):
            found += 1
            assert value, f"{source.name}: {name} holds no prediction in the solution notebook"
            assert f'Prediction("{name}", {name}' in code, f"{source.name}: no reading_after reads {name}"
        assert [value for _, value in recorded_predictions(copy)] == [""] * len(recorded_predictions(solved))
    assert found >= 6


def test_a_cell_prints_its_answer_only_once_every_prediction_is_written(capsys):
    written, blank = Prediction("my_se_prediction", "larger", SIZES), Prediction("my_leak_prediction", None, SIZES)
    assert predicted(written) and capsys.readouterr().out == ""
    assert not predicted(written, blank)
    assert "wait for your prediction: set `my_leak_prediction` in the cell under" in capsys.readouterr().out
