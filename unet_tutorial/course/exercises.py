"""Self-checks for the notebooks' exercises: each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
Taught in: the exercise cells of every notebook (``make student`` stubs the solutions out).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _passed(name: str) -> None:
    print(f"✓ {name}: all checks passed")


# Notebook 01: U-Net from scratch


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
    _passed("bilinear_up")


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
    _passed("depth_to_see")


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
    _passed("pooling_round_trip")


# Notebook 02: losses and metrics


def check_frequency_weighted_iou(frequency_weighted_iou: Callable[[torch.Tensor], float]) -> None:
    """Notebook 02: the IoU of each class weighted by its share of the target pixels (rows), summed."""
    from unet_tutorial.metrics import iou_per_class, mean_iou

    def expected(confusion: torch.Tensor) -> float:
        confusion = confusion.double()
        share = confusion.sum(1) / confusion.sum()
        return float((share * iou_per_class(confusion).nan_to_num(0.0)).sum())

    cases = {
        "three classes": torch.tensor([[50, 2, 3], [4, 20, 1], [6, 0, 14]]),
        # class 3 is in neither targets nor predictions (its IoU is NaN); class 2 is predicted but never true
        "a class nowhere, a class only predicted": torch.tensor(
            [[60, 5, 5, 0], [2, 20, 3, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
        ),
    }
    for name, confusion in cases.items():
        got = float(frequency_weighted_iou(confusion.clone()))
        want = expected(confusion)
        if math.isclose(got, want, abs_tol=1e-6):
            continue
        assert not math.isnan(got), (
            f"{name}: you returned NaN. A class in neither the targets nor the predictions has IoU NaN (0 / 0) "
            "and share 0: leave it out, or count it as 0"
        )
        by_columns = confusion.double().sum(0) / confusion.sum()
        if math.isclose(got, float((by_columns * iou_per_class(confusion).nan_to_num(0.0)).sum()), abs_tol=1e-6):
            raise AssertionError(
                f"{name}: you weighted by the columns' shares, the *predicted* pixels; the weights are each "
                "class's share of the true pixels, the rows"
            )
        if math.isclose(got, mean_iou(confusion), abs_tol=1e-6):
            raise AssertionError(f"{name}: {got:.4f} is the plain mean IoU; weight each class by its share")
        raise AssertionError(
            f"{name}: expected {want:.4f}, got {got:.4f}: sum over the classes of (its true pixels / all pixels) "
            "x its IoU"
        )
    _passed("frequency_weighted_iou")


def check_best_threshold(threshold: float, probs: torch.Tensor, masks: torch.Tensor) -> None:
    """Notebook 02: a threshold on ``probs`` (N, 1, H, W) that gives the best per-image Dice, within 0.005."""
    from unet_tutorial.metrics import dice_score

    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    scores = {t: dice_score(probs > t, masks) for t in grid}
    best = max(scores, key=scores.get)
    got = dice_score(probs > threshold, masks)
    assert got >= scores[best] - 0.005, (
        f"at threshold {threshold} the Dice is {got:.3f}, but {best} gives {scores[best]:.3f}; try every "
        f"threshold from 0.05 to 0.95 in steps of 0.05 and keep the best (at 0.5: {scores[0.5]:.3f})"
    )
    print(f"threshold {threshold}: Dice {got:.3f} (at 0.5: {scores[0.5]:.3f})")
    _passed("best_threshold")


def check_empty_image_dice(lazy_dice: float, masks: torch.Tensor) -> None:
    """Notebook 02: per-image Dice of "background everywhere" on ``masks`` (N, 1, H, W), some empty."""
    from unet_tutorial.metrics import dice_score

    expected = dice_score(torch.zeros_like(masks), masks)
    empty = int((masks.flatten(1).sum(1) == 0).sum())
    assert abs(float(lazy_dice) - expected) < 1e-4, (
        f"you said {float(lazy_dice):.3f}, expected {expected:.3f}: {empty} of the {len(masks)} masks are "
        "empty, and predicting nothing on an empty mask scores Dice 1 there (0 everywhere else)"
    )
    _passed("empty_image_dice")


# Notebook 03: Carvana binary


def _edge_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels whose (2 width + 1)-square neighbourhood in targets (N, 1, H, W) holds both 0 and 1."""
    import torch.nn.functional as F

    size = 2 * width + 1
    return F.max_pool2d(targets, size, 1, width) != -F.max_pool2d(-targets, size, 1, width)


