# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · U-Net from scratch
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/01_unet_from_scratch.ipynb)
#
# **What you will learn**
# - what semantic segmentation is: one label per pixel
#
# **Runtime**: about 2 minutes on a laptop CPU, under a minute on a Colab GPU.

# %%
# Setup: on Colab, install this course's package. Colab's own torch, torchvision and ipywidgets are pinned
# with a constraints file so that pip never reinstalls them.
import sys

if "google.colab" in sys.modules:
    import ipywidgets
    import torch
    import torchvision

    with open("/tmp/keep.txt", "w") as f:
        f.write(f"torch=={torch.__version__}\ntorchvision=={torchvision.__version__}\n"
                f"ipywidgets=={ipywidgets.__version__}\n")
    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+https://github.com/unet-tutorial/unet-tutorial@main"

# %%
# Settings: every knob of this notebook, smaller in smoke mode (tests and CI).
from unet_tutorial.utils import pick_device, set_seed, smoke_mode

SMOKE = smoke_mode()
DEVICE = pick_device()
IMAGE_SIZE = 64 if SMOKE else 256
set_seed(0)
print(f"smoke mode: {SMOKE}, device: {DEVICE}, image size: {IMAGE_SIZE}")

# %% [markdown]
# ## Exercise 1: count pixels
# Write `foreground_fraction(mask)`: the fraction of pixels of a 0/1 mask that are 1.

# %% tags=["solution"]
# Hint: the mean of a 0/1 tensor is the fraction of ones.
import torch


def foreground_fraction(mask: torch.Tensor) -> float:
    """Fraction of pixels equal to 1 in a 0/1 mask."""
    return mask.float().mean().item()


# %%
from unet_tutorial.exercises import check_foreground_fraction

check_foreground_fraction(foreground_fraction)

# %% [markdown]
# ## Summary
# - Segmentation gives every pixel a label.
