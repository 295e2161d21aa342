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
# - how ADE20K SceneParsing is stored, how to fetch it safely, and why label 0 ("other") is ignored
# - what a long-tailed class distribution looks like, and what class weights do about it
# - the step from binary to multi-class: softmax, cross-entropy with `ignore_index`, multi-class Dice
# - how to train a 150-class U-Net with the course's training loop and judge it: mIoU against a
#   majority-class baseline, per-class IoU, a confusion view, pictures
# - sliding-window inference on full-size images of any shape
# - what the full recipe looks like on several GPUs, and where published ADE20K baselines sit
#
# **Runtime**: about 8 minutes on a laptop CPU (generated data, a narrow U-Net). On a Colab GPU with the real
# data the settings train a short run, sized for well under an hour; measure it on your runtime.

# %%
# Setup: on Colab, install this course's package at the release this notebook was written for (its git tag).
# Colab's own torch, torchvision and ipywidgets are pinned with a constraints file so that pip never reinstalls
# them; pinned by their installed versions (torch.__version__ may say 2.11.0+cu130 where pip knows 2.11.0).
import sys

if "google.colab" in sys.modules:
    from importlib.metadata import version

    with open("/tmp/keep.txt", "w") as f:
        f.write(f"torch=={version('torch')}\ntorchvision=={version('torchvision')}\n"
                f"ipywidgets=={version('ipywidgets')}\n")
    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+https://github.com/unet-tutorial/unet-tutorial@v0.1.0"

# %%
# Settings: every knob of this notebook, smaller in smoke mode (tests and CI).
# The values per mode live in unet_tutorial/recipes.py, where tests check that the GPU recipe fits a T4.
import tempfile
from pathlib import Path

from unet_tutorial.recipes import describe, recipe, recipe_mode
from unet_tutorial.utils import pick_device, set_seed, smoke_mode

SMOKE = smoke_mode()
DEVICE = pick_device()
GPU = DEVICE.type == "cuda"
DOWNLOAD = False  # True, then run the download cell by hand: the official ADE20K zip, about 1 GB
NUM_CLASSES = 150
IGNORE_INDEX = 255  # label 0 ("other") becomes 255 and is left out of losses and metrics
RECIPE = recipe("05_ade20k_multiclass", recipe_mode(DEVICE, SMOKE))
# "densenet_unet" (notebook 04: DenseNet121 encoder, ImageNet weights) or "unet" (notebook 01, from scratch).
# On a CPU the narrow UNet is the default: DenseNet121 trains several times slower there.
MODEL = RECIPE["model"]
BASE_CHANNELS = RECIPE["base_channels"]  # UNet only; the paper's width is 64
LR = RECIPE["lr"]  # peak of the one-cycle schedule (the DenseNet encoder gets a tenth)
MAX_CLASS_WEIGHT = 10.0  # cap on the class weights, so that a class seen in a few pixels cannot dominate
FREQ_IMAGES = 16 if SMOKE else 500  # training masks counted for class frequencies and weights
# The real photos (when on disk; smoke mode always generates) and the generated scenes get their own sizes:
# On a CPU most of a step goes into the 150 logits per pixel, so pixels are what the crop size buys.
CROP = RECIPE["crop"]  # training crop side
EPOCHS = RECIPE["epochs"]
TRAIN_LIMIT = RECIPE["train_limit"]  # training images; None: all
VAL_LIMIT = RECIPE["val_limit"]  # validation images; None: all
# A T4 holds 8 crops of 512 px with 150 logits per pixel (16 would need about 20 GiB): ACCUMULATE adds the
# gradients of that many batches before each optimizer step, for an effective batch of BATCH_SIZE x ACCUMULATE.
BATCH_SIZE, ACCUMULATE = RECIPE["batch_size"], RECIPE["accumulate"]
NUM_WORKERS = RECIPE["num_workers"]
RUN_DIR = Path(tempfile.mkdtemp(prefix="nb05_")) if SMOKE else Path("runs/05_ade20k")  # checkpoints
set_seed(0)
print(describe(RECIPE))
print(f"smoke mode: {SMOKE}, device: {DEVICE}, model: {MODEL}, checkpoints in {RUN_DIR}")

