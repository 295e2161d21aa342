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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/01_unet_from_scratch.ipynb) with the solutions ·
# [![Open the exercise version in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/unet-tutorial/unet-tutorial/blob/main/notebooks/exercises/01_unet_from_scratch.ipynb) the exercise version: you write the solutions
#
# **What you will learn**
# - what semantic segmentation is: one label per pixel
# - why U-Net is an encoder-decoder, and what its skip connections carry
# - how to build DoubleConv, Down, Up and the whole U in PyTorch, watching the shapes at every stage
# - how big the model is, where its parameters sit, and how far each output pixel can "see"
# - that the model learns: it overfits a small batch, with its skips and without them
# - transposed convolution vs bilinear up-sampling; concatenated vs added skips
# - optional: gradient checkpointing, activation memory traded for compute, measured
#
# **Prerequisites**: none of the other notebooks (this is the first). Python, and PyTorch's basics: tensors and
# their shapes, `nn.Module`, a training step (`loss.backward()`, `optimizer.step()`); what a 2D convolution and
# max-pooling compute.
#
# **Runtime**: a few minutes on a laptop CPU, less on a Colab GPU (the README's table has measured times).
#
# **For a 90-minute lab**: the sections marked *core* (1, 2, 3 and 5) and the exercises; the *optional* sections (4
# and 6 to 8) build on them and can be left for later. "Run all" works with or without them.

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
IMAGE_SIZE = {"smoke": 64, "cpu": 96, "gpu": 128}[MODE]  # side of the generated square images, pixels (section 1)
CHECK_SIZE = {"smoke": 64, "cpu": 256, "gpu": 256}[MODE]  # input side for printing the U's shapes (section 3)
NUM_IMAGES = {"smoke": 4, "cpu": 8, "gpu": 8}[MODE]  # the small batch the model must memorise (section 5)
BASE_CHANNELS = {"smoke": 8, "cpu": 16, "gpu": 32}[MODE]  # first level's channels there; the paper uses 64
TRAIN_STEPS = {"smoke": 60, "cpu": 200, "gpu": 400}[MODE]  # optimizer steps on that one batch
LEARNING_RATE = 3e-3  # Adam's step size
SEED = 0  # the same weights and images on every run of this machine
CHECKPOINT_SIZE = {"smoke": 64, "cpu": 256, "gpu": 256}[MODE]  # image side, gradient checkpointing (section 8)
CHECKPOINT_REPEATS = {"smoke": 2, "cpu": 5, "gpu": 5}[MODE]  # timed passes of each model (section 8)
set_seed(SEED)
print(f"mode: {MODE}, device: {DEVICE}, image size: {IMAGE_SIZE}, base channels: {BASE_CHANNELS}")

# %% [markdown]
# ## 1. Semantic segmentation: a label for every pixel (core, ~10 min)
#
# A classifier says *"there is a cat"*. A segmentation model says, for every pixel, *which class it belongs
# to*. Its answer is an image of labels, the **mask**, with the input's height and width.
#
# We make a small data set right here: on a noisy background, three rectangles (background, label 0) and then
# two ellipses (the foreground, label 1), each shape in a random colour. Colour alone does not give the
# answer; the shape does.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch


def make_shapes(num_images: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) in [0, 1] with ellipses to find, and their masks (N, 1, size, size) of 0/1."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.linspace(0, 1, size)
    yy, xx = grid[:, None], grid[None, :]  # (size, 1) and (1, size): they broadcast to (size, size)
    images = 0.3 + 0.1 * torch.randn(num_images, 3, size, size, generator=gen)  # noisy grey background
    masks = torch.zeros(num_images, 1, size, size)
    for i in range(num_images):
        for kind in ["rectangle"] * 3 + ["ellipse"] * 2:  # ellipses last, so they are drawn on top
            cx, cy = (0.15 + 0.7 * torch.rand(2, generator=gen)).tolist()  # centre
            rx, ry = (0.06 + 0.14 * torch.rand(2, generator=gen)).tolist()  # half-width, half-height
            if kind == "rectangle":
                inside = ((xx - cx).abs() < rx) & ((yy - cy).abs() < ry)  # (size, size) of True/False
            else:
                inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
            images[i, :, inside] = torch.rand(3, 1, generator=gen)  # one colour for the whole shape
            masks[i, 0, inside] = float(kind == "ellipse")
    return images.clamp(0, 1), masks


images, masks = make_shapes(NUM_IMAGES, IMAGE_SIZE)
print("images:", tuple(images.shape), images.dtype, " masks:", tuple(masks.shape), masks.unique().tolist())

# %% [markdown]
# The package's `show` puts image, mask and an overlay side by side:

# %%
from unet_tutorial.viz import show

show(images[:3], masks[:3])

# %% [markdown]
# Zoom in: a mask is just a grid of numbers, one per pixel. Here is a 12 x 12 crop across an ellipse's edge.

# %%
row, col = (masks[0, 0] > 0).nonzero()[0].tolist()  # the first foreground pixel, on an ellipse's top edge
r0, c0 = max(row - 4, 0), max(col - 6, 0)
crop_image = images[0, :, r0:r0 + 12, c0:c0 + 12].permute(1, 2, 0)  # (12, 12, 3)
crop_mask = masks[0, 0, r0:r0 + 12, c0:c0 + 12]  # (12, 12)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(crop_image)
axes[0].set_title("12 x 12 pixels of the image")
axes[1].imshow(crop_mask, cmap="Greens", vmin=0, vmax=2)
for (r, c), label in np.ndenumerate(crop_mask.int().numpy()):
    axes[1].text(c, r, str(label), ha="center", va="center", fontsize=8)
axes[1].set_title("its mask: one label per pixel")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. Why an encoder-decoder, and why skip connections (core, ~10 min)
#
# To call a pixel "ellipse" the network must see the shape around it: **context**. Convolutions see a few
# pixels; pooling halves the resolution so the next 3x3 convolution covers twice as much of the image. That is
# the **encoder**: resolution down, channels (what is there) up. But the answer must be at full resolution, so
# a **decoder** brings the resolution back up.
#
# What can a decoder recover from the bottom of the U alone? After 4 poolings every cell of the bottom grid
# stands for 16 x 16 input pixels. An analogy (a real bottleneck keeps many numbers per cell, not one: 16 times the
# first level's channels, so 1024 in the paper's U-Net with its 64, and it can hold more than this): average the mask
# over 16 x 16 cells, blow it up again, and threshold at 0.5.

# %%
import torch.nn.functional as F

