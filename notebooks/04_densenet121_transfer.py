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
# - how a DenseNet is built: dense blocks that concatenate, transitions that shrink, in a picture
# - how a U-Net decoder is put on top of it, shape by shape
# - what the encoder sees: its feature maps at each of its five stages, for one image
# - how much a pretrained encoder buys you: the from-scratch U-Net of notebook 03 against `DenseNetUNet` with a
#   random and with an ImageNet encoder, on the same data and budget (Dice, parameters, time, memory)
# - the fine-tuning recipe: freeze the encoder first, then unfreeze it with a lower learning rate
# - why BatchNorm can make the Dice dip right after unfreezing at a small batch, and how to keep it frozen
#
# **Runtime**: 2 minutes in full mode on an idle 2-core CPU (generated data, 3 epochs per run; measured), under a
# minute in smoke mode. On a Colab T4 with the real data the GPU recipe should take about 20 minutes for all
# runs, an estimate from the models' operation counts (no GPU was at hand to measure it); `fit` prints each
# epoch's time. On Colab the ImageNet weights (31 MB) download by themselves; **offline there
# are no ImageNet weights**: the notebook says so, leaves the ImageNet run out, and runs its recipe on a random
# encoder instead, labelled RANDOM wherever it appears.

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

# %%
# Settings: every knob of this notebook, smaller in smoke mode (tests and CI) and on a CPU.
# The values per mode live in unet_tutorial/recipes.py, where tests check that the GPU recipe fits a T4.

import torch

from unet_tutorial.recipes import describe, recipe, recipe_mode
from unet_tutorial.utils import pick_device, runs_root, set_seed, smoke_mode

SMOKE = smoke_mode()
DEVICE = pick_device()
ON_GPU = DEVICE.type == "cuda"
DOWNLOAD = False  # True: fetch the real data from Kaggle (or unpack it from Drive) in section 2's download cell;
# on Colab set it to True: the ImageNet-vs-random comparison is meant for the real photos
CACHE_ON_DRIVE = False  # Colab: the Kaggle archives and the run folders on your Google Drive, as in notebook 03
VAL_FRACTION = 0.15  # fraction of cars held out, as in notebook 03
SEED = 0
# smoke: a few batches of tiny images; cpu: a few cars at small size, so that three models train in minutes;
# gpu: 80 training cars at 320x480 for 8 epochs, so that all runs take about 20 minutes on a T4
RECIPE = recipe("04_densenet121_transfer", recipe_mode(DEVICE, SMOKE))
SAMPLE_CARS, SAMPLE_SIZE = RECIPE["sample_cars"], RECIPE["sample_size"]  # generated data: cars (x16), (H, W)
IMAGE_SIZE, TRAIN_IMAGES, VAL_IMAGES = RECIPE["image_size"], RECIPE["train_images"], RECIPE["val_images"]
BATCH_SIZE, EPOCHS = RECIPE["batch_size"], RECIPE["epochs"]
FROZEN_EPOCHS = RECIPE["frozen_epochs"]  # the freeze-then-unfreeze run: epochs with a frozen encoder (section 7)
LR = 1e-3  # the decoder of every DenseNet, and the from-scratch U-Net
LR_ENCODER = 1e-4  # every DenseNet's encoder, random or ImageNet: ten times gentler, so that fine-tuning does
# not wash out what a pretrained encoder knows; the same for both, so that the gap between them is ImageNet's
UNET_BASE_CHANNELS = RECIPE["unet_base_channels"]  # the from-scratch U-Net: notebook 03's width in each mode
WEIGHTS = None if SMOKE else "imagenet"  # the pretrained encoder; smoke mode never loads (or downloads) it
NUM_WORKERS = RECIPE["num_workers"]  # on a CPU, loader processes would only take cores from the training
# GPU: one checkpoint folder per run; a run finished before (a Colab reconnect) is loaded, not retrained.
# With CACHE_ON_DRIVE on Colab they go to Google Drive (mounted here), so that also holds on a new VM.
RUN_DIR = runs_root(on_drive=CACHE_ON_DRIVE) / "04_densenet" if ON_GPU and not SMOKE else None
set_seed(SEED)
print(describe(RECIPE))
print(f"smoke mode: {SMOKE}, device: {DEVICE}, image size (H, W): {IMAGE_SIZE}, batch: {BATCH_SIZE}, "
      f"epochs: {EPOCHS}, weights: {WEIGHTS}, checkpoints: {RUN_DIR}")

