"""sample_data.py: deterministic, the real on-disk formats (GIF palette masks, Kaggle RLE csv, ADE PNG labels)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
from unet_tutorial.data import ADE20K_CLASSES, rle_encode


def _rle_decode(rle: str, shape) -> np.ndarray:
    """An independent decoder of Kaggle's format: 1-indexed start/length pairs, row-major."""
    flat = np.zeros(shape[0] * shape[1], np.uint8)
    numbers = list(map(int, rle.split()))
    for start, length in zip(numbers[::2], numbers[1::2]):
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape(shape)


def _digest(root):
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())).hexdigest()


def test_rle_encode_by_hand():
    mask = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    assert rle_encode(mask) == "2 3"  # pixels 2, 3, 4 (row-major, 1-indexed)
    assert rle_encode(np.zeros((2, 2), np.uint8)) == ""


def test_carvana_like_format(tmp_path):
    root = make_carvana_like(tmp_path, n_cars=2, views=16, size=(43, 64), seed=3)
    images = sorted((root / "train").glob("*.jpg"))
    assert len(images) == 32
    car = images[0].stem.rsplit("_", 1)[0]
    assert len(car) == 12 and int(car, 16) >= 0
    assert [p.stem.rsplit("_", 1)[1] for p in images[:16]] == [f"{v:02d}" for v in range(1, 17)]
    mask_img = Image.open(root / "train_masks" / f"{images[0].stem}_mask.gif")
    assert mask_img.format == "GIF" and mask_img.mode == "P" and mask_img.size == (64, 43)
    mask = np.array(mask_img)
    assert set(np.unique(mask)) == {0, 1} and 0.05 < mask.mean() < 0.6
    rows = (root / "train_masks.csv").read_text().splitlines()
    assert rows[0] == "img,rle_mask" and len(rows) == 33
    name, rle = rows[1].split(",")
    assert name == images[0].name
    np.testing.assert_array_equal(_rle_decode(rle, mask.shape), mask)


def test_carvana_like_varies_and_is_not_trivial(tmp_path):
    root = make_carvana_like(tmp_path, n_cars=4, views=2, size=(64, 96), seed=0)
    backgrounds, cars = [], []
    for path in sorted((root / "train").glob("*_01.jpg")):
        image = np.array(Image.open(path)).astype(float)
        mask = np.array(Image.open(root / "train_masks" / f"{path.stem}_mask.gif")).astype(bool)
        backgrounds.append(image[~mask].mean(0))
        cars.append(image[mask].mean(0))
        assert image[mask].std(0).mean() > 10, "the car is not one flat colour"
    assert np.ptp(np.array(backgrounds), axis=0).max() > 20, "background colour varies between cars"
    assert np.ptp(np.array(cars), axis=0).max() > 40, "car colour varies between cars"


def test_ade20k_like_format(tmp_path):
    root = make_ade20k_like(tmp_path, n_train=12, n_val=2, size=(48, 64), seed=0)
    assert (root / "images/training/ADE_train_00000001.jpg").is_file()
    assert (root / "images/validation/ADE_val_00000002.jpg").is_file()
    labels = set()
    for path in (root / "annotations/training").glob("*.png"):
        img = Image.open(path)
        assert img.mode == "L" and img.size == (64, 48)
        labels |= set(np.unique(np.array(img)).tolist())
    assert labels <= set(range(151))
    assert 0 in labels, "some pixels are unlabelled ('other')"
    names = {ADE20K_CLASSES[v - 1] for v in labels - {0}}
    assert len(names) >= 12 and {"wall", "floor", "sky", "building", "tree", "road"} <= names


