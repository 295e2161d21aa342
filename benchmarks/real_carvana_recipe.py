"""Notebook 03's training on the real Carvana photos, on a CPU: how good, and how long, for given settings.

Trains as notebook 03 does, with the library: the split by car (15 % of the cars for validation), a random
``--leak-fraction`` of the training cars' images held back (never trained on, as in the notebook's split-by-image
experiment, which draws them view by view; here they are drawn at random, as when the README's table was measured),
``loaders.carvana_loaders`` (the notebook's augmentation: random-resized crops of 60-100 %, flips, a small warp,
colour jitter), ``UNet(base_channels)``, BCE + Dice (``ComboLoss``), AdamW (weight decay 1e-4) with the one-cycle
schedule, ``fit`` keeping the best epoch. Then, as the notebook's section 12, every validation photo is predicted at
its own 1918x1280 size with ``predict.predict_mask`` (threshold 0.5, with and without flip TTA), written in
run-length encoding, decoded and scored with the per-image Dice against its GIF.

Prints the validation Dice at training size, the full-resolution Dice of the decoded submission and the wall
time of each phase, data loading included, and the CPU time the process used: with ``--threads 1`` that is
about the wall time on one idle core, whatever else the machine runs (contention for caches makes it a little
larger). ``--decode`` picks how the photos are read while training: "draft"
(``carvana_loaders`` as it is: each JPEG decoded at the smallest DCT scale its crops need), "cache" (a resized
copy written once by ``course.resized_cache`` at 1.5 times the image size, into ``--work``; its writing is
timed too) or "full" (every photo decoded at 1918x1280, for comparison). ``--model densenet`` trains
``DenseNetUNet`` (random encoder unless ``--weights imagenet`` and the weights are at hand) with notebook 04's
learning rates (1e-4 encoder, 1e-3 decoder). Timings depend on how busy the machine is: the script prints the
load average at its start and end.

    python benchmarks/real_carvana_recipe.py --data ~/.cache/unet_tutorial/carvana --image-size 128x192 \\
        --base-channels 16 --epochs 10 --batch-size 8 --lr 3e-3 --decode cache
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unet_tutorial.checkpoint import load_checkpoint
from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.course.resized_cache import write_resized_carvana
from unet_tutorial.data import CarvanaDataset, carvana_split, rle_decode, rle_encode
from unet_tutorial.loaders import CROP_MARGIN, carvana_loaders
from unet_tutorial.losses import ComboLoss
from unet_tutorial.metrics import dice_score
from unet_tutorial.model import UNet
from unet_tutorial.predict import predict_mask
from unet_tutorial.readers import read_image, read_label
from unet_tutorial.train import fit
from unet_tutorial.utils import set_seed

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "carvana"
CARVANA_HEIGHT = 1280  # every Carvana photo is 1918x1280


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width or height)


def training_folder(root: Path, decode: str, image_size: tuple[int, int], work: Path) -> Path:
    """The folder to train from: ``root`` itself, or a copy resized to CROP_MARGIN x ``image_size`` in ``work``."""
    if decode != "cache":
        return root
    scale = min(1.0, CROP_MARGIN * image_size[0] / CARVANA_HEIGHT)  # 128x192 -> 0.15: 288x192 photos
    return write_resized_carvana(root, work / f"carvana_{scale:g}x", scale=scale)


def full_resolution_dice(model, root: Path, val_ids: list[str], image_size, mean, std, tta: bool) -> float:
    """Mean Dice over ``val_ids`` of the decoded run-length code of each photo's full-size prediction."""
    raw, scores = CarvanaDataset(root, val_ids), []
    for image_path, mask_path in zip(raw.image_paths, raw.mask_paths):
        pred = predict_mask(model, read_image(image_path), image_size=image_size, tta=tta, mean=mean, std=std)
        true_mask = read_label(mask_path)  # (H, W) 0/1
        decoded = rle_decode(rle_encode(pred), true_mask.shape)  # what Kaggle reads back from a submission
        scores.append(dice_score(torch.from_numpy(decoded)[None], torch.from_numpy(true_mask)[None]))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_env = os.environ.get("UNET_TUTORIAL_DATA", "").strip()
    default_data = Path(data_env) / "carvana" if data_env else SHARED
    parser.add_argument("--data", type=Path, default=default_data, help="a Carvana folder (train/, train_masks/)")
    parser.add_argument("--work", type=Path, default=None, help="resized copy and checkpoints (default: temporary)")
    parser.add_argument("--image-size", type=_size, default=(128, 192), help="HEIGHTxWIDTH")
    parser.add_argument("--model", choices=("unet", "densenet"), default="unet")
    parser.add_argument("--weights", choices=("none", "imagenet"), default="none", help="DenseNetUNet's encoder")
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="fraction of cars (notebook 03's GPU value; its CPU one is 0.35)",
    )
    parser.add_argument("--leak-fraction", type=float, default=0.1, help="training images held back, as 03")
    parser.add_argument("--train-images", type=int, default=None, help="use only the first N (whole cars first)")
    parser.add_argument("--val-images", type=int, default=None, help="likewise for validation")
    parser.add_argument("--decode", choices=("draft", "cache", "full"), default="cache")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="carvana_recipe_"))
    load_start, start, cpu_start = os.getloadavg()[0], time.perf_counter(), time.process_time()

    set_seed(args.seed)
    train_ids, val_ids = carvana_split(args.data, val_fraction=args.val_fraction, seed=args.seed)
    leak_ids = set(random.Random(args.seed).sample(train_ids, round(args.leak_fraction * len(train_ids))))
    train_ids = [i for i in train_ids if i not in leak_ids][: args.train_images]
    val_ids = val_ids[: args.val_images]
    folder = training_folder(args.data, args.decode, args.image_size, work)
    prep_s, prep_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

    if args.model == "unet":
        model, mean, std = (
            UNet(in_channels=3, num_classes=1, base_channels=args.base_channels),
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    else:
        from unet_tutorial.densenet_unet import DenseNetUNet, normalization

        weights = None if args.weights == "none" else args.weights
        model = DenseNetUNet(num_classes=1, weights=weights)
        norm = normalization("imagenet")
        mean, std = norm["mean"], norm["std"]
        optimizer = torch.optim.AdamW(model.param_groups(lr_encoder=args.lr / 10, lr_decoder=args.lr))
    train_loader, val_loader = carvana_loaders(
        folder, train_ids, val_ids, image_size=args.image_size, batch_size=args.batch_size, mean=mean, std=std
    )
    if args.decode == "full":  # what a dataset built without decode_size does: every photo in full
        train_loader.dataset.decode_size = val_loader.dataset.decode_size = None
    train_start, train_cpu_start = time.perf_counter(), time.process_time()
    history = fit(
        model, train_loader, val_loader, epochs=args.epochs, loss_fn=ComboLoss({"cross_entropy": 1.0, "dice": 1.0}),
        optimizer=optimizer, device="cpu", num_classes=1, scheduler="onecycle", checkpoint_dir=work / "run",
        progress=False,
    )  # fmt: skip
    best = load_checkpoint(work / "run" / "best.pt", model, map_location="cpu")
    train_s, train_cpu_s = time.perf_counter() - train_start, time.process_time() - train_cpu_start

    score_start, score_cpu_start = time.perf_counter(), time.process_time()
    model.eval()
    full = full_resolution_dice(model, args.data, val_ids, args.image_size, mean, std, tta=False)
    score_s, score_cpu_s = time.perf_counter() - score_start, time.process_time() - score_cpu_start
    full_tta = full_resolution_dice(model, args.data, val_ids, args.image_size, mean, std, tta=True)
    results = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_images": len(train_ids),
        "val_images": len(val_ids),
        "steps_per_epoch": len(train_loader),
        "best_epoch": best["epoch"],
        "val_dice_at_image_size": best["best"],
        "full_resolution_dice": full,
        "full_resolution_dice_tta": full_tta,
        "prep_s": prep_s,
        "train_s": train_s,
        "epoch_s": history["seconds"],
        "score_s": score_s,
        "wall_s": prep_s + train_s + score_s,  # data, training, scoring without TTA: the recipe
        "cpu_s": {"prep": prep_cpu_s, "train": train_cpu_s, "score": score_cpu_s},
        "load_average": [load_start, os.getloadavg()[0]],
        "threads": args.threads,
    }
    print(
        f"\n{args.model} {args.image_size[0]}x{args.image_size[1]} base {args.base_channels}, {args.epochs} epochs of "
        f"{len(train_ids)} images (batch {args.batch_size}, lr {args.lr:g}, decode {args.decode}, {args.threads} "
        f"threads), {len(val_ids)} validation images\n"
        f"  val Dice at {args.image_size[0]}x{args.image_size[1]} (best epoch {best['epoch']}): {best['best']:.4f}\n"
        f"  full-resolution Dice of the decoded submission: {full:.4f} (flip TTA: {full_tta:.4f})\n"
        f"  wall time {results['wall_s']:.0f} s: data {prep_s:.0f} s, training {train_s:.0f} s, full-size scoring "
        f"{score_s:.0f} s; load average {load_start:.1f} at the start, {results['load_average'][1]:.1f} at the end\n"
        f"  CPU time {prep_cpu_s + train_cpu_s + score_cpu_s:.0f} s: data {prep_cpu_s:.0f} s, training "
        f"{train_cpu_s:.0f} s, scoring {score_cpu_s:.0f} s (with --threads 1, about what one idle core takes)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
