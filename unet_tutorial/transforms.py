"""Albumentations pipelines that move an image and its mask together.

Geometry (crops, flips, rotations) is applied to both; colour only to the image. Masks are never
interpolated: every resize and warp uses nearest neighbour for the mask, and pixels that a warp or pad invents
get ``mask_fill`` (the ignore index 255 for ADE20K, 0 = background for binary masks). Sizes are
``(height, width)`` like tensors (not PIL's (width, height)); an int means a square. Left out: test-time
augmentation and multi-scale training. Taught in: notebook 03 (and reused in 04 and 05).
"""

from __future__ import annotations

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255  # same value as data.ADE20K_IGNORE_INDEX


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width) or an int, got {size!r}")
    return int(height), int(width)


def train_transforms(
    size: int | tuple[int, int],
    *,
    crop: str = "random_resized",
    scale: tuple[float, float] = (0.5, 1.0),
    hflip: float = 0.5,
    vflip: float = 0.0,
    rotate: float = 10.0,
    shift: float = 0.05,
    color_jitter: float = 0.2,
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
    mask_fill: int = IGNORE_INDEX,
) -> A.Compose:
    """The training pipeline: crop or resize, flips, a small affine warp, colour jitter, normalise, to tensor.

    Args:
        size: output (height, width), or an int for a square.
        crop: "random_resized" (a random crop covering ``scale`` of the image, resized to ``size``) or
            "resize" (the whole image resized to ``size``).
        scale: area range of the random-resized crop.
        hflip, vflip: probabilities of a horizontal and a vertical flip.
        rotate, shift: largest rotation (degrees) and shift (fraction of the size) of the affine warp,
            applied to half of the samples with a 0.9-1.1 zoom; 0 and 0 turn it off.
        color_jitter: strength of brightness/contrast/saturation jitter (hue gets a quarter of it); 0 turns it off.
        mean, std: per-channel normalisation of the [0, 1] image; None leaves the image in [0, 1].
        mask_fill: the mask value of pixels the warp invents: 255 (ignored) for ADE20K, 0 for binary masks.

    Returns:
        ``A.Compose``; ``out = t(image=uint8 HxWx3, mask=uint8 HxW)`` gives ``out["image"]`` float (3, H, W)
        and ``out["mask"]`` (H, W) with the input's values (plus ``mask_fill``).
    """
    height, width = _hw(size)
    if crop == "random_resized":
        aspect = width / height  # keep crops near the output's shape so objects are not squashed
        steps = [
            A.RandomResizedCrop(
                size=(height, width),
                scale=scale,
                ratio=(0.8 * aspect, 1.25 * aspect),
                mask_interpolation=cv2.INTER_NEAREST,
            )
        ]
    elif crop == "resize":
        steps = [A.Resize(height, width, mask_interpolation=cv2.INTER_NEAREST)]
    else:
        raise ValueError(f"crop must be 'random_resized' or 'resize', got {crop!r}")
    if hflip:
        steps.append(A.HorizontalFlip(p=hflip))
    if vflip:
        steps.append(A.VerticalFlip(p=vflip))
    if rotate or shift:
        steps.append(
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-shift, shift),
                rotate=(-rotate, rotate),
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=mask_fill,
                p=0.5,
            )
        )
    if color_jitter:
        j = color_jitter
        steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=j / 4, p=0.8))
    return A.Compose(steps + _finish(mean, std))


def eval_transforms(
    size: int | tuple[int, int] | None,
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
    *,
    keep_aspect: bool = False,
    mask_fill: int = IGNORE_INDEX,
) -> A.Compose:
    """The evaluation pipeline: resize (deterministic), normalise, to tensor.

    Args:
        size: output (height, width), an int for a square, or None to keep the image's own size.
        mean, std: as in ``train_transforms``.
        keep_aspect: instead of stretching, scale the longer side to fit ``size`` and pad the rest
            (image with 0, mask with ``mask_fill``, which an ignore-aware metric skips).
        mask_fill: the mask value of padded pixels.

    Returns:
        ``A.Compose`` as in ``train_transforms``.
    """
    steps: list = []
    if size is not None:
        height, width = _hw(size)
        if keep_aspect:
            steps = [
                A.LongestMaxSize(max_size_hw=(height, width), mask_interpolation=cv2.INTER_NEAREST),
                A.PadIfNeeded(
                    min_height=height,
                    min_width=width,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=mask_fill,
                ),
            ]
        else:
            steps = [A.Resize(height, width, mask_interpolation=cv2.INTER_NEAREST)]
    return A.Compose(steps + _finish(mean, std))


def _finish(mean: tuple | None, std: tuple | None) -> list:
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither (to keep the image in [0, 1])")
    if mean is None:
        norm = A.Normalize(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # just uint8 -> [0, 1]
    else:
        norm = A.Normalize(mean=mean, std=std)
    return [norm, ToTensorV2()]
