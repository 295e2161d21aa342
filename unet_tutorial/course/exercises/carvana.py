"""Self-checks of notebook 03 (Carvana, binary segmentation): each takes the learner's function and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise. A
miss names the mistake when it recognises one (the learner's own result, never the expected one); the expected
value is shown only on request, ``reveal=True``, which every failing message mentions. Every check takes the
learner's *function*, not a number: a value computed on the run's own data cannot tell a right method from a
shortcut that happens to agree with it (in smoke mode two validation cars and a barely trained model make that
common). So each check first runs the function on crafted cases, where every known shortcut gives its own answer
and is named, then on the run's data. ``tests/test_exercises_carvana.py`` plants each shortcut.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np
import torch

from unet_tutorial.course.exercises import call_learner, miss, passed
from unet_tutorial.data import rle_decode, rle_encode

# --- Experiment 4: which views fail? ----------------------------------------------------------------------------
_CARS = ("0d3adbbc9a8b", "4e5ac4b9f074", "9a2bfb7b3f1e", "f3b482e091c0")
_WEAK_VIEWS = {  # car -> {view: Dice}; the other images score 0.95 + view / 1000
    0: {1: 0.60, 2: 0.61, 3: 0.62, 9: 0.70, 12: 0.66, 13: 0.67, 14: 0.68},  # the first car's worst: 1, 2, 3
    1: {5: 0.30, 6: 0.31, 7: 0.32, 9: 0.70, 12: 0.70, 13: 0.71, 14: 0.72},  # the three worst images: 5, 6, 7
    2: {9: 0.70, 12: 0.76, 13: 0.77, 14: 0.78},  # view 9: the lowest median, not the lowest mean
    3: {12: 0.82, 13: 0.83, 14: 0.84},  # this car lacks views 10 and 11: their sums are the lowest
}


def _view_of(image_id: str) -> int:
    return int(image_id.rsplit("_", 1)[1])


def _car_of(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def _views_case() -> tuple[list[str], list[float]]:
    """(val_ids, per_image): views 12, 13, 14 have the lowest means; every shortcut finds other views."""
    pairs = [(car, view) for car in range(4) for view in range(1, 17) if car < 3 or view not in (10, 11)]
    val_ids = [f"{_CARS[car]}_{view:02d}" for car, view in pairs]
    return val_ids, [_WEAK_VIEWS[car].get(view, 0.95 + view / 1000) for car, view in pairs]


def _by_view(val_ids: list[str], per_image, reduce=statistics.fmean, view_of=_view_of) -> dict[int, float]:
    """Each view's Dice values (per_image, in the order of val_ids) reduced to one number."""
    views: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        views.setdefault(view_of(image_id), []).append(float(dice))
    return {view: reduce(scores) for view, scores in sorted(views.items())}


def _lowest(scores: dict[int, float]) -> set[int]:
    return set(sorted(scores, key=scores.get)[:3])


_SHORTCUTS = {  # what a shortcut ranks by -> how to say it
    "images": "are the views of the three worst *images*; average each view over all validation cars first, then "
    "pick the three lowest means",
    "first car": "are the worst views of the first car only; average each view over all validation cars",
    "highest": "have the *highest* mean Dice; sort the other way round",
    "median": "have the lowest *median* Dice; rank the views by their mean",
    "sum": "have the lowest *sum* of Dice, which is lowest where a view has fewer images; take each view's mean",
    "last digit": "come from the last digit of each id, which merges views 1 and 11, 2 and 12, ...; read the whole "
    "number after the last '_'",
}


def _view_shortcuts(val_ids: list[str], per_image) -> dict[str, set[int]]:
    """The three views each shortcut of _SHORTCUTS finds in (val_ids, per_image)."""
    means = _by_view(val_ids, per_image)
    order = sorted(range(len(val_ids)), key=lambda i: float(per_image[i]))
    first = [i for i, image_id in enumerate(val_ids) if _car_of(image_id) == _car_of(val_ids[0])]
    return {
        "images": {_view_of(val_ids[i]) for i in order[:3]},
        "first car": _lowest(_by_view([val_ids[i] for i in first], [per_image[i] for i in first])),
        "highest": set(sorted(means, key=means.get)[-3:]),
        "median": _lowest(_by_view(val_ids, per_image, statistics.median)),
        "sum": _lowest(_by_view(val_ids, per_image, sum)),
        "last digit": _lowest(_by_view(val_ids, per_image, view_of=lambda i: int(i[-1]))),
    }


