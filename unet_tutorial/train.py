"""A visible training loop, no framework: train_one_epoch, evaluate, fit, and safe checkpoints.

``train_one_epoch`` and ``evaluate`` are plain functions that return dicts of numbers; ``fit`` is a short loop
over the two with a learning-rate scheduler, early stopping and best/last checkpoints. Checkpoints are written
through ``checkpoint.py`` (atomic writes, ``weights_only=True`` loads). What it leaves out: callbacks, loggers,
torch.compile. Multi-GPU launch lives in ``distributed.py`` and the command line.
Taught in: 03 (Carvana binary); used again in 04 and 05.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unet_tutorial.checkpoint import (
    load_checkpoint,
    non_finite,
    remove_stale_temporaries,
    save_checkpoint,
    storable,
    unwrap,
)
from unet_tutorial.distributed import is_main_process
from unet_tutorial.epoch_log import epoch_line, stored_epoch_lines
from unet_tutorial.loaders import seed_loader
from unet_tutorial.metrics import SegmentationMetrics
from unet_tutorial.precision import amp_choice, cudnn_benchmark, cudnn_benchmark_for, memory_format_for
from unet_tutorial.schedules import resolve_scheduler


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


def train_one_epoch(
    model: nn.Module,
    loader,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    *,
    amp_dtype: torch.dtype | None = None,
    scaler=None,
    grad_clip: float | None = None,
    accumulate: int = 1,
    scheduler=None,
    channels_last: bool | None = None,
    epoch: int = 1,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``: forward, loss, backward, (clip), step. Taught in 03.

    Args:
        amp_dtype: autocast dtype (torch.bfloat16 or torch.float16), None for fp32. fp16 needs a ``scaler``
            (``torch.amp.GradScaler("cuda")``) so that small gradients do not underflow.
        grad_clip: clip the global gradient norm to this value.
        accumulate: step on the mean gradient of this many batches (a bigger batch); a short last group too.
        scheduler: stepped after every optimizer step (one-cycle); epoch schedulers are stepped by ``fit``.
        channels_last: NHWC memory layout for the images and the model's weights (both, so that no convolution
            converts back); default only on CUDA, where it speeds up convolutions.
    Returns:
        {"loss", "lr", "images", "seconds", "images_per_s"}; "loss": the batches' losses averaged with their
        sizes as weights (per image for losses that average over images; a batch-wide Dice is not).
    Raises:
        NonFiniteLossError: the loss became NaN or infinite; nothing of that step is applied.
    """
    device = torch.device(device)
    if channels_last is None:
        memory_format = memory_format_for(device)
    else:
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format).train()  # in place: the optimizer keeps the same parameters
    optimizer.zero_grad(set_to_none=True)
    total_loss, seen, start = 0.0, 0, time.perf_counter()
    num_batches = len(loader)
    # tqdm.auto calls iter() on what it wraps and again when looping: hand it one iterator, so that a DataLoader
    # starts its workers (and draws its shuffle seed) once per epoch, not twice.
    bar = tqdm(
        iter(loader),
        total=num_batches,
        desc=f"epoch {epoch} train",
        leave=False,
        disable=not (progress and is_main_process()),
    )
    for index, (images, masks) in enumerate(bar):
        images = images.to(device, non_blocking=True, memory_format=memory_format)  # (B, 3, H, W)
        masks = masks.to(device, non_blocking=True)  # (B, 1, H, W) float or (B, H, W) long
        stepping = (index + 1) % accumulate == 0 or index + 1 == num_batches
        # Under DDP, only the micro-batch that steps needs to all-reduce its gradients.
        sync = contextlib.nullcontext() if stepping or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images)  # (B, C, H, W)
                loss = loss_fn(logits, masks)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"the loss became {loss.item()} at epoch {epoch}, step {index + 1} of "
                    f"{num_batches}; try a lower learning rate, grad_clip, or fp32"
                )
            # Divided by its group's size (the epoch's last may be short), the summed gradient is the group's mean.
            group_size = min(accumulate, num_batches - index + index % accumulate)
            scaled = loss / group_size
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        if stepping:
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
        total_loss += loss.item() * images.shape[0]
        seen += images.shape[0]
        bar.set_postfix(loss=f"{total_loss / seen:.4f}")
    seconds = time.perf_counter() - start
    return {
        "loss": total_loss / max(seen, 1),
        "lr": optimizer.param_groups[0]["lr"],
        "images": seen,
        "seconds": seconds,
        "images_per_s": seen / seconds if seconds > 0 else 0.0,
    }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader,
    device: torch.device | str,
    *,
    num_classes: int,
    loss_fn: Callable | None = None,
    ignore_index: int | None = None,
    amp_dtype: torch.dtype | None = None,
    threshold: float = 0.5,
    metrics: SegmentationMetrics | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Loss and segmentation metrics over ``loader``, without gradients. Taught in 03.

    Masks larger than the logits (images resized for the network, masks kept at their own size, as benchmarks
    score: ``eval_transforms(..., keep_mask=True)``) are counted at the mask's resolution: the logits are
    upsampled bilinearly to the mask's size first, and the loss is computed there too.

    Args:
        metrics: the accumulator to count into (default: a new ``SegmentationMetrics(num_classes, ignore_index,
            threshold)``); pass your own to read more than the summary afterwards, e.g. its
            ``confusion_matrix()`` or ``iou_per_class()`` (notebook 05).
    Returns:
        {"loss" (when ``loss_fn`` is given), then ``SegmentationMetrics.compute()``: "dice_per_image", "iou",
        "pixel_accuracy" for num_classes=1; "miou", "dice", "pixel_accuracy" for more classes}.
    """
    device = torch.device(device)
    memory_format = memory_format_for(device)
    model.eval()
    if metrics is None:
        metrics = SegmentationMetrics(num_classes, ignore_index=ignore_index, threshold=threshold)
    elif metrics.num_classes != num_classes:
        raise ValueError(f"evaluate: metrics counts {metrics.num_classes} classes, num_classes is {num_classes}")
    total_loss, seen = 0.0, 0
    for images, masks in tqdm(
        iter(loader), total=len(loader), desc="evaluate", leave=False, disable=not (progress and is_main_process())
    ):
        images = images.to(device, non_blocking=True, memory_format=memory_format)  # (B, 3, H, W)
        masks = masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)  # (B, C, H, W)
        logits = logits.float()
        height, width = masks.shape[-2:]
        if (height, width) != logits.shape[-2:] and height >= logits.shape[-2] and width >= logits.shape[-1]:
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)  # (B, C, H, W)
        if loss_fn is not None:
            total_loss += loss_fn(logits, masks).item() * images.shape[0]
        seen += images.shape[0]
        metrics.update(logits, masks)
    results = {"loss": total_loss / max(seen, 1)} if loss_fn is not None else {}
    results.update({name: float(value) for name, value in metrics.compute().items()})
    return results


def fit(
    model: nn.Module,
    train_loader,
    val_loader,
    *,
    epochs: int,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    num_classes: int,
    ignore_index: int | None = None,
    scheduler="plateau",
    step_per_batch: bool | None = None,
    monitor: str | None = None,
    patience: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: str | Path | None = None,
    amp_dtype: torch.dtype | str | None = "auto",
    grad_clip: float | None = None,
    accumulate: int = 1,
    channels_last: bool | None = None,
    config: dict | None = None,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, list]:
    """Train for ``epochs``, evaluating after each; keep best and last checkpoints. Taught in 03.

    Args:
        scheduler: "plateau", "onecycle", "cosine", None, or a scheduler built on ``optimizer``.
        step_per_batch: when the scheduler steps: after every optimizer step (True) or once per epoch (False).
            A name knows its own ("onecycle" per batch, the others per epoch); a scheduler object needs it said,
            e.g. ``LinearLR`` as a warm-up over the first N optimizer steps is ``step_per_batch=True``.
            ``ReduceLROnPlateau`` always steps per epoch, on the monitored metric.
        monitor: the ``evaluate`` key that picks the best epoch (default "dice_per_image" for one class, else "miou");
            "loss" is minimised, every other metric maximised.
        patience: stop after this many epochs without improvement (None: never stop early).
        checkpoint_dir: where ``last.pt`` (every epoch) and ``best.pt`` go; only rank 0 writes.
        resume: a ``last.pt`` to continue from: weights, optimizer, scheduler, scaler, RNG and history. Each
            epoch starts ``seed_loader(train_loader)`` from torch's RNG, so the resumed epochs shuffle and augment
            as the uninterrupted run did (unless the loader keeps its workers: ``persistent_workers=True``).
        amp_dtype: "auto" picks ``default_amp_dtype(device)``; fp16 adds a GradScaler. The choice and its reason
            are logged once; on CUDA so are channels_last (``train_one_epoch``) and ``cudnn.benchmark``, which
            is on for the training epochs unless deterministic kernels were asked for.
        channels_last: the NHWC memory layout (``train_one_epoch``); None: on CUDA only. Set it to measure it on
            a CPU, where it can go either way (notebook 03, appendix B).
        config: plain values stored in every checkpoint (e.g. the model name and its constructor kwargs).
    Returns:
        history, a dict of lists: "epoch", "train_loss", "val_loss", "val_<metric>" for each metric, "lr" (the
        first parameter group's), "seconds" — what ``viz.plot_history`` draws; with several parameter groups
        also "lr_<name>" for each (a group's "name" key, else its index), logged the same way; with one class also
        "val_dice_of_each_image", each epoch's list of every validation image's Dice, in the loader's order.
    Raises:
        NonFiniteLossError: training diverged; the message names the step and the last good checkpoint.
    """
    device, config = torch.device(device), storable(config or {}, "config")  # before, not after, an epoch
    monitor = monitor or ("dice_per_image" if num_classes == 1 else "miou")
    mode = "min" if monitor == "loss" else "max"
    amp_dtype, scaler, benchmark = _speed_choices(device, amp_dtype, train_loader, log)
    steps_per_epoch = math.ceil(len(train_loader) / accumulate)
    scheduler, per_step = resolve_scheduler(scheduler, step_per_batch, optimizer, epochs, steps_per_epoch, mode)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": [], "lr": [], "seconds": []}
    best, bad_epochs, start_epoch = None, 0, 1
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler=scheduler, scaler=scaler, restore_rng=True)
        history, best, bad_epochs = state["history"], state["best"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        for line in stored_epoch_lines(history, monitor, epochs):  # the log of the epochs it holds, as they ran
            log(line)
        if start_epoch > epochs:
            finished = f"{state['epoch']} epoch{'s' if state['epoch'] != 1 else ''}"
            log(f"{resume} has finished its {finished}: its weights are loaded, nothing left to train")
        else:
            log(f"resumed from {resume} after epoch {state['epoch']}")
        if getattr(train_loader, "persistent_workers", False):
            log(
                "note: train_loader keeps its workers between epochs (persistent_workers=True), so their "
                "augmentations will not repeat those of the uninterrupted run"
            )
    last_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if checkpoint_dir is not None and is_main_process():
        remove_stale_temporaries(checkpoint_dir)  # left by a run killed mid-write
    good = Path(resume) if resume is not None else None  # the newest checkpoint known to hold finite weights

    def kept() -> str:
        return f"; the last good checkpoint is {good}" if good is not None else "; no checkpoint was written yet"

    for epoch in range(start_epoch, epochs + 1):
        if hasattr(train_loader.sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            train_loader.sampler.set_epoch(epoch)
        # This epoch's shuffle and augmentations follow from torch's random state, which every checkpoint saves.
        seed_loader(train_loader)
        lrs = {_group_label(group, i): group["lr"] for i, group in enumerate(optimizer.param_groups)}
        try:
            with cudnn_benchmark(benchmark):
                train = train_one_epoch(
                    model,
                    train_loader,
                    loss_fn,
                    optimizer,
                    device,
                    amp_dtype=amp_dtype,
                    scaler=scaler,
                    grad_clip=grad_clip,
                    accumulate=accumulate,
                    scheduler=scheduler if per_step else None,
                    channels_last=channels_last,
                    epoch=epoch,
                    progress=progress,
                )
        except NonFiniteLossError as error:
            raise NonFiniteLossError(f"training stopped: {error}{kept()}") from None
        counts = SegmentationMetrics(num_classes, ignore_index=ignore_index)
        val = evaluate(model, val_loader, device, num_classes=num_classes, loss_fn=loss_fn, metrics=counts,
                       ignore_index=ignore_index, amp_dtype=amp_dtype, progress=progress)  # fmt: skip
        # A finite training loss can still leave NaN weights or inf BatchNorm statistics: never save those.
        broken = ([] if math.isfinite(val.get("loss", 0.0)) else ["the validation loss"]) + non_finite(
            unwrap(model).state_dict()
        )
        if broken:
            raise NonFiniteLossError(
                f"training stopped: after epoch {epoch}, {', '.join(broken[:3])} "
                f"{'is' if len(broken) == 1 else 'are'} NaN or infinite and nothing was "
                f"saved{kept()}; try a smaller learning rate or grad_clip"
            )
        if monitor not in val:
            raise ValueError(f"monitor={monitor!r} is not among the evaluation results {sorted(val)}")
        score = val[monitor]
        if plateau:
            scheduler.step(score)
        elif scheduler is not None and not per_step:
            scheduler.step()

        history["epoch"].append(epoch)
        history["train_loss"].append(train["loss"])
        for name, value in val.items():
            history.setdefault(f"val_{name}", []).append(value)
        if num_classes == 1:  # in the loader's order, so that two runs' epochs can be compared image by image
            history.setdefault("val_dice_of_each_image", []).append(counts.dice_of_each_image().tolist())
        history["lr"].append(next(iter(lrs.values())))  # the first group's, which plot_history draws
        if len(lrs) > 1:
            for label, value in lrs.items():
                history.setdefault(f"lr_{label}", []).append(value)
        history["seconds"].append(train["seconds"])
        improved = best is None or (score < best if mode == "min" else score > best)
        best, bad_epochs = (score, 0) if improved else (best, bad_epochs + 1)

        if checkpoint_dir is not None and is_main_process():
            state = {
                "scheduler": scheduler,
                "scaler": scaler,
                "epoch": epoch,
                "history": history,
                "best": best,
                "bad_epochs": bad_epochs,
                "monitor": monitor,
                "config": config or {},
            }
            if improved:  # best.pt first: a kill between the two writes must not lose this epoch's best
                save_checkpoint(Path(checkpoint_dir) / "best.pt", model, optimizer, **state)
            good = save_checkpoint(last_path, model, optimizer, **state)
        if is_main_process():
            losses = (train["loss"], val["loss"])
            log(
                epoch_line(
                    epoch, epochs, losses, monitor, score, improved, lrs, train["seconds"], train["images_per_s"]
                )
            )
        if patience is not None and bad_epochs >= patience:
            if is_main_process():
                log(f"early stop: val_{monitor} has not improved for {patience} epochs (best {best:.4f})")
            break
    return history


def _speed_choices(device: torch.device, amp_dtype, train_loader, log: Callable[[str], Any]):
    """(autocast dtype, GradScaler or None, cudnn.benchmark) for ``fit``, each choice logged once with its reason."""
    reason = f"amp_dtype={amp_dtype} was passed"
    if amp_dtype == "auto":
        amp_dtype, reason = amp_choice(device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    benchmark = cudnn_benchmark_for(device)
    if is_main_process():
        precision = "off, float32" if amp_dtype is None else str(amp_dtype).removeprefix("torch.")
        log(f"mixed precision: {precision}{' with a GradScaler' if scaler else ''} ({reason})")
        if device.type == "cuda":
            log(
                f"{device}: channels_last model and images; cudnn.benchmark "
                f"{'on for training' if benchmark else 'off (deterministic kernels asked for)'}"
            )
        if getattr(train_loader, "num_workers", 0) > 0 and train_loader.worker_init_fn is None:
            log(
                f"note: train_loader starts {train_loader.num_workers} workers without a worker_init_fn, so each "
                "gets the same copy of albumentations' generators and repeats the others' augmentations; pass "
                "worker_init_fn=seed_worker (from unet_tutorial.loaders)"
            )
    return amp_dtype, scaler, benchmark


def _group_label(group: dict, index: int) -> str:
    """A parameter group's "name" (e.g. "encoder", from ``DenseNetUNet.param_groups``), else its index."""
    return str(group.get("name", index))
