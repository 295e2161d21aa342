"""Does the package's recipe beat a plain training loop on real photographs? CamVid, same seed, same budget.

A new user's first try: a plain loop (Adam 1e-3, cross-entropy, the images resized and nothing else) against the
recipe the notebooks teach (``train_transforms``, ``ComboLoss``, AdamW with a one-cycle schedule). Both train the
same UNet from the same initial weights on the same seeded subset of CamVid's training split, for the same number
of epochs, and are scored on CamVid's validation split at annotation resolution (the images are resized for the
network, the masks are not: ``evaluate`` upsamples the logits). CamVid's label 11 ("unlabelled") is ignored.

    python benchmarks/recipe_check.py /path/to/camvid                       # both recipes, the issue's budget
    python benchmarks/recipe_check.py /path/to/camvid --recipes package --augment light --loss ce

The folder holds ``train/images/*.jpg``, ``train/masks/*.png``, ``val/images``, ``val/masks`` (mask values 0..10,
11 = unlabelled). It prints one line per epoch and a final line per recipe with val mIoU and pixel accuracy.
The ablation flags change the package recipe only; the plain loop is fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from unet_tutorial.cli_args import parse_size
from unet_tutorial.conventions import IGNORE_INDEX
from unet_tutorial.data import random_subset
from unet_tutorial.folder import FolderDataset
from unet_tutorial.losses import ComboLoss, cross_entropy
from unet_tutorial.model import UNet
from unet_tutorial.train import evaluate, fit
from unet_tutorial.transforms import eval_transforms, train_transforms
from unet_tutorial.utils import set_seed

NUM_CLASSES, CAMVID_IGNORE = 11, 11
AUGMENT = {  # train_transforms keyword arguments
    "default": {},  # the package's defaults, whatever they are
    "old-default": {
        "crop": "random_resized",
        "scale": (0.5, 1.0),
        "rotate": 10.0,
        "shift": 0.05,
        "color_jitter": 0.2,
    },  # the defaults before this check
    "light": {"crop": "random_resized", "scale": (0.8, 1.0), "rotate": 0.0, "shift": 0.0, "color_jitter": 0.1},
    "flip": {"crop": "resize", "rotate": 0.0, "shift": 0.0, "color_jitter": 0.0},  # resize + horizontal flip
    "none": {"crop": "resize", "hflip": 0.0, "rotate": 0.0, "shift": 0.0, "color_jitter": 0.0},
}
LOSSES = {
    "combo": None,
    "ce": {"cross_entropy": 1.0},
    "ce+dice": {"cross_entropy": 1.0, "dice": 1.0},
}  # None: ComboLoss() defaults


def loaders(root: Path, size: tuple[int, int], train_tf, *, train_limit: int, batch_size: int, seed: int):
    train_set = FolderDataset(
        root / "train" / "images", root / "train" / "masks", NUM_CLASSES, ignore_index=CAMVID_IGNORE, transform=train_tf
    )
    train_set = Subset(train_set, random_subset(list(range(len(train_set))), train_limit, seed))
    val_set = FolderDataset(
        root / "val" / "images",
        root / "val" / "masks",
        NUM_CLASSES,
        ignore_index=CAMVID_IGNORE,
        transform=eval_transforms(size, keep_mask=True),
    )
    generator = torch.Generator().manual_seed(seed)
    # fit() evaluates after every epoch: a fixed sample of 16 validation images keeps that cheap; the final
    # score is over the whole validation split.
    watch_set = Subset(val_set, random_subset(list(range(len(val_set))), 16, seed))
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True, generator=generator),
        DataLoader(watch_set, batch_size=batch_size),
        DataLoader(val_set, batch_size=batch_size),
    )


def run(recipe: str, args: argparse.Namespace) -> dict:
    """Train one recipe and return its final validation metrics."""
    set_seed(args.seed)
    # the same initial weights for every recipe
    model = UNet(in_channels=3, num_classes=NUM_CLASSES, base_channels=args.base_channels)
    if recipe == "plain":
        train_tf = eval_transforms(args.size)  # resize and normalise, nothing else
        loss_fn = lambda logits, masks: cross_entropy(logits, masks, ignore_index=IGNORE_INDEX)  # noqa: E731
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scheduler = None
    else:
        train_tf = train_transforms(args.size, **AUGMENT[args.augment])
        loss_fn = ComboLoss(LOSSES[args.loss], ignore_index=IGNORE_INDEX)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
        scheduler = None if args.scheduler == "none" else args.scheduler
    train_loader, watch_loader, val_loader = loaders(
        args.root, args.size, train_tf, train_limit=args.train_limit, batch_size=args.batch_size, seed=args.seed
    )
    start = time.perf_counter()
    fit(
        model,
        train_loader,
        watch_loader,
        epochs=args.epochs,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device="cpu",
        num_classes=NUM_CLASSES,
        ignore_index=IGNORE_INDEX,
        scheduler=scheduler,
        progress=False,
        log=lambda line: print(f"  [{recipe}] {line}", flush=True),
    )
    final = evaluate(model, val_loader, "cpu", num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, progress=False)
    return {
        "recipe": recipe,
        "miou": final["miou"],
        "pixel_accuracy": final["pixel_accuracy"],
        "minutes": (time.perf_counter() - start) / 60,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="CamVid folder with train/ and val/")
    p.add_argument("--recipes", nargs="+", default=["plain", "package"], choices=["plain", "package"])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--size", type=parse_size, default=(176, 240), help="HEIGHTxWIDTH the network sees")
    p.add_argument("--train-limit", type=int, default=120, help="training images (a seeded random subset)")
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the check runs on small shared CPUs)")
    p.add_argument("--augment", choices=sorted(AUGMENT), default="default", help="package recipe: augmentation")
    p.add_argument("--loss", choices=sorted(LOSSES), default="ce+dice", help="package recipe: ComboLoss terms")
    p.add_argument("--lr", type=float, default=3e-3, help="package recipe: peak learning rate of AdamW")
    p.add_argument("--scheduler", choices=["onecycle", "cosine", "none"], default="onecycle")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = {k: v for k, v in vars(args).items() if k not in ("root", "recipes", "json", "threads")}
    print(f"CamVid {args.root}: {settings}", flush=True)
    results = []
    for recipe in args.recipes:
        result = run(recipe, args)
        results.append(result)
        print(
            f"{recipe:8s} val mIoU {result['miou']:.4f}  pixel accuracy {result['pixel_accuracy']:.4f}  "
            f"({result['minutes']:.1f} min)",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps({"settings": {k: str(v) for k, v in settings.items()}, "results": results}, indent=1)
        )
    return results


if __name__ == "__main__":
    main()
