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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/02_losses_and_metrics.ipynb)
#
# **What you will learn**
# - each segmentation loss from its formula: cross-entropy, Dice, Jaccard, Tversky, focal, Lovasz, and a combo
# - why small objects on a large background break plain cross-entropy, seen by training one U-Net four ways
# - metrics as "count first, reduce after": the confusion matrix, IoU, Dice, pixel accuracy
# - why 99 % pixel accuracy can mean an IoU of 0, IoU vs Dice, per-class vs pooled means, `ignore_index`
#
# **Runtime**: about 3 minutes on a laptop CPU, about a minute on a Colab GPU.

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
IMAGE_SIZE = 64  # small images: the point is the losses, not the model
# Generated images with small objects, the same epoch budget for every loss, a narrow U-Net (01 uses 64 channels).
if SMOKE:
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 24, 8, 1, 8
elif DEVICE.type == "cuda":
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 1024, 128, 10, 32
else:  # a laptop CPU: a few minutes for all four losses
    NUM_TRAIN, NUM_VAL, EPOCHS, BASE_CHANNELS = 256, 64, 3, 16
BATCH_SIZE = 8 if SMOKE else 16
DEPTH = 3
LEARNING_RATE = 3e-3
set_seed(0)
print(f"smoke mode: {SMOKE}, device: {DEVICE}, image size: {IMAGE_SIZE}, {NUM_TRAIN} training images, "
      f"{EPOCHS} epoch(s) per loss")

# %% [markdown]
# ## 1. The losses, from their formulas
#
# A model gives one logit $z$ per pixel (binary) or one per class (multi-class); $p = \sigma(z)$ or the
# softmax is the predicted probability and $t$ the target. The package's losses take **logits**: the sigmoid
# and softmax happen inside, where they are numerically safe. The shapes decide the mode: logits `(B, 1, H, W)`
# are binary, with 0/1 targets `(B, 1, H, W)` or `(B, H, W)`; logits `(B, C, H, W)` with `C > 1` are
# multi-class, with long targets `(B, H, W)`.
#
# **Binary cross-entropy** scores every pixel on its own and averages:
# $\mathrm{BCE} = -\frac{1}{N}\sum_i \big[t_i \log p_i + (1 - t_i)\log(1 - p_i)\big]$.
#
# **Focal loss** (Lin et al. 2017) multiplies each pixel's cross-entropy by $(1 - p_t)^\gamma$, where $p_t$ is
# the probability given to the right answer: pixels the model already gets right stop counting, and
# $\alpha_t$ weighs foreground ($\alpha$) against background ($1 - \alpha$):
# $\mathrm{FL} = -\frac{1}{N}\sum_i \alpha_t (1 - p_t)^\gamma \log p_t$.
#
# Let us write both by hand and check them against the package.

# %%
import torch
import torch.nn.functional as F

from unet_tutorial import losses

gen = torch.Generator().manual_seed(0)
logits = torch.randn(2, 1, 4, 4, generator=gen)  # (B, 1, H, W): binary
targets = (torch.rand(2, 1, 4, 4, generator=gen) > 0.7).float()
probs = torch.sigmoid(logits)

bce_by_hand = -(targets * probs.log() + (1 - targets) * (1 - probs).log()).mean()
p_t = probs * targets + (1 - probs) * (1 - targets)  # probability of the right answer
alpha_t = 0.25 * targets + 0.75 * (1 - targets)
focal_by_hand = (-alpha_t * (1 - p_t) ** 2 * p_t.log()).mean()

torch.testing.assert_close(bce_by_hand, losses.cross_entropy(logits, targets))
torch.testing.assert_close(focal_by_hand, losses.focal_loss(logits, targets, alpha=0.25, gamma=2.0))
print(f"BCE {bce_by_hand:.4f}, focal {focal_by_hand:.4f}: the package agrees")

