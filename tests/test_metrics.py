"""Metrics: hand-computed cases, an independent NumPy reference, ignore_index, the accumulator, clear errors."""

import math

import numpy as np
import pytest
import torch

from unet_tutorial.metrics import (
    SegmentationMetrics,
    confusion_matrix,
    dice_per_class,
    dice_score,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)


def numpy_confusion(preds, targets, num_classes, ignore_index=None):
    """Independent reference: one np.add.at per pixel pair."""
    preds, targets = np.asarray(preds).ravel(), np.asarray(targets).ravel()
    keep = targets != ignore_index if ignore_index is not None else np.ones_like(targets, dtype=bool)
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (targets[keep], preds[keep]), 1)
    return out


def test_confusion_matrix_by_hand():
    preds = torch.tensor([[0, 1, 1, 2]])
    targets = torch.tensor([[0, 1, 2, 2]])
    cm = confusion_matrix(preds, targets, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]  # rows = target, columns = prediction
    torch.testing.assert_close(iou_per_class(cm), torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(dice_per_class(cm), torch.tensor([1.0, 2 / 3, 2 / 3], dtype=torch.float64))
    assert mean_iou(cm) == pytest.approx(2 / 3)
    assert pixel_accuracy(cm) == pytest.approx(3 / 4)


def test_confusion_matrix_matches_numpy_reference_with_ignore():
    gen = torch.Generator().manual_seed(0)
    preds = torch.randint(0, 5, (3, 17, 13), generator=gen)
    targets = torch.randint(0, 5, (3, 17, 13), generator=gen)
    targets[torch.rand(targets.shape, generator=gen) < 0.2] = 255
    cm = confusion_matrix(preds, targets, 5, ignore_index=255)
    np.testing.assert_array_equal(cm.numpy(), numpy_confusion(preds, targets, 5, 255))
    assert cm.sum() == (targets != 255).sum()


def test_iou_and_dice_match_set_formulas():
    gen = torch.Generator().manual_seed(1)
    preds = torch.randint(0, 4, (2, 9, 9), generator=gen)
    targets = torch.randint(0, 4, (2, 9, 9), generator=gen)
    cm = confusion_matrix(preds, targets, 4)
    for c in range(4):
        p, t = preds == c, targets == c
        inter, union = (p & t).sum().item(), (p | t).sum().item()
        assert iou_per_class(cm)[c].item() == pytest.approx(inter / union)
        assert dice_per_class(cm)[c].item() == pytest.approx(2 * inter / (p.sum() + t.sum()).item())


def test_ignored_pixels_never_change_a_metric():
    gen = torch.Generator().manual_seed(2)
    preds = torch.randint(0, 3, (2, 8, 8), generator=gen)
    targets = torch.randint(0, 3, (2, 8, 8), generator=gen)
    wide_preds = torch.cat([preds, torch.randint(0, 3, (2, 8, 5), generator=gen)], dim=2)  # (2, 8, 13)
    wide_targets = torch.cat([targets, torch.full((2, 8, 5), 255)], dim=2)
    assert torch.equal(
        confusion_matrix(wide_preds, wide_targets, 3, ignore_index=255), confusion_matrix(preds, targets, 3)
    )
    binary_preds, binary_targets = (preds > 0).float(), (targets > 0).float()
    wide_binary_targets = torch.cat([binary_targets, torch.full((2, 8, 5), 255.0)], dim=2)
    assert dice_score((wide_preds > 0).float(), wide_binary_targets, ignore_index=255) == pytest.approx(
        dice_score(binary_preds, binary_targets)
    )


def test_mean_iou_averages_only_classes_that_occur():
    preds = torch.tensor([0, 0, 1, 1])
    targets = torch.tensor([0, 0, 1, 0])
    cm = confusion_matrix(preds, targets, 4)  # classes 2 and 3 appear nowhere
    iou = iou_per_class(cm)
    assert torch.isnan(iou[2:]).all()
    assert mean_iou(cm) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_pixel_accuracy_misleads_on_small_objects():
    targets = torch.zeros(100, 100, dtype=torch.long)
    targets[:10, :10] = 1  # a 1 % object
    preds = torch.zeros_like(targets)  # predict background everywhere
    cm = confusion_matrix(preds, targets, 2)
    assert pixel_accuracy(cm) == pytest.approx(0.99)
    assert iou_per_class(cm)[1].item() == 0.0


def test_dice_score_is_a_mean_over_images_with_empty_empty_as_one():
    targets = torch.zeros(3, 1, 4, 4)
    preds = torch.zeros(3, 1, 4, 4)
    targets[1, 0, :2, :2] = 1  # 4 pixels, predicted 2 of them plus 2 wrong ones
    preds[1, 0, :1, :2] = 1
    preds[1, 0, 3, :2] = 1
    targets[2, 0, 0, 0] = 1  # missed entirely
    # image 0: both empty -> 1; image 1: 2*2 / (4 + 4) = 0.5; image 2: 0
    assert dice_score(preds, targets) == pytest.approx((1 + 0.5 + 0) / 3)
    assert dice_score(preds[:, 0], targets[:, 0]) == pytest.approx((1 + 0.5 + 0) / 3)


def test_all_ignored_gives_nan_not_an_error():
    cm = confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 255), 2, ignore_index=255)
    assert cm.sum() == 0
    assert math.isnan(pixel_accuracy(cm)) and math.isnan(mean_iou(cm))
    # An image with every pixel ignored is an empty image: empty prediction of an empty mask scores 1.
    assert dice_score(torch.ones(1, 4, 4), torch.full((1, 4, 4), 255.0), ignore_index=255) == 1.0


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2), 2), "same shape"),
        (
            lambda: confusion_matrix(
                torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 7, 255]), 3, ignore_index=255
            ),
            r"\[0, 3\).*\[7\]",
        ),
        (lambda: confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 3), "preds must be integer classes"),
        (lambda: confusion_matrix(torch.tensor([0.2, 0.9]), torch.tensor([0, 1]), 2), "Threshold probabilities"),
        (lambda: confusion_matrix(torch.tensor([0, 1]), torch.tensor([0.0, 0.5]), 2), r"found values \[0.5\]"),
        (lambda: confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 1]), 1), "num_classes=2 for binary"),
        (lambda: dice_score(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4)), "same shape"),
    ],
)
def test_bad_input_gets_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_accumulator_binary_matches_the_functions():
    gen = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(2, 1, 8, 8, generator=gen), (torch.rand(2, 1, 8, 8, generator=gen) > 0.6).float())
        for _ in range(3)
    ]
    metrics = SegmentationMetrics(num_classes=1)
    for logits, targets in batches:
        metrics.update(logits, targets)
    logits = torch.cat([b[0] for b in batches])  # (6, 1, 8, 8)
    targets = torch.cat([b[1] for b in batches])
    preds = (logits.sigmoid() > 0.5).float()
    cm = confusion_matrix(preds, targets, 2)
    result = metrics.compute()
    assert set(result) == {"dice_per_image", "iou", "pixel_accuracy"}
    assert result["dice_per_image"] == pytest.approx(dice_score(preds, targets))
    assert result["iou"] == pytest.approx(iou_per_class(cm)[1].item())
    assert result["pixel_accuracy"] == pytest.approx(pixel_accuracy(cm))
    assert metrics.iou_per_class().shape == (1,)
    assert all(isinstance(v, float) for v in result.values())
    each = metrics.dice_of_each_image()  # (6,), in the order the batches came
    assert each.shape == (6,) and each.mean().item() == pytest.approx(result["dice_per_image"])
    one_by_one = [dice_score(p[None], t[None]) for p, t in zip(preds, targets)]
    assert each.tolist() == pytest.approx(one_by_one)
    with pytest.raises(ValueError, match="binary only"):
        SegmentationMetrics(num_classes=3).dice_of_each_image()