# %% [markdown]
# ## 1. Getting the data
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
# An annotation is a single-channel PNG of the same size as its photo, holding labels 0..150.
#
# Two ways to get it: `python data_scripts/download_ade20k.py` from a clone of the repository, or the cell
# below with `DOWNLOAD = True` (it calls `download.fetch_ade20k`, as the script does). Both check the archive's SHA-1 before unpacking it, and resume an
# interrupted download. The cell is tagged `skip-execution`, so automated runs (tests, CI) never download;
# run it by hand. When the real data is missing, the notebook generates ADE20K-like scenes in the very same
# format and says so loudly.

# %% tags=["skip-execution"]
# Download ADEChallengeData2016.zip (about 1 GB), check its SHA-1 and unpack it where the notebook looks.
from unet_tutorial.download import fetch_ade20k
from unet_tutorial.utils import data_root

if DOWNLOAD:
    fetch_ade20k(data_root())  # -> data_root()/ADEChallengeData2016/; the zip is deleted once unpacked
else:
    print("DOWNLOAD is False: nothing downloaded")

# %%
from unet_tutorial.data import ADE20KDataset
from unet_tutorial.sample_data import ade20k_data

ROOT, REAL = ade20k_data()
KIND = "real" if REAL else "sample"
raw_train = ADE20KDataset(ROOT, "training")  # no transform yet: images in [0, 1], masks as stored (shifted)
raw_val = ADE20KDataset(ROOT, "validation")
print(f"{'real ADE20K' if REAL else 'generated ADE20K-like data'} in {ROOT}")
print(f"{len(raw_train)} training and {len(raw_val)} validation images")

# %% [markdown]
# ## 2. Look at the data
#
# Every class gets a fixed colour (`ade20k_palette`); the legend names the classes present. Black is
# "ignored" (label 0, see below).

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
# The PNG files store **0..150**: 1..150 are the classes, 0 means "none of the 150" (unlabelled clutter, rare
# objects, borders). The benchmark does not score label 0, so we neither train on it nor count it. The dataset
# shifts the labels once, when it reads a file: `k -> k - 1` for the classes, and 0 -> **255**, the
# `ignore_index` that losses and metrics skip. Here is that shift by hand, checked against the dataset:

# %%
from unet_tutorial.data import read_label

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
# Count the pixels of each class over (a sample of) the training masks. Reading only the PNGs is fast.

# %%
from tqdm.auto import tqdm

rng = np.random.default_rng(0)
freq_ids = rng.permutation(len(raw_train))[:FREQ_IMAGES]
counts = np.zeros(NUM_CLASSES + 1, dtype=np.int64)  # index 0: "other", 1..150: the classes as stored
for i in tqdm(freq_ids, desc="counting pixels"):
    counts += np.bincount(read_label(raw_train.label_paths[i]).ravel(), minlength=NUM_CLASSES + 1)
other_share = counts[0] / counts.sum()
pixel_counts = torch.from_numpy(counts[1:])  # (150,), index = training label
share = pixel_counts.double() / pixel_counts.sum()
order = torch.argsort(share, descending=True)
present = int((pixel_counts > 0).sum())
cumulative = share[order].cumsum(0)
print(f"{len(freq_ids)} masks: {other_share:.1%} of pixels are 'other' (ignored); {present} of 150 classes occur")
print(f"the top 5 classes cover {cumulative[4]:.0%} of the labelled pixels, the top 20 {cumulative[19]:.0%}")
for k in order[:5].tolist():
    print(f"  {ADE20K_CLASSES[k]:<12} {share[k]:.1%}")

# %%
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