def test_deterministic_by_seed_and_skips_existing(tmp_path):
    a = make_ade20k_like(tmp_path / "a", 3, 1, size=(32, 32), seed=5)
    b = make_ade20k_like(tmp_path / "b", 3, 1, size=(32, 32), seed=5)
    c = make_ade20k_like(tmp_path / "c", 3, 1, size=(32, 32), seed=6)
    assert _digest(a) == _digest(b) != _digest(c)
    stamp = (a / "images/training/ADE_train_00000001.jpg").stat().st_mtime_ns
    make_ade20k_like(a, 3, 1, size=(32, 32), seed=5)  # same set: nothing rewritten
    assert (a / "images/training/ADE_train_00000001.jpg").stat().st_mtime_ns == stamp
    make_ade20k_like(a, 2, 1, size=(32, 32), seed=5)  # a different set replaces the old one
    assert len(list((a / "images/training").iterdir())) == 2
    assert json.loads((a / "sample_info.json").read_text())["n_train"] == 2


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileExistsError, match="not written by this generator"):
        make_carvana_like(tmp_path, n_cars=1, views=1, size=(32, 32))


def test_make_sample_data_script(tmp_path, monkeypatch):
    import runpy
    import sys

    argv = ["make_sample_data.py", "--root", str(tmp_path), "--cars", "1", "--carvana-size", "40x27",
            "--ade-train", "2", "--ade-val", "1", "--ade-size", "32x24"]  # fmt: skip
    for _ in range(2):  # the second run finds the same set and skips
        monkeypatch.setattr(sys, "argv", argv)
        runpy.run_path("data_scripts/make_sample_data.py", run_name="__main__")
    assert len(list((tmp_path / "carvana" / "train").glob("*.jpg"))) == 16
    assert len(list((tmp_path / "ade20k" / "images" / "training").glob("*.jpg"))) == 2


def test_carvana_data_generates_with_a_notice_then_prefers_the_real_data(tmp_path, monkeypatch, capsys):
    from unet_tutorial.course.sample_data import carvana_data
    from unet_tutorial.data import CarvanaDataset, carvana_split

    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path))
    folder, is_real = carvana_data(n_cars=2, size=(27, 40))
    sample = tmp_path / "carvana_sample_2cars_27x40_seed0"  # one folder per setting: smoke and full never collide
    assert (folder, is_real) == (sample, False)
    assert carvana_data(n_cars=3, size=(27, 40))[0] != sample
    notice = capsys.readouterr().out
    assert "GENERATED" in notice and "data_scripts/download_carvana.py" in notice and "/rules" in notice
    assert len(CarvanaDataset(folder)) == 32 and len(carvana_split(folder, 0.5)[1]) == 16

    real = tmp_path / "carvana"  # the competition layout, as download_carvana.py leaves it
    (real / "train").mkdir(parents=True)
    (real / "train_masks").mkdir()
    Image.fromarray(np.zeros((27, 40, 3), np.uint8)).save(real / "train" / "00087a6bd4dc_01.jpg")
    assert carvana_data(n_cars=2, size=(27, 40)) == (sample, False), "masks still missing"
    Image.fromarray(np.zeros((27, 40), np.uint8)).save(real / "train_masks" / "00087a6bd4dc_01_mask.gif")
    assert carvana_data(n_cars=2, size=(27, 40))[1] is False, "smoke mode always uses the small generated data"
    capsys.readouterr()
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    assert carvana_data() == (real, True)
    assert capsys.readouterr().out == "", "no notice when the real data is used"
    generated = carvana_data(sample, n_cars=2, size=(27, 40))
    assert generated == (sample, False), "generated data never counts as the real data"


