"""transforms.py: shapes, normalisation, and masks that keep their label set (nearest, padded with the fill)."""

import cv2
import numpy as np
import pytest
import torch

from unet_tutorial.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transforms,
    resize_image,
    scale_crop_transforms,
    train_transforms,
)


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


def test_scale_crop_zooms_0_5_to_2_of_the_short_side_and_pads_masks_with_255():
    # A square image whose mask is all class 1: after the zoom its short side is 16 * s, which fits the 32-pixel
    # crop, so the crop holds (16 s)^2 mask pixels and the rest is padding (255).
    t = scale_crop_transforms(crop_size=32, short_side=16, scale=(0.5, 2.0), color_jitter=0, mean=None, std=None)
    image, mask = np.full((40, 40, 3), 200, np.uint8), np.ones((40, 40), np.uint8)
    zooms = []
    for _ in range(150):
        out = t(image=image, mask=mask)
        assert out["image"].shape == (3, 32, 32) and out["mask"].shape == (32, 32)
        assert set(out["mask"].unique().tolist()) <= {1, 255}
        assert (out["image"][:, out["mask"] == 255] == 0).all()  # padded image pixels are 0
        zooms.append((out["mask"] == 1).sum().item() ** 0.5 / 16)
    assert min(zooms) == pytest.approx(0.5, abs=0.07) and max(zooms) == pytest.approx(2.0, abs=0.07)
    assert min(zooms) < 0.7 and max(zooms) > 1.8 and 0.9 < np.median(zooms) < 1.6  # spread over the range
    # A wide image is zoomed by its short side too: 20x40 at zoom 1 becomes 16x32.
    out = scale_crop_transforms(64, 16, (1.0, 1.0), mean=None, std=None)(image=image[:20, :], mask=mask[:20, :])
    assert (out["mask"] == 1).sum().item() == 16 * 32


def test_one_resize_area_when_shrinking_bilinear_when_enlarging():
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        resize_image(image, (20, 30)), cv2.resize(image, (30, 20), interpolation=cv2.INTER_AREA)
    )
    np.testing.assert_array_equal(
        resize_image(image, (80, 120)), cv2.resize(image, (120, 80), interpolation=cv2.INTER_LINEAR)
    )
    # Training ("resize") and evaluation use the same resize.
    mask = np.zeros((40, 60), np.uint8)
    train = train_transforms((20, 30), crop="resize", hflip=0, rotate=0, shift=0, color_jitter=0)
    torch.testing.assert_close(train(image=image, mask=mask)["image"], eval_transforms((20, 30))(image=image)["image"])


def test_eval_short_side_and_keep_mask():
    image, mask = _sample(h=30, w=45)
    out = eval_transforms(None, short_side=20, keep_mask=True)(image=image, mask=mask)
    assert out["image"].shape == (3, 20, 30)
    np.testing.assert_array_equal(np.asarray(out["mask"]), mask)  # the annotation keeps its own size


def _edge_offsets(transform, shape=(160, 240), edges=range(60, 180, 7)) -> list[float]:
    """How far right of the image's edge the mask's lies, in pixels, for vertical step edges (car on the right).

    On the middle row the edge's position is the row's length minus its sum, for the image's values in [0, 1]
    (sub-pixel) and for the mask's 1s (padding, 255, left out), so the two are measured alike.
    """
    offsets = []
    for edge in edges:
        image = np.zeros((*shape, 3), np.uint8)
        image[:, edge:] = 255
        mask = (image[..., 0] > 0).astype(np.uint8)
        out = transform(image=image, mask=mask)
        row_image = np.asarray(out["image"])[0, out["image"].shape[1] // 2]  # (W,): channel 0, middle row
        row_mask = np.asarray(out["mask"])[out["mask"].shape[0] // 2] == 1
        if row_mask.all() or not row_mask.any():  # the edge left the picture
            continue
        offsets.append(float(row_image.sum() - row_mask.sum()))
    return offsets


@pytest.mark.parametrize(
    "make",
    [
        lambda: eval_transforms((96, 144), mean=None, std=None),
        lambda: eval_transforms((96, 144), mean=None, std=None, keep_aspect=True),
        lambda: eval_transforms(None, mean=None, std=None, short_side=72),
        lambda: eval_transforms((400, 600), mean=None, std=None),
        lambda: train_transforms((96, 144), crop="random_resized", hflip=0, mean=None, std=None),
        lambda: scale_crop_transforms(64, short_side=72, scale=(1, 2), hflip=0, color_jitter=0, mean=None, std=None),
    ],
    ids=["eval-shrink", "eval-keep-aspect", "eval-short-side", "eval-enlarge", "train-random-resized", "scale-crop"],
)
def test_a_resized_mask_stays_on_its_image(make):
    """Masks resized on pixel centres, like the image: OpenCV's INTER_NEAREST moved edges right by 0.4 px.

    Four draws of each transform: one draw of a random crop's scale left the mean of its 15 or so offsets past 0.2
    once in twenty runs; four make that chance negligible without loosening the bar."""
    offsets = [offset for _ in range(4) for offset in _edge_offsets(make())]
    assert len(offsets) > 5 and max(map(abs, offsets)) <= 1 and abs(np.mean(offsets)) < 0.2, offsets


def test_an_affine_warp_keeps_the_mask_on_its_image():
    transform = train_transforms((160, 240), crop="resize", hflip=0, rotate=0, shift=0.05, mean=None, std=None)
    offsets = []
    for seed in range(8):
        np.random.seed(seed)
        offsets += _edge_offsets(transform, edges=range(80, 160, 20))
    assert len(offsets) > 5 and max(map(abs, offsets)) <= 1 and abs(np.mean(offsets)) < 0.2, offsets


def test_a_seeded_pipeline_repeats_its_crops_and_an_unseeded_one_need_not():
    from unet_tutorial.transforms import scale_crop_transforms, seed_pipeline

    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), np.uint8)

    def crops(seed):
        pipeline = scale_crop_transforms(32, short_side=48, scale=(0.5, 2.0), mean=None, std=None)
        if seed is not None:
            seed_pipeline(pipeline, seed)
        return [pipeline(image=image, mask=mask)["image"] for _ in range(4)]

    assert all(torch.equal(a, b) for a, b in zip(crops(0), crops(0)))
    assert not all(torch.equal(a, b) for a, b in zip(crops(0), crops(1)))
    seed_pipeline(lambda **kw: kw, 0)  # a plain function has no generators: left alone
