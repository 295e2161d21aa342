"""U-Net from scratch: small named blocks (DoubleConv, Down, Up, OutConv) assembled into a U.

The 2015 design (Ronneberger, Fischer, Brox, https://arxiv.org/abs/1505.04597) with two modern changes that
everyone makes: padded 3x3 convolutions, so the output has the input's size, and BatchNorm after each
convolution. Any input size works: the model pads to a multiple of 2**depth inside and crops back.
What notebook 01 measures about the model (receptive field, memory, time) lives in ``measure.py``.
Left out: dropout, attention gates, deep supervision, pretrained encoders (see densenet_unet.py, notebook 04).
Taught in: notebook 01 (01_unet_from_scratch).
"""

from __future__ import annotations

import contextlib
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

    def __init__(
        self, in_channels: int, out_channels: int, bilinear: bool = False, skip_channels: int | None = None
    ) -> None:
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


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``images`` so that H and W are multiples of ``multiple``, split evenly between the two sides.

    ``UNet`` pads its input with it, and so does ``DenseNetUNet``; on normalised images, zero is the mean colour.

    Returns:
        (padded, (top, left, height, width)): crop back with ``logits[..., top:top + height, left:left + width]``.

    Shape:
        images (B, C, H, W) -> padded (B, C, H', W') with H' = ceil(H / multiple) * multiple.
    """
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    top, left = pad_h // 2, pad_w // 2
    padded = F.pad(images, (left, pad_w - left, top, pad_h - top))  # (B, C, H', W')
    return padded, (top, left, height, width)


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

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1,
        base_channels: int = 64,
        depth: int = 4,
        bilinear: bool = False,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
            ("depth", depth),
        ):
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
            return checkpoint(
                block,
                *inputs,
                use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(), _buffers_restored(block)),
            )
        return block(*inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects images of shape (B, {self.in_channels}, H, W) "
                f"(in_channels={self.in_channels}), got {tuple(x.shape)}; pass "
                f"UNet(in_channels=...) to match your data, or convert the images"
            )
        x, (top, left, height, width) = pad_to_multiple(x, 2**self.depth)  # (B, C, H', W'), multiples of 2**depth

        skips = [self._run(self.inc, x)]  # (B, base, H', W')
        for down in self.downs:
            skips.append(self._run(down, skips[-1]))  # (B, base * 2**level, H' / 2**level, W' / 2**level)
        x = skips.pop()  # the bottleneck: (B, base * 2**depth, H' / 2**depth, W' / 2**depth)
        for up in self.ups:
            x = self._run(up, x, skips.pop())  # one level up: channels halve, H and W double
        logits = self.outc(x)  # (B, num_classes, H', W')
        return logits[..., top : top + height, left : left + width]  # (B, num_classes, H, W)


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