# %% [markdown]
# The **overlap losses** look at the whole region at once. With soft counts $TP = \sum_i p_i t_i$,
# $FP = \sum_i p_i (1 - t_i)$, $FN = \sum_i (1 - p_i) t_i$ and a smoothing constant $s$ (so that an empty
# prediction of an empty mask costs 0, not 0/0):
#
# - **Dice** (V-Net, Milletari et al. 2016): $1 - \frac{2\,TP + s}{2\,TP + FP + FN + s}$
# - **Jaccard** (soft IoU): $1 - \frac{TP + s}{TP + FP + FN + s}$
# - **Tversky** (Salehi et al. 2017): $1 - \frac{TP + s}{TP + \alpha FP + \beta FN + s}$; $\alpha = \beta = 0.5$
#   is Dice, $\alpha = \beta = 1$ is Jaccard, $\beta > \alpha$ makes a missed pixel cost more than a false alarm.
# - **Lovasz hinge / Lovasz-softmax** (Berman et al. 2018): sort the pixels by how wrong they are and weigh
#   each error by how much it changes the IoU. On hard 0/1 predictions it *equals* $1 - \mathrm{IoU}$.
#
# Counts are summed over the whole batch; multi-class, each class gets its own one-vs-rest score and the loss
# is their mean.

# %%
tp = (probs * targets).sum()
fp = (probs * (1 - targets)).sum()
fn = ((1 - probs) * targets).sum()
dice_by_hand = 1 - (2 * tp + 1) / (2 * tp + fp + fn + 1)
jaccard_by_hand = 1 - (tp + 1) / (tp + fp + fn + 1)
print(f"TP {tp:.2f}, FP {fp:.2f}, FN {fn:.2f}")
torch.testing.assert_close(dice_by_hand, losses.dice_loss(logits, targets, smooth=1.0))
torch.testing.assert_close(jaccard_by_hand, losses.jaccard_loss(logits, targets, smooth=1.0))
print(f"Dice loss {dice_by_hand:.4f}, Jaccard loss {jaccard_by_hand:.4f}: the package agrees")

# %% [markdown]
# Now the picture that explains most of this notebook. A 64 x 64 mask holds one small object (about 2 % of the
# pixels). The prediction gives probability $p$ to the object's pixels and a low 0.005 to the background; we
# slide $p$ from "missed entirely" to "found" and plot every loss. On the left, the per-pixel view: the loss
# of one foreground pixel against its probability.

# %%
import matplotlib.pyplot as plt

p = torch.linspace(0.01, 0.99, 99)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(p, -p.log(), label="BCE  −log p", color="black")
for gamma in (1, 2, 5):
    left.plot(p, -(1 - p) ** gamma * p.log(), label=f"focal, γ = {gamma} (α off)")
left.set(xlabel="predicted probability of a foreground pixel", ylabel="loss of that pixel",
         title="Per pixel: focal silences the easy ones", ylim=(0, 4))
left.legend()

yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
small_object = (((yy - 30) ** 2 + (xx - 40) ** 2) <= 20).float()[None, None]  # (1, 1, 64, 64), about 2 %
curves = {"BCE": losses.cross_entropy, "Dice": losses.dice_loss, "Jaccard": losses.jaccard_loss,
          "Tversky α=0.3 β=0.7": lambda z, t: losses.tversky_loss(z, t, alpha=0.3, beta=0.7),
          "focal": losses.focal_loss, "Lovasz hinge": losses.lovasz_loss}
for name, loss_fn in curves.items():
    values = []
    for p_object in p:
        prediction = torch.where(small_object > 0, p_object, 0.005)  # (1, 1, 64, 64) probabilities
        values.append(loss_fn(torch.logit(prediction), small_object).item())
    right.plot(p, values, label=name)
right.set(xlabel="predicted probability on the object's pixels", ylabel="loss of the image", ylim=(0, 1.5),
          title=f"One small object ({small_object.mean():.1%} of the image)")
