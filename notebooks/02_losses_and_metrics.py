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
# # 02 · Losses and metrics
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/02_losses_and_metrics.ipynb) with the solutions ·
# [![Open the exercise version in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/exercises/02_losses_and_metrics.ipynb) the exercise version: you write the solutions
#
# **What you will learn**
# - logits, probabilities and the per-pixel losses: cross-entropy and focal loss, from their formulas
# - true/false positives and negatives, and the overlap losses built on them: Dice, Jaccard, Tversky, Lovász
# - metrics as "count first, reduce after": the confusion matrix, IoU, Dice, pixel accuracy, `ignore_index`
# - why a near-perfect pixel accuracy can mean an IoU of 0; IoU vs Dice; per-image, per-class and pooled means
# - why small objects on a large background trouble plain cross-entropy, seen by training one U-Net four ways
#
# **Prerequisites**: notebook 01 (logits, the U-Net, Dice as a score). The math of a mean and a logarithm;
# PyTorch tensors and a training step.
#
# **Runtime**: a few minutes on a laptop CPU, less on a Colab GPU (the README's table has measured times).
#
# **For a 90-minute lab**: the sections marked *core* (1 to 4), exercise 1 and experiment 2, about 80 minutes <!-- constant -->;
# section 5, a playground, and experiment 3 are *optional*. "Run all" works with or without them. A reading's ±
# is a standard error (section 4 says what it counts); notebook 03 teaches it in full.

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
# Settings: every knob of this notebook, with its value in each mode on its line. Each is explained where it is used.
from unet_tutorial.utils import pick_device, run_mode, set_seed

DEVICE = pick_device()  # a GPU (CUDA or Apple's MPS) if there is one, else the CPU
MODE = run_mode(DEVICE)  # "smoke" when smoke_mode() is on (UNET_TUTORIAL_SMOKE=1: tests, CI), else "cpu" or "gpu"
IMAGE_SIZE = 64  # small square images: the point is the losses, not the model
# Section 4 trains a narrow U-Net (the paper's has 64 base channels) once per loss, with the same budget.
NUM_TRAIN = {"smoke": 64, "cpu": 256, "gpu": 1024}[MODE]  # training images
NUM_VAL = {"smoke": 8, "cpu": 64, "gpu": 128}[MODE]  # validation images: every loss is scored on the same ones
EPOCHS = {"smoke": 2, "cpu": 3, "gpu": 10}[MODE]  # per loss
BASE_CHANNELS = {"smoke": 8, "cpu": 16, "gpu": 32}[MODE]  # first level's channels
BATCH_SIZE = {"smoke": 8, "cpu": 16, "gpu": 16}[MODE]
DEPTH = 3  # levels of the U: three poolings are plenty for 64-pixel images
# Adam's step size: bigger in smoke mode, whose few steps per loss must show something
LEARNING_RATE = {"smoke": 1e-2, "cpu": 3e-3, "gpu": 3e-3}[MODE]
SEED = 0  # the same initial weights and batches for every loss
SEEDS = {"smoke": 2, "cpu": 3, "gpu": 3}[MODE]  # training runs per loss (seeds SEED, SEED + 1, ...): their spread
TILE = 16  # side of the tiles in experiment 3: it must divide IMAGE_SIZE
set_seed(SEED)
print(f"mode: {MODE}, device: {DEVICE}, image size: {IMAGE_SIZE}, {NUM_TRAIN} training images, "
      f"{EPOCHS} epoch(s) per loss")

# %% [markdown]
# ## 1. Logits, probabilities, and the per-pixel losses (core, ~15 min)
#
# In notebook 01 the U-Net gave one number per pixel, a **logit** $z$: any real number, positive for
# "foreground", negative for "background". The **sigmoid** $p = \sigma(z) = 1 / (1 + e^{-z})$ turns it into a
# probability, so $z = 0$ is $p = 0.5$. With $C$ classes the model gives $C$ logits per pixel and the
# **softmax** turns them into $C$ probabilities that sum to 1. A loss compares those probabilities with the
# **target** $t$ (the true mask: 0 or 1 per pixel here).
#
# The package's losses take **logits** and apply the sigmoid or softmax inside, where it is numerically safe.
# The shapes decide the mode: logits `(B, 1, H, W)` are binary, with 0/1 targets `(B, 1, H, W)` or `(B, H, W)`;
# logits `(B, C, H, W)` with `C > 1` are multi-class, with class indices as long targets `(B, H, W)`.

# %%
import torch
import torch.nn.functional as F

z = torch.tensor([-4.0, -1.0, 0.0, 1.0, 4.0])
print("logits       ", z.tolist())
print("probabilities", [round(v, 3) for v in torch.sigmoid(z).tolist()])

# %% [markdown]
# **Binary cross-entropy** (BCE, what notebook 01 trained with) scores every pixel on its own and averages over
# all $N$ pixels: $\mathrm{BCE} = -\frac{1}{N}\sum_i \big[t_i \log p_i + (1 - t_i)\log(1 - p_i)\big]$.
# A pixel costs $-\log p_t$, where $p_t$ is the probability given to the right answer ($p$ on foreground,
# $1 - p$ on background).
#
# **Focal loss** (Lin et al. 2017) multiplies each pixel's cost by $(1 - p_t)^\gamma$: pixels the model already
# gets right ($p_t$ near 1) stop counting, so the hard ones dominate. It also weighs foreground pixels by
# $\alpha$ and background pixels by $1 - \alpha$: $\mathrm{FL} = -\frac{1}{N}\sum_i \alpha_t (1 - p_t)^\gamma \log p_t$.
# The usual $\alpha = 0.25$ gives the *foreground* less weight, surprisingly: the $\gamma$ term already
# silences the many easy background pixels, and the paper found $\alpha = 0.25$ worked best on top of it.
#
# Both by hand on a tiny random batch, checked against the package:

# %%
from unet_tutorial import losses

gen = torch.Generator().manual_seed(0)
logits = torch.randn(2, 1, 4, 4, generator=gen)  # (B, 1, H, W): binary
targets = (torch.rand(2, 1, 4, 4, generator=gen) > 0.7).float()  # (B, 1, H, W) of 0/1
probs = torch.sigmoid(logits)

bce_by_hand = -(targets * probs.log() + (1 - targets) * (1 - probs).log()).mean()
p_t = probs * targets + (1 - probs) * (1 - targets)  # probability of the right answer
alpha_t = 0.25 * targets + 0.75 * (1 - targets)
focal_by_hand = (-alpha_t * (1 - p_t) ** 2 * p_t.log()).mean()

torch.testing.assert_close(bce_by_hand, losses.cross_entropy(logits, targets))
torch.testing.assert_close(focal_by_hand, losses.focal_loss(logits, targets, alpha=0.25, gamma=2.0))
print(f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)}")
print(f"BCE {bce_by_hand:.4f}, focal {focal_by_hand:.4f}: the package agrees")

# %% [markdown]
# The cost of one foreground pixel against its predicted probability: focal loss keeps the steep part on the
# left (a confident mistake still costs a lot) and flattens the right, where the pixel is already right.

# %%
import matplotlib.pyplot as plt

