"""Segmentation metrics: count first, reduce after.

Every metric here is a ratio of pixel counts. We first count, for each (target class, predicted class) pair, how
many pixels fall in it: the confusion matrix, built from one bincount. IoU, Dice and pixel accuracy are then a few
lines of arithmetic on that matrix, and summing matrices over batches gives exact dataset-level numbers (averaging
per-batch IoUs would not). The one exception is the Carvana metric, ``dice_score``: a mean over *images*, so it is
kept per image. ``SegmentationMetrics`` accumulates both on the device, without a host sync per batch.

Conventions: binary logits (B, 1, H, W) with float targets (B, 1, H, W) or (B, H, W) of 0/1; multi-class logits
(B, C, H, W), C > 1, with long targets (B, H, W). Pixels equal to ``ignore_index`` are excluded everywhere.
Left out: boundary metrics (boundary IoU, Hausdorff distance) and per-instance metrics.
Taught in: notebook 02 (losses and metrics); used by train.evaluate in notebooks 03-05.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unet_tutorial.conventions import valid_pixels


def _bincount(index: Tensor, length: int) -> Tensor:
    """``torch.bincount(index, minlength=length)`` for ``index`` in [0, length), without a host sync on GPUs."""
    if index.device.type == "cpu":
        return torch.bincount(index, minlength=length)
    # torch.bincount on CUDA reads index.max() back to the host to size its output; scatter_add_ does not.
    counts = torch.zeros(length, dtype=torch.long, device=index.device)
    return counts.scatter_add_(0, index, torch.ones_like(index))


def _count(preds: Tensor, targets: Tensor, num_classes: int, ignore_index: int | None) -> tuple[Tensor, Tensor]:
    """Confusion matrix and the number of bad target pixels, both left on the device (no host sync).

    A target pixel is bad when it is neither ``ignore_index`` nor an integer class in [0, num_classes); bad and
    ignored pixels go to an extra bin that is dropped.
    """
    targets = targets.reshape(-1)
    preds = preds.reshape(-1).long()
    labels = targets.long()
    ignored = ~valid_pixels(labels, ignore_index)
    in_range = (labels >= 0) & (labels < num_classes)
    if targets.is_floating_point():
        in_range &= targets == labels  # a float target such as 0.5 is not a class
    valid = in_range & ~ignored
    n = num_classes
    index = torch.where(valid, labels * n + preds, n * n)  # one bin per (target, pred) pair, one for the rest
    confusion = _bincount(index, n * n + 1)[: n * n].reshape(n, n)  # (C, C): rows = target, columns = pred
    return confusion, (~in_range & ~ignored).sum()


def confusion_matrix(preds: Tensor, targets: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Count pixels for every (target class, predicted class) pair.

    Args:
        preds: predicted class of each pixel (integers in [0, num_classes); for binary masks 0/1, any dtype).
        targets: true class of each pixel, same shape; pixels equal to ``ignore_index`` are not counted.
        num_classes: C; use 2 for binary masks (background, foreground).
        ignore_index: target value to leave out (255 for ADE20K), or None.

    Returns:
        Long tensor (C, C); entry [t, p] counts pixels of target class t predicted as p.

    Shape:
        preds, targets: any shape, the same for both, e.g. (B, H, W). Output (C, C).
    """
    if preds.shape != targets.shape:
        raise ValueError(
            f"confusion_matrix: preds {tuple(preds.shape)} and targets {tuple(targets.shape)} must "
            "have the same shape; for logits (B, C, H, W) pass preds = logits.argmax(1)."
        )
    if num_classes < 2:
        raise ValueError(f"confusion_matrix: num_classes={num_classes}; use num_classes=2 for binary masks.")
    if preds.numel() and (
        preds.min() < 0
        or preds.max() >= num_classes
        or preds.is_floating_point()
        and not torch.equal(preds, preds.round())
    ):
        raise ValueError(
            f"confusion_matrix: preds must be integer classes in [0, {num_classes}); got values "
            f"{preds.unique()[:10].tolist()}. Threshold probabilities or argmax logits first."
        )
    confusion, bad = _count(preds, targets, num_classes, ignore_index)
    if bad.item():
        _raise_bad_targets("confusion_matrix", targets, num_classes, ignore_index)
    return confusion


def _raise_bad_targets(where: str, targets: Tensor, num_classes: int, ignore_index: int | None) -> None:
    bad = [
        v
        for v in targets.unique().tolist()
        if v != ignore_index and not (float(v).is_integer() and 0 <= v < num_classes)
    ]
    raise ValueError(
        f"{where}: targets must be integer classes in [0, {num_classes}) or "
        f"ignore_index={ignore_index}; found values {bad[:10]}."
    )


