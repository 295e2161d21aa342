"""Self-checks of notebook 05 (ADE20K, 150 classes): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def check_median_frequency_weights(median_frequency_weights: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Notebook 05: median-frequency class weights ``median(f) / f_c`` from pixel counts per class."""
    from unet_tutorial.losses import class_weights

    counts = torch.tensor([60, 30, 10])  # f = 0.6, 0.3, 0.1; the median is 0.3
    got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
    assert got.shape == (3,), f"one weight per class: expected shape (3,), got {tuple(got.shape)}"
    expected = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-5), (
        f"counts {counts.tolist()} give frequencies 0.6, 0.3, 0.1 with median 0.3, so weights 0.3 / f = "
        f"{expected.tolist()}; got {got.tolist()}"
    )
    counts = torch.tensor([10, 20, 30, 40])  # an even count: the median is the mean of the middle two, 0.25
    got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
    expected = torch.tensor([2.5, 1.25, 0.25 / 0.3, 0.625], dtype=torch.float64)
    assert torch.allclose(got, expected, rtol=1e-4), (
        f"counts {counts.tolist()} (frequencies 0.1 .. 0.4): the median of an even number of values is the mean of "
        f"the middle two, 0.25, so the weights are {[round(w, 4) for w in expected.tolist()]}; got "
        f"{[round(w, 4) for w in got.tolist()]} (torch.median returns the lower middle value; quantile(0.5) does not)"
    )
    for counts in (torch.tensor([500, 0, 20, 3, 90, 0, 7]), torch.tensor([1, 2, 0, 1000])):
        masks = torch.repeat_interleave(torch.arange(len(counts)), counts)  # one "pixel" per count
        expected = class_weights(masks, len(counts), method="median").double()
        got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
        assert torch.allclose(got, expected, rtol=1e-4), (
            f"counts {counts.tolist()}: expected {[round(w, 4) for w in expected.tolist()]} (the package's "
            f"class_weights), got {[round(w, 4) for w in got.tolist()]}. Take the median over the classes that "
            "occur only; a class with count 0 gets the largest weight of the others (not inf)."
        )
    passed("median_frequency_weights")


WINNERS = ("plain", "weighted", "tie")


