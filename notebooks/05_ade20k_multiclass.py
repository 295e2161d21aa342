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
# # 05 · ADE20K: 150 classes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/05_ade20k_multiclass.ipynb) with the solutions ·
# [![Open the exercise version in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/exercises/05_ade20k_multiclass.ipynb) the exercise version: you write the solutions
#
# **What you will learn**
# - how ADE20K SceneParsing is stored, and why label 0 ("other") is ignored
# - what a long-tailed class distribution looks like, and what class weights do about it (and against it)
# - the step from binary to multi-class: softmax, cross-entropy with `ignore_index`, multi-class Dice
# - the standard scene-parsing training pipeline (random zoom, pad, crop) and scoring at annotation resolution
# - how to train a 150-class U-Net and judge it: mIoU against a majority-class baseline, per-class IoU, a
#   confusion view, pictures
# - optional: whether class weights help, read against the noise of the validation set; sliding-window inference;
#   what the full recipe looks like on several GPUs
#
# **Before you start**: notebooks 01 (the U-Net), 02 (Dice, IoU and cross-entropy) and 03 (the training loop,
# `fit`, checkpoints, and the standard error of a mean); notebook 04 (a pretrained DenseNet121 encoder) only for
# the GPU settings. Math: softmax, logarithms, mean and median, a standard error (notebook 03). PyTorch: tensors,
# indexing, `nn.Module`.
#
# **The core path**, about 75 minutes <!-- constant --> of a 90-minute lab: sections 1 to 5 and 7 and exercise 1,
# each heading marked *(core, ~N min)*, reading and running included. Section 6 (a second model, trained with class weights,
# against the first) and experiment 2 are *(optional)*: the CPU settings train that second model by default, the
# GPU settings do not (`COMPARE_WEIGHTS`: it would double the training time). Sections 8 to 10 and experiments 3
# and 4 are optional too. The optional parts use what the core built, and the core never needs them, so "Run all"
# of the core sections alone works.
#
# **Runtime**: with the generated scenes, a few minutes on a laptop CPU (a narrow U-Net, two short training runs)
# and under a minute in smoke mode; the README's table gives the times measured by `make tutorial`. `fit` prints
# each epoch's time. With the real ADE20K on disk the notebook switches to it, and on a CPU it then takes far
# longer: its CPU settings train on about 13 times the pixels (1,000 crops of 256 px once, against 200 crops of
# 80 px four times) and validate on 200 full-size photos, so expect roughly ten times as long or more: an
# *estimate* from the settings, not a measurement. On a Colab T4 with the real data the GPU settings take an
# *estimated* 71 minutes <!-- constant --> for 5 epochs (from the model's FLOPs, not a measurement either). A
# healthy run shows the training loss falling and the validation mIoU rising, above the majority-class baseline
# of section 4.

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
# Settings: every knob of this notebook, its value per mode on its own line: "smoke" (tests and CI: seconds),
# "cpu" (a laptop: minutes) and "gpu" (a Colab T4 and up). A value that depends on the data too is a
# {"real": ..., "sample": ...} pair: the real ADE20K photos, or the generated scenes used when they are not on
# disk; section 1 picks one once it knows which is there.
import os
import tempfile
from pathlib import Path

from unet_tutorial.conventions import IGNORE_INDEX  # 255: label 0 ("other") becomes 255, left out of losses and metrics
from unet_tutorial.utils import pick_device, run_mode, set_seed

DEVICE = pick_device()
MODE = run_mode(DEVICE)  # "smoke" under UNET_TUTORIAL_SMOKE=1, else "gpu" on CUDA, "cpu" anywhere else
DOWNLOAD = False  # True, then run the download cell by hand: the official ADE20K zip, about 1 GB
NUM_CLASSES = 150
# "unet" (notebook 01, from scratch) or "densenet_unet" (notebook 04: DenseNet121 encoder, ImageNet weights; on a
# CPU it trains several times slower). MODEL_KWARGS go to its constructor and into every checkpoint.
MODEL = {"smoke": "unet", "cpu": "unet", "gpu": "densenet_unet"}[MODE]
MODEL_KWARGS = {"smoke": {"base_channels": 8}, "cpu": {"base_channels": 16},
                "gpu": {"weights": "imagenet", "allow_random_encoder": True}}[MODE] | {"num_classes": NUM_CLASSES}
LR = {"smoke": 1e-2, "cpu": 3e-3, "gpu": 1e-3}[MODE]  # peak of the one-cycle schedule (a pretrained encoder: a tenth)
# The side of the square training crops, which is also the short side every image is resized to (the standard
# recipe: 512 and 512). On a CPU most of a step goes into the 150 logits per pixel: pixels are what it buys. Smoke
# mode shrinks its 64 px scenes 4 times, CPU mode its 192 px ones 2.4 times: at exactly 2 times, the nearest-resized
# masks and the upsampled logits line up, and experiment 3's two resolutions score the same but for rounding
# (at other factors they differ, if only a little on the drawn scenes).
CROP = {"smoke": {"real": 96, "sample": 16}, "cpu": {"real": 256, "sample": 80},
        "gpu": {"real": 512, "sample": 128}}[MODE]
SCALE = (0.5, 2.0)  # the random zoom of the standard recipe
EPOCHS = {"smoke": {"real": 1, "sample": 6}, "cpu": {"real": 1, "sample": 4}, "gpu": {"real": 5, "sample": 30}}[MODE]
# Training and validation images: a seeded random subset of that many (None: all of them).
TRAIN_LIMIT = {"smoke": {"real": 16, "sample": 16}, "cpu": {"real": 1000, "sample": 200},
               "gpu": {"real": None, "sample": None}}[MODE]
VAL_LIMIT = {"smoke": {"real": 4, "sample": None}, "cpu": {"real": 200, "sample": None},
             "gpu": {"real": None, "sample": None}}[MODE]
# A T4 holds 8 crops of 512 px with 150 logits per pixel (16 would need about 20 GiB): ACCUMULATE adds the
# gradients of that many batches before each optimizer step, for an effective batch of BATCH_SIZE x ACCUMULATE.
BATCH_SIZE = {"smoke": 4, "cpu": 8, "gpu": 8}[MODE]
ACCUMULATE = {"smoke": 1, "cpu": 1, "gpu": 2}[MODE]
NUM_WORKERS = {"smoke": 0, "cpu": 0, "gpu": min(8, os.cpu_count() or 1)}[MODE]  # loader processes
# Optional section 6 trains a second model with class weights, to compare: it doubles the training time (opt-in on
# a GPU; the core sections never need it).
COMPARE_WEIGHTS = {"smoke": True, "cpu": True, "gpu": False}[MODE]
FREQ_IMAGES = {"smoke": 16, "cpu": 500, "gpu": 500}[MODE]  # training masks counted for class frequencies and weights
MAX_CLASS_WEIGHT = 10.0  # cap on the class weights of section 3
SUBSET_LIMIT = 200  # at most this many validation images for section 8's sliding windows and experiment 3
OVERLAP = 0.25  # section 8: the share of a tile that its neighbour also covers
# On a T4 with the real data, estimated from the model's FLOPs (not measured): about 14 min per epoch, 71 in all.
RUN_DIR = Path(tempfile.mkdtemp(prefix="nb05_")) if MODE == "smoke" else Path("runs/05_ade20k")  # checkpoints
set_seed(0)
print(f"mode {MODE}, device {DEVICE}, model {MODEL} {MODEL_KWARGS}, checkpoints in {RUN_DIR}")

# %% [markdown]
# ## 1. Getting the data (core, ~5 min)
#
# ADE20K SceneParsing (MIT, the "ADEChallengeData2016" release) is 20,210 training and 2,000 validation photos
# of indoor and outdoor scenes, each with a per-pixel label among **150 classes**: wall, building, sky, floor,
# tree ... down to clock and flag. It comes as one zip of about 1 GB:
#
# ```
# ADEChallengeData2016/
#   images/training/ADE_train_00000001.jpg ...     images/validation/ADE_val_00000001.jpg ...
#   annotations/training/ADE_train_00000001.png    annotations/validation/ADE_val_00000001.png
# ```
#
# An annotation is a single-channel PNG of the same size as its photo, holding labels 0..150. The photos differ
# in size, and the files are sorted by scene (airport_terminal, art_gallery, badlands, ...), so "the first
# 1,000" would be a handful of scene types: when we train on part of the data, we draw a **seeded random
# subset** (`ADE20KDataset(..., limit=N, seed=0)`).
#
# To get it, run `python data_scripts/download_ade20k.py` from a clone of the repository, or the cell below
# with `DOWNLOAD = True`. Both check the archive's SHA-1 before unpacking it and resume an interrupted download.
# The cell is tagged `skip-execution`: automated runs never download. Without the real data, the notebook
# generates ADE20K-like scenes in the very same format and says so loudly.

# %% tags=["skip-execution"]
# Download ADEChallengeData2016.zip (about 1 GB), check its SHA-1 and unpack it where the notebook looks.
from unet_tutorial.course.download import fetch_ade20k
from unet_tutorial.utils import data_root

if DOWNLOAD:
    fetch_ade20k(data_root())  # -> data_root()/ADEChallengeData2016/; the zip is deleted once unpacked
else:
    print("DOWNLOAD is False: nothing downloaded")

# %%
from unet_tutorial.course.sample_data import ade20k_data
from unet_tutorial.data import ADE20KDataset

ROOT, REAL = ade20k_data()
KIND = "real" if REAL else "sample"
# This data's values of the settings that depend on it:
crop, epochs, train_limit, val_limit = CROP[KIND], EPOCHS[KIND], TRAIN_LIMIT[KIND], VAL_LIMIT[KIND]
short_side = crop  # every image's short side at zoom 1: the standard recipe keeps it equal to the crop
raw_train = ADE20KDataset(ROOT, "training")  # no transform yet: images in [0, 1], masks as stored (shifted)
raw_val = ADE20KDataset(ROOT, "validation")
print(f"{'real ADE20K' if REAL else 'generated ADE20K-like data'} in {ROOT}: {len(raw_train)} training and "
      f"{len(raw_val)} validation images")
