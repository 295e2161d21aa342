"""Reading images and masks as they come: a viewer's orientation, reduced-size JPEG decoding, refused lossy masks.

``read_image`` turns a photo as a viewer shows it (its EXIF orientation), and can decode a JPEG straight at a
reduced size (``min_size``: PIL's draft mode, the decoder's DCT scaling); ``read_label`` reads a mask's labels
(palette GIF/PNG, grey levels), refusing a lossy format (JPEG), whose noise would invent labels. Both raise
``DataError`` naming the file and what would work. ``apply_transform`` hands (image, mask) to an albumentations
pipeline. Shared by ``data.py`` (Carvana, ADE20K) and ``folder.py`` (your own data). Left out: 16-bit images,
multi-page TIFFs. Taught in: notebook 03 (the data) and the README (your own data).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


class DataError(ValueError):
    """A data file or folder that cannot be used as it is; the message names the file and what would work."""


ORIENTATION = 0x0112  # the EXIF tag that says how to turn a stored photo for display
TURNED = (5, 6, 7, 8)  # orientations that swap width and height (a quarter turn, perhaps mirrored)
LOSSY_MASKS = (None, "threshold")  # read_label's options for mask files saved in a lossy format


def _size_hw(size: int | tuple[int, int], name: str) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be a positive (height, width) or an int, got {size!r}")
    return int(height), int(width)


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file as a viewer shows it (EXIF orientation applied), from its header only.

    Raises:
        DataError: the file cannot be read (naming it).
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            turned = img.getexif().get(ORIENTATION, 1) in TURNED
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err}. Is the file complete (re-download it)?") from err
    return (width, height) if turned else (height, width)


def read_image(path: Path, min_size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), turned upright as a viewer shows it.

    Phones and cameras often store a photo sideways with an EXIF orientation tag saying how to turn it, and
    annotation tools draw masks on the turned photo: the tag is applied here (``ImageOps.exif_transpose``), and
    in ``read_label`` too, so that image and mask stay aligned. 16-bit greyscale is scaled to 8 bits, not clipped.

    Args:
        min_size: (height, width), or an int for a square, that the image is going to be shrunk to. A JPEG is
            then decoded straight at the smallest of its scales 1/8, 1/4, 1/2, 1/1 that is still at least this
            size (PIL's draft mode: the decoder's DCT scaling, several times faster than decoding in full and
            close to decoding in full, then shrinking). Other formats are decoded in full. None: full size.
    Raises:
        DataError: the file cannot be decoded (naming it).
    """
    min_hw = None if min_size is None else _size_hw(min_size, "min_size")
    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(ORIENTATION, 1)
            if min_hw is not None and img.format == "JPEG":
                height, width = min_hw[::-1] if orientation in TURNED else min_hw  # as stored, before the turn
                img.draft(None, (width, height))  # a size below the full one picks a reduced DCT scale
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: 0..65535, 8 bits are the top byte
                grey = np.array(img).astype(np.float64)
                top = 65535.0 if grey.max() > 255 or img.mode != "I" else 255.0
                return np.repeat(np.round(grey / top * 255).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
            return np.array(img.convert("RGB"))
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err}. Is the file complete (re-download it)?") from err


def _lossy_format(img: Image.Image, path: Path) -> str | None:
    """The name of a lossy format ("JPEG", "lossy WebP") when ``img`` was saved in one, else None."""
    if img.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with extra frames
        return "JPEG"
    if img.format != "WEBP":
        return None
    # A WebP holds either a lossy "VP8 " or a lossless "VP8L" bitstream; find it among the RIFF chunks (inside
    # the first frame, ANMF, for an animation).
    data = Path(path).read_bytes()
    offset = 12
    while offset + 8 <= len(data):
        fourcc, length = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return "lossy WebP" if fourcc == b"VP8 " else None
        offset = offset + 24 if fourcc == b"ANMF" else offset + 8 + length + (length & 1)
    return "lossy WebP"  # no bitstream found: assume the worst


