"""Inference: masks at the original size, flip TTA, sliding windows, and RLE against Carvana's format."""

import csv

import numpy as np
import pytest
import torch
from torch import nn

from unet_tutorial.course.sample_data import make_carvana_like
from unet_tutorial.data import rle_decode, rle_encode
from unet_tutorial.model import UNet
from unet_tutorial.predict import (
    blend_window,
    predict_loader,
    predict_mask,
    predict_probs,
    probs_to_mask,
    sliding_window_mask,
    sliding_window_predict,
    tile_starts,
)
from unet_tutorial.readers import read_label
from unet_tutorial.utils import data_root


def pointwise(num_classes=1):
    """A 1x1 convolution: every pixel's output depends on that pixel only, so tiling cannot change it."""
    torch.manual_seed(0)
    return nn.Conv2d(3, num_classes, 1)


def test_predict_mask_returns_the_original_size_for_both_kinds():
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    binary = predict_mask(UNet(base_channels=4, depth=2), image, image_size=32)
    assert binary.shape == (45, 70) and set(binary.unique().tolist()) <= {0, 1}
    mask, probs = predict_mask(
        UNet(num_classes=5, base_channels=4, depth=2), image, image_size=(32, 48), return_probs=True
    )
    assert mask.shape == (45, 70) and probs.shape == (5, 45, 70) and mask.max() < 5
    torch.testing.assert_close(probs.sum(0), torch.ones(45, 70))
    assert torch.equal(mask, probs.argmax(0))


def test_predict_mask_thresholds_probabilities():
    model = pointwise()
    image = torch.randn(3, 16, 16)
    mask, probs = predict_mask(model, image, return_probs=True, threshold=0.7)
    assert torch.equal(mask, (probs[0] > 0.7).long())
    torch.testing.assert_close(probs[0], model(image[None])[0, 0].sigmoid())


def test_flip_tta_averages_with_the_mirrored_prediction():
    model = UNet(num_classes=3, base_channels=4, depth=2).eval()
    images = torch.randn(2, 3, 32, 32)
    plain = predict_probs(model, images)
    mirrored = predict_probs(model, images.flip(-1)).flip(-1)
    torch.testing.assert_close(predict_probs(model, images, tta=True), (plain + mirrored) / 2)


def test_predict_loader_gathers_small_masks_and_probs_in_order():
    from torch.utils.data import DataLoader, TensorDataset

    model = pointwise()
    images = torch.randn(5, 3, 6, 7)
    masks = (torch.rand(5, 1, 6, 7) > 0.5).float()
    got_masks, got_probs = predict_loader(model, DataLoader(TensorDataset(images, masks), batch_size=2), tta=True)
    assert got_masks.dtype == torch.uint8 and got_probs.dtype == torch.float16
    assert got_masks.shape == got_probs.shape == (5, 1, 6, 7)
    assert torch.equal(got_masks, masks.to(torch.uint8))
    torch.testing.assert_close(got_probs.float(), predict_probs(model, images, tta=True), atol=1e-3, rtol=0)


def test_tiles_cover_the_image_and_the_window_is_positive():
    assert tile_starts(100, 32, 24) == [0, 24, 48, 68] and tile_starts(20, 32, 24) == [0]
    window = blend_window(8, 8)
    assert window.min() > 0 and window[4, 4] > window[0, 0]


@pytest.mark.parametrize("size", [(100, 75), (20, 30)])  # bigger than a tile, and smaller
def test_sliding_window_equals_whole_image_for_a_pointwise_model(size):
    model = pointwise(num_classes=4)
    image = torch.randn(3, *size)
    whole = predict_probs(model, image[None])[0]
    tiled = sliding_window_predict(model, image, tile=32, overlap=0.25, batch_size=3)
    assert tiled.shape == (4, *size)
    torch.testing.assert_close(tiled, whole)


@pytest.mark.parametrize("num_classes, size", [(1, (100, 75)), (5, (70, 41)), (3, (20, 30))])
def test_sliding_window_mask_equals_the_mask_of_the_blended_probs(num_classes, size):
    model = UNet(num_classes=num_classes, base_channels=4, depth=2).eval()
    image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    expected = probs_to_mask(sliding_window_predict(model, image, tile=32, overlap=0.25), threshold=0.4)
    mask = sliding_window_mask(model, image, tile=32, overlap=0.25, threshold=0.4)
    assert mask.dtype == torch.uint8 and torch.equal(mask.long(), expected)


