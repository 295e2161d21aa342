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
# - why 99 % pixel accuracy can mean an IoU of 0; IoU vs Dice; per-image, per-class and pooled means
# - why small objects on a large background break plain cross-entropy, seen by training one U-Net four ways
#
# **Runtime**: under a minute on a 2-core CPU (full mode, measured); a Colab GPU is faster.

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
# Settings: every knob of this notebook, smaller in smoke mode (tests and CI).
from unet_tutorial.utils import pick_device, set_seed, smoke_mode

SMOKE = smoke_mode()
DEVICE = pick_device()
IMAGE_SIZE = 64  # small images: the point is the losses, not the model
# Section 4 trains a narrow U-Net (the paper's has 64 base channels) once per loss, with the same budget.
if SMOKE:
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 64, 8, 2, 8
elif DEVICE.type == "cuda":
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 1024, 128, 10, 32
else:  # a laptop CPU: under a minute for all four losses
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 256, 64, 3, 16
BATCH_SIZE = 8 if SMOKE else 16
DEPTH = 3
LEARNING_RATE = 1e-2 if SMOKE else 3e-3  # bigger steps so that smoke mode's 16 steps per loss show something
set_seed(0)
print(f"smoke mode: {SMOKE}, device: {DEVICE}, image size: {IMAGE_SIZE}, {NUM_TRAIN} training images, "
      f"{EPOCHS} epoch(s) per loss")

# %% [markdown]
# ## 1. Logits, probabilities, and the per-pixel losses
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
# silences the many easy background pixels, and the paper found 0.25 worked best on top of it.
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
# ## 2. Overlap losses: true positives, false positives, false negatives
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
# Now the picture that explains most of this notebook. A 64 x 64 mask holds one small object (under 2 % of the
# pixels). The prediction gives probability $p$ to the object's pixels and a low 0.005 to the background; we
# slide $p$ from "missed entirely" (left) to "found" (right) and plot every loss.

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
# 98 % of the pixels are right and they average over all of them; the push that would pull the object out is
# small too. Dice, Jaccard and Tversky are close to 1: for them the object is the whole story. (The Lovász hinge
# starts far above the plot and reaches 0 only when every object logit is above its margin of 1, $p > 0.73$.)
# At the far right, where the object is found, Dice and Jaccard still do not reach 0: the background's 0.005 on
# some 4,000 pixels adds up to about 20 soft false positives, a third of the object's size. Soft overlap losses
# count every bit of probability, wherever it is. That is the trade-off:
#
# | loss | shines | fails |
# |---|---|---|
# | BCE / cross-entropy | smooth, well-calibrated probabilities, stable from the first step | small objects drown in background |
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
# ## 3. Metrics: count first, reduce after
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
# ## 4. Class imbalance, made visible
#
# Now a real training run. `make_small_objects` (in `unet_tutorial/course/toy_data.py`) draws images with one to
# three **small** red-ish discs on a noisy, slowly varying background: about 1.5 % of the pixels are
# foreground. The noise is strong enough that single pixels are ambiguous, so a model must use context.

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
print({k: round(v, 4) for k, v in lazy.compute().items()})

# %% [markdown]
# About 99 % pixel accuracy, and an IoU and Dice of 0: it never found a single object. With small objects,
# report IoU or Dice. Keep this in mind for the next cell.
#
# We train the notebook-01 U-Net four times, same seed, same initial weights, same batches, same budget: once
# per loss. The training loop is the package's `train_one_epoch` and `evaluate` (notebook 03 takes them apart);
# only the loss changes. `evaluate` runs a `SegmentationMetrics` over the validation images: per-image Dice at
# threshold 0.5, foreground IoU and pixel accuracy.

# %%
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from unet_tutorial.model import UNet
from unet_tutorial.train import evaluate, train_one_epoch

