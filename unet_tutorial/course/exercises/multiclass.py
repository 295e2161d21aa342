"""Self-checks of notebook 05 (ADE20K, 150 classes): each takes the learner's answer and says what is wrong.

A failing check names the mistake in the method (what was computed instead of what was asked) and never shows
the expected value unless asked: every check takes ``reveal=False``, and its message says to call it again
with ``reveal=True`` for the value. The experiments' checks recompute the truth from the data they are given
(the notebook's own run), so they reject a wrong answer in smoke mode as well as on a GPU
(tests/test_exercises_multiclass.py plants the wrong answers). Left out: grading (``course.grade`` runs these).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NoReturn

import torch

from unet_tutorial.course.exercises import passed

REVEAL_HINT = "(to see the expected value, call the check again with reveal=True)"


def _fail(message: str, reveal: bool, expected: str) -> NoReturn:
    """Raise the diagnosis; the expected value only when the learner asked for it."""
    raise AssertionError(f"{message}. Expected {expected}." if reveal else f"{message} {REVEAL_HINT}")


def _number(name: str, value) -> float:
    """``value`` as a float (a Python or NumPy number, or a tensor of one element), else a sentence."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} should be a number, got {value!r}") from None


# --- Exercise 1: median-frequency class weights -------------------------------------------------------------------

# Pixel counts per class: an odd and an even number of classes, then classes that never occur.
MEDIAN_CASES = ([60, 30, 10], [10, 20, 30, 40], [500, 0, 20, 3, 90, 0, 7], [1, 2, 0, 1000])
# Weights other methods give, and what each one means (compared on the classes that occur).
_MEDIAN_MISTAKES = {
    "lower": "with an even number of classes your median is the lower of the two middle frequencies "
    "(torch.median does that); the median of an even count is the mean of the two (torch.quantile(f, 0.5))",
    "mean": "your weights divide the mean frequency by f_c; median-frequency weights divide the median",
    "zeros": "your median counts the classes that never occur (f = 0) too; take it over the classes that occur",
    "inverted": "your weights are f_c / median(f), upside down: a rare class (small f_c) must get a large weight",
}


def _median_weights(counts: torch.Tensor, method: str = "right") -> torch.Tensor:
    """(C,) float64 weights from (C,) counts, by the right method or one of ``_MEDIAN_MISTAKES``."""
    freq = counts.double() / counts.sum()
    present = freq > 0
    if method == "lower":
        reference = freq[present].median()
    elif method == "mean":
        reference = freq[present].mean()
    elif method == "zeros":
        reference = freq.quantile(0.5)
    else:
        reference = freq[present].quantile(0.5)
    weights = freq / reference if method == "inverted" else reference / freq
    return torch.where(present, weights, weights[present].max())


def check_median_frequency_weights(
    median_frequency_weights: Callable[[torch.Tensor], torch.Tensor], *, reveal: bool = False
) -> None:
    """Notebook 05, exercise 1: ``median(f) / f_c`` with ``f = counts / counts.sum()``, the median over the classes
    that occur (the mean of the middle two for an even count), and the largest weight for a class that never
    occurs. Any floating-point dtype passes (float32 like the package's ``class_weights``, or float64)."""
    for values in MEDIAN_CASES:
        counts = torch.tensor(values)
        got = median_frequency_weights(counts.clone())
        assert isinstance(got, torch.Tensor), f"return a tensor of weights, got {type(got).__name__}"
        assert got.shape == counts.shape, (
            f"one weight per class: counts of shape {tuple(counts.shape)} give weights of that shape, "
            f"got {tuple(got.shape)}"
        )
        assert got.is_floating_point(), f"weights are fractions: return floating-point weights, got {got.dtype}"
        got, expected = got.detach().double().cpu(), _median_weights(counts)
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-8):
            continue
        shown, present = f"weights {expected.tolist()} for counts {values}", counts > 0
        if not torch.isfinite(got).all():
            _fail(
                f"counts {values}: some of your weights are inf or NaN. A class that never occurs has f_c = 0, "
                "so median(f) / f_c divides by zero there: give it the largest weight of the others",
                reveal,
                shown,
            )
        if torch.allclose(got[present], expected[present], rtol=1e-4, atol=1e-8):
            _fail(
                f"counts {values}: the weights of the classes that occur are right, those of the classes that "
                "never occur are not: give each of them the largest weight of the classes that occur",
                reveal,
                shown,
            )
        for method, mistake in _MEDIAN_MISTAKES.items():
            wrong = _median_weights(counts, method)
            if torch.allclose(got[present], wrong[present], rtol=1e-4, atol=1e-8):
                _fail(f"counts {values}: {mistake}", reveal, shown)
        _fail(
            f"counts {values}: your weights are not median(f) / f_c with f = counts / counts.sum() and the "
            "median over the classes that occur",
            reveal,
            shown,
        )
    passed("median_frequency_weights")


