"""The command line: ``python -m unet_tutorial train | predict | data`` (also installed as ``unet-tutorial``).

``get_parser()`` builds the arguments of the three commands and ``main()`` runs one, turning expected failures
(the package's own error types and OSError: a wrong folder, a bad checkpoint, a diverged run) into a one-line
error without a traceback; a bug keeps its traceback. The ``*_command`` functions do the work with the same pieces
the notebooks use (datasets, transforms, ``train.fit``, ``predict``). A checkpoint's ``config`` records the model's
name and constructor kwargs, the image size and normalisation, so ``predict`` can rebuild the model from the file
alone. What it leaves out: hyperparameter search, experiment tracking.
Taught in: the README (command line, your own data and multi-GPU sections).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import os
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from unet_tutorial import distributed
from unet_tutorial.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from unet_tutorial.conventions import IGNORE_INDEX, IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.course.download import fetch_ade20k, fetch_carvana
from unet_tutorial.course.safe_download import DownloadError
from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
from unet_tutorial.data import (
    ADE20KDataset,
    CarvanaDataset,
    DataError,
    ade20k_palette,
    carvana_split,
    random_subset,
    read_image,
    rle_encode,
)
from unet_tutorial.densenet_unet import DenseNetUNet, PretrainedWeightsUnavailable
from unet_tutorial.folder import FolderDataset, split_indices
from unet_tutorial.loaders import seed_loader, seed_worker
from unet_tutorial.losses import ComboLoss
from unet_tutorial.model import UNet
from unet_tutorial.predict import predict_mask, sliding_window_mask
from unet_tutorial.train import NonFiniteLossError, fit, memory_format_for
from unet_tutorial.transforms import eval_transforms, scale_crop_transforms, train_transforms
from unet_tutorial.utils import data_root, pick_device, set_seed
from unet_tutorial.viz import overlay, palette

MODELS = ("unet", "densenet-unet")
DATASETS = {
    "carvana": {"num_classes": 1, "ignore_index": None, "folder": "carvana"},
    "ade20k": {"num_classes": 150, "ignore_index": IGNORE_INDEX, "folder": "ADEChallengeData2016"},
    "folder": {"num_classes": None, "ignore_index": None, "folder": None},
}  # your own: --images, --masks
AMP = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "off": None}
USAGE = """The command line: python -m unet_tutorial train | predict | data (also installed as unet-tutorial).

    python -m unet_tutorial data sample carvana --root data/sample
    python -m unet_tutorial train --dataset carvana --data-dir data/sample/carvana --base-channels 16 \\
        --image-size 128 --epochs 5 --out runs/carvana
    python -m unet_tutorial train --dataset folder --images my/images --masks my/masks --num-classes 3 \\
        --base-channels 16 --image-size 256 --out runs/mine          # your own data (1 class: binary masks)
    python -m unet_tutorial predict --checkpoint runs/carvana/best.pt photos/ --out predictions
    torchrun --nproc_per_node=2 -m unet_tutorial train ...      # several GPUs (or CPU processes): DDP
