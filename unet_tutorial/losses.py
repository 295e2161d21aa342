"""Segmentation losses, each a plain function of (logits, targets).

Cross-entropy scores every pixel on its own, so a small object on a large background barely moves it. The
overlap losses (Dice, Jaccard, Tversky) score the predicted region against the true one as a whole; focal loss
down-weights easy pixels; the Lovasz losses optimise a smooth surrogate of IoU itself. ``ComboLoss`` adds a few
of them, as the winning pneumothorax pipeline did (BCE 3, Dice 1, focal 4).

Conventions: the mode follows from the shapes. Logits (B, 1, H, W) are binary, with float targets (B, 1, H, W)
or (B, H, W) of 0/1 (soft labels in [0, 1] are accepted); logits (B, C, H, W), C > 1, are multi-class, with long
targets (B, H, W). Pixels equal to ``ignore_index`` are left out of every loss. Overlap losses sum over the whole
batch, then average over the classes present in the batch's targets (binary: the foreground only). With 150
classes and a batch that shows 10 of them, an average over all 150 would be dominated by 140 classes whose only
possible error is a few stray pixels. (segmentation_models_pytorch's DiceLoss zeroes the absent classes' loss
but still divides by all C; we average over the present ones.)
Left out: boundary and distance-map losses, per-image reductions other than ``lovasz_loss(per_image=True)``.
Taught in: notebook 02 (losses and metrics); used in notebooks 03-05.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unet_tutorial.conventions import valid_pixels


def _prepare(logits: Tensor, targets: Tensor, ignore_index: int | None, where: str) -> tuple[Tensor, Tensor]:
    """Check shapes and values; return targets with ignored pixels set to 0 and the valid-pixel mask.

    Returns:
        targets: binary float (B, 1, H, W); multi-class long (B, H, W). valid: bool, same shape.
    """
    if logits.dim() != 4:
        raise ValueError(f"{where}: expected logits (B, C, H, W), got shape {tuple(logits.shape)}.")
    batch, num_classes, height, width = logits.shape
    if num_classes == 1:
        if targets.dim() == 3:
            targets = targets.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
        if targets.shape != logits.shape:
            raise ValueError(
                f"{where}: binary logits {tuple(logits.shape)} need targets ({batch}, 1, {height}, "
                f"{width}) or ({batch}, {height}, {width}); got {tuple(targets.shape)}."
            )
        valid = valid_pixels(targets, ignore_index)
        bad = ((targets < 0) | (targets > 1)) & valid
        if bad.any():
            raise ValueError(
                f"{where}: binary targets must be 0/1 (or in [0, 1]) or ignore_index={ignore_index}; "
                f"found values {targets[bad].unique()[:10].tolist()}."
            )
        return torch.where(valid, targets.to(logits.dtype), 0.0), valid
    if targets.is_floating_point():
        raise TypeError(
            f"{where}: multi-class logits {tuple(logits.shape)} need long targets (B, H, W) of class "
            f"indices; got {targets.dtype}. Use targets.long(), or one logit channel for binary."
        )
    if targets.shape != (batch, height, width):
        raise ValueError(
            f"{where}: multi-class logits {tuple(logits.shape)} need targets ({batch}, {height}, "
            f"{width}); got {tuple(targets.shape)}" + (" (squeeze(1) the channel)." if targets.dim() == 4 else ".")
        )
    valid = valid_pixels(targets, ignore_index)
    bad = ((targets < 0) | (targets >= num_classes)) & valid
    if bad.any():
        raise ValueError(
            f"{where}: targets must be classes in [0, {num_classes}) or ignore_index={ignore_index}; "
            f"found values {targets[bad].unique()[:10].tolist()}."
        )
    return torch.where(valid, targets, 0), valid


def _overlap_counts(logits: Tensor, targets: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Soft true positives, false positives and false negatives per class, summed over batch and pixels.

    Shape: logits (B, C, H, W) -> three tensors (C,) (binary: (1,), the foreground).
    """
    logits = logits.float()  # sums over millions of pixels need float32, also under bf16 autocast
    if logits.shape[1] == 1:
        probs = torch.sigmoid(logits)  # (B, 1, H, W)
        truth = targets
        mask = valid.to(probs.dtype)  # (B, 1, H, W)
    else:
        probs = logits.softmax(1)  # (B, C, H, W)
        truth = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)  # (B, H, W, C) -> (B, C, H, W)
        mask = valid.unsqueeze(1).to(probs.dtype)  # (B, 1, H, W)
    probs, truth = probs * mask, truth * mask
    dims = (0, 2, 3)
    tp = (probs * truth).sum(dims)
    return tp, probs.sum(dims) - tp, truth.sum(dims) - tp


def _class_mean(scores: Tensor, tp: Tensor, fn: Tensor) -> Tensor:
    """Mean of per-class scores (C,) over the classes present in the targets (binary: the one score).

    tp + fn is the number of target pixels of each class (exact for 0/1 targets). With every pixel ignored no
    class is present: the score is 1 (a loss of 0) and no gradient flows.
    """
    if scores.numel() == 1:
        return scores.mean()
    present = (tp + fn) > 0  # (C,)
    if not present.any():
        return scores.sum() * 0 + 1
    return (scores * present).sum() / present.sum()


