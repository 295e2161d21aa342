"""Generated stand-ins for Carvana and ADE20K, written in the real datasets' on-disk formats.

With no download the notebooks still run end to end: these generators draw small synthetic datasets that the
real loaders (``data.CarvanaDataset``, ``data.ADE20KDataset``) read unchanged. They are deterministic by seed,
learnable but not trivial: car colour and studio background vary, cars cast shadows and floor reflections that
are not part of the mask, bodies are shaded; scenes mix textured regions of 20 real ADE20K classes, some of
similar colour, with unlabelled clutter (label 0). Left out: anything photo-realistic.
Taught in: notebook 03 (Carvana) and notebook 05 (ADE20K), whenever the real data is not on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from unet_tutorial.data import ADE20K_CLASSES, rle_encode
from unet_tutorial.utils import data_root, smoke_mode

_CAR_COLOURS = [(235, 235, 235), (25, 25, 30), (170, 172, 178), (180, 20, 25), (20, 50, 140), (60, 62, 66),
                (200, 170, 120), (30, 90, 50), (230, 120, 20), (110, 20, 30)]  # fmt: skip
_INFO = "sample_info.json"


def _prepare(root: Path, info: dict, folders: list[str], overwrite: bool) -> bool:
    """True when ``root`` already holds exactly this generated set; otherwise remove what we wrote before.

    Only the files listed in the earlier run's manifest are deleted (then its folders, if left empty), so
    anything else a user put in those folders stays.
    """
    marker = root / _INFO
    if marker.is_file():
        manifest = json.loads(marker.read_text())
        files = manifest.pop("files", None)
        if manifest == info and not overwrite:
            return True
        if files is None:
            raise FileExistsError(f"{root} holds sample data from an older version without a list of its files; "
                                  "delete that folder by hand, or choose another root")
        for name in files:
            (root / name).unlink(missing_ok=True)
        for folder in sorted({Path(name).parent for name in files}, key=lambda p: -len(p.parts)):
            if folder != Path(".") and (root / folder).is_dir() and not any((root / folder).iterdir()):
                (root / folder).rmdir()
        for name in folders:  # parents of nested folders (images/ above images/training/)
            if (root / name).is_dir() and not any((root / name).iterdir()):
                (root / name).rmdir()
        marker.unlink()
    elif any((root / name).exists() for name in folders):
        raise FileExistsError(
            f"{root} already holds {folders} not written by this generator; choose an empty root"
        )
    return False


def _finish(root: Path, info: dict, files: list[str]) -> None:
    """Write the marker: the settings (to skip an identical rerun) and the manifest of every file written."""
    (root / _INFO).write_text(json.dumps({**info, "files": sorted(files)}))


def _car_view(rng: np.random.Generator, car: dict, angle: float, width: int, height: int) -> tuple:
    """Draw one view of a car on its studio background; returns RGB float (H, W, 3) and a 0/1 mask (H, W)."""
    cos, sin = abs(np.cos(angle)), abs(np.sin(angle))
    length, depth, body_h = car["length"] * width, car["depth"] * width, car["body_h"] * height
    half = 0.5 * (length * cos + depth * sin)  # apparent half-width of the turned car
    cx, ground = width / 2 + rng.normal(0, 0.01) * width, car["ground"] * height
    wheel_r = car["wheel_r"] * height
    body_top, body_bottom = ground - wheel_r * 0.9 - body_h, ground - wheel_r * 0.9
    shift = car["cabin_shift"] * length * np.cos(angle) * 0.5  # the cabin sits off-centre, and swaps side
    cabin_bottom = 0.62 * length * cos + 0.85 * depth * sin
    cabin_top, cabin_h = 0.62 * cabin_bottom, car["cabin_h"] * body_h

    masks = {name: Image.new("L", (width, height)) for name in ("body", "cabin", "glass", "wheels", "lights")}
    draw = {name: ImageDraw.Draw(img) for name, img in masks.items()}
    draw["body"].rounded_rectangle(
        [cx - half, body_top, cx + half, body_bottom], radius=body_h * 0.35, fill=255
    )
    cabin = [
        (cx + shift - cabin_bottom / 2, body_top + 1),
        (cx + shift + cabin_bottom / 2, body_top + 1),
        (cx + shift + cabin_top / 2, body_top - cabin_h),
        (cx + shift - cabin_top / 2, body_top - cabin_h),
    ]
    draw["cabin"].polygon(cabin, fill=255)
    inset = [(x + (cx + shift - x) * 0.12, y + (body_top - cabin_h / 2 - y) * 0.2) for x, y in cabin]
    draw["glass"].polygon(inset, fill=255)
    spread = 0.33 * length * cos + 0.36 * depth * sin
    rx = wheel_r * (0.3 + 0.7 * cos)
    for side in (-1, 1):
        wx = cx + side * spread
        draw["wheels"].ellipse([wx - rx, ground - 2 * wheel_r, wx + rx, ground], fill=255)
        lx = cx + side * half * 0.82 * (1 - 0.2 * cos)
        draw["lights"].ellipse(
            [lx - 0.05 * half, body_top + 0.15 * body_h, lx + 0.05 * half, body_top + 0.4 * body_h], fill=255
        )
    m = {name: np.asarray(img, dtype=np.float32) / 255.0 for name, img in masks.items()}
    silhouette = np.clip(m["body"] + m["cabin"] + m["wheels"], 0, 1)  # (H, W)

    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    horizon = car["horizon"]
    wall, floor = np.array(car["wall"], np.float32), np.array(car["floor"], np.float32)
    background = np.where(yy < horizon, wall * (0.85 + 0.25 * yy / horizon), floor * (0.9 + 0.15 * yy))
    background = np.broadcast_to(background, (height, width, 3)).copy()  # (H, W, 3)
    shadow = Image.new("L", (width, height))
    ImageDraw.Draw(shadow).ellipse(
        [cx - half * 1.1, ground - 0.05 * height, cx + half * 1.1, ground + 0.04 * height], fill=255
    )
    shadow_a = (
        np.asarray(shadow.filter(ImageFilter.GaussianBlur(0.02 * width)), np.float32)[..., None] / 255.0
    )
    background *= 1 - car["shadow"] * shadow_a

    colour = np.array(car["colour"], np.float32)
    rows = np.clip((yy - body_top / height) / max(body_h / height, 1e-3), 0, 1)  # 0 at the roof line, 1 low
    paint = colour * (1.15 - 0.4 * rows) + 60 * np.exp(
        -(((rows - 0.3) / 0.08) ** 2)
    )  # shading + a highlight band
    paint = np.broadcast_to(paint, (height, width, 3))
    car_rgb = paint.copy()
    glass, wheels, lights = (
        m["glass"][..., None],
        m["wheels"][..., None],
        m["lights"][..., None] * m["body"][..., None],
    )
    car_rgb = car_rgb * (1 - glass) + glass * (np.array([40, 48, 60], np.float32) + 70 * (1 - yy))
    car_rgb = car_rgb * (1 - wheels) + wheels * np.array([28, 28, 30], np.float32)
    car_rgb = car_rgb * (1 - lights) + lights * np.array(car["lights"], np.float32)

    # A faint mirror image on the glossy floor: looks like car, is not car.
    flip_rows = np.clip((2 * ground - np.arange(height)).astype(int), 0, height - 1)
    below = (np.arange(height) > ground)[:, None, None]
    reflect = silhouette[flip_rows][..., None] * below * car["reflect"]
    background = background * (1 - reflect) + car_rgb[flip_rows] * reflect
    image = background * (1 - silhouette[..., None]) + car_rgb * silhouette[..., None]
    return image, silhouette


def make_carvana_like(
    root: str | Path,
    n_cars: int,
    views: int = 16,
    size: tuple[int, int] = (320, 480),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a Carvana-format dataset of drawn cars turning on a studio turntable.

    Writes ``root/train/<car>_<view>.jpg``, ``root/train_masks/<car>_<view>_mask.gif`` (palette 0/1) and
    ``root/train_masks.csv`` (``img,rle_mask``); skips the work when the same set is already there.

    Args:
        root: output folder (created).
        n_cars: number of cars; each gets a random 12-hex-digit id.
        views: views per car (Carvana has 16), evenly spaced around the car.
        size: (height, width) of every image, like Carvana's (1280, 1918).
        seed: the same seed gives the same files.
        overwrite: regenerate even when the set is already there.

    Returns:
        ``root`` as a Path.
    """
    root, (height, width) = Path(root), size
    info = {"kind": "carvana_like", "n_cars": n_cars, "views": views, "size": [height, width], "seed": seed}
    if _prepare(root, info, ["train", "train_masks", "train_masks.csv"], overwrite):
        return root
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train_masks").mkdir(exist_ok=True)
    ss = 2 if width * height <= 640 * 480 else 1  # draw at 2x and shrink: smooth edges, sub-pixel masks
    rows, files = ["img,rle_mask"], []
    for c in range(n_cars):
        rng = np.random.default_rng([seed, c])
        car_id = "".join(rng.choice(list("0123456789abcdef"), 12))
        studio = rng.uniform(120, 240)
        wall = np.clip(studio + rng.normal(0, 12, 3), 0, 255)
        while True:  # real Carvana has grey cars on grey floors too; keep at least some contrast
            colour = np.clip(
                np.array(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))]) + rng.normal(0, 12, 3), 0, 255
            )
            if np.abs(colour - wall).mean() > 45:
                break
        car = {
            "length": rng.uniform(0.62, 0.76), "depth": rng.uniform(0.3, 0.36), "body_h": rng.uniform(0.14, 0.2),
            "cabin_h": rng.uniform(0.6, 0.9), "cabin_shift": rng.uniform(-0.25, 0.1),
            "wheel_r": rng.uniform(0.06, 0.08), "ground": rng.uniform(0.72, 0.8), "horizon": rng.uniform(0.45, 0.6),
            "wall": wall, "floor": np.clip(wall * rng.uniform(0.8, 1.05), 0, 255), "colour": colour,
            "shadow": rng.uniform(0.4, 0.7), "reflect": rng.uniform(0.08, 0.2),
            "lights": (255, 230, 150) if rng.random() < 0.5 else (200, 30, 30),
        }  # fmt: skip
        for v in range(views):
            image, mask = _car_view(
                rng, car, 2 * np.pi * v / views + rng.normal(0, 0.03), width * ss, height * ss
            )
            image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize(
                (width, height), Image.BOX
            )
            mask_img = Image.fromarray((mask * 255).astype(np.uint8)).resize((width, height), Image.BOX)
            mask01 = (np.asarray(mask_img) >= 128).astype(np.uint8)
            pixels = np.asarray(image, np.float32) * rng.uniform(0.93, 1.07)  # lighting drifts between shots
            pixels += rng.normal(0, rng.uniform(2, 6), pixels.shape)
            name = f"{car_id}_{v + 1:02d}"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / "train" / f"{name}.jpg", quality=90
            )
            gif = Image.fromarray(mask01, mode="L").convert("P")
            gif.putpalette([0, 0, 0, 255, 255, 255])
            gif.save(root / "train_masks" / f"{name}_mask.gif")
            rows.append(f"{name}.jpg,{rle_encode(mask01)}")
            files += [f"train/{name}.jpg", f"train_masks/{name}_mask.gif"]
    (root / "train_masks.csv").write_text("\n".join(rows) + "\n")
    _finish(root, info, [*files, "train_masks.csv"])
    return root


