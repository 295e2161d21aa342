"""Notebook 03's self-checks: each message they can give, every known shortcut planted as the learner's function.

The checks of experiments 1 and 3 take the learner's function and run it on crafted cases first: in smoke mode
the notebook holds out two validation cars (the fixture ``smoke_val_ids`` of conftest.py splits a folder as the
notebook's smoke settings do), where a shortcut often gives the right value by chance. The tests below build such
runs, where the shortcuts agree with the right answer, and show that the check still names each shortcut.
Experiment 6's tests are in test_exercises_carvana_threshold.py.
"""

import numpy as np
import pytest
import torch

from unet_tutorial.course.exercises import carvana, edges
from unet_tutorial.metrics import dice_score


def reference_edge_dice(preds, targets, width=3):
    band = edges._edge_band(targets.float(), width)
    return dice_score(preds.float(), targets.float().masked_fill(~band, 255), ignore_index=255)


def edge_dice_with(band_of, pooled=False):
    """An edge Dice whose band is band_of(preds, targets, width): the learner's possible mistakes."""

    def edge_dice(preds, targets, width=3):
        return edges._band_dice(preds, targets, band_of(preds, targets, width), pooled=pooled)

    return edge_dice


def zero_padded_band(preds, targets, width):
    padded = torch.nn.functional.pad(targets, (width,) * 4)  # the photo's border becomes an outline
    return edges._edge_band(padded, width)[..., width:-width, width:-width]


def per_image_edge_dice(preds, targets, width=3):
    band = edges._edge_band(targets, width)
    return torch.tensor([edges._band_dice(p[None], t[None], b[None]) for p, t, b in zip(preds, targets, band)])


def first_expected_edge_dice() -> str:
    preds, targets, width = edges._edge_dice_cases()[0]
    return f"{reference_edge_dice(preds, targets, width):.4f}"


# mistake -> (the learner's function, a phrase the check's message must hold)
EDGE_DICE_MISTAKES = {
    "whole image": (lambda preds, targets, width=3: dice_score(preds, targets), "plain Dice"),
    "outside only": (edge_dice_with(lambda p, t, w: edges._edge_band(t, w) & (t == 0)), "outside the car only"),
    "inside only": (edge_dice_with(lambda p, t, w: edges._edge_band(t, w) & (t == 1)), "inside the car only"),
    "width ignored": (edge_dice_with(lambda p, t, w: edges._edge_band(t, 1)), "one pixel wide"),
    "zero padding": (edge_dice_with(zero_padded_band), "photo's border as outline"),
    "predicted outline": (edge_dice_with(lambda p, t, w: edges._edge_band(p, w)), "*predicted* outline"),
    "inverted band": (edge_dice_with(lambda p, t, w: ~edges._edge_band(t, w)), "*except* the band"),
    "pooled": (edge_dice_with(lambda p, t, w: edges._edge_band(t, w), pooled=True), "pooled over all images"),
    "per-image values": (per_image_edge_dice, "return one number"),
    "unrecognised": (lambda preds, targets, width=3: 0.5, "is not the Dice on the band"),
}


def test_edge_dice_accepts_the_right_answer(capsys):
    edges.check_edge_dice(reference_edge_dice)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", EDGE_DICE_MISTAKES)
def test_edge_dice_names_each_mistake_without_the_expected_value(mistake):
    edge_dice, phrase = EDGE_DICE_MISTAKES[mistake]
    with pytest.raises(AssertionError) as error:
        edges.check_edge_dice(edge_dice)
    message = str(error.value)
    assert phrase in message, message
    assert "reveal=True" in message and "Expected" not in message, message
    assert first_expected_edge_dice() not in message, message


def test_edge_dice_without_a_cast_to_float_is_caught_on_uint8_masks():
    def uncast(preds, targets, width=3):  # right on floats; on uint8, -targets wraps around and the band is empty
        band = edges._edge_band(targets, width)
        return dice_score(preds, targets.masked_fill(~band, 255), ignore_index=255)

    with pytest.raises(AssertionError, match="uint8") as error:
        edges.check_edge_dice(uncast)
    assert ".float()" in str(error.value) and first_expected_edge_dice() not in str(error.value)


