"""Your own data: a folder of images and a folder of masks with the same file names, and a random split.

``FolderDataset`` reads any image format PIL reads, checks that every image has a mask of its size (from the
file headers, before training starts) and that labels fit ``num_classes``, naming the file when one does not.
``split_indices`` holds out a seeded fraction of independent images. Left out: instance masks, polygons and
other annotation formats (convert them to label images first).
Taught in: notebook 03 ("your own data"); the command line's ``--dataset folder``.
"""

from __future__ import annotations

import os
import random
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Subset

from unet_tutorial.conventions import IGNORE_INDEX, IMAGE_SUFFIXES
from unet_tutorial.readers import (
    ORIENTATION,
    TURNED,
    DataError,
    apply_transform,
    check_same_size,
    label_values,
    read_image,
    read_label,
)

_SHOWN = 3  # how many files a message names before it gives a count


def split_indices(length: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Shuffle ``range(length)`` with ``seed`` and hold out ``val_fraction`` of it: (train, val) indices, sorted.

    For a folder of independent images; Carvana's views of one car are not independent (use ``carvana_split``).
    Raises:
        DataError: ``val_fraction`` outside (0, 1), or fewer than 2 items.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive), e.g. 0.1")
    if length < 2:
        raise DataError(
            f"a train/validation split needs at least 2 image pairs, got {length}; add images (and their masks)"
        )
    order = list(range(length))
    random.Random(seed).shuffle(order)
    n_val = min(length - 1, max(1, round(length * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _some(items: list[str]) -> str:
    """The first few items, then how many more: a message stays one readable line."""
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _image_files(folder: Path, what: str) -> dict[str, Path]:
    """stem -> file for the images in ``folder``; macOS's ``._*`` metadata files are skipped, one stem twice refused."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} {folder} is not a directory")
    files: dict[str, Path] = {}
    skipped = 0
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.name.startswith("._"):  # AppleDouble: what macOS leaves next to each file on a non-Mac disk
            skipped += 1
            continue
        if path.stem in files:
            raise DataError(
                f"{files[path.stem]} and {path} share the name {path.stem}, so which one pairs is unclear; "
                f"keep one of them in {what} {folder} (move the other out)"
            )
        files[path.stem] = path
    if skipped:
        warnings.warn(
            f"{what} {folder}: skipped {skipped} macOS '._' file(s) (AppleDouble metadata, not images)", stacklevel=3
        )
    return files


def _suffix_hint(images: dict[str, Path], mask_stems: Iterable[str], mask_suffix: str) -> str:
    """When masks are named <image stem><something>, suggest that something as the mask suffix."""
    suffixes: Counter[str] = Counter()
    for stem in list(mask_stems)[:50]:
        prefix = next((stem[:k] for k in range(len(stem), 0, -1) if stem[:k] in images), None)
        if prefix is not None:
            suffixes[stem[len(prefix) :]] += 1
    if not suffixes:
        return ""
    suffix = suffixes.most_common(1)[0][0]
    return (
        ""
        if suffix == mask_suffix
        else f"; the masks look named with mask_suffix={suffix!r} (--mask-suffix {suffix!r})"
    )


def _unreadable(path: Path, error: OSError) -> str:
    if path.is_symlink() and not path.exists():
        return f"{path} is a link to {os.readlink(path)}, which does not exist (fix or remove the link)"
    if path.is_file() and path.stat().st_size == 0:
        return f"{path} is empty (0 bytes): an interrupted copy? copy it again or remove it"
    if isinstance(error, UnidentifiedImageError):
        return f"{path} is not an image PIL can read, whatever its suffix (convert it or remove it)"
    return f"{path} cannot be read ({error})"


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, as a viewer shows it (EXIF orientation), without decoding pixels.

    Raises:
        DataError: unreadable (empty, not an image, a dangling link) or over PIL's decompression-bomb limit.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            turned = img.getexif().get(ORIENTATION, 1) in TURNED
        return (height, width) if turned else (width, height)
    except Image.DecompressionBombError:
        limit = Image.MAX_IMAGE_PIXELS
        try:  # only to say the size in the message
            Image.MAX_IMAGE_PIXELS = None
            with Image.open(path) as img:
                size = f"{img.width}x{img.height} ({img.width * img.height:,} pixels)"
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        raise DataError(
            f"{path} is {size}, over PIL's decompression-bomb limit (twice PIL.Image.MAX_IMAGE_PIXELS = {limit:,}); "
            "resize it (training reads a few hundred pixels a side), or if you trust the file set "
            "PIL.Image.MAX_IMAGE_PIXELS = None before reading"
        ) from None
    except OSError as error:
        raise DataError(_unreadable(path, error)) from error


def _mask_paths(masks: object) -> list[Path]:
    if isinstance(masks, Subset):
        paths = _mask_paths(masks.dataset)
        return [paths[i] for i in masks.indices]
    if hasattr(masks, "mask_paths"):
        return list(masks.mask_paths)
    return [Path(p) for p in masks]


def check_labels(masks: object, num_classes: int, ignore_index: int | None = None) -> set[int]:
    """Read every mask once, before training, and fail on a label that ``num_classes`` does not allow.

    Without it a bad label in a validation mask shows up only after a whole training epoch. Decoding every mask
    costs a fraction of one epoch (no image is read, nothing is transformed).

    Args:
        masks: a dataset with ``mask_paths`` (FolderDataset, CarvanaDataset), a ``Subset`` of one, or mask paths.
        num_classes: 1 for binary (any value > 0 is foreground: nothing is refused), else the number of classes.
        ignore_index: a mask value that is not a class, or None.

    Returns:
        The set of mask values found.

    Raises:
        DataError: a mask unreadable, not a label image, or holding values >= num_classes (naming the files).
    """
    paths = _mask_paths(masks)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        values = list(pool.map(lambda path: label_values(read_label(path)), paths))
    found: set[int] = set().union(*values)
    if num_classes == 1:
        return found
    bad = [
        f"{path}: {wrong}"
        for path, held in zip(paths, values)
        if (wrong := sorted(v for v in held if v >= num_classes and v != ignore_index))
    ]
    if bad:
        allowed = f"0..{num_classes - 1}" + (f" and ignore_index={ignore_index}" if ignore_index is not None else "")
        raise DataError(
            f"{len(bad)} of {len(paths)} masks hold labels outside {allowed} ({_some(bad)}); raise num_classes or "
            "pass ignore_index for the value that is not a class"
        )
    return found


def _check_headers(image_paths: list[Path], mask_paths: list[Path]) -> None:
    """Every file readable and every image the size of its mask, from the headers; DataError naming the files."""
    unreadable, mismatched = [], []
    for image_path, mask_path in zip(image_paths, mask_paths):
        sizes = []
        for path in (image_path, mask_path):
            try:
                sizes.append(_header_size(path))
            except DataError as error:
                unreadable.append(str(error))
        if len(sizes) == 2 and sizes[0] != sizes[1]:
            (iw, ih), (mw, mh) = sizes
            mismatched.append(f"{image_path} is {iw}x{ih} but {mask_path} is {mw}x{mh}")
    if unreadable:
        raise DataError(f"{len(unreadable)} file(s) cannot be read: " + "; ".join(unreadable[:_SHOWN]))
    if mismatched:
        raise DataError(
            f"{len(mismatched)} image(s) and mask(s) differ in size (WxH); they must match: {_some(mismatched)}"
        )


class FolderDataset(Dataset):
    """Your own data: a folder of images and a folder of masks with the same file names. Taught in 03.

    ``images_dir/<name>.jpg`` (any format PIL reads, any mode: it becomes RGB) pairs with
    ``masks_dir/<name><mask_suffix>.png`` (or another format), a single-channel image of class indices.
    Binary (``num_classes=1``): any value > 0 is foreground, so masks stored 0/1 and 0/255 both work.
    Classes (``num_classes > 1``): values 0..num_classes-1, plus ``ignore_index`` for pixels that are not scored;
    those become 255 (``conventions.IGNORE_INDEX``) so that they and the padding of a transform are ignored alike.
    Unpaired files, one name twice, unreadable files and size mismatches fail at construction (sizes come from
    the file headers); macOS's ``._*`` files are skipped. A label >= num_classes fails when its mask is read,
    naming the file; ``check_labels(dataset, num_classes, ignore_index)`` finds it before training instead.

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
            raise DataError(f"num_classes={num_classes}: use 1 for binary masks, or 2..255 classes")
        if ignore_index is not None and num_classes == 1:
            raise DataError("ignore_index is for class masks (num_classes > 1); binary masks are 0 or > 0")
        if ignore_index is not None and not num_classes <= ignore_index <= 255:
            raise DataError(
                f"ignore_index={ignore_index} must be a mask value outside the classes "
                f"0..{num_classes - 1} (and at most 255)"
            )
        expected_names = 2 if num_classes == 1 else num_classes
        if class_names is not None and len(class_names) != expected_names:
            raise DataError(
                f"class_names has {len(class_names)} names; num_classes={num_classes} needs "
                f"{expected_names}" + (" (background, foreground)" if num_classes == 1 else "")
            )
        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)
        images = _image_files(self.images_dir, "images_dir")
        mask_files = _image_files(self.masks_dir, "masks_dir")
        masks = {
            stem[: len(stem) - len(mask_suffix)]: p for stem, p in mask_files.items() if stem.endswith(mask_suffix)
        }
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in images_dir {self.images_dir}")
        lonely_images = [images[s].name for s in sorted(set(images) - set(masks))]
        lonely_masks = [masks[s].name for s in sorted(set(masks) - set(images))]
        if lonely_images or lonely_masks:
            parts = [f"{len(lonely_images)} image(s) without a mask ({_some(lonely_images)})"] if lonely_images else []
            parts += [f"{len(lonely_masks)} mask(s) without an image ({_some(lonely_masks)})"] if lonely_masks else []
            raise DataError(
                f"{len(lonely_images) + len(lonely_masks)} unpaired file(s) in {self.images_dir} and "
                f"{self.masks_dir}: an image <name>.<ext> needs the mask <name>{mask_suffix}.<ext>; "
                + "; ".join(parts)
                + _suffix_hint(images, mask_files, mask_suffix)
            )
        self.stems = sorted(images)
        self.image_paths = [images[s] for s in self.stems]
        self.mask_paths = [masks[s] for s in self.stems]
        _check_headers(self.image_paths, self.mask_paths)
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
