"""Self-checks of notebook 02 (losses and metrics): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
A miss diagnoses the method (which step went wrong) and never prints the expected value; ``reveal=True`` prints
it, for a learner who has tried and wants to see it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed

_REVEAL = "pass reveal=True to the check to see the expected answer"


def check_frequency_weighted_iou(frequency_weighted_iou: Callable[[torch.Tensor], float], reveal: bool = False) -> None:
    """Notebook 02: the IoU of each class weighted by its share of the target pixels (rows), summed."""
    from unet_tutorial.metrics import dice_per_class, iou_per_class, mean_iou, pixel_accuracy

    def expected(confusion: torch.Tensor) -> float:
        confusion = confusion.double()
        share = confusion.sum(1) / confusion.sum()
        return float((share * iou_per_class(confusion).nan_to_num(0.0)).sum())

    cases = {
        "three classes": torch.tensor([[50, 2, 3], [4, 20, 1], [6, 0, 14]]),
        # class 3 is in neither targets nor predictions (its IoU is NaN); class 2 is predicted but never true
        "a class nowhere, a class only predicted": torch.tensor(
            [[60, 5, 5, 0], [2, 20, 3, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
        ),
    }
    for name, confusion in cases.items():
        got = float(frequency_weighted_iou(confusion.clone()))
        want = expected(confusion)
        if reveal:
            print(f"{name}: yours {got:.4f}, expected {want:.4f}")
        if math.isclose(got, want, abs_tol=1e-6):
            continue
        assert not math.isnan(got), (
            f"{name}: you returned NaN. A class in neither the targets nor the predictions has IoU NaN (0 / 0) "
            "and share 0: leave it out, or count it as 0"
        )
        by_columns = confusion.double().sum(0) / confusion.sum()
        if math.isclose(got, float((by_columns * iou_per_class(confusion).nan_to_num(0.0)).sum()), abs_tol=1e-6):
            raise AssertionError(
                f"{name}: you weighted by the columns' shares, the *predicted* pixels; the weights are each "
                "class's share of the true pixels, the rows"
            )
        if math.isclose(got, mean_iou(confusion), abs_tol=1e-6):
            raise AssertionError(f"{name}: {got:.4f} is the plain mean IoU; weight each class by its share")
        if math.isclose(got, pixel_accuracy(confusion), abs_tol=1e-6):
            raise AssertionError(f"{name}: {got:.4f} is the pixel accuracy; weight each class's IoU, not its TP")
        rows = confusion.double().sum(1)
        share = rows / confusion.sum()
        for slip, value in {
            "you weighted by each class's pixel count, not its share: divide by all pixels": (
                rows * iou_per_class(confusion).nan_to_num(0.0)
            ).sum(),
            "you weighted each class's Dice, not its IoU": (share * dice_per_class(confusion).nan_to_num(0.0)).sum(),
            "you averaged the weighted IoUs over the classes; the weights already sum to 1, so sum them": (
                share * iou_per_class(confusion).nan_to_num(0.0)
            ).mean(),
        }.items():
            if math.isclose(got, float(value), abs_tol=1e-6):
                raise AssertionError(f"{name}: {slip}")
        raise AssertionError(
            f"{name}: got {got:.4f}, which is not the sum over the classes of (its true pixels / all pixels) x its "
            f"IoU. Compute the shares and the IoUs of this matrix by hand and compare them with yours ({_REVEAL})"
        )
    passed("frequency_weighted_iou")


THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]  # 0.05, 0.10, ..., 0.95: the grid experiment 2 searches
TIE = 0.005  # Dice gained below this is no reason to move a threshold from the default 0.5


def _near_best(scores: dict[float, float]) -> set[float]:
    """The thresholds to keep: within ``TIE`` of the best score, and of those the nearest to 0.5 (one or two)."""
    best = max(scores.values())
    ties = [t for t, score in scores.items() if score >= best - TIE]
    nearest = min(abs(t - 0.5) for t in ties)
    return {t for t in ties if math.isclose(abs(t - 0.5), nearest, abs_tol=1e-9)}


def _threshold_slip(threshold: float, probs: torch.Tensor, masks: torch.Tensor) -> str:
    """Why ``threshold`` is not the one to keep for these probabilities: the method that would have chosen it."""
    from unet_tutorial.metrics import confusion_matrix, dice_per_class, dice_score, pixel_accuracy

    scores = {t: dice_score(probs > t, masks) for t in THRESHOLDS}
    if not 0 <= threshold <= 1:
        return "a threshold on probabilities lies between 0 and 1: did you threshold the logits?"
    if dice_score(probs > threshold, masks) >= max(scores.values()) - TIE:
        return (
            f"it scores within {TIE} of the best, but a threshold nearer the default 0.5 does too: move a threshold "
            "away from 0.5 only as far as it pays"
        )
    if threshold == 0.5:
        return f"0.5 is the default you were to test, and another threshold scores more than {TIE} higher"
    other_methods = {
        "the pooled Dice (all pixels counted together, section 3); score each image with dice_score": {
            t: dice_per_class(confusion_matrix(probs > t, masks, num_classes=2))[1].item() for t in THRESHOLDS
        },
        "the pixel accuracy, which the background dominates; score each image's Dice with dice_score": {
            t: pixel_accuracy(confusion_matrix(probs > t, masks, num_classes=2)) for t in THRESHOLDS
        },
        "masks of probs < threshold: the foreground is where the probability is above it": {
            t: dice_score(probs < t, masks) for t in THRESHOLDS
        },
    }
    for slip, other in other_methods.items():
        if threshold in _near_best({t: s if s == s else -1.0 for t, s in other.items()}) or (
            threshold == max(other, key=other.get)
        ):
            return f"it is the best threshold by {slip}"
    if threshold in {t for t, s in scores.items() if s == min(scores.values())}:
        return "it has the lowest Dice of all the thresholds: keep the highest"
    return (
        f"another threshold of the grid scores more than {TIE} higher per-image Dice; score every one from 0.05 to "
        f"0.95 ({_REVEAL})"
    )


def check_best_threshold(
    threshold: float | dict[str, float],
    probs: torch.Tensor | dict[str, torch.Tensor],
    masks: torch.Tensor,
    reveal: bool = False,
) -> None:
    """Notebook 02: the threshold to keep for each model's ``probs`` (N, 1, H, W) against ``masks``.

    The one to keep scores the best per-image Dice of the grid 0.05, 0.10, ..., 0.95, within ``TIE``; of several
    such, the nearest to the default 0.5. ``threshold`` and ``probs`` are one float and one tensor, or dicts by
    model name (one threshold per model).
    """
    from unet_tutorial.metrics import dice_score

    if not isinstance(probs, dict):
        threshold, probs = {"the model": threshold}, {"the model": probs}
    assert isinstance(threshold, dict), (
        f"give one threshold per model, a dict {{name: threshold}} for {sorted(probs)}, got {threshold!r}"
    )
    missing, extra = sorted(set(probs) - set(threshold)), sorted(set(threshold) - set(probs))
    assert not missing and not extra, f"one threshold per model: missing {missing}, unknown {extra}"
    lines = []
    for name, model_probs in probs.items():
        scores = {t: dice_score(model_probs > t, masks) for t in THRESHOLDS}
        keep = _near_best(scores)
        if reveal:
            print(f"{name}: " + ", ".join(f"{t}: {s:.3f}" for t, s in scores.items()) + f"; keep {sorted(keep)}")
        got = float(threshold[name])
        if not any(math.isclose(got, t, abs_tol=1e-9) for t in keep):
            raise AssertionError(f"{name}, threshold {got}: {_threshold_slip(got, model_probs, masks)}")
        flat = max(scores.values()) - min(scores.values()) < TIE
        lines.append(f"{name} {got}" + (" (every threshold scores the same: nothing to tune)" if flat else ""))
    print("thresholds to keep: " + ", ".join(lines))
    passed("best_threshold")


def _tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """Cut images or masks into square tiles, experiment 3's reference: (N, C, H, W) -> (N * H/t * W/t, C, t, t)."""
    n, c, h, w = x.shape
    if h % tile or w % tile:
        raise ValueError(f"tiles: tile={tile} must divide the height {h} and the width {w}")
    x = x.reshape(n, c, h // tile, tile, w // tile, tile)  # (N, C, H/t, t, W/t, t)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, tile, tile)  # (N * H/t * W/t, C, t, t)


def _diagnosis(diagnoses: list[tuple[bool, str]], units: str, fallback: str | None = None) -> str:
    """The first matching diagnosis (they come likeliest first), and any other that gives the same number."""
    found = [text for matches, text in diagnoses if matches]
    if not found:
        return fallback or f"count the empty {units} and what an empty prediction scores on each kind ({_REVEAL})"
    if len(found) == 1:
        return found[0]
    others = "; or: ".join(found[1:])
    return f"{found[0]}. On these masks another mistake gives the same number, so it may be that one: {others}"


def check_empty_image_dice(
    lazy_dice: float,
    masks: torch.Tensor,
    *,
    tile: int | None = None,
    model_dice: float | None = None,
    preds: torch.Tensor | None = None,
    reveal: bool = False,
) -> None:
    """Notebook 02: per-image Dice of "background everywhere" on ``masks`` (N, 1, H, W), some empty, or on their
    ``tile`` x ``tile`` tiles; with ``model_dice`` and ``preds`` (0/1, like the masks), that of a model too."""
    from unet_tutorial.metrics import dice_score

    def per_tile(x: torch.Tensor) -> torch.Tensor:
        return _tiles(x, tile) if tile else x

    units = "tiles" if tile else "images"
    scored = per_tile(masks)
    expected = dice_score(torch.zeros_like(scored), scored)
    empty = int((scored.flatten(1).sum(1) == 0).sum())
    if reveal:
        print(f"{empty} of the {len(scored)} {units} are empty: the lazy model scores {expected:.4f}")
    got = float(lazy_dice)
    if not math.isclose(got, expected, abs_tol=1e-4):
        strips = dice_score(torch.zeros_like(masks.reshape(scored.shape)), masks.reshape(scored.shape))
        # The likeliest mistake first: with tiles asked for, scoring the whole images. Where several mistakes
        # give this number (on some masks the whole images' score equals the strips' or 1 - expected), all are said.
        diagnoses = [
            (
                bool(tile) and math.isclose(got, dice_score(torch.zeros_like(masks), masks), abs_tol=1e-4),
                "that is the score on the whole images: cut the masks into tiles first",
            ),
            (
                bool(tile) and math.isclose(got, strips, abs_tol=1e-4),
                "your tiles are not squares: a plain reshape of (N, 1, H, W) to (-1, 1, tile, tile) cuts runs of "
                "whole rows. Split H and W into (H / tile, tile) and (W / tile, tile) first, then move the two tile "
                "indices next to the batch (permute) before the last reshape",
            ),
            (
                math.isclose(got, 0.0, abs_tol=1e-4),
                f"background everywhere scores 0 on {units} with an object, but on an empty one an empty prediction "
                "scores 1 (nothing to find, nothing found: section 3)",
            ),
            (
                math.isclose(got, 1.0, abs_tol=1e-4),
                f"it scores 1 only on the empty {units}; on one with an object it finds nothing",
            ),
            (
                math.isclose(got, 1 - expected, abs_tol=1e-4),
                f"that is the share of {units} with an object; the lazy model scores 1 on the empty ones",
            ),
        ]
        raise AssertionError(f"lazy_dice = {got:.4f}: {_diagnosis(diagnoses, units)}")
    if model_dice is not None:
        assert preds is not None, "pass the model's predictions too: preds=..."
        want = dice_score(per_tile(preds), scored)
        if reveal:
            print(f"the model's per-{units[:-1]} Dice: {want:.4f}")
        got_model = float(model_dice)
        if not math.isclose(got_model, want, abs_tol=1e-4):
            diagnoses = [
                (
                    bool(tile) and math.isclose(got_model, dice_score(preds, masks), abs_tol=1e-4),
                    "that is the model's score on the whole images: tile its predictions and the masks alike",
                ),
                (
                    bool(tile)
                    and math.isclose(
                        got_model, dice_score(preds.reshape(scored.shape), masks.reshape(scored.shape)), abs_tol=1e-4
                    ),
                    "your tiles are runs of whole rows, not squares: permute before the last reshape",
                ),
            ]
            fallback = (
                "score the model's predictions with dice_score on the same tiles as the masks, cut the same way "
                f"({_REVEAL})"
            )
            raise AssertionError(f"model_dice = {got_model:.4f}: {_diagnosis(diagnoses, units, fallback)}")
    print(f"{empty} of the {len(scored)} {units} are empty; the lazy model scores {expected:.3f} per {units[:-1]}")
    passed("empty_image_dice")
