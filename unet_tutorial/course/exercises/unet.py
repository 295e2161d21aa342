"""Self-checks of notebook 01 (U-Net from scratch): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def check_bilinear_up(bilinear_up: Callable[[int, int], torch.nn.Module]) -> None:
    """Notebook 01: ``BilinearUp(in_channels, out_channels)`` computes what ``Up(..., bilinear=True)`` computes."""
    from unet_tutorial.model import Up

    for in_channels, out_channels, (height, width) in ((8, 4, (5, 6)), (16, 16, (4, 4)), (6, 5, (3, 7))):
        torch.manual_seed(0)
        theirs, ours = bilinear_up(in_channels, out_channels), Up(in_channels, out_channels, bilinear=True)
        shapes, expected = [tuple(p.shape) for p in theirs.parameters()], [tuple(p.shape) for p in ours.parameters()]
        assert shapes == expected, (
            f"BilinearUp({in_channels}, {out_channels}) has parameters of shapes {shapes}, in registration order; "
            f"expected {expected}: a 1x1 convolution with a bias ({in_channels} -> {in_channels // 2}), then "
            f"DoubleConv({in_channels}, {out_channels})"
        )
        with torch.no_grad():
            for mine, reference in zip(theirs.parameters(), ours.parameters()):
                mine.copy_(reference)
        theirs.eval()  # BatchNorm with its (default) running statistics, in both
        ours.eval()
        x = torch.randn(2, in_channels, height, width)
        skip = torch.randn(2, in_channels // 2, 2 * height, 2 * width)
        with torch.no_grad():
            got, want = theirs(x, skip), ours(x, skip)
        assert got.shape == want.shape, (
            f"x {tuple(x.shape)} and skip {tuple(skip.shape)} should give {tuple(want.shape)}, got {tuple(got.shape)}"
        )
        if not torch.allclose(got, want, atol=1e-5):
            swapped = ours.conv(torch.cat([ours.up(x), skip], dim=1))
            assert not torch.allclose(got, swapped, atol=1e-5), "concatenate the skip first: torch.cat([skip, x])"
            raise AssertionError(
                "the shapes are right but the numbers differ: up-sample with mode='bilinear', align_corners=False, "
                "then the 1x1 convolution, then concatenate [skip, x] and apply the DoubleConv"
            )
    transposed = sum(p.numel() for p in Up(64, 32).up.parameters())
    bilinear = sum(p.numel() for p in Up(64, 32, bilinear=True).up.parameters())
    print(f"up-sampling 64 -> 32 channels: transposed 2x2 {transposed:,} parameters, bilinear + 1x1 {bilinear:,}")
    passed("bilinear_up")


def check_depth_to_see(depth: int, image_size: int = 256) -> None:
    """Notebook 01: the smallest ``UNet`` depth whose receptive field covers an ``image_size`` image."""
    from unet_tutorial.measure import receptive_field
    from unet_tutorial.model import UNet

    fields = {}
    for d in range(1, 9):
        with torch.device("meta"):  # shapes only: receptive_field reads the layers, runs nothing
            fields[d] = receptive_field(UNet(num_classes=1, depth=d))
    expected = min(d for d, field in fields.items() if field >= image_size)
    table = ", ".join(f"depth {d}: {f} px" for d, f in fields.items() if d <= expected + 1)
    assert isinstance(depth, int), f"answer with a whole number of levels, got {depth!r}"
    assert depth == expected, (
        f"you said depth {depth}, whose receptive field is {fields.get(depth, '?')} pixels; measured: "
        f"{table}. The centre pixel sees the whole {image_size} x {image_size} image once the field is at least "
        f"{image_size} pixels wide"
    )
    print(f"depth {depth}: the centre pixel sees {fields[depth]} px, the whole {image_size}-pixel image")
    passed("depth_to_see")


def check_pooling_round_trip(poolings: int, masks: torch.Tensor) -> None:
    """Notebook 01: after how many 2x2 poolings the round trip of section 2 loses over 20 % of the objects."""
    import torch.nn.functional as F

    kept = {}
    for k in range(1, int(math.log2(min(masks.shape[-2:]))) + 1):  # until one cell covers the image
        coarse = F.avg_pool2d(masks.float(), 2**k)  # (N, 1, H / 2**k, W / 2**k)
        restored = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear") > 0.5  # (N, 1, H, W)
        kept[k] = ((restored & (masks > 0)).sum() / (masks > 0).sum()).item()
    expected = min((k for k, share in kept.items() if share < 0.8), default=max(kept))
    table = ", ".join(f"{k}: {share:.0%}" for k, share in kept.items() if k <= expected + 1)
    assert poolings == expected, (
        f"you said {poolings}; the share of the foreground that comes back after k poolings is {table}: the "
        f"first k below 80 % is {expected}. Pool with F.avg_pool2d(masks, 2**k), up-sample back, threshold "
        "at 0.5, and count the true foreground pixels that come back"
    )
    print(f"foreground that comes back after k poolings: {table}")
    passed("pooling_round_trip")
