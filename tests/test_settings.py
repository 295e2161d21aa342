"""tools.settings runs a notebook's settings cell in a chosen mode; utils.run_mode picks the mode."""

import pytest

from tools.settings import notebook_settings, settings_cell
from unet_tutorial.utils import run_mode

SOURCE = """# %% [markdown]
# # A notebook

# %% tags=["settings"]
from unet_tutorial.utils import pick_device, run_mode

DEVICE = pick_device("cpu")
MODE = run_mode(DEVICE)
IMAGE_SIZE = {"smoke": (32, 48), "cpu": (96, 144), "gpu": (320, 480)}[MODE]
helper = 3

# %%
raise RuntimeError("no other cell runs")
"""


def test_the_settings_cell_runs_in_each_mode(tmp_path):
    source = tmp_path / "nb.py"
    source.write_text(SOURCE)
    assert "IMAGE_SIZE" in settings_cell(source)
    assert notebook_settings(source, "gpu")["IMAGE_SIZE"] == (320, 480)
    cpu = notebook_settings(source, "cpu")
    assert cpu["IMAGE_SIZE"] == (96, 144) and cpu["MODE"] == "cpu" and "helper" not in cpu


def test_a_notebook_without_one_settings_cell_is_named(tmp_path):
    source = tmp_path / "nb.py"
    source.write_text(SOURCE.replace('tags=["settings"]', ""))
    with pytest.raises(ValueError, match="nb.py: expected one cell tagged settings"):
        settings_cell(source)


def test_run_mode_follows_smoke_mode_and_the_device_unless_forced(monkeypatch):
    monkeypatch.delenv("UNET_TUTORIAL_MODE", raising=False)
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "1")
    assert run_mode("cpu") == "smoke"
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    assert run_mode("cpu") == "cpu" and run_mode("cuda") == "gpu"
    monkeypatch.setenv("UNET_TUTORIAL_MODE", "gpu")
    assert run_mode("cpu") == "gpu"
    monkeypatch.setenv("UNET_TUTORIAL_MODE", "fast")
    with pytest.raises(ValueError, match="UNET_TUTORIAL_MODE='fast' is not a mode"):
        run_mode("cpu")
