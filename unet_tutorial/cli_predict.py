"""``python -m unet_tutorial predict``: a mask PNG and an overlay JPEG per image, and masks.csv (RLE) for binary models.

The model comes from the checkpoint alone (``checkpoint.load_model``); each image is resized as the model was
trained (``predict.network_size``), or predicted in sliding windows at full size (``--tile``). Files are written
through unique temporary names and renamed, so a crash never leaves half an image; a file in ``--out`` that predict
did not write is never replaced (``.predict_written`` lists those it did), and masks.csv gains rows across runs.
Left out: batching several images, video. Taught in: the README (command line) and notebooks 03 and 05 (their
last sections).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from unet_tutorial.checkpoint import _umask, load_model
from unet_tutorial.cli_args import CliError, check_out
from unet_tutorial.conventions import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.data import ade20k_palette, rle_encode
from unet_tutorial.predict import network_size, predict_mask, sliding_window_mask
from unet_tutorial.readers import read_image
from unet_tutorial.utils import pick_device
from unet_tutorial.viz import overlay, palette


def input_images(inputs: list[str]) -> list[Path]:
    """Image files named on the command line, folders expanded to the images inside them."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise CliError(f"input {item} does not exist; pass image files or folders of images")
    if not paths:
        raise CliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {inputs}")
    return list({path.resolve(): path for path in paths}.values())  # an image named twice is predicted once


MANIFEST = ".predict_written"  # the names of the files predict wrote in an --out folder, one a line


def _written_before(out: Path) -> set[str]:
    """The files an earlier predict wrote in ``out`` (a manifest that is a link is not trusted)."""
    manifest = out / MANIFEST
    if not manifest.is_file() or manifest.is_symlink():
        return set()
    return set(manifest.read_text().splitlines())


def _remember(out: Path, names: list[str]) -> None:
    """Add names to the manifest before their files are written, so that a killed run still owns them."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never through a planted link
    with os.fdopen(os.open(out / MANIFEST, flags, 0o666), "a") as manifest:
        manifest.write("".join(f"{name}\n" for name in names))


def _check_clashes(out: Path, names: list[str]) -> set[str]:
    """Refuse to replace any file in ``out`` that predict did not write; returns the names it did write."""
    ours = _written_before(out)
    theirs = [name for name in names if name not in ours and ((out / name).exists() or (out / name).is_symlink())]
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        raise CliError(
            f"--out {out} holds {len(theirs)} file(s) that predict did not write and would replace ({shown}); "
            "predict never replaces those: choose another --out, or move them away"
        )
    return ours


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a unique temporary file in ``path``'s folder, then rename: a crash never leaves half a file
    at ``path``, and no fixed temporary name can be a planted link."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output gets the mode any new file would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save(picture: Image.Image, path: Path, **options) -> None:
    _write_atomically(
        path, lambda f: picture.save(f, format=Image.registered_extensions()[path.suffix.lower()], **options)
    )


def _read_table(path: Path) -> dict[str, str]:
    """masks.csv's rows, image name -> RLE (empty when there is no table yet)."""
    if not path.is_file():
        return {}
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a full-size RLE can pass the default 128 kB
    with open(path, newline="") as table:
        return {row[0]: row[1] for row in list(csv.reader(table))[1:] if len(row) == 2}


def _write_table(path: Path, rows: dict[str, str]) -> None:
    def write(f: BinaryIO) -> None:
        text = io.TextIOWrapper(f, newline="", encoding="utf-8")
        writer = csv.writer(text)
        writer.writerow(["img", "rle_mask"])
        writer.writerows(rows.items())
        text.flush()
        text.detach()

    _write_atomically(path, write)


def _overlay(image: np.ndarray, mask: np.ndarray, colours, rows: int = 256) -> np.ndarray:
    """``viz.overlay`` a strip of rows at a time: its float copies stay strip-sized on a large image."""
    picture = np.empty_like(image)  # (H, W, 3) uint8
    for top in range(0, image.shape[0], rows):
        picture[top : top + rows] = overlay(image[top : top + rows], mask[top : top + rows], palette=colours)
    return picture


def predict_command(args: argparse.Namespace) -> list[Path]:
    """``python -m unet_tutorial predict``: a mask PNG and an overlay JPEG per image; binary: masks.csv (RLE).

    Files already in ``--out`` that predict did not write are never replaced (a manifest, ``.predict_written``,
    names those it did); a later run into the same folder replaces its own files and merges its rows into
    masks.csv (an image predicted again gets its new row, the others stay).
    """

    paths = input_images(args.inputs)
    by_stem: dict[str, Path] = {}
    for path in paths:  # outputs are named by stem: two inputs with one stem would overwrite each other
        if path.stem in by_stem:
            raise CliError(
                f"inputs {by_stem[path.stem]} and {path} would both be written as {path.stem}_mask.png; "
                "rename one, or predict them in two runs with different --out folders"
            )
        by_stem[path.stem] = path
    out = Path(args.out)
    check_out(out)
    device = pick_device(args.device)
    model, config = load_model(args.checkpoint, device)
    # The model's own count (its constructor's default is 1): "binary" by default saved class 2 as 2 * 255.
    num_classes = getattr(model, "num_classes", config["model_kwargs"].get("num_classes", 1))
    binary = num_classes == 1
    names = [name for path in paths for name in (f"{path.stem}_mask.png", f"{path.stem}_overlay.jpg")]
    ours = _check_clashes(out, names + (["masks.csv"] if binary else []))
    norm = {"mean": tuple(config.get("mean", IMAGENET_MEAN)), "std": tuple(config.get("std", IMAGENET_STD))}
    ade20k = config.get("dataset") == "ade20k"
    colours = None if binary else ade20k_palette() if ade20k else palette(num_classes)
    table = _read_table(out / "masks.csv") if binary and "masks.csv" in ours else {}
    if binary and "masks.csv" not in ours:
        _remember(out, ["masks.csv"])
    written = []
    try:
        for path in tqdm(paths, desc="predict", disable=args.no_progress):
            image = read_image(path)  # (H, W, 3) uint8
            if args.tile:
                mask = sliding_window_mask(model, image, tile=args.tile, tta=args.tta, threshold=args.threshold, **norm)
            else:
                mask = predict_mask(
                    model,
                    image,
                    image_size=network_size(config, image.shape[:2]),
                    threshold=args.threshold,
                    tta=args.tta,
                    **norm,
                )
            mask = mask.numpy().astype(np.uint8)  # (H, W)
            # Binary masks are saved as 0/255 so that they can be viewed; ADE20K's as its file labels (class + 1);
            # a folder dataset's as the class indices its masks hold.
            saved = mask * 255 if binary else mask + 1 if ade20k else mask
            mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.jpg"
            _remember(out, [p.name for p in (mask_path, overlay_path) if p.name not in ours])
            _save(Image.fromarray(saved), mask_path)
            _save(Image.fromarray(_overlay(image, mask, colours)), overlay_path, quality=90)
            written.append(mask_path)
            if binary:
                table[path.name] = rle_encode(mask)
    finally:  # the rows of every mask written, even when a later image fails: the table matches the masks
        if binary and (written or not (out / "masks.csv").exists()):
            _write_table(out / "masks.csv", table)
    print(f"wrote {len(written)} masks and overlays to {out}" + (f" and {out / 'masks.csv'}" if binary else ""))
    return written
