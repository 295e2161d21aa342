"""Pictures of images, masks, predictions and training curves, with matplotlib only.

The idea: a segmentation model is checked by looking. ``show`` puts images, true masks, predictions and an
overlay side by side; ``plot_history`` draws loss and metric curves for one run or several; ``palette``,
``colorize`` and ``legend`` turn class indices into colours. Left out: drawings of the model itself
(diagrams.py), interactive explorers (widgets.py) and dataset-specific colour tables (``data.ade20k_palette``).

How figures are shown: every function returns its ``matplotlib.figure.Figure``, already closed in pyplot, so
a picture appears exactly once: end a notebook cell with the call (or with ``fig``, or ``display(fig)``).
Assigning ``fig = show(...)`` in the middle of a cell draws nothing until you display ``fig``.
Taught in: 01 (first use) and every later notebook.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD

ArrayLike = torch.Tensor | np.ndarray


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _done(fig: Figure) -> Figure:
    """Close ``fig`` in pyplot (so the inline backend does not show it a second time) and return it."""
    plt.close(fig)
    return fig


def palette(num_classes: int, seed: int = 0) -> np.ndarray:
    """A fixed table of distinguishable colours, one per class.

    Farthest-point sampling over a grid of hues, saturations and brightnesses: each new colour is the
    candidate farthest (in RGB) from all colours chosen so far, so even 150 classes stay apart. Nothing is
    near black, which ``colorize`` keeps for ignored pixels.

    Args:
        num_classes: how many colours.
        seed: picks the first colour; the same seed always gives the same table (seed 0 starts with red).

    Returns:
        uint8 array of shape (num_classes, 3), RGB, every row different.
    """
    if num_classes < 1:
        raise ValueError(f"palette(num_classes={num_classes}): num_classes must be at least 1.")
    hues = max(36, -(-num_classes // 9))
    candidates = np.array(
        [colorsys.hsv_to_rgb(h / hues, s, v) for h in range(hues) for s in (1.0, 0.6, 0.35) for v in (1.0, 0.75, 0.5)]
    )  # (hues * 9, 3)
    chosen = [int(np.random.default_rng(seed).integers(len(candidates))) if seed else 0]
    distance = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)  # to the nearest chosen colour
    for _ in range(num_classes - 1):
        chosen.append(int(distance.argmax()))
        distance = np.minimum(distance, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    return np.round(candidates[chosen] * 255).astype(np.uint8)


_make_palette = palette  # show() has an argument named palette


def denormalize(
    image: ArrayLike, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
) -> np.ndarray:
    """Undo mean/std normalization so that an image can be drawn.

    An image whose values already lie in [0, 1] is left as it is, and a uint8 image is divided by 255, so
    this is safe to call on anything a dataset returns. Pass ``mean=None`` to skip the normalization step.

    Args:
        image: (3, H, W) or (H, W, 3) tensor or array (a (1, H, W) grey image is repeated to 3 channels).
        mean, std: the per-channel statistics the image was normalized with.

    Returns:
        float32 array of shape (H, W, 3) in [0, 1].
    """
    array = _numpy(image)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"denormalize(image): expected (3, H, W) or (H, W, 3), got shape {array.shape}.")
    if array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)  # (H, W, 1) -> (H, W, 3)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if mean is not None and std is not None and (array.min() < 0.0 or array.max() > 1.0):
        array = array * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    return np.clip(array, 0.0, 1.0)


def _label_map(mask: ArrayLike) -> np.ndarray:
    """(H, W) integer labels from a (H, W) or (1, H, W) mask of labels or 0/1 floats."""
    array = _numpy(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(
            f"expected a mask of shape (H, W) or (1, H, W), got {array.shape}; "
            "for probabilities or logits, threshold or argmax them first."
        )
    if array.dtype.kind == "f":
        array = np.round(array)
    return array.astype(np.int64)


def colorize(
    mask: ArrayLike, palette: np.ndarray, ignore_index: int | None = 255, ignore_color: Sequence[int] = (0, 0, 0)
) -> np.ndarray:
    """Turn a label map into an RGB picture.

    Args:
        mask: (H, W) or (1, H, W) class indices.
        palette: (num_classes, 3) uint8 colours, e.g. ``palette(num_classes)``.
        ignore_index: label drawn in ``ignore_color`` (black by default); None if there is none.

    Returns:
        uint8 array of shape (H, W, 3).
    """
    labels = _label_map(mask)
    table = np.asarray(palette, dtype=np.uint8)
    ignored = labels == ignore_index if ignore_index is not None else np.zeros_like(labels, dtype=bool)
    valid = labels[~ignored]
    if valid.size and (valid.min() < 0 or valid.max() >= len(table)):
        raise ValueError(
            f"colorize: the mask holds labels {valid.min()}..{valid.max()} but the palette has "
            f"{len(table)} colours; pass palette(num_classes) with a big enough num_classes."
        )
    rgb = table[np.where(ignored, 0, labels)]  # (H, W) -> (H, W, 3)
    rgb[ignored] = np.asarray(ignore_color, dtype=np.uint8)
    return rgb


def overlay(
    image: ArrayLike,
    mask: ArrayLike,
    color: Sequence[int] = (255, 0, 0),
    alpha: float = 0.5,
    palette: np.ndarray | None = None,
    ignore_index: int | None = 255,
) -> np.ndarray:
    """Blend a mask over an image.

    Binary (no palette): pixels where the mask is 1 are tinted with ``color``. Multi-class (with a
    palette): every pixel is tinted with its class colour, except ``ignore_index`` pixels.

    Args:
        image: (3, H, W) or (H, W, 3), normalized or in [0, 1] (see ``denormalize``).
        mask: (H, W) or (1, H, W) labels, or 0/1 for a binary mask.
        alpha: opacity of the mask colour, 0 (image only) to 1 (mask only).

    Returns:
        uint8 array of shape (H, W, 3).
    """
    picture = denormalize(image)
    labels = _label_map(mask)
    if labels.shape != picture.shape[:2]:
        raise ValueError(f"overlay: image is {picture.shape[:2]} but mask is {labels.shape}; they must match.")
    if palette is None:
        tint = np.broadcast_to(np.asarray(color, dtype=np.float32) / 255.0, picture.shape)
        where = labels == 1
    else:
        tint = colorize(labels, palette, ignore_index).astype(np.float32) / 255.0
        where = labels != ignore_index if ignore_index is not None else np.ones_like(labels, dtype=bool)
    blended = picture.copy()
    blended[where] = (1.0 - alpha) * picture[where] + alpha * tint[where]
    return np.round(blended * 255.0).astype(np.uint8)


def _batch(x: ArrayLike | Sequence[ArrayLike] | None, sample_ndim: int) -> list[np.ndarray] | None:
    """Split a batch (tensor, array or list) into per-sample arrays; one sample becomes a batch of one.

    ``sample_ndim`` is 3 for images (3, H, W) and 2 for masks (H, W); (B, 1, H, W) masks split into (1, H, W).
    """
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [_numpy(item) for item in x]
    array = _numpy(x)
    return [array] if array.ndim == sample_ndim else list(array)


def legend(
    class_names: Sequence[str],
    palette: np.ndarray,
    present: Iterable[int] | ArrayLike | None = None,
    ignore_index: int | None = 255,
) -> list[Patch]:
    """Colour patches naming each class (one name and one (num_classes, 3) uint8 colour each), in class order, for
    ``fig.legend(handles=...)``; ``present``: only these classes, a list of indices or masks whose labels count."""
    if present is None:
        indices = range(len(class_names))
    else:
        values = _numpy(present) if isinstance(present, (torch.Tensor, np.ndarray)) else np.asarray(list(present))
        indices = sorted(int(v) for v in np.unique(np.round(values)) if v != ignore_index)
    table = np.asarray(palette)
    for index in indices:
        if not 0 <= index < min(len(class_names), len(table)):
            raise ValueError(
                f"legend: class {index} has no name or colour ({len(class_names)} names, {len(table)} colours)."
            )
    return [Patch(facecolor=table[i] / 255.0, edgecolor="black", label=f"{i}: {class_names[i]}") for i in indices]


ERROR_COLOURS = {"extra": (255, 0, 255), "missed": (0, 220, 255)}  # error_overlay's colours: magenta, cyan


def error_overlay(image: ArrayLike, pred: ArrayLike, mask: ArrayLike, alpha: float = 0.8) -> np.ndarray:
    """A binary prediction's errors on the image, uint8 (H, W, 3): predicted but not in the mask tinted magenta
    ("extra"), in the mask but missed tinted cyan ("missed"). image as ``overlay`` takes it; pred, mask 0/1 (H, W)."""
    predicted, truth = _label_map(pred) == 1, _label_map(mask) == 1
    extra = overlay(image, predicted & ~truth, color=ERROR_COLOURS["extra"], alpha=alpha)
    return overlay(extra / 255.0, truth & ~predicted, color=ERROR_COLOURS["missed"], alpha=alpha)


def show(
    images: ArrayLike | Sequence[ArrayLike],
    masks: ArrayLike | Sequence[ArrayLike] | None = None,
    preds: ArrayLike | Sequence[ArrayLike] | None = None,
    titles: Sequence[str] | None = None,
    num_classes: int = 1,
    palette: np.ndarray | None = None,
    ncols: int | None = None,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = 255,
    size: float = 2.6,
) -> Figure:
    """A grid of samples: one row each, columns image / mask / prediction / overlay.

    With images only, they are laid out ``ncols`` to a row (default up to 4). The overlay column tints the
    image with the prediction (or with the mask when there is no prediction); for a binary prediction with its
    mask it shows the errors instead: pixels predicted but not in the mask in magenta, mask pixels the
    prediction missed in cyan (``ERROR_COLOURS``).

    Args:
        images: (B, 3, H, W) or (3, H, W) tensor/array, or a list of (3, H, W); normalized or in [0, 1].
        masks, preds: (B, 1, H, W) or (B, H, W) labels (0/1 when binary), or lists. Threshold or argmax
            probabilities first.
        titles: one title per sample, drawn over its image.
        num_classes: 1 for binary masks (drawn black/white), else the number of classes (drawn in colour).
        palette: (num_classes, 3) uint8 colours for multi-class; default ``palette(num_classes)``.
        class_names: with multi-class masks, adds a legend of the classes that appear.
        size: inches per panel.

    Returns:
        the Figure (B rows x up to 4 columns of axes).
    """
    image_list = _batch(images, sample_ndim=3)
    mask_list, pred_list = _batch(masks, sample_ndim=2), _batch(preds, sample_ndim=2)
    for name, items in (("masks", mask_list), ("preds", pred_list), ("titles", titles)):
        if items is not None and len(items) != len(image_list):
            raise ValueError(f"show: {len(image_list)} images but {len(items)} {name}; pass one per image.")
    colours = None if num_classes == 1 else (palette if palette is not None else _make_palette(num_classes))

    def draw_labels(ax, labels):
        if colours is None:
            ax.imshow(_label_map(labels), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(colorize(labels, colours, ignore_index), interpolation="nearest")

    if mask_list is None and pred_list is None:
        cols = ncols or min(len(image_list), 4)
        rows = -(-len(image_list) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
        for index, ax in enumerate(axes.flat):
            ax.axis("off")
            if index < len(image_list):
                ax.imshow(denormalize(image_list[index]))
                if titles is not None:
                    ax.set_title(titles[index], fontsize=9)
        fig.tight_layout()
        return _done(fig)

    errors = colours is None and mask_list is not None and pred_list is not None  # binary: the overlay shows errors
    headers = ["image"] + ["mask"] * (mask_list is not None) + ["prediction"] * (pred_list is not None)
    headers.append("errors: magenta extra,\ncyan missed" if errors else "overlay")
    fig, axes = plt.subplots(
        len(image_list), len(headers), figsize=(size * len(headers), size * len(image_list)), squeeze=False
    )
    for row, image in enumerate(image_list):
        panels = [denormalize(image)]
        if mask_list is not None:
            panels.append(mask_list[row])
        if pred_list is not None:
            panels.append(pred_list[row])
        if errors:
            panels.append(error_overlay(image, pred_list[row], mask_list[row]))
        else:
            tinted = pred_list[row] if pred_list is not None else mask_list[row]
            panels.append(overlay(image, tinted, palette=colours, ignore_index=ignore_index))
        for col, (ax, panel) in enumerate(zip(axes[row], panels)):
            ax.axis("off")
            if 0 < col < len(panels) - 1:
                draw_labels(ax, panel)
            else:
                ax.imshow(panel)
            if row == 0:
                ax.set_title(headers[col], fontsize=10)
        if titles is not None:
            axes[row, 0].set_title(titles[row] if row else f"image\n{titles[row]}", fontsize=9)
    if class_names is not None and colours is not None:
        present = np.concatenate([_label_map(m).ravel() for m in (mask_list or []) + (pred_list or [])])
        handles = legend(class_names, colours, present=present, ignore_index=ignore_index)[:24]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return _done(fig)


def _is_single_run(history: Mapping) -> bool:
    return all(not isinstance(v, Mapping) for v in history.values())


def _group(key: str) -> str:
    """'train_loss' and 'val_loss' share the 'loss' panel; 'val_dice_per_image' goes to 'dice_per_image'."""
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


# A panel's title by its metric's key; any other key is titled by itself, underscores as spaces
PANEL_TITLES = {
    "dice_per_image": "Dice (mean over images)",
    "miou": "mIoU",
    "pixel_accuracy": "pixel accuracy",
    "lr": "learning rate",
}


def plot_history(history: Mapping, metrics: Sequence[str] | None = None, size: float = 3.5) -> Figure:
    """Loss and metric curves per epoch, for one run or to compare several.

    Args:
        history: one run, ``{"train_loss": [...], "val_loss": [...], "val_dice_per_image": [...], "lr": [...]}`` (as
            ``train.fit`` returns), or several, ``{"run name": history, ...}``, drawn on the same panels.
        metrics: which keys to draw besides the losses (default: every key). Keys that differ only by a
            ``train_``/``val_`` prefix share a panel; "lr" is drawn on a log scale, as are losses over ten times apart.

    Returns:
        the Figure, one panel for the losses and one per other metric.
    """
    if not history:
        raise ValueError("plot_history: the history is empty; pass the dict that train.fit returned.")
    runs = {"": history} if _is_single_run(history) else dict(history)
    keys: list[str] = []
    for name, run in runs.items():
        if not isinstance(run, Mapping) or not _is_single_run(run):
            raise ValueError(
                f"plot_history: run {name!r} is not a dict of lists such as {{'train_loss': [...], 'val_loss': [...]}}."
            )
        keys += [k for k in run if k not in keys and k != "epoch"]
    if metrics is not None:
        keys = [k for k in keys if k.endswith("loss") or k in metrics]
    groups: list[str] = []
    for key in keys:
        if _group(key) not in groups:
            groups.append(_group(key))
    groups.sort(key=lambda g: g != "loss")  # losses first

    fig, axes = plt.subplots(1, len(groups), figsize=(size * len(groups), size * 0.8), squeeze=False)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, group in zip(axes[0], groups):
        for run_index, (name, run) in enumerate(runs.items()):
            for key in (k for k in keys if _group(k) == group and k in run):
                values = np.asarray([np.nan if v is None else float(v) for v in run[key]])
                split = key[: -len(group)].rstrip("_") or key
                label = f"{name} {split}".strip() if len(runs) > 1 else split
                style = "--" if key.startswith("train_") else "-"
                colour = cycle[run_index % len(cycle)] if len(runs) > 1 else None
                ax.plot(np.arange(1, len(values) + 1), values, style, color=colour, marker=".", label=label)
        drawn = np.concatenate([line.get_ydata() for line in ax.get_lines()]).astype(float)
        drawn = drawn[np.isfinite(drawn) & (drawn > 0)]  # a loss over ten times another: one run's spike
        spiked = group == "loss" and drawn.size > 1 and drawn.max() > 10 * drawn.min()  # would flatten the rest
        ax.set_title(PANEL_TITLES.get(group, group.replace("_", " ")) + (" (log scale)" if spiked else ""))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no tick at 1.5
        if group == "lr" or spiked:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(runs) == 1:
            ax.legend(fontsize=8)
    if len(runs) > 1:  # one legend under the panels: inside, several runs' labels would cover their curves
        handles, labels = axes[0, 0].get_legend_handles_labels()  # the losses: every run, train and val
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return _done(fig)