# %% [markdown]
# On the real ADE20K the curve falls over more than three orders of magnitude: wall, building, sky and floor
# take about 40% of all pixels, while the rarest classes (clock, flag) get around a hundredth of a percent. (The generated data uses only
# 20 of the 150 classes, so its tail is short.) A model trained on raw pixel counts can ignore the tail and
# still score a fine pixel accuracy. That is why ADE20K is scored by **mIoU**: every class counts the same.
#
# ## 3. From binary to multi-class
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
picked = log_probs.gather(1, targets.clamp(max=3).unsqueeze(1)).squeeze(1)  # (B, H, W): log p[true class]
by_hand = -(picked[valid]).mean()  # the mean over the 4 valid pixels only
print(f"by hand {by_hand:.4f}   F.cross_entropy {F.cross_entropy(logits, targets, ignore_index=255):.4f}   "
      f"package {cross_entropy(logits, targets, ignore_index=255):.4f}")
torch.testing.assert_close(by_hand, cross_entropy(logits, targets, ignore_index=IGNORE_INDEX))

# %% [markdown]
# ### Class weights
#
# Weighted cross-entropy multiplies each pixel's loss by the weight of its true class. **Median-frequency
# weights** (Eigen & Fergus 2015) set `w_c = median(f) / f_c`: a class at the median frequency gets 1, a ten
# times rarer one 10. We cap them at `MAX_CLASS_WEIGHT`: uncapped, a class seen in only a few pixels of the
# sample would get a huge weight and steer the whole gradient.

# %%
from unet_tutorial.losses import class_weights

freq_masks = (torch.from_numpy(shift_labels(read_label(raw_train.label_paths[i]))) for i in freq_ids)
weights = class_weights(freq_masks, NUM_CLASSES, ignore_index=IGNORE_INDEX, method="median")  # (150,)
weights = weights.clamp(max=MAX_CLASS_WEIGHT)
print("weights of the 5 most frequent classes:", [f"{weights[k]:.2f}" for k in order[:5].tolist()])
print("weights of the 5 rarest classes seen:  ",
      [f"{weights[k]:.2f}" for k in order[max(present - 5, 0):present].tolist()])

# %% [markdown]
# ### Multi-class Dice
#
# The Dice loss of notebook 02 carries over class by class: soft-count the overlap between the softmax
# probabilities of class c and the one-hot mask of class c over the valid pixels, turn it into a Dice score,
# and average over the classes. (You write it yourself in the exercises.) Cross-entropy judges every pixel on
# its own; Dice judges each class's region as a whole, so a small class weighs as much as a big one. We train
# with their sum:

# %%
from unet_tutorial.losses import dice_loss

