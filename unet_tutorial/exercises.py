"""Self-checks for the notebooks' exercises: each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
Taught in: the exercise cells of every notebook (``make student`` stubs the solutions out).
"""

from __future__ import annotations

from typing import Callable

import torch


def _passed(name: str) -> None:
    print(f"✓ {name}: all checks passed")


def check_foreground_fraction(foreground_fraction: Callable[[torch.Tensor], float]) -> None:
    """Notebook 01: the fraction of foreground pixels in a 0/1 mask."""
    mask = torch.zeros(4, 4)
    mask[:2, :1] = 1
    got = foreground_fraction(mask)
    assert abs(got - 2 / 16) < 1e-6, f"2 of 16 pixels are foreground, so expected 0.125, got {got}"
    assert foreground_fraction(torch.ones(3, 5)) == 1.0, "an all-ones mask is entirely foreground"
    _passed("foreground_fraction")


# Notebook 02: losses and metrics


def check_soft_dice(soft_dice_loss: Callable[..., torch.Tensor]) -> None:
    """Notebook 02: ``soft_dice_loss(probs, targets, smooth=1.0)`` = 1 - (2 sum(p t) + s) / (sum p + sum t + s)."""
    from unet_tutorial.losses import dice_loss

    probs = torch.tensor([[0.8, 0.4], [0.1, 0.6]])
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    got = soft_dice_loss(probs, targets, smooth=0.0)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, f"return a scalar tensor, got {got!r}"
    expected = 1 - 2 * 1.2 / (1.9 + 2.0)
    assert abs(got.item() - expected) < 1e-5, (f"with smooth=0: TP = 0.8 + 0.4 = 1.2, sum p = 1.9, sum t = 2, so "
                                               f"1 - 2.4 / 3.9 = {expected:.4f}; got {got.item():.4f}")
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 1, 5, 5, generator=gen).requires_grad_()
    targets = (torch.rand(2, 1, 5, 5, generator=gen) > 0.5).float()
    got = soft_dice_loss(probs, targets, smooth=1.0)
    reference = dice_loss(torch.logit(probs.detach()), targets, smooth=1.0)
    assert abs(got.item() - reference.item()) < 1e-5, (f"with smooth=1 expected {reference.item():.4f} (the "
                                                        f"package's dice_loss), got {got.item():.4f}")
    got.backward()
    assert probs.grad is not None and torch.isfinite(probs.grad).all(), "the loss must be differentiable"
    empty = soft_dice_loss(torch.zeros(3, 3), torch.zeros(3, 3), smooth=1.0)
    assert abs(empty.item()) < 1e-6, f"an empty prediction of an empty mask costs 0 with smooth=1, got {empty}"
    _passed("soft_dice_loss")


def check_iou_from_confusion(iou_from_confusion: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Notebook 02: IoU of each class from a confusion matrix (rows = target, columns = prediction)."""
    confusion = torch.tensor([[50, 2, 3], [4, 20, 1], [6, 0, 14]])
    got = torch.as_tensor(iou_from_confusion(confusion), dtype=torch.float64)
    assert got.shape == (3,), f"one IoU per class: expected shape (3,), got {tuple(got.shape)}"
    # class 0: TP 50, FN 2 + 3 (its row), FP 4 + 6 (its column)
    expected = torch.tensor([50 / 65, 20 / 27, 14 / 24], dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-6), (
        f"expected {expected.tolist()}, got {got.tolist()}; IoU_c = TP / (TP + FP + FN) with TP the diagonal, "
        "FN the rest of row c and FP the rest of column c")
    _passed("iou_from_confusion")
