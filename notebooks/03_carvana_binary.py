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
# # 03 · Carvana: cars cut out of their photos
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/03_carvana_binary.ipynb) with the solutions ·
# [![Open the exercise version in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/exercises/03_carvana_binary.ipynb) the exercise version: you write the solutions
#
# The [Carvana Image Masking Challenge](https://www.kaggle.com/competitions/carvana-image-masking-challenge)
# asks for a pixel-exact mask of the car in each studio photo: 318 cars, 16 views each, 1918x1280 pixels.
# We train the U-Net of notebook 01 with a loss from notebook 02, end to end, the way you would on a real task.
#
# **What you will learn**
# - to get a Kaggle competition's data, and to look at images, masks and their statistics before training
# - why Carvana must be split **by car**, and (optional section 9) how to measure how much a split by image would
#   flatter the score, and why a few validation cars cannot pin it down
# - to train with `fit` (= `train_one_epoch` + `evaluate`) and keep checkpoints that a new session resumes
# - to read a model's mistakes (per-image Dice, the worst images) and to read a gap against its noise
# - to get from the model's small masks back to the photo's full resolution, and to write a Kaggle submission
#
# **Prerequisites**: notebooks 01 (the U-Net) and 02 (BCE + Dice, the Dice metric, thresholds); PyTorch's
# `Dataset`, `DataLoader` and a training step; the mean and its standard error (section 8 recalls it, and says
# what little of Student's t a gap's bar needs).
#
# **Core path** (a 90-minute lab; the core headings' minutes add up to 84, six are left for discussion):
# sections 1-3, 5-8 and 11-13, exercises 1 and 2 and experiment 3; the *(optional)* sections, the other exercises
# and the appendices use the core's variables, never the other way round. At each **Predict first** box, write your
# prediction in the cell under it: the result and its reading wait for it. In the exercise copy, "Run all" stops
# at each exercise's stub: solve it, then run on from there.
#
# **Runtime**: a few minutes on a laptop CPU with the generated stand-in data, seconds in smoke mode. With the real
# photos a CPU trains on up to 24 of the 318 cars (`REAL_CARS`), a GPU on all. The README says how to get the
# photos and gives measured times; `fit` prints each epoch's time. For a lab on the real photos, download them
# before the class: a Kaggle sign-up and the download take longer than the lab (and so does a GPU run on all the
# cars); on a CPU the rest then takes minutes.

# %%
# Setup: on Colab, install this course's package at the release this notebook was written for (its git tag), or
# from main while that tag is not published yet; it prints which one came, and its commit. Colab's own torch,
# torchvision and ipywidgets are pinned with a constraints file so that pip never reinstalls them; pinned by their
# installed versions (torch.__version__ may say 2.11.0+cu130 where pip knows 2.11.0).
import sys

if "google.colab" in sys.modules:
    import json
    import subprocess
    from importlib.metadata import distribution, version

    REPO, TAG = "https://github.com/unet-tutorial/unet-tutorial", "v0.1.0"
    with open("/tmp/keep.txt", "w") as f:
        f.write(f"torch=={version('torch')}\ntorchvision=={version('torchvision')}\n"
                f"ipywidgets=={version('ipywidgets')}\n")
    tagged = subprocess.run(["git", "ls-remote", "--exit-code", REPO, f"refs/tags/{TAG}"], capture_output=True)
    ref = TAG if tagged.returncode == 0 else "main"  # ls-remote exits with 2 when the repository has no such tag
    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+{REPO}@{ref}"
    vcs = json.loads(distribution("unet_tutorial").read_text("direct_url.json"))["vcs_info"]  # what pip installed
    print(f"unet_tutorial {version('unet_tutorial')} from {vcs['requested_revision']}, commit {vcs['commit_id']}"
          + ("" if ref == TAG else f" ({TAG} is not published yet)"))

# %% tags=["settings"]
# Settings: every knob of this notebook, with its value per mode on its own line. MODE is "smoke" when
# smoke_mode() is on (tests and CI: tiny, seconds), "gpu" on CUDA, "cpu" anywhere else; $UNET_TUTORIAL_MODE
# overrides it. A value written {"real": ..., "generated": ...} depends on the data section 1 finds.
import os
import tempfile
from pathlib import Path

import torch

from unet_tutorial.precision import default_amp_dtype
from unet_tutorial.utils import pick_device, run_mode, runs_root, set_seed

DEVICE = pick_device()
MODE = run_mode(DEVICE)  # "smoke" | "cpu" | "gpu"
DOWNLOAD = False  # True: fetch the real data from Kaggle in section 1 (a token and the rules accepted)
CACHE_ON_DRIVE = False  # Colab: keep the Kaggle archives and the checkpoints on Google Drive
SEED = 0
# The generated stand-in, used when the real photos are not on disk: cars (16 views each), photo size (H, W)
SAMPLE_CARS = {"smoke": 4, "cpu": 24, "gpu": 24}[MODE]
# CPU: five times IMAGE_SIZE each way, so that section 11 has a staircase to show (a real photo is 13 times it)
SAMPLE_SIZE = {"smoke": (64, 96), "cpu": (480, 720), "gpu": (640, 960)}[MODE]
REAL_CARS = {"smoke": None, "cpu": 24, "gpu": None}[MODE]  # real photos: use this many of the 318 cars (None: all)
# Validation's share of the *cars*. Smoke: half of its 4 cars, since a standard error counted over cars (section 8)
# needs two validation cars at least, and experiment 6 splits them in two; 15 % of 4 would leave one. CPU: 0.35,
# 8 of the 24 drawn cars (or of 23 real ones): the fewer the cars, the higher the bar a gap must clear (section 8
# explains it), and with 4 validation cars experiment 6's halves of 2 could never clear theirs; a GPU's 15 % of the
# 318 real cars is 48.
VAL_FRACTION = {"smoke": 0.5, "cpu": 0.35, "gpu": {"real": 0.15, "generated": 0.35}}[MODE]
# Training cars' images kept back to measure the leak (section 9): of each view the same share, one at least
LEAK_FRACTION = {"smoke": 0.1, "cpu": 0.1, "gpu": 0.02}[MODE]
IMAGE_SIZE = {"smoke": (64, 96), "cpu": (96, 144), "gpu": (320, 480)}[MODE]  # (H, W) the model sees
BASE_CHANNELS = {"smoke": 8, "cpu": 16, "gpu": 32}[MODE]  # U-Net width (the paper's is 64)
BATCH_SIZE = {"smoke": 4, "cpu": 8, "gpu": 16}[MODE]
EPOCHS = {"smoke": 1, "cpu": {"real": 10, "generated": 6}, "gpu": 15}[MODE]  # real photos on a CPU: more epochs (README: what they reach)
# AdamW's peak learning rate (one-cycle schedule). Smoke: ten times the CPU's, because smoke mode tests the code,
# not the recipe: its one epoch of a few steps must still move the model far enough that its Dice differs from
# image to image, or the exercises' self-checks would have no wrong answers to reject on the run
LR = {"smoke": 3e-2, "cpu": 3e-3, "gpu": 1e-3}[MODE]
WEIGHT_DECAY = 1e-4
LOSS_WEIGHTS = {"cross_entropy": 1.0, "dice": 1.0}  # BCE + Dice (notebook 02)
# Experiment 3's runs: None trains them as long as section 7 (which is then their reference); a GPU's full recipe
# would double the lab, so there both the changed run and a reference with the recipe's loss train this many epochs
# (smoke mode takes that path too, so that the tests run it)
EXPERIMENT_EPOCHS = {"smoke": 1, "cpu": None, "gpu": 3}[MODE]
# Training augmentations (section 4 shows each); mask_fill=0: pixels an augmentation invents are background
AUGMENT = {"crop": "random_resized", "scale": (0.6, 1.0), "hflip": 0.5, "rotate": 10.0, "shift": 0.05,
           "color_jitter": 0.2, "mask_fill": 0}
THRESHOLD = 0.5  # a pixel is car where its probability exceeds this (section 10 tests other values)
TTA = False  # True: average each prediction with that of the mirror image (section 10 tests it)
RESIZED_CACHE = {"smoke": None, "cpu": 0.125, "gpu": 0.5}[MODE]  # real photos: train from a copy at this scale
NUM_WORKERS = {"smoke": 0, "cpu": 0, "gpu": min(8, os.cpu_count() or 1)}[MODE]  # loader processes
AMP_DTYPE = default_amp_dtype(DEVICE)  # bf16 (fp16 on a T4) on CUDA; None = fp32 on the CPU
# Checkpoints: runs/03_carvana (on Google Drive with CACHE_ON_DRIVE); smoke: a new temporary folder
RUN_DIR = Path(tempfile.mkdtemp()) if MODE == "smoke" else runs_root(on_drive=CACHE_ON_DRIVE) / "03_carvana"
set_seed(SEED)
print(f"mode {MODE}, device {DEVICE}, AMP {AMP_DTYPE}, checkpoints in {RUN_DIR}")

# %% [markdown]
# ## 1. Getting the data (core, ~5 min)
#
# Carvana is a Kaggle competition, so downloading it takes three things, once:
# 1. a Kaggle account, and the competition's rules accepted on
#    [its rules page](https://www.kaggle.com/competitions/carvana-image-masking-challenge/rules)
#    (without that, Kaggle answers 403 Forbidden even with a valid token);
# 2. an API token: Kaggle > Settings > API > *Create New Token*. On Colab add it as a secret named
#    `KAGGLE_API_TOKEN` (the key icon on the left); elsewhere set the environment variable of that name (an
#    older `kaggle.json` works too, in `~/.kaggle/`);
# 3. the Kaggle client (`pip install kaggle`; Colab has it).
#
# Then set `DOWNLOAD = True` in the settings and run the next cell (or `python data_scripts/download_carvana.py`).
# It fetches the 5,088 JPEGs, their GIF masks and the masks in the submission format of section 12. On Colab, with
# `CACHE_ON_DRIVE = True` the archives and checkpoints are kept on Google Drive, so a new session unpacks instead
# of downloading and resumes the training (section 7). Tests and CI never run the cell (`skip-execution`).

# %% tags=["skip-execution"]
# Download the real data: only when DOWNLOAD = True (and never in smoke mode).
if DOWNLOAD and MODE != "smoke":
    from unet_tutorial.course.download import fetch_carvana
    from unet_tutorial.utils import data_root, drive_root, in_colab

    # with CACHE_ON_DRIVE the zips are kept in MyDrive/unet_tutorial/carvana for the next session; else they go
    # next to the data and are deleted once unpacked. Anything already unpacked and complete is skipped.
    archives = drive_root() / "carvana" if in_colab() and CACHE_ON_DRIVE else None
    fetch_carvana(data_root() / "carvana", archives=archives)

# %% [markdown]
# `carvana_data()` returns the real data's folder when it is on disk; if it is not, it generates Carvana-like data
# (drawn cars on a turntable, the same file names and GIF masks) and says so loudly: every number is then about
# drawn cars. The settings that depend on the kind of data are picked here.

# %%
from unet_tutorial.course.sample_data import carvana_data

DATA_DIR, IS_REAL = carvana_data(n_cars=SAMPLE_CARS, size=SAMPLE_SIZE, seed=SEED)
KIND = "real" if IS_REAL else "generated"
IMAGE_SIZE, EPOCHS, VAL_FRACTION = (value[KIND] if isinstance(value, dict) else value
                                    for value in (IMAGE_SIZE, EPOCHS, VAL_FRACTION))
print(f"data: {DATA_DIR} ({'the real Carvana photos' if IS_REAL else 'GENERATED stand-in data'}); "
      f"image size (H, W) {IMAGE_SIZE}, {EPOCHS} epochs")
TRAIN_DIR = DATA_DIR  # what the training loaders read
if RESIZED_CACHE is not None and IS_REAL:
    # decoding 1918x1280 photos every epoch would keep a GPU waiting: decode them once into a smaller copy
    # (a few minutes the first time; later sessions on the same disk reuse it)
    from unet_tutorial.course.resized_cache import write_resized_carvana

    TRAIN_DIR = write_resized_carvana(DATA_DIR, DATA_DIR.with_name(f"{DATA_DIR.name}_{RESIZED_CACHE:g}x"),
                                      scale=RESIZED_CACHE)
    print(f"training from the resized copy in {TRAIN_DIR}")

# %% [markdown]
# ## 2. Look at the data (core, ~6 min)
#
# An image is `<car>_<view>.jpg` in `train/`; its mask is `<car>_<view>_mask.gif` in `train_masks/`, a palette
# GIF whose pixels are 0 (background) or 1 (car). `CarvanaDataset` reads the pair and checks it.

# %%
from unet_tutorial.data import CarvanaDataset, carvana_ids
from unet_tutorial.transforms import eval_transforms


def car_of(image_id: str) -> str:
    """The car of an image id "<car>_<view>": everything before the last "_"."""
    return image_id.rsplit("_", 1)[0]


ids = carvana_ids(DATA_DIR)  # sorted, so the 16 views of a car come one after another
cars = sorted({car_of(i) for i in ids})
raw = CarvanaDataset(DATA_DIR)  # no transform: the image in [0, 1] at its own size, the mask as 0/1
image, mask = raw[0]
print(f"{len(ids)} images of {len(cars)} cars; first id {ids[0]!r}")
print(f"image {tuple(image.shape)} {image.dtype}, mask {tuple(mask.shape)} {mask.dtype}, "
      f"mask values {mask.unique().tolist()}")
# A second view of the same files, for pictures: mean=None, std=None keeps the pixels in [0, 1] (no ImageNet
# normalisation); real photos are shrunk to 320x480 (16 full-size photos as floats would take half a gigabyte).
look = CarvanaDataset(DATA_DIR, transform=eval_transforms((320, 480) if IS_REAL else None, mean=None, std=None))

# %%
from unet_tutorial.viz import show

picks = [0, 4, 8, 12]  # four views of the first car
show(torch.stack([look[i][0] for i in picks]), torch.stack([look[i][1] for i in picks]),
     titles=[ids[i] for i in picks])

# %% [markdown]
# The overlay column tints the mask over the photo: check the edges. In the real photos the hard parts are thin
# ones (antennas, mirrors), wheels, where the car meets a floor or wall of its own colour, and its reflection,
# which is *not* car; the real masks also leave out the background seen through open wheel rims. Next, how much
# of each image is car (counted on up to 400 masks)?

# %%
import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from unet_tutorial.readers import read_label

sample_ids = ids if len(ids) <= 400 else sorted(np.random.default_rng(SEED).choice(ids, 400, replace=False))
coverage = {i: (read_label(DATA_DIR / "train_masks" / f"{i}_mask.gif") > 0).mean()
            for i in tqdm(sample_ids, desc="reading masks")}