def test_edge_dice_that_indexes_the_band_away_is_told_to_keep_the_shape():
    def indexed(preds, targets, width=3):  # 1-D pixels: dice_score wants (N, 1, H, W)
        band = edges._edge_band(targets.float(), width)
        return dice_score(preds.float()[band], targets.float()[band])

    with pytest.raises(AssertionError, match="keep preds and targets whole, \\(N, 1, H, W\\)"):
        edges.check_edge_dice(indexed)


def test_edge_dice_of_an_empty_band_is_named():
    with pytest.raises(AssertionError, match="as if the band were empty"):
        edges.check_edge_dice(lambda preds, targets, width=3: 1.0)


def test_edge_dice_that_fails_on_bool_predictions_is_told_to_cast():
    def by_hand(preds, targets, width=3):  # right on floats; 1 - preds fails on the notebook's bool predictions
        targets = targets.float()
        band = edges._edge_band(targets, width)
        missed_or_extra = (1 - preds) * targets + preds * (1 - targets)  # raises on bool preds
        scores = []
        for p, t, b, e in zip(preds, targets, band, missed_or_extra):
            total = 2 * (p * t * b).sum() + (e * b).sum()
            scores.append(1.0 if total == 0 else float(2 * (p * t * b).sum() / total))
        return sum(scores) / len(scores)

    with pytest.raises(AssertionError, match="bool and uint8 masks.*floats first"):
        edges.check_edge_dice(by_hand)


def test_edge_dice_with_section_8s_fixed_window_is_named():
    with pytest.raises(AssertionError, match="section 8's 5 x 5 window"):
        edges.check_edge_dice(edge_dice_with(lambda p, t, w: edges._edge_band(t, 2)))


def test_worst_views_as_strings_are_refused(smoke_val_ids):
    def as_strings(val_ids, per_image):
        return [f"{v:02d}" for v in right_worst_views(val_ids, per_image)]

    with pytest.raises(AssertionError, match="return the views as numbers"):
        carvana.check_worst_views(as_strings, *carvana._views_case())


def test_edge_dice_reveals_the_expected_value_on_request():
    with pytest.raises(AssertionError, match=f"Expected: {first_expected_edge_dice()}"):
        edges.check_edge_dice(EDGE_DICE_MISTAKES["unrecognised"][0], reveal=True)


def test_smoke_mode_holds_out_two_validation_cars(smoke_val_ids):
    cars = sorted({car_of(i) for i in smoke_val_ids})
    assert len(cars) >= 2, f"smoke mode validates on {cars}: experiment 6 would not check the run's own halves"


