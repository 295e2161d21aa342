"""Every exercise self-check rejects a known-wrong answer (the right answers run in tests/test_notebooks.py)."""

import inspect
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ade20k_fakes import AlwaysWall, thin_lines

from unet_tutorial.course.exercises import (
    carvana,
    edges,
    losses,
    multiclass,
    one_setting,
    param_groups,
    split,
    transfer,
    unet,
)
from unet_tutorial.course.reading import compare

# every notebook's checks under one name, as the tests below were written against one module
exercises = SimpleNamespace(
    **{
        name: value
        for module in (unet, losses, split, carvana, edges, transfer, param_groups, one_setting, multiclass)
        for name, value in vars(module).items()
    }
)


class BilinearUpSkipLast(torch.nn.Module):
    """Right layers, but the skip concatenated after x."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        from unet_tutorial.model import DoubleConv

        self.up = torch.nn.Sequential(
            torch.nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Conv2d(in_channels, in_channels // 2, 1)
        )
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class BilinearUpNearest(BilinearUpSkipLast):
    """Nearest-neighbour up-sampling instead of bilinear."""

    def forward(self, x, skip):
        x = self.up[1](torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
        return self.conv(torch.cat([skip, x], dim=1))


def transposed_up(in_channels, out_channels):
    from unet_tutorial.model import Up

    return Up(in_channels, out_channels)  # section 3's step: the wrong parameter shapes


def fw_iou_by_columns(confusion):
    from unet_tutorial.metrics import iou_per_class

    confusion = confusion.double()
    return float((confusion.sum(0) / confusion.sum() * iou_per_class(confusion).nan_to_num(0.0)).sum())


def plain_mean_iou(confusion):
    from unet_tutorial.metrics import mean_iou

    return mean_iou(confusion)


def fw_iou_without_nan_handling(confusion):
    from unet_tutorial.metrics import iou_per_class

    confusion = confusion.double()
    return float((confusion.sum(1) / confusion.sum() * iou_per_class(confusion)).sum())  # NaN * 0 = NaN


def whole_image_dice(preds, targets, width=3):
    from unet_tutorial.metrics import dice_score

    return dice_score(preds, targets)


def edge_dice_with(band_of):
    """An edge Dice whose band is band_of(targets, width): the learner's possible mistakes."""
    from unet_tutorial.metrics import dice_score

    def edge_dice(preds, targets, width=3):
        return dice_score(preds, targets.masked_fill(~band_of(targets, width), 255), ignore_index=255)

    return edge_dice


def zero_padded_band(targets, width):
    padded = torch.nn.functional.pad(targets, (width,) * 4)  # the photo's border becomes an outline
    return exercises._edge_band(padded, width)[..., width:-width, width:-width]


# Two cars, 16 views each: views 2, 3, 4 are weak on both cars (the right answer); car "a" alone has its three
# worst images at views 9, 10, 11, which the other car gets right.
VIEW_IDS = [f"car_{car}_{view:02d}" for car in "ab" for view in range(1, 17)]
VIEW_DICE = {"a": {2: 0.70, 3: 0.71, 4: 0.72, 9: 0.50, 10: 0.55, 11: 0.60}, "b": {2: 0.70, 3: 0.71, 4: 0.72}}
PER_IMAGE = np.array([VIEW_DICE[i.split("_")[1]].get(int(i[-2:]), 0.99) for i in VIEW_IDS])

# Four cars, two images each: the first two cars' objects sit at probability 0.3 (a low threshold helps a lot
# there), the other two cars' objects half at 0.3, half at 0.6 (it helps less).
THRESHOLD_IDS = [f"{car}_{view:02d}" for car in ("c1", "c2", "c3", "c4") for view in (1, 2)]
THRESHOLD_MASKS = torch.zeros(8, 1, 8, 8)
THRESHOLD_MASKS[:, :, 2:6, 2:6] = 1
THRESHOLD_PROBS = torch.where(THRESHOLD_MASKS > 0, 0.3, 0.02)
THRESHOLD_PROBS[4:, :, 2:4, 2:6] = 0.6


def worst_views_of(val_ids, per_image, worst_images=False):
    """Notebook 03's experiment 4: the three views with the lowest mean Dice (or those of the worst images)."""
    if worst_images:
        return [int(val_ids[i][-2:]) for i in np.argsort(per_image)[:3]]
    views: dict[int, list[float]] = {}
    for image_id, dice in zip(val_ids, per_image):
        views.setdefault(int(image_id.rsplit("_", 1)[1]), []).append(dice)
    return sorted(views, key=lambda v: np.mean(views[v]))[:3]


