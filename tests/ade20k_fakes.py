"""Stand-ins for notebook 05's experiment 3 tests: a model that says "wall" everywhere and an image of thin lines."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image


class AlwaysWall(torch.nn.Module):
    """Predicts class 0 (wall) everywhere, at the resolution of its input."""

    def forward(self, images):
        logits = torch.zeros(images.shape[0], 150, *images.shape[-2:])
        logits[:, 0] = 1
        return logits


def thin_lines(root: Path) -> Path:
    """One validation image under ``root``: wall with class 5 on every even row, which a 2x nearest downsizing drops
    (it keeps the pixel nearest each new pixel's centre: the odd rows); always-wall scores mIoU 1.0 at half
    resolution and 0.25 at the annotation's."""
    (root / "images" / "validation").mkdir(parents=True)
    (root / "annotations" / "validation").mkdir(parents=True)
    labels = np.ones((32, 32), np.uint8)  # file label 1: wall, class 0
    labels[0::2] = 6  # file label 6: class 5
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(root / "images" / "validation" / "ADE_val_00000001.jpg")
    Image.fromarray(labels).save(root / "annotations" / "validation" / "ADE_val_00000001.png")
    return root