def _views_miss(result, val_ids: list[str], per_image, where: str) -> str | None:
    """What is wrong with result, the learner's three views for (val_ids, per_image); None when nothing is."""
    means = _by_view(val_ids, per_image)
    third = means[sorted(means, key=means.get)[2]]
    try:
        values = list(result)  # a generator, too
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return f"{where}: worst_views_of returned {result!r}; return a list of three view numbers"
    if any(isinstance(v, str) for v in values):  # '09' would pass here and fail where the views are compared
        return f"{where}: worst_views_of returned strings {values}; return the views as numbers (int('09') is 9)"
    if numbers and all(0 <= v <= 1 for v in numbers) and any(v != int(v) for v in numbers):
        return f"{where}: {[round(v, 4) for v in numbers]} look like Dice values; return the view numbers"
    if len(set(got := [int(v) for v in numbers])) != 3 or len(got) != 3:
        return f"{where}: name three different views, got {values}"
    if all(v in means and means[v] <= third + 1e-9 for v in got):
        return None
    if set(got) == {v - 1 for v in _lowest(means)} or not set(got) & set(means):
        return f"{where}: views are numbered as in the file names, {min(means)} to {max(means)}; you gave {got}"
    right = _lowest(means)
    for shortcut, views in _view_shortcuts(val_ids, per_image).items():
        if set(got) == views and views != right:
            return f"{where}: {got} {_SHORTCUTS[shortcut]}"
    wrong = next(v for v in got if v not in means or means[v] > third + 1e-9)
    if wrong not in means:
        found = f"view {wrong} is not a view of val_ids"
    else:
        found = f"view {wrong} has a mean Dice of {means[wrong]:.4f}, and at least three views score lower"
    return (
        f"{where}: {found}; average per_image over the images of each view (the number after the last '_' of an id), "
        "then take the three lowest means"
    )


def check_worst_views(worst_views_of: Callable[..., list[int]], val_ids: list[str], per_image, reveal: bool = False):
    """Notebook 03: ``worst_views_of(val_ids, per_image)``, the three views ("<car>_<view>", 1..16) with the lowest
    mean Dice over the cars (ties at the third lowest count too), on a crafted case where each shortcut finds other
    views, then on the run's ``val_ids`` and ``per_image``.

    Args:
        reveal: after a miss, also show the three views that were expected.
    """
    case_ids, case_dice = _views_case()
    like_run = torch.tensor(case_dice) if isinstance(per_image, torch.Tensor) else np.array(case_dice)
    crafted = (case_ids, like_run, "on the check's test case (4 cars, the last without views 10 and 11)")
    for ids, dice, where in (crafted, (val_ids, per_image, "on your run")):
        copy = dice.clone() if isinstance(dice, torch.Tensor) else np.array(dice)
        got, problem = call_learner(worst_views_of, where, list(ids), copy)
        problem = problem or _views_miss(got, ids, dice, where)
        if problem is not None:
            right = sorted(_lowest(_by_view(ids, dice)))
            raise miss(problem, reveal, f"views {right} (ties at the third lowest mean count too)", "check_worst_views")
    means = _by_view(val_ids, per_image)
    print("mean Dice of your run's worst views:", {int(v): round(means[int(v)], 4) for v in got})
    passed("worst_views")


# --- Experiment 6: does the tuned threshold hold on new cars? ---------------------------------------------------
# Five cars of two images each, (object level, background level) per image: the best threshold of the first two
# cars (0.45), of the other three (0.2), of all five (0.3), of the first five images (0.4) and of the first three
# cars (0.35) all differ, each by a margin, and every slip below gives its own number.
_THRESHOLD_LEVELS = [(0.5, 0.15), (0.65, 0.3), (0.7, 0.1), (0.7, 0.2), (0.45, 0.2)]
_THRESHOLD_LEVELS += [(0.3, 0.15), (0.35, 0.2), (0.35, 0.25), (0.4, 0.2), (0.65, 0.2)]
_GRID = [round(0.05 * i, 2) for i in range(1, 20)]  # section 10's thresholds