p = torch.linspace(0.01, 0.99, 99)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(p, -p.log(), label="BCE  −log p", color="black")
for gamma in (1, 2, 5):
    ax.plot(p, -(1 - p) ** gamma * p.log(), label=f"focal, γ = {gamma} (no α)")
ax.set(xlabel="predicted probability of a foreground pixel", ylabel="cost of that pixel", ylim=(0, 4),
       title="Focal loss silences the easy pixels")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Overlap losses: true positives, false positives, false negatives (core, ~15 min)
#
# The other family looks at the predicted region as a whole. Lay the predicted mask over the true one and
# every pixel falls in one of four groups:
# - **TP**, true positive: predicted foreground, truly foreground (the overlap);
# - **FP**, false positive: predicted foreground, truly background (a false alarm);
# - **FN**, false negative: predicted background, truly foreground (a miss);
# - **TN**, true negative: background, predicted background (everything else).

# %%
yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")  # pixel coordinates, (64, 64) each


def disc(cy: float, cx: float, radius: float) -> torch.Tensor:
    """A 0/1 mask (1, 1, 64, 64) with a disc of the given centre and radius."""
    return (((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2).float()[None, None]


true_region, pred_region = disc(32, 26, 14), disc(32, 40, 12)
tp_map = pred_region * true_region
fp_map = pred_region * (1 - true_region)
fn_map = (1 - pred_region) * true_region
tn_map = (1 - pred_region) * (1 - true_region)
picture = torch.cat([fp_map, tp_map, fn_map], dim=1)[0].permute(1, 2, 0)  # (64, 64, 3): red FP, green TP, blue FN
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(picture)
ax.set(xticks=[], yticks=[], title=f"TP {tp_map.sum():.0f} (green), FP {fp_map.sum():.0f} (red),\n"
       f"FN {fn_map.sum():.0f} (blue), TN {tn_map.sum():.0f} (black)")
plt.show()

# %% [markdown]
# A loss needs gradients, so it uses probabilities instead of a hard mask: **soft counts**
# $TP = \sum_i p_i t_i$, $FP = \sum_i p_i (1 - t_i)$, $FN = \sum_i (1 - p_i) t_i$. With a smoothing constant $s$
# (so that an empty prediction of an empty mask costs 0, not 0/0):
#
# - **Dice** (V-Net, Milletari et al. 2016): $1 - \frac{2\,TP + s}{2\,TP + FP + FN + s}$
# - **Jaccard** (soft IoU): $1 - \frac{TP + s}{TP + FP + FN + s}$
# - **Tversky** (Salehi et al. 2017): $1 - \frac{TP + s}{TP + \alpha FP + \beta FN + s}$; $\alpha = \beta = 0.5$
#   is Dice, $\alpha = \beta = 1$ is Jaccard, $\beta > \alpha$ makes a miss cost more than a false alarm.
# - **Lovász hinge / Lovász-softmax** (Berman et al. 2018): sort the pixels by how wrong they are and weigh
#   each error by how much it changes the IoU. Lovász-softmax on hard 0/1 probabilities *equals*
#   $1 - \mathrm{IoU}$; the binary hinge works on the logits with a margin of 1, so it is not capped at 1.
#
# Dice, Jaccard and Tversky are 0 for a perfect prediction and close to 1 for a complete miss, whatever the
# object's size. The counts are summed over the whole batch; multi-class, each class gets its own one-vs-rest
# score and the loss is their mean over the classes present in the batch's targets.

# %%
tp = (probs * targets).sum()
fp = (probs * (1 - targets)).sum()
fn = ((1 - probs) * targets).sum()
dice_by_hand = 1 - (2 * tp + 1) / (2 * tp + fp + fn + 1)
jaccard_by_hand = 1 - (tp + 1) / (tp + fp + fn + 1)
print(f"soft TP {tp:.2f}, FP {fp:.2f}, FN {fn:.2f}")
torch.testing.assert_close(dice_by_hand, losses.dice_loss(logits, targets, smooth=1.0))
torch.testing.assert_close(jaccard_by_hand, losses.jaccard_loss(logits, targets, smooth=1.0))
print(f"Dice loss {dice_by_hand:.4f}, Jaccard loss {jaccard_by_hand:.4f}: the package agrees")

# %% [markdown]
# Now the picture that explains most of this notebook. A 64 x 64 mask holds one small object, a disc of radius
# 4.5 pixels (its share of the image is in the plot's title). The prediction gives probability $p$ to the object's
# pixels and a low $0.005$ to the background; we slide $p$ from "missed entirely" (left) to "found" (right) and
# plot every loss.

# %%
LOSS_FUNCTIONS = {"BCE": losses.cross_entropy, "Dice": losses.dice_loss, "Jaccard": losses.jaccard_loss,
                  "Tversky α=0.3 β=0.7": lambda z, t: losses.tversky_loss(z, t, alpha=0.3, beta=0.7),
                  "focal": losses.focal_loss, "Lovász hinge": losses.lovasz_loss}
small_object = disc(30, 40, 4.5)  # (1, 1, 64, 64)
fig, ax = plt.subplots(figsize=(6, 3.8))
for name, loss_fn in LOSS_FUNCTIONS.items():
    values = []
    for p_object in p:
        prediction = torch.where(small_object > 0, p_object, 0.005)  # (1, 1, 64, 64) probabilities
        values.append(loss_fn(torch.logit(prediction), small_object).item())
    ax.plot(p, values, label=name)
ax.set(xlabel="predicted probability on the object's pixels", ylabel="loss of the image", ylim=(0, 1.5),
       title=f"One small object ({small_object.mean():.1%} of the image)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read it at the far left, where the object is **missed entirely**: BCE and focal are already small, because
# all the other pixels, nearly the whole image, are right and they average over all of them; the push that would
# pull the object out is small too. Dice, Jaccard and Tversky are close to 1: for them the object is the whole story. (The Lovász hinge
# starts far above the plot and reaches 0 only when every object logit is above its margin of 1, $p > 0.73$.)
# At the far right, where the object is found, Dice and Jaccard still do not reach 0: the background's $0.005$ on
# some 4,000 pixels adds up to about 20 soft false positives, over a quarter of the object's size. Soft overlap losses
# count every bit of probability, wherever it is. That is the trade-off:
#
# | loss | shines | fails |
# |---|---|---|
# | BCE / cross-entropy | smooth probabilities, calibrated at its optimum (section 4 checks a short run), stable from the first step | small objects drown in background |
# | Dice / Jaccard | imbalance: scores the overlap, not the pixel count; matches the metric | noisy gradients early and on empty masks; over-confident probabilities |
# | Tversky | you care more about missing pixels (β > α), e.g. lesions | one more knob to tune |
# | focal | many easy background pixels | α and γ interact; probabilities shift lower, so the 0.5 threshold can miss |
# | Lovász | optimises IoU itself; great for fine-tuning | slow to start from scratch; sorts every pixel |
# | Combo (BCE + Dice + focal) | the stability of BCE and the overlap of Dice together | weights to choose |
#
# `ComboLoss(weights={"cross_entropy": 3, "dice": 1, "focal": 4})` is the weighted sum used by the winning SIIM-ACR
# pneumothorax pipeline; after each call, `combo.components` holds the terms for logging.

# %%
combo = losses.ComboLoss(weights={"cross_entropy": 3, "dice": 1, "focal": 4})
total = combo(logits, targets)
terms = " + ".join(f"{combo.weights[k]} x {v:.4f} ({k})" for k, v in combo.components.items())
print(f"combo = {total:.4f} = {terms}")

# %% [markdown]
# ## 3. Metrics: count first, reduce after (core, ~15 min)
#
# A loss must be smooth so that it can be trained; a metric reports hard 0/1 predictions (probabilities
# thresholded at 0.5, or the argmax class) and needs no gradient. Every segmentation metric is a ratio of pixel
# counts, so we count first. The **confusion matrix** generalises the TP/FP/FN picture to $C$ classes: one row
# per true class and one column per predicted class; entry $[t, p]$ counts pixels of class $t$ predicted as $p$.
# Then, for each class $c$:
#
# - $TP_c$ is on the diagonal, $FN_c$ the rest of row $c$, $FP_c$ the rest of column $c$;
# - $\mathrm{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}$ (intersection over union, also called Jaccard index);
# - $\mathrm{Dice}_c = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c}$ (also called F1);
# - pixel accuracy = the diagonal's sum / all pixels.
#
# The whole matrix is one `bincount` of `target * C + prediction`: each (target, prediction) pair gets its own
# bin. Here by hand on 8 pixels, then with the package:

# %%
from unet_tutorial.metrics import confusion_matrix, dice_per_class, iou_per_class, mean_iou, pixel_accuracy

preds_small = torch.tensor([[0, 0, 1, 1], [2, 2, 1, 0]])  # (H, W) = (2, 4), classes 0, 1, 2
targets_small = torch.tensor([[0, 0, 1, 2], [2, 2, 1, 1]])
by_hand = torch.bincount((targets_small * 3 + preds_small).flatten(), minlength=9).reshape(3, 3)  # (C, C)
cm = confusion_matrix(preds_small, targets_small, num_classes=3)
torch.testing.assert_close(by_hand, cm)
print("confusion matrix (rows = target, columns = prediction):\n", cm)
print("IoU per class ", iou_per_class(cm).numpy().round(3))
print("Dice per class", dice_per_class(cm).numpy().round(3))
print(f"mean IoU {mean_iou(cm):.3f}, pixel accuracy {pixel_accuracy(cm):.3f}")

# %% [markdown]
# Class 1, for example: 2 of its 3 pixels are found (row 1: one is predicted as 0, an FN), and one class-2
# pixel is predicted as 1 (column 1, an FP), so its IoU is 2 / (2 + 1 + 1) = 0.5.
#
# Counts add up: summing confusion matrices over batches gives the exact numbers for the whole data set;
# averaging per-batch IoUs would not.
#
# ### IoU vs Dice
# For one prediction they are tied by $D = \frac{2J}{1 + J}$: Dice is never lower, and both rank predictions
# the same way.

# %%
j = torch.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(4, 3.5))
ax.plot(j, 2 * j / (1 + j), label="Dice = 2 IoU / (1 + IoU)")
ax.plot(j, j, "--", color="gray", label="Dice = IoU")
ax.set(xlabel="IoU", ylabel="Dice", title="Dice is never below IoU")
ax.legend()
plt.show()

# %% [markdown]
# ### Per-image vs pooled
# What gets averaged matters more than IoU vs Dice. Carvana's metric, `dice_score`, is the **mean of per-image
# Dice** (an empty prediction of an empty mask counts 1): each image gets one vote. The Dice of all pixels
# **pooled** lets big objects outvote small ones. Two images: a large object found exactly, a small one missed.

# %%
from unet_tutorial.metrics import dice_score

masks_2 = torch.zeros(2, 1, 64, 64)  # (B, 1, H, W)
masks_2[0, 0, 10:42, 10:42] = 1  # image 0: a large object, 1024 pixels
masks_2[1, 0, 30:34, 30:35] = 1  # image 1: a small object, 20 pixels
preds_2 = masks_2.clone()
preds_2[1] = 0  # found the large object exactly, missed the small one
pooled = dice_per_class(confusion_matrix(preds_2, masks_2, num_classes=2))[1]  # class 1: the foreground
print(f"per-image Dice {dice_score(preds_2, masks_2):.3f} (the mean of 1 and 0), pooled Dice {pooled:.3f}")

# %% [markdown]
# ### Per-class vs pooled
# The same holds across classes. Three classes: a huge background, a medium class predicted perfectly, and a
# small class always missed. The pooled ("micro") IoU adds the counts of all classes before dividing, so the
# big classes hide the small one; the per-class ("macro") mean IoU gives each class one vote. ADE20K's mIoU
# (notebook 05) is the per-class mean.

# %%
targets_3 = torch.zeros(100, 100, dtype=torch.long)
targets_3[:30] = 1  # a medium class: 30 %
targets_3[90:, 90:] = 2  # a small class: 1 %
preds_3 = torch.where(targets_3 == 2, 0, targets_3)  # the small class is always predicted as background
cm3 = confusion_matrix(preds_3, targets_3, num_classes=3)
tp3 = cm3.diagonal()
micro_iou = tp3.sum() / (cm3.sum(0) + cm3.sum(1) - tp3).sum()  # all classes' counts added, then one ratio
print("IoU per class:", iou_per_class(cm3).numpy().round(3))
print(f"pooled (micro) IoU {micro_iou:.3f}, per-class mean IoU {mean_iou(cm3):.3f}, "
      f"pixel accuracy {pixel_accuracy(cm3):.3f}")

# %% [markdown]
# ### `ignore_index`
# Some pixels should not be scored: ADE20K's "other" label, object borders nobody could annotate, padding.
# Give them the `ignore_index` value (255 here) and every loss and metric leaves them out, whatever the model
# predicts there. Two predictions that differ only in the ignored columns get the same scores:

# %%
targets_ignored = targets_3.clone()
targets_ignored[:, :10] = 255  # do not score the first 10 columns
preds_other = preds_3.clone()
preds_other[:, :10] = 2  # a different prediction, but only where nothing is scored
for name, predictions in (("prediction A", preds_3), ("prediction B", preds_other)):
    cm_ignored = confusion_matrix(predictions, targets_ignored, num_classes=3, ignore_index=255)
    confident = 3 * F.one_hot(predictions, 3).permute(2, 0, 1)[None].float()  # logits (1, 3, 100, 100)
    dice = losses.dice_loss(confident, targets_ignored[None], ignore_index=255)
    print(f"{name}: mean IoU {mean_iou(cm_ignored):.4f}, pixels counted {cm_ignored.sum().item()}, "
          f"Dice loss {dice:.4f}")

# %% [markdown]
# ## 4. Class imbalance, made visible (core, ~20 min)
#
# Now a real training run. `make_small_objects` (in `unet_tutorial/course/toy_data.py`) draws images with one to
# three **small** red-ish discs on a noisy, slowly varying background: only a small share of the pixels is
# foreground (the cell prints it). The noise is strong enough that single pixels are ambiguous, so a model must
# use context.

# %%
from unet_tutorial.course.toy_data import make_small_objects
from unet_tutorial.viz import show

train_images, train_masks = make_small_objects(NUM_TRAIN, IMAGE_SIZE, seed=1)
val_images, val_masks = make_small_objects(NUM_VAL, IMAGE_SIZE, seed=2)
print(f"train images {tuple(train_images.shape)}, masks {tuple(train_masks.shape)}")
print(f"foreground: {train_masks.mean():.2%} of the pixels")
show(val_images[:3], masks=val_masks[:3])

# %% [markdown]
# ### The bar to beat: predict background everywhere
# `SegmentationMetrics` is the accumulator that training code uses: `update(logits, targets)` adds one batch's
# counts (a confusion matrix and per-image Dice), `compute()` reduces them to numbers at the end. Feed it a
# "model" that says background everywhere:

# %%
from unet_tutorial.metrics import SegmentationMetrics

lazy = SegmentationMetrics(num_classes=1)  # binary: logits (B, 1, H, W), threshold 0.5
lazy.update(torch.full_like(val_masks, -10.0), val_masks)  # logits -10: p ≈ 0, background everywhere
lazy_scores = lazy.compute()
print({k: round(v, 4) for k, v in lazy_scores.items()})

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What background everywhere scores
from unet_tutorial.course.reading import reading

reading(f"""
A pixel accuracy of {lazy_scores["pixel_accuracy"]:.1%}, and an IoU of {lazy_scores["iou"]:.0f} and a Dice of
{lazy_scores["dice_per_image"]:.0f}: it never found a single object. With small objects, report IoU or Dice. Keep
this in mind for the next cell.
""")

# %% [markdown]
# We train the notebook-01 U-Net four times, same seed, same initial weights, same batches, same budget: once
# per loss. The training loop is the package's `train_one_epoch` and `evaluate` (notebook 03 takes them apart);
# only the loss changes. `evaluate` runs a `SegmentationMetrics` over the validation images: per-image Dice at
# threshold 0.5, foreground IoU and pixel accuracy.
#
# What the losses predict for the first epoch: cross-entropy averages over all pixels, and nearly all of them
# are background, so its quickest way down is "background everywhere": Dice 0 at the pixel accuracy of the lazy
# model above, the objects found only later. Focal loss with $\alpha = 0.25$ weighs the foreground even less. The
# Dice loss scores the objects from its first step. The combo starts like cross-entropy, and its Dice term pushes
# towards the objects. If a longer budget lets them all catch up, the choice of loss matters most when the budget
# is short and the objects small. The cell prints each model's validation Dice and pixel accuracy after every
# epoch, and the reading after the plot checks these predictions against them. (On a GPU this notebook trains more
# images for more epochs with a wider U-Net, where all four may be high after one epoch: compare the first epoch
# and the gaps there.)

# %%
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from unet_tutorial.model import UNet
from unet_tutorial.train import evaluate, train_one_epoch

train_loader = DataLoader(TensorDataset(train_images, train_masks), batch_size=BATCH_SIZE, shuffle=True)
val_loader = DataLoader(TensorDataset(val_images, val_masks), batch_size=BATCH_SIZE)
experiment = {"BCE": losses.cross_entropy, "Dice": losses.dice_loss, "focal": losses.focal_loss,
              "Combo": losses.ComboLoss()}  # default weights: BCE 3, Dice 1, focal 4, as in section 2


def new_model(seed: int) -> tuple[UNet, torch.optim.Optimizer]:
    """A fresh U-Net and its optimizer; the seed fixes the initial weights and the order of the batches."""
    set_seed(seed)
    model = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS, depth=DEPTH).to(DEVICE)
    return model, torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)