def car_of(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def view_of(image_id: str) -> int:
    return int(image_id.rsplit("_", 1)[1])


# --- Experiment 4: worst_views_of(val_ids, per_image) -----------------------------------------------------------
def by_view(val_ids, per_image, reduce=np.mean, view=view_of) -> dict[int, float]:
    groups: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        groups.setdefault(view(image_id), []).append(float(dice))
    return {v: float(reduce(scores)) for v, scores in groups.items()}


def lowest3(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=scores.get)[:3]


def right_worst_views(val_ids, per_image):
    return lowest3(by_view(val_ids, per_image))


def first_car_only(val_ids, per_image):
    mine = [k for k, i in enumerate(val_ids) if car_of(i) == car_of(val_ids[0])]
    return right_worst_views([val_ids[k] for k in mine], [per_image[k] for k in mine])


def zero_based(val_ids, per_image):
    sums, counts = np.zeros(16), np.zeros(16)
    for image_id, dice in zip(val_ids, per_image):
        sums[view_of(image_id) - 1] += dice
        counts[view_of(image_id) - 1] += 1
    return list(np.argsort(sums / np.maximum(counts, 1) + (counts == 0))[:3])  # indices 0..15


def highest(val_ids, per_image):
    means = by_view(val_ids, per_image)
    return sorted(means, key=means.get)[-3:]


# shortcut -> (the learner's function, a phrase the check's message must hold)
VIEW_SHORTCUTS = {
    "worst images": (lambda ids, d: [view_of(ids[k]) for k in np.argsort(d)[:3]], "three worst *images*"),
    "first car only": (first_car_only, "worst views of the first car only"),
    "highest": (highest, "*highest* mean Dice"),
    "0-based": (zero_based, "numbered as in the file names"),
    "Dice values": (lambda ids, d: sorted(by_view(ids, d).values())[:3], "look like Dice values"),
    "median": (lambda ids, d: lowest3(by_view(ids, d, np.median)), "lowest *median* Dice"),
    "sum": (lambda ids, d: lowest3(by_view(ids, d, np.sum)), "lowest *sum* of Dice"),
    "last digit": (lambda ids, d: lowest3(by_view(ids, d, view=lambda i: int(i[-1]))), "last digit of each id"),
    "two views": (lambda ids, d: right_worst_views(ids, d)[:2], "name three different views"),
    "16 per car": (lambda ids, d: list(np.argsort(np.reshape(d, (-1, 16)).mean(0))[:3] + 1), "raised ValueError"),
    "ids": (lambda ids, d: [ids[k] for k in np.argsort(d)[:3]], "return a list of three view numbers"),
    "unrecognised": (lambda ids, d: [1, 12, 13], "view 1 has a mean Dice of 0.863"),
}


def smoke_run_where_shortcuts_agree(val_ids):
    """Two cars weak at views 2, 3, 4, the first car more so: the worst images, the first car's worst views, the
    medians, sums and last digits all point at the right views."""
    weak = [{2: 0.70, 3: 0.71, 4: 0.72}, {2: 0.75, 3: 0.76, 4: 0.77}]
    cars = sorted({car_of(i) for i in val_ids})
    return np.array([weak[cars.index(car_of(i))].get(view_of(i), 0.9 + view_of(i) / 1000) for i in val_ids])


def test_worst_views_accepts_the_right_method_on_its_case_and_on_a_smoke_run(smoke_val_ids, capsys):
    carvana.check_worst_views(right_worst_views, *carvana._views_case())
    carvana.check_worst_views(right_worst_views, smoke_val_ids, smoke_run_where_shortcuts_agree(smoke_val_ids))
    carvana.check_worst_views(
        right_worst_views, smoke_val_ids, torch.tensor(smoke_run_where_shortcuts_agree(smoke_val_ids))
    )
    out = capsys.readouterr().out
    assert out.count("passed") == 3 and "{2: 0.725, 3: 0.735, 4: 0.745}" in out, out


@pytest.mark.parametrize(
    "answer", [lambda ids, d: tuple(right_worst_views(ids, d)), lambda ids, d: np.array(right_worst_views(ids, d))]
)
def test_worst_views_accepts_any_sequence_of_views(answer, smoke_val_ids):
    carvana.check_worst_views(answer, smoke_val_ids, smoke_run_where_shortcuts_agree(smoke_val_ids))


def test_worst_views_accepts_ties_at_the_third_lowest_mean(smoke_val_ids):
    per_image = np.array([0.7 if view_of(i) in (2, 3, 4, 5) else 0.9 for i in smoke_val_ids])  # 4 views tie

    def picks_the_last_of_ties(val_ids, per_image):
        means = by_view(val_ids, per_image)
        return sorted(means, key=lambda v: (means[v], -v))[:3]

    for method in (right_worst_views, picks_the_last_of_ties):
        carvana.check_worst_views(method, smoke_val_ids, per_image)
    assert set(right_worst_views(smoke_val_ids, per_image)) != set(picks_the_last_of_ties(smoke_val_ids, per_image))


def test_the_views_case_tells_every_shortcut_from_the_answer():
    val_ids, per_image = carvana._views_case()
    right = set(right_worst_views(val_ids, per_image))
    assert right == {12, 13, 14}
    answers = {
        name: frozenset(int(v) for v in function(val_ids, per_image))
        for name, (function, _) in VIEW_SHORTCUTS.items()
        if name not in ("16 per car", "ids", "Dice values")
    }
    assert right not in answers.values(), answers
    assert len(set(answers.values())) == len(answers), answers  # each shortcut its own views


@pytest.mark.parametrize("shortcut", VIEW_SHORTCUTS)
def test_worst_views_names_each_shortcut_even_where_the_run_cannot_tell(shortcut, smoke_val_ids):
    function, phrase = VIEW_SHORTCUTS[shortcut]
    per_image = smoke_run_where_shortcuts_agree(smoke_val_ids)
    with pytest.raises(AssertionError) as error:
        carvana.check_worst_views(function, smoke_val_ids, per_image)
    message = str(error.value)
    assert phrase in message and "on the check's test case" in message, message
    assert "reveal=True" in message and "Expected" not in message and "[12, 13, 14]" not in message, message


@pytest.mark.parametrize("shortcut", ["worst images", "first car only", "median", "sum", "last digit"])
def test_those_shortcuts_give_the_right_views_on_the_smoke_run(shortcut, smoke_val_ids):
    per_image = smoke_run_where_shortcuts_agree(smoke_val_ids)  # why a value-only check could not reject them
    right = set(right_worst_views(smoke_val_ids, per_image))
    assert {int(v) for v in VIEW_SHORTCUTS[shortcut][0](smoke_val_ids, per_image)} == right == {2, 3, 4}


def test_worst_views_checks_the_run_too(smoke_val_ids):
    def answers_the_test_case(val_ids, per_image):
        return [12, 13, 14]  # right on the check's case, whatever the data

    with pytest.raises(AssertionError, match="on your run: view 12 has a mean Dice of 0.9120"):
        carvana.check_worst_views(answers_the_test_case, smoke_val_ids, smoke_run_where_shortcuts_agree(smoke_val_ids))


def test_worst_views_reveals_the_answer_on_request(smoke_val_ids):
    per_image = smoke_run_where_shortcuts_agree(smoke_val_ids)
    with pytest.raises(AssertionError, match=r"three worst \*images\*.*Expected: views \[12, 13, 14\]"):
        carvana.check_worst_views(VIEW_SHORTCUTS["worst images"][0], smoke_val_ids, per_image, reveal=True)


def test_worst_views_lets_the_stub_through(smoke_val_ids):
    def stub(val_ids, per_image):
        raise NotImplementedError("Exercise: replace this line with your solution.")

    with pytest.raises(NotImplementedError):  # the grader reads it as "not attempted"
        carvana.check_worst_views(stub, smoke_val_ids, smoke_run_where_shortcuts_agree(smoke_val_ids))


# --- Exercise 2: rle_by_hand(mask) ------------------------------------------------------------------------------
def rle_by_hand(mask, *, first=1, order="C", pair="length", rows_apart=False, last=True, lead=True, as_list=False):
    """The notebook's loop, right with the defaults, else with one slip a learner makes."""
    mask = np.asarray(mask)
    rows = [mask[r : r + 1] for r in range(mask.shape[0])] if rows_apart else [mask]
    pairs = []
    for row_index, part in enumerate(rows):
        offset = row_index * mask.shape[1] if rows_apart else 0
        start = None
        flat = part.ravel(order=order)
        for number, pixel in enumerate(flat, start=first):
            if pixel and start is None:
                start = number
            elif not pixel and start is not None:
                pairs.append((offset + start, number - start))
                start = None
        if start is not None and last:
            pairs.append((offset + start, first + len(flat) - start))
    if not lead and pairs and pairs[0][0] == first:
        pairs = pairs[1:]
    if pair == "end":
        pairs = [(start, start + length - 1) for start, length in pairs]
    numbers = [n for p in pairs for n in p]
    return numbers if as_list else " ".join(map(str, numbers))


def test_rle_by_hand_passes_and_agrees_with_the_package_on_a_run_mask(capsys):
    from unet_tutorial.data import rle_encode

    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 5:55] = 1
    carvana.check_rle_encode(rle_by_hand, mask)
    carvana.check_rle_encode(rle_by_hand, torch.from_numpy(mask))  # a tensor from the run, too
    assert rle_by_hand(mask) == rle_encode(mask)
    assert capsys.readouterr().out.count("rle_encode: all checks passed") == 2