print(f"for this data: crops of {crop} px, {epochs} epochs, training images {train_limit or 'all'}, "
      f"validation images {val_limit or 'all'}")

# %% [markdown]
# ## 2. Look at the data (core, ~10 min)
#
# Every class gets a fixed colour (`ade20k_palette`); the legend names the classes present. Black is
# "ignored": file label 0 ("other"), which the dataset turns into 255; the legend's "0: wall" is class 0 after
# that shift, file label 1.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from unet_tutorial.data import ADE20K_CLASSES, ade20k_palette
from unet_tutorial.viz import show

PALETTE = ade20k_palette()  # (150, 3) uint8
samples = [raw_train[i] for i in range(3)]
for image, mask in samples:
    print("image", tuple(image.shape), image.dtype, " mask", tuple(mask.shape), mask.dtype,
          " labels:", mask.unique().tolist())
show([s[0] for s in samples], [s[1] for s in samples], num_classes=NUM_CLASSES, palette=PALETTE,
     class_names=ADE20K_CLASSES)

# %% [markdown]
# ### Label 0, "other", and the shift to 0..149
#
# The PNG files store **0..150**: 1..150 are the classes, 0 means "none of the 150": things outside the
# benchmark's classes and regions the annotators left unlabelled (not a border label: ADE20K draws objects edge
# to edge). The benchmark does not score label 0, so we neither train on it nor count it. The dataset shifts the
# labels once, when it reads a file: `k -> k - 1` for the classes, and 0 -> **255**, the `ignore_index` that
# losses and metrics skip. Here is that shift by hand, checked against the dataset:

# %%
from unet_tutorial.readers import read_label

stored = read_label(raw_train.label_paths[0])  # uint8 (H, W), exactly what the PNG holds
print("stored labels:", np.unique(stored).tolist())


def shift_labels(stored: np.ndarray) -> np.ndarray:
    """ADE20K file labels 0..150 -> training labels: 0..149 for the classes, 255 for 'other'."""
    stored = stored.astype(np.int64)
    return np.where(stored == 0, IGNORE_INDEX, stored - 1)


shifted = shift_labels(stored)
print("training labels:", np.unique(shifted).tolist())
assert np.array_equal(shifted, raw_train[0][1].numpy()), "the dataset does the same shift"
print(f"'other' pixels in this image: {(stored == 0).mean():.1%}; "
      f"file label 1 = training label 0 = {ADE20K_CLASSES[0]!r}")

# %% [markdown]
# ### Class frequencies: a long tail
#
# Count the pixels of each class over a random sample of the training masks (reading only the PNGs is fast):

# %%
from tqdm.auto import tqdm

rng = np.random.default_rng(0)
freq_ids = rng.permutation(len(raw_train))[:FREQ_IMAGES]
counts = np.zeros(NUM_CLASSES + 1, dtype=np.int64)  # index 0: "other", 1..150: the classes as stored
for i in tqdm(freq_ids, desc="counting pixels"):
    counts += np.bincount(read_label(raw_train.label_paths[i]).ravel(), minlength=NUM_CLASSES + 1)
other_share = counts[0] / counts.sum()
pixel_counts = torch.from_numpy(counts[1:])  # (150,), index = training label
share = pixel_counts.double() / pixel_counts.sum()  # (150,) share of the labelled training pixels
order = torch.argsort(share, descending=True, stable=True)  # most frequent first
present = int((pixel_counts > 0).sum())
cumulative = share[order].cumsum(0)
print(f"{len(freq_ids)} masks: {other_share:.1%} of pixels are 'other' (ignored); {present} of 150 classes occur")
print(f"the top 4 classes cover {cumulative[3]:.0%} of the labelled pixels, the top 20 {cumulative[19]:.0%}")
for k in order[:5].tolist():
    print(f"  {ADE20K_CLASSES[k]:<12} {share[k]:.1%}")
rarest = order[present - 1].item()
print(f"  ... the rarest seen, {ADE20K_CLASSES[rarest]}: {share[rarest]:.2%}")

shown = order[: max(present, 1)]
fig, ax = plt.subplots(figsize=(12, 3.5))
ax.bar(range(len(shown)), share[shown].numpy(), color=PALETTE[shown.numpy()] / 255, edgecolor="black",
       linewidth=0.3)
