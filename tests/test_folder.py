"""Your own data: FolderDataset on generated folders (binary and 3 classes) and every bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.folder import FolderDataset, split_indices
from unet_tutorial.transforms import eval_transforms, train_transforms


def make_folder(root, n=6, size=(24, 32), values=(0, 255), mask_suffix="", seed=0, image_mode="RGB"):
    """images/<i>.jpg|png with masks/<i><suffix>.png: a square of the last value on the first, noise around."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    height, width = size
    for i in range(n):
        mask = rng.choice(np.array(values[:-1], np.uint8), size=(height, width))
        mask[4:16, 8:20] = values[-1]
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image[mask == values[-1]] = (230, 40, 40)
        picture = Image.fromarray(image).convert(image_mode)
        picture.save(root / "images" / (f"img{i}.jpg" if i % 2 else f"img{i}.png"))
        Image.fromarray(mask).save(root / "masks" / f"img{i}{mask_suffix}.png")
    return root / "images", root / "masks"


@pytest.mark.parametrize("values", [(0, 255), (0, 1)])
def test_binary_masks_0_255_and_0_1_become_float_0_1(tmp_path, values):
    images, masks = make_folder(tmp_path, values=values, image_mode="L")  # greyscale images become RGB
    ds = FolderDataset(images, masks, 1)
    assert len(ds) == 6 and ds.stems == [f"img{i}" for i in range(6)]
    image, mask = ds[0]
    assert image.shape == (3, 24, 32) and mask.shape == (1, 24, 32) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0} and mask[0, 4:16, 8:20].all()
    image, mask = FolderDataset(images, masks, 1, transform=train_transforms(16, mask_fill=0))[1]
    assert image.shape == (3, 16, 16) and set(mask.unique().tolist()) <= {0.0, 1.0}


def test_three_classes_with_an_ignored_value_a_suffix_and_names(tmp_path):
    images, masks = make_folder(tmp_path, values=(0, 1, 7, 2), mask_suffix="_mask")
    ds = FolderDataset(
        images,
        masks,
        3,
        mask_suffix="_mask",
        ignore_index=7,
        class_names=["a", "b", "c"],
        transform=eval_transforms(None),
    )
    image, mask = ds[0]
    assert mask.dtype == torch.long and mask.shape == (24, 32)
    assert set(mask.unique().tolist()) == {0, 1, 2, 255}  # the ignored value 7 becomes 255
    assert ds.class_names == ("a", "b", "c")


def test_unpaired_files_are_all_named(tmp_path):
    images, masks = make_folder(tmp_path)
    (masks / "img1.png").unlink()
    (masks / "img4.png").unlink()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(masks / "stray.png")
    with pytest.raises(FileNotFoundError, match="3 unpaired") as error:
        FolderDataset(images, masks, 1)
    assert all(name in str(error.value) for name in ("img1.jpg", "img4.png", "stray.png"))


def test_size_mismatch_and_bad_labels_name_the_file(tmp_path):
    images, masks = make_folder(tmp_path, values=(0, 1, 2))
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(masks / "img3.png")
    with pytest.raises(ValueError, match=r"img3.jpg is 32x24 but .*img3.png is 32x20"):
        FolderDataset(images, masks, 3)
    Image.fromarray(np.full((24, 32), 3, np.uint8)).save(masks / "img3.png")
    ds = FolderDataset(images, masks, 3)
    with pytest.raises(ValueError, match=r"img3.png holds labels \[3\].*num_classes=3"):
        ds[3]
    with pytest.raises(ValueError, match="ignore_index is for class masks"):
        FolderDataset(images, masks, 1, ignore_index=255)
    with pytest.raises(ValueError, match="ignore_index=2 must be a mask value outside"):
        FolderDataset(images, masks, 3, ignore_index=2)
    with pytest.raises(ValueError, match="class_names has 2 names; num_classes=3 needs 3"):
        FolderDataset(images, masks, 3, class_names=["a", "b"])
    with pytest.raises(FileNotFoundError, match="masks_dir .*nowhere is not a directory"):
        FolderDataset(images, tmp_path / "nowhere", 3)


def test_split_indices_is_seeded_and_disjoint():
    train, val = split_indices(10, 0.3, seed=1)
    assert len(val) == 3 and sorted(train + val) == list(range(10)) and val != [0, 1, 2]
    assert split_indices(10, 0.3, seed=1) == (train, val) and split_indices(10, 0.3, seed=2) != (train, val)
