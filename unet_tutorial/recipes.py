"""The settings of notebooks 03, 04 and 05, per mode, importable without running a notebook.

Each notebook's settings cell reads its values from ``recipe(notebook, mode)`` and prints them, so the numbers a
learner sees are the ones the tests check: ``tests/test_recipes.py`` proves with ``measure.training_memory`` that
every GPU recipe fits a 15 GB T4, and ``benchmarks/gpu_check.py`` trains one epoch of each on a real GPU.
Modes: "smoke" (tests and CI: tiny, seconds), "cpu" (a laptop: minutes), "gpu" (a Colab T4 and up).
A GPU recipe also states its expected seconds per epoch and total minutes on a T4, an L4 and an A100 for the
real data sets: ``estimate_times`` computes them from the model's FLOPs per image and the sustained throughputs
assumed in ``SUSTAINED_TFLOPS``. They are estimates until ``make gpu-check`` measures them.
Left out: anything a notebook teaches in a cell of its own (transforms, losses, learning-rate schedules).
Taught in: notebooks 03 (Carvana), 04 (DenseNet121 transfer) and 05 (ADE20K), in their settings cells.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable

import torch
from torch import nn

from unet_tutorial.losses import ComboLoss
from unet_tutorial.measure import train_flops_per_image, training_memory

MODES = ("smoke", "cpu", "gpu")
# Sustained TFLOP/s of U-Net training under autocast (fp16 on a T4, bf16 on an L4 and an A100): assumed, not
# measured. About 8%, 12% and 16% of each GPU's dense 16-bit peak (65, 121, 312): ResNet-50's mixed-precision
# training reaches roughly 10-20%, and a U-Net's BatchNorm on full-resolution feature maps is memory-bound.
SUSTAINED_TFLOPS = {"T4": 5.0, "L4": 15.0, "A100": 50.0}
# Real data sets, as the notebooks split them: Carvana 5,088 images of 318 cars, 15% of the cars for validation
# and (notebook 03's GPU recipe) 2% of the training cars' images held back; ADE20K 20,210 training and 2,000 validation
# photos, validated at their own size (on average about 1.4 times the pixels of a 512x512 crop).
CARVANA_TRAIN, CARVANA_VAL, CARVANA_LEAK = 4234, 768, 86
ADE20K_TRAIN, ADE20K_VAL, ADE20K_VAL_PIXELS = 20210, 2000, 1.4 * 512 * 512

RECIPES: dict[str, dict[str, dict]] = {
    "03_carvana_binary": {
        "smoke": {
            "sample_cars": 3,
            "sample_size": (64, 96),
            "image_size": (64, 96),
            "base_channels": 8,
            "batch_size": 8,
            "epochs": 1,
            "lr": 3e-3,
            "num_workers": 0,
            "resized_cache": None,
            "leak_fraction": 0.1,
        },
        "cpu": {
            "sample_cars": 24,
            "sample_size": (160, 240),
            "image_size": (96, 144),
            "base_channels": 16,
            "batch_size": 8,
            "epochs": 6,
            "lr": 3e-3,
            "num_workers": 0,
            "resized_cache": None,
            "leak_fraction": 0.1,
        },
        # quarter-resolution images from a half-scale copy (decoded once), a wider U-Net, mixed precision; the
        # split-by-image experiment holds back only 2% of the training images (enough to measure it)
        "gpu": {
            "sample_cars": 24,
            "sample_size": (640, 960),  # generated stand-in: twice the model's size, as real photos are larger
            "image_size": (320, 480),
            "base_channels": 32,
            "batch_size": 16,
            "epochs": 15,
            "lr": 1e-3,
            "num_workers": "auto",
            "resized_cache": 0.5,
            "leak_fraction": 0.02,
            "estimates": {"T4": (153, 38), "L4": (51, 13), "A100": (15, 4)},
        },
    },
    "04_densenet121_transfer": {
        "smoke": {
            "sample_cars": 3,
            "sample_size": (64, 96),
            "image_size": (64, 96),
            "train_images": 8,
            "val_images": 8,
            "batch_size": 4,
            "epochs": 2,
            "frozen_epochs": 1,
            "unet_base_channels": 8,
            "num_workers": 0,
        },
        "cpu": {
            "sample_cars": 24,
            "sample_size": (160, 240),
            "image_size": (96, 144),
            "train_images": 96,
            "val_images": 64,
            "batch_size": 4,
            "epochs": 3,
            "frozen_epochs": 1,
            "unet_base_channels": 16,
            "num_workers": 0,
        },
        # notebook 03's U-Net (base 32), three DenseNetUNets and a second unfrozen phase: 80 training and 20
        # validation cars
        "gpu": {
            "sample_cars": 24,
            "sample_size": (640, 960),  # generated stand-in: twice the model's size, as real photos are larger
            "image_size": (320, 480),
            "train_images": 1280,
            "val_images": 320,
            "batch_size": 16,
            "epochs": 8,
            "frozen_epochs": 3,
            "unet_base_channels": 32,
            "num_workers": "auto",
            "estimates": {"T4": (47, 22), "L4": (16, 7), "A100": (5, 2)},
        },
    },
    "05_ade20k_multiclass": {
        "smoke": {
            "model": "densenet_unet",
            "base_channels": 16,
            "lr": 1e-3,
            "crop": {"real": 256, "sample": 64},
            "epochs": {"real": 1, "sample": 1},
            "train_limit": {"real": 1000, "sample": 4},
            "val_limit": {"real": 200, "sample": 40},
            "batch_size": 4,
            "accumulate": 1,
            "num_workers": 0,
            "compare_weights": True,
        },
        # 200 of the 400 generated scenes: both runs of section 6 (plain and class-weighted) in about 3 minutes
        "cpu": {
            "model": "unet",
            "base_channels": 16,
            "lr": 3e-3,
            "crop": {"real": 256, "sample": 96},
            "epochs": {"real": 1, "sample": 4},
            "train_limit": {"real": 1000, "sample": 200},
            "val_limit": {"real": 200, "sample": 40},
            "batch_size": 8,
            "accumulate": 1,
            "num_workers": 0,
            "compare_weights": True,
        },
        # 8 crops of 512 px per step fit a T4 (batch 16 would need about 20 GiB); two steps make one update of 16.
        # The class-weighted run of section 6 is opt-in here (compare_weights): it would double the time.
        "gpu": {
            "model": "densenet_unet",
            "base_channels": 16,
            "lr": 1e-3,
            "crop": {"real": 512, "sample": 128},
            "epochs": {"real": 5, "sample": 30},
            "train_limit": {"real": None, "sample": None},
            "val_limit": {"real": None, "sample": None},
            "batch_size": 8,
            "accumulate": 2,
            "num_workers": "auto",
            "compare_weights": False,
            "estimates": {"T4": (855, 71), "L4": (285, 24), "A100": (86, 7)},
        },
    },
}


def recipe_mode(device: torch.device | str, smoke: bool) -> str:
    """ "smoke" in smoke mode, else "gpu" on CUDA and "cpu" anywhere else (Apple's MPS included)."""
    return "smoke" if smoke else ("gpu" if torch.device(device).type == "cuda" else "cpu")


def recipe(notebook: str, mode: str) -> dict:
    """The settings of ``notebook`` (e.g. "03_carvana_binary") in ``mode``, as a new dict.

    ``num_workers`` "auto" becomes ``min(8, os.cpu_count())``: loader processes that decode and augment while the
    GPU trains (a Colab T4 has 2 vCPUs, bigger runtimes more). ``estimates`` (GPU recipes): GPU name ->
    (seconds per epoch, total minutes) on the real data, from ``estimate_times``.
    """
    if notebook not in RECIPES:
        raise KeyError(f"no recipe for notebook {notebook!r}; known: {sorted(RECIPES)}")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not known; use one of {MODES} (see recipe_mode)")
    settings = copy.deepcopy(RECIPES[notebook][mode])
    if settings["num_workers"] == "auto":
        settings["num_workers"] = min(8, os.cpu_count() or 1)
    return settings


def describe(settings: dict) -> str:
    """The settings as "name: value" lines, estimates as a small table, for a notebook to print."""
    lines = [f"{name}: {value}" for name, value in settings.items() if name != "estimates"]
    for gpu, (epoch_s, total_min) in settings.get("estimates", {}).items():
        lines.append(
            f"estimate on a {gpu}: {epoch_s:.0f} s per epoch, {total_min:.0f} min in all (real data; "
            "measure with make gpu-check)"
        )
    return "\n".join(lines)


def runs(notebook: str, mode: str) -> list[dict]:
    """What ``notebook`` trains in ``mode``: for each run, the model builder (random weights), loss, number of
    epochs, batch size, image size (H, W), images per epoch (training, validation) on the real data, and
    "count" where several runs train the same model."""
    settings = RECIPES[notebook][mode]
    binary = ComboLoss({"cross_entropy": 1.0, "dice": 1.0})
    if notebook == "03_carvana_binary":
        return [
            {
                "name": "UNet",
                "build": _unet(1, settings["base_channels"]),
                "loss": binary,
                "epochs": settings["epochs"],
                "batch_size": settings["batch_size"],
                "image_size": settings["image_size"],
                "images": (CARVANA_TRAIN, CARVANA_VAL + CARVANA_LEAK),
            }
        ]
    if notebook == "04_densenet121_transfer":
        images = (settings["train_images"] or CARVANA_TRAIN, settings["val_images"] or CARVANA_VAL)
        common = {
            "loss": binary,
            "batch_size": settings["batch_size"],
            "image_size": settings["image_size"],
            "images": images,
            "epochs": settings["epochs"],
        }
        # three DenseNetUNets (random encoder, ImageNet encoder, freeze then unfreeze), counted at full cost, and
        # the second unfrozen phase (encoder BatchNorm frozen) that starts from the same frozen phase
        unfrozen = settings["epochs"] - settings["frozen_epochs"]
        return [
            {"name": "U-Net from scratch", "build": _unet(1, settings["unet_base_channels"]), **common},
            {"name": "DenseNetUNet", "build": _densenet(1), "count": 3, **common},
            {"name": "DenseNetUNet, unfrozen again", "build": _densenet(1), **common, "epochs": unfrozen},
        ]
    crop = settings["crop"]["real"]
    build = _densenet(150) if settings["model"] == "densenet_unet" else _unet(150, settings["base_channels"])
    val_images = ADE20K_VAL * ADE20K_VAL_PIXELS / crop**2  # validated at their own size: counted in crops
    # plain CE + Dice, and with compare_weights the class-weighted run as well (the same model and cost)
    return [
        {
            "name": settings["model"],
            "build": build,
            "loss": ComboLoss({"cross_entropy": 1.0, "dice": 1.0}, 255),
            "count": 2 if settings["compare_weights"] else 1,
            "epochs": settings["epochs"]["real"],
            "batch_size": settings["batch_size"],
            "image_size": (crop, crop),
            "images": (settings["train_limit"]["real"] or ADE20K_TRAIN, settings["val_limit"]["real"] or val_images),
        }
    ]


def _unet(num_classes: int, base_channels: int) -> Callable[[], nn.Module]:
    from unet_tutorial.model import UNet

    return lambda: UNet(num_classes=num_classes, base_channels=base_channels)


def _densenet(num_classes: int) -> Callable[[], nn.Module]:
    from unet_tutorial.densenet_unet import DenseNetUNet

    return lambda: DenseNetUNet(num_classes=num_classes, weights=None)


def estimate_times(
    notebook: str, mode: str = "gpu", throughputs: dict[str, float] = SUSTAINED_TFLOPS
) -> dict[str, tuple[float, float]]:
    """GPU name -> (seconds per epoch, total minutes) of ``notebook``'s runs on its real data set.

    An epoch's work: its training images times the FLOPs of a forward and backward pass, plus its validation
    images times a forward pass (a third of that), at the ``throughputs`` (TFLOP/s) assumed for each GPU.
    Seconds per epoch are those of the biggest run; the total adds every run's epochs. The loader is assumed to
    keep up (notebook 03 reads a pre-resized copy for that reason).
    """
    work = []  # (TFLOP per epoch, epochs) per run
    for run in runs(notebook, mode):
        flops = train_flops_per_image(run["build"], run["image_size"]) / 1e12
        train_images, val_images = run["images"]
        work.append((train_images * flops + val_images * flops / 3, run["epochs"] * run.get("count", 1)))
    per_epoch = max(tflop for tflop, _ in work)
    total = sum(tflop * epochs for tflop, epochs in work)
    return {gpu: (per_epoch / speed, total / speed / 60) for gpu, speed in throughputs.items()}


def estimate_memory(notebook: str, mode: str = "gpu", amp_dtype: torch.dtype | None = torch.float16) -> dict[str, int]:
    """``measure.training_memory`` of the most demanding run of ``notebook`` in ``mode`` (bytes; AdamW).

    ``amp_dtype`` defaults to fp16, what a T4 trains in.
    """
    estimates = [
        training_memory(
            run["build"](), run["loss"], batch_size=run["batch_size"], image_size=run["image_size"], amp_dtype=amp_dtype
        )
        for run in runs(notebook, mode)
    ]
    return max(estimates, key=lambda estimate: estimate["total"])
