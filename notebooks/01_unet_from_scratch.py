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
# - why U-Net is an encoder-decoder, and what its skip connections carry
# - how to build DoubleConv, Down, Up and the whole U in PyTorch, watching the shapes at every stage
# - how big the model is, where its parameters sit, and how far each output pixel can "see"
# - transposed convolution vs bilinear up-sampling; concatenated vs added skips
# - gradient checkpointing: activation memory traded for compute, measured
# - that the model learns: it overfits a small batch, with skips and (worse) without
#
# **Runtime**: about 4 minutes on a laptop CPU, about a minute on a Colab GPU.

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
GPU = DEVICE.type == "cuda"
IMAGE_SIZE = 64 if SMOKE else (128 if GPU else 96)  # the generated images used for pictures and training
NUM_IMAGES = 8  # the small batch the model must overfit
BASE_CHANNELS = 8 if SMOKE else (32 if GPU else 16)  # a narrow U-Net trains fast on a CPU; the paper uses 64
TRAIN_STEPS = 50 if SMOKE else (400 if GPU else 200)
LEARNING_RATE = 3e-3
CHECK_SIZE = 64 if SMOKE else 256  # input size for comparing the hand-built U-Net with the package's
CHECKPOINT_SIZE = 64 if SMOKE else 256  # image size for the checkpointing measurement
CHECKPOINT_REPEATS = 1 if SMOKE else 3
set_seed(0)
print(f"smoke mode: {SMOKE}, device: {DEVICE}, image size: {IMAGE_SIZE}, base channels: {BASE_CHANNELS}")

# %% [markdown]
# ## 1. Semantic segmentation: a label for every pixel
#
# A classifier says *"there is a cat"*. A segmentation model says, for every pixel, *which class it belongs
# to*. Its answer is an image of labels, the **mask**, with the input's height and width.
#
# We make a small data set right here: ellipses (the foreground, label 1) among rectangles and noise
# (background, label 0). Colour alone does not give the answer; the shape does.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch


def make_shapes(num_images: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) in [0, 1] with ellipses to find, and their masks (N, 1, size, size) of 0/1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((num_images, 3, size, size), dtype=np.float32)
    masks = np.zeros((num_images, 1, size, size), dtype=np.float32)
    for i in range(num_images):
        image = 0.3 + 0.1 * rng.standard_normal((3, size, size))
        for _ in range(rng.integers(2, 5)):  # distractors: rectangles, background
            x0, y0 = rng.uniform(0, 0.8, 2)
            w, h = rng.uniform(0.1, 0.3, 2)
            box = (xx > x0) & (xx < x0 + w) & (yy > y0) & (yy < y0 + h)
            image[:, box] = rng.uniform(0, 1, (3, 1))
        for _ in range(rng.integers(1, 4)):  # ellipses: foreground
            cx, cy = rng.uniform(0.15, 0.85, 2)
            rx, ry = rng.uniform(0.06, 0.2, 2)
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
            image[:, inside] = rng.uniform(0, 1, (3, 1))
            masks[i, 0, inside] = 1
        images[i] = np.clip(image, 0, 1)
    return torch.from_numpy(images), torch.from_numpy(masks)


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
row, col = (masks[0, 0] > 0).nonzero()[0].tolist()  # the first foreground pixel, on the ellipse's top edge
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
# ## 2. Why an encoder-decoder, and why skip connections
#
# To call a pixel "ellipse" the network must see the shape around it: **context**. Convolutions see a few
# pixels; pooling halves the resolution so the next 3x3 convolution covers twice as much of the image. That is
# the **encoder**: resolution down, channels (what is there) up. But the answer must be at full resolution, so
# a **decoder** brings the resolution back up.
#
# What can a decoder recover from the bottom of the U alone? After 4 poolings a 128 x 128 image is 8 x 8.
# Squeeze a mask through that grid and blow it up again: the shapes survive, the edges do not.

# %%
import torch.nn.functional as F