def _id(name: str) -> int:
    return ADE20K_CLASSES.index(name) + 1  # file labels are 1-based; 0 is "other"


# class name -> (base RGB, texture); similar colours on purpose (road/sidewalk/building, grass/tree, wall/ceiling)
_STYLE = {
    "sky": ((120, 170, 230), "gradient"), "building": ((150, 140, 130), "grid"), "tree": ((50, 110, 45), "blotch"),
    "road": ((90, 90, 95), "speckle"), "sidewalk": ((150, 148, 140), "tiles"), "grass": ((70, 140, 50), "speckle"),
    "car": ((170, 30, 35), "flat"), "person": ((200, 150, 120), "flat"), "mountain": ((110, 100, 110), "blotch"),
    "wall": ((210, 200, 180), "flat"), "floor": ((150, 110, 70), "stripes"), "ceiling": ((225, 220, 210), "gradient"),
    "door": ((120, 80, 50), "stripes"), "windowpane": ((160, 200, 230), "gradient"),
    "painting": ((180, 60, 120), "blotch"),
    "bed": ((230, 230, 240), "speckle"), "sofa": ((60, 80, 140), "speckle"), "table": ((140, 90, 50), "stripes"),
    "chair": ((100, 60, 30), "flat"), "cabinet": ((170, 130, 90), "grid"),
}  # fmt: skip