factor = 16  # 4 poolings
coarse = F.avg_pool2d(masks, factor)  # (N, 1, H/16, W/16)
restored = (F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear") > 0.5).float()  # (N, 1, H, W)
i = int(masks.sum(dim=(1, 2, 3)).argmax())  # the image with the most foreground
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, picture, title in zip(axes, [masks[i, 0], coarse[i, 0], restored[i, 0]],
                              [f"mask, {IMAGE_SIZE} x {IMAGE_SIZE}", f"bottom grid, {tuple(coarse.shape[-2:])}",
                               "up-sampled back"]):
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
plt.show()
wrong = (restored != masks).float().mean().item()
kept = ((restored * masks).sum() / masks.sum()).item()
print(f"over all {len(masks)} images: {wrong:.1%} of the pixels are wrong after the round trip, "
      f"and {kept:.0%} of the foreground comes back")

# %% [markdown]
# Big shapes come back as blobs, their edges in the wrong place; small or thin ellipses can vanish
# altogether. The smaller the image, the coarser the grid and the worse it gets.
#
# U-Net's answer (Ronneberger et al., 2015, [arXiv:1505.04597](https://arxiv.org/abs/1505.04597)): at every
# level, **copy** the encoder's feature map across and **concatenate** it to the decoder's. The decoder then
# has both *what* (deep, coarse features from below) and *where* (sharp, early features from the skip).
# In section 5 we train the same network with its skips switched off, to check that both versions can learn
# (the plumbing); what skips are worth on new images takes more images and more training than this lab has (the
# U-Net paper's ablations are the place to look).
#
# Here is the whole U we are about to build, drawn by `draw_unet` from the package's `UNet` object (so it
# changes when the model does: try `UNet(depth=3, base_channels=32)`). Box heights follow the resolution,
# widths the channels, both on a log scale.

# %%
from unet_tutorial.course.diagrams import draw_unet
from unet_tutorial.model import UNet

draw_unet(UNet(num_classes=2), image_size=256)

# %% [markdown]
# ## 3. Building the U, block by block (core, ~20 min)
#
# **DoubleConv**: two rounds of 3x3 convolution, BatchNorm, ReLU. `padding=1` keeps H and W (the 2015 paper
# did not pad, so its output was smaller than its input). The convolutions have no bias: BatchNorm subtracts
# the mean right after, which would cancel it, and adds its own learned shift.

# %%
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


x = torch.randn(1, 3, 256, 256)
print("DoubleConv(3, 64):", tuple(x.shape), "->", tuple(DoubleConv(3, 64)(x).shape))

# %% [markdown]
# **Down**: a 2x2 max-pool halves H and W, then a DoubleConv doubles the channels.

# %%
class Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


x = torch.randn(1, 64, 256, 256)
print("Down(64, 128):", tuple(x.shape), "->", tuple(Down(64, 128)(x).shape))

# %% [markdown]
# **Up**: a 2x2 transposed convolution with stride 2 doubles H and W and halves the channels; the skip from
# the encoder is concatenated along the channels; a DoubleConv mixes the two.

# %%
class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)  # in_channels // 2 from below + in_channels // 2 skip

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, C/2, 2H, 2W)
        x = torch.cat([skip, x], dim=1)  # (B, C, 2H, 2W)
        return self.conv(x)


x, skip = torch.randn(1, 128, 128, 128), torch.randn(1, 64, 256, 256)
print("Up(128, 64):", tuple(x.shape), "+ skip", tuple(skip.shape), "->", tuple(Up(128, 64)(x, skip).shape))

# %% [markdown]
# Our `Up` needs a skip exactly twice x's size, or `torch.cat` fails. The package's `Up` also takes a skip
# whose H or W is odd (a 7-pixel skip over a 3-pixel x, say): it zero-pads the up-sampled x to the skip's
# H and W before concatenating, so the output always has the skip's H and W.

# %%
from unet_tutorial.model import Up as PackageUp

x, skip = torch.randn(1, 8, 3, 3), torch.randn(1, 4, 7, 7)
print("package Up(8, 4):", tuple(x.shape), "+ skip", tuple(skip.shape), "->", tuple(PackageUp(8, 4)(x, skip).shape))

# %% [markdown]
# **OutConv**: a 1x1 convolution that turns each pixel's features into one **logit** per class. A logit is a
# raw score, any real number, higher meaning "more likely this class"; a softmax over the classes (or a
# sigmoid, when there is a single logit) turns logits into probabilities. Models return logits, and the loss
# applies the softmax or sigmoid itself, which is numerically safer.
#
# **The U**: an input DoubleConv, four Downs (64 -> 1024 channels, H and W halved four times), four Ups back,
# and the OutConv. The encoder's outputs are kept in a list, `skips`, and handed to the Ups in reverse order.

