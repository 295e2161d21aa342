"""Notebook 02's self-checks: each plausible wrong answer gets its diagnosis, and no miss prints the answer.

Experiments 2 and 3 are checked on data where the answer is known by hand, and on the notebook's own smoke-mode
validation images, so a check that runs in CI can still fail there.
"""

import pytest
import torch

from unet_tutorial.course.exercises.losses import (
    THRESHOLDS,
    check_best_threshold,
    check_empty_image_dice,
    check_frequency_weighted_iou,
)
from unet_tutorial.course.toy_data import make_small_objects
from unet_tutorial.metrics import dice_per_class, dice_score, iou_per_class, mean_iou, pixel_accuracy


def miss(check, *args, **kwargs) -> str:
    """The message of the AssertionError ``check(*args, **kwargs)`` must raise."""
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    return str(error.value)


# --- Exercise 1: frequency-weighted IoU ----------------------------------------------------------------------------


def shares(confusion):
    confusion = confusion.double()
    return confusion.sum(1) / confusion.sum()


def right_fw_iou(confusion):
    return float((shares(confusion) * iou_per_class(confusion.double()).nan_to_num(0.0)).sum())


WRONG_FW_IOU = {
    "NaN": (lambda c: float((shares(c) * iou_per_class(c.double())).sum()), "you returned NaN"),
    "columns": (
        lambda c: float((c.double().sum(0) / c.sum() * iou_per_class(c.double()).nan_to_num(0.0)).sum()),
        "the *predicted* pixels",
    ),
    "mean IoU": (mean_iou, "plain mean IoU"),
    "pixel accuracy": (pixel_accuracy, "is the pixel accuracy"),
    "counts": (lambda c: float((c.double().sum(1) * iou_per_class(c.double()).nan_to_num(0.0)).sum()), "not its share"),
    "Dice": (lambda c: float((shares(c) * dice_per_class(c.double()).nan_to_num(0.0)).sum()), "Dice, not its IoU"),
    "mean": (lambda c: float((shares(c) * iou_per_class(c.double()).nan_to_num(0.0)).mean()), "so sum them"),
    "anything else": (lambda c: 0.5, "Compute the shares and the IoUs of this matrix by hand"),
}
THREE_CLASSES = torch.tensor([[50, 2, 3], [4, 20, 1], [6, 0, 14]])


def test_frequency_weighted_iou_accepts_the_right_function(capsys):
    check_frequency_weighted_iou(right_fw_iou)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("slip", list(WRONG_FW_IOU))
def test_frequency_weighted_iou_names_each_slip_without_the_expected_value(slip):
    answer, diagnosis = WRONG_FW_IOU[slip]
    message = miss(check_frequency_weighted_iou, answer)
    assert diagnosis in message
    assert f"{right_fw_iou(THREE_CLASSES):.4f}" not in message and "expected 0" not in message


def test_frequency_weighted_iou_reveals_on_request(capsys):
    miss(check_frequency_weighted_iou, lambda c: 0.5, reveal=True)
    assert f"expected {right_fw_iou(THREE_CLASSES):.4f}" in capsys.readouterr().out


# --- Experiment 2: the threshold to keep for each model ------------------------------------------------------------

MASKS = torch.zeros(4, 1, 8, 8)
MASKS[:, :, 2:5, 2:5] = 1
LOW = torch.where(MASKS > 0, 0.3, 0.02)  # objects at 0.3: thresholds 0.05 to 0.25 find them; keep 0.25
HIGH = torch.where(MASKS > 0, 0.9, 0.6)  # the background at 0.6: thresholds 0.6 to 0.85 are perfect; keep 0.6
FLAT = torch.zeros_like(MASKS)  # a model that has found nothing yet (smoke mode): every threshold scores 0
PROBS = {"low": LOW, "high": HIGH, "flat": FLAT}
RIGHT = {"low": 0.25, "high": 0.6, "flat": 0.5}

# Per image, a low threshold is best (it finds image 1's faint pixel); pooled, a high one (it drops image 0's
# false alarm, which weighs more than one pixel): the per-image and the pooled Dice disagree.
SPLIT_MASKS = torch.zeros(2, 1, 8, 8)
SPLIT_MASKS[0, :, :4, :4] = 1
SPLIT_MASKS[1, :, 6, 6] = 1
SPLIT_PROBS = torch.full_like(SPLIT_MASKS, 0.02)
SPLIT_PROBS[0, :, :4, :4] = 0.9
SPLIT_PROBS[0, :, 6:, 4:6] = 0.4  # a false alarm of 4 pixels
SPLIT_PROBS[1, :, 6, 6] = 0.3  # a faint, small object


def test_best_threshold_accepts_the_thresholds_to_keep(capsys):
    check_best_threshold(RIGHT, PROBS, MASKS)
    check_best_threshold(0.25, LOW, MASKS)  # one model: a float and a tensor
    out = capsys.readouterr().out
    assert out.count("all checks passed") == 2 and "flat 0.5 (every threshold scores the same" in out