ax.set_yscale("log")
ax.set_ylabel("share of labelled pixels (log)")
ax.set_xlabel("classes, most frequent first")
ticks = list(range(0, len(shown), max(1, len(shown) // 25)))
ax.set_xticks(ticks, [ADE20K_CLASSES[shown[t]] for t in ticks], rotation=70, fontsize=8)
ax.set_title(f"class frequencies over {len(freq_ids)} training masks ({150 - present} classes never seen)")
fig.tight_layout()
plt.show()

# %% [markdown] tags=["reference"]
# On the real ADE20K (all 20,210 training masks) the curve falls from **wall, 15.8%** of the pixels, to about
# **0.02%** for the rarest classes: a factor of about 790. Wall, building, sky and floor together take 41%. These
# are the pixel ratios of `objectInfo150.csv`, ADE20K's class table, which ships with the benchmark's toolkit
# (github.com/CSAILVision/sceneparsing). The generated scenes use only 20 of the 150 classes, so their tail is
# short.

# %% [markdown]
# A model trained on raw pixel counts can ignore the tail and still score a fine pixel accuracy. That is why
# ADE20K is scored by **mIoU**: every class counts the same.
#
# ## 3. From binary to multi-class (core, ~15 min)
#
# In notebooks 03 and 04 the model gave **one** logit per pixel, and a sigmoid turned it into "probability of
# car". Now it gives **150** logits per pixel, and a **softmax** over the class axis turns them into a
# distribution over classes: positive, summing to 1 at every pixel. The prediction is the argmax.

# %%
torch.manual_seed(0)
logits = torch.randn(1, 4, 2, 3)  # (B, C, H, W): 4 classes, a 2 x 3 image
probs = logits.softmax(dim=1)  # softmax over the class axis, pixel by pixel
print("probs sum over classes:\n", probs.sum(dim=1))  # (B, H, W) of ones
print("prediction (argmax over classes):\n", probs.argmax(dim=1))  # (B, H, W) of class indices

# %% [markdown]
# ### Cross-entropy, with ignored pixels
#
# Cross-entropy is the mean over pixels of `-log p[true class]`. With `ignore_index=255`, pixels labelled 255
# are simply **left out**: they add nothing to the sum and nothing to the count. Check it by hand:

# %%
import torch.nn.functional as F

from unet_tutorial.losses import cross_entropy

targets = torch.tensor([[[0, 3, 255], [2, 255, 1]]])  # (B, H, W), two ignored pixels
valid = targets != IGNORE_INDEX
log_probs = logits.log_softmax(dim=1)  # (B, C, H, W)
# 255 is no class index for gather: clamp it to any valid one (3); `valid` drops those pixels anyway
picked = log_probs.gather(1, targets.clamp(max=3).unsqueeze(1)).squeeze(1)  # (B, H, W): log p[true class]
by_hand = -(picked[valid]).mean()  # the mean over the 4 valid pixels only
print(f"by hand {by_hand:.4f}   F.cross_entropy {F.cross_entropy(logits, targets, ignore_index=255):.4f}   "
      f"package {cross_entropy(logits, targets, ignore_index=255):.4f}")
torch.testing.assert_close(by_hand, cross_entropy(logits, targets, ignore_index=IGNORE_INDEX))

# %% [markdown]
# ### Class weights
#
# Weighted cross-entropy multiplies each pixel's loss by the weight of its true class and averages with those
# weights (it divides by their sum, as PyTorch does). **Median-frequency weights** set `w_c = median(f) / f_c`
# (a simplified form of Eigen & Fergus 2015, who count each f_c only over the images that contain class c): a
# class at the median frequency gets 1, a ten times rarer one 10, a ten times more frequent one 0.1. We cap them
# at `MAX_CLASS_WEIGHT`: uncapped, a class seen in only a few pixels of the sample would get a huge weight and
# steer the whole gradient.

# %%
from unet_tutorial.losses import class_weights

freq_masks = (torch.from_numpy(shift_labels(read_label(raw_train.label_paths[i]))) for i in freq_ids)
weights = class_weights(freq_masks, NUM_CLASSES, ignore_index=IGNORE_INDEX, method="median")  # (150,)
weights = weights.clamp(max=MAX_CLASS_WEIGHT)
seen_ids = order[:present]
weight_ratio = (weights[seen_ids].max() / weights[seen_ids].min()).item()
loss_share = ((share * weights.double())[order[:4]].sum() / (share * weights.double()).sum()).item()
print("weights of the 5 most frequent classes:", [f"{weights[k]:.2f}" for k in order[:5].tolist()])
print("weights of the 5 rarest classes seen:  ", [f"{weights[k]:.2f}" for k in seen_ids[-5:].tolist()])
print(f"the largest weight is {weight_ratio:.0f}x the smallest; the top 4 classes hold {cumulative[3]:.0%} of the "
      f"pixels and would get {loss_share:.1%} of the weighted loss")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the weights do to the loss
from unet_tutorial.course.reading import reading

binds = bool((weights[seen_ids] >= MAX_CLASS_WEIGHT).any())
cap = ("binds for some rare classes, which then get less than their equal share" if binds
       else "binds for no class in this sample")
reading(f"""
Uncapped, `share x weight` is the median frequency for every class: each class that occurs gets the same
share of the weighted loss, however many pixels it has. Here {present} classes occur, so the top 4 would get
4/{present} = {4 / present:.1%} of it; the line above says {loss_share:.1%}: the cap of {MAX_CLASS_WEIGHT:g} {cap}.
""")

# %% [markdown] tags=["reference"]
# On the real ADE20K (objectInfo150's pixel ratios) the uncapped weights span about **790x**, and wall, building,
# sky and floor, 41% of the pixels, would get 4/150 = **2.7%** of the loss. None of the published ADE20K
# baselines (FCN, PSPNet, UPerNet, as mmsegmentation trains them) weights its classes. So this notebook trains
# **unweighted** by default (its loss is cross-entropy plus the Dice loss below, neither weighted), and optional
# section 6 trains a version with weighted cross-entropy beside it to see what weighting does.

# %% [markdown]
# ### Multi-class Dice
#
# The Dice loss of notebook 02 carries over class by class: soft-count the overlap between the softmax
# probabilities of class c and the one-hot mask of class c over the valid pixels, turn it into a Dice score,
# and average over the classes **present in the batch's targets**: a batch of crops shows a few of the 150
# classes, and averaging over all 150 would fill the mean with classes that are not there to be found.
# Cross-entropy judges every pixel on its own; Dice judges each class's region as a whole, so a small class
# weighs as much as a big one. The default loss is their sum; the weighted variant differs only in the
# cross-entropy:

# %%
from unet_tutorial.losses import dice_loss

CLASS_WEIGHTS = weights.to(DEVICE)


def plain_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + multi-class Dice, both skipping IGNORE_INDEX. logits (B, C, H, W), targets (B, H, W)."""
    return (cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
            + dice_loss(logits, targets, ignore_index=IGNORE_INDEX))


def weighted_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same, with median-frequency class weights in the cross-entropy (section 6)."""
    weight = CLASS_WEIGHTS.to(logits.device)
    return (cross_entropy(logits, targets, weight=weight, ignore_index=IGNORE_INDEX)
            + dice_loss(logits, targets, ignore_index=IGNORE_INDEX))


toy_logits = torch.randn(1, NUM_CLASSES, 2, 3)  # (B, 150, H, W), with the toy targets from above
print(f"on random logits: plain {plain_loss(toy_logits, targets):.4f}, "
      f"weighted {weighted_loss(toy_logits, targets):.4f}")

# %% [markdown]
# ### The model: 150 outputs per pixel
#
# Nothing in a U-Net is binary except its last 1x1 convolution: give it 150 output channels and it returns
# (B, 150, H, W) logits. On a CPU this is notebook 01's narrow UNet; on a GPU, notebook 04's DenseNet121 U-Net
# with ImageNet weights (`MODEL` in the settings). Offline, the pretrained weights cannot be downloaded:
# `allow_random_encoder=True` then goes on with a random encoder and a visible warning. `new_model` builds a
# fresh model with its optimizer: section 5 trains one, optional section 6 a second.

# %%
from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.models import build_model


def new_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A fresh 150-class model on DEVICE and its AdamW optimizer (a pretrained encoder learns at LR / 10)."""
    model = build_model(MODEL, **MODEL_KWARGS).to(DEVICE)
    pretrained = getattr(model, "pretrained", False)  # a DenseNet121 encoder that got its ImageNet weights
    groups = model.param_groups(LR / 10, LR) if pretrained else model.parameters()
    return model, torch.optim.AdamW(groups, lr=LR, weight_decay=1e-4)


model, _ = new_model()
NORM = getattr(model, "normalization", {"mean": IMAGENET_MEAN, "std": IMAGENET_STD})  # what the encoder expects
head = model.head if MODEL == "densenet_unet" else model.outc.conv  # the 1x1 conv that gives the logits
with torch.no_grad():
    out = model.eval()(torch.zeros(1, 3, 64, 96, device=DEVICE))
print(f"{type(model).__name__}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; "
      f"the last conv {head.in_channels} -> {head.out_channels} channels")
print("images (1, 3, 64, 96) -> logits", tuple(out.shape))  # (B, 150, H, W)

# %% [markdown]
# ## 4. The training pipeline: zoom, pad, crop (core, ~10 min)
#
# ADE20K's photos come in many sizes. The standard training pipeline (mmsegmentation's ADE20K configs)
# first brings every photo to one scale, then varies it on purpose, the same way for every photo:
#
# 1. resize so that the **short side** is `crop` pixels times a random zoom in 0.5-2.0;
# 2. where the zoomed photo is smaller than the crop, **pad** it: the image with 0, the mask with 255 (ignored);
# 3. cut a random `crop` x `crop` **crop**, flip it left-right half the time, jitter its colours.
#
# `transforms.scale_crop_transforms` is that pipeline. Here are a few crops of one training image, drawn from it
# again and again, with their masks (black: ignored, either "other" or padding):

# %%
from unet_tutorial.readers import read_image
from unet_tutorial.transforms import scale_crop_transforms, seed_pipeline
from unet_tutorial.viz import colorize

train_tf = scale_crop_transforms(crop, short_side=short_side, scale=SCALE, **NORM)
show_tf = scale_crop_transforms(crop, short_side=short_side, scale=SCALE, mean=None, std=None)  # [0, 1], to draw
seed_pipeline(show_tf, 0)  # albumentations draws from generators of its own: seeded, the same crops every run
photo, labels = read_image(raw_train.image_paths[0]), raw_train[0][1].numpy().astype(np.uint8)
crops = [show_tf(image=photo, mask=labels) for _ in range(5)]
print("photo", photo.shape, "-> crops", tuple(crops[0]["image"].shape), "and masks", tuple(crops[0]["mask"].shape))
fig, axes = plt.subplots(2, len(crops) + 1, figsize=(2.3 * (len(crops) + 1), 4.6))
axes[0, 0].imshow(photo)
axes[0, 0].set_title(f"the photo, {photo.shape[1]} x {photo.shape[0]}", fontsize=9)
axes[1, 0].imshow(colorize(labels, PALETTE))
for i, out in enumerate(crops, start=1):
    axes[0, i].imshow(out["image"].permute(1, 2, 0).numpy())  # (3, H, W) in [0, 1] -> (H, W, 3)
    axes[0, i].set_title(f"crop {i}", fontsize=9)
    axes[1, i].imshow(colorize(out["mask"], PALETTE))
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# How much of the training crops is padding? With the crop equal to the short side, every zoom below 1 (a third
# of the range 0.5-2.0) makes the photo's short side smaller than the crop, and those crops carry a band of
# padding. Measure it: pass a mask of class 0 everywhere (no 255 in it) through the same pipeline, and every 255
# that comes out is padding.

# %%
pad_rng = np.random.default_rng(0)
padding = []
for i in pad_rng.integers(len(raw_train), size=200):
    photo = read_image(raw_train.image_paths[i])
    out = show_tf(image=photo, mask=np.zeros(photo.shape[:2], np.uint8))  # 255 only where padded
    padding.append((out["mask"] == IGNORE_INDEX).float().mean().item())
print(f"over 200 crops: {np.mean(padding):.1%} of the pixels are padding; {np.mean([p > 0 for p in padding]):.0%} "
      f"of the crops hold some; 'other', also 255, is {other_share:.1%} of the photos' pixels")

# %% [markdown]
# The loss skips the padding, so it costs compute, not correctness; in exchange the model sees every scene from
# half to twice its size.
#
# **Validation** is deterministic: each image is resized to the same short side (no zoom, no crop), but its
# **mask stays at its own size**, as the benchmark scores: `evaluate` upsamples the logits (bilinear) to the
# mask before counting. Resizing the masks instead would drop thin and small regions and score a different
# task (experiment 3 measures the difference).

# %%
from torch.utils.data import DataLoader

from unet_tutorial.loaders import seed_worker
from unet_tutorial.transforms import eval_transforms

val_tf = eval_transforms(None, short_side=short_side, keep_mask=True, **NORM)
train_set = ADE20KDataset(ROOT, "training", train_tf, limit=train_limit, seed=0)
val_set = ADE20KDataset(ROOT, "validation", val_tf, limit=val_limit, seed=0)
EXPERIMENT_IMAGES = min(len(val_set), SUBSET_LIMIT)  # section 8's sliding windows and experiment 3 score these
loader_args = {"num_workers": NUM_WORKERS, "pin_memory": DEVICE.type == "cuda", "worker_init_fn": seed_worker}
train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, drop_last=len(train_set) > BATCH_SIZE,
                          generator=torch.Generator(), **loader_args)
# Real photos differ in size, so they are validated one by one; the generated scenes all share one size.
val_loader = DataLoader(val_set, batch_size=1 if REAL else BATCH_SIZE, **loader_args)
images, masks = next(iter(train_loader))
print("a training batch: images", tuple(images.shape), images.dtype, " masks", tuple(masks.shape), masks.dtype)
image, mask = val_set[0]
print("a validation pair: image", tuple(image.shape), "(short side", short_side, ") and mask", tuple(mask.shape))
print(f"{len(train_set)} training images ({len(train_loader)} batches), {len(val_set)} validation images "
      f"(drawn from {len(raw_train)} and {len(raw_val)})")

# %% [markdown]
# ### The baseline to beat
#
# Before training, the score of a model that knows nothing about images: predict the most frequent training
# class everywhere. Its pixel accuracy is that class's share, which can look respectable; its mIoU is tiny.

# %%
from unet_tutorial.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy

majority = int(order[0])
baseline = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)  # (150, 150) pixel counts
for _, mask in tqdm(val_set, desc="majority baseline"):
    baseline += confusion_matrix(torch.full_like(mask, majority), mask, NUM_CLASSES, ignore_index=IGNORE_INDEX)
BASELINE = {"miou": mean_iou(baseline), "pixel_accuracy": pixel_accuracy(baseline)}
print(f"always {ADE20K_CLASSES[majority]!r}: mIoU {BASELINE['miou']:.3f}, "
      f"pixel accuracy {BASELINE['pixel_accuracy']:.3f}")

# %% [markdown]
# ## 5. Train (core, ~15 min; with the real data on a GPU, start it before the lab)
#
# The training loop from notebook 03: `fit` runs `train_one_epoch` and `evaluate` per epoch, with a one-cycle
# learning rate (`fit` prints each epoch's first value, which starts at `LR / 25`), and keeps `best.pt` (highest validation mIoU) and `last.pt` in the run's folder. With
# `resume=resumable(run_dir, config)` a finished run with the same `config` (every setting that changes the
# trained model) is loaded instead of trained again, an unfinished one (Colab disconnected?) continues from
# `last.pt`, and a run with other settings starts over. Every run starts from `set_seed(0)`: the same initial
# weights and the same crops in the same order, so two runs differ only in what we change.

# %%
from unet_tutorial.checkpoint import resumable
from unet_tutorial.train import fit

# Every setting that changes the trained model. "model" and "model_kwargs" let load_model rebuild it, so
# `python -m unet_tutorial predict --checkpoint runs/05_ade20k/plain/best.pt photos/` works on these runs.
CONFIG = {"model": MODEL, "model_kwargs": MODEL_KWARGS, "dataset": "ade20k", "num_classes": NUM_CLASSES,
          "ignore_index": IGNORE_INDEX, "short_side": short_side, "mean": list(NORM["mean"]),
          "std": list(NORM["std"]), "lr": LR, "crop": crop, "scale": list(SCALE), "epochs": epochs,
          "batch_size": BATCH_SIZE, "accumulate": ACCUMULATE, "train_images": len(train_set), "data": str(ROOT)}


def train_run(name: str, loss_fn, **settings) -> tuple[torch.nn.Module, dict]:
    """A fresh model trained with ``loss_fn`` in RUN_DIR / name (or the finished run there); (model, history)."""
    set_seed(0)  # the same initial weights and the same crops for every run
    model, optimizer = new_model()
    run_dir, config = RUN_DIR / name, {**CONFIG, "loss": name, **settings}
    history = fit(model, train_loader, val_loader, epochs=epochs, loss_fn=loss_fn, optimizer=optimizer,
                  device=DEVICE, num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, scheduler="onecycle",
                  accumulate=ACCUMULATE, checkpoint_dir=run_dir, resume=resumable(run_dir, config), config=config)
    return model, history


model, history = train_run("plain", plain_loss)

# %%
from unet_tutorial.utils import report_metric
from unet_tutorial.viz import plot_history

final = {"miou": history["val_miou"][-1], "pixel_accuracy": history["val_pixel_accuracy"][-1]}
best_epoch = int(np.argmax(history["val_miou"]))
beats = "above" if final["miou"] > BASELINE["miou"] else "NOT above"
print(f"after {len(history['epoch'])} epochs: validation mIoU {final['miou']:.3f}, pixel accuracy "
      f"{final['pixel_accuracy']:.3f}; {beats} always {ADE20K_CLASSES[majority]!r} ({BASELINE['miou']:.3f} and "
      f"{BASELINE['pixel_accuracy']:.3f})")
print(f"best epoch {history['epoch'][best_epoch]}: mIoU {history['val_miou'][best_epoch]:.3f}")
report_metric("val_miou", final["miou"], "05_ade20k_multiclass", data="real" if REAL else "generated")
plot_history(history, metrics=["val_miou", "val_pixel_accuracy"])

# %% [markdown]
# We report the **last** epoch, where the one-cycle schedule ends. The best epoch's mIoU (which `best.pt` keeps)
# is picked on the very validation set it is measured on, so it is optimistic: the more epochs there are to
# pick from, the more of it is luck. A held-out test set would give the unbiased number; ADE20K's own test
# labels are not public, so you would split one off the training images.
#
# ### Scoring image by image
#
# To read the model class by class (section 7), and to tell whether a gap between two models is beyond the noise
# of the validation set (section 6), we score **each image on its own** (with `evaluate`, at annotation
# resolution) and keep its counts: per class, the pixels of the intersection, of the union and of the true mask.
# Summed over the images, the same counts give the usual dataset-level confusion matrix, mIoU and pixel accuracy,
# the numbers `fit` printed for its last epoch.

# %%
from unet_tutorial.course.reading import compare
from unet_tutorial.metrics import SegmentationMetrics
from unet_tutorial.train import evaluate


def score_images(model: torch.nn.Module, dataset) -> dict:
    """``evaluate`` on each image alone: the summed confusion matrix (150, 150), and per image and class the
    intersection, union and true pixel counts (N, 150), which paired comparisons need."""
    confusion = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    inter, union, truth = [], [], []
    for image, mask in tqdm(dataset, desc="scoring images", leave=False):
        metrics = SegmentationMetrics(NUM_CLASSES, ignore_index=IGNORE_INDEX)
        evaluate(model, [(image[None], mask[None])], DEVICE, num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX,
                 metrics=metrics, progress=False)  # one batch of one image
        counts = metrics.confusion_matrix()  # (150, 150): rows true class, columns predicted class
        confusion += counts
        inter.append(counts.diag())
        union.append(counts.sum(0) + counts.sum(1) - counts.diag())
        truth.append(counts.sum(1))
    return {"confusion": confusion, "inter": torch.stack(inter), "union": torch.stack(union),
            "truth": torch.stack(truth)}


def image_miou(scores: dict) -> torch.Tensor:
    """(N,) each image's mIoU over the classes it shows or the model predicts in it."""
    return (scores["inter"] / scores["union"]).nanmean(1)  # 0/0 = NaN for classes in neither


def summary(confusion: torch.Tensor) -> dict:
    return {"miou": mean_iou(confusion), "pixel_accuracy": pixel_accuracy(confusion)}


ARMS = {"plain": model}  # the trained models by name; optional section 6 adds the weighted one
SCORES = {"plain": score_images(model, val_set)}
CONFUSIONS = {"plain": SCORES["plain"]["confusion"]}  # (150, 150) each
IOU = {"plain": iou_per_class(CONFUSIONS["plain"])}  # (150,) each, NaN for classes in neither masks nor predictions
val_pixels = CONFUSIONS["plain"].sum(1)  # (150,) true pixels per class
RESULTS = {"always " + ADE20K_CLASSES[majority]: BASELINE, "plain CE + Dice": summary(CONFUSIONS["plain"])}
print(f"{len(val_set)} images scored one by one, counts summed: mIoU {RESULTS['plain CE + Dice']['miou']:.3f}, "
      f"pixel accuracy {RESULTS['plain CE + Dice']['pixel_accuracy']:.3f} (fit's last epoch: {final['miou']:.3f} "
      f"and {final['pixel_accuracy']:.3f})")

# %% [markdown]
# ## 6. Class weights: do they help? (optional, ~15 min; the CPU settings run it)
#
# Now the same model, the same crops in the same order, the same number of steps; the only change is
# median-frequency weights in the cross-entropy (`weighted_loss`). `COMPARE_WEIGHTS` turns this run on: on a CPU
# it is on, and adds a second training run (the cell prints both runs' training times); on a GPU it is off, as
# it would double the time (set it to True to run this section there). Its `val_loss` is the weighted loss, so
# it cannot be compared with the plain run's: compare the two models by what they predict, scored image by image
# as in section 5.

# %%
if COMPARE_WEIGHTS:
    ARMS["weighted"], weighted_history = train_run("weighted", weighted_loss, max_class_weight=MAX_CLASS_WEIGHT,
                                                   freq_images=FREQ_IMAGES)
    print(f"training time (the epochs' training steps, without validation): plain run "
          f"{sum(history['seconds']):.0f} s, weighted run {sum(weighted_history['seconds']):.0f} s")
    SCORES["weighted"] = score_images(ARMS["weighted"], val_set)
    CONFUSIONS["weighted"] = SCORES["weighted"]["confusion"]
    IOU["weighted"] = iou_per_class(CONFUSIONS["weighted"])
    RESULTS["weighted CE + Dice"] = summary(CONFUSIONS["weighted"])
else:
    print("COMPARE_WEIGHTS is False: the weighted run is skipped (set it to True in the settings to train it)")
print(f"{'':<22}{'mIoU':>7}{'pixel accuracy':>16}")
for name, result in RESULTS.items():
    print(f"{name:<22}{result['miou']:>7.3f}{result['pixel_accuracy']:>16.3f}")
rare = share < 0.02  # (150,) classes under 2% of the training pixels
rare_true = (val_pixels[rare].sum() / val_pixels.sum()).item()
rare_predicted = {name: (c.sum(0)[rare].sum() / c.sum()).item() for name, c in CONFUSIONS.items()}
print(f"classes under 2% of the training pixels: {rare_true:.0%} of the validation pixels; predicted there by "
      + ", ".join(f"{name} {p:.0%}" for name, p in rare_predicted.items()))

# %%
classes = [k for k in order.tolist() if val_pixels[k] > 0][:40]  # in the validation masks, most frequent first
fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(classes)), 3.8))
width = 0.8 / len(IOU)
for i, (name, iou) in enumerate(IOU.items()):
    ax.bar(np.arange(len(classes)) + (i - (len(IOU) - 1) / 2) * width, iou[classes].numpy(), width, label=name)
