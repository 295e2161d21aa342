"""The benchmark scripts' core functions run, on tiny inputs (no timings are asserted)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_train = _load("bench_train")
bench_data = _load("bench_data")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.mark.parametrize("config", ["fp32", "checkpointing"])
def test_measure_runs_a_tiny_config(config):
    result = bench_train.measure(
        "unet-small", (32, 32), config, device=torch.device("cpu"), batch_size=2, warmup=1, repeats=1
    )
    assert "error" not in result, result
    assert result["images_per_s"] > 0 and result["step_s"] > 0 and result["peak_mb"] > 0
    # model FLOPs, the same with or without recomputation: UNet(base 16) at 32 px, forward 0.095 GFLOPs x 3
    assert result["train_gflops_per_image"] == pytest.approx(0.2834, rel=1e-3)
    assert "unet-small" in bench_train.format_table([result])


def test_flops_scale_with_pixels_and_backward_costs_twice_the_forward():
    from torch.utils.flop_counter import FlopCounterMode

    from unet_tutorial.model import UNet

    train = bench_train.train_flops_per_image("unet", (64, 64))
    assert bench_train.train_flops_per_image("unet", (128, 128)) == 4 * train  # convolutions: linear in pixels
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        UNet()(torch.empty(1, 3, 64, 64))
    # backward: a gradient for the input and one for the weights, each as costly as the forward
    # (the first convolution needs no input gradient)
    assert 2.99 < train / counter.get_total_flops() < 3.0


def test_config_settings_follow_the_engine_defaults():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert bench_train.config_settings("default", cpu) == {
        "amp_dtype": None,
        "channels_last": False,
        "compile": False,
        "checkpointing": False,
    }
    assert bench_train.config_settings("default+compile", cuda)["channels_last"]
    with pytest.raises(ValueError, match="not known"):
        bench_train.config_settings("int8", cpu)


def test_check_targets_reads_ratios():
    rows = [
        {"model": "unet", "height": 512, "width": 512, "config": "fp32", "images_per_s": 10.0},
        {"model": "unet", "height": 512, "width": 512, "config": "default", "images_per_s": 25.0},
        {"model": "unet", "height": 640, "width": 959, "config": "default", "images_per_s": 20.0},
    ]
    one, two = bench_train.check_targets(rows, {"full": 15.0, "cache": 60.0})
    assert "2.50x" in one and "MET" in one
    assert "0.75x" in two and "DOES NOT KEEP UP" in two


def test_main_quick_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_train, "CONFIGS", ("fp32",))
    out = tmp_path / "bench.json"
    bench_train.main(["--quick", "--configs", "fp32", "--device", "cpu", "--threads", "1", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"][0]["config"] == "fp32" and saved["environment"]["torch"] == torch.__version__


def test_cache_draft_and_torchvision_pipelines(tmp_path):
    from unet_tutorial.course.sample_data import make_carvana_like

    root = make_carvana_like(tmp_path / "carvana", 1, views=2, size=(128, 192))
    cached = bench_data.make_dataset(root, 0.25, "cache", "albumentations")  # 0.25 of Carvana: 480x320
    assert cached[0][0].shape == (3, 320, 480) and len(cached) == 2
    draft = bench_data.DraftCarvanaDataset(root, (64, 96))
    image, mask = draft[0]
    assert image.shape[0] == 3 and mask.shape == (1, *image.shape[1:]) and set(mask.unique().tolist()) <= {0, 1}
    twin = bench_data.TorchvisionTrainTransform((64, 96))
    out = twin(image=np.zeros((128, 192, 3), np.uint8), mask=np.ones((128, 192), np.uint8))
    assert out["image"].shape == (3, 64, 96) and out["image"].dtype == torch.float32
    assert out["mask"].shape == (64, 96) and set(out["mask"].unique().tolist()) <= {0, 1}


def test_gpu_check_dry_run_starts_every_step(tmp_path):
    gpu_check = _load("gpu_check")
    report = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--work", str(tmp_path / "data")])
    table = report.read_text()
    assert report.name == "gpu_check_dry_run.md" and (tmp_path / "bench_train.json").is_file()
    for step in ("bench_train unet-small", "bench_data", "03 UNet", "04 DenseNetUNet", "05 UNet"):
        assert step in table


@pytest.mark.slow
def test_the_real_carvana_recipe_runs_end_to_end_on_the_official_layout(official_data, tmp_path):
    """benchmarks/real_carvana_recipe.py, as the README's command runs it, on three drawn cars in Kaggle's layout."""
    recipe = _load("real_carvana_recipe")
    results = recipe.main(
        ["--data", str(official_data / "carvana"), "--work", str(tmp_path), "--image-size", "32x48", "--epochs", "1"]
        + ["--val-fraction", "0.34", "--batch-size", "4", "--threads", "1", "--json", str(tmp_path / "r.json")]
    )
    assert results["val_images"] == 16 and results["train_images"] > 0  # one whole car held out, of three
    assert 0 <= results["full_resolution_dice"] <= 1 and 0 <= results["val_dice_at_image_size"] <= 1
    assert json.loads((tmp_path / "r.json").read_text())["best_epoch"] == 1