@pytest.mark.parametrize(
    ("name", "answer", "probs", "masks", "diagnosis"),
    [
        ("low", 0.05, LOW, MASKS, "a threshold nearer the default 0.5 does too"),
        ("low", 0.5, LOW, MASKS, "0.5 is the default you were to test"),
        ("low", 0.95, LOW, MASKS, "lowest Dice"),
        ("low", 0.35, LOW, MASKS, "probs < threshold"),
        ("low", 2.0, LOW, MASKS, "did you threshold the logits?"),
        ("split", 0.4, SPLIT_PROBS, SPLIT_MASKS, "the pooled Dice"),
        ("flat", 0.05, FLAT, MASKS, "a threshold nearer the default 0.5 does too"),  # smoke mode can fail too
    ],
)
def test_best_threshold_names_each_slip_without_the_answer(name, answer, probs, masks, diagnosis):
    message = miss(check_best_threshold, {name: answer}, {name: probs}, masks)
    assert diagnosis in message, message
    assert "0.25" not in message and "keep [" not in message


def test_best_threshold_wants_one_threshold_per_model():
    assert "one threshold per model" in miss(check_best_threshold, 0.25, PROBS, MASKS)
    assert "missing ['high']" in miss(check_best_threshold, {"low": 0.25, "flat": 0.5}, PROBS, MASKS)


def test_best_threshold_reveals_on_request(capsys):
    miss(check_best_threshold, {"low": 0.05}, {"low": LOW}, MASKS, reveal=True)
    assert "low: 0.05: 1.000" in (out := capsys.readouterr().out) and "keep [0.25]" in out


def test_best_threshold_can_fail_on_smoke_mode_validation_images():
    """The notebook's smoke validation set, and models that found little: the check still rejects a wrong answer."""
    _, masks = make_small_objects(8, 64, seed=2)
    faint = torch.where(masks > 0, 0.35, 0.1) + 0.05 * torch.rand(
        masks.shape, generator=torch.Generator().manual_seed(0)
    )
    scores = {t: dice_score(faint > t, masks) for t in THRESHOLDS}
    best = max(scores.values())
    keep = min((t for t in THRESHOLDS if scores[t] >= best - 0.005), key=lambda t: abs(t - 0.5))
    check_best_threshold({"faint": keep, "flat": 0.5}, {"faint": faint, "flat": torch.zeros_like(masks)}, masks)
    assert keep != 0.5
    probs = {"faint": faint, "flat": torch.zeros_like(masks)}
    for planted in ({"faint": 0.5, "flat": 0.5}, {"faint": 0.95, "flat": 0.5}, {"faint": keep, "flat": 0.05}):
        miss(check_best_threshold, planted, probs, masks)


# --- Experiment 3: tiles and the lazy model ------------------------------------------------------------------------


def to_tiles(x, tile):
    """The right tiling, written independently: loop over the tile grid."""
    n, c, h, w = x.shape
    return torch.stack(
        [x[i, :, r : r + tile, q : q + tile] for i in range(n) for r in range(0, h, tile) for q in range(0, w, tile)]
    )


TILE_MASKS = torch.zeros(4, 1, 8, 8)
TILE_MASKS[0, :, 1:3, 1:3] = 1  # image 0: one object in its top-left tile
TILE_MASKS[1, :, 5:7, 1:7] = 1  # image 1: one object across its two bottom tiles
# images 2 and 3 are empty: 16 tiles of 4 x 4, 3 of them with an object -> the lazy model scores 13 / 16
TILE_PREDS = TILE_MASKS.clone()
TILE_PREDS[2, :, 0, 0] = 1  # a false alarm on an empty image
TILE_PREDS[1, :, 5:7, 5:7] = 0  # half of image 1's object missed


def test_empty_image_dice_on_tiles_accepts_the_right_numbers(capsys):
    mask_tiles, pred_tiles = to_tiles(TILE_MASKS, 4), to_tiles(TILE_PREDS, 4)
    lazy, model = dice_score(torch.zeros_like(mask_tiles), mask_tiles), dice_score(pred_tiles, mask_tiles)
    assert lazy == pytest.approx(13 / 16)
    check_empty_image_dice(lazy, TILE_MASKS, tile=4, model_dice=model, preds=TILE_PREDS)
    check_empty_image_dice(0.5, torch.cat([TILE_MASKS[:2], TILE_MASKS[2:]]))  # whole images: 2 of 4 empty
    assert capsys.readouterr().out.count("all checks passed") == 2


