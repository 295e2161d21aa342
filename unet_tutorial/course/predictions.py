"""Predict first, then read: a learner's prediction kept in a variable, and a reading that waits for it.

A "Predict first" box is followed by a cell tagged ``prediction`` that assigns the learner's answer,
``my_se_prediction = "larger"``. In the exercise copies that value is ``None`` (``blank_predictions``), so the
notebook still runs from top to bottom, training included, but the cell that measures the answer prints it only
once the prediction is written (``predicted``), and the section's reading (``reading_after``) shows only a box
asking for it: after "Run all" the verdict is not on screen before the learner has committed to one. A written
prediction opens the reading with a line saying whether it held. The grader (``grade``) lists each student's
predictions beside their exercises (``recorded_predictions``), read from the handed-in source, so a teacher can
tally a class's predictions without collecting paper.

What it leaves out: proof that a prediction was written before the run (a learner can edit it after; the
notebook only makes the honest order the easy one).
Taught in: the "Predict first" boxes of 03 (sections 8, 9, 11) and 04 (sections 6, 7, 9).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from textwrap import dedent

from unet_tutorial.course.reading import reading

PREDICTION_TAG = "prediction"  # the tag of a cell that holds predictions
UNDECIDED = ("within the noise",)  # an outcome that shows no direction: a direction predicted is not refuted


@dataclass(frozen=True)
class Prediction:
    """The learner's ``value`` for the variable ``name``: one of ``choices`` (phrases), or with ``between`` a
    number in that closed range; ``None`` while not written yet."""

    name: str
    value: object
    choices: tuple[str, ...] = ()
    between: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            return
        if self.between is not None:
            low, high = self.between
            if (
                isinstance(self.value, bool)
                or not isinstance(self.value, (int, float))
                or not low <= self.value <= high
            ):
                raise ValueError(f"{self.name} = {self.value!r}: write a number from {low:g} to {high:g}")
        elif not isinstance(self.value, str) or self.value.strip().lower() not in self.choices:
            raise ValueError(f"{self.name} = {self.value!r}: write one of {self.wanted()}")

    def wanted(self) -> str:
        """What may be written, in words: ``"larger", "smaller" or "about the same"``."""
        if self.between is not None:
            return f"a number from {self.between[0]:g} to {self.between[1]:g}"
        quoted = [f'"{choice}"' for choice in self.choices]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]

    def said(self) -> str:
        return f"{self.value:g}" if self.between is not None else str(self.value).strip().lower()


def predicted(*predictions: Prediction) -> bool:
    """Whether every prediction is written; if not, a line saying what the cell's numbers wait for. A cell that
    prints a "Predict first" box's answer prints it under ``if predicted(...):``."""
    missing = [prediction.name for prediction in predictions if prediction.value is None]
    if missing:
        names = " and ".join(f"`{name}`" for name in missing)
        print(
            f'(This cell\'s results wait for your prediction: set {names} in the cell under the "Predict first" '
            "box, run it, then run this cell again.)"
        )
    return not missing


def reading_after(said: list[tuple], text: str, more: str = "") -> None:
    """The reading ``text`` (and its folded ``more``, as ``reading``), opened by a line per prediction saying
    whether it held; while any prediction is ``None``, only a box asking for them.

    ``said``: ``(prediction, outcome)`` pairs, the outcome one of its choices, or ``(prediction, outcome, held)``
    for a number (``held``: whether it came close enough); an outcome ``""`` where this run cannot judge it.
    """
    missing = [prediction for prediction, *_ in said if prediction.value is None]
    if missing:
        wanted = "; ".join(f"`{p.name}` to {p.wanted()}" for p in missing)
        reading(f"""
        > **Predict first.** This reading waits for your prediction: in the cell under the "Predict first" box, set
        > {wanted}; run that cell, then run this one again.
        """)
        return
    lines = []
    for prediction, outcome, *held in said:
        if not outcome:
            lines.append(f"*You predicted **{prediction.said()}**; this run cannot judge it (the reading says why).*")
            continue
        hit = held[0] if held else prediction.said() == outcome
        if hit:
            verdict = "It held."
        elif outcome in UNDECIDED:  # a direction predicted, none shown: not borne out, not refuted either
            verdict = "This run can neither confirm nor refute it: what would it take to tell?"
        else:
            verdict = "It missed: what did you assume that the run did not bear out?"
        lines.append(f"*You predicted **{prediction.said()}**; this run: **{outcome}**. {verdict}*")
    reading("\n".join(f"{line}  " for line in lines) + f"\n\n{dedent(text).strip()}", more)


def blank_predictions(source: str) -> str:
    """The exercise copy of a prediction cell: each top-level assignment's value replaced by ``None``, the names,
    the comments and everything else as written."""
    lines = source.splitlines()
    for node in reversed(ast.parse(source).body):  # from the end, so that earlier positions stay valid
        if isinstance(node, ast.Assign):
            first, last = node.lineno - 1, node.end_lineno - 1
            equals = lines[first].index("=", node.targets[-1].end_col_offset)
            lines[first : last + 1] = [lines[first][: equals + 1] + " None" + lines[last][node.end_col_offset :]]
    return "\n".join(lines)


def recorded_predictions(notebook) -> list[tuple[str, str]]:
    """``(variable, what it holds)`` for each assignment in the notebook's cells tagged ``prediction``, read from
    the source, not run: ``""`` for ``None``, the value's source where it is not a plain literal."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or PREDICTION_TAG not in cell.metadata.get("tags", []):
            continue
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:
            continue
        for node in body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):  # not a plain literal
                    value = ast.get_source_segment(cell.source, node.value)
                found.append((node.targets[0].id, "" if value is None else str(value)))
    return found
