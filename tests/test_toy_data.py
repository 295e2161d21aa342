"""Toy data: shapes, value ranges, small foreground, determinism, objects redder than the background."""

import pytest
import torch

from unet_tutorial.course.toy_data import make_small_objects


def test_shapes_ranges_and_small_foreground():
    images, masks = make_small_objects(16, size=64, seed=1)
    assert images.shape == (16, 3, 64, 64) and masks.shape == (16, 1, 64, 64)
    assert images.dtype == masks.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    assert (masks.flatten(1).sum(1) > 0).all(), "every image holds at least one object"
    assert 0.003 < masks.mean() < 0.03, f"the foreground should be small (about 1 %), got {masks.mean():.2%}"


def test_objects_are_redder_and_same_seed_same_data():
    images, masks = make_small_objects(8, size=48, seed=3)
    red_minus_green = images[:, 0] - images[:, 1]  # (N, H, W)
    inside, outside = red_minus_green[masks[:, 0] == 1].mean(), red_minus_green[masks[:, 0] == 0].mean()
    assert inside > outside + 0.3
    again = make_small_objects(8, size=48, seed=3)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    assert not torch.equal(images, make_small_objects(8, size=48, seed=4)[0])


@pytest.mark.parametrize("num_images, size", [(0, 64), (4, 8)])
def test_bad_arguments_name_what_works(num_images, size):
    with pytest.raises(ValueError, match="make_small_objects.*size >= 16"):
        make_small_objects(num_images, size=size)
