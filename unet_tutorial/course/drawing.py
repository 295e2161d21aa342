"""The pictures behind the generated stand-in data: a car on a studio turntable, and indoor or outdoor scenes.

Arrays only, no files: ``sample_data.py`` writes them in the real datasets' formats. Learnable but not trivial:
car colour and studio background vary, cars cast shadows and floor reflections that are not part of the mask,
bodies are shaded; scenes mix textured regions of 20 real ADE20K classes, some of similar colour, with
unlabelled clutter (label 0). Sizes are (height, width). Left out: anything photo-realistic.
Taught in: no notebook cell; notebooks 03 and 05 show its pictures when the real data is not on disk.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from unet_tutorial.data import ADE20K_CLASSES

_CAR_COLOURS = [(235, 235, 235), (25, 25, 30), (170, 172, 178), (180, 20, 25), (20, 50, 140), (60, 62, 66),
                (200, 170, 120), (30, 90, 50), (230, 120, 20), (110, 20, 30)]  # fmt: skip


def random_car(rng: np.random.Generator) -> dict:
    """One car and its studio: proportions, colours, shadow and reflection strength, drawn from ``rng``."""
    studio = rng.uniform(120, 240)
    wall = np.clip(studio + rng.normal(0, 12, 3), 0, 255)
    while True:  # real Carvana has grey cars on grey floors too; keep at least some contrast
        colour = np.clip(np.array(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))]) + rng.normal(0, 12, 3), 0, 255)
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
    return car


def car_view(rng: np.random.Generator, car: dict, angle: float, height: int, width: int) -> tuple:
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
    draw["body"].rounded_rectangle([cx - half, body_top, cx + half, body_bottom], radius=body_h * 0.35, fill=255)
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
    shadow_a = np.asarray(shadow.filter(ImageFilter.GaussianBlur(0.02 * width)), np.float32)[..., None] / 255.0
    background *= 1 - car["shadow"] * shadow_a

    colour = np.array(car["colour"], np.float32)
    rows = np.clip((yy - body_top / height) / max(body_h / height, 1e-3), 0, 1)  # 0 at the roof line, 1 low
    paint = colour * (1.15 - 0.4 * rows) + 60 * np.exp(-(((rows - 0.3) / 0.08) ** 2))  # shading + a highlight band
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


def scene_labels(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
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
            d.ellipse([x - 0.02 * s * w, y - 0.3 * s * h, x + 0.02 * s * w, y - 0.24 * s * h], fill=_id("person"))
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
        for name in rng.choice(["bed", "sofa", "table", "chair", "cabinet"], size=rng.integers(1, 4), replace=False):
            x, y = rng.uniform(0, 0.7) * w, rng.uniform(f, h)
            fw, fh = {"bed": (0.4, 0.18), "sofa": (0.35, 0.2), "table": (0.25, 0.12), "chair": (0.1, 0.2),
                      "cabinet": (0.2, 0.35)}[name]  # fmt: skip
            d.rectangle([x, y - fh * h, x + fw * w, y], fill=_id(name))
    for _ in range(rng.integers(0, 4)):  # unlabelled clutter: label 0, never scored
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.08) * w
        d.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(label)


def paint_scene(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Colour a label map with each class's jittered colour and texture, plus lighting and noise."""
    height, width = label.shape
    image = rng.uniform(40, 220, 3).astype(np.float32) * np.ones((height, width, 3), np.float32)  # clutter colour
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
