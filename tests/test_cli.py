"""python -m unet_tutorial: train -> predict end to end, one-line errors, and DDP with 2 CPU processes (gloo)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.checkpoint import read_checkpoint, save_checkpoint
from unet_tutorial.cli import main
from unet_tutorial.data import rle_decode
from unet_tutorial.model import UNet

TINY = [
    "--base-channels",
    "4",
    "--depth",
    "2",
    "--image-size",
    "32",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--no-progress",
]


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    assert (
        main(["data", "sample", "carvana", "--root", str(root), "--cars", "2", "--width", "48", "--height", "32"]) == 0
    )
    return root / "carvana"


@pytest.fixture(scope="module")
def trained(carvana, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert (
        main(
            [
                "train",
                "--dataset",
                "carvana",
                "--data-dir",
                str(carvana),
                "--epochs",
                "1",
                "--limit",
                "8",
                "--out",
                str(out),
                *TINY,
            ]
        )
        == 0
    )
    return out


def test_train_writes_checkpoints_whose_config_rebuilds_the_model(trained, capsys):
    config = read_checkpoint(trained / "best.pt")["config"]
    assert config["model"] == "unet" and config["model_kwargs"] == {"num_classes": 1, "base_channels": 4, "depth": 2}
    assert config["image_size"] == [32, 32] and (trained / "last.pt").exists()


def test_resume_continues_to_more_epochs(carvana, trained, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--dataset",
                "carvana",
                "--data-dir",
                str(carvana),
                "--epochs",
                "2",
                "--limit",
                "8",
                "--resume",
                str(trained / "last.pt"),
                "--out",
                str(tmp_path),
                *TINY,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    trained = [line for line in out.splitlines() if not line.endswith("(stored)")]  # the epochs this call trained
    assert "resumed from" in out and any(line.startswith("epoch 2/2") for line in trained)
    assert not any(line.startswith("epoch 1/2") for line in trained) and "epoch 1/2" in out  # epoch 1: its stored line
    assert read_checkpoint(tmp_path / "last.pt")["history"]["epoch"] == [1, 2]


def test_same_seed_repeats_a_run_and_a_resume_repeats_the_uninterrupted_one(carvana, tmp_path):
    """With the training augmentations on and 2 workers: a second run with the same --seed --deterministic
    repeats the first, and a run stopped after epoch 1 and resumed ends exactly where the 2-epoch run does."""

    def train(out, epochs, *extra):
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    "carvana",
                    "--data-dir",
                    str(carvana),
                    "--epochs",
                    str(epochs),
                    "--limit",
                    "8",
                    "--seed",
                    "3",
                    "--deterministic",
                    "--out",
                    str(out),
                    *TINY,
                    "--workers",
                    "2",
                    *extra,
                ]
            )
            == 0
        )
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
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained / "best.pt"),
                *map(str, images),
                "--out",
                str(tmp_path),
                "--tta",
                "--no-progress",
            ]
        )
        == 0
    )
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
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained / "best.pt"),
                str(carvana / "train"),
                "--out",
                str(tmp_path / "tiled"),
                "--tile",
                "32",
                "--no-progress",
            ]
        )
        == 0
    )
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

    err = error_of(
        [
            "train",
            "--dataset",
            "carvana",
            "--data-dir",
            str(carvana),
            "--resume",
            str(trained / "last.pt"),
            *TINY[:-1],
            "--base-channels",
            "8",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "last.pt was trained as unet" in err and "'base_channels': 4" in err

    # weights that do not match the model the config describes
    lying = save_checkpoint(
        tmp_path / "other.pt",
        UNet(base_channels=8, depth=2),
        config={"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": 4, "depth": 2}},
    )
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


@pytest.mark.slow  # about 7 s: two processes; make test runs it (--runslow), make unit does not
def test_ddp_two_cpu_processes_with_gloo(carvana, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNET_TUTORIAL_SMOKE": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "unet_tutorial",
        "train",
        "--dataset",
        "carvana",
        "--data-dir",
        str(carvana),
        "--epochs",
        "2",
        "--limit",
        "8",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        *TINY,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cpu x2" in result.stdout
    # only rank 0 logs: one summary line per epoch, not two
    assert result.stdout.count("epoch 1/2 ") == 1 and result.stdout.count("epoch 2/2 ") == 1, result.stdout
    history = read_checkpoint(tmp_path / "last.pt")["history"]
    assert history["epoch"] == [1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def train_args(carvana, out, *extra):
    return [
        "train",
        "--dataset",
        "carvana",
        "--data-dir",
        str(carvana),
        "--epochs",
        "1",
        "--limit",
        "8",
        "--out",
        str(out),
        *TINY,
        *extra,
    ]


def test_training_into_a_folder_holding_a_run_needs_resume_or_overwrite(carvana, trained, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.pt").write_bytes((trained / "best.pt").read_bytes())
    err = error_of(train_args(carvana, out), capsys)
    assert "already holds best.pt from an earlier run" in err and "--resume" in err and "--overwrite" in err
    assert (out / "best.pt").read_bytes() == (trained / "best.pt").read_bytes(), "the earlier run is untouched"
    assert main(train_args(carvana, out, "--overwrite")) == 0
    assert "checkpoints: " in capsys.readouterr().out
    assert (out / "best.pt").read_bytes() != (trained / "best.pt").read_bytes()


def test_out_is_checked_before_any_training(carvana, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    err = error_of(train_args(carvana, tmp_path / "file" / "run"), capsys)
    assert "--out " in err and "file/run cannot be written" in err
    err = error_of(["predict", "--checkpoint", "x.pt", str(carvana / "train"), "--out", str(tmp_path / "file")], capsys)
    assert "--out " in err and "cannot be written" in err


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--epochs", "0"),
        ("--image-size", "0"),
        ("--accumulate", "0"),
        ("--limit", "-3"),
        ("--batch-size", "0"),
        ("--tile", "-5"),
        ("--threshold", "2"),
        ("--device", "cuda"),
    ],
)
def test_bad_flag_values_are_argparse_errors_naming_the_flag(flag, value, capsys):
    if flag == "--device" and __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    command = (
        ["predict", "--checkpoint", "x.pt", "in.jpg"]
        if flag in ("--tile", "--threshold")
        else ["train", "--dataset", "carvana"]
    )
    with pytest.raises(SystemExit) as exit_info:
        main([*command, flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {flag}: " in err and f"'{value}'" in err


def test_resume_errors_say_what_the_file_holds(carvana, trained, tmp_path, capsys):
    err = error_of(train_args(carvana, tmp_path, "--resume", str(trained / "last.pt")), capsys)
    assert "last.pt has already trained 1 epochs, and --epochs is 1" in err
    torch_save = __import__("torch").save
    torch_save(UNet(base_channels=4, depth=2).state_dict(), tmp_path / "weights.pt")
    err = error_of(train_args(carvana, tmp_path, "--resume", str(tmp_path / "weights.pt")), capsys)
    assert "weights.pt holds only model weights" in err


def test_a_checkpoint_from_another_version_is_named(carvana, tmp_path, capsys):
    path = save_checkpoint(
        tmp_path / "future.pt",
        UNet(base_channels=4, depth=2),
        config={"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": 4, "depth": 2, "attention": True}},
    )
    image = next((carvana / "train").glob("*.jpg"))
    err = error_of(["predict", "--checkpoint", str(path), str(image), "--out", str(tmp_path)], capsys)
    assert "future.pt holds a unet built with" in err and "takes no attention" in err
    path = save_checkpoint(
        tmp_path / "other.pt", UNet(base_channels=4, depth=2), config={"model": "segformer", "model_kwargs": {}}
    )
    err = error_of(["predict", "--checkpoint", str(path), str(image), "--out", str(tmp_path)], capsys)
    assert "other.pt names a model this version does not know: no model is called 'segformer'" in err


def test_predict_refuses_inputs_whose_outputs_would_collide(carvana, trained, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (48, 32)).save(tmp_path / folder / "car.jpg")
    err = error_of(
        [
            "predict",
            "--checkpoint",
            str(trained / "best.pt"),
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert "a/car.jpg and" in err and "b/car.jpg would both be written as car_mask.png" in err
    assert not (tmp_path / "out").exists()


def test_predict_writes_masks_csv_as_it_goes_and_no_half_files(carvana, trained, tmp_path, capsys):
    images = tmp_path / "in"
    images.mkdir()
    Image.new("RGB", (48, 32), (200, 50, 50)).save(images / "a.jpg")
    (images / "b.jpg").write_bytes(b"\xff\xd8 a cut-off jpeg")
    err = error_of(
        [
            "predict",
            "--checkpoint",
            str(trained / "best.pt"),
            str(images),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        capsys,
    )
    assert "cannot read image" in err and "b.jpg" in err
    rows = (tmp_path / "out" / "masks.csv").read_text().splitlines()
    assert rows[0] == "img,rle_mask" and len(rows) == 2 and rows[1].startswith("a.jpg,")
    listed = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert listed == [".predict_written", "a_mask.png", "a_overlay.jpg", "masks.csv"]  # no half files, no .tmp


def test_a_diverged_run_names_only_a_good_checkpoint(carvana, tmp_path, capsys):
    err = error_of(train_args(carvana, tmp_path, "--lr", "1e6"), capsys)
    assert "NaN or infinite and nothing was saved; no checkpoint was written yet" in err
    assert not list(tmp_path.glob("*.pt"))


def test_a_dataloader_worker_error_is_its_original_one_line(carvana, tmp_path, capsys):
    import shutil

    broken = shutil.copytree(carvana, tmp_path / "carvana")
    for image in (broken / "train").glob("*.jpg"):
        image.write_bytes(b"not a jpeg")
    err = error_of(train_args(broken, tmp_path / "run", "--workers", "1"), capsys)
    assert err.startswith("error: cannot read image ") and "Caught" not in err and err.count("\n") == 1


def test_a_genuine_bug_keeps_its_traceback(monkeypatch):
    from unet_tutorial import cli

    def buggy(args):
        raise ValueError("a bug in the package")

    monkeypatch.setattr(cli, "predict_command", buggy)
    with pytest.raises(ValueError, match="a bug in the package"):
        main(["predict", "--checkpoint", "x.pt", "in.jpg"])


def test_os_errors_are_one_line_with_the_path():
    from unet_tutorial.cli import one_line

    assert (
        one_line(OSError(28, "No space left on device", "/runs/unet/.last.pt.x.tmp"))
        == "[Errno 28] No space left on device: '/runs/unet/.last.pt.x.tmp'"
    )
    wrapped = ValueError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
        'last):\n  File "x.py", line 1\nunet_tutorial.data.DataError: mask m.png is odd'
    )
    assert one_line(wrapped) == "mask m.png is odd"


def test_kaggle_and_network_failures_are_sentences(monkeypatch, tmp_path, capsys):
    from unet_tutorial import cli
    from unet_tutorial.course import download, safe_download

    def exits(root):
        print("Could not find kaggle.json. Make sure it's located in ~/.kaggle")
        raise SystemExit(1)  # what the Kaggle client's authenticate() does

    monkeypatch.setattr(cli, "fetch_carvana", exits)
    err = error_of(["data", "download", "carvana", "--root", str(tmp_path)], capsys)
    assert "found no API token" in err and "KAGGLE_USERNAME" in err

    def missing(root):
        raise ImportError("the Kaggle client is not installed: pip install 'unet_tutorial[kaggle]'")

    monkeypatch.setattr(cli, "fetch_carvana", missing)
    assert "pip install 'unet_tutorial[kaggle]'" in error_of(
        ["data", "download", "carvana", "--root", str(tmp_path)], capsys
    )
    monkeypatch.setattr(download, "ADE20K_URL", "http://127.0.0.1:9/ADEChallengeData2016.zip")  # offline
    monkeypatch.setattr(safe_download.time, "sleep", lambda seconds: None)
    err = error_of(["data", "download", "ade20k", "--root", str(tmp_path)], capsys)
    assert "failed after 6 tries" in err and "check the network connection" in err


def test_a_bad_data_folder_variable_is_named(monkeypatch, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("UNET_TUTORIAL_DATA", f" {tmp_path / 'file'} ")
    err = error_of(["data", "sample", "carvana", "--cars", "2"], capsys)
    assert f"UNET_TUTORIAL_DATA={tmp_path / 'file'} is a file, not a folder" in err


def test_pretrained_weights_out_of_reach_is_a_sentence(monkeypatch, capsys):
    from unet_tutorial import cli
    from unet_tutorial.densenet_unet import PretrainedWeightsUnavailable

    def offline(args):
        raise PretrainedWeightsUnavailable("DenseNet121 ImageNet weights are not cached and cannot be downloaded")

    monkeypatch.setattr(cli, "train_command", offline)
    err = error_of(["train", "--dataset", "carvana", "--model", "densenet_unet", "--pretrained"], capsys)
    assert "DenseNet121 ImageNet weights are not cached" in err


def test_grade_is_a_command_and_a_bad_argument_is_one_line(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing.ipynb"), "--out", str(tmp_path / "grades.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade: ") and "missing.ipynb: no such file or folder" in err and err.count("\n") == 1