def held_out_gain(val_ids, val_probs, val_masks, thresholds, measure_on_tune=False):
    """Notebook 03's experiment 6: (the best threshold on the first half of the cars, its gain on the rest)."""
    from unet_tutorial.metrics import dice_score

    cars = sorted({i.rsplit("_", 1)[0] for i in val_ids})
    tune = torch.tensor([i.rsplit("_", 1)[0] in cars[: len(cars) // 2] for i in val_ids])
    tuned = max(thresholds, key=lambda t: dice_score(val_probs[tune] > t, val_masks[tune]))
    rows = tune if measure_on_tune else ~tune
    return tuned, dice_score(val_probs[rows] > tuned, val_masks[rows]) - dice_score(
        val_probs[rows] > 0.5, val_masks[rows]
    )


def stage_channels_without_halving(block_config, growth_rate=32, num_init_features=64):
    channels, count = [num_init_features], num_init_features
    for layers in block_config:
        count += layers * growth_rate
        channels.append(count)
    return channels


def densenet_frozen_by_requires_grad_only():
    from unet_tutorial.densenet_unet import DenseNetUNet

    model = DenseNetUNet(decoder_channels=(16, 8, 8, 8, 4))
    model.encoder.requires_grad_(False)
    return model.train()


def densenet_fixed_by_a_hook():
    model = densenet_frozen_by_requires_grad_only()
    model.register_forward_pre_hook(encoder_batchnorm_to_eval)
    return model.train()


def encoder_batchnorm_to_eval(module, args):  # the notebook's own fix: a forward pre-hook
    for norm in module.encoder_batchnorms():
        norm.eval()


def running_mean_drift(model, batches, reduce="max"):
    """The notebook's measurement: the largest absolute change of an encoder running mean (with reduce="mean",
    the mean change, which the check rejects)."""
    before = torch.cat([norm.running_mean for norm in model.encoder_batchnorms()]).clone()
    model.train()
    with torch.no_grad():
        for images in batches:
            model(images)
    change = (torch.cat([norm.running_mean for norm in model.encoder_batchnorms()]) - before).abs()
    return getattr(change, reduce)().item()


def mean_running_mean_drift(model, batches):
    return running_mean_drift(model, batches, reduce="mean")


def densenet_in_eval_mode():
    model = densenet_frozen_by_requires_grad_only()
    return model.eval()  # stops the drift, but the decoder's BatchNorm too, and fit calls model.train()


def mean_frequency_weights(counts):
    freq = counts.double() / counts.sum()
    return freq.mean() / freq.clamp(min=1e-12)


def lower_median_weights(counts):
    freq = counts.double() / counts.sum()
    present = freq > 0
    weights = freq[present].median() / freq  # torch.median: the lower of the two middle values
    return torch.where(present, weights, weights[present].max())


# Notebook 05, weighting: 4 classes, most frequent first; the plain loss wins the frequent half, the weighted the rare.
TRAIN_SHARE = torch.tensor([0.5, 0.3, 0.15, 0.05])
CONFUSION_PLAIN = torch.tensor([[90, 5, 5, 0], [10, 80, 10, 0], [20, 20, 10, 0], [5, 5, 0, 0]])
CONFUSION_WEIGHTED = torch.tensor([[50, 10, 30, 10], [10, 40, 30, 20], [5, 5, 35, 5], [0, 1, 1, 8]])


def thin_lines_folder() -> Path:
    return thin_lines(Path(tempfile.mkdtemp(prefix="thin_lines_")))


def annotation_resolution_answers(at_network, at_annotation):
    return lambda: (
        at_network,
        at_annotation,
        AlwaysWall(),
        thin_lines_folder(),
        16,
    )


# Probabilities where the best threshold is clearly below 0.5: the object's pixels sit at 0.3.
LOW_MASKS = torch.zeros(4, 1, 8, 8)
LOW_MASKS[:, :, 2:5, 2:5] = 1
LOW_PROBS = torch.where(LOW_MASKS > 0, 0.3, 0.02)
EMPTY_HALF = LOW_MASKS.clone()
EMPTY_HALF[:2] = 0


def densenet_with_encoder_batchnorm(**settings):
    """A DenseNetUNet whose encoder BatchNorm layers were 'frozen' by changing their settings, not their mode."""
    from unet_tutorial.densenet_unet import DenseNetUNet

    model = DenseNetUNet(decoder_channels=(16, 8, 8, 8, 4))
    for norm in model.encoder_batchnorms():
        for name, value in settings.items():
            setattr(norm, name, value)
    return model.train()


# notebook 04, exercise 2: a copy with one setting changed against section 7's, 4 cars of 3 views each
SETTING_CARS = [car for car in "abcd" for _ in range(3)]
SETTING_REFERENCE = np.linspace(0.70, 0.92, 12)
SETTING_MINE = SETTING_REFERENCE + np.array([0.06, 0.05, 0.07, 0.04, 0.06, 0.05, 0.07, 0.06, 0.05, 0.06, 0.04, 0.05])
SETTING_GAP = compare(
    "yours", SETTING_MINE, "section 7's", SETTING_REFERENCE, groups=SETTING_CARS, group_name="cars"
)  # clear: +0.055, a small SE


WRONG_ANSWERS = {
    "check_bilinear_up": [(BilinearUpSkipLast,), (BilinearUpNearest,), (transposed_up,)],
    "check_depth_to_see": [(4,), (6,), (5, 128)],
    "check_pooling_round_trip": [(2, LOW_MASKS), (4, LOW_MASKS)],
    "check_frequency_weighted_iou": [
        (fw_iou_by_columns,),
        (fw_iou_without_nan_handling,),
        (plain_mean_iou,),
    ],
    "check_best_threshold": [(0.5, LOW_PROBS, LOW_MASKS), (0.95, LOW_PROBS, LOW_MASKS)],
    "check_empty_image_dice": [(0.0, EMPTY_HALF), (1.0, EMPTY_HALF)],
    "check_edge_dice": [
        (whole_image_dice,),
        (edge_dice_with(lambda targets, width: exercises._edge_band(targets, 1)),),  # width ignored
        (edge_dice_with(lambda targets, width: exercises._edge_band(targets, width) & (targets == 0)),),  # outside
        (edge_dice_with(zero_padded_band),),
    ],
    "check_worst_views": [
        (lambda val_ids, per_image: worst_views_of(val_ids, per_image, worst_images=True), VIEW_IDS, PER_IMAGE),
        (lambda val_ids, per_image: [1, 2, 3], VIEW_IDS, PER_IMAGE),
        (lambda val_ids, per_image: worst_views_of(val_ids, per_image)[:2], VIEW_IDS, PER_IMAGE),
        ([2, 3, 4], VIEW_IDS, PER_IMAGE),  # the answer, not the function
    ],
    "check_threshold_gain": [
        (lambda *data: held_out_gain(*data, measure_on_tune=True), THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS),
        (lambda *data: (0.3, 1 / 3), THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS),
        (1 / 3, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS),  # the gain, not the function
    ],
    "check_rle_encode": [
        (lambda mask: " ".join(str(n) for n in np.flatnonzero(np.asarray(mask).ravel())),),  # 0-based pixel list
        ("2 2 9 4 20 1",),  # the answer, not the function
    ],
    "check_densenet_stage_channels": [(stage_channels_without_halving,)],
    "check_encoder_decoder_groups": [
        (
            lambda model, a, b: [
                {"name": "encoder", "params": list(model.encoder.parameters()), "lr": a},
                {"name": "decoder", "params": list(model.parameters()), "lr": b},
            ],
        ),  # the encoder twice
        (
            lambda model, a, b: [
                {"name": "encoder", "params": list(model.encoder.parameters()), "lr": a},
                {"name": "decoder", "params": list(model.decoder.parameters()), "lr": b},
            ],
        ),  # no head
        (
            lambda model, a, b: [
                {"name": "encoder", "params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": a},
                {
                    "name": "decoder",
                    "params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")],
                    "lr": b,
                },
            ],
        ),
        (
            lambda model, a, b: (
                model.param_groups(b, a)
                if hasattr(model, "param_groups")
                else [
                    {"name": "encoder", "params": list(model.encoder.parameters()), "lr": b},
                    {
                        "name": "decoder",
                        "params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")],
                        "lr": a,
                    },
                ]
            ),
        ),  # the rates swapped
        ([],),  # an answer, not the function
    ],
    "check_frozen_batchnorm": [
        (mean_running_mean_drift, "fixed"),  # a mean change, not the largest
        (0.2, "fixed"),  # a number, not the function
        (running_mean_drift, "grad_only"),
        (running_mean_drift, "eval"),
        (running_mean_drift, "momentum_zero"),
        (running_mean_drift, "no_running_stats"),
    ],
    "check_one_setting_gap": [
        (
            compare("s", SETTING_REFERENCE, "y", SETTING_MINE, groups=SETTING_CARS),
            SETTING_MINE,
            SETTING_REFERENCE,
            SETTING_CARS,
        ),  # flipped
        (
            compare("y", SETTING_MINE, "s", SETTING_REFERENCE),
            SETTING_MINE,
            SETTING_REFERENCE,
            SETTING_CARS,
        ),  # the noise over images
        (SETTING_GAP, SETTING_REFERENCE, SETTING_REFERENCE, SETTING_CARS),  # nothing changed
        (0.055, SETTING_MINE, SETTING_REFERENCE, SETTING_CARS),  # a number, not the Gap
    ],
    "check_one_setting_prediction": [
        (1e-4, "lower", "the encoder moves as far as before", 1e-4),  # the setting left as it was
        (1e-3, "worse", "the encoder moves ten times as far", 1e-4),  # not one of the three readings
        (1e-3, "lower", "", 1e-4),  # no reason
    ],
    "check_one_setting_verdict": [
        ("lower", "lower", SETTING_GAP),  # the sign read backwards
        ("within the noise", "higher", SETTING_GAP),  # a clear gap called noise
        ("higher", "bigger", SETTING_GAP),  # a prediction that is not a reading
    ],
    "check_median_frequency_weights": [(mean_frequency_weights,), (lower_median_weights,)],
    "check_weighting_effect": [
        (w1, w2, CONFUSION_PLAIN, CONFUSION_WEIGHTED, TRAIN_SHARE)
        for w1, w2 in (("weighted", "weighted"), ("plain", "plain"), ("weighted", "plain"))
    ],
    # swapped; both at the network's resolution; both at the annotation's
    "check_annotation_resolution": [
        annotation_resolution_answers(0.25, 1.0),
        annotation_resolution_answers(1.0, 1.0),
        annotation_resolution_answers(0.25, 0.25),
    ],
    # the share of crops with any padding; no padding; the answer for short side 512 instead of 384
    "check_padding_share": [(0.556,), (0.0,), (0.103,)],
    "check_split_by_car": [(lambda ids, fraction, seed: (ids[: len(ids) // 2], ids[len(ids) // 2 :]),)],  # by image
}
CASES = [(name, args) for name, answers in WRONG_ANSWERS.items() for args in answers]


def test_every_self_check_has_a_wrong_answer():
    checks = {name for name, _ in inspect.getmembers(exercises, inspect.isfunction) if name.startswith("check_")}
    assert checks == set(WRONG_ANSWERS), f"add known-wrong answers for {sorted(checks - set(WRONG_ANSWERS))}"


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_self_check_rejects_a_wrong_answer(name, args, capsys):
    models = {
        "grad_only": densenet_frozen_by_requires_grad_only,
        "fixed": densenet_fixed_by_a_hook,
        "eval": densenet_in_eval_mode,
        "momentum_zero": lambda: densenet_with_encoder_batchnorm(momentum=0.0),
        "no_running_stats": lambda: densenet_with_encoder_batchnorm(track_running_stats=False),
    }
    if callable(args):
        args = args()  # built when the test runs (e.g. a data folder)
    args = tuple(models[a]() if isinstance(a, str) and a in models else a for a in args)  # built when needed
    with pytest.raises(AssertionError):
        getattr(exercises, name)(*args)
    assert "passed" not in capsys.readouterr().out


def test_new_self_checks_accept_the_right_answer():
    exercises.check_depth_to_see(5)
    exercises.check_depth_to_see(4, image_size=200)
    exercises.check_best_threshold(0.25, LOW_PROBS, LOW_MASKS)
    exercises.check_empty_image_dice(0.5, EMPTY_HALF)
    exercises.check_pooling_round_trip(1, LOW_MASKS)  # a 3 x 3 square loses a third of itself at once
    exercises.check_worst_views(worst_views_of, VIEW_IDS, PER_IMAGE)
    exercises.check_threshold_gain(held_out_gain, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS)
    exercises.check_threshold_gain(held_out_gain, THRESHOLD_IDS[:2], THRESHOLD_PROBS[:2], THRESHOLD_MASKS[:2])


def test_notebook_05_self_checks_accept_the_right_answer():
    exercises.check_weighting_effect(-0.2512, 0.1696, CONFUSION_PLAIN, CONFUSION_WEIGHTED, TRAIN_SHARE)  # gaps, w - p
    exercises.check_annotation_resolution(1.0, 0.25, AlwaysWall(), thin_lines_folder(), short_side=16)
    exercises.check_padding_share(0.22)
    exercises.check_padding_share(0.10, short_side=512)


def test_frozen_batchnorm_accepts_both_fixes():
    from unet_tutorial.densenet_unet import DenseNetUNet

    model = DenseNetUNet(decoder_channels=(16, 8, 8, 8, 4))
    model.freeze_encoder()
    exercises.check_frozen_batchnorm(running_mean_drift, model.train())
    model.unfreeze_encoder(train_batchnorm=False)
    exercises.check_frozen_batchnorm(running_mean_drift, model.train())

    hooked = DenseNetUNet(decoder_channels=(16, 8, 8, 8, 4))
    hooked.register_forward_pre_hook(encoder_batchnorm_to_eval)
    exercises.check_frozen_batchnorm(running_mean_drift, hooked.train())  # train() just before: no forward pass since