factor = 16  # 4 poolings
coarse = F.avg_pool2d(masks[:1], factor)  # (1, 1, H/16, W/16)
restored = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear", align_corners=False) > 0.5
lost = (restored.float() != masks[:1]).float().mean().item()
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, picture, title in zip(axes, [masks[0, 0], coarse[0, 0], restored[0, 0]],
                              ["mask", f"bottleneck grid {tuple(coarse.shape[-2:])}", "up-sampled back"]):
    ax.imshow(picture, cmap="gray")
    ax.set_title(title)
    ax.axis("off")
plt.show()
print(f"{lost:.1%} of the pixels are wrong after the round trip, all of them along edges")

# %% [markdown]
# U-Net's answer (Ronneberger et al., 2015, [arXiv:1505.04597](https://arxiv.org/abs/1505.04597)): at every
# level, **copy** the encoder's feature map across and **concatenate** it to the decoder's. The decoder then
# has both *what* (deep, coarse features from below) and *where* (sharp, early features from the skip).
# In section 7 we train the same network with its skips switched off and see the edges go.
#
# ## 3. Building the U, block by block
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
# **OutConv**: a 1x1 convolution, one logit per class for every pixel.
#
# **The U**: an input DoubleConv, four Downs (64 -> 1024 channels, 256 -> 16 pixels), four Ups back, and the
# OutConv. The encoder's outputs are kept in a list, `skips`, and handed to the Ups in reverse order. We
# print the shape after every stage.

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

    def forward(self, x: torch.Tensor, verbose: bool = False) -> torch.Tensor:
        skips = [self.inc(x)]
        if verbose:
            print(f"{'input':>8} {tuple(x.shape)}\n{'inc':>8} {tuple(skips[-1].shape)}")
        for i, down in enumerate(self.downs):
            skips.append(down(skips[-1]))
            if verbose:
                print(f"{'down' + str(i + 1):>8} {tuple(skips[-1].shape)}")
        x = skips.pop()  # the bottleneck
        for i, up in enumerate(self.ups):
            x = up(x, skips.pop())
            if verbose:
                print(f"{'up' + str(i + 1):>8} {tuple(x.shape)}")
        logits = self.outc(x)
        if verbose:
            print(f"{'outc':>8} {tuple(logits.shape)}")
        return logits


hand_unet = HandUNet(in_channels=3, num_classes=2).eval()
with torch.no_grad():
    hand_logits = hand_unet(torch.randn(1, 3, 256, 256), verbose=True)

# %% [markdown]
# The package's `unet_tutorial.model.UNet` is the same network, plus two things: it pads any H and W to a
# multiple of 2**depth inside (and crops back), and it can checkpoint. Same structure means the same weight
# names: load ours into it and the outputs must match. From here on we use the package.

# %%
from unet_tutorial.model import UNet

unet = UNet(in_channels=3, num_classes=2).eval()
unet.load_state_dict(hand_unet.state_dict())  # raises if any name or shape differed
sample = torch.randn(1, 3, CHECK_SIZE, CHECK_SIZE)
with torch.no_grad():
    torch.testing.assert_close(hand_unet(sample), unet(sample))
count = sum(p.numel() for p in unet.parameters())
print(f"same outputs ✓  parameters: {count:,} (the canonical 31,037,698)")

# %% [markdown]
# Any size works, odd ones too: the input is zero-padded to the next multiple of 16 and the logits cropped.

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
# ## 4. The U, drawn from the model
#
# `unet_levels` reads channels, resolution and parameter counts per level off a model object; the diagram
# below is drawn from it, so it changes when the model does (try `UNet(depth=3, base_channels=32)`).
# Box heights follow the resolution, widths the channels (both on a log scale).

# %%
from unet_tutorial.model import receptive_field, unet_levels


