"""Self-checks of notebook 01 (U-Net from scratch): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
A miss diagnoses the method (which step went wrong) and never prints the expected value; ``reveal=True`` prints
it, for a learner who has tried and wants to see it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from unet_tutorial.course.exercises import passed

_REVEAL = "pass reveal=True to the check to see the expected answer"


def _bilinear_diagnosis(module: torch.nn.Module, in_channels: int) -> str | None:
    """What is structurally wrong with a learner's BilinearUp(in_channels, ...), or None if nothing is found."""
    layers = list(module.modules())
    if any(isinstance(m, torch.nn.ConvTranspose2d) for m in layers):
        return (
            "it holds a transposed convolution, section 3's learned up-sampling; the bilinear step resizes with no "
            "weights (nn.Upsample or F.interpolate, mode='bilinear') and then halves the channels with a 1x1 "
            "convolution"
        )
    pointwise = [m for m in layers if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    if not pointwise:
        return "it has no 1x1 convolution (nn.Conv2d(..., kernel_size=1)) to halve the channels after the resize"
    first = pointwise[0]
    if first.in_channels != in_channels or first.out_channels != in_channels // 2:
        return (
            f"its 1x1 convolution maps {first.in_channels} -> {first.out_channels} channels; it takes x as it comes "
            "from below and must leave it with as many channels as the skip has, so that the concatenation gives "
            "the DoubleConv the in_channels it expects"
        )
    if first.bias is None:
        return "its 1x1 convolution has no bias; keep nn.Conv2d's default bias=True (no BatchNorm follows it)"
    return None


def check_bilinear_up(bilinear_up: Callable[[int, int], torch.nn.Module], reveal: bool = False) -> None:
    """Notebook 01: ``BilinearUp(in_channels, out_channels)`` computes what ``Up(..., bilinear=True)`` computes."""
    from unet_tutorial.model import Up

    for in_channels, out_channels, (height, width) in ((8, 4, (5, 6)), (16, 16, (4, 4)), (6, 5, (3, 7))):
        torch.manual_seed(0)
        theirs, ours = bilinear_up(in_channels, out_channels), Up(in_channels, out_channels, bilinear=True)
        shapes, expected = [tuple(p.shape) for p in theirs.parameters()], [tuple(p.shape) for p in ours.parameters()]
        if shapes != expected:
            if reveal:
                print(f"BilinearUp({in_channels}, {out_channels}): your parameters {shapes}\n  expected {expected}")
            problem = _bilinear_diagnosis(theirs, in_channels)
            if problem is None and sorted(shapes) == sorted(expected):
                problem = (
                    "it has the right layers, registered in another order: create them in __init__ in the order "
                    "they run (the up-sampling step, then the DoubleConv); the check copies weights in that order"
                )
            raise AssertionError(
                f"BilinearUp({in_channels}, {out_channels}): "
                + (
                    problem
                    or "its parameters differ from the bilinear step's: a 1x1 convolution, then "
                    f"DoubleConv(in_channels, out_channels) after the concatenation ({_REVEAL})"
                )
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
                f"x {tuple(x.shape)} and skip {tuple(skip.shape)} should give {tuple(want.shape)} as section 3's Up "
                f"does, got {tuple(got.shape)}"
            )
            if torch.allclose(got, want, atol=1e-5):
                continue
            pointwise = ours.up[1]
            variants = {
                "concatenate the skip first, torch.cat([skip, x], dim=1), as section 3's Up does": ours.conv(
                    torch.cat([ours.up(x), skip], dim=1)
                ),
                "up-sample with mode='bilinear'; yours matches nearest-neighbour up-sampling": ours.conv(
                    torch.cat([skip, pointwise(F.interpolate(x, scale_factor=2, mode="nearest"))], dim=1)
                ),
                "use align_corners=False (the default); yours matches align_corners=True": ours.conv(
                    torch.cat(
                        [skip, pointwise(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))], dim=1
                    )
                ),
            }
            for advice, output in variants.items():
                assert not torch.allclose(got, output, atol=1e-5), f"the shapes are right, but: {advice}"
        raise AssertionError(
            "the shapes are right but the numbers differ: up-sample with mode='bilinear', align_corners=False, "
            "then the 1x1 convolution, then concatenate [skip, x] and apply the DoubleConv"
        )
    transposed = sum(p.numel() for p in Up(64, 32).up.parameters())
    bilinear = sum(p.numel() for p in Up(64, 32, bilinear=True).up.parameters())
    print(f"up-sampling 64 -> 32 channels: transposed 2x2 {transposed:,} parameters, bilinear + 1x1 {bilinear:,}")
    passed("bilinear_up")


