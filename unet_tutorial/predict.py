"""Inference on real images: probabilities, masks at the original size, and big images in tiles.

``predict_mask`` resizes an image to the size the model was trained at, predicts, and brings the probabilities back
to the original size before thresholding (binary) or taking the argmax (classes) — labels are never interpolated.
``sliding_window_predict`` covers an image too large for memory with overlapping tiles whose borders are blended;
``sliding_window_mask`` gives the same mask strip by strip, never holding full-size probabilities or a full-size
float copy of the image (tiles are normalised one at a time). Horizontal-flip test-time augmentation averages a
prediction with that of the mirrored image. What it leaves out: multi-scale TTA, CRF post-processing (and the
Carvana run-length format, which lives with the Carvana files in data.py). Taught in: 03 (Carvana binary), 05
(ADE20K, sliding window).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.transforms import resize_image


def to_input(image: np.ndarray | Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Tensor:
    """A raw uint8 (H, W, 3) image becomes a normalised float tensor (3, H, W); a float tensor is kept as it is.

    Shape: (H, W, 3) uint8, or (3, H, W) float (already normalised) -> (3, H, W) float.
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}; "
                "or pass a normalised float tensor (3, H, W)"
            )
        image = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0  # (H, W, 3) -> (3, H, W)
        return (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    if image.ndim != 3 or not image.is_floating_point():
        raise ValueError(f"expected a float tensor (3, H, W), got {image.dtype} {tuple(image.shape)}")
    return image


def _device(model: nn.Module, device) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


@torch.inference_mode()
def predict_probs(
    model: nn.Module, images: Tensor, *, tta: bool = False, amp_dtype: torch.dtype | None = None
) -> Tensor:
    """Class probabilities for a batch: sigmoid for one logit per pixel, softmax over classes otherwise.

    Args:
        tta: also predict the horizontally flipped images, flip back and average the probabilities.
    Shape: images (B, 3, H, W) on the model's device -> probs (B, C, H, W), float32.
    """
    model.eval()

    def probs(x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x).float()  # (B, C, H, W)
        return logits.sigmoid() if logits.shape[1] == 1 else logits.softmax(dim=1)

    result = probs(images)
    if tta:
        result = (result + probs(images.flip(-1)).flip(-1)) / 2  # flip(-1) mirrors the width axis
    return result


def predict_loader(
    model: nn.Module, loader, *, tta: bool = False, amp_dtype: torch.dtype | None = None, device=None
) -> tuple[Tensor, Tensor]:
    """Masks and probabilities of every batch of a loader of (images, masks), gathered on the CPU. Taught in 03.

    Small types on purpose: hundreds of validation images at 320x480 would take gigabytes as float32, so masks
    are kept as uint8 and probabilities as float16 (enough for thresholds in steps of 0.01).
    Shape: masks (N, 1, H, W) uint8 (or (N, H, W) for class masks), probs (N, C, H, W) float16.
    """
    device = _device(model, device)
    masks, probs = [], []
    for images, targets in tqdm(iter(loader), total=len(loader), desc="predicting", leave=False):
        masks.append(targets.to(torch.uint8))
        probs.append(predict_probs(model, images.to(device), tta=tta, amp_dtype=amp_dtype).cpu().half())
    return torch.cat(masks), torch.cat(probs)


def probs_to_mask(probs: Tensor, threshold: float = 0.5) -> Tensor:
    """Binary: 1 where the probability exceeds ``threshold``; classes: the most probable one.

    Shape: probs (..., C, H, W) -> mask (..., H, W), long.
    """
    return (probs[..., 0, :, :] > threshold).long() if probs.shape[-3] == 1 else probs.argmax(dim=-3)


def predict_mask(
    model: nn.Module,
    image: np.ndarray | Tensor,
    *,
    image_size: int | tuple[int, int] | None = None,
    threshold: float = 0.5,
    tta: bool = False,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    device=None,
    amp_dtype: torch.dtype | None = None,
    return_probs: bool = False,
):
    """Predict one image's mask at its original size. Taught in 03.

    Args:
        image: raw RGB uint8 (H, W, 3), normalised here with ``mean``/``std``, or a normalised tensor (3, H, W).
        image_size: the (height, width) or side the model was trained at; None predicts at the image's size.
            The image is resized as ``transforms.resize`` does in training (area averaging when shrinking).
        threshold: binary models only; probability above which a pixel is foreground.
        tta: average with the prediction for the horizontally flipped image.
    Returns:
        mask (H, W) long on the CPU (0/1, or class indices), and probs (C, H, W) too when ``return_probs``.
    """
    height, width = image.shape[:2] if isinstance(image, np.ndarray) else image.shape[-2:]
    if image_size is not None:  # the resize of training and evaluation (transforms.resize), on uint8 or float
        if isinstance(image, np.ndarray):
            image = resize_image(image, image_size)  # (h, w, 3) uint8
        else:
            image = torch.from_numpy(resize_image(image.permute(1, 2, 0).float().cpu().numpy(), image_size))
            image = image.permute(2, 0, 1)  # (H, W, 3) -> (h, w, 3) -> (3, h, w)
    x = to_input(image, mean, std).unsqueeze(0).to(_device(model, device))  # (1, 3, h, w)
    probs = predict_probs(model, x, tta=tta, amp_dtype=amp_dtype)  # (1, C, h, w)
    if probs.shape[-2:] != (height, width):
        # Resize probabilities, never labels: the threshold/argmax then happens at full resolution.
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)  # (1, C, H, W)
    probs = probs[0].cpu()  # (C, H, W)
    mask = probs_to_mask(probs, threshold)  # (H, W)
    return (mask, probs) if return_probs else mask


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` every ``stride`` pixels, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(height: int, width: int) -> Tensor:
    """Per-pixel weights of one tile: 1 in the middle, falling towards the borders, where a tile sees least.

    A separable Hann window, floored so that pixels at the image's own border (seen by one tile only) still count.
    Shape: (height, width).
    """

    def ramp(n: int) -> Tensor:
        return torch.hann_window(n + 2, periodic=False)[1:-1] if n > 1 else torch.ones(n)

    return (ramp(height)[:, None] * ramp(width)[None, :]).clamp_min(1e-3)  # (h, 1) * (1, w) -> (h, w)


class _Tiles:
    """Normalised tiles cut from an image on demand: a uint8 image stays uint8 (a full-size float32 copy would
    take 4x its memory), and only the tiles being predicted exist as float. Images smaller than a tile are
    mirrored out to a full tile first (that copy is tile-sized)."""

    def __init__(self, image: np.ndarray | Tensor, tile: int | tuple[int, int], mean, std) -> None:
        self.tile_h, self.tile_w = (tile, tile) if isinstance(tile, int) else tile
        if isinstance(image, np.ndarray):
            to_input(image[:1, :1], mean, std)  # checks dtype and shape; cheap
            self.image, self.channels_last = torch.from_numpy(image), True  # (H, W, 3) uint8, no copy
        else:
            to_input(image)  # checks a float (3, H, W)
            self.image, self.channels_last = image.cpu(), False  # (3, H, W), already normalised
        self.mean, self.std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        self.height, self.width = self.image.shape[:2] if self.channels_last else self.image.shape[-2:]
        pad_h, pad_w = max(self.tile_h - self.height, 0), max(self.tile_w - self.width, 0)
        if pad_h or pad_w:  # smaller than one tile: mirror the image out to a full tile
            mode = "reflect" if pad_h < self.height and pad_w < self.width else "replicate"
            x = self.image.permute(2, 0, 1).float() if self.channels_last else self.image  # (3, H, W)
            x = F.pad(x[None], (0, pad_w, 0, pad_h), mode=mode)[0]  # (3, max(H, th), max(W, tw))
            self.image = x.round().to(torch.uint8).permute(1, 2, 0) if self.channels_last else x
        self.full_h, self.full_w = self.image.shape[:2] if self.channels_last else self.image.shape[-2:]

    def __call__(self, top: int, left: int) -> Tensor:
        """The normalised tile whose top-left corner is (top, left). Shape: (3, tile_h, tile_w) float32."""
        rows, cols = slice(top, top + self.tile_h), slice(left, left + self.tile_w)
        if not self.channels_last:
            return self.image[:, rows, cols]
        x = self.image[rows, cols].permute(2, 0, 1).float().div_(255.0)  # (th, tw, 3) uint8 -> (3, th, tw)
        return x.sub_(self.mean).div_(self.std)


def _blended_strips(
    model: nn.Module,
    tiles: _Tiles,
    overlap: float,
    batch_size: int,
    tta: bool,
    device: torch.device,
    amp_dtype: torch.dtype | None,
):
    """Yield (first row, probs (C, rows, W')) for consecutive horizontal strips of the image, each blended from
    every tile that covers it, as soon as the last such tile is done. Only one tile's height of probabilities is
    held, never (C, H, W); a yielded strip is overwritten by the next step, so use (or copy) it at once."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap} must be in [0, 1); e.g. 0.25 shares a quarter of each tile")
    tile_h, tile_w, full_h, full_w = tiles.tile_h, tiles.tile_w, tiles.full_h, tiles.full_w
    stride_h, stride_w = max(1, round(tile_h * (1 - overlap))), max(1, round(tile_w * (1 - overlap)))
    tops, lefts = tile_starts(full_h, tile_h, stride_h), tile_starts(full_w, tile_w, stride_w)
    window = blend_window(tile_h, tile_w)  # (th, tw)
    total, weight = None, torch.zeros(1, tile_h, full_w)  # buffer row r is image row top + r
    for i, top in enumerate(tops):
        for j in range(0, len(lefts), batch_size):
            chunk = lefts[j : j + batch_size]
            batch = torch.stack([tiles(top, left) for left in chunk])  # (b, 3, th, tw)
            probs = predict_probs(model, batch.to(device), tta=tta, amp_dtype=amp_dtype).cpu()  # (b, C, th, tw)
            if total is None:
                total = torch.zeros(probs.shape[1], tile_h, full_w)  # (C, th, W')
            for left, p in zip(chunk, probs):
                total[:, :, left : left + tile_w] += p * window
                weight[:, :, left : left + tile_w] += window
        done = (tops[i + 1] if i + 1 < len(tops) else full_h) - top  # rows no later tile touches
        yield top, total[:, :done].div_(weight[:, :done])  # (C, done, W')
        keep = tile_h - done  # rows the next tiles add to: move them to the top of the buffer
        total[:, :keep], weight[:, :keep] = total[:, done:].clone(), weight[:, done:].clone()
        total[:, keep:], weight[:, keep:] = 0, 0


@torch.inference_mode()
def sliding_window_predict(
    model: nn.Module,
    image: np.ndarray | Tensor,
    *,
    tile: int | tuple[int, int] = 256,
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: bool = False,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    device=None,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Probabilities for a large image from overlapping tiles, blended where they overlap. Taught in 05.

    Only ``batch_size`` tiles are on the device at a time; the result is gathered on the CPU. For the mask
    alone, ``sliding_window_mask`` needs far less memory (no full-size (C, H, W) probabilities).
    Args:
        image: raw RGB uint8 (H, W, 3) or a normalised tensor (3, H, W); any size (smaller ones are padded).
        tile: tile (height, width) or side, ideally the size the model was trained at.
        overlap: fraction of a tile shared with its neighbour (0 <= overlap < 1).
    Returns:
        probs (C, H, W) on the CPU; ``probs_to_mask`` turns them into a mask.
    """
    tiles = _Tiles(image, tile, mean, std)
    strips = [
        probs.clone()
        for _, probs in _blended_strips(model, tiles, overlap, batch_size, tta, _device(model, device), amp_dtype)
    ]
    return torch.cat(strips, dim=1)[:, : tiles.height, : tiles.width]  # (C, H, W)


@torch.inference_mode()
def sliding_window_mask(
    model: nn.Module,
    image: np.ndarray | Tensor,
    *,
    tile: int | tuple[int, int] = 256,
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: bool = False,
    threshold: float = 0.5,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    device=None,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """The mask ``probs_to_mask(sliding_window_predict(...))`` gives, strip by strip: memory for a uint8 mask
    and one strip of probabilities (C, tile height, W), whatever the image's height; a uint8 image is normalised
    one tile at a time (``benchmarks/predict_memory.py`` measures it). Taught in 05.

    Returns:
        mask (H, W) uint8 on the CPU (0/1, or class indices).
    """
    tiles = _Tiles(image, tile, mean, std)
    height, width = tiles.height, tiles.width
    mask = torch.empty(height, width, dtype=torch.uint8)  # (H, W)
    for top, probs in _blended_strips(model, tiles, overlap, batch_size, tta, _device(model, device), amp_dtype):
        if top < height:
            mask[top : top + probs.shape[1]] = probs_to_mask(probs[:, : height - top, :width], threshold)
    return mask


def network_size(config: dict, image_hw: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) an image is resized to for the network: the training size, or, for a recipe that
    trained at a short side (ADE20K), the image scaled so its shorter side is that long."""
    if config.get("short_side"):
        factor = config["short_side"] / min(image_hw)
        return max(1, round(image_hw[0] * factor)), max(1, round(image_hw[1] * factor))
    return tuple(config.get("image_size") or image_hw)
