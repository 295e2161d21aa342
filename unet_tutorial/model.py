"""U-Net from scratch: small named blocks (DoubleConv, Down, Up, OutConv) assembled into a U.

The 2015 design (Ronneberger, Fischer, Brox, https://arxiv.org/abs/1505.04597) with two modern changes that
everyone makes: padded 3x3 convolutions, so the output has the input's size, and BatchNorm after each
convolution. Any input size works: the model pads to a multiple of 2**depth inside and crops back.
Also here: ``receptive_field``, ``unet_levels`` and ``activation_bytes``, read off a model object for figures,
explorers and benchmarks, and ``measure_training_step``, which measures memory and time by running it.
Left out: dropout, attention gates, deep supervision, pretrained encoders (see densenet_unet.py, notebook 04).
Taught in: notebook 01 (01_unet_from_scratch).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class DoubleConv(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) twice; the convolutions have no bias, BatchNorm's shift replaces it.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (and of the middle activation).

    Shape: (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Down(nn.Module):
    """One encoder step: 2x2 max-pool (halves H and W), then DoubleConv.

    Shape: (B, in_channels, H, W) -> (B, out_channels, H // 2, W // 2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """One decoder step: up-sample x2 and halve the channels, concatenate the skip, then DoubleConv.

    Up-sampling is a learned 2x2 transposed convolution (the paper's "up-convolution"), or with
    ``bilinear=True`` a fixed bilinear resize followed by a 1x1 convolution (no checkerboard artefacts,
    fewer parameters).

    Args:
        in_channels: channels of the coarse input x.
        out_channels: channels of the output.
        bilinear: bilinear resize + 1x1 conv instead of a transposed convolution.
        skip_channels: channels of the skip tensor; default ``in_channels // 2`` as in U-Net.

    Shape: x (B, in_channels, H, W) and skip (B, skip_channels, 2H, 2W) -> (B, out_channels, 2H, 2W).
    A skip whose size differs from 2H x 2W by a pixel or so (odd sizes) is matched by zero-padding x.
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False,
                 skip_channels: int | None = None) -> None:
        super().__init__()
        half = in_channels // 2
        skip_channels = half if skip_channels is None else skip_channels
        if bilinear:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, half, kernel_size=1),
            )
        else:
            self.up = nn.ConvTranspose2d(in_channels, half, kernel_size=2, stride=2)
        self.conv = DoubleConv(half + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, in_channels // 2, 2H, 2W)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        x = torch.cat([skip, x], dim=1)  # (B, skip_channels + in_channels // 2, 2H, 2W)
        return self.conv(x)


class OutConv(nn.Module):
    """1x1 convolution from features to one logit per class. Shape: (B, in, H, W) -> (B, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """U-Net: an encoder that halves the resolution ``depth`` times, a mirrored decoder, skips concatenated.

    Paper: https://arxiv.org/abs/1505.04597 (here with padded convolutions and BatchNorm).
    ``UNet(in_channels=3, num_classes=2)`` has the canonical 31,037,698 parameters.

    Any H and W work: the input is zero-padded inside the model (split evenly between the two sides) to the
    next multiple of ``2**depth``, so that every max-pool halves an even size, and the logits are cropped back
    to H x W.

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: output channels; 1 for binary segmentation (one logit per pixel).
        base_channels: channels at full resolution; doubled at each level down (64 -> 1024 at depth 4).
        depth: number of down-sampling steps.
        bilinear: decoder up-samples with bilinear resize + 1x1 conv instead of transposed convolutions.
        checkpointing: recompute each block's activations in the backward pass (torch.utils.checkpoint):
            less activation memory, about one more forward pass of compute, the same gradients.

    Shape: (B, in_channels, H, W) -> logits (B, num_classes, H, W).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1, base_channels: int = 64, depth: int = 4,
                 bilinear: bool = False, checkpointing: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("base_channels", base_channels), ("depth", depth)):
            if value < 1:
                raise ValueError(f"UNet({name}={value}): must be a positive integer")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.checkpointing = checkpointing
        channels = [base_channels * 2**level for level in range(depth + 1)]  # e.g. 64, 128, 256, 512, 1024
        # Registration order is execution order along the deepest path; receptive_field() relies on it.
        self.inc = DoubleConv(in_channels, channels[0])
        self.downs = nn.ModuleList(Down(channels[i], channels[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(channels[i + 1], channels[i], bilinear) for i in reversed(range(depth)))
        self.outc = OutConv(channels[0], num_classes)

    def _run(self, block: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(block, *inputs, use_reentrant=False,
                              context_fn=lambda: (contextlib.nullcontext(), _buffers_restored(block)))
        return block(*inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects images of shape (B, {self.in_channels}, H, W) "
                             f"(in_channels={self.in_channels}), got {tuple(x.shape)}; pass "
                             f"UNet(in_channels=...) to match your data, or convert the images")
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = -height % multiple, -width % multiple
        top, left = pad_h // 2, pad_w // 2
        x = F.pad(x, (left, pad_w - left, top, pad_h - top))  # (B, C, H', W'), multiples of 2**depth

        skips = [self._run(self.inc, x)]  # (B, base, H', W')
        for down in self.downs:
            skips.append(self._run(down, skips[-1]))  # (B, base * 2**level, H' / 2**level, W' / 2**level)
        x = skips.pop()  # the bottleneck: (B, base * 2**depth, H' / 2**depth, W' / 2**depth)
        for up in self.ups:
            x = self._run(up, x, skips.pop())  # one level up: channels halve, H and W double
        logits = self.outc(x)  # (B, num_classes, H', W')
        return logits[..., top:top + height, left:left + width]  # (B, num_classes, H, W)


@contextlib.contextmanager
def _buffers_restored(module: nn.Module) -> Iterator[None]:
    """Undo buffer updates made inside: a checkpointed block's recomputation must not update BatchNorm's
    running statistics a second time."""
    saved = [(buffer, buffer.clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


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
        levels.append({
            "level": level,
            "channels": encoder.block[0].out_channels if level == 0 else encoder.conv.block[0].out_channels,
            "height": height // 2**level,
            "width": width // 2**level,
            "encoder_params": _count(encoder),
            "decoder_params": decoder_params + (_count(model.outc) if level == 0 else 0),
        })
    return levels


def activation_bytes(model: nn.Module, image_size: int | tuple[int, int], batch_size: int = 1,
                     in_channels: int | None = None) -> int:
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
    import copy

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
        from torch.profiler import ProfilerActivity, profile

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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