"""


class CliError(Exception):
    """An expected failure: ``main`` prints its message on one line, without a traceback."""


def model_class(name: str) -> type[nn.Module]:
    """The model class called ``name`` ("unet" or "densenet-unet")."""
    if name == "unet":
        return UNet
    if name == "densenet-unet":
        return DenseNetUNet
    raise CliError(f"unknown model {name!r}; use one of {MODELS}")


def build_model(name: str, kwargs: dict) -> nn.Module:
    """The model called ``name`` ("unet" or "densenet-unet") built with constructor ``kwargs``."""
    return model_class(name)(**kwargs)


def model_kwargs(args: argparse.Namespace, num_classes: int) -> dict:
    """Constructor kwargs for ``build_model`` from the train arguments (plain values, stored in checkpoints)."""
    if args.model == "unet":
        return {"num_classes": num_classes, "base_channels": args.base_channels, "depth": args.depth}
    return {"num_classes": num_classes, "weights": "imagenet" if args.pretrained else None}


def datasets(args: argparse.Namespace, root: Path | None, num_classes: int, mean, std):
    """(train, val) datasets: the training pipeline of each recipe and deterministic evaluation transforms.

    Carvana and folders: ``train_transforms`` at ``--image-size``, validation resized to it. ADE20K (notebook
    05's recipe): ``scale_crop_transforms`` (short side = the crop's shorter side, zoom 0.5-2.0, crops of
    ``--image-size``), validation at that short side with the masks at their own size (batch size 1).
    ``--limit`` keeps a seeded random subset of the training images (and a quarter as many for validation).
    """

    size, limit, seed = args.image_size, args.limit, args.seed
    if args.dataset == "ade20k":
        short = min(size)
        train_tf = scale_crop_transforms(size, short, mean=mean, std=std)
        val_tf = eval_transforms(None, mean, std, short_side=short, keep_mask=True)
        val_limit = max(limit // 4, 1) if limit else None
        return (
            ADE20KDataset(root, "training", train_tf, limit=limit, seed=seed),
            ADE20KDataset(root, "validation", val_tf, limit=val_limit, seed=seed),
        )
    mask_fill = 0 if num_classes == 1 else 255  # binary masks: invented pixels are background
    train_tf = train_transforms(size, mean=mean, std=std, mask_fill=mask_fill)
    val_tf = eval_transforms(size, mean=mean, std=std)
    if args.dataset == "carvana":
        train_ids, val_ids = carvana_split(root, val_fraction=args.val_fraction, seed=seed)
        train_set, val_set = CarvanaDataset(root, train_ids, train_tf), CarvanaDataset(root, val_ids, val_tf)
    else:

        def folder(transform):
            return FolderDataset(
                args.images,
                args.masks,
                num_classes,
                mask_suffix=args.mask_suffix,
                ignore_index=args.ignore_index,
                transform=transform,
            )

        train_set, val_set = folder(train_tf), folder(val_tf)
        train_index, val_index = split_indices(len(train_set), args.val_fraction, seed)
        train_set, val_set = Subset(train_set, train_index), Subset(val_set, val_index)
    if limit:
        train_set = Subset(train_set, random_subset(list(range(len(train_set))), limit, seed))
        val_set = Subset(val_set, random_subset(list(range(len(val_set))), max(limit // 4, 1), seed))
    return train_set, val_set


def parse_size(text: str) -> tuple[int, int]:
    """ "256" -> (256, 256); "192x256" -> (height 192, width 256)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use 256 or HEIGHTxWIDTH like 192x256") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; sides must be at least 1 pixel, e.g. 256")
    return height, width


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def unit_interval(text: str) -> float:
    """An argparse type: a probability between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1, e.g. 0.5")
    return value


def available_device(text: str) -> str:
    """An argparse type: a device name that exists on this machine ("cpu", "cuda", "cuda:1", "mps")."""

    try:
        pick_device(text)
    except RuntimeError as error:  # torch's own "Expected one of cpu, cuda, ..." for a name it does not know
        raise argparse.ArgumentTypeError(str(error).splitlines()[0]) from None
    return text


def check_out(out: Path, flag: str = "--out") -> None:
    """Create the output folder and prove it writable now, not after the first epoch."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as error:
        raise CliError(
            f"{flag} {out} cannot be written ({error.strerror or error}); choose a folder you can write to"
        ) from None