ax.set_xticks(range(len(classes)), [f"{ADE20K_CLASSES[k]} ({share[k]:.1%})" for k in classes], rotation=60,
              ha="right", fontsize=8)
ax.set_ylabel("validation IoU")
ax.set_ylim(0, 1)
ax.set_title("per-class IoU, classes by training share (in brackets), most frequent first")
ax.legend(title="cross-entropy")
fig.tight_layout()
plt.show()

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading the comparison: plain against weighted
from unet_tutorial.course.reading import Gap, noise_bar

RESAMPLES = 1000  # bootstrap draws of the validation images


def class_gaps(name_a: str, name_b: str) -> dict:
    """Class index -> Gap of a's IoU minus b's, each pooled over all the validation images as in the bars (a false
    positive in any image counts), with the standard error of redrawing the images with replacement (a bootstrap)."""
    n = len(SCORES[name_a]["inter"])
    draws = torch.randint(n, (RESAMPLES, n), generator=torch.Generator().manual_seed(0))  # (R, N) image indices
    times = torch.zeros(RESAMPLES, n, dtype=torch.float64).scatter_add_(
        1, draws, torch.ones(RESAMPLES, n, dtype=torch.float64))  # (R, N): how often each draw took each image

    def pooled(name: str) -> torch.Tensor:  # (R, 150) each draw's IoU per class, NaN where a class is in none
        return (times @ SCORES[name]["inter"].double()) / (times @ SCORES[name]["union"].double())

    spread = (pooled(name_a) - pooled(name_b)).numpy()  # (R, 150)
    gaps = {}
    for k in (k for k in order.tolist() if val_pixels[k] > 0):
        drawn = spread[:, k][~np.isnan(spread[:, k])]
        error = float(drawn.std(ddof=1)) if len(drawn) > 1 else float("inf")
        gaps[k] = Gap(name_a, name_b, (IOU[name_a][k] - IOU[name_b][k]).item(), error, n)
    return gaps