def _measured_fields(image_size: int) -> dict[int, int]:
    """The receptive field of ``UNet(depth=d)`` for d = 1, 2, ..., one depth past the first that sees
    ``image_size`` pixels (and at least to depth 4), read off models built on the meta device."""
    from unet_tutorial.measure import receptive_field
    from unet_tutorial.model import UNet

    fields: dict[int, int] = {}
    depth = 0
    while depth < 4 or fields[depth - 1] < image_size:  # until the depth after the first that sees it all
        depth += 1
        with torch.device("meta"):  # shapes only: receptive_field reads the layers, runs nothing
            fields[depth] = receptive_field(UNet(num_classes=1, depth=depth))
    return fields


def check_depth_to_see(
    depth: int, image_size: int = 256, next_field: Callable[[int], int] | None = None, reveal: bool = False
) -> None:
    """Notebook 01: the smallest ``UNet`` depth whose receptive field covers an ``image_size`` image.

    ``next_field``, the learner's rule from one depth's field to the next, is checked first against the measured
    fields, so a wrong rule is named before a wrong depth.
    """
    fields = _measured_fields(image_size)
    expected = min(d for d, field in fields.items() if field >= image_size)
    if reveal:
        table = ", ".join(f"depth {d}: {f} px" for d, f in fields.items() if d <= expected + 1)
        print(f"measured: {table}; the smallest depth that sees {image_size} px is {expected}")
    is_int = isinstance(depth, int) and not isinstance(depth, bool)
    assert is_int or (hasattr(depth, "is_integer") and depth.is_integer()), (
        f"answer with a whole number of levels, got {depth!r}"
    )
    depth = int(depth)
    if next_field is not None:
        for d in (1, 2, 3):  # the fields the learner measured: depths 1 to 4
            predicted = next_field(fields[d])
            assert predicted == fields[d + 1], (
                f"your rule next_field takes depth {d}'s field, {fields[d]} px, to {predicted} px, but depth {d + 1} "
                f"measures {fields[d + 1]} px: compare each measured field with twice the one before it, and look "
                "at what is left over"
            )
    if depth != expected:
        if depth < 1:
            problem = "a U-Net has at least one level"
        elif depth == 4 and expected > 4:
            problem = "depth 4 is UNet()'s default, whose field section 4 measured; it is smaller than the image"
        elif depth < expected:
            problem = (
                f"at depth {depth} the centre pixel does not yet see the whole {image_size} x {image_size} image. "
                "Does your rule grow the field too fast (more than doubling)? Or did you stop at the last depth "
                "whose field falls short, instead of the first whose field reaches the image's size?"
            )
        elif 2**depth == image_size:
            problem = (
                f"2**{depth} = {image_size} is the depth at which the bottom grid shrinks to one pixel, not the depth "
                "whose field covers the image: each level's convolutions add pixels at the coarse spacing, so the "
                "field grows faster than 2**depth"
            )
        else:
            problem = (
                f"a shallower U-Net already sees the whole {image_size}-pixel image. Does your rule grow the field "
                "too slowly (adding a constant instead of doubling)? Or did you go one level past the first depth "
                "whose field is at least the image's size?"
            )
        hint = "" if next_field is not None else " Write your rule as next_field(field) and pass it to the check."
        raise AssertionError(f"depth {depth}: {problem}.{hint} ({_REVEAL})")
    print(
        f"depth {depth}: the centre pixel sees {fields[depth]} px, the whole {image_size}-pixel image "
        f"(depth {depth - 1} sees {fields[depth - 1]} px)"
        if depth > 1
        else f"depth 1 sees {fields[1]} px"
    )
    passed("depth_to_see")


