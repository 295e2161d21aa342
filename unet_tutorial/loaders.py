"""DataLoaders whose shuffles and augmentations are reproducible: seeded workers, re-seedable loaders.

Albumentations' ``Compose`` keeps random generators of its own, which neither ``torch.manual_seed`` nor the
DataLoader's worker seeding reaches: without help every worker repeats the others' crops and flips, and a resumed
run augments differently from the uninterrupted one. ``seed_worker`` and ``seed_loader`` hand one seed on to
everything; ``carvana_loaders`` builds notebook 03's two Carvana loaders with them, decoding each photo at the
smallest JPEG scale its crops need. Left out: samplers for class balance, distributed loaders (the command line
builds those).
Taught in: notebook 03 (Carvana), reused in 04 and 05.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, get_worker_info

from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.data import CarvanaDataset
from unet_tutorial.readers import DataError
from unet_tutorial.transforms import eval_transforms, seed_pipeline, train_transforms

CROP_MARGIN = 1.5  # training images are decoded at least this many times image_size: room for random crops


def carvana_loaders(
    root: str | Path,
    train_ids: list[str],
    val_ids: list[str],
    *,
    image_size: int | tuple[int, int],
    batch_size: int,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """Carvana's training and validation loaders, built as notebook 03 builds them (and reused in 04).

    Training: ``train_transforms`` (random crops of 60-100 % of the image, flips, a small warp, colour jitter;
    invented pixels are background), shuffled, the last incomplete batch dropped. Validation: resized only,
    in batches of ``2 * batch_size``. Both normalised with ``mean`` and ``std``. Both decode each JPEG at a
    reduced scale where that is still large enough (``CarvanaDataset(decode_size=...)``): validation at least
    ``image_size``, training 1.5 times it in each side, so that even the smallest crop is shrunk, never
    enlarged. Both are seeded by ``seed_loader``, so ``set_seed(s)`` before this call decides their shuffle and
    augmentations. The training loader starts fresh workers each epoch (no ``persistent_workers``): ``fit``
    re-seeds it every epoch, and only new workers take the new seed, which is what makes a resumed run repeat the
    uninterrupted one.

    Returns:
        (train_loader, val_loader), yielding images float (B, 3, H, W) and masks float (B, 1, H, W).
    """
    if len(train_ids) < batch_size:
        raise DataError(
            f"{len(train_ids)} training images make no full batch of batch_size={batch_size} "
            "(the last incomplete batch is dropped): use more train_ids or a smaller batch_size"
        )
    augment = {"crop": "random_resized", "scale": (0.6, 1.0), "rotate": 10.0, "shift": 0.05, "color_jitter": 0.2}
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    # The smallest crop (60 % of the area, up to 1.25 times wider than the output) spans 0.69 of the height.
    crop_decode = (math.ceil(CROP_MARGIN * height), math.ceil(CROP_MARGIN * width))
    train_set = CarvanaDataset(
        root,
        train_ids,
        train_transforms(image_size, **augment, mean=mean, std=std, mask_fill=0),
        decode_size=crop_decode,
    )
    val_set = CarvanaDataset(root, val_ids, eval_transforms(image_size, mean=mean, std=std), decode_size=image_size)
    args = {"num_workers": num_workers, "pin_memory": pin_memory, "worker_init_fn": seed_worker}
    train_loader = DataLoader(
        train_set, batch_size=batch_size, shuffle=True, drop_last=True, generator=torch.Generator(), **args
    )
    val_loader = DataLoader(
        val_set, batch_size=2 * batch_size, persistent_workers=num_workers > 0, generator=torch.Generator(), **args
    )
    return seed_loader(train_loader), seed_loader(val_loader)


def _seed_transform(dataset: Dataset, seed: int) -> None:
    """Seed the albumentations pipeline of ``dataset`` (inside any ``Subset``): Compose keeps its own generators."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    seed_pipeline(getattr(dataset, "transform", None), seed)


def seed_worker(worker_id: int) -> None:
    """A DataLoader ``worker_init_fn`` that gives each worker its own augmentations. Taught in 03.

    PyTorch seeds each worker's torch generator with ``base_seed + worker_id`` (``base_seed`` is drawn from the
    loader's ``generator`` whenever the loader starts its workers). This passes that seed on to Python's
    ``random``, NumPy and the dataset's albumentations ``Compose``, which keeps generators of its own: without
    it every worker starts from the same copy of them, and with 2 workers batches 2k and 2k+1 get identical
    crops, flips, warps and jitter. Use it as
    ``DataLoader(dataset, ..., worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(seed))``.
    """
    info = get_worker_info()
    if info is None:
        raise RuntimeError(
            "seed_worker runs in DataLoader workers: pass it as DataLoader(..., "
            "worker_init_fn=seed_worker) instead of calling it"
        )
    seed = torch.initial_seed()  # base_seed + worker_id
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _seed_transform(info.dataset, seed)


def seed_loader(loader: DataLoader, seed: int | None = None) -> DataLoader:
    """Start all of ``loader``'s randomness from ``seed`` (default: a number drawn from torch's generator).

    Seeds the loader's ``generator`` (its shuffle, and the worker seeds that ``seed_worker`` hands on) and, when
    the loader has no workers, the dataset's augmentation pipeline in this process. With the default, everything
    follows from torch's random state, which ``set_seed`` sets and every checkpoint saves: ``fit`` calls this at
    the start of each epoch, so an epoch's data depend on nothing a checkpoint does not hold. Workers kept
    between epochs (``persistent_workers=True``) keep their first seeds and ignore later ones. Taught in 03.

    Returns:
        ``loader``, for chaining.
    """
    seed = int(torch.randint(2**62, ())) if seed is None else seed
    if loader.generator is not None:
        loader.generator.manual_seed(seed)
    if loader.num_workers == 0:
        _seed_transform(loader.dataset, seed)
    return loader