def gap_text(k: int, gap: Gap) -> str:
    error = f"{gap.standard_error:.3f}" if gap.standard_error >= 0.001 else f"{gap.standard_error:.1g}"
    return f"{ADE20K_CLASSES[k]} {gap.difference:+.3f} (± {error}{'' if gap.clear else ', within the noise'})"


def last_step(name: str, scores: list) -> str:
    if len(scores) < 2:
        return f"the {name} model trained a single epoch"
    step = scores[-1] - scores[-2]
    moved = "still rose" if step > 0 else "did not rise"
    return f"the {name} model's validation mIoU {moved} in its last epoch ({step:+.3f})"


if "weighted" in SCORES:
    plain, weighted = RESULTS["plain CE + Dice"], RESULTS["weighted CE + Dice"]
    miou_gap = compare("weighted", image_miou(SCORES["weighted"]).tolist(), "plain",
                       image_miou(SCORES["plain"]).tolist())
    gaps = class_gaps("weighted", "plain")
    by_size = sorted(gaps, key=lambda k: gaps[k].difference)  # the largest loss first, the largest gain last
    gains = [gap_text(k, gaps[k]) for k in reversed(by_size) if gaps[k].difference > 0][:3]
    losses = [gap_text(k, gaps[k]) for k in by_size if gaps[k].difference < 0][:3]
    up = [gaps[k].difference for k in gaps if gaps[k].clear and gaps[k].difference > 0]
    down = [gaps[k].difference for k in gaps if gaps[k].clear and gaps[k].difference < 0]
    noisy = len(gaps) - len(up) - len(down)
    paints = ("paints more pixels with rare classes than the plain one does: where it is unsure, a rare class now "
              "wins the argmax" if rare_predicted["weighted"] > rare_predicted["plain"]
              else "does not paint more pixels with rare classes than the plain one does")
    rising = [h["val_miou"][-1] > h["val_miou"][-2] for h in (history, weighted_history) if len(h["val_miou"]) > 1]
    still_learning = any(rising) or not rising  # a model still climbing, or too few epochs to tell
    caveat = (f"But this is one seed and {epochs} epoch{'s' if epochs != 1 else ''}: "
              f"{last_step('plain', history['val_miou'])}, and {last_step('weighted', weighted_history['val_miou'])}"
              + (", so a longer run may end elsewhere" if still_learning else "")
              + ". Check it on another seed, a longer run or the real data before you adopt or reject class weights.")
    if miou_gap.clear and miou_gap.leader == "plain":
        verdict = (f"By the per-image measure the weights cost mIoU, in line with the published baselines' choice "
                   "to train unweighted. "
                   f"{caveat}")
    elif miou_gap.clear:
        verdict = f"By the per-image measure the weights raised mIoU beyond the noise. {caveat}"
    else:
        verdict = (f"Within the noise, the per-image mIoU picks neither: read the classes and the pixel accuracy "
                   f"below. {caveat}")
    beyond = (f"{len(up)} class{'es' if len(up) != 1 else ''} gained"
              + (f" ({sum(up) / len(up):+.3f} IoU on average)" if up else "")
              + f" and {len(down)} lost" + (f" ({sum(down) / len(down):+.3f} on average)" if down else ""))
    reading(f"""
    **Reading it.** Over the {len(val_set)} validation images the weighted model's mIoU is {weighted['miou']:.3f}
    against the plain model's {plain['miou']:.3f}, its pixel accuracy {weighted['pixel_accuracy']:.3f} against
    {plain['pixel_accuracy']:.3f}. Image by image (each image's own mIoU, over the classes in its mask or its
    prediction, so a class a model invents in an image scores 0 there: a stricter measure than the pooled mIoU,
    and the gap can differ from the pooled one), {miou_gap.sentence('mIoU')}. {verdict}

    The weights make a pixel of a rare class count up to {weight_ratio:.0f} times as much as one of a frequent
    class (section 3). The classes under 2% of the training pixels hold {rare_true:.0%} of the validation pixels;
    the weighted model labels {rare_predicted['weighted']:.0%} of the pixels with them, the plain one
    {rare_predicted['plain']:.0%}: the weighted model {paints}.

    Class by class, as in the bars (each class's IoU pooled over all {len(val_set)} images, so a false positive in
    any image counts against it; the ± is the standard error of redrawing the images with replacement
    {RESAMPLES} times, a bootstrap), the weights' largest gains are {'; '.join(gains) or 'none'}, and their
    largest losses {'; '.join(losses) or 'none'}. Beyond {noise_bar(len(val_set)):.1f} times their noise (the bar for
    {len(val_set)} images), {beyond}; {noisy} of the
    {len(gaps)} classes moved within it. That ± counts only which images were drawn: each model is one training
    run, and another seed (even another number of CPU threads) moves single classes by more than their ±, so
    read these as this run's classes, not as classes the weights always help or hurt. Which kind of class gains,
    frequent or rare? Guess from the bars; experiment 2 measures it.
    """)
else:
    reading("No weighted run (`COMPARE_WEIGHTS` is False): set it to True in the settings to compare the two.")

# %% [markdown]
# When the rare classes matter most, the first levers are more epochs and a pretrained encoder; then milder
# weights (a lower cap, or the square root of the median-frequency weights), judged per class and against the
# noise, as here.

# %% [markdown]
# ## 7. Per class: what the plain model gets, and what it misses (core, ~10 min)
#
# mIoU is an average; the classes behind it tell more. For each class in the validation masks: its IoU, its
# share of the validation and of the training pixels, and how many pixels the model *predicts* as that class
# (with more than 30 classes, as on the real data, the 15 best and the 15 worst).

# %%
confusion = CONFUSIONS["plain"]
iou = IOU["plain"]
predicted = confusion.sum(0)  # (150,) pixels predicted as each class
seen = [k for k in torch.argsort(iou.nan_to_num(-1), descending=True, stable=True).tolist() if val_pixels[k] > 0]


def iou_text(value: float) -> str:
    """An IoU as the table prints it: "0" only when exactly 0; a positive IoU under 0.001 as "<0.001"."""
    return "0" if value == 0 else "<0.001" if value < 0.001 else f"{value:.3f}"


def share_text(value: float) -> str:
    """A share of pixels as the table prints it: "0" only when exactly 0; a positive one under 0.01% as "<0.01%"."""
    return "0" if value == 0 else "<0.01%" if value < 1e-4 else f"{value:.2%}"


print(f"{'class':<16}{'IoU':>7}{'val pixels':>12}{'train pixels':>14}{'predicted':>11}")
for row, k in enumerate(seen):
    if len(seen) > 30 and 15 <= row < len(seen) - 15:  # the real data: the 15 best and the 15 worst classes
        if row == 15:
            print(f"... {len(seen) - 30} classes in between ...")
        continue
    print(f"{ADE20K_CLASSES[k]:<16}{iou_text(iou[k].item()):>7}{share_text(val_pixels[k] / val_pixels.sum()):>12}"
          f"{share_text(share[k].item()):>14}{share_text(predicted[k] / val_pixels.sum()):>11}")
zero = [k for k in seen if iou[k] == 0]  # the table's "0": not one pixel right
print(f"{len(seen)} classes in the validation masks; IoU 0 (not one pixel right) for {len(zero)}")
top = torch.argsort(val_pixels, descending=True, stable=True)[: min(10, len(seen))].tolist()  # the most frequent

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading the per-class table
from itertools import combinations


def named(ids: list[int], most: int = 6) -> str:
    names = [ADE20K_CLASSES[k] for k in ids[:most]]
    return ", ".join(names) + (f" and {len(ids) - most} more" if len(ids) > most else "") if names else "none"


by_share = order.tolist()  # training classes, most frequent first
never = [k for k in zero if predicted[k] == 0]
misplaced = [k for k in zero if predicted[k] > 0]
best = seen[0]
rank = by_share.index(best) + 1  # 1: the most frequent training class
swaps = []  # (class, the class that took the largest share of its pixels, that share)
for k in top:
    went = confusion[k].double() / confusion[k].sum()  # (150,) where class k's pixels went
    j = int(went.argmax())
    if j != k:
        swaps.append((k, j, went[j].item()))
# Each class's mean colour over (up to 100 of) the validation images, to check whether a swapped pair looks alike
colour_sum, colour_pixels = torch.zeros(NUM_CLASSES, 3, dtype=torch.float64), torch.zeros(NUM_CLASSES)
for image, mask in ADE20KDataset(ROOT, "validation", limit=min(len(val_set), 100), seed=0):  # (3, H, W) in [0, 1]
    valid = mask != IGNORE_INDEX
    colour_sum.index_add_(0, mask[valid], image[:, valid].T.double())
    colour_pixels.index_add_(0, mask[valid], torch.ones(int(valid.sum())))
