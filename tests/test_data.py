"""data.py: the loaders on generated data, the split by car, and every bad-input case with a clear error."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader

from unet_tutorial.conventions import IGNORE_INDEX
from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
from unet_tutorial.data import ADE20K_CLASSES, ADE20KDataset, CarvanaDataset, ade20k_palette, carvana_ids, carvana_split
from unet_tutorial.loaders import carvana_loaders, seed_loader, seed_worker
from unet_tutorial.readers import DataError, image_size, read_image, read_label
from unet_tutorial.transforms import eval_transforms, resize_image, train_transforms
from unet_tutorial.utils import set_seed


@pytest.fixture(scope="module")
def carvana_root(tmp_path_factory):
    return make_carvana_like(tmp_path_factory.mktemp("carvana"), n_cars=3, views=4, size=(43, 64), seed=1)


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory):
    return make_ade20k_like(tmp_path_factory.mktemp("ade"), n_train=4, n_val=2, size=(40, 48), seed=1)


def test_carvana_items(carvana_root):
    ds = CarvanaDataset(carvana_root)
    assert len(ds) == 12
    image, mask = ds[0]
    assert image.shape == (3, 43, 64) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert mask.shape == (1, 43, 64) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_carvana_with_transform(carvana_root):
    image, mask = CarvanaDataset(carvana_root, transform=eval_transforms((32, 48)))[3]
    assert image.shape == (3, 32, 48) and image.min() < 0  # normalised
    assert mask.shape == (1, 32, 48) and set(mask.unique().tolist()) <= {0.0, 1.0}


def test_carvana_split_is_by_car(carvana_root):
    train_ids, val_ids = carvana_split(carvana_root, val_fraction=0.34, seed=0)
    assert len(train_ids) + len(val_ids) == 12 and len(val_ids) == 4

    def cars(ids):
        return {i.rsplit("_", 1)[0] for i in ids}

    assert not cars(train_ids) & cars(val_ids)
    assert carvana_split(carvana_root, 0.34, seed=0) == (train_ids, val_ids)
    assert CarvanaDataset(carvana_root, ids=val_ids).ids == val_ids
    assert all(len(i) == 15 and i[12] == "_" for i in carvana_ids(carvana_root))  # 12 hex + _ + 2 digits


def test_carvana_split_max_cars_takes_the_first_cars_of_the_same_shuffle(carvana_root):
    def cars(ids):
        return {i.rsplit("_", 1)[0] for i in ids}

    everything = carvana_split(carvana_root, val_fraction=0.34, seed=0)
    assert carvana_split(carvana_root, 0.34, seed=0, max_cars=3) == everything  # as many as there are: no change
    train_ids, val_ids = carvana_split(carvana_root, val_fraction=0.34, seed=0, max_cars=2)
    assert len(cars(train_ids)) == len(cars(val_ids)) == 1 and len(val_ids) == 4
    assert cars(val_ids) == cars(everything[1]), "the capped split validates on the same first car of the shuffle"
    with pytest.raises(DataError, match="max_cars=1"):
        carvana_split(carvana_root, 0.34, max_cars=1)


def test_carvana_accepts_png_0_255_masks(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train_masks").mkdir()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / "train" / "abcdefabcdef_01.jpg")
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:6] = 255
    Image.fromarray(mask).save(tmp_path / "train_masks" / "abcdefabcdef_01_mask.png")
    _, got = CarvanaDataset(tmp_path)[0]
    assert torch.equal(got[0], torch.from_numpy(mask // 255).float())


def test_ade20k_items(ade_root):
    ds = ADE20KDataset(ade_root, "training")
    assert len(ds) == 4 and len(ADE20KDataset(ade_root, "validation")) == 2
    image, mask = ds[0]
    assert image.shape == (3, 40, 48) and image.dtype == torch.float32
    assert mask.shape == (40, 48) and mask.dtype == torch.long
    raw = np.array(Image.open(ds.label_paths[0]))
    expected = np.where(raw == 0, IGNORE_INDEX, raw.astype(np.int64) - 1)
    assert torch.equal(mask, torch.from_numpy(expected))


def test_ade20k_accepts_parent_folder(ade_root, tmp_path):
    (tmp_path / "ADEChallengeData2016").symlink_to(ade_root, target_is_directory=True)
    assert len(ADE20KDataset(tmp_path, "validation")) == 2


def test_class_names_and_palette():
    assert len(ADE20K_CLASSES) == 150 and ADE20K_CLASSES[:4] == ("wall", "building", "sky", "floor")
    assert ADE20K_CLASSES[-1] == "flag" and len(set(ADE20K_CLASSES)) == 150
    palette = ade20k_palette()
    assert palette.shape == (150, 3) and palette.dtype == np.uint8
    assert len({tuple(c) for c in palette}) == 150


# ---- bad input: each error names the file -------------------------------------------------------------------


def _tiny_carvana(root, mask_values=(0, 1), mask_size=(8, 6), mode="P"):
    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    Image.new("RGB", (8, 6)).save(root / "train" / "abcdefabcdef_01.jpg")
    mask = np.zeros(mask_size[::-1], np.uint8)
    mask[0, : len(mask_values)] = mask_values
    Image.fromarray(mask, "L").convert(mode).save(root / "train_masks" / "abcdefabcdef_01_mask.gif")
    return root


def test_missing_mask(tmp_path):
    _tiny_carvana(tmp_path)
    (tmp_path / "train_masks" / "abcdefabcdef_01_mask.gif").unlink()
    with pytest.raises(FileNotFoundError, match="abcdefabcdef_01_mask.gif"):
        CarvanaDataset(tmp_path)


def test_size_mismatch(tmp_path):
    _tiny_carvana(tmp_path, mask_size=(9, 6))
    with pytest.raises(ValueError, match=r"abcdefabcdef_01\.jpg.*8x6.*abcdefabcdef_01_mask\.gif.*9x6"):
        CarvanaDataset(tmp_path)[0]


def test_mask_values_outside_label_set(tmp_path):
    _tiny_carvana(tmp_path, mask_values=(0, 1, 2))
    with pytest.raises(ValueError, match=r"abcdefabcdef_01_mask\.gif holds values \[0, 1, 2\]"):
        CarvanaDataset(tmp_path)[0]


def test_ade20k_label_above_150(ade_root, tmp_path):
    import shutil

    root = shutil.copytree(ade_root, tmp_path / "ade")
    path = root / "annotations" / "training" / "ADE_train_00000001.png"
    label = np.array(Image.open(path))
    label[0, 0] = 151
    Image.fromarray(label).save(path)
    with pytest.raises(ValueError, match=r"ADE_train_00000001\.png holds labels \[151\]"):
        ADE20KDataset(root)[0]


def test_unreadable_image(tmp_path):
    _tiny_carvana(tmp_path)
    (tmp_path / "train" / "abcdefabcdef_01.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"cannot read image .*abcdefabcdef_01\.jpg"):
        CarvanaDataset(tmp_path)[0]


def test_empty_or_wrong_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory.*train_masks"):
        CarvanaDataset(tmp_path / "nope")
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no Carvana images.*train_hq"):
        CarvanaDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"images/training/ADE_\*\.jpg"):
        ADE20KDataset(tmp_path)
    (tmp_path / "images" / "training").mkdir(parents=True)
    (tmp_path / "annotations" / "training").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images"):
        ADE20KDataset(tmp_path)
    with pytest.raises(ValueError, match="'training' or 'validation'"):
        ADE20KDataset(tmp_path, split="train")


def test_missing_ade20k_annotation(ade_root, tmp_path):
    import shutil

    root = shutil.copytree(ade_root, tmp_path / "ade")
    (root / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"ADE_val_00000002\.png"):
        ADE20KDataset(root, "validation")


def test_binary_mask_padded_with_ignore_is_caught(carvana_root):
    import albumentations as A

    warp = A.Compose([A.Affine(rotate=(40, 45), fill_mask=255, p=1.0)])  # corners become 255
    with pytest.raises(ValueError, match="mask_fill=0"):
        CarvanaDataset(carvana_root, transform=warp)[0]


def test_carvana_loaders(carvana_root):
    train_ids, val_ids = carvana_split(carvana_root, val_fraction=0.34, seed=0)  # 2 cars x 4 views / 1 car
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    train_loader, val_loader = carvana_loaders(
        carvana_root, train_ids, val_ids, image_size=(32, 48), batch_size=3, mean=mean, std=std
    )
    assert len(train_loader) == 2  # 8 images in batches of 3: the incomplete third batch is dropped
    images, masks = next(iter(train_loader))
    assert images.shape == (3, 3, 32, 48) and masks.shape == (3, 1, 32, 48) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    images, masks = next(iter(val_loader))  # all 4 validation images in one batch of 2 * 3
    raw = CarvanaDataset(carvana_root, val_ids, eval_transforms((32, 48), mean=None, std=None))[0][0]
    torch.testing.assert_close(images[0], (raw - 0.5) / 0.25)  # resized only (no augmentation), then normalised
    torch.testing.assert_close(next(iter(val_loader))[0], images)  # and the same every time
    with pytest.raises(ValueError, match="batch_size=9"):
        carvana_loaders(carvana_root, train_ids, val_ids, image_size=32, batch_size=9)


def test_label_images_in_palette_grey_and_grey_rgb_modes_keep_their_labels(tmp_path):
    labels = np.array([[0, 1, 2], [150, 255, 7]], np.uint8)
    for mode in ("L", "P"):
        Image.fromarray(labels, "L").convert(mode).save(tmp_path / f"{mode}.png")
        assert np.array_equal(read_label(tmp_path / f"{mode}.png"), labels)
    Image.fromarray(np.stack([labels] * 3, axis=-1), "RGB").save(tmp_path / "grey_rgb.png")  # R == G == B
    assert np.array_equal(read_label(tmp_path / "grey_rgb.png"), labels)
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "small16.png")  # 16 bits, values fit in 8
    assert np.array_equal(read_label(tmp_path / "small16.png"), labels)


def test_a_colour_annotation_is_refused_not_turned_into_luminance(tmp_path):
    colours = np.zeros((4, 4, 3), np.uint8)
    colours[:2] = (120, 120, 80)  # an ADE20K-style class colour
    Image.fromarray(colours, "RGB").save(tmp_path / "ADE_train_00000001.png")
    with pytest.raises(
        DataError,
        match=r"ADE_train_00000001\.png is a colour \(RGB\) image.*palette \(P\) "
        r"or 8-bit greyscale \(L\)",
    ):
        read_label(tmp_path / "ADE_train_00000001.png")


def test_a_16_bit_annotation_above_255_is_refused_not_clipped(tmp_path):
    labels = np.array([[0, 1], [300, 2]], np.uint16)
    Image.fromarray(labels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    with pytest.raises(DataError, match=r"deep\.png is a 16/32-bit \(I(;16)?\) image with values up to 300"):
        read_label(tmp_path / "deep.png")


def test_a_16_bit_grey_image_is_scaled_to_8_bits_not_clipped(tmp_path):
    grey = np.array([[0, 257 * 64], [257 * 128, 65535]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "scan.png")
    image = read_image(tmp_path / "scan.png")
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    assert image[..., 0].tolist() == [[0, 64], [128, 255]] and (image == image[..., :1]).all()


def one_image_loaders(root, num_workers):
    """The same image 8 times in batches of 2: any two equal batches had equal random crops, flips and jitter."""
    same = carvana_ids(root)[:1] * 8
    return carvana_loaders(root, same, same, image_size=16, batch_size=2, num_workers=num_workers)


def test_two_workers_never_share_augmentations(carvana_root):
    set_seed(0)
    batches = [images for images, _ in one_image_loaders(carvana_root, num_workers=2)[0]]
    assert len(batches) == 4  # batches 0, 2 from worker 0 and 1, 3 from worker 1
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(batches[i], batches[j]), f"batches {i} and {j} got the same augmentations"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_set_seed_then_the_same_loader_gives_the_same_batches(carvana_root, num_workers):
    def first_batches(seed):
        set_seed(seed)
        train_loader, _ = one_image_loaders(carvana_root, num_workers)
        return torch.cat([images for images, _ in train_loader][:2])  # (4, 3, 16, 16)

    batches = first_batches(3)
    assert torch.equal(batches, first_batches(3)) and not torch.equal(batches, first_batches(4))


def test_seed_worker_and_seed_loader_on_a_learners_own_loader(carvana_root):
    dataset = CarvanaDataset(
        carvana_root, carvana_ids(carvana_root)[:1] * 4, train_transforms(16, crop="random_resized", mask_fill=0)
    )

    def batches():
        loader = DataLoader(
            dataset, batch_size=1, num_workers=2, worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(5)
        )
        return [images for images, _ in loader]

    first = batches()
    assert all(torch.equal(a, b) for a, b in zip(first, batches())) and not torch.equal(first[0], first[1])
    no_workers = DataLoader(dataset, batch_size=1, generator=torch.Generator())
    assert torch.equal(next(iter(seed_loader(no_workers, 7)))[0], next(iter(seed_loader(no_workers, 7)))[0])
    with pytest.raises(RuntimeError, match="worker_init_fn=seed_worker"):
        seed_worker(0)


def test_ade20k_limit_is_a_seeded_random_subset_not_the_first_files(tmp_path):
    root = make_ade20k_like(tmp_path, n_train=12, n_val=1, size=(16, 16), seed=0)
    every = ADE20KDataset(root, "training").image_paths
    some = ADE20KDataset(root, "training", limit=4, seed=0).image_paths
    assert len(some) == 4 and set(some) <= set(every) and some != every[:4] and some == sorted(some)
    assert ADE20KDataset(root, "training", limit=4, seed=0).image_paths == some
    assert ADE20KDataset(root, "training", limit=4, seed=1).image_paths != some
    assert ADE20KDataset(root, "training", limit=50).image_paths == every


# ---- EXIF orientation, lossy masks, draft decoding ----------------------------------------------------------


def _halves(width, height):
    """RGB (height, width, 3): the left half red, the right half blue (big blocks survive JPEG)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return pixels


