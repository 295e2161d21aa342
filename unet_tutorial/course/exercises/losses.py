"""Self-checks of notebook 02 (losses and metrics): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def check_frequency_weighted_iou(frequency_weighted_iou: Callable[[torch.Tensor], float]) -> None:
    """Notebook 02: the IoU of each class weighted by its share of the target pixels (rows), summed."""
    from unet_tutorial.metrics import iou_per_class, mean_iou

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
        raise AssertionError(
            f"{name}: expected {want:.4f}, got {got:.4f}: sum over the classes of (its true pixels / all pixels) "
            "x its IoU"
        )
    passed("frequency_weighted_iou")


def check_best_threshold(threshold: float, probs: torch.Tensor, masks: torch.Tensor) -> None:
    """Notebook 02: a threshold on ``probs`` (N, 1, H, W) that gives the best per-image Dice, within 0.005."""
    from unet_tutorial.metrics import dice_score

    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    scores = {t: dice_score(probs > t, masks) for t in grid}
    best = max(scores, key=scores.get)
    got = dice_score(probs > threshold, masks)
    assert got >= scores[best] - 0.005, (
        f"at threshold {threshold} the Dice is {got:.3f}, but {best} gives {scores[best]:.3f}; try every "
        f"threshold from 0.05 to 0.95 in steps of 0.05 and keep the best (at 0.5: {scores[0.5]:.3f})"
    )
    print(f"threshold {threshold}: Dice {got:.3f} (at 0.5: {scores[0.5]:.3f})")
    passed("best_threshold")


def check_empty_image_dice(lazy_dice: float, masks: torch.Tensor) -> None:
    """Notebook 02: per-image Dice of "background everywhere" on ``masks`` (N, 1, H, W), some empty."""
    from unet_tutorial.metrics import dice_score

    expected = dice_score(torch.zeros_like(masks), masks)
    empty = int((masks.flatten(1).sum(1) == 0).sum())
    assert abs(float(lazy_dice) - expected) < 1e-4, (
        f"you said {float(lazy_dice):.3f}, expected {expected:.3f}: {empty} of the {len(masks)} masks are "
        "empty, and predicting nothing on an empty mask scores Dice 1 there (0 everywhere else)"
    )
    passed("empty_image_dice")
