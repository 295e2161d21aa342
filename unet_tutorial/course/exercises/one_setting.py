"""Self-checks of the "change one setting, predict, retrain" exercises (notebook 03's experiment 3, notebook 04's
exercise 2): a prediction with a reason written before training, the gap to the run that differs in that one
setting only, and the learner's reading of it.

The three checks are the same skill in both notebooks; a notebook names its setup (``notebook="03"`` or ``"04"``):
the setting the learner changes, the run they compare with, and where their scores come from, so that every
message speaks the notebook's own names. A miss diagnoses the method and never prints the expected reading;
``reveal=True`` on the gap check shows the call it expects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from unet_tutorial.course.exercises import passed
from unet_tutorial.course.reading import Gap, compare

VERDICTS = ("higher", "lower", "within the noise")  # a reading of a gap, as my_prediction and my_verdict write it


@dataclass(frozen=True)
class Setup:
    """One notebook's exercise, in its own names."""

    setting: str  # the learner's variable, e.g. "MY_LR_ENCODER"
    default: str  # the notebook's setting it changes, e.g. "LR_ENCODER"
    examples: str  # what to try, for a message
    low: float  # the values that make sense, inclusive
    high: float
    reference: str  # the run that differs from the learner's in this one setting only
    reference_expr: str  # how the notebook names that run's scores
    scores_from: str  # where the learner's own per-image scores come from
    maker: str  # the function that trained the learner's run
    first: str | None = None  # the run's first epoch in words, where the exercise reads it too ("after the first ...")
    first_reference_expr: str | None = None  # the reference run's scores at that epoch
    first_scores_from: str | None = None  # the learner's own scores at that epoch


SETUPS = {
    "03": Setup(
        "MY_DICE_WEIGHT",
        'LOSS_WEIGHTS["dice"]',
        "0 (BCE alone) or 3",
        0.0,
        10.0,
        "the reference (section 7's training with the recipe's loss)",
        "reference_scores",
        "dice_per_image(my_probs, val_masks), from your model's best epoch",
        "retrain",
    ),
    "04": Setup(
        "MY_LR_ENCODER",
        "LR_ENCODER",
        "LR, LR * 10 or LR_ENCODER / 10",
        1e-7,
        0.1,
        "section 7's BatchNorm-frozen copy",
        "reference_scores",
        'my_run["val_dice_of_each_image"][-1], your copy\'s last epoch',
        "continue_after_frozen",
        "after the first unfrozen epoch",
        "reference_first",
        'my_run["val_dice_of_each_image"][0], your copy\'s first unfrozen epoch',
    ),
}


EPOCHS = ("last", "first")  # which epoch of the learner's run a gap or verdict reads


def _setup(notebook: str, epoch: str = "last") -> Setup:
    if notebook not in SETUPS:
        raise ValueError(f"notebook={notebook!r}: the exercise exists in notebooks {sorted(SETUPS)}")
    if epoch not in EPOCHS or (epoch == "first" and SETUPS[notebook].first is None):
        readable = [e for e in EPOCHS if e == "last" or SETUPS[notebook].first is not None]
        raise ValueError(f"epoch={epoch!r}: notebook {notebook}'s exercise reads the epochs {readable}")
    return SETUPS[notebook]


def _names(epoch: str) -> tuple[str, str, str, str]:
    """The learner's names at that epoch: the scores, the gap, the prediction and the verdict."""
    mine = "my_first_" if epoch == "first" else "my_"
    return tuple(mine + name for name in ("scores", "gap", "prediction", "verdict"))


def _verdict(name: str, value, setup: Setup) -> str:
    said = value.strip().lower() if isinstance(value, str) else value
    assert said in VERDICTS, (
        f"{name} is {value!r}: write one of " + ", ".join(f'"{v}"' for v in VERDICTS) + f" (your run against "
        f"{setup.reference})"
    )
    return said


def check_one_setting_prediction(
    my_value,
    my_prediction: str,
    my_reason: str,
    default: float,
    *,
    notebook: str = "04",
    my_first_prediction: str | None = None,
) -> None:
    """Before training: the changed setting (a number other than the notebook's ``default``, within the values that
    make sense), the predicted reading and a reason in a sentence, recorded before the run; where the exercise reads
    the first epoch too (notebook 04), ``my_first_prediction`` is the reading predicted there."""
    setup = _setup(notebook, "first" if my_first_prediction is not None else "last")
    number = isinstance(my_value, (int, float, np.floating, np.integer)) and not isinstance(my_value, bool)
    assert number and math.isfinite(my_value), (
        f"{setup.setting} is {my_value!r}: give it a number, e.g. {setup.examples}"
    )
    assert my_value != default, (
        f"{setup.setting} is {setup.default} itself: your run would repeat {setup.reference}. Change the one setting"
    )
    assert setup.low <= my_value <= setup.high, (
        f"{setup.setting} is {my_value:g}: the values that make sense here lie between {setup.low:g} and "
        f"{setup.high:g}; take one of the exercise's, {setup.examples}"
    )
    said = _verdict("my_prediction", my_prediction, setup)
    first = "" if my_first_prediction is None else _verdict("my_first_prediction", my_first_prediction, setup)
    words = my_reason.split() if isinstance(my_reason, str) else []
    assert len(words) >= 4, (
        f"my_reason is {my_reason!r}: write one sentence of your own, why you expect that (a prediction with a "
        "reason is one you can learn from when it misses)"
    )
    print(
        f"Recorded before training: {setup.setting} = {my_value:g} ({setup.default}: {default:g}); you predict "
        + (f'"{first}" {setup.first}, and ' if first else "")
        + f'"{said}"'
        + (" at the end." if first else ".")
    )
    passed("one_setting_prediction")


