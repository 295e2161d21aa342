"""``python -m unet_tutorial predict``: a mask PNG and an overlay JPEG per image, and masks.csv (RLE) for binary models.

The model comes from the checkpoint alone (``checkpoint.load_model``); each image is resized as the model was
trained (``predict.network_size``), or predicted in sliding windows at full size (``--tile``). Files are written
through temporary names and renamed, so a crash never leaves half an image. Left out: batching several images,
video. Taught in: the README (command line) and notebooks 03 and 05 (their last sections).
"""

from __future__ import annotations

import argparse
import csv
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from unet_tutorial.checkpoint import load_model
from unet_tutorial.cli_args import CliError, check_out
from unet_tutorial.conventions import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.data import ade20k_palette, read_image, rle_encode
from unet_tutorial.predict import network_size, predict_mask, sliding_window_mask
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
    return paths


def _save_atomically(picture: Image.Image, path: Path, **options) -> None:
    """Save a picture through a temporary name and rename it: a crash never leaves half an image at ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        picture.save(tmp, format=Image.registered_extensions()[path.suffix.lower()], **options)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def predict_command(args: argparse.Namespace) -> list[Path]:
    """``python -m unet_tutorial predict``: a mask PNG and an overlay JPEG per image; binary: masks.csv (RLE)."""

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
    binary = config.get("num_classes", 1) == 1
    norm = {"mean": tuple(config.get("mean", IMAGENET_MEAN)), "std": tuple(config.get("std", IMAGENET_STD))}
    ade20k = config.get("dataset") == "ade20k"
    colours = None if binary else ade20k_palette() if ade20k else palette(config["num_classes"])
    written = []
    with open(out / "masks.csv", "w", newline="") if binary else nullcontext() as table:
        rows = csv.writer(table) if binary else None
        if binary:
            rows.writerow(["img", "rle_mask"])
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
            _save_atomically(Image.fromarray(saved), out / f"{path.stem}_mask.png")
            _save_atomically(
                Image.fromarray(overlay(image, mask, palette=colours)), out / f"{path.stem}_overlay.jpg", quality=90
            )
            written.append(out / f"{path.stem}_mask.png")
            if binary:
                rows.writerow([path.name, rle_encode(mask)])
                table.flush()  # a row per mask as it is written: an interrupted run keeps a table that matches
    print(f"wrote {len(written)} masks and overlays to {out}" + (f" and {out / 'masks.csv'}" if binary else ""))
    return written