def _texture(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A modulation field in about [-1, 1], (H, W)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(4, 10) * max(height, width) / 96
    if kind == "gradient":
        return 1 - 2 * yy / height
    if kind == "grid":
        return np.where(((xx // period) % 2 == 1) & ((yy // period) % 2 == 1), -1.0, 0.3)
    if kind == "tiles":
        return np.where((xx % (2 * period) < 1.5) | (yy % (2 * period) < 1.5), -1.0, 0.2)
    if kind == "stripes":
        return np.sin(2 * np.pi * (xx if rng.random() < 0.5 else yy) / period)
    if kind == "blotch":
        coarse = Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8))
        return np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float32) / 127.5 - 1
    if kind == "speckle":
        return rng.uniform(-1, 1, (height, width)).astype(np.float32)
    return np.zeros((height, width), np.float32)


def _scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Draw one label map (uint8 (H, W), ADE20K file labels) of an outdoor or an indoor scene."""
    label = Image.new("L", (width, height))
    d = ImageDraw.Draw(label)
    w, h = width, height
    if rng.random() < 0.5:  # outdoor: sky, skyline, trees, street with cars and people
        y0 = rng.uniform(0.35, 0.55) * h
        d.rectangle([0, 0, w, y0], fill=_id("sky"))
        if rng.random() < 0.5:
            d.polygon(
                [(0, y0), (rng.uniform(0.2, 0.5) * w, y0 - rng.uniform(0.15, 0.3) * h), (w * 0.8, y0)],
                fill=_id("mountain"),
            )
        d.rectangle([0, y0, w, h], fill=_id("grass"))
        for _ in range(rng.integers(1, 4)):
            x = rng.uniform(-0.1, 0.8) * w
            d.rectangle(
                [x, y0 - rng.uniform(0.15, 0.35) * h, x + rng.uniform(0.15, 0.35) * w, y0 + 2],
                fill=_id("building"),
            )
        for _ in range(rng.integers(1, 3)):
            x, r = rng.uniform(0, w), rng.uniform(0.08, 0.15) * w
            d.ellipse([x - r, y0 - 2.2 * r, x + r, y0 + 0.2 * r], fill=_id("tree"))
        top, bottom = rng.uniform(0.4, 0.6) * w, rng.uniform(0.1, 0.3) * w
        d.polygon(
            [
                (w / 2 - top / 2 - 6, y0 + 2),
                (w / 2 + top / 2 + 6, y0 + 2),
                (w - bottom + 0.15 * w, h),
                (bottom - 0.15 * w, h),
            ],
            fill=_id("sidewalk"),
        )
        d.polygon(
            [(w / 2 - top / 2, y0 + 2), (w / 2 + top / 2, y0 + 2), (w - bottom, h), (bottom, h)],
            fill=_id("road"),
        )
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0.2, 0.7) * w, rng.uniform(y0 + 0.15 * h, 0.85 * h)
            s = (y - y0) / (h - y0) + 0.3  # nearer is bigger
            d.rounded_rectangle([x, y - 0.12 * s * h, x + 0.25 * s * w, y], radius=3, fill=_id("car"))
        for _ in range(rng.integers(0, 3)):
            x, y, s = rng.uniform(0.05, 0.95) * w, rng.uniform(y0 + 0.1 * h, h), rng.uniform(0.5, 1.0)
            d.rectangle([x - 0.025 * s * w, y - 0.25 * s * h, x + 0.025 * s * w, y], fill=_id("person"))
            d.ellipse(
                [x - 0.02 * s * w, y - 0.3 * s * h, x + 0.02 * s * w, y - 0.24 * s * h], fill=_id("person")
            )
    else:  # indoor: ceiling, wall, floor, furniture
        c, f = rng.uniform(0.1, 0.25) * h, rng.uniform(0.6, 0.75) * h
        d.rectangle([0, 0, w, c], fill=_id("ceiling"))
        d.rectangle([0, c, w, f], fill=_id("wall"))
        d.rectangle([0, f, w, h], fill=_id("floor"))
        for name, wf, hf in (("door", 0.15, 0.9), ("windowpane", 0.2, 0.4), ("painting", 0.15, 0.25)):
            if rng.random() < 0.7:
                x = rng.uniform(0, 1 - wf) * w
                bottom = f if name == "door" else rng.uniform(c + hf * (f - c), f - 0.1 * (f - c))
                d.rectangle([x, bottom - hf * (f - c), x + wf * w, bottom], fill=_id(name))
        for name in rng.choice(
            ["bed", "sofa", "table", "chair", "cabinet"], size=rng.integers(1, 4), replace=False
        ):
            x, y = rng.uniform(0, 0.7) * w, rng.uniform(f, h)
            fw, fh = {"bed": (0.4, 0.18), "sofa": (0.35, 0.2), "table": (0.25, 0.12), "chair": (0.1, 0.2),
                      "cabinet": (0.2, 0.35)}[name]  # fmt: skip
            d.rectangle([x, y - fh * h, x + fw * w, y], fill=_id(name))
    for _ in range(rng.integers(0, 4)):  # unlabelled clutter: label 0, never scored
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.08) * w
        d.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(label)


def _paint(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Colour a label map with each class's jittered colour and texture, plus lighting and noise."""
    height, width = label.shape
    image = rng.uniform(40, 220, 3).astype(np.float32) * np.ones(
        (height, width, 3), np.float32
    )  # clutter colour
    names = {_id(n): n for n in _STYLE}
    for value in np.unique(label):
        if value == 0:
            continue
        rgb, kind = _STYLE[names[int(value)]]
        base = np.clip(np.array(rgb, np.float32) + rng.normal(0, 15, 3), 0, 255)
        field = _texture(kind, rng, height, width)[..., None] * rng.uniform(15, 35)  # (H, W, 1)
        where = label == value
        image[where] = (base + field)[where]
    image *= rng.uniform(0.75, 1.15)
    image += rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_ade20k_like(
    root: str | Path,
    n_train: int,
    n_val: int,
    size: tuple[int, int] = (192, 256),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write an ADEChallengeData2016-format dataset of drawn indoor and outdoor scenes.

    Writes ``root/images/{training,validation}/ADE_{train,val}_%08d.jpg`` and single-channel uint8 PNG labels
    under ``root/annotations/...`` using 20 of the 150 class ids (0 where nothing is labelled); skips the work
    when the same set is already there.

    Args:
        root: output folder (created); pass it to ``ADE20KDataset``.
        n_train, n_val: number of training and validation scenes.
        size: (height, width) of every image.
        seed: the same seed gives the same files.
        overwrite: regenerate even when the set is already there.

    Returns:
        ``root`` as a Path.
    """
    root, (height, width) = Path(root), size
    info = {"kind": "ade20k_like", "n_train": n_train, "n_val": n_val, "size": [height, width], "seed": seed}
    if _prepare(root, info, ["images", "annotations"], overwrite):
        return root
    files = []
    for split, prefix, count, offset in (
        ("training", "train", n_train, 0),
        ("validation", "val", n_val, 10**6),
    ):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, offset + i])
            label = _scene(rng, width, height)
            name = f"ADE_{prefix}_{i + 1:08d}"
            Image.fromarray(_paint(rng, label)).save(root / "images" / split / f"{name}.jpg", quality=90)
            Image.fromarray(label, mode="L").save(root / "annotations" / split / f"{name}.png")
            files += [f"images/{split}/{name}.jpg", f"annotations/{split}/{name}.png"]
    _finish(root, info, files)
    return root


def _has_carvana_layout(root: Path) -> bool:
    """True when ``root`` holds the competition's files: train/ (or train_hq/) images and train_masks/ GIFs."""
    images = any(next((root / name).glob("*.jpg"), None) for name in ("train", "train_hq") if (root / name).is_dir())
    masks = (root / "train_masks").is_dir() and next((root / "train_masks").glob("*_mask.*"), None) is not None
    return images and masks and not (root / _INFO).is_file()


def _has_ade20k_layout(root: Path) -> bool:
    """True when ``root`` holds ADEChallengeData2016: images/ and annotations/, each with training/ and validation/."""
    for split in ("training", "validation"):
        for folder, pattern in ((root / "images" / split, "*.jpg"), (root / "annotations" / split, "*.png")):
            if not folder.is_dir() or next(folder.glob(pattern), None) is None:
                return False
    return not (root / _INFO).is_file()


def carvana_data(
    root: str | Path | None = None,
    *,
    n_cars: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[Path, bool]:
    """The Carvana folder a notebook should use: the real data when it is on disk, else a generated stand-in.

    The real data counts when ``root`` holds ``train/`` (or ``train_hq/``) images and ``train_masks/``, except in
    smoke mode (tests, CI), which never reads 5,088 full-size photos. Otherwise Carvana-like data is generated
    (once per setting; later calls reuse it) under ``data_root()/"carvana_sample_..."`` and a notice says so and how
    to get the real data.

    Args:
        root: where the real data lives; default ``utils.data_root()/"carvana"``.
        n_cars: cars to generate (16 views each); default 3 in smoke mode, 24 (384 images) otherwise.
        size: (height, width) of generated images; default (64, 96) in smoke mode, (160, 240) otherwise.
        seed: seed of the generated set.

    Returns:
        (folder, is_real): the folder to pass to ``data.CarvanaDataset`` and whether it holds the real data.
    """
    root = Path(root).expanduser() if root is not None else data_root() / "carvana"
    real = root if _has_carvana_layout(root) else None
    if real is not None and not smoke_mode():
        return real, True
    n_cars = n_cars if n_cars is not None else (3 if smoke_mode() else 24)
    size = size if size is not None else ((64, 96) if smoke_mode() else (160, 240))
    sample = make_carvana_like(_sample_folder("carvana", f"{n_cars}cars", size, seed), n_cars=n_cars, size=size,
                               seed=seed)
    _notice(
        "Carvana", root, real, sample,
        expected="train/ or train_hq/ with <car>_<view>.jpg next to train_masks/ with <car>_<view>_mask.gif",
        generated=f"{n_cars} drawn cars x 16 views, {size[0]}x{size[1]} (HxW) pixels",
        how=("To get the real data (5,088 photos, 1280x1918): sign in to Kaggle, accept the competition rules at\n"
             "https://www.kaggle.com/competitions/carvana-image-masking-challenge/rules, create an API token and set\n"
             "KAGGLE_API_TOKEN (on Colab: a secret of that name), then run\n"
             f"    python data_scripts/download_carvana.py --root {root}\n"
             "(or in notebook 03: set DOWNLOAD = True in the settings and run its download cell)."),
    )
    return sample, False


def ade20k_data(
    root: str | Path | None = None,
    *,
    n_train: int | None = None,
    n_val: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[Path, bool]:
    """The ADE20K folder a notebook should use: the real ADEChallengeData2016 when it is on disk, else a stand-in.

    The real data counts when ``root`` (or ``root/ADEChallengeData2016``) holds ``images/`` and ``annotations/``,
    each with ``training/`` and ``validation/``, except in smoke mode (tests, CI), which never reads 20,210
    photos. Otherwise ADE20K-like scenes are generated (once per setting; later calls reuse them) under
    ``data_root()/"ade20k_sample_..."`` and a notice says so and how to get the real data.

    Args:
        root: where the real data lives; default ``utils.data_root()/"ADEChallengeData2016"``.
        n_train, n_val: scenes to generate; default 16 and 4 in smoke mode, 400 and 80 otherwise.
        size: (height, width) of generated images; default (64, 96) in smoke mode, (192, 256) otherwise.
        seed: seed of the generated set.

    Returns:
        (folder, is_real): the folder to pass to ``data.ADE20KDataset`` and whether it holds the real data.
    """
    root = Path(root).expanduser() if root is not None else data_root() / "ADEChallengeData2016"
    # The folder itself, or the one the zip unpacked into.
    real = next((f for f in (root, root / "ADEChallengeData2016") if _has_ade20k_layout(f)), None)
    if real is not None and not smoke_mode():
        return real, True
    n_train = n_train if n_train is not None else (16 if smoke_mode() else 400)
    n_val = n_val if n_val is not None else (4 if smoke_mode() else 80)
    size = size if size is not None else ((64, 96) if smoke_mode() else (192, 256))
    folder = _sample_folder("ade20k", f"{n_train}train_{n_val}val", size, seed)
    sample = make_ade20k_like(folder, n_train, n_val, size=size, seed=seed)
    parent = root.parent if root.name == "ADEChallengeData2016" else root  # the script unpacks into parent/
    _notice(
        "ADE20K", root, real, sample,
        expected="images/{training,validation}/ADE_*.jpg and annotations/{training,validation}/ADE_*.png",
        generated=(f"{n_train} training and {n_val} validation drawn scenes, {size[0]}x{size[1]} (HxW) pixels, "
                   "using 20 of the 150 classes"),
        how=("To get the real data (ADEChallengeData2016.zip from MIT, about 1 GB: 20,210 training and 2,000 "
             "validation photos), run\n"
             f"    python data_scripts/download_ade20k.py --root {parent}\n"
             "(or in notebook 05: set DOWNLOAD = True in the settings and run its download cell)."),
    )
    return sample, False


def _sample_folder(dataset: str, amount: str, size: tuple[int, int], seed: int) -> Path:
    """One folder per setting, so smoke runs and full runs never regenerate each other's data."""
    return data_root(writable=True) / f"{dataset}_sample_{amount}_{size[0]}x{size[1]}_seed{seed}"


def _notice(name: str, root: Path, real: Path | None, sample: Path, *, expected: str, generated: str,
            how: str) -> None:
    """Say, in a box a learner cannot miss, that the numbers below are about generated data, and how to get the real."""
    line = "=" * 100
    where = (f"smoke mode (tests, CI) uses small generated data, though the real data is in {real}.\n" if real else
             f"the real {name} data is not in {root}\n(expected {expected}).\n")
    print(f"{line}\nNOTICE: {where}Using GENERATED {name}-like data instead: {generated},\nin {sample}. "
          f"Every number below is about this drawn data, not about the real {name} photos.\n{how}\n{line}")