def check_run_folder(out: Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to train into a folder that holds another run's checkpoints unless --resume or --overwrite."""
    existing = [out / name for name in ("best.pt", "last.pt") if (out / name).exists()]
    if not existing or resume:
        return
    if not overwrite:
        raise CliError(
            f"--out {out} already holds {' and '.join(p.name for p in existing)} from an earlier run; "
            f"pass --resume {out / 'last.pt'} to continue it, --overwrite to replace it, or another "
            "--out"
        )
    if distributed.is_main_process():
        for path in existing:
            path.unlink()


def train_command(args: argparse.Namespace) -> dict:
    """``python -m unet_tutorial train``; also runs as one of N processes under torchrun (DDP)."""

    spec = dict(DATASETS[args.dataset])
    if args.dataset == "folder":
        root = None
        if not (args.images and args.masks and args.num_classes):
            raise CliError("--dataset folder needs --images DIR --masks DIR --num-classes N (1 for binary masks)")
        spec.update(num_classes=args.num_classes, ignore_index=None if args.num_classes == 1 else 255)
    else:
        root = Path(args.data_dir) if args.data_dir else data_root() / spec["folder"]
        if not root.is_dir():
            raise CliError(
                f"--data-dir {root} is not a directory; point it at the {args.dataset} data, or make a "
                f"sample with: python -m unet_tutorial data sample {args.dataset} --root DIR"
            )
    out = Path(args.out)
    check_out(out)
    check_run_folder(out, args.resume, args.overwrite)
    device = (
        distributed.setup_distributed(args.device) if distributed.launched_by_torchrun() else pick_device(args.device)
    )
    set_seed(args.seed + distributed.rank(), deterministic=args.deterministic)
    kwargs = model_kwargs(args, spec["num_classes"])
    model = build_model(args.model, kwargs)
    norm = getattr(model, "normalization", None) or {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    size = args.image_size
    train_set, val_set = datasets(args, root, spec["num_classes"], norm["mean"], norm["std"])
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed) if distributed.is_distributed() else None
    loader_args = {"num_workers": args.workers, "pin_memory": device.type == "cuda", "worker_init_fn": seed_worker}
    # New training workers every epoch (not persistent): fit re-seeds the loader per epoch, so a resume repeats.
    train_loader = seed_loader(
        DataLoader(
            train_set,
            batch_size=args.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=len(train_set) > args.batch_size,
            generator=torch.Generator(),
            **loader_args,
        )
    )
    # Every rank evaluates the whole validation set: the same numbers everywhere, so early stopping agrees.
    val_batch = 1 if args.dataset == "ade20k" else args.batch_size  # ADE20K: each image at its own size
    val_loader = seed_loader(DataLoader(val_set, batch_size=val_batch, generator=torch.Generator(), **loader_args))

    # channels_last before DDP wraps the model: DDP lays out its gradient buckets like the parameters.
    model = model.to(device, memory_format=memory_format_for(device))
    if distributed.is_distributed():
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # Cross-entropy + Dice, unweighted, for every dataset (as notebooks 03 and 05 train).
    loss_fn = ComboLoss({"bce": 1.0, "dice": 1.0}, ignore_index=spec["ignore_index"])
    bare = model.module if distributed.is_distributed() else model
    # A pretrained encoder learns at a tenth of the decoder's rate (notebooks 04 and 05).
    groups = bare.param_groups(args.lr / 10, args.lr) if getattr(bare, "pretrained", False) else model.parameters()
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=1e-4)
    config = {
        "model": args.model,
        "model_kwargs": kwargs,
        "dataset": args.dataset,
        "image_size": list(size),
        "mean": list(norm["mean"]),
        "std": list(norm["std"]),
        "num_classes": spec["num_classes"],
        "ignore_index": spec["ignore_index"],
        "pretrained": bool(getattr(args, "pretrained", False)),
    }
    if args.dataset == "ade20k":
        config["short_side"] = min(size)  # predict resizes each image to this short side, keeping its aspect
    if args.resume:
        resumed = read_checkpoint(args.resume)
        if "epoch" not in resumed or "history" not in resumed:
            raise CheckpointError(
                f"--resume {args.resume} holds only model weights (no epoch, optimizer or "
                "history to continue from); pass a last.pt written by train"
            )
        if resumed["epoch"] >= args.epochs:
            raise CliError(
                f"--resume {args.resume} has already trained {resumed['epoch']} epochs, and --epochs is "
                f"{args.epochs}; pass --epochs larger than {resumed['epoch']} to train further"
            )
        saved = resumed.get("config") or {}
        if saved.get("model") not in (None, args.model) or saved.get("model_kwargs") not in (None, kwargs):
            raise CliError(
                f"--resume {args.resume} was trained as {saved.get('model')} {saved.get('model_kwargs')}, "
                f"not {args.model} {kwargs}; pass the same --model/--base-channels/--depth"
            )
    if distributed.is_main_process():
        where = root or f"{args.images} + {args.masks}"
        print(
            f"train {args.model} {kwargs} on {args.dataset} ({len(train_set)} train / {len(val_set)} val images "
            f"from {where}) at {size[0]}x{size[1]}, device {device} x{distributed.world_size()}, out {args.out}"
        )
    scheduler = None if args.scheduler == "none" else args.scheduler
    history = fit(
        model,
        train_loader,
        val_loader,
        epochs=args.epochs,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        num_classes=spec["num_classes"],
        ignore_index=spec["ignore_index"],
        scheduler=scheduler,
        patience=args.patience,
        checkpoint_dir=args.out,
        resume=args.resume,
        amp_dtype=AMP[args.amp],
        grad_clip=args.grad_clip,
        accumulate=args.accumulate,
        config=config,
        progress=not args.no_progress,
    )
    written = [str(out / name) for name in ("best.pt", "last.pt") if (out / name).is_file()]
    if distributed.is_main_process():
        print(f"checkpoints: {' and '.join(written)}" if written else "no checkpoint was written")
    distributed.cleanup_distributed()
    return history