results, models, val_dice, val_accuracy = {}, {}, {}, {}
for name, loss_fn in tqdm(experiment.items(), desc="losses"):
    model, optimizer = new_model(SEED)  # the same initial weights and batches for every loss
    val_dice[name], val_accuracy[name] = [], []
    for epoch in range(1, EPOCHS + 1):
        train_one_epoch(model, train_loader, loss_fn, optimizer, DEVICE, epoch=epoch, progress=False)
        results[name] = evaluate(model, val_loader, DEVICE, num_classes=1, progress=False)
        val_dice[name].append(results[name]["dice_per_image"])
        val_accuracy[name].append(results[name]["pixel_accuracy"])
    models[name] = model.eval()
    print(f"{name:>6}, epoch by epoch: Dice " + ", ".join(f"{d:.3f}" for d in val_dice[name])
          + "; pixel accuracy " + ", ".join(f"{a:.3f}" for a in val_accuracy[name])
          + f"; at the end IoU {results[name]['iou']:.3f}")

# %% [markdown]
# Validation Dice after each epoch, and the four models' probabilities on the validation images, kept for the
# rest of the notebook. `dice_of_each_image` gives each image's Dice (`dice_score` is their mean), so that two
# models can be compared image by image.

# %%
import numpy as np

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in val_dice.items():
    ax.plot(range(1, EPOCHS + 1), curve, marker="o", label=f"{name} ({curve[-1]:.2f})")
