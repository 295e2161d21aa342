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
MODE_ENV = "UNET_TUTORIAL_MODE"
MODES = ("smoke", "cpu", "gpu")
REPO_URL = "https://github.com/unet-tutorial/unet-tutorial"


def smoke_mode() -> bool:
    """True when ``UNET_TUTORIAL_SMOKE=1``: tiny data, tiny images, a few batches (tests and CI)."""
    return os.environ.get(SMOKE_ENV, "0").strip().lower() in {"1", "true", "yes", "on"}


def run_mode(device: torch.device | str) -> str:
    """Which of a notebook's settings apply: "smoke" in smoke mode, "gpu" on CUDA, "cpu" anywhere else (MPS too).

    ``$UNET_TUTORIAL_MODE`` overrides it, so that a test can read a notebook's GPU settings on a CPU.
    """
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced:
        if forced not in MODES:
            raise ValueError(f"{MODE_ENV}={forced!r} is not a mode; use one of {', '.join(MODES)}")
        return forced
    return "smoke" if smoke_mode() else ("gpu" if torch.device(device).type == "cuda" else "cpu")


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
    PyTorch's generator (``loaders.seed_loader``). Deterministic kernels also keep ``cudnn.benchmark`` off.
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


def data_root(writable: bool = False) -> Path:
    """Where datasets live: ``$UNET_TUTORIAL_DATA``, else /content/data on Colab, else ~/.cache/unet_tutorial.

    The variable is stripped of surrounding spaces (a blank one counts as unset).
    Args:
        writable: the caller will write there (sample data, downloads): check that it can, now.
    Raises:
        NotADirectoryError: ``$UNET_TUTORIAL_DATA`` names a file.
        PermissionError: ``writable`` and the folder cannot be written.
    """
    value = os.environ.get(DATA_ENV, "").strip()
    if value:
        root, where = Path(value).expanduser(), f"{DATA_ENV}={value}"
    else:
        root = Path("/content/data") if in_colab() else Path.home() / ".cache" / "unet_tutorial"
        where = f"the data folder {root}"
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{where} is a file, not a folder; point {DATA_ENV} at a folder for datasets")
    if writable:
        existing = next(p for p in (root, *root.parents) if p.exists())  # the folder that will hold the new ones
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(
                f"{where} cannot be written ({existing} is read-only); point {DATA_ENV} at a folder you can write to"
            )
    return root


DRIVE_MOUNT = Path("/content/drive")
DRIVE_ROOT = DRIVE_MOUNT / "MyDrive" / "unet_tutorial"  # the course's folder on a learner's Google Drive


def drive_root() -> Path:
    """The course's folder on Google Drive, mounted on first use (Colab asks for permission once per session).

    On Colab everything under /content goes with the VM; what is kept here survives it.

    Raises:
        RuntimeError: not on Colab (on your own machine the local disk already keeps everything).
    """
    if not in_colab():
        raise RuntimeError(
            "drive_root() needs Google Colab; elsewhere keep files on the local disk (set CACHE_ON_DRIVE = False)"
        )
    if not (DRIVE_MOUNT / "MyDrive").is_dir():
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))
    DRIVE_ROOT.mkdir(parents=True, exist_ok=True)
    return DRIVE_ROOT


def runs_root(on_drive: bool = False) -> Path:
    """Where run folders (checkpoints ``last.pt``/``best.pt``, histories) go: ``runs/``, or Google Drive.

    Args:
        on_drive: on Colab, keep runs in ``MyDrive/unet_tutorial/runs`` (mounting Drive), so that "resume from
            last.pt" still works after a disconnect or on a new VM. Off Colab it changes nothing.
    """
    return drive_root() / "runs" if on_drive and in_colab() else Path("runs")


def report_metric(name: str, value: float, notebook: str, *, data: str | None = None) -> None:
    """Print a notebook's headline metric and, when ``$UNET_TUTORIAL_REPORT`` names a folder, record it there.

    ``make tutorial`` sets that folder and prints one table of every notebook's headline metric; ``make results``
    writes them into the README.

    Args:
        data: what the metric was measured on, e.g. "generated" or "real" (the README's table says it).
    """
    print(f"{notebook}: {name} = {value:.4f}" + (f" ({data} data)" if data else ""))
    folder = os.environ.get(REPORT_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"{notebook}.json"
        record = {"notebook": notebook, "metric": name, "value": float(value)}
        path.write_text(json.dumps(record | ({"data": data} if data else {})))