def test_accumulator_binary_threshold_and_mask_without_channel():
    logits = torch.full((1, 1, 2, 2), 0.5)  # sigmoid(0.5) = 0.62
    targets = torch.ones(1, 2, 2)
    low, high = SegmentationMetrics(1, threshold=0.5), SegmentationMetrics(1, threshold=0.7)
    low.update(logits, targets)
    high.update(logits, targets)
    assert low.compute()["dice_per_image"] == 1.0 and high.compute()["dice_per_image"] == 0.0


def test_accumulator_multiclass_matches_the_functions_with_ignore():
    gen = torch.Generator().manual_seed(4)
    metrics = SegmentationMetrics(num_classes=4, ignore_index=255)
    all_logits, all_targets = [], []
    for _ in range(3):
        logits = torch.randn(2, 4, 6, 6, generator=gen)
        targets = torch.randint(0, 4, (2, 6, 6), generator=gen)
        targets[:, 0] = 255
        metrics.update(logits, targets)
        all_logits.append(logits)
        all_targets.append(targets)
    cm = confusion_matrix(torch.cat(all_logits).argmax(1), torch.cat(all_targets), 4, ignore_index=255)
    result = metrics.compute()
    assert set(result) == {"miou", "dice", "pixel_accuracy"}
    assert result["miou"] == pytest.approx(mean_iou(cm))
    assert result["dice"] == pytest.approx(torch.nanmean(dice_per_class(cm)).item())
    assert result["pixel_accuracy"] == pytest.approx(pixel_accuracy(cm))
    torch.testing.assert_close(metrics.iou_per_class(), iou_per_class(cm), equal_nan=True)
    metrics.reset()
    with pytest.raises(RuntimeError, match="update"):
        metrics.compute()


