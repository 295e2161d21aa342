"""The environment a notebook runs in: smoke mode, device, seeds, Colab, where data lives.

Every notebook's settings cell calls these, so the same notebook runs on Colab (GPU), on a laptop CPU and in CI
(smoke mode). Nothing here knows about models or data formats. Taught in: every notebook's setup cell (01 first).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "UNET_TUTORIAL_SMOKE"
DATA_ENV = "UNET_TUTORIAL_DATA"
REPORT_ENV = "UNET_TUTORIAL_REPORT"
REPO_URL = "https://github.com/unet-tutorial/unet-tutorial"


def smoke_mode() -> bool:
    """True when ``UNET_TUTORIAL_SMOKE=1``: tiny data, tiny images, a few batches (tests and CI)."""
    return os.environ.get(SMOKE_ENV, "0").strip().lower() in {"1", "true", "yes", "on"}


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device ("cpu", "cuda", "cuda:1", "mps"); an unavailable choice is an error.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={prefer!r} was asked for but CUDA is not available; use 'cpu' or None.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device={prefer!r} was asked for but MPS is not available; use 'cpu' or None.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def set_seed(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (all devices); optionally ask PyTorch for deterministic kernels.

    The shuffle and the augmentations follow too: the package's loaders and ``fit`` draw their seeds from
    PyTorch's generator (``data.seed_loader``). Deterministic kernels also keep ``cudnn.benchmark`` off.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def data_root() -> Path:
    """Where datasets live: ``$UNET_TUTORIAL_DATA``, else /content/data on Colab, else ~/.cache/unet_tutorial."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    if in_colab():
        return Path("/content/data")
    return Path.home() / ".cache" / "unet_tutorial"


def report_metric(name: str, value: float, notebook: str) -> None:
    """Print a notebook's headline metric and, when ``$UNET_TUTORIAL_REPORT`` names a folder, record it there.

    ``make tutorial`` sets that folder and prints one table of every notebook's headline metric.
    """
    print(f"{notebook}: {name} = {value:.4f}")
    folder = os.environ.get(REPORT_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"{notebook}.json"
        path.write_text(json.dumps({"notebook": notebook, "metric": name, "value": float(value)}))