ax.set(xlabel="epoch", ylabel="validation Dice (per image)", ylim=(0, 1), xticks=range(1, EPOCHS + 1),
       title=f"Same U-Net, same budget: {len(train_loader) * EPOCHS} steps")
ax.legend()
plt.show()


def dice_of_each_image(preds: torch.Tensor, masks: torch.Tensor) -> list[float]:
    """Each image's Dice: (N, 1, H, W) 0/1 predictions and masks -> N numbers (dice_score gives their mean)."""
    return [dice_score(preds[i:i + 1], masks[i:i + 1]) for i in range(len(masks))]


with torch.no_grad():
    val_probs = {name: torch.sigmoid(model(val_images.to(DEVICE))).cpu() for name, model in models.items()}
val_per_image = {name: dice_of_each_image(probs_of_model > 0.5, val_masks) for name, probs_of_model in val_probs.items()}

# %% [markdown]
# One training run is one draw: other initial weights and another order of the batches give other numbers. How
# far do they move? We train each loss again with `SEEDS - 1` other seeds, on the same budget, and score the same
# validation images. The models of the first run (seed `SEED`) are the ones the rest of the notebook uses.

# %%
run_dice = {name: [results[name]["dice_per_image"]] for name in experiment}  # each run's final validation Dice
for seed in tqdm(range(SEED + 1, SEED + SEEDS), desc="other seeds"):
    for name, loss_fn in experiment.items():
        model, optimizer = new_model(seed)
        for epoch in range(1, EPOCHS + 1):
            train_one_epoch(model, train_loader, loss_fn, optimizer, DEVICE, epoch=epoch, progress=False)
        run_dice[name].append(evaluate(model, val_loader, DEVICE, num_classes=1, progress=False)["dice_per_image"])
for name, runs in run_dice.items():
    print(f"{name:>6}: final validation Dice of {len(runs)} training runs " + ", ".join(f"{d:.3f}" for d in runs)
          + f" (from one run to another: up to {max(runs) - min(runs):.3f})")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What this training run says about the four losses
from unet_tutorial.course.reading import compare