# --- Experiment 2: where do the class weights win, where do they lose? --------------------------------------------


def _half_gaps(
    confusion_plain: torch.Tensor, confusion_weighted: torch.Tensor, train_share: torch.Tensor, method: str = "right"
) -> tuple[float, float]:
    """(frequent half, rare half): mean IoU of the weighted model minus the plain one's, by the right method or a
    known mistake: "validation share" (sorted by it), "all classes" (absent ones as IoU 0), "round up" (the first
    half takes the middle class), "rarest first" (sorted the wrong way), "whole" (no halves)."""
    from unet_tutorial.metrics import iou_per_class

    val_pixels = confusion_plain.sum(1)  # (C,) validation pixels per class
    share = torch.as_tensor(train_share, dtype=torch.float64).cpu()
    key = val_pixels.double() if method == "validation share" else share
    order = torch.argsort(key, descending=method != "rarest first", stable=True).tolist()
    classes = order if method == "all classes" else [k for k in order if val_pixels[k] > 0]
    gap = (iou_per_class(confusion_weighted) - iou_per_class(confusion_plain)).nan_to_num(0.0)  # (C,)
    if method == "whole":
        return (gap[classes].mean().item(),) * 2
    cut = (len(classes) + 1) // 2 if method == "round up" else len(classes) // 2
    return gap[classes[:cut]].mean().item(), gap[classes[cut:]].mean().item()


_GAP_MISTAKES = {
    "flipped": "both signs are flipped: the gap is the weighted model's mean IoU minus the plain model's",
    "swapped": "your two numbers are swapped: the frequent half comes first in a list sorted most frequent first",
    "validation share": "your halves follow each class's share of the validation pixels; sort by its share of the "
    "training pixels (`share`), which is what the weights were computed from",
    "all classes": "your halves include classes that never occur in the validation masks (IoU 0/0, not 0): keep "
    "only the classes with validation pixels",
    "round up": "your frequent half takes the middle class: the frequent half is the first len // 2 classes",
    "rarest first": "your list is sorted rarest first: sort by training share, most frequent first",
    "whole": "both numbers are the gap over all the classes: average over each half separately",
}