CLASS_WEIGHTS = weights.to(DEVICE)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy + multi-class Dice, both skipping IGNORE_INDEX. logits (B, C, H, W), targets (B, H, W)."""
    weight = CLASS_WEIGHTS.to(logits.device)
    return (cross_entropy(logits, targets, weight=weight, ignore_index=IGNORE_INDEX)
            + dice_loss(logits, targets, ignore_index=IGNORE_INDEX))


toy_logits = torch.randn(1, NUM_CLASSES, 2, 3)  # (B, 150, H, W), with the toy targets from above
print(f"cross-entropy + Dice on random logits: {loss_fn(toy_logits, targets):.4f}")

# %% [markdown]
# ### The model: 150 outputs per pixel
#
# Nothing in a U-Net is binary except its last 1x1 convolution: give it 150 output channels and it returns
# (B, 150, H, W) logits. By default this is notebook 04's DenseNet121 U-Net with ImageNet weights; on a CPU,
# notebook 01's narrow UNet (set `MODEL` to choose). Where the pretrained weights cannot be downloaded
# (offline), `allow_random_encoder=True` goes on with a random encoder and a visible warning.

# %%
from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD

if MODEL == "densenet_unet":
    from unet_tutorial.densenet_unet import DenseNetUNet

    model = DenseNetUNet(NUM_CLASSES, weights=None if SMOKE else "imagenet", allow_random_encoder=True)
    NORM = model.normalization  # the mean and std the encoder's weights expect
    groups = model.param_groups(LR / 10, LR) if model.pretrained else model.parameters()
else:
    from unet_tutorial.model import UNet

    model = UNet(num_classes=NUM_CLASSES, base_channels=BASE_CHANNELS)
    NORM = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    groups = model.parameters()
model = model.to(DEVICE)
optimizer = torch.optim.AdamW(groups, lr=LR, weight_decay=1e-4)
head = model.head if MODEL == "densenet_unet" else model.outc.conv  # the 1x1 conv that gives the logits
with torch.no_grad():
    out = model.eval()(torch.zeros(1, 3, 64, 96, device=DEVICE))
print(f"{type(model).__name__}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; "
      f"the last conv {head.in_channels} -> {head.out_channels} channels")
print("images (1, 3, 64, 96) -> logits", tuple(out.shape))  # (B, 150, H, W)

# %% [markdown]
# ## 4. Train
#
# Training sees random crops (`CROP` pixels square, scaled around the image's own resolution), flips and colour
# jitter; pixels the crop or the warp invents get 255, so they are ignored too. Validation sees whole images at
# their own size: a U-Net takes any size.

# %%
from torch.utils.data import DataLoader, Subset

from unet_tutorial.transforms import eval_transforms, train_transforms

crop = CROP[KIND]
height, width = raw_train[0][0].shape[-2:]
typical = min(crop * crop / (height * width), 1.0)  # the crop's share of an image at its own scale
scale = (0.6 * typical, min(1.6 * typical, 1.0))  # zoom out and in by up to about 1.3x
augment = {"crop": "random_resized", "scale": scale, "rotate": 10.0, "shift": 0.05, "color_jitter": 0.2}
train_set = ADE20KDataset(ROOT, "training", train_transforms(crop, **augment, mask_fill=IGNORE_INDEX, **NORM))
val_set = ADE20KDataset(ROOT, "validation", eval_transforms(None, **NORM))
if TRAIN_LIMIT[KIND] is not None:
    train_set = Subset(train_set, range(min(TRAIN_LIMIT[KIND], len(train_set))))
if VAL_LIMIT[KIND] is not None:
    val_set = Subset(val_set, range(min(VAL_LIMIT[KIND], len(val_set))))
train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, drop_last=len(train_set) > BATCH_SIZE,
                          num_workers=NUM_WORKERS, pin_memory=GPU)
# Real photos differ in size, so they are validated one by one; the generated scenes all share one size.
val_loader = DataLoader(val_set, batch_size=1 if REAL else BATCH_SIZE, num_workers=NUM_WORKERS, pin_memory=GPU)
images, masks = next(iter(train_loader))
print(f"crop {crop}, scale {scale[0]:.2f}-{scale[1]:.2f} of an image's area")
print("a training batch: images", tuple(images.shape), images.dtype, " masks", tuple(masks.shape), masks.dtype)
print(f"{len(train_set)} training images ({len(train_loader)} batches), {len(val_set)} validation images")

# %% [markdown]
# ### The baseline to beat
#
# Before training, the score of a model that knows nothing about images: predict the most frequent training
# class everywhere. Its pixel accuracy is that class's share, which can look respectable; its mIoU is tiny.

# %%
from unet_tutorial.metrics import confusion_matrix, mean_iou, pixel_accuracy

majority = int(order[0])
baseline = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)  # (150, 150) pixel counts
for _, mask in tqdm(val_set, desc="majority baseline"):
    baseline += confusion_matrix(torch.full_like(mask, majority), mask, NUM_CLASSES, ignore_index=IGNORE_INDEX)
BASELINE = {"miou": mean_iou(baseline), "pixel_accuracy": pixel_accuracy(baseline)}
print(f"always {ADE20K_CLASSES[majority]!r}: mIoU {BASELINE['miou']:.3f}, "
      f"pixel accuracy {BASELINE['pixel_accuracy']:.3f}")

# %% [markdown]
# Now the training loop from notebook 03: `fit` runs `train_one_epoch` and `evaluate` per epoch, with a
# one-cycle learning rate, keeps `best.pt` (highest validation mIoU) and `last.pt` in `RUN_DIR`.

# %%
from unet_tutorial.checkpoint import load_checkpoint, read_checkpoint
from unet_tutorial.train import fit

# As in notebook 03: a finished run with the same settings is loaded, an unfinished one (Colab disconnected?)
# resumes from last.pt, anything else trains from scratch.
CONFIG = {"model": MODEL, "num_classes": NUM_CLASSES, "crop": crop, "epochs": EPOCHS[KIND], "batch_size": BATCH_SIZE,
          "accumulate": ACCUMULATE, "train_images": len(train_set), "data": str(ROOT)}
last_path = RUN_DIR / "last.pt"
saved = read_checkpoint(last_path) if last_path.exists() else None
if saved is not None and saved.get("config") != CONFIG:
    print(f"{last_path} was trained with other settings: training from scratch")
    saved = None
if saved is not None and saved["epoch"] >= EPOCHS[KIND]:
    print(f"loading the finished run in {RUN_DIR} (delete that folder to train again)")
    load_checkpoint(last_path, model, map_location=DEVICE)
    history = saved["history"]
else:
    history = fit(model, train_loader, val_loader, epochs=EPOCHS[KIND], loss_fn=loss_fn, optimizer=optimizer,
                  device=DEVICE, num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, scheduler="onecycle",
                  accumulate=ACCUMULATE, checkpoint_dir=RUN_DIR, resume=last_path if saved is not None else None,
                  config=CONFIG)

# %%
from unet_tutorial.utils import report_metric
from unet_tutorial.viz import plot_history

best_miou = max(history["val_miou"])
print(f"best validation mIoU {best_miou:.3f} (majority baseline {BASELINE['miou']:.3f}); "
      f"pixel accuracy {history['val_pixel_accuracy'][int(np.argmax(history['val_miou']))]:.3f} "
      f"(baseline {BASELINE['pixel_accuracy']:.3f})")
report_metric("val_miou", best_miou, "05_ade20k_multiclass")
plot_history(history, metrics=["val_miou", "val_pixel_accuracy"])

# %% [markdown]
# ### Per-class IoU: which classes it gets, which it misses
#
# mIoU is an average; the classes behind it tell more. We reload the best checkpoint and count one confusion
# matrix over the validation set.

# %%
from unet_tutorial.checkpoint import load_checkpoint
from unet_tutorial.metrics import SegmentationMetrics

load_checkpoint(RUN_DIR / "best.pt", model)
model.eval()
metrics = SegmentationMetrics(NUM_CLASSES, ignore_index=IGNORE_INDEX)
with torch.inference_mode():
    for images, masks in tqdm(val_loader, desc="confusion matrix"):
        metrics.update(model(images.to(DEVICE)), masks.to(DEVICE))
confusion = metrics.confusion.cpu()  # (150, 150): rows = true class, columns = predicted class
iou = metrics.iou_per_class()  # (150,), NaN for classes neither present nor predicted
val_pixels = confusion.sum(1)  # true pixels per class
seen = [k for k in torch.argsort(iou.nan_to_num(-1), descending=True).tolist() if val_pixels[k] > 0]
print(f"{'class':<16}{'IoU':>7}{'share of val pixels':>22}")
for k in seen[:5] + ([] if len(seen) <= 10 else [None]) + seen[-5:]:
    if k is None:
        print(f"{'...':<16}")
        continue
    print(f"{ADE20K_CLASSES[k]:<16}{iou[k]:>7.3f}{val_pixels[k] / val_pixels.sum():>22.2%}")
print(f"{len(seen)} classes in the validation masks; mIoU {metrics.compute()['miou']:.3f}")

# %% [markdown]
# The **confusion view** shows what the misses become, among the most frequent classes: row c is where the
# pixels of true class c went (each row sums to 1 over all 150 columns; only the frequent ones are drawn).

# %%
top = torch.argsort(val_pixels, descending=True)[: min(10, len(seen))]
rows = confusion[top].double() / confusion[top].sum(1, keepdim=True).clamp(min=1)  # (K, 150), rows sum to 1
view = rows[:, top].numpy()  # (K, K)
names = [ADE20K_CLASSES[k] for k in top.tolist()]
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
ax.set_title("where each class's pixels went")
fig.colorbar(im, fraction=0.04)
fig.tight_layout()
plt.show()

# %% [markdown]
# Predictions side by side with the ground truth (black: ignored "other" pixels, which the model still labels):

# %%
pictures = [val_set[i] for i in range(min(3, len(val_set)))]
with torch.inference_mode():
    preds = [model(image[None].to(DEVICE)).argmax(1)[0].cpu() for image, _ in pictures]  # (H, W) each
show([p[0] for p in pictures], [p[1] for p in pictures], preds, num_classes=NUM_CLASSES, palette=PALETTE,
     class_names=ADE20K_CLASSES)

# %% [markdown]
# ## 5. Sliding-window inference on full-size images
#
# The model trained on `crop`-pixel squares. A full photo can be far larger: too big for memory at once on a
# small GPU, and at a different scale from what the model knows. `sliding_window_predict` cuts the image into
# overlapping tiles of the training size, predicts them a few at a time, and blends the overlaps with weights
# that fall off towards each tile's border, where a tile sees the least context. It works for any height and
# width; an image smaller than a tile is mirrored out to one.

# %%
from matplotlib import patches

from unet_tutorial.data import read_image
from unet_tutorial.predict import predict_mask, probs_to_mask, sliding_window_predict, tile_starts

full = read_image(raw_val.image_paths[0])  # uint8 (H, W, 3), the file at its own size
tile, overlap = crop, 0.25
probs = sliding_window_predict(model, full, tile=tile, overlap=overlap, batch_size=4, **NORM)  # (150, H, W)
tiled = probs_to_mask(probs)  # (H, W)
whole = predict_mask(model, full, **NORM)  # the whole image in one pass, for comparison
print("image", full.shape, "-> probs", tuple(probs.shape), "-> mask", tuple(tiled.shape))
print(f"tiled and whole-image predictions agree on {(tiled == whole).float().mean():.1%} of the pixels")

stride = round(tile * (1 - overlap))
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
axes[0].imshow(full)
for top_ in tile_starts(full.shape[0], tile, stride):
    for left in tile_starts(full.shape[1], tile, stride):
        axes[0].add_patch(patches.Rectangle((left, top_), min(tile, full.shape[1]), min(tile, full.shape[0]),
                                            fill=False, edgecolor="yellow", linewidth=1))
axes[0].set_title(f"{full.shape[1]} x {full.shape[0]} image, {tile}-px tiles")
axes[1].imshow(PALETTE[tiled.numpy()])
axes[1].set_title("sliding window")
axes[2].imshow(PALETTE[whole.numpy()])
axes[2].set_title("whole image at once")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# Any shape works, including odd sizes and a panorama twice as wide:

# %%
odd = np.ascontiguousarray(full[3 : 3 + int(full.shape[0] * 0.77), 5 : 5 + int(full.shape[1] * 0.83)])
panorama = np.concatenate([full, full[:, ::-1]], axis=1)  # (H, 2W, 3)
for name, picture in (("odd crop", odd), ("panorama", panorama)):
    mask = probs_to_mask(sliding_window_predict(model, picture, tile=tile, overlap=overlap, **NORM))
    print(f"{name:<9} {picture.shape} -> mask {tuple(mask.shape)}, classes {len(mask.unique())}")

# %% [markdown]
# ## 6. Explore: pick a class
#
# Choose a class: where it is (green) and where the model thinks it is (its softmax probability, and the
# pixels where it wins the argmax). Where widgets cannot run you see two fixed settings instead.

# %%
from functools import lru_cache

from unet_tutorial.viz import overlay
from unet_tutorial.widgets import interactive_or_static

PICK_IMAGES = min(6, len(raw_val))
pick_masks = [raw_val[i][1] for i in range(PICK_IMAGES)]
present_ids = torch.cat([m.flatten() for m in pick_masks]).unique().tolist()
choices = [ADE20K_CLASSES[k] for k in torch.argsort(val_pixels, descending=True).tolist()
           if k in present_ids]


@lru_cache(maxsize=PICK_IMAGES)
def image_and_probs(index: int) -> tuple[np.ndarray, torch.Tensor]:
    """The raw validation image and the model's class probabilities (150, H, W) for it."""
    image = read_image(raw_val.image_paths[index])
    _, probs = predict_mask(model, image, return_probs=True, **NORM)
    return image, probs