train_loader = DataLoader(TensorDataset(train_images, train_masks), batch_size=BATCH_SIZE, shuffle=True)
val_loader = DataLoader(TensorDataset(val_images, val_masks), batch_size=BATCH_SIZE)
experiment = {"BCE": losses.cross_entropy, "Dice": losses.dice_loss, "focal": losses.focal_loss,
              "Combo": losses.ComboLoss()}  # default weights: BCE 3, Dice 1, focal 4, as in section 2
results, models, val_dice = {}, {}, {}
for name, loss_fn in tqdm(experiment.items(), desc="losses"):
    set_seed(0)  # the same initial weights and batches for every loss
    model = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS, depth=DEPTH).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    val_dice[name] = []
    for epoch in range(1, EPOCHS + 1):
        train_one_epoch(model, train_loader, loss_fn, optimizer, DEVICE, epoch=epoch, progress=False)
        results[name] = evaluate(model, val_loader, DEVICE, num_classes=1, progress=False)
        val_dice[name].append(results[name]["dice_per_image"])
    models[name] = model
    print(f"{name:>6}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[name].items()))

# %% [markdown]
# Validation Dice after each epoch:

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in val_dice.items():
    ax.plot(range(1, EPOCHS + 1), curve, marker="o", label=f"{name} ({curve[-1]:.2f})")
ax.set(xlabel="epoch", ylabel="validation Dice (per image)", ylim=(0, 1), xticks=range(1, EPOCHS + 1),
       title=f"Same U-Net, same budget: {len(train_loader) * EPOCHS} steps")
ax.legend()
plt.show()

# %% [markdown]
# This notebook's headline number, the combo's validation Dice (`make tutorial` collects one per notebook):

# %%
from unet_tutorial.utils import report_metric

report_metric("val_dice_combo", results["Combo"]["dice_per_image"], "02_losses_and_metrics")

# %% [markdown]
# The pictures show what the numbers hide: each model's **probability** for every pixel (dark 0, bright 1),
# with the true objects outlined in cyan. The 0.5 threshold the metrics use turns bright into "found".

# %%
samples, sample_masks = val_images[:3], val_masks[:3]
fig, axes = plt.subplots(3, 1 + len(models), figsize=(2.2 * (1 + len(models)), 6.6), squeeze=False)
for row in range(3):
    axes[row, 0].imshow(samples[row].permute(1, 2, 0))  # (3, H, W) -> (H, W, 3)
    axes[row, 0].contour(sample_masks[row, 0], levels=[0.5], colors="cyan", linewidths=0.8)
for col, (name, model) in enumerate(models.items(), start=1):
    model.eval()
    with torch.no_grad():
        probs_val = torch.sigmoid(model(samples.to(DEVICE))).cpu()  # (3, 1, H, W)
    print(f"{name:>6}: mean probability on the background pixels {probs_val[sample_masks == 0].mean():.3f}, "
          f"on the objects {probs_val[sample_masks > 0].mean():.3f}")
    for row in range(3):
        axes[row, col].imshow(probs_val[row, 0], cmap="magma", vmin=0, vmax=1)
        axes[row, col].contour(sample_masks[row, 0], levels=[0.5], colors="cyan", linewidths=0.8)
        image_dice = dice_score(probs_val[row:row + 1] > 0.5, sample_masks[row:row + 1])
        axes[row, col].set_title(f"{name}: Dice {image_dice:.2f}", fontsize=9)
axes[0, 0].set_title("image", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# What to look for, in our CPU run (3 epochs, 48 steps per loss). After the first epoch BCE, focal and the
# combo were all still at Dice 0 while the Dice loss had started to find the objects (the curve above). Cross-entropy is
# dominated by the ~98.5 % background pixels, so it first learns "background everywhere": Dice 0 while pixel
# accuracy is already ~98 %, the objects found only later. Focal loss with α = 0.25 weighs the foreground even
# less. The Dice loss scores the objects from the first step. The combo starts like BCE, then its Dice term
# pulls it ahead: it ended best (0.81, then Dice 0.78, focal 0.71, BCE 0.66), BCE's steady per-pixel gradients
# plus Dice's push towards the objects.
#
# The pictures say the same. In the top row the faint object on the right is found by Dice and the combo and
# missed by BCE and focal, whose probabilities on the objects average about 0.5 (printed above the figure),
# against 0.94 for Dice. Dice's blobs also spill over the cyan outlines (its lower Dice in rows 2 and 3), and
# its background is the brightest (0.21 on average). After 48 steps none of the four is calibrated, but Dice
# is the most confident on the objects and spills past them: it scores the overlap, not probabilities.
# The faint grids and stripes in most panels are the transposed convolutions' 2x2 pattern from notebook 01.
# With more epochs we expect them all to catch up: the choice of loss matters most when the budget is short and the objects
# small. (On a GPU the notebook trains 1024 images for 10 epochs with a wider U-Net; there all four may be high
# after one epoch: compare the first epoch and the gaps, not the order.)
#
# In smoke mode (tests and CI: `UNET_TUTORIAL_SMOKE=1`) each loss gets only 16 steps of a tiny U-Net: only the
# Dice loss has found the objects by then; the other three are still at Dice 0, dark on the objects.
#
# ## 5. Playground: move a predicted blob, watch every number
# The true mask is a disc covering about 8 % of the image. The prediction is a soft disc whose **radius** and
# horizontal **offset** you choose; the **threshold** turns its probabilities into a 0/1 mask for the metrics
# (the losses use the probabilities, so the threshold does not move them). With widgets (Jupyter, Colab) you
# get sliders; below them, three fixed settings are drawn for viewers without widgets.

# %%
from unet_tutorial.course.widgets import interactive_or_static

target_disc = disc(32, 32, 10)  # (1, 1, 64, 64)


def playground(radius: int, offset: int, threshold: float) -> plt.Figure:
    """A soft predicted disc against a fixed true disc: every loss and metric, as bars."""
    distance = ((yy - 32) ** 2 + (xx - 32 - offset) ** 2).float().sqrt()
    logits_blob = ((radius - distance) / 1.5)[None, None]  # (1, 1, 64, 64): p = 0.5 on the rim
    hard = (torch.sigmoid(logits_blob) > threshold).float()
    cm_blob = confusion_matrix(hard, target_disc, num_classes=2)
    values = {name: fn(logits_blob, target_disc).item() for name, fn in LOSS_FUNCTIONS.items()}
    values |= {"metric: Dice": dice_score(hard, target_disc), "metric: IoU": iou_per_class(cm_blob)[1].item(),
               "metric: pixel acc.": pixel_accuracy(cm_blob)}
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

# %% [markdown]
# Read the three fixed settings: a perfect radius still costs a Dice loss of about 0.2, because the soft rim
# is neither 0 nor 1, while the metrics, on the hard mask, are near 1. A radius of 1 misses the object: Dice and
# Jaccard losses go to about 0.9, BCE only to 0.3, and pixel accuracy still claims 92 %. Things to try: move the
# blob off the disc; a threshold of 0.9 with the perfect radius shrinks the hard mask and halves the IoU while
# no loss moves.
#
# ## Exercises
#
# One to write, two experiments on the models you just trained. Each ends with a self-check.
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

# %% [markdown] tags=["answer"]
# Near the pixel accuracy: 0.980 against 0.990, where the mean IoU is 0.662. The big classes dominate it just as
# they dominate pixel accuracy, so the small class that is always missed costs it only its 1 % share. That is
# why benchmarks whose rare classes matter (ADE20K, notebook 05) report the mean IoU.

# %% [markdown]
# ### Experiment 2: is 0.5 the right threshold for the focal model?
# Section 2's table said focal loss shifts the probabilities lower, so the 0.5 threshold can miss. Test it:
# here are the focal model's probabilities on the validation images. Try thresholds from 0.05 to 0.95 and set
# `best_threshold` to the one with the best per-image Dice (`dice_score`). Guess first: above or below 0.5?

# %%
focal_model = models["focal"].eval()
with torch.no_grad():
    focal_probs = torch.sigmoid(focal_model(val_images.to(DEVICE))).cpu()  # (N, 1, H, W)
print(f"focal probabilities {tuple(focal_probs.shape)}, on the objects' pixels: mean "
      f"{focal_probs[val_masks > 0].mean():.2f}")

# %% tags=["solution"]
# Hint: dice_score wants hard 0/1 masks: compare focal_probs with each threshold, score it against val_masks,
#   and keep the threshold with the highest score.
from unet_tutorial.metrics import dice_score

scores = {t: dice_score(focal_probs > t, val_masks) for t in [round(0.05 * i, 2) for i in range(1, 20)]}
best_threshold = max(scores, key=scores.get)
print(f"best threshold {best_threshold}: Dice {scores[best_threshold]:.3f} (at 0.5: {scores[0.5]:.3f})")

# %%
from unet_tutorial.course.exercises.losses import check_best_threshold

check_best_threshold(best_threshold, focal_probs, val_masks)

# %% [markdown] tags=["answer"]
# Below 0.5: in our CPU run the focal model's best threshold was 0.4, with a Dice of 0.755 against 0.715 at 0.5
# (a GPU run, longer and wider, may differ). A threshold is part of the model: tune it on validation images,
# never on the test set, and keep it with the checkpoint. Notebook 03 tunes one for Carvana.

# %% [markdown]
# ### Experiment 3: the "background everywhere" model, on a data set with empty images
# Many data sets have images with nothing to find (most chest X-rays in SIIM-ACR pneumothorax, for one).
# `with_empty` below is our validation masks plus half as many empty ones. What per-image Dice does the lazy
# model of section 4, which predicts background everywhere, score there? Set `lazy_dice` to it, then compare
# it with the pooled Dice (section 3) of the same prediction.

# %%
with_empty = torch.cat([val_masks, torch.zeros_like(val_masks[: len(val_masks) // 2])])  # (1.5 N, 1, H, W)
print(f"masks {tuple(with_empty.shape)}, empty: {int((with_empty.flatten(1).sum(1) == 0).sum())}")

# %% tags=["solution"]
# Hint: the lazy model's prediction is a tensor of zeros shaped like the masks; section 3 says how dice_score
#   scores an empty prediction of an empty mask.
import torch

from unet_tutorial.metrics import confusion_matrix, dice_per_class, dice_score

lazy_preds = torch.zeros_like(with_empty)
lazy_dice = dice_score(lazy_preds, with_empty)
lazy_pooled = dice_per_class(confusion_matrix(lazy_preds, with_empty, num_classes=2))[1].item()
print(f"per-image Dice {lazy_dice:.3f}, pooled Dice {lazy_pooled:.3f}")

# %%
from unet_tutorial.course.exercises.losses import check_empty_image_dice

check_empty_image_dice(lazy_dice, with_empty)

# %% [markdown] tags=["answer"]
# The per-image mean gives the lazy model a free point for every empty image: a third of the images here,
# 0.333, where the pooled Dice of the same prediction is 0.000 (pooled counts give an empty image nothing).
# Carvana has a car in every image, so its per-image Dice is safe from this; on a data set with empty images,
# report the share of empty images found empty and the Dice on the others, separately.

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
# - On small objects with a short budget, Dice loss found them first; cross-entropy learned "background" first.
# - The threshold is part of the model: tune it on validation images; 0.5 is a default, not a law.
#   A per-image mean gives a free point to "nothing" on every empty image: report empty images separately.
#
# Next, notebook 03 trains a U-Net on Carvana with `ComboLoss` and `SegmentationMetrics` inside `fit`.