right.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the right panel at the far left, where the object is **missed entirely**: BCE and focal are already
# small, because 98 % of the pixels are right and they average over all of them; the gradient that would
# pull the object out is tiny. Dice, Jaccard and Tversky are close to 1: for them the object is the whole
# story. That is the trade-off:
#
# | loss | shines | fails |
# |---|---|---|
# | BCE / cross-entropy | smooth, well-calibrated probabilities, stable from the first step | small objects drown in background |
# | Dice / Jaccard | imbalance: scores the overlap, not the pixel count; matches the metric | noisy gradients early and on empty masks; over-confident probabilities |
# | Tversky | you care more about missing pixels (β > α), e.g. lesions | one more knob to tune |
# | focal | many easy background pixels | α and γ interact; probabilities shift lower, so the 0.5 threshold can miss |
# | Lovasz | optimises IoU itself; great for fine-tuning | slow to start from scratch; sorts every pixel |
# | Combo (BCE + Dice + focal) | the stability of BCE and the overlap of Dice together | weights to choose |
#
# `ComboLoss(weights={"bce": 3, "dice": 1, "focal": 4})` is the weighted sum used by the winning SIIM-ACR
# pneumothorax pipeline; after each call, `combo.components` holds the terms for logging.

# %%
combo = losses.ComboLoss(weights={"bce": 3, "dice": 1, "focal": 4})
total = combo(logits, targets)
print(f"combo = {total:.4f} =", " + ".join(f"{combo.weights[k]} x {v:.4f} ({k})" for k, v in combo.components.items()))

# %% [markdown]
# ## 2. Class imbalance, made visible
#
# We generate images with one to three **small** red-ish blobs on a noisy, slowly varying background: about
# 1 % of the pixels are foreground. The noise is strong enough that single pixels are ambiguous, so a model
# must use context. Then we train the notebook-01 U-Net four times, same seed, same budget, once per loss.