@pytest.mark.parametrize(
    ("slip", "says"),
    [
        ({"first": 0}, "counted from 0"),
        ({"order": "F"}, "down the columns"),
        ({"pair": "end"}, "'start end'"),
        ({"rows_apart": True}, "split a run where a row ends"),
        ({"last": False}, "lost the last run"),
        ({"lead": False}, "lost the first run"),
        ({"as_list": True}, "returned a list"),
    ],
    ids=["zero-based", "column-major", "start-end", "rows-apart", "no-last-run", "no-first-run", "a-list"],
)
def test_rle_encode_names_each_slip_without_the_expected_string(slip, says):
    with pytest.raises(AssertionError) as error:
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask, **slip))
    message = str(error.value)
    assert says in message, message
    with pytest.raises(AssertionError) as revealed:
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask, **slip), reveal=True)
    expected = str(revealed.value).split("Expected: ", 1)[1]  # shown on request only
    assert expected.strip("'") not in message and "Expected" not in message and "reveal=True" in message


def test_rle_encode_refuses_an_empty_mask_code_and_other_strings():
    with pytest.raises(AssertionError, match="empty mask has no runs"):
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask) or "0 0")
    with pytest.raises(AssertionError, match="differs from the one given in"):
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask[:, ::-1]))  # mirrored: decodes, to another mask
    with pytest.raises(AssertionError, match="could not decode"):
        carvana.check_rle_encode(lambda mask: "1 2 3" if mask.any() else "")
    with pytest.raises(AssertionError, match="single spaces"):
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask).replace(" ", "  "))
    with pytest.raises(AssertionError, match="pass your function rle_by_hand itself"):
        carvana.check_rle_encode("2 2 9 4 20 1")
    with pytest.raises(AssertionError, match="on your run's 2x2 mask"):
        carvana.check_rle_encode(lambda mask: rle_by_hand(mask) if mask.shape != (2, 2) else "1 1", np.eye(2))