def _jpeg_with_orientation(path, pixels, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation  # the EXIF Orientation tag; 6 = "display rotated 90 degrees clockwise"
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    return path


def test_read_image_turns_the_photo_as_a_viewer_shows_it(tmp_path):
    path = _jpeg_with_orientation(tmp_path / "phone.jpg", _halves(64, 32), 6)  # stored 64 wide, 32 high
    with Image.open(path) as img:
        assert img.size == (64, 32) and img.getexif()[0x0112] == 6
    image = read_image(path)
    assert image.shape == (64, 32, 3)  # displayed: 32 wide, 64 high
    assert image[2, 16, 0] > 200 and image[2, 16, 2] < 50  # the stored left (red) is now the top
    assert image[-3, 16, 2] > 200 and image[-3, 16, 0] < 50  # and the stored right (blue) the bottom
    assert image_size(path) == (64, 32)  # (height, width) as displayed, from the header
    with Image.open(path) as img:
        assert np.array_equal(image, np.array(ImageOps.exif_transpose(img).convert("RGB")))


def test_read_label_turns_a_mask_with_an_orientation_tag_too(tmp_path):
    mask = np.zeros((4, 8), np.uint8)
    mask[:, :4] = 1  # stored: the left half is foreground
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(mask).save(tmp_path / "m.png", exif=exif.tobytes())
    label = read_label(tmp_path / "m.png")
    assert label.shape == (8, 4) and label[:4].all() and not label[4:].any()  # the left half is now the top


def test_read_image_min_size_decodes_at_the_largest_jpeg_scale_still_at_least_that_size(tmp_path):
    pixels = np.asarray(Image.linear_gradient("L").resize((800, 480)).convert("RGB"))  # smooth, (480, 800, 3)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    assert read_image(tmp_path / "photo.jpg").shape == (480, 800, 3)
    assert read_image(tmp_path / "photo.jpg", min_size=(60, 100)).shape == (60, 100, 3)  # 1/8
    assert read_image(tmp_path / "photo.jpg", min_size=(61, 100)).shape == (120, 200, 3)  # 1/8 too small: 1/4
    assert read_image(tmp_path / "photo.jpg", min_size=(100, 150)).shape == (120, 200, 3)
    assert read_image(tmp_path / "photo.jpg", min_size=(240, 400)).shape == (240, 400, 3)  # 1/2
    assert read_image(tmp_path / "photo.jpg", min_size=(241, 400)).shape == (480, 800, 3)  # full size
    assert read_image(tmp_path / "photo.jpg", min_size=50).shape == (60, 100, 3)  # an int: a square
    assert read_image(tmp_path / "photo.png", min_size=(60, 100)).shape == (480, 800, 3)  # not a JPEG: full size
    # the DCT-scaled decode is close to decoding in full and shrinking with the package's resize
    small = read_image(tmp_path / "photo.jpg", min_size=(60, 100)).astype(np.float64)
    reference = resize_image(read_image(tmp_path / "photo.jpg"), (60, 100)).astype(np.float64)
    assert np.abs(small - reference).mean() < 2
    # an EXIF-turned photo: the size asked for is the displayed one
    _jpeg_with_orientation(tmp_path / "turned.jpg", _halves(256, 128), 6)
    assert read_image(tmp_path / "turned.jpg", min_size=(64, 32)).shape == (64, 32, 3)  # 1/4, then turned
    with pytest.raises(ValueError, match="min_size"):
        read_image(tmp_path / "photo.jpg", min_size=(0, 10))


def _binary_mask():
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 20:70] = 255  # a black-and-white 0/255 mask, as image editors save them
    mask[30:40, 75:90] = 255
    return mask


