"""Your own data: FolderDataset on generated folders (binary and 3 classes) and every bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.folder import FolderDataset, check_labels, split_indices
from unet_tutorial.readers import DataError
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
    with pytest.raises(DataError, match="3 unpaired") as error:
        FolderDataset(images, masks, 1)
    assert all(name in str(error.value) for name in ("img1.jpg", "img4.png", "stray.png"))


def test_size_mismatch_and_bad_labels_name_the_file(tmp_path):
    images, masks = make_folder(tmp_path, values=(0, 1, 2))
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(masks / "img3.png")
    with pytest.raises(DataError, match=r"img3.jpg is 32x24 but .*img3.png is 32x20"):
        FolderDataset(images, masks, 3)
    Image.fromarray(np.full((24, 32), 3, np.uint8)).save(masks / "img3.png")
    ds = FolderDataset(images, masks, 3)
    with pytest.raises(ValueError, match=r"img3.png holds labels \[3\].*num_classes=3"):
        ds[3]
    with pytest.raises(DataError, match="ignore_index is for class masks"):
        FolderDataset(images, masks, 1, ignore_index=255)
    with pytest.raises(DataError, match="ignore_index=2 must be a mask value outside"):
        FolderDataset(images, masks, 3, ignore_index=2)
    with pytest.raises(DataError, match="class_names has 2 names; num_classes=3 needs 3"):
        FolderDataset(images, masks, 3, class_names=["a", "b"])
    with pytest.raises(FileNotFoundError, match="masks_dir .*nowhere is not a directory"):
        FolderDataset(images, tmp_path / "nowhere", 3)


def test_split_indices_is_seeded_and_disjoint():
    train, val = split_indices(10, 0.3, seed=1)
    assert len(val) == 3 and sorted(train + val) == list(range(10)) and val != [0, 1, 2]
    assert split_indices(10, 0.3, seed=1) == (train, val) and split_indices(10, 0.3, seed=2) != (train, val)


def test_split_indices_raises_data_error_naming_the_argument():
    with pytest.raises(DataError, match="val_fraction=1.0 must be between 0 and 1"):
        split_indices(10, 1.0)
    with pytest.raises(DataError, match="needs at least 2 image pairs, got 1"):
        split_indices(1, 0.2)
    with pytest.raises(DataError, match="num_classes=0"):
        FolderDataset("images", "masks", 0)


def test_two_images_with_one_stem_are_refused_naming_both(tmp_path):
    images, masks = make_folder(tmp_path, n=2)
    Image.new("RGB", (32, 24)).save(images / "img0.jpg")  # img0.png is there already
    with pytest.raises(DataError, match=r"img0\.jpg and .*img0\.png.*share the name img0"):
        FolderDataset(images, masks, 1)
    (images / "img0.jpg").unlink()
    Image.new("L", (32, 24)).save(masks / "img1.gif")  # two masks for img1
    with pytest.raises(DataError, match=r"img1\.gif and .*img1\.png"):
        FolderDataset(images, masks, 1)


def test_a_forgotten_mask_suffix_gives_a_short_line_with_the_count_and_the_fix(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(300):  # pairing needs only the names
        (tmp_path / "images" / f"car_{i:04d}.jpg").touch()
        (tmp_path / "masks" / f"car_{i:04d}_mask.gif").touch()
    with pytest.raises(DataError) as error:
        FolderDataset(tmp_path / "images", tmp_path / "masks", 1)
    message = str(error.value)
    assert "\n" not in message and len(message) < 700, message
    assert "600 unpaired" in message and "car_0000.jpg" in message and "mask_suffix='_mask'" in message


def test_unreadable_files_are_named_on_one_line_and_appledouble_files_skipped(tmp_path):
    images, masks = make_folder(tmp_path, n=2)
    for folder in (images, masks):
        (folder / "._img0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata, not an image
    with pytest.warns(UserWarning, match=r"skipped 1 macOS '\._' file"):
        assert len(FolderDataset(images, masks, 1)) == 2
    for folder in (images, masks):
        (folder / "._img0.png").unlink()
    for making, match in [
        (lambda p: p.write_bytes(b""), r"img1\.jpg.*is empty \(0 bytes\)"),
        (lambda p: p.write_text("hello"), r"img1\.jpg.*is not an image PIL can read"),
        (lambda p: p.symlink_to(tmp_path / "gone.jpg"), r"img1\.jpg.*is a link to .*gone\.jpg, which does not exist"),
    ]:
        (images / "img1.jpg").unlink()
        making(images / "img1.jpg")
        with pytest.raises(DataError, match=match) as error:
            FolderDataset(images, masks, 1)
        assert "\n" not in str(error.value)


def test_a_decompression_bomb_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
    images, masks = make_folder(tmp_path, n=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32x24 = 768 pixels: over twice the limit
    with pytest.raises(DataError, match=r"img0\.png.*32x24.*Image\.MAX_IMAGE_PIXELS.*resize") as error:
        FolderDataset(images, masks, 1)
    assert "\n" not in str(error.value)


def test_check_labels_reads_every_mask_before_training(tmp_path):
    images, masks = make_folder(tmp_path, values=(0, 1, 7, 2), mask_suffix="_m")
    ds = FolderDataset(images, masks, 3, mask_suffix="_m", ignore_index=7)
    assert check_labels(ds, 3, ignore_index=7) == {0, 1, 2, 7}
    Image.fromarray(np.full((24, 32), 5, np.uint8)).save(masks / "img4_m.png")
    with pytest.raises(DataError, match=r"1 of 6 masks hold labels outside 0\.\.2.*img4_m\.png: \[5\]"):
        check_labels(ds, 3, ignore_index=7)
    from torch.utils.data import Subset

    assert check_labels(Subset(ds, [0, 1]), 3, ignore_index=7) == {0, 1, 2, 7}  # img4 is not in this subset
    with pytest.raises(DataError, match=r"img0_m\.png: \[7\]"):
        check_labels(ds.mask_paths[:1], 3)  # no ignore_index: 7 is a bad label
    assert check_labels(ds.mask_paths, 1) == {0, 1, 2, 5, 7}  # binary: any value > 0 is foreground


def test_an_exif_turned_photo_matches_a_mask_drawn_on_the_displayed_photo(tmp_path):
    """A phone stores a portrait photo landscape with an EXIF orientation; its mask is drawn on what a viewer shows."""
    from PIL import Image

    from unet_tutorial.folder import FolderDataset
    from unet_tutorial.readers import ORIENTATION

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # turn a quarter: stored 40 wide x 30 high, shown 30 wide x 40 high
    Image.new("RGB", (40, 30), "red").save(tmp_path / "images" / "a.jpg", exif=exif)
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "images" / "b.jpg", exif=exif)
    for name in ("a", "b"):
        Image.new("L", (30, 40), 1).save(tmp_path / "masks" / f"{name}.png")
    dataset = FolderDataset(tmp_path / "images", tmp_path / "masks", 1)
    image, mask = dataset[0]
    assert tuple(image.shape[-2:]) == tuple(mask.shape[-2:]) == (40, 30)
