"""``python -m unet_tutorial train``: a model trained on Carvana, ADE20K or your own folder, with checkpoints.

The same pieces the notebooks use (datasets, transforms, ``train.fit``); a checkpoint's ``config`` records the
model's name (``models.MODELS``) and constructor kwargs, the image size and normalisation, so ``predict`` can
rebuild the model from the file alone. Under torchrun it runs as one of N processes (DDP). Left out:
hyperparameter search, experiment tracking. Taught in: the README (command line, your own data, multi-GPU).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from unet_tutorial import distributed
from unet_tutorial.checkpoint import CheckpointError, read_checkpoint
from unet_tutorial.cli_args import CliError, check_out
from unet_tutorial.cli_runs import DEFAULTS, check_run_folder, replacing, resumed_settings, run_folder
from unet_tutorial.conventions import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.data import ADE20KDataset, CarvanaDataset, carvana_split, random_subset
from unet_tutorial.folder import FolderDataset, check_labels, split_indices
from unet_tutorial.loaders import CROP_MARGIN, seed_loader, seed_worker
from unet_tutorial.losses import ComboLoss
from unet_tutorial.models import build_model
from unet_tutorial.precision import memory_format_for
from unet_tutorial.train import fit
from unet_tutorial.transforms import eval_transforms, scale_crop_transforms, train_transforms
from unet_tutorial.utils import data_root, pick_device, set_seed

DATASETS = {
    "carvana": {"num_classes": 1, "ignore_index": None, "folder": "carvana"},
    "ade20k": {"num_classes": 150, "ignore_index": IGNORE_INDEX, "folder": "ADEChallengeData2016"},
    "folder": {"num_classes": None, "ignore_index": None, "folder": None},
}  # your own: --images, --masks
AMP = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


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
        # each JPEG decoded at the smallest scale the crops still need (as carvana_loaders does): several times faster
        crop_decode = (math.ceil(CROP_MARGIN * size[0]), math.ceil(CROP_MARGIN * size[1]))
        train_set = CarvanaDataset(root, train_ids, train_tf, decode_size=crop_decode)
        val_set = CarvanaDataset(root, val_ids, val_tf, decode_size=size)
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
        # Every mask's labels now, not after the first epoch when a validation mask is read.
        found = check_labels(train_set, num_classes, args.ignore_index)
        if distributed.is_main_process():
            print(f"checked the labels of {len(train_set)} masks: values {sorted(found)}")
        train_set, val_set = Subset(train_set, train_index), Subset(val_set, val_index)
    if limit:
        train_set = Subset(train_set, random_subset(list(range(len(train_set))), limit, seed))
        val_set = Subset(val_set, random_subset(list(range(len(val_set))), max(limit // 4, 1), seed))
    return train_set, val_set


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
    out = run_folder(args)
    check_out(out)
    check_run_folder(out, args.resume, args.overwrite)
    kwargs = model_kwargs(args, spec["num_classes"])
    resumed = _resumed(args, kwargs) if args.resume else None
    with replacing(out, args.overwrite):  # --overwrite: the old run comes back if this one writes no checkpoint
        history = _train(args, spec, root, out, kwargs, resumed)
    written = [str(out / name) for name in ("best.pt", "last.pt") if (out / name).is_file()]
    if distributed.is_main_process():
        print(f"checkpoints: {' and '.join(written)}" if written else "no checkpoint was written")
    distributed.cleanup_distributed()
    return history


def _resumed(args: argparse.Namespace, kwargs: dict) -> dict:
    """The checkpoint ``--resume`` names, once it is known to hold a run of this model."""
    resumed = read_checkpoint(args.resume)
    if "epoch" not in resumed or "history" not in resumed:
        raise CheckpointError(
            f"--resume {args.resume} holds only model weights (no epoch, optimizer or "
            "history to continue from); pass a last.pt written by train"
        )
    saved = resumed.get("config") or {}
    if saved.get("model") not in (None, args.model) or saved.get("model_kwargs") not in (None, kwargs):
        raise CliError(
            f"--resume {args.resume} was trained as {saved.get('model')} {saved.get('model_kwargs')}, "
            f"not {args.model} {kwargs}; pass the same --model/--base-channels/--depth"
        )
    return resumed


def _train(args: argparse.Namespace, spec: dict, root: Path | None, out: Path, kwargs: dict, resumed) -> dict:
    device = (
        distributed.setup_distributed(args.device) if distributed.launched_by_torchrun() else pick_device(args.device)
    )
    set_seed(args.seed + distributed.rank(), deterministic=args.deterministic)
    model = build_model(args.model, **kwargs)
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
    if resumed is not None:  # its --lr and --scheduler, and an --epochs its schedule can reach
        resumed_settings(args, resumed, math.ceil(len(train_loader) / args.accumulate))
    args.lr = args.lr if args.lr is not None else DEFAULTS["lr"]
    args.scheduler = args.scheduler or DEFAULTS["scheduler"]

    # channels_last before DDP wraps the model: DDP lays out its gradient buckets like the parameters.
    model = model.to(device, memory_format=memory_format_for(device))
    if distributed.is_distributed():
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # Cross-entropy + Dice, unweighted, for every dataset (as notebooks 03 and 05 train).
    loss_fn = ComboLoss({"cross_entropy": 1.0, "dice": 1.0}, ignore_index=spec["ignore_index"])
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
        "lr": args.lr,  # a resume keeps these two (cli_runs.resumed_settings)
        "scheduler": args.scheduler,
        "epochs": args.epochs,
    }
    if args.dataset == "ade20k":
        config["short_side"] = min(size)  # predict resizes each image to this short side, keeping its aspect
    if distributed.is_main_process():
        where = root or f"{args.images} + {args.masks}"
        print(
            f"train {args.model} {kwargs} on {args.dataset} ({len(train_set)} train / {len(val_set)} val images "
            f"from {where}) at {size[0]}x{size[1]}, device {device} x{distributed.world_size()}, out {out}"
        )
    return fit(
        model,
        train_loader,
        val_loader,
        epochs=args.epochs,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        num_classes=spec["num_classes"],
        ignore_index=spec["ignore_index"],
        scheduler=None if args.scheduler == "none" else args.scheduler,
        patience=args.patience,
        checkpoint_dir=out,
        resume=args.resume,
        amp_dtype=AMP[args.amp],
        grad_clip=args.grad_clip,
        accumulate=args.accumulate,
        config=config,
        progress=not args.no_progress,
    )
