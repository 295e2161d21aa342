"""Instruments a notebook shows: what a model sees and what a training step costs, read off the model or measured.

Notebook 01's: ``receptive_field``, ``unet_levels`` and ``activation_bytes`` read off a model object (for figures,
explorers and benchmarks); ``measure_training_step`` measures the memory a forward pass keeps for backward and the
step's time by running it. Notebooks 03 and 04's ``time_train_step`` times a whole training step, to see whether
AMP and channels_last pay off on the hardware at hand. Left out: estimates of a whole recipe's memory and FLOPs,
which only tests and benchmarks need (``benchmarks/estimates.py``). Taught in: notebooks 01, 03 and 04.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from unet_tutorial.model import UNet


def receptive_field(model: nn.Module) -> int:
    """Theoretical receptive field in input pixels (one side) of an output pixel, read off the layers.

    Walks the convolutions, pools and up-samplings in registration order, which for ``UNet`` is the deepest
    path inc -> downs -> ups -> outc; skips only shorten paths, so this path sets the receptive field. It is
    the textbook estimate: where a pixel sits on the pooling grid moves the measured value by a few pixels
    (tests/test_model.py measures it by perturbing input pixels).
    A k x k layer with stride s adds (k - 1) * jump input pixels and multiplies the jump (input pixels between
    neighbouring features) by s; a transposed conv with k = s adds nothing and divides the jump by s; a
    bilinear x2 up-sample reads 2 neighbours, adding one jump.

    Returns:
        the side of the square of input pixels that can influence one output pixel.
    """
    size, jump = 1.0, 1.0
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            kernel, stride, dilation = (_first(getattr(layer, a)) for a in ("kernel_size", "stride", "dilation"))
            size += dilation * (kernel - 1) * jump
            jump *= stride
        elif isinstance(layer, nn.ConvTranspose2d):
            kernel, stride = _first(layer.kernel_size), _first(layer.stride)
            size += (math.ceil(kernel / stride) - 1) * jump
            jump /= stride
        elif isinstance(layer, nn.Upsample):
            size += jump if layer.mode in ("bilinear", "bicubic") else 0
            jump /= layer.scale_factor
    return int(size)


def _first(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


def unet_levels(model: UNet, image_size: int | tuple[int, int] = 256) -> list[dict]:
    """Channels, resolution and parameter counts per level of a UNet, read off the model (for diagrams).

    Args:
        model: a UNet.
        image_size: input size, an int for square images or (H, W); padded as the model pads it.

    Returns:
        one dict per level 0..depth: "level", "channels", "height", "width", "encoder_params" (inc or Down),
        "decoder_params" (the Up that produces this level, 0 at the bottom; level 0 also counts OutConv).
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    multiple = 2**model.depth
    height, width = height + -height % multiple, width + -width % multiple
    encoders = [model.inc, *model.downs]
    decoders = list(reversed(model.ups))  # decoders[level] produces level `level`
    levels = []
    for level, encoder in enumerate(encoders):
        decoder_params = _count(decoders[level]) if level < model.depth else 0
        levels.append(
            {
                "level": level,
                "channels": encoder.block[0].out_channels if level == 0 else encoder.conv.block[0].out_channels,
                "height": height // 2**level,
                "width": width // 2**level,
                "encoder_params": _count(encoder),
                "decoder_params": decoder_params + (_count(model.outc) if level == 0 else 0),
            }
        )
    return levels


