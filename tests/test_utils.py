import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unet_tutorial import utils


def test_smoke_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "1")
    assert utils.smoke_mode()
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    assert not utils.smoke_mode()
    monkeypatch.delenv("UNET_TUTORIAL_SMOKE")
    assert not utils.smoke_mode()


def test_pick_device_falls_back_to_cpu_and_rejects_unavailable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(utils, "_mps_available", lambda: False)
    assert utils.pick_device() == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        utils.pick_device("cuda")


def test_set_seed_repeats_every_generator():
    utils.set_seed(3)
    first = (torch.rand(2), np.random.rand(2))
    utils.set_seed(3)
    second = (torch.rand(2), np.random.rand(2))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path))
    assert utils.data_root() == tmp_path
    monkeypatch.delenv("UNET_TUTORIAL_DATA")
    monkeypatch.setattr(utils, "in_colab", lambda: True)
    assert utils.data_root() == Path("/content/data")
    monkeypatch.setattr(utils, "in_colab", lambda: False)
    assert utils.data_root() == Path.home() / ".cache" / "unet_tutorial"


def test_report_metric_writes_json_when_asked(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UNET_TUTORIAL_REPORT", str(tmp_path))
    utils.report_metric("val_dice", 0.5, "03_demo")
    assert json.loads((tmp_path / "03_demo.json").read_text())["value"] == 0.5
    assert "val_dice = 0.5000" in capsys.readouterr().out
    utils.report_metric("val_dice", 0.25, "03_demo", data="generated")
    assert json.loads((tmp_path / "03_demo.json").read_text())["data"] == "generated"
    assert "val_dice = 0.2500 (generated data)" in capsys.readouterr().out


def test_runs_root_is_local_off_colab_and_on_drive_on_colab(monkeypatch, tmp_path):
    import sys
    import types

    assert utils.runs_root() == utils.runs_root(on_drive=True) == Path("runs")  # not on Colab: nothing changes
    with pytest.raises(RuntimeError, match="Colab"):
        utils.drive_root()
    mounted = []
    drive = types.SimpleNamespace(mount=lambda where: (mounted.append(where), (tmp_path / "MyDrive").mkdir()))
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(drive=drive))
    monkeypatch.setattr(utils, "DRIVE_MOUNT", tmp_path)
    monkeypatch.setattr(utils, "DRIVE_ROOT", tmp_path / "MyDrive" / "unet_tutorial")
    assert utils.runs_root(on_drive=True) == tmp_path / "MyDrive" / "unet_tutorial" / "runs"
    assert utils.runs_root(on_drive=False) == Path("runs")
    utils.drive_root()
    assert mounted == [str(tmp_path)], "Drive is mounted once"


def test_data_root_is_stripped_and_validated(monkeypatch, tmp_path):
    monkeypatch.setenv("UNET_TUTORIAL_DATA", f"  {tmp_path}\n")
    assert utils.data_root() == tmp_path
    monkeypatch.setenv("UNET_TUTORIAL_DATA", " ")  # blank: as if unset
    monkeypatch.setattr(utils, "in_colab", lambda: False)
    assert utils.data_root() == Path.home() / ".cache" / "unet_tutorial"
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path / "notes.txt"))
    with pytest.raises(NotADirectoryError, match=r"UNET_TUTORIAL_DATA=.*notes\.txt is a file, not a folder"):
        utils.data_root()
    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path / "new" / "data"))
    monkeypatch.setattr(utils.os, "access", lambda path, mode: False)  # a read-only folder (tests may run as root)
    assert utils.data_root() == tmp_path / "new" / "data"  # reading is fine
    with pytest.raises(
        PermissionError,
        match=rf"UNET_TUTORIAL_DATA=.*data cannot be written \({tmp_path} is "
        r"read-only\)",
    ):
        utils.data_root(writable=True)


def test_valid_pixels_skips_only_the_ignore_index():
    from unet_tutorial.conventions import IGNORE_INDEX, valid_pixels

    targets = torch.tensor([[0, 1, IGNORE_INDEX], [2, IGNORE_INDEX, 0]])
    assert valid_pixels(targets, IGNORE_INDEX).tolist() == [[True, True, False], [True, False, True]]
    assert valid_pixels(targets, None).all()
