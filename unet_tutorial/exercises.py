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
