"""Self-check of notebook 03's exercise 5: the Dice on the band around the true outline (a boundary score).

As the other checks of notebook 03 (``carvana``): the learner's function is run on crafted cases, where every known
slip gives its own number and is named, and on the types the notebook passes (bool predictions, uint8 masks); the
expected value is shown only on request, ``reveal=True``. ``tests/test_exercises_carvana.py`` plants each slip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import call_learner, miss, passed


def _edge_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels whose (2 width + 1)-square neighbourhood in targets (N, 1, H, W) holds both 0 and 1."""
    import torch.nn.functional as F

    size = 2 * width + 1
    return F.max_pool2d(targets, size, 1, width) != -F.max_pool2d(-targets, size, 1, width)


def _edge_dice_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(preds, targets, width): blobs with ragged predicted edges; the last set's cars touch the border."""
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    cases = []
    for width, (height, width_px) in ((1, (20, 28)), (2, (24, 32)), (3, (30, 30))):
        noise = torch.rand(3, 1, height // 4, width_px // 4, generator=generator)
        targets = (F.interpolate(noise, size=(height, width_px), mode="bilinear") > 0.5).float()
        ragged = F.interpolate(
            torch.rand(3, 1, height // 2, width_px // 2, generator=generator), size=(height, width_px)
        )
        preds = (F.avg_pool2d(targets, 3, 1, 1) + 0.3 * (ragged - 0.5) > 0.5).float()
        cases.append((preds, targets, width))
    targets = torch.zeros(2, 1, 16, 16)
    targets[:, :, 4:, :10] = 1  # a car cut by the bottom and left borders of the photo
    preds = targets.clone()
    preds[:, :, 3:6, :12] = 1
    cases.append((preds, targets, 2))
    return cases


def _band_dice(preds: torch.Tensor, targets: torch.Tensor, band: torch.Tensor, pooled: bool = False) -> float:
    """Dice on the pixels of ``band`` only: per image then averaged (dice_score), or pooled over all images."""
    from unet_tutorial.metrics import dice_score

    if not pooled:
        return dice_score(preds, targets.masked_fill(~band, 255), ignore_index=255)
    p, t = preds.bool() & band, targets.bool() & band
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * (p & t).sum() / total)


def check_edge_dice(edge_dice: Callable[..., float], reveal: bool = False) -> None:
    """Notebook 03: ``edge_dice(preds, targets, width)``, the per-image Dice on the band around the true outline.

    Args:
        reveal: after a miss, also show the value that was expected.
    """
    from unet_tutorial.metrics import dice_score

    for preds, targets, width in _edge_dice_cases():
        result, error = call_learner(
            edge_dice, f"width {width}, masks {tuple(targets.shape)}", preds.clone(), targets.clone(), width
        )
        if error:
            raise miss(
                error + "; keep preds and targets whole, (N, 1, H, W), as dice_score wants them, and leave the pixels "
                "off the band out with its ignore_index instead of indexing them away",
                reveal,
                f"{_band_dice(preds, targets, _edge_band(targets, width)):.4f}",
                "check_edge_dice",
            )
        band = _edge_band(targets, width)
        expected = _band_dice(preds, targets, band)
        if isinstance(result, torch.Tensor) and result.numel() > 1:
            raise miss(
                f"width {width}: edge_dice returned {tuple(result.shape)} values for {len(preds)} images; return one "
                "number, the mean of the images' Dice, as dice_score does",
                reveal,
                f"{expected:.4f}",
                "check_edge_dice",
            )
        got = float(result)
        if math.isclose(got, expected, abs_tol=1e-6):
            continue
        padded = torch.nn.functional.pad(targets, (width,) * 4)  # zeros outside the photo
        wrong = {
            "every pixel of the image (plain Dice); count only the band around the outline": dice_score(preds, targets),
            "a band outside the car only; the band reaches inside the car as well": _band_dice(
                preds, targets, band & (targets == 0)
            ),
            "a band inside the car only; the band reaches outside the car as well": _band_dice(
                preds, targets, band & (targets == 1)
            ),
            "a band one pixel wide; use `width` (a window of 2 * width + 1)": _band_dice(
                preds, targets, _edge_band(targets, 1)
            ),
            "a band two pixels wide, section 8's 5 x 5 window; use `width` (a window of 2 * width + 1)": _band_dice(
                preds, targets, _edge_band(targets, 2)
            ),
            "the photo's border as outline: where the car touches the border there is no edge (pad with -inf, as "
            "max_pool2d's padding does, not with zeros)": _band_dice(
                preds, targets, _edge_band(padded, width)[..., width:-width, width:-width]
            ),
            "the band around the *predicted* outline; the band follows the true outline, in targets": _band_dice(
                preds, targets, _edge_band(preds, width)
            ),
            "every pixel *except* the band; count the band and leave the rest out": _band_dice(preds, targets, ~band),
            "the band's pixels pooled over all images; dice_score averages each image's Dice": _band_dice(
                preds, targets, band, pooled=True
            ),
        }
        for mistake, value in wrong.items():
            if math.isclose(got, value, abs_tol=1e-6) and not math.isclose(value, expected, abs_tol=1e-6):
                raise miss(
                    f"width {width}: you scored {got:.4f}, the Dice of {mistake}",
                    reveal,
                    f"{expected:.4f}",
                    "check_edge_dice",
                )
        if got == 1.0 and expected != 1.0:
            raise miss(
                f"width {width}: your edge Dice is 1.0000, as if the band were empty (every pixel ignored): check "
                "that the band holds the pixels whose neighbourhood holds both car and background",
                reveal,
                f"{expected:.4f}",
                "check_edge_dice",
            )
        raise miss(
            f"width {width}, masks {tuple(targets.shape)}: your edge Dice {got:.4f} is not the Dice on the band; count "
            "the pixels whose (2 * width + 1)-square neighbourhood in targets holds both car and background, and "
            "average the Dice of each image, as dice_score does",
            reveal,
            f"{expected:.4f}",
            "check_edge_dice",
        )
    preds, targets, width = _edge_dice_cases()[0]  # as the notebook passes them: bool masks, uint8 from the GIFs
    expected = _band_dice(preds, targets, _edge_band(targets, width))
    got, error = call_learner(edge_dice, "bool and uint8 masks", preds.bool(), targets.to(torch.uint8), width)
    if error or not math.isclose(float(got), expected, abs_tol=1e-6):
        raise miss(
            (
                error
                or f"width {width}: with float masks your edge Dice was right, with the same masks as bool preds and "
                f"uint8 targets (the types the next cell passes) it is {float(got):.4f}"
            )
            + "; on uint8, -targets wraps around (0 - 1 = 255), 1 - preds fails on bool, and max_pool2d refuses "
            "integer types: turn preds and targets into floats first (.float())",
            reveal,
            f"{expected:.4f}",
            "check_edge_dice",
        )
    passed("edge_dice")
