"""Your own data: a folder of images and a folder of masks with the same file names, and a random split.

``FolderDataset`` reads any image format PIL reads, checks that every image has a mask of its size (from the
file headers, before training starts) and that labels fit ``num_classes``, naming the file when one does not.
``split_indices`` holds out a seeded fraction of independent images. Left out: instance masks, polygons and
other annotation formats (convert them to label images first).
Taught in: notebook 03 ("your own data"); the command line's ``--dataset folder``.
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
from unet_tutorial.data import DataError, apply_transform, check_same_size, label_values, read_image, read_label


def split_indices(length: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Shuffle ``range(length)`` with ``seed`` and hold out ``val_fraction`` of it: (train, val) indices, sorted.

    For a folder of independent images; Carvana's views of one car are not independent (use ``carvana_split``).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if length < 2:
        raise ValueError(f"a train/validation split needs at least 2 images, got {length}")
    order = list(range(length))
    random.Random(seed).shuffle(order)
    n_val = min(length - 1, max(1, round(length * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _image_files(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} {folder} is not a directory")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size  # (width, height), read from the header only
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err}") from err


class FolderDataset(Dataset):
    """Your own data: a folder of images and a folder of masks with the same file names. Taught in 03.

    ``images_dir/<name>.jpg`` (any format PIL reads, any mode: it becomes RGB) pairs with
    ``masks_dir/<name><mask_suffix>.png`` (or another format), a single-channel image of class indices.
    Binary (``num_classes=1``): any value > 0 is foreground, so masks stored 0/1 and 0/255 both work.
    Classes (``num_classes > 1``): values 0..num_classes-1, plus ``ignore_index`` for pixels that are not scored;
    those become 255 (``conventions.IGNORE_INDEX``) so that they and the padding of a transform are ignored alike.
    Unpaired files and size mismatches fail at construction (sizes come from the file headers); a label
    >= num_classes fails when its mask is read, naming the file.

    Args:
        images_dir, masks_dir: the two folders.
        num_classes: 1 for binary masks, else the number of classes.
        mask_suffix: text after the image's stem in its mask's name, e.g. "_mask" for ``car_mask.png``.
        class_names: optional names, one per class (two for binary: background, foreground).
        ignore_index: a mask value that is not a class (e.g. 11 for CamVid's "unlabelled"); classes only.
        transform: albumentations-style ``transform(image=uint8 HxWx3, mask=uint8 HxW) -> dict``; binary masks
            should be padded with 0 (``mask_fill=0``), class masks with 255.

    Shape:
        image float (3, H, W); mask float (1, H, W) of 0/1 (binary), or long (H, W) of classes and 255.
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        num_classes: int,
        *,
        mask_suffix: str = "",
        class_names: list[str] | tuple[str, ...] | None = None,
        ignore_index: int | None = None,
        transform: Callable | None = None,
    ):
        if num_classes < 1 or num_classes > 255:
            raise ValueError(f"num_classes={num_classes}: use 1 for binary masks, or 2..255 classes")
        if ignore_index is not None and num_classes == 1:
            raise ValueError("ignore_index is for class masks (num_classes > 1); binary masks are 0 or > 0")
        if ignore_index is not None and not num_classes <= ignore_index <= 255:
            raise ValueError(
                f"ignore_index={ignore_index} must be a mask value outside the classes "
                f"0..{num_classes - 1} (and at most 255)"
            )
        expected_names = 2 if num_classes == 1 else num_classes
        if class_names is not None and len(class_names) != expected_names:
            raise ValueError(
                f"class_names has {len(class_names)} names; num_classes={num_classes} needs "
                f"{expected_names}" + (" (background, foreground)" if num_classes == 1 else "")
            )
        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)
        images = _image_files(self.images_dir, "images_dir")
        masks = {
            stem[: len(stem) - len(mask_suffix)]: p
            for stem, p in _image_files(self.masks_dir, "masks_dir").items()
            if stem.endswith(mask_suffix)
        }
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.images_dir}")
        problems = [
            f"image {images[s]} has no mask {self.masks_dir / (s + mask_suffix)}.*"
            for s in sorted(set(images) - set(masks))
        ]
        problems += [f"mask {masks[s]} has no image {self.images_dir / s}.*" for s in sorted(set(masks) - set(images))]
        if problems:
            raise FileNotFoundError(
                f"{len(problems)} unpaired file(s) (an image <name>.<ext> needs the mask "
                f"<name>{mask_suffix}.<ext>): " + "; ".join(problems)
            )
        self.stems = sorted(images)
        self.image_paths = [images[s] for s in self.stems]
        self.mask_paths = [masks[s] for s in self.stems]
        mismatched = [
            f"{i} is {'x'.join(map(str, _header_size(i)))} but {m} is {'x'.join(map(str, _header_size(m)))}"
            for i, m in zip(self.image_paths, self.mask_paths)
            if _header_size(i) != _header_size(m)
        ]
        if mismatched:
            raise ValueError(
                f"{len(mismatched)} image(s) and mask(s) differ in size (WxH); they must match: "
                + "; ".join(mismatched[:10])
            )
        self.num_classes, self.ignore_index, self.transform = num_classes, ignore_index, transform
        self.class_names = tuple(class_names) if class_names is not None else None
        self._lut = None
        if num_classes > 1:  # mask value -> training label: classes stay, ignore_index -> 255
            self._lut = np.arange(256, dtype=np.uint8)
            if ignore_index is not None:
                self._lut[ignore_index] = IGNORE_INDEX

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.image_paths[index], self.mask_paths[index]
        image, mask = read_image(image_path), read_label(mask_path)
        check_same_size(image, mask, image_path, mask_path)
        if self.num_classes == 1:
            image_t, mask_t = apply_transform(self.transform, image, (mask > 0).astype(np.uint8))
            if mask_t.max() > 1:
                raise DataError(
                    f"the transform turned the mask of {image_path} into values "
                    f"{mask_t.unique().tolist()}; binary masks must stay 0/1, so pad them with 0 "
                    "(e.g. train_transforms(size, mask_fill=0))."
                )
            return image_t, mask_t.float().unsqueeze(0)  # (H, W) -> (1, H, W)
        bad = sorted(v for v in label_values(mask) if v >= self.num_classes and v != self.ignore_index)
        if bad:
            raise DataError(
                f"mask {mask_path} holds labels {bad}, but num_classes={self.num_classes} allows "
                f"0..{self.num_classes - 1}"
                + (f" and ignore_index={self.ignore_index}" if self.ignore_index is not None else "")
                + "; raise num_classes or pass ignore_index for the value that is not a class"
            )
        image_t, mask_t = apply_transform(self.transform, image, self._lut[mask])
        return image_t, mask_t.long()