# %%
class OutConv(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class HandUNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 64) -> None:
        super().__init__()
        channels = [base, 2 * base, 4 * base, 8 * base, 16 * base]
        self.inc = DoubleConv(in_channels, channels[0])
        self.downs = nn.ModuleList(Down(channels[i], channels[i + 1]) for i in range(4))
        self.ups = nn.ModuleList(Up(channels[i + 1], channels[i]) for i in reversed(range(4)))
        self.outc = OutConv(channels[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]  # (B, base, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # channels x 2, H and W / 2
        x = skips.pop()  # the bottleneck: (B, 16 base, H/16, W/16)
        for up in self.ups:
            x = up(x, skips.pop())  # the deepest remaining skip: channels / 2, H and W x 2
        return self.outc(x)  # (B, num_classes, H, W)


hand_unet = HandUNet(in_channels=3, num_classes=2).eval()

# %% [markdown]
# The same steps as `forward`, one at a time, printing the shape after each stage:

# %%
x = torch.randn(1, 3, CHECK_SIZE, CHECK_SIZE)
print(f"{'input':>6} {tuple(x.shape)}")
with torch.no_grad():
    skips = [hand_unet.inc(x)]
    print(f"{'inc':>6} {tuple(skips[-1].shape)}")
    for i, down in enumerate(hand_unet.downs, start=1):
        skips.append(down(skips[-1]))
        print(f"{f'down{i}':>6} {tuple(skips[-1].shape)}")
    x = skips.pop()
    for i, up in enumerate(hand_unet.ups, start=1):
        skip = skips.pop()
        x = up(x, skip)
        print(f"{f'up{i}':>6} {tuple(x.shape)}  (with the skip {tuple(skip.shape)})")
    print(f"{'outc':>6} {tuple(hand_unet.outc(x).shape)}")

# %% [markdown]
# The package's `unet_tutorial.model.UNet` is the same network, plus two things: it pads any H and W to a
# multiple of 2**depth inside (and crops back), and it can checkpoint (section 8). Same structure means the
# same weight names: load ours into it and the outputs must match. From here on we use the package.

# %%
unet = UNet(in_channels=3, num_classes=2).eval()
unet.load_state_dict(hand_unet.state_dict())  # raises if any name or shape differed
sample = torch.randn(1, 3, CHECK_SIZE, CHECK_SIZE)
with torch.no_grad():
    torch.testing.assert_close(hand_unet(sample), unet(sample))
count = sum(p.numel() for p in unet.parameters())
print(f"same outputs ✓  parameters: {count:,} (the canonical 31,037,698)")

# %% [markdown]
# Any size works, odd ones too: the input is zero-padded to the next multiple of 16 and the logits cropped.
# A wrong number of channels fails at once, with a message that says what would work.

# %%
small = UNet(num_classes=2, base_channels=4).eval()
with torch.no_grad():
    for height, width in [(256, 256), (250, 333), (37, 61), (1, 1)]:
        print(f"({height}, {width}) -> {tuple(small(torch.randn(1, 3, height, width)).shape)}")
try:
    small(torch.randn(1, 1, 64, 64))  # a grey-scale image into an RGB model
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 4. How big is it, and how far does it see? (optional, ~10 min)
#
# Skip it in a short lab: no core section needs it. Experiment 2 (a core exercise) measures receptive fields
# too, and its text says what one is, so it works without this section.
#
# Where do the 31 million parameters sit? A 3x3 convolution from C to C' channels has 9·C·C' weights, so each
# encoder (and decoder) block holds about four times the one a level above it: the bottom two levels hold most
# of the model (the bottom level has no decoder block).
# `unet_levels` reads channels, resolution and parameters per level off the model.

# %%
from unet_tutorial.measure import receptive_field, unet_levels

levels = unet_levels(unet)
names = [f"level {lv['level']}\n{lv['channels']} ch" for lv in levels]
fig, ax = plt.subplots(figsize=(8, 3.5))
positions = np.arange(len(levels))
ax.bar(positions - 0.2, [lv["encoder_params"] / 1e6 for lv in levels], 0.4, label="encoder (inc / Down)")
ax.bar(positions + 0.2, [lv["decoder_params"] / 1e6 for lv in levels], 0.4, label="decoder (Up, + OutConv at 0)")
ax.set_xticks(positions, names)
ax.set_ylabel("parameters (millions)")
ax.legend()
plt.show()

# %% [markdown]
# **Receptive field**: how many input pixels (along one side) can influence one output pixel. Keep track of
# the *spacing*, the number of input pixels between neighbouring pixels of the current feature map (1 at the
# input), and add up, layer by layer:
# - a 3x3 convolution adds 2 x spacing;
# - a 2x2 max-pool adds 1 x spacing, then doubles the spacing;
# - a 2x2 transposed convolution with stride 2 adds nothing and halves the spacing; a 1x1 convolution adds
#   nothing.
#
# So `inc` sees 1 + 2 + 2 = 5 pixels, and `down1` pools (+1 = 6, spacing 2) and convolves twice (+4 +4 = 14).
# `receptive_field` does this sum for any model, walking its layers in the order they were *registered* (created
# in `__init__`). For `UNet` that is the order the data flows along the deepest path: inc, downs, ups, outc.
# So an `nn.Sequential` of the first few blocks gives the field after those stages:

# %%
stages = [("inc", [unet.inc])] + [(f"down{i + 1}", [unet.inc, *unet.downs[:i + 1]]) for i in range(4)]
stages += [(f"up{i + 1}", [unet.inc, *unet.downs, *unet.ups[:i + 1]]) for i in range(4)]
fields = [receptive_field(nn.Sequential(*blocks)) for _, blocks in stages]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot([name for name, _ in stages], fields, marker="o")
axes[0].axvspan(4.5, 8.5, color="tab:green", alpha=0.1, label="decoder: spacing halves")
axes[0].tick_params(axis="x", labelrotation=45)
axes[0].set_ylabel("receptive field (pixels)")
axes[0].set_title("fast growth on the way down, slower on the way up")
axes[0].legend(loc="upper left")
axes[1].imshow(make_shapes(1, 256, seed=1)[0][0].permute(1, 2, 0))
side = fields[-1]
axes[1].add_patch(plt.Rectangle((128 - side / 2, 128 - side / 2), side, side, fill=False, color="red", lw=2))
axes[1].set_title(f"{side} x {side} px: what the centre pixel sees")
axes[1].axis("off")
plt.show()
print("receptive field of UNet():", receptive_field(unet), "pixels")

# %% [markdown]
# ## 5. Does it learn? Overfit one small batch (core, ~15 min)
#
# Before any real data set, a model must be able to memorise a handful of images: if the loss does not fall
# steadily, by ten times or more, something is broken (a wrong shape, a detached tensor, a bad learning rate).
# We train the U-Net with its skips and without them, and both must pass this plumbing check. What the skips of
# section 2 are worth would show only on images a model never trained on, after training on many: a handful is
# too few to tell, whichever way it falls.
#
# Our two classes, ellipse and background, need only **one logit per pixel** (`num_classes=1`): its sigmoid
# is the probability of "ellipse". The loss for it is **binary cross-entropy** (BCE);
# `F.binary_cross_entropy_with_logits` applies the sigmoid itself. A logit > 0 means a probability > 0.5, so
# the predicted mask is simply `logits > 0`. (With more classes it is one logit per class, softmax and
# cross-entropy: notebook 05.)
#
# We train two copies from the same start: the U-Net, and the same U-Net with its skips switched off. To
# switch them off without changing the `UNet` class we use a **forward pre-hook**: a function that PyTorch
# calls with a module's inputs just before the module runs, and whose return value replaces those inputs.
# Ours hands every `Up` zeros instead of its skip, which leaves only the path through the bottom.

# %%
from tqdm.auto import tqdm


def without_skips(module: nn.Module, args: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, skip = args  # what Up.forward(x, skip) was called with
    return x, torch.zeros_like(skip)


def overfit(model: nn.Module, steps: int, label: str) -> list[float]:
    model.to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    # The step size decays to 0 along a cosine: the weights settle at the end, and BatchNorm's running
    # statistics (used in eval mode) catch up with them.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    batch_images, batch_masks = images.to(DEVICE), masks.to(DEVICE)
    losses = []
    for _ in tqdm(range(steps), desc=label):
        logits = model(batch_images)  # (N, 1, H, W)
        loss = F.binary_cross_entropy_with_logits(logits, batch_masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


set_seed(SEED)
with_skips = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS)
no_skips = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS)
no_skips.load_state_dict(with_skips.state_dict())  # the same starting weights
for up in no_skips.ups:
    up.register_forward_pre_hook(without_skips)
history = {"U-Net": overfit(with_skips, TRAIN_STEPS, "U-Net"),
           "no skips": overfit(no_skips, TRAIN_STEPS, "no skips")}

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, losses in history.items():
    ax.plot(losses, label=label)
    print(f"{label:>9}: loss {losses[0]:.3f} -> {losses[-1]:.4f}, {losses[0] / losses[-1]:.0f}x lower")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("binary cross-entropy")
ax.legend()
plt.show()

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Did the loss fall by ten times?
from unet_tutorial.course.reading import reading

falls = {label: losses[0] / losses[-1] for label, losses in history.items()}
short = [{"U-Net": "the U-Net's", "no skips": "the no-skips model's"}[label] for label, f in falls.items() if f < 10]
if not short:
    verdict = "both passed the plumbing test"
elif MODE == "smoke":
    verdict = (f"{' and '.join(short)} fell less than ten times, which says little after smoke mode's few steps; "
               "with the cpu or gpu settings it should")
else:
    verdict = (f"{' and '.join(short)} fell less than ten times: look for a bug (a wrong shape, a detached tensor) "
               "or try another learning rate before you go on")
reading(f"""
In this run, over {TRAIN_STEPS} steps, the U-Net's loss fell {falls["U-Net"]:.0f} times and the loss of the model
without skips {falls["no skips"]:.0f} times: {verdict}.
""")

# %% [markdown]
# The predictions, after training, on the training images (eval mode: BatchNorm uses its running statistics).
# We score them with **Dice** = 2|P ∩ T| / (|P| + |T|), where P is the set of predicted foreground pixels and
# T the true ones: 1 is a perfect match, 0 no overlap at all (averaged over the images here; notebook 02
# covers it properly).

# %%
from IPython.display import display

from unet_tutorial.metrics import dice_score


def dice_of_each_image(preds: torch.Tensor, masks: torch.Tensor) -> list[float]:
    """Each image's Dice: (N, 1, H, W) 0/1 predictions and masks -> N numbers (dice_score gives their mean)."""
    return [dice_score(preds[i:i + 1], masks[i:i + 1]) for i in range(len(masks))]


preds = {}
for label, model in (("U-Net", with_skips), ("no skips", no_skips)):
    model.eval()
    with torch.no_grad():
        preds[label] = (model(images.to(DEVICE)) > 0).float().cpu()  # (N, 1, H, W): logit > 0 is prob > 0.5
    wrong_pixels = int((preds[label] != masks).sum())
    print(f"{label:>9}: Dice {dice_score(preds[label], masks):.4f}, {wrong_pixels} of {masks.numel():,} pixels wrong")
display(show(images[:3], masks[:3], preds["U-Net"][:3], titles=["U-Net"] * 3))  # display: not the last line
show(images[:3], masks[:3], preds["no skips"][:3], titles=["no skips"] * 3)

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title How well did each model memorise its images?
from unet_tutorial.course.reading import compare

memorised = {label: dice_of_each_image(preds[label], masks) for label in preds}
names = {"U-Net": "the U-Net", "no skips": "the model without skips"}
gap = compare("the U-Net", memorised["U-Net"], "the model without skips", memorised["no skips"])
short_of = [names[label] for label, scores in memorised.items() if np.mean(scores) <= 0.99]
near_perfect = not short_of  # both memorised their images: Dice above 0.99
if near_perfect:
    both = (f"Both memorised their images almost perfectly, so memorising a few images is possible even without "
            f"skips: the bottleneck of this model holds 16 x {BASE_CHANNELS} = {16 * BASE_CHANNELS} numbers per cell, "
            "not the single number of section 2's analogy, and training can pack the edges of a few masks into them.")
else:
    both = (f"{' and '.join(short_of)} stayed at or below Dice 0.99 on them"
            + (", after smoke mode's few steps." if MODE == "smoke" else "."))
both = both[0].upper() + both[1:]  # a sentence's first letter ("The U-Net"; str.capitalize would write "U-net")
reading(f"""
On the {len(masks)} images they trained on, the U-Net scores Dice {np.mean(memorised["U-Net"]):.4f} and the model
without skips {np.mean(memorised["no skips"]):.4f}. {both} Compared image by image:
{gap.sentence() if gap.difference else "the two score the same on every image"}. That ± counts only how these
{len(masks)} images differ within one training run of each model: train again (another seed, even another number
of threads) and the gap moves too, often by more. So this says whether both models memorise, not which
architecture memorises better.
""")

# %% [markdown]
# Where do the two go wrong? We zoom into the no-skips model's worst image, around its mistakes: each wrong pixel
# in red, the true mask in grey, for both models on that same image (the U-Net's own mistakes may be on other
# images). Then we count all the mistakes, on every image, that lie near a shape's edge.

# %%
worst = int((preds["no skips"] != masks).flatten(1).sum(1).argmax())  # the no-skips model's worst image
rows, cols = torch.nonzero(preds["no skips"][worst, 0] != masks[worst, 0], as_tuple=True)  # its wrong pixels
if len(rows) == 0:  # no mistake at all: show the whole image
    rows, cols = torch.tensor([8, IMAGE_SIZE - 9]), torch.tensor([8, IMAGE_SIZE - 9])
top, bottom = max(int(rows.min()) - 8, 0), min(int(rows.max()) + 9, IMAGE_SIZE)  # 8 pixels around them
left, right = max(int(cols.min()) - 8, 0), min(int(cols.max()) + 9, IMAGE_SIZE)
zoom = (slice(top, bottom), slice(left, right))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(images[worst].permute(1, 2, 0))  # (3, H, W) -> (H, W, 3)
axes[0].add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="yellow"))
axes[0].set_title(f"image {worst} and the zoom window")
for ax, label in zip(axes[1:], preds):
    errors = (preds[label][worst, 0] != masks[worst, 0]).float()  # (H, W): 1 where wrong
    picture = 0.35 * masks[worst, 0, :, :, None].repeat(1, 1, 3)  # the true mask in grey, (H, W, 3)
    picture[errors > 0] = torch.tensor([1.0, 0.0, 0.0])
    ax.imshow(picture[zoom])
    ax.set_title(f"image {worst}, {label}: {int(errors.sum())} wrong here")
