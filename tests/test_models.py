"""One name per model: the table, old checkpoints' names, load_model, and whether a run folder can be continued."""

import pytest
import torch

from unet_tutorial.checkpoint import CheckpointError, load_model, resumable, save_checkpoint
from unet_tutorial.densenet_unet import DenseNetUNet
from unet_tutorial.metrics import SegmentationMetrics
from unet_tutorial.model import UNet
from unet_tutorial.models import MODELS, build_model, model_name
from unet_tutorial.train import evaluate


def test_every_name_builds_its_class_and_old_names_still_resolve():
    assert MODELS == {"unet": UNet, "densenet_unet": DenseNetUNet}
    assert isinstance(build_model("unet", num_classes=2, base_channels=4, depth=1), UNet)
    assert [model_name(old) for old in ("UNet", "densenet-unet", "DenseNetUNet")] == [
        "unet",
        "densenet_unet",
        "densenet_unet",
    ]
    with pytest.raises(KeyError, match="no model is called 'segformer'; use one of unet, densenet_unet"):
        model_name("segformer")


def test_constructors_take_keywords_only():
    with pytest.raises(TypeError):
        UNet(3, 1)
    with pytest.raises(TypeError):
        DenseNetUNet(1)


def test_a_checkpoint_saved_as_notebook_03_saves_it_loads_by_its_name(tmp_path):
    # notebook 03 stored {"model": "UNet", "model_kwargs": {"base_channels": ...}} before the names were one
    model = UNet(base_channels=4, depth=2)
    for name in ("UNet", "unet"):
        path = save_checkpoint(
            tmp_path / f"{name}.pt", model, config={"model": name, "model_kwargs": {"base_channels": 4, "depth": 2}}
        )
        loaded, config = load_model(path)
        assert isinstance(loaded, UNet) and not loaded.training and config["model"] == name
        torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_load_model_refuses_a_file_without_a_model_config(tmp_path):
    path = save_checkpoint(tmp_path / "bare.pt", UNet(base_channels=4, depth=2))
    with pytest.raises(CheckpointError, match="has no model config"):
        load_model(path)


def test_resumable_continues_only_the_same_settings_and_says_which_differ(tmp_path):
    lines = []
    config = {"lr": 0.003, "epochs": 2}
    assert resumable(tmp_path, config, log=lines.append) is None and "training from scratch" in lines[-1]
    save_checkpoint(tmp_path / "last.pt", UNet(base_channels=4, depth=1), epoch=1, config=config)
    assert resumable(tmp_path, config, log=lines.append) == tmp_path / "last.pt"
    assert "after epoch 1: fit resumes from it" in lines[-1]
    save_checkpoint(tmp_path / "last.pt", UNet(base_channels=4, depth=1), epoch=2, config=config)
    assert resumable(tmp_path, config, log=lines.append) == tmp_path / "last.pt"
    assert "finished after epoch 2: loading it" in lines[-1]  # not "continuing" a run with nothing left
    assert resumable(tmp_path, {**config, "lr": 0.001}, log=lines.append) is None
    assert "lr 0.003 -> 0.001" in lines[-1] and "epochs" not in lines[-1]
    assert resumable(None, config) is None


def test_evaluate_counts_into_the_accumulator_it_is_given():
    model = torch.nn.Conv2d(3, 3, 1)
    images = torch.randn(4, 3, 8, 8)
    masks = torch.randint(0, 3, (4, 8, 8))
    masks[0, 0, 0] = 255
    loader = [(images[:2], masks[:2]), (images[2:], masks[2:])]
    metrics = SegmentationMetrics(3, ignore_index=255)
    results = evaluate(model, loader, "cpu", num_classes=3, ignore_index=255, metrics=metrics, progress=False)
    confusion = metrics.confusion_matrix()
    assert confusion.shape == (3, 3) and confusion.sum() == 4 * 8 * 8 - 1
    assert results["pixel_accuracy"] == pytest.approx((confusion.diag().sum() / confusion.sum()).item())
    with pytest.raises(ValueError, match="metrics counts 3 classes, num_classes is 2"):
        evaluate(model, loader, "cpu", num_classes=2, metrics=metrics, progress=False)