def test_rle_encode_says_when_a_string_decodes_right_but_is_not_kaggles_form():
    pixel_by_pixel = lambda mask: " ".join(f"{i + 1} 1" for i in np.flatnonzero(np.asarray(mask).ravel()))  # noqa: E731
    with pytest.raises(AssertionError, match="decodes to the right mask, but Kaggle's form is stricter"):
        carvana.check_rle_encode(pixel_by_pixel)
    too_long = lambda mask: " ".join(  # noqa: E731
        str(n + i % 2) for i, n in enumerate(int(n) for n in rle_by_hand(mask).split())
    )
    with pytest.raises(AssertionError, match="reaches past the mask's last pixel"):
        carvana.check_rle_encode(too_long)


def test_rle_encode_takes_the_runs_mask_in_any_plain_form():
    ellipse = torch.zeros(1, 30, 40)
    ellipse[0, 5:25, 8:32] = 1
    carvana.check_rle_encode(rle_by_hand, ellipse.requires_grad_())  # (1, H, W), with a gradient: squeezed, detached
    carvana.check_rle_encode(rle_by_hand, np.ones((6, 7, 1)))
    for shape in ((10,), ()):
        with pytest.raises(ValueError, match="one mask \\(H, W\\) of 0/1"):
            carvana.check_rle_encode(rle_by_hand, np.ones(shape))