def listed(names: list[str]) -> str:
    """Names as a sentence lists them: "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


the = {name: f"the {name} model" for name in val_per_image}  # "the Dice model": a model, not the metric
steps = len(train_loader) * EPOCHS
first = {name: curve[0] for name, curve in val_dice.items()}
waiting = [name for name, dice in first.items() if dice < 0.05]  # still "background everywhere"
finding = [name for name in first if name not in waiting]
accuracies = [f"{val_accuracy[n][0]:.3f}" for n in waiting]
if len(accuracies) > 1 and len(set(accuracies)) == 1:  # "0.985 each", not "0.985, 0.985 and 0.985"
    accuracies = [f"{accuracies[0]} each"]
accuracy = (f"at a pixel accuracy of {listed(accuracies)}, where background everywhere scores "
            f"{lazy_scores['pixel_accuracy']:.3f}")
if not waiting:
    start = "every model had started to find the objects after the first epoch"
elif not finding:
    start = f"after the first epoch none of the four had found the objects yet (Dice under 0.05, {accuracy})"
else:
    start = (f"after the first epoch {listed([the[n] for n in waiting])} {'was' if len(waiting) == 1 else 'were'} "
             f"still near Dice 0 (under 0.05, {accuracy}), while {listed([the[n] for n in finding])} had started "
             "to find the objects")
spread_first = max(first.values()) - min(first.values())  # best minus worst validation Dice after epoch 1
spread_last = max(curve[-1] for curve in val_dice.values()) - min(curve[-1] for curve in val_dice.values())
if EPOCHS == 1:
    catching = ""
else:
    moved = "narrowed" if spread_last < spread_first else "widened" if spread_last > spread_first else "stayed"
    catching = (f" The gap between the best and the worst validation Dice was {spread_first:.3f} after the first "
                f"epoch and {spread_last:.3f} after the last: it {moved} over this run's {EPOCHS} epochs, and whether "
                "a longer budget closes it only a longer run can say.")
ranking = sorted(val_per_image, key=lambda name: np.mean(val_per_image[name]), reverse=True)
leader = ranking[0]
gaps = [compare(the[leader], val_per_image[leader], the[name], val_per_image[name]) for name in ranking[1:]]
runs = len(run_dice[leader])
image_noise = max(gap.standard_error for gap in gaps)
seed_spread = max(max(scores) - min(scores) for scores in run_dice.values())  # the most one loss moved
by_mean = sorted(run_dice, key=lambda name: np.mean(run_dice[name]), reverse=True)  # over all the runs
stuck = {name: sum(d < 0.05 for d in scores) for name, scores in run_dice.items()}  # runs ending near Dice 0
if any(stuck.values()):
    collapse_text = ("Part of that is not a spread but a collapse: runs that ended at \"background everywhere\" "
                     "(Dice under 0.05), " + listed([f"{stuck[n]} of {runs} for {the[n]}" for n in run_dice])
                     + ". A loss that stays there on a short budget is what this section set out to show.")
else:
    collapse_text = "No run ended at \"background everywhere\" (Dice under 0.05)."
wins = {name: sum(a > b for a, b in zip(run_dice[by_mean[0]], run_dice[name])) for name in by_mean[1:]}
always = [name for name in by_mean[1:] if wins[name] == runs]
if len(always) == len(wins):
    verdict = (f"in every one of the {runs} training runs {the[by_mean[0]]} scored higher than each of the others: "
               f"on this data and budget that is a tendency worth testing further ({runs} runs are few), not a law")
else:
    mixed = [f"{the[name]} in {wins[name]} of {runs}" for name in by_mean[1:] if wins[name] < runs]
    verdict = (f"{the[by_mean[0]]}, the highest on average over the runs, beat {listed(mixed)}: the order changes "
               "from one training run to the next, so this budget cannot rank "
               + ("them" if not always else f"those (only over {listed([the[n] for n in always])} did it lead every run)"))
reading(f"""
In the first run ({EPOCHS} epochs, {steps} steps per loss), {start}.{catching} At the end {the[leader]} scored the
highest Dice, {np.mean(val_per_image[leader]):.3f}, then
{listed([f"{the[n]} {np.mean(val_per_image[n]):.3f}" for n in ranking[1:]])}. Image by image on the same validation
images (the ± is the standard error of the mean of the per-image differences: how far the gap would move with
another draw of validation images; a gap beyond {gaps[0].bar:.2f} times it, Student's t for
{gaps[0].units} images, is our bar for "beyond the noise"):

{chr(10).join(f"- {gap.sentence()}" for gap in gaps)}

That ± says nothing about training. Trained again with other seeds, one loss's final Dice moved by up to
{seed_spread:.3f} from one run to another, {"more" if seed_spread > 2 * image_noise else "less"} than twice the
largest ± above ({image_noise:.3f}). {collapse_text} So {verdict}.
""")

# %% [markdown]
# This notebook's headline number, the combo's validation Dice (`make tutorial` collects one per notebook):

# %%
from unet_tutorial.utils import report_metric

report_metric("val_dice_combo", results["Combo"]["dice_per_image"], "02_losses_and_metrics", data="generated")

# %% [markdown]
# The pictures show what the numbers hide: each model's **probability** for every pixel (dark 0, bright 1),
# with the true objects outlined in cyan. The 0.5 threshold the metrics use turns bright into "found". Above
# the figure, per model over all the validation images: its mean probability on the objects and on the
# background; its predicted foreground (the pixels above 0.5), with the mean probability it gave them and the share
# that are objects (the rest is its spill); and its **expected calibration error** (ECE). A probability is
# calibrated when it is a frequency: of the pixels given 0.3, three in ten are objects. The ECE sorts the pixels
# into ten bins of probability (0 to 0.1, 0.1 to 0.2, ...), takes in each bin the gap between the mean probability
# and the share of objects, and averages those gaps over all the pixels: 0 is calibrated.

# %%
def calibration_error(probs: torch.Tensor, masks: torch.Tensor, bins: int = 10) -> float:
    """Expected calibration error of probabilities and 0/1 masks of any (same) shape: in each of ``bins`` equal bins
    of probability, |mean probability - share of objects|, weighted by the bin's share of the pixels."""
    probs, masks = probs.flatten(), masks.flatten()  # (N * H * W,)
    which = (probs * bins).long().clamp(max=bins - 1)  # each pixel's bin
    error = 0.0
    for b in which.unique():
        inside = which == b
        error += inside.float().mean().item() * abs(probs[inside].mean().item() - masks[inside].mean().item())
    return error


samples, sample_masks = val_images[:3], val_masks[:3]
fig, axes = plt.subplots(3, 1 + len(models), figsize=(2.2 * (1 + len(models)) + 0.8, 6.8), squeeze=False,
                         layout="constrained")
for row in range(3):
    axes[row, 0].imshow(samples[row].permute(1, 2, 0))  # (3, H, W) -> (H, W, 3)
    axes[row, 0].contour(sample_masks[row, 0], levels=[0.5], colors="cyan", linewidths=0.8)
