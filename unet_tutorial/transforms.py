"""Albumentations pipelines that move an image and its mask together.

Geometry (crops, flips, rotations) is applied to both; colour only to the image. Masks are never
interpolated: every resize and warp uses nearest neighbour for the mask, and pixels that a warp or pad invents
get ``mask_fill`` (the ignore index 255 for ADE20K, 0 = background for binary masks). Images are resized one
way everywhere (training, evaluation and ``predict.predict_mask``): area averaging when shrinking (no aliasing),
bilinear when enlarging. Sizes are
``(height, width)`` like tensors (not PIL's (width, height)); an int means a square. Left out: test-time
augmentation and multi-scale training. Taught in: notebook 03 (and reused in 04 and 05).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from unet_tutorial.conventions import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

# Masks are resized by nearest neighbour on pixel centres, as INTER_AREA and bilinear treat the image: OpenCV's
# INTER_NEAREST samples each cell's top-left source pixel instead, which moved a shrunk mask's edges by up to a
# pixel right and down of the image's (0.4 px on average from 160x240 to 96x144).
MASK_RESIZE = cv2.INTER_NEAREST_EXACT


def seed_pipeline(transform: Callable, seed: int) -> None:
    """Make an albumentations pipeline's random draws repeat: ``Compose`` keeps generators of its own, which
    neither ``torch.manual_seed`` nor ``set_seed`` reaches. One generator pair is shared by every step
    (``Compose.set_random_seed`` would give each step its own copy of the same stream, so that e.g. the flip and
    the warp would fire together on the first image). Anything without generators of its own is left alone."""
    if hasattr(transform, "set_random_state"):  # albumentations >= 2
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width) or an int, got {size!r}")
    return int(height), int(width)


def resize(height: int, width: int) -> A.Resize:
    """The one image resize of the package: INTER_AREA when shrinking, bilinear when enlarging; masks nearest."""
    return A.Resize(height, width, area_for_downscale="image", mask_interpolation=MASK_RESIZE)


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize one image (H, W, C) of any dtype to ``size`` (height, width) exactly as the pipelines do."""
    height, width = _hw(size)
    return resize(height, width)(image=image)["image"]


def train_transforms(
    size: int | tuple[int, int],
    *,
    crop: str = "resize",
    scale: tuple[float, float] = (0.5, 1.0),
    hflip: float = 0.5,
    vflip: float = 0.0,
    rotate: float = 0.0,
    shift: float = 0.0,
    color_jitter: float = 0.0,
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
    mask_fill: int = IGNORE_INDEX,
) -> A.Compose:
    """The training pipeline: crop or resize, flips, a small affine warp, colour jitter, normalise, to tensor.

    The defaults are light, resize and a horizontal flip: on a short run (CamVid, 120 images, 8 epochs;
    ``benchmarks/recipe_check.py``) random-resized crops, the warp and colour jitter cost more accuracy than they
    gave, as the model had not yet fitted the unaugmented images. Turn them on for long runs, where the model
    would otherwise memorise its training set (notebook 03 does: crops of 60-100 %, a small warp, jitter 0.2).

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
                area_for_downscale="image",
                mask_interpolation=MASK_RESIZE,
            )
        ]
    elif crop == "resize":
        steps = [resize(height, width)]
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
                mask_interpolation=cv2.INTER_NEAREST,  # warpAffine: samples pixel centres
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


def scale_crop_transforms(
    crop_size: int | tuple[int, int] = 512,
    short_side: int = 512,
    scale: tuple[float, float] = (0.5, 2.0),
    *,
    hflip: float = 0.5,
    color_jitter: float = 0.2,
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
    mask_fill: int = IGNORE_INDEX,
) -> A.Compose:
    """The standard scene-parsing training pipeline (ADE20K: mmsegmentation's and the MIT baseline's).

    Each image is resized once so that its shorter side is ``short_side`` times a random factor in ``scale``
    (the same zoom range for every image, whatever its size), padded up to the crop (image 0, mask ``mask_fill``,
    which the loss ignores), randomly cropped to ``crop_size``, flipped, and colour-jittered. Evaluate with
    ``eval_transforms(None, short_side=short_side, keep_mask=True)``.

    Args:
        crop_size: (height, width) of the training crops, or an int for a square.
        short_side: the shorter side of an image at zoom 1.
        scale: range of the random zoom factor (65 evenly spaced values).
        hflip, color_jitter: as in ``train_transforms``.
        mean, std, mask_fill: as in ``train_transforms``.

    Returns:
        ``A.Compose``; image float (3, *crop_size), mask (crop_size) with the input's values and ``mask_fill``.
    """
    height, width = _hw(crop_size)
    low, high = sorted(scale)
    if low <= 0 or short_side < 1:
        raise ValueError(f"scale={scale} must be positive factors and short_side={short_side} at least 1")
    # One resize with a random target size: SmallestMaxSize picks one of these short sides per image.
    sides = sorted({max(1, round(short_side * (low + (high - low) * i / 64))) for i in range(65)})
    steps = [
        A.SmallestMaxSize(max_size=sides, area_for_downscale="image", mask_interpolation=MASK_RESIZE),
        A.PadIfNeeded(min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=mask_fill),
        A.RandomCrop(height, width),
    ]
    if hflip:
        steps.append(A.HorizontalFlip(p=hflip))
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
    short_side: int | None = None,
    keep_mask: bool = False,
) -> Callable:
    """The evaluation pipeline: resize (deterministic), normalise, to tensor.

    Args:
        size: output (height, width), an int for a square, or None to keep the image's own size.
        short_side: with ``size=None``, resize so that the shorter side is this long, keeping the aspect
            (ADE20K's evaluation: short side 512).
        mean, std: as in ``train_transforms``.
        keep_aspect: instead of stretching, scale the longer side to fit ``size`` and pad the rest
            (image with 0, mask with ``mask_fill``, which an ignore-aware metric skips).
        mask_fill: the mask value of padded pixels.
        keep_mask: leave the mask at its own size, as benchmarks score (evaluation at annotation resolution):
            ``train.evaluate`` then upsamples the logits to the mask's size before counting.

    Returns:
        ``A.Compose`` as in ``train_transforms`` (with ``keep_mask``, a function with the same call).
    """
    steps: list = []
    if size is not None:
        height, width = _hw(size)
        if keep_aspect:
            steps = [
                A.LongestMaxSize(
                    max_size_hw=(height, width), area_for_downscale="image", mask_interpolation=MASK_RESIZE
                ),
                A.PadIfNeeded(
                    min_height=height,
                    min_width=width,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=mask_fill,
                ),
            ]
        else:
            steps = [resize(height, width)]
    elif short_side is not None:
        steps = [A.SmallestMaxSize(max_size=short_side, area_for_downscale="image", mask_interpolation=MASK_RESIZE)]
    pipeline = A.Compose(steps + _finish(mean, std))
    if not keep_mask:
        return pipeline

    def image_only(*, image: np.ndarray, mask: np.ndarray) -> dict:
        return {"image": pipeline(image=image)["image"], "mask": mask}

    return image_only


def _finish(mean: tuple | None, std: tuple | None) -> list:
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither (to keep the image in [0, 1])")
    if mean is None:
        norm = A.Normalize(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # just uint8 -> [0, 1]
    else:
        norm = A.Normalize(mean=mean, std=std)
    return [norm, ToTensorV2()]