for ax in axes:
    ax.axis("off")
plt.show()
# An edge band: pixels within 2 of the true mask's boundary, where a 5 x 5 window holds both labels.
band = (F.max_pool2d(masks, 5, stride=1, padding=2) != -F.max_pool2d(-masks, 5, stride=1, padding=2))  # (N, 1, H, W)
on_edges = {label: int(((preds[label] != masks) & band).sum()) for label in preds}
wrong = {label: int((preds[label] != masks).sum()) for label in preds}
band_share = band.float().mean().item()  # the band's share of all pixels: where mistakes would fall by chance
print(f"the edge band: {band_share:.1%} of the pixels; wrong pixels in it:",
      {label: f"{on_edges[label]} of {wrong[label]}" for label in preds})

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title Where do the mistakes sit?
def tally(label: str) -> str:
    if wrong[label] == 0:
        return f"{names[label]} got no pixel wrong"
    if wrong[label] == 1:
        return f"{names[label]} got one pixel wrong, {'in' if on_edges[label] else 'outside'} the band"
    if wrong[label] < FEW:
        return f"{names[label]} got {wrong[label]} pixels wrong, {on_edges[label]} of them in the band"
    return (f"{names[label]} got {wrong[label]} pixels wrong, {on_edges[label]} of them in the band "
            f"({on_edges[label] / wrong[label]:.0%})")