def _threshold_case() -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(val_ids, val_probs, val_masks) as predict_loader returns them; no probability lies near a threshold."""
    n = len(_THRESHOLD_LEVELS)
    masks = torch.zeros(n, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    probs = torch.full((n, 1, 8, 8), 0.02)
    hard = torch.zeros(8, 8, dtype=torch.bool)  # background pixels the model is unsure of
    hard[0], hard[7], hard[1, :4] = True, True, True
    for k, (level, background) in enumerate(_THRESHOLD_LEVELS):
        probs[k, 0, 2:6, 2:6] = level + (torch.arange(16) * 0.025 - 0.1875).reshape(4, 4)  # odd multiples of 0.0125
        probs[k, 0][hard] = background + torch.arange(20) * 0.025 - 0.2375
    val_ids = [f"{car}_{view:02d}" for car in _CARS + ("fc2a9b0e4d17",) for view in (1, 9)]
    return val_ids, probs.clamp(0.01, 0.99).half(), masks.to(torch.uint8)


_SLIPS = {  # what a slip computes -> how to say it
    "in sample": "the gain on the cars the threshold was picked on, which flatters it; measure it on the other half",
    "sign": "the sign is reversed: Dice at the tuned threshold minus Dice at 0.5",
    "on all": "the gain on all the validation cars; measure it on the other half only",
    "dice": "a Dice, not a gain; subtract the Dice at 0.5 on the same images",
    "threshold": "the threshold itself as the gain; report the Dice it gains over 0.5 on the other half",
    "percent": "a gain that looks like a percentage; report the gain as a Dice difference",
    "swapped": "the halves are swapped; pick on the first len(val_cars) // 2 sorted cars and measure on the rest",
    "picked on all": "a threshold picked on all the validation cars (as section 10 did); pick it on the first half",
    "section 10": "section 10's gain, picked and measured on all the validation cars; pick on one half, measure on "
    "the other",
    "images": "halves that split the *images*; split the cars (car_of) so no car is on both sides",
    "rounded up": "a first half with one car too many; tune on the first len(val_cars) // 2 cars (rounded down)",
}


def _threshold_answers(val_ids: list[str], probs: torch.Tensor, masks: torch.Tensor):
    """({each tied best threshold of the first half of the cars: its gain on the rest}, {slip: (threshold, gain)})."""
    from unet_tutorial.metrics import dice_score

    cars = sorted({_car_of(i) for i in val_ids})

    def rows_of(tune_cars) -> torch.Tensor:
        return torch.tensor([_car_of(i) in tune_cars for i in val_ids])

    def pick(rows: torch.Tensor) -> float:
        return max(_GRID, key=lambda t: dice_score(probs[rows] > t, masks[rows]))

    def picked_on(rows: torch.Tensor, measured: torch.Tensor) -> tuple[float, float]:
        return pick(rows), gain(pick(rows), measured)

    def gain(t: float, rows: torch.Tensor) -> float:
        return dice_score(probs[rows] > t, masks[rows]) - dice_score(probs[rows] > 0.5, masks[rows])

    tune, every = rows_of(cars[: len(cars) // 2]), torch.ones(len(val_ids), dtype=torch.bool)
    scores = {t: dice_score(probs[tune] > t, masks[tune]) for t in _GRID}
    best = {t: gain(t, ~tune) for t in _GRID if scores[t] >= max(scores.values()) - 1e-12}
    tuned, right = next(iter(best.items()))
    by_image, rounded_up = torch.arange(len(val_ids)) < len(val_ids) // 2, rows_of(cars[: (len(cars) + 1) // 2])
    return best, {
        "in sample": (tuned, gain(tuned, tune)),
        "sign": (tuned, -right),
        "on all": (tuned, gain(tuned, every)),
        "dice": (tuned, dice_score(probs[~tune] > tuned, masks[~tune])),
        "threshold": (tuned, tuned),
        "percent": (tuned, 100 * right),
        "swapped": picked_on(~tune, tune),
        "picked on all": picked_on(every, ~tune),
        "section 10": picked_on(every, every),
        "images": picked_on(by_image, ~by_image),
        "rounded up": picked_on(rounded_up, ~rounded_up),
    }


def _threshold_miss(result, val_ids, probs, masks, where: str) -> str | None:
    """What is wrong with result, the learner's (threshold, gain) for the data; None when nothing is."""
    best, slips = _threshold_answers(val_ids, probs, masks)
    try:
        threshold, gain = (float(v) for v in result)
    except (TypeError, ValueError):
        return f"{where}: held_out_gain returned {result!r}; return two numbers, (threshold, gain)"
    if any(math.isclose(threshold, t, abs_tol=1e-6) and abs(gain - g) <= 1e-4 for t, g in best.items()):
        return None
    said = f"{where}: you returned threshold {threshold}, gain {gain:+.4f}"
    if math.isnan(gain):
        return f"{said}: a Dice of no images; check the boolean index, one True/False per image of val_ids"
    if any(math.isclose(gain, t, abs_tol=1e-6) and abs(threshold - g) <= 1e-4 for t, g in best.items()):
        return f"{said}: the two are swapped; return (threshold, gain)"
    for slip, (t, g) in slips.items():
        if math.isclose(threshold, t, abs_tol=1e-6) and abs(gain - g) <= 1e-4 and abs(g - best.get(t, math.inf)) > 1e-4:
            return f"{said}: {_SLIPS[slip]}"
    if any(math.isclose(threshold, t, abs_tol=1e-6) for t in best):
        return f"{said}: the threshold is right, the gain is not: Dice at it minus Dice at 0.5 on the other cars"
    return (
        f"{said}: that threshold is not the best of `thresholds` on the images of the first len(val_cars) // 2 "
        "sorted validation cars; score each threshold there with dice_score and keep the highest"
    )