# %% [markdown]
# ## 1. Transfer learning in one paragraph
#
# A segmentation model has to learn two things: *what is in the picture* (edges, textures, wheels, windows, "this
# is a car") and *where exactly its outline runs*. The first part is the same for almost every vision task, and it
# is what an image classifier trained on **ImageNet** (1.28 million photos, 1,000 classes) has already learned in
# its convolutional layers. **Transfer learning** reuses those layers: we take the classifier, cut off its last
# layer (the one that picks one of the 1,000 classes), use the rest as the **encoder** of a U-Net (the left side
# of the U in notebook 01), and train what is new, the decoder, from scratch.
#
# Why this helps segmentation in particular:
# - masks are expensive, so segmentation sets are small (Carvana: 318 cars; medical sets: a few dozen scans);
#   ImageNet supplies the millions of examples that the early layers need;
# - the first layers' filters (edges, colour blobs, textures) are generic, so they transfer to any photo;
# - the model starts from features that already separate objects from background, so it usually reaches a good
#   Dice in fewer epochs, which is also less compute.
#
# The price: the images must be normalised the way the ImageNet images were when the weights were trained (the
# per-channel mean and standard deviation you met in notebook 03), and the encoder is large (DenseNet121 has
# about 7 million parameters in its convolutional part, about as many as notebook 03's GPU U-Net, three and a half
# times its CPU one).

# %% [markdown]
# ## 2. The data: notebook 03's Carvana set
#
# The same data as notebook 03: the real Carvana photos when they are on disk, otherwise the generated
# Carvana-like cars (with a notice saying so), split by car.
#
# **On a new Colab VM** (this notebook opened from its badge) the photos notebook 03 downloaded are gone with
# the old VM. If you kept the archives on Google Drive there (`CACHE_ON_DRIVE = True`), set `DOWNLOAD = True` and
# `CACHE_ON_DRIVE = True` in the settings and run the next cell: it unpacks them from Drive, with no download and
# no Kaggle token. Otherwise the same cell downloads them, as notebook 03 explains in its section 1 (token, rules
# accepted). Tests and CI never run it (tag `skip-execution`), and it does nothing unless you asked.

# %% tags=["skip-execution"]
# Download the real data, or unpack the archives kept on Drive: only when DOWNLOAD = True (never in smoke mode).
if DOWNLOAD and not SMOKE:
    from unet_tutorial.course.download import fetch_carvana
    from unet_tutorial.utils import data_root, drive_root, in_colab

    # notebook 03's folder on Drive: zips found there are unpacked, the missing ones downloaded and kept there
    archives = drive_root() / "carvana" if CACHE_ON_DRIVE and in_colab() else None
    fetch_carvana(data_root() / "carvana", archives=archives)  # what is already unpacked and complete is skipped

# %% [markdown]
# `carvana_data()` returns the real data's folder when it is on disk, else generates the drawn cars and says so
# loudly. `carvana_loaders` builds the two loaders exactly as notebook 03 did by hand (augmented training
# batches, resized-only validation batches). The normalisation comes from the weights: `normalization("imagenet")`
# reads the mean and std off torchvision's entry for them.

# %%
from unet_tutorial.course.sample_data import carvana_data
from unet_tutorial.data import carvana_split
from unet_tutorial.densenet_unet import normalization
from unet_tutorial.loaders import carvana_loaders

root, is_real = carvana_data(n_cars=SAMPLE_CARS, size=SAMPLE_SIZE, seed=SEED)
train_ids, val_ids = carvana_split(root, val_fraction=VAL_FRACTION, seed=SEED)
train_ids, val_ids = train_ids[:TRAIN_IMAGES], val_ids[:VAL_IMAGES]  # ids are sorted by car: whole cars
NORM = normalization("imagenet")  # {"mean": (r, g, b), "std": (r, g, b)}
train_loader, val_loader = carvana_loaders(root, train_ids, val_ids, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
                                           **NORM, num_workers=NUM_WORKERS, pin_memory=ON_GPU)
images, masks = next(iter(val_loader))
print(f"{'real' if is_real else 'generated'} data in {root}")
print(f"train: {len(train_ids)} images, val: {len(val_ids)} images; normalisation {NORM}")
print(f"a validation batch: images {tuple(images.shape)} {images.dtype}, masks {tuple(masks.shape)} {masks.dtype}")

# %% [markdown]
# ## 3. DenseNet121 in pictures
#
# A DenseNet ([Huang et al., 2017](https://arxiv.org/abs/1608.06993)) is built from **dense blocks**. Inside a
# block every layer (BatchNorm, ReLU, 1x1 conv to 128 channels, BatchNorm, ReLU, 3x3 conv) adds
# `growth_rate = 32` new channels, and its input is the **concatenation of everything before it**: the block's
# input and the output of every earlier layer. Features are reused instead of recomputed, which keeps each layer
# thin. Between blocks, a **transition** (1x1 conv that halves the channels, 2x2 average pool that halves H and W)
# keeps the growth in check. DenseNet121 has four dense blocks of 6, 12, 24 and 16 layers.
#
# `DenseNetUNet` (in `unet_tutorial/densenet_unet.py`) uses torchvision's `densenet121().features` as its encoder,
# plus the final ReLU that torchvision applies in its `forward`. We build one with random weights, which is enough to read the architecture, and count the channels in
# the first dense block: each layer's BatchNorm tells how many channels come in.

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
# (stride 2, 4, 8, 16 and 32: one feature-map pixel per 2, 4, ... 32 image pixels). Those five outputs are the
# U-Net's skips. As in notebook 01, the model first pads the image so that its sides are a multiple of the
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
# up-sample returns to the input size and a 1x1 conv gives one logit per pixel. Here are those steps by hand,
# checked against the model's own `forward`:

# %%
with torch.no_grad():
    *skips, x = stage_features  # x: stage 5, the bottom of the U
    for up, merge, skip in zip(model.ups, model.merges, reversed(skips)):
        x = up(x)  # (1, C, 2h, 2w)
        print(f"up-sampled {tuple(x.shape)} + skip {tuple(skip.shape)}", end=" -> ")
        x = merge(x, skip)  # concatenate on channels, then 1x1 and 3x3 convs
        print(f"merged {tuple(x.shape)}")
    logits = model.head(model.final_up(x))  # (1, 1, H', W')
    height, width = images.shape[-2:]
    top, left = (padded.shape[-2] - height) // 2, (padded.shape[-1] - width) // 2
    logits = logits[..., top:top + height, left:left + width]  # crop the padding away: (1, 1, H, W)
    torch.testing.assert_close(logits, model(images[:1]))
print(f"logits {tuple(logits.shape)}: the same as model(images[:1])")

encoder_params = sum(p.numel() for p in model.encoder.parameters())
decoder_params = sum(p.numel() for p in model.decoder_parameters())
print(f"encoder {encoder_params / 1e6:.2f} M parameters, decoder {decoder_params / 1e6:.2f} M")

# %% [markdown]
# ## 4. Loading the ImageNet weights
#
# `DenseNetUNet(weights="imagenet")` asks torchvision for the weights. They are cached in
# `~/.cache/torch/hub/checkpoints` (or `$TORCH_HOME/hub/checkpoints`) after the first download, so this works offline once they are there. When they
# can be neither found nor downloaded, the model raises `PretrainedWeightsUnavailable` (its message says where to
# put the file) instead of silently training a random encoder that you would believe to be pretrained. We catch
# it, say so, and skip the ImageNet part of the comparison.

# %%
from unet_tutorial.densenet_unet import PretrainedWeightsUnavailable

pretrained_model = None
if WEIGHTS is None:
    print("Smoke mode: the ImageNet weights are not loaded (weights=None), so the ImageNet model is skipped.")
else:
    try:
        pretrained_model = DenseNetUNet(num_classes=1, weights=WEIGHTS)
        print(f"Loaded the ImageNet weights {pretrained_model.weights}")
    except PretrainedWeightsUnavailable as error:
        line = "=" * 100
        print(f"{line}\nNOTICE: the ImageNet weights are NOT available here, so the ImageNet model is left out\n"
              f"and the freeze-then-unfreeze recipe (the headline) runs on a RANDOM encoder instead.\n{error}\n"
              f"On Colab (or any machine with internet) they download by themselves.\n{line}")
PRETRAINED = pretrained_model is not None

# %% [markdown]
# ## 5. What the encoder sees
#
# One validation image through the encoder: for each stage, the eight channels with the largest mean activation.
# Early stages are sharp and local (with ImageNet weights: edges, colour); later ones are coarse (1/32 of the image) and abstract. With
# ImageNet weights you should see the car's outline and parts light up; a random encoder's maps are mostly
# blurred copies of the image, though even they pick out a car on a plain studio background, one reason the
# random encoder does not do badly on these cars. (At the CPU recipe's width of 144, the dark bands at the
# sides are the padding up to 160, a multiple of 32; at the GPU's 320 x 480 there is none.) The drawing code is plain matplotlib; what matters is the picture.

# %%
from unet_tutorial.viz import denormalize