on_objects, on_background, spill, claimed, calibration = {}, {}, {}, {}, {}
for col, (name, probs_of_model) in enumerate(val_probs.items(), start=1):
    on_objects[name] = probs_of_model[val_masks > 0].mean().item()
    on_background[name] = probs_of_model[val_masks == 0].mean().item()
    found = probs_of_model > 0.5  # (N, 1, H, W)
    spill[name] = (found & (val_masks == 0)).sum().item() / max(found.sum().item(), 1)
    calibration[name] = calibration_error(probs_of_model, val_masks)
    called = "no pixel above 0.5"
    if found.any():  # what it claims about the pixels it calls objects, against how many are
        claimed[name] = probs_of_model[found].mean().item()
        called = f"mean probability {claimed[name]:.2f} on its predicted foreground, {1 - spill[name]:.0%} of it objects"
    print(f"{name:>6}: mean probability on the objects {on_objects[name]:.3f}, on the background "
          f"{on_background[name]:.3f}; {called} (spill {spill[name]:.0%}); ECE {calibration[name]:.3f}")
    for row in range(3):
        shown = axes[row, col].imshow(probs_of_model[row, 0], cmap="magma", vmin=0, vmax=1)
        axes[row, col].contour(sample_masks[row, 0], levels=[0.5], colors="cyan", linewidths=0.8)
        axes[row, col].set_title(f"{name}-loss model\nDice {val_per_image[name][row]:.2f}", fontsize=9)
axes[0, 0].set_title("image", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.colorbar(shown, ax=axes[:, 1:], shrink=0.6, label="predicted probability of an object")
plt.show()

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the probabilities show
confident = max(on_objects, key=on_objects.get)
timid = min(on_objects, key=on_objects.get)
bright = max(on_background, key=on_background.get)
spiller = max(spill, key=spill.get)
overshoot = {name: claimed[name] - (1 - spill[name]) for name in claimed}  # claimed minus delivered, at p > 0.5
if not overshoot:
    sure = "None of the four called any pixel an object, so there is no over-confidence to read."
elif max(overshoot.values()) <= 0:
    sure = ("None is over-confident on the pixels it calls objects: each is right about them at least as often as "
            "its probabilities claim.")
else:
    over = max(overshoot, key=overshoot.get)
    sure = (f"The pixels {the[over]} called objects got a mean probability of {claimed[over]:.2f}, yet "
            f"{1 - spill[over]:.0%} of them are objects: it claims {overshoot[over]:.2f} more than it delivers, the "
            "most of the four")
    if over == "Dice":
        sure += ", as section 2's table warned for the Dice loss."
    elif "Dice" in overshoot:
        sure += (f". Section 2's table warned about the Dice loss; in this run the Dice model's gap is "
                 f"{overshoot['Dice']:.2f}.")
    else:
        sure += "."
best, worst = min(calibration, key=calibration.get), max(calibration, key=calibration.get)
share = val_masks.mean().item()
# Nearly every pixel is background: where a model's ECE is close to its mean background probability, the ECE
# mostly measures how bright that background is.
background_driven = all(abs(calibration[n] - on_background[n]) < 0.2 * max(calibration[n], 1e-9) for n in calibration)
calibration_note = ("and each model's error is close to its mean background probability: with so much background, "
                    "the error here mostly measures how far the background is from 0, so after this short a run "
                    "none of the four is calibrated, cross-entropy's pull towards calibration (its optimum) "
                    "included" if background_driven else
                    "so this short a run has not made the cross-entropy model the calibrated one the table's "
                    "optimum promises" if best != "BCE" else
                    "as cross-entropy's optimum (calibrated probabilities) would have it")
reading(f"""
In this run {the[confident]} is the most confident on the objects (a mean probability of {on_objects[confident]:.2f}
there, against {on_objects[timid]:.2f} for {the[timid]}), which is right where there are objects: over-confidence
is being sure where it is wrong. {the[bright][0].upper() + the[bright][1:]} has the brightest background
({on_background[bright]:.3f} on average), and {the[spiller]} spills the most: {spill[spiller]:.0%} of its predicted
foreground lies outside the objects. {sure}

Over all the validation pixels, the calibration error runs from {calibration[best]:.3f} for {the[best]} to
{calibration[worst]:.3f} for {the[worst]}; {the["BCE"]}'s is {calibration["BCE"]:.3f}
({"the lowest of the four" if best == "BCE" else "not the lowest"}), {calibration_note}. Calibration is not
accuracy: a model that gave every pixel the objects' share, {share:.3f}, would have an ECE of 0 and find nothing.
""")

# %% [markdown]
# What pulls the probabilities where: an overlap loss rewards covering the objects, whatever the probabilities say
# elsewhere; cross-entropy is smallest when the probabilities are frequencies, so it pulls towards calibration, but
# the many background pixels come first. Faint grids or stripes, where you see them, are the transposed
# convolutions' 2x2 pattern from notebook 01.

# %% [markdown]
# ## 5. Playground: move a predicted blob, watch every number (optional)
# The true mask is a disc of radius 10 pixels in the 64 x 64 image. The prediction is a soft disc whose
# **radius** and horizontal **offset** you choose; the **threshold** turns its probabilities into a 0/1 mask for
# the metrics (the losses use the probabilities, so the threshold does not move them). With widgets (Jupyter,
# Colab) you get sliders; below them, three fixed settings are drawn for viewers without widgets.

# %%
from unet_tutorial.course.widgets import interactive_or_static

target_disc = disc(32, 32, 10)  # (1, 1, 64, 64)


def blob_scores(radius: int, offset: int, threshold: float) -> tuple[torch.Tensor, dict[str, float]]:
    """A soft predicted disc against the fixed true disc: its logits (1, 1, 64, 64) and every loss and metric."""
    distance = ((yy - 32) ** 2 + (xx - 32 - offset) ** 2).float().sqrt()
    logits_blob = ((radius - distance) / 1.5)[None, None]  # (1, 1, 64, 64): p = 0.5 on the rim
    hard = (torch.sigmoid(logits_blob) > threshold).float()
    cm_blob = confusion_matrix(hard, target_disc, num_classes=2)
    values = {name: fn(logits_blob, target_disc).item() for name, fn in LOSS_FUNCTIONS.items()}
    values |= {"metric: Dice": dice_score(hard, target_disc), "metric: IoU": iou_per_class(cm_blob)[1].item(),
               "metric: pixel acc.": pixel_accuracy(cm_blob)}
    return logits_blob, values


def playground(radius: int, offset: int, threshold: float) -> plt.Figure:
    """The soft disc and, as bars, every loss (blue) and metric (red) of ``blob_scores``."""
    logits_blob, values = blob_scores(radius, offset, threshold)
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [1, 2]})
    ax_img.imshow(torch.sigmoid(logits_blob)[0, 0], cmap="magma", vmin=0, vmax=1)
    ax_img.contour(target_disc[0, 0], levels=[0.5], colors="cyan")
    ax_img.set(title="prediction (true mask in cyan)", xticks=[], yticks=[])
    shown = [min(v, 1.5) for v in values.values()]  # the Lovász hinge can pass 1: cut its bar at 1.5
    ax_bar.barh(list(values), shown, color=["tab:red" if n.startswith("metric") else "tab:blue" for n in values])
    for row, (value, length) in enumerate(zip(values.values(), shown)):
        ax_bar.text(length + 0.02, row, f"{value:.3f}", va="center", fontsize=8)
    ax_bar.set(xlim=(0, 1.75), title=f"radius {radius}, offset {offset}, threshold {threshold}: "
               "losses (blue), metrics (red)")
    ax_bar.invert_yaxis()
    fig.tight_layout()
    plt.close(fig)
    return fig