def check_threshold_gain(
    held_out_gain: Callable[..., tuple[float, float]],
    val_ids: list[str],
    val_probs: torch.Tensor,
    val_masks: torch.Tensor,
    reveal: bool = False,
) -> None:
    """Notebook 03: ``held_out_gain(val_ids, val_probs, val_masks, thresholds)`` returns ``(threshold, gain)``.

    The threshold is the best of ``thresholds`` (0.05, 0.10, ..., 0.95) on the images of the first half of the
    sorted validation cars; the gain is its Dice minus the Dice at 0.5 on the other half. Checked on a crafted case
    where each known slip gives its own numbers, then on the run's validation images.

    Args:
        reveal: after a miss, also show the threshold and gain that were expected.
    """
    cases = [(*_threshold_case(), "on the check's test case (5 cars of 2 images)")]
    if len({_car_of(i) for i in val_ids}) > 1:
        cases.append((val_ids, val_probs, val_masks, "on your run"))
    for ids, probs, masks, where in cases:
        result, problem = call_learner(held_out_gain, where, list(ids), probs.clone(), masks.clone(), np.array(_GRID))
        problem = problem or _threshold_miss(result, ids, probs, masks, where)
        if problem is not None:
            best = _threshold_answers(ids, probs, masks)[0]
            shown = " or ".join(f"threshold {t}, gain {g:+.4f}" for t, g in best.items())
            raise miss(problem, reveal, shown, "check_threshold_gain")
    if len(cases) == 1:
        print("only one validation car: no second half to measure on, your run was not checked (hold out more cars)")
    passed("threshold_gain")