FEW = 5  # fewer wrong pixels than this: too few to say where a model's mistakes mostly sit
erring = [label for label in preds if wrong[label] >= FEW]
shares = {label: on_edges[label] / wrong[label] for label in erring}
on_edge = [label for label in erring if shares[label] > max(0.5, band_share)]
if not erring:
    where = (f"too few mistakes (under {FEW} each) to say where they mostly sit: with this few images, both "
             "memorised them (nearly) exactly.")
elif len(on_edge) == len(erring):
    whose = "both models' mistakes" if len(erring) == 2 else f"the mistakes of {names[erring[0]]}"
    times = min(shares.values()) / band_share
    where = (f"so {whose} sit mostly on edges: their share in the band is "
             + (f"at least {int(times * 10) / 10:.1f} times" if times >= 2 else "more than")
             + " the band's share of the pixels.")
    if len(erring) == 1 and wrong[[label for label in preds if label not in erring][0]]:
        where += " (The other model made too few mistakes to say where.)"
    if near_perfect:
        where += (" That is where the last mistakes of any model that has nearly memorised its masks sit (a pixel "
                  "whose 5 x 5 neighbourhood holds one label is the easy case), with skips or without: where they "
                  "sit does not tell the two apart here, only how many there are could, and the comparison above "
                  "reads that against its noise.")
elif on_edge:
    elsewhere = next(label for label in erring if label not in on_edge)
    where = (f"so the mistakes of {names[on_edge[0]]} sit mostly on edges, those of {names[elsewhere]} mostly "
             "elsewhere: look at the zoom for where.")
else:
    where = "so in this run most mistakes are not on edges: look at the zoom for where."
first = tally("U-Net")
reading(f"""
The edge band, the pixels within 2 of a shape's edge, is {band_share:.0%} of all the pixels.
{first[0].upper() + first[1:]}, and {tally("no skips")}: {where}
""")

# %% [markdown]
# Memorising is not segmenting, though. The test that counts is on images the model has never seen: as many new
# ones, drawn the same way (another seed).

# %%
new_images, new_masks = make_shapes(NUM_IMAGES, IMAGE_SIZE, seed=1)  # (N, 3, H, W), (N, 1, H, W), never trained on
new_dice, new_wrong = {}, {}
for label, model in (("U-Net", with_skips), ("no skips", no_skips)):
    with torch.no_grad():
        new_preds = (model(new_images.to(DEVICE)) > 0).float().cpu()  # (N, 1, H, W)
    new_dice[label], new_wrong[label] = dice_of_each_image(new_preds, new_masks), int((new_preds != new_masks).sum())
    print(f"{label:>9} on new images: Dice {np.mean(new_dice[label]):.4f}, "
          f"{new_wrong[label]:,} of {new_masks.numel():,} pixels wrong")
nothing_wrong = int(new_masks.sum())  # predicting "no ellipse" everywhere misses every foreground pixel
print(f"predicting 'no ellipse' everywhere: {nothing_wrong:,} pixels wrong")

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the models do on new images
drops = {}
for label in new_dice:
    drop = np.mean(memorised[label]) - np.mean(new_dice[label])
    drops[label] = f"{abs(drop):.3f} {'below' if drop >= 0 else 'above'}"
beats = [label for label in new_wrong if new_wrong[label] < nothing_wrong]
if not beats:
    against_nothing = "neither does better than predicting nothing"
elif len(beats) == 2:
    against_nothing = "both do better than predicting nothing, if far from what they did on the images they memorised"
else:
    other = next(label for label in new_wrong if label not in beats)
    against_nothing = f"{names[beats[0]]} does better than predicting nothing, {names[other]} does not"
new_gap = compare("the U-Net", new_dice["U-Net"], "the model without skips", new_dice["no skips"])
reading(f"""
On {len(new_masks)} new images the U-Net scores Dice {np.mean(new_dice["U-Net"]):.3f}, {drops["U-Net"]} its score on
the images it memorised, and the model without skips {np.mean(new_dice["no skips"]):.3f}, {drops["no skips"]} its
own. They get {new_wrong["U-Net"]:,} and {new_wrong["no skips"]:,} pixels wrong, where predicting "no ellipse"
everywhere gets {nothing_wrong:,} wrong: {against_nothing}. Between the two, image by image (one training run of
each: the noise counts which images were drawn, not another seed's training): {new_gap.sentence()}.
""")

# %% [markdown]
# A handful of images and a few hundred steps teach a model *these* masks, not what an ellipse is, so whichever
# of the two scores higher on new images says nothing about skips (one seed, a handful of images: whether the
# order holds on another seed is not tested here). That is what this test is for: it checks the plumbing (shapes, gradients, learning rate), not
# the model. Learning to segment takes many images and a score on new ones: notebook 02 trains on hundreds of
# generated images, notebook 03 on thousands of car photos, and from then on every score we report is on images
# the model never trained on.

# %%
from unet_tutorial.utils import report_metric

# Every notebook reports one headline number; `make tutorial` collects them into one table of results. Here:
# the U-Net's Dice on the batch it memorised, the "does it learn?" test of this section.
report_metric("memorised_dice", dice_score(preds["U-Net"], masks), "01_unet_from_scratch", data="generated")

# %% [markdown]
# ## 6. Two design choices (optional)
#
# ### Transposed convolution or bilinear up-sampling?
#
# A transposed convolution paints a k x k stamp of learned weights for every input pixel, `stride` pixels
# apart. If k is not a multiple of the stride the stamps overlap unevenly, and even a flat input comes out as a
# **checkerboard** (left column). U-Net's k = 2, stride 2 never overlaps, but each output pixel of a 2x2
# block uses a different weight, so an untrained layer prints a 2x2 pattern (middle) that training must
# smooth away. Bilinear up-sampling has no weights and no pattern (right); `UNet(bilinear=True)` uses it,
# followed by a 1x1 convolution to halve the channels. Top row: a flat input; bottom row: a ramp.

# %%
flat = torch.ones(1, 1, 8, 8)
ramp = torch.linspace(0, 1, 8).repeat(8, 1)[None, None]  # (1, 1, 8, 8), brighter to the right
overlapping = nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, bias=False)
nn.init.ones_(overlapping.weight)
unet_style = nn.ConvTranspose2d(1, 1, kernel_size=2, stride=2, bias=False)  # random weights, as at the start
ups = {"transposed k=3 s=2": overlapping, "transposed k=2 s=2 (random)": unet_style,
       "bilinear x2": lambda t: F.interpolate(t, scale_factor=2, mode="bilinear")}