mean_colour = colour_sum / colour_pixels[:, None]  # (150, 3), NaN for classes not in these images
distances = [torch.dist(mean_colour[a], mean_colour[b]).item() for a, b in combinations(top, 2)]
close = float(np.nanquantile(distances, 0.25)) if distances else 0.0  # the closest quarter of the frequent pairs
apart = {(k, j): torch.dist(mean_colour[k], mean_colour[j]).item() for k, j, _ in swaps}  # NaN: j not in the masks
alike = [pair for pair, distance in apart.items() if distance <= close]
unlike = [pair for pair, distance in apart.items() if distance > close]


def pair_names(pairs: list) -> str:
    names = [f"{ADE20K_CLASSES[k]}/{ADE20K_CLASSES[j]}" for k, j in pairs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


most = int(predicted.argmax())  # the class the model predicts most, whether or not it is in the masks
predicted_share, true_share = predicted / predicted.sum(), val_pixels / val_pixels.sum()  # (150,) each
if iou[best] == 0:
    frequency = ("No class scores above 0 yet: the model has not learned to find any of them. Train longer (more "
                 "epochs, more images) before reading the classes.")
elif rank > 5:
    frequency = (f"Frequency is not everything: the best class, **{ADE20K_CLASSES[best]}** (IoU {iou[best]:.3f}), "
                 f"ranks only {rank} of {present} classes in training frequency. A colour and a shape that nothing "
                 "else has can beat frequency.")
else:
    frequency = (f"The best class, **{ADE20K_CLASSES[best]}** (IoU {iou[best]:.3f}), is among the most frequent "
                 f"training classes (rank {rank} of {present}).")
if swaps:
    mostly = [k for k, _, part in swaps if part > 0.5]
    went_text = "; ".join(f"{ADE20K_CLASSES[k]} to {ADE20K_CLASSES[j]} ({part:.0%})" for k, j, part in swaps)
    swapped = (f"{len(swaps)} had the largest share of their pixels predicted as another class: {went_text}. "
               + (f"For {named(mostly, 10)} that is most of their pixels (over half)" if mostly
                  else "For none of them is it most of their pixels (over half)")
               + ("." if len(mostly) == len(swaps) else
                  f"; for {named([k for k, _, part in swaps if part <= 0.5], 10)} it is half or less."))
    found = []  # what the mean colours say, where both classes of a pair are in the masks
    if alike:
        found.append(f"the mean colours of {pair_names(alike)} are as close as the closest quarter of the frequent "
                     "classes' pairs: colour does little to tell those apart, so texture and position must")
    if unlike:
        found.append(f"{pair_names(unlike)} differ in mean colour more than that quarter of pairs does, so the model "
                     "confuses them for a reason mean colour alone does not explain")
    colours = f" Measured on the validation images, {'; '.join(found)}." if found else ""
else:
    swapped, colours = "none had the largest share of its pixels predicted as another class.", ""
kinds = "".join([
    f"\n\n- **Never predicted** ({len(never)}): {named(never, 10)}. Such a class has not learned to win the argmax "
    "against the frequent classes around it; this is what class weights try to fix (optional section 6)."
    if never else "",
    f"\n- **Predicted, but never in the right place** ({len(misplaced)}): {named(misplaced, 10)}." if misplaced else "",
])
reading(f"""
**Reading it.** {len(seen)} classes occur in the validation masks, and the plain model scores IoU 0 (the table's
"0": not one pixel right) on {len(zero)} of them.{kinds}

{frequency}

**Where the frequent classes' pixels went**: of the {len(top)} most frequent validation classes, {swapped}{colours}
The class the model predicts most is **{ADE20K_CLASSES[most]}**: {predicted_share[most]:.1%} of the predicted
pixels, {true_share[most]:.1%} of the true ones.
""")

# %% [markdown]
# The **confusion view** shows what the misses become, among the most frequent classes: row c is where the
# pixels of true class c went (each row sums to 1 over all 150 columns; only the frequent ones are drawn).

# %%
rows = confusion[top].double() / confusion[top].sum(1, keepdim=True).clamp(min=1)  # (K, 150), rows sum to 1
view = rows[:, top].numpy()  # (K, K)
names = [ADE20K_CLASSES[k] for k in top]
fig, ax = plt.subplots(figsize=(6.5, 5.5))
im = ax.imshow(view, cmap="Blues", vmin=0, vmax=1)
for (r, c), value in np.ndenumerate(view):
    if value >= 0.01:
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="white" if value > 0.5 else "black")
ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
ax.set_yticks(range(len(names)), names, fontsize=8)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title("where each class's pixels went (plain CE + Dice)")
fig.colorbar(im, fraction=0.04)
fig.tight_layout()
plt.show()

# %% [markdown]
# Predictions beside the ground truth, at the annotation's size (black: ignored "other" pixels, which the models
# still label). `predict_mask` resizes each photo as validation does: `network_size(CONFIG, (H, W))` gives the
# size with the short side at `short_side`, which is also how the command line's `predict` reads a checkpoint.
# Compare each model's column with the truth: which large regions does it get, which pairs of classes does it
# swap, and (after optional section 6) where does the weighted model paint a rare class?

# %%
from unet_tutorial.predict import network_size, predict_mask
from unet_tutorial.viz import legend

pictures = [(read_image(raw_val.image_paths[i]), raw_val[i][1]) for i in range(min(3, len(raw_val)))]
fig, axes = plt.subplots(len(pictures), 2 + len(ARMS), figsize=(2.8 * (2 + len(ARMS)), 2.3 * len(pictures)),
                         squeeze=False)
shown_labels = []
for row, (picture, truth) in zip(axes, pictures):
    panels = {"image": picture, "truth": colorize(truth, PALETTE)}
    shown_labels.append(truth.flatten())
    for name, arm in ARMS.items():
        pred = predict_mask(arm, picture, image_size=network_size(CONFIG, picture.shape[:2]), **NORM)  # (H, W)
        panels[name] = colorize(pred, PALETTE)
        shown_labels.append(pred.flatten())
    for ax, (title, panel) in zip(row, panels.items()):
        ax.imshow(panel)
        ax.axis("off")
        if ax in axes[0]:
            ax.set_title(title, fontsize=9)
fig.legend(handles=legend(ADE20K_CLASSES, PALETTE, present=torch.cat(shown_labels))[:24], loc="center left",
           bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises
#
# Exercise 1 is core: a function to write. Experiment 2 reads section 6's weighted run, so it is optional like
# that section; experiments 3 and 4, after the optional sections, are optional too. Each ends with a self-check
# that says what is wrong, if anything, without giving the answer away (unless you call it again with
# `reveal=True`).
#
# ### Exercise 1: median-frequency class weights (core, ~10 min)
# Write `median_frequency_weights(counts)`: from pixel counts per class (a tensor (C,)), the weights
# `median(f) / f_c` with `f = counts / counts.sum()`, where the median runs over the classes that occur (for an
# even number of them, the mean of the middle two); a class that never occurs gets the largest weight of the
# others.

# %% tags=["solution"]
# Hint: which classes belong in the median? And what does your median do with an even number of values?
#   (A failing check says what went wrong; check_median_frequency_weights(..., reveal=True) shows the expected
#   weights.)
import torch


def median_frequency_weights(counts: torch.Tensor) -> torch.Tensor:
    """Median-frequency class weights (C,) from pixel counts per class (C,)."""
    freq = counts.double() / counts.sum()
    present = freq > 0
    weights = freq[present].quantile(0.5) / freq  # quantile(0.5): the mean of the middle two for an even count
    return torch.where(present, weights, weights[present].max())


# %%
from unet_tutorial.course.exercises.multiclass import check_median_frequency_weights

check_median_frequency_weights(median_frequency_weights)

# %% [markdown]
# Your function on this notebook's own counts, with section 3's cap: it should give section 3's `weights`
# (float32 or float64, either is fine).

# %%
mine = median_frequency_weights(pixel_counts).clamp(max=MAX_CLASS_WEIGHT)  # section 3's counts, and its cap
torch.testing.assert_close(mine, weights, rtol=1e-4, atol=1e-6, check_dtype=False)  # the dtype is yours to pick
print("on section 3's pixel counts, your weights are its `weights`; the 5 most frequent classes:",
      [f"{w:.2f}" for w in mine[order[:5]].tolist()])

# %% [markdown]
# ### Experiment 2: where do the weights win, where do they lose? (optional, ~10 min)
# (Needs the weighted run of section 6, which the CPU settings train; on a GPU, set `COMPARE_WEIGHTS = True` and
# run section 6 first.) Take the classes that occur in the validation masks and sort them by their share of the
# training pixels (`share`, most frequent first; a stable sort). Cut the list in two: the first half
# (`len // 2` classes) are the frequent classes, the rest the rare ones. On each half, how much higher is the
# weighted model's mean IoU than the plain model's? Set `frequent_gap` and `rare_gap` (weighted minus plain;
# negative where the plain model is ahead). Before you compute them, look at the bars of section 6 and guess
# their signs.

# %% tags=["solution"]
# Hint: val_pixels says which classes occur in the validation masks, IOU holds each model's per-class IoU
#   (IOU["weighted"] exists only after section 6's weighted run: guard with `if "weighted" in IOU`).
if "weighted" in IOU:
    ranked = [k for k in torch.argsort(share, descending=True, stable=True).tolist() if val_pixels[k] > 0]
    frequent, rare_half = ranked[: len(ranked) // 2], ranked[len(ranked) // 2 :]
    frequent_gap = (IOU["weighted"][frequent] - IOU["plain"][frequent]).mean().item()
    rare_gap = (IOU["weighted"][rare_half] - IOU["plain"][rare_half]).mean().item()

# %%
from unet_tutorial.course.exercises.multiclass import check_weighting_effect

if "weighted" in IOU:
    check_weighting_effect(frequent_gap, rare_gap, CONFUSIONS["plain"], CONFUSIONS["weighted"], share)
else:
    print("no weighted run (COMPARE_WEIGHTS is False): set it to True in the settings and run section 6 first")

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading experiment 2
if "weighted" in IOU:
    def direction(gap: float) -> str:
        return "up" if gap > 0.0005 else "down" if gap < -0.0005 else "unchanged"

    moved = {("down", "up"): "weighting moved IoU from the frequent classes to the rare ones",
             ("up", "down"): "weighting moved IoU from the rare classes to the frequent ones, against its purpose",
             ("up", "up"): "weighting raised both halves", ("down", "down"): "weighting lowered both halves"}.get(
        (direction(frequent_gap), direction(rare_gap)), "at least one half did not move")
    miou_change = RESULTS["weighted CE + Dice"]["miou"] - RESULTS["plain CE + Dice"]["miou"]
    reading(f"""
    In this run the weighted model's mean IoU minus the plain one's is {frequent_gap:+.3f} on the frequent half
    and {rare_gap:+.3f} on the rare half: {moved}. The mIoU, the mean over all of these classes, changed by
    {miou_change:+.3f}. A false positive costs IoU too (it joins the union), so a class the weighted model paints
    too often can lose even while it finds more of its own pixels. These are means over one run's classes;
    section 6's class-by-class comparison says which gaps are beyond the noise of {len(val_set)} images.
    Dice already gives every class in a batch an equal say; the weights push further.
    """)

# %% [markdown]
# ## 8. Sliding-window inference (optional)
#
# Validation gave the network each whole image at the short side. A large photo, or a small GPU, calls for
# **sliding windows** instead: `sliding_window_predict` cuts the image into overlapping tiles of the training
# size, predicts them a few at a time, and blends the overlaps with weights that fall off towards each tile's
# border, where a tile sees the least context. Here is how the first validation image is tiled:

# %%
from matplotlib import patches

from unet_tutorial.predict import blend_window, sliding_window_predict, tile_starts
from unet_tutorial.viz import denormalize

image, mask = val_set[0]  # (3, h, w) at the short side, normalised; mask (H, W) as annotated
height, width = image.shape[-2:]
stride = round(crop * (1 - OVERLAP))
tiles = [(top_, left) for top_ in tile_starts(height, crop, stride) for left in tile_starts(width, crop, stride)]
coverage = torch.zeros(height, width)
for top_, left in tiles:
    coverage[top_:top_ + crop, left:left + crop] += 1

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [width / height, width / height, 1]})
axes[0].imshow(denormalize(image, **NORM))
for i, (top_, left) in enumerate(tiles):
    colour = plt.cm.tab10(i % 10)
    inset = 1 + i % 3  # overlapping edges stay apart
    axes[0].add_patch(patches.Rectangle((left + inset, top_ + inset), min(crop, width) - 2 * inset,
                                        min(crop, height) - 2 * inset, fill=False, edgecolor=colour, linewidth=2))
    axes[0].text(left + 4, top_ + 4, str(i + 1), color="white", fontsize=9, va="top",
                 bbox={"facecolor": colour, "edgecolor": "none", "pad": 1})
