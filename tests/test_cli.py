"""python -m unet_tutorial: train -> predict end to end, one-line errors, and DDP with 2 CPU processes (gloo)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.__main__ import main
from unet_tutorial.checkpoint import read_checkpoint, save_checkpoint
from unet_tutorial.model import UNet
from unet_tutorial.predict import rle_decode

TINY = ["--base-channels", "4", "--depth", "2", "--image-size", "32", "--batch-size", "4", "--workers", "0",
        "--no-progress"]


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    assert main(["data", "sample", "carvana", "--root", str(root), "--cars", "2", "--width", "48",
                 "--height", "32"]) == 0
    return root / "carvana"


@pytest.fixture(scope="module")
def trained(carvana, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--dataset", "carvana", "--data-dir", str(carvana), "--epochs", "1", "--limit", "8",
                 "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_checkpoints_whose_config_rebuilds_the_model(trained, capsys):
    config = read_checkpoint(trained / "best.pt")["config"]
    assert config["model"] == "unet" and config["model_kwargs"] == {"num_classes": 1, "base_channels": 4, "depth": 2}
    assert config["image_size"] == [32, 32] and (trained / "last.pt").exists()


def test_resume_continues_to_more_epochs(carvana, trained, tmp_path, capsys):
    assert main(["train", "--dataset", "carvana", "--data-dir", str(carvana), "--epochs", "2", "--limit", "8",
                 "--resume", str(trained / "last.pt"), "--out", str(tmp_path), *TINY]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    assert read_checkpoint(tmp_path / "last.pt")["history"]["epoch"] == [1, 2]


def test_same_seed_repeats_a_run_and_a_resume_repeats_the_uninterrupted_one(carvana, tmp_path):
    """With the training augmentations on and 2 workers: a second run with the same --seed --deterministic
    repeats the first, and a run stopped after epoch 1 and resumed ends exactly where the 2-epoch run does."""
    def train(out, epochs, *extra):
        assert main(["train", "--dataset", "carvana", "--data-dir", str(carvana), "--epochs", str(epochs),
                     "--limit", "8", "--seed", "3", "--deterministic", "--out", str(out), *TINY, "--workers", "2",
                     *extra]) == 0
        saved = read_checkpoint(out / "last.pt")
        return {k: v for k, v in saved["history"].items() if k != "seconds"}, saved["model"]

    full, full_weights = train(tmp_path / "full", 2)
    first, _ = train(tmp_path / "cut", 1)
    assert first == {k: v[:1] for k, v in full.items()}
    resumed, resumed_weights = train(tmp_path / "cut", 2, "--resume", str(tmp_path / "cut" / "last.pt"))
    assert resumed == full
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)


def test_predict_writes_masks_overlays_and_rle(carvana, trained, tmp_path):
    images = sorted((carvana / "train").glob("*.jpg"))[:2]
    assert main(["predict", "--checkpoint", str(trained / "best.pt"), *map(str, images), "--out", str(tmp_path),
                 "--tta", "--no-progress"]) == 0
    for image in images:
        mask = np.array(Image.open(tmp_path / f"{image.stem}_mask.png"))
        assert mask.shape == (32, 48) and set(np.unique(mask)) <= {0, 255}  # the original size, not 32x32
        assert Image.open(tmp_path / f"{image.stem}_overlay.jpg").size == (48, 32)
    rows = (tmp_path / "masks.csv").read_text().splitlines()
    assert rows[0] == "img,rle_mask" and len(rows) == 3
    name, rle = rows[1].split(",")
    first = np.array(Image.open(tmp_path / f"{images[0].stem}_mask.png")) // 255
    assert name == images[0].name and np.array_equal(rle_decode(rle, first.shape), first)
    # tiles on a folder of images
    assert main(["predict", "--checkpoint", str(trained / "best.pt"), str(carvana / "train"), "--out",
                 str(tmp_path / "tiled"), "--tile", "32", "--no-progress"]) == 0
    assert len(list((tmp_path / "tiled").glob("*_mask.png"))) == 32


def error_of(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_clear_errors_without_tracebacks(carvana, trained, tmp_path, capsys):
    err = error_of(["train", "--dataset", "carvana", "--data-dir", str(tmp_path / "nope"), *TINY], capsys)
    assert "--data-dir" in err and "nope" in err and "data sample" in err
    (tmp_path / "empty").mkdir()
    err = error_of(["train", "--dataset", "ade20k", "--data-dir", str(tmp_path / "empty"), *TINY], capsys)
    assert "images/training" in err

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "coco"])
    assert exit_info.value.code == 2 and "invalid choice: 'coco'" in capsys.readouterr().err

    err = error_of(["train", "--dataset", "carvana", "--data-dir", str(carvana), "--resume",
                    str(trained / "last.pt"), *TINY[:-1], "--base-channels", "8", "--out", str(tmp_path)], capsys)
    assert "last.pt was trained as unet" in err and "'base_channels': 4" in err

    # weights that do not match the model the config describes
    lying = save_checkpoint(tmp_path / "other.pt", UNet(base_channels=8, depth=2),
                            config={"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": 4,
                                                                      "depth": 2}})
    image = next((carvana / "train").glob("*.jpg"))
    err = error_of(["predict", "--checkpoint", str(lying), str(image), "--out", str(tmp_path)], capsys)
    assert "other.pt does not fit this UNet" in err

    save_checkpoint(tmp_path / "bare.pt", UNet(base_channels=4, depth=2))
    err = error_of(["predict", "--checkpoint", str(tmp_path / "bare.pt"), str(image)], capsys)
    assert "has no model config" in err
    (tmp_path / "broken.pt").write_bytes((trained / "best.pt").read_bytes()[:500])
    err = error_of(["predict", "--checkpoint", str(tmp_path / "broken.pt"), str(image)], capsys)
    assert "broken.pt is truncated" in err
    err = error_of(["predict", "--checkpoint", str(trained / "best.pt"), str(tmp_path / "missing.jpg")], capsys)
    assert "missing.jpg does not exist" in err


def test_ddp_two_cpu_processes_with_gloo(carvana, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNET_TUTORIAL_SMOKE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "unet_tutorial", "train", "--dataset", "carvana", "--data-dir", str(carvana), "--epochs", "2",
               "--limit", "8", "--device", "cpu", "--out", str(tmp_path), *TINY]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cpu x2" in result.stdout
    # only rank 0 logs: one summary line per epoch, not two
    assert result.stdout.count("epoch 1/2 ") == 1 and result.stdout.count("epoch 2/2 ") == 1, result.stdout
    history = read_checkpoint(tmp_path / "last.pt")["history"]
    assert history["epoch"] == [1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