def _round_trip_kept(
    masks: torch.Tensor,
    *,
    pool: str = "avg",
    up: str = "bilinear",
    factor: Callable[[int], int] = lambda k: 2**k,
    measure: str = "kept",
) -> dict[int, float]:
    """Section 2's round trip for k = 1, 2, ... poolings: pool the masks by ``factor(k)``, up-sample back,
    threshold at 0.5, and measure the true foreground that comes back ("kept"), or another ``measure`` (what a
    learner might have measured instead: "size", the predicted foreground over the true; "dice"; "accuracy").

    Shape: masks (N, 1, H, W) of 0/1. Returns {k: share}, until one cell covers the image.
    """
    masks = masks.float()
    truth = masks > 0
    kept = {}
    for k in range(1, min(masks.shape[-2:]) + 1):
        if factor(k) > min(masks.shape[-2:]):  # one cell covers the image
            break
        pooled = (F.avg_pool2d if pool == "avg" else F.max_pool2d)(masks, factor(k))  # (N, 1, H / f, W / f)
        size = dict(align_corners=False) if up == "bilinear" else {}
        restored = F.interpolate(pooled, size=masks.shape[-2:], mode=up, **size) > 0.5  # (N, 1, H, W)
        overlap = (restored & truth).sum().item()
        kept[k] = {
            "kept": overlap / max(truth.sum().item(), 1),
            "size": restored.sum().item() / max(truth.sum().item(), 1),
            "dice": 2 * overlap / max(restored.sum().item() + truth.sum().item(), 1),
            "accuracy": (restored == truth).float().mean().item(),
        }[measure]
    return kept


def _first_below(shares: dict[int, float], bound: float = 0.8) -> int | None:
    return min((k for k, share in shares.items() if share < bound), default=None)


def check_pooling_round_trip(poolings: int, masks: torch.Tensor, reveal: bool = False) -> None:
    """Notebook 01: after how many 2x2 poolings the round trip of section 2 loses over 20 % of the foreground of
    ``masks`` (N, 1, H, W). The answer depends on the masks (their size above all): only theirs is accepted."""
    kept = _round_trip_kept(masks)
    expected = _first_below(kept)
    if expected is None:  # nothing is ever lost (one cell covers the image first): the last k counts
        expected = max(kept)
    table = ", ".join(f"{k}: {share:.0%}" for k, share in kept.items() if k <= expected + 1)
    if reveal:
        print(
            f"foreground that comes back after k poolings ({tuple(masks.shape[-2:])} masks): {table}; "
            f"the first k below 80 % is {expected}"
        )
    assert isinstance(poolings, int) and not isinstance(poolings, bool), (
        f"answer with a whole number of poolings, got {poolings!r}"
    )
    if poolings != expected:
        slips = [  # what each plausible slip gives on these masks, and what it is
            ({"pool": "max"}, "max-pooled (section 2 averages: a cell's value is the share of foreground in it)"),
            ({"up": "nearest"}, "up-sampled with mode='nearest' (section 2 uses bilinear)"),
            ({"factor": lambda k: k}, "pooled by a factor of k, not 2**k (k poolings of 2 x 2 make 2**k-pixel cells)"),
            ({"measure": "size"}, "measured the restored foreground's size, not the true pixels that come back"),
            (
                {"measure": "dice"},
                "measured the round trip's Dice, not the share of the true foreground that comes back",
            ),
            (
                {"measure": "accuracy"},
                "measured the share of all pixels that are right, which the background dominates",
            ),
        ]
        slips = [slip for how, slip in slips if _first_below(_round_trip_kept(masks, **how)) == poolings]
        # An answer one off is most likely a plain off-by-one at the 80 % boundary, whatever slip also gives it:
        # name that first, and the slips only as what would also give the answer
        if poolings < 1:
            problem = "at least one pooling: k counts the 2 x 2 poolings"
        elif poolings == expected - 1:
            problem = (
                "one pooling too few: after that many poolings at least 80 % of these masks' foreground still comes "
                "back. first_lossy is the first number of poolings after which less than 80 % does, not the last "
                "that still keeps 80 %"
            )
        elif poolings == expected + 1:
            problem = (
                "one pooling too many: one pooling fewer already loses more than 20 % of these masks' foreground. "
                "first_lossy is the first number of poolings after which less than 80 % comes back, not the one "
                "after it"
            )
        elif slips:
            problem = "that is what you would get if you " + "; or if you ".join(slips) + ". Check that step"
        elif poolings < expected:
            problem = (
                f"after {poolings} pooling(s) at least 80 % of these masks' foreground still comes back: look for the "
                "first number of poolings after which less than 80 % does"
            )
        else:
            problem = (
                "fewer poolings already lose more than 20 % of these masks' foreground. Check each step against "
                "section 2's cell: average-pool by 2**k, up-sample bilinearly to the masks' size, threshold at 0.5, "
                "then count the true foreground pixels that are still foreground, over all true foreground pixels"
            )
        if slips and abs(poolings - expected) == 1:
            problem += ". Your answer is also what you would get if you " + "; or if you ".join(slips)
        raise AssertionError(f"you said {poolings}: {problem}. The answer depends on the masks' size ({_REVEAL})")
    print(f"foreground that comes back after k poolings: {table}")
    passed("pooling_round_trip")