def read_label(path: Path, lossy_masks: str | None = None) -> np.ndarray:
    """Read a single-channel mask file as uint8 (H, W) of labels, turned as a viewer shows it (EXIF orientation).

    Accepted: palette (P: the indices, as Carvana's GIFs store 0/1) and greyscale (L) images; RGB only when
    R == G == B; 16-bit greyscale only when every value fits in 0..255. A colour annotation would otherwise be
    turned into luminance "labels", and 16-bit labels above 255 clipped, so those are refused. So are masks in a
    lossy format (JPEG, lossy WebP): compression noise near every edge becomes labels that nobody drew.

    Args:
        lossy_masks: None refuses a lossy mask file; "threshold" reads it as a black-and-white 0/255 mask:
            pixels above 127 become 1, the rest 0 (for binary masks only: class indices cannot be recovered).
    Raises:
        DataError: unreadable, lossy, or a mode/value range that is not a label image (naming the file and mode).
    """
    if lossy_masks not in LOSSY_MASKS:
        raise ValueError(
            f"lossy_masks={lossy_masks!r} is not an option: use None (refuse masks saved as JPEG or lossy WebP) "
            "or 'threshold' (read them as black-and-white 0/255 masks)"
        )
    try:
        with Image.open(path) as img:
            lossy = _lossy_format(img, path)
            if img.getexif().get(ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if lossy and lossy_masks == "threshold":
                return (np.array(img.convert("L")) > 127).astype(np.uint8)
            mode, array = img.mode, np.array(img)
    except OSError as err:
        raise DataError(f"cannot read mask {path}: {err}. Is the file complete (re-download it)?") from err
    if lossy:
        raise DataError(
            f"mask {path} is a {lossy}: lossy compression turns pixels along every edge into values that are not "
            "labels. Save masks as PNG or GIF (lossless); a black-and-white mask already saved this way can be read "
            "with read_label(path, lossy_masks='threshold') (pixels above 127 become 1, the rest 0)"
        )
    expected = (
        "expected a label image: palette (P) or 8-bit greyscale (L) whose pixel values are the labels, "
        "as the dataset ships them"
    )
    if mode in ("P", "L", "1"):
        return array.astype(np.uint8, copy=False)
    if mode in ("RGB", "RGBA", "LA"):
        channels = array[..., :1] if mode == "LA" else array[..., :3]  # (H, W, 1 or 3); alpha is dropped
        if (channels == channels[..., :1]).all():  # grey stored as colour: every channel is the label
            return channels[..., 0].astype(np.uint8, copy=False)
        raise DataError(
            f"mask {path} is a colour ({mode}) image whose channels differ: colours are not labels. "
            f"{expected}; convert colour annotations to label indices first"
        )
    if mode.startswith("I") and array.ndim == 2 and np.issubdtype(array.dtype, np.integer):
        if array.size == 0 or (array.min() >= 0 and array.max() <= 255):
            return array.astype(np.uint8)
        raise DataError(
            f"mask {path} is a 16/32-bit ({mode}) image with values up to {int(array.max())}, "
            f"which do not fit in 0..255 (labels above 255 would be lost); {expected}"
        )
    raise DataError(f"mask {path} has image mode {mode}; {expected}")


def label_values(mask: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.bincount(mask.ravel(), minlength=256)).tolist())


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    _check_sizes(image.shape[:2], mask.shape[:2], image_path, mask_path)


def _check_sizes(image_hw: tuple, mask_hw: tuple, image_path: Path, mask_path: Path) -> None:
    if tuple(image_hw) != tuple(mask_hw):
        raise DataError(
            f"image {image_path} is {image_hw[1]}x{image_hw[0]} (WxH) but its mask {mask_path} is "
            f"{mask_hw[1]}x{mask_hw[0]}; an image and its mask must have the same size."
        )


def apply_transform(
    transform: Callable | None, image: np.ndarray, mask: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an albumentations-style transform; return image float (3, H, W) and the mask as a tensor (H, W)."""
    if transform is not None:
        out = transform(image=image, mask=mask)
        image, mask = out["image"], out["mask"]
    if isinstance(image, np.ndarray):  # no ToTensorV2 in the pipeline: (H, W, 3) -> (3, H, W)
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    mask = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, torch.Tensor) else mask
    return image.float(), mask
