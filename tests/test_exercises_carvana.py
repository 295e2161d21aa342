"""Notebook 03's self-checks: each message they can give, every plausible wrong answer, and failing in smoke mode.

The notebook's smoke settings hold out two validation cars, so that the checks of experiments 2 and 3 have
something to reject in CI: the fixture ``smoke_val_ids`` reads those settings from the notebook's own settings
cell and splits a folder of that many cars as the notebook does; the wrong answers below are planted on it.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from tools.settings import notebook_settings
from unet_tutorial.course.exercises import carvana
from unet_tutorial.data import carvana_split
from unet_tutorial.metrics import dice_score

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_carvana_binary.py"


def reference_edge_dice(preds, targets, width=3):
    band = carvana._edge_band(targets.float(), width)
    return dice_score(preds.float(), targets.float().masked_fill(~band, 255), ignore_index=255)


def edge_dice_with(band_of, pooled=False):
    """An edge Dice whose band is band_of(preds, targets, width): the learner's possible mistakes."""

    def edge_dice(preds, targets, width=3):
        return carvana._band_dice(preds, targets, band_of(preds, targets, width), pooled=pooled)

    return edge_dice


def zero_padded_band(preds, targets, width):
    padded = torch.nn.functional.pad(targets, (width,) * 4)  # the photo's border becomes an outline
    return carvana._edge_band(padded, width)[..., width:-width, width:-width]


def per_image_edge_dice(preds, targets, width=3):
    band = carvana._edge_band(targets, width)
    return torch.tensor([carvana._band_dice(p[None], t[None], b[None]) for p, t, b in zip(preds, targets, band)])


def first_expected_edge_dice() -> str:
    preds, targets, width = carvana._edge_dice_cases()[0]
    return f"{reference_edge_dice(preds, targets, width):.4f}"


# mistake -> (the learner's function, a phrase the check's message must hold)
EDGE_DICE_MISTAKES = {
    "whole image": (lambda preds, targets, width=3: dice_score(preds, targets), "plain Dice"),
    "outside only": (edge_dice_with(lambda p, t, w: carvana._edge_band(t, w) & (t == 0)), "outside the car only"),
    "inside only": (edge_dice_with(lambda p, t, w: carvana._edge_band(t, w) & (t == 1)), "inside the car only"),
    "width ignored": (edge_dice_with(lambda p, t, w: carvana._edge_band(t, 1)), "one pixel wide"),
    "zero padding": (edge_dice_with(zero_padded_band), "photo's border as outline"),
    "predicted outline": (edge_dice_with(lambda p, t, w: carvana._edge_band(p, w)), "*predicted* outline"),
    "inverted band": (edge_dice_with(lambda p, t, w: ~carvana._edge_band(t, w)), "*except* the band"),
    "pooled": (edge_dice_with(lambda p, t, w: carvana._edge_band(t, w), pooled=True), "pooled over all images"),
    "per-image values": (per_image_edge_dice, "return one number"),
    "unrecognised": (lambda preds, targets, width=3: 0.5, "is not the Dice on the band"),
}


def test_edge_dice_accepts_the_right_answer(capsys):
    carvana.check_edge_dice(reference_edge_dice)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", EDGE_DICE_MISTAKES)
def test_edge_dice_names_each_mistake_without_the_expected_value(mistake):
    edge_dice, phrase = EDGE_DICE_MISTAKES[mistake]
    with pytest.raises(AssertionError) as error:
        carvana.check_edge_dice(edge_dice)
    message = str(error.value)
    assert phrase in message, message
    assert "reveal=True" in message and "Expected" not in message, message
    assert first_expected_edge_dice() not in message, message


def test_edge_dice_reveals_the_expected_value_on_request():
    with pytest.raises(AssertionError, match=f"Expected: {first_expected_edge_dice()}"):
        carvana.check_edge_dice(EDGE_DICE_MISTAKES["unrecognised"][0], reveal=True)


@pytest.fixture(scope="module")
def smoke_val_ids(tmp_path_factory) -> list[str]:
    """The validation ids of the notebook's smoke run: its SAMPLE_CARS cars split by its VAL_FRACTION."""
    settings = notebook_settings(NOTEBOOK, "smoke")
    root = tmp_path_factory.mktemp("carvana")
    (root / "train").mkdir()
    for car in range(settings["SAMPLE_CARS"]):
        for view in range(1, 17):
            (root / "train" / f"car{car}_{view:02d}.jpg").touch()
    _, val_ids = carvana_split(root, val_fraction=settings["VAL_FRACTION"], seed=settings["SEED"])
    return val_ids