def draw_unet(model: UNet, image_size: int = 256) -> plt.Figure:
    levels = unet_levels(model, image_size)
    fig, ax = plt.subplots(figsize=(10, 5))
    depth = len(levels) - 1
    for lv in levels:
        y = -lv["level"]
        height = 0.25 + 0.6 * np.log2(lv["height"]) / np.log2(levels[0]["height"])
        width = 0.15 + 0.5 * np.log2(lv["channels"]) / np.log2(levels[-1]["channels"])
        columns = [lv["level"]] if lv["level"] == depth else [lv["level"], 2 * depth - lv["level"]]
        for x in columns:
            ax.add_patch(plt.Rectangle((x - width / 2, y - height / 2), width, height, color="tab:blue", alpha=0.7))
            ax.text(x, y, f"{lv['channels']}\n{lv['height']}²", ha="center", va="center", fontsize=8, color="white")
        if lv["level"] < depth:
            ax.annotate("", (lv["level"] + 1, y - 1), (lv["level"], y), arrowprops={"arrowstyle": "->", "color": "red"})
            ax.annotate("", (2 * depth - lv["level"], y), (2 * depth - lv["level"] - 1, y - 1),
                        arrowprops={"arrowstyle": "->", "color": "green"})
            ax.annotate("", (2 * depth - lv["level"] - width / 2, y), (lv["level"] + width / 2, y),
                        arrowprops={"arrowstyle": "->", "color": "gray", "linestyle": "--"})
    ax.plot([], [], color="red", label="max-pool + DoubleConv (Down)")
    ax.plot([], [], color="green", label="up-sample + concat + DoubleConv (Up)")
    ax.plot([], [], color="gray", linestyle="--", label="skip: copy and concatenate")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(-0.6, 2 * depth + 0.6)
    ax.set_ylim(-depth - 0.7, 0.7)
    ax.axis("off")
    ax.set_title(f"U-Net, depth {depth}: channels and resolution per level for a {image_size}² input")
    plt.close(fig)
    return fig


draw_unet(unet)

# %% [markdown]
# Where do the 31 million parameters sit? A 3x3 convolution from C to C' channels has 9·C·C' weights, so each
# level down holds four times the one above: the bottom two levels hold most of the model.

# %%
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
# **Receptive field**: how many input pixels can influence one output pixel. Every 3x3 convolution adds
# 2 x (the current pixel spacing); every pooling doubles the spacing. `receptive_field` adds this up along the
# deepest path of any model, so we can follow it stage by stage.

# %%
stages = [("inc", [unet.inc])] + [(f"down{i + 1}", [unet.inc, *unet.downs[:i + 1]]) for i in range(4)]
stages += [(f"up{i + 1}", [unet.inc, *unet.downs, *unet.ups[:i + 1]]) for i in range(4)]
fields = [receptive_field(nn.Sequential(*blocks)) for _, blocks in stages]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot([name for name, _ in stages], fields, marker="o")
axes[0].set_ylabel("receptive field (pixels)")
axes[0].set_title("grows 2x faster at every level down")
axes[1].imshow(make_shapes(1, 256, seed=1)[0][0].permute(1, 2, 0))
side = fields[-1]
axes[1].add_patch(plt.Rectangle((128 - side / 2, 128 - side / 2), side, side, fill=False, color="red", lw=2))
axes[1].set_title(f"{side} x {side} px: what the centre pixel sees")
axes[1].axis("off")
plt.show()
print("receptive field of UNet():", receptive_field(unet), "pixels")

# %% [markdown]
# ## 5. Two design choices
#
# ### Transposed convolution or bilinear up-sampling?
#
# A transposed convolution paints a k x k stamp of learned weights for every input pixel, `stride` pixels
# apart. If k is not a multiple of the stride the stamps overlap unevenly, and a flat input comes out as a
# **checkerboard** (left). U-Net's k = 2, stride 2 never overlaps, but each output pixel of a 2x2 block uses
# a different weight, so an untrained layer still prints a 2x2 pattern (middle) that training must smooth
# away. Bilinear up-sampling has no weights and no pattern (right); `UNet(bilinear=True)` uses it, followed
# by a 1x1 convolution to halve the channels.

