"""Notebook 03's experiment 6: ``check_threshold_gain`` names every planted slip, even on a smoke run where each
slip gives the right value (a model sure of every pixel, so every gain is 0), and accepts the right method."""

import itertools

import numpy as np
import pytest
import torch

from unet_tutorial.course.exercises import carvana
from unet_tutorial.metrics import dice_score


def car_of(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


# --- Experiment 6: held_out_gain(val_ids, val_probs, val_masks, thresholds) -> (threshold, gain) ----------------
def rows_of(val_ids) -> dict[str, torch.Tensor]:
    """The boolean rows each method picks on or measures on."""
    cars = sorted({car_of(i) for i in val_ids})
    n = len(val_ids)

    def cars_rows(chosen):
        return torch.tensor([car_of(i) in chosen for i in val_ids])

    tune, tune_up, first_images = (
        cars_rows(cars[: len(cars) // 2]),
        cars_rows(cars[: (len(cars) + 1) // 2]),
        torch.arange(n) < n // 2,
    )
    return {
        "tune": tune,
        "rest": ~tune,
        "all": torch.ones(n, dtype=torch.bool),
        "none": torch.zeros(n, dtype=torch.bool),
        "first images": first_images,
        "last images": ~first_images,
        "tune up": tune_up,
        "rest up": ~tune_up,
    }


def gain_method(pick_on="tune", measure_on="rest", report=lambda t, gain, dice: (t, gain)):
    """A held_out_gain: the best threshold (the first of ties) on rows pick_on, measured on rows measure_on."""

    def held_out_gain(val_ids, val_probs, val_masks, thresholds):
        rows = rows_of(val_ids)
        p, m = rows[pick_on], rows[measure_on]
        t = float(thresholds[int(np.argmax([dice_score(val_probs[p] > t, val_masks[p]) for t in thresholds]))])
        dice = dice_score(val_probs[m] > t, val_masks[m])
        return report(t, dice - dice_score(val_probs[m] > 0.5, val_masks[m]), dice)

    return held_out_gain


def crashes(val_ids, val_probs, val_masks, thresholds):
    return {"car0": 1}[car_of(val_ids[0])]


right_held_out_gain = gain_method()
# slip -> (the learner's function, a phrase the check's message must hold)
THRESHOLD_SLIPS = {
    "in sample": (gain_method(measure_on="tune"), "the cars the threshold was picked on"),
    "sign": (gain_method(report=lambda t, g, d: (t, -g)), "the sign is reversed"),
    "measured on all": (gain_method(measure_on="all"), "the gain on all the validation cars"),
    "a Dice": (gain_method(report=lambda t, g, d: (t, d)), "a Dice, not a gain"),
    "the threshold": (gain_method(report=lambda t, g, d: (t, t)), "the threshold itself"),
    "percent": (gain_method(report=lambda t, g, d: (t, 100 * g)), "looks like a percentage"),
    "swapped halves": (gain_method("rest", "tune"), "the halves are swapped"),
    "picked on all": (gain_method("all", "rest"), "picked on all the validation cars"),
    "section 10": (gain_method("all", "all"), "section 10's gain"),
    "split by images": (gain_method("first images", "last images"), "split the *images*"),
    "rounded up": (gain_method("tune up", "rest up"), "one car too many"),
    "order": (gain_method(report=lambda t, g, d: (g, t)), "the two are swapped"),
    "gain only": (gain_method(report=lambda t, g, d: g), "return two numbers"),
    "empty half": (gain_method(measure_on="none"), "a Dice of no images"),
    "crash": (crashes, "crashes raised KeyError"),
    "threshold 0.5": (lambda *args: (0.5, 0.0), "that threshold is not the best of `thresholds`"),
    "wrong gain": (gain_method(report=lambda t, g, d: (t, 0.123)), "the threshold is right, the gain is not"),
}


def sure_smoke_run(val_ids):
    """A model sure of every pixel: every threshold ties, so every gain is 0 and each slip's value is right."""
    masks = torch.zeros(len(val_ids), 1, 8, 8, dtype=torch.uint8)
    masks[:, :, 2:6, 2:6] = 1
    return masks.half() * 0.98 + 0.01, masks


def threshold_data(val_ids, seed):
    """Probabilities whose objects sit at a different level in each image."""
    generator = torch.Generator().manual_seed(seed)
    n = len(val_ids)
    masks = torch.zeros(n, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    level = torch.rand(n, 1, 1, 1, generator=generator) * 0.8 + 0.1
    objects = level + 0.3 * torch.rand(n, 1, 8, 8, generator=generator) - 0.15
    probs = torch.where(masks > 0, objects, 0.4 * torch.rand(n, 1, 8, 8, generator=generator)).clamp(0, 1)
    return probs.half(), masks.to(torch.uint8)  # as predict_loader returns them


def test_the_threshold_case_tells_every_slip_from_the_answer():
    val_ids, probs, masks = carvana._threshold_case()
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    assert ((probs.float()[..., None] - torch.tensor(grid)).abs() > 0.01).all()  # no pixel near a threshold
    scores = sorted(dice_score(probs[rows_of(val_ids)["tune"]] > t, masks[rows_of(val_ids)["tune"]]) for t in grid)
    assert scores[-1] - scores[-2] > 0.002  # one best threshold, by a margin
    right = right_held_out_gain(val_ids, probs, masks, grid)
    assert right[0] != 0.5 and abs(right[1]) > 0.05, right
    answers = {
        name: tuple(function(val_ids, probs, masks, grid))
        for name, (function, _) in THRESHOLD_SLIPS.items()
        if name not in ("gain only", "crash", "empty half")
    }
    answers["right"] = right
    for (name, a), (other, b) in itertools.combinations(answers.items(), 2):  # each slip its own numbers
        assert abs(a[0] - b[0]) > 1e-6 or abs(a[1] - b[1]) > 0.005, (name, a, other, b)


def test_threshold_gain_accepts_the_right_method(smoke_val_ids, capsys):
    carvana.check_threshold_gain(right_held_out_gain, *carvana._threshold_case())
    carvana.check_threshold_gain(right_held_out_gain, smoke_val_ids, *sure_smoke_run(smoke_val_ids))
    for seed in range(5):
        carvana.check_threshold_gain(right_held_out_gain, smoke_val_ids, *threshold_data(smoke_val_ids, seed))
    assert capsys.readouterr().out.count("passed") == 7


def test_threshold_gain_accepts_any_of_tied_thresholds(smoke_val_ids):
    def last_of_ties(val_ids, val_probs, val_masks, thresholds):  # keeps the last best threshold, not the first
        t, _ = right_held_out_gain(val_ids, val_probs, val_masks, thresholds[::-1])
        rest = rows_of(val_ids)["rest"]
        return t, dice_score(val_probs[rest] > t, val_masks[rest]) - dice_score(val_probs[rest] > 0.5, val_masks[rest])

    probs, masks = sure_smoke_run(smoke_val_ids)
    carvana.check_threshold_gain(last_of_ties, smoke_val_ids, probs, masks)
    assert last_of_ties(smoke_val_ids, probs, masks, np.array([0.05, 0.95]))[0] == 0.95


@pytest.mark.parametrize("slip", THRESHOLD_SLIPS)
def test_threshold_gain_names_each_slip_even_where_the_run_cannot_tell(slip, smoke_val_ids):
    function, phrase = THRESHOLD_SLIPS[slip]
    with pytest.raises(AssertionError) as error:
        carvana.check_threshold_gain(function, smoke_val_ids, *sure_smoke_run(smoke_val_ids))
    message = str(error.value)
    assert phrase in message and "on the check's test case" in message, message
    assert "reveal=True" in message and "Expected" not in message, message
    if slip not in ("order", "gain only"):  # those two show the learner's own gain, which is right
        assert "+0.1458" not in message, message


@pytest.mark.parametrize(
    "slip",
    [
        "in sample",
        "sign",
        "measured on all",
        "swapped halves",
        "picked on all",
        "section 10",
        "split by images",
        "rounded up",
        "percent",
    ],
)
def test_those_slips_give_the_right_value_on_the_smoke_run(slip, smoke_val_ids):
    probs, masks = sure_smoke_run(smoke_val_ids)  # why a value-only check could not reject them
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    _, gain = THRESHOLD_SLIPS[slip][0](smoke_val_ids, probs, masks, grid)
    assert gain == right_held_out_gain(smoke_val_ids, probs, masks, grid)[1] == 0


def test_threshold_gain_checks_the_run_too(smoke_val_ids):
    case = carvana._threshold_case()
    right_on_case = right_held_out_gain(*case, np.round(np.arange(0.05, 0.96, 0.05), 2))

    def answers_the_test_case(val_ids, val_probs, val_masks, thresholds):
        return right_on_case

    with pytest.raises(AssertionError, match="on your run: you returned threshold 0.45"):
        carvana.check_threshold_gain(answers_the_test_case, smoke_val_ids, *threshold_data(smoke_val_ids, 0))


def test_threshold_gain_reveals_the_expected_values_on_request(smoke_val_ids):
    with pytest.raises(AssertionError, match=r"the sign is reversed.*Expected: threshold 0.45, gain \+0.1458"):
        carvana.check_threshold_gain(
            THRESHOLD_SLIPS["sign"][0], smoke_val_ids, *sure_smoke_run(smoke_val_ids), reveal=True
        )


def test_threshold_gain_with_one_validation_car_checks_its_own_case_only(capsys):
    val_ids = [f"car0_{view:02d}" for view in range(1, 17)]
    carvana.check_threshold_gain(right_held_out_gain, val_ids, *threshold_data(val_ids, seed=0))
    assert "only one validation car" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="the sign is reversed"):
        carvana.check_threshold_gain(THRESHOLD_SLIPS["sign"][0], val_ids, *threshold_data(val_ids, seed=0))