def draw_class(class_name: str, index: int):
    """Image with the true region of one class, its predicted probability, and its predicted region."""
    k = ADE20K_CLASSES.index(class_name)
    image, probs = image_and_probs(index)
    truth, predicted = pick_masks[index] == k, probs.argmax(0) == k
    union = (truth | predicted).sum().item()
    iou_k = (truth & predicted).sum().item() / union if union else float("nan")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].imshow(overlay(image, truth.long(), color=(0, 200, 0), alpha=0.6))
    axes[0].set_title(f"true {class_name!r}: {truth.float().mean():.1%} of pixels")
    axes[1].imshow(probs[k], cmap="magma", vmin=0, vmax=1)
    axes[1].set_title("predicted probability")
    axes[2].imshow(overlay(image, predicted.long(), color=(255, 0, 0), alpha=0.6))
    axes[2].set_title(f"predicted region (IoU here {iou_k:.2f})")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def first_image_with(class_name: str) -> int:
    k = ADE20K_CLASSES.index(class_name)
    return next(i for i, m in enumerate(pick_masks) if (m == k).any())


static = [{"class_name": name, "index": first_image_with(name)} for name in dict.fromkeys(choices[:1] + choices[-1:])]
interactive_or_static(draw_class, static=static, class_name=choices, index=(0, PICK_IMAGES - 1))