# %%
def make_small_objects(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, size, size) in [0, 1] with 1-3 small discs each, and their masks (n, 1, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = 0.15 * torch.randn(n, 3, 4, 4, generator=gen)  # slow colour changes across the image
    images = 0.5 + F.interpolate(coarse, size=size, mode="bilinear") + 0.15 * torch.randn(n, 3, size, size,
                                                                                           generator=gen)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            radius = size * (0.03 + 0.03 * torch.rand(1, generator=gen).item())
            cy, cx = (radius + (size - 2 * radius) * torch.rand(2, generator=gen)).tolist()
            masks[i, 0][(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1
    images = images + masks * torch.tensor([0.35, -0.1, 0.0]).view(1, 3, 1, 1)  # objects: a little redder
    return images.clamp(0, 1), masks


train_images, train_masks = make_small_objects(NUM_TRAIN, IMAGE_SIZE, seed=1)
val_images, val_masks = make_small_objects(NUM_VAL, IMAGE_SIZE, seed=2)
print(f"train images {tuple(train_images.shape)}, masks {tuple(train_masks.shape)}")
print(f"foreground: {train_masks.mean():.2%} of the pixels")

# %%
from unet_tutorial.viz import show

show(val_images[:3], masks=val_masks[:3])

# %% [markdown]
# The training loop is the package's `train_one_epoch` and `evaluate` (notebook 03 takes them apart); here
# only the loss changes. `evaluate` reports the mean per-image Dice at threshold 0.5.

# %%
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from unet_tutorial.model import UNet
from unet_tutorial.train import evaluate, train_one_epoch

train_loader = DataLoader(TensorDataset(train_images, train_masks), batch_size=BATCH_SIZE, shuffle=True)
val_loader = DataLoader(TensorDataset(val_images, val_masks), batch_size=BATCH_SIZE)
loss_functions = {"BCE": losses.cross_entropy, "Dice": losses.dice_loss, "focal": losses.focal_loss,
                  "Combo": losses.ComboLoss()}
results, models, val_dice = {}, {}, {}
for name, loss_fn in tqdm(loss_functions.items(), desc="losses"):
    set_seed(0)  # the same initial weights and batches for every loss
    model = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS, depth=DEPTH).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    val_dice[name] = []
    for epoch in range(1, EPOCHS + 1):
        train_one_epoch(model, train_loader, loss_fn, optimizer, DEVICE, epoch=epoch, progress=False)
        results[name] = evaluate(model, val_loader, DEVICE, num_classes=1, progress=False)
        val_dice[name].append(results[name]["dice"])
    models[name] = model
    print(f"{name:>6}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[name].items()))

# %% [markdown]
# Validation Dice after each epoch, then the pictures. What to look for: cross-entropy is dominated by the
# ~99 % background pixels, so early on it tends to predict background everywhere (Dice near 0, pixel
# accuracy already ~99 %), and finds the objects only later; the overlap losses score the objects from the
# first step. Focal loss with α = 0.25 lowers the foreground's weight, so its probabilities sit lower and the
# 0.5 threshold can miss. The combo usually gets the best of both. With more epochs the gaps shrink: the
# choice of loss matters most when the budget is short and the objects small.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in val_dice.items():
    ax.plot(range(1, EPOCHS + 1), curve, marker="o", label=f"{name} ({curve[-1]:.2f})")
ax.set(xlabel="epoch", ylabel="validation Dice (per image)", ylim=(0, 1), title="Same U-Net, same budget")
ax.legend()
plt.show()

# %%
from IPython.display import display

with torch.no_grad():
    sample = val_images[:4].to(DEVICE)
    for name, model in models.items():
        model.eval()
        probs_val = torch.sigmoid(model(sample)).cpu()  # (4, 1, H, W)
        fig = show(val_images[:4], masks=val_masks[:4], preds=(probs_val > 0.5).float(),
                   titles=[f"{name}: max p {p.max():.2f}" for p in probs_val], size=2.0)
        display(fig)

# %% [markdown]
# ## 3. Metrics: count first, reduce after
#
# Every segmentation metric is a ratio of pixel counts, so we count first. The **confusion matrix** has one
# row per true class and one column per predicted class; entry $[t, p]$ counts pixels of class $t$ predicted as
# $p$. It is one `bincount` of `target * C + prediction`. Then:
#
# - $\mathrm{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}$, with $TP_c$ on the diagonal, $FN_c$ the rest of row
#   $c$ and $FP_c$ the rest of column $c$;
# - $\mathrm{Dice}_c = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c}$;
# - pixel accuracy = trace / total.
#
# Summing confusion matrices over batches gives the exact numbers for the whole dataset; averaging per-batch
# IoUs would not.

# %%
from unet_tutorial.metrics import (
    SegmentationMetrics,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

preds_small = torch.tensor([[0, 0, 1, 1], [2, 2, 1, 0]])
targets_small = torch.tensor([[0, 0, 1, 2], [2, 2, 1, 1]])
cm = confusion_matrix(preds_small, targets_small, num_classes=3)
print("confusion matrix (rows = target, columns = prediction):\n", cm)
print("IoU per class ", iou_per_class(cm).numpy().round(3))
print("Dice per class", dice_per_class(cm).numpy().round(3))
print(f"mean IoU {mean_iou(cm):.3f}, pixel accuracy {pixel_accuracy(cm):.3f}")

# %% [markdown]
# ### Why pixel accuracy misleads
# A "model" that predicts background everywhere, on our validation set:

# %%
lazy = SegmentationMetrics(num_classes=1)
lazy.update(torch.full_like(val_masks, -10.0), val_masks)  # logits: background everywhere
print({k: round(v, 4) for k, v in lazy.compute().items()})

# %% [markdown]
# About 99 % pixel accuracy and an IoU and Dice of 0: it never found a single object. With small objects,
# report IoU or Dice.
#
# ### IoU vs Dice
# For one prediction they are tied by $D = \frac{2J}{1 + J}$: Dice is never lower, and both rank single
# predictions the same way. They differ once you **average**: a mean of per-image Dice (the Carvana metric,
# `dice_score`, where an empty prediction of an empty mask counts 1) is not the Dice of all pixels pooled.

# %%
j = torch.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(4, 3.5))
ax.plot(j, 2 * j / (1 + j), label="Dice = 2 IoU / (1 + IoU)")
ax.plot(j, j, "--", color="gray", label="Dice = IoU")
ax.set(xlabel="IoU", ylabel="Dice", title="Dice is never below IoU")
ax.legend()
plt.show()

# %% [markdown]
# ### Per-class vs pooled means
# Three classes: a huge background, a medium class predicted perfectly, and a small class always missed. The
# pooled ("micro") IoU adds the counts of all classes before dividing, so the big classes hide the small one;
# the per-class ("macro") mean IoU gives each class one vote. ADE20K's mIoU is the per-class mean.

# %%
targets_3 = torch.zeros(100, 100, dtype=torch.long)
targets_3[:30] = 1  # a medium class: 30 %
targets_3[90:, 90:] = 2  # a small class: 1 %
preds_3 = torch.where(targets_3 == 2, 0, targets_3)  # the small class is always predicted as background
cm3 = confusion_matrix(preds_3, targets_3, num_classes=3)
tp3 = cm3.diagonal()
micro_iou = tp3.sum() / (cm3.sum(0) + cm3.sum(1) - tp3).sum()
print("IoU per class:", iou_per_class(cm3).numpy().round(3))
print(f"pooled (micro) IoU {micro_iou:.3f}, per-class mean IoU {mean_iou(cm3):.3f}, "
      f"pixel accuracy {pixel_accuracy(cm3):.3f}")

# %% [markdown]
# ### `ignore_index`
# Some pixels should not be scored: ADE20K's "other" label, object borders nobody could annotate, padding.
# Give them the `ignore_index` value (255 here) and every loss and metric leaves them out, whatever the model
# predicts there.

# %%
targets_ignored = targets_3.clone()
targets_ignored[:, :10] = 255  # do not score the first 10 columns
for predictions in (preds_3, torch.where(torch.arange(100) < 10, 1 - preds_3.clamp(max=1), preds_3)):
    cm_ignored = confusion_matrix(predictions, targets_ignored, num_classes=3, ignore_index=255)
    print(f"mean IoU {mean_iou(cm_ignored):.4f}, pixels counted {cm_ignored.sum().item()}")
logits_3 = 5 * F.one_hot(preds_3, 3).permute(2, 0, 1)[None].float()  # (1, 3, 100, 100)
print(f"Dice loss with ignore_index: {losses.dice_loss(logits_3, targets_ignored[None], ignore_index=255):.4f}")

# %% [markdown]
# The two predictions differ only in the ignored columns, so the counts and the mean IoU are identical.
#
# ## 4. Playground: move a predicted blob, watch every number
# The true mask is a disc. The prediction is a soft disc whose **radius** and horizontal **offset** you choose;
# the **threshold** turns its probabilities into a 0/1 mask for the metrics (the losses use the probabilities).
# With widgets (Jupyter, Colab) you get sliders; everywhere else, two fixed settings.

# %%
from unet_tutorial.metrics import dice_score
from unet_tutorial.widgets import interactive_or_static

target_disc = (((yy - 32) ** 2 + (xx - 32) ** 2) <= 10**2).float()[None, None]  # (1, 1, 64, 64)


def playground(radius: int, offset: int, threshold: float):
    """A soft predicted disc against a fixed true disc: every loss and metric, as bars."""
    distance = ((yy - 32) ** 2 + (xx - 32 - offset) ** 2).float().sqrt()
    logits_blob = ((radius - distance) / 1.5)[None, None]  # (1, 1, 64, 64): p = 0.5 on the rim
    hard = (torch.sigmoid(logits_blob) > threshold).float()
    cm_blob = confusion_matrix(hard, target_disc, num_classes=2)
    values = {name: fn(logits_blob, target_disc).item() for name, fn in curves.items()}
    values |= {"metric: Dice": dice_score(hard, target_disc), "metric: IoU": iou_per_class(cm_blob)[1].item(),
               "metric: pixel acc.": pixel_accuracy(cm_blob)}
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [1, 2]})
    ax_img.imshow(torch.sigmoid(logits_blob)[0, 0], cmap="magma", vmin=0, vmax=1)
    ax_img.contour(target_disc[0, 0], levels=[0.5], colors="cyan")
    ax_img.set(title="prediction (true mask in cyan)", xticks=[], yticks=[])
    colors = ["tab:red" if n.startswith("metric") else "tab:blue" for n in values]
    ax_bar.barh(list(values), [min(v, 1.5) for v in values.values()], color=colors)  # Lovasz can pass 1
    for row, value in enumerate(values.values()):
        ax_bar.text(min(value, 1.5) + 0.02, row, f"{value:.3f}", va="center", fontsize=8)
    ax_bar.set(xlim=(0, 1.75), title=f"radius {radius}, offset {offset}, "
               f"threshold {threshold}: losses (blue), metrics (red)")
    ax_bar.invert_yaxis()
    fig.tight_layout()
    plt.close(fig)
    return fig


interactive_or_static(playground, static=[{"radius": 10, "offset": 0, "threshold": 0.5},
                                          {"radius": 6, "offset": 8, "threshold": 0.5}],
                      radius=(1, 25, 1), offset=(-25, 25, 1), threshold=(0.05, 0.95, 0.05))

# %% [markdown]
# Things to try: shrink the radius to 1 (the object is missed: BCE barely moves, Dice jumps to ~1); move it off
# the disc; a threshold of 0.9 with a perfect radius shrinks the hard mask and costs IoU.
#
# ## Exercises
# ### Exercise 1: soft Dice by hand
# Write `soft_dice_loss(probs, targets, smooth=1.0)` for **probabilities** (not logits) of any shape:
# $1 - \frac{2\sum p t + s}{\sum p + \sum t + s}$.

# %% tags=["solution"]
# Hint: three sums over all pixels: (probs * targets), probs, targets; keep it a tensor so it can backpropagate.
import torch


def soft_dice_loss(probs: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2 sum(p t) + smooth) / (sum p + sum t + smooth), summed over every pixel."""
    intersection = (probs * targets).sum()
    return 1 - (2 * intersection + smooth) / (probs.sum() + targets.sum() + smooth)


# %%
from unet_tutorial.exercises import check_soft_dice

check_soft_dice(soft_dice_loss)

# %% [markdown]
# ### Exercise 2: IoU from a confusion matrix
# Write `iou_from_confusion(confusion)`: the IoU of each class from a `(C, C)` confusion matrix whose rows are
# the targets and columns the predictions.

# %% tags=["solution"]
# Hint: TP is the diagonal; a row sum is TP + FN, a column sum is TP + FP.
import torch


def iou_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class, shape (C,)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    return tp / (confusion.sum(0) + confusion.sum(1) - tp)


# %%
from unet_tutorial.exercises import check_iou_from_confusion

check_iou_from_confusion(iou_from_confusion)

# %% [markdown]
# ## Summary
# - Cross-entropy averages over pixels, so a small object barely moves it; Dice, Jaccard and Tversky score the
#   overlap; focal loss silences easy pixels; Lovasz optimises IoU; a combo gets stability and overlap at once.
# - Metrics: count a confusion matrix first (summed over batches), reduce to IoU, Dice, accuracy after.
# - Pixel accuracy misleads on small objects; per-class means give small classes a vote; per-image Dice is the
#   Carvana metric; `ignore_index` pixels never count.
#
# Next, notebook 03 trains a U-Net on Carvana with `ComboLoss` and `SegmentationMetrics` inside `fit`.

# %%
from unet_tutorial.utils import report_metric

report_metric("val_dice_combo", results["Combo"]["dice"], "02_losses_and_metrics")
