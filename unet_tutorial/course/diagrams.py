"""Drawings of the model itself, made from the model object: the U of a UNet and the two ways to merge a skip.

``draw_unet`` reads channels and resolutions per level off a ``UNet`` (``measure.unet_levels``), so a change to the
model changes the drawing; ``draw_skip_merge`` shows concatenation against addition as stacks of channels.
Figures come back closed in pyplot, as in viz.py: end a cell with the call to show one.
Taught in: notebook 01.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from unet_tutorial.measure import unet_levels
from unet_tutorial.viz import _done  # figures come back closed in pyplot, as viz.py's do


def draw_unet(model: torch.nn.Module, image_size: int = 256) -> Figure:
    """The U of a ``model.UNet``, drawn from the model object: one box per level on each side of the U.

    Box heights follow the resolution and widths the channels (both on a log scale); red arrows are Downs,
    green arrows Ups, grey dashed arrows the skips. Change the model (``UNet(depth=3, base_channels=32)``) and
    the drawing follows.

    Args:
        model: a ``unet_tutorial.model.UNet``.
        image_size: input size written in the boxes (padded to a multiple of 2**depth as the model pads it).

    Returns:
        the Figure.
    """
    levels = unet_levels(model, image_size)
    depth = len(levels) - 1
    heights = [0.25 + 0.6 * np.log2(lv["height"]) / max(np.log2(levels[0]["height"]), 1) for lv in levels]
    widths = [0.15 + 0.5 * np.log2(lv["channels"]) / max(np.log2(levels[-1]["channels"]), 1) for lv in levels]
    fig, ax = plt.subplots(figsize=(10, 5))
    arrow = {"arrowstyle": "->"}
    for level, lv in enumerate(levels):
        y, height, width, right = -level, heights[level], widths[level], 2 * depth - level
        for x in {level, right}:  # encoder column and its mirror in the decoder
            ax.add_patch(plt.Rectangle((x - width / 2, y - height / 2), width, height, color="tab:blue", alpha=0.7))
            ax.text(x, y, f"{lv['channels']}\n{lv['height']}²", ha="center", va="center", fontsize=8, color="white")
        if level < depth:  # arrows run from box edge to box edge
            below = y - 1 + heights[level + 1] / 2
            ax.annotate(
                "", (level + 1, below), (level + width / 2, y - height / 2), arrowprops={**arrow, "color": "red"}
            )
            ax.annotate(
                "", (right - width / 2, y - height / 2), (right - 1, below), arrowprops={**arrow, "color": "green"}
            )
            ax.annotate(
                "",
                (right - width / 2, y),
                (level + width / 2, y),
                arrowprops={**arrow, "color": "gray", "linestyle": "--"},
            )
    ax.plot([], [], color="red", label="max-pool + DoubleConv (Down)")
    ax.plot([], [], color="green", label="up-sample + concat + DoubleConv (Up)")
    ax.plot([], [], color="gray", linestyle="--", label="skip: copy and concatenate")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(-0.6, 2 * depth + 0.6)
    ax.set_ylim(-depth - 0.7, 0.7)
    ax.axis("off")
    ax.set_title(f"U-Net, depth {depth}: channels and resolution per level for a {image_size}² input")
    return _done(fig)


def draw_skip_merge(channels: int = 64) -> Figure:
    """Two ways to merge a skip, as stacks of channels: concatenate (C + C -> 2C) or add (C + C -> C).

    Args:
        channels: channels of the skip and of the up-sampled tensor from below.

    Returns:
        the Figure, one panel per way.
    """
    skip, below, mixed = "tab:blue", "tab:orange", "tab:purple"
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.4))
    for ax, way in zip(axes, ("concatenate", "add")):
        ax.barh([1, 0], [channels, channels], color=[skip, below], height=0.6)
        for y, name in ((1, "skip (where)"), (0, "from below (what)")):
            ax.text(channels / 2, y, f"{name}: {channels}", ha="center", va="center", color="white", fontsize=7)
        ax.annotate("", (1.45 * channels, 0.5), (1.1 * channels, 0.5), arrowprops={"arrowstyle": "->"})
        start = 1.55 * channels
        if way == "concatenate":  # torch.cat([skip, x], dim=1): both stacks kept, one after the other
            ax.barh([0.5, 0.5], [channels, channels], left=[start, start + channels], color=[skip, below], height=0.6)
            result = f"{2 * channels} channels: both kept"
        else:  # skip + x: channel i of the result is the sum of the two channels i
            ax.barh([0.5], [channels], left=[start], color=mixed, height=0.6)
            result = f"{channels} channels: summed"
        ax.text(start, 0.05, result, va="top", fontsize=8)
        ax.set_xlim(0, start + 2.05 * channels)
        ax.set_ylim(-0.6, 1.5)
        ax.set_title(
            f"{way}: {channels} + {channels} -> {2 * channels if way == 'concatenate' else channels}", fontsize=10
        )
        ax.axis("off")
    fig.tight_layout()
    return _done(fig)