def load_for_predict(path: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint's config names and load its weights; returns (model, config)."""
    config = read_checkpoint(path).get("config") or {}
    if "model" not in config or "model_kwargs" not in config:
        raise CheckpointError(
            f"{path} has no model config (it was not written by 'python -m unet_tutorial "
            "train'); load it in Python with load_checkpoint(path, model) instead"
        )
    kwargs = dict(config["model_kwargs"])
    if config["model"] == "densenet-unet":
        kwargs["weights"] = None  # the checkpoint holds the trained encoder; no need to fetch ImageNet weights
    if config["model"] not in MODELS:
        raise CheckpointError(
            f"{path} holds a model called {config['model']!r}, which this version does not "
            f"know (it knows {', '.join(MODELS)}); use the unet_tutorial version that wrote it"
        )
    known = inspect.signature(model_class(config["model"])).parameters
    if unknown := sorted(set(kwargs) - set(known)):
        raise CheckpointError(
            f"{path} holds a {config['model']} built with {config['model_kwargs']}, but this "
            f"version's {model_class(config['model']).__name__} takes no {', '.join(unknown)}; "
            "use the unet_tutorial version that wrote it"
        )
    model = build_model(config["model"], kwargs)
    load_checkpoint(path, model)
    return model.to(device).eval(), config


def network_size(config: dict, image_hw: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) an image is resized to for the network: the training size, or, for a recipe that
    trained at a short side (ADE20K), the image scaled so its shorter side is that long."""
    if config.get("short_side"):
        factor = config["short_side"] / min(image_hw)
        return max(1, round(image_hw[0] * factor)), max(1, round(image_hw[1] * factor))
    return tuple(config.get("image_size") or image_hw)


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
    model, config = load_for_predict(args.checkpoint, device)
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


def data_command(args: argparse.Namespace) -> None:
    """``python -m unet_tutorial data sample|download``."""

    which = ["carvana", "ade20k"] if args.dataset == "both" else [args.dataset]
    if args.action == "sample":
        base = Path(args.root) if args.root else data_root(writable=True) / "sample"
        for name in which:
            folder = base / DATASETS[name]["folder"]
            if name == "carvana":
                make_carvana_like(folder, args.cars, size=(args.height or 320, args.width or 480), seed=args.seed)
            else:
                make_ade20k_like(
                    folder,
                    args.scenes,
                    max(args.scenes // 5, 1),
                    size=(args.height or 192, args.width or 256),
                    seed=args.seed,
                )
            print(f"{name}-like sample data: {folder} (train with --dataset {name} --data-dir {folder})")
        return

    base = Path(args.root) if args.root else data_root(writable=True)
    for name in which:
        try:
            folder = fetch_carvana(base / "carvana") if name == "carvana" else fetch_ade20k(base)
        except ImportError as error:  # the Kaggle client is an optional extra
            raise CliError(str(error)) from None
        except SystemExit:  # some Kaggle clients print a line and call exit(1) when no token is found
            raise CliError(
                "the Kaggle client found no API token: create one at https://www.kaggle.com/settings "
                "(API > Create New Token) and put kaggle.json in ~/.kaggle/, or set KAGGLE_USERNAME "
                "and KAGGLE_KEY; then accept the competition rules on its Kaggle page"
            ) from None
        print(f"{name}: {folder}")


def get_parser() -> argparse.ArgumentParser:
    """The argument parser of all three commands."""
    main = argparse.ArgumentParser(
        prog="python -m unet_tutorial", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main.add_subparsers(dest="command", required=True)
    d = argparse.ArgumentDefaultsHelpFormatter

    train = commands.add_parser("train", help="train a model; writes best.pt and last.pt", formatter_class=d)
    train.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    train.add_argument("--data-dir", help="dataset folder (default: <data root>/carvana or .../ADEChallengeData2016)")
    train.add_argument("--images", help="--dataset folder: the folder of images")
    train.add_argument("--masks", help="--dataset folder: the folder of masks, one per image, same file names")
    train.add_argument("--num-classes", type=int, help="--dataset folder: 1 for binary masks, else the classes")
    train.add_argument("--mask-suffix", default="", help="--dataset folder: mask name = image stem + this")
    train.add_argument(
        "--ignore-index", type=int, default=None, help="--dataset folder: a mask value that is not a class (not scored)"
    )
    train.add_argument("--model", default="unet", choices=MODELS)
    train.add_argument("--base-channels", type=int, default=64, help="UNet width; 8-16 for CPU runs")
    train.add_argument("--depth", type=int, default=4, help="UNet down-sampling steps")
    train.add_argument("--pretrained", action="store_true", help="densenet-unet: ImageNet encoder weights")
    train.add_argument("--epochs", type=positive_int, default=10)
    train.add_argument("--batch-size", type=positive_int, default=8, help="per process")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--image-size", type=parse_size, default=(256, 256), help="256 or HEIGHTxWIDTH")
    train.add_argument(
        "--amp",
        choices=sorted(AMP),
        default="auto",
        nargs="?",
        const="auto",
        help="autocast: auto = bf16 (or fp16 + GradScaler) on CUDA, off on the CPU",
    )
    train.add_argument("--scheduler", choices=["plateau", "onecycle", "cosine", "none"], default="plateau")
    train.add_argument("--patience", type=positive_int, default=None, help="early stopping after this many flat epochs")
    train.add_argument("--grad-clip", type=float, default=None)
    train.add_argument("--accumulate", type=positive_int, default=1, help="batches per optimizer step")
    train.add_argument("--val-fraction", type=float, default=0.1, help="Carvana: cars held out; folder: images")
    train.add_argument(
        "--limit", type=positive_int, default=None, help="use only this many training images (quick runs)"
    )
    train.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    train.add_argument(
        "--device", type=available_device, default=None, help="cpu, cuda, mps (default: the best available)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--deterministic", action="store_true", help="deterministic kernels (for exact resumes)")
    train.add_argument("--resume", metavar="CKPT", help="continue from a last.pt")
    train.add_argument("--out", default="runs/unet", help="folder for best.pt and last.pt")
    train.add_argument("--overwrite", action="store_true", help="replace the checkpoints of a run already in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bars, only one line per epoch")

    predict = commands.add_parser("predict", help="masks and overlays for images", formatter_class=d)
    predict.add_argument("--checkpoint", required=True, metavar="CKPT", help="best.pt or last.pt from train")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    predict.add_argument("--out", default="predictions")
    predict.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    predict.add_argument(
        "--tile", type=positive_int, default=None, help="sliding-window tiles of this side, at full size"
    )
    predict.add_argument("--threshold", type=unit_interval, default=0.5, help="binary models")
    predict.add_argument("--device", type=available_device, default=None)
    predict.add_argument("--no-progress", action="store_true")

    data = commands.add_parser("data", help="make sample data, or download the real datasets", formatter_class=d)
    data.add_argument("action", choices=["sample", "download"])
    data.add_argument("dataset", choices=["ade20k", "carvana", "both"])
    data.add_argument("--root", help="parent folder (default: <data root>/sample for samples, <data root>)")
    data.add_argument("--cars", type=positive_int, default=16, help="sample: Carvana-like cars, 16 views each")
    data.add_argument("--scenes", type=positive_int, default=300, help="sample: ADE20K-like training scenes")
    data.add_argument("--height", type=positive_int, default=None, help="sample: height (Carvana 320, ADE20K 192)")
    data.add_argument("--width", type=positive_int, default=None, help="sample: width (Carvana 480, ADE20K 256)")
    data.add_argument("--seed", type=int, default=0)
    return main


def one_line(error: BaseException) -> str:
    """The message of an expected failure on one line; a DataLoader worker's wrapped error becomes its original."""
    text = str(error).strip()
    if "Original Traceback" in text:  # "Caught DataError in DataLoader worker process 0. Original Traceback ..."
        text = text.splitlines()[-1].partition(": ")[2] or text.splitlines()[-1]
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text += f": {error.filename}"
    return " ".join(text.split())


# The package's own error types and OSError: a sentence for the user. Anything else is a bug: it keeps its traceback.
EXPECTED_ERRORS = (
    CliError,
    CheckpointError,
    DataError,
    DownloadError,
    NonFiniteLossError,
    PretrainedWeightsUnavailable,
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print ``error: ...`` and return 2 (set UNET_TUTORIAL_DEBUG=1 to raise).

    Expected: the package's own error types (bad data, checkpoints, downloads, a diverged run, pretrained weights
    out of reach) and OSError (a file or folder: missing, not writable, disk full). Anything else is a bug and
    keeps its traceback.
    """
    args = get_parser().parse_args(argv)
    try:
        {"train": train_command, "predict": predict_command, "data": data_command}[args.command](args)
    except EXPECTED_ERRORS as error:
        if os.environ.get("UNET_TUTORIAL_DEBUG"):
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume training with --resume <out>/last.pt", file=sys.stderr)
        return 130
    return 0
