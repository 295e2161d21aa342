"""The readers on real Carvana files (../shared/data/carvana, never copied here); skipped where it is absent.

A few files each, so the whole module stays within a few seconds: GIF masks as Kaggle ships them, the RLE of a
real mask, the split by car against Kaggle's metadata.csv, and draft decoding against full decoding.
Point ``UNET_TUTORIAL_REAL_CARVANA`` at another copy to use that instead.
"""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.data import CarvanaDataset, carvana_ids, carvana_split, rle_decode, rle_encode
from unet_tutorial.readers import image_size, read_image, read_label
from unet_tutorial.transforms import eval_transforms, resize_image

REAL = Path(os.environ.get("UNET_TUTORIAL_REAL_CARVANA", Path(__file__).parents[1].parent / "shared/data/carvana"))
pytestmark = pytest.mark.skipif(
    not (REAL / "train_masks").is_dir(), reason=f"no real Carvana data in {REAL} (set UNET_TUTORIAL_REAL_CARVANA)"
)


@pytest.fixture(scope="module")
def first_id():
    return carvana_ids(REAL)[0]


def test_real_gif_masks_are_palette_0_1_and_read_as_labels(first_id):
    path = REAL / "train_masks" / f"{first_id}_mask.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.mode == "P" and gif.size == (1918, 1280)
    mask = read_label(path)
    assert mask.shape == (1280, 1918) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) == {0, 1} and 0.1 < mask.mean() < 0.35  # the car: 12-30 % of the photo
    image = read_image(REAL / "train" / f"{first_id}.jpg")
    assert image.shape == (1280, 1918, 3) and image_size(REAL / "train" / f"{first_id}.jpg") == (1280, 1918)


def test_real_loader_items(first_id):
    dataset = CarvanaDataset(REAL, [first_id], eval_transforms((64, 96)), decode_size=(64, 96))
    images, masks = next(iter(torch.utils.data.DataLoader(dataset, batch_size=1)))
    assert images.shape == (1, 3, 64, 96) and masks.shape == (1, 1, 64, 96)
    assert set(masks.unique().tolist()) == {0.0, 1.0}


def test_rle_round_trip_of_a_real_mask(first_id):
    mask = read_label(REAL / "train_masks" / f"{first_id}_mask.gif")
    rle = rle_encode(mask)
    numbers = np.array(rle.split(), dtype=np.int64)
    assert numbers[1::2].sum() == mask.sum() and (np.diff(numbers[::2]) > 0).all()  # runs cover the car, in order
    assert np.array_equal(rle_decode(rle, mask.shape), mask)
    first = rle_decode(rle, mask.shape).ravel().nonzero()[0][0]  # row-major: the first car pixel's row and column
    assert divmod(int(first), 1918) == divmod(int(numbers[0]) - 1, 1918)


def test_split_by_car_against_kaggles_metadata():
    with open(REAL / "metadata.csv", newline="") as f:
        known = {row["id"] for row in csv.DictReader(f)}
    train_ids, val_ids = carvana_split(REAL, val_fraction=0.15, seed=0)
    train_cars, val_cars = ({i.rsplit("_", 1)[0] for i in ids} for ids in (train_ids, val_ids))
    assert not train_cars & val_cars and train_cars | val_cars <= known
    assert len(val_cars) == round(0.15 * len(train_cars | val_cars)) and len(val_ids) == 16 * len(val_cars)
    assert carvana_split(REAL, val_fraction=0.15, seed=0) == (train_ids, val_ids)


@pytest.mark.parametrize("size", [(128, 192), (320, 480)])
def test_draft_decoding_matches_full_decoding_and_resizing(first_id, size):
    image_path, mask_path = REAL / "train" / f"{first_id}.jpg", REAL / "train_masks" / f"{first_id}_mask.gif"
    draft = read_image(image_path, min_size=size)  # 1/8 (160x240) for 128x192, 1/2 (640x959) for 320x480
    assert draft.shape[0] >= size[0] and draft.shape[1] >= size[1] and draft.shape[0] < 1280
    full = read_image(image_path)
    small, reference = resize_image(draft, size).astype(float), resize_image(full, size).astype(float)
    assert np.abs(small - reference).mean() < 2.5  # grey levels of 0..255 (1.0-1.5 measured at 128x192)
    plain = CarvanaDataset(REAL, [first_id], eval_transforms(size, mean=None, std=None))[0]
    fast = CarvanaDataset(REAL, [first_id], eval_transforms(size, mean=None, std=None), decode_size=size)[0]
    assert fast[0].shape == plain[0].shape == (3, *size) and fast[1].shape == plain[1].shape == (1, *size)
    assert (fast[0] - plain[0]).abs().mean() < 2.5 / 255
    assert (fast[1] != plain[1]).float().mean() < 0.01  # masks nearest both ways: they differ on the outline only
    mask = read_label(mask_path)
    assert set(np.unique(fast[1]).tolist()) == {0.0, 1.0} and abs(fast[1].mean() - mask.mean()) < 0.01
