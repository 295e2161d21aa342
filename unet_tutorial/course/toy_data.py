"""Tiny in-memory toy data for experiments that must run in seconds: tensors, no files.

The idea: to see how a loss behaves under class imbalance we need images whose foreground is *small* (about
1 % of the pixels) and not findable pixel by pixel, so that a model must use context. ``make_small_objects``
draws such images: one to three small, slightly redder discs on a noisy, slowly varying background.
Left out: anything that looks like real data (``sample_data`` writes Carvana- and ADE20K-like data sets to disk).
Taught in: notebook 02 (losses and metrics), section 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_small_objects(num_images: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with one to three small discs each, and their binary masks.

    Each disc has a radius of 3-6 % of ``size``; the discs are a little redder than the background, whose
    colour drifts slowly and carries strong per-pixel noise, so single pixels are ambiguous.

    Args:
        num_images: how many images.
        size: height and width in pixels (at least 16).
        seed: the same seed always gives the same images.

    Returns:
        images float (N, 3, size, size) in [0, 1]; masks float (N, 1, size, size) of 0/1.
    """
    if num_images < 1 or size < 16:
        raise ValueError(
            f"make_small_objects: num_images={num_images}, size={size}; use num_images >= 1 and "
            "size >= 16 (e.g. size=64)."
        )
    gen = torch.Generator().manual_seed(seed)
    coarse = 0.15 * torch.randn(num_images, 3, 4, 4, generator=gen)  # slow colour changes across the image
    noise = 0.15 * torch.randn(num_images, 3, size, size, generator=gen)
    images = 0.5 + F.interpolate(coarse, size=size, mode="bilinear") + noise  # (N, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")  # (size, size) each
    masks = torch.zeros(num_images, 1, size, size)
    for i in range(num_images):
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            radius = size * (0.03 + 0.03 * torch.rand(1, generator=gen).item())
            cy, cx = (radius + (size - 2 * radius) * torch.rand(2, generator=gen)).tolist()
            masks[i, 0][(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1
    redder = torch.tensor([0.35, -0.1, 0.0]).view(1, 3, 1, 1)  # the objects' colour shift, (1, 3, 1, 1)
    return (images + masks * redder).clamp(0, 1), masks