def test_smoke_mode_holds_out_two_validation_cars(smoke_val_ids):
    cars = sorted({i.rsplit("_", 1)[0] for i in smoke_val_ids})
    assert len(cars) >= 2, f"smoke mode validates on {cars}: experiments 2 and 3 would have nothing to reject"


def view_scores(val_ids, weak: dict[int, dict[int, float]]) -> np.ndarray:
    """Per-image Dice: car k (in sorted order) scores weak[k][view], else a high score that rises with the view."""
    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    return np.array(
        [weak.get(cars.index(i.rsplit("_", 1)[0]), {}).get(int(i[-2:]), 0.9 + int(i[-2:]) / 1000) for i in val_ids]
    )


@pytest.fixture
def views_data(smoke_val_ids):
    """Views 2, 3, 4 weak on both cars (the answer); the first car alone has its worst images at 9, 10, 11."""
    weak = {0: {2: 0.70, 3: 0.71, 4: 0.72, 9: 0.55, 10: 0.56, 11: 0.57}, 1: {2: 0.70, 3: 0.71, 4: 0.72}}
    return smoke_val_ids, view_scores(smoke_val_ids, weak)


@pytest.mark.parametrize("answer", [[2, 3, 4], [4, 2, 3], np.array([3, 4, 2]), ["02", "03", "04"]])
def test_worst_views_accepts_the_right_answer(views_data, answer, capsys):
    carvana.check_worst_views(answer, *views_data)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ([9, 10, 11], "three worst *images*"),
        ([14, 15, 16], "*highest* mean Dice"),
        ([1, 2, 3], "numbered as in the file names"),
        ([0.70, 0.71, 0.72], "look like Dice values"),
        ([2, 3], "three different views"),
        ([2, 2, 3], "three different views"),
        ([2, 3, 12], "view 12 has a mean Dice of 0.9120, and at least three views score lower"),
        ([2, 3, 17], "view 17 is not a view of val_ids"),
    ],
)
def test_worst_views_names_each_mistake_without_the_answer(views_data, answer, phrase):
    with pytest.raises(AssertionError) as error:
        carvana.check_worst_views(answer, *views_data)
    message = str(error.value)
    assert phrase in message and "reveal=True" in message, message
    assert "[2, 3, 4]" not in message, message


def test_worst_views_of_one_car_only(smoke_val_ids):
    # the first car is weak at 5, 6, 7; the second, much weaker, at 2, 3, 4 (the answer, and the worst images)
    per_image = view_scores(smoke_val_ids, {0: {5: 0.80, 6: 0.81, 7: 0.82}, 1: {2: 0.60, 3: 0.61, 4: 0.62}})
    with pytest.raises(AssertionError, match="worst views of the first car only"):
        carvana.check_worst_views([5, 6, 7], smoke_val_ids, per_image)
    carvana.check_worst_views([2, 3, 4], smoke_val_ids, per_image)


def test_worst_views_reveals_the_answer_on_request(views_data):
    with pytest.raises(AssertionError, match=r"Expected: views \[2, 3, 4\]"):
        carvana.check_worst_views([2, 3, 12], *views_data, reveal=True)