def check_weighting_effect(
    frequent_gap: float,
    rare_gap: float,
    confusion_plain: torch.Tensor,
    confusion_weighted: torch.Tensor,
    train_share: torch.Tensor,
    *,
    reveal: bool = False,
) -> None:
    """Notebook 05, experiment 2: on the frequent and on the rare half of the classes, the weighted model's mean
    IoU minus the plain model's.

    The classes present in the validation masks (rows of the confusion matrices with pixels), sorted by their share
    of the training pixels, most frequent first (a stable sort), are cut in two: the first ``len // 2`` are the
    frequent half, the rest the rare half. Both gaps must be within 0.0005 of the check's own.
    """
    answers = {"frequent_gap": _number("frequent_gap", frequent_gap), "rare_gap": _number("rare_gap", rare_gap)}
    for name, value in answers.items():
        assert not math.isnan(value), (
            f"{name} is NaN: a class in that half never occurs in the validation masks, so its IoU is 0/0. "
            "Keep only the classes with validation pixels (val_pixels > 0)"
        )
    assert torch.equal(confusion_plain.sum(1), confusion_weighted.sum(1)), (
        "the two confusion matrices count different validation pixels: score both models on the same images"
    )
    truth = _half_gaps(confusion_plain, confusion_weighted, train_share)
    got = (answers["frequent_gap"], answers["rare_gap"])

    def near(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return all(abs(x - y) <= 5e-4 for x, y in zip(a, b))

    shown = f"frequent_gap {truth[0]:+.4f} and rare_gap {truth[1]:+.4f}"
    if not near(got, truth):
        wrong = {
            "flipped": (-truth[0], -truth[1]),
            "swapped": (truth[1], truth[0]),
            **{
                m: _half_gaps(confusion_plain, confusion_weighted, train_share, m)
                for m in _GAP_MISTAKES
                if m not in ("flipped", "swapped")
            },
        }
        for method, values in wrong.items():
            if near(got, values) and not near(values, truth):
                _fail(_GAP_MISTAKES[method], reveal, shown)
        if abs(got[0] - truth[0]) <= 5e-4:
            _fail(
                "frequent_gap is right, rare_gap is not: the rare half is every class after the first len // 2",
                reveal,
                shown,
            )
        if abs(got[1] - truth[1]) <= 5e-4:
            _fail(
                "rare_gap is right, frequent_gap is not: the frequent half is the first len // 2 classes", reveal, shown
            )
        _fail(
            "neither gap matches: take the classes with validation pixels, sort them by training share (most "
            "frequent first, stable), cut after len // 2, and average IOU['weighted'] - IOU['plain'] over each half",
            reveal,
            shown,
        )
    present = int((confusion_plain.sum(1) > 0).sum())
    print(
        f"frequent half ({present // 2} classes): weighted minus plain {truth[0]:+.3f} mean IoU; "
        f"rare half ({present - present // 2} classes): {truth[1]:+.3f}"
    )
    passed("weighting_effect")


# --- Experiment 3: score at the network's resolution, or at the annotation's? --------------------------------------


def check_annotation_resolution(
    at_network: float,
    at_annotation: float,
    model: torch.nn.Module,
    root,
    short_side: int,
    *,
    limit: int | None = None,
    seed: int = 0,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    device="cpu",
    reveal: bool = False,
) -> None:
    """Notebook 05, experiment 3: validation mIoU counted at the network's resolution (masks resized with the
    images, nearest) and at the annotation's (masks as stored, logits upsampled), over ``ADE20KDataset(root,
    "validation", limit=limit, seed=seed)`` with the images resized to ``short_side``."""
    from torch.utils.data import DataLoader

    from unet_tutorial.data import ADE20KDataset
    from unet_tutorial.train import evaluate
    from unet_tutorial.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms

    got = {"network": _number("at_network", at_network), "annotation": _number("at_annotation", at_annotation)}
    mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    truth = {}
    for name, keep_mask in (("network", False), ("annotation", True)):
        transform = eval_transforms(None, mean, std, short_side=short_side, keep_mask=keep_mask)
        loader = DataLoader(ADE20KDataset(root, "validation", transform, limit=limit, seed=seed), batch_size=1)
        truth[name] = evaluate(model, loader, device, num_classes=150, ignore_index=255, progress=False)["miou"]
    gap = abs(truth["network"] - truth["annotation"])
    shown = f"at_network {truth['network']:.4f} and at_annotation {truth['annotation']:.4f}"

    def close(value: float, expected: float) -> bool:  # tight enough to tell the two apart, however near they are
        return abs(value - expected) <= max(1e-6, min(0.01 * abs(expected), gap / 3))

    right = {name: close(got[name], truth[name]) for name in got}
    if all(right.values()):
        diff = truth["network"] - truth["annotation"]
        print(
            f"mIoU at the network's resolution {truth['network']:.4f}, at the annotation's {truth['annotation']:.4f} "
            f"(network minus annotation: {diff:+.4f}): only the second is the benchmark's number"
        )
        passed("annotation_resolution")
        return
    if close(got["network"], truth["annotation"]) and close(got["annotation"], truth["network"]):
        _fail(
            "the two numbers are swapped: at the network's resolution the mask is resized with the image; at the "
            "annotation's the mask stays as stored and the logits are upsampled",
            reveal,
            shown,
        )
    for name, other in (("network", "annotation"), ("annotation", "network")):
        if close(got["network"], truth[name]) and close(got["annotation"], truth[name]):
            how = "keep_mask=True" if name == "network" else "without keep_mask (nearest resize)"
            _fail(
                f"both numbers are counted at the {name}'s resolution: score at_{other} with the masks "
                f"transformed {how}",
                reveal,
                shown,
            )
    if not right["annotation"]:
        _fail(
            "at_annotation is not this model's mIoU at annotation resolution on these images: keep the masks at "
            f"their own size (eval_transforms(..., keep_mask=True)), the images at short side {short_side}, and "
            f"the images of ADE20KDataset(root, 'validation', limit={limit}, seed={seed})",
            reveal,
            shown,
        )
    _fail(
        "at_network is not this model's mIoU at the network's resolution on these images: resize the masks with "
        f"the images (eval_transforms(None, short_side={short_side}, ...) without keep_mask: nearest neighbour), "
        f"on the images of ADE20KDataset(root, 'validation', limit={limit}, seed={seed})",
        reveal,
        shown,
    )


# --- Experiment 4: crops bigger than the image ---------------------------------------------------------------------


def _padding_share(
    image_size: tuple[int, int], crop_size: int | tuple[int, int], short_side: int, scale: tuple[float, float]
) -> float:
    """The expected share of padding in ``transforms.scale_crop_transforms`` crops of one image of ``image_size``.

    Each of the 65 zooms is equally likely; a side shorter than the crop is padded up to it, and the crop then
    keeps all of that side, so a crop holds ``min(h, crop_h) * min(w, crop_w)`` image pixels.
    """
    height, width = image_size
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    low, high = sorted(scale)
    sides = sorted({max(1, round(short_side * (low + (high - low) * i / 64))) for i in range(65)})
    shares = []
    for side in sides:
        factor = side / min(height, width)
        h, w = round(height * factor), round(width * factor)
        shares.append(1 - min(h, crop_h) * min(w, crop_w) / (crop_h * crop_w))
    return sum(shares) / len(shares)


def check_padding_share(
    share: float,
    *,
    image_size: tuple[int, int] = (512, 683),
    crop_size: int = 512,
    short_side: int = 384,
    scale: tuple[float, float] = (0.5, 2.0),
    reveal: bool = False,
) -> None:
    """Notebook 05, experiment 4: the share of padded (ignored) pixels in the training crops of
    ``scale_crop_transforms`` for a photo of ``image_size`` (height, width), measured over a few hundred crops
    (within 0.05)."""
    expected = _padding_share(image_size, crop_size, short_side, scale)
    low, high = sorted(scale)
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    # the zooms at which the resized photo is smaller than the crop in height or width
    needs = min(max(crop_h / image_size[0], crop_w / image_size[1]) * min(image_size) / short_side, high)
    padded_crops = max(needs - low, 0) / (high - low)
    share = _number("padding_share", share)
    shown = f"a padding share of {expected:.3f}"
    if 1 < share <= 100:
        _fail(f"{share} looks like a percentage: give the share as a fraction between 0 and 1", reveal, shown)
    assert 0 <= share <= 1, f"a share is between 0 and 1, got {share}"
    if abs(share - expected) <= 0.05:
        print(
            f"{share:.1%} of the crops' pixels are padding (expected, from the zoom's range: {padded_crops:.0%} of "
            "the crops hold some)"
        )
        passed("padding_share")
        return
    if abs(share - padded_crops) < 0.02:
        _fail(
            "that is about the share of crops that hold some padding; the question is the share of pixels: "
            "average the padded fraction of each crop",
            reveal,
            shown,
        )
    if share < 0.005:
        _fail(
            "your crops hold no padding: count the 255s in the output mask (the image is padded with 0, which a "
            "photo of zeros cannot show), and pass a mask with no 255 in it",
            reveal,
            shown,
        )
    if crop_size == short_side or abs(share - _padding_share(image_size, crop_size, crop_size, scale)) > 0.05:
        _fail(
            f"your share is not that of {crop_size} px crops of a {image_size[1]} x {image_size[0]} photo at short "
            f"side {short_side} and zoom {low}-{high}: check the arguments of scale_crop_transforms and average "
            "the padded share of a few hundred crops",
            reveal,
            shown,
        )
    _fail(
        f"that is the share when the short side equals the crop ({crop_size}, section 4's setting); this "
        f"recipe resizes to a short side of {short_side}",
        reveal,
        shown,
    )