# %% [markdown]
# ## 7. Scaling up
#
# What ran here is a short run. The published ADE20K numbers come from a much longer recipe (the one
# mmsegmentation uses for its ADE20K baselines):
#
# | | this notebook on a CPU | the standard recipe |
# |---|---|---|
# | training crop | 96 (generated) / 256 (real) | 512 x 512, after a random resize of 0.5-2.0 |
# | batch | 8 | 16 (e.g. 4 GPUs x 4) |
# | iterations | a few hundred | 80,000-160,000 (160k x 16 = about 127 epochs) |
# | encoder | none pretrained | ImageNet-pretrained |
# | evaluation | whole image | whole image or sliding window, single scale |
#
# The command line trains the same model with the same loop. One GPU:
#
# ```bash
# python -m unet_tutorial train --dataset ade20k --model densenet-unet --pretrained \
#     --image-size 512 --batch-size 16 --epochs 127 --amp bf16 --workers 8 --out runs/ade20k
# ```
#
# Several GPUs on one machine: `torchrun` starts one process per GPU, each trains on its own shard of the data
# (`--batch-size` is per process: 4 x 4 = 16 here), and DistributedDataParallel averages the gradients:
#
# ```bash
# torchrun --nproc_per_node=4 -m unet_tutorial train --dataset ade20k --model densenet-unet --pretrained \
#     --image-size 512 --batch-size 4 --epochs 127 --amp bf16 --workers 8 --out runs/ade20k
# python -m unet_tutorial predict --checkpoint runs/ade20k/best.pt --tile 512 my_photos/ --out predictions
# ```
#
# **Where should a U-Net land?** Published single-scale validation mIoU with a ResNet-50 encoder, 512 x 512
# crops (mmsegmentation's model zoo): FCN about **36**, PSPNet and UPerNet **41-42**. Those models add context
# modules (pyramid pooling) on a pretrained encoder; a U-Net's decoder adds resolution, not context. We have
# not run the full recipe, so we make no claim of our own: expect a DenseNet121 U-Net below the PSPNet/UPerNet
# line, and measure where it lands against FCN's 36 with the commands above. A U-Net trained from scratch
# (no pretrained encoder) lands lower still.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1: median-frequency class weights
# Write `median_frequency_weights(counts)`: from pixel counts per class (a tensor (C,)), the weights
# `median(f) / f_c` with `f = counts / counts.sum()`, where the median runs over the classes that occur; a
# class that never occurs gets the largest weight of the others.