interactive_or_static(playground, static=[{"radius": 10, "offset": 0, "threshold": 0.5},
                                          {"radius": 6, "offset": 8, "threshold": 0.5},
                                          {"radius": 1, "offset": 0, "threshold": 0.5}],
                      radius=(1, 25, 1), offset=(-25, 25, 1), threshold=(0.05, 0.95, 0.05))

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Reading the three fixed settings
perfect, tiny = blob_scores(10, 0, 0.5)[1], blob_scores(1, 0, 0.5)[1]
strict = blob_scores(10, 0, 0.9)[1]
reading(f"""
A perfect radius still costs a Dice loss of {perfect["Dice"]:.2f}, because the soft rim is neither 0 nor 1, while
the metrics, on the hard mask, are near 1 (Dice {perfect["metric: Dice"]:.3f}). A radius of 1 covers almost none of the object:
the Dice and Jaccard losses go to {tiny["Dice"]:.2f} and {tiny["Jaccard"]:.2f}, BCE only to {tiny["BCE"]:.2f}, and
pixel accuracy still claims {tiny["metric: pixel acc."]:.0%}. Things to try: move the blob off the disc; a threshold
of 0.9 with the perfect radius shrinks the hard mask, and its IoU falls from {perfect["metric: IoU"]:.2f} to
{strict["metric: IoU"]:.2f} while no loss moves.
""")

# %% [markdown]
# ## Exercises (core, ~15 min: exercise 1 and experiment 2; experiment 3 optional)
#
# Three to write: a function, then two experiments on the models you just trained. Each ends with a self-check that says what is
# wrong, if anything, without giving the answer away; once you have tried, `reveal=True` in the check's call shows
# the expected answer.
#
# ### Exercise 1: frequency-weighted IoU
# The mean IoU gives every class one vote. The FCN paper (Long et al., 2015,
# [arXiv:1411.4038](https://arxiv.org/abs/1411.4038)) also reports **frequency-weighted IoU**: each class's IoU
# weighted by its share of the *true* pixels, $\sum_c \frac{n_c}{n}\, IoU_c$, where $n_c$ counts the pixels
# whose target is class c. Write `frequency_weighted_iou(confusion)`, a float, from a `(C, C)` confusion matrix
# (rows targets, columns predictions; section 3). `iou_per_class` gives the IoU of each class. The check tries
# matrices where a class is missing. Guess first: on section 3's three classes, will it land near their mean
# IoU or near their pixel accuracy?

# %% tags=["solution"]
# Hint: which sum of the matrix counts each class's true pixels? And what does iou_per_class say about a class
#   that is in neither the targets nor the predictions?
import torch

from unet_tutorial.metrics import iou_per_class


def frequency_weighted_iou(confusion: torch.Tensor) -> float:
    """The IoU of each class weighted by its share of the target pixels, summed."""
    confusion = confusion.double()
    share = confusion.sum(1) / confusion.sum()  # (C,): the rows hold the targets
    iou = iou_per_class(confusion).nan_to_num(0.0)  # NaN: a class nowhere, whose share is 0 anyway
    return (share * iou).sum().item()


# %%
from unet_tutorial.course.exercises.losses import check_frequency_weighted_iou

check_frequency_weighted_iou(frequency_weighted_iou)
print(f"section 3's three classes: frequency-weighted IoU {frequency_weighted_iou(cm3):.3f}, "
      f"mean IoU {mean_iou(cm3):.3f}, pixel accuracy {pixel_accuracy(cm3):.3f}")

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Frequency-weighted IoU against the mean IoU and the pixel accuracy
fw_iou, small_share = frequency_weighted_iou(cm3), (cm3.sum(1)[2] / cm3.sum()).item()
nearer = "the pixel accuracy" if abs(fw_iou - pixel_accuracy(cm3)) < abs(fw_iou - mean_iou(cm3)) else "the mean IoU"
reading(f"""
Near {nearer}: {fw_iou:.3f} against {pixel_accuracy(cm3):.3f}, where the mean IoU is {mean_iou(cm3):.3f}. The big
classes dominate it just as they dominate pixel accuracy, so the small class that is always missed costs it only
its {small_share:.0%} share. That is why benchmarks whose rare classes matter (ADE20K, notebook 05) report the mean
IoU.
""")

# %% [markdown]
# ### Experiment 2: is 0.5 the right threshold for each loss?
# Section 2's table said that focal loss shifts the probabilities lower, so the 0.5 threshold can miss, and that
# the Dice loss makes over-confident probabilities. Test both on section 4's models: `val_probs` holds each
# model's probabilities on the validation images. For each model, find the threshold of `THRESHOLDS` (`0.05`,
# `0.10`, ..., `0.95`) with the best per-image Dice, and set `best_thresholds = {name: threshold}`. A threshold
# is part of the model, so move it away from the default 0.5 only as far as it pays: of the thresholds whose Dice
# is within `TIE` (`0.005`) of the best, keep the one nearest 0.5. Guess first: which model's threshold lands
# lowest? Does any land above 0.5?

# %%
from unet_tutorial.course.exercises.losses import THRESHOLDS, TIE

print(f"val_probs: {', '.join(val_probs)}, each {tuple(val_probs['focal'].shape)}; {len(THRESHOLDS)} thresholds "
      f"from {THRESHOLDS[0]} to {THRESHOLDS[-1]}; ties within {TIE}")

# %% tags=["solution"]
# Hint: section 3 showed which metric scores hard masks one image at a time, and comparing probabilities with a
#   threshold makes a hard mask. Keep each model's scores in a dict {threshold: Dice}: the task's rule (best, then
#   nearest 0.5 among the near-best) is then two lines.
from unet_tutorial.course.exercises.losses import THRESHOLDS, TIE
from unet_tutorial.metrics import dice_score

best_thresholds = {}
for name, probs_of_model in val_probs.items():
    scores = {t: dice_score(probs_of_model > t, val_masks) for t in THRESHOLDS}
    near_best = [t for t, score in scores.items() if score >= max(scores.values()) - TIE]
    best_thresholds[name] = min(near_best, key=lambda t: abs(t - 0.5))
    print(f"{name:>6}: keep {best_thresholds[name]}, Dice {scores[best_thresholds[name]]:.3f} "
          f"(at 0.5: {scores[0.5]:.3f})")

# %%
from unet_tutorial.course.exercises.losses import check_best_threshold

check_best_threshold(best_thresholds, val_probs, val_masks)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the thresholds say, in this run
lowest = min(best_thresholds.values())
at_lowest = [name for name, t in best_thresholds.items() if t == lowest]
above = [f"{the[name]} ({t})" for name, t in best_thresholds.items() if t > 0.5]
moved = [name for name, t in best_thresholds.items() if t != 0.5]
gains = []
for name in moved:
    tuned = dice_of_each_image(val_probs[name] > best_thresholds[name], val_masks)
    gains.append(compare(f"{name} at {best_thresholds[name]}", tuned, f"{name} at 0.5", val_per_image[name]).sentence())
