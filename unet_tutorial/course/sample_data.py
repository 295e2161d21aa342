"""Generated stand-ins for Carvana and ADE20K, written in the real datasets' on-disk formats.

With no download the notebooks still run end to end: ``make_carvana_like`` and ``make_ade20k_like`` write small
synthetic datasets (pictures from ``drawing.py``) that the real loaders (``data.CarvanaDataset``,
``data.ADE20KDataset``) read unchanged, deterministic by seed, with a manifest so that a rerun reuses them and a
change of settings replaces only what they wrote. ``carvana_data`` and ``ade20k_data`` pick the real data when it
is on disk, else a generated set (one folder per setting), and say so in a notice. Left out: anything
photo-realistic.
Taught in: notebook 03 (Carvana) and notebook 05 (ADE20K), whenever the real data is not on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from unet_tutorial.course.drawing import car_view, paint_scene, random_car, scene_labels
from unet_tutorial.data import rle_encode
from unet_tutorial.utils import data_root, smoke_mode

_INFO = "sample_info.json"
_LOCK = ".sample_data.lock"  # held while a set is generated (_exclusive)


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold a lock on ``root`` while a set is generated there, so that two processes sharing a fresh data root (two
    notebooks, two test workers) never write it at once: the second waits, then finds the set written. The lock is
    the operating system's (``fcntl.flock``), so a process that dies releases it; where there is none (Windows),
    no lock is taken."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no POSIX locks: generate without one
        yield
        return
    with open(root / _LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process generates here
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holds(root: Path, info: dict) -> bool:
    """Whether ``root`` already holds exactly this generated set (read only: a shared read-only folder will do)."""
    marker = root / _INFO
    if not marker.is_file():
        return False
    manifest = json.loads(marker.read_text())
    manifest.pop("files", None)
    return manifest == info


def _prepare(root: Path, info: dict, folders: list[str], overwrite: bool) -> bool:
    """True when ``root`` already holds exactly this generated set; otherwise remove what we wrote before.

    Only the files listed in the earlier run's manifest are deleted (then its folders, if left empty), so
    anything else a user put in those folders stays.
    """
    marker = root / _INFO
    if marker.is_file():
        if _holds(root, info) and not overwrite:
            return True
        files = json.loads(marker.read_text()).get("files")
        if files is None:
            raise FileExistsError(
                f"{root} holds sample data from an older version without a list of its files; "
                "delete that folder by hand, or choose another root"
            )
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
        raise FileExistsError(f"{root} already holds {folders} not written by this generator; choose an empty root")
    return False


def _finish(root: Path, info: dict, files: list[str]) -> None:
    """Write the marker: the settings (to skip an identical rerun) and the manifest of every file written."""
    (root / _INFO).write_text(json.dumps({**info, "files": sorted(files)}))


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
        views: views per car (Carvana has 16), evenly spaced around the car from the front (view 01).
        size: (height, width) of every image, like Carvana's (1280, 1918).
        seed: the same seed gives the same files.
        overwrite: regenerate even when the set is already there.

    Returns:
        ``root`` as a Path.
    """
    root, (height, width) = Path(root), size
    # "layout" 2: view 01 is the front, as in the real data (layout 1 started at the side); a set written with
    # another layout is regenerated
    info = {
        "kind": "carvana_like",
        "n_cars": n_cars,
        "views": views,
        "size": [height, width],
        "seed": seed,
        "layout": 2,
    }
    if overwrite or not _holds(root, info):  # a set already there is only read: no lock, no write
        with _exclusive(root):
            if not _prepare(root, info, ["train", "train_masks", "train_masks.csv"], overwrite):
                _write_carvana_like(root, info, n_cars, views, (height, width), seed)
    return root