def tversky_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    ignore_index: int | None = None,
) -> Tensor:
    """1 - (TP + s) / (TP + alpha FP + beta FN + s), averaged over present classes; soft counts from probabilities.

    With smooth=0, alpha = beta = 0.5 is Dice and alpha = beta = 1 is Jaccard; beta > alpha punishes missed
    pixels more (better recall on small objects).
    Salehi et al. 2017, https://arxiv.org/abs/1706.05721

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "tversky_loss")
    tp, fp, fn = _overlap_counts(logits, targets, valid)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp(min=1e-7)  # (C,)
    return 1 - _class_mean(index, tp, fn)


def dice_loss(logits: Tensor, targets: Tensor, *, smooth: float = 1.0, ignore_index: int | None = None) -> Tensor:
    """Soft Dice loss: 1 - (2 TP + s) / (2 TP + FP + FN + s), averaged over the classes present in the targets.

    Milletari et al. 2016 (V-Net), https://arxiv.org/abs/1606.04797

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "dice_loss")
    tp, fp, fn = _overlap_counts(logits, targets, valid)
    return 1 - _class_mean((2 * tp + smooth) / (2 * tp + fp + fn + smooth).clamp(min=1e-7), tp, fn)


def jaccard_loss(logits: Tensor, targets: Tensor, *, smooth: float = 1.0, ignore_index: int | None = None) -> Tensor:
    """Soft Jaccard (IoU) loss: 1 - (TP + s) / (TP + FP + FN + s), averaged over the classes present in the targets.

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "jaccard_loss")
    tp, fp, fn = _overlap_counts(logits, targets, valid)
    return 1 - _class_mean((tp + smooth) / (tp + fp + fn + smooth).clamp(min=1e-7), tp, fn)


def cross_entropy(
    logits: Tensor, targets: Tensor, *, weight: Tensor | None = None, ignore_index: int | None = None
) -> Tensor:
    """Binary cross-entropy with logits (C = 1) or cross-entropy (C > 1), mean over the pixels not ignored.

    Args:
        weight: optional class weights (C,) from ``class_weights`` (binary: (2,) for background, foreground);
            as in PyTorch, the mean is then weighted by the target pixels' weights.

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "cross_entropy")
    if logits.shape[1] > 1:
        per_pixel = F.cross_entropy(logits, targets, weight=weight, reduction="none")  # (B, H, W)
        pixel_weight = valid.to(logits.dtype) * (weight[targets] if weight is not None else 1)
    else:
        per_pixel = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, 1, H, W)
        pixel_weight = valid.to(logits.dtype)
        if weight is not None:
            pixel_weight = pixel_weight * (weight[0] * (1 - targets) + weight[1] * targets)
            per_pixel = per_pixel * pixel_weight
    return (per_pixel * valid).sum() / pixel_weight.sum().clamp(min=1e-7)


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float | Tensor | None = 0.25,
    gamma: float = 2.0,
    ignore_index: int | None = None,
) -> Tensor:
    """Focal loss: -alpha_t (1 - p_t)^gamma log(p_t), mean over the pixels not ignored.

    Binary, it is the standard sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``, mean reduction):
    alpha weighs foreground pixels, 1 - alpha background ones. Multi-class, p_t is the softmax probability of the
    true class and alpha is one weight for all classes (a float) or one per class (a tensor (C,)).
    None means no alpha. Lin et al. 2017, https://arxiv.org/abs/1708.02002

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "focal_loss")
    if logits.shape[1] == 1:
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # -log(p_t), (B, 1, H, W)
        probs = torch.sigmoid(logits)
        p_t = probs * targets + (1 - probs) * (1 - targets)
        alpha_t = 1.0 if alpha is None else alpha * targets + (1 - alpha) * (1 - targets)
    else:
        ce = F.cross_entropy(logits, targets, reduction="none")  # (B, H, W)
        p_t = torch.exp(-ce)
        alpha_t = 1.0 if alpha is None else (alpha[targets] if isinstance(alpha, Tensor) else alpha)
    loss = alpha_t * (1 - p_t) ** gamma * ce
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def _lovasz_grad(truth_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss for errors sorted in decreasing order.

    Shape: truth_sorted (P, K), 0/1 per pixel and class -> (P, K).
    """
    positives = truth_sorted.sum(0)
    intersection = positives - truth_sorted.cumsum(0)
    union = positives + (1 - truth_sorted).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])  # (P, K)


def _lovasz_flat(errors: Tensor, truth: Tensor) -> Tensor:
    """Lovasz extension per column: sort errors, weight them by the Jaccard gradient. (P, K) -> (K,)."""
    errors_sorted, order = errors.sort(0, descending=True)
    return (errors_sorted * _lovasz_grad(truth.gather(0, order))).sum(0)