fig, axes = plt.subplots(2, 3, figsize=(11, 6.4), layout="constrained")
for row, (name, picture) in enumerate((("flat", flat), ("ramp", ramp))):
    for col, (title, up) in enumerate(ups.items()):
        with torch.no_grad():
            output = up(picture)[0, 0]  # (16, 16) or (17, 17)
        shown = axes[row, col].imshow(output, cmap="magma", vmin=min(0.0, output.min().item()))  # flat stays bright
        fig.colorbar(shown, ax=axes[row, col], shrink=0.8, label="output value")  # each panel has its own scale
        axes[row, col].set_title(f"{title}, {name} input", fontsize=9)
        axes[row, col].axis("off")
plt.show()

# %% [markdown]
# ### Concatenate or add the skip?
#
# Many short tutorials write `x = x + skip`. The two ways look like this, as stacks of channels:

# %%
from unet_tutorial.course.diagrams import draw_skip_merge

draw_skip_merge(64)

# %% [markdown]
# Addition needs equal shapes, so it breaks the moment the two channel counts differ, e.g. with a bare
# bilinear up-sampling (before any 1x1 convolution), which keeps the channels of the level below:

# %%
from_below = F.interpolate(torch.randn(1, 128, 32, 32), scale_factor=2, mode="bilinear")  # (1, 128, 64, 64)
skip = torch.randn(1, 64, 64, 64)
try:
    from_below + skip
except RuntimeError as error:
    print("from_below + skip  ->  RuntimeError:", str(error).splitlines()[0])
print("torch.cat([skip, from_below], dim=1) ->", tuple(torch.cat([skip, from_below], dim=1).shape))

# %% [markdown]
# And when the shapes do match, addition mixes the two sources into one number per channel: the next
# convolution can no longer weigh *what* (from below) against *where* (the skip). Concatenation keeps them in
# separate channels and lets the following DoubleConv learn the mix. The price: the DoubleConv's first
# convolution takes twice the channels in, so it has twice the weights; the second is unchanged.

# %%
for merge, merged_channels in (("concat", 128), ("addition", 64)):
    block = DoubleConv(merged_channels, 64)
    first, total = block.block[0].weight.numel(), sum(p.numel() for p in block.parameters())
    print(f"after {merge:>8} ({merged_channels} channels in): first conv {first:,} weights, "
          f"whole DoubleConv {total:,} parameters")

# %% [markdown]
# ## 7. Explorer: depth and width (optional)
#
# Parameters grow with the square of `base_channels` and by about 4x per extra level; activation memory (what
# training keeps for the backward pass) grows with `base_channels` and the image area; the receptive field
# does not depend on `base_channels` at all, only on depth, and grows fast with it: each extra level works at
# twice the spacing of the one above (section 4). Experiment 2 finds by how much. Move the slider and pick from
# the menus (in Jupyter or Colab); below them, fixed settings are drawn for viewers without widgets. Nothing is
# computed: the models are built on PyTorch's `"meta"` device, which knows shapes but holds no data. Compare the
# first and the last drawing: depth 5 with base 32 has almost the parameters of depth 4 with base 64 (31.1M
# against 31.0M), and its centre pixel sees much more of the image.

# %%
from unet_tutorial.course.widgets import interactive_or_static
from unet_tutorial.measure import activation_bytes, receptive_field  # noqa: F811 (section 4 may be skipped)


def describe(depth: int, base_channels: int, image_size: int) -> plt.Figure:
    with torch.device("meta"):
        model = UNet(num_classes=1, base_channels=base_channels, depth=depth)
    params = sum(p.numel() for p in model.parameters())
    memory = activation_bytes(model, image_size) / 2**20
    field = receptive_field(model)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.9))
    bars = [("parameters", params / 1e6, "{:,.1f} M", "parameters (millions)", 130),
            ("activations", memory, "{:,.1f} MiB", f"MiB per image of {image_size} x {image_size} pixels", 2500),
            ("receptive field", field, "{:,.0f} px", "pixels along one side", 500)]
    for ax, (name, value, shown, unit, limit) in zip(axes, bars):
        ax.barh([0], [value], color="tab:blue")
        ax.set_xlim(0, max(limit, value * 1.1))
        ax.set_yticks([])
        ax.set_xlabel(unit, fontsize=9)
        ax.set_title(f"{name}: {shown.format(value)}", fontsize=9)
    fig.suptitle(f"UNet(depth={depth}, base_channels={base_channels})", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


interactive_or_static(describe, static=[{"depth": 4, "base_channels": 64, "image_size": 256},
                                        {"depth": 4, "base_channels": 16, "image_size": 256},
                                        {"depth": 5, "base_channels": 32, "image_size": 256}],
                      depth=(1, 6), base_channels=[8, 16, 32, 64, 128], image_size=[64, 128, 256, 512, 1024])

# %% [markdown]
# ## 8. Gradient checkpointing, measured (optional, advanced)
#
# Skip this on a first reading; it matters at high resolution (a full-size Carvana photo is 1280 x 1918).
#
# Training keeps every block's activations until the backward pass needs them; at high resolution that is
# most of the memory. `UNet(checkpointing=True)` keeps only each block's input and recomputes the inside
# during backward (`torch.utils.checkpoint`): less memory, about one extra forward pass of compute, the
# *same* gradients.
#
# `measure_training_step(model, images)` (in `unet_tutorial/measure.py`) measures both on the device the
# images are on. Memory: what one forward pass allocates and still holds at its end, which is what it keeps
# for backward; on a GPU it reads `torch.cuda.memory_allocated` before and after, on the CPU it asks
# `torch.profiler`, which records every allocation and free. Time: one forward + backward pass, gradients
# zeroed before it. One pass's time is noisy (other programs, caches, the clock speed), and a model's first pass
# is slower still (memory to allocate, caches cold): so each model runs one untimed warm-up pass, then we time them
# several times in turn, plain then checkpointing, and compare each pair timed back to back.

# %%
from unet_tutorial.measure import activation_bytes, measure_training_step  # noqa: F811 (section 7 may be skipped)

x = torch.randn(2, 3, CHECKPOINT_SIZE, CHECKPOINT_SIZE, device=DEVICE)  # (B, 3, H, W)
arms = {}
for checkpointing in (False, True):
    set_seed(SEED)  # the same weights for both
    arms[checkpointing] = UNet(base_channels=16, checkpointing=checkpointing).to(DEVICE)
for model in arms.values():  # a warm-up pass each, not timed: a model's first pass is the slowest
    measure_training_step(model, x)
kept_mib, seconds = {False: [], True: []}, {False: [], True: []}
for _ in range(CHECKPOINT_REPEATS):  # the two in turn, so that a slow spell of the machine hits both
    for checkpointing, model in arms.items():
        kept, step = measure_training_step(model, x)
        kept_mib[checkpointing].append(kept / 2**20)
        seconds[checkpointing].append(step)
for plain, checkpointed in zip(arms[False].parameters(), arms[True].parameters()):
    torch.testing.assert_close(plain.grad, checkpointed.grad, rtol=1e-4, atol=1e-6)  # a GPU may add in another order
print(f"on {DEVICE}, batch {tuple(x.shape)}, UNet(base_channels=16): the same gradients ✓")
mem_off, mem_on = np.median(kept_mib[False]), np.median(kept_mib[True])
time_off, time_on = np.median(seconds[False]), np.median(seconds[True])
print(f"kept for backward: {mem_off:.1f} MiB -> {mem_on:.1f} MiB ({mem_off / mem_on:.1f}x less)")
estimate = activation_bytes(UNet(base_channels=16), CHECKPOINT_SIZE, batch_size=len(x)) / 2**20
print(f"(activation_bytes, section 7, estimates {estimate:.1f} MiB for the plain model without running it)")
print(f"forward + backward, median of {CHECKPOINT_REPEATS}: {time_off:.3f} s -> {time_on:.3f} s "
      f"({time_on / time_off:.2f}x the time)")
for checkpointing, times in seconds.items():
    print(f"  {'checkpointing' if checkpointing else 'plain':>13}: " + ", ".join(f"{t:.3f}" for t in times) + " s")
ratios = [on / off for off, on in zip(seconds[False], seconds[True])]  # each pair timed back to back
print("  checkpointing / plain, pair by pair: " + ", ".join(f"{r:.2f}" for r in ratios))

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].bar(["plain", "checkpointing"], [mem_off, mem_on], color=["tab:blue", "tab:orange"])
axes[0].set_ylabel("MiB kept for backward")
for position, checkpointing in enumerate((False, True)):  # every pass, and the median as a bar
    axes[1].bar(position, np.median(seconds[checkpointing]), color=["tab:blue", "tab:orange"][position], alpha=0.5)
    times = seconds[checkpointing]
    axes[1].plot([position] * len(times), times, "k.", label="one pass" if position else None)
