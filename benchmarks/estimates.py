"""What a notebook's GPU settings cost before anyone has a GPU: peak training memory and time per epoch on a T4.

``training_memory`` estimates the peak memory of training a model at a batch size and image size: the
parameters, their gradients, the optimizer's state, the tensors autograd keeps for backward (counted with
``torch.autograd.graph.saved_tensors_hooks`` on a real forward pass at two small sizes on the CPU, then extended
to the target size: those tensors grow linearly with the pixels of the batch) and the gradient buffers that
exist while backward runs. ``profiled_peak_bytes`` measures a step's peak with ``torch.profiler``, the reference
the estimate is tested against; ``train_flops_per_image`` counts a forward and backward pass's FLOPs on the meta
device. ``runs(source, mode)`` reads what a notebook trains from its settings cell (``tools.settings``), so the
numbers checked are the ones on the learner's lines. Left out: the CUDA context and cuDNN workspaces (a few
hundred MB, why budgets leave room), the allocator's fragmentation.

    python benchmarks/estimates.py            # every notebook's GPU settings: peak memory (fp16) and T4 times
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: tools/ is beside the package, not installed
    sys.path.insert(0, str(ROOT))

from tools.settings import notebook_settings  # noqa: E402
from unet_tutorial.densenet_unet import DenseNetUNet  # noqa: E402
from unet_tutorial.losses import ComboLoss  # noqa: E402
from unet_tutorial.model import UNet  # noqa: E402
from unet_tutorial.models import build_model  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
T4_BYTES = 15 * 2**30
# Sustained TFLOP/s of U-Net training under autocast (fp16 on a T4, bf16 on an L4 and an A100): assumed, not
# measured. About 8%, 12% and 16% of each GPU's dense 16-bit peak (65, 121, 312): ResNet-50's mixed-precision
# training reaches roughly 10-20%, and a U-Net's BatchNorm on full-resolution feature maps is memory-bound.
SUSTAINED_TFLOPS = {"T4": 5.0, "L4": 15.0, "A100": 50.0}
# Real data sets, as the notebooks split them: Carvana 5,088 images of 318 cars, 15% of the cars for validation
# and (notebook 03's GPU settings) 2% of the training cars' images held back; ADE20K 20,210 training and 2,000
# validation photos, validated at their own size (on average about 1.4 times the pixels of a 512x512 crop).
CARVANA_TRAIN, CARVANA_VAL, CARVANA_LEAK = 4234, 768, 86
ADE20K_TRAIN, ADE20K_VAL, ADE20K_VAL_PIXELS = 20210, 2000, 1.4 * 512 * 512


def _targets_like(logits: torch.Tensor) -> torch.Tensor:
    """All-background targets for ``logits``: (B, 1, H, W) float for one class, (B, H, W) long for more."""
    batch, classes, height, width = logits.shape
    if classes == 1:
        return torch.zeros(batch, 1, height, width, device=logits.device)
    return torch.zeros(batch, height, width, dtype=torch.long, device=logits.device)


def saved_tensor_bytes(
    model: nn.Module, loss_fn: Callable, images: torch.Tensor, amp_dtype: torch.dtype | None = None
) -> dict[str, int]:
    """Bytes autograd keeps for backward over one forward pass and loss on ``images``, parameters excluded.

    Every tensor saved for backward passes through a pack hook; views of one storage are counted once, at the
    storage's size. The model runs in training mode on a copy, so its BatchNorm statistics are left alone.

    Shape: images (B, 3, H, W) on the device to count on (the CPU for an estimate).
    Returns:
        {"saved": bytes of all distinct saved storages, "largest": bytes of the largest one that is not a copy
        of a weight (the largest feature map or loss tensor)}.
    """
    trial = copy.deepcopy(model).train()
    parameters = {p.untyped_storage().data_ptr() for p in trial.parameters()}
    weight_shapes = {p.shape for p in trial.parameters()}  # autocast's 16-bit weight copies have these
    storages: dict[int, int] = {}
    largest = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
            if tensor.shape not in weight_shapes:
                largest = max(largest, storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = trial(images)  # (B, C, H, W)
            loss_fn(logits, _targets_like(logits))
    return {"saved": sum(storages.values()), "largest": largest}


def training_memory(
    model: nn.Module,
    loss_fn: Callable,
    *,
    batch_size: int,
    image_size: tuple[int, int],
    amp_dtype: torch.dtype | None = None,
    optimizer_buffers: int = 2,
    probe_sizes: tuple[int, int] = (64, 96),
) -> dict[str, int]:
    """Estimated peak bytes of one training step of ``model`` on batches of ``batch_size`` images of ``image_size``.

    The saved tensors are counted on the CPU (under CPU autocast with ``amp_dtype``, whose op lists match CUDA's
    for convolutions, normalisation and losses) for one image at two square probe sizes, and extended linearly
    in the batch's pixels: every feature map of a fully convolutional network scales with them, while what does
    not (16-bit copies of the weights under autocast, per-class sums) is the constant part of the fit.
    While backward runs, the gradient of the largest saved tensor and the gradient it produces coexist with what
    is still saved: ``backward`` counts two largest tensors.

    Args:
        loss_fn: called as ``loss_fn(logits, targets)``; targets are all-background (values do not change sizes).
        image_size: (height, width); the probes assume both are multiples of 32 (or whatever the model pads to).
        amp_dtype: the autocast dtype of training (torch.float16 or torch.bfloat16), None for fp32.
        optimizer_buffers: tensors of state per trainable parameter: 2 for Adam and AdamW, 1 for SGD momentum.
        probe_sizes: the two square sides measured, small so that the count takes a second on a CPU.
    Returns:
        bytes: {"parameters" (with buffers), "gradients", "optimizer", "activations", "backward", "total"}.
    """
    cpu_model = copy.deepcopy(model).cpu().float()
    measured = {}
    for side in probe_sizes:
        measured[side] = saved_tensor_bytes(cpu_model, loss_fn, torch.zeros(1, 3, side, side), amp_dtype)
    small, large = probe_sizes
    per_pixel = (measured[large]["saved"] - measured[small]["saved"]) / (large**2 - small**2)
    constant = max(measured[small]["saved"] - per_pixel * small**2, 0)
    pixels = batch_size * image_size[0] * image_size[1]
    largest = measured[large]["largest"] * pixels / large**2
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    result = {
        "parameters": sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]),
        "gradients": trainable,
        "optimizer": optimizer_buffers * trainable,
        "activations": round(constant + per_pixel * pixels),
        "backward": round(2 * largest),
    }
    result["total"] = sum(result.values())
    return result


def profiled_peak_bytes(
    model: nn.Module,
    loss_fn: Callable,
    images: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    amp_dtype: torch.dtype | None = None,
) -> int:
    """Peak bytes allocated during one training step (forward, loss, backward, step), by ``torch.profiler``.

    With ``profile_memory=True`` the profiler records, per op, the bytes it allocated and freed; adding them up
    in time order gives the memory in use after each op. The peak returned adds what was allocated before the step (the
    parameters, and the optimizer's state after its first step), so it compares with ``training_memory``'s total.
    """
    device = images.device.type
    before = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    before += sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
        with torch.autocast(device, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    # Each event carries the bytes its op allocated minus those it freed, children excluded ("self");
    # "[memory]" events are allocations and frees outside any op. In time order they add up to the use.
    key = "self_cuda_memory_usage" if device == "cuda" else "self_cpu_memory_usage"
    in_use = peak = 0
    for event in sorted(profiler.events(), key=lambda e: e.time_range.start):
        in_use += getattr(event, key)
        peak = max(peak, in_use)
    return before + peak


def train_flops_per_image(build_model: Callable[[], nn.Module], image_size: tuple[int, int]) -> int:
    """FLOPs of one forward and backward pass on one image, counted on the meta device (nothing is computed).

    Args:
        build_model: a function that returns the model (called under ``torch.device("meta")``).
        image_size: (height, width).
    """
    with torch.device("meta"):
        meta = build_model().train()
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, *image_size, device="meta")).sum().backward()
    return counter.get_total_flops()


def runs(stem: str, mode: str = "gpu") -> list[dict]:
    """What notebook ``stem`` (e.g. "03_carvana_binary") trains in ``mode``, read from its settings cell: for each
    run, the model builder (random weights), loss, epochs, batch size, image size (H, W), images per epoch
    (training, validation) on the real data, and "count" where several runs train the same model."""
    s = notebook_settings(NOTEBOOKS / f"{stem}.py", mode)
    binary = ComboLoss({"cross_entropy": 1.0, "dice": 1.0})
    if stem.startswith("03"):
        return [
            {
                "name": "UNet",
                "build": lambda: UNet(num_classes=1, base_channels=s["BASE_CHANNELS"]),
                "loss": binary,
                "epochs": s["EPOCHS"],
                "batch_size": s["BATCH_SIZE"],
                "image_size": s["IMAGE_SIZE"],
                "images": (CARVANA_TRAIN, CARVANA_VAL + CARVANA_LEAK),
            },
            {  # experiment 3: on a GPU, the changed run and its reference, each EXPERIMENT_EPOCHS long
                "name": "UNet, experiment 3's two short runs",
                "build": lambda: UNet(num_classes=1, base_channels=s["BASE_CHANNELS"]),
                "count": 2,
                "loss": binary,
                "epochs": s["EXPERIMENT_EPOCHS"],
                "batch_size": s["BATCH_SIZE"],
                "image_size": s["IMAGE_SIZE"],
                "images": (CARVANA_TRAIN, CARVANA_VAL),
            },
        ]
    if stem.startswith("04"):
        common = {
            "loss": binary,
            "batch_size": s["BATCH_SIZE"],
            "image_size": s["IMAGE_SIZE"],
            "images": tuple(  # a setting may depend on the data found: the real photos' value
                (value["real"] if isinstance(value, dict) else value) or default
                for value, default in ((s["TRAIN_IMAGES"], CARVANA_TRAIN), (s["VAL_IMAGES"], CARVANA_VAL))
            ),
            "epochs": s["EPOCHS"],
        }
        densenet = lambda: DenseNetUNet(num_classes=1, weights=None)  # noqa: E731
        # three DenseNetUNets (random encoder, ImageNet encoder, freeze then unfreeze) at full cost, the random and
        # ImageNet ones again on each further seed of SEED_RUNS, and three more copies that continue the same frozen
        # phase: the second unfrozen one (encoder BatchNorm frozen), the control kept frozen (counted at full cost
        # although its steps skip the encoder's backward pass: an upper bound) and exercise 2's copy
        return [
            {
                "name": "U-Net from scratch",
                "build": lambda: UNet(num_classes=1, base_channels=s["UNET_BASE_CHANNELS"]),
                **common,
            },
            {"name": "DenseNetUNet", "build": densenet, "count": 3 + 2 * (s["SEED_RUNS"] - 1), **common},
            {
                "name": "DenseNetUNet, three more copies after the frozen phase",
                "build": densenet,
                "count": 3,
                **common,
                "epochs": s["EPOCHS"] - s["FROZEN_EPOCHS"],
            },
        ]
    crop = s["CROP"]["real"]
    kwargs = s["MODEL_KWARGS"] | ({"weights": None} if s["MODEL"] == "densenet_unet" else {})
    val_images = ADE20K_VAL * ADE20K_VAL_PIXELS / crop**2  # validated at their own size: counted in crops
    return [
        {
            "name": s["MODEL"],
            "build": lambda: build_model(s["MODEL"], **kwargs),
            "loss": ComboLoss({"cross_entropy": 1.0, "dice": 1.0}, 255),
            "count": 2 if s["COMPARE_WEIGHTS"] else 1,  # plain, and the class-weighted run (the same cost)
            "epochs": s["EPOCHS"]["real"],
            "batch_size": s["BATCH_SIZE"],
            "image_size": (crop, crop),
            "images": (s["TRAIN_LIMIT"]["real"] or ADE20K_TRAIN, s["VAL_LIMIT"]["real"] or val_images),
        }
    ]


def estimate_times(stem: str, mode: str = "gpu", throughputs: dict[str, float] = SUSTAINED_TFLOPS) -> dict:
    """GPU name -> (seconds per epoch, total minutes) of notebook ``stem``'s runs on its real data set.

    An epoch's work: its training images times the FLOPs of a forward and backward pass, plus its validation
    images times a forward pass (a third of that), at the assumed ``throughputs`` (TFLOP/s). Seconds per epoch
    are those of the biggest run; the total adds every run's epochs. The loader is assumed to keep up.
    """
    work = []  # (TFLOP per epoch, epochs) per run
    for run in runs(stem, mode):
        flops = train_flops_per_image(run["build"], run["image_size"]) / 1e12
        train_images, val_images = run["images"]
        work.append((train_images * flops + val_images * flops / 3, run["epochs"] * run.get("count", 1)))
    per_epoch = max(tflop for tflop, _ in work)
    total = sum(tflop * epochs for tflop, epochs in work)
    return {gpu: (per_epoch / speed, total / speed / 60) for gpu, speed in throughputs.items()}


def estimate_memory(stem: str, mode: str = "gpu", amp_dtype: torch.dtype | None = torch.float16) -> dict[str, int]:
    """``training_memory`` of the most demanding run of notebook ``stem`` in ``mode`` (bytes; AdamW; fp16 by
    default, as on a T4)."""
    estimates = {}  # runs that train the same model on the same batches are measured once
    for run in runs(stem, mode):
        model = run["build"]()
        key = (
            type(model).__name__,
            sum(p.numel() for p in model.parameters()),
            id(run["loss"]),
            run["batch_size"],
            tuple(run["image_size"]),
        )
        if key not in estimates:
            estimates[key] = training_memory(
                model, run["loss"], batch_size=run["batch_size"], image_size=run["image_size"], amp_dtype=amp_dtype
            )
    return max(estimates.values(), key=lambda estimate: estimate["total"])


def main() -> None:
    for stem in ("03_carvana_binary", "04_densenet121_transfer", "05_ade20k_multiclass"):
        memory = estimate_memory(stem)["total"] / 2**30
        times = ", ".join(
            f"{gpu} {epoch:.0f} s/epoch, {total:.0f} min" for gpu, (epoch, total) in estimate_times(stem).items()
        )
        print(f"{stem}: peak {memory:.1f} GiB of a T4's 15 (fp16); {times} (real data, estimated)")


if __name__ == "__main__":
    main()
