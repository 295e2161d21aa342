"""Self-checks of notebook 03 (Carvana, binary segmentation): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise. A
miss names the mistake when it recognises one (the learner's own number, never the expected one); the expected
value is shown only on request, ``reveal=True``, which every failing message mentions. Each check accepts only the
answer that is right for the data it is given, so it can fail in smoke mode too (the notebook's smoke settings
hold out two validation cars for that; ``tests/test_exercises_carvana.py`` proves it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def _miss(message: str, reveal: bool, expected: str, call: str) -> AssertionError:
    """The AssertionError of a miss: the diagnosis, then the expected value only when the learner asked for it."""
    if reveal:
        return AssertionError(f"{message}. Expected: {expected}")
    return AssertionError(f"{message}. Stuck? {call}(..., reveal=True) shows the expected value")


def _edge_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels whose (2 width + 1)-square neighbourhood in targets (N, 1, H, W) holds both 0 and 1."""
    import torch.nn.functional as F

    size = 2 * width + 1
    return F.max_pool2d(targets, size, 1, width) != -F.max_pool2d(-targets, size, 1, width)


def _edge_dice_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(preds, targets, width): blobs with ragged predicted edges; the last set's cars touch the border."""
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


def _band_dice(preds: torch.Tensor, targets: torch.Tensor, band: torch.Tensor, pooled: bool = False) -> float:
    """Dice on the pixels of ``band`` only: per image then averaged (dice_score), or pooled over all images."""
    from unet_tutorial.metrics import dice_score

    if not pooled:
        return dice_score(preds, targets.masked_fill(~band, 255), ignore_index=255)
    p, t = preds.bool() & band, targets.bool() & band
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * (p & t).sum() / total)


def check_edge_dice(edge_dice: Callable[..., float], reveal: bool = False) -> None:
    """Notebook 03: ``edge_dice(preds, targets, width)``, the per-image Dice on the band around the true outline.

    Args:
        reveal: after a miss, also show the value that was expected.
    """
    from unet_tutorial.metrics import dice_score

    for preds, targets, width in _edge_dice_cases():
        result = edge_dice(preds.clone(), targets.clone(), width)
        band = _edge_band(targets, width)
        expected = _band_dice(preds, targets, band)
        if isinstance(result, torch.Tensor) and result.numel() > 1:
            raise _miss(
                f"width {width}: edge_dice returned {tuple(result.shape)} values for {len(preds)} images; return one "
                "number, the mean of the images' Dice, as dice_score does",
                reveal,
                f"{expected:.4f}",
                "check_edge_dice",
            )
        got = float(result)
        if math.isclose(got, expected, abs_tol=1e-6):
            continue
        padded = torch.nn.functional.pad(targets, (width,) * 4)  # zeros outside the photo
        wrong = {
            "every pixel of the image (plain Dice); count only the band around the outline": dice_score(preds, targets),
            "a band outside the car only; the band reaches inside the car as well": _band_dice(
                preds, targets, band & (targets == 0)
            ),
            "a band inside the car only; the band reaches outside the car as well": _band_dice(
                preds, targets, band & (targets == 1)
            ),
            "a band one pixel wide; use `width` (a window of 2 * width + 1)": _band_dice(
                preds, targets, _edge_band(targets, 1)
            ),
            "the photo's border as outline: where the car touches the border there is no edge (pad with -inf, as "
            "max_pool2d's padding does, not with zeros)": _band_dice(
                preds, targets, _edge_band(padded, width)[..., width:-width, width:-width]
            ),
            "the band around the *predicted* outline; the band follows the true outline, in targets": _band_dice(
                preds, targets, _edge_band(preds, width)
            ),
            "every pixel *except* the band; count the band and leave the rest out": _band_dice(preds, targets, ~band),
            "the band's pixels pooled over all images; dice_score averages each image's Dice": _band_dice(
                preds, targets, band, pooled=True
            ),
        }
        for mistake, value in wrong.items():
            if math.isclose(got, value, abs_tol=1e-6) and not math.isclose(value, expected, abs_tol=1e-6):
                raise _miss(
                    f"width {width}: you scored {got:.4f}, the Dice of {mistake}",
                    reveal,
                    f"{expected:.4f}",
                    "check_edge_dice",
                )
        raise _miss(
            f"width {width}, masks {tuple(targets.shape)}: your edge Dice {got:.4f} is not the Dice on the band; count "
            "the pixels whose (2 * width + 1)-square neighbourhood in targets holds both car and background, and "
            "average the Dice of each image, as dice_score does",
            reveal,
            f"{expected:.4f}",
            "check_edge_dice",
        )
    passed("edge_dice")