axes[1].set_xticks([0, 1], ["plain", "checkpointing"])
axes[1].set_ylabel("seconds")
axes[1].legend()
fig.suptitle(f"gradient checkpointing on {DEVICE.type}: memory for compute")
fig.tight_layout()
plt.show()

# %% tags=["reading"] cellView="form" jupyter={"source_hidden": true}
# @title What checkpointing cost and saved, in this run
from unet_tutorial.course.reading import reading

steady = all(max(m) - min(m) < 0.1 for m in kept_mib.values())
slower = sum(r > 1 for r in ratios)  # the pairs in which checkpointing took longer
pairs = len(ratios)
if pairs < 3:
    noise = f"with {pairs} pairs the comparison is rough; the full settings time more"
elif slower in (0, pairs):
    noise = (f"checkpointing was {'slower' if slower else 'faster'} in every one of the {pairs} pairs, so a slow "
             "spell of the machine, which hits both passes of a pair, does not explain it")
else:
    noise = (f"checkpointing was slower in {slower} of the {pairs} pairs and faster in the others: this machine's "
             "noise could explain the difference")
reading(f"""
Memory: checkpointing kept {mem_off / mem_on:.1f} times less for backward
({"the same in every repeat: memory is counted, not timed" if steady else "it varied a little between repeats"}).
Time, after a warm-up pass of each: the median pass took {time_on / time_off:.2f} times as long, and pair by pair
(the two timed back to back) the ratio ran from {min(ratios):.2f} to {max(ratios):.2f}: {noise}.
""")

# %% [markdown]
# ## Exercises (core, ~25 min)
#
# One to write, two experiments to run. Each ends with a self-check that says what is wrong, if anything, without
# giving the answer away; once you have tried, `reveal=True` in the check's call shows the expected answer.
#
# ### Exercise 1: build the bilinear decoder step
# Optional section 6 shows the other way to up-sample: a bilinear resize x2 (no weights, no 2x2 pattern)
# followed by a 1x1 convolution that halves the channels, as `UNet(bilinear=True)` does. Write `BilinearUp(in_channels,
# out_channels)`, a drop-in for section 3's `Up`: the same `forward(x, skip)`, the same shapes, bilinear
# up-sampling (`align_corners=False`) and a 1x1 convolution with a bias instead of the transposed convolution.
# Inputs of even sizes are enough (no padding). The self-check copies the package's weights into yours and
# compares the outputs, so register the layers in the order they run.

# %% tags=["solution"]
# Hint: start from section 3's Up and change only how x is brought up to the skip's height, width and channels; what
#   must come out of that step for the concatenation and the DoubleConv to stay as they are?
import torch
from torch import nn

from unet_tutorial.model import DoubleConv