def _edge_dice_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(preds, targets, width): blobs with ragged predicted edges; the second set's cars touch the border."""
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


def check_edge_dice(edge_dice: Callable[..., float]) -> None:
    """Notebook 03: ``edge_dice(preds, targets, width)``, the per-image Dice on the band around the true outline."""
    from unet_tutorial.metrics import dice_score

    def reference(preds, targets, width, band=None):
        band = _edge_band(targets, width) if band is None else band
        return dice_score(preds, targets.masked_fill(~band, 255), ignore_index=255)

    for preds, targets, width in _edge_dice_cases():
        got = float(edge_dice(preds.clone(), targets.clone(), width))
        expected = reference(preds, targets, width)
        if math.isclose(got, expected, abs_tol=1e-6):
            continue
        padded = torch.nn.functional.pad(targets, (width,) * 4)  # zeros outside the photo
        wrong = {
            "every pixel of the image (plain Dice); count only the band around the outline": dice_score(preds, targets),
            "a band outside the car only; the band reaches inside the car as well": reference(
                preds, targets, width, (_edge_band(targets, width) & (targets == 0))
            ),
            "a band inside the car only; the band reaches outside the car as well": reference(
                preds, targets, width, (_edge_band(targets, width) & (targets == 1))
            ),
            "a band one pixel wide; use `width` (a window of 2 * width + 1)": reference(preds, targets, 1),
            "the photo's border as outline: where the car touches the border there is no edge (pad with -inf, as "
            "max_pool2d's padding does, not with zeros)": reference(
                preds, targets, width, _edge_band(padded, width)[..., width:-width, width:-width]
            ),
        }
        for mistake, value in wrong.items():
            if math.isclose(got, value, abs_tol=1e-6) and not math.isclose(value, expected, abs_tol=1e-6):
                raise AssertionError(f"width {width}: you scored {got:.4f}, the Dice of {mistake}")
        raise AssertionError(
            f"width {width}, masks {tuple(targets.shape)}: edge Dice {expected:.4f}, you said {got:.4f}; count the "
            "pixels whose (2 * width + 1)-square neighbourhood in targets holds both car and background, and "
            "average the Dice of each image, as dice_score does"
        )
    _passed("edge_dice")


def _mean_dice_per_view(val_ids: list[str], per_image) -> dict[int, float]:
    views: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        views.setdefault(int(image_id.rsplit("_", 1)[1]), []).append(float(dice))
    return {view: sum(scores) / len(scores) for view, scores in sorted(views.items())}


def check_worst_views(worst_views, val_ids: list[str], per_image) -> None:
    """Notebook 03: the three views ("<car>_<view>", 1..16) with the lowest mean validation Dice."""
    view_dice = _mean_dice_per_view(val_ids, per_image)
    ranked = sorted(view_dice, key=view_dice.get)
    got = [int(v) for v in worst_views]
    assert len(got) == 3 and len(set(got)) == 3, f"name three different views, got {list(worst_views)}"
    third = view_dice[ranked[2]]
    if all(v not in view_dice for v in got) or set(got) == {v - 1 for v in ranked[:3]}:
        raise AssertionError(
            f"views are numbered as in the file names, {min(view_dice)} to {max(view_dice)}; you gave {got}"
        )
    if set(got) == set(ranked[-3:]):
        raise AssertionError(f"views {got} have the *highest* mean Dice; sort the other way round")
    worst_images = [
        int(val_ids[i].rsplit("_", 1)[1]) for i in sorted(range(len(per_image)), key=lambda i: per_image[i])[:3]
    ]
    wrong = [v for v in got if v not in view_dice or view_dice[v] > third + 1e-9]
    if wrong and got == worst_images:
        raise AssertionError(
            f"{got} are the views of the three worst *images*; average each view over all "
            "validation cars first, then pick the three lowest means"
        )
    assert not wrong, (
        f"views {wrong} are not among the three with the lowest mean Dice (the third lowest mean is {third:.4f}, "
        f"view {wrong[0]} has {view_dice.get(wrong[0], float('nan')):.4f}); average per_image over the images of "
        "each view (the number after the last '_')"
    )
    print("mean Dice of those views:", {v: round(view_dice[v], 4) for v in got})
    _passed("worst_views")


