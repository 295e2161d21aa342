"""Every notebook's GPU recipe fits a 15 GB T4 by the memory estimate, and states the times its FLOPs give."""

import pytest
import torch

from unet_tutorial.recipes import RECIPES, describe, estimate_memory, estimate_times, recipe, recipe_mode


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("notebook", sorted(RECIPES))
def test_gpu_recipe_fits_a_t4_in_fp16(notebook):
    estimate = estimate_memory(notebook, "gpu", amp_dtype=torch.float16)
    # 14 GiB of a T4's 15 GB: the rest is the CUDA context, cuDNN workspaces and the allocator's slack
    assert estimate["total"] < 14 * 2**30, {name: f"{value / 2**30:.2f} GiB" for name, value in estimate.items()}


@pytest.mark.parametrize("notebook", sorted(RECIPES))
def test_stated_estimates_follow_from_the_flops(notebook):
    stated = recipe(notebook, "gpu")["estimates"]
    computed = estimate_times(notebook)
    assert stated.keys() == computed.keys()
    for gpu, (epoch_s, total_min) in stated.items():
        assert epoch_s == pytest.approx(computed[gpu][0], rel=0.1, abs=1)
        assert total_min == pytest.approx(computed[gpu][1], rel=0.1, abs=1)
    assert computed["T4"][1] < (45 if notebook == "04_densenet121_transfer" else 120)  # minutes


def test_recipes_resolve_workers_and_modes(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert recipe("03_carvana_binary", "gpu")["num_workers"] == 8
    assert recipe("03_carvana_binary", "cpu")["num_workers"] == 0
    assert recipe_mode("cpu", smoke=True) == "smoke" and recipe_mode("cuda", smoke=False) == "gpu"
    assert recipe_mode("cpu", smoke=False) == "cpu"
    assert "estimate on a T4" in describe(recipe("05_ade20k_multiclass", "gpu"))
    with pytest.raises(KeyError, match="no recipe"):
        recipe("06_nothing", "gpu")
    with pytest.raises(ValueError, match="mode"):
        recipe("03_carvana_binary", "tpu")
    # every mode of a notebook holds the same settings
    for modes in RECIPES.values():
        keys = {name for name in modes["gpu"] if name != "estimates"}
        assert all(set(modes[mode]) == keys for mode in ("smoke", "cpu"))