def test_a_mask_saved_as_jpeg_is_refused_with_what_would_work(tmp_path):
    mask = _binary_mask()
    Image.fromarray(mask).save(tmp_path / "car_mask.jpg", quality=75)
    noisy = np.array(Image.open(tmp_path / "car_mask.jpg"))
    assert not set(np.unique(noisy).tolist()) <= {0, 255}  # the noise read_label would otherwise take as labels
    with pytest.raises(DataError, match=r"car_mask\.jpg is a JPEG.*lossy.*PNG or GIF.*lossy_masks='threshold'"):
        read_label(tmp_path / "car_mask.jpg")
    assert np.array_equal(read_label(tmp_path / "car_mask.jpg", lossy_masks="threshold"), mask // 255)
    Image.fromarray(mask).save(tmp_path / "car_mask.png")  # lossless: read as it is, 0/255
    assert np.array_equal(read_label(tmp_path / "car_mask.png"), mask)
    assert np.array_equal(read_label(tmp_path / "car_mask.png", lossy_masks="threshold"), mask)  # only for lossy
    with pytest.raises(ValueError, match=r"lossy_masks='round'.*None.*'threshold'"):
        read_label(tmp_path / "car_mask.png", lossy_masks="round")


def test_a_lossy_webp_mask_is_refused_and_a_lossless_one_read(tmp_path):
    mask = _binary_mask()
    Image.fromarray(mask).save(tmp_path / "lossy.webp", quality=80)
    Image.fromarray(mask).save(tmp_path / "lossless.webp", lossless=True)
    with pytest.raises(DataError, match=r"lossy\.webp is a lossy WebP.*PNG or GIF"):
        read_label(tmp_path / "lossy.webp")
    assert np.array_equal(read_label(tmp_path / "lossless.webp"), mask)


def test_carvana_refuses_a_jpeg_mask_naming_it(tmp_path):
    _tiny_carvana(tmp_path)
    (tmp_path / "train_masks" / "abcdefabcdef_01_mask.gif").unlink()
    Image.new("L", (8, 6)).save(tmp_path / "train_masks" / "abcdefabcdef_01_mask.jpg")
    with pytest.raises(DataError, match=r"abcdefabcdef_01_mask\.jpg is a JPEG"):
        CarvanaDataset(tmp_path)[0]


def test_carvana_decode_size_decodes_small_and_resizes_the_mask_nearest(tmp_path):
    root = make_carvana_like(tmp_path, n_cars=1, views=2, size=(128, 192), seed=3)
    full, small = CarvanaDataset(root), CarvanaDataset(root, decode_size=(32, 48))
    image, mask = small[0]
    assert image.shape == (3, 32, 48) and mask.shape == (1, 32, 48)  # decoded at 1/4
    full_mask = read_label(full.mask_paths[0])
    nearest = np.asarray(Image.fromarray(full_mask).resize((48, 32), Image.Resampling.NEAREST))
    assert np.array_equal(mask[0].numpy(), nearest)  # the mask is never interpolated
    assert CarvanaDataset(root, decode_size=(33, 48))[0][0].shape == (3, 64, 96)  # 1/4 is too small: 1/2
    # after the same eval transform, the draft-decoded image is close to the fully decoded one
    a = CarvanaDataset(root, transform=eval_transforms((32, 48), mean=None, std=None))[1][0]
    b = CarvanaDataset(root, transform=eval_transforms((32, 48), mean=None, std=None), decode_size=(32, 48))[1][0]
    assert a.shape == b.shape and (a - b).abs().mean() < 0.02


def test_carvana_decode_size_still_checks_the_pair_sizes(tmp_path):
    _tiny_carvana(tmp_path, mask_size=(9, 6))
    with pytest.raises(DataError, match=r"abcdefabcdef_01\.jpg is 8x6.*abcdefabcdef_01_mask\.gif.*9x6"):
        CarvanaDataset(tmp_path, decode_size=(2, 2))[0]


def test_carvana_loaders_decode_no_larger_than_the_training_crops_need(carvana_root):
    train_ids, val_ids = carvana_split(carvana_root, val_fraction=0.34, seed=0)
    train_loader, val_loader = carvana_loaders(carvana_root, train_ids, val_ids, image_size=(8, 12), batch_size=2)
    assert val_loader.dataset.decode_size == (8, 12)  # validation is resized to image_size only
    assert train_loader.dataset.decode_size == (12, 18)  # crops of 60 % of the area need 1.5x in each side
    images, masks = next(iter(train_loader))
    assert images.shape == (2, 3, 8, 12) and masks.shape == (2, 1, 8, 12)


# ---- a tiny tree in the official layouts ---------------------------------------------------------------------


def test_the_official_layout_tree_counts_as_real_data(official_data, monkeypatch):
    from unet_tutorial.course.sample_data import ade20k_data, carvana_data

    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(official_data))
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")  # smoke mode always takes generated data
    carvana, is_real = carvana_data()
    assert is_real and carvana == official_data / "carvana"
    ade, is_real = ade20k_data()
    assert is_real and ade == official_data / "ADEChallengeData2016"
    train_ids, val_ids = carvana_split(carvana, val_fraction=0.15)
    assert len(train_ids) >= 16 and len(val_ids) == 16
    assert len(CarvanaDataset(carvana)) == len(train_ids) + len(val_ids)
    assert len(ADE20KDataset(ade, "training")) >= 2 and len(ADE20KDataset(ade, "validation")) >= 1
    rows = (carvana / "train_masks.csv").read_text().splitlines()
    assert rows[0] == "img,rle_mask" and len(rows) == len(train_ids) + len(val_ids) + 1
    cars = {line.split(",")[0].strip('"') for line in (carvana / "metadata.csv").read_text().splitlines()[1:]}
    assert {i.rsplit("_", 1)[0] for i in carvana_ids(carvana)} <= cars
    classes = (ade / "objectInfo150.txt").read_text().splitlines()
    assert len(classes) == 151 and classes[1].split("\t")[-1].startswith("wall")
