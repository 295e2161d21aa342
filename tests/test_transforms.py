"""transforms.py: shapes, normalisation, and masks that keep their label set (nearest, padded with the fill)."""

import numpy as np
import pytest
import torch

from unet_tutorial.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms


def _sample(h=50, w=70, labels=(0, 3, 7, 149, 255), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.choice(np.array(labels, np.uint8), size=(h, w))
    return image, mask


@pytest.mark.parametrize("crop", ["random_resized", "resize"])
def test_train_keeps_mask_values(crop):
    image, mask = _sample()
    t = train_transforms((32, 48), crop=crop, rotate=30, shift=0.2)
    for seed in range(10):
        out = t(image=image, mask=mask)
        assert out["image"].shape == (3, 32, 48) and out["image"].dtype == torch.float32
        assert out["mask"].shape == (32, 48)
        assert set(out["mask"].unique().tolist()) <= {0, 3, 7, 149, 255}, f"new mask values (seed {seed})"


def test_binary_masks_stay_binary_with_fill_zero():
    image, mask = _sample(labels=(0, 1))
    t = train_transforms(40, rotate=45, shift=0.3, mask_fill=0)
    for _ in range(10):
        assert set(t(image=image, mask=mask)["mask"].unique().tolist()) <= {0, 1}


def test_eval_is_deterministic_and_normalised():
    image, mask = _sample()
    t = eval_transforms((25, 35))
    a, b = t(image=image, mask=mask), t(image=image, mask=mask)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    expected = (image[0, 0] / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    resized_corner = eval_transforms(None)(image=image, mask=mask)["image"][:, 0, 0]
    torch.testing.assert_close(resized_corner, torch.tensor(expected, dtype=torch.float32), atol=1e-4, rtol=0)
    # Nearest neighbour picks real pixels: every output label is an input label.
    assert set(a["mask"].unique().tolist()) <= set(np.unique(mask).tolist())


def test_eval_keep_aspect_pads_with_ignore():
    image, mask = _sample(h=20, w=40, labels=(1, 2))
    out = eval_transforms(32, keep_aspect=True)(image=image, mask=mask)
    assert out["image"].shape == (3, 32, 32)
    assert (out["mask"][0] == 255).all() and (out["mask"][-1] == 255).all()  # padded rows above and below
    assert set(out["mask"][16].unique().tolist()) <= {1, 2}


def test_no_normalisation_keeps_unit_range():
    image, mask = _sample()
    out = eval_transforms(None, mean=None, std=None)(image=image, mask=mask)
    torch.testing.assert_close(out["image"], torch.from_numpy(image).permute(2, 0, 1).float() / 255)


def test_bad_arguments():
    with pytest.raises(ValueError, match="crop must be"):
        train_transforms(32, crop="center")
    with pytest.raises(ValueError, match="both mean and std"):
        eval_transforms(32, mean=None)
    with pytest.raises(ValueError, match="size must be positive"):
        eval_transforms((0, 5))