# %% tags=["solution"]
# Hint: keep the classes with counts > 0 for the median; torch.where fills in the ones that never occur.
import torch


def median_frequency_weights(counts: torch.Tensor) -> torch.Tensor:
    """Median-frequency class weights (C,) from pixel counts per class (C,)."""
    freq = counts.double() / counts.sum()
    present = freq > 0
    weights = freq[present].median() / freq
    return torch.where(present, weights, weights[present].max()).float()


# %%
from unet_tutorial.exercises import check_median_frequency_weights

check_median_frequency_weights(median_frequency_weights)

# %% [markdown]
# ### Exercise 2: multi-class soft Dice with ignored pixels
# Write `multiclass_dice_loss(logits, targets, ignore_index=255, smooth=1.0)`: softmax over classes, one-hot
# targets, both zeroed where the target is `ignore_index`; per class c, `(2 sum(p t) + smooth) /
# (sum p + sum t + smooth)` over the whole batch; the loss is 1 minus the mean over the classes present in the
# targets (as the package and segmentation_models_pytorch do: a batch shows a few of the 150 classes).

# %% tags=["solution"]
# Hint: F.one_hot(targets.clamp(max=C - 1), C).permute(0, 3, 1, 2) gives (B, C, H, W); multiply by the valid mask.
import torch
import torch.nn.functional as F