# --- Exercise 2: the submission's run-length code, by hand --------------------------------------------------------
# A run that crosses a row's end (pixels 9-12), one that reaches the last pixel, and a mask that starts with a run
_RLE_CASES = (
    np.array([[0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], np.uint8),
    np.array([[1, 1, 0], [0, 1, 1]], np.uint8),
)


def _pairs(rle: str) -> list[tuple[int, int]]:
    numbers = [int(n) for n in rle.split()]
    return list(zip(numbers[::2], numbers[1::2]))


def _joined(pairs: list[tuple[int, int]]) -> str:
    return " ".join(f"{a} {b}" for a, b in pairs)


def _rle_slips(mask: np.ndarray) -> dict[str, str]:
    """What each usual slip writes for ``mask``, by what it means to the learner."""
    right = _pairs(rle_encode(mask))
    width = mask.shape[1]
    by_rows = [(row * width + start, length) for row in range(mask.shape[0])
               for start, length in _pairs(rle_encode(mask[row:row + 1]))]  # fmt: skip
    return {
        _joined([(start - 1, length) for start, length in right]): (
            "your starts are counted from 0: Kaggle numbers the pixels from 1, so the first pixel is 1"
        ),
        rle_encode(mask.T): (
            "you numbered the pixels down the columns (column-major): Kaggle numbers them along the rows, left to "
            "right on the top row, then the next row down (mask.ravel(), NumPy's default order)"
        ),
        _joined([(start, start + length - 1) for start, length in right]): (
            "your pairs are 'start end': Kaggle's are 'start length', the number of pixels in the run"
        ),
        _joined([(start, start + length) for start, length in right]): (
            "your pairs are 'start end' (end excluded): Kaggle's are 'start length', the number of pixels in the run"
        ),
        _joined(by_rows): (
            "you split a run where a row ends: the pixels are numbered on from one row to the next, so a run that "
            "reaches the end of a row and goes on at the start of the next is one run"
        ),
        _joined(right[:-1]): "you lost the last run: one that reaches the mask's last pixel still has to be written",
        _joined(right[1:]): "you lost the first run: one that starts at the mask's first pixel still has to be written",
    }


def check_rle_encode(rle_by_hand: Callable[[np.ndarray], str], mask=None, reveal: bool = False) -> None:
    """Notebook 03: ``rle_by_hand(mask) -> str``, the Carvana submission's "start length" pairs, pixels numbered from
    1 along the rows; on the check's small masks (each usual slip gives its own string), an empty one, a random one
    (decoded back with the package's ``rle_decode``), then on ``mask`` from your run when given.

    Args:
        mask: a 0/1 mask (H, W) of your run, e.g. section 11's full-size true mask.
        reveal: after a miss, also show the string that was expected.
    """
    assert callable(rle_by_hand), (
        f"pass your function rle_by_hand itself, not {type(rle_by_hand).__name__}: the check calls it on masks of "
        "its own"
    )
    generator = np.random.default_rng(0)
    cases = [(case, f"on the check's {case.shape[0]}x{case.shape[1]} mask {case.tolist()}") for case in _RLE_CASES]
    cases.append((np.zeros((3, 4), np.uint8), "on an empty 3x4 mask (no car)"))
    cases.append(((generator.random((24, 36)) > 0.6).astype(np.uint8), "on a random 24x36 mask"))
    if mask is not None:
        mask = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if mask.ndim > 2:  # (H, W, 1) or (1, H, W): one mask all the same
            mask = mask.squeeze()
        if mask.ndim != 2:
            raise ValueError(
                f"check_rle_encode(..., mask): one mask (H, W) of 0/1, e.g. section 11's full_mask; got shape "
                f"{tuple(mask.shape)}"
            )
        cases.append(((mask > 0).astype(np.uint8), f"on your run's {mask.shape[0]}x{mask.shape[1]} mask"))
    for case, where in cases:
        got, problem = call_learner(rle_by_hand, where, case.copy())
        expected = rle_encode(case)
        if problem is None and not isinstance(got, str):
            problem = (
                f"{where}: rle_by_hand returned a {type(got).__name__}: return one string, the numbers "
                "separated by single spaces, as a line of the submission file holds them"
            )
        elif problem is None and (got.strip() != got or "  " in got):
            problem = f"{where}: separate the numbers by single spaces, with none at the start or end"
        elif problem is None and got != expected:
            slip = _rle_slips(case).get(got) if case.any() else None
            if case.any() and not got:
                slip = "you returned an empty string for a mask with car in it"
            elif not case.any():
                slip = f'an empty mask has no runs, so its code is the empty string "", not {got[:40]!r}'
            elif slip is None:
                try:  # say what the string decodes to
                    wrong = int((rle_decode(got, case.shape) != case).sum())
                    slip = (
                        f"your string decodes to a mask that differs from the one given in {wrong} of its "
                        f"{case.size} pixels"
                        if wrong
                        else "your string decodes to the right mask, but Kaggle's form is stricter: each run written "
                        "once and whole (not split, not pixel by pixel), the runs in increasing order, plain numbers "
                        "separated by single spaces"
                    )
                except ValueError as error:
                    slip = (
                        "a run of yours reaches past the mask's last pixel (a length one too long?)"
                        if "outside" in str(error)
                        else f"Kaggle could not decode your string: {error}"
                    )
            problem = f"{where}: {slip}"
        if problem is not None:
            raise miss(problem, reveal, repr(expected), "check_rle_encode")
    if mask is None:
        print(f"your code of the check's first mask: {rle_by_hand(_RLE_CASES[0].copy())!r}")
    else:  # the last case was the run's mask
        print(f"your code of your run's mask: {len(got.split()) // 2} runs, starting {got[:40]!r}")
    passed("rle_encode")