def iou_per_class(confusion: Tensor) -> Tensor:
    """Intersection over union of each class: TP / (TP + FP + FN); NaN where a class is in neither target nor
    prediction. Shape: confusion (C, C) -> (C,)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp  # predicted + actual - both
    return tp / union  # 0 / 0 = NaN: the class does not occur


def dice_per_class(confusion: Tensor) -> Tensor:
    """Dice (F1) of each class: 2 TP / (2 TP + FP + FN); NaN where a class does not occur.
    Shape: confusion (C, C) -> (C,)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    return 2 * tp / (confusion.sum(0) + confusion.sum(1))


def mean_iou(confusion: Tensor) -> float:
    """Mean IoU over the classes that occur (in target or prediction); NaN if nothing was counted.
    Shape: confusion (C, C) -> float."""
    return torch.nanmean(iou_per_class(confusion)).item()


def pixel_accuracy(confusion: Tensor) -> float:
    """Fraction of counted pixels whose class is right; NaN if nothing was counted. Shape: (C, C) -> float."""
    confusion = confusion.double()
    return (confusion.diagonal().sum() / confusion.sum()).item()


def _dice_per_image(preds: Tensor, targets: Tensor, ignore_index: int | None) -> Tensor:
    """Dice of each image's foreground, 1 where both prediction and mask are empty. Shape: (B, ...) -> (B,)."""
    valid = targets != ignore_index if ignore_index is not None else torch.ones_like(targets, dtype=torch.bool)
    preds = (preds > 0) & valid
    targets = (targets == 1) & valid
    inter = (preds & targets).flatten(1).sum(1)
    total = preds.flatten(1).sum(1) + targets.flatten(1).sum(1)
    return torch.where(total > 0, 2 * inter / total.clamp(min=1), 1.0)


def _check_binary(preds: Tensor, targets: Tensor, ignore_index: int | None) -> None:
    """Refuse what ``dice_score`` would silently misread: soft predictions (any value > 0 would count as
    foreground) and targets that are not 0/1 (a 0/255 mask would have no foreground at all)."""
    if preds.numel() and preds.dtype != torch.bool and not bool(((preds == 0) | (preds == 1)).all()):
        raise ValueError(
            f"dice_score: preds must be 0/1; got values {preds.unique()[:10].tolist()}; "
            "threshold probabilities first: preds = probs > 0.5 (or logits > 0)."
        )
    allowed = (targets == 0) | (targets == 1)
    if ignore_index is not None:
        allowed |= targets == ignore_index
    if targets.numel() and not bool(allowed.all()):
        bad = targets[~allowed].unique()[:10].tolist()
        hint = "divide a 0/255 mask by 255 (masks / 255)" if 255 in bad and ignore_index != 255 else "use 0/1 masks"
        raise ValueError(f"dice_score: targets must be 0/1 or ignore_index={ignore_index}; found values {bad}; {hint}.")


def dice_score(preds: Tensor, targets: Tensor, *, ignore_index: int | None = None) -> float:
    """The Carvana competition metric: mean over images of the foreground Dice, 2|P∩T| / (|P| + |T|).

    An empty prediction of an empty mask scores 1 (nothing to find, nothing found).

    Args:
        preds: binary predictions, 0/1 (e.g. ``(logits > 0)``); probabilities are refused, threshold them first.
        targets: binary masks, 0/1; pixels equal to ``ignore_index`` are left out; other values are refused.

    Returns:
        The mean Dice as a float; NaN for an empty batch.

    Shape:
        preds, targets: (B, 1, H, W) or (B, H, W), the same for both.
    """
    if preds.shape != targets.shape:
        raise ValueError(
            f"dice_score: preds {tuple(preds.shape)} and targets {tuple(targets.shape)} must have "
            "the same shape, (B, 1, H, W) or (B, H, W)."
        )
    _check_binary(preds, targets, ignore_index)
    return _dice_per_image(preds, targets, ignore_index).double().mean().item()


