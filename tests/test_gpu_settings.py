"""Every notebook's GPU settings, read from its settings cell, fit a 15 GB T4 in fp16 by the memory estimate."""

import estimates  # benchmarks/estimates.py (tests/conftest.py puts benchmarks/ on the path)
import pytest
import torch

TRAINING = ("03_carvana_binary", "04_densenet121_transfer", "05_ade20k_multiclass")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.mark.parametrize("stem", TRAINING)
def test_gpu_settings_fit_a_t4_in_fp16(stem):
    estimate = estimates.estimate_memory(stem, "gpu", amp_dtype=torch.float16)
    # 14 GiB of a T4's 15 GB: the rest is the CUDA context, cuDNN workspaces and the allocator's slack
    assert estimate["total"] < 14 * 2**30, {name: f"{value / 2**30:.2f} GiB" for name, value in estimate.items()}


@pytest.mark.parametrize("stem", TRAINING)
def test_gpu_settings_train_in_a_sitting_on_a_t4(stem):
    minutes = estimates.estimate_times(stem)["T4"][1]
    assert minutes < (45 if stem.startswith("04") else 120), f"{stem}: about {minutes:.0f} min on a T4 (estimated)"


def test_each_notebook_trains_larger_images_in_gpu_mode_than_in_smoke_mode():
    for stem in TRAINING:
        smoke, gpu = estimates.runs(stem, "smoke"), estimates.runs(stem, "gpu")
        assert len(smoke) == len(gpu), stem
        assert max(run["image_size"][0] for run in gpu) > max(run["image_size"][0] for run in smoke), stem