def lovasz_loss(logits: Tensor, targets: Tensor, *, per_image: bool = False, ignore_index: int | None = None) -> Tensor:
    """Lovasz hinge (binary) or Lovasz-softmax (multi-class): a convex surrogate of 1 - IoU.

    Multi-class, the mean runs over the classes present in the targets. With ``per_image`` the loss is computed
    for each image, then averaged. Berman et al. 2018, https://arxiv.org/abs/1705.08790

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """
    targets, valid = _prepare(logits, targets, ignore_index, "lovasz_loss")
    if per_image:
        return torch.stack(
            [_lovasz(logits[i : i + 1], targets[i : i + 1], valid[i : i + 1]) for i in range(logits.shape[0])]
        ).mean()
    return _lovasz(logits, targets, valid)


def _lovasz(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    if logits.shape[1] == 1:
        scores, truth = logits[valid].unsqueeze(1), targets[valid].unsqueeze(1)  # (P, 1) valid pixels
        errors = 1 - scores * (2 * truth - 1)  # hinge: margin of each pixel on the wrong side
        return _lovasz_flat(F.relu(errors), truth).sum()
    probs = logits.softmax(1).permute(0, 2, 3, 1)[valid]  # (B, C, H, W) -> (B, H, W, C) -> (P, C)
    truth = F.one_hot(targets[valid], logits.shape[1]).to(probs.dtype)  # (P, C)
    present = truth.sum(0) > 0
    losses = _lovasz_flat((truth - probs).abs(), truth)  # (C,)
    return (losses * present).sum() / present.sum().clamp(min=1)


def class_weights(
    masks: Tensor | Iterable[Tensor], num_classes: int, *, ignore_index: int | None = None, method: str = "median"
) -> Tensor:
    """Class weights for weighted cross-entropy, from the pixel frequency f_c of each class.

    Args:
        masks: one tensor of class indices, or an iterable of them (e.g. every mask of a dataset).
        num_classes: C (2 for binary masks).
        method: "inverse" (1 / (C f_c)), "median" (median(f) / f_c over the classes that occur, the mean of
            the middle two for an even count; a simplified form of Eigen & Fergus 2015,
            https://arxiv.org/abs/1411.4734, who count f_c only over the images that contain c) or "enet"
            (1 / ln(1.02 + f_c), Paszke et al. 2016, https://arxiv.org/abs/1606.02147).

    Returns:
        Float tensor (C,). A class that never occurs gets the largest weight of the others.

    Shape:
        masks: any shape of integer classes (floats of 0/1 for binary); output (C,).
    """
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for mask in [masks] if isinstance(masks, Tensor) else masks:
        labels = mask.reshape(-1).long().cpu()
        if ignore_index is not None:
            labels = labels[labels != ignore_index]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"class_weights: masks must hold classes in [0, {num_classes}) or "
                f"ignore_index={ignore_index}; found {labels.min().item()}..{labels.max().item()}."
            )
        counts += torch.bincount(labels, minlength=num_classes).double()
    if counts.sum() == 0:
        raise ValueError("class_weights: no pixels counted; are all masks empty or ignore_index?")
    freq = counts / counts.sum()
    present = freq > 0
    if method == "inverse":
        weights = 1 / (num_classes * freq)
    elif method == "median":
        # quantile(0.5) is the true median; torch.median returns the lower of the two middle values
        weights = freq[present].quantile(0.5) / freq
    elif method == "enet":
        weights = 1 / torch.log(1.02 + freq)
    else:
        raise ValueError(f"class_weights: method={method!r}; choose 'inverse', 'median' or 'enet'.")
    return torch.where(present, weights, weights[present].max()).float()


LOSSES = {
    "cross_entropy": cross_entropy,
    "dice": dice_loss,
    "jaccard": jaccard_loss,
    "tversky": tversky_loss,
    "focal": focal_loss,
    "lovasz": lovasz_loss,
}


class ComboLoss(nn.Module):
    """A weighted sum of losses, e.g. BCE 3 + Dice 1 + focal 4 (the winning SIIM-ACR pneumothorax recipe).

    Args:
        weights: loss name -> weight; names from ``LOSSES`` ("cross_entropy": binary for one output channel,
            multi-class for C).
        ignore_index: passed to every loss.

    After each call, ``components`` holds each term (detached, unweighted) for logging.

    Shape:
        logits (B, 1, H, W) with targets (B, 1, H, W) or (B, H, W) of 0/1; or logits (B, C, H, W) with long
        targets (B, H, W). Returns a scalar.
    """

    def __init__(self, weights: dict[str, float] | None = None, ignore_index: int | None = None) -> None:
        super().__init__()
        self.weights = dict(weights if weights is not None else {"cross_entropy": 3, "dice": 1, "focal": 4})
        unknown = sorted(set(self.weights) - set(LOSSES))
        if unknown or not self.weights:
            raise ValueError(f"ComboLoss: unknown loss names {unknown} in weights; choose from {sorted(LOSSES)}.")
        self.ignore_index = ignore_index
        self.components: dict[str, Tensor] = {}

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        terms = {name: LOSSES[name](logits, targets, ignore_index=self.ignore_index) for name in self.weights}
        self.components = {name: term.detach() for name, term in terms.items()}
        return sum(self.weights[name] * term for name, term in terms.items())