def threshold_data(val_ids, seed):
    """Probabilities whose objects sit at a different level in each image: every slip gives a different number."""
    generator = torch.Generator().manual_seed(seed)
    n = len(val_ids)
    masks = torch.zeros(n, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    level = torch.rand(n, 1, 1, 1, generator=generator) * 0.8 + 0.1
    objects = level + 0.3 * torch.rand(n, 1, 8, 8, generator=generator) - 0.15
    probs = torch.where(masks > 0, objects, 0.4 * torch.rand(n, 1, 8, 8, generator=generator)).clamp(0, 1)
    return probs.half(), masks.to(torch.uint8)  # as predict_loader returns them


def slips(val_ids, probs, masks) -> dict[str, float]:
    """The right gain and each slip's, computed here independently of the check."""
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    tune = torch.tensor([i.rsplit("_", 1)[0] in cars[: len(cars) // 2] for i in val_ids])
    every = torch.ones_like(tune)
    first_images = torch.arange(len(val_ids)) < len(val_ids) // 2

    def pick(rows):
        return max(grid, key=lambda t: dice_score(probs[rows] > t, masks[rows]))

    def gain(threshold, rows):
        return dice_score(probs[rows] > threshold, masks[rows]) - dice_score(probs[rows] > 0.5, masks[rows])

    tuned = pick(tune)
    right = gain(tuned, ~tune)
    return {
        "right": right,
        "measured where it was tuned": gain(tuned, tune),
        "sign is reversed": -right,
        "halves are swapped": gain(pick(~tune), tune),
        "picked on all the validation cars": gain(pick(every), ~tune),
        "section 10's gain": gain(pick(every), every),
        "is a Dice, not a gain": dice_score(probs[~tune] > tuned, masks[~tune]),
        "the threshold itself": tuned,
        "looks like a percentage": 100 * right,
        "split the *images*": gain(pick(first_images), ~first_images),
    }


SLIP_PHRASES = {
    "measured where it was tuned": "the cars the threshold",
    "sign is reversed": "the sign is reversed",
    "halves are swapped": "the halves are swapped",
    "picked on all the validation cars": "picked on all the validation cars",
    "section 10's gain": "section 10's gain",
    "is a Dice, not a gain": "is a Dice, not a gain",
    "the threshold itself": "is the threshold itself",
    "looks like a percentage": "looks like a percentage",
    "split the *images*": "split the *images*",
}


def planted(val_ids, seed):
    probs, masks = threshold_data(val_ids, seed)
    values = slips(val_ids, probs, masks)
    distinct = {name: v for name, v in values.items() if name == "right" or abs(v - values["right"]) > 1e-3}
    return probs, masks, distinct


def test_threshold_gain_on_the_smoke_split_rejects_every_slip(smoke_val_ids):
    probs, masks, values = planted(smoke_val_ids, seed=17)
    # on two cars of 16 views the image halves are the car halves: every other slip gives its own number
    assert set(values) == set(SLIP_PHRASES) - {"split the *images*"} | {"right"}, sorted(values)
    ordered = sorted(values.values())
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 1e-3, values
    carvana.check_threshold_gain(values["right"], smoke_val_ids, probs, masks)
    for name, value in values.items():
        if name == "right":
            continue
        with pytest.raises(AssertionError) as error:
            carvana.check_threshold_gain(value, smoke_val_ids, probs, masks)
        message = str(error.value)
        assert SLIP_PHRASES[name] in message and "reveal=True" in message, (name, message)
        assert f"{values['right']:+.4f}" not in message, (name, message)


def test_threshold_gain_names_a_split_by_image():
    val_ids = [f"car{car}_{view:02d}" for car in range(3) for view in range(1, 17)]  # 3 cars: 1 to tune on
    probs, masks, values = planted(val_ids, seed=3)
    assert "split the *images*" in values, values
    with pytest.raises(AssertionError, match=r"split the \*images\*"):
        carvana.check_threshold_gain(values["split the *images*"], val_ids, probs, masks)


@pytest.mark.parametrize("answer", [0.0, float("nan"), 0.123])
def test_threshold_gain_misses_say_what_to_do_and_reveal_only_on_request(smoke_val_ids, answer):
    probs, masks, values = planted(smoke_val_ids, seed=17)
    expected = f"{values['right']:+.4f}"
    with pytest.raises(AssertionError) as error:
        carvana.check_threshold_gain(answer, smoke_val_ids, probs, masks)
    assert expected not in str(error.value) and "reveal=True" in str(error.value)
    with pytest.raises(AssertionError, match=f"Expected: {expected.replace('+', '[+]')}"):
        carvana.check_threshold_gain(answer, smoke_val_ids, probs, masks, reveal=True)


def test_threshold_gain_with_one_validation_car_says_so(capsys):
    val_ids = [f"car0_{view:02d}" for view in range(1, 17)]
    probs, masks = threshold_data(val_ids, seed=0)
    carvana.check_threshold_gain(0.5, val_ids, probs, masks)
    assert "only one validation car" in capsys.readouterr().out