def plot_stage_features(model: DenseNetUNet, image: torch.Tensor, title: str, channels: int = 8) -> None:
    """One row per encoder stage: the image, then the ``channels`` most active feature maps of that stage."""
    padded, _ = pad_to_multiple(image[None], 32)  # (1, 3, H', W')
    with torch.no_grad():
        features = model.eval().encode(padded.to(next(model.parameters()).device))  # five (1, C, h, w)
    fig, axes = plt.subplots(len(features), channels + 1, figsize=(1.3 * (channels + 1), 1.2 * len(features)))
    for row, maps in zip(axes, features):
        maps = maps[0].float().cpu()  # (C, h, w)
        row[0].imshow(denormalize(image, **NORM))
        row[0].set_ylabel(f"{maps.shape[0]} ch\n{maps.shape[1]}x{maps.shape[2]}", fontsize=7)
        for ax, channel in zip(row[1:], maps.mean(dim=(1, 2)).argsort(descending=True)[:channels].tolist()):
            ax.imshow(maps[channel], cmap="magma")
            ax.set_title(f"#{channel}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.show()


plot_stage_features(pretrained_model if PRETRAINED else model, images[0],
                    "ImageNet encoder" if PRETRAINED else "RANDOM encoder (ImageNet weights not available here)")
if PRETRAINED:  # the contrast is the lesson: section 3's random encoder on the same image
    plot_stage_features(model, images[0], "RANDOM encoder, for comparison")

# %% [markdown]
# ## 6. The comparison
#
# Three models, the same data, the same epochs, the same loss (BCE + Dice) and learning-rate schedule (one-cycle:
# warm up, then anneal; each parameter group peaks at its own learning rate), as in notebook 03:
# 1. **from scratch**: notebook 01's `UNet`, every weight random, learning rate `LR`;
# 2. **DenseNet, random encoder**: `DenseNetUNet(weights=None)`, the same architecture as 3 with nothing
#    transferred;
# 3. **DenseNet, ImageNet encoder** (when the weights are available).
#
# On Colab the ImageNet weights download by themselves, but the Carvana photos only when you ask (`DOWNLOAD =
# True` in the settings and section 2's download cell): on the drawn cars the gap between 2 and 3 says little about
# real photos.
#
# Both DenseNets train with the same two learning rates: the encoder at `LR_ENCODER`, ten times lower than the
# decoder's `LR`. One learning rate per part of the model is called *discriminative learning rates*;
# `model.param_groups(lr_encoder, lr_decoder)` hands the optimizer two groups named "encoder" and "decoder", and
# `fit` prints each group's learning rate. With everything else equal, the gap between 2 and 3 is what ImageNet
# pretraining is worth here, under this recipe: a random encoder at the low fine-tuning rate `LR_ENCODER` is held
# back, so the gap is, if anything, an upper bound.
#
# **The headline result, fixed before any training**: the recipe this notebook teaches in section 7, the ImageNet
# encoder frozen for `FROZEN_EPOCHS` epochs, then unfrozen with its BatchNorm kept frozen. Where the ImageNet
# weights are not available (offline, and in smoke mode), the same recipe on a random encoder stands in, and the
# headline says so: in the tables, "RANDOM" (capitals) marks that stand-in for the ImageNet recipe, while "random
# encoder" is run 2; both are built right after the same `set_seed`, so they start from the same weights. We do not report "the best of all runs on
# validation": the same images would choose the run
# and score it, which flatters it, and the winner could be a run that the lesson advises against.
#
# For each run we record the learning curves, the final validation Dice, the parameter count, the time per epoch
# and, on CUDA, the peak GPU memory. `fit` is notebook 03's training loop.

# %%
ENCODER_LABEL = "ImageNet" if PRETRAINED else "RANDOM"  # the encoder of section 7's recipe
HEADLINE = f"DenseNet, {ENCODER_LABEL} encoder, frozen then unfrozen, BatchNorm frozen"
print(f"headline run: {HEADLINE}" + ("" if PRETRAINED else
                                      "\n  (a STAND-IN: no ImageNet weights here, so the recipe runs on a random encoder)"))

# %%
from unet_tutorial.checkpoint import load_checkpoint, read_checkpoint
from unet_tutorial.losses import ComboLoss
from unet_tutorial.model import UNet
from unet_tutorial.train import fit

loss_fn = ComboLoss({"cross_entropy": 1, "dice": 1})


def train_run(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int, folder: str) -> dict:
    """Train with ``fit`` and return its history plus parameters, seconds per epoch and peak GPU memory.

    With ``RUN_DIR`` set (GPU), checkpoints go to ``RUN_DIR / folder``: a finished run there with the same
    settings is loaded instead of trained (its GPU memory is then not measured), an unfinished one resumes.
    """
    model.to(DEVICE)
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    run_dir = RUN_DIR / folder if RUN_DIR is not None else None
    config = {"image_size": list(IMAGE_SIZE), "train_images": len(train_ids), "batch_size": BATCH_SIZE,
              "epochs": epochs, "data": str(root)}
    last = run_dir / "last.pt" if run_dir is not None else None
    saved = read_checkpoint(last) if last is not None and last.exists() else None
    if saved is not None and saved.get("config") != config:
        print(f"{last} was trained with other settings: training from scratch")
        saved = None
    if saved is not None and saved["epoch"] >= epochs:
        print(f"loading the finished run in {run_dir} (delete that folder to train again)")
        load_checkpoint(last, model, optimizer, map_location=DEVICE)
        history, measured = saved["history"], False
    else:
        history = fit(model, train_loader, val_loader, epochs=epochs, loss_fn=loss_fn, optimizer=optimizer,
                      device=DEVICE, num_classes=1, scheduler="onecycle", checkpoint_dir=run_dir,
                      resume=last if saved is not None else None, config=config)
        measured = True
    history["params"] = sum(p.numel() for p in model.parameters())
    history["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    history["gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if ON_GPU and measured else None
    return history


runs: dict[str, dict] = {}  # run name -> history and measurements
models: dict[str, torch.nn.Module] = {}  # run name -> the trained model
set_seed(SEED)
models["U-Net from scratch"] = scratch = UNet(num_classes=1, base_channels=UNET_BASE_CHANNELS)
runs["U-Net from scratch"] = train_run(scratch, torch.optim.AdamW(scratch.parameters(), lr=LR), EPOCHS,
                                     "unet_scratch")

# %%
set_seed(SEED)
models["DenseNet, random encoder"] = random_dn = DenseNetUNet(num_classes=1, weights=None)
optimizer = torch.optim.AdamW(random_dn.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
print({group["name"]: group["lr"] for group in optimizer.param_groups})  # the two groups and their learning rates
runs["DenseNet, random encoder"] = train_run(random_dn, optimizer, EPOCHS, "densenet_random")

# %%
if PRETRAINED:
    set_seed(SEED)
    models["DenseNet, ImageNet encoder"] = imagenet_dn = DenseNetUNet(num_classes=1, weights=WEIGHTS)
    optimizer = torch.optim.AdamW(imagenet_dn.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
    runs["DenseNet, ImageNet encoder"] = train_run(imagenet_dn, optimizer, EPOCHS, "densenet_imagenet")
else:
    print("Skipped: DenseNet with an ImageNet encoder (the weights are not available here; see the notice above).")

# %% [markdown]
# ### Results
#
# Solid lines are validation, dashed lines training. Time per epoch counts training only (not evaluation).

# %%
from unet_tutorial.viz import plot_history


def summary_table(runs: dict[str, dict]) -> None:
    """One line per run: final validation Dice, parameters, seconds per training epoch, peak GPU memory."""
    print(f"{'run':<66} {'val Dice':>9} {'params':>9} {'trainable':>10} {'s/epoch':>8} {'GPU memory':>11}")
    for name, run in runs.items():
        memory = "n/a" if run["gpu_memory_gb"] is None else f"{run['gpu_memory_gb']:.2f} GB"
        print(f"{name:<66} {run['val_dice_per_image'][-1]:>9.4f} {run['params'] / 1e6:>8.2f}M "
              f"{run['trainable'] / 1e6:>9.2f}M {np.mean(run['seconds']):>8.1f} {memory:>11}")


summary_table(runs)
if PRETRAINED:  # the number section 6 is about
    gap = (runs["DenseNet, ImageNet encoder"]["val_dice_per_image"][-1]
           - runs["DenseNet, random encoder"]["val_dice_per_image"][-1])
    print(f"what ImageNet was worth here: {gap:+.4f} Dice (ImageNet minus random encoder, the same recipe)")
plot_history({name: {k: run[k] for k in ("train_loss", "val_loss", "val_dice_per_image")} for name, run in runs.items()})

# %% [markdown]
# How to read it:
# - the two DenseNets have the same architecture, parameter count and learning rates, so the gap between them
#   is what ImageNet pretraining is worth on this data and budget (when the weights were available);
# - the random-encoder DenseNet against the from-scratch U-Net: more parameters and more seconds per epoch are not
#   knowledge, and on a small budget the bigger random model need not win. In our offline CPU run (3 epochs) the
#   U-Net reached 0.912 at about 3 s per epoch, the random-encoder DenseNet 0.900 at about 10 s: more than five
#   times the parameters (on a GPU, where the U-Net is wider, about one and a half times), no better;
# - loss and Dice can disagree: there the U-Net's validation loss stayed far above the DenseNet's (0.86 against
#   0.20) while its Dice was higher. They measure different things: the loss scores the probabilities
#   themselves, the Dice only which side of the 0.5 threshold they fall on;
# - the generated cars are simpler than real photos and look nothing like ImageNet's, so the gap you see on them
#   says little about the real Carvana photos: every number here is about the data named in the data cell.

# %% [markdown]
# ## 7. Freeze first, then unfreeze
#
# The fine-tuning recipe for a pretrained encoder:
# 1. **freeze** the encoder (`model.freeze_encoder()`: no gradients, and BatchNorm keeps the running mean and
#    variance it learned on ImageNet instead of updating them) and train only the random decoder for a few epochs.
#    Its first, large and noisy gradients then cannot damage the pretrained features, and each epoch is cheaper:
#    no gradients through the encoder;
# 2. **unfreeze** (`model.unfreeze_encoder()`) and train everything, the encoder at `LR_ENCODER`, ten times lower
#    than the decoder's `LR`, so that it adapts without forgetting.
#
# Unfreezing has a catch. A BatchNorm layer normalises with the statistics of the *current batch* while it trains,
# and with its stored running statistics in eval mode (validation). Frozen, the encoder always used the stored
# ones, and the decoder learned to read features normalised that way. Unfrozen in train mode, it normalises with
# the mean and variance of one batch (`BATCH_SIZE` images: 4 on a CPU, 16 in the GPU recipe), which are noisy,
# and it pulls its running statistics towards them at every step. The features the decoder reads change under
# its feet, in training and in validation alike. The common practice at small batches (below about 16 per GPU)
# is to keep the encoder's BatchNorm frozen after unfreezing: its weights train, its statistics stay. (At 16 the
# batch statistics are steadier and the effect smaller: the two copies may tie. To make it more likely to show
# on a GPU, add `BATCH_SIZE = 4` right after the settings line that sets it, and rerun from section 2.) `model.unfreeze_encoder(train_batchnorm=False)` does that;
# the layers stay in eval mode even when `fit` calls `model.train()`.
#
# We train the frozen phase once, then unfreeze two copies of that model both ways, with the same optimizer state
# and the same batches. The optimizer holds both parameter groups from the start: frozen parameters get no
# gradient, so it skips them until they are unfrozen. Each phase gets its own one-cycle schedule. Without the
# ImageNet weights this runs, clearly labelled, on a random encoder.

# %%
import copy

set_seed(SEED)
staged = DenseNetUNet(num_classes=1, weights=WEIGHTS if PRETRAINED else None)
optimizer = torch.optim.AdamW(staged.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
staged.freeze_encoder()
frozen = train_run(staged, optimizer, FROZEN_EPOCHS, f"staged_{ENCODER_LABEL.lower()}_frozen")
print(f"frozen: {frozen['trainable'] / 1e6:.2f}M of {frozen['params'] / 1e6:.2f}M parameters train")

# %% [markdown]
# The catch, in one experiment and without any training: a copy of the frozen model whose encoder BatchNorm
# layers, and only those, run in train mode for 20 batches of 4 under `torch.no_grad()` (no gradient, no
# optimizer step: only the running statistics move, as they would in the first steps after a plain
# unfreezing). Then we validate the copy.

# %%
import itertools

from unet_tutorial.train import evaluate

drifted = copy.deepcopy(staged).eval()  # the decoder's BatchNorm stays as it is
for norm in drifted.encoder_batchnorms():
    norm.train()  # normalise with each batch's statistics, and pull the running ones towards them
with torch.no_grad():
    for batch_images, _ in itertools.islice(itertools.cycle(train_loader), 20):
        drifted(batch_images[:4].to(DEVICE))  # batches of 4, in every mode
drifted_dice = evaluate(drifted, val_loader, DEVICE, num_classes=1, progress=False)["dice_per_image"]
print(f"validation Dice after the frozen phase {frozen['val_dice_per_image'][-1]:.4f}; after 20 forward passes "
      f"with the encoder's BatchNorm in train mode: {drifted_dice:.4f} (the weights did not change)")

# %% [markdown]
# In our offline run the Dice fell from 0.907 to 0.658 and not one weight changed: the decoder had learned to
# read features normalised with the stored statistics, and 20 batches of 4 replaced them with different ones,
# measured on this data.
# (The RANDOM stand-in's stored statistics are still the initial mean 0 and variance 1, so they move a lot;
# ImageNet's, measured on real photos, may move less, but the decoder's input changes all the same.) Training
# after a plain unfreezing has to repair this while it learns; keeping the encoder's BatchNorm frozen avoids
# it. Below, both ways, trained.

# %%
# Two copies of the model after its frozen phase, with the same optimizer state, unfrozen two ways
staged_bn = copy.deepcopy(staged)
optimizer_bn = torch.optim.AdamW(staged_bn.param_groups(lr_encoder=LR_ENCODER, lr_decoder=LR))
optimizer_bn.load_state_dict(optimizer.state_dict())
staged.unfreeze_encoder()  # BatchNorm trains: each batch's statistics, and running ones that move
staged_bn.unfreeze_encoder(train_batchnorm=False)  # BatchNorm keeps the running statistics it has
set_seed(SEED + 1)  # the same batches for both
phases = {"BatchNorm trains": train_run(staged, optimizer, EPOCHS - FROZEN_EPOCHS,
                                        f"staged_{ENCODER_LABEL.lower()}_unfrozen")}
set_seed(SEED + 1)
phases["BatchNorm frozen"] = train_run(staged_bn, optimizer_bn, EPOCHS - FROZEN_EPOCHS,
                                       f"staged_{ENCODER_LABEL.lower()}_unfrozen_bn_frozen")
encoder_group, decoder_group = optimizer.param_groups  # one-cycle peaks at each group's "max_lr"
print(f"unfrozen: {phases['BatchNorm trains']['trainable'] / 1e6:.2f}M parameters train; peak learning rates: "
      f"{encoder_group['name']} {encoder_group['max_lr']:.0e}, {decoder_group['name']} {decoder_group['max_lr']:.0e}")

# %% [markdown]
# The effect, against the same encoder trained end to end from the first epoch (the dotted line marks the
# unfreezing), and what each phase cost:

# %%
end_to_end_name = f"DenseNet, {'ImageNet' if PRETRAINED else 'random'} encoder"
end_to_end = runs[end_to_end_name]
staged_names = {name: f"DenseNet, {ENCODER_LABEL} encoder, frozen then unfrozen, {name}" for name in phases}
for name, phase in phases.items():
    runs[staged_names[name]] = {**{key: frozen[key] + phase[key] for key in ("train_loss", "val_loss", "val_dice_per_image",
                                                                            "seconds")},
                                "params": phase["params"], "trainable": phase["trainable"],
                                "gpu_memory_gb": phase["gpu_memory_gb"]}
models[staged_names["BatchNorm trains"]], models[staged_names["BatchNorm frozen"]] = staged, staged_bn

fig, (ax_dice, ax_time) = plt.subplots(1, 2, figsize=(11, 3.4))
epochs = np.arange(1, EPOCHS + 1)
ax_dice.plot(epochs, end_to_end["val_dice_per_image"], "o-", label=f"{end_to_end_name}, all layers from epoch 1")
for name in phases:
    ax_dice.plot(epochs, runs[staged_names[name]]["val_dice_per_image"], "o-", label=f"frozen, then unfrozen: {name}")
ax_dice.axvline(FROZEN_EPOCHS + 0.5, color="grey", linestyle=":")
ax_dice.set(xlabel="epoch", ylabel="validation Dice", title=f"{ENCODER_LABEL} encoder: Dice", xticks=epochs)
ax_dice.legend(fontsize=8)
ax_time.bar(["frozen", "unfrozen,\nBN trains", "unfrozen,\nBN frozen", "end to end"],
            [np.mean(frozen["seconds"])] + [np.mean(phase["seconds"]) for phase in phases.values()]
            + [np.mean(end_to_end["seconds"])], color=["tab:blue", "tab:orange", "tab:green", "tab:grey"])
ax_time.set(ylabel="seconds per training epoch", title="Time per epoch")
fig.tight_layout()
plt.show()

summary_table({end_to_end_name: end_to_end, **{staged_names[name]: runs[staged_names[name]] for name in phases},
               f"  the frozen phase (epoch{'s 1-' if FROZEN_EPOCHS > 1 else ' '}{FROZEN_EPOCHS})": frozen,
               **{f"  the unfrozen phase, {name} (epochs {FROZEN_EPOCHS + 1}-{EPOCHS})": phase
                  for name, phase in phases.items()}})
last_frozen = frozen["val_dice_per_image"][-1]
for name, phase in phases.items():  # the dip, if any: the first unfrozen epoch against the last frozen one
    first = phase["val_dice_per_image"][0]
    print(f"{name}: first epoch after unfreezing {first:.4f}, {first - last_frozen:+.4f} against the last frozen epoch")

# %% [markdown]
# How to read it. With the ImageNet encoder (on Colab), look at the first epoch after the dotted line: with
# BatchNorm training on small batches, its Dice can fall below the last frozen epoch's while the noisy batch
# statistics replace ImageNet's; with BatchNorm frozen it should not. Then compare both copies with the encoder
# trained end to end from epoch 1. The time panel shows the other reason to start frozen: no gradients
# flow through the encoder, so a frozen epoch costs roughly half to two thirds of an unfrozen one.
#
# Our offline CPU run (generated cars, the RANDOM stand-in encoder, 3 epochs of 96 images) could not test this:
# - the frozen epoch reached 0.907; the first epoch after unfreezing raised both copies to about 0.94, and the
#   last one lowered both (0.913 with BatchNorm training, 0.889 with it frozen) while their training loss kept
#   falling. With 64 validation images of 4 cars, one epoch's Dice moves by a few hundredths: neither the
#   ordering of the two copies nor the last epoch's drop is evidence;
# - a random encoder's running statistics are still their initial values (mean 0, variance 1), so "BatchNorm
#   frozen" keeps statistics that describe nothing, where an ImageNet encoder keeps ones measured on 1.28
#   million photos;
# - the times did show the saving: a frozen epoch took about 5 s, an unfrozen one 9-10 s (they vary from run to
#   run by a second).

# %% [markdown]
# ## 8. The headline result
#
# The run named before training (section 6), on the data named at the top (generated or real), with its
# predictions on a few validation images. It is reported whatever it scores: offline, the RANDOM stand-in of the
# recipe scored lowest of the four runs (0.889), and it is still the headline, which is the point of naming it
# before training.

# %%
from IPython.display import display

from unet_tutorial.utils import report_metric
from unet_tutorial.viz import show

print(f"headline run: {HEADLINE}" + ("" if PRETRAINED else " (a RANDOM-encoder stand-in: no ImageNet weights here)"))
# the name says when the number is the stand-in's, so that make tutorial's table of results says it too
report_metric("val_dice" if PRETRAINED else "val_dice_RANDOM_stand_in", runs[HEADLINE]["val_dice_per_image"][-1],
              "04_densenet121_transfer")
with torch.no_grad():
    first_views = {}
    for index, image_id in enumerate(val_ids):
        first_views.setdefault(image_id.rsplit("_", 1)[0], index)  # car -> the index of its first view
    picks = list(first_views.values())[:4]  # up to four different cars
    shown = [val_loader.dataset[i] for i in picks]  # (image, mask) pairs, as the loader gives them
    shown_images, shown_masks = torch.stack([x for x, _ in shown]), torch.stack([m for _, m in shown])
    logits = models[HEADLINE].eval()(shown_images.to(DEVICE)).cpu()  # (4, 1, H, W)
display(show(shown_images, shown_masks, preds=(logits.sigmoid() > 0.5).float(), titles=[val_ids[i] for i in picks]))
print("every run, for context:")
summary_table(runs)

# %% [markdown]
# Look at the headline model car by car. Offline, the three orange and brown cars come out whole, the blue one
# in pieces: its roof and a band along the floor, the blue body missed. After 3 short epochs on 96 drawn images
# a model has learned the colours it saw most, not what a car is; features learned on 1.28 million photos are
# what should carry it past that. On Colab, compare the same four cars with the ImageNet encoder.
#
# ## Exercise 1: channels of a DenseNet encoder
#
# Write `densenet_stage_channels(block_config, growth_rate=32, num_init_features=64)`: the channels of every
# encoder stage of a DenseNet, as a list of `len(block_config) + 1` numbers. The first is the stem's output
# (`num_init_features`); then one number per dense block: the channels it hands on. Each dense block adds
# `growth_rate` channels per layer; each transition (after every block but the last) halves the channels before
# the next block. DenseNet121 is `block_config=(6, 12, 24, 16)` and gives `[64, 256, 512, 1024, 1024]`; the check
# also tries DenseNet169, DenseNet201 and two made-up DenseNets.

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
# ## Exercise 2: is `requires_grad_(False)` enough to freeze an encoder?
#
# Many tutorials freeze an encoder with `model.encoder.requires_grad_(False)` alone. Find out what that leaves
# running, with an experiment (no optimizer, no training step):
# 1. build a fresh `DenseNetUNet` called `trial` (the same encoder weights as section 7's), freeze its encoder
#    with `requires_grad_(False)` only, put the model in train mode as `fit` does, and run three training
#    batches through it under `torch.no_grad()`. `drift_grad_only`: the largest absolute change of any
#    `running_mean` of the encoder's BatchNorm layers (`trial.encoder_batchnorms()` lists them);
# 2. fix it yourself, without the package's `freeze_encoder`: the encoder's statistics must stay put while the
#    model (and so the decoder's BatchNorm) is in train mode, even after another `trial.train()`. Measure again:
#    `drift_fixed`.
#
# `check_frozen_batchnorm(drift_grad_only, drift_fixed, trial)` checks both numbers and your fixed model.

# %% tags=["solution"]
# Hint: copy the running means (.clone()) before the batches and compare after. For the fix: in which mode
#   does BatchNorm update its statistics, what does model.train() do to every submodule, and which tool of
#   notebook 01 runs your code just before every forward pass?
import itertools


def encoder_running_means(model: DenseNetUNet) -> torch.Tensor:
    return torch.cat([norm.running_mean for norm in model.encoder_batchnorms()]).clone()  # (all channels,)


def running_mean_drift(model: DenseNetUNet, batches: int = 3) -> float:
    before = encoder_running_means(model)
    model.train()  # what fit does before every epoch
    with torch.no_grad():  # no gradients, no optimizer: only forward passes
        for batch_images, _ in itertools.islice(train_loader, batches):
            model(batch_images.to(DEVICE))
    return (encoder_running_means(model) - before).abs().max().item()


# The fix: a forward pre-hook (notebook 01) runs before every forward pass, so after any model.train(); it puts
# the encoder's BatchNorm in eval mode (stored statistics, left alone) and returns None (the inputs unchanged).
# The package's freeze_encoder overrides train() instead.
def keep_encoder_statistics(module: DenseNetUNet, inputs: tuple) -> None:
    for norm in module.encoder_batchnorms():
        norm.eval()


set_seed(SEED)  # the encoder weights of section 7's model
trial = DenseNetUNet(num_classes=1, weights=WEIGHTS if PRETRAINED else None).to(DEVICE)
trial.encoder.requires_grad_(False)
drift_grad_only = running_mean_drift(trial)
trial.register_forward_pre_hook(keep_encoder_statistics)
drift_fixed = running_mean_drift(trial)
print(f"largest change of a running mean: requires_grad_(False) only {drift_grad_only:.4f}, fixed {drift_fixed}")

# %%
from unet_tutorial.course.exercises.transfer import check_frozen_batchnorm

check_frozen_batchnorm(drift_grad_only, drift_fixed, trial)

# %% [markdown]
# ## Summary
# - **Transfer learning** reuses an ImageNet classifier's convolutional layers as a U-Net encoder; only the decoder
#   starts from scratch. The images must be normalised as the weights expect (`normalization("imagenet")`).
# - **DenseNet**: inside a dense block every layer reads the concatenation of all earlier outputs and adds 32
#   channels; transitions halve channels and resolution. DenseNet121's five stages give 64, 256, 512, 1024 and 1024
#   channels at strides 2 to 32: the U-Net's skips. The decoder up-samples and merges one skip per step.
# - **The comparison** (section 6) trains the random and the ImageNet encoder with the same learning rates
#   (`param_groups(lr_encoder, lr_decoder)`), so that their gap measures pretraining; a bigger random model is not
#   the same as a pretrained one. Offline, the ImageNet model is skipped with a notice, never faked.
# - **Fine-tuning recipe**: freeze the encoder, train the decoder; then unfreeze with a ~10x lower encoder
#   learning rate. At a small batch keep the encoder's BatchNorm frozen (`unfreeze_encoder(train_batchnorm=False)`):
#   its batch statistics are noisy, and `requires_grad_(False)` alone does not stop its running statistics
#   from moving.
# - **The headline** is the run named before training, never the best of all runs on the validation set.
#
# **Next**: notebook 05 trains on ADE20K, 150 classes, where the model has to tell a wall from a building and a road
# from a sidewalk: multi-class losses, mIoU, and class imbalance.