def _write_carvana_like(root: Path, info: dict, n_cars: int, views: int, size: tuple[int, int], seed: int) -> None:
    """``make_carvana_like``'s files, into a root that ``_prepare`` has cleared of an earlier set."""
    height, width = size
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "train_masks").mkdir(exist_ok=True)
    ss = 2 if width * height <= 640 * 480 else 1  # draw at 2x and shrink: smooth edges, sub-pixel masks
    rows, files = ["img,rle_mask"], []
    for c in range(n_cars):
        rng = np.random.default_rng([seed, c])
        car_id = "".join(rng.choice(list("0123456789abcdef"), 12))
        car = random_car(rng)
        for v in range(views):
            # angle 0 shows the car's side; view 01 (v = 0) is the front, as in Carvana's photos
            angle = np.pi / 2 + 2 * np.pi * v / views + rng.normal(0, 0.03)
            image, mask = car_view(rng, car, angle, height * ss, width * ss)
            image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize((width, height), Image.BOX)
            mask_img = Image.fromarray((mask * 255).astype(np.uint8)).resize((width, height), Image.BOX)
            mask01 = (np.asarray(mask_img) >= 128).astype(np.uint8)
            pixels = np.asarray(image, np.float32) * rng.uniform(0.93, 1.07)  # lighting drifts between shots
            pixels += rng.normal(0, rng.uniform(2, 6), pixels.shape)
            name = f"{car_id}_{v + 1:02d}"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / "train" / f"{name}.jpg", quality=90)
            gif = Image.fromarray(mask01, mode="L").convert("P")
            gif.putpalette([0, 0, 0, 255, 255, 255])
            gif.save(root / "train_masks" / f"{name}_mask.gif")
            rows.append(f"{name}.jpg,{rle_encode(mask01)}")
            files += [f"train/{name}.jpg", f"train_masks/{name}_mask.gif"]
    (root / "train_masks.csv").write_text("\n".join(rows) + "\n")
    _finish(root, info, [*files, "train_masks.csv"])


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
    if overwrite or not _holds(root, info):  # a set already there is only read: no lock, no write
        with _exclusive(root):
            if not _prepare(root, info, ["images", "annotations"], overwrite):
                _write_ade20k_like(root, info, n_train, n_val, (height, width), seed)
    return root


def _write_ade20k_like(root: Path, info: dict, n_train: int, n_val: int, size: tuple[int, int], seed: int) -> None:
    """``make_ade20k_like``'s files, into a root that ``_prepare`` has cleared of an earlier set."""
    height, width = size
    files = []
    for split, prefix, count, offset in (
        ("training", "train", n_train, 0),
        ("validation", "val", n_val, 10**6),
    ):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, offset + i])
            label = scene_labels(rng, height, width)
            name = f"ADE_{prefix}_{i + 1:08d}"
            Image.fromarray(paint_scene(rng, label)).save(root / "images" / split / f"{name}.jpg", quality=90)
            Image.fromarray(label, mode="L").save(root / "annotations" / split / f"{name}.png")
            files += [f"images/{split}/{name}.jpg", f"annotations/{split}/{name}.png"]
    _finish(root, info, files)


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
    sample = make_carvana_like(
        _sample_folder("carvana", f"{n_cars}cars", size, seed), n_cars=n_cars, size=size, seed=seed
    )
    _notice(
        "Carvana",
        root,
        real,
        sample,
        expected="train/ or train_hq/ with <car>_<view>.jpg next to train_masks/ with <car>_<view>_mask.gif",
        generated=f"{n_cars} drawn cars x 16 views, {size[0]}x{size[1]} (HxW) pixels",
        how=(
            "To get the real data (5,088 photos, 1280x1918): sign in to Kaggle, accept the competition rules at\n"
            "https://www.kaggle.com/competitions/carvana-image-masking-challenge/rules, create an API token and set\n"
            "KAGGLE_API_TOKEN (on Colab: a secret of that name), then run\n"
            f"    python data_scripts/download_carvana.py --root {root}\n"
            "(or in notebook 03: set DOWNLOAD = True in the settings and run its download cell)."
        ),
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
        "ADE20K",
        root,
        real,
        sample,
        expected="images/{training,validation}/ADE_*.jpg and annotations/{training,validation}/ADE_*.png",
        generated=(
            f"{n_train} training and {n_val} validation drawn scenes, {size[0]}x{size[1]} (HxW) pixels, "
            "using 20 of the 150 classes"
        ),
        how=(
            "To get the real data (ADEChallengeData2016.zip from MIT, about 1 GB: 20,210 training and 2,000 "
            "validation photos), run\n"
            f"    python data_scripts/download_ade20k.py --root {parent}\n"
            "(or in notebook 05: set DOWNLOAD = True in the settings and run its download cell)."
        ),
    )
    return sample, False


def _sample_folder(dataset: str, amount: str, size: tuple[int, int], seed: int) -> Path:
    """One folder per setting, so smoke runs and full runs never regenerate each other's data."""
    return data_root(writable=True) / f"{dataset}_sample_{amount}_{size[0]}x{size[1]}_seed{seed}"


def _notice(name: str, root: Path, real: Path | None, sample: Path, *, expected: str, generated: str, how: str) -> None:
    """Say, in a box a learner cannot miss, that the numbers below are about generated data, and how to get the real."""
    line = "=" * 100
    where = (
        f"smoke mode (tests, CI) uses small generated data, though the real data is in {real}.\n"
        if real
        else f"the real {name} data is not in {root}\n(expected {expected}).\n"
    )
    print(
        f"{line}\nNOTICE: {where}Using GENERATED {name}-like data instead: {generated},\nin {sample}. "
        f"Every number below is about this drawn data, not about the real {name} photos.\n{how}\n{line}"
    )