def _scores(my_scores, setup: Setup) -> np.ndarray:
    """The learner's per-image scores as floats, or a miss that says what they should be."""
    if isinstance(my_scores, torch.Tensor):
        my_scores = my_scores.detach().cpu()
    try:
        return np.asarray(my_scores, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(
            f"my_scores is a {type(my_scores).__name__}: it should be the Dice of each validation image, "
            f"{setup.scores_from}"
        ) from None


def _assert_gap(my_gap) -> None:
    """A Gap, by what it holds (a Gap of a reloaded module is one too)."""
    fields = ("name_a", "name_b", "difference", "standard_error", "images", "groups", "clear")
    assert isinstance(my_gap, Gap) or all(hasattr(my_gap, field) for field in fields), (
        f"my_gap is a {type(my_gap).__name__}: build it with compare(...), which returns a Gap (the difference, its "
        "standard error and the bar)"
    )


def _mean_gap(scores_a: np.ndarray, scores_b) -> float:
    return float(np.mean(scores_a - np.asarray(scores_b, dtype=float)))


def check_one_setting_gap(
    my_gap,
    my_scores,
    reference,
    val_cars: Sequence[str],
    *,
    others: dict[str, np.ndarray] | None = None,
    notebook: str = "04",
    epoch: str = "last",
    reveal: bool = False,
) -> None:
    """The gap between the learner's run (one setting changed) and the notebook's run that differs in it only.

    ``my_gap`` must be ``compare(...)`` of ``my_scores`` (the learner's run, one score per validation image) first
    and ``reference`` second, with the noise counted over ``val_cars``. ``others``: the notebook's other runs
    scored on the same images (name -> scores), so that a gap taken against one of them is named. ``epoch="first"``:
    the gap after the run's first epoch (``my_first_gap`` of ``my_first_scores``), where the exercise reads it.
    """
    setup = _setup(notebook, epoch)
    scores_name, gap_name, _, _ = _names(epoch)
    scores_from, reference_expr = (
        (setup.first_scores_from, setup.first_reference_expr)
        if epoch == "first"
        else (setup.scores_from, setup.reference_expr)
    )
    scores = _scores(my_scores, setup)
    reference = np.asarray(reference, dtype=float)
    assert np.isfinite(scores).all(), (
        f"{scores_name} holds {int((~np.isfinite(scores)).sum())} scores that are not finite (NaN): score every "
        "validation image"
    )
    assert scores.ndim == 1, (
        f"{scores_name} has shape {scores.shape}: one score per validation image is 1-D; take {scores_from}"
    )
    assert len(scores) == len(reference), (
        f"{scores_name} holds {len(scores)} scores and {setup.reference} {len(reference)}, one per validation image: "
        f"take {scores_from}"
    )
    telling = len(set(scores.tolist())) > 1  # scores that vary: an untrained model's all-0 can match by chance
    assert not (telling and np.array_equal(scores, reference)), (
        f"your run scored every image exactly as {setup.reference}: nothing was changed. Set {setup.setting} to "
        f"another value than {setup.default} and pass it to {setup.maker}"
    )
    for name, other in (others or {}).items():
        assert not (telling and np.array_equal(scores, np.asarray(other, dtype=float))), (
            f"{scores_name} are {name}'s scores, image for image: take your own run's, {scores_from}"
        )
    _assert_gap(my_gap)
    assert my_gap.images == len(scores), (
        f"{gap_name} pairs {my_gap.images} images; the validation set has {len(scores)}: compare all of them"
    )
    right = compare("yours", scores, "the reference", reference, groups=list(val_cars), group_name="cars")
    call = f'compare("yours", {scores_name}, "{setup.reference}", {reference_expr}, groups=val_cars, group_name="cars")'
    stuck = f"Stuck? {call} is the gap the check expects" if reveal else "Stuck? Pass reveal=True to the check"
    if not math.isclose(my_gap.difference, right.difference, abs_tol=1e-9):
        if math.isclose(my_gap.difference, -right.difference, abs_tol=1e-9):
            raise AssertionError(
                f"your gap is {setup.reference} minus yours: put your run first, so that a positive gap means yours "
                f"scored higher. {stuck}"
            )
        for name, other in (others or {}).items():
            if math.isclose(abs(my_gap.difference), abs(_mean_gap(scores, other)), abs_tol=1e-9):
                raise AssertionError(
                    f"you compared your run with {name}: the run that differs from yours in one setting only is "
                    f"{setup.reference}, {reference_expr}. {stuck}"
                )
        raise AssertionError(
            f"{gap_name}'s difference, {my_gap.difference:+.4f}, is not the mean of your scores minus those of "
            f"{setup.reference}, image by image: pass {scores_name} and {reference_expr} to compare. {stuck}"
        )
    cars = len(set(val_cars))
    assert my_gap.groups is not None, (
        f"{gap_name} counts its noise over the {my_gap.images} images, as if each were independent, but a car's "
        f'views share its shape and colours: pass groups=val_cars and group_name="cars", and the noise is counted '
        f"over the {cars} cars. {stuck}"
    )
    assert my_gap.groups == cars, (
        f"{gap_name} counts its noise over {my_gap.groups} groups; the validation images come from {cars} cars: "
        f"pass groups=val_cars, one car per image. {stuck}"
    )
    assert math.isclose(my_gap.standard_error, right.standard_error, rel_tol=1e-6, abs_tol=1e-12), (
        f"{gap_name}'s standard error, {my_gap.standard_error:.4f}, is not the one over cars: groups must give each "
        f"image its own car, in the order of {scores_name} (groups=val_cars), and compare(...) computes the rest. "
        f"{stuck}"
    )
    assert "section 7" not in my_gap.name_a.lower(), (
        f"{gap_name}'s first name is {my_gap.name_a!r}, but the first scores are yours: name the two in the order you "
        "pass them, so that its printed line reads the right way round"
    )
    print(f"your gap: {my_gap.short(named=True)}")
    passed("one_setting_gap")


def _reading_of(gap: Gap) -> str:
    if not gap.clear:
        return "within the noise"
    return "higher" if gap.difference > 0 else "lower"


def check_one_setting_verdict(
    my_verdict: str,
    my_prediction: str,
    my_gap: Gap,
    *,
    notebook: str = "04",
    epoch: str = "last",
    my_reason: str | None = None,
) -> None:
    """The learner's reading of their gap, "higher", "lower" or "within the noise", must be the gap's own (clear
    beyond its bar, and which way); then how the prediction written before training did, and ``my_reason`` (given)
    handed back to be reread against it. ``epoch="first"``: the reading after the run's first epoch
    (``my_first_verdict`` of ``my_first_gap``)."""
    setup = _setup(notebook, epoch)
    _, gap_name, prediction_name, verdict_name = _names(epoch)
    prediction = _verdict(prediction_name, my_prediction, setup)
    verdict = _verdict(verdict_name, my_verdict, setup)
    _assert_gap(my_gap)
    assert my_gap.groups is not None, (
        f"{gap_name} counts its noise over images: build it over cars first, as check_one_setting_gap asks"
    )
    truth = _reading_of(my_gap)
    if verdict != truth:
        if truth == "within the noise":
            sign = "higher" if my_gap.difference > 0 else "lower"
            raise AssertionError(
                f'{verdict_name} says "{verdict}": '
                + (
                    "that reads the sign of the mean difference without its noise"
                    if verdict == sign
                    else "the mean difference is not even that way"
                )
                + ". A gap counts only once it is more standard errors than its bar: compare the two numbers "
                f"{gap_name}.short() prints"
            )
        if verdict == "within the noise":
            raise AssertionError(
                f'{verdict_name} says "within the noise", but your gap is more standard errors than its bar: it is '
                "beyond the noise. Which way?"
            )
        raise AssertionError(
            f'{verdict_name} says "{verdict}": read the sign again. The gap is your run minus {setup.reference} (the '
            "first name minus the second): a positive difference means yours scored higher"
        )
    if prediction == truth:
        outcome = "as you predicted"
    elif truth == "within the noise":  # a direction predicted, none shown: not borne out, not refuted either
        outcome = f'you had predicted "{prediction}", which this run can neither confirm nor refute'
    else:
        outcome = f'your prediction missed: you had predicted "{prediction}"'
    close = ", close to the bar: another seed can land on the other side" if my_gap.near else ""
    when = f" {setup.first}" if epoch == "first" else ""
    print(f"Your run against {setup.reference}{when}: {truth} ({my_gap.short()}){close}; {outcome}.")
    if truth != "within the noise":
        print(
            f"This bar counts the noise of which {my_gap.group_name} were scored, not training's own: another seed "
            "(or batch order) of both runs can move the gap, and a class that tallies its runs measures that."
        )
    if truth == "within the noise" and my_gap.units < 2:
        print(f"With one of the {my_gap.group_name} there is no noise estimate: a verdict needs two or more.")
    elif truth == "within the noise":
        print(
            f"Within the noise is not 'no effect': with these {my_gap.units} {my_gap.group_name} any measured gap "
            f"under about {my_gap.smallest_clear:.2g} stays within the noise, whatever the true one."
        )
    if my_reason:
        print(
            f'Your reason, written before the run: "{my_reason.strip()}". Does the run bear it out, or what did it '
            "leave out? Write one sentence in your notes (and on the class's tally sheet)."
        )
    passed("one_setting_verdict")
