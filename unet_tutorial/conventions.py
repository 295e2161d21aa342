"""The course's conventions, in one small module that imports only torch: values every other module agrees on.

- ``IMAGENET_MEAN``/``IMAGENET_STD``: the per-channel normalisation of images in [0, 1] that ImageNet-trained
  encoders expect (torchvision's values); the transforms, prediction and pictures all use these two.
- ``IGNORE_INDEX``: the label that losses and metrics skip (255, ADE20K's "other" after the shift, and the
  padding of a crop); one value, so a mask padded by a transform and an unlabelled pixel are ignored alike.
- ``IMAGE_SUFFIXES``: the image files a folder is searched for.
- ``valid_pixels``: where a target counts, i.e. is not ``ignore_index``.
Sizes are (height, width) everywhere, as torch's tensors are; an int means a square.
Taught in: notebooks 02 (ignore_index) and 03 to 05 (normalisation).
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def valid_pixels(targets: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """Bool tensor of ``targets``' shape: True where the target is not ``ignore_index`` (everywhere if None)."""
    if ignore_index is None:
        return torch.ones_like(targets, dtype=torch.bool)
    return targets != ignore_index