def _threshold_halves(val_ids: list[str]) -> torch.Tensor:
    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    tune_cars = set(cars[: len(cars) // 2])
    return torch.tensor([i.rsplit("_", 1)[0] in tune_cars for i in val_ids])


def check_threshold_gain(
    threshold_gain: float, val_ids: list[str], val_probs: torch.Tensor, val_masks: torch.Tensor
) -> None:
    """Notebook 03: the Dice gain (tuned threshold minus 0.5) on validation cars the threshold was not tuned on.

    The threshold is the best of 0.05, 0.10, ..., 0.95 on the first half of the sorted validation cars; the gain
    is measured on the other half.
    """
    from unet_tutorial.metrics import dice_score

    tune = _threshold_halves(val_ids)
    if not tune.any():
        print("only one validation car (smoke mode?): no second half to measure on, nothing to check")
        return
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    tuned = max(grid, key=lambda t: dice_score(val_probs[tune] > t, val_masks[tune]))
    test = ~tune

    def gain(rows: torch.Tensor) -> float:
        return dice_score(val_probs[rows] > tuned, val_masks[rows]) - dice_score(val_probs[rows] > 0.5, val_masks[rows])

    expected, in_sample = gain(test), gain(tune)
    got = float(threshold_gain)
    if abs(got - expected) > 1e-4 and abs(got - in_sample) < 1e-4:
        raise AssertionError(
            f"{got:+.4f} is the gain on the cars the threshold ({tuned}) was picked on, which "
            "flatters it; measure it on the other half of the validation cars"
        )
    if abs(got - expected) > 1e-4 and abs(got + expected) < 1e-4:
        raise AssertionError(f"the sign is reversed: Dice at the tuned threshold ({tuned}) minus Dice at 0.5")
    assert abs(got - expected) < 1e-4, (
        f"expected {expected:+.4f} (threshold {tuned}, picked on the {int(tune.sum())} images of the first "
        f"len(val_cars) // 2 of the sorted validation cars val_cars, measured on the others), got {got:+.4f}"
    )
    print(f"threshold {tuned}: {in_sample:+.4f} Dice on the cars it was picked on, {expected:+.4f} on the others")
    _passed("threshold_gain")


# Notebook 04: DenseNet121 transfer


def check_densenet_stage_channels(densenet_stage_channels: Callable[..., list[int]]) -> None:
    """Notebook 04: channels after the stem and after each dense block, against torchvision's DenseNets."""
    from torchvision.models import DenseNet

    from unet_tutorial.densenet_unet import ENCODER_CHANNELS

    got = list(densenet_stage_channels((6, 12, 24, 16)))
    assert got == list(ENCODER_CHANNELS), (
        f"DenseNet121 (block_config=(6, 12, 24, 16)) should give {list(ENCODER_CHANNELS)}, got {got}: e.g. block 1 "
        "gives 64 + 6 * 32 = 256, its transition halves that to 128, block 2 gives 128 + 12 * 32 = 512"
    )
    # DenseNet169 and 201, and two made-up ones; the truth is read off torchvision's modules (no forward pass)
    for config, growth, init in (
        ((6, 12, 32, 32), 32, 64),
        ((6, 12, 48, 32), 32, 64),
        ((2, 3), 12, 16),
        ((1, 1, 1), 8, 24),
    ):
        with torch.device("meta"):  # shapes only: no memory, no time spent initialising weights
            features = DenseNet(growth_rate=growth, block_config=config, num_init_features=init).features
        blocks = [m for name, m in features.named_children() if name.startswith("denseblock")]
        expected = [init] + [b[-1].norm1.num_features + growth for b in (list(blk.values()) for blk in blocks)]
        got = list(densenet_stage_channels(config, growth_rate=growth, num_init_features=init))
        assert got == expected, (
            f"block_config={config}, growth_rate={growth}, num_init_features={init}: "
            f"expected {expected}, got {got}; every transition but the last halves the channels"
        )
    _passed("densenet_stage_channels")


def check_frozen_batchnorm(drift_grad_only: float, drift_fixed: float, model: torch.nn.Module) -> None:
    """Notebook 04: ``requires_grad_(False)`` alone lets the encoder's BatchNorm statistics drift; the fix stops it.

    Args:
        drift_grad_only: the largest change of any encoder ``running_mean`` after a few forward passes in train
            mode, with the encoder frozen by ``requires_grad_(False)`` only.
        drift_fixed: the same, measured after the fix.
        model: the ``DenseNetUNet`` with the fix applied, in train mode (as ``fit`` leaves it).
    """
    import copy

    from torch import nn

    assert float(drift_grad_only) > 0, (
        f"you measured a drift of {float(drift_grad_only)} with requires_grad_(False) only; look again: BatchNorm "
        "in train mode moves running_mean and running_var towards each batch's statistics on every forward pass, "
        "gradients or not (compare the encoder's buffers before and after a few forward passes in model.train())"
    )
    assert float(drift_fixed) == 0, (
        f"after the fix the running statistics still moved by {float(drift_fixed)}: the encoder's BatchNorm layers "
        "must be in eval mode while the model trains"
    )
    assert model.training, (
        "the model is in eval mode: that stops the drift, but fit calls model.train() before every epoch, and it "
        "would also stop the decoder's BatchNorm from learning; fix the encoder alone, so that it survives "
        "model.train()"
    )

    def norms(module: nn.Module) -> list[nn.Module]:
        return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    # What fit does: model.train(), then forward passes. Tried on a copy, so the learner's model stays as it was.
    trial = copy.deepcopy(model)
    encoder = norms(trial.encoder)
    before = [b.clone() for norm in encoder for b in (norm.running_mean, norm.running_var)]
    with torch.no_grad():
        trial.train()(torch.randn(2, 3, 64, 64, device=next(trial.parameters()).device))
    after = [b for norm in encoder for b in (norm.running_mean, norm.running_var)]
    assert all(torch.equal(x, y) for x, y in zip(before, after)), (
        "after model.train() and a forward pass, the encoder's running statistics moved: the encoder's BatchNorm "
        "layers must normalise in eval mode while the model trains, and stay so through every model.train()"
    )
    training = [norm for norm in encoder if norm.training or not norm.track_running_stats]
    assert not training, (
        f"{len(training)} of the encoder's {len(encoder)} BatchNorm layers still normalise with each batch's own "
        "statistics during training (train mode, or track_running_stats=False), so the decoder's input still "
        "changes with the batch; stopping the running statistics (momentum=0) is not enough: put them in eval mode"
    )
    decoder = [m for m in norms(trial) if all(m is not e for e in encoder)]
    assert all(norm.training for norm in decoder), (
        "the decoder's BatchNorm layers are in eval mode after model.train(): fix the encoder's layers only"
    )
    print(f"requires_grad_(False) alone: running means moved by up to {float(drift_grad_only):.3g}; with the fix: 0")
    _passed("frozen_batchnorm")


# Notebook 05: ADE20K, 150 classes


def check_median_frequency_weights(median_frequency_weights: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Notebook 05: median-frequency class weights ``median(f) / f_c`` from pixel counts per class."""
    from unet_tutorial.losses import class_weights

    counts = torch.tensor([60, 30, 10])  # f = 0.6, 0.3, 0.1; the median is 0.3
    got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
    assert got.shape == (3,), f"one weight per class: expected shape (3,), got {tuple(got.shape)}"
    expected = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-5), (
        f"counts {counts.tolist()} give frequencies 0.6, 0.3, 0.1 with median 0.3, so weights 0.3 / f = "
        f"{expected.tolist()}; got {got.tolist()}"
    )
    counts = torch.tensor([10, 20, 30, 40])  # an even count: the median is the mean of the middle two, 0.25
    got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
    expected = torch.tensor([2.5, 1.25, 0.25 / 0.3, 0.625], dtype=torch.float64)
    assert torch.allclose(got, expected, rtol=1e-4), (
        f"counts {counts.tolist()} (frequencies 0.1 .. 0.4): the median of an even number of values is the mean of "
        f"the middle two, 0.25, so the weights are {[round(w, 4) for w in expected.tolist()]}; got "
        f"{[round(w, 4) for w in got.tolist()]} (torch.median returns the lower middle value; quantile(0.5) does not)"
    )
    for counts in (torch.tensor([500, 0, 20, 3, 90, 0, 7]), torch.tensor([1, 2, 0, 1000])):
        masks = torch.repeat_interleave(torch.arange(len(counts)), counts)  # one "pixel" per count
        expected = class_weights(masks, len(counts), method="median").double()
        got = torch.as_tensor(median_frequency_weights(counts), dtype=torch.float64)
        assert torch.allclose(got, expected, rtol=1e-4), (
            f"counts {counts.tolist()}: expected {[round(w, 4) for w in expected.tolist()]} (the package's "
            f"class_weights), got {[round(w, 4) for w in got.tolist()]}. Take the median over the classes that "
            "occur only; a class with count 0 gets the largest weight of the others (not inf)."
        )
    _passed("median_frequency_weights")


WINNERS = ("plain", "weighted", "tie")


def check_weighting_effect(
    frequent_winner: str,
    rare_winner: str,
    confusion_plain: torch.Tensor,
    confusion_weighted: torch.Tensor,
    train_share: torch.Tensor,
) -> None:
    """Notebook 05: which loss has the higher mean IoU on the frequent and on the rare half of the classes.

    The classes present in the validation masks (rows of the confusion matrices with pixels), sorted by their share
    of the training pixels, most frequent first (a stable sort), are cut in two: the first ``len // 2`` are the
    frequent half, the rest the rare half. A difference of the mean IoUs under 0.005 is a tie.
    """
    from unet_tutorial.metrics import iou_per_class

    for name, answer in (("frequent_winner", frequent_winner), ("rare_winner", rare_winner)):
        assert answer in WINNERS, f"{name} should be one of {WINNERS}, got {answer!r}"
    truth = confusion_plain.sum(1)  # (C,) validation pixels per class
    order = torch.argsort(torch.as_tensor(train_share, dtype=torch.float64), descending=True, stable=True)
    present = [k for k in order.tolist() if truth[k] > 0]
    assert len(present) >= 2, "at least two classes must occur in the validation masks to compare halves"
    half = len(present) // 2
    iou_plain, iou_weighted = iou_per_class(confusion_plain), iou_per_class(confusion_weighted)
    lines = []
    halves = (("frequent", frequent_winner, present[:half]), ("rare", rare_winner, present[half:]))
    for label, answer, classes in halves:
        plain, weighted = iou_plain[classes].mean().item(), iou_weighted[classes].mean().item()
        winner = "tie" if abs(plain - weighted) < 0.005 else ("plain" if plain > weighted else "weighted")
        assert answer == winner, (
            f"on the {label} half ({len(classes)} classes) the winner is not {answer!r}. Sort the classes of the "
            "validation masks by their training share, cut the list in two, average each arm's per-class IoU over "
            "each half, and call a difference under 0.005 a tie"
        )
        lines.append(f"{label} half ({len(classes)} classes): plain {plain:.3f}, weighted {weighted:.3f} -> {winner}")
    print("\n".join(lines))
    _passed("weighting_effect")


def check_annotation_resolution(
    at_network: float,
    at_annotation: float,
    model: torch.nn.Module,
    root,
    short_side: int,
    *,
    limit: int | None = None,
    seed: int = 0,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    device="cpu",
) -> None:
    """Notebook 05: validation mIoU counted at the network's resolution (masks resized with the images, nearest)
    and at the annotation's (masks as stored, logits upsampled), over ``ADE20KDataset(root, "validation",
    limit=limit, seed=seed)`` with the images resized to ``short_side``."""
    from torch.utils.data import DataLoader

    from unet_tutorial.data import ADE20KDataset
    from unet_tutorial.train import evaluate
    from unet_tutorial.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms

    mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    truth = {}
    for name, keep_mask in (("network", False), ("annotation", True)):
        transform = eval_transforms(None, mean, std, short_side=short_side, keep_mask=keep_mask)
        loader = DataLoader(ADE20KDataset(root, "validation", transform, limit=limit, seed=seed), batch_size=1)
        truth[name] = evaluate(model, loader, device, num_classes=150, ignore_index=255, progress=False)["miou"]

    gap = abs(truth["network"] - truth["annotation"])

    def close(got: float, expected: float) -> bool:  # tight enough to tell the two apart, however near they are
        return abs(float(got) - expected) <= max(1e-5, min(0.01 * abs(expected), gap / 3))

    if (
        close(at_network, truth["annotation"])
        and close(at_annotation, truth["network"])
        and not close(at_network, truth["network"])
    ):
        raise AssertionError(
            "the two numbers are swapped: at the network's resolution the mask is resized with the "
            "image; at the annotation's the mask stays as stored and the logits are upsampled"
        )
    assert close(at_annotation, truth["annotation"]), (
        f"at annotation resolution the mIoU is {truth['annotation']:.4f}, you said {float(at_annotation):.4f}: keep "
        "the masks at their own size (eval_transforms(..., keep_mask=True), as the notebook's val_loader does) and "
        "let evaluate upsample the logits to them"
    )
    assert close(at_network, truth["network"]), (
        f"at the network's resolution the mIoU is {truth['network']:.4f}, you said {float(at_network):.4f}: resize "
        "the masks with the images (eval_transforms(None, short_side=..., ...) without keep_mask: nearest neighbour)"
    )
    diff = truth["network"] - truth["annotation"]
    print(
        f"mIoU at the network's resolution {truth['network']:.4f}, at the annotation's {truth['annotation']:.4f} "
        f"(network minus annotation: {diff:+.4f}): only the second is the benchmark's number, counted on the labels "
        "as drawn"
    )
    _passed("annotation_resolution")


def _padding_share(
    image_size: tuple[int, int], crop_size: int | tuple[int, int], short_side: int, scale: tuple[float, float]
) -> float:
    """The expected share of padding in ``transforms.scale_crop_transforms`` crops of one image of ``image_size``.

    Each of the 65 zooms is equally likely; a side shorter than the crop is padded up to it, and the crop then
    keeps all of that side, so a crop holds ``min(h, crop_h) * min(w, crop_w)`` image pixels.
    """
    height, width = image_size
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    low, high = sorted(scale)
    sides = sorted({max(1, round(short_side * (low + (high - low) * i / 64))) for i in range(65)})
    shares = []
    for side in sides:
        factor = side / min(height, width)
        h, w = round(height * factor), round(width * factor)
        shares.append(1 - min(h, crop_h) * min(w, crop_w) / (crop_h * crop_w))
    return sum(shares) / len(shares)


def check_padding_share(
    share: float,
    *,
    image_size: tuple[int, int] = (512, 683),
    crop_size: int = 512,
    short_side: int = 384,
    scale: tuple[float, float] = (0.5, 2.0),
) -> None:
    """Notebook 05: the share of padded (ignored) pixels in the training crops of ``scale_crop_transforms`` for a
    photo of ``image_size`` (height, width), measured over a few hundred crops (within 0.05)."""
    expected = _padding_share(image_size, crop_size, short_side, scale)
    low, high = sorted(scale)
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    # the zooms at which the resized photo is smaller than the crop in height or width
    needs = min(max(crop_h / image_size[0], crop_w / image_size[1]) * min(image_size) / short_side, high)
    padded_crops = max(needs - low, 0) / (high - low)
    share = float(share)
    assert 0 <= share <= 1, f"a share is between 0 and 1, got {share}"
    if abs(share - padded_crops) < 0.02 and abs(expected - padded_crops) > 0.06:
        raise AssertionError(
            f"{share:.3f} is about the share of crops that hold some padding ({padded_crops:.3f}); "
            "the question is the share of pixels: average the padded fraction of each crop"
        )
    assert abs(share - expected) <= 0.05, (
        f"the crops are {expected:.1%} padding on average, you measured {share:.1%}. Pass the photo's own label "
        "(a mask with no 255 in it, e.g. zeros) through scale_crop_transforms(crop_size, short_side, scale): every "
        "255 in the output mask is then padding; average over a few hundred crops"
    )
    print(
        f"{share:.1%} of the crops' pixels are padding (expected {expected:.1%}); "
        f"{padded_crops:.0%} of the crops hold some"
    )
    _passed("padding_share")