def test_accumulator_reports_bad_targets_at_compute_and_checks_shapes():
    metrics = SegmentationMetrics(num_classes=3)
    metrics.update(torch.randn(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 9]]]))  # no error yet: no host sync
    with pytest.raises(ValueError, match="1 target pixels"):
        metrics.compute()
    with pytest.raises(TypeError, match="long class indices"):
        metrics.update(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"expected targets \(1, 2, 2\)"):
        metrics.update(torch.randn(1, 3, 2, 2), torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected logits \(B, 3, H, W\)"):
        metrics.update(torch.randn(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_accumulator_perfect_and_empty_predictions():
    targets = torch.zeros(2, 1, 4, 4)
    metrics = SegmentationMetrics(1)
    metrics.update(torch.full((2, 1, 4, 4), -10.0), targets)  # empty mask, empty prediction
    assert metrics.compute() == {"dice_per_image": 1.0, "iou": 1.0, "pixel_accuracy": 1.0}
    targets = torch.randint(0, 3, (2, 4, 4))
    perfect = torch.nn.functional.one_hot(targets, 3).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    metrics = SegmentationMetrics(3)
    metrics.update(perfect, targets)
    assert metrics.compute()["miou"] == 1.0


def test_dice_score_refuses_probabilities_and_0_255_targets_naming_the_fix():
    targets = torch.tensor([[[0.0, 1.0, 1.0, 1.0]]])  # (1, 1, 4)
    probs = torch.tensor([[[0.1, 0.9, 0.8, 0.3]]])
    with pytest.raises(
        ValueError, match=r"dice_score: preds .*0\.1.*threshold probabilities first: preds = probs > 0\.5"
    ):
        dice_score(probs, targets)
    assert dice_score(probs > 0.5, targets) == pytest.approx(0.8)  # 2*2 / (2 + 3)
    with pytest.raises(ValueError, match=r"dice_score: targets .*255.*divide a 0/255 mask by 255"):
        dice_score(probs > 0.5, targets * 255)
    with pytest.raises(ValueError, match=r"targets must be 0/1 or ignore_index=None; found values \[2.0\]"):
        dice_score(probs > 0.5, targets * 2)
    assert dice_score(probs > 0.5, (targets * 255).long() // 255) == pytest.approx(0.8)  # integer masks are fine
    assert dice_score((probs > 0.5).long(), torch.tensor([[[255, 1, 1, 1]]]), ignore_index=255) == pytest.approx(0.8)