def check_weighting_effect(
    frequent_winner: str,
    rare_winner: str,
    confusion_plain: torch.Tensor,
    confusion_weighted: torch.Tensor,
    train_share: torch.Tensor,
) -> None:
    """Notebook 05: which loss has the higher mean IoU on the frequent and on the rare half of the classes.

    The classes present in the validation masks (rows of the confusion matrices with pixels), sorted by their share
    of the training pixels, most frequent first (a stable sort), are cut in two: the first ``len // 2`` are the
    frequent half, the rest the rare half. A difference of the mean IoUs under 0.005 is a tie.
    """
    from unet_tutorial.metrics import iou_per_class

    for name, answer in (("frequent_winner", frequent_winner), ("rare_winner", rare_winner)):
        assert answer in WINNERS, f"{name} should be one of {WINNERS}, got {answer!r}"
    truth = confusion_plain.sum(1)  # (C,) validation pixels per class
    order = torch.argsort(torch.as_tensor(train_share, dtype=torch.float64), descending=True, stable=True)
    present = [k for k in order.tolist() if truth[k] > 0]
    assert len(present) >= 2, "at least two classes must occur in the validation masks to compare halves"
    half = len(present) // 2
    iou_plain, iou_weighted = iou_per_class(confusion_plain), iou_per_class(confusion_weighted)
    lines = []
    halves = (("frequent", frequent_winner, present[:half]), ("rare", rare_winner, present[half:]))
    for label, answer, classes in halves:
        plain, weighted = iou_plain[classes].mean().item(), iou_weighted[classes].mean().item()
        winner = "tie" if abs(plain - weighted) < 0.005 else ("plain" if plain > weighted else "weighted")
        assert answer == winner, (
            f"on the {label} half ({len(classes)} classes) the winner is not {answer!r}. Sort the classes of the "
            "validation masks by their training share, cut the list in two, average each arm's per-class IoU over "
            "each half, and call a difference under 0.005 a tie"
        )
        lines.append(f"{label} half ({len(classes)} classes): plain {plain:.3f}, weighted {weighted:.3f} -> {winner}")
    print("\n".join(lines))
    passed("weighting_effect")


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
) -> None:
    """Notebook 05: validation mIoU counted at the network's resolution (masks resized with the images, nearest)
    and at the annotation's (masks as stored, logits upsampled), over ``ADE20KDataset(root, "validation",
    limit=limit, seed=seed)`` with the images resized to ``short_side``."""
    from torch.utils.data import DataLoader

    from unet_tutorial.data import ADE20KDataset
    from unet_tutorial.train import evaluate
    from unet_tutorial.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms

    mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    truth = {}
    for name, keep_mask in (("network", False), ("annotation", True)):
        transform = eval_transforms(None, mean, std, short_side=short_side, keep_mask=keep_mask)
        loader = DataLoader(ADE20KDataset(root, "validation", transform, limit=limit, seed=seed), batch_size=1)
        truth[name] = evaluate(model, loader, device, num_classes=150, ignore_index=255, progress=False)["miou"]

    gap = abs(truth["network"] - truth["annotation"])

    def close(got: float, expected: float) -> bool:  # tight enough to tell the two apart, however near they are
        return abs(float(got) - expected) <= max(1e-5, min(0.01 * abs(expected), gap / 3))

    if (
        close(at_network, truth["annotation"])
        and close(at_annotation, truth["network"])
        and not close(at_network, truth["network"])
    ):
        raise AssertionError(
            "the two numbers are swapped: at the network's resolution the mask is resized with the "
            "image; at the annotation's the mask stays as stored and the logits are upsampled"
        )
    assert close(at_annotation, truth["annotation"]), (
        f"at annotation resolution the mIoU is {truth['annotation']:.4f}, you said {float(at_annotation):.4f}: keep "
        "the masks at their own size (eval_transforms(..., keep_mask=True), as the notebook's val_loader does) and "
        "let evaluate upsample the logits to them"
    )
    assert close(at_network, truth["network"]), (
        f"at the network's resolution the mIoU is {truth['network']:.4f}, you said {float(at_network):.4f}: resize "
        "the masks with the images (eval_transforms(None, short_side=..., ...) without keep_mask: nearest neighbour)"
    )
    diff = truth["network"] - truth["annotation"]
    print(
        f"mIoU at the network's resolution {truth['network']:.4f}, at the annotation's {truth['annotation']:.4f} "
        f"(network minus annotation: {diff:+.4f}): only the second is the benchmark's number, counted on the labels "
        "as drawn"
    )
    passed("annotation_resolution")


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
) -> None:
    """Notebook 05: the share of padded (ignored) pixels in the training crops of ``scale_crop_transforms`` for a
    photo of ``image_size`` (height, width), measured over a few hundred crops (within 0.05)."""
    expected = _padding_share(image_size, crop_size, short_side, scale)
    low, high = sorted(scale)
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    # the zooms at which the resized photo is smaller than the crop in height or width
    needs = min(max(crop_h / image_size[0], crop_w / image_size[1]) * min(image_size) / short_side, high)
    padded_crops = max(needs - low, 0) / (high - low)
    share = float(share)
    assert 0 <= share <= 1, f"a share is between 0 and 1, got {share}"
    if abs(share - padded_crops) < 0.02 and abs(expected - padded_crops) > 0.06:
        raise AssertionError(
            f"{share:.3f} is about the share of crops that hold some padding ({padded_crops:.3f}); "
            "the question is the share of pixels: average the padded fraction of each crop"
        )
    assert abs(share - expected) <= 0.05, (
        f"the crops are {expected:.1%} padding on average, you measured {share:.1%}. Pass the photo's own label "
        "(a mask with no 255 in it, e.g. zeros) through scale_crop_transforms(crop_size, short_side, scale): every "
        "255 in the output mask is then padding; average over a few hundred crops"
    )
    print(
        f"{share:.1%} of the crops' pixels are padding (expected {expected:.1%}); "
        f"{padded_crops:.0%} of the crops hold some"
    )
    passed("padding_share")
