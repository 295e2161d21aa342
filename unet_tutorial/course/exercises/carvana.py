"""Self-checks of notebook 03 (Carvana, binary segmentation): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def _edge_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels whose (2 width + 1)-square neighbourhood in targets (N, 1, H, W) holds both 0 and 1."""
    import torch.nn.functional as F

    size = 2 * width + 1
    return F.max_pool2d(targets, size, 1, width) != -F.max_pool2d(-targets, size, 1, width)


def _edge_dice_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(preds, targets, width): blobs with ragged predicted edges; the second set's cars touch the border."""
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    cases = []
    for width, (height, width_px) in ((1, (20, 28)), (2, (24, 32)), (3, (30, 30))):
        noise = torch.rand(3, 1, height // 4, width_px // 4, generator=generator)
        targets = (F.interpolate(noise, size=(height, width_px), mode="bilinear") > 0.5).float()
        ragged = F.interpolate(
            torch.rand(3, 1, height // 2, width_px // 2, generator=generator), size=(height, width_px)
        )
        preds = (F.avg_pool2d(targets, 3, 1, 1) + 0.3 * (ragged - 0.5) > 0.5).float()
        cases.append((preds, targets, width))
    targets = torch.zeros(2, 1, 16, 16)
    targets[:, :, 4:, :10] = 1  # a car cut by the bottom and left borders of the photo
    preds = targets.clone()
    preds[:, :, 3:6, :12] = 1
    cases.append((preds, targets, 2))
    return cases


def check_edge_dice(edge_dice: Callable[..., float]) -> None:
    """Notebook 03: ``edge_dice(preds, targets, width)``, the per-image Dice on the band around the true outline."""
    from unet_tutorial.metrics import dice_score

    def reference(preds, targets, width, band=None):
        band = _edge_band(targets, width) if band is None else band
        return dice_score(preds, targets.masked_fill(~band, 255), ignore_index=255)

    for preds, targets, width in _edge_dice_cases():
        got = float(edge_dice(preds.clone(), targets.clone(), width))
        expected = reference(preds, targets, width)
        if math.isclose(got, expected, abs_tol=1e-6):
            continue
        padded = torch.nn.functional.pad(targets, (width,) * 4)  # zeros outside the photo
        wrong = {
            "every pixel of the image (plain Dice); count only the band around the outline": dice_score(preds, targets),
            "a band outside the car only; the band reaches inside the car as well": reference(
                preds, targets, width, (_edge_band(targets, width) & (targets == 0))
            ),
            "a band inside the car only; the band reaches outside the car as well": reference(
                preds, targets, width, (_edge_band(targets, width) & (targets == 1))
            ),
            "a band one pixel wide; use `width` (a window of 2 * width + 1)": reference(preds, targets, 1),
            "the photo's border as outline: where the car touches the border there is no edge (pad with -inf, as "
            "max_pool2d's padding does, not with zeros)": reference(
                preds, targets, width, _edge_band(padded, width)[..., width:-width, width:-width]
            ),
        }
        for mistake, value in wrong.items():
            if math.isclose(got, value, abs_tol=1e-6) and not math.isclose(value, expected, abs_tol=1e-6):
                raise AssertionError(f"width {width}: you scored {got:.4f}, the Dice of {mistake}")
        raise AssertionError(
            f"width {width}, masks {tuple(targets.shape)}: edge Dice {expected:.4f}, you said {got:.4f}; count the "
            "pixels whose (2 * width + 1)-square neighbourhood in targets holds both car and background, and "
            "average the Dice of each image, as dice_score does"
        )
    passed("edge_dice")


def _mean_dice_per_view(val_ids: list[str], per_image) -> dict[int, float]:
    views: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        views.setdefault(int(image_id.rsplit("_", 1)[1]), []).append(float(dice))
    return {view: sum(scores) / len(scores) for view, scores in sorted(views.items())}


def check_worst_views(worst_views, val_ids: list[str], per_image) -> None:
    """Notebook 03: the three views ("<car>_<view>", 1..16) with the lowest mean validation Dice."""
    view_dice = _mean_dice_per_view(val_ids, per_image)
    ranked = sorted(view_dice, key=view_dice.get)
    got = [int(v) for v in worst_views]
    assert len(got) == 3 and len(set(got)) == 3, f"name three different views, got {list(worst_views)}"
    third = view_dice[ranked[2]]
    if all(v not in view_dice for v in got) or set(got) == {v - 1 for v in ranked[:3]}:
        raise AssertionError(
            f"views are numbered as in the file names, {min(view_dice)} to {max(view_dice)}; you gave {got}"
        )
    if set(got) == set(ranked[-3:]):
        raise AssertionError(f"views {got} have the *highest* mean Dice; sort the other way round")
    worst_images = [
        int(val_ids[i].rsplit("_", 1)[1]) for i in sorted(range(len(per_image)), key=lambda i: per_image[i])[:3]
    ]
    wrong = [v for v in got if v not in view_dice or view_dice[v] > third + 1e-9]
    if wrong and got == worst_images:
        raise AssertionError(
            f"{got} are the views of the three worst *images*; average each view over all "
            "validation cars first, then pick the three lowest means"
        )
    assert not wrong, (
        f"views {wrong} are not among the three with the lowest mean Dice (the third lowest mean is {third:.4f}, "
        f"view {wrong[0]} has {view_dice.get(wrong[0], float('nan')):.4f}); average per_image over the images of "
        "each view (the number after the last '_')"
    )
    print("mean Dice of those views:", {v: round(view_dice[v], 4) for v in got})
    passed("worst_views")


def _threshold_halves(val_ids: list[str]) -> torch.Tensor:
    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    tune_cars = set(cars[: len(cars) // 2])
    return torch.tensor([i.rsplit("_", 1)[0] in tune_cars for i in val_ids])


def check_threshold_gain(
    threshold_gain: float, val_ids: list[str], val_probs: torch.Tensor, val_masks: torch.Tensor
) -> None:
    """Notebook 03: the Dice gain (tuned threshold minus 0.5) on validation cars the threshold was not tuned on.

    The threshold is the best of 0.05, 0.10, ..., 0.95 on the first half of the sorted validation cars; the gain
    is measured on the other half.
    """
    from unet_tutorial.metrics import dice_score

    tune = _threshold_halves(val_ids)
    if not tune.any():
        print("only one validation car (smoke mode?): no second half to measure on, nothing to check")
        return
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    tuned = max(grid, key=lambda t: dice_score(val_probs[tune] > t, val_masks[tune]))
    test = ~tune

    def gain(rows: torch.Tensor) -> float:
        return dice_score(val_probs[rows] > tuned, val_masks[rows]) - dice_score(val_probs[rows] > 0.5, val_masks[rows])

    expected, in_sample = gain(test), gain(tune)
    got = float(threshold_gain)
    if abs(got - expected) > 1e-4 and abs(got - in_sample) < 1e-4:
        raise AssertionError(
            f"{got:+.4f} is the gain on the cars the threshold ({tuned}) was picked on, which "
            "flatters it; measure it on the other half of the validation cars"
        )
    if abs(got - expected) > 1e-4 and abs(got + expected) < 1e-4:
        raise AssertionError(f"the sign is reversed: Dice at the tuned threshold ({tuned}) minus Dice at 0.5")
    assert abs(got - expected) < 1e-4, (
        f"expected {expected:+.4f} (threshold {tuned}, picked on the {int(tune.sum())} images of the first "
        f"len(val_cars) // 2 of the sorted validation cars val_cars, measured on the others), got {got:+.4f}"
    )
    print(f"threshold {tuned}: {in_sample:+.4f} Dice on the cars it was picked on, {expected:+.4f} on the others")
    passed("threshold_gain")