def activation_bytes(
    model: nn.Module, image_size: int | tuple[int, int], batch_size: int = 1, in_channels: int | None = None
) -> int:
    """Estimate the activation memory a training forward pass keeps for backward, without computing anything.

    Runs a copy of the model on PyTorch's "meta" device (shapes only, no data) and adds up the inputs that
    convolutions, BatchNorm, pools and up-samplings save for their gradients (ReLU here works in place on
    BatchNorm's output, which the next convolution saves anyway). Within 2% of a measurement with
    torch.profiler (tests/test_model.py); ignores checkpointing.

    Args:
        model: any image model (e.g. a UNet); not modified.
        image_size: an int for square images or (H, W).
        batch_size: images per batch.
        in_channels: input channels; default ``model.in_channels``.

    Returns:
        bytes of float32 activations, for ``batch_size`` images.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    in_channels = in_channels or model.in_channels
    saving = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Upsample)
    meta = copy.deepcopy(model).to("meta").train()
    total = 0

    def add_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal total
        total += inputs[0].numel() * 4  # float32
        if isinstance(module, nn.MaxPool2d):
            total += inputs[0].numel() // 4 * 8  # the int64 argmax indices, one per output pixel

    handles = [m.register_forward_pre_hook(add_input) for m in meta.modules() if isinstance(m, saving)]
    with torch.enable_grad():
        meta(torch.empty(batch_size, in_channels, height, width, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def measure_training_step(model: nn.Module, images: torch.Tensor, repeats: int = 1) -> tuple[int, float]:
    """Measure a training step: the memory its forward pass keeps for backward, and its time.

    Memory: the bytes allocated by one forward pass and still held at its end (the activations that the
    graph keeps for backward), the logits themselves left out. On CUDA and MPS it reads the allocator's
    counter (``torch.cuda.memory_allocated``); on the CPU, torch.profiler with ``profile_memory=True``, which
    records every allocation and free. Time: the fastest of ``repeats`` forward + backward passes of
    ``logits.mean()``; gradients are zeroed before each, so afterwards ``p.grad`` holds one pass's gradients.

    Args:
        model: the model, on the device of ``images`` and in the mode to measure (training, usually).
        images: one batch, (B, C, H, W).
        repeats: timed passes (the untimed memory pass before them also warms up).

    Returns:
        (bytes kept for backward, seconds of the fastest forward + backward).
    """
    device = images.device
    model.zero_grad(set_to_none=True)
    if device.type in ("cuda", "mps"):
        allocated = torch.cuda.memory_allocated if device.type == "cuda" else torch.mps.current_allocated_memory
        _synchronize(device)
        before = allocated()
        logits = model(images)  # the logits hold the graph, and the graph holds the activations
        kept = allocated() - before
    else:
        # Kineto, the profiler's backend, prints its start/stop and a failed GPU probe to stderr on a CPU-only
        # machine; a learner reads those lines as errors. Level 6 silences them, unless the user chose a level.
        os.environ.setdefault("KINETO_LOG_LEVEL", "6")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            logits = model(images)
        kept = sum(event.self_cpu_memory_usage for event in prof.events())
    kept -= logits.numel() * logits.element_size()
    del logits  # frees the graph and its activations
    seconds = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        _synchronize(device)
        start = time.perf_counter()
        model(images).mean().backward()
        _synchronize(device)  # GPU kernels run asynchronously: wait for them before reading the clock
        seconds.append(time.perf_counter() - start)
    return kept, min(seconds)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_train_step(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    loss_fn: Callable,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    steps: int = 2,
) -> float:
    """Seconds per training step (forward, loss, backward, SGD step) on one batch, after one warm-up step.

    Works on a copy of ``model``, so the model itself is left as it was. Taught in 03, to decide whether AMP
    and channels_last pay off on the hardware at hand.
    Shape: images (B, 3, H, W) and masks on the model's device.
    """
    device = images.device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    trial = copy.deepcopy(model).train().to(memory_format=memory_format)
    optimizer = torch.optim.SGD(trial.parameters(), lr=1e-3)
    images = images.to(memory_format=memory_format)
    for step in range(steps + 1):
        if step == 1:  # step 0 warms up (allocations, kernel choices) and is not timed
            _synchronize(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(trial(images), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _synchronize(device)  # GPU kernels run asynchronously: wait for them before reading the clock
    return (time.perf_counter() - start) / steps


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
