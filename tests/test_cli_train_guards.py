"""python -m unet_tutorial train on your own folder: flag ranges, one-line data errors, labels checked before
training, --overwrite that keeps the old run until the new one has a checkpoint, and resumes that never lose a
later checkpoint or silently change the schedule."""

import numpy as np
import pytest
from PIL import Image

from unet_tutorial.checkpoint import read_checkpoint
from unet_tutorial.cli import main

TINY = ["--base-channels", "4", "--depth", "2", "--image-size", "32", "--batch-size", "2", "--workers", "0"]


def make_folder(root, n=4, values=(0, 1, 2), size=(32, 48)):
    """images/<i>.png and masks/<i>.png: random labels from ``values`` with a square of the last one."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = rng.choice(np.array(values, np.uint8), size=size)
        mask[4:16, 8:20] = values[-1]
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root / "images", root / "masks"


def folder_args(images, masks, out, *extra, classes="3", epochs="1"):
    return ["train", "--dataset", "folder", "--images", str(images), "--masks", str(masks), "--num-classes",
            classes, "--epochs", epochs, "--out", str(out), "--no-progress", *TINY, *extra]  # fmt: skip


def error_of(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """A finished 1-epoch run (cosine schedule, lr 0.002)."""
    out = tmp_path_factory.mktemp("run")
    assert main(folder_args(*folder, out, "--scheduler", "cosine", "--lr", "0.002")) == 0
    return out


@pytest.mark.parametrize(
    "flag, value",
    [("--val-fraction", "1"), ("--val-fraction", "0"), ("--num-classes", "0"), ("--num-classes", "256"),
     ("--workers", "-1"), ("--ignore-index", "256"), ("--ignore-index", "-1")],
)  # fmt: skip
def test_flag_ranges_are_argparse_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "folder", flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {flag}: " in err and f"'{value}'" in err


def test_folder_data_errors_are_one_line(folder, tmp_path, capsys):
    images, masks = make_folder(tmp_path / "one", n=1)
    err = error_of(folder_args(images, masks, tmp_path / "out1"), capsys)
    assert "needs at least 2 image pairs, got 1" in err
    images, masks = make_folder(tmp_path / "sizes", n=2)
    Image.new("L", (10, 10)).save(masks / "1.png")
    err = error_of(folder_args(images, masks, tmp_path / "out2"), capsys)
    assert "1.png is 48x32 but" in err and "is 10x10" in err
    err = error_of(folder_args(folder[0], folder[1], tmp_path / "out3", "--mask-suffix", "_mask"), capsys)
    assert "unpaired" in err and "image(s) without a mask" in err
    assert not list((tmp_path / "out3").glob("*.pt"))


def test_a_bad_label_in_any_mask_fails_before_the_first_epoch(tmp_path, capsys):
    images, masks = make_folder(tmp_path / "data", n=6)
    Image.fromarray(np.full((32, 48), 9, np.uint8)).save(masks / "5.png")
    err = error_of(folder_args(images, masks, tmp_path / "out"), capsys)
    assert "1 of 6 masks hold labels outside 0..2" in err and "5.png: [9]" in err
    assert "epoch 1/1" not in capsys.readouterr().out and not list((tmp_path / "out").glob("*.pt"))


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(folder, run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("best.pt", "last.pt"):
        (out / name).write_bytes((run / name).read_bytes())
    err = error_of(folder_args(folder[0], tmp_path / "typo", out, "--overwrite"), capsys)
    assert "typo" in err
    assert (out / "last.pt").read_bytes() == (run / "last.pt").read_bytes(), "a failed start keeps the old run"
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt"], "nothing left behind"
    assert main(folder_args(*folder, out, "--overwrite")) == 0
    assert (out / "last.pt").read_bytes() != (run / "last.pt").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt"]


def test_resume_continues_in_the_runs_folder_and_never_into_another_run(folder, run, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("best.pt", "last.pt"):
        (copy / name).write_bytes((run / name).read_bytes())
    err = error_of(folder_args(*folder, run, "--resume", str(copy / "last.pt"), epochs="2"), capsys)
    assert f"--out {run} holds another run" in err and "leave out --out" in err
    args = folder_args(*folder, copy, "--resume", str(copy / "last.pt"), epochs="2")
    args.remove("--out")
    args.remove(str(copy))  # no --out: the resumed run's folder
    err = error_of(args, capsys)  # the cosine run has finished its schedule
    assert "cosine schedule" in err and "ends at epoch 1" in err and "start a new run" in err


def test_resuming_from_best_never_replaces_a_later_last(folder, tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    assert main(folder_args(*folder, out, "--scheduler", "none", epochs="1")) == 0
    torch.save({**read_checkpoint(out / "best.pt"), "epoch": 0}, out / "best.pt")  # as if epoch 1 got worse
    err = error_of(folder_args(*folder, out, "--resume", str(out / "best.pt"), epochs="3"), capsys)
    assert "best.pt (epoch 0)" in err and "last.pt (epoch 1)" in err and f"--resume {out / 'last.pt'}" in err


def test_resume_refuses_a_new_lr_and_a_longer_one_cycle(folder, run, tmp_path, capsys):
    err = error_of(folder_args(*folder, tmp_path / "a", "--resume", str(run / "last.pt"), "--lr", "0.1", epochs="2"),
                   capsys)  # fmt: skip
    assert "--lr 0.002" in err and "--lr 0.1" in err and "start a new run" in err
    out = tmp_path / "cycle"
    assert main(folder_args(*folder, out, "--scheduler", "onecycle", epochs="1")) == 0
    err = error_of(folder_args(*folder, out, "--resume", str(out / "last.pt"), epochs="3"), capsys)
    assert "one-cycle schedule" in err and "ends at epoch 1" in err and "start a new run" in err


def test_an_interrupted_one_cycle_run_resumes_with_its_own_settings(folder, tmp_path, monkeypatch, capsys):
    from unet_tutorial import train

    evaluate, calls = train.evaluate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", interrupted)
    out = tmp_path / "cycle"
    assert main(folder_args(*folder, out, "--scheduler", "onecycle", "--lr", "0.01", epochs="2")) == 130
    assert read_checkpoint(out / "last.pt")["epoch"] == 1
    monkeypatch.undo()
    args = folder_args(*folder, out, "--resume", str(out / "last.pt"), epochs="2")  # --lr and --scheduler: the run's
    assert main(args) == 0
    assert "epoch 2/2" in capsys.readouterr().out and read_checkpoint(out / "last.pt")["epoch"] == 2