coverage_views = np.array([int(i.rsplit("_", 1)[1]) for i in coverage])  # "<car>_07" -> 7
coverage_values = np.array(list(coverage.values()))
coverage_by_view = {v: coverage_values[coverage_views == v].mean() for v in range(1, 17) if (coverage_views == v).any()}
print(f"car pixels per image: mean {coverage_values.mean():.1%}, min {coverage_values.min():.1%}, "
      f"max {coverage_values.max():.1%}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2))
ax1.hist(coverage_values, bins=30)
ax1.set(xlabel="fraction of the image that is car", ylabel="images", title="mask coverage")
ax2.bar(list(coverage_by_view), list(coverage_by_view.values()))
ax2.set(xlabel="view (1..16, around the car)", ylabel="mean coverage", title="coverage by view")
fig.tight_layout()

# %% [markdown]
# The car fills only part of each picture, more from the side than from the front (the bars). Unbalanced, but far
# less than notebook 02's small objects. We still add Dice to BCE: it scores the overlap with the car, not the
# easy background, and it is the competition's metric.
#
# ## 3. Split by car, not by image (core, ~6 min)
#
# Each car is photographed 16 times on a turntable: neighbouring views differ by 22.5 degrees, with the same
# paint, the same wheels, the same studio. Shuffle *images* into train and validation, and almost every
# validation image has near-twins in training: the score can then reward memory instead of skill on new cars,
# which is all a test set asks for (section 9 measures how much). The 16 views of one car:

# %%
first_car = [i for i, name in enumerate(raw.ids) if car_of(name) == cars[0]]
show(torch.stack([look[i][0] for i in first_car]), ncols=8, size=1.6, titles=[raw.ids[i] for i in first_car])

# %% [markdown]
# View `_01` is the front of the car, `_05` and `_13` its sides, `_09` its back. `carvana_split` shuffles the
# *cars* and holds out `VAL_FRACTION` of them (with the real photos on a CPU, after keeping `REAL_CARS`). For the
# leak experiment (optional section 9) we also hold back `LEAK_FRACTION` of the training cars' images, the same
# number of each view: unseen photos of seen cars, what a split by image would validate on.
#
# > **Discuss**: if no run of yours could show a leak, would you still split by car? What decides it, a
# > measurement or the design of the test? (And cars of one model look alike too: when would you split by model?)

# %%
import random

from unet_tutorial.data import carvana_split

train_ids, val_ids = carvana_split(DATA_DIR, val_fraction=VAL_FRACTION, seed=SEED,
                                   max_cars=REAL_CARS if IS_REAL else None)
by_view = {}  # view ("01" .. "16") -> the training images of that view
for image_id in train_ids:
    by_view.setdefault(image_id.rsplit("_", 1)[1], []).append(image_id)
rng = random.Random(SEED)
# per view: LEAK_FRACTION of its training images, one at least, but never the last one
leak_ids = sorted(i for view, images in sorted(by_view.items()) if LEAK_FRACTION > 0
                  for i in rng.sample(images, min(max(1, round(LEAK_FRACTION * len(images))), len(images) - 1)))
train_ids = sorted(set(train_ids) - set(leak_ids))
assert not {car_of(i) for i in train_ids} & {car_of(i) for i in val_ids}, "a car on both sides"
used_cars = {car_of(i) for i in train_ids + val_ids + leak_ids}
print(f"{len(used_cars)} of the {len(cars)} cars used" + (" (REAL_CARS)" if len(used_cars) < len(cars) else ""))
print(f"train: {len(train_ids)} images of {len({car_of(i) for i in train_ids})} cars")
print(f"val:   {len(val_ids)} images of {len({car_of(i) for i in val_ids})} other cars: "
      + ", ".join(sorted({car_of(i)[:6] for i in val_ids})))  # the first 6 characters of each car's id
leak_views = sorted({i.rsplit("_", 1)[1] for i in leak_ids})
print(f"held back, views of training cars (the 'split by image' set): {len(leak_ids)} images"
      + (f", {len(leak_ids) // len(leak_views)} of each of {len(leak_views)} views" if leak_ids else ""))

# %% [markdown]
# ### Exercise 1: split by car, by hand (core, ~5 min)
#
# `carvana_split` did the split above. Write it yourself: `split_by_car(image_ids, val_fraction, seed)` returns
# `(train_ids, val_ids)` with every view of a car on the same side, and `round(val_fraction * number of cars)` cars
# held out (at least one, never all): `val_fraction` counts *cars*, not images. Make the split depend on `seed`
# alone, not on the order the ids come in (a folder's listing order is not fixed). `check_split_by_car` tries it
# on ids of its own, where a split by image and the other usual slips are named, then on this run's images.

# %% tags=["solution"]
# Hint: draw cars, not images. An image's car is its id before the last "_" (car_of); which order of the cars
#   depends on the seed alone, whatever order the ids came in? Then every image goes where its car went.
import random


def split_by_car(image_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train_ids, val_ids): every image of a car on the same side, val_fraction of the cars to validation."""
    car = {image_id: image_id.rsplit("_", 1)[0] for image_id in image_ids}  # each image's car, as car_of gives it
    cars = sorted(set(car.values()))
    random.Random(seed).shuffle(cars)
    val_cars = set(cars[:min(len(cars) - 1, max(1, round(val_fraction * len(cars))))])
    return [i for i in image_ids if car[i] not in val_cars], [i for i in image_ids if car[i] in val_cars]

# %%
from unet_tutorial.course.exercises.split import check_split_by_car

check_split_by_car(split_by_car)  # on the check's own ids
check_split_by_car(split_by_car, raw.ids, VAL_FRACTION, SEED)  # and on this run's images

# %% [markdown]
# ## 4. Augmentations: one image, many versions (optional)
#
# Augmentation shows the model variations it will meet, without new photos. Image and mask go through the
# *same* geometric change, so the mask still fits (colour changes touch the image only). Each row applies one
# augmentation of `train_transforms` four times, the mask's outline in red; the last row is the mix we train
# with (`AUGMENT` in the settings holds each one's strength):
# - **random resized crop** (a random part of the image, `AUGMENT["scale"]` of its area and a little wider or
#   narrower than the image, resized to `IMAGE_SIZE`): the car at other scales, positions and a slightly squeezed
#   or stretched shape, sometimes cut by the frame as in a close-up;
# - **horizontal flip**: a car seen from its left looks like one seen from its right, mirrored (compare the four
#   panels of its row with the first row's: the car faces the other way; on a drawn car, nearly symmetric, watch
#   the cabin move, where a real photo turns the whole car round);
# - **affine** (a small rotation, shift and zoom, on half of the training samples): a slightly tilted or
#   off-centre camera. Pixels it invents are background (`mask_fill=0`), never "car";
# - **colour jitter** (brightness, contrast, saturation, a little hue): other paint, other lighting.
#
# Left out, and why: **vertical flips** and big rotations (cars are never upside down in a studio, and the model
# would spend capacity on them), and heavy blur (the metric rewards sharp edges).

# %%
import albumentations as A

from unet_tutorial.transforms import train_transforms

# Everything off, then one augmentation on per row.
off = {**AUGMENT, "crop": "resize", "hflip": 0.0, "rotate": 0.0, "shift": 0.0, "color_jitter": 0.0}
grid = {"resize only": {}, "random resized crop": {"crop": "random_resized"}, "horizontal flip": {"hflip": 1.0},
        "affine": {"rotate": 10.0, "shift": 0.05}, "colour jitter": {"color_jitter": 0.2},
        "all of them (training)": AUGMENT}
# view 03: seen from an angle, so that the mirror image differs (the front, view 01, would not)
image, mask = raw[raw.ids.index(f"{cars[0]}_03")]
image_u8 = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (3, H, W) -> (H, W, 3) uint8
mask_u8 = mask[0].numpy().astype(np.uint8)  # (1, H, W) -> (H, W)
fig, axes = plt.subplots(len(grid), 4, figsize=(10, 1.8 * len(grid)))
for row, (name, change) in zip(axes, grid.items()):
    # mean=None, std=None: no ImageNet normalisation, so the images stay in [0, 1] and can be drawn
    transform = train_transforms(IMAGE_SIZE, **{**off, **change}, mean=None, std=None)
    transform.set_random_seed(SEED)  # the same four draws every time the cell runs
    if name == "affine":  # training warps half of the samples; the grid shows a warp in every panel
        next(step for step in transform.transforms if isinstance(step, A.Affine)).p = 1.0
    for ax in row:
        out = transform(image=image_u8, mask=mask_u8)
        ax.imshow(out["image"].permute(1, 2, 0).numpy())  # (3, H, W) -> (H, W, 3)
        ax.contour(out["mask"].numpy(), levels=[0.5], colors="red", linewidths=0.8)
        ax.axis("off")
    row[0].set_title(name, loc="left", fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## 5. Datasets and loaders (core, ~5 min)
#
# Training images get the augmentations of `AUGMENT` (section 4 shows them); validation images are only
# resized, so that the score is the same every time. Both are normalised with ImageNet's mean and standard
# deviation (a convention; notebook 04's pretrained encoder needs it). The training loader shuffles and drops
# the last, incomplete batch; the validation loaders take twice the batch, since evaluation keeps no gradients.

# %%
from torch.utils.data import DataLoader

from unet_tutorial.loaders import seed_worker
from unet_tutorial.transforms import train_transforms

train_set = CarvanaDataset(TRAIN_DIR, train_ids, train_transforms(IMAGE_SIZE, **AUGMENT))
val_set = CarvanaDataset(TRAIN_DIR, val_ids, eval_transforms(IMAGE_SIZE))
leak_set = CarvanaDataset(TRAIN_DIR, leak_ids, eval_transforms(IMAGE_SIZE)) if leak_ids else None
# seed_worker: each loader process gets its own augmentations (without it, workers repeat each other's)
loader_args = {"num_workers": NUM_WORKERS, "pin_memory": DEVICE.type == "cuda", "worker_init_fn": seed_worker}
# generator: fit re-seeds it every epoch from torch's random state (which checkpoints keep), so a resumed run
# shuffles and augments as the uninterrupted one; new workers each epoch (no persistent_workers) take that seed
train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                          generator=torch.Generator(), **loader_args)
val_loader = DataLoader(val_set, batch_size=2 * BATCH_SIZE, persistent_workers=NUM_WORKERS > 0, **loader_args)
leak_loader = DataLoader(leak_set, batch_size=2 * BATCH_SIZE, **loader_args) if leak_ids else None
images, masks = next(iter(train_loader))
print(f"a training batch: images {tuple(images.shape)} {images.dtype}, masks {tuple(masks.shape)} {masks.dtype}")
print(f"{len(train_loader)} training batches, {len(val_loader)} validation batches per epoch")

# %% [markdown]
# ## 6. Model and loss (core, ~5 min)
#
# The U-Net of notebook 01 with one output channel: one logit per pixel, car or not. `BASE_CHANNELS` sets its
# width (64 is the paper's 31M-parameter model; 16 has 16 times fewer parameters, what a CPU trains in minutes).
# The loss is BCE + Dice from notebook 02: BCE gives every pixel a gradient, Dice optimises the overlap that the
# metric measures.

# %%
from unet_tutorial.losses import ComboLoss
from unet_tutorial.model import UNet

model = UNet(num_classes=1, base_channels=BASE_CHANNELS).to(DEVICE)
loss_fn = ComboLoss(LOSS_WEIGHTS)
with torch.no_grad():
    logits = model(images[:2].to(DEVICE))  # (2, 1, H, W)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters; logits {tuple(logits.shape)}, "
      f"loss at initialisation {loss_fn(logits, masks[:2].to(DEVICE)).item():.3f}")

# %% [markdown]
# ## 7. Train, and resume (core, ~8 min)
#
# `fit` is a short loop over `train_one_epoch` and `evaluate` (open `unet_tutorial/train.py`: no framework). It
# prints one line per epoch (losses, validation Dice, learning rate, images per second, seconds; `*` marks a new
# best; a run loaded from its checkpoint replays its lines, marked "(stored)", without the images per second). The optimiser is AdamW, and the
# learning rate follows a **one-cycle** schedule: it warms up from `LR / 25` to `LR` over the first three tenths
# of the steps, then anneals towards zero, so that a short run can use a high rate and still settle.
# After every epoch `fit` writes `last.pt` (everything needed to go on) to `RUN_DIR`, and `best.pt` when the
# validation Dice improved. `resumable(RUN_DIR, CONFIG)` continues a `last.pt` trained with exactly this `CONFIG`
# (every setting that changes the trained model; appendix A shows why "exactly"), loads a finished one, and
# otherwise trains from scratch; it prints which.

# %%
import copy

from unet_tutorial.checkpoint import load_checkpoint, resumable
from unet_tutorial.train import fit

CONFIG = {"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": BASE_CHANNELS}, "num_classes": 1,
          "image_size": list(IMAGE_SIZE), "epochs": EPOCHS, "batch_size": BATCH_SIZE, "lr": LR,
          "weight_decay": WEIGHT_DECAY, "loss": LOSS_WEIGHTS,
          "augment": {name: list(v) if isinstance(v, tuple) else v for name, v in AUGMENT.items()},
          "data": str(DATA_DIR), "real_data": IS_REAL, "resized_cache": RESIZED_CACHE,
          "max_cars": REAL_CARS if IS_REAL else None,
          "val_fraction": VAL_FRACTION, "leak_fraction": LEAK_FRACTION, "train_images": len(train_ids), "seed": SEED}
start = {"weights": copy.deepcopy(model.state_dict()), "rng": torch.get_rng_state()}  # experiment 3 starts here too
optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
history = fit(model, train_loader, val_loader, epochs=EPOCHS, loss_fn=loss_fn, optimizer=optimizer,
              device=DEVICE, num_classes=1, scheduler="onecycle", checkpoint_dir=RUN_DIR,
              resume=resumable(RUN_DIR, CONFIG), amp_dtype=AMP_DTYPE, config=CONFIG)
best = load_checkpoint(RUN_DIR / "best.pt", model, map_location=DEVICE)  # the best epoch's weights
print(f"using the weights of epoch {best['epoch']} (validation Dice {best['best']:.4f})")

# %% [markdown]
# Read the curves below before going on. Training loss (dashed) and validation loss (solid) should fall together
# (a training loss *above* the validation loss is no alarm: it is averaged over an epoch of a still-improving model
# on harder, augmented images). The warning sign is a validation loss that keeps rising while the training loss
# keeps falling: overfitting. One epoch's jump that the next takes back is not that: as the learning rate climbs
# to its peak a large step can throw the model off, and with few validation cars one hard car moves the mean.
# `best.pt` is the epoch of the best validation Dice, picked on these same cars (section 13 shows what that
# choice is worth).

# %%
from IPython.display import display

from unet_tutorial.train import evaluate
from unet_tutorial.viz import plot_history

display(plot_history(history, metrics=["val_dice_per_image", "lr"]))
val_metrics = evaluate(model, val_loader, DEVICE, num_classes=1, amp_dtype=AMP_DTYPE)
print("validation, best epoch:", {name: round(value, 4) for name, value in val_metrics.items()})

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What your curves show
from unet_tutorial.course.reading import reading

val_loss, val_dice, rates = history["val_loss"], history["val_dice_per_image"], history["lr"]
peak_epoch = int(np.argmax(rates)) + 1  # the epoch whose first step had the highest rate (the log shows first steps)
jumps = [(val_loss[k] / val_loss[k - 1], k) for k in range(1, len(val_loss))]  # (ratio, index of the jumped epoch)
ratio, jumped = max(jumps, default=(1.0, 0))
if ratio > 1.5:  # a jump worth naming: half again as high as the epoch before
    back = next((k + 1 for k in range(jumped + 1, len(val_loss)) if val_loss[k] < val_loss[jumped - 1]), None)
    warm = " while the learning rate was still warming up" if jumped + 1 <= peak_epoch + 1 else ""
    story = (f"At epoch {jumped + 1} the validation loss jumped from {val_loss[jumped - 1]:.3f} to "
             f"{val_loss[jumped]:.3f} (Dice {val_dice[jumped - 1]:.3f} to {val_dice[jumped]:.3f}){warm}; "
             + (f"by epoch {back} it was below where it had been: one epoch's jump, taken back." if back else
                "it did not come back below that level: look at the settings before trusting this run."))
else:
    story = "The validation loss had no jump: no epoch ended half again as high as the one before."
rising = 0  # the last epochs in a row whose validation loss rose while the training loss fell
for k in range(len(val_loss) - 1, 0, -1):
    if val_loss[k] > val_loss[k - 1] and history["train_loss"][k] < history["train_loss"][k - 1]:
        rising += 1
    else:
        break
overfit = (f"the validation loss rose in each of the last {rising} epochs while the training loss fell: the "
           "warning sign of overfitting" if rising >= 2 else
           "no sign of overfitting: the validation loss did not keep rising while the training loss fell")
last = val_dice[-3:]
dice_rising = len(last) == 3 and last[2] > last[1] > last[0]  # the summary (section 13) reads the same rule
settled = (f"the Dice rose in each of the last two epochs ({', '.join(f'{d:.4f}' for d in last)}): the model may "
           "still have been improving" if dice_rising else
           f"over the last {len(last)} epochs the Dice moved by {max(last) - min(last):.4f}, not always up")
reading(f"""
**{story}**

- {overfit[:1].upper()}{overfit[1:]}.
- The best validation Dice, {max(val_dice):.4f}, came at epoch {int(np.argmax(val_dice)) + 1} of {len(val_dice)}
  (`best.pt`); {settled}.
""")

# %% [markdown]
# ## 8. Where does the model fail? (core, ~10 min)
#
# One average hides a lot. We predict every validation image once, keep the probabilities (the sigmoid of the
# logits), and compute the Dice of each image: their histogram, the same scores car by car, then the worst images.

# %%
from unet_tutorial.metrics import dice_score
from unet_tutorial.predict import predict_loader


def dice_per_image(probs: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """The Dice of each image, (N,), from probabilities and masks (N, 1, H, W): the metric before its mean."""
    return np.array([dice_score(p[None] > threshold, m[None]) for p, m in zip(probs, masks)])


# Every validation image's mask and probabilities, in order (uint8 and float16 to keep them small).
val_masks, val_probs = predict_loader(model, val_loader, amp_dtype=AMP_DTYPE)  # (N, 1, H, W) each
per_image = dice_per_image(val_probs, val_masks)  # (N,)
val_cars = [car_of(i) for i in val_ids]  # the car of each validation image, in the same order
print(f"validation masks {tuple(val_masks.shape)} {val_masks.dtype}, probabilities {val_probs.dtype}")
print(f"per-image Dice: mean {per_image.mean():.4f}, median {np.median(per_image):.4f}, "
      f"worst {per_image.min():.4f} ({val_ids[per_image.argmin()]})")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2))
ax1.hist(per_image, bins=30)
ax1.set(xlabel="Dice of one validation image", ylabel="images", title="per-image validation Dice")
car_order = sorted(set(val_cars))
ax2.scatter([car_order.index(c) for c in val_cars], per_image, s=12, alpha=0.6)  # one dot per image
ax2.set_xticks(range(len(car_order)), [c[:6] for c in car_order], rotation=45, fontsize=8)
ax2.set(xlabel="validation car (its id's first 6 characters)", ylabel="Dice", title="the same scores, car by car")
fig.tight_layout()

# %% [markdown]
# The four lowest-scoring images, each with its true mask and the model's (probabilities above 0.5); the last
# column marks the errors on the photo: magenta where the model painted car on background, cyan where it missed
# car:

# %%
import torch.nn.functional as F

worst = np.argsort(per_image)[:4]
worst_images = torch.stack([val_set[i][0] for i in worst])  # (4, 3, H, W), normalised; show() undoes that
# Their wrong pixels, counted: where they lie against the true outline, which kind, and at what height of the car
truth = val_masks[worst].float()  # (4, 1, H, W) 0/1
wrong = (val_probs[worst].float() > 0.5) != truth.bool()  # (4, 1, H, W): the wrong pixels
near_outline = F.max_pool2d(truth, 5, 1, 2) != -F.max_pool2d(-truth, 5, 1, 2)  # within 2 pixels of the outline
n_wrong, n_missed = int(wrong.sum()), int((wrong & truth.bool()).sum())
thirds = ["upper third (roof, windows)", "middle third (body, lights)", "lower third (wheels, underside)"]
counts = [0, 0, 0]  # wrong pixels per third of the car's height (rows above the car count as upper, below as lower)
for image_truth, image_wrong in zip(truth[:, 0], wrong[:, 0]):  # (H, W) each
    car_rows = image_truth.any(1).nonzero()[:, 0]
    top, bottom = (int(car_rows.min()), int(car_rows.max())) if len(car_rows) else (0, image_truth.shape[0] - 1)
    part = ((image_wrong.nonzero()[:, 0] - top) * 3 // (bottom - top + 1)).clamp(0, 2)
    counts = [c + int((part == k).sum()) for k, c in enumerate(counts)]
print(f"wrong pixels in these four images: {n_wrong}; within 2 pixels of the true outline: "
      f"{int((wrong & near_outline).sum())}; car missed: {n_missed}; background taken for car: {n_wrong - n_missed}")
print("by the car's height: " + ", ".join(f"{name.split(' (')[0]} {count}" for name, count in zip(thirds, counts)))
show(worst_images, val_masks[worst], (val_probs[worst] > 0.5).long(),
     titles=[f"{val_ids[i]}  Dice {per_image[i]:.3f}" for i in worst])

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Where the worst images go wrong
from unet_tutorial.course.reading import reading

if n_wrong == 0:
    reading("The four lowest-scoring images have no wrong pixel at this size: nothing to look for here.")
else:
    on_outline = float((wrong & near_outline).sum()) / n_wrong
    missed = n_missed / n_wrong
    # what the wrong pixels are: mostly car missed (two thirds or more), mostly background invented, or both
    kind = "missed" if missed >= 2 / 3 else "invented" if missed <= 1 / 3 else "mixed"
    if on_outline >= 0.5 and kind == "missed":
        where = ("most of their error lies near the outline and is car missed: the model draws the car a little too "
                 "thin there, or misses parts a few pixels wide; a lower threshold would widen it (section 10 measures "
                 "whether that pays over all the images, not only these four)")
    elif on_outline >= 0.5 and kind == "invented":
        where = ("most of their error lies near the outline and is background taken for car: a halo, the car drawn "
                 "a little too fat; a higher threshold would trim it (section 10 measures whether that pays over all the "
                 "images, not only these four)")
    elif on_outline >= 0.5:
        where = (f"most of their error lies near the outline, both kinds ({missed:.0%} car missed, the rest "
                 "background invented): the model draws the car's edge a little off in both directions, which no "
                 "single threshold fixes; the photo's own resolution (section 11) and a boundary score (exercise 5) "
                 "are about that")
    else:
        where = (f"most of their error lies away from the outline, whole regions "
                 f"{'of car missed' if kind == 'missed' else 'invented' if kind == 'invented' else 'missed or invented'}"
                 ": look in the figure (cyan missed, magenta invented) for what those regions have in common")
    main = max(range(3), key=counts.__getitem__)
    least = min(range(3), key=counts.__getitem__)
    if counts[main] / n_wrong >= 0.45:  # an even spread puts a third in each
        where += f". By height, {counts[main] / n_wrong:.0%} of the wrong pixels sit in the {thirds[main]} of the car"
    elif counts[least] / n_wrong <= 0.22:  # one third nearly free of them: the other two hold the rest
        others = [thirds[k] for k in range(3) if k != least]
        where += (f". By height, the {others[0]} and the {others[1]} hold "
                  f"{1 - counts[least] / n_wrong:.0%} of them, the {thirds[least]} only {counts[least] / n_wrong:.0%}")
    else:
        where += (". By height they are spread over the car: no third of its height holds much more than a third "
                  f"of them (the most, {counts[main] / n_wrong:.0%}, in the {thirds[main]})")
    worst_cars = [val_cars[i] for i in worst]
    repeated = sorted({car for car in worst_cars if worst_cars.count(car) > 1})
    if repeated:
        cars_text = (f"all four are views of one car, {repeated[0][:6]}" if len(set(worst_cars)) == 1 else
                     f"they are views of only {len(set(worst_cars))} cars, and "
                     + (f"car {repeated[0][:6]} appears" if len(repeated) == 1 else
                        f"cars {', '.join(c[:6] for c in repeated)} each appear") + " more than once")
        shared = (f" Note that {cars_text}: a car that is hard in one view tends to be hard in others, which is "
                  "why the standard error below counts cars.")
    else:
        shared = f" They are views of {len(worst_cars)} different cars."
    kind_words = {"missed": "most of them car the model missed", "invented": "most of them background taken for car",
                  "mixed": f"{missed:.0%} of them car missed, the rest car invented"}[kind]
    reading(f"""
    **{on_outline:.0%} of these four images' wrong pixels lie within 2 pixels of the true outline, {kind_words}.**
    """, more=f"""
    Of the {n_wrong} wrong pixels printed above, {on_outline:.0%} lie within 2 pixels of the true outline;
    {missed:.0%} are car the model missed and {1 - missed:.0%} background it took for car. So {where}.

    In the real photos the usual suspects are where the car meets something of its own colour (the floor, the
    wall), the wheels, the reflection under the car (which is not car) and thin parts such as antennas. Those are
    the places to watch when you change the loss, the resolution or the augmentations.{shared} (Are some *views*
    harder than others? Experiment 4, under "More exercises" near the end, asks.)
    """)

# %% [markdown]
# **How far can you trust a mean? The standard error.** The mean Dice above comes from a handful of validation
# cars; other cars would give another mean. A mean of $n$ independent scores with standard deviation $s$ moves by
# about its **standard error**, $s / \sqrt{n}$, from one draw to the next, and a gap between two means smaller than
# a few of them could be luck. But a car's 16 views are not independent draws (same paint, shape and studio: the
# car-by-car scores above); the *cars* were drawn, so we count them: the standard error of the cars' own mean Dice.
# Every comparison after this one, `compare(..., groups=val_cars, group_name="cars")`, counts cars the same way.
#
# > **Predict first**: will the standard error counted over the cars be larger or smaller than the one counted
# > over the images, as if each image were an independent draw? Write it in the cell below; the section's
# > reading waits for it.

# %% tags=["prediction"]
my_se_prediction = "larger"  # "larger", "smaller" or "about the same", before you run the next cell

# %%
from unet_tutorial.course.predictions import Prediction, predicted

se_said = Prediction("my_se_prediction", my_se_prediction, ("larger", "smaller", "about the same"))
car_means = np.array([per_image[[c == car for c in val_cars]].mean() for car in car_order])  # (cars,)
by_images = per_image.std(ddof=1) / np.sqrt(len(per_image))  # as if every image were an independent draw
by_cars = car_means.std(ddof=1) / np.sqrt(len(car_means)) if len(car_means) > 1 else float("inf")
if predicted(se_said):  # the answer waits for your prediction
    print(f"mean Dice {per_image.mean():.4f}; its standard error counted over the {len(per_image)} images: "
          f"{by_images:.4f}, over the {len(car_means)} cars: {by_cars:.4f}")
    print("each car's mean Dice:", ", ".join(f"{m:.4f}" for m in car_means))

# %% [markdown]
# **The bar.** With few cars the standard error is itself a rough estimate, so the bar rises as the cars get
# fewer: a gap is *clear* beyond *t* standard errors, *t* the two-sided 95 % <!-- constant --> point of Student's
# t-distribution with (cars − 1) degrees of freedom (`noise_bar`), and *close to the bar* from four fifths to five
# fourths of it, where another run can land on the other side. The cell below works it out once for your cars;
# every comparison after it prints *A − B: gap ± SE (its size in SE, the bar)* and does the sum for you. On fewer
# than five cars, even a clear gap is a hint to check on more cars, not a result.

# %%
from unet_tutorial.course.reading import noise_bar

bar = noise_bar(len(car_means))  # Student's t for len(car_means) - 1 degrees of freedom
for cars_shown in (4, 8, 30):
    print(f"the bar for {cars_shown} cars: {noise_bar(cars_shown):.2f} standard errors")
# A gap between two means like this one, each over these cars, has a standard error sqrt(2) times one mean's;
# the sum is worked with the numbers as printed, so that it can be redone by hand
shown_se, shown_bar = round(by_cars, 4), round(bar, 2)
gap_se = round(np.sqrt(2) * shown_se, 4)
print(f"your {len(car_means)} cars: bar {shown_bar:.2f}; a gap between two such means: SE √2 × {shown_se:.4f} = "
      f"{gap_se:.4f}; clear beyond {shown_bar:.2f} × {gap_se:.4f} = {shown_bar * gap_se:.4f} Dice; close to the "
      f"bar from {0.8 * shown_bar:.2f} to {1.25 * shown_bar:.2f} SE")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What counting cars changes
from unet_tutorial.course.predictions import reading_after
from unet_tutorial.course.reading import reading

if len(car_means) < 2:
    reading("With one validation car there is no standard error counted over cars: no gap on it can be told from "
            "noise.")
else:
    # the ratio of the two standard errors as printed above, so that it can be checked by hand
    ratio = round(by_cars, 4) / round(by_images, 4) if round(by_images, 4) > 0 else float("inf")
    se_outcome = "larger" if ratio > 1.2 else "smaller" if ratio < 1 / 1.2 else "about the same"
    if ratio > 1.2:
        worth = max(1, round(len(per_image) / ratio**2))  # independent images with the same standard error
        what = (f"{ratio:.1f} times what the images alone would suggest: the {len(per_image)} images count for "
                f"about as much as {worth} independent image{'s' if worth > 1 else ''} would, because a car's "
                "views rise and fall together"
                + (" (here as many as the cars: a car's views moved almost as one, so each car counted about once)"
                   if worth == len(car_means)
                   else ""))
    else:
        what = ("about what the images alone would suggest: in this run the cars differ little more than the "
                "views of one car do. Counting cars is still the honest choice; on other data or another run it "
                "can be several times larger")
    reading_after([(se_said, se_outcome)], f"""
    **Counted over the {len(car_means)} cars, this run's mean Dice is known to about ± {by_cars:.4f}.**

    - **Count cars**: over the {len(car_means)} validation cars, the standard error of the mean Dice is
      {by_cars:.4f}, {what}.
    - **What it allows**: another model, scored on other cars, would have to differ from this one by more than
      {shown_bar * gap_se:.4f} Dice (the sum above) before the gap meant more than the luck of the draw. Two ways
      of scoring the *same* model's predictions (sections 10 and 11) usually need far less: what makes an image
      hard cancels in their difference. Not so for two models trained apart (experiment 3): they can differ image
      by image by more than two means do, so their gap's standard error can be larger.
    """, more="""
    - **What it leaves out**: training's own noise. The same notebook run again with another `SEED`, or even
      another number of CPU threads, trains another model, whose mean moves too.
    - **The leak** (section 9) compares different cars and cannot pair them. Every comparison counts cars.
    """)

# %% [markdown]
# ## 9. The leak, measured (optional)
#
# Now the held-back views of *training* cars (what a split by image would have validated on) against the
# validation cars the model has never seen. Both sets hold every view equally often (section 3), so the gap is
# not a matter of easy and hard views. They hold different cars, so the gap's standard error combines the two
# means' standard errors, each counted over its own cars (section 8); with only a few validation cars, expect
# it to be wide.
#
# > **Predict first**: on the unseen views of its training cars, will the model score higher or lower than on the
# > new cars, or will the two be within the noise? Write it below; the reading waits for it.

# %% tags=["prediction"]
my_leak_prediction = "higher"  # "higher", "lower" or "within the noise", before you run the next cell

# %%
from unet_tutorial.course.reading import Gap, compare

leak_said = Prediction("my_leak_prediction", my_leak_prediction, ("higher", "lower", "within the noise"))
leak_metrics = evaluate(model, leak_loader, DEVICE, num_classes=1, amp_dtype=AMP_DTYPE) if leak_ids else None
if leak_metrics is not None:
    leak_masks, leak_probs = predict_loader(model, leak_loader, amp_dtype=AMP_DTYPE)  # (N_leak, 1, H, W) each
    leak_per_image = dice_per_image(leak_probs, leak_masks)
    leak_cars = [car_of(i) for i in leak_ids]
    gap = leak_per_image.mean() - per_image.mean()
    # The standard error of one mean, counted over cars: compare's, against a score of zero for every image
    leak_error, val_error = (compare("the mean", scores, "zero", np.zeros_like(scores), groups=groups,
                                     group_name="cars").standard_error
                             for scores, groups in ((leak_per_image, leak_cars), (per_image, val_cars)))
    noise = float(np.sqrt(leak_error**2 + val_error**2))  # two independent means: their variances add
    # As a Gap, read against Student's t for the smaller side's cars (cautious): the table of section 13 lists it
    leak_gap = Gap("unseen views of training cars", "new cars", gap, noise, images=len(leak_ids) + len(val_ids),
                   groups=min(len(set(leak_cars)), len(set(val_cars))), group_name="cars")
    if predicted(leak_said):  # the answer waits for your prediction
        print(f"Dice on unseen views of {len(set(leak_cars))} training cars (split by image; the held-back views were "
              f"drawn at random per view, so a training car can give none): {leak_per_image.mean():.4f} ± {leak_error:.4f}")
        print(f"Dice on {len(set(val_cars))} unseen cars (split by car):                     "
              f"{per_image.mean():.4f} ± {val_error:.4f}")
        print(f"a split by image would have reported {leak_per_image.mean():.4f}, {gap:+.4f} Dice against the new cars, "
              f"± {noise:.4f} (one standard error, over cars)")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the leak measurement says
from unet_tutorial.course.predictions import reading_after
from unet_tutorial.course.reading import reading

if leak_metrics is None:
    reading("No views of training cars were kept back (`LEAK_FRACTION = 0`, or a single training car, whose "
            "every view stays in training), so there is no leak to measure here.")
elif not np.isfinite(noise):
    reading("With a single car on one side there is no standard error counted over cars: this run cannot tell a "
            "leak from noise. Give the validation set more cars (`VAL_FRACTION`) to measure it.")
else:
    bar, ratio = leak_gap.bar, leak_gap.ratio  # t for the smaller side's cars: cautious
    digits = leak_gap.digits  # as compare prints it
    against = (f"{ratio:.{digits}f} standard errors against a bar of {bar:.2f} (Student's t for the smaller "
               "side's cars)")
    if leak_gap.near:  # close to the bar, as compare's readings say it everywhere
        verdict = (f"{against}: close to it, where another run can land on the other side, so read it as a hint "
                   "of a leak of about that size, not as a measured one")
        lesson = "A hint is not a measurement, and a leak is cheap to rule out by design: the split by car stands"
    elif ratio <= bar:
        verdict = (f"{against}: within the noise, so this many cars can neither show a leak nor rule one out: a "
                   f"leak smaller than about {bar * noise:.3f} Dice would usually hide in it")
        lesson = "A leak this run cannot show is not a leak ruled out, so the split by car stands"
    elif gap > 0:
        verdict = (f"{against}: the model does better on unseen views of the cars it trained on than on new cars, "
                   "so it has memorised something of them, and a split by image would have reported that as skill")
        lesson = "Hence the split by car"
    else:
        verdict = (f"{against}, the other way round: the held-back views of training cars were *harder* than the "
                   "new cars. Both sets hold the same views, so this is the luck of which cars were hard; here a "
                   "split by image would not have flattered the model")
        lesson = "One run's luck is no licence either, so the split by car stands"
    if not IS_REAL:
        verdict += ". The box after section 13 gives the same measurement on the real photos"
    if leak_gap.near:
        leak_lead = f"A hint of a leak, close to the bar: {gap:+.4f} Dice for the views of training cars"
    elif ratio <= bar:
        leak_lead = f"No leak this run can show: {gap:+.4f} Dice for the views of training cars, within the noise"
    elif gap > 0:
        leak_lead = f"A leak: the views of training cars scored {gap:+.4f} Dice above the new cars, beyond the noise"
    else:
        leak_lead = (f"The other way round: the views of training cars scored {gap:+.4f} Dice below the new cars, "
                     "beyond the noise")
    leak_outcome = "within the noise" if not leak_gap.clear else "higher" if gap > 0 else "lower"
    reading_after([(leak_said, leak_outcome)], f"""
    **{leak_lead}.**

    The first number is what a split by image would have reported; the second is what the model does on new
    cars, the only thing a test set asks for. In this run the gap is {gap:+.4f} Dice, ± {noise:.4f} (one
    standard error, counted over {len(set(leak_cars))} and {len(set(val_cars))} cars). That is {verdict}.

    {lesson}: validation must estimate the score on new cars, and only cars never seen in training can do that.
    Near the top every ten-thousandth counts: the competition's leading scores differed in the fourth decimal.
    """)

# %% [markdown]
# ## 10. The threshold and flip test-time augmentation (optional)
#
# A pixel is "car" where its probability exceeds a threshold, 0.5 by default. Move the slider to see the Dice
# of the whole validation set (left) and the worst image's errors (right: magenta where the mask at that
# threshold paints car on background, cyan where it misses car) change. Without widgets (CI, GitHub)
# you see the figure at 0.5. The best threshold is compared with 0.5 image by image with `compare`: the mean of
# the per-image *differences*, whose standard error (counted over cars, section 8) is smaller than that of two
# unrelated means, because an image hard at one threshold is hard at the other.

# %%
import torch.nn.functional as F

from unet_tutorial.course.reading import compare
from unet_tutorial.course.widgets import interactive_or_static
from unet_tutorial.viz import error_overlay

thresholds = np.round(np.arange(0.05, 0.96, 0.05), 2)  # 0.05, 0.10, ..., 0.95
dice_at = [dice_score(val_probs > t, val_masks) for t in thresholds]  # the validation Dice at each
best_threshold = float(thresholds[int(np.argmax(dice_at))])  # the first of ties
threshold_gap = compare(f"threshold {best_threshold}", dice_per_image(val_probs, val_masks, best_threshold),
                        "threshold 0.5", per_image, groups=val_cars, group_name="cars")
if best_threshold == 0.5:
    print(f"the best threshold on validation is 0.5 itself (Dice {per_image.mean():.4f}): nothing to tune")
else:
    print(f"best threshold on validation {best_threshold}: Dice {max(dice_at):.4f} (0.5: {per_image.mean():.4f})")
    print(threshold_gap.short(named=True))
# The pixels a threshold between 0.3 and 0.7 can flip, and how many of them sit on the outline
probs = val_probs.float()
unsure = (probs > 0.3) & (probs < 0.7)  # (N, 1, H, W)
truth = val_masks.float()
near_outline = F.max_pool2d(truth, 5, 1, 2) != -F.max_pool2d(-truth, 5, 1, 2)  # within 2 pixels of the outline
near_share = float((unsure & near_outline).sum() / unsure.sum()) if unsure.any() else 0.0
print(f"pixels with a probability between 0.3 and 0.7: {float(unsure.float().mean()):.2%} of the validation "
      f"pixels, {near_share:.0%} of them within 2 pixels of the true outline")


def draw_threshold(threshold: float):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    ax1.plot(thresholds, dice_at, marker=".")
    ax1.axvline(threshold, color="red")
    ax1.set(xlabel="threshold", ylabel="validation Dice", title="Dice against threshold")
    i = worst[0]
    pred = (val_probs[i] > threshold).long()  # (1, H, W)
    ax2.imshow(error_overlay(worst_images[0], pred[0], val_masks[i][0]))  # magenta extra, cyan missed
    ax2.set_title(f"{val_ids[i]} at {threshold:.2f}: Dice {dice_score(pred[None], val_masks[i][None]):.3f}")
    ax2.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


interactive_or_static(draw_threshold, static=[{"threshold": 0.5}], threshold=(0.05, 0.95, 0.05))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the threshold curve says
from unet_tutorial.course.reading import reading

middle = [d for t, d in zip(thresholds, dice_at) if 0.3 <= t <= 0.7]
move = max(middle) - min(middle)
pixels = (f"{float(unsure.float().mean()):.2%} of the validation pixels have a probability between 0.3 and 0.7, "
          f"{near_share:.0%} of them within 2 pixels of the true outline"
          + (": the threshold mostly moves the outline" if near_share >= 0.5 else
             ": the threshold moves whole regions too, not only the outline"))
direction = ("" if not threshold_gap.clear else
             " A best threshold above 0.5 means the model paints more car than there is (section 8's magenta): "
             "raising the threshold trims it." if best_threshold > 0.5 else
             " A best threshold below 0.5 means the model paints less car than there is (section 8's cyan)."
             if best_threshold < 0.5 else "")
shape = f"{pixels}; whether the best threshold beats 0.5 beyond the noise is the next question"
if best_threshold == 0.5:
    verdict = ("0.5 itself scored highest on these images, so there is nothing to tune: keep `THRESHOLD = 0.5` "
               "(experiment 6 asks whether half of the cars would have picked the same).")
elif threshold_gap.clear:
    few = "" if threshold_gap.units >= 5 else f" (on only {threshold_gap.units} cars, even that is a hint: section 8)"
    verdict = (f"In this run {threshold_gap.sentence()}. But it was picked on these very images, which flatters "
               f"it: experiment 6 measures it on cars it was not picked on. Only if it holds there{few}, set "
               f"`THRESHOLD = {best_threshold}` in the settings.")
else:
    verdict = (f"In this run {threshold_gap.sentence()}. With these {threshold_gap.units} cars a true gain smaller than "
               f"about {threshold_gap.smallest_clear:.2g} Dice would usually stay within the noise, so a threshold that moves "
               "the Dice by less may still be worth having; this run just cannot show it. Keep `THRESHOLD = 0.5`.")
if best_threshold == 0.5:
    threshold_lead = "0.5 itself scored highest: nothing to tune."
elif threshold_gap.clear:
    threshold_lead = (f"Threshold {best_threshold} beat 0.5 beyond the noise, on the very images that picked it: "
                      "experiment 6 tests it on others.")
else:
    threshold_lead = f"The best threshold, {best_threshold}, did not beat 0.5 beyond the noise: keep 0.5."
reading(f"""
**{threshold_lead}**

Between 0.3 and 0.7 the validation Dice moves by {move:.4f}: {shape}.{direction} {verdict} Picking a threshold on
validation is fair (one number, and the test set is not touched); trusting a gain measured on the images it
was picked on is not.
""")

# %% [markdown]
# **Flip TTA.** A car mirrored left-right is still a car. Predict the image and its mirror image, flip the
# second prediction back and average the two probabilities (`predict_probs(..., tta=True)` in
# `unet_tutorial/predict.py`): where the model errs on one side only, the average can undo it. It costs a
# second forward pass, and whether it pays off is an empirical question.

# %%
_, val_probs_tta = predict_loader(model, val_loader, tta=True, amp_dtype=AMP_DTYPE)
per_image_tta = dice_per_image(val_probs_tta, val_masks)
tta_gap = compare("flip TTA", per_image_tta, "no TTA", per_image, groups=val_cars, group_name="cars")
print(f"validation Dice at 0.5: without TTA {per_image.mean():.4f}, with flip TTA {per_image_tta.mean():.4f}")
print(tta_gap.short(named=True))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What flip TTA did
from unet_tutorial.course.reading import reading

WORTH = 0.001  # a Dice gain below this is too small to pay for a second forward pass, however clear
if tta_gap.clear and tta_gap.leader == "flip TTA" and tta_gap.difference < WORTH:
    tta_advice = (f"Clear, but under {WORTH} Dice: too small to pay for a second forward pass on every image; keep "
              "`TTA = False`")
elif tta_gap.clear and tta_gap.leader == "flip TTA" and tta_gap.units < 5:
    tta_advice = (f"On only {tta_gap.units} cars that is a hint, not a result (section 8): check it on more cars before "
              "setting `TTA = True`")
elif tta_gap.clear and tta_gap.leader == "flip TTA":
    tta_advice = "Worth its second forward pass: set `TTA = True` in the settings for the submission (section 12)"
elif tta_gap.clear:
    tta_advice = "It hurt, beyond noise: keep `TTA = False`"
else:
    tta_advice = "A second forward pass is not worth a gain you cannot tell from noise: keep `TTA = False`"
tta_lead = ("Flip TTA helped beyond the noise" if tta_gap.clear and tta_gap.leader == "flip TTA" else
            "Flip TTA hurt beyond the noise" if tta_gap.clear else
            "Flip TTA's gap came close to the bar but stayed within the noise" if tta_gap.near else
            "Flip TTA: no gap this run can tell from noise")
reading(f"**{tta_lead}.** In this run {tta_gap.sentence()}. {tta_advice}.")

# %% [markdown]
# ## 11. Prediction at full resolution (core, ~7 min)
#
# The model saw images resized to `IMAGE_SIZE`, but the competition scores masks at the photo's own size. Two
# ways to get there from the same low-resolution probabilities:
# - threshold first, then enlarge the 0/1 **labels** by nearest neighbour: every small pixel becomes a block,
#   and the car's outline a staircase;
# - enlarge the **probabilities** (bilinear), then threshold: the outline falls between the large pixels, where
#   the interpolated probability crosses 0.5. This is what `predict_mask` does.
#
# For the labels we use `mode="nearest-exact"` (each photo pixel takes the model pixel whose centre is nearest;
# torch's plain `"nearest"` rounds down and shifts the mask by half a photo pixel). We score both ways on every
# validation image against its full-size mask, image by image.
#
# > **Predict first**: which way will score higher at full size, and will the gap be large next to the Dice
# > itself? Think about how few of a photo's pixels lie on the car's outline. Write which below; the reading
# > answers the second.

# %% tags=["prediction"]
my_enlarge_prediction = "probabilities"  # "probabilities", "labels" or "within the noise": which scores higher

# %%
import torch.nn.functional as F

from unet_tutorial.course.reading import compare
from unet_tutorial.readers import read_image

index_of = {image_id: k for k, image_id in enumerate(raw.ids)}  # id -> index in the full-size dataset
enlarge_said = Prediction("my_enlarge_prediction", my_enlarge_prediction, ("probabilities", "labels",
                                                                          "within the noise"))


def enlarge(probs: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The two full-size masks (1, 1, H, W) of the experiment, from low-resolution probabilities (1, 1, h, w)."""
    probs = probs.float()
    labels = F.interpolate((probs > THRESHOLD).float(), size=size, mode="nearest-exact")  # threshold, then enlarge
    bilinear = F.interpolate(probs, size=size, mode="bilinear", align_corners=False) > THRESHOLD  # enlarge, threshold
    return {"labels, nearest": labels, "probabilities, bilinear": bilinear}


full_dice = {"labels, nearest": [], "probabilities, bilinear": []}
for k, image_id in enumerate(tqdm(val_ids, desc="full-resolution Dice")):
    true_mask = torch.from_numpy(read_label(raw.mask_paths[index_of[image_id]]))[None, None]  # (1, 1, H, W)
    for name, pred in enlarge(val_probs[k][None], tuple(true_mask.shape[-2:])).items():
        full_dice[name].append(dice_score(pred, true_mask))
enlarge_gap = compare("enlarging the probabilities", full_dice["probabilities, bilinear"],
                      "enlarging the labels", full_dice["labels, nearest"], groups=val_cars, group_name="cars")
photo_size = tuple(true_mask.shape[-2:])
if predicted(enlarge_said):  # the answer waits for your prediction
    print(f"validation Dice at IMAGE_SIZE {IMAGE_SIZE}: {per_image.mean():.4f}")
    print(f"at full size {photo_size}, from the same probabilities:")
    for name, scores in full_dice.items():
        print(f"  {name:<26} {np.mean(scores):.4f}")
    print(enlarge_gap.short(named=True))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the two ways of enlarging did
from unet_tutorial.course.predictions import reading_after

scale = photo_size[0] / IMAGE_SIZE[0]  # photo pixels per model pixel, each way
real_note = ""  # what the real photos showed, where this run cannot tell
if enlarge_gap.clear and enlarge_gap.leader == "enlarging the probabilities":
    verdict = "The probabilities are the better thing to enlarge, as the staircase predicts"
elif enlarge_gap.clear:
    verdict = "The labels did better: unexpected, so look at the zoom below"
else:
    verdict = ("At full size, labels and probabilities could not be told apart: within the noise" + (
        ", close to the bar" if enlarge_gap.near else ""))
    real_note = (" On the real photos (the box after section 13) the gap was steady from car to car, so its noise "
                 "was far smaller, and it cleared its bar.")
if max(np.mean(s) for s in full_dice.values()) < per_image.mean():
    below = (f"Both full-size scores are below the Dice at `IMAGE_SIZE` ({per_image.mean():.4f}): there the model "
             "is scored against a mask shrunk to its own grid, while at full size the true outline runs between "
             "the model's pixels, and each photo pixel missed there counts.")
elif min(np.mean(s) for s in full_dice.values()) > per_image.mean():
    below = (f"Here both full-size scores are above the Dice at `IMAGE_SIZE` ({per_image.mean():.4f}): at "
             "`IMAGE_SIZE` the model is scored against a mask shrunk to its grid, with a staircase of its own, while "
             "at full size its enlarged prediction meets the smooth true outline. Which way this goes depends on "
             "the model and the scale, so compare scores only at the same resolution.")
else:
    below = (f"Here the Dice at `IMAGE_SIZE` ({per_image.mean():.4f}) lies between the two full-size scores: "
             "scoring on the model's own grid does not always flatter it.")
gap_share = abs(enlarge_gap.difference) / max(np.mean(s) for s in full_dice.values())
size_text = (f"Next to the Dice itself the gap is small, {gap_share:.2%} of it: only pixels along the outline change. "
             "Whether a gap counts depends on its noise, not on its size." if gap_share < 0.01 else
             f"Next to the Dice itself the gap is {gap_share:.1%} of it: more than the outline alone explains, so look "
             "at the zoom below.")
enlarge_outcome = ("within the noise" if not enlarge_gap.clear else
                   "probabilities" if enlarge_gap.leader == "enlarging the probabilities" else "labels")
reading_after([(enlarge_said, enlarge_outcome)],
              f"**{verdict}.** A model pixel covers {scale:.1f} x {scale:.1f} photo pixels here. "
              f"In this run {enlarge_gap.sentence()}.{real_note} {size_text} {below}")

# %% [markdown]
# To see the staircase, we zoom into the validation image with the median Dice, at the window where the enlarged
# labels lose the most pixels to the enlarged probabilities: picked to show the mechanism, not a fair sample (the
# Dice above is the fair comparison).

# %%
median = int(np.argsort(per_image)[len(per_image) // 2])  # a typical image: the one with the median Dice
full_id = val_ids[median]
full_image = read_image(raw.image_paths[index_of[full_id]])  # (H, W, 3) uint8, the photo's own size
full_mask = read_label(raw.mask_paths[index_of[full_id]])  # (H, W) 0/1
height, width = full_mask.shape
zoom_masks = enlarge(val_probs[median][None], (height, width))
nearest, bilinear = zoom_masks["labels, nearest"][0, 0].bool(), zoom_masks["probabilities, bilinear"][0, 0]  # (H, W)
# The zoom window: a fifth of the photo each way, where enlarging the labels loses the most pixels to enlarging
# the probabilities along slanted or curved stretches of the true outline (along a straight level or upright edge
# the labels can only be offset, with no steps to see). Windows that overlap by half tile the photo; avg_pool2d
# gives each one's share of such pixels (labels wrong minus probabilities wrong), and we take the largest.
zh, zw = max(2, height // 5), max(2, width // 5)
truth_full = torch.from_numpy(full_mask).bool()  # (H, W)
labels_wrong = (nearest != truth_full).float()  # (H, W) 1 where wrong
probs_wrong = (bilinear != truth_full).float()
reach = 2 * round(height / IMAGE_SIZE[0]) + 1  # about one model pixel either side, in photo pixels
steps_x = F.pad((truth_full[:, 1:] != truth_full[:, :-1]).float(), (0, 1))[None, None]  # the outline, seen along x
steps_y = F.pad((truth_full[1:] != truth_full[:-1]).float(), (0, 0, 0, 1))[None, None]  # ... and along y
slanted = (F.max_pool2d(steps_x, reach, stride=1, padding=reach // 2)
           * F.max_pool2d(steps_y, reach, stride=1, padding=reach // 2))[0, 0]  # (H, W) 1 where it turns both ways
share = F.avg_pool2d(((labels_wrong - probs_wrong) * slanted)[None, None], (zh, zw),
                     stride=(zh // 2, zw // 2))[0, 0]
row, col = divmod(int(share.argmax()), share.shape[1])
top, left = row * (zh // 2), col * (zw // 2)
crop = (slice(top, top + zh), slice(left, left + zw))
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
axes[0].imshow(full_image)
axes[0].contour(full_mask, levels=[0.5], colors="lime", linewidths=1)
axes[0].add_patch(plt.Rectangle((left, top), zw, zh, fill=False, color="orange", linewidth=1.5))
axes[0].set_title(f"{full_id}: true outline (green), zoom window (orange)")
for ax, pred, name in [(axes[1], nearest, "labels, nearest"), (axes[2], bilinear, "probs, bilinear")]:
    pred = pred.numpy().astype(np.uint8)  # (H, W) 0/1
    ax.imshow(full_image[crop])
    ax.contour(full_mask[crop], levels=[0.5], colors="lime", linewidths=2)  # the truth
    ax.contour(pred[crop], levels=[0.5], colors="yellow", linewidths=1.5, linestyles="--")  # the prediction
    ax.set_title(f"zoom, {name}: {int((pred[crop] != full_mask[crop]).sum())} pixels wrong")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
both_wrong = (labels_wrong * probs_wrong)[crop]  # (h, w) 1 where wrong whichever way it was enlarged
outline = F.max_pool2d(((steps_x + steps_y) > 0).float(), reach, stride=1, padding=reach // 2)[0, 0][crop]
both, both_near = int(both_wrong.sum()), int((both_wrong * outline).sum())  # the latter within a model pixel of it
print(f"wrong pixels in the window: labels {int(labels_wrong[crop].sum())}, probabilities "
      f"{int(probs_wrong[crop].sum())}, both ways {both} ({both_near} of them within a model pixel of the true "
      f"outline); in the whole photo: labels {int(labels_wrong.sum()):,}, probabilities {int(probs_wrong.sum()):,}")

# %% [markdown]
# Green is the true outline, dashed yellow the predicted one. Enlarged labels can only follow the model's coarse
# pixels, in steps; enlarged probabilities can cut between them. Each title counts its mask's wrong pixels in the
# window.

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the zoom shows
in_window = {"labels": int(labels_wrong[crop].sum()), "probabilities": int(probs_wrong[crop].sum())}
in_photo = {"labels": int(labels_wrong.sum()), "probabilities": int(probs_wrong.sum())}
if in_window["labels"] > in_window["probabilities"]:
    window_text = (f"In the window the enlarged labels get {in_window['labels']} pixels wrong and the enlarged "
                   f"probabilities {in_window['probabilities']}: the staircase, where the model's pixels are "
                   "coarse against the outline.")
else:
    window_text = (f"Even in the window picked for it, the enlarged labels get no more pixels wrong "
                   f"({in_window['labels']}) than the enlarged probabilities ({in_window['probabilities']}): on this "
                   "image the staircase costs nothing you can see, and smoothing can round off a thin part too.")
if in_photo["labels"] < in_photo["probabilities"]:
    photo_text = (f"Over the whole photo the order turns: the labels get {in_photo['labels']:,} pixels wrong, the "
                  f"probabilities {in_photo['probabilities']:,}. Outside the window, smoothing rounded off corners "
                  f"and thin parts, which cost more on this photo than the staircase did at {scale:.1f} photo pixels "
                  "per model pixel.")
else:
    photo_text = (f"Over the whole photo too: {in_photo['labels']:,} against {in_photo['probabilities']:,}.")
if both and both_near >= both / 2:
    both_text = (f" {both} of the window's pixels are wrong both ways, {both_near} of them within a model pixel of "
                 "the true outline: there the model's own outline runs off the true one, which no way of enlarging "
                 "fixes.")
elif both:
    both_text = (f" {both} of the window's pixels are wrong both ways, most of them away from the outline: the "
                 "model's own mistakes (a hole, a blob), which no way of enlarging fixes.")
else:
    both_text = ""
small = (f" At {scale:.1f} photo pixels per model pixel a step of the staircase is barely a pixel high, so the two "
         "outlines look alike; on the real photos (13 photo pixels per model pixel at the CPU settings) the steps "
         "are plain to see." if scale < 3 else "")
zoom_lead = ("In the zoom the enlarged labels get more pixels wrong: the staircase" if in_window["labels"] >
             in_window["probabilities"] else "In this zoom the staircase costs nothing you can see")
reading(f"**{zoom_lead}.** {window_text}{both_text}{small} {photo_text} One photo shows the mechanism, not its size: "
        "the Dice over all the validation images above is the comparison.")

# %% [markdown]
# ## 12. A submission file in run-length encoding (core, ~7 min)
#
# Kaggle wants one line per image, `img,rle_mask`, the mask written as pairs "start length": runs of car pixels,
# numbered from 1 along the rows (left to right, top row first), about two numbers per row the car crosses. The
# competition's test photos are not downloaded here, so we write the file for the validation cars and check it as
# Kaggle would: decode, compare. `predict_mask` reads each photo, shrinks it to `IMAGE_SIZE` and enlarges the
# probabilities as section 11 did, with the settings' `THRESHOLD` and `TTA`. Where the data folder holds
# `train_masks.csv` (the true masks in this format), the cell checks our encoding against it.

# %%
import csv

from unet_tutorial.data import rle_decode, rle_encode
from unet_tutorial.predict import predict_mask

lines, scores = [], []  # (file name, RLE) per image; full-resolution Dice per image
for image_id in tqdm(val_ids[:4] if MODE == "smoke" else val_ids, desc="full-size masks"):
    index = index_of[image_id]
    pred = predict_mask(model, read_image(raw.image_paths[index]), image_size=IMAGE_SIZE, threshold=THRESHOLD,
                        tta=TTA, amp_dtype=AMP_DTYPE)  # (H, W) 0/1 at the photo's size
    lines.append((raw.image_paths[index].name, rle_encode(pred)))
    true_mask = read_label(raw.mask_paths[index])  # (H, W) 0/1
    decoded = rle_decode(lines[-1][1], true_mask.shape)  # what Kaggle reads back from the file
    scores.append(dice_score(torch.from_numpy(decoded)[None], torch.from_numpy(true_mask)[None]))
submission = RUN_DIR / "submission.csv"
with open(submission, "w", newline="") as f:
    csv.writer(f).writerows([("img", "rle_mask"), *lines])
SUBMISSION_DICE = float(np.mean(scores))
print(f"{submission}: {len(lines)} rows; the first starts {lines[0][0]},{lines[0][1][:60]}...")
print(f"full-resolution Dice of the decoded submission (threshold {THRESHOLD}, flip TTA {'on' if TTA else 'off'}): "
      f"{SUBMISSION_DICE:.4f}")

if (DATA_DIR / "train_masks.csv").exists():  # the true masks as the competition wrote them
    with open(DATA_DIR / "train_masks.csv") as f:
        true_rle = dict(csv.reader(f))  # img -> rle_mask
    assert rle_encode(full_mask) == true_rle[f"{full_id}.jpg"], "our RLE of a true mask must match the competition's"
    print(f"our encoding of {full_id}'s true mask matches train_masks.csv" + (
        "" if IS_REAL else " (the generator wrote that file with the same rle_encode: only the real file tests it)"))
else:
    print(f"no train_masks.csv in {DATA_DIR}: our encoding is not checked against the competition's here (the "
          "full download has it; exercise 2 checks the encoding by hand)")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the submission's score means
from unet_tutorial.course.reading import reading

same_images = full_dice["probabilities, bilinear"][:len(scores)]
difference = SUBMISSION_DICE - float(np.mean(same_images))
apart = "the same to four decimals" if round(difference, 4) == 0 else f"a difference of {difference:+.4f}"
if THRESHOLD != 0.5 or TTA:
    why = (f"the submission uses the settings' threshold {THRESHOLD} and flip TTA {'on' if TTA else 'off'}, picked "
           "on these same cars, so its score is a little optimistic")
elif TRAIN_DIR != DATA_DIR:
    why = (f"with the same threshold and no TTA, two things: section 11's probabilities came from the copy of the "
           f"photos resized to {RESIZED_CACHE:g} of their size (`RESIZED_CACHE`, in `{TRAIN_DIR}`) that validation "
           "read, resized again to `IMAGE_SIZE`, and kept as float16 (section 8), while `predict_mask` shrinks the "
           "original in one step and keeps float32")
else:
    why = "with the same threshold, no TTA and the same resize, only the rounding of the stored probabilities"
leaderboard = ("It is computed as the leaderboard's was (the per-image Dice at 1918x1280), but on these few "
               "validation cars at this run's image size, not on the competition's test set, so it is not a "
               "leaderboard score." if IS_REAL else "On drawn cars it says nothing about the leaderboard.")
reading(f"""
**The decoded submission scored {SUBMISSION_DICE:.4f} on {len(scores)} validation images at full size**: the
competition's metric on cars the model never saw. {leaderboard}
""", more=f"""
Section 11's bilinear line scored {np.mean(same_images):.4f} on the same images: {apart}. What differs between
the two: {why}.
""")

# %% [markdown]
# The checkpoint names its model (`CONFIG`'s `"model"` and `"model_kwargs"`), so `load_model` rebuilds it from
# the file alone, and so does the command line, which writes a mask, an overlay and a row of `masks.csv` per
# photo:

# %%
from unet_tutorial.checkpoint import load_model

rebuilt, saved_config = load_model(RUN_DIR / "best.pt", device=DEVICE)  # the model the checkpoint names
with torch.no_grad():
    torch.testing.assert_close(rebuilt(images[:2].to(DEVICE)), model.eval()(images[:2].to(DEVICE)),
                               rtol=1e-3, atol=1e-3)
print(f"best.pt rebuilds {saved_config['model']} {saved_config['model_kwargs']} with the same outputs; in a terminal:")
print(f"python -m unet_tutorial predict --checkpoint {RUN_DIR / 'best.pt'} --out predictions <photos or folders>")

# %% [markdown]
# ### Exercise 2: the submission's run-length code, by hand (core, ~5 min)
# Section 12 wrote the submission with the package's `rle_encode`. Write your own: `rle_by_hand(mask) -> str`,
# where `mask` is one 0/1 array (H, W), and the result the pairs "start length" of every run of car pixels, all numbers
# separated by single spaces. The pixels are numbered from 1 along the rows: left to right on the top row, then on
# along the next row down, so a run can go on from the end of one row to the start of the next. An empty mask
# gives "". The check tries it on small masks of its own (one that ends in car, one that starts with it, an empty
# one, a random one read back with `rle_decode`), then on section 11's full-size true mask, `full_mask`.

# %% tags=["solution"]
# Hint: walk the pixels of mask.ravel() (row after row) with a number that starts at 1; a run starts at a 1 after
#   a 0 (or at the very first pixel) and ends at the 0 after it; a run can reach the last pixel, and needs
#   writing then too. After a miss, check_rle_encode(..., reveal=True) shows the expected string.
import numpy as np


def rle_by_hand(mask: np.ndarray) -> str:
    """The Carvana submission's run-length code of a 0/1 mask (H, W): "start length" pairs, pixels numbered from 1
    along the rows."""
    pairs, start = [], None
    pixels = np.asarray(mask).ravel()  # row after row
    for number, pixel in enumerate(pixels, start=1):
        if pixel and start is None:  # a run begins
            start = number
        elif not pixel and start is not None:  # the run ended at the pixel before this one
            pairs += [start, number - start]
            start = None
    if start is not None:  # a run that reaches the last pixel
        pairs += [start, len(pixels) + 1 - start]
    return " ".join(map(str, pairs))

# %%
from unet_tutorial.course.exercises.carvana import check_rle_encode

check_rle_encode(rle_by_hand)  # on the check's own masks
check_rle_encode(rle_by_hand, full_mask)  # and on section 11's full-size true mask, from your run

# %% [markdown]
# ## 13. The result (core, ~5 min)
#
# The headline number is the validation Dice at `IMAGE_SIZE` of the best epoch, on cars never seen in training,
# with its standard error counted over those cars; then the sections' other numbers, and a table of the gaps they
# measured (the optional sections' only if you ran them), each with its noise, its bar and its verdict.
# (`evaluate` thresholds the logits, section 8 the float16 probabilities it kept, so the two means can differ in
# the fourth decimal.)


# %% [markdown]
# **A yardstick first.** Carvana's cars sit in the middle of the frame at much the same size, view by view, so
# part of any score comes from knowing *where cars usually are*. A baseline with no model at all: for each view,
# the pixels that are car in most of its training images, scored on the same validation images. What the U-Net
# adds is its gap over that.

# %%
from collections import Counter

from tqdm.auto import tqdm

from unet_tutorial.course.reading import compare

usual_set = CarvanaDataset(TRAIN_DIR, train_ids, eval_transforms(IMAGE_SIZE))  # resized as validation is, no augmentation
view_sums, view_counts = {}, Counter()
for image_id, (_, mask) in zip(train_ids, tqdm(usual_set, desc="each view's mean mask")):  # mask (1, H, W)
    view = image_id.rsplit("_", 1)[1]
    view_sums[view] = view_sums.get(view, 0) + mask
    view_counts[view] += 1
usual_probs = torch.stack([view_sums[i.rsplit("_", 1)[1]] / view_counts[i.rsplit("_", 1)[1]] for i in val_ids])
usual_per_image = dice_per_image(usual_probs, val_masks)  # (N,): each validation image against its view's usual car
usual_gap = compare("the U-Net", per_image, "each view's usual place", usual_per_image, groups=val_cars,
                    group_name="cars")
print(f"the baseline (each view's mean training mask, thresholded): Dice {usual_per_image.mean():.4f}")
print(usual_gap.short(named=True))

# %% [markdown]
# ### Experiment 3: change one setting, predict, retrain (core, ~10 min)
#
# Section 6 trains on BCE + Dice: "BCE gives every pixel a gradient, Dice optimises the overlap that the metric
# measures". Test the Dice half: change that one setting, keep everything else, read the gap with its noise.
# 1. **Predict, before anything trains.** Set `MY_DICE_WEIGHT` to 0 (BCE alone) or 3 (Dice three times as
#    strong; the recipe's is `LOSS_WEIGHTS["dice"]`, 1). Write `my_prediction`: will your model end "higher",
#    "lower" or "within the noise" of the reference, the same training with the recipe's loss? And `my_reason`, one
#    sentence. (In a class, split the two weights between neighbours.)
# 2. **Retrain.** `retrain(dice_weight)` trains a U-Net as section 7 did, from the same starting weights and on the
#    same batches, only the Dice weight changed, and returns `(model, history)` at its best epoch: keep them as
#    `my_model` and `my_history`. Score it as section 8 did (`my_scores`) and build `my_gap` with `compare`, yours
#    first, `reference_scores` second, counted over cars. (On a CPU the reference is section 7's model; on a GPU
#    the cell first retrains the recipe's loss for `EXPERIMENT_EPOCHS`, as long as yours.)
# 3. **Read it**: `my_verdict`, "higher", "lower" or "within the noise".

# %% tags=["solution"]
# Hint: three names. The weight is a number other than section 7's; the prediction is one of the three phrases
#   above; the reason is a sentence of your own.
print(f"section 7's loss weights: {LOSS_WEIGHTS}")  # what you change one of
MY_DICE_WEIGHT = 0.0  # BCE alone
my_prediction = "within the noise"
my_reason = "BCE alone already pushes every pixel towards its label, and the cars are large and easy"

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_prediction

check_one_setting_prediction(MY_DICE_WEIGHT, my_prediction, my_reason, LOSS_WEIGHTS["dice"], notebook="03")

# %%
def retrain(dice_weight: float) -> tuple[UNet, dict]:
    """Section 7's training with one setting changed, the Dice weight of the loss: the same starting weights and
    batches (torch's random state as section 7 found it), `EXPERIMENT_EPOCHS` epochs (section 7's number when None),
    its own checkpoint folder; the model at its best epoch, and fit's history."""
    weights = {**LOSS_WEIGHTS, "dice": dice_weight}
    epochs = EXPERIMENT_EPOCHS or EPOCHS
    config = {**CONFIG, "loss": weights, "epochs": epochs}
    run_dir = RUN_DIR.parent / f"{RUN_DIR.name}_dice_{dice_weight:g}_{epochs}_epochs"
    retrained = UNet(num_classes=1, base_channels=BASE_CHANNELS).to(DEVICE)
    retrained.load_state_dict(start["weights"])
    torch.set_rng_state(start["rng"])  # the same shuffles and augmentations as section 7's run
    run = fit(retrained, train_loader, val_loader, epochs=epochs, loss_fn=ComboLoss(weights),
        optimizer=torch.optim.AdamW(retrained.parameters(), lr=LR, weight_decay=WEIGHT_DECAY), device=DEVICE,
              num_classes=1, scheduler="onecycle", checkpoint_dir=run_dir, resume=resumable(run_dir, config),
              amp_dtype=AMP_DTYPE, config=config)
    load_checkpoint(run_dir / "best.pt", retrained, map_location=DEVICE)
    return retrained, run


if EXPERIMENT_EPOCHS is None:  # trained as long, section 7's model is the run that differs in the weight only
    reference_scores, reference_history = per_image, history
else:  # a shorter budget (a GPU): the recipe's Dice weight retrained as long, from the same start
    reference_model, reference_history = retrain(LOSS_WEIGHTS["dice"])
    _, reference_probs = predict_loader(reference_model, val_loader, amp_dtype=AMP_DTYPE)
    reference_scores = dice_per_image(reference_probs, val_masks)  # (N,)
reference_epochs = EXPERIMENT_EPOCHS or EPOCHS
print(f"the reference: {reference_epochs} epoch{'s' if reference_epochs > 1 else ''} with Dice weight "
      f"{LOSS_WEIGHTS['dice']:g}, validation Dice {reference_scores.mean():.4f}")

# %% tags=["solution"]
# Hint: retrain(MY_DICE_WEIGHT) returns (model, history): keep them as my_model and my_history (the figure below
#   draws my_history). predict_loader(model, val_loader, amp_dtype=AMP_DTYPE) gives (masks, probabilities), and
#   dice_per_image(probabilities, val_masks) one Dice per image. compare(name_a, scores_a, name_b, scores_b,
#   groups=..., group_name=...) as in sections 10 and 11.
my_model, my_history = retrain(MY_DICE_WEIGHT)
_, my_probs = predict_loader(my_model, val_loader, amp_dtype=AMP_DTYPE)  # (N, 1, H, W)
my_scores = dice_per_image(my_probs, val_masks)  # (N,)
my_gap = compare(f"Dice weight {MY_DICE_WEIGHT:g}", my_scores, "the reference", reference_scores, groups=val_cars,
                 group_name="cars")

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_gap

check_one_setting_gap(my_gap, my_scores, reference_scores, val_cars, notebook="03",
                      others={"each view's usual place": usual_per_image})

# %% [markdown]
# Now read your gap: its sign says which model scored higher on these cars; its size against the bar whether that
# could be the luck of the draw.

# %% tags=["solution"]
# Hint: the gap is your model minus section 7's. Is it more standard errors than the bar? my_gap.short() prints both.
my_verdict = ("within the noise" if not my_gap.clear else "higher" if my_gap.difference > 0 else "lower")

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_verdict

check_one_setting_verdict(my_verdict, my_prediction, my_gap, notebook="03", my_reason=my_reason)

# %% [markdown]
# The verdict reads each run's best epoch (`best.pt`). The curves show the way there: the two runs epoch by epoch,
# without a noise estimate per epoch, so read them as a picture, not as verdicts. Either run can swing far in an
# epoch, most of all while the learning rate climbs to its peak and at the peak itself (section 7's reading of the
# curves); a gap there is training's instability more than the setting's effect.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3.2))
for name, run in ((f"Dice weight {LOSS_WEIGHTS['dice']:g} (the reference)", reference_history),
                  (f"Dice weight {MY_DICE_WEIGHT:g} (yours)", my_history)):
    ax.plot(range(1, len(run["val_dice_per_image"]) + 1), run["val_dice_per_image"], "o-", label=name)
ax.set(xlabel="epoch", ylabel="validation Dice per image", title="experiment 3: the same start, one setting apart")
ax.legend()
plt.show()
by_epoch = np.array(my_history["val_dice_per_image"]) - np.array(reference_history["val_dice_per_image"])
print("yours − the reference, epoch by epoch:", ", ".join(f"{d:+.4f}" for d in by_epoch))
print(f"at the last epoch {by_epoch[-1]:+.4f}; the verdict above compared the best epochs: {my_gap.difference:+.4f}")
print(f"\nfor the class's tally (one line per student): SEED {SEED} | MY_DICE_WEIGHT {MY_DICE_WEIGHT:g} | "
      f"predicted {my_prediction} | verdict {my_verdict}, {my_gap.short()}")

# %% [markdown] tags=["answer"]
# Your run changed one thing, so its gap is that thing's, on these cars, after these epochs: both models started
# from the same weights and saw the same batches. Where the curves part late in training and stay apart, the
# setting changed the end; where they part only in the first epochs, read training's instability first. If your
# prediction missed, write down what you had assumed: that is what the run taught. What it cannot say is whether the gap would hold with other
# starting weights (another `SEED`) or on the other kind of data (the real photos, where thin parts and reflections
# make the overlap harder to get right, or the drawn cars, whichever your run did not use). A class that splits the weights and tallies its verdicts by
# weight, each student on their own `SEED`, measures what no single run can.

# %% [markdown]
# ### Your run's gaps, in one table

# %%
from unet_tutorial.course.reading import findings_table
from unet_tutorial.utils import report_metric

report_metric("val_dice", val_metrics["dice_per_image"], "03_carvana_binary", data="real" if IS_REAL else "generated")
print(f"± {by_cars:.4f}: one standard error, counted over the {len(car_order)} validation cars")
print(f"full resolution, decoded submission:        {SUBMISSION_DICE:.4f}")
if best["epoch"] == len(history["val_dice_per_image"]):
    print("best.pt, the epoch with the best validation Dice, is the last one: picking it on these cars changed "
          "nothing")
else:
    print(f"the last epoch's validation Dice:           {history['val_dice_per_image'][-1]:.4f} (the headline's "
          f"epoch {best['epoch']} was picked on these same cars, which flatters it by up to the difference, as a "
          "threshold picked on them would: section 10)")
if "leak_metrics" in globals() and leak_metrics is not None:  # section 9 (optional) ran
    print(f"what a split by image would have reported:  {leak_metrics['dice_per_image']:.4f} (section 9 reads "
          "the gap with its standard error)")
print(f"{'real Carvana photos' if IS_REAL else 'generated data'}, {len(train_ids)} training images of "
      f"{len({car_of(i) for i in train_ids})} cars, {EPOCHS} epochs at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} on {DEVICE}")

# The gaps the sections above measured, in one table: the optional sections' only where they ran
findings = {"the U-Net above each view's usual place? (13)": usual_gap,
            "enlarge the probabilities, not the labels? (11)": enlarge_gap}
if "my_gap" in globals():  # experiment 3, once solved
    findings[f"Dice weight {MY_DICE_WEIGHT:g} against {LOSS_WEIGHTS['dice']:g}, on one seed? (13)"] = my_gap
for question, name in (("a leak: unseen views of training cars above new cars? (9)", "leak_gap"),
                       ("the best threshold on validation above 0.5? (10)", "threshold_gap"),
                       ("flip TTA above none? (10)", "tta_gap")):
    if name in globals():
        findings[question] = globals()[name]
print()
print(findings_table(findings))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What your run showed
from unet_tutorial.course.reading import findings_summary, reading

box = ("The box below gives the same measurements, made once on the real photos: a lesson that holds on both is "
       "one to trust more." if not IS_REAL else "These are the real photos; the box below is our own run on them: "
       "where yours matches it to the digit, it repeated that run (same code, data and seed, or its checkpoints), "
       "which is no second piece of evidence.")
decisions = [f"**Report** {val_metrics['dice_per_image']:.4f} ± {by_cars:.4f} Dice on {len(car_order)} new "
             f"{'real' if IS_REAL else 'drawn'} cars at the model's size (`IMAGE_SIZE`), and the competition's "
             f"number beside it: {SUBMISSION_DICE:.4f}, section 12's submission scored at full size; and the "
             f"yardstick, each view's usual place without a model: {usual_per_image.mean():.4f}."
             + (" The Dice rose in each of the last two epochs (" + ", ".join(f"{d:.4f}" for d in
                history["val_dice_per_image"][-3:]) + "): the model may still have been improving (part of a "
                "late rise is the one-cycle schedule's falling learning rate), so more `EPOCHS` may raise it." if len(history["val_dice_per_image"]) > 2 and
                history["val_dice_per_image"][-1] > history["val_dice_per_image"][-2] > history["val_dice_per_image"][-3]
                else "")]
if enlarge_gap.clear and enlarge_gap.leader == "enlarging the labels":
    decisions.append("**Full resolution**: the labels did better here, against the staircase's prediction: look at "
                     "section 11's zoom before you choose.")
else:
    decisions.append("**Full resolution**: enlarge the probabilities, then threshold (`enlarge`, bilinear): "
                     + ("clear in this run." if enlarge_gap.clear else "within the noise in this run, clear on the "
                        "real photos (the box below)."))
if "threshold_gap" in globals():  # section 10 (optional) ran
    decisions.append("**Threshold**: " + (
        "keep 0.5: it scored highest itself." if best_threshold == 0.5 else
        f"{best_threshold} beat 0.5 beyond the noise, but on the cars it was picked on: set `THRESHOLD = "
        f"{best_threshold}` only if experiment 6 finds the gain on held-out cars too." if threshold_gap.clear else
        f"keep 0.5 for now: the best threshold, {best_threshold}, gained within the noise, and with these cars a "
        f"gain under about {threshold_gap.smallest_clear:.2g} Dice would usually stay within it" + (
            ". Section 8's worst images point the same way (" + ("a halo of invented car, which a higher threshold "
            "trims" if best_threshold > 0.5 else "car missed at the outline, which a lower threshold widens")
            + "): a small effect, perhaps, that this run is too small to confirm; experiment 6 and more validation "
            "cars test it." if globals().get("kind") == ("invented" if best_threshold > 0.5 else "missed") else ".")))
    decisions.append(f"**Flip TTA**: {tta_advice[:1].lower()}{tta_advice[1:]}.")
if "leak_gap" in globals():  # section 9 (optional) ran
    decisions.append("**Split**: by car. " + (
        "This run measured the leak a split by image hides." if leak_gap.clear and leak_gap.difference > 0 else
        "This run could not tell a leak from its noise, which does not make a split by image safe: new cars are "
        "what the model will meet, so they are what it must be scored on."))
else:
    decisions.append("**Split**: by car (section 3): new cars are what the model will meet.")
cleared = sum(gap.clear for gap in findings.values())
cleared_names = [question.rsplit(" (", 1)[0].rstrip("?") for question, gap in findings.items() if gap.clear]
lead = (f"**{cleared} of the {len(findings)} gaps this run measured cleared the noise"
        + (f" ({'; '.join(cleared_names)})" if 0 < cleared <= 2 else "")
        + ("; for the rest, these cars could not tell the two choices apart. The decisions below say what to do "
           "either way.**" if cleared < len(findings) else ".**"))
reading(f"{lead}\n\n{findings_summary(findings)}\n\n**What to do with your model**, from the gaps above:\n"
        + "\n".join(f"{number}. {decision}" for number, decision in enumerate(decisions, 1)), more=box)

# %% [markdown]
# > **Discuss** (the lab's closing question): for a gap the table reads as within the noise, what would it take to tell
# > it apart: more cars, more seeds, a score that leaves out the easy pixels (exercise 5: did it)? And which choices
# > would you make by design, without waiting for a measurement (the split by car is one)? In a class: each student sets
# > their own `SEED`, runs the notebook, and the class counts per row of the table above how many runs cleared the bar
# > (a `SEED` also redraws the cars and the split, so the tally mixes the data's noise with training's).

# %% [markdown]
# ## Further: a GPU, and our run on the real photos (optional)
#
# On a CUDA device the settings cell switches to its `"gpu"` values (larger images, a wider U-Net, mixed
# precision, loader processes and, with the real photos, every car and a larger resized copy of them); the code
# stays the same. To go further: larger images (the winners trained at full resolution), a wider U-Net
# (`BASE_CHANNELS = 64`), more epochs, or the pretrained encoder of notebook 04.

# %% [markdown] tags=["reference"]
# For scale, a published point of comparison: [milesial/Pytorch-UNet](https://github.com/milesial/Pytorch-UNet)
# trained a U-Net from scratch on 5,000 of the training images, without augmentation, at an input scale of 0.5
# (959x640 pixels, four times the pixels of our GPU settings' 480x320), and reports a Dice of 0.988 on
# Kaggle's test set.

# %% [markdown] tags=["reference"]
# > **What the real photos showed, measured once.** Two of this notebook's lessons, the leak and the way to
# > enlarge a mask, depend on the data: a model pixel covers far fewer drawn pixels than photo pixels, and drawn
# > cars differ from one another in a handful of numbers, real ones in every detail. So we ran this notebook at its CPU settings on 23 real Carvana cars (368 photos of Kaggle's
# > training set, the development copy; `REAL_CARS = 24` asks for up to 24 cars, so all 23 came: 15 cars to train
# > on, 8 to validate, 10 epochs at 96x144, two CPU threads, 2026-12-08; the README says how). If your run is on
# > the real photos, your table above measures the same again (another machine or thread count moves the numbers
# > a little). What that run read:
# >
# > | question (section) | measured, ± one standard error over cars | read against its bar (2.36 for 8 cars) |
# > |---|---|---|
# > | validation Dice at `IMAGE_SIZE` (8) | 0.9672 ± 0.0015 | |
# > | enlarging the probabilities against the labels, to 1918x1280 (11) | +0.0015 ± 0.00016 | clear: at 13.3 photo pixels per model pixel the staircase costs Dice |
# > | the leak: held-back views of 13 training cars against the 8 new cars (9) | -0.0014 ± 0.0028 | within the noise: a leak under about 0.0066 Dice would hide in it |
# > | the best threshold on validation, 0.4, against 0.5 (10) | +0.0005 ± 0.0006 | within the noise: keep 0.5 |
# > | flip TTA (10) | +0.0003 ± 0.0003 | within the noise |
# >
# > So on the real photos enlarging the probabilities pays, by a small margin but far beyond its noise, and the
# > leak stayed below what 8 validation cars can see: the split by car
# > rests on design (validation must score cars never seen), not on a leak this budget measured. With all 318 cars on a GPU (48 validation cars) both can be measured
# > more finely.

# %% [markdown]
# ## 14. Your own data (optional)
#
# Everything above works on any folder of images and masks. `FolderDataset(images_dir, masks_dir,
# num_classes)` (in `unet_tutorial/folder.py`) pairs each image with the mask of the same name, reads masks as
# class indices (binary: any value above 0 is foreground, so 0/1 and 0/255 both work) and says at once which
# file is unpaired or of the wrong size. To try it, we write a tiny folder of our own from the Carvana data:
# PNG masks stored 0/255, training and validation from different cars.

# %%
from PIL import Image

own = Path(tempfile.mkdtemp()) / "my_data"  # my_data/{train,val}/{images,masks}/<name>.jpg / <name>.png
own_cars = {"train": cars[:2] if MODE == "smoke" else cars[:4], "val": cars[-1:]}  # 4 cars: 64 images to train on
for split, split_cars in own_cars.items():
    (own / split / "images").mkdir(parents=True)
    (own / split / "masks").mkdir()
    for image_id in (i for i in ids if car_of(i) in split_cars):
        index = index_of[image_id]
        Image.fromarray(read_image(raw.image_paths[index])).save(own / split / "images" / f"{image_id}.jpg")
        mask = read_label(raw.mask_paths[index])  # (H, W) 0/1
        Image.fromarray(mask * 255).save(own / split / "masks" / f"{image_id}.png")  # stored 0/255
print({split: len(list((own / split / "images").iterdir())) for split in own_cars}, "images in", own)

# %% [markdown]
# Then the few lines that train on it: two datasets, two loaders, a model, `fit`. The point is how little code
# your own data needs, not the score: one validation car is a noisy estimate.

# %%
from unet_tutorial.folder import FolderDataset

own_train = FolderDataset(own / "train" / "images", own / "train" / "masks", num_classes=1,
                          transform=train_transforms(IMAGE_SIZE, **AUGMENT))  # AUGMENT has mask_fill=0
own_val = FolderDataset(own / "val" / "images", own / "val" / "masks", num_classes=1,
                        transform=eval_transforms(IMAGE_SIZE))
image, mask = own_train[0]
print(f"{len(own_train)} training and {len(own_val)} validation pairs; image {tuple(image.shape)}, "
      f"mask {tuple(mask.shape)} with values {mask.unique().tolist()}")
own_model = UNet(num_classes=1, base_channels=BASE_CHANNELS).to(DEVICE)
own_history = fit(own_model, DataLoader(own_train, batch_size=BATCH_SIZE, shuffle=True, drop_last=True),
                  DataLoader(own_val, batch_size=2 * BATCH_SIZE), epochs=1 if MODE == "smoke" else 3,
                  loss_fn=loss_fn, optimizer=torch.optim.AdamW(own_model.parameters(), lr=LR, weight_decay=1e-4),
                  device=DEVICE, num_classes=1, scheduler="onecycle", amp_dtype=AMP_DTYPE)
own_dice = own_history["val_dice_per_image"]
print(f"your folder's model, {len(own_history['epoch'])} epochs on {len(own_train)} images: validation Dice "
      f"{own_dice[-1]:.4f} after the last (best {max(own_dice):.4f}, epoch {int(np.argmax(own_dice)) + 1}) on one car "
      f"({len(own_val)} images); the model of section 7: {val_metrics['dice_per_image']:.4f} on {len(val_ids)} "
      "images")

# %% [markdown]
# The same from a terminal, for a folder of yours (`--num-classes 1` for binary masks; `python -m
# unet_tutorial predict` then works on the checkpoint it writes):
# ```
# python -m unet_tutorial train --dataset folder --images my_data/train/images --masks my_data/train/masks \
#     --num-classes 1 --val-fraction 0.2
# ```
# The command line holds out a random fraction of the *images*. That is right when the images are independent
# photos, and wrong when, as here, several photos show the same object (section 3): then train with the Python
# lines above, which take a validation folder of your own, split by object. (The command's defaults are the
# GPU-sized ones; `--base-channels` and `--image-size` change them.)

# %% [markdown]
# ## More exercises (optional)
#
# Two experiments and a metric, on the model you trained (the core's three, exercises 1 and 2 and experiment 3,
# sit in sections 3, 12 and 13). Each asks for a function, and its self-check runs that function on a small case of its own
# first, where the usual shortcuts give other answers, then on your run. (In the exercise version, "Run all" stops
# at the first exercise you have not solved, which is why these come after the core; the appendices after the
# summary need only the core sections.)

# %% [markdown]
# ### Experiment 4: which views fail? (optional, ~5 min)
# Section 8 showed the worst *images*. Are some *views* (01 to 16, around the car) harder than others? Write
# `worst_views_of(val_ids, per_image) -> list[int]`: the three views (numbers 1 to 16, as in the file names) with
# the lowest mean Dice over the validation cars, where `per_image` holds one Dice per image, in the order of
# `val_ids` (section 8). End the cell with `worst_views = worst_views_of(val_ids, per_image)`. Then look at those
# views in the figure of section 3, and at their bars in section 2's share of car by view: what do they have in
# common?

# %% tags=["solution"]
# Hint: the view is the number after the last "_" of an id; collect per_image's values by view, average each
#   group, and sort the views by that average. A car may lack a view, and the worst images need not lie in the
#   worst views. End with worst_views = worst_views_of(val_ids, per_image); after a miss,
#   check_worst_views(..., reveal=True) shows the answer.
from collections import defaultdict

import numpy as np


def worst_views_of(val_ids: list[str], per_image: np.ndarray) -> list[int]:
    """The three views (1 to 16) whose images have the lowest mean Dice; per_image: one Dice per id of val_ids."""
    by_view = defaultdict(list)
    for image_id, dice in zip(val_ids, per_image):
        by_view[int(image_id.rsplit("_", 1)[1])].append(float(dice))
    view_dice = {view: float(np.mean(scores)) for view, scores in by_view.items()}
    return sorted(view_dice, key=view_dice.get)[:3]


worst_views = worst_views_of(val_ids, per_image)
print("worst views:", worst_views)

# %%
from unet_tutorial.course.exercises.carvana import check_worst_views

check_worst_views(worst_views_of, val_ids, per_image)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the worst views have in common
from unet_tutorial.course.reading import reading

other_cover = np.mean([c for v, c in coverage_by_view.items() if v not in worst_views])
smaller = [v for v in worst_views if coverage_by_view[v] < 0.9 * other_cover]  # each view judged on its own
covers = ", ".join(f"view {v} {coverage_by_view[v]:.1%}" for v in worst_views)
largest_small = max((coverage_by_view[w] for w in smaller), default=0.0)
# other views whose car is as small as a worst one's, within half a point of the image: not among the worst
as_small = sorted(v for v, c in coverage_by_view.items() if v not in worst_views and c <= largest_small + 0.005)
not_only = (f"; but view{'s' if len(as_small) > 1 else ''} {', '.join(map(str, as_small))}, as small, "
            f"{'are' if len(as_small) > 1 else 'is'} not among the worst, so size is at most part of it"
            if as_small else "")
if len(smaller) == len(worst_views):
    link = (f"all smaller in the picture ({covers} of the image is car, against {other_cover:.1%} on average in the "
            "other views, section 2). An error band of the same width along the outline is a larger share of a "
            f"smaller car, which may be why its Dice is lower{not_only}")
elif smaller:
    link = (f"not all smaller in the picture ({covers} of the image is car, against {other_cover:.1%} on average "
            f"in the other views, section 2): for view{'s' if len(smaller) > 1 else ''} "
            f"{', '.join(map(str, smaller))} a smaller car, whose outline band is a larger share of it, may be the "
            f"reason{not_only}; for the others look in section 3 for what else they share (reflections, wheels, a dark side)")
else:
    larger = all(coverage_by_view[v] > other_cover for v in worst_views)  # more car than the other views' average
    link = (f"{'if anything larger' if larger else 'not smaller'} in the picture ({covers} of the image is car, "
            f"against {other_cover:.1%} on average in the other views, section 2), so size does not explain them: "
            "look at them in section 3 for what else they share (reflections, wheels, a dark side)")
names = {1: "the front", 5: "the side", 9: "the back", 13: "the other side"}
named = ", ".join(f"{v}" + (f" ({names[v]})" if v in names else "") for v in worst_views)
reading(f"""
**In this run the worst views were {named}**, scored on {len({car_of(i) for i in val_ids})} validation cars.
These views are {link}. No standard error comes with this ranking: with one image per car and view, the order past the first
one or two views is likely noise; on {"the drawn cars" if IS_REAL else "the real photos"} it may differ, and
it tells you which photos to look at first.
""")


# %% [markdown]
# ### Exercise 5: Dice where it is hard, on the outline (optional)
# Almost every pixel of a car photo is easy: deep inside the car or far out in the studio. Whole-image Dice
# counts them all, which dilutes any difference at the outline, such as that between section 11's two ways of
# enlarging. A **boundary** score counts only the pixels near the true outline (the idea of Boundary IoU, Cheng et al., CVPR 2021,
# [arXiv:2103.16562](https://arxiv.org/abs/2103.16562)).
#
# Write `edge_dice(preds, targets, width)`: one number, the mean over images of each image's Dice, as `dice_score`
# (`unet_tutorial/metrics.py`) returns it, counted only on the **band** of pixels within `width` pixels of the true outline, that is, the pixels whose
# (2·width+1) x (2·width+1) square neighbourhood in `targets` holds both car and background. `preds` and
# `targets` are 0/1 tensors of shape (N, 1, H, W), of any type: the cell after the check passes bool predictions
# and masks as read from the GIFs, uint8.

# %% tags=["solution"]
# Hint: section 8's cell that counts the worst images' wrong pixels finds the pixels within 2 pixels
#   of the outline (`near_outline`), on masks turned into floats first; you need `width`. To score only the band, look at dice_score's `ignore_index` parameter: it
#   leaves out the pixels whose *target* holds that value. Stuck after a failed check?
#   check_edge_dice(edge_dice, reveal=True) shows the value it expected.
import torch
import torch.nn.functional as F

from unet_tutorial.metrics import dice_score


def edge_dice(preds: torch.Tensor, targets: torch.Tensor, width: int = 3) -> float:
    """The per-image Dice of preds against targets, (N, 1, H, W) 0/1, on the band within width pixels of the
    true outline."""
    targets = targets.float()
    size = 2 * width + 1

    def square_max(t: torch.Tensor) -> torch.Tensor:  # the max over each size x size square: rows, then columns
        return F.max_pool2d(F.max_pool2d(t, (1, size), 1, (0, width)), (size, 1), 1, (width, 0))

    band = square_max(targets) != -square_max(-targets)  # dilated != eroded: both car and background nearby
    return dice_score(preds.float(), targets.masked_fill(~band, 255), ignore_index=255)


# %%
from unet_tutorial.course.exercises.edges import check_edge_dice

check_edge_dice(edge_dice)

# %% [markdown]
# Your `edge_dice` on section 11's experiment, image by image: both ways of enlarging, at full size, on about 32
# validation images spread over every car and every view, with a band about one model pixel wide (`edge_width`,
# the photo pixels per model pixel, 3 at least): the width of the staircase's steps.

# %%
step = max(1, len(val_ids) // 32)
# every step-th validation image, starting one view later for each car, so that the sample holds every view (the ids
# are sorted by car, 16 views each: a plain every-4th would take views 01, 05, 09 and 13 of every car)
edge_sample = [k for k in range(len(val_ids)) if (k + k // 16) % step == 0]
edge_width = max(3, round(photo_size[0] / IMAGE_SIZE[0]))  # photo pixels per model pixel: a step of the staircase
whole_scores, edge_scores = {name: [] for name in full_dice}, {name: [] for name in full_dice}
for k in tqdm(edge_sample, desc="edge Dice"):
    true_mask = torch.from_numpy(read_label(raw.mask_paths[index_of[val_ids[k]]]))[None, None]  # (1, 1, H, W)
    for name, pred in enlarge(val_probs[k][None], tuple(true_mask.shape[-2:])).items():
        whole_scores[name].append(dice_score(pred.float(), true_mask.float()))
        edge_scores[name].append(edge_dice(pred, true_mask, edge_width))
edge_cars = [val_cars[k] for k in edge_sample]  # the car of each scored image
whole_gap, edge_gap = (compare("enlarging the probabilities", scores["probabilities, bilinear"], "enlarging the labels",
                               scores["labels, nearest"], groups=edge_cars, group_name="cars")
                       for scores in (whole_scores, edge_scores))
for name in full_dice:
    print(f"{name:<26} Dice {np.mean(whole_scores[name]):.4f}, edge Dice ({edge_width} px) "
          f"{np.mean(edge_scores[name]):.4f}")
print(f"whole image: {whole_gap.sentence()}")
print(f"edge band:   {edge_gap.sentence('edge Dice')}")

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the edge band showed
from unet_tutorial.course.reading import reading

# How many times the band multiplied the gap and its noise: the gap's strength moves with their quotient
if whole_gap.difference and whole_gap.standard_error:
    gap_times = edge_gap.difference / whole_gap.difference
    noise_times = edge_gap.standard_error / whole_gap.standard_error
    noise_words = (f"its noise {noise_times:.1f} times (± {whole_gap.standard_error:.3g} to ± "
                   f"{edge_gap.standard_error:.3g})")
    if gap_times < 0:  # the band scored the other way round
        times = (f"the band turned the gap's sign ({whole_gap.difference:+.4f} to {edge_gap.difference:+.4f}) and "
                 f"multiplied {noise_words}")
    elif noise_times > 1.2 * gap_times:
        times = f"the band multiplied the gap {gap_times:.1f} times but {noise_words}"
    elif gap_times > 1.2 * noise_times:
        times = f"the band multiplied the gap {gap_times:.1f} times and {noise_words.replace('its noise', 'its noise only')}"
    else:
        times = f"the band multiplied the gap and its noise alike ({gap_times:.1f} and {noise_times:.1f} times)"
    why_not = (f": {times}. A wider band (`width`) takes in more of each step and more easy pixels too: try one "
               "and see which grows faster")
else:
    why_not = ""


# A gap's strength is its number of standard errors (`Gap.ratio`): a score that magnifies the gap magnifies its
# noise too. "Stood out more" only by a margin: 1.5 times the standard errors, since a tenth of one is no evidence
sharper = edge_gap.difference * whole_gap.difference > 0 and edge_gap.ratio >= 1.5 * whole_gap.ratio
against = (f"{edge_gap.ratio:.1f} standard errors, against the whole-image Dice's {whole_gap.ratio:.1f}; "
           f"the bar is {edge_gap.bar:.2f}")
if edge_gap.clear and not whole_gap.clear:
    told = (f"the edge Dice told the two ways apart beyond noise where the whole-image Dice could not ({against}): "
            "it does not drown the outline in the easy pixels inside the car and out in the studio")
elif edge_gap.clear and sharper:
    told = (f"both scores told them apart, and the edge Dice's gap stood out more from its noise ({against}): "
            "the whole-image score hides the staircase under the many easy pixels")
elif edge_gap.clear:
    told = (f"both scores told them apart, but the edge Dice's gap did not stand out more from its noise "
            f"({against})" + why_not)
elif sharper:
    told = (f"the edge Dice's gap stood out more from its noise ({against}), as a score that leaves out the easy "
            f"pixels should, but on {edge_gap.units} cars even that is within the bar ({edge_gap.bar:.2f} standard errors)")
else:
    told = f"the edge Dice did not tell them apart beyond noise ({against})" + why_not
papers = ("Boundary scores are how papers compare models whose masks are all \"good\" by Dice, and here the band "
          "did what they use it for. " if edge_gap.clear and (sharper or not whole_gap.clear) else
          "Boundary scores are how papers compare models whose masks are all \"good\" by Dice; whether they separate "
          "two models better depends on the band and on how many images they are averaged over: here they did not. ")
edge_bilinear = np.mean(edge_scores["probabilities, bilinear"])  # the way predict_mask enlarges
whole_bilinear = np.mean(whole_scores["probabilities, bilinear"])
if edge_bilinear < whole_bilinear:
    gain = (f"With the probabilities enlarged, as `predict_mask` does, the edge Dice is {edge_bilinear:.3f} against "
            f"{whole_bilinear:.3f} for the whole image: the pixels around the outline are where a better model "
            "would gain.")
else:
    gain = (f"With the probabilities enlarged, as `predict_mask` does, the edge Dice ({edge_bilinear:.3f}) is no "
            f"lower than the whole image's ({whole_bilinear:.3f}): this model's errors are not concentrated at "
            "the outline.")
edge_lead = ("The edge Dice told the two ways of enlarging apart better than the whole-image Dice"
             if edge_gap.clear and (sharper or not whole_gap.clear) else
             "The edge Dice did not tell the two ways of enlarging apart better than the whole-image Dice")
reading(f"""
**{edge_lead}.**

On {edge_gap.images} validation images of {edge_gap.groups} cars at full size, enlarging the probabilities
instead of the labels changed the whole-image Dice by {whole_gap.difference:+.4f} and the edge Dice by
{edge_gap.difference:+.4f}: {told}. {papers}{gain}
""")

# %% [markdown]
# ### Experiment 6: does the tuned threshold hold on new cars? (optional; needs section 10)
# Section 10 picked a threshold on all validation images and measured its gain on the same images. Measure it
# honestly: write `held_out_gain(val_ids, val_probs, val_masks, thresholds) -> tuple[float, float]`. It sorts
# the cars of `val_ids` and splits them in two (the first half, rounded down, to tune on; the rest), picks the
# best of `thresholds` on the tuning cars' images only, and returns `(threshold, gain)`: that threshold, and the
# Dice at it *minus* the Dice at 0.5, both on the *other* half's images. End the cell with
# `tuned, threshold_gain = held_out_gain(val_ids, val_probs, val_masks, thresholds)` (section 10's `thresholds`).
# Is the gain still there? Each half has only half the validation cars (4 of 8 on a CPU, 1 in smoke mode), so the
# bar for a clear gap is high (section 8: 3.2 standard errors over 4 cars, no verdict at all over 1): read the
# held-out gain with `compare(..., groups=...)` on the other half's images, as section 10 read its own.

# %% tags=["solution"]
# Hint: car_of (section 2) gives an image's car; a boolean index (one True/False per image of val_ids) selects
#   each half's rows of val_probs and val_masks; dice_score(probs > t, masks) scores a threshold on them. End with
#   tuned, threshold_gain = held_out_gain(val_ids, val_probs, val_masks, thresholds); after a miss,
#   check_threshold_gain(..., reveal=True) shows the expected values.
import torch

from unet_tutorial.metrics import dice_score


def held_out_gain(val_ids: list[str], val_probs: torch.Tensor, val_masks: torch.Tensor,
                  thresholds) -> tuple[float, float]:
    """The best of thresholds on the first half of the sorted cars of val_ids, and its Dice gain over 0.5 on the
    other half."""
    sorted_cars = sorted({car_of(i) for i in val_ids})
    tune_cars = set(sorted_cars[:len(sorted_cars) // 2])
    tune = torch.tensor([car_of(i) in tune_cars for i in val_ids])  # one True/False per image
    tuned = max(thresholds, key=lambda t: dice_score(val_probs[tune] > t, val_masks[tune]))
    rest_probs, rest_masks = val_probs[~tune], val_masks[~tune]
    return float(tuned), dice_score(rest_probs > tuned, rest_masks) - dice_score(rest_probs > 0.5, rest_masks)


tuned, threshold_gain = held_out_gain(val_ids, val_probs, val_masks, thresholds)
print(f"threshold picked on half of the cars: {tuned}; its gain on the other half: {threshold_gain:+.4f}")

# %%
from unet_tutorial.course.exercises.carvana import check_threshold_gain

check_threshold_gain(held_out_gain, val_ids, val_probs, val_masks)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Whether the tuned threshold held
from unet_tutorial.course.reading import compare, reading

halves = sorted({car_of(i) for i in val_ids})  # the halves of held_out_gain, for the reading
tune_cars = set(halves[:len(halves) // 2])
tune = torch.tensor([car_of(i) in tune_cars for i in val_ids])  # (N,) True: a tuning car's image
rest_cars = [c for c, t in zip(val_cars, tune.tolist()) if not t]  # the car of each held-out image
n_tune, n_rest = len(tune_cars), len(halves) - len(tune_cars)
if tuned == 0.5:
    if best_threshold == 0.5:
        also = ("Section 10, picking on all the validation cars, found 0.5 too: on this model the threshold is "
                "not worth tuning.")
    else:
        also = (f"Section 10, picking on all the validation cars, found {best_threshold}: a best threshold that "
                "moves with the cars it is picked on is a sign that its gain is noise.")
    reading(f"""
    **Nothing to carry over: the tuning cars picked 0.5 itself.**

    On the first {n_tune} of the {len(halves)} validation cars the best threshold was 0.5 itself, the default:
    there was nothing to tune, so nothing to carry over to the other {n_rest} (the gain there is 0 by
    construction). {also} A gain measured where it was tuned is no evidence; only one that holds on cars it
    was not picked on is.
    """)
else:
    held_out = compare(f"threshold {tuned}", dice_per_image(val_probs[~tune], val_masks[~tune], tuned),
                       "threshold 0.5", dice_per_image(val_probs[~tune], val_masks[~tune]),
                       groups=rest_cars, group_name="cars")
    in_sample = (dice_score(val_probs[tune] > tuned, val_masks[tune])
                 - dice_score(val_probs[tune] > 0.5, val_masks[tune]))
    if held_out.units < 3:
        verdict = (f"With {held_out.units} held-out car{'s' if held_out.units != 1 else ''}, a standard error "
                   "rests on almost nothing (section 8): this run cannot say whether the gain holds.")
    elif held_out.clear and held_out.leader != "threshold 0.5" and held_out.units < 5:
        verdict = (f"The gain held beyond its noise on cars it was not picked on, but over only "
                   f"{held_out.units} cars, whose standard error is itself rough (section 8): a hint to check on more "
                   f"cars before setting `THRESHOLD = {tuned}`.")
    elif held_out.clear and held_out.leader != "threshold 0.5":
        verdict = (f"The gain held, beyond noise, on cars it was not picked on: `THRESHOLD = {tuned}` earns its "
                   "place.")
    elif held_out.clear:
        verdict = ("On the other cars the tuned threshold did worse than 0.5, beyond noise: keep 0.5"
                   + (f" (over only {held_out.units} cars, a hint more than a result: section 8)."
                      if held_out.units < 5 else "."))
    else:
        verdict = ("On the other cars the tuned threshold's gain is within the noise: no reason to move from "
                   "0.5.")
    larger = ("(That the held-out gain came out larger than the tuning cars' own may well be chance: cars differ "
              "in how much a threshold can fix, and with this few the two gains are noisy.)"
              if threshold_gain > in_sample else "")
    moved = ("Section 10, picking on all the validation cars, found the same threshold." if tuned == best_threshold
             else f"Section 10, picking on all the validation cars, found {best_threshold}: where the best threshold "
             "moves with the cars it is picked on, part of any gain is the cars' noise.")
    reading(f"""
    **{verdict}**

    The threshold picked on {n_tune} of the {len(halves)} validation cars was {tuned}. It gained
    {f"{in_sample:+.4f} Dice" if abs(in_sample) >= 0.00005 else "less than 0.0001 Dice (the best there by a hair)"}
    on those cars and {threshold_gain:+.4f} on the other {n_rest}. There,
    {held_out.sentence()}. {larger} {moved} A gain measured where it was tuned is no evidence; section
    10's gain, picked and measured on all the validation cars, is exposed to the same flattery.
    """)

# %% [markdown]
# ## Summary
#
# - Real data comes with paperwork: a Kaggle token, the rules accepted once, and a place to keep the files and
#   the checkpoints (Google Drive on Colab). Without it, `carvana_data()` generates a stand-in and says so.
# - Look before training: images, masks, overlays and coverage statistics tell you what the loss must do.
# - Split by the unit that repeats (the car). A split by image validates on near-copies of training photos.
# - Augment with what the camera could really do (crops, mirror images, small tilts, lighting), nothing more.
# - `fit` = `train_one_epoch` + `evaluate` + checkpoints; `resumable` continues or loads a run with the same
#   `CONFIG`, and the checkpoint names its model, so `load_model` and the command line rebuild it.
# - Read the failures, not only the mean: per-image Dice, the worst images, where their errors are; read every
#   gap against its standard error, counted over the cars (views of one car rise and fall together), before you
#   call it a gain.
# - At test time: enlarge the probabilities rather than the labels to the photo's size (the staircase of enlarged
#   labels; section 11 reads whether your run could tell the gain from its noise),
#   change the threshold or add TTA
#   only for a gain that holds on cars it was not picked on, and encode masks as run lengths.
# - `FolderDataset` trains the same U-Net on your own folder of images and masks.
#
# **Next**: notebook 04 swaps the encoder for a DenseNet121 pretrained on ImageNet: a few epochs of transfer
# learning against training from scratch.

# %% [markdown]
# ## Appendix A: what "the same run" means (optional)
#
# A `last.pt` holds the weights, the optimiser's state, the schedule, the random state, the history and the
# settings (`CONFIG`). Section 7 continues one only when its stored `CONFIG` equals this notebook's, compared
# whole. Here is why, with section 7's checkpoint (written or loaded by this run): change one setting (say
# `EPOCHS`) and the old run is not continued, because its learning-rate schedule, its number of epochs and its best score belong to
# other settings; `fit` then trains from scratch and replaces it. `resumable` only reads, so we can ask it.

# %%
from unet_tutorial.checkpoint import read_checkpoint, resumable

saved = read_checkpoint(RUN_DIR / "last.pt")
print(f"last.pt: epoch {saved['epoch']} of {saved['config']['epochs']}, best validation Dice {saved['best']:.4f}")
for name, value in {"epochs": EPOCHS + 4, "image_size": [2 * s for s in IMAGE_SIZE]}.items():
    print(f"with {name}={value}:", end=" ")
    resumable(RUN_DIR, {**CONFIG, name: value})
print("with these settings:", end=" ")
_ = resumable(RUN_DIR, CONFIG)  # a finished run: fit would load it with nothing left to train

# %% [markdown]
# On Colab, set `CACHE_ON_DRIVE = True` before a long run: `RUN_DIR` is then on your Google Drive, and after a
# disconnect "Run all" in a new session finds the same `last.pt` and resumes after its last finished epoch. The
# checkpoint holds the random state too, and `fit` re-seeds the loaders from it every epoch, so the resumed
# epochs shuffle and augment as the uninterrupted run would have. To train again from scratch with the same
# settings, delete `RUN_DIR`.
#
# ## Appendix B: mixed precision and channels_last on *your* runtime (optional)
#
# Two switches often speed up the training of convolutional networks on a GPU:
# - **AMP** (automatic mixed precision, `torch.autocast`): convolutions and matrix multiplies in 16-bit floats
#   (bfloat16, or float16 with a gradient scaler so that small gradients do not round to zero), which a GPU's
#   tensor cores run several times faster than 32-bit; the weights stay in 32-bit;
# - **channels_last**: the (B, H, W, C) memory layout that those kernels prefer over PyTorch's default
#   (B, C, H, W). The tensor's shape does not change, only the order of its numbers in memory.
#
# Whether they help depends on the hardware, so we measure: `time_train_step` (in `unet_tutorial/measure.py`)
# times training steps of a *copy* of the model each way, three tries each. On a GPU both usually pay off,
# which is why the settings turn AMP on on CUDA (`fit` uses channels_last on CUDA by itself). On a CPU `fit` keeps
# fp32, since CPUs without bfloat16 units emulate it, slowly, and the default layout: whether channels_last pays on
# a CPU depends on the processor and the model (on our 2-core test machine whole training runs of the full U-Net
# were slower with it, while single steps of a small model can be faster), so the cell below measures yours.

# %%
from unet_tutorial.measure import time_train_step

amp_to_try = AMP_DTYPE or torch.bfloat16  # on the CPU, try bfloat16 autocast to see what it does
timing_batch = BATCH_SIZE if DEVICE.type == "cuda" else 2  # on a CPU, 2 images keep this to a few seconds
step_images, step_masks = images[:timing_batch].to(DEVICE), masks[:timing_batch].to(DEVICE)  # (B, 3, H, W)
tries = {}  # name -> seconds per step, one per try
for _ in range(1 if MODE == "smoke" else 3):  # the tries interleave, so a busy moment slows every variant
    for amp_dtype in (None, amp_to_try):
        for channels_last in (False, True):
            name = ("fp32" if amp_dtype is None else f"AMP {str(amp_dtype).split('.')[-1]}") + \
                (" + channels_last" if channels_last else "")
            tries.setdefault(name, []).append(time_train_step(
                model, step_images, step_masks, loss_fn, amp_dtype=amp_dtype, channels_last=channels_last,
                steps=1 if MODE == "smoke" else 2))
timings = {name: min(seconds) for name, seconds in tries.items()}  # other programs only ever slow a try down
for name, seconds in tries.items():
    print(f"{name:<32} {1000 * min(seconds):8.1f} ms/step (tries {', '.join(f'{1000 * s:.0f}' for s in seconds)})"
          f"   x{timings['fp32'] / min(seconds):.2f} vs fp32")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the timings say
from unet_tutorial.course.reading import reading

fastest = min(timings, key=timings.get)
speedup = timings["fp32"] / timings[fastest]
spread = max(max(tries[name]) / min(tries[name]) for name in ("fp32", fastest))  # the two compared, slowest / fastest
separated = len(tries["fp32"]) > 1 and max(tries[fastest]) < min(tries["fp32"])  # every try of one beat the other's
if len(tries["fp32"]) < 2:
    noise = "With one try per variant there is no telling a difference from noise."
else:
    noise = (f"The tries of {'fp32' if fastest == 'fp32' else f'fp32 and {fastest}'} differed by up to a factor of "
             f"{spread:.2f} on this machine: that is how noisy one timing is here, now (more so when other programs "
             "share the CPU).")
if fastest == "fp32":
    verdict = "Plain fp32 was the fastest: keep the settings as they are."
elif not separated:
    verdict = (f"{fastest} was {speedup:.2f} times as fast as fp32 by their fastest tries, but their tries overlapped: run "
               "the cell again before believing the order.")
elif "AMP" in fastest:
    verdict = (f"Every try of {fastest} beat every try of fp32 ({speedup:.2f} times as fast, best try to best try): "
               + ("the settings already train with AMP (`AMP_DTYPE`)." if AMP_DTYPE is not None else
                  "to train with it, set `AMP_DTYPE = torch.bfloat16` in the settings, and check that the Dice is "
                  "unchanged."))
else:
    verdict = (f"Every try of {fastest} beat every try of fp32 ({speedup:.2f} times as fast, best try to best try)"
               + ("; `fit` uses channels_last on CUDA by itself." if DEVICE.type == "cuda" else
                  "; `fit` uses channels_last on CUDA only. One step on 2 images is not an epoch: to use it on "
                  "this CPU, pass `channels_last=True` to `fit` and compare the seconds per epoch it prints."))
if DEVICE.type == "cuda":
    context = f"These are steps on a full batch of {len(step_images)} images."
else:
    context = ("On a CPU the answer depends on the processor (server CPUs with bfloat16 units, such as Intel's AMX, "
               "can gain from bf16; most laptop CPUs cannot), and a step on 2 images says little about a GPU's "
               "throughput at a real batch size, which is why on CUDA we time a full batch.")
slow = [name for name in timings if timings[name] > 3 * timings["fp32"] and len(tries[name]) > 1]  # far slower
slow_text = (f" {' and '.join(slow)} {'were' if len(slow) > 1 else 'was'} "
             + " and ".join(f"{timings[name] / timings['fp32']:.1f}" for name in slow)
             + f" times slower than fp32: this processor has no fast path for {'them' if len(slow) > 1 else 'it'}, so "
             f"on this machine {'they cost' if len(slow) > 1 else 'it costs'} time instead of saving it." if slow else "")
if slow_text and (fastest == "fp32" or not separated):  # the slow one is the news
    reading(f"**{slow_text.strip()}** {verdict} {noise} {context}")
else:
    reading(f"**{verdict}**{slow_text} {noise} {context}")