def _view_of(image_id: str) -> int:
    return int(image_id.rsplit("_", 1)[1])


def _mean_dice_per_view(val_ids: list[str], per_image) -> dict[int, float]:
    views: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        views.setdefault(_view_of(image_id), []).append(float(dice))
    return {view: sum(scores) / len(scores) for view, scores in sorted(views.items())}


def check_worst_views(worst_views, val_ids: list[str], per_image, reveal: bool = False) -> None:
    """Notebook 03: the three views ("<car>_<view>", 1..16) with the lowest mean validation Dice.

    Args:
        reveal: after a miss, also show the three views that were expected.
    """
    view_dice = _mean_dice_per_view(val_ids, per_image)
    ranked = sorted(view_dice, key=view_dice.get)
    third = view_dice[ranked[2]]
    expected = f"views {sorted(ranked[:3])} (ties at the third lowest mean count too)"
    values = list(worst_views)
    numbers = [float(v) for v in values]
    if numbers and all(0 <= v <= 1 for v in numbers) and any(v != int(v) for v in numbers):
        raise _miss(
            f"{values} look like Dice values; put the view numbers in worst_views (the number after the last '_' "
            "of an id)",
            reveal,
            expected,
            "check_worst_views",
        )
    got = [int(v) for v in values]
    if len(got) != 3 or len(set(got)) != 3:
        raise _miss(f"name three different views, got {values}", reveal, expected, "check_worst_views")
    if set(got) == {v - 1 for v in ranked[:3]} or not set(got) & set(view_dice):
        raise _miss(
            f"views are numbered as in the file names, {min(view_dice)} to {max(view_dice)}; you gave {got}",
            reveal,
            expected,
            "check_worst_views",
        )

    def is_worst(view: int) -> bool:
        return view in view_dice and view_dice[view] <= third + 1e-9

    if all(is_worst(v) for v in got):
        print("mean Dice of those views:", {v: round(view_dice[v], 4) for v in got})
        passed("worst_views")
        return
    if set(got) == set(ranked[-3:]):
        raise _miss(
            f"views {got} have the *highest* mean Dice; sort the other way round", reveal, expected, "check_worst_views"
        )
    order = sorted(range(len(per_image)), key=lambda i: float(per_image[i]))
    if got == [_view_of(val_ids[i]) for i in order[:3]] or set(got) == {_view_of(val_ids[i]) for i in order[:3]}:
        raise _miss(
            f"{got} are the views of the three worst *images*; average each view over all validation cars first, "
            "then pick the three lowest means",
            reveal,
            expected,
            "check_worst_views",
        )
    first_car = val_ids[0].rsplit("_", 1)[0]
    one_car = [i for i, image_id in enumerate(val_ids) if image_id.rsplit("_", 1)[0] == first_car]
    if len(one_car) < len(val_ids):
        car_dice = _mean_dice_per_view([val_ids[i] for i in one_car], [per_image[i] for i in one_car])
        if set(got) == set(sorted(car_dice, key=car_dice.get)[:3]):
            raise _miss(
                f"{got} are the worst views of the first car only; average each view over all validation cars",
                reveal,
                expected,
                "check_worst_views",
            )
    wrong = next(v for v in got if not is_worst(v))
    if wrong not in view_dice:
        found = f"view {wrong} is not a view of val_ids"
    else:
        found = f"view {wrong} has a mean Dice of {view_dice[wrong]:.4f}, and at least three views score lower"
    raise _miss(
        f"{found}; average per_image over the images of each view (the number after the last '_' of an id), then "
        "take the three lowest means",
        reveal,
        expected,
        "check_worst_views",
    )