def multiclass_dice_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = 255,
                         smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss over classes. logits (B, C, H, W), targets long (B, H, W); returns a scalar."""
    num_classes = logits.shape[1]
    valid = (targets != ignore_index).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.softmax(dim=1) * valid  # (B, C, H, W)
    one_hot = F.one_hot(targets.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    dice = (2 * (probs * one_hot).sum(dims) + smooth) / (probs.sum(dims) + one_hot.sum(dims) + smooth)  # (C,)
    present = one_hot.sum(dims) > 0  # (C,) classes in the targets
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0


# %%
from unet_tutorial.exercises import check_multiclass_dice

check_multiclass_dice(multiclass_dice_loss)

# %% [markdown]
# ### Exercise 3: where the tiles go
# Write `window_starts(length, tile, stride)`: the start offsets of tiles along one side, every `stride`
# pixels from 0, plus one last tile flush with the end so that nothing is left uncovered; `[0]` when the side
# is no longer than a tile.

# %% tags=["solution"]
# Hint: range(0, length - tile, stride), then length - tile as the last start.


def window_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles covering 0..length-1."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, stride)) + [length - tile]


# %%
from unet_tutorial.exercises import check_window_starts

check_window_starts(window_starts)

# %% [markdown]
# ## Summary
#
# - ADE20K stores labels 0..150; we shift the classes to 0..149 and turn 0 ("other") into 255, the
#   `ignore_index` that every loss and metric skips.
# - Its classes follow a long tail, so it is scored by mIoU, where every class counts the same; pixel accuracy
#   mostly measures the frequent classes. Always compare with the majority-class baseline.
# - Multi-class segmentation is binary segmentation with C logits per pixel: softmax instead of sigmoid,
#   cross-entropy (with `ignore_index`, optionally class weights) instead of BCE, Dice averaged over classes.
# - The same training loop, checkpoints and pictures serve 1 class and 150.
# - Sliding windows predict images of any size at the training scale with bounded memory.
# - The full recipe (512 crops, batch 16, 160k iterations, several GPUs with `torchrun`) is where published
#   baselines come from: FCN-R50 about 36 mIoU, PSPNet/UPerNet-R50 41-42; measure a U-Net against them.
#
# This is the last notebook of the course. Next: run the full recipe on a GPU, try another encoder, or bring
# your own data in one of the two formats you now know.
