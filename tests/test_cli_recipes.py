"""The command line's recipes: your own folder (binary and 3 classes) and ADE20K (notebook 05's pipeline)."""

import numpy as np
import pytest
from PIL import Image
from test_folder import make_folder

from unet_tutorial.checkpoint import read_checkpoint
from unet_tutorial.cli import main
from unet_tutorial.course.sample_data import make_ade20k_like
from unet_tutorial.data import ade20k_palette
from unet_tutorial.viz import overlay, palette

TINY = [
    "--base-channels",
    "4",
    "--depth",
    "2",
    "--image-size",
    "16x24",
    "--batch-size",
    "2",
    "--workers",
    "0",
    "--epochs",
    "1",
    "--no-progress",
]


@pytest.mark.parametrize("num_classes, values", [(1, (0, 255)), (3, (0, 1, 2))])
def test_folder_command_line_trains_and_predicts(tmp_path, num_classes, values):
    images, masks = make_folder(tmp_path / "data", values=values)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "folder",
                "--images",
                str(images),
                "--masks",
                str(masks),
                "--num-classes",
                str(num_classes),
                "--val-fraction",
                "0.34",
                "--out",
                str(out),
                *TINY,
            ]
        )
        == 0
    )
    config = read_checkpoint(out / "best.pt")["config"]
    assert config["dataset"] == "folder" and config["num_classes"] == num_classes
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                str(images / "img0.png"),
                "--out",
                str(tmp_path / "pred"),
                "--no-progress",
            ]
        )
        == 0
    )
    mask = np.array(Image.open(tmp_path / "pred" / "img0_mask.png"))
    assert mask.shape == (24, 32)
    assert set(np.unique(mask)) <= ({0, 255} if num_classes == 1 else {0, 1, 2})  # class indices as stored


def test_folder_command_line_errors(tmp_path, capsys):
    images, masks = make_folder(tmp_path, values=(0, 1, 5))
    assert main(["train", "--dataset", "folder", "--images", str(images), *TINY]) == 2
    assert "--dataset folder needs --images DIR --masks DIR --num-classes N" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--dataset",
                "folder",
                "--images",
                str(images),
                "--masks",
                str(masks),
                "--num-classes",
                "3",
                "--out",
                str(tmp_path / "run"),
                *TINY,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err  # every mask is read before training, not after an epoch
    assert "6 of 6 masks hold labels outside 0..2" in err and "img0.png: [5]" in err


def test_ade20k_recipe_trains_on_scale_crops_evaluates_at_annotation_size_and_predicts_in_its_palette(tmp_path):
    root = make_ade20k_like(tmp_path / "ade", n_train=4, n_val=2, size=(30, 40), seed=0)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "ade20k", "--data-dir", str(root), "--out", str(out), *TINY]) == 0
    config = read_checkpoint(out / "best.pt")["config"]
    assert config["short_side"] == 16 and config["dataset"] == "ade20k"
    image = next((root / "images" / "validation").glob("*.jpg"))
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                str(image),
                "--out",
                str(tmp_path / "pred"),
                "--no-progress",
            ]
        )
        == 0
    )
    mask = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_mask.png"))
    assert mask.shape == (30, 40) and mask.min() >= 1  # ADE20K's file labels: class + 1
    written = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_overlay.jpg")).astype(float)
    picture = np.array(Image.open(image))
    ade = overlay(picture, mask - 1, palette=ade20k_palette()).astype(float)
    other = overlay(picture, mask - 1, palette=palette(150)).astype(float)
    assert np.abs(written - ade).mean() < np.abs(written - other).mean()  # coloured with ADE20K's palette