axes[0].set_title(f"{width} x {height} image: {len(tiles)} tiles of {crop} px, stride {stride}\n"
                  "(the last tile of a row or column is pulled back to end at the border)", fontsize=9)
im = axes[1].imshow(coverage, cmap="viridis", vmin=0.5, vmax=coverage.max() + 0.5)
fig.colorbar(im, ax=axes[1], ticks=range(1, int(coverage.max()) + 1), fraction=0.04)
axes[1].set_title("tiles covering each pixel")
axes[2].imshow(blend_window(crop, crop), cmap="magma")
axes[2].set_title("blend weight within a tile")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# Does tiling change the score? `evaluate` scores any module that maps images to per-class scores, so a small
# wrapper turns sliding windows into one (its probabilities stand in for logits: the argmax is the same at the
# network's resolution, and nearly the same after the bilinear upsampling to the annotation's). Both
# ways, per image, over the validation images (at most `SUBSET_LIMIT` of them, drawn at random):

# %%
window_set = val_set if EXPERIMENT_IMAGES == len(val_set) else ADE20KDataset(
    ROOT, "validation", val_tf, limit=EXPERIMENT_IMAGES, seed=0)


class SlidingWindows(torch.nn.Module):
    """``model`` applied in overlapping tiles of the training crop: images (1, 3, h, w) -> probs (1, 150, h, w)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        probs = sliding_window_predict(self.model, images[0], tile=crop, overlap=OVERLAP, batch_size=4)  # (150, h, w)
        return probs[None].to(images.device)


whole = SCORES["plain"] if window_set is val_set else score_images(model, window_set)
tiled = score_images(SlidingWindows(model), window_set)
tiled_gap = compare("sliding windows", image_miou(tiled).tolist(), "whole images", image_miou(whole).tolist())
for name, scores in (("whole images", whole), ("sliding windows", tiled)):
    print(f"  {name:<16} mIoU {mean_iou(scores['confusion']):.3f}  "
          f"pixel accuracy {pixel_accuracy(scores['confusion']):.3f}")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading sliding windows against whole images
view_note = ("so the tiles see nearly what the whole image shows" if len(tiles) <= 2
             else "so each tile sees only part of the scene")
reading(f"""
Over {len(window_set)} validation images, whole images score mIoU {mean_iou(whole['confusion']):.3f} and sliding
windows {mean_iou(tiled['confusion']):.3f}; image by image, {tiled_gap.sentence('mIoU')}. At the short side the
first image is {width} x {height}: {len(tiles)} tiles of {crop} px, {view_note}. Tiling matters most when an
image is many tiles wide (a large photo, a panorama, a GPU with little memory): each tile then sees the training
view, but less context than the whole image. The benchmark accepts either; measure both for your model, as here.
""")

# %% [markdown]
# ## 9. Explore: pick a class (optional)
#
# Choose a class: where it is (green) and where the plain model thinks it is (its softmax probability, and the
# pixels where it wins the argmax, in red), both drawn on a grey copy of the photo, so that only the overlays are
# in colour. Where widgets cannot run you see two fixed settings instead: the class the model scores best on, and
# the most frequent one it misses entirely.

# %%
from functools import lru_cache

from unet_tutorial.course.widgets import interactive_or_static
from unet_tutorial.viz import overlay

PICK_IMAGES = min(6, len(raw_val))
pick_masks = [raw_val[i][1] for i in range(PICK_IMAGES)]
present_ids = torch.cat([m.flatten() for m in pick_masks]).unique().tolist()
choices = [ADE20K_CLASSES[k] for k in torch.argsort(val_pixels, descending=True, stable=True).tolist()
           if k in present_ids]


@lru_cache(maxsize=PICK_IMAGES)
def image_and_probs(index: int) -> tuple[np.ndarray, torch.Tensor]:
    """The raw validation image and the plain model's class probabilities (150, H, W) at its own size."""
    image = read_image(raw_val.image_paths[index])
    _, probs = predict_mask(model, image, image_size=network_size(CONFIG, image.shape[:2]), return_probs=True,
                            **NORM)
    return image, probs


