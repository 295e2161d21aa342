"""Bad input to checkpoints: settings that do not survive a weights-only load, run folders holding something else,
and a resumed run's settings compared as the learner means them (a tuple is its list, NaN is NaN)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from unet_tutorial.checkpoint import CheckpointError, load_model, read_checkpoint, resumable, save_checkpoint
from unet_tutorial.model import UNet


@pytest.fixture(scope="module")
def model():
    return UNet(base_channels=4, depth=1)


def test_the_same_settings_resume_after_a_round_trip_tuples_lists_nan_and_tensors_included(tmp_path, model):
    config = {"image_size": (64, 96), "augment": {"scale": (0.6, 1.0), "crops": [(1, 2)]}, "lr": 1e-3,
              "label_smoothing": float("nan"), "class_weights": torch.tensor([1.0, 2.5])}  # fmt: skip
    save_checkpoint(tmp_path / "last.pt", model, epoch=2, history={}, config=config)
    stored = read_checkpoint(tmp_path / "last.pt")["config"]
    assert stored["image_size"] == (64, 96) and isinstance(stored["image_size"], tuple), "pickle keeps tuples"
    lines = []
    assert resumable(tmp_path, config, log=lines.append) == tmp_path / "last.pt", lines
    # The notebook now says lists where the run said tuples (or the other way): the same settings, not a new run.
    as_lists = {**config, "image_size": [64, 96], "augment": {"scale": [0.6, 1.0], "crops": [[1, 2]]}}
    assert resumable(tmp_path, as_lists, log=lines.append) == tmp_path / "last.pt", lines[-1]
    assert resumable(tmp_path, {**config, "class_weights": [1.0, 2.5]}, log=lines.append) is not None


def test_a_changed_setting_still_trains_again_and_only_it_is_named(tmp_path, model):
    config = {"image_size": (64, 96), "dropout": float("nan"), "lr": 1e-3}
    save_checkpoint(tmp_path / "last.pt", model, epoch=1, history={}, config=config)
    lines = []
    assert resumable(tmp_path, {**config, "image_size": [64, 64]}, log=lines.append) is None
    assert "image_size (64, 96) -> [64, 64]" in lines[-1] and "dropout" not in lines[-1] and "lr" not in lines[-1]
    assert resumable(tmp_path, {**config, "dropout": 0.1}, log=lines.append) is None
    assert "dropout nan -> 0.1" in lines[-1]
    assert resumable(tmp_path, {**config, "lr": 2e-3}, log=lines.append) is None


def test_a_setting_added_later_as_none_keeps_the_run_and_one_with_a_value_does_not(tmp_path, model):
    config = {"image_size": (64, 96)}  # saved before the notebook had "max_cars"
    save_checkpoint(tmp_path / "last.pt", model, epoch=1, history={}, config=config)
    lines = []
    assert resumable(tmp_path, {**config, "max_cars": None}, log=lines.append) == tmp_path / "last.pt", lines
    assert resumable(tmp_path, {**config, "max_cars": 24}, log=lines.append) is None
    assert "max_cars (unset) -> 24" in lines[-1]


@pytest.mark.parametrize(
    ("value", "named"),
    [(np.float64(0.5), "numpy.float64"), (np.int64(3), "numpy.int64"), (Path("data/carvana"), "PosixPath")],
)
def test_settings_a_weights_only_load_would_refuse_are_refused_before_anything_is_written(
    tmp_path, model, value, named
):
    # Written, such a file would be refused as "unsafe" by every later load: the run's weights out of reach.
    config = {"model": "unet", "augment": {"scale": [0.6, value]}}
    with pytest.raises(CheckpointError, match=rf"config\['augment'\]\['scale'\]\[1\] is a .*{named}.*float\(x\)"):
        save_checkpoint(tmp_path / "last.pt", model, epoch=1, config=config)
    assert list(tmp_path.iterdir()) == [], "no file, no temporary left behind"
    with pytest.raises(CheckpointError, match=r"config\['augment'\]"):  # a notebook hears it before training
        resumable(tmp_path, config, log=lambda line: None)


def test_fit_refuses_such_settings_before_the_first_epoch(tmp_path, model):
    from unet_tutorial.train import fit

    def loader():
        raise AssertionError("fit trained before checking its config")

    with pytest.raises(CheckpointError, match=r"config\['lr'\] is a numpy.float64"):
        fit(model, loader, loader, epochs=1, loss_fn=None, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            device="cpu", num_classes=1, checkpoint_dir=tmp_path, config={"lr": np.float64(0.1)})  # fmt: skip


def test_a_run_folder_holding_something_else_is_named_and_nothing_is_replaced(tmp_path, model):
    config = {"lr": 1e-3}
    a_file = tmp_path / "run"
    a_file.write_text("my notes")
    with pytest.raises(NotADirectoryError, match=r"run .* is a file, not a folder"):
        resumable(a_file, config)
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "last.pt")  # the learner's own weights, not a run
    with pytest.raises(CheckpointError, match=r"last.pt was not written by fit \(it holds no epoch\).*move it"):
        resumable(folder, config, log=lambda line: None)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "last.pt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match=r"to train this run from scratch instead, delete .*last.pt"):
        resumable(damaged, config, log=lambda line: None)
    assert (damaged / "last.pt").read_bytes() == b"PK\x03\x04 cut short"


def test_a_folder_passed_as_a_checkpoint_is_called_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a checkpoint; pass the last.pt or best.pt"):
        read_checkpoint(tmp_path)


def test_load_model_refuses_model_kwargs_that_are_not_a_dict(tmp_path, model):
    path = save_checkpoint(tmp_path / "odd.pt", model, config={"model": "unet", "model_kwargs": None})
    with pytest.raises(CheckpointError, match=r"model_kwargs is None, not a dict of keyword arguments"):
        load_model(path)
