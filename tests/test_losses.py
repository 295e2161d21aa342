"""Losses: hand-computed cases, independent references, ignore_index, edge cases with finite gradients, errors."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from unet_tutorial.losses import (
    LOSSES,
    ComboLoss,
    class_weights,
    cross_entropy,
    dice_loss,
    focal_loss,
    jaccard_loss,
    lovasz_loss,
    tversky_loss,
)

ALL = [dice_loss, jaccard_loss, tversky_loss, focal_loss, lovasz_loss, cross_entropy]
IDS = [f.__name__ for f in ALL]


def logits_of(probs):
    return torch.logit(torch.as_tensor(probs, dtype=torch.float64))


def binary_batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1, 6, 7, generator=gen), (torch.rand(2, 1, 6, 7, generator=gen) > 0.6).float()


def multiclass_batch(seed=0, num_classes=4):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, num_classes, 6, 7, generator=gen), torch.randint(0, num_classes, (2, 6, 7), generator=gen)


def test_dice_jaccard_tversky_by_hand():
    logits = logits_of([0.8, 0.4, 0.1, 0.6]).reshape(1, 1, 2, 2)
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    tp, fp, fn = 0.8 + 0.4, 0.1 + 0.6, 0.2 + 0.6
    assert dice_loss(logits, targets, smooth=0).item() == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn))
    assert dice_loss(logits, targets).item() == pytest.approx(1 - (2 * tp + 1) / (2 * tp + fp + fn + 1))
    assert jaccard_loss(logits, targets, smooth=0).item() == pytest.approx(1 - tp / (tp + fp + fn))
    got = tversky_loss(logits, targets, alpha=0.3, beta=0.7, smooth=0).item()
    assert got == pytest.approx(1 - tp / (tp + 0.3 * fp + 0.7 * fn))


def test_tversky_contains_dice_and_jaccard():
    for logits, targets in (binary_batch(), multiclass_batch()):  # smooth=0: the smoothing terms scale differently
        torch.testing.assert_close(tversky_loss(logits, targets, smooth=0), dice_loss(logits, targets, smooth=0))
        torch.testing.assert_close(tversky_loss(logits, targets, alpha=1, beta=1), jaccard_loss(logits, targets))


def test_multiclass_dice_is_the_mean_of_one_vs_rest_dice():
    logits, targets = multiclass_batch(1)
    probs = logits.softmax(1)
    expected = []
    for c in range(4):
        p, t = probs[:, c], (targets == c).float()
        expected.append(1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1))
    torch.testing.assert_close(dice_loss(logits, targets), torch.stack(expected).mean())


def test_multiclass_dice_averages_over_the_classes_present_in_the_targets():
    # Two pixels, 3 classes; the targets hold classes 0 and 2 only. By hand (smooth=0): class 0 has
    # tp = p00, fp = p10, fn = 1 - p00; class 2 has tp = p12, fp = p02, fn = 1 - p12; class 1 is absent.
    logits = torch.tensor([[[[2.0, 0.0]], [[1.0, 1.0]], [[0.0, 3.0]]]])  # (1, 3, 1, 2)
    targets = torch.tensor([[[0, 2]]])
    p = logits.softmax(1)[0, :, 0]  # (3, 2): class x pixel
    dice0 = 2 * p[0, 0] / (2 * p[0, 0] + p[0, 1] + (1 - p[0, 0]))
    dice2 = 2 * p[2, 1] / (2 * p[2, 1] + p[2, 0] + (1 - p[2, 1]))
    torch.testing.assert_close(dice_loss(logits, targets, smooth=0), 1 - (dice0 + dice2) / 2)
    jac0, jac2 = p[0, 0] / (1 + p[0, 1]), p[2, 1] / (1 + p[2, 0])  # tp / (tp + fp + fn) = tp / (1 + fp)
    torch.testing.assert_close(jaccard_loss(logits, targets, smooth=0), 1 - (jac0 + jac2) / 2)
    # Ignored pixels do not make a class present; all pixels ignored gives 0 with a zero gradient.
    torch.testing.assert_close(
        dice_loss(logits, torch.tensor([[[0, 255]]]), smooth=0, ignore_index=255),
        1 - 2 * p[0, 0] / (2 * p[0, 0] + 1 - p[0, 0]),
    )
    logits.requires_grad_(True)
    empty = dice_loss(logits, torch.full((1, 1, 2), 255), ignore_index=255)
    empty.backward()
    assert empty.item() == 0 and not logits.grad.any()


def test_binary_focal_matches_torchvision():
    logits, targets = binary_batch(2)
    for alpha, gamma in [(0.25, 2.0), (0.5, 0.0), (0.9, 3.0)]:
        expected = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="mean")
        torch.testing.assert_close(focal_loss(logits, targets, alpha=alpha, gamma=gamma), expected)
    expected = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=2.0, reduction="mean")  # -1: no alpha
    torch.testing.assert_close(focal_loss(logits, targets, alpha=None), expected)


def test_multiclass_focal_by_formula_and_gamma_zero_is_cross_entropy():
    logits, targets = multiclass_batch(3)
    p_t = logits.softmax(1).gather(1, targets.unsqueeze(1)).squeeze(1)  # (B, H, W)
    expected = (-0.25 * (1 - p_t) ** 2 * p_t.log()).mean()
    torch.testing.assert_close(focal_loss(logits, targets), expected)
    torch.testing.assert_close(focal_loss(logits, targets, alpha=None, gamma=0), F.cross_entropy(logits, targets))
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = (-weights[targets] * (1 - p_t) ** 2 * p_t.log()).mean()
    torch.testing.assert_close(focal_loss(logits, targets, alpha=weights), expected)


def test_cross_entropy_matches_pytorch():
    logits, targets = multiclass_batch(4)
    targets[0, :2] = 255
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    torch.testing.assert_close(
        cross_entropy(logits, targets, weight=weight, ignore_index=255),
        F.cross_entropy(logits, targets, weight=weight, ignore_index=255),
    )
    logits, targets = binary_batch(4)
    torch.testing.assert_close(cross_entropy(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))
    pixel_weight = torch.where(targets > 0, 3.0, 1.0)
    expected = (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * pixel_weight).sum()
    torch.testing.assert_close(
        cross_entropy(logits, targets, weight=torch.tensor([1.0, 3.0])), expected / pixel_weight.sum()
    )


# Berman et al.'s reference code (github.com/bermanmaxim/LovaszSoftmax), written out plainly, loop per class.
def reference_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    jaccard = 1.0 - (gts - gt_sorted.cumsum(0)) / (gts + (1 - gt_sorted).cumsum(0))
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def reference_lovasz_hinge(logits, labels):
    signs = 2.0 * labels - 1.0
    errors_sorted, perm = torch.sort(1.0 - logits * signs, descending=True)
    return torch.dot(F.relu(errors_sorted), reference_lovasz_grad(labels[perm]))


def reference_lovasz_softmax(probas, labels):
    losses = []
    for c in range(probas.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors_sorted, perm = torch.sort((fg - probas[:, c]).abs(), descending=True)
        losses.append(torch.dot(errors_sorted, reference_lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


def test_lovasz_matches_the_reference():
    logits, targets = binary_batch(5)
    reference = reference_lovasz_hinge(logits.flatten(), targets.flatten())
    torch.testing.assert_close(lovasz_loss(logits, targets), reference)
    per_image = torch.stack([reference_lovasz_hinge(lg.flatten(), t.flatten()) for lg, t in zip(logits, targets)])
    torch.testing.assert_close(lovasz_loss(logits, targets, per_image=True), per_image.mean())
    logits, targets = multiclass_batch(5, num_classes=5)
    targets[targets == 4] = 3  # class 4 absent: skipped, as in the reference
    probas = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, 5)  # (B*H*W, C)
    torch.testing.assert_close(lovasz_loss(logits, targets), reference_lovasz_softmax(probas, targets.flatten()))


def test_lovasz_softmax_of_hard_predictions_is_one_minus_iou():
    targets = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 1, 1, 1]]])
    logits = 50.0 * F.one_hot(preds, 2).permute(0, 3, 1, 2).float()  # (1, 2, 1, 4), probs are 0/1
    iou = torch.tensor([1 / 2, 2 / 3])
    assert lovasz_loss(logits, targets).item() == pytest.approx((1 - iou).mean().item(), abs=1e-6)


@pytest.mark.parametrize("loss", ALL, ids=IDS)
@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_ignored_pixels_never_change_a_loss(loss, mode):
    logits, targets = binary_batch(6) if mode == "binary" else multiclass_batch(6)
    extra_logits = torch.randn(*logits.shape[:3], 3) * 5  # (B, C, H, 3) of anything
    extra_targets = torch.full((*targets.shape[:-1], 3), 255, dtype=targets.dtype)
    wide_logits = torch.cat([logits, extra_logits], dim=3)  # (B, C, H, W + 3)
    wide_targets = torch.cat([targets, extra_targets], dim=-1)
    torch.testing.assert_close(loss(wide_logits, wide_targets, ignore_index=255), loss(logits, targets))


def edge_cases(mode):
    """(name, logits, targets): empty masks, all pixels ignored, perfect predictions."""
    if mode == "binary":
        empty = torch.zeros(2, 1, 4, 4)
        perfect = (torch.rand(2, 1, 4, 4) > 0.5).float()
        return [
            ("empty", torch.randn(2, 1, 4, 4), empty),
            ("all ignored", torch.randn(2, 1, 4, 4), empty + 255),
            ("perfect", 20 * (2 * perfect - 1), perfect),
        ]
    empty = torch.zeros(2, 4, 4, dtype=torch.long)  # background only
    perfect = torch.randint(0, 3, (2, 4, 4))
    return [
        ("empty", torch.randn(2, 3, 4, 4), empty),
        ("all ignored", torch.randn(2, 3, 4, 4), empty + 255),
        ("perfect", 20 * F.one_hot(perfect, 3).permute(0, 3, 1, 2).float(), perfect),
    ]


@pytest.mark.parametrize("loss", ALL + [ComboLoss(ignore_index=255)], ids=IDS + ["ComboLoss"])
@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_edge_cases_give_finite_values_and_gradients(loss, mode):
    for name, logits, targets in edge_cases(mode):
        logits = logits.clone().requires_grad_()
        kwargs = {} if isinstance(loss, ComboLoss) else {"ignore_index": 255}
        value = loss(logits, targets, **kwargs)
        value.backward()
        assert value.dim() == 0 and torch.isfinite(value), f"{name}: {value}"
        assert torch.isfinite(logits.grad).all(), f"{name}: non-finite gradient"
        if name == "all ignored":
            assert value.item() == 0 and (logits.grad == 0).all(), f"{name}: ignored pixels must not count"
        if name == "perfect" and loss is not lovasz_loss:  # the hinge keeps a margin of 1, so it is not 0
            assert value.item() < 0.1, f"{name}: a perfect prediction should cost almost nothing, got {value}"


def test_binary_targets_with_or_without_channel_agree():
    logits, targets = binary_batch(7)
    for loss in ALL:
        torch.testing.assert_close(loss(logits, targets[:, 0]), loss(logits, targets))


@pytest.mark.parametrize("loss", ALL, ids=IDS)
def test_bad_input_gets_a_clear_error(loss):
    logits, targets = multiclass_batch(8)
    name = loss.__name__
    with pytest.raises(TypeError, match=f"{name}: .*need long targets"):
        loss(logits, targets.float())
    with pytest.raises(ValueError, match=rf"{name}: .*need targets \(2, 6, 7\).*squeeze"):
        loss(logits, targets.unsqueeze(1))
    with pytest.raises(ValueError, match=rf"{name}: .*\[0, 4\) or ignore_index=255; found values \[7\]"):
        loss(logits, torch.where(targets == 1, 7, targets), ignore_index=255)
    with pytest.raises(ValueError, match=rf"{name}: expected logits \(B, C, H, W\)"):
        loss(logits[0], targets[0])
    logits, targets = binary_batch(8)
    with pytest.raises(ValueError, match=rf"{name}: binary logits .*got \(2, 1, 6, 6\)"):
        loss(logits, targets[..., :6])
    with pytest.raises(ValueError, match=rf"{name}: binary targets must be 0/1.*found values \[2.0\]"):
        loss(logits, targets * 2)


def test_class_weights_by_hand():
    mask = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 255])  # frequencies 0.75, 0.25; 255 ignored
    torch.testing.assert_close(class_weights(mask, 2, ignore_index=255, method="inverse"), torch.tensor([2 / 3, 2.0]))
    enet = 1 / torch.log(torch.tensor([1.02 + 0.75, 1.02 + 0.25]))
    torch.testing.assert_close(class_weights(mask, 2, ignore_index=255, method="enet"), enet)
    three = torch.tensor([0, 0, 0, 0, 1, 1, 2])  # frequencies 4/7, 2/7, 1/7: median 2/7
    torch.testing.assert_close(class_weights(three, 3), torch.tensor([0.5, 1.0, 2.0]))
    torch.testing.assert_close(class_weights([three[:3], three[3:]], 3), class_weights(three, 3))
    # An even number of classes: the true median, the mean of the middle two (torch.median gives the lower).
    four = torch.repeat_interleave(torch.arange(4), torch.tensor([1, 2, 3, 4]))  # 10/20/30/40 %: median 25 %
    torch.testing.assert_close(class_weights(four, 4), torch.tensor([2.5, 1.25, 0.25 / 0.3, 0.625]))
    absent = class_weights(torch.tensor([0, 0, 0, 1]), 3, method="inverse")  # class 2 never occurs
    assert absent[2] == absent.max() == absent[1]
    with pytest.raises(ValueError, match="method='sqrt'"):
        class_weights(three, 3, method="sqrt")
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        class_weights(three, 2)


def test_combo_loss_is_the_weighted_sum():
    logits, targets = binary_batch(9)
    combo = ComboLoss()
    expected = 3 * cross_entropy(logits, targets) + dice_loss(logits, targets) + 4 * focal_loss(logits, targets)
    torch.testing.assert_close(combo(logits, targets), expected)
    assert set(combo.components) == {"cross_entropy", "dice", "focal"}
    logits, targets = multiclass_batch(9)
    targets[:, 0] = 255
    combo = ComboLoss({"cross_entropy": 1, "lovasz": 0.5}, ignore_index=255)
    expected = F.cross_entropy(logits, targets, ignore_index=255) + 0.5 * lovasz_loss(logits, targets, ignore_index=255)
    torch.testing.assert_close(combo(logits, targets), expected)
    with pytest.raises(ValueError, match="unknown loss names \\['dise'\\]"):
        ComboLoss({"dise": 1})
    assert set(LOSSES) >= {"cross_entropy", "dice", "focal", "jaccard", "tversky", "lovasz"}