class SegmentationMetrics:
    """Accumulate counts over batches, reduce once at the end; state stays on the logits' device.

    ``update`` reads nothing back to the host, so it never stalls a GPU. Bad targets (outside the class range and
    not ``ignore_index``) are counted on the device and reported by ``compute``.

    Args:
        num_classes: 1 for binary logits (B, 1, H, W); C > 1 for multi-class logits (B, C, H, W).
        ignore_index: target value to leave out, or None.
        threshold: binary only, probability above which a pixel is foreground.

    ``compute()`` keys name their reduction, so one key never means two things. Binary: "dice_per_image" (Dice
    of each image, then the mean: the Carvana metric), "iou" (foreground IoU over all pixels, 1 when both are
    empty), "pixel_accuracy"; multi-class: "miou", "dice" (Dice of each class pooled over all pixels, then the
    mean over classes), "pixel_accuracy".
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, threshold: float = 0.5) -> None:
        if num_classes < 1:
            raise ValueError(f"SegmentationMetrics: num_classes={num_classes}; use 1 for binary, C > 1 otherwise.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.confusion: Tensor | None = None  # (2, 2) for binary, (C, C) otherwise
        self.image_dice: list[Tensor] = []  # binary: each batch's (B,) Dice per image, on the logits' device
        self.bad: Tensor | None = None

    @torch.no_grad()
    def update(self, logits: Tensor, targets: Tensor) -> None:
        """Add one batch. Shape: logits (B, C, H, W); targets (B, H, W), or (B, 1, H, W) when binary."""
        logits = logits.detach()
        if logits.dim() != 4 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"SegmentationMetrics.update: expected logits (B, {self.num_classes}, H, W), got {tuple(logits.shape)}."
            )
        if self.num_classes == 1:
            if targets.dim() == 4 and targets.shape[1] == 1:
                targets = targets[:, 0]  # (B, 1, H, W) -> (B, H, W)
            preds = logits[:, 0].sigmoid() > self.threshold  # (B, H, W)
        else:
            if targets.is_floating_point():
                raise TypeError(
                    f"SegmentationMetrics.update: multi-class targets must be long class indices "
                    f"(B, H, W), got {targets.dtype}; use targets.long()."
                )
            preds = logits.argmax(1)  # (B, C, H, W) -> (B, H, W)
        if targets.shape != preds.shape:
            raise ValueError(
                f"SegmentationMetrics.update: targets {tuple(targets.shape)} do not match logits "
                f"{tuple(logits.shape)}; expected targets {tuple(preds.shape)}."
            )
        targets = targets.to(logits.device)
        confusion, bad = _count(preds, targets, max(self.num_classes, 2), self.ignore_index)
        if self.confusion is None:
            self.confusion, self.bad = confusion, bad
        else:
            self.confusion += confusion
            self.bad += bad
        if self.num_classes == 1:
            self.image_dice.append(_dice_per_image(preds, targets, self.ignore_index).double())

    def _checked_confusion(self) -> Tensor:
        if self.confusion is None:
            raise RuntimeError("SegmentationMetrics: nothing to compute yet; call update(logits, targets) first.")
        if self.bad.item():
            raise ValueError(
                f"SegmentationMetrics: {self.bad.item()} target pixels were neither a class in "
                f"[0, {max(self.num_classes, 2)}) nor ignore_index={self.ignore_index}."
            )
        return self.confusion

    def confusion_matrix(self) -> Tensor:
        """The counts so far on the CPU, checked for bad targets. Shape: (C, C), [target, predicted]; binary (2, 2)."""
        return self._checked_confusion().cpu()

    def iou_per_class(self) -> Tensor:
        """IoU of each class on the CPU, NaN where a class did not occur; binary: the foreground IoU. Shape (C,)."""
        iou = iou_per_class(self._checked_confusion()).cpu()
        return iou[1:] if self.num_classes == 1 else iou

    def dice_of_each_image(self) -> Tensor:
        """Binary: each image's Dice so far, in the order the batches came, on the CPU. Shape (N,)."""
        if self.num_classes != 1:
            raise ValueError("SegmentationMetrics.dice_of_each_image: binary only (num_classes=1); use iou_per_class")
        self._checked_confusion()
        return torch.cat(self.image_dice).cpu()

    def compute(self) -> dict[str, float]:
        """Reduce the counts to plain floats (one host sync)."""
        confusion = self._checked_confusion()
        if self.num_classes == 1:
            foreground_iou = iou_per_class(confusion)[1].nan_to_num(1.0).item()  # NaN: both empty, a perfect 1
            return {
                "dice_per_image": torch.cat(self.image_dice).mean().item(),
                "iou": foreground_iou,
                "pixel_accuracy": pixel_accuracy(confusion),
            }
        return {
            "miou": mean_iou(confusion),
            "dice": torch.nanmean(dice_per_class(confusion)).item(),
            "pixel_accuracy": pixel_accuracy(confusion),
        }
