"""Every exercise self-check rejects a known-wrong answer (the right answers run in tests/test_notebooks.py)."""

import inspect
import random

import numpy as np
import pytest
import torch

from unet_tutorial import exercises


def double_conv_params_with_bias(in_channels, out_channels):
    return 9 * in_channels * out_channels + out_channels + 9 * out_channels**2 + out_channels + 4 * out_channels


def iou_as_recall(confusion):
    confusion = confusion.double()
    return confusion.diagonal() / confusion.sum(1)  # TP / (TP + FN): forgets the false positives


def split_on_first_underscore(ids, val_fraction, seed=0):
    cars = sorted({i.split("_", 1)[0] for i in ids})
    random.Random(seed).shuffle(cars)
    val_cars = set(cars[:max(1, round(val_fraction * len(cars)))])
    return ([i for i in ids if i.split("_", 1)[0] not in val_cars], [i for i in ids if i.split("_", 1)[0] in val_cars])


def split_by_image(ids, val_fraction, seed=0):
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    cut = round(val_fraction * len(ids))
    return shuffled[cut:], shuffled[:cut]


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


def stage_channels_without_halving(block_config, growth_rate=32, num_init_features=64):
    channels, count = [num_init_features], num_init_features
    for layers in block_config:
        count += layers * growth_rate
        channels.append(count)
    return channels


def one_group_optimizer(model, lr_encoder, lr_decoder):
    return torch.optim.AdamW(model.parameters(), lr=lr_decoder)


def mean_frequency_weights(counts):
    freq = counts.double() / counts.sum()
    return freq.mean() / freq.clamp(min=1e-12)


def dice_not_ignoring(logits, targets, ignore_index=255, smooth=1.0):
    from unet_tutorial.losses import dice_loss

    return dice_loss(logits, targets.clamp(max=logits.shape[1] - 1), smooth=smooth)


def starts_without_last_tile(length, tile, stride):
    return list(range(0, max(length - tile, 0) + 1, stride))  # leaves the end uncovered when stride does not fit


# Probabilities where the best threshold is clearly below 0.5: the object's pixels sit at 0.3.
LOW_MASKS = torch.zeros(4, 1, 8, 8)
LOW_MASKS[:, :, 2:5, 2:5] = 1
LOW_PROBS = torch.where(LOW_MASKS > 0, 0.3, 0.02)
EMPTY_HALF = LOW_MASKS.clone()
EMPTY_HALF[:2] = 0

WRONG_ANSWERS = {
    "check_double_conv_params": [(double_conv_params_with_bias,)],
    "check_depth_to_see": [(4,), (6,), (5, 128)],
    "check_pooling_round_trip": [(2, LOW_MASKS), (4, LOW_MASKS)],
    "check_iou_from_confusion": [(iou_as_recall,)],
    "check_best_threshold": [(0.5, LOW_PROBS, LOW_MASKS), (0.95, LOW_PROBS, LOW_MASKS)],
    "check_empty_image_dice": [(0.0, EMPTY_HALF), (1.0, EMPTY_HALF)],
    "check_split_by_car": [(split_on_first_underscore,), (split_by_image,)],
    "check_worst_views": [([9, 10, 11], VIEW_IDS, PER_IMAGE), ([1, 2, 3], VIEW_IDS, PER_IMAGE),
                          ([2, 3], VIEW_IDS, PER_IMAGE), ([2, 3, 9], VIEW_IDS, PER_IMAGE)],
    "check_threshold_gain": [(1.0, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS),  # measured where it was tuned
                             (-1 / 3, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS),
                             (0.0, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS)],
    "check_densenet_stage_channels": [(stage_channels_without_halving,)],
    "check_two_group_optimizer": [(one_group_optimizer,)],
    "check_median_frequency_weights": [(mean_frequency_weights,)],
    "check_multiclass_dice": [(dice_not_ignoring,)],
    "check_window_starts": [(starts_without_last_tile,)],
}
CASES = [(name, args) for name, answers in WRONG_ANSWERS.items() for args in answers]


def test_every_self_check_has_a_wrong_answer():
    checks = {name for name, _ in inspect.getmembers(exercises, inspect.isfunction) if name.startswith("check_")}
    assert checks == set(WRONG_ANSWERS), f"add known-wrong answers for {sorted(checks - set(WRONG_ANSWERS))}"


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_self_check_rejects_a_wrong_answer(name, args, capsys):
    with pytest.raises(AssertionError):
        getattr(exercises, name)(*args)
    assert "passed" not in capsys.readouterr().out


def test_new_self_checks_accept_the_right_answer():
    exercises.check_depth_to_see(5)
    exercises.check_depth_to_see(4, image_size=200)
    exercises.check_best_threshold(0.25, LOW_PROBS, LOW_MASKS)
    exercises.check_empty_image_dice(0.5, EMPTY_HALF)
    exercises.check_pooling_round_trip(1, LOW_MASKS)  # a 3 x 3 square loses a third of itself at once
    exercises.check_worst_views([4, 2, 3], VIEW_IDS, PER_IMAGE)
    exercises.check_threshold_gain(1 / 3, THRESHOLD_IDS, THRESHOLD_PROBS, THRESHOLD_MASKS)
    exercises.check_threshold_gain(float("nan"), THRESHOLD_IDS[:2], THRESHOLD_PROBS[:2], THRESHOLD_MASKS[:2])
