"""diagrams.py: the U of a UNet and the skip merge, drawn from the model object."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from unet_tutorial.course.diagrams import draw_skip_merge, draw_unet
from unet_tutorial.model import UNet


@pytest.mark.parametrize("depth", [2, 4])
def test_draw_unet_draws_two_boxes_per_level_but_one_at_the_bottom(depth):
    fig = draw_unet(UNet(base_channels=4, depth=depth), image_size=60)  # padded to a multiple of 2**depth
    assert isinstance(fig, Figure) and plt.get_fignums() == []
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * depth + 1
    size = 60 + -60 % 2**depth
    labels = sorted({t.get_text() for t in ax.texts} - {""})  # arrows are empty annotations
    assert labels == sorted(f"{4 * 2**level}\n{size // 2**level}²" for level in range(depth + 1))


def test_draw_skip_merge_shows_concat_doubling_and_add_keeping_channels():
    fig = draw_skip_merge(32)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["concatenate: 32 + 32 -> 64", "add: 32 + 32 -> 32"]
    assert plt.get_fignums() == []
