"""Pictures: figures with the right panels, colours that are fixed and distinct, overlays, the widget fallback."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from unet_tutorial import viz
from unet_tutorial.course import widgets

matplotlib.use("Agg")


def test_palette_is_deterministic_distinct_and_not_black():
    colours = viz.palette(150)
    assert colours.shape == (150, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours, viz.palette(150))
    assert len({tuple(c) for c in colours}) == 150
    assert colours.max(axis=1).min() >= 100, "black is kept for ignored pixels"
    np.testing.assert_array_equal(viz.palette(150)[:10], viz.palette(10)), "a longer table extends a shorter one"
    assert not np.array_equal(viz.palette(10, seed=1), viz.palette(10))
    with pytest.raises(ValueError, match="num_classes"):
        viz.palette(0)


def test_denormalize_round_trip_and_passthrough():
    image = torch.rand(3, 8, 6)
    mean, std = torch.tensor(viz.IMAGENET_MEAN)[:, None, None], torch.tensor(viz.IMAGENET_STD)[:, None, None]
    back = viz.denormalize((image - mean) / std)
    assert back.shape == (8, 6, 3) and back.dtype == np.float32
    np.testing.assert_allclose(back, image.permute(1, 2, 0).numpy(), atol=1e-5)
    np.testing.assert_allclose(viz.denormalize(image), image.permute(1, 2, 0).numpy())  # already in [0, 1]
    np.testing.assert_allclose(viz.denormalize(np.full((4, 4, 3), 255, np.uint8)), 1.0)
    assert viz.denormalize(torch.rand(1, 5, 5)).shape == (5, 5, 3)
    with pytest.raises(ValueError, match="expected"):
        viz.denormalize(torch.rand(2, 3, 4, 5))


def test_colorize_uses_palette_and_ignore_colour():
    colours = viz.palette(3)
    mask = torch.tensor([[0, 1], [2, 255]])
    rgb = viz.colorize(mask, colours)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 1], colours[1])
    np.testing.assert_array_equal(rgb[1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="palette"):
        viz.colorize(torch.tensor([[5]]), colours)


def test_overlay_binary_and_multiclass():
    image = torch.zeros(3, 4, 4)
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1
    out = viz.overlay(image, mask, color=(255, 0, 0), alpha=0.5)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [128, 0, 0])  # half red over black
    np.testing.assert_array_equal(out[3, 3], [0, 0, 0])  # background untouched

    labels = torch.tensor([[0, 1], [2, 255]])
    colours = viz.palette(3)
    multi = viz.overlay(torch.ones(3, 2, 2), labels, palette=colours, alpha=1.0)
    np.testing.assert_array_equal(multi[1, 0], colours[2])
    np.testing.assert_array_equal(multi[1, 1], [255, 255, 255])  # ignored pixel keeps the image
    with pytest.raises(ValueError, match="must match"):
        viz.overlay(torch.zeros(3, 4, 4), torch.zeros(3, 3))


def test_show_grid_sizes_and_no_open_pyplot_figures():
    images, masks = torch.rand(3, 3, 16, 16), (torch.rand(3, 1, 16, 16) > 0.5).float()
    fig = viz.show(images, masks, masks, titles=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 4  # image, mask, prediction, overlay
    assert plt.get_fignums() == [], "figures are closed in pyplot so the notebook shows them once"
    assert len(viz.show(images, preds=masks[:, 0]).axes) == 3 * 3
    assert len(viz.show(images[0], masks[0, 0]).axes) == 3  # one sample, (3, H, W) and (H, W)
    only_images = viz.show(list(images) + [images[0]] * 2, ncols=4)
    assert len(only_images.axes) == 8 and sum(ax.has_data() for ax in only_images.axes) == 5
    with pytest.raises(ValueError, match="3 images but 2 masks"):
        viz.show(images, masks[:2])


def test_a_binary_prediction_with_its_mask_shows_extra_and_missed_pixels_apart():
    image = torch.zeros(3, 2, 2)  # black: a tinted pixel takes 0.8 of its colour
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    pred = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    fig = viz.show(image, mask, pred)
    assert fig.axes[3].get_title().startswith("errors")
    errors = fig.axes[3].images[0].get_array()  # (2, 2, 3): right, missed, extra, right
    assert errors[0, 0].tolist() == [0, 0, 0] and errors[1, 1].tolist() == [0, 0, 0]
    assert errors[0, 1].tolist() == [round(0.8 * c) for c in viz.ERROR_COLOURS["missed"]]
    assert errors[1, 0].tolist() == [round(0.8 * c) for c in viz.ERROR_COLOURS["extra"]]
    assert viz.show(image, mask).axes[2].get_title() == "overlay"  # no prediction: the mask tints the image


def test_show_multiclass_with_legend():
    labels = torch.randint(0, 5, (2, 8, 8))
    labels[0, 0, 0] = 255
    fig = viz.show(torch.randn(2, 3, 8, 8), labels, labels, num_classes=5, class_names=list("abcde"))
    assert len(fig.axes) == 2 * 4
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names == [f"{i}: {n}" for i, n in enumerate("abcde") if (labels == i).any()]


def test_legend_patches():
    colours = viz.palette(4)
    patches = viz.legend(["sky", "road", "car", "tree"], colours, present=torch.tensor([[3, 1], [255, 1]]))
    assert [p.get_label() for p in patches] == ["1: road", "3: tree"]
    np.testing.assert_allclose(patches[0].get_facecolor()[:3], colours[1] / 255)


def test_plot_history_one_run():
    history = {
        "train_loss": [1.0, 0.5, 0.3],
        "val_loss": [1.1, 0.6, 0.4],
        "val_dice": [0.2, 0.5, 0.7],
        "lr": [1e-3, 5e-4, 1e-4],
    }
    fig = viz.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "dice", "learning rate"]
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[2].get_yscale() == "log"
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), [0.2, 0.5, 0.7])
    assert [ax.get_title() for ax in viz.plot_history(history, metrics=["val_dice"]).axes] == ["loss", "dice"]


def test_plot_history_draws_losses_on_a_log_scale_when_one_spike_would_flatten_the_rest():
    steady = {"train_loss": [0.5, 0.3, 0.2], "val_loss": [0.4, 0.3, 0.25]}
    assert viz.plot_history(steady).axes[0].get_yscale() == "linear"
    spiked = {
        "a": {"train_loss": [0.9, 0.3], "val_loss": [5.8, 0.3]},
        "b": {"train_loss": [0.4, 0.2], "val_loss": [0.3, 0.13]},
    }
    loss_panel = viz.plot_history(spiked).axes[0]
    assert loss_panel.get_yscale() == "log" and loss_panel.get_title() == "loss (log scale)"


def test_plot_history_several_runs():
    runs = {
        "cross_entropy": {"train_loss": [1, 0.5], "val_loss": [1, 0.6], "val_miou": [0.1, 0.2]},
        "dice": {"train_loss": [0.9, 0.4], "val_loss": [0.8, 0.5], "val_miou": [0.2, 0.3]},
    }
    fig = viz.plot_history(runs)
    assert len(fig.axes) == 2
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks), f"epoch ticks must be whole numbers, got {ticks}"
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["cross_entropy val", "dice val"]
    assert len(fig.axes[0].get_lines()) == 4
    assert fig.axes[1].get_title() == "mIoU" and all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "cross_entropy train",
        "cross_entropy val",
        "dice train",
        "dice val",
    ]  # one legend, under the panels
    with pytest.raises(ValueError, match="empty"):
        viz.plot_history({})


def test_interactive_or_static_draws_each_static_setting(monkeypatch):
    shown, calls = [], []
    monkeypatch.setattr(widgets, "_display", shown.append)

    def draw(alpha, index):
        calls.append((alpha, index))
        return viz.show(torch.rand(3, 8, 8), torch.ones(8, 8))

    widgets.interactive_or_static(
        draw, static=[{"alpha": 0.2, "index": 0}, {"alpha": 0.8, "index": 1}], alpha=(0.0, 1.0, 0.1), index=(0, 3)
    )
    assert calls == [(0.2, 0), (0.8, 1)]  # no kernel here (and smoke mode): static only
    assert len(shown) == 2 and all(isinstance(f, Figure) for f in shown)
    with pytest.raises(ValueError, match="no value for"):
        widgets.interactive_or_static(draw, static=[{"alpha": 0.5}], alpha=(0.0, 1.0), index=(0, 3))


def test_live_widget_starts_at_first_static_setting(monkeypatch):
    pytest.importorskip("ipywidgets")
    shown, calls = [], []
    monkeypatch.setattr(widgets, "_display", shown.append)
    widgets.interactive_or_static(
        lambda alpha: calls.append(alpha), static=[{"alpha": 0.3}], live=True, alpha=(0.0, 1.0, 0.1)
    )
    box = shown[0]
    assert box.kwargs_widgets[0].value == pytest.approx(0.3)
    assert calls[-1] == 0.3, "the static figure is drawn"
    box.update()  # what displaying the widget does (ipywidgets 8 draws on construction too, 7 only on display)
    assert calls[-1] == pytest.approx(0.3), "the widget's first picture is the first static setting"
    box.kwargs_widgets[0].value = 0.7
    assert calls[-1] == pytest.approx(0.7)