def test_ade20k_data_generates_with_a_notice_then_prefers_the_real_data(tmp_path, monkeypatch, capsys):
    from unet_tutorial.course.sample_data import ade20k_data
    from unet_tutorial.data import ADE20KDataset

    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path))
    folder, is_real = ade20k_data(n_train=3, n_val=2, size=(32, 40))
    sample = tmp_path / "ade20k_sample_3train_2val_32x40_seed0"  # one folder per setting, as for Carvana
    assert (folder, is_real) == (sample, False)
    assert ade20k_data(n_train=4, n_val=2, size=(32, 40))[0] != sample
    notice = capsys.readouterr().out
    assert "NOTICE" in notice and "GENERATED" in notice and "data_scripts/download_ade20k.py" in notice
    assert len(ADE20KDataset(folder, "training")) == 3 and len(ADE20KDataset(folder, "validation")) == 2

    real = tmp_path / "ADEChallengeData2016"  # the layout the official zip unpacks to
    for split in ("training", "validation"):
        (real / "images" / split).mkdir(parents=True)
        Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(real / "images" / split / "ADE_x_00000001.jpg")
    assert ade20k_data(n_train=3, n_val=2, size=(32, 40))[1] is False, "annotations still missing"
    for split in ("training", "validation"):
        (real / "annotations" / split).mkdir(parents=True)
        Image.fromarray(np.ones((32, 40), np.uint8)).save(real / "annotations" / split / "ADE_x_00000001.png")
    assert ade20k_data(n_train=3, n_val=2, size=(32, 40))[1] is False, "smoke mode always uses generated data"
    capsys.readouterr()
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    assert ade20k_data() == (real, True)
    assert ade20k_data(tmp_path) == (real, True), "the parent folder of ADEChallengeData2016 works too"
    assert capsys.readouterr().out == "", "no notice when the real data is used"
    generated = ade20k_data(sample, n_train=3, n_val=2, size=(32, 40))
    assert generated == (sample, False), "generated data never counts as the real data"


def test_regeneration_deletes_only_the_files_the_generator_wrote(tmp_path):
    root = make_carvana_like(tmp_path, n_cars=2, views=1, size=(32, 32), seed=0)
    manifest = json.loads((root / "sample_info.json").read_text())["files"]
    assert "train_masks.csv" in manifest and len(manifest) == 5
    (root / "train" / "my_photo.jpg").write_bytes(b"the user's own")
    make_carvana_like(root, n_cars=1, views=1, size=(32, 32), seed=1)  # other settings: regenerate
    assert (root / "train" / "my_photo.jpg").read_bytes() == b"the user's own"
    assert len(list((root / "train_masks").iterdir())) == 1 and len(list((root / "train").iterdir())) == 2


def test_carvana_like_view_01_is_the_front(tmp_path):
    # Real Carvana's _01 is the front of the car, _05 and _13 its sides: a front view covers less of the photo.
    root = make_carvana_like(tmp_path, n_cars=3, views=16, size=(64, 96), seed=0)
    coverage = {}
    for path in (root / "train_masks").glob("*_mask.gif"):
        view = int(path.stem.split("_")[-2])
        coverage.setdefault(view, []).append(np.array(Image.open(path)).mean())
    mean = {view: np.mean(values) for view, values in coverage.items()}
    assert mean[1] < 0.75 * mean[5] and mean[9] < 0.75 * mean[13], mean


def _generate(root: str) -> str:  # in a process of its own: what make_carvana_like wrote
    return str(make_carvana_like(root, n_cars=3, views=16, size=(96, 144)))


def test_two_processes_sharing_a_fresh_root_write_one_set_and_both_succeed(tmp_path):
    # Two notebooks (or test workers) on one fresh data root: without a lock the second saw the first's
    # half-written folders as "not written by this generator" and failed.
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        roots = pool.map(_generate, [str(tmp_path / "shared")] * 2)
    assert roots == [str(tmp_path / "shared")] * 2
    manifest = json.loads((tmp_path / "shared" / "sample_info.json").read_text())
    assert len(manifest["files"]) == 3 * 16 * 2 + 1  # every jpg and gif once, and the csv
    assert sorted(p.name for p in (tmp_path / "shared" / "train").iterdir()) == sorted(
        name.split("/")[1] for name in manifest["files"] if name.startswith("train/")
    )


def test_a_set_already_generated_is_read_from_a_read_only_folder(tmp_path):
    # A teacher may share a generated folder read-only: finding the set there must not need the lock or a write.
    root = make_carvana_like(tmp_path / "shared", n_cars=1, views=2, size=(32, 48))
    (root / ".sample_data.lock").unlink()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert make_carvana_like(root, n_cars=1, views=2, size=(32, 48)) == root
        assert not (root / ".sample_data.lock").exists()
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