def _threshold_halves(val_ids: list[str]) -> torch.Tensor:
    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    tune_cars = set(cars[: len(cars) // 2])
    return torch.tensor([i.rsplit("_", 1)[0] in tune_cars for i in val_ids])


def check_threshold_gain(
    threshold_gain: float, val_ids: list[str], val_probs: torch.Tensor, val_masks: torch.Tensor, reveal: bool = False
) -> None:
    """Notebook 03: the Dice gain (tuned threshold minus 0.5) on validation cars the threshold was not tuned on.

    The threshold is the best of 0.05, 0.10, ..., 0.95 on the first half of the sorted validation cars; the gain
    is measured on the other half.

    Args:
        reveal: after a miss, also show the gain that was expected.
    """
    from unet_tutorial.metrics import dice_score

    tune = _threshold_halves(val_ids)
    if not tune.any():
        print("only one validation car: no second half to measure on, nothing to check (hold out more cars)")
        return
    grid = [round(0.05 * i, 2) for i in range(1, 20)]

    def pick(rows: torch.Tensor) -> float:
        return max(grid, key=lambda t: dice_score(val_probs[rows] > t, val_masks[rows]))

    def gain(threshold: float, rows: torch.Tensor) -> float:
        return dice_score(val_probs[rows] > threshold, val_masks[rows]) - dice_score(
            val_probs[rows] > 0.5, val_masks[rows]
        )

    tuned, test, every = pick(tune), ~tune, torch.ones_like(tune)
    expected, in_sample = gain(tuned, test), gain(tuned, tune)
    got = float(threshold_gain)
    if abs(got - expected) <= 1e-4:
        print(f"threshold {tuned}: {in_sample:+.4f} Dice on the cars it was picked on, {expected:+.4f} on the others")
        passed("threshold_gain")
        return
    shown = f"{expected:+.4f} (threshold {tuned})"
    if math.isnan(got):
        raise _miss(
            "threshold_gain is NaN: a Dice of no images; check the boolean index, one True/False per image of val_ids",
            reveal,
            shown,
            "check_threshold_gain",
        )
    first_images = torch.arange(len(val_ids)) < len(val_ids) // 2
    tuned_all = pick(every)
    wrong = [
        (
            in_sample,
            f"{got:+.4f} is the gain on the cars the threshold ({tuned}) was picked on, which flatters it; measure it "
            "on the other half of the validation cars",
        ),
        (-expected, f"the sign is reversed: Dice at the tuned threshold ({tuned}) minus Dice at 0.5"),
        (
            gain(pick(test), tune),
            f"{got:+.4f}: the halves are swapped; pick the threshold on the first len(val_cars) // 2 sorted cars and "
            "measure on the rest",
        ),
        (
            gain(tuned_all, test),
            f"{got:+.4f}: the threshold was picked on all the validation cars (as section 10 did); pick it on the "
            "first half only",
        ),
        (
            gain(tuned_all, every),
            f"{got:+.4f} is section 10's gain, picked and measured on all the validation cars; pick on one half, "
            "measure on the other",
        ),
        (
            dice_score(val_probs[test] > tuned, val_masks[test]),
            f"{got:.4f} is a Dice, not a gain; subtract the Dice at 0.5 on the same images",
        ),
        (tuned, f"{got} is the threshold itself; report the Dice it gains over 0.5 on the other half"),
        (100 * expected, f"{got:+.4f} looks like a percentage; report the gain as a Dice difference"),
        (
            gain(pick(first_images), ~first_images),
            f"{got:+.4f}: the halves split the *images*; split the cars (car_of) so no car is on both sides",
        ),
    ]
    for value, message in wrong:
        if abs(got - value) <= 1e-4 and abs(value - expected) > 1e-4:
            raise _miss(message, reveal, shown, "check_threshold_gain")
    raise _miss(
        f"{got:+.4f} is not the gain on the other half: pick the best of 0.05, 0.10, ..., 0.95 on the images of the "
        f"first len(val_cars) // 2 sorted validation cars ({int(tune.sum())} images), then take Dice at it minus "
        "Dice at 0.5 on the other cars' images",
        reveal,
        shown,
        "check_threshold_gain",
    )