@pytest.mark.parametrize(
    ("lazy", "diagnosis"),
    [
        (0.0, "on an empty one an empty prediction scores 1"),
        (1.0, "it scores 1 only on the empty tiles"),
        (3 / 16, "the share of tiles with an object"),
        (0.5, "the score on the whole images: cut the masks into tiles first"),  # 2 of 4 whole images are empty
        (dice_score(torch.zeros(16, 1, 4, 4), TILE_MASKS.reshape(16, 1, 4, 4)), "your tiles are not squares"),
        (0.7, "count the empty tiles"),
    ],
    ids=["zero", "one", "inverted", "untiled", "strips", "other"],
)
def test_empty_image_dice_names_each_slip_without_the_answer(lazy, diagnosis):
    assert lazy != pytest.approx(13 / 16)
    message = miss(check_empty_image_dice, lazy, TILE_MASKS, tile=4)
    assert diagnosis in message and "0.8125" not in message and "0.812" not in message and "13" not in message


@pytest.mark.parametrize(
    ("model", "diagnosis"),
    [
        (dice_score(TILE_PREDS, TILE_MASKS), "the model's score on the whole images"),
        (dice_score(TILE_PREDS.reshape(16, 1, 4, 4), TILE_MASKS.reshape(16, 1, 4, 4)), "runs of whole rows"),
        (0.1, "on the same tiles as the masks"),
    ],
    ids=["untiled", "strips", "other"],
)
def test_empty_image_dice_checks_the_models_score_too(model, diagnosis):
    lazy = 13 / 16
    message = miss(check_empty_image_dice, lazy, TILE_MASKS, tile=4, model_dice=model, preds=TILE_PREDS)
    assert diagnosis in message
    assert "pass the model's predictions" in miss(check_empty_image_dice, lazy, TILE_MASKS, tile=4, model_dice=model)


def coinciding_masks(kind):
    """8 x 8 masks cut into tiles of 4 on which the whole images' lazy score equals that of another mistake."""
    if kind == "strips":  # a full-height line: every strip of its image holds some, but only the left tiles do
        masks = torch.zeros(2, 1, 8, 8)
        masks[0, :, :, 0] = 1
    else:  # "inverted": 1 of 3 images empty, and 4 of the 12 tiles hold an object (2 in each of the others)
        masks = torch.zeros(3, 1, 8, 8)
        masks[:2, :, 1:3, 1:7] = 1
    return masks


@pytest.mark.parametrize(
    ("kind", "other"),
    [("strips", "your tiles are not squares"), ("inverted", "the share of tiles with an object")],
)
def test_empty_image_dice_names_the_whole_images_first_where_another_mistake_gives_the_same_number(kind, other):
    """Scoring the whole images is the likelier mistake: it is named first, and the other one as a possibility."""
    masks = coinciding_masks(kind)
    tiles = to_tiles(masks, 4)
    right = dice_score(torch.zeros_like(tiles), tiles)
    whole = dice_score(torch.zeros_like(masks), masks)
    mistaken = {
        "strips": dice_score(torch.zeros(len(tiles), 1, 4, 4), masks.reshape(-1, 1, 4, 4)),
        "inverted": 1 - right,
    }[kind]
    assert whole == pytest.approx(mistaken) and whole != pytest.approx(right)
    message = miss(check_empty_image_dice, whole, masks, tile=4)
    first = message.index("that is the score on the whole images")
    assert first < message.index("another mistake gives the same number") < message.index(other)
    assert f"{right:.4f}" not in message and f"{right:.3f}" not in message


def test_empty_image_dice_names_the_models_whole_image_score_first_where_the_strips_give_it_too():
    masks = coinciding_masks("strips")
    preds = masks.clone()
    preds[0, :, 1::2, 0] = 0  # every other pixel of the line missed: each image, strip and tile of it half found
    lazy = dice_score(torch.zeros(8, 1, 4, 4), to_tiles(masks, 4))
    whole, strips = dice_score(preds, masks), dice_score(preds.reshape(-1, 1, 4, 4), masks.reshape(-1, 1, 4, 4))
    assert whole == pytest.approx(strips) != pytest.approx(dice_score(to_tiles(preds, 4), to_tiles(masks, 4)))
    message = miss(check_empty_image_dice, lazy, masks, tile=4, model_dice=whole, preds=preds)
    assert message.index("the model's score on the whole images") < message.index("runs of whole rows")


def test_empty_image_dice_can_fail_on_smoke_mode_validation_images():
    """The notebook's smoke validation masks, tiles of 16: only the answer for these masks passes."""
    _, masks = make_small_objects(8, 64, seed=2)
    tiles = to_tiles(masks, 16)
    right = dice_score(torch.zeros_like(tiles), tiles)
    check_empty_image_dice(right, masks, tile=16)
    for planted in (right - 1 / len(tiles), right + 1 / len(tiles), 0.0):
        miss(check_empty_image_dice, planted, masks, tile=16)


def test_empty_image_dice_reveals_on_request(capsys):
    miss(check_empty_image_dice, 0.0, TILE_MASKS, tile=4, reveal=True)
    assert "13 of the 16 tiles are empty: the lazy model scores 0.8125" in capsys.readouterr().out
