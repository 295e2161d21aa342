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
# # 04 · Transfer learning: a U-Net on a DenseNet121 encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/04_densenet121_transfer.ipynb) with the solutions ·
# [![Open the exercise version in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/exercises/04_densenet121_transfer.ipynb) the exercise version: you write the solutions
#
# **What you will learn**
# - what transfer learning is, and why features learned on ImageNet help a segmentation model
# - how a DenseNet is built (dense blocks that concatenate, transitions that shrink) and how a U-Net decoder sits
#   on top of it, shape by shape (section 3, optional)
# - how to measure what a pretrained encoder buys you: notebook 03's U-Net from scratch against `DenseNetUNet`
#   with a random and with an ImageNet encoder, on the same data and budget, each gap read with its noise
# - the fine-tuning recipe: freeze the encoder first, then unfreeze it with a lower learning rate
# - what BatchNorm does after unfreezing at a small batch, and how to keep its statistics frozen
#
# **Before you start**: notebook 01 (the U-Net, forward hooks) and notebook 03 (the Carvana data, `fit`, Dice per
# image, checkpoints). PyTorch: `nn.Module`, optimizers, `model.train()` and `model.eval()`. Math: a mean, a
# variance (what BatchNorm computes) and a standard error counted over cars (notebook 03's section 8).
#
# **The core path** (a 90-minute lab) is the sections marked *core*; "Run all" works without the *optional* ones. At
# each **Predict first** box, write your prediction in the cell under it: the result and its reading wait for it.
# In the exercise copy, "Run all" stops at each exercise's stub: solve it, then run on from there.
#
# **Runtime**: about 20 minutes <!-- constant --> on a 2-core laptop CPU with the drawn cars, 35 <!-- constant -->
# with the real photos, nearly half of it section 6's extra seeds (`SEED_RUNS = 1` skips them); on a Colab T4
# with the real photos about 44 <!-- constant --> minutes, an estimate, plus the download. In a lab, start "Run all"
# at the beginning and read while it trains (TEACHING.md has a timed plan). On Colab the ImageNet weights (31 MB)
# download by themselves; **offline there are none**: the notebook says so and first pretrains a **STAND-IN**
# encoder on drawn cars (section 4, about two minutes per seed on a CPU), labelled STAND-IN wherever it appears.

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
# Settings: every knob of this notebook, each with its value per mode on its line. MODE is "smoke" when
# smoke_mode() is on (UNET_TUTORIAL_SMOKE=1: the tests and CI), "gpu" on CUDA, "cpu" anywhere else; the
# environment variable UNET_TUTORIAL_MODE overrides it. Change a value here, then rerun from section 2.
import os

import torch

from unet_tutorial.utils import pick_device, run_mode, runs_root, set_seed

DEVICE = pick_device()
MODE = run_mode(DEVICE)
ON_GPU = DEVICE.type == "cuda"
DOWNLOAD = False  # True: fetch the real data from Kaggle (or unpack it from Drive) in section 2's download cell;
# on Colab set it to True: the ImageNet-vs-random comparison is meant for the real photos
CACHE_ON_DRIVE = False  # Colab: the Kaggle archives and the run folders on your Google Drive, as in notebook 03
SEED = 0  # the drawn cars, the split by car and the STAND-IN's source cars
# The starting weights and the batches of every run: change it alone (to your student number, say) to see
# training's own noise on the same data; the summary's table shows which verdicts move
TRAIN_SEED = SEED
# Section 6 trains its two central runs (random and pretrained encoder) on this many seeds, TRAIN_SEED and the
# next ones, so that its verdict rests on training's noise as well as the cars': each extra seed costs two runs
# (offline also its own STAND-IN, pretrained from that seed). On a slow machine set it to 1: the readings then say
# that one seed cannot separate a gap from training's noise
SEED_RUNS = {"smoke": 2, "cpu": 3, "gpu": 3}[MODE]
# Fraction of cars held out: on a CPU (or on the drawn cars) half, 12 of 24 drawn cars (or of 23 real ones; VAL_IMAGES takes them all), since
# these runs train on 6 to 8 cars only and every validation car narrows the noise of the comparisons (section 6);
# on a GPU with the real photos 15 %, 48 of the 318 cars
VAL_FRACTION = {"smoke": 0.15, "cpu": 0.5, "gpu": {"real": 0.15, "generated": 0.5}}[MODE]
# The generated stand-in, used when the real photos are not on disk: cars (16 views each), drawn at (H, W)
SAMPLE_CARS = {"smoke": 3, "cpu": 24, "gpu": 24}[MODE]
SAMPLE_SIZE = {"smoke": (64, 96), "cpu": (480, 720), "gpu": (640, 960)}[MODE]  # (H, W): notebook 03's
IMAGE_SIZE = {"smoke": (32, 64), "cpu": (96, 144), "gpu": (320, 480)}[MODE]  # (H, W) the models see
# Images per split, the first of it, whole cars of 16 views: CPU 96 = 6 of the 12 drawn training cars (a few minutes
# per run) and 192 = up to 12 validation cars (with real photos on a CPU, 128 = 8 training cars, and as many of the
# held-out cars as there are, up to 12); GPU 1280 = 80 real training cars and 320 = 20 of the 48 validation ones
TRAIN_IMAGES = {"smoke": 8, "cpu": {"real": 128, "generated": 96}, "gpu": 1280}[MODE]
VAL_IMAGES = {"smoke": 8, "cpu": 192, "gpu": {"real": 320, "generated": 192}}[MODE]
BATCH_SIZE = {"smoke": 4, "cpu": 4, "gpu": 16}[MODE]
EPOCHS = {"smoke": 2, "cpu": {"real": 4, "generated": 3}, "gpu": 8}[MODE]  # every run's budget, the same for all
FROZEN_EPOCHS = {"smoke": 1, "cpu": 1, "gpu": 3}[MODE]  # section 7: the first epochs of EPOCHS, encoder frozen
UNET_BASE_CHANNELS = {"smoke": 8, "cpu": 16, "gpu": 32}[MODE]  # the from-scratch U-Net: notebook 03's width
LR = 1e-3  # the decoder of every DenseNet
LR_UNET = {"smoke": 1e-3, "cpu": 3e-3, "gpu": 1e-3}[MODE]  # the from-scratch U-Net: notebook 03's, its own best
LR_ENCODER = 1e-4  # every DenseNet's encoder, random or ImageNet: ten times gentler, so that fine-tuning does
# not wash out what a pretrained encoder knows; the same for both, so that the gap between them is ImageNet's
WEIGHTS = "imagenet"  # the pretrained encoder (torchvision's DenseNet121_Weights.DEFAULT)
DOWNLOAD_WEIGHTS = {"smoke": False, "cpu": True, "gpu": True}[MODE]  # smoke: use them only if already cached
# Offline only (no ImageNet weights), section 4's STAND-IN: a DenseNetUNet first trained on SOURCE_CARS drawn cars of
# another seed (none of them in this notebook's split) for SOURCE_EPOCHS epochs, at the learning rate LR; its encoder
# then stands in for ImageNet's
SOURCE_CARS = {"smoke": 2, "cpu": 24, "gpu": 24}[MODE]
SOURCE_EPOCHS = {"smoke": 1, "cpu": 2, "gpu": 4}[MODE]
SOURCE_SEED = SEED + 1  # another seed: other cars than the ones generated for section 2
DRIFT_BATCHES = {"smoke": 2, "cpu": 20, "gpu": 20}[MODE]  # section 7: forward passes of 4 images, no training
TIMING_STEPS = {"smoke": 1, "cpu": 5, "gpu": 10}[MODE]  # section 9: training steps timed per arm (median)
NUM_WORKERS = {"smoke": 0, "cpu": 0, "gpu": min(8, os.cpu_count() or 1)}[MODE]  # CPU: workers would take cores
# One checkpoint folder per run: a run finished before (a Colab reconnect, a rerun) with exactly these settings
# is loaded, not retrained; an interrupted one continues. With CACHE_ON_DRIVE on Colab they go to Google Drive.
RUN_DIR = None if MODE == "smoke" else runs_root(on_drive=CACHE_ON_DRIVE) / "04_densenet"
set_seed(SEED)
print(f"mode {MODE}, device {DEVICE}: images {IMAGE_SIZE} (H, W), batch {BATCH_SIZE}, checkpoints {RUN_DIR}")

# %% [markdown]
# ## 1. Transfer learning in one paragraph (core, ~5 min)
#
# A segmentation model has to learn two things: *what is in the picture* (edges, textures, wheels, "this is a
# car") and *where exactly its outline runs*. The first is the same for almost every vision task, and an image
# classifier trained on **ImageNet** (over a million photos, 1,000 classes) has already learned it. **Transfer
# learning** reuses those layers: cut off the classifier's last layer, use the rest as the **encoder** of a U-Net
# (the left side of the U), and train what is new, the decoder, from scratch. It helps segmentation in
# particular because masks are expensive, so segmentation sets are small (Carvana: 318 cars), and a model that
# starts from features that already separate objects from background usually reaches a good Dice in fewer
# epochs. The price: images normalised as ImageNet's were (notebook 03's mean and std), and a big encoder, about
# 7 million parameters.

# %% [markdown]
# ## 2. The data: notebook 03's Carvana set (core, ~3 min)
#
# The same data as notebook 03: the real Carvana photos when they are on disk, otherwise the generated
# Carvana-like cars (with a notice saying so), split by car.
#
# **On a new Colab VM** the photos notebook 03 downloaded are gone. If you kept the archives on Google Drive
# (`CACHE_ON_DRIVE = True`), set `DOWNLOAD = True` and `CACHE_ON_DRIVE = True` in the settings and run the next
# cell: it unpacks them from Drive, with no download and no token; otherwise it downloads them (notebook 03,
# section 1). Tests and CI never run it.

# %% tags=["skip-execution"]
# Download the real data, or unpack the archives kept on Drive: only when DOWNLOAD = True (never in smoke mode).
if DOWNLOAD and MODE != "smoke":
    from unet_tutorial.course.download import fetch_carvana
    from unet_tutorial.utils import data_root, drive_root, in_colab

    # notebook 03's folder on Drive: zips found there are unpacked, the missing ones downloaded and kept there
    archives = drive_root() / "carvana" if CACHE_ON_DRIVE and in_colab() else None
    fetch_carvana(data_root() / "carvana", archives=archives)  # what is already unpacked and complete is skipped

# %% [markdown]
# `carvana_data()` returns the real data's folder, else generates the drawn cars and says so; `carvana_loaders`
# builds the two loaders as notebook 03 did by hand. The normalisation comes from the weights:
# `normalization("imagenet")` reads the mean and std off torchvision's entry for them.

# %%
from unet_tutorial.course.sample_data import carvana_data
from unet_tutorial.data import carvana_split
from unet_tutorial.densenet_unet import normalization
from unet_tutorial.loaders import carvana_loaders

root, is_real = carvana_data(n_cars=SAMPLE_CARS, size=SAMPLE_SIZE, seed=SEED)
# A setting written {"real": ..., "generated": ...} in the settings cell takes the value for the data found here
KIND = "real" if is_real else "generated"
TRAIN_IMAGES, VAL_IMAGES, EPOCHS, VAL_FRACTION = (v[KIND] if isinstance(v, dict) else v
                                                  for v in (TRAIN_IMAGES, VAL_IMAGES, EPOCHS, VAL_FRACTION))
train_ids, val_ids = carvana_split(root, val_fraction=VAL_FRACTION, seed=SEED)
train_ids, val_ids = train_ids[:TRAIN_IMAGES], val_ids[:VAL_IMAGES]  # ids are sorted by car: whole cars
val_cars = [image_id.rsplit("_", 1)[0] for image_id in val_ids]  # each validation image's car: ids are <car>_<view>
NORM = normalization("imagenet")  # {"mean": (r, g, b), "std": (r, g, b)}
train_loader, val_loader = carvana_loaders(root, train_ids, val_ids, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
                                           **NORM, num_workers=NUM_WORKERS, pin_memory=ON_GPU)
images, masks = next(iter(val_loader))
print(f"{KIND} data in {root}: {EPOCHS} epochs per run ({FROZEN_EPOCHS} frozen)")
print(f"train: {len(train_ids)} images, val: {len(val_ids)} images of {len(set(val_cars))} cars; normalisation {NORM}")
print(f"a validation batch (twice BATCH_SIZE, as in notebook 03: no gradients to keep): images "
      f"{tuple(images.shape)} {images.dtype}, masks {tuple(masks.shape)} {masks.dtype}")

# %% [markdown]
# Every model below trains through one helper, `train_run`: notebook 03's `fit` with this notebook's settings
# stored in each checkpoint, so that a rerun with the same settings loads a finished run instead of training it
# again. `fit` keeps each epoch's Dice of every validation image, in the order of `val_ids`, so that two runs pair
# image by image (section 6); `per_image_dice` scores a model as it is now, such as section 7's drifted copy.

# %%
import numpy as np

from unet_tutorial.checkpoint import read_checkpoint, resumable
from unet_tutorial.losses import ComboLoss
from unet_tutorial.metrics import dice_score
from unet_tutorial.train import fit

LOSS_WEIGHTS = {"cross_entropy": 1.0, "dice": 1.0}  # binary cross-entropy + Dice, as in notebook 03
loss_fn = ComboLoss(LOSS_WEIGHTS)
# Every setting that changes a trained model, stored in its checkpoints: a run folder trained with anything else
# is trained again (resumable compares the whole config). "model" and "model_kwargs" (added per run) let
# `python -m unet_tutorial predict --checkpoint <run folder>/best.pt` rebuild the model from the file alone.
CONFIG = {"dataset": "carvana", "data": str(root), "real_data": is_real, "num_classes": 1,
          "image_size": list(IMAGE_SIZE), "train_images": len(train_ids), "val_images": len(val_ids),
          "mean": list(NORM["mean"]), "std": list(NORM["std"]), "batch_size": BATCH_SIZE, "seed": SEED,
          "train_seed": TRAIN_SEED,
          "loss": LOSS_WEIGHTS, "scheduler": "onecycle", "lr": LR, "lr_encoder": LR_ENCODER, "epochs": EPOCHS,
          "frozen_epochs": FROZEN_EPOCHS,
          "dice_of_each_image": True}  # sections 6 and 7 pair epochs image by image: a run folder without them retrains