# %%
flat = torch.ones(1, 1, 8, 8)
ramp = torch.linspace(0, 1, 8).repeat(8, 1)[None, None]  # (1, 1, 8, 8)
overlapping = nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, bias=False)
nn.init.ones_(overlapping.weight)
unet_style = nn.ConvTranspose2d(1, 1, kernel_size=2, stride=2, bias=False)
with torch.no_grad():
    pictures = [overlapping(flat), unet_style(ramp), F.interpolate(ramp, scale_factor=2, mode="bilinear")]
titles = ["transposed k=3 s=2, flat input", "transposed k=2 s=2 (random), ramp", "bilinear x2, ramp"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, picture, title in zip(axes, pictures, titles):
    ax.imshow(picture[0, 0], cmap="magma")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ### Concatenate or add the skip?
#
# Many short tutorials write `x = x + skip`. Addition needs equal shapes, so it breaks the moment the two
# channel counts differ, e.g. with bilinear up-sampling, which keeps the channels:

# %%
from_below = F.interpolate(torch.randn(1, 128, 32, 32), scale_factor=2, mode="bilinear")  # (1, 128, 64, 64)
skip = torch.randn(1, 64, 64, 64)
try:
    from_below + skip
except RuntimeError as error:
    print("x + skip  ->  RuntimeError:", str(error).splitlines()[0])
print("torch.cat([skip, x], dim=1) ->", tuple(torch.cat([skip, from_below], dim=1).shape))

# %% [markdown]
# And when the shapes do match, addition mixes the two sources into one number per channel: the next
# convolution can no longer weigh *what* (from below) against *where* (the skip). Concatenation keeps them in
# separate channels and lets the following DoubleConv learn the mix; the price is a wider first convolution
# (here 2x the weights).

# %%
concat_conv = DoubleConv(128, 64)  # after torch.cat: 64 + 64 channels in
add_conv = DoubleConv(64, 64)  # after x + skip: 64 channels in
print(f"DoubleConv after concat: {sum(p.numel() for p in concat_conv.parameters()):,} parameters, "
      f"after addition: {sum(p.numel() for p in add_conv.parameters()):,}")

# %% [markdown]
# ## 6. Gradient checkpointing, measured
#
# Training keeps every block's activations until the backward pass needs them; at high resolution that is
# most of the memory. `UNet(checkpointing=True)` keeps only each block's input and recomputes the inside
# during backward (`torch.utils.checkpoint`): less memory, about one extra forward pass of compute, the
# *same* gradients.
#
# How we measure on any device, CPU included: `torch.profiler` with `profile_memory=True` records every
# allocation and free; what a forward pass allocated and has not freed at its end is what it keeps for
# backward. (On a GPU, `torch.cuda.max_memory_allocated` gives the peak directly.)

# %%
import time

from torch.profiler import ProfilerActivity, profile

from unet_tutorial.model import activation_bytes


def kept_for_backward(model: nn.Module, x: torch.Tensor) -> float:
    """MiB allocated by a training forward pass and still held at its end, not counting the logits."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        logits = model(x)  # keep the logits: they hold the graph, and the graph holds the activations
    held = sum(event.self_cpu_memory_usage for event in prof.events())
    return (held - logits.numel() * logits.element_size()) / 2**20


def step_seconds(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Best time of a forward + backward pass."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x).mean().backward()
        times.append(time.perf_counter() - start)
    return min(times)


x = torch.randn(2, 3, CHECKPOINT_SIZE, CHECKPOINT_SIZE)
results = {}
for checkpointing in (False, True):
    set_seed(0)
    model = UNet(base_channels=16, checkpointing=checkpointing)
    results[checkpointing] = (kept_for_backward(model, x), step_seconds(model, x, CHECKPOINT_REPEATS))
    results[checkpointing] += ([p.grad.clone() for p in model.parameters()],)
for before, after in zip(results[False][2], results[True][2]):
    torch.testing.assert_close(before, after)
(mem_off, time_off, _), (mem_on, time_on, _) = results[False], results[True]
print(f"batch {tuple(x.shape)}, UNet(base_channels=16): identical gradients ✓")
print(f"kept for backward: {mem_off:.1f} MiB -> {mem_on:.1f} MiB ({mem_off / mem_on:.1f}x less)")
estimate = activation_bytes(UNet(base_channels=16), CHECKPOINT_SIZE, batch_size=len(x)) / 2**20
print(f"(activation_bytes estimates {estimate:.1f} MiB for the plain model without running it; see section 8)")
print(f"forward + backward: {time_off:.2f} s -> {time_on:.2f} s ({time_on / time_off:.2f}x the time)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax, values, unit in zip(axes, [(mem_off, mem_on), (time_off, time_on)], ["MiB kept for backward", "seconds"]):
    ax.bar(["plain", "checkpointing"], values, color=["tab:blue", "tab:orange"])
    ax.set_ylabel(unit)
fig.suptitle("gradient checkpointing: memory for compute")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Does it learn? Overfit one small batch
#
# Before any real data set, a model must be able to memorise a handful of images: if the loss does not go to
# about zero, something is broken (a wrong shape, a detached tensor, a bad learning rate). We train two
# copies from the same start: the U-Net, and the same U-Net with its skips switched off (zeros passed
# instead of the encoder's features, via a forward pre-hook), which leaves only the path through the bottom.

# %%
from tqdm.auto import tqdm

from unet_tutorial.metrics import dice_score


def without_skips(module: nn.Module, args: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, skip = args
    return x, torch.zeros_like(skip)


def overfit(model: nn.Module, steps: int, label: str) -> list[float]:
    model.to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    batch_images, batch_masks = images.to(DEVICE), masks.to(DEVICE)
    losses = []
    for _ in tqdm(range(steps), desc=label):
        loss = F.binary_cross_entropy_with_logits(model(batch_images), batch_masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


set_seed(0)
with_skips = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS)
no_skips = UNet(in_channels=3, num_classes=1, base_channels=BASE_CHANNELS)
no_skips.load_state_dict(with_skips.state_dict())
for up in no_skips.ups:
    up.register_forward_pre_hook(without_skips)
history = {"U-Net": overfit(with_skips, TRAIN_STEPS, "U-Net"),
           "no skips": overfit(no_skips, TRAIN_STEPS, "no skips")}

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, losses in history.items():
    ax.plot(losses, label=label)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("binary cross-entropy")
ax.legend()
plt.show()

# %% [markdown]
# The predictions, after training, on the training images (eval mode: BatchNorm uses its running statistics):

# %%
preds = {}
for label, model in (("U-Net", with_skips), ("no skips", no_skips)):
    model.eval()
    with torch.no_grad():
        preds[label] = (model(images.to(DEVICE)) > 0).float().cpu()  # (N, 1, H, W)
    print(f"{label:>9}: Dice {dice_score(preds[label], masks):.3f}")
show(images[:3], masks[:3], preds["U-Net"][:3], titles=["U-Net"] * 3)

# %%
show(images[:3], masks[:3], preds["no skips"][:3], titles=["no skips"] * 3)

# %%
from unet_tutorial.utils import report_metric

report_metric("dice", dice_score(preds["U-Net"], masks), "01_unet_from_scratch")

# %% [markdown]
# ## 8. Explorer: depth and width
#
# Parameters grow with the square of `base_channels` and by about 4x per extra level; activation memory grows
# with `base_channels` and the image area; the receptive field roughly doubles per level. Move the sliders
# (in Jupyter or Colab); below them, fixed settings are drawn for viewers without widgets. Nothing is
# computed: the models are built on PyTorch's `"meta"` device, which knows shapes but holds no data.

# %%
from unet_tutorial.widgets import interactive_or_static


def describe(depth: int, base_channels: int, image_size: int) -> plt.Figure:
    with torch.device("meta"):
        model = UNet(num_classes=1, base_channels=base_channels, depth=depth)
    params = sum(p.numel() for p in model.parameters())
    memory = activation_bytes(model, image_size) / 2**20
    field = receptive_field(model)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
    for ax, value, label, limit in zip(axes, [params / 1e6, memory, field],
                                       ["parameters (M)", f"activations at {image_size}² (MiB/image)",
                                        "receptive field (px)"], [130, 2500, 500]):
        ax.barh([0], [value], color="tab:blue")
        ax.set_xlim(0, max(limit, value * 1.1))
        ax.set_yticks([])
        ax.set_title(f"{label}: {value:,.1f}", fontsize=9)
    fig.suptitle(f"UNet(depth={depth}, base_channels={base_channels})", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


interactive_or_static(describe, static=[{"depth": 4, "base_channels": 64, "image_size": 256},
                                        {"depth": 4, "base_channels": 16, "image_size": 256},
                                        {"depth": 5, "base_channels": 32, "image_size": 512}],
                      depth=(1, 6), base_channels=[8, 16, 32, 64, 128], image_size=[64, 128, 256, 512, 1024])

# %% [markdown]
# ## Exercises
#
# ### Exercise 1: count a DoubleConv's parameters
# Write `double_conv_params(in_channels, out_channels)`: the number of parameters of
# `DoubleConv(in_channels, out_channels)`, by formula, without building it.

# %% tags=["solution"]
# Hint: a 3x3 convolution without bias from C to C' channels has 9 * C * C' weights; BatchNorm has 2 per channel.
def double_conv_params(in_channels: int, out_channels: int) -> int:
    """Parameters of (3x3 conv without bias -> BatchNorm -> ReLU) x 2."""
    first = 9 * in_channels * out_channels + 2 * out_channels
    second = 9 * out_channels * out_channels + 2 * out_channels
    return first + second


# %%
from unet_tutorial.exercises import check_double_conv_params

check_double_conv_params(double_conv_params)

# %% [markdown]
# ### Exercise 2: predict the output shape of Up
# `Up(in_channels, out_channels)` gets `x` from the level below and `skip` from the encoder. Write
# `up_output_shape(x_shape, skip_shape, out_channels)` returning the output shape as a tuple, without running it.

# %% tags=["solution"]
# Hint: up-sampling doubles x's H and W to the skip's size; concatenation adds channels; DoubleConv sets them.
def up_output_shape(x_shape: tuple[int, ...], skip_shape: tuple[int, ...], out_channels: int) -> tuple[int, ...]:
    """Shape of Up(x_shape[1], out_channels)(x, skip)."""
    batch, _, height, width = skip_shape
    return (batch, out_channels, height, width)


# %%
from unet_tutorial.exercises import check_up_output_shape

check_up_output_shape(up_output_shape)

# %% [markdown]
# ### Exercise 3: how much does UNet pad?
# `UNet(depth=d)` pads each side of the input to a multiple of 2**d. Write `padded_size(size, depth)`; then
# check: to what size is a 1918-pixel-wide Carvana photo padded at depth 5?

# %% tags=["solution"]
# Hint: round size up to the next multiple of m = 2**depth: -(-size // m) * m.
def padded_size(size: int, depth: int) -> int:
    """The next multiple of 2**depth that is at least ``size``."""
    multiple = 2**depth
    return -(-size // multiple) * multiple


# %%
from unet_tutorial.exercises import check_padded_size

check_padded_size(padded_size)

# %% [markdown]
# ## Summary
# - Segmentation labels every pixel; logits come out as (B, num_classes, H, W).
# - The encoder trades resolution for context; the decoder restores the resolution; the skips bring back the
#   edges the bottom of the U cannot hold (section 7: same network, no skips, blurrier masks).
# - `UNet(in_channels=3, num_classes=2)` has 31,037,698 parameters, most in the two deepest levels, and a
#   receptive field of 200 pixels; it takes any H and W by padding inside.
# - Transposed convolutions learn to up-sample but start with a 2x2 pattern; bilinear + 1x1 conv does not.
#   Concatenated skips work for any channel counts and keep *what* and *where* apart.
# - Gradient checkpointing kept several times less activation memory here for a modest slowdown, with
#   identical gradients.
#
# **Next**: notebook 02 (losses and metrics): why cross-entropy alone struggles with small objects, Dice,
# focal and Lovász losses, and IoU/Dice counted the right way.