class BilinearUp(nn.Module):
    """Bilinear x2 and a 1x1 convolution, concatenate the skip, then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                nn.Conv2d(in_channels, in_channels // 2, kernel_size=1))
        self.conv = DoubleConv(in_channels, out_channels)  # in // 2 from below + in // 2 from the skip

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))  # the skip first, as in section 3


# %%
from unet_tutorial.course.exercises.unet import check_bilinear_up

check_bilinear_up(BilinearUp)

# %% [markdown] tags=["answer"]
# The two steps differ only in how x grows: a 2x2 transposed convolution learns 4 weights per pair of channels,
# a 1x1 convolution after a fixed resize learns 1, so its up-sampling has about a quarter of the parameters
# (the check printed both) and no 2x2 pattern to smooth away; the DoubleConv, where most parameters sit, is
# the same. Whether it trains better is an experiment for your data, which is why `UNet` offers both.

# %% [markdown]
# ### Experiment 2: how deep must the U be to see a whole 1024 x 1024 image?
# The receptive field is how many input pixels, along one side, can influence one output pixel; optional section 4
# measured it for `UNet()` (depth 4) with `receptive_field(model)`. Measure the receptive field of depths 1 to 4
# only, find the rule that takes one depth's field to the next, and write it as a function `next_field(field)`.
# Then use it to *predict* the smallest depth whose centre pixel sees the whole of a 1024 x 1024 image, without
# building the deeper models, and set `depth_to_see_1024`. The check first tests your rule on what you measured,
# then builds the deeper models and measures.

# %% tags=["solution"]
# Hint: a model built under `with torch.device("meta"):` has shapes but no data, so even a deep one costs nothing,
#   and receptive_field reads its layers. Lay the measured fields side by side: how does each compare with twice
#   the one before it? Then apply your rule from depth 4 on until the field reaches the image's size.
import torch

from unet_tutorial.measure import receptive_field
from unet_tutorial.model import UNet

fields = {}
for depth in range(1, 5):
    with torch.device("meta"):
        fields[depth] = receptive_field(UNet(num_classes=1, depth=depth))
print("measured:", fields)


def next_field(field: int) -> int:
    """The receptive field of a U one level deeper than the one whose field is ``field``."""
    # Each level doubles the field below it and adds 8 pixels.
    return 2 * field + 8


depth, field = 4, fields[4]
while field < 1024:
    depth, field = depth + 1, next_field(field)
    print(f"predicted: depth {depth}, {field} px")
depth_to_see_1024 = depth

# %%
from unet_tutorial.course.exercises.unet import check_depth_to_see

check_depth_to_see(depth_to_see_1024, image_size=1024, next_field=next_field)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title The rule, and the depth it predicts
from unet_tutorial.course.reading import reading

reading(f"""
Each level doubles the field and adds 8 pixels: its pooling makes everything below it look with twice the
spacing (twice the field below), and its four 3x3 convolutions, two before the pooling and two after the
up-sampling, add 2 pixels each. So field = 13 x 2^depth - 8, and the depth you need grows with the *logarithm*
of the image size: depth {depth_to_see_1024} for 1024 pixels. Depth also costs: about 4x the parameters per level
(section 7's explorer). Notebook 03 keeps depth 4: at its GPU size (320 x 480) a {fields[4]}-pixel field spans a
car's full height and about half its length.
""")

# %% [markdown]
# ### Experiment 3: how many poolings can a mask survive?
# Repeat section 2's round trip (average-pool the masks, up-sample back, threshold at 0.5) with 1, 2, 3, ...
# poolings (a factor of 2, 4, 8, ...). For each, measure the share of the true foreground pixels that come
# back. Set `first_lossy` to the smallest number of poolings after which less than four fifths (`share < 0.8`)
# comes back, for *your* masks: the answer depends on their size, `IMAGE_SIZE`. Before you run it, predict:
# the smallest ellipses of section 1 are about an eighth of the image's side across (`2 * 0.06 * IMAGE_SIZE`
# pixels); at which cell size should they start to vanish?

# %% tags=["solution"]
# Hint: section 2's cell did the round trip for 4 poolings. What must change with k, and which pixels do you
#   count, over which? A pixel "comes back" when it is foreground both in the mask and after the round trip.
import torch.nn.functional as F

kept = {}
for k in range(1, 6):
    coarse = F.avg_pool2d(masks, 2**k)  # (N, 1, H / 2**k, W / 2**k)
    restored = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear") > 0.5  # (N, 1, H, W)
    kept[k] = ((restored & (masks > 0)).sum() / (masks > 0).sum()).item()
    print(f"{k} pooling(s), a {2**k} x {2**k} cell per number: {kept[k]:.0%} of the foreground comes back")
first_lossy = min(k for k, share in kept.items() if share < 0.8)

# %%
from unet_tutorial.course.exercises.unet import check_pooling_round_trip

check_pooling_round_trip(first_lossy, masks)

# %% tags=["answer", "reading"] cellView="form" jupyter={"source_hidden": true}
# @title What the round trip kept, in this run
import math

smallest = 2 * 0.06 * IMAGE_SIZE  # the smallest ellipse make_shapes can draw: a disc this many pixels across
# A disc of diameter d covers at most pi d^2 / 4 of a cell of side c (when d <= c): less than half of any cell,
# wherever the grid falls, once d / c < sqrt(2 / pi), about 0.8. Then every cell it touches averages below 0.5.
half = math.sqrt(2 / math.pi)
vanish = next(k for k in range(1, 20) if smallest / 2**k < half)  # the poolings after which it vanishes on its own
span = smallest / 2**first_lossy  # its width in cells of first_lossy's size
if span < half:
    fits = "so it covers less than half of any cell it touches and vanishes on its own"
elif span < 2 * math.sqrt(2):
    fits = "so whether a cell it touches is more than half ellipse depends on where the grid falls"
else:
    fits = "so some cell lies wholly inside it wherever the grid falls: it shrinks but survives"
if first_lossy == vanish:
    timing = "at the same pooling as the prediction for the smallest ellipse"
elif first_lossy > vanish:
    timing = (f"{first_lossy - vanish} pooling{'s' if first_lossy - vanish > 1 else ''} after the smallest ellipse "
              "vanishes: small ellipses hold too few of the foreground's pixels to cost a fifth of it on their own")
else:
    timing = (f"{vanish - first_lossy} pooling{'s' if vanish - first_lossy > 1 else ''} before the smallest ellipse "
              "is sure to vanish: shapes lose pixels at their edges, and small ones may go whole where the grid "
              "falls badly, before that")
last = max(kept)
reading(f"""
At {IMAGE_SIZE} pixels the round trip brought back {kept[1]:.0%} of the foreground after 1 pooling and
{kept[last]:.0%} after {last}; `first_lossy` is {first_lossy} here ({kept[first_lossy]:.0%} comes back), and a
different `IMAGE_SIZE` moves it. The prediction was about the smallest ellipse `make_shapes` can draw, a disc
{smallest:.0f} pixels across. A disc covers π/4 of the square around it and less of any wider cell, so less than
half once it is narrower than {half:.1f} cells: after {vanish} poolings, in cells of {2 ** vanish} pixels. In
`first_lossy`'s cells of {2 ** first_lossy} pixels it spans {span:.1f} cells, {fits}. `first_lossy` counts all the
foreground together, most of it in bigger ellipses, and here it falls below four fifths {timing}. The deepest levels,
where U-Net gets its context, are the ones that cannot say *where*; the skips carry the *where* across at every
level.
""")

# %% [markdown]
# ## Summary
# - Segmentation labels every pixel; logits (raw scores, one per class) come out as (B, num_classes, H, W).
#   Two classes need just one logit per pixel: sigmoid, binary cross-entropy, and `logits > 0` for the mask.
# - The encoder trades resolution for context; the decoder restores the resolution; the skips bring back the
#   sharp detail from the encoder to the decoder. Section 5 checked that the U-Net learns with them and without
#   them; a handful of images cannot show what they are worth (that takes many training images, scored on new
#   ones, as in the U-Net paper's comparisons).
# - Overfitting one small batch tests the plumbing: the loss must fall by ten times or more. It says nothing
#   about new images (section 5 scored its models on new ones too); scores count only on images never trained on.
# - `UNet(in_channels=3, num_classes=2)` has 31,037,698 parameters, most in the two deepest levels, and a
#   receptive field of 200 pixels (optional section 4), which grows fast with depth and not at all with width
#   (experiment 2 has the rule); it takes any H and W by padding inside.
# - Transposed convolutions learn to up-sample but start with a 2x2 pattern; bilinear + 1x1 conv does not.
#   Concatenated skips work for any channel counts and keep *what* and *where* apart.
# - Gradient checkpointing (optional section 8) trades compute for activation memory, with the same gradients;
#   measure both on your own hardware, timing several passes, since one pass's time is noisy.
#
# **Next**: notebook 02 (losses and metrics): why cross-entropy alone struggles with small objects, Dice,
# focal and Lovász losses, and IoU/Dice counted the right way.