def train_run(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int, folder: str,
              run_config: dict, loaders: tuple | None = None) -> dict:
    """Train with ``fit`` and return its history plus parameters and peak GPU memory.

    ``run_config`` adds this run's model name and constructor arguments (and phase) to ``CONFIG``. With ``RUN_DIR``
    set, checkpoints go to ``RUN_DIR / folder``: a finished run there with this exact config is loaded (its GPU
    memory then not measured), an interrupted one continues, any other is trained again. ``loaders``: (train,
    validation) loaders of other data (section 4's source cars); default section 2's.
    """
    model.to(DEVICE)
    run_dir = RUN_DIR / folder if RUN_DIR is not None else None
    config = {**CONFIG, **run_config}
    resume = resumable(run_dir, config)  # None, or the last.pt to continue from
    trains = resume is None or read_checkpoint(resume)["epoch"] < epochs
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    train_batches, val_batches = loaders or (train_loader, val_loader)
    history = fit(model, train_batches, val_batches, epochs=epochs, loss_fn=loss_fn, optimizer=optimizer,
                  device=DEVICE, num_classes=1, scheduler="onecycle", checkpoint_dir=run_dir, resume=resume,
                  config=config)
    history["params"] = sum(p.numel() for p in model.parameters())
    history["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    history["gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if ON_GPU and trains else None
    return history


def per_image_dice(model: torch.nn.Module) -> np.ndarray:
    """Each validation image's Dice, in the order of ``val_ids``: two runs' arrays pair image by image."""
    model.eval()
    scores = []
    with torch.no_grad():
        for batch_images, batch_masks in val_loader:
            logits = model(batch_images.to(DEVICE)).float().cpu()  # (B, 1, H, W)
            scores += [dice_score(logit[None] > 0, mask[None]) for logit, mask in zip(logits, batch_masks)]
    return np.array(scores)  # (len(val_ids),)


# %% [markdown]
# ## 3. DenseNet121 in pictures (optional)
#
# A DenseNet ([Huang et al., 2017](https://arxiv.org/abs/1608.06993)) is built from **dense blocks**. Inside a
# block every layer (BatchNorm, ReLU, 1x1 conv to 128 channels, BatchNorm, ReLU, 3x3 conv) adds
# `growth_rate = 32` new channels, and its input is the **concatenation of everything before it**: the block's
# input and the output of every earlier layer. Features are reused instead of recomputed, which keeps each layer
# thin. Between blocks, a **transition** (1x1 conv that halves the channels, 2x2 average pool that halves H and W)
# keeps the growth in check. DenseNet121 has four dense blocks of 6, 12, 24 and 16 layers.
#
# `DenseNetUNet` (in `unet_tutorial/densenet_unet.py`) uses torchvision's `densenet121().features` as its encoder,
# plus the final ReLU that torchvision applies in its `forward`. We build one with random weights, which is enough
# to read the architecture, and count the channels in the first dense block: each layer's BatchNorm tells how many
# channels come in. This section is optional: the core path uses `DenseNetUNet` as a whole from section 4 on, and
# what you need from here is that its encoder hands the decoder five stages, at strides 2 to 32: four skips and
# the bottom of the U.

# %%
import matplotlib.pyplot as plt
import numpy as np

from unet_tutorial.densenet_unet import ENCODER_STAGES, DenseNetUNet
from unet_tutorial.model import pad_to_multiple

model = DenseNetUNet(num_classes=1, weights=None)
block = model.encoder.denseblock1
inputs = [layer.norm1.num_features for layer in block.values()]  # the channels each layer's input has
block_in, growth = inputs[0], inputs[1] - inputs[0]
print(f"denseblock1: layer inputs {inputs}, output {inputs[-1] + growth} channels = {block_in} + {len(inputs)} x "
      f"{growth}")

fig, ax = plt.subplots(figsize=(8, 3.2))
bars = np.arange(len(inputs) + 1)  # bar k: what layer k + 1 reads; the last bar: what the block hands on
ax.bar(bars, block_in, color="lightgrey", edgecolor="black", label=f"block input ({block_in})")
for layer in range(len(inputs)):  # layer k's new channels appear in every bar after it
    ax.bar(bars[layer + 1:], growth, bottom=block_in + layer * growth, edgecolor="black",
           color=plt.cm.viridis(layer / len(inputs)), label=f"from layer {layer + 1} (+{growth})")
ax.set_xticks(bars, [f"layer {k + 1}\ninput" for k in range(len(inputs))] + ["block\noutput"])
ax.set(ylabel="channels", title="Dense block 1: every layer reads the concatenation of all earlier outputs")
ax.legend(fontsize=7, loc="upper left", ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# The encoder is read out after each of five **stages**; each stage ends at half the resolution of the one before
# (stride 2, 4, 8, 16 and 32: one feature-map pixel per 2, 4, ... 32 image pixels). The first four outputs are
# the U-Net's skips; the fifth, at stride 32, is the bottom of the U, where the decoder starts. As in notebook 01, the model first pads the image so that its sides are a multiple of the
# largest stride, 32, and crops the logits back at the end.

# %%
padded, _ = pad_to_multiple(images[:1], 32)  # (1, 3, H', W'), H' and W' multiples of 32
print(f"image {tuple(images[:1].shape)} -> padded {tuple(padded.shape)}")
with torch.no_grad():
    stage_features = model.eval().encode(padded)  # five tensors (1, C, h, w)
for index, (names, features) in enumerate(zip(ENCODER_STAGES, stage_features), start=1):
    stride = padded.shape[-1] // features.shape[-1]
    print(f"stage {index} ({' + '.join(names):<40}) -> {tuple(features.shape)}, stride {stride}")

# %% [markdown]
# The decoder climbs back up the U. At each step it up-samples x2 (bilinear, then a 3x3 conv), concatenates the
# encoder's skip of the same size, and merges the two with a 1x1 conv (fewer channels) and a 3x3 conv. A last
# up-sample returns to the padded input's size, a 1x1 conv gives one logit per pixel, and the padding is cropped away. Here are those steps by hand,
# checked against the model's own `forward`:

# %%
with torch.no_grad():
    *skips, x = stage_features  # x: stage 5, the bottom of the U
    for up, merge, skip in zip(model.ups, model.merges, reversed(skips)):
        x = up(x)  # (1, C, 2h, 2w)
        print(f"up-sampled {tuple(x.shape)} + skip {tuple(skip.shape)}", end=" -> ")
        x = merge(x, skip)  # concatenate on channels, then 1x1 and 3x3 convs
        print(f"merged {tuple(x.shape)}")
    x = model.final_up(x)  # the last up-sample, to the padded input's size
    print(f"final up-sample -> {tuple(x.shape)}")
    logits = model.head(x)  # a 1x1 conv: one logit per pixel, (1, 1, H', W')
    height, width = images.shape[-2:]
    top, left = (padded.shape[-2] - height) // 2, (padded.shape[-1] - width) // 2
    logits = logits[..., top:top + height, left:left + width]  # crop the padding away: (1, 1, H, W)
    torch.testing.assert_close(logits, model(images[:1]))
print(f"logits {tuple(logits.shape)}: the same as model(images[:1])")

encoder_params = sum(p.numel() for p in model.encoder.parameters())
decoder_params = sum(p.numel() for p in model.decoder_parameters())
print(f"encoder {encoder_params / 1e6:.2f} M parameters, decoder {decoder_params / 1e6:.2f} M")

# %% [markdown]
# ## 4. Loading the ImageNet weights (core, ~5 min)
#
# `DenseNetUNet(weights="imagenet")` asks torchvision for the weights, cached in `$TORCH_HOME/hub/checkpoints`
# after the first download. When they can be neither found nor downloaded, it raises
# `PretrainedWeightsUnavailable` (saying where to put the file) rather than silently train a random encoder you
# would believe pretrained; we catch it, say so, and pretrain a STAND-IN instead. Smoke mode never downloads.
# **For a lab without internet**: save `densenet121-a639ec97.pth` once on a machine with internet (`python -c
# "from torchvision.models import densenet121 as d; d(weights='DEFAULT')"`), copy it into
# `<folder>/hub/checkpoints/` on the lab machines and start Jupyter with `TORCH_HOME=<folder>`.

# %%
from pathlib import Path

from unet_tutorial.densenet_unet import DenseNetUNet, PretrainedWeightsUnavailable, resolve_weights, weights_cache_path

weights_file = Path(weights_cache_path(resolve_weights(WEIGHTS)))  # where torchvision keeps (and looks for) them
SOURCE_WORDS = "drawn cars" if is_real else "other drawn cars"  # what a STAND-IN learns on, against section 2's
pretrained_model = None
if not DOWNLOAD_WEIGHTS and not weights_file.is_file():
    print(f"No ImageNet weights in {weights_file}, and this mode ({MODE}) never downloads them: a STAND-IN "
          "encoder takes their place (below).")
else:
    try:
        pretrained_model = DenseNetUNet(num_classes=1, weights=WEIGHTS)
        print(f"Loaded the ImageNet weights {pretrained_model.weights} from {weights_file}")
    except PretrainedWeightsUnavailable as error:
        line = "=" * 100
        print(f"{line}\nNOTICE: the ImageNet weights are NOT available here (a 'Downloading:' line above is\n"
              f"torchvision's attempt, which failed), so a STAND-IN encoder pretrained on {SOURCE_WORDS} takes\n"
              f"their place (below), labelled STAND-IN wherever it appears.\n{error}\n"
              f"On Colab (or any machine with internet) they download by themselves.\n{line}")
PRETRAINED = pretrained_model is not None
ENCODER_LABEL = "ImageNet" if PRETRAINED else "STAND-IN"  # the pretrained encoder of sections 5 to 8

# %% [markdown]
# ### Offline: a STAND-IN for the ImageNet encoder (core without the weights, ~5 min)
#
# Without the ImageNet weights, what can take their place? Not a random encoder: it brings nothing learned.
# Instead we pretrain one the way ImageNet's was made, only smaller: a `DenseNetUNet` from random weights learns
# to segment drawn cars of another seed (`SOURCE_SEED`: none of them in section 2's split; of `SOURCE_CARS`, a
# few are held out to score the source task) for `SOURCE_EPOCHS` epochs; its encoder, weights and BatchNorm statistics, is the **STAND-IN**. Read what it buys
# with care: on the drawn cars its source is far closer than ImageNet's photos are to Carvana's, so it likely buys
# more; on the real photos it measures transfer from drawings to photos. It teaches the mechanism, not what
# ImageNet is worth. With the weights, the cell does nothing.

# %%
import copy

from unet_tutorial.course.sample_data import make_carvana_like
from unet_tutorial.utils import data_root

STAND_IN_CONFIG = {}  # what the STAND-IN was pretrained on: stored with every run built on it, so a rerun must match
stand_in_encoders: dict[int, dict] = {}  # training seed -> the STAND-IN's encoder state pretrained from it


def stand_in_encoder(seed: int) -> dict:
    """The STAND-IN's encoder (weights and BatchNorm statistics), pretrained on the source cars from
    ``set_seed(seed)``: each training seed of section 6 gets its own, so that the seeds repeat the whole
    experiment, pretraining included. Pretrained once per seed (and kept in its run folder)."""
    if seed not in stand_in_encoders:
        set_seed(seed)
        source_model = DenseNetUNet(num_classes=1, weights=None)
        source_run = train_run(source_model, torch.optim.AdamW(source_model.parameters(), lr=LR), SOURCE_EPOCHS,
                               "stand_in_source" + ("" if seed == TRAIN_SEED else f"_seed{seed}"),
                               {"model": "densenet_unet", "data": str(source_root), "train_seed": seed,
                                "model_kwargs": {"num_classes": 1, "weights": None},
                                "train_images": len(source_train_ids), "val_images": len(source_val_ids),
                                "epochs": SOURCE_EPOCHS, **STAND_IN_CONFIG},
                               loaders=source_loaders)
        stand_in_encoders[seed] = copy.deepcopy(source_model.encoder.state_dict())
        source_dice[seed] = source_run["val_dice_per_image"][-1]
    return stand_in_encoders[seed]


source_dice: dict[int, float] = {}  # training seed -> the source model's Dice on its held-out source images
if PRETRAINED:
    print("The ImageNet weights are here: this cell has nothing to do.")
else:
    source_root = make_carvana_like(data_root(writable=True) / f"carvana_source_{SOURCE_CARS}cars_"
                                    f"{SAMPLE_SIZE[0]}x{SAMPLE_SIZE[1]}_seed{SOURCE_SEED}",
                                    n_cars=SOURCE_CARS, size=SAMPLE_SIZE, seed=SOURCE_SEED)
    source_train_ids, source_val_ids = carvana_split(source_root, val_fraction=0.15, seed=SEED)
    source_loaders = carvana_loaders(source_root, source_train_ids, source_val_ids, image_size=IMAGE_SIZE,
                                     batch_size=BATCH_SIZE, **NORM, num_workers=NUM_WORKERS, pin_memory=ON_GPU)
    STAND_IN_CONFIG = {"stand_in_source": {"cars": SOURCE_CARS, "size": list(SAMPLE_SIZE), "seed": SOURCE_SEED,
                                           "epochs": SOURCE_EPOCHS}}
    stand_in_encoder(TRAIN_SEED)
    source_cars = len({image_id.rsplit("_", 1)[0] for image_id in source_train_ids})
    print(f"STAND-IN: an encoder pretrained on {len(source_train_ids)} images of {source_cars} {SOURCE_WORDS}; "
          f"the source model's Dice on its {len(source_val_ids)} held-out source images: "
          f"{source_dice[TRAIN_SEED]:.3f}")


def pretrained_densenet(seed: int = TRAIN_SEED) -> DenseNetUNet:
    """A fresh one-class DenseNetUNet with the pretrained encoder: ImageNet's, or offline the STAND-IN pretrained
    from ``seed`` (call ``stand_in_encoder(seed)`` before ``set_seed``, so that pretraining does not move the
    random state the new decoder is drawn from)."""
    model = DenseNetUNet(num_classes=1, weights=WEIGHTS if PRETRAINED else None)
    if not PRETRAINED:
        model.encoder.load_state_dict(stand_in_encoder(seed))
    return model

# %% [markdown]
# ## 5. What the encoder sees (optional)
#
# One validation image through the pretrained encoder (ImageNet's, or offline the STAND-IN), then through a random
# one: one row per stage, with the eight channels that tell the car from the background best on this image (the
# number over each map, explained below the figures). Each row has half the resolution
# of the one above, from 1/2 of the image at stage 1 to 1/32 at stage 5, so the last rows are coarse whatever the
# weights. Things to look for, row by row:
# - down to which stage can you still make out the car's outline, its windows, the line where the ground starts?
# - from which stage on are the maps blobs, and do they sit on the whole car or on a part of it?
# - do some channels light up on the car and others on the background (a map that is dark where the car is)?
#
# A random encoder passes the image on too: random filters still respond where the image changes, so its first
# stages can show sharp outlines. Structure in these maps is therefore not by itself a sign of learning: compare
# the two figures, not one figure with your expectations. Bands along the borders, if any, are the padding up to a
# multiple of 32 (the cell prints it). The drawing code is plain matplotlib; what matters is the picture.

# %%
import matplotlib.pyplot as plt
import torch.nn.functional as F

from unet_tutorial.model import pad_to_multiple
from unet_tutorial.viz import denormalize


def channel_effects(model: DenseNetUNet, batch_images: torch.Tensor,
                    batch_masks: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per encoder stage, its feature maps (B, C, h, w) and each channel's (car mean - background mean) / its
    standard deviation over all pixels of the batch, shape (C,), signed (negative: darker on the car); NaN where a
    stage has no car cell or no background cell (a cell is car when most of its pixels are)."""
    padded, _ = pad_to_multiple(batch_images, 32)  # (B, 3, H', W')
    padded_masks, _ = pad_to_multiple(batch_masks.float(), 32)  # (B, 1, H', W')
    with torch.no_grad():
        features = [maps.float().cpu() for maps in
                    model.eval().encode(padded.to(next(model.parameters()).device))]  # five (B, C, h, w)
    effects = []
    for maps in features:
        car = F.interpolate(padded_masks, size=maps.shape[-2:], mode="area").flatten() > 0.5  # (B * h * w,)
        values = maps.transpose(0, 1).flatten(1)  # (C, B * h * w)
        if car.all() or not car.any():
            effects.append(torch.full((maps.shape[1],), float("nan")))
            continue
        effects.append((values[:, car].mean(1) - values[:, ~car].mean(1)) / values.std(1).clamp_min(1e-6))
    return features, effects


def plot_stage_features(model: DenseNetUNet, image: torch.Tensor, mask: torch.Tensor, title: str,
                        channels: int = 8) -> None:
    """One row per encoder stage: the image, then the ``channels`` feature maps that tell car from background
    best on this image (largest effect either way), each titled with its channel and effect."""
    features, effects = channel_effects(model, image[None], mask[None])
    fig, axes = plt.subplots(len(features), channels + 1, figsize=(1.3 * (channels + 1), 1.25 * len(features)))
    for row, maps, effect in zip(axes, features, effects):
        maps = maps[0]  # (C, h, w)
        row[0].imshow(denormalize(image, **NORM))
        row[0].set_ylabel(f"{maps.shape[0]} ch\n{maps.shape[1]}x{maps.shape[2]}", fontsize=7)
        for ax, channel in zip(row[1:], effect.abs().nan_to_num(-1.0).argsort(descending=True)[:channels].tolist()):
            ax.imshow(maps[channel], cmap="magma")
            ax.set_title(f"#{channel} {effect[channel]:+.1f}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.show()


padded_size = tuple(pad_to_multiple(images[:1], 32)[0].shape[-2:])
print(f"image {tuple(images.shape[-2:])} (H, W), padded to {padded_size} for the encoder"
      + ("" if padded_size == tuple(images.shape[-2:]) else ": the padding shows as bands along the borders"))
plot_stage_features(pretrained_densenet(), images[0], masks[0], "ImageNet encoder" if PRETRAINED else
                    f"STAND-IN encoder (pretrained on {SOURCE_WORDS}: no ImageNet weights here)")
set_seed(TRAIN_SEED)  # the starting weights of section 6's random-encoder run: the contrast is the lesson
plot_stage_features(DenseNetUNet(num_classes=1, weights=None), images[0], masks[0], "random encoder, for comparison")

# %% [markdown]
# The number over each map is what ranks them, and it answers the third question. For each channel, compare its
# mean activation on the car's pixels with its mean on the background's, in units of the channel's spread over
# all pixels (a difference of means over a standard deviation, as in an effect size). A channel that lights up on
# the car scores high and positive; one that is dark where the car is, high and negative; one that ignores the
# car, near 0. The table gives, per stage, the channel that separates the two best over one view of each
# validation car, a steadier measure than one image (the mask is shrunk to each stage's size: a cell is car when
# most of its pixels are).

# %%
def car_separation(model: DenseNetUNet, batch_images: torch.Tensor, batch_masks: torch.Tensor) -> list[float]:
    """Per encoder stage, the effect of the channel that tells car from background best (signed); NaN where
    the stage has no car or no background cell."""
    return [effect[effect.abs().nan_to_num(-1.0).argmax()].item()
            for effect in channel_effects(model, batch_images, batch_masks)[1]]


one_per_car = [val_loader.dataset[val_cars.index(car)] for car in dict.fromkeys(val_cars)]  # each car's first view
car_images, car_masks = torch.stack([x for x, _ in one_per_car]), torch.stack([m for _, m in one_per_car])
set_seed(TRAIN_SEED)
random_start = DenseNetUNet(num_classes=1, weights=None)  # drawn first: the figure's, section 6's starting weights
separation = {ENCODER_LABEL: car_separation(pretrained_densenet(), car_images, car_masks),
              "random": car_separation(random_start, car_images, car_masks)}
print(f"{len(one_per_car)} validation cars, one view each: images {tuple(car_images.shape)}")
print(f"{'stage':<7} {'scale':>6} {ENCODER_LABEL + ' encoder':>18} {'random encoder':>16}   (best channel, in SDs)")
for stage in range(5):
    print(f"{stage + 1:<7} {'1/' + str(2 ** (stage + 1)):>6} {separation[ENCODER_LABEL][stage]:>+18.2f} "
          f"{separation['random'][stage]:>+16.2f}")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the two encoders show in this run
from unet_tutorial.course.reading import reading

stages = [stage for stage in range(5) if not np.isnan(separation[ENCODER_LABEL][stage] + separation["random"][stage])]
MARGIN = 0.25  # standard deviations: a smaller difference between the two encoders' best channels is read as none
margins = {stage + 1: abs(separation[ENCODER_LABEL][stage]) - abs(separation["random"][stage]) for stage in stages}
ahead = [stage for stage, margin in margins.items() if margin > MARGIN]
behind = [stage for stage, margin in margins.items() if margin < -MARGIN]
best = max(stages, key=lambda stage: abs(separation[ENCODER_LABEL][stage])) if stages else None


def listed(stage_numbers: list[int]) -> str:
    return f"stage{'s' if len(stage_numbers) > 1 else ''} {', '.join(map(str, stage_numbers))}"


if best is None:
    compared = "No stage had both car and background cells in this batch, so the measurement says nothing here."
    separation_text = ""
else:
    value = separation[ENCODER_LABEL][best]
    by = (f"by {margins[ahead[0]]:.2f}" if len(ahead) == 1 else
          f"by up to {max(margins[stage] for stage in ahead):.2f}") if ahead else ""
    compared = (f"The {ENCODER_LABEL} encoder's best channel told car from background better than the random one's "
                f"at {listed(ahead)} ({by} standard deviations)"
                if ahead else
                f"At no stage did the {ENCODER_LABEL} encoder's best channel beat the random one's by more than "
                f"{MARGIN} standard deviations")
    compared += (f", and worse at {listed(behind)}" if behind else "") + (
        "; elsewhere the two were alike." if ahead or behind else ": the two were alike at every stage.")
    best_margin = margins[best + 1]
    counted = ("ahead by more than the margin" if best_margin > MARGIN else "behind by more than the margin"
               if best_margin < -MARGIN else f"a margin of {best_margin:+.2f}, under {MARGIN}: read as alike")
    separation_text = (f"The {ENCODER_LABEL} encoder's strongest channel was at stage {best + 1}, {abs(value):.2f} standard deviations "
                       f"{'brighter' if value > 0 else 'darker'} on the car than off it, against "
                       f"{abs(separation['random'][best]):.2f} for the random encoder's best there ({counted}). "
                       f"Measured on {len(one_per_car)} images, one per car, these margins describe this batch; they "
                       "are not a test, and the coarsest stages, with the fewest cells, move most from one batch to "
                       "another (there, several channels can share the top value a few car cells allow).")
backdrop = (" Look for maps that light up on the backdrop's lettering rather than on the car: a channel brighter "
            "off the car than on it scores negative." if is_real else "")
reading(f"""
**{compared}**

The numbers are the table's, over {len(one_per_car)} cars, not the one image's of the figures. The outlines and
blobs of the first two questions are for your eyes: compare the two figures row by row. Whether the features
help the segmentation is section 6's question.
""", more=f"""
- A margin between the two encoders' best channels (by size, whatever the sign) counts only over {MARGIN}
  standard deviations (`MARGIN`, a rule of thumb for a batch this small, not a test). {separation_text}
- A random encoder's maps come from the architecture and the image alone: {"a car in front of a studio backdrop"
  if is_real else "a car drawn in flat colours on a plain background"} can be told apart by a random filter too,
  so what counts is the difference between the two encoders (the table's two columns).{backdrop}
""")

# %% [markdown]
# ## 6. The comparison (core, ~15 min, the seeds below included)
#
# Three models, the same data, epochs, loss (binary cross-entropy + Dice) and one-cycle schedule as notebook 03:
# 1. **from scratch**: notebook 01's `UNet` at notebook 03's width and learning rate (`LR_UNET`): the baseline at
#    its own best;
# 2. **DenseNet, random encoder**: `DenseNetUNet(weights=None)`, the same architecture as 3 with nothing
#    transferred;
# 3. **DenseNet, ImageNet encoder**, or offline **DenseNet, STAND-IN encoder** (section 4's).
#
# Both DenseNets train the encoder at `LR_ENCODER`, ten times lower than the decoder's `LR` (*discriminative
# learning rates*: `model.param_groups(lr_encoder, lr_decoder)` gives the optimizer two named groups). With
# everything else equal, the gap between 2 and 3 is what pretraining is worth under this recipe. For one
# `TRAIN_SEED`, every DenseNet here and in section 7 starts from the same decoder weights.
#
# **The headline, fixed before any training**: section 7's recipe, the pretrained encoder frozen for
# `FROZEN_EPOCHS` epochs, then unfrozen with its BatchNorm kept frozen. We never report "the best of all runs on
# validation": the same images would choose the run and score it.
#
# > **How each gap is read** (notebook 03's section 8), four words:
# > - *clear*: beyond a bar of Student's *t* standard errors (SE) for that many cars (2.2 for 12 cars, 3.2 for 4),
# >   the gap read image by image (`compare`) with its SE counted over cars;
# > - *close to the bar*: from 0.8 to 1.25 <!-- constant --> times it, where another run can land on the other side;
# > - *held*: clear the same way in every seed. The bar counts which cars were scored, not training's own noise, so
# >   the two DenseNets train again on other seeds (`SEED_RUNS`); a gap clear in most seeds is *not settled*;
# > - *pooled*: the seeds' images averaged together, a smaller noise; "clear pooled, not held" is a large average
# >   gap that some seed did not clear (an average that two seeds carry while the third stays within its bar), so
# >   it is not settled either.
#
# > **Predict first** (a minute): after one epoch, will the pretrained encoder be ahead of the random one, or
# > behind, beyond the noise in every seed? Or will the seeds leave it not settled? And after the last epoch? Write
# > both below; the seeds' reading waits for them.

# %% tags=["prediction"]
my_head_start_prediction = "ahead"  # "ahead", "behind" or "not settled", after epoch 1
my_end_prediction = "not settled"  # the same, after the last epoch

# %%
HEADLINE = f"DenseNet, {ENCODER_LABEL} encoder, frozen then unfrozen, BatchNorm frozen"
print(f"headline run: {HEADLINE}" + ("" if PRETRAINED else
                                      f"\n  (the STAND-IN encoder of section 4, pretrained on {SOURCE_WORDS}: no "
                                      "ImageNet weights here)"))

# %%
from unet_tutorial.model import UNet

runs: dict[str, dict] = {}  # run name -> history and measurements
models: dict[str, torch.nn.Module] = {}  # run name -> the trained model
set_seed(TRAIN_SEED)
models["U-Net from scratch"] = scratch = UNet(num_classes=1, base_channels=UNET_BASE_CHANNELS)
runs["U-Net from scratch"] = train_run(scratch, torch.optim.AdamW(scratch.parameters(), lr=LR_UNET), EPOCHS,
                                       "unet_scratch",
                                       {"model": "unet", "lr": LR_UNET,
                                        "model_kwargs": {"num_classes": 1, "base_channels": UNET_BASE_CHANNELS}})

# %%
def train_densenet(encoder: str, seed: int) -> tuple[DenseNetUNet, dict]:
    """A DenseNetUNet with a "random" or the "pretrained" encoder (section 4's), trained from ``set_seed(seed)``
    with the two learning rates; its run folder is named by the encoder, and by the seed unless it is TRAIN_SEED."""
    if encoder != "random" and not PRETRAINED:
        stand_in_encoder(seed)  # pretrained (or loaded) first: set_seed below then draws the same decoder
    set_seed(seed)
    model = DenseNetUNet(num_classes=1, weights=None) if encoder == "random" else pretrained_densenet(seed)
    optimizer = torch.optim.AdamW(model.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
    print(f"{encoder} encoder, TRAIN_SEED {seed}:", {group["name"]: group["lr"] for group in optimizer.param_groups})
    label = "random" if encoder == "random" else ENCODER_LABEL.lower()
    folder = f"densenet_{label}" + ("" if seed == TRAIN_SEED else f"_seed{seed}")
    run_config = {"model": "densenet_unet", "train_seed": seed,
                  "model_kwargs": {"num_classes": 1, "weights": WEIGHTS if PRETRAINED and encoder != "random"
                                   else None}}
    return model, train_run(model, optimizer, EPOCHS, folder,
                            run_config if encoder == "random" else {**run_config, **STAND_IN_CONFIG})


models["DenseNet, random encoder"], runs["DenseNet, random encoder"] = train_densenet("random", TRAIN_SEED)

# %%
PRETRAINED_RUN = f"DenseNet, {ENCODER_LABEL} encoder"
models[PRETRAINED_RUN], runs[PRETRAINED_RUN] = train_densenet("pretrained", TRAIN_SEED)

# %% [markdown]
# ### Results
#
# Loss panel: validation solid, training dashed; the Dice panel is validation. The table gives each run's last
# epoch; seconds per epoch count training only: the median epoch, then the fastest and the slowest.

# %%
from unet_tutorial.viz import plot_history


def summary_table(runs: dict[str, dict]) -> None:
    """One line per run, at its last epoch: validation Dice and loss, training loss, parameters, seconds per training
    epoch (the median, and the fastest and slowest epoch), and peak GPU memory where a GPU trained it."""
    memory = any(run["gpu_memory_gb"] is not None for run in runs.values())
    print(f"{'run':<66} {'val Dice':>8} {'val loss':>8} {'train loss':>10} {'params':>7} {'trainable':>9} "
          f"{'s/epoch (min-max)':>20}" + (f" {'GPU memory':>10}" if memory else ""))
    for name, run in runs.items():
        seconds = run["seconds"]
        used = "" if not memory else "n/a" if run["gpu_memory_gb"] is None else f"{run['gpu_memory_gb']:.2f} GB"
        print(f"{name:<66} {run['val_dice_per_image'][-1]:>8.4f} {run['val_loss'][-1]:>8.3f} "
              f"{run['train_loss'][-1]:>10.3f} {run['params'] / 1e6:>6.2f}M {run['trainable'] / 1e6:>8.2f}M "
              f"{f'{np.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f})':>20}"
              + (f" {used:>10}" if memory else ""))


summary_table(runs)
# name -> (len(val_ids),) each validation image's Dice at the last epoch, as fit scored it
val_scores = {name: np.array(run["val_dice_of_each_image"][-1]) for name, run in runs.items()}
plot_history({name: {k: run[k] for k in ("train_loss", "val_loss", "val_dice_per_image")} for name, run in runs.items()})

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What size, loss and Dice say in this run
from unet_tutorial.course.reading import compare, reading


def cap(text: str) -> str:
    """The text with a capital first letter: a reading's sentence may start with a gap's sentence."""
    return text[:1].upper() + text[1:]


unet_run, dense_run = runs["U-Net from scratch"], runs["DenseNet, random encoder"]
size_gap = compare("the random-encoder DenseNet", val_scores["DenseNet, random encoder"],
                   "the U-Net from scratch", val_scores["U-Net from scratch"], groups=val_cars, group_name="cars")
params_ratio = dense_run["params"] / unet_run["params"]
busiest = max(runs, key=lambda name: max(runs[name]["seconds"]) / min(runs[name]["seconds"]))  # the least steady
if max(runs[busiest]["seconds"]) > 2 * min(runs[busiest]["seconds"]):  # the times first: what the size cost, if any
    time_text, cost = (f"one run's epochs ({busiest}) took from {min(runs[busiest]['seconds']):.0f} to "
                       f"{max(runs[busiest]['seconds']):.0f} s: the machine was busy when it trained, so these times "
                       "compare nothing",
                       "")
elif min(dense_run["seconds"]) > max(unet_run["seconds"]):
    time_text, cost = "every DenseNet epoch took longer than every U-Net epoch", " (and more seconds per epoch)"
elif min(unet_run["seconds"]) > max(dense_run["seconds"]):
    time_text, cost = "every DenseNet epoch was faster than every U-Net epoch", " (at fewer seconds per epoch)"
else:
    time_text, cost = "their epoch times overlap, so this run cannot say which trains faster", ""
if size_gap.clear and size_gap.leader == "the U-Net from scratch":
    size_heading = "Size is not knowledge"
    size_verdict = f"{params_ratio:.1f} times the parameters{cost} bought a lower Dice"
elif size_gap.clear:
    size_heading = "The bigger model scored higher here"
    size_verdict = (f"{params_ratio:.1f} times the parameters{cost} bought a higher Dice on these cars, in this "
                    "run: the gain of a larger architecture trained from nothing, not of knowledge brought from "
                    "elsewhere")
else:
    size_heading = "More parameters, no clear gain"
    size_verdict = f"{params_ratio:.1f} times the parameters{cost} bought no gain this run can see"
size_caveat = ("Not a pure test of size: the two differ in architecture and learning rates too (`LR_UNET` against "
               "`LR` and `LR_ENCODER`), and each trained once.")
by_loss = min(runs, key=lambda name: runs[name]["val_loss"][-1])
by_dice = max(runs, key=lambda name: runs[name]["val_dice_per_image"][-1])
if by_loss != by_dice:
    loss_heading = "Loss and Dice disagree"
    loss_text = (f"{by_loss} has the lowest validation loss ({runs[by_loss]['val_loss'][-1]:.3f}), {by_dice} the "
                 f"highest Dice ({runs[by_dice]['val_dice_per_image'][-1]:.3f}), as the table shows.")
else:
    runner_up = max((name for name in runs if name != by_dice), key=lambda name: val_scores[name].mean())
    lead = compare(by_dice, val_scores[by_dice], runner_up, val_scores[runner_up], groups=val_cars, group_name="cars")
    loss_heading = "Loss and Dice agree on the run ahead"
    loss_text = (f"both put {by_dice} first (they need not), and its Dice lead over {runner_up} is "
                 + ("beyond" if lead.clear else "within") + f" the noise ({lead.short()}).")
by_worst_loss = max(runs, key=lambda name: runs[name]["val_loss"][-1])
loss_ratio = runs[by_worst_loss]["val_loss"][-1] / runs[by_loss]["val_loss"][-1]
if loss_ratio > 2:  # one run far less sure of its pixels, whatever its Dice
    loss_text += (f" {by_worst_loss}'s validation loss is {loss_ratio:.1f} times {by_loss}'s (the table): its "
                  "probabilities may sit nearer 0.5, less sure though often on the right side, as a model less far "
                  "along would" + (", and its Dice was still rising at the last epoch." if len(
                      runs[by_worst_loss]["val_dice_per_image"]) > 1 and runs[by_worst_loss]["val_dice_per_image"][-1]
                      > runs[by_worst_loss]["val_dice_per_image"][-2] else "."))
data_text = ("" if is_real else "\n\nThese are generated cars: they look nothing like ImageNet's photos, so the gaps "
             "on them say little about the real Carvana photos.")
pretrained_curve = runs[PRETRAINED_RUN]["val_dice_per_image"]
pretrained_rank = sorted(runs, key=lambda name: -val_scores[name].mean()).index(PRETRAINED_RUN) + 1
own_fall = compare("epoch 1", np.array(runs[PRETRAINED_RUN]["val_dice_of_each_image"][0]), "the last epoch",
                   val_scores[PRETRAINED_RUN], groups=val_cars, group_name="cars")
pretrained_text = (f"**The {ENCODER_LABEL} run** stood at {pretrained_curve[0]:.3f} after epoch 1 and ended at "
                   f"{pretrained_curve[-1]:.3f}, number {pretrained_rank} of the {len(runs)} runs"
                   + (", below its own first epoch (" + ("a fall beyond" if own_fall.clear else "within")
                      + f" the cars' noise: {own_fall.short()})" if pretrained_curve[-1] < pretrained_curve[0] else "")
                   + ": the next part reads it against the random encoder on several seeds.")
ranked = sorted(runs, key=lambda name: -val_scores[name].mean())
spread = compare(ranked[0], val_scores[ranked[0]], ranked[-1], val_scores[ranked[-1]], groups=val_cars,
                 group_name="cars")  # the first against the last
size_lead = ("the bigger random-encoder DenseNet ended " + ("below" if size_gap.leader == "the U-Net from scratch"
             else "above") + " the U-Net from scratch, beyond the noise" if size_gap.clear else
             "the bigger random-encoder DenseNet and the U-Net from scratch could not be told apart")
reading(f"""
**{f"The {len(runs)} runs ended within the noise of each other, from {val_scores[ranked[-1]].mean():.3f} to "
   f"{val_scores[ranked[0]].mean():.3f}" if not spread.clear else
   f"{ranked[0]} ended highest ({val_scores[ranked[0]].mean():.3f}), clear of {ranked[-1]} "
   f"({val_scores[ranked[-1]].mean():.3f}); {size_lead}"}** ({spread.short(named=True)}).

{pretrained_text}
""", more=f"""
- **{size_heading}** ({size_gap.short(named=True)}): {size_verdict}. {size_caveat} Epoch times: {time_text}
  (section 9 times single steps in turns, the fair test).
- **{loss_heading}**: {loss_text} The loss scores the probabilities themselves, the Dice only which side of
  0.5 they fall on.{data_text}
""")

# %% [markdown]
# ### Pretrained against random, on more than one seed (core: discuss the results above while it trains)
#
# The central question is the gap between the two DenseNets, and one run per arm cannot separate it from
# training's own noise: another `TRAIN_SEED` draws other starting weights and batches, and the gap moves. So the two
# DenseNets train again on the next `SEED_RUNS - 1` seeds, on the same data (offline, each seed first pretrains its
# own STAND-IN: pretraining has noise too). For each seed, two gaps, image by image over the same validation cars:
# **after the first epoch** (the head start) and **at the end**. A gap *holds* when it is clear the same way in
# every seed; pointing the same way in all of three seeds is weak evidence by itself (a gap of nothing does that
# one time in four). The last two rows average the seeds image by image: that shrinks training's noise, but only
# the count of seeds that agree shows how large it was.

# %%
import matplotlib.pyplot as plt

from unet_tutorial.course.predictions import Prediction, predicted
from unet_tutorial.course.reading import Gap, compare, findings_table

SETTLED = ("ahead", "behind", "not settled")
head_said = Prediction("my_head_start_prediction", my_head_start_prediction, SETTLED)
end_said = Prediction("my_end_prediction", my_end_prediction, SETTLED)
if SEED_RUNS < 1:
    raise ValueError(f"SEED_RUNS is {SEED_RUNS}: set it to 1 or more in the settings (1: section 6's runs alone)")
seed_runs = {TRAIN_SEED: {"random": runs["DenseNet, random encoder"], "pretrained": runs[PRETRAINED_RUN]}}
# "mean of 3 seeds, ...", or with SEED_RUNS = 1 the one seed's name: the labels of the rows that pool the seeds
pooled = f"mean of {SEED_RUNS} seeds, the cars' noise only" if SEED_RUNS > 1 else f"TRAIN_SEED {TRAIN_SEED} alone"
for seed in range(TRAIN_SEED + 1, TRAIN_SEED + SEED_RUNS):  # the next seeds: two more runs each
    seed_runs[seed] = {encoder: train_densenet(encoder, seed)[1] for encoder in ("random", "pretrained")}


def seed_gap(seeds: list[int], epoch: int) -> Gap:
    """The pretrained arm minus the random one at ``epoch`` (0: the first, -1: the last), image by image over the
    given seeds' runs (each seed's images in turn), its noise counted over the cars."""
    scores = {arm: np.concatenate([seed_runs[seed][arm]["val_dice_of_each_image"][epoch] for seed in seeds])
              for arm in ("pretrained", "random")}  # (len(seeds) * len(val_ids),)
    return compare(f"the {ENCODER_LABEL} encoder", scores["pretrained"], "the random encoder", scores["random"],
                   groups=val_cars * len(seeds), group_name="cars")


heads = {seed: seed_gap([seed], 0) for seed in seed_runs}  # after the first epoch
ends = {seed: seed_gap([seed], -1) for seed in seed_runs}  # at the end
# pooled over the seeds, each seed's gap attached: the table says "not held" where a seed does not clear it
head_over_seeds = seed_gap(list(seed_runs), 0).pooled(list(heads.values()))
end_over_seeds = seed_gap(list(seed_runs), -1).pooled(list(ends.values()))
if predicted(head_said, end_said):  # the answer waits for your predictions
    print(f"{ENCODER_LABEL} encoder minus random encoder, validation Dice:")
    print(findings_table({**{f"TRAIN_SEED {seed}, after epoch 1": gap for seed, gap in heads.items()},
                          **{f"TRAIN_SEED {seed}, at the end": gap for seed, gap in ends.items()},
                          **({f"after epoch 1, {pooled}": head_over_seeds, f"at the end, {pooled}": end_over_seeds}
                             if len(seed_runs) > 1 else {})}))
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for index, (seed, arms) in enumerate(seed_runs.items()):
        for arm, style in (("pretrained", "o-"), ("random", "s--")):
            ax.plot(range(1, EPOCHS + 1), arms[arm]["val_dice_per_image"], style, color=f"C{index}",
                    label=f"{ENCODER_LABEL if arm == 'pretrained' else 'random'}, TRAIN_SEED {seed}")
    ax.set(xlabel="epoch", ylabel="validation Dice", xticks=range(1, EPOCHS + 1),
           title=f"{ENCODER_LABEL} (solid) and random (dashed) encoder, one colour per seed")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    plt.show()

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What pretraining was worth, seed by seed
from unet_tutorial.course.predictions import reading_after
from unet_tutorial.course.reading import agreement


def held_in_every_seed(gaps: dict[int, Gap], leader: str) -> bool:
    """Whether ``leader`` was ahead, beyond the noise over cars, in every seed."""
    return all(gap.clear and gap.leader == leader for gap in gaps.values())


pretrained_name = f"the {ENCODER_LABEL} encoder"
falls = {seed: compare("epoch 1", np.array(arms["pretrained"]["val_dice_of_each_image"][0]), "the last epoch",
                       np.array(arms["pretrained"]["val_dice_of_each_image"][-1]), groups=val_cars,
                       group_name="cars") for seed, arms in seed_runs.items()}
fell = [seed for seed, gap in falls.items() if gap.clear and gap.leader == "epoch 1"]
source_words = "ImageNet's photos" if PRETRAINED else SOURCE_WORDS
if held_in_every_seed(heads, pretrained_name) and held_in_every_seed(ends, pretrained_name):
    worth = (f"pretraining on {source_words} paid, from the first epoch to the last, in every seed: a result that "
             "held against both the cars' noise and training's")
elif held_in_every_seed(heads, pretrained_name) and all(gap.difference > 0 for gap in ends.values()):
    shrank = end_over_seeds.difference < head_over_seeds.difference
    worth = (f"pretraining on {source_words} bought a head start in every seed and was still ahead at epoch "
             f"{EPOCHS} in every seed, but clear of the cars' noise in {sum(gap.clear for gap in ends.values())} of "
             f"{len(ends)} only" + (f"; on average the lead shrank from {head_over_seeds.difference:+.3f} after "
                                    f"epoch 1 to {end_over_seeds.difference:+.3f}" if shrank else "")
             + f". Averaged over the seeds the end gap is {end_over_seeds.verdict} (the average shrinks training's "
             "noise but does not count it). Not settled: a gap of nothing points the same way in every one of "
             f"{len(ends)} seeds one time in {2 ** (len(ends) - 1)}, so more seeds or validation cars would settle it")
elif held_in_every_seed(heads, pretrained_name):
    moved = {arm: np.mean([arms[arm]["val_dice_per_image"][-1] - arms[arm]["val_dice_per_image"][0]
                           for arms in seed_runs.values()]) for arm in ("pretrained", "random")}
    worth = (f"pretraining on {source_words} bought a head start in every seed, but at epoch {EPOCHS} the lead "
             f"was not clear, the same way, in every seed ({sum(gap.clear for gap in ends.values())} of {len(ends)} "
             "clear: the bullet above), so what it is worth after training is open. From epoch 1 to the last the "
             f"{ENCODER_LABEL} runs moved by {moved['pretrained']:+.3f} on average and the random ones by "
             f"{moved['random']:+.3f} (the figure): the gap closed "
             + ("because the random runs rose faster" if moved["pretrained"] >= 0 else
                "from both sides: the pretrained runs fell while the random ones rose" if moved["random"] > 0 else
                "because the pretrained runs fell further"))
elif held_in_every_seed(ends, pretrained_name):
    worth = (f"pretraining on {source_words} was ahead at the end in every seed, though its head start did not "
             "hold: the gain grew with training")
elif held_in_every_seed(ends, "the random encoder"):
    worth = (f"the random encoder was ahead at the end in every seed: features learned on {source_words} did not "
             "suit " + ("these photos" if is_real else "these cars") + " under this recipe")
elif all(gap.difference > 0 for gap in heads.values()):
    worth = (f"pretraining on {source_words} started ahead in every seed, but beyond the noise in only "
             f"{sum(gap.clear for gap in heads.values())} of {len(heads)}, and no lead held at the end in every "
             "seed: a head start that more seeds or validation cars would have to confirm, and no end gap your "
             "seeds agree on")
else:
    worth = "no gap held in every seed: with this budget, your seeds cannot say what pretraining is worth here"
averaged = f" Averaged over the seeds: {end_over_seeds.short()}." if len(seed_runs) > 1 else ""
if len(seed_runs) == 1:  # SEED_RUNS = 1: the verdicts above are one training run per arm
    worth = ("one seed (`SEED_RUNS = 1`) cannot say what pretraining is worth beyond training's own noise: each gap "
             "above is one training run per arm; set `SEED_RUNS` to 3 in the settings to see that noise")
fall_text = (f" The {ENCODER_LABEL} run's Dice fell from epoch 1 to its last epoch, beyond the noise, in "
             f"{len(fell)} of {len(seed_runs)} seeds (TRAIN_SEED {', '.join(map(str, fell))}): what {EPOCHS - 1} "
             f"more epochs on {len(train_ids)} images did to a pretrained model; section 7's frozen phase shows what "
             "the encoder gives untouched." if fell else "")
if PRETRAINED:
    stand_in_note = ""
elif is_real:
    stand_in_note = ("\n- **A STAND-IN**: it learned on drawn cars and was scored here on real photos, so this is "
                     "transfer from drawings to photos, not what ImageNet is worth; on Colab this cell reads the "
                     "ImageNet runs.")
else:
    stand_in_note = ("\n- **A STAND-IN**: it learned on drawn cars much like these, far closer to them than "
                     "ImageNet's photos are to Carvana's (section 4), so this says how pretraining works, not what "
                     "ImageNet is worth; on Colab this cell reads the ImageNet runs.")
def in_words(gaps: dict[int, Gap]) -> str:
    """What the seeds' gaps at one epoch say, as the rest of a sentence that starts "after epoch k the <pretrained>
    encoder": how many seeds had it ahead, how many beyond the noise either way, and the mean gap."""
    n, mean = len(gaps), np.mean([gap.difference for gap in gaps.values()])
    ahead = sum(gap.difference > 0 for gap in gaps.values())
    clear = sum(gap.clear and gap.leader == pretrained_name for gap in gaps.values())
    behind = sum(gap.clear and gap.leader != pretrained_name for gap in gaps.values())
    if clear == n:
        return f"was ahead in every seed, beyond the noise each time ({mean:+.3f} Dice on average)"
    if ahead == n:
        return f"was ahead in every seed ({mean:+.3f} Dice on average), beyond the noise in {clear} of {n}"
    if clear == behind == 0:
        return (f"could not be told from the random one in any seed ({mean:+.3f} Dice on average; ahead in "
                f"{ahead} of {n})")
    return (f"was ahead in {ahead} of {n} seeds, beyond the noise in {clear}"
            + (f" and behind beyond it in {behind}" if behind else "") + f" ({mean:+.3f} Dice on average)")


# the answer in one sentence, here and in the summary: what the head start was, and what was left of it
n_seeds = len(seed_runs)
head_mean, end_mean = (np.mean([gap.difference for gap in gaps.values()]) for gaps in (heads, ends))
head_clear, end_clear = (sum(gap.clear and gap.leader == pretrained_name for gap in gaps.values())
                         for gaps in (heads, ends))
every_head = all(gap.difference > 0 for gap in heads.values())
held_head = held_in_every_seed(heads, pretrained_name)
start_words = (f"was ahead after epoch 1 in every seed ({head_mean:+.3f} Dice on average, clear in {head_clear} of "
               f"{n_seeds}: {'held' if held_head else 'not held, by the rule above'})" if every_head else
               f"was ahead after epoch 1 in {sum(g.difference > 0 for g in heads.values())} of {n_seeds} seeds "
               f"({head_mean:+.3f} Dice on average, clear in {head_clear})")
end_words = (f"by epoch {EPOCHS} it could not be told from the random one ({end_mean:+.3f}, clear in none)"
             if not any(gap.clear for gap in ends.values()) else
             f"the lead held to epoch {EPOCHS} ({end_mean:+.3f}, clear in every seed)"
             if held_in_every_seed(ends, pretrained_name) else
             f"at epoch {EPOCHS} it was {end_mean:+.3f} on average, clear in {end_clear} of {n_seeds}")
seeds_lead = f"The {ENCODER_LABEL} encoder {start_words}, and {end_words}."
counts_text = f"After epoch 1 it {in_words(heads)}; at epoch {EPOCHS} it {in_words(ends)}."
if len(seed_runs) == 1:
    seeds_lead = (f"In its one seed the {ENCODER_LABEL} encoder's gap was {head_over_seeds.difference:+.3f} Dice "
                  f"after epoch 1 and {end_over_seeds.difference:+.3f} at the end: one seed cannot separate a gap "
                  "from training's own noise.")
def settled(gaps: dict[int, Gap]) -> str:
    """The notebook's rule in a word: "ahead" or "behind" when beyond the noise the same way in every seed."""
    return ("ahead" if held_in_every_seed(gaps, pretrained_name) else
            "behind" if held_in_every_seed(gaps, "the random encoder") else "not settled")


def carried(gaps: dict[int, Gap], pooled_gap: Gap, when: str) -> str:
    """A sentence where the seeds' average cleared the bar but some seed did not: why that is not settled."""
    if len(gaps) < 2 or not pooled_gap.clear or pooled_gap.held:
        return ""
    seed, gap = next((seed, gap) for seed, gap in gaps.items() if not (gap.clear and gap.leader == pooled_gap.leader))
    return (f" {when}, the seeds' average was clear ({pooled_gap.short()}), yet TRAIN_SEED {seed} alone was not "
            f"({gap.short()}): an average can be carried by the seeds that cleared, so the rule asks every seed.")


carried_text = carried(heads, head_over_seeds, "After epoch 1") + carried(ends, end_over_seeds, "At the end")
def settled_words(gaps: dict[int, Gap]) -> str:
    """``settled``, and for "not settled" the counts behind it: how many seeds were ahead, how many clear."""
    word = settled(gaps)
    ahead = sum(gap.difference > 0 for gap in gaps.values())
    clear = sum(gap.clear and gap.leader == pretrained_name for gap in gaps.values())
    return word if word != "not settled" else f"{word} (ahead in {ahead} of {len(gaps)} seeds, clear in {clear})"


reading_after([(head_said, settled_words(heads), head_said.said() == settled(heads)),
               (end_said, settled_words(ends), end_said.said() == settled(ends))], f"""
**{seeds_lead}**{carried_text}
""", more=f"""
{counts_text} So {worth}.

Each gap in the table above is the {ENCODER_LABEL} encoder's Dice minus the random encoder's, ± its standard
error over the {len(set(val_cars))} validation cars.
- **After the first epoch**: {agreement(list(heads.values()))}.
- **At the end**: {agreement(list(ends.values()))}.{averaged}{fall_text}{stand_in_note}
""")

# %% [markdown]
# > **Discuss** (two minutes, before section 7): why does the notebook ask every seed to clear its bar, not only
# > their average? In a class where each student set another `TRAIN_SEED` (TEACHING.md), whose verdicts agree?

# %% [markdown]
# ## 7. Freeze first, then unfreeze (core, ~15 min)
#
# The fine-tuning recipe for a pretrained encoder:
# 1. **freeze** the encoder (`model.freeze_encoder()`: no gradients, and BatchNorm keeps the running statistics
#    it learned on ImageNet, or the STAND-IN on its source cars) and train only the random decoder for a few
#    epochs, so that its first, large and noisy gradients cannot damage the pretrained features (and each step is
#    cheaper: section 9 times it);
# 2. **unfreeze** (`model.unfreeze_encoder()`) and train everything, the encoder at `LR_ENCODER`, ten times lower
#    than the decoder's `LR`, so that it adapts without forgetting.
#
# Unfreezing has a catch. In train mode a BatchNorm layer normalises with the *current batch's* mean and variance
# (noisy at a batch of `BATCH_SIZE`) and pulls its stored running statistics towards them at every step; in eval
# mode it uses the stored ones. Frozen, the encoder always used the stored ones, and the decoder learned to read
# features normalised that way; unfrozen, those features change under its feet. The common practice at small
# batches (below about 16) is to keep the encoder's BatchNorm frozen after unfreezing, its weights training and
# its statistics not: `model.unfreeze_encoder(train_batchnorm=False)`. (fastai chooses the other way by default,
# `train_bn=True`; this section measures one against the other. At a GPU's batch of 16 the two may tie: set the
# GPU `BATCH_SIZE` to 4 to test the practice where it matters.)
#
# We train the frozen phase once, then continue three copies of it with the same optimizer state and batches: two
# unfrozen, both ways, and a third **kept frozen**, the control, as long on the same schedule, so that "was
# unfreezing worth it?" compares two models that differ in one thing only. Each phase gets its own one-cycle
# schedule.

# %%
import itertools

set_seed(TRAIN_SEED)
staged = pretrained_densenet()  # the encoder of section 6's third run, the same decoder start
staged_config = {"model": "densenet_unet", **STAND_IN_CONFIG,
                 "model_kwargs": {"num_classes": 1, "weights": WEIGHTS if PRETRAINED else None}}
optimizer = torch.optim.AdamW(staged.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
staged.freeze_encoder()
frozen = train_run(staged, optimizer, FROZEN_EPOCHS, f"staged_{ENCODER_LABEL.lower()}_frozen",
                   {**staged_config, "phase": "frozen", "epochs": FROZEN_EPOCHS})  # the epochs this phase trains
frozen_scores = per_image_dice(staged)  # (len(val_ids),): as the drifted copy below will be scored
print(f"frozen: {frozen['trainable'] / 1e6:.2f}M of {frozen['params'] / 1e6:.2f}M parameters train; "
      f"validation Dice {frozen_scores.mean():.4f}")

# %% [markdown]
# The catch, tested without any training: a copy of the frozen model whose encoder BatchNorm layers, and only
# those, run in train mode for `DRIFT_BATCHES` batches of 4 under `torch.no_grad()` (only the running statistics
# move, as in the first steps after a plain unfreezing), then validated on the same images.
#
# > **Predict first**: no weight changes here. Will the validation Dice move? If so, which way, and why? Write
# > the way below.

# %% tags=["prediction"]
my_drift_prediction = "within the noise"  # "higher", "lower" or "within the noise": the drifted copy against the frozen model

# %%
drift_said = Prediction("my_drift_prediction", my_drift_prediction, ("higher", "lower", "within the noise"))
drifted = copy.deepcopy(staged).eval()  # the decoder's BatchNorm stays as it is
for norm in drifted.encoder_batchnorms():
    norm.train()  # normalise with each batch's statistics, and pull the running ones towards them
with torch.no_grad():
    for batch_images, _ in itertools.islice(itertools.cycle(train_loader), DRIFT_BATCHES):
        drifted(batch_images[:4].to(DEVICE))  # batches of 4, in every mode
drifted_scores = per_image_dice(drifted)
moved = max((a.running_mean - b.running_mean).abs().max().item()
            for a, b in zip(staged.encoder_batchnorms(), drifted.encoder_batchnorms()))
# For scale: each channel's change in units of its stored standard deviation (the square root of running_var),
# the size BatchNorm divides by: a change of 1 shifts every normalised feature of that channel by one unit
moved_in_sd = torch.cat([(b.running_mean - a.running_mean).abs() / a.running_var.sqrt()
                         for a, b in zip(staged.encoder_batchnorms(), drifted.encoder_batchnorms())])  # (channels,)
if predicted(drift_said):  # the answer waits for your prediction
    print(f"largest change of an encoder running mean: {moved:.3f} (the weights did not change); in units of each "
          f"channel's stored standard deviation: median {moved_in_sd.median():.3f}, largest {moved_in_sd.max():.2f}")
    print(f"validation Dice after the frozen phase {frozen_scores.mean():.4f}; after {DRIFT_BATCHES} forward passes "
          f"with the encoder's BatchNorm in train mode: {drifted_scores.mean():.4f}")
    for car in sorted(set(val_cars)):  # the mean hides how differently the cars took it
        views = [c == car for c in val_cars]
        print(f"  car {car[:6]}: {frozen_scores[views].mean():.3f} -> {drifted_scores[views].mean():.3f}")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the drift did in this run
from unet_tutorial.course.predictions import reading_after
from unet_tutorial.course.reading import compare

drift = compare("the frozen model", frozen_scores, "the drifted copy", drifted_scores, groups=val_cars,
               group_name="cars")
stored = ("ImageNet's, measured on its photos" if PRETRAINED else
          "the STAND-IN's, measured on its source cars, " + ("drawings, not photos" if is_real else
                                                            "other drawn cars than these"))
if drift.clear and drift.leader == "the frozen model":
    drift_text = ("The decoder had learned to read features normalised with the stored statistics "
                  f"({stored}); {DRIFT_BATCHES} batches of 4 pulled them towards these images' own, and the "
                  "decoder's input changed under it.")
elif drift.clear:
    drift_text = (f"Here the drift even helped: the stored statistics ({stored}) described these images worse "
                  "than the batches' own did. Helped or not, the decoder's input changed with no weight trained.")
else:
    cars = sorted(set(val_cars))
    before = [frozen_scores[[c == car for c in val_cars]].mean() for car in cars]
    after = [drifted_scores[[c == car for c in val_cars]].mean() for car in cars]
    by_car = [b - a for b, a in zip(before, after)]  # the fall of each car's Dice: negative where it rose
    lost = sum(b > 0.5 and a < 0.1 for b, a in zip(before, after))  # cars the drifted model no longer finds
    fell, rose = sum(d > 0.0005 for d in by_car), sum(d < -0.0005 for d in by_car)  # the rest: unchanged as printed
    mover = max(range(len(cars)), key=lambda k: abs(by_car[k]))  # the car that moved most
    changes = (f"fell on {fell} of the {len(cars)} cars and rose on {rose}; the largest move was car "
               f"{cars[mover][:6]}'s, {before[mover]:.3f} to {after[mover]:.3f}")
    harm = ("so in this run the drift did no harm the mean can show" if drift.leader == "the drifted copy" else
            "so the mean cannot say what the drift costs a car in general")
    if after[mover] > before[mover]:  # the car that moved most rose: its batches' statistics fitted it better
        harm += (f". Car {cars[mover][:6]} rose: for that car, statistics drawn from batches of these training "
                 "cars served the decoder better than the stored ones")
    drift_text = (f"\n- **Car by car** (the lines above), the Dice {changes}"
                  + (f"; on {lost} of the {len(cars)} cars the drifted model lost the car almost entirely, Dice "
                     "under 0.1" if lost else "")
                  + f": {harm}.\n- **The running statistics** moved all the same, by up to {moved:.3f} (the stored ones "
                  f"were {stored}); in units of each channel's standard deviation the median channel moved "
                  f"{moved_in_sd.median():.3f} and the most {moved_in_sd.max():.2f}"
                  + ((": most channels barely moved, which may be why the decoder's input, and the Dice, changed so "
                      "little." if abs(by_car[mover]) < 0.05 else ": most channels barely moved, yet some cars' Dice "
                      "moved a lot (the lines above): a few channels that moved far can be enough.")
                     if moved_in_sd.median() < 0.1 else "."))
stand_in_text = ("" if PRETRAINED else
                 (" The STAND-IN's statistics come from drawings, and these are photos: a shift of its own, not "
                  "ImageNet's; on Colab this cell reads the ImageNet case." if is_real else
                  " The STAND-IN's source cars come from the same drawing code as these, so one would expect the "
                  "batches to pull its statistics less far than ImageNet's, measured on other photos; on Colab this "
                  "cell reads that case."))
drift_lead = ("the drifted copy scored lower, beyond the noise" if drift.clear and drift.leader == "the frozen model"
              else "the drifted copy scored higher, beyond the noise" if drift.clear else
              "within the noise")
places = 3 if round(frozen_scores.mean(), 3) != round(drifted_scores.mean(), 3) else 4  # "0.958 to 0.958" hides it
drift_outcome = ("within the noise" if not drift.clear else
                 "lower" if drift.leader == "the frozen model" else "higher")
reading_after([(drift_said, drift_outcome)], f"""
**Not one weight changed, and the mean validation Dice went from {frozen_scores.mean():.{places}f} to
{drifted_scores.mean():.{places}f}: {drift_lead}.**

As a mean over cars: {drift.short(named=True)}. Training after a plain unfreezing meets this drift while it
learns; keeping the encoder's BatchNorm frozen avoids it. Below, both ways, trained: the copies right after
unfreezing test it again, with the weights moving too.
""", more=f"""
{drift_text.strip()}{stand_in_text}
""")

# %%
# Three copies of the model after its frozen phase, each with the optimizer's state and the same batches:
# unfrozen two ways, and kept frozen
after_frozen, frozen_optimizer_state = staged, optimizer.state_dict()  # the frozen phase's model, copied below
BATCH_SEED = TRAIN_SEED + 1  # the order of the batches after the frozen phase, the same for every copy


def continue_after_frozen(folder: str, phase: str, *, unfreeze: bool, train_batchnorm: bool = True,
                          lr_encoder: float = LR_ENCODER, batch_seed: int = BATCH_SEED) -> tuple[DenseNetUNet, dict]:
    """A copy of the model after its frozen phase, trained EPOCHS - FROZEN_EPOCHS more epochs on the batches that
    batch_seed draws and the same one-cycle schedule, its encoder unfrozen (its BatchNorm training or not) or kept
    frozen; the encoder's learning rate peaks at lr_encoder. Returns the copy and its history."""
    model = copy.deepcopy(after_frozen)  # deepcopy keeps the frozen encoder frozen
    optimizer_copy = torch.optim.AdamW(model.param_groups(lr_encoder=lr_encoder, lr_decoder=LR))
    optimizer_copy.load_state_dict(frozen_optimizer_state)  # Adam's running averages: as if training went on
    for group in optimizer_copy.param_groups:  # the loaded state holds the first phase's peaks
        group["max_lr"] = lr_encoder if group["name"] == "encoder" else LR
    if unfreeze:
        model.unfreeze_encoder(train_batchnorm=train_batchnorm)
    set_seed(batch_seed)  # the batches (and augmentations): the same for every copy given the same seed
    history = train_run(model, optimizer_copy, EPOCHS - FROZEN_EPOCHS, f"staged_{ENCODER_LABEL.lower()}_{folder}",
                        {**staged_config, "phase": phase, "lr_encoder": lr_encoder, "batch_seed": batch_seed,
                         "epochs": EPOCHS - FROZEN_EPOCHS})
    return model, history


staged_trains, trains_run = continue_after_frozen("unfrozen", "unfrozen, BatchNorm trains", unfreeze=True)
staged_bn, bn_frozen_run = continue_after_frozen("unfrozen_bn_frozen", "unfrozen, BatchNorm frozen", unfreeze=True,
                                                 train_batchnorm=False)  # BatchNorm keeps the statistics it has
kept, kept_frozen = continue_after_frozen("kept_frozen", "kept frozen", unfreeze=False)  # the control
phases = {"BatchNorm trains": trains_run, "BatchNorm frozen": bn_frozen_run}
arm_scores = {name: np.array(phase["val_dice_of_each_image"][-1]) for name, phase in phases.items()}
kept_scores = np.array(kept_frozen["val_dice_of_each_image"][-1])  # (len(val_ids),)
print(f"unfrozen: {phases['BatchNorm trains']['trainable'] / 1e6:.2f}M parameters train; peak learning rates: "
      f"encoder {LR_ENCODER:.0e}, decoder {LR:.0e}")

# %% [markdown]
# The effect, against the same encoder trained end to end from the first epoch and against the copy kept frozen
# (dashed); the dotted line marks the unfreezing. The lower panel is the decoder's learning rate at every step:
# each phase has its own one-cycle schedule, so the copies' rate climbs again after the frozen phase (`fit`'s lines
# print each epoch's first rate; the copy kept frozen still prints its encoder group's, which moves nothing, as its
# parameters get no gradient). When epoch 1 was scored, the frozen phase had run a whole cycle, warm-up and
# anneal, while the end-to-end run had only climbed to near its peak: part of the frozen phase's lead at epoch 1
# is the schedule's. A copy's seconds per epoch is the
# median over both phases; the phase rows give each phase's own.

# %%
import matplotlib.pyplot as plt

end_to_end_name = PRETRAINED_RUN  # section 6's run with the same encoder, trained end to end
end_to_end = runs[end_to_end_name]
staged_names = {name: f"DenseNet, {ENCODER_LABEL} encoder, frozen then unfrozen, {name}" for name in phases}
for name, phase in phases.items():  # the frozen phase's epochs, then this copy's
    runs[staged_names[name]] = {**{key: frozen[key] + phase[key]
                                   for key in ("train_loss", "val_loss", "val_dice_per_image", "seconds")},
                                "params": phase["params"], "trainable": phase["trainable"],
                                "gpu_memory_gb": phase["gpu_memory_gb"]}
    val_scores[staged_names[name]] = arm_scores[name]
models[staged_names["BatchNorm trains"]], models[staged_names["BatchNorm frozen"]] = staged_trains, staged_bn
kept_name = f"DenseNet, {ENCODER_LABEL} encoder, kept frozen"
runs[kept_name] = {**{key: frozen[key] + kept_frozen[key]
                      for key in ("train_loss", "val_loss", "val_dice_per_image", "seconds")},
                   "params": kept_frozen["params"], "trainable": kept_frozen["trainable"],
                   "gpu_memory_gb": kept_frozen["gpu_memory_gb"]}
val_scores[kept_name], models[kept_name] = kept_scores, kept

from unet_tutorial.schedules import planned_rates

fig, (ax, ax_rate) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
epochs = np.arange(1, EPOCHS + 1)  # each epoch's Dice is measured at its end
ax.plot(epochs, end_to_end["val_dice_per_image"], "o-", label=f"{end_to_end_name}, all layers from epoch 1")
for name in phases:
    ax.plot(epochs, runs[staged_names[name]]["val_dice_per_image"], "o-", label=f"frozen, then unfrozen: {name}")
ax.plot(epochs, runs[kept_name]["val_dice_per_image"], "x--", color="grey", label="kept frozen (the control)")
steps_per_epoch = len(train_loader)  # optimizer steps
one_cycle = planned_rates("onecycle", LR, epochs=EPOCHS, steps_per_epoch=steps_per_epoch)
two_cycles = (planned_rates("onecycle", LR, epochs=FROZEN_EPOCHS, steps_per_epoch=steps_per_epoch)
              + planned_rates("onecycle", LR, epochs=EPOCHS - FROZEN_EPOCHS, steps_per_epoch=steps_per_epoch))
step_edges = np.arange(EPOCHS * steps_per_epoch + 1) / steps_per_epoch  # in epochs trained: each step's start, and the end
ax_rate.step(step_edges, one_cycle + one_cycle[-1:], where="post", label="trained end to end: one cycle")
ax_rate.step(step_edges, two_cycles + two_cycles[-1:], where="post",
             label="the frozen phase, then the three copies: a cycle per phase")
for axis in (ax, ax_rate):
    axis.axvline(FROZEN_EPOCHS, color="grey", linestyle=":")  # the unfreezing
ax.set(ylabel="validation Dice", title=f"{ENCODER_LABEL} encoder: Dice, and the decoder's learning rate")
ax_rate.set(xlabel="epochs trained", ylabel="decoder's rate", xticks=np.arange(EPOCHS + 1))
ax_rate.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
for axis in (ax, ax_rate):  # the legends right of the axes, where they hide no line
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
fig.tight_layout()
plt.show()

summary_table({end_to_end_name: end_to_end, **{staged_names[name]: runs[staged_names[name]] for name in phases},
               kept_name: runs[kept_name],
               f"  the frozen phase (epoch{'s 1-' if FROZEN_EPOCHS > 1 else ' '}{FROZEN_EPOCHS})": frozen,
               **{f"  the unfrozen phase, {name} (epochs {FROZEN_EPOCHS + 1}-{EPOCHS})": phase
                  for name, phase in phases.items()},
               f"  the phase kept frozen (epochs {FROZEN_EPOCHS + 1}-{EPOCHS})": kept_frozen})
last_frozen = frozen["val_dice_per_image"][-1]
for name, phase in phases.items():  # the dip, if any: the first unfrozen epoch against the last frozen one
    first = phase["val_dice_per_image"][0]
    print(f"{name}: first epoch after unfreezing {first:.4f}, {first - last_frozen:+.4f} against the last frozen epoch")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What unfreezing did in this run
from unet_tutorial.course.reading import gaps_table

bn_gap = compare("BatchNorm frozen", arm_scores["BatchNorm frozen"], "BatchNorm trains", arm_scores["BatchNorm trains"],
                 groups=val_cars, group_name="cars")
end_gap = compare("the frozen-then-unfrozen recipe", arm_scores["BatchNorm frozen"],
                  "training end to end from epoch 1", val_scores[end_to_end_name], groups=val_cars, group_name="cars")
first_epoch = {name: phase["val_dice_per_image"][0] for name, phase in phases.items()}
unfreeze_gap = compare("unfrozen, BatchNorm frozen", arm_scores["BatchNorm frozen"], "the copy kept frozen",
                       kept_scores, groups=val_cars, group_name="cars")
if unfreeze_gap.clear and unfreeze_gap.leader == "the copy kept frozen":
    unfreeze_text = (f"Unfreezing cost Dice here: trained as long on the same schedule, with {len(train_ids)} "
                     f"training images, the encoder as pretrained ({'ImageNet' if PRETRAINED else 'the STAND-IN'}'s) "
                     "served these cars better than what the unfrozen epochs made of it. With a small training set, "
                     "keeping the encoder frozen (or unfreezing later, or at a lower rate) is a real choice: make it "
                     "on validation cars and confirm it on new ones.")
elif unfreeze_gap.clear:
    unfreeze_text = ("Trained as long on the same schedule, the unfrozen encoder adapted to these cars beyond what "
                     "its pretrained features gave" + (": one seed, close to the bar, so another seed may not "
                                                       "repeat it." if unfreeze_gap.near else "."))
else:
    unfreeze_text = "So this run cannot tell whether unfreezing helped."
# Right after unfreezing: each copy's first unfrozen epoch, image by image, against the other and the frozen phase
first_scores = {name: np.array(phase["val_dice_of_each_image"][0]) for name, phase in phases.items()}
start = compare("BatchNorm frozen", first_scores["BatchNorm frozen"], "BatchNorm trains",
                first_scores["BatchNorm trains"], groups=val_cars, group_name="cars")
start_note = ""  # what the start adds to the heading's verdict
if start.clear and start.leader == "BatchNorm frozen":
    start_words = "the copy whose BatchNorm follows each batch started lower"
    start_note = (": in this run, the dip the practice warns about"
                  if first_epoch["BatchNorm trains"] < frozen["val_dice_per_image"][-1] else
                  ": both copies rose from the frozen phase, the one whose BatchNorm follows each batch by less")
elif start.clear:
    start_words = "the copy whose BatchNorm follows each batch started higher"
    start_note = ": no dip here"
else:
    start_words = "which copy started lower, this run cannot tell"
if start.clear and not drift.clear:  # the forward-only test above found no harm, the trained copies differ
    start_note += (". The drift test above moved only the statistics; here the weights trained too, on features "
                   "normalised by each batch, which is a different test")
moves = {name: compare(name, first_scores[name], "the last frozen epoch", frozen_scores, groups=val_cars,
                       group_name="cars") for name in phases}  # each copy's first unfrozen epoch - the frozen one
dipped = [name for name, move in moves.items() if move.clear and move.difference < 0]
dip_text = ""
kept_dip = compare("the last frozen epoch", frozen_scores, "the copy kept frozen",
                   np.array(kept_frozen["val_dice_of_each_image"][0]), groups=val_cars, group_name="cars")
kept_dipped = kept_dip.clear and kept_dip.leader == "the last frozen epoch"
kept_first = np.array(kept_frozen["val_dice_of_each_image"][0])  # the control after the same first epoch
against_kept = {name: compare(name, first_scores[name], "the copy kept frozen", kept_first, groups=val_cars,
                              group_name="cars") for name in phases}  # same epoch, same schedule: unfreezing's cost
lagged = [name for name, gap in against_kept.items() if gap.clear and gap.difference < 0]
kept_text = (f" Against the copy kept frozen after the same epoch, on the same schedule: with BatchNorm training "
             f"{against_kept['BatchNorm trains'].short()}; with it frozen {against_kept['BatchNorm frozen'].short()}"
             + (f": the '{lagged[0]}' copy" + (" and the other" if len(lagged) > 1 else "")
                + " lagged the control there, beyond the noise, which the last frozen epoch does not show."
                if lagged else "."))
if len(dipped) == len(phases):  # the encoder starts to move under a decoder trained on it frozen, either way
    dip_text = (" Both copies dipped below the last frozen epoch, beyond the noise, which may have two causes: once "
                "unfrozen, the encoder's features start to move under a decoder trained on them frozen, and the "
                "new phase's one-cycle schedule warms the decoder's learning rate up again. "
                + ("The copy kept frozen dipped too, with no encoder weight moving: the schedule alone can do it."
                   if kept_dipped else "The copy kept frozen, on the same schedule, did not dip beyond the noise: "
                   "the dip came with unfreezing."))
    if start.clear and start.leader == "BatchNorm trains":
        dip_text += (" The BatchNorm-frozen copy dipped further: its stored statistics were measured for the "
                     "encoder's weights before unfreezing, and those weights now move, where the training copy's "
                     "statistics follow them.")
elif dipped:
    dip_text = f" Only the '{dipped[0]}' copy dipped beyond the noise."
else:  # no dip: a rise beyond the noise is news too
    rose = [name for name, move in moves.items() if move.clear and move.difference > 0]
    near_rise = "".join(f" (the '{name}' copy close to the bar)" for name in rose if moves[name].near)
    dip_text = (f" Both copies rose beyond the noise{near_rise}: no dip here." if len(rose) == len(phases) else
                f" Only the '{rose[0]}' copy rose beyond the noise; neither dipped." if rose else
                " Neither copy's move is beyond the noise.")
if bn_gap.clear and bn_gap.leader == "BatchNorm frozen":
    end_text = (f"As the common practice predicts at a batch of {BATCH_SIZE}: the stored statistics served the "
                "decoder better than each batch's own.")
elif bn_gap.clear:
    if BATCH_SIZE >= 16:  # section 7: the practice is for batches below about 16
        why = (f"At a batch of {BATCH_SIZE} each batch's statistics are fairly steady, so training them costs "
               "little, and following the data can win when the images are unlike ImageNet's photos"
               + ("." if is_real else " (these are drawn cars).") + " Or it is chance in one run: try another `TRAIN_SEED`.")
    else:
        why = (f"At a batch of {BATCH_SIZE} each batch's statistics are noisy, the case the practice is made for, "
               "so suspect chance in one run first (try another `TRAIN_SEED`), then the images: the stored statistics "
               + ("are ImageNet's, and " + ("these photos" if is_real else "drawn cars") + " may be unlike its photos."
                  if PRETRAINED else "are the STAND-IN's source cars', and training moved the weights they were "
                  "measured for."))
    end_text = "The opposite of the common practice. " + why
else:
    end_text = ("The practice rests on larger experiments than this one; to test it here, give the run more "
                "validation cars or more epochs" + (", or a batch of 4 (the settings)" if BATCH_SIZE > 4 else "")
                + ("." if PRETRAINED else ", and the ImageNet weights: the STAND-IN's statistics come from drawn "
                   "cars, so this tests " + ("the step from drawings to photos" if is_real else
                                             "statistics from cars much like these")
                   + ", not the step from ImageNet's photos to cars."))
timed = {end_to_end_name: end_to_end["seconds"], **{f"the unfrozen phase, {name}": phase["seconds"]
                                                    for name, phase in phases.items()}}
spread_name = max(timed, key=lambda name: max(timed[name]) / min(timed[name]))  # the least steady run
slowest, fastest = max(timed[spread_name]), min(timed[spread_name])
if slowest > 2 * fastest:
    time_text = (f"one run's epochs ({spread_name}) took from {fastest:.0f} to {slowest:.0f} s: the machine was busy "
                 "when it trained, so the table's epoch times compare nothing here")
else:
    time_text = (f"of the runs that trained every layer, the least steady ({spread_name}) took from {fastest:.1f} "
                 f"to {slowest:.1f} s per epoch, and "
                 f"{EPOCHS} epochs or fewer per run are too few to compare runs by")
if bn_gap.clear:
    end_words = f"{bn_gap.leader} ended higher"
else:
    end_words = "no difference this run can see"
if end_gap.clear:
    recipe_words = "the recipe ended higher" if end_gap.leader == end_gap.name_a else "end to end ended higher"
else:
    recipe_words = "no difference this run can see"
if unfreeze_gap.clear:
    worth_words = ("yes" if unfreeze_gap.leader == unfreeze_gap.name_a else "no, it cost Dice") + (
        ", in this run, close to the bar" if unfreeze_gap.near else "")
else:
    worth_words = "this run cannot tell"
later = {"training end to end": end_to_end["val_dice_per_image"][1:],
         **{f"BatchNorm {name.split()[-1]}": phase["val_dice_per_image"] for name, phase in phases.items()}}
kept_best = max(kept_frozen["val_dice_per_image"])
if all(max(scores) < last_frozen for scores in later.values() if scores):  # the frozen epoch beat everything after
    fell_note = (f"\n\n**Your figure: the decoder-only model after the frozen phase ({last_frozen:.3f}) is above every "
                 "later epoch of the unfrozen copies and of the run trained end to end.** Two likely causes: the new phase's one-cycle schedule warms "
                 f"the decoder's learning rate up to `LR` ({LR:g}) again (the figure's lower panel), and "
                 f"{len(train_ids)} training images are few to adapt a whole encoder on. ")
    if kept_best < last_frozen:  # the control fell too, with no encoder weight moving
        fell_note += (f"The copy kept frozen fell too (its best later epoch {kept_best:.3f}), with no encoder weight "
                      "moving, which points at the schedule more than at unfreezing: to test it, set a lower `LR` "
                      "and rerun from section 7.")
    else:
        fell_note += (f"The copy kept frozen did not fall below it (its best later epoch {kept_best:.3f}), on the "
                      "same schedule: that points at unfreezing itself, the encoder moving under a decoder trained "
                      f"on it frozen. To test it, set `FROZEN_EPOCHS = {EPOCHS - 1}` or a lower `LR_ENCODER` and "
                      "rerun from section 7.")
else:
    fell_note = ""
kept_rise = kept_scores.mean() - frozen_scores.mean()  # what more epochs alone did, the encoder still frozen
ended = {"BatchNorm trains": arm_scores["BatchNorm trains"].mean(), "BatchNorm frozen":
         arm_scores["BatchNorm frozen"].mean(), "kept frozen": kept_scores.mean()}
ended_text = ", ".join(f"{score:.3f} ({name})" for name, score in ended.items())
# the lead: each gap that cleared, which way, in words; the rest within the noise
said = [(start, "the copy with its BatchNorm frozen started higher right after unfreezing",
          "the copy whose BatchNorm trains started higher right after unfreezing"),
         (bn_gap, "the BatchNorm-frozen copy ended higher than the one whose BatchNorm trains",
          "the copy whose BatchNorm trains ended higher than the BatchNorm-frozen one"),
         (unfreeze_gap, "unfreezing beat the copy kept frozen", "the copy kept frozen beat unfreezing"),
         (end_gap, "the recipe beat training end to end", "training end to end beat the recipe")]  # (gap, a ahead, b)
phrases = [(ahead if gap.difference > 0 else behind) + (" (close to the bar)" if gap.near else "")
           for gap, ahead, behind in said if gap.clear]
within = [name for gap, name in zip((start, bn_gap, unfreeze_gap, end_gap),
                                     ("the two copies right after unfreezing", "the two copies at the end",
                                      "unfreezing against the copy kept frozen", "the recipe against end to end"))
          if not gap.clear]
lead7 = ("**" + cap("; ".join(phrases)) + (f"; within the noise: {', '.join(within)}.**"
                                           if within else ".**") if phrases else
         "**None of the section's gaps cleared the noise: on these cars the three copies could not be told apart.**")
if kept_rise > abs(unfreeze_gap.difference):  # the bigger lesson: more epochs did more than unfreezing
    lead7 = (f"**Most of the gain after the frozen phase came from more training: the copy kept frozen rose by "
             f"{kept_rise:+.3f}, and unfreezing with BatchNorm frozen added {unfreeze_gap.difference:+.4f} to "
             "that.**")  # the table below gives the rest
reading(f"""
{lead7}{fell_note}

After the frozen phase ({last_frozen:.3f}) the three copies ended at {ended_text}; at the end (epoch {EPOCHS}):

{gaps_table({"unfreezing, against the control kept frozen": unfreeze_gap, "BatchNorm frozen against training": bn_gap,
             "the recipe, against training end to end": end_gap})}

Was unfreezing worth it? **{cap(worth_words)}.**
""", more=f"""
Right after unfreezing (the first unfrozen epoch):

{gaps_table({"BatchNorm frozen against training": start,
             "BatchNorm training, against the copy kept frozen": against_kept["BatchNorm trains"]})}

Each gap is *A − B: the gap ± its standard error over cars (its size in SE, the bar)*, as in section 6.
- **Right after unfreezing: {start_words}**{start_note}. Against the last frozen epoch, with BatchNorm training:
  {moves['BatchNorm trains'].short()}; with it frozen: {moves['BatchNorm frozen'].short()}.{dip_text}{kept_text}
- **At the end: {end_words}{" (within the noise, though close to the bar)" if bn_gap.near and not bn_gap.clear else
  " (close to the bar)" if bn_gap.near else ""}**. {end_text}
- **Unfreezing**, against the copy kept frozen (the control): {unfreeze_text}
- **Against training end to end: {recipe_words}**. The two differ in schedule as well as in freezing (the lower
  panel), so this gap does not isolate either.
- **Seconds per epoch** in the table: {time_text}. Section 9 times single steps, taken in turns: the fair test.
""")

# %% [markdown]
# > **Discuss** (two minutes, before section 8): the copy kept frozen trained on too; what does comparing with it
# > show that comparing with the frozen phase alone could not? At what batch size would you let BatchNorm train?

# %% [markdown]
# ## 8. The headline result (core, ~3 min)
#
# The run named before training (section 6), with its predictions on the first view of the first four validation
# cars by id (not chosen by score) and on the validation image it scored lowest. It is reported whatever it
# scores: that is the point of naming it first. What pretraining is worth is section 6's gap, not this number.

# %%
from IPython.display import display

from unet_tutorial.utils import report_metric
from unet_tutorial.viz import show

print(f"headline run: {HEADLINE}" + ("" if PRETRAINED else " (the STAND-IN encoder: no ImageNet weights here)"))
# the name says when the number is the STAND-IN's, so that make tutorial's table of results says it too
report_metric("val_dice" if PRETRAINED else "val_dice_STAND_IN", runs[HEADLINE]["val_dice_per_image"][-1],
              "04_densenet121_transfer", data="real" if is_real else "generated")
first_views = {}
for index, car in enumerate(val_cars):
    first_views.setdefault(car, index)  # car -> the index of its first view
picks = list(first_views.values())[:4]  # up to four different cars
lowest = int(np.argmin(val_scores[HEADLINE]))  # and the image the headline scored lowest on, wherever it is
picks += [] if lowest in picks else [lowest]
with torch.no_grad():
    shown = [val_loader.dataset[i] for i in picks]  # (image, mask) pairs, as the loader gives them
    shown_images, shown_masks = torch.stack([x for x, _ in shown]), torch.stack([m for _, m in shown])
    logits = models[HEADLINE].eval()(shown_images.to(DEVICE)).cpu()  # (len(picks), 1, H, W)
display(show(shown_images, shown_masks, preds=(logits > 0).float(),
             titles=[f"{val_ids[i]}  Dice {val_scores[HEADLINE][i]:.3f}" for i in picks]))
print("every run, for context:")
summary_table(runs)

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Where the headline stands in this run
ranked = sorted(runs, key=lambda name: -val_scores[name].mean())
best_other = next(name for name in ranked if name != HEADLINE)
headline_gap = compare("the headline", val_scores[HEADLINE], best_other, val_scores[best_other], groups=val_cars,
                       group_name="cars")
worst = min(picks, key=lambda i: val_scores[HEADLINE][i])
stand_in = ("" if PRETRAINED else "It is the STAND-IN's recipe, not the ImageNet one: on Colab this cell reads "
            "the real one.")
source_words = "ImageNet's photos" if PRETRAINED else f"{SOURCE_WORDS} (the STAND-IN)"
question = (f"Did features learned on {source_words} carry the model past what {EPOCHS} short epochs on "
            f"{len(train_ids)} images teach? Section 6's gaps between the {ENCODER_LABEL} and the random encoder, "
            f"on {len(seed_runs)} seed{'s' if len(seed_runs) > 1 else ''}, are this run's answer, read with their noise; the pictures only show where "
            "the errors sit."
            + ("" if PRETRAINED else " On Colab, with the weights, check whether this car's errors shrink or only "
               "move with the ImageNet encoder."))
# best.pt: the unfrozen phase's best epoch by validation Dice (fit's monitor); the number reported is the last
unfrozen_dice, unfrozen_loss = phases["BatchNorm frozen"]["val_dice_per_image"], phases["BatchNorm frozen"]["val_loss"]
best_epoch = FROZEN_EPOCHS + 1 + int(np.argmax(unfrozen_dice))  # counted over both phases, as in the figure
holds = ("what `best.pt` in its run folder holds" if RUN_DIR is not None else
         "what `best.pt` would hold (smoke mode writes no checkpoints)")
if best_epoch == EPOCHS:
    best_text = (f"Of its unfrozen epochs the last, epoch {EPOCHS}, scored highest: {holds} is the model reported, "
                 "so no epoch was picked on these validation images.")
elif round(max(unfrozen_dice), 4) == round(unfrozen_dice[-1], 4):
    best_text = (f"Its last epoch (the one reported) and epoch {best_epoch} of the figure tie at "
                 f"{max(unfrozen_dice):.4f}; {holds} is epoch {best_epoch}, the first of the tie (`fit` replaces it "
                 "only on a strictly higher score): a different model with the same score.")
else:
    best_text = (f"Of its unfrozen epochs the best by validation Dice was epoch {best_epoch} of the figure "
                 f"({max(unfrozen_dice):.3f}), {holds}. The number reported is the last epoch's: reporting epoch "
                 f"{best_epoch} instead would let these validation images pick the epoch they then score, which "
                 "flatters it as picking the best of several runs would.")
if frozen["val_dice_per_image"][-1] > max(unfrozen_dice):
    higher = ("higher still" if frozen["val_dice_per_image"][-1] - max(unfrozen_dice) >= 0.0005 else
              "as high, to three decimals")
    best_text += (f" Its frozen phase scored {higher} ({frozen['val_dice_per_image'][-1]:.4f}), and the copy "
                  f"kept frozen ended at {kept_scores.mean():.4f}: section 7's 'Was unfreezing worth it?' reads the "
                  "headline against that copy.")
turned = (len(unfrozen_dice) > 1 and unfrozen_loss[-1] > unfrozen_loss[-2]
          and unfrozen_dice[-1] < unfrozen_dice[-2])
turn_text = (f" In the last epoch its validation loss rose ({unfrozen_loss[-2]:.3f} to {unfrozen_loss[-1]:.3f}) "
             f"while its Dice fell: the pattern of overfitting, though one epoch on {len(set(val_cars))} cars cannot "
             "tell it from noise." if turned else "")
rank_words = ("ahead of every other run" if ranked[0] == HEADLINE else
              f"number {ranked.index(HEADLINE) + 1} of the {len(runs)} runs")
reading(f"""
**The headline scored {val_scores[HEADLINE].mean():.3f}, {rank_words} by mean Dice; its gap to the best other
run is {headline_gap.verdict}** ({headline_gap.short(named=True)}). {stand_in}
{best_text}{turn_text}

Of the images shown, {val_ids[worst]} scored lowest ({val_scores[HEADLINE][worst]:.3f}): look at where its errors
sit (a part of the body, the wheels, the shadow, the outline). {question}
""")

# %% [markdown]
# ## 9. What freezing saves: the time of a training step (core, ~3 min)
#
# The other reason to start frozen: no gradient flows through a frozen encoder, so a training step skips most of
# the backward pass. One epoch's time moves with whatever else the machine is doing, so we take the median of
# several single steps on the same batch (notebook 03's `time_train_step`, after a warm-up step, with `fit`'s
# precision and memory layout), in turns (frozen, unfrozen, unfrozen with BatchNorm frozen, then again): a busy
# moment then costs one step of one arm, which the median sets aside, not a whole arm's run.
#
# > **Predict first**: a backward pass costs about twice its forward pass, and a frozen encoder needs none at
# > all, so if the encoder does a share *e* of the forward work, a frozen step takes (3 − 2*e*)/3 of an unfrozen
# > one's time. Guess *e* for DenseNet121's encoder below: it holds most of the parameters, but the decoder works
# > at the larger resolutions, and work is not parameters. The reading turns the measured times into *e*.

# %% tags=["prediction"]
my_encoder_share = 0.6  # e, from 0 to 1, the encoder's share of the forward work (within 0.15 counts)

# %%
from unet_tutorial.measure import time_train_step
from unet_tutorial.precision import default_amp_dtype

timing_arms = {name: copy.deepcopy(staged_bn) for name in ("frozen", "unfrozen, BatchNorm trains",
                                                           "unfrozen, BatchNorm frozen")}
timing_arms["frozen"].freeze_encoder()
timing_arms["unfrozen, BatchNorm trains"].unfreeze_encoder()  # the third stays as staged_bn is
batch_images, batch_masks = (t.to(DEVICE) for t in next(iter(train_loader)))  # (B, 3, H, W), (B, 1, H, W)
share_said = Prediction("my_encoder_share", my_encoder_share, between=(0, 1))
step_seconds: dict[str, list[float]] = {name: [] for name in timing_arms}
for _ in range(TIMING_STEPS):  # in turns
    for name, arm in timing_arms.items():
        step_seconds[name].append(time_train_step(arm, batch_images, batch_masks, loss_fn, steps=1,
                                                  amp_dtype=default_amp_dtype(DEVICE), channels_last=ON_GPU))
if predicted(share_said):  # the answer waits for your prediction
    for name, values in step_seconds.items():
        print(f"{name:<28} median {np.median(values):.3f} s per step, from {min(values):.3f} to {max(values):.3f} s "
              f"over {len(values)} steps")
del timing_arms

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What freezing saved in this run
from unet_tutorial.course.predictions import Prediction, reading_after

frozen_step, trains_step, bn_step = (np.median(step_seconds[name]) for name in
                                     ("frozen", "unfrozen, BatchNorm trains", "unfrozen, BatchNorm frozen"))


def apart(a: str, b: str) -> tuple[str, str]:
    """Whether arm a's steps were "faster" or "slower" than arm b's, or "mixed", and how. The two are timed one after
    the other in each turn, so that a busy moment slows both; a verdict needs every turn to agree, or all but one
    of four or more when a's median step is beyond every one of b's (one busy turn cannot then turn it)."""
    pairs = list(zip(step_seconds[a], step_seconds[b]))
    n, faster_turns = len(pairs), sum(x < y for x, y in pairs)
    slower_turns = sum(x > y for x, y in pairs)
    if faster_turns == n:
        return "faster", "in every turn" if n > 1 else "in its one turn"
    if slower_turns == n:
        return "slower", "in every turn" if n > 1 else "in its one turn"
    if n >= 4 and faster_turns == n - 1 and np.median(step_seconds[a]) < min(step_seconds[b]):
        return "faster", (f"in {faster_turns} of {n} turns, and its median step below every one of the other's (one "
                          "slow turn, a busy moment, did not change that)")
    if n >= 4 and slower_turns == n - 1 and np.median(step_seconds[a]) > max(step_seconds[b]):
        return "slower", (f"in {slower_turns} of {n} turns, and its median step above every one of the other's (one "
                          "fast turn did not change that)")
    return "mixed", f"faster in {faster_turns} of {n} turns and slower in {slower_turns}"


freeze_order, freeze_how = apart("frozen", "unfrozen, BatchNorm trains")
if freeze_order == "faster":
    noise_text = (f"The frozen step was faster than the unfrozen one timed right after it {freeze_how}: a saving "
                  "larger than this machine's noise" + (" (one turn is thin evidence: raise `TIMING_STEPS`)."
                                                        if TIMING_STEPS < 3 else "."))
elif freeze_order == "slower":
    noise_text = (f"The frozen step was slower {freeze_how}, the opposite of what skipping the encoder's backward "
                  "pass should do: most likely something else was using this machine; run the cell again.")
else:
    noise_text = (f"The frozen step was {freeze_how}, so on this machine, now, the difference is within the noise: "
                  "run the cell again when the machine is less busy.")
bn_ratio = bn_step / trains_step
bn_order, bn_how = apart("unfrozen, BatchNorm frozen", "unfrozen, BatchNorm trains")
if bn_order == "mixed":
    bn_text = (f"{bn_how}, so this test cannot separate the two (a verdict needs every turn to agree, or all but one "
               "of four or more with the median beyond every step of the other arm): what BatchNorm in train mode "
               "adds, each batch's statistics and their gradients, is lost in the noise")
elif bn_order == "faster" and bn_ratio > 0.9:
    bn_text = (f"faster {bn_how}, but only a little: computing each batch's statistics and their gradients is "
               "a small part of a step here")
elif bn_order == "faster":
    bn_text = (f"faster {bn_how}, by a clear margin: on this machine each batch's statistics and their "
               "gradients are a real part of a step's work")
else:
    bn_text = (f"slower {bn_how}: on this machine, now, the eval-mode path took longer, which the arithmetic alone "
               f"would not predict; {TIMING_STEPS} steps are few, so run the cell again before reading more into it")
# Both unfrozen arms run the encoder's backward pass: the median of all their steps, so that one arm's busy
# moment does not set the arithmetic
unfrozen_step = np.median(step_seconds["unfrozen, BatchNorm trains"] + step_seconds["unfrozen, BatchNorm frozen"])
step_ratio = frozen_step / unfrozen_step
share = 1.5 * (1 - step_ratio)  # from step_ratio = (3 - 2e) / 3, the arithmetic of the prompt above
share_text = (f" The prompt's arithmetic, a frozen step taking (3 − 2*e*)/3 of an unfrozen one, turns the measured "
              f"{step_ratio:.0%} into *e* ≈ "
              f"{share:.2f}: the encoder did about {share:.0%} of the forward work, if a "
              "backward pass costs twice its forward pass (on a GPU, small layers and memory traffic bend that rule)."
              if freeze_order == "faster" and 1 / 3 < step_ratio < 1 else
              f" (The prompt's arithmetic would turn {step_ratio:.0%} into *e* ≈ {share:.2f}, but only for steps that "
              "separated.)" if 1 / 3 < step_ratio < 1 else "")
in_turns = freeze_how if freeze_how.startswith("in every") or "one turn" in freeze_how else "by its median step"
step_lead = {"faster": f"A frozen step took {step_ratio:.0%} of an unfrozen one's time.",
             "slower": "The frozen steps were slower: something else was using this machine.",
             "mixed": "Frozen and unfrozen steps did not separate on this machine, now."}[freeze_order]
busy = [f"one '{name}' step took {max(values):.3f} s, over twice that arm's median" for name, values in
        step_seconds.items() if max(values) > 2 * np.median(values)]
busy_text = (" Not every moment was quiet: " + "; ".join(busy) + " (something else ran then; the medians set such steps "
             "aside)." if busy else "")
share_judged = f"{share:.2f}" if share_text.startswith(" The prompt") else ""
reading_after([(share_said, share_judged, abs((my_encoder_share or 0) - share) <= 0.15)], f"""
**{step_lead}**

In this run a training step took a median {frozen_step:.3f} s with the encoder frozen, {trains_step:.3f} s unfrozen
with BatchNorm training and {bn_step:.3f} s with it frozen: a frozen step cost {step_ratio:.0%} of the median of all
the unfrozen steps ({unfrozen_step:.3f} s). {noise_text}{share_text}{busy_text}
""", more=f"""
Unfrozen with the encoder's BatchNorm frozen, a step took a median {bn_step:.3f} s ({bn_ratio:.0%} of the
BatchNorm-training step): {bn_text}. Compare the epoch times `fit` printed above only where they differ by far
more than they vary from one epoch to the next.
""")

# %% [markdown]
# ## Exercise 1: is `requires_grad_(False)` enough to freeze an encoder? (core, ~15 min)
#
# Many tutorials freeze an encoder with `model.encoder.requires_grad_(False)` alone. Find out what that leaves
# running, with an experiment (no optimizer, no training step):
# 1. write `running_mean_drift(model, batches)`: it puts the model in train mode as `fit` does, runs each batch of
#    images (a list of (B, 3, H, W) tensors) through it under `torch.no_grad()`, and returns the largest absolute
#    change of any `running_mean` of the encoder's BatchNorm layers (`model.encoder_batchnorms()` lists them).
#    Build a fresh model called `trial` on `DEVICE` with the encoder of section 7 (`set_seed(TRAIN_SEED)`, then
#    `pretrained_densenet()` from section 4: ImageNet's encoder, or offline the STAND-IN's), freeze its encoder
#    with `requires_grad_(False)` only, and measure `drift_grad_only` on three training batches, before any fix
#    (it must come out above 0);
# 2. fix it yourself, without the package's `freeze_encoder`: the encoder's BatchNorm layers must normalise with
#    their stored statistics and leave them as they are, as in eval mode, while the model (and so the decoder's
#    BatchNorm) is in train mode, even after another `trial.train()`. Measure again: `drift_fixed`. Attach the fix
#    to `trial` itself: `encode` runs the encoder's parts one by one, so `trial.encoder` as a whole never runs.
#
# The exercise cell starts you with three stubs: `encoder_running_means(model)` (every running mean of the encoder
# in one tensor), `running_mean_drift`, and `keep_encoder_statistics(module, inputs)`, one way to write the fix
# (its arguments are a hint). `check_frozen_batchnorm(running_mean_drift, trial)` checks your fixed model and runs
# your function on copies of it (one with your fix undone, one in eval mode, as validation leaves a model); on a
# miss it says what your function measured instead. One rule is yours to keep: no `freeze_encoder`.

# %% tags=["solution"]
# Hint: copy the running means (.clone()) before the batches and compare after. For the fix: in which mode
#   does BatchNorm update its statistics, what does model.train() do to every submodule, and which tool of
#   notebook 01 runs your code just before every forward pass (and must return None, or its value replaces the
#   inputs)?
import itertools


def encoder_running_means(model: DenseNetUNet) -> torch.Tensor:
    return torch.cat([norm.running_mean for norm in model.encoder_batchnorms()]).clone()  # (all channels,)


def running_mean_drift(model: DenseNetUNet, batches: list[torch.Tensor]) -> float:
    """The largest absolute change of any running_mean of the encoder's BatchNorm layers, after one forward pass
    of each batch of images (B, 3, H, W), moved to the model's device, in train mode, without gradients."""
    before = encoder_running_means(model)
    model.train()  # what fit does before every epoch
    with torch.no_grad():  # no gradients, no optimizer: only forward passes
        for images in batches:
            model(images.to(DEVICE))
    return (encoder_running_means(model) - before).abs().max().item()


# The fix: a forward pre-hook (notebook 01) runs before every forward pass, so after any model.train(); it puts
# the encoder's BatchNorm in eval mode (stored statistics, left alone) and returns None (the inputs unchanged).
# The package's freeze_encoder overrides train() instead.
def keep_encoder_statistics(module: DenseNetUNet, inputs: tuple) -> None:
    for norm in module.encoder_batchnorms():
        norm.eval()


batches = [images for images, _ in itertools.islice(train_loader, 3)]  # three training batches
set_seed(TRAIN_SEED)  # the encoder weights of section 7's model
trial = pretrained_densenet().to(DEVICE)
trial.encoder.requires_grad_(False)
drift_grad_only = running_mean_drift(trial, batches)
trial.register_forward_pre_hook(keep_encoder_statistics)
drift_fixed = running_mean_drift(trial, batches)
print(f"largest change of a running mean: requires_grad_(False) only {drift_grad_only:.4f}, fixed {drift_fixed}")

# %%
from unet_tutorial.course.exercises.transfer import check_frozen_batchnorm

check_frozen_batchnorm(running_mean_drift, trial)

# %% [markdown] tags=["answer"]
# Your `drift_grad_only` and the check's own batches tell the same story: with `requires_grad_(False)` alone a
# running mean moved in a few forward passes. No gradient, no optimizer, and the "frozen" encoder still changed
# what it hands the decoder. A BatchNorm layer updates its running statistics whenever it is in train mode,
# whatever `requires_grad` says, and `model.train()` puts every submodule in train mode. So the fix has to act
# after every `model.train()`: a forward pre-hook, as here, or an overridden `train()`, as the package's
# `freeze_encoder` does. Putting the whole model in eval mode would also stop the drift, but the decoder's
# BatchNorm would then stop normalising by the batch and stop updating its statistics too.
#
# Three sizes of the same drift appear in this notebook, and they need not agree: section 7's (after
# `DRIFT_BATCHES` batches of training images, on the model after its frozen phase), your `drift_grad_only` (three
# training batches, on a fresh model) and the check's (two batches of random noise, far from any image the
# statistics were measured on, but only two passes). Each running mean moves a tenth of the way towards the batch's
# mean per pass (BatchNorm's `momentum`), so the size grows with the passes and with how unlike the stored
# statistics the images are. What the three share is the point: none is 0.

# %% [markdown]
# ## Exercise 2: change one setting, predict, retrain (core, ~15 min)
#
# Section 7 unfroze the encoder at `LR_ENCODER`, ten times gentler than the decoder's `LR`, so that fine-tuning
# does not wash out what the pretrained encoder knows. Test that reason: change that one setting, keep everything
# else, and read two gaps with their noise, after the first unfrozen epoch (where washing out would show first)
# and at the end (after the decoder may have repaired it).
# 1. **Predict, before anything trains.** Choose `MY_LR_ENCODER`: `LR` (one rate for the whole model, as many
#    tutorials use), `LR * 10` or `LR_ENCODER / 10`. Write two predictions, each "higher", "lower" or "within the
#    noise" of the reference: `my_first_prediction` after the first unfrozen epoch, `my_prediction` at the end;
#    `my_reason`, one sentence; and `MY_BATCH_SEED`, `BATCH_SEED` (section 7's batches, no extra run) or, in a
#    class, your student number (below). `check_one_setting_prediction` records them.
# 2. **Retrain** a copy of the model after its frozen phase with `continue_after_frozen`, as section 7 did for its
#    BatchNorm-frozen copy, but at your rate, on `MY_BATCH_SEED`, with a folder name and phase label of your own
#    (one of section 7's folders would replace its run). Keep its history as `my_run`, its per-image scores as
#    `my_first_scores` (first unfrozen epoch) and `my_scores` (last), and build `my_first_gap` and `my_gap` with
#    `compare`: your copy first, the reference second (`reference_first`, `reference_scores`), counted over cars.
# 3. **Read them**: `my_first_verdict` and `my_verdict`, each "higher", "lower" or "within the noise". (A copy
#    behind after its first unfrozen epoch is not by itself proof of washing out: that epoch is also where the
#    new cycle's rate peaks, which makes any model noisier.)
#
# A rate too high to train stops `fit` with a `NonFiniteLossError`: a result too (try a rate between).

# %% tags=["solution"]
# Hint: five names. A rate is a positive number, not LR_ENCODER itself; each prediction is one of the three
#   phrases above; the reason is a sentence of your own; the batch order is BATCH_SEED or your student number.
MY_LR_ENCODER = LR  # one learning rate for the whole model
MY_BATCH_SEED = BATCH_SEED  # section 7's batches
my_first_prediction = "lower"
my_prediction = "within the noise"
my_reason = "at the decoder's rate the encoder's first steps are ten times as large, and the decoder can repair it"

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_prediction

check_one_setting_prediction(MY_LR_ENCODER, my_prediction, my_reason, LR_ENCODER, notebook="04",
                             my_first_prediction=my_first_prediction)

# %% [markdown]
# **The batch order.** With `MY_BATCH_SEED = BATCH_SEED` section 7's BatchNorm-frozen copy is the reference. With
# your student number the reference (section 7's recipe) trains again on your batches, one more run, so that
# neighbours on the same rate measure the gap on different batches. Smoke mode (the tests) takes this path.

# %%
if MODE == "smoke":  # the tests take the other path, a batch order of one's own
    MY_BATCH_SEED = BATCH_SEED + 1
if MY_BATCH_SEED == BATCH_SEED:
    reference_run = phases["BatchNorm frozen"]  # section 7's copy, on section 7's batches
else:  # section 7's BatchNorm-frozen copy again, on your batches
    _, reference_run = continue_after_frozen(f"unfrozen_bn_frozen_batches_{MY_BATCH_SEED}",
                                             "unfrozen, BatchNorm frozen", unfreeze=True, train_batchnorm=False,
                                             batch_seed=MY_BATCH_SEED)
reference_first = np.array(reference_run["val_dice_of_each_image"][0])  # (len(val_ids),) first unfrozen epoch
reference_scores = np.array(reference_run["val_dice_of_each_image"][-1])  # (len(val_ids),) at the end
print(f"batch order {MY_BATCH_SEED} ({'section 7' + chr(39) + 's' if MY_BATCH_SEED == BATCH_SEED else 'your own'}); "
      f"the reference's Dice after each unfrozen epoch: "
      + ", ".join(f"{d:.3f}" for d in reference_run["val_dice_per_image"]))

# %% [markdown]
# Now retrain: your copy, and its two gaps to the reference.

# %% tags=["solution"]
# Hint: continue_after_frozen(folder, phase, unfreeze=..., train_batchnorm=..., lr_encoder=..., batch_seed=...)
#   returns (model, history); history["val_dice_of_each_image"] holds one list of per-image scores per epoch: [0]
#   the first, [-1] the last. compare(name_a, scores_a, name_b, scores_b, groups=..., group_name=...) as in
#   section 7.
mine, my_run = continue_after_frozen(f"unfrozen_bn_frozen_lr_{MY_LR_ENCODER:g}", "my rate, BatchNorm frozen",
                                     unfreeze=True, train_batchnorm=False, lr_encoder=MY_LR_ENCODER,
                                     batch_seed=MY_BATCH_SEED)
my_first_scores = np.array(my_run["val_dice_of_each_image"][0])  # (len(val_ids),): after the first unfrozen epoch
my_scores = np.array(my_run["val_dice_of_each_image"][-1])  # (len(val_ids),): after the last epoch
my_first_gap = compare(f"encoder at {MY_LR_ENCODER:g}", my_first_scores, "section 7's BatchNorm-frozen copy",
                       reference_first, groups=val_cars, group_name="cars")
my_gap = compare(f"encoder at {MY_LR_ENCODER:g}", my_scores, "section 7's BatchNorm-frozen copy",
                 reference_scores, groups=val_cars, group_name="cars")

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_gap

others = {"the copy where BatchNorm trains": arm_scores["BatchNorm trains"], "the copy kept frozen": kept_scores,
          "the model after its frozen phase": frozen_scores}
later = EPOCHS - FROZEN_EPOCHS > 1  # with one unfrozen epoch the first is the last: no other epoch to mistake
check_one_setting_gap(my_first_gap, my_first_scores, reference_first, val_cars, notebook="04", epoch="first",
                      others={**others, **({"your copy's last epoch": my_scores,
                                            "section 7's copy at its last epoch": reference_scores} if later else {})})
check_one_setting_gap(my_gap, my_scores, reference_scores, val_cars, notebook="04",
                      others={**others, **({"your copy's first unfrozen epoch": my_first_scores} if later else {})})

# %% [markdown]
# Now read your gaps as the readings of this notebook do: a gap's sign says which copy scored higher on these
# cars; its size against the bar says whether that could be the noise of which cars were scored.

# %% tags=["solution"]
# Hint: each gap is your copy minus the reference. Is it more standard errors than the bar? .short() prints both.
my_first_verdict = ("within the noise" if not my_first_gap.clear else
                    "higher" if my_first_gap.difference > 0 else "lower")
my_verdict = ("within the noise" if not my_gap.clear else "higher" if my_gap.difference > 0 else "lower")

# %%
from unet_tutorial.course.exercises.one_setting import check_one_setting_verdict

check_one_setting_verdict(my_first_verdict, my_first_prediction, my_first_gap, notebook="04", epoch="first")
check_one_setting_verdict(my_verdict, my_prediction, my_gap, notebook="04", my_reason=my_reason)

# %% [markdown]
# Between the two gaps, the epochs: one mean Dice per epoch and copy, without a noise estimate (a picture, not a
# verdict).

# %%
yours_by_epoch = np.array(my_run["val_dice_per_image"])  # (EPOCHS - FROZEN_EPOCHS,): after each unfrozen epoch
theirs_by_epoch = np.array(reference_run["val_dice_per_image"])
print("unfrozen epoch:      ", ", ".join(f"{k:>5}" for k in range(1, len(yours_by_epoch) + 1)))
print("your copy:           ", ", ".join(f"{d:.3f}" for d in yours_by_epoch))
print("the reference:       ", ", ".join(f"{d:.3f}" for d in theirs_by_epoch))
print("yours - reference:   ", ", ".join(f"{d:+.3f}" for d in yours_by_epoch - theirs_by_epoch))
print(f"\nfor the class's tally (one line per student): TRAIN_SEED {TRAIN_SEED} | MY_BATCH_SEED {MY_BATCH_SEED} | "
      f"MY_LR_ENCODER {MY_LR_ENCODER:g} | predicted {my_first_prediction}, {my_prediction} | first unfrozen epoch: "
      f"{my_first_verdict}, {my_first_gap.short()} | end: {my_verdict}, {my_gap.short()}")

# %% [markdown] tags=["answer"]
# What your run can say: on these cars, with these batches, whether your encoder rate scored differently from the
# ten-times-gentler one right after unfreezing and at the end. A copy that falls behind beyond the noise after
# its first unfrozen epoch and is within it at the end looks like the washing out the gentle rate guards against,
# repaired by the epochs after; but that first epoch is also where the new cycle's rate peaks (section 7's lower
# panel), and a higher rate at its peak makes a noisier model whether or not features were lost. To tell the two
# apart, freeze your copy's encoder after that epoch and retrain the decoder alone: features that were lost stay
# lost, a noisy decoder recovers. What it cannot say: whether that holds on other batches (the class's tally: each
# `MY_BATCH_SEED` is one data point), on another `TRAIN_SEED`, or with the ImageNet weights, whose features are
# worth more to protect than the STAND-IN's. A gap within the noise is not "no effect": the check printed how large
# a measured gap must be to clear the bar with these cars. The gentler encoder rate comes from fine-tuning good
# pretrained features on few new images (ULMFiT's "discriminative fine-tuning",
# [Howard and Ruder, 2018](https://arxiv.org/abs/1801.06146)).

# %% [markdown]
# ## Summary (core, ~5 min)
#
# ### What your run showed
#
# Every gap the readings above measured, in one table, with its noise, its bar and its verdict; then what held,
# what this run could not decide, and how to find out which verdicts are training's own noise.

# %%
from unet_tutorial.course.reading import findings_table

findings = {
    f"{ENCODER_LABEL} - random encoder, after epoch 1, {pooled} (6)": head_over_seeds,
    f"{ENCODER_LABEL} - random encoder, at the end, {pooled} (6)": end_over_seeds,
    "random-encoder DenseNet - U-Net from scratch (6)": size_gap,
    "frozen model - its drifted copy (7)": drift,
    "after unfreezing - the copy kept frozen (7)": unfreeze_gap,
    "BatchNorm frozen - BatchNorm trains, first unfrozen epoch (7)": start,
    "BatchNorm frozen - BatchNorm trains, at the end (7)": bn_gap,
    "the recipe - the same encoder end to end (7)": end_gap,
}
if best_other not in (kept_name, end_to_end_name):  # against either, it is one of section 7's rows already
    findings["the headline - the best other run (8)"] = headline_gap
if "my_gap" in globals() and "my_first_gap" in globals():  # exercise 2, once solved
    findings[f"encoder at {MY_LR_ENCODER:g} - at {LR_ENCODER:g}, first unfrozen epoch (ex. 2)"] = my_first_gap
    findings[f"encoder at {MY_LR_ENCODER:g} - at {LR_ENCODER:g}, at the end (ex. 2)"] = my_gap
print(findings_table(findings))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What to take away from your run
held = [f"BatchNorm layers in train mode moved their running statistics (by up to {moved:.3f}) with no weight "
        "trained (section 7; exercise 1 shows `requires_grad_(False)` does not stop it)"]
if freeze_order == "faster":
    held.append(f"a frozen training step cost {step_ratio:.0%} of an unfrozen one, faster {in_turns} "
                "(section 9)")
for gaps, when in ((heads, "after the first epoch"), (ends, "at the end")):
    if held_in_every_seed(gaps, pretrained_name):
        held.append(f"the {ENCODER_LABEL} encoder was ahead of the random one {when}, beyond the noise "
                    + (f"in each of the {len(seed_runs)} seeds" if len(seed_runs) > 1 else
                       "in its one seed (`SEED_RUNS = 1`: training's own noise not measured)") + " (section 6)")
cleared = sum(gap.held for gap in findings.values())  # a pooled row counts where every seed cleared it
near_rows = [question.rsplit(" (", 1)[0] for question, gap in findings.items() if gap.near]
near_text = (f"; close to it: {'; '.join(near_rows)} (another run can land on the other side)" if near_rows else "")
rows_text = (f"The first two rows average {len(seed_runs)} seeds, which shrinks training's noise without counting "
             "it: step 4 above reads the seeds one by one. The others are" if len(seed_runs) > 1 else "Every row is")
# What to do: each step of the recipe with what this run showed about it, each read from its own gap
steps = [f"**Freeze first**: the frozen phase alone ({FROZEN_EPOCHS} epoch{'s' if FROZEN_EPOCHS > 1 else ''}, "
         f"decoder only) reached {frozen_scores.mean():.3f}, each step taking {step_ratio:.0%} of the "
         "time of an unfrozen one (section 9" + ("" if freeze_order == "faster" else ", where the step times did "
                                                  "not separate: a rough ratio") + ")."]
if unfreeze_gap.clear:
    steps.append("**Then unfreeze**: " + (f"it scored higher in this run than a copy kept frozen as long "
                 f"({unfreeze_gap.short(named=True)}" + (", close to the bar: another seed may not repeat it"
                                                         if unfreeze_gap.near else "") + ")."
                 if unfreeze_gap.leader == unfreeze_gap.name_a else
                 f"it cost Dice in this run, against a copy kept frozen as long ({unfreeze_gap.short(named=True)}): "
                 "with so few images, keep the encoder frozen or unfreeze later."))
else:
    steps.append(f"**Then unfreeze**: your run cannot tell whether it paid ({unfreeze_gap.short(named=True)}). The "
                 "recipe unfreezes because, given more images and epochs, the encoder adapts to the task: a practice "
                 "this run is too small to test.")
start_words_summary = ("right after unfreezing the BatchNorm-frozen copy was ahead, beyond the noise"
                       + (": the dip the practice warns about" if first_epoch["BatchNorm trains"] < last_frozen else
                          " (both rose from the frozen phase)")
                       if start.clear and start.leader == "BatchNorm frozen" else
                       "right after unfreezing the BatchNorm-training copy was ahead, beyond the noise"
                       if start.clear else "right after unfreezing the two copies could not be told apart")
end_words_summary = ("at the end the frozen one was ahead" if bn_gap.clear and bn_gap.leader == "BatchNorm frozen"
                     else "at the end the training one was ahead" if bn_gap.clear else
                     "at the end they could not be told apart")
bn_words = (f"{start_words_summary}; {end_words_summary}" if start.clear or bn_gap.clear else
            "the two copies could not be told apart, right after unfreezing or at the end")
bn_heading = (f"Keep the encoder's BatchNorm frozen at a batch of {BATCH_SIZE}" if bn_gap.clear
              and bn_gap.leader == "BatchNorm frozen" else
              f"The encoder's BatchNorm at a batch of {BATCH_SIZE}, frozen or training")  # a verdict only if the end shows one
drift_words = ("moved the Dice too, beyond the noise" if drift.clear else
               "did not move the Dice beyond the noise")
steps.append(f"**{bn_heading}**: {bn_words} ({bn_gap.short(named=True)}). The statistics drift with no weight "
             f"trained (section 7, exercise 1); in this run the drift {drift_words}.")
steps.append(f"**Pretraining**: {agreement(list(heads.values()))} after epoch 1; at the end, "
             f"{agreement(list(ends.values()))}.")
if "my_gap" in globals() and "my_first_gap" in globals():  # exercise 2, once solved
    steps.append(f"**Another encoder rate** (exercise 2): at {MY_LR_ENCODER:g} instead of {LR_ENCODER:g}, your copy "
                 + ("was" if my_first_gap.clear else "could not be told apart from the reference")
                 + (f" {'above' if my_first_gap.difference > 0 else 'below'} the reference, beyond the noise,"
                    if my_first_gap.clear else "") + " after the first unfrozen epoch, and "
                 + (f"{'above' if my_gap.difference > 0 else 'below'} it, beyond the noise, at the end"
                    if my_gap.clear else "within the noise of it at the end")
                 + f" ({my_gap.short()}): one batch order; the class's tally says more.")
stand_in_rows = ("" if PRETRAINED else " Every row with a pretrained encoder is about the STAND-IN; the last "
                 "section, \"Further: what to check with the real ImageNet weights\", lists what they would answer.")
reading(f"""
**This notebook's question was whether a pretrained encoder beats a random one.** In your run: {seeds_lead}

**What your run showed beyond its noise** (a fact measured directly, or a gap clear in every seed or every turn;
most of the table's rows are single runs read against a bar): {"; ".join(held)}.

**The recipe tested**: freeze first, then unfreeze with a gentler encoder rate and the encoder's BatchNorm frozen.
Each step, with what your run showed of it, is in the fold below.
""", more=f"""
**What to do, and what your run showed**:
{chr(10).join(f"{number}. {step}" for number, step in enumerate(steps, 1))}

**The table above**: {cleared} of its {len(findings)} rows cleared the bar (a row pooled over seeds only where
every seed cleared it){near_text}. {rows_text} one training run per arm (at most {EPOCHS} epochs on
{len(train_ids)} images; the drift row trains nothing), each row's noise counted over the {len(set(val_cars))}
cars; with {len(findings)} questions at a 95 % bar each, one may clear by chance.{stand_in_rows}

**To see which verdicts are training's own noise**, set `TRAIN_SEED` to another number and run again: the cars
and the split stay, the starting weights and the batches change{"" if PRETRAINED else
" (and the STAND-IN, pretrained from it)"}. A verdict that survives a few seeds is one to believe; in a class, give
every student their own and tally the table's verdicts.
""")

# %% [markdown]
# ### What this notebook taught
# The recipe and the tests it deserves; your run's readings above say which steps it bore out.
# - **Transfer learning** reuses an ImageNet classifier's convolutional layers as a U-Net encoder; only the decoder
#   starts from scratch, and the images are normalised as the weights expect (`normalization("imagenet")`).
# - **A fair comparison** (section 6) trains both encoders with the same learning rates, so that their gap
#   measures pretraining, and reads every gap against its noise, counted over cars; one run per arm leaves
#   training's own noise uncounted, so the central gap holds only if it is clear the same way in every seed.
#   Offline, a STAND-IN shows how pretraining works; only the ImageNet run measures what ImageNet is worth.
# - **Fine-tuning**: freeze the encoder, train the decoder, then unfreeze with a ~10x lower encoder rate
#   (exercise 2 tests that one setting). Whether unfreezing paid is read against a control kept frozen as long.
#   At a small batch the common practice is to keep the encoder's BatchNorm frozen
#   (`unfreeze_encoder(train_batchnorm=False)`); section 7's readings say whether your run bore it out.
# - **Freezing BatchNorm takes eval mode**, not `requires_grad_(False)` (exercise 1); a frozen step skips the
#   encoder's backward pass (section 9).
# - **The headline** is the run named before training, never the best of all runs on the validation set.

# %% [markdown]
# ## Exercise 3: channels of a DenseNet encoder (optional)
#
# After the summary, so that in the exercise version an unsolved one does not stop "Run all" before it.
#
# Write `densenet_stage_channels(block_config, growth_rate=32, num_init_features=64)`: the channels of every
# encoder stage of a DenseNet, as a list of `len(block_config) + 1` numbers. The first is the stem's output
# (`num_init_features`); then one number per dense block: the channels it hands on. Each dense block adds
# `growth_rate` channels per layer; each transition (after every block but the last) halves the channels before
# the next block. DenseNet121 is `block_config=(6, 12, 24, 16)` and gives `[64, 256, 512, 1024, 1024]`; the check
# also tries DenseNet169, DenseNet201 and two made-up DenseNets. On a miss it says what went wrong, not the
# expected list; `check_densenet_stage_channels(densenet_stage_channels, reveal=True)` shows that too.

# %% tags=["solution"]
# Hint: keep a running count: a block adds layers * growth_rate to it; what does a transition do to it?


def densenet_stage_channels(block_config: tuple[int, ...], growth_rate: int = 32,
                            num_init_features: int = 64) -> list[int]:
    """Channels after the stem and after each dense block of a DenseNet."""
    channels, stages = num_init_features, [num_init_features]
    for index, layers in enumerate(block_config):
        channels += layers * growth_rate
        stages.append(channels)
        if index < len(block_config) - 1:
            channels //= 2  # the transition
    return stages


# %%
from unet_tutorial.course.exercises.transfer import check_densenet_stage_channels

check_densenet_stage_channels(densenet_stage_channels)


# %% [markdown]
# ## Exercise 4: discriminative learning rates by hand (optional, ~10 min)
#
# Every DenseNet of this notebook trained with `model.param_groups(LR_ENCODER, LR)`: two parameter groups, so that
# the optimizer gives the encoder its gentler rate. Write that yourself, for any model with an `encoder` submodule:
# `encoder_decoder_groups(model, lr_encoder, lr_decoder)` returns
# `[{"name": "encoder", "params": [...], "lr": lr_encoder}, {"name": "decoder", "params": [...], "lr": lr_decoder}]`,
# the encoder's parameters in the first group and every other parameter of the model in the second, each exactly
# once. Two traps: a frozen encoder's parameters belong in their group too (they get no gradient, so the
# optimizer skips them until `unfreeze_encoder`; left out, they would never train), and a model's last layer need
# not sit inside `model.decoder`. The check tries a toy model with both traps, then a `DenseNetUNet` against its
# own `param_groups`, and names the parameters it finds missing, doubled or in the wrong group.

# %% tags=["solution"]
# Hint: model.encoder.parameters() is the first group; for the second, go through model.parameters() and keep those
#   that are not the encoder's (compare with `id(p)` or `is`: `==` on tensors compares their values).


def encoder_decoder_groups(model: torch.nn.Module, lr_encoder: float, lr_decoder: float) -> list[dict]:
    """Two parameter groups: the encoder's parameters (frozen ones too) at lr_encoder, all others at lr_decoder."""
    encoder = list(model.encoder.parameters())
    in_encoder = {id(p) for p in encoder}
    rest = [p for p in model.parameters() if id(p) not in in_encoder]
    return [{"name": "encoder", "params": encoder, "lr": lr_encoder},
            {"name": "decoder", "params": rest, "lr": lr_decoder}]


# %%
from unet_tutorial.course.exercises.param_groups import check_encoder_decoder_groups

check_encoder_decoder_groups(encoder_decoder_groups)
groups = encoder_decoder_groups(models[HEADLINE], LR_ENCODER, LR)
print({group["name"]: f"{sum(p.numel() for p in group['params']) / 1e6:.2f}M parameters at {group['lr']:g}"
       for group in groups})


# %% [markdown]
# ## Further: what to check with the real ImageNet weights (optional)
#
# > **With the real ImageNet weights, on Colab.** Where the readings above read the STAND-IN,
# > these questions are left open; only the real weights answer them. Open this notebook from its badge
# > (the weights download by themselves), set `DOWNLOAD = True` for the real photos, run it, and ask:
# > - section 6: does the ImageNet encoder score higher than the random one, clear in every seed? By more or by
# >   less than the STAND-IN did offline, and on the real photos than on the drawn cars (two runs
# >   on Colab: with and without `DOWNLOAD`; homework rather than lab time)?
# > - the Dice curves: does the ImageNet run reach the random run's last Dice in fewer epochs?
# > - section 5: at which stages does the ImageNet encoder's best channel tell car from background better than
# >   the random one's, and better than the STAND-IN's did?
# > - section 7: does the drift of the encoder's BatchNorm statistics change the ImageNet model's Dice more or
# >   less than it changed the STAND-IN's, beyond the noise, and does keeping BatchNorm frozen beat letting it train?
# > - section 8: where does the headline rank now, and do the worst car's errors sit in the same places?
# > - with another `TRAIN_SEED`: which of these answers stay the same?