owner = f"{the[at_lowest[0]]}'s" if len(at_lowest) == 1 else f"shared by {listed([the[n] for n in at_lowest])}"
focal = best_thresholds["focal"]
below = [name for name, t in best_thresholds.items() if t < 0.5]
others = [the[name] for name in below if name != "focal"]
if focal >= 0.5:
    focal_note = f"the focal model's, {focal}, is not below 0.5: section 2's table does not hold in this run"
elif not others:
    focal_note = "section 2's table predicts a low threshold for focal loss, and the focal model is the only one below 0.5"
else:
    where = "the lowest" if "focal" in at_lowest else f"{focal}, not the lowest"
    focal_note = (f"section 2's table predicts a low threshold for focal loss, and the focal model's is {where}, but "
                  f"{len(below)} of the {len(best_thresholds)} models land below 0.5 ({listed(others)} too), so in "
                  "this run a low threshold is not focal loss's alone")
reading(f"""
In this run the thresholds to keep are {listed([f"{name} {t}" for name, t in best_thresholds.items()])}. The
lowest, {lowest}, is {owner}: {focal_note}.
{"Above 0.5: " + listed(above) + "." if above else "None lands above 0.5."}
{"Where a threshold moved, its gain over 0.5, image by image:" if moved else "No threshold moved from 0.5."}

{chr(10).join(f"- {sentence}" for sentence in gains)}

These gains are measured on the images the thresholds were tuned on, so they flatter: a fair measure tunes on
one set of images and scores on another (notebook 03 does). A threshold is part of the model: tune it on
validation images, never on the test set, and keep it with the checkpoint.
""")

# %% [markdown]
# ### Experiment 3: tiles, and the "background everywhere" model (optional, ~10 min)
# Large images (satellite photos, microscope slides) are often cut into tiles, and most tiles hold nothing to
# find; many data sets have whole images with nothing in them too (most chest X-rays in SIIM-ACR pneumothorax, for
# one). Cut the validation masks, and the Dice model's predictions below, into `TILE` x `TILE` tiles, and score
# them per tile, the Carvana way (`dice_score`): set `lazy_dice` to the per-tile Dice of the lazy model of
# section 4 (background everywhere) and `model_dice` to the Dice model's. Guess first: which of the two scores
# higher per tile? And pooled (section 3)?

# %%
dice_preds = (val_probs["Dice"] > 0.5).float()  # (N, 1, H, W) of 0/1: the Dice model's predictions
print(f"masks and predictions {tuple(val_masks.shape)}; {(IMAGE_SIZE // TILE) ** 2} tiles of {TILE} x {TILE} per image")

# %% tags=["solution"]
# Hint: a tile grid is a reshape and a permute: a plain reshape to (-1, 1, TILE, TILE) cuts runs of whole rows, not
#   squares, so check one of your tiles against a slice of the mask. Then, what does section 3 say an empty
#   prediction of an empty mask scores, and of a mask with an object?
import torch

from unet_tutorial.metrics import dice_score


def to_tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """Every tile of every image: (N, C, H, W) -> (N * H/tile * W/tile, C, tile, tile)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // tile, tile, w // tile, tile)  # (N, C, H/t, t, W/t, t)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, tile, tile)  # (N * H/t * W/t, C, t, t)


mask_tiles, pred_tiles = to_tiles(val_masks, TILE), to_tiles(dice_preds, TILE)
torch.testing.assert_close(mask_tiles[1], val_masks[0, :, :TILE, TILE:2 * TILE])  # image 0, tile row 0, column 1
lazy_dice = dice_score(torch.zeros_like(mask_tiles), mask_tiles)
model_dice = dice_score(pred_tiles, mask_tiles)
print(f"{len(mask_tiles)} tiles: per-tile Dice {lazy_dice:.3f} (background everywhere), {model_dice:.3f} (Dice model)")

# %%
from unet_tutorial.course.exercises.losses import check_empty_image_dice

check_empty_image_dice(lazy_dice, val_masks, tile=TILE, model_dice=model_dice, preds=dice_preds)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title Per tile and pooled, in this run
empty = mask_tiles.flatten(1).sum(1) == 0  # (tiles,)
model_tiles = dice_of_each_image(pred_tiles, mask_tiles)
tile_image = [i // (IMAGE_SIZE // TILE) ** 2 for i in range(len(mask_tiles))]  # to_tiles keeps each image's together
tile_gap = compare("the Dice model", model_tiles, "background everywhere", dice_of_each_image(0 * mask_tiles, mask_tiles),
                   groups=tile_image, group_name="validation images")  # the tiles of one image are not independent
kept_empty = (pred_tiles.flatten(1).sum(1)[empty] == 0).float().mean().item()
on_objects_tiles = float(np.mean([d for d, e in zip(model_tiles, empty.tolist()) if not e]))
pooled_model = dice_per_class(confusion_matrix(pred_tiles, mask_tiles, num_classes=2))[1].item()
reading(f"""
{int(empty.sum())} of the {len(mask_tiles)} tiles are empty, and background everywhere scores 1 on each of them: a
per-tile Dice of {lazy_dice:.3f} without finding a single object (pooled, its Dice is 0). The Dice model scores
{model_dice:.3f} per tile and {pooled_model:.3f} pooled. Per tile, with the noise counted over whole images, since
the tiles of one image are not independent:
{tile_gap.sentence().replace(f", {len(mask_tiles)} images", f", {len(mask_tiles)} tiles")}.
{"A model that finds objects can lose to one that finds nothing: a single false alarm on an empty tile costs it that "
 "tile's whole point." if tile_gap.leader == "background everywhere" else "The lazy model's score is all free points."}
The honest report separates the two kinds of tiles: the Dice model left {kept_empty:.0%} of the empty tiles empty,
and scored {on_objects_tiles:.3f} on the tiles with an object. Carvana has a car in every image, so its per-image
Dice is safe from this; on a data set with empty images or tiles, report those two numbers separately.
""")

# %% [markdown]
# ## Summary
# - Models give logits; the losses apply the sigmoid (binary) or softmax (multi-class) themselves.
# - Cross-entropy averages over pixels, so a small object barely moves it; focal loss silences easy pixels;
#   Dice, Jaccard and Tversky score the overlap (soft TP, FP, FN); Lovász optimises IoU; a combo gets the
#   stability of one and the overlap of the other.
# - Metrics: count a confusion matrix first (summed over batches), reduce to IoU, Dice, accuracy after.
# - Pixel accuracy misleads on small objects; what you average over matters: per-image Dice (the Carvana
#   metric) and per-class mean IoU (ADE20K) give small objects and small classes a vote, pooled counts do not;
#   `ignore_index` pixels never count.
# - On small objects with a short budget, the loss decides what a model learns first; section 4 read its run's
#   order, and its gaps against the noise of the validation images, instead of trusting one run's ranking.
# - The threshold is part of the model: tune it on validation images; 0.5 is a default, not a law.
#   A per-image mean gives a free point to "nothing" on every empty image or tile: report empty ones separately.
#
# Next, notebook 03 trains a U-Net on Carvana with `ComboLoss` and `SegmentationMetrics` inside `fit`.