def test_sliding_window_mask_never_holds_full_size_probabilities(monkeypatch):
    from unet_tutorial import predict

    seen = []

    def recording(probs, threshold=0.5):
        seen.append(tuple(probs.shape))
        return probs_to_mask(probs, threshold)

    monkeypatch.setattr(predict, "probs_to_mask", recording)
    mask = sliding_window_mask(pointwise(num_classes=150), torch.randn(3, 200, 40), tile=32, overlap=0.5)
    assert mask.shape == (200, 40)
    assert len(seen) > 5 and max(rows for _, rows, _ in seen) <= 32  # strips of at most a tile's height


def test_sliding_window_never_makes_a_full_size_float_copy_of_a_uint8_image(monkeypatch):
    from unet_tutorial import predict

    largest = []

    def recording(image, *args, **kwargs):
        largest.append(image.shape[0] * image.shape[1])  # (H, W, 3) or (3, H, W): at least the pixels
        return to_input(image, *args, **kwargs)

    to_input = predict.to_input
    monkeypatch.setattr(predict, "to_input", recording)
    image = np.random.default_rng(0).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    mask = sliding_window_mask(pointwise(num_classes=2), image, tile=32, overlap=0.25)
    assert mask.shape == (90, 70) and max(largest) <= 32 * 32, "the image is normalised tile by tile"
    monkeypatch.undo()
    expected = probs_to_mask(predict_probs(pointwise(num_classes=2), predict.to_input(image)[None])[0])
    assert torch.equal(mask.long(), expected), "the same mask as normalising the whole image first"


def test_sliding_window_runs_a_unet_on_uint8_images_with_tta():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    probs = sliding_window_predict(UNet(base_channels=4, depth=2), image, tile=32, tta=True)
    mask = probs_to_mask(probs)
    assert probs.shape == (1, 50, 70) and mask.shape == (50, 70) and 0 <= probs.min() <= probs.max() <= 1


def test_rle_hand_example_and_round_trip():
    mask = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]])
    # row-major, 1-indexed: pixels 2, 3, 4 are one run, pixel 9 another
    assert rle_encode(mask) == "2 3 9 1"
    assert np.array_equal(rle_decode("2 3 9 1", (3, 3)), mask)
    assert rle_encode(np.zeros((4, 4))) == "" and not rle_decode("", (4, 4)).any()
    random_mask = (np.random.default_rng(0).random((37, 53)) > 0.6).astype(np.uint8)
    assert np.array_equal(rle_decode(rle_encode(torch.from_numpy(random_mask)), (37, 53)), random_mask)
    with pytest.raises(ValueError, match="outside a 3x3 mask"):
        rle_decode("8 5", (3, 3))


def test_rle_of_carvanas_first_training_row_lies_on_a_centred_car():
    # The first three runs of 00087a6bd4dc_01 in Carvana's train_masks.csv (images are 1280 x 1918).
    mask = rle_decode("879386 40 881253 141 883140 205", (1280, 1918))
    rows, cols = np.nonzero(mask)
    assert set(rows.tolist()) == {458, 459, 460}
    assert abs(cols.mean() - 1918 / 2) < 15  # centred: row-major order; column-major would put it at the edge


def check_csv_against_gifs(root, limit=None):
    with open(root / "train_masks.csv") as f:
        rows = list(csv.DictReader(f))[:limit]
    for row in rows:
        gif = read_label(root / "train_masks" / row["img"].replace(".jpg", "_mask.gif"))
        assert np.array_equal(rle_decode(row["rle_mask"], gif.shape), (gif > 0).astype(np.uint8)), row["img"]
        assert rle_encode(gif) == row["rle_mask"]


def test_rle_matches_train_masks_csv_of_the_generated_carvana(tmp_path):
    root = make_carvana_like(tmp_path, n_cars=1, views=2, size=(48, 64))
    check_csv_against_gifs(root)


@pytest.mark.slow
def test_rle_matches_the_real_train_masks_csv():
    root = data_root() / "carvana"
    if not (root / "train_masks.csv").exists():
        pytest.skip(f"no real Carvana data under {root}")
    check_csv_against_gifs(root, limit=20)