def draw_class(class_name: str, index: int):
    """The true region of one class (green), its predicted probability, and its predicted region (red), drawn on a
    grey copy of the image so that no colour of the photo itself reads as a prediction."""
    k = ADE20K_CLASSES.index(class_name)
    image, probs = image_and_probs(index)
    grey = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2).astype(image.dtype)  # (H, W, 3)
    truth, predicted_k = pick_masks[index] == k, probs.argmax(0) == k
    union = (truth | predicted_k).sum().item()
    iou_k = (truth & predicted_k).sum().item() / union if union else float("nan")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].imshow(overlay(grey, truth.long(), color=(0, 200, 0), alpha=0.6))
    axes[0].set_title(f"true {class_name!r} (green): {truth.float().mean():.1%} of pixels", fontsize=10)
    im = axes[1].imshow(probs[k], cmap="magma", vmin=0, vmax=1)
    fig.colorbar(im, ax=axes[1], fraction=0.04)
    axes[1].set_title(f"predicted probability of {class_name!r}", fontsize=10)
    axes[2].imshow(overlay(grey, predicted_k.long(), color=(255, 0, 0), alpha=0.6))
    found = (f"(red): {predicted_k.float().mean():.1%} of pixels" if predicted_k.any()
             else "(red): none, not one pixel")
    axes[2].set_title(f"predicted {class_name!r} {found}, IoU here {iou_k:.2f}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def first_image_with(class_name: str) -> int:
    k = ADE20K_CLASSES.index(class_name)
    return next(i for i, m in enumerate(pick_masks) if (m == k).any())


scores_by_name = {name: IOU["plain"][ADE20K_CLASSES.index(name)].nan_to_num(-1).item() for name in choices}
best_class = max(choices, key=scores_by_name.get)
missed_class = next((name for name in choices if scores_by_name[name] == 0), min(choices, key=scores_by_name.get))
static = [{"class_name": name, "index": first_image_with(name)} for name in dict.fromkeys([best_class, missed_class])]
interactive_or_static(draw_class, static=static, class_name=choices, index=(0, PICK_IMAGES - 1))

# %% [markdown]
# ## 10. Scaling up (optional)
#
# What ran here is a short run. The published ADE20K numbers come from a much longer recipe, the one
# mmsegmentation uses for its ADE20K baselines; this notebook's GPU settings are a step towards it:
#
# | | this notebook on a Colab GPU (real data) | the standard recipe |
# |---|---|---|
# | training crops | 512 x 512, after a 0.5-2.0 zoom of a short side of 512 | the same |
# | batch | 8, two steps accumulated: 16 | 16 (e.g. 4 GPUs x 4) |
# | iterations | about 6,300 (5 epochs of 20,210 / 16) | 80,000-160,000 (160k x 16 = about 127 epochs) |
# | encoder | DenseNet121, ImageNet-pretrained | ImageNet-pretrained |
# | loss | CE + Dice, unweighted | CE, unweighted |
# | evaluation | short side 512, scored at annotation resolution | the same, whole image or sliding window |
#
# The command line trains the same model with the same pipeline (`scale_crop_transforms`, evaluation at
# annotation resolution, unweighted CE + Dice, a tenth of the learning rate for a pretrained encoder). On one
# T4, 127 epochs at the settings cell's estimate of about 14 minutes <!-- constant --> per epoch would take
# about 30 hours <!-- constant -->: an estimate from FLOPs, not a measurement.
#
# ```bash
# python -m unet_tutorial train --dataset ade20k --model densenet_unet --pretrained --image-size 512 \
#     --batch-size 8 --accumulate 2 --epochs 127 --scheduler onecycle --workers 8 --out runs/ade20k
# ```
#
# Several GPUs on one machine: `torchrun` starts one process per GPU, each trains on its own shard of the data
# (`--batch-size` is per process: 4 x 4 = 16 here), and DistributedDataParallel averages the gradients. The
# notebook's checkpoints load the same way as the command line's:
#
# ```bash
# torchrun --nproc_per_node=4 -m unet_tutorial train --dataset ade20k --model densenet_unet --pretrained \
#     --image-size 512 --batch-size 4 --epochs 127 --scheduler onecycle --workers 8 --out runs/ade20k
# python -m unet_tutorial predict --checkpoint runs/ade20k/best.pt my_photos/ --out predictions
# python -m unet_tutorial predict --checkpoint runs/05_ade20k/plain/best.pt my_photos/ --out predictions
# ```

# %% [markdown] tags=["reference"]
# **Where should a U-Net land?** Published single-scale validation mIoU with a ResNet-50 encoder, 512 x 512
# crops, scored at annotation resolution as here (mmsegmentation's model zoo): FCN about **0.36**, PSPNet and
# UPerNet **0.41-0.42**. Those models add context modules (pyramid pooling) on a pretrained encoder; a U-Net's
# decoder adds resolution, not context. We have not run the full recipe, so we make no claim of our own; a
# hypothesis to test with the commands above: a DenseNet121 U-Net lands below the PSPNet/UPerNet line, near
# FCN's 0.36. A U-Net trained from scratch (no pretrained encoder) lands lower still.

# %% [markdown]
# ## More experiments (optional)
#
# ### Experiment 3: score at the network's resolution, or at the annotation's?
# The validation loader keeps each mask at its annotated size and `evaluate` upsamples the logits to it. A
# quicker loop would resize the masks along with the images (nearest neighbour) and count at the network's
# resolution. Measure the plain model's validation mIoU both ways: `at_annotation` with the masks as stored,
# `at_network` with masks resized with the images, each over `ADE20KDataset(ROOT, "validation", ...,
# limit=EXPERIMENT_IMAGES, seed=0)` (section 4 set `EXPERIMENT_IMAGES`: this run's validation images, at most
# `SUBSET_LIMIT` of them, so that the real data's 2,000 photos are not scored many times over). Guess first:
# higher or lower, and by much?

# %% tags=["solution"]
# Hint: section 4's val_tf is the annotation-resolution one; which of its arguments decides that?
#   (check_annotation_resolution(..., reveal=True) shows the expected numbers.)
from torch.utils.data import DataLoader

from unet_tutorial.transforms import eval_transforms

scores = {}
for name, keep_mask in (("network", False), ("annotation", True)):
    transform = eval_transforms(None, short_side=short_side, keep_mask=keep_mask, **NORM)
    dataset = ADE20KDataset(ROOT, "validation", transform, limit=EXPERIMENT_IMAGES, seed=0)
    loader = DataLoader(dataset, batch_size=1)  # one by one: real photos differ in size
    scores[name] = evaluate(model, loader, DEVICE, num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX)["miou"]
at_network, at_annotation = scores["network"], scores["annotation"]

# %%
from unet_tutorial.course.exercises.multiclass import check_annotation_resolution

check_annotation_resolution(at_network, at_annotation, model, ROOT, short_side, limit=EXPERIMENT_IMAGES, seed=0,
                            device=DEVICE, **NORM)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading experiment 3
from PIL import Image

resolutions = {}  # each image scored on its own at both resolutions (section 5's score_images), to pair them
for name, keep_mask in (("network", False), ("annotation", True)):
    transform = eval_transforms(None, short_side=short_side, keep_mask=keep_mask, **NORM)
    subset = ADE20KDataset(ROOT, "validation", transform, limit=EXPERIMENT_IMAGES, seed=0)
    resolutions[name] = score_images(model, subset)
resolution_gap = compare("the network's resolution", image_miou(resolutions["network"]).tolist(),
                         "the annotation's", image_miou(resolutions["annotation"]).tolist())
factor = float(np.median([min(Image.open(path).size) / short_side for path in subset.image_paths]))
integer = (f", exactly {round(factor)}: at an integer factor the nearest-resized masks and the upsampled logits "
           "line up, and the two counts differ least" if abs(factor - round(factor)) < 0.01 else "")
reading(f"""
In this run the network's resolution gives {at_network:.4f} and the annotation's {at_annotation:.4f} (network
minus annotation: {at_network - at_annotation:+.4f}). Image by image (each image's mIoU, paired),
{resolution_gap.sentence('mIoU')}. The two measures need not agree in sign: the pooled mIoU sums each class's
pixels over all the images first, while each image's own mIoU averages only the classes in that image, and a nearest
resize can erase a small region from a mask, and with it a class the model scored 0 on, which lifts that image's
mean. Here the masks shrink by a factor of {factor:.2f} (the median over these images){integer}. Thin structures (poles, railings, lamp posts) lose the most pixels in a nearest resize, and
real photos have many. Whatever the gap, only the annotation-resolution number can be compared with published
ones.
""")

# %% [markdown]
# ### Experiment 4: crops bigger than the image
# A cheaper recipe for the real data might resize the photos to a short side of **384** but keep the standard
# **512** crops (and the 0.5-2.0 zoom). On a typical ADE20K photo of 683 x 512 (width x height), what share of
# the crops' pixels is then padding? Measure it with `scale_crop_transforms` over a few hundred crops, as
# section 4 did, and set `padding_share`. Compare with section 4's share, where crop and short side are equal.

# %% tags=["solution"]
# Hint: a photo of zeros and a mask of zeros of that size are enough (only the mask's 255s matter); colour
#   jitter and normalisation can be switched off to make it faster. (check_padding_share(..., reveal=True) shows
#   the expected share.)
import numpy as np

from unet_tutorial.transforms import scale_crop_transforms, seed_pipeline

cheap = scale_crop_transforms(512, short_side=384, scale=(0.5, 2.0), color_jitter=0, mean=None, std=None)
seed_pipeline(cheap, 0)  # the same 400 crops every run
photo = np.zeros((512, 683, 3), np.uint8)
labels = np.zeros((512, 683), np.uint8)
shares = [(cheap(image=photo, mask=labels)["mask"] == 255).float().mean().item() for _ in range(400)]
padding_share = float(np.mean(shares))
print(f"{padding_share:.1%} of the pixels are padding; {np.mean([s > 0 for s in shares]):.0%} of the crops hold some")

# %%
from unet_tutorial.course.exercises.multiclass import check_padding_share

check_padding_share(padding_share, image_size=(512, 683), crop_size=512, short_side=384)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading experiment 4
padded_draws = float(np.mean([s > 0 for s in shares]))
section4 = float(np.mean(padding))
reading(f"""
With the short side at 384, a 512 crop is bigger than the zoomed photo in {padded_draws:.0%} of the draws, and
{padding_share:.0%} of every batch is padding: compute spent on pixels the loss skips, against {section4:.0%} in
section 4, where crop and short side are equal. That is one reason the standard recipe keeps them equal.
""")

# %% [markdown]
# ## Summary
#
# - ADE20K stores labels 0..150; we shift the classes to 0..149 and turn 0 ("other": no scored class, not
#   borders) into 255, the `ignore_index` that every loss and metric skips.
# - Its classes follow a long tail (on the real data wall is 15.8% <!-- constant --> of the pixels, the rarest
#   classes 0.02% <!-- constant -->), so it is scored by mIoU, where every class counts the same; always compare
#   with the majority-class baseline.
# - Multi-class segmentation is binary segmentation with C logits per pixel: softmax instead of sigmoid,
#   cross-entropy (with `ignore_index`) instead of BCE, Dice averaged over the classes present.
# - The standard pipeline zooms every photo by 0.5-2.0 around one short side, pads with 255 and crops;
#   validation resizes the image only and scores at annotation resolution.
# - Median-frequency class weights push a model towards the rare classes, and a false positive costs IoU too:
#   optional section 6 and experiment 2 read, on your run, what the weights gained and what they cost, and
#   whether the gap is beyond the noise of your validation images. The published baselines train unweighted.
# - A model that never predicts a rare class, or confuses two similar ones, scores IoU near 0 on it: per-class
#   numbers and the confusion view say which it is.
# - Two models scored on the same images are compared image by image: the gap and its standard error say
#   whether one validation set can tell them apart.
# - The best epoch's score is picked on the validation set itself: report the last epoch, or a held-out set.
# - Optional: sliding windows predict images of any size with bounded memory; the full recipe (512 crops, batch
#   16, 160k iterations, several GPUs with `torchrun`) is where published baselines come from: FCN-R50 about
#   0.36 <!-- constant --> mIoU, PSPNet/UPerNet-R50 0.41-0.42 <!-- constant -->; measure a U-Net against them.
#
# This is the last notebook of the course. Next: run the full recipe on a GPU, try another encoder, or bring
# your own data: `unet_tutorial.folder.FolderDataset` reads a folder of images and one of masks, and
# `python -m unet_tutorial train --dataset folder --images DIR --masks DIR --num-classes N` trains on it.
