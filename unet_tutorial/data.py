"""Datasets in their real on-disk formats: Carvana (binary car masks) and ADE20K SceneParsing (150 classes).

A dataset here only finds files, reads them, checks them and hands (image, mask) to a transform. The readers
(``readers.py``: ``read_image``, ``read_label``, ``apply_transform``) are shared with ``folder.py``; loaders and
their seeding live in ``loaders.py``, augmentation in ``transforms.py``, generated stand-in data in
``sample_data.py``, downloading in ``download.py``. ``rle_encode``/``rle_decode`` speak Carvana's run-length
format (train_masks.csv, submissions). A JPEG can be decoded straight at a reduced size
(``CarvanaDataset(decode_size=...)``). Bad input fails early with a message naming the file and
the layout that was expected. Left out: the Kaggle test set (no masks) and ADE20K's full 3,688-class release.
Taught in: notebook 03 (Carvana) and notebook 05 (ADE20K).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from unet_tutorial.conventions import IGNORE_INDEX, IMAGE_SUFFIXES
from unet_tutorial.readers import (
    DataError,
    _check_sizes,
    _size_hw,
    apply_transform,
    check_same_size,
    image_size,
    label_values,
    read_image,
    read_label,
)

# The 150 scored classes in objectInfo150 order: file label k (1..150) is ADE20K_CLASSES[k - 1].
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow",
    "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower",
    "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair",
    "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
    "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
    "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
    "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
CARVANA_IMAGE_DIRS = ("train", "train_hq")
CARVANA_MASK_DIR = "train_masks"

# File label -> training label: 0 ("other") -> 255 (ignored), 1..150 -> 0..149; anything above 150 is an error.
_ADE20K_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
_ADE20K_LUT[1 : len(ADE20K_CLASSES) + 1] = np.arange(len(ADE20K_CLASSES), dtype=np.uint8)


def ade20k_palette() -> np.ndarray:
    """A fixed colour per ADE20K class (the PASCAL VOC bit-interleaving colour map, starting past black).

    Returns:
        uint8 array (150, 3); row k is the RGB colour of training label k.
    """
    colours = np.zeros((len(ADE20K_CLASSES), 3), dtype=np.uint8)
    for k in range(len(colours)):
        index, rgb = k + 1, [0, 0, 0]
        for bit in range(7, -1, -1):  # spread the index's bits over the high bits of R, G and B
            for channel in range(3):
                rgb[channel] |= ((index >> channel) & 1) << bit
            index >>= 3
        colours[k] = rgb
    return colours


def _carvana_image_dir(root: Path) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(
            f"Carvana root {root} is not a directory. Expected {root}/train/<car>_<view>.jpg and "
            f"{root}/train_masks/<car>_<view>_mask.gif (data_scripts/download_carvana.py or "
            "unet_tutorial.course.sample_data.make_carvana_like make this layout)."
        )
    for name in CARVANA_IMAGE_DIRS:
        folder = root / name
        if folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            return folder
    raise FileNotFoundError(
        f"no Carvana images in {root}: expected {root}/train/ or {root}/train_hq/ holding <car>_<view>.jpg "
        f"(e.g. 00087a6bd4dc_01.jpg) next to {root}/train_masks/. Found: "
        f"{sorted(p.name for p in root.iterdir())[:10]}"
    )


def rle_encode(mask: np.ndarray | torch.Tensor) -> str:
    """Run-length code of a binary mask in the Carvana submission format. Taught in 03.

    Pixels are numbered from 1 in row-major order: left to right along the top row, then the next row down
    (``mask.ravel()`` in NumPy's default C order). Each run of 1s is written as "start length". Carvana's own
    ``train_masks.csv`` uses this order: its first row, ``00087a6bd4dc_01.jpg``, starts
    "879386 40 881253 141 883140 205", runs on rows 458-460 of the 1918-wide image centred near column 960 —
    the roof of a centred car — which column-major numbering would place in a corner. An empty mask gives "".

    Shape: mask (H, W) of 0/1 (or bool).
    """
    mask = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects one mask (H, W), got shape {mask.shape}")
    pixels = np.concatenate([[0], (mask.ravel() > 0).astype(np.int8), [0]])  # zero-padded so every run closes
    edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1  # 1-indexed starts of runs, then 1-indexed ends + 1
    edges[1::2] -= edges[::2]  # ends -> lengths
    return " ".join(map(str, edges))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of ``rle_encode``: "start length ..." (1-indexed, row-major) to a uint8 0/1 mask.

    Args:
        shape: (height, width) of the mask, e.g. (1280, 1918) for Carvana.
    Shape: -> (height, width).
    """
    numbers = np.array(rle.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"an RLE string holds 'start length' pairs, got an odd count ({numbers.size}) of numbers")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    flat = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    if numbers.size and (starts.min() < 0 or (starts + lengths).max() > flat.size):
        raise ValueError(f"RLE runs fall outside a {shape[0]}x{shape[1]} mask; check the shape (height, width)")
    for start, length in zip(starts, lengths):
        flat[start : start + length] = 1
    return flat.reshape(shape)


def carvana_ids(root: str | Path) -> list[str]:
    """All image ids (``<car>_<view>``, e.g. ``00087a6bd4dc_01``) under ``root/train`` (or ``train_hq``), sorted."""
    folder = _carvana_image_dir(Path(root))
    return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def carvana_split(
    root: str | Path, val_fraction: float = 0.1, seed: int = 0, max_cars: int | None = None
) -> tuple[list[str], list[str]]:
    """Split Carvana image ids into train and validation by car, so no car's views land on both sides.

    Args:
        root: folder holding ``train/`` (or ``train_hq/``) and ``train_masks/``.
        val_fraction: fraction of cars (not images) held out; at least one car goes to each side.
        seed: the shuffle of cars is reproducible for a given seed.
        max_cars: use only this many cars, the first of the same shuffle (a short run on a CPU); None: all.

    Returns:
        (train_ids, val_ids), each sorted.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if max_cars is not None and max_cars < 2:
        raise DataError(f"max_cars={max_cars}: a split by car needs at least 2 cars (None uses them all)")
    ids = carvana_ids(root)
    cars = sorted({i.rsplit("_", 1)[0] for i in ids})
    if len(cars) < 2:
        raise DataError(f"{root} holds {len(cars)} car(s); a split by car needs at least 2")
    random.Random(seed).shuffle(cars)
    cars = cars[:max_cars]  # all of them when max_cars is None
    n_val = min(len(cars) - 1, max(1, round(len(cars) * val_fraction)))
    val_cars, used = set(cars[:n_val]), set(cars)
    train_ids = [i for i in ids if i.rsplit("_", 1)[0] in used - val_cars]
    val_ids = [i for i in ids if i.rsplit("_", 1)[0] in val_cars]
    return train_ids, val_ids


class CarvanaDataset(Dataset):
    """Carvana images with binary car masks, read from the competition's own files.

    Layout: ``root/train/<car>_<view>.jpg`` (or ``root/train_hq/``) and ``root/train_masks/<car>_<view>_mask.gif``
    (palette GIF of 0/1; PNG masks and 0/255 masks are accepted too).

    Args:
        root: the folder holding ``train/`` and ``train_masks/``.
        ids: image ids to use (see ``carvana_split``); None means every image.
        transform: albumentations-style ``transform(image=uint8 HxWx3, mask=uint8 HxW) -> dict``; the mask
            it gets is 0/1 and must stay 0/1 (for binary masks build pipelines with ``mask_fill=0``).
        decode_size: (height, width), or an int, that the transform shrinks images to: each JPEG is then decoded
            at the smallest JPEG scale (1/8, 1/4, 1/2) still at least that size (``read_image(min_size=...)``),
            and its mask resized to match with nearest neighbour. For Carvana's 1918x1280 photos and a
            128x192 model input this reads 240x160 pixels instead of 2.5 million, several times faster.
            None: full size.

    Shape:
        image float (3, H, W) in [0, 1] (or as the transform normalised it); mask float (1, H, W) of 0/1.
    """

    def __init__(
        self,
        root: str | Path,
        ids: list[str] | None = None,
        transform: Callable | None = None,
        *,
        decode_size: int | tuple[int, int] | None = None,
    ):
        self.root = Path(root)
        self.image_dir = _carvana_image_dir(self.root)
        self.mask_dir = self.root / CARVANA_MASK_DIR
        if not self.mask_dir.is_dir():
            raise FileNotFoundError(f"mask folder {self.mask_dir} is missing; expected <car>_<view>_mask.gif there")
        images = {p.stem: p for p in self.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        masks = {p.name.rsplit("_mask", 1)[0]: p for p in self.mask_dir.glob("*_mask.*")}
        self.ids = sorted(images) if ids is None else list(ids)
        if not self.ids:
            raise DataError(f"no image ids to load from {self.image_dir} (ids={ids!r})")
        self.image_paths, self.mask_paths = [], []
        for i in self.ids:
            if i not in images:
                raise FileNotFoundError(f"image {self.image_dir / (i + '.jpg')} (id {i!r}) does not exist")
            if i not in masks:
                raise FileNotFoundError(
                    f"mask for {images[i]} is missing: expected {self.mask_dir / (i + '_mask.gif')} (or .png)"
                )
            self.image_paths.append(images[i])
            self.mask_paths.append(masks[i])
        self.transform = transform
        self.decode_size = None if decode_size is None else _size_hw(decode_size, "decode_size")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.image_paths[index], self.mask_paths[index]
        image, mask = read_image(image_path, min_size=self.decode_size), read_label(mask_path)
        if self.decode_size is not None and image.shape[:2] != mask.shape[:2]:  # decoded at a reduced scale
            _check_sizes(image_size(image_path), mask.shape, image_path, mask_path)  # the photo's own size
            height, width = image.shape[:2]
            mask = np.array(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
        check_same_size(image, mask, image_path, mask_path)
        values = label_values(mask)
        if values <= {0, 255}:
            mask = (mask > 0).astype(np.uint8)  # 0/255 masks (and all-background ones) become 0/1
        elif not values <= {0, 1}:
            raise DataError(f"mask {mask_path} holds values {sorted(values)}; a binary mask must be 0/1 or 0/255")
        image_t, mask_t = apply_transform(self.transform, image, mask)
        if mask_t.max() > 1:
            raise DataError(
                f"the transform turned the mask of {image_path} into values {mask_t.unique().tolist()}; binary "
                "masks must stay 0/1, so pad them with 0 (e.g. train_transforms(size, mask_fill=0))."
            )
        return image_t, mask_t.float().unsqueeze(0)  # (H, W) -> (1, H, W)


def _ade20k_root(root: Path) -> Path:
    if (root / "ADEChallengeData2016").is_dir() and not (root / "images").is_dir():
        return root / "ADEChallengeData2016"  # accept the folder the zip was extracted into, too
    return root


class ADE20KDataset(Dataset):
    """ADE20K SceneParsing (ADEChallengeData2016): 150 classes, label 0 ("other") ignored.

    Layout: ``root/images/<split>/ADE_*.jpg`` and ``root/annotations/<split>/ADE_*.png`` (uint8 labels 0..150).
    Labels are shifted so that 1..150 become 0..149 and 0 becomes ``IGNORE_INDEX`` (255) before the
    transform runs, so padding with 255 is ignored as well.

    Args:
        root: the ADEChallengeData2016 folder (or the folder that holds it).
        split: "training" or "validation".
        transform: albumentations-style ``transform(image=uint8 HxWx3, mask=uint8 HxW) -> dict``.
        limit: use only this many images, drawn at random with ``seed`` (the files are sorted by scene, so the
            first N would cover a few scenes only); None: all.
        seed: the draw of ``limit`` images is the same for the same seed.

    Shape:
        image float (3, H, W); mask long (H, W) with values in 0..149 or 255.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        transform: Callable | None = None,
        *,
        limit: int | None = None,
        seed: int = 0,
    ):
        if split not in ("training", "validation"):
            raise DataError(f"split must be 'training' or 'validation', got {split!r}")
        self.root = _ade20k_root(Path(root))
        image_dir, label_dir = self.root / "images" / split, self.root / "annotations" / split
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{folder} is not a directory. ADE20KDataset expects the ADEChallengeData2016 layout: "
                    f"{self.root}/images/{split}/ADE_*.jpg and {self.root}/annotations/{split}/ADE_*.png "
                    "(data_scripts/download_ade20k.py or unet_tutorial.course.sample_data.make_ade20k_like make it)."
                )
        self.image_paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.image_paths:
            raise FileNotFoundError(f"no images (ADE_*.jpg) in {image_dir}")
        self.image_paths = random_subset(self.image_paths, limit, seed)
        self.label_paths = [label_dir / (p.stem + ".png") for p in self.image_paths]
        for image_path, label_path in zip(self.image_paths, self.label_paths):
            if not label_path.is_file():
                raise FileNotFoundError(f"annotation for {image_path} is missing: expected {label_path}")
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.image_paths[index], self.label_paths[index]
        image, label = read_image(image_path), read_label(label_path)
        check_same_size(image, label, image_path, label_path)
        if label.max() > len(ADE20K_CLASSES):
            bad = sorted(v for v in label_values(label) if v > len(ADE20K_CLASSES))
            raise DataError(f"annotation {label_path} holds labels {bad}; ADE20K labels are 0..150")
        image_t, mask_t = apply_transform(self.transform, image, _ADE20K_LUT[label])
        return image_t, mask_t.long()


def random_subset(items: list, limit: int | None, seed: int = 0) -> list:
    """``limit`` items drawn at random (reproducibly for a ``seed``), kept in their original order; None: all.

    Datasets on disk are often sorted by scene or by sequence (ADE20K: airport_terminal, art_gallery, ...), so
    the first N files would be one or two scenes, not a sample of the whole.
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise ValueError(f"limit={limit} must be at least 1 (or None for every item)")
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]
