"""Loader throughput (images/s) on Carvana-size images (1918x1280 JPEG + GIF mask), and where the time goes.

Generates a Carvana-like set at full Carvana size once (in --root; the generated JPEGs carry sensor-like noise,
so they are about twice the size of the real ones and decode somewhat slower), then measures:

1. per-image stage costs in this process: decoding the JPEG in full, decoding it straight at reduced size (PIL
   draft mode: the JPEG decoder's DCT scaling gives 1/2, 1/4 or 1/8 size almost for free), reading a
   pre-resized cached JPEG, decoding the GIF mask, and the training transforms (albumentations, as the package
   uses, against the same steps in plain torchvision.transforms.v2);
2. DataLoader throughput over CarvanaDataset with the CLI's training pipeline, for each output scale (half:
   959x640, full: 1918x1280), worker count (0, 2, all cores), decoding ("full"; at reduced scale also "draft",
   ``CarvanaDataset(decode_size=...)`` as ``loaders.carvana_loaders`` sets it, and "cache", a copy resized once
   to the output size by unet_tutorial.course.resized_cache) and transform library. The settings are measured
   one after another in one process, so their ratios hold even on a busy machine; absolute numbers do not.

With ``--data`` it measures a Carvana folder of yours instead, e.g. the real photos; resized copies then go to
``--work``, never next to the data.

    python benchmarks/bench_data.py --quick          # a few seconds of each, to check the code paths
    python benchmarks/bench_data.py --json build/bench_data.json
    python benchmarks/bench_data.py --data ~/.cache/unet_tutorial/carvana --scales 0.1 --workers 0 \
        --pipelines albumentations --batches 20   # the real photos at notebook 03's CPU size, 128x192
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD
from unet_tutorial.course.resized_cache import write_resized_carvana
from unet_tutorial.course.sample_data import make_carvana_like
from unet_tutorial.data import CarvanaDataset
from unet_tutorial.loaders import CROP_MARGIN
from unet_tutorial.readers import read_image, read_label
from unet_tutorial.transforms import train_transforms

CARVANA_SIZE = (1280, 1918)  # (height, width) of a Carvana photo
DECODES = ("full", "draft", "cache")
PIPELINES = ("albumentations", "torchvision")


def prepare_data(root: Path, cars: int = 2) -> Path:
    """A Carvana-like set of ``cars`` x 16 images at full Carvana size in ``root`` (generated once)."""
    return make_carvana_like(root, cars, size=CARVANA_SIZE)


def output_size(scale: float) -> tuple[int, int]:
    """(height, width) of a Carvana image scaled by ``scale``: 0.5 gives (640, 959)."""
    return round(CARVANA_SIZE[0] * scale), round(CARVANA_SIZE[1] * scale)


def resized_copy(root: Path, scale: float, work: Path | None = None) -> Path:
    """The pre-resized cache of ``root`` at ``scale`` (``course.resized_cache``), written once in ``work``
    (default: next to ``root``)."""
    height, width = output_size(scale)
    dest = (work or root.parent) / f"{root.name}_{width}x{height}"
    return write_resized_carvana(root, dest, scale=scale)


def DraftCarvanaDataset(root: Path, size: tuple[int, int], transform: Callable | None = None) -> CarvanaDataset:
    """CarvanaDataset that decodes each JPEG at the smallest scale still >= ``CROP_MARGIN`` x ``size`` (height,
    width), as ``carvana_loaders`` does for its random crops, and resizes the mask to match (nearest)."""
    decode = (math.ceil(CROP_MARGIN * size[0]), math.ceil(CROP_MARGIN * size[1]))
    return CarvanaDataset(root, transform=transform, decode_size=decode)


# Every augmentation on (train_transforms' defaults are lighter: resize and flip), as the twin below does.
FULL_AUGMENT = {"crop": "random_resized", "scale": (0.5, 1.0), "rotate": 10.0, "shift": 0.05, "color_jitter": 0.2}


class TorchvisionTrainTransform:
    """``train_transforms(size, **FULL_AUGMENT, mask_fill=0)`` rebuilt from torchvision.transforms.v2.

    Random-resized crop, horizontal flip, a small affine warp on half the samples, colour jitter, normalise;
    masks are resized with nearest neighbour and the warp fills them with 0.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        aspect = size[1] / size[0]
        self.transform = v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.8 * aspect, 1.25 * aspect), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1))], p=0.5),
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.05)], p=0.8),
            v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])  # fmt: skip

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
        from torchvision import tv_tensors

        image_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))  # (H, W, 3) -> (3, H, W) uint8
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))  # (H, W)
        image_t, mask_t = self.transform(image_t, mask_t)
        return {"image": image_t.as_subclass(torch.Tensor), "mask": mask_t.as_subclass(torch.Tensor)}


def make_transform(pipeline: str, size: tuple[int, int]) -> Callable:
    """The training pipeline of the CLI for Carvana (albumentations), or its torchvision twin."""
    if pipeline == "albumentations":
        return train_transforms(size, **FULL_AUGMENT, mask_fill=0)
    if pipeline == "torchvision":
        return TorchvisionTrainTransform(size)
    raise ValueError(f"pipeline {pipeline!r} is not known; use one of {PIPELINES}")


def make_dataset(root: Path, scale: float, decode: str, pipeline: str, work: Path | None = None) -> CarvanaDataset:
    """CarvanaDataset over ``root`` decoding in full, in draft mode, or from a resized copy (in ``work``)."""
    size, transform = output_size(scale), make_transform(pipeline, output_size(scale))
    if decode == "full":
        return CarvanaDataset(root, transform=transform)
    if decode == "draft":
        return DraftCarvanaDataset(root, size, transform=transform)
    if decode == "cache":
        return CarvanaDataset(resized_copy(root, scale, work), transform=transform)
    raise ValueError(f"decode {decode!r} is not known; use one of {DECODES}")


def measure_loader(
    root: Path,
    *,
    scale: float,
    workers: int,
    batch_size: int,
    batches: int,
    decode: str = "full",
    pipeline: str = "albumentations",
    work: Path | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Images per second of a shuffled DataLoader over ``batches`` batches, after one warm-up batch.

    ``clock=time.process_time`` counts this process's CPU seconds instead: with ``workers=0`` (all loading in this
    process) that gives the images per second of one idle core, however busy the machine is.
    """
    dataset = make_dataset(root, scale, decode, pipeline, work)
    sampler = RandomSampler(dataset, num_samples=(batches + 1) * batch_size)  # several epochs if need be
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, pin_memory=torch.cuda.is_available()
    )
    batches_iter = iter(loader)
    next(batches_iter)  # worker start-up and the first files off the disk
    count, start = 0, clock()
    for images, _ in batches_iter:
        count += images.shape[0]
    return count / (clock() - start)


def _median_ms(function: Callable[[int], object], count: int) -> float:
    times = []
    for i in range(count):
        start = time.perf_counter()
        function(i)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def stage_costs(root: Path, scale: float, count: int, work: Path | None = None) -> dict[str, float]:
    """Median milliseconds per image of each loading stage, in this process, for output ``scale``."""
    dataset = CarvanaDataset(root)
    height, width = output_size(scale)
    cache = CarvanaDataset(resized_copy(root, scale, work))
    full = [read_image(p) for p in dataset.image_paths[:count]]
    masks = [read_label(p) for p in dataset.mask_paths[:count]]

    costs = {
        "jpeg_full_decode": _median_ms(lambda i: read_image(dataset.image_paths[i]), count),
        "jpeg_draft_decode": _median_ms(lambda i: read_image(dataset.image_paths[i], (height, width)), count),
        "cached_jpeg_decode": _median_ms(lambda i: read_image(cache.image_paths[i]), count),
        "gif_mask_decode": _median_ms(lambda i: read_label(dataset.mask_paths[i]), count),
        "cached_png_mask_decode": _median_ms(lambda i: read_label(cache.mask_paths[i]), count),
    }  # fmt: skip
    for pipeline in PIPELINES:
        transform = make_transform(pipeline, (height, width))
        costs[f"{pipeline}_from_full"] = _median_ms(lambda i, t=transform: t(image=full[i], mask=masks[i]), count)
    return costs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("/tmp/unet_tutorial_bench_carvana"), help="generated here")
    parser.add_argument("--data", type=Path, default=None, help="a Carvana folder to measure instead (real photos)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/unet_tutorial_bench_work"), help="resized copies")
    parser.add_argument("--cars", type=int, default=2, help="cars to generate (16 images each)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0], help="fractions of 1918x1280")
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({0, 2, os.cpu_count() or 1}))
    parser.add_argument("--decodes", nargs="+", choices=DECODES, default=list(DECODES))
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per setting")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads in the main process")
    parser.add_argument("--quick", action="store_true", help="half scale, 0 workers, 2 batches of 2")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.scales, args.workers, args.batch_size, args.batches = [0.5], [0], 2, 2

    start = time.perf_counter()
    root = args.data if args.data is not None else prepare_data(args.root, args.cars)
    work = args.work if args.data is not None else None  # generated data: its copies sit beside it
    what = "real or your own" if args.data is not None else "generated"
    print(
        f"data: {root} ({len(CarvanaDataset(root))} {what} images, ready in {time.perf_counter() - start:.1f} s); "
        f"{os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.1f}, torch {torch.__version__}"
    )
    results: dict = {"stages_ms": {}, "loader": []}
    for scale in args.scales:
        if scale < 1:
            results["stages_ms"][scale] = costs = stage_costs(root, scale, count=4 if args.quick else 12, work=work)
            print(f"\nper-image stage costs, ms (output {output_size(scale)[1]}x{output_size(scale)[0]}):")
            print("\n".join(f"  {name:<24} {ms:8.1f}" for name, ms in costs.items()))
    print(
        f"\n{'scale':>5} {'output':>9} {'decode':<6} {'transforms':<14} {'workers':>7} {'images/s':>8} "
        f"{'per CPU-s':>9}   (batch {args.batch_size}, {args.batches} timed batches; per CPU-second: one idle core, "
        "0 workers only)"
    )
    for scale in args.scales:
        height, width = output_size(scale)
        for decode in [d for d in args.decodes if scale < 1 or d == "full"]:  # at full scale there is nothing to skip
            for pipeline in args.pipelines:
                for workers in args.workers:
                    speed = measure_loader(
                        root,
                        scale=scale,
                        workers=workers,
                        batch_size=args.batch_size,
                        batches=args.batches,
                        decode=decode,
                        pipeline=pipeline,
                        work=work,
                    )
                    cpu_speed = None
                    if workers == 0:  # a second pass, timed by this process's CPU time
                        cpu_speed = measure_loader(
                            root,
                            scale=scale,
                            workers=0,
                            batch_size=args.batch_size,
                            batches=args.batches,
                            decode=decode,
                            pipeline=pipeline,
                            work=work,
                            clock=time.process_time,
                        )
                    results["loader"].append(
                        {
                            "scale": scale,
                            "height": height,
                            "width": width,
                            "decode": decode,
                            "pipeline": pipeline,
                            "workers": workers,
                            "images_per_s": speed,
                            "images_per_cpu_s": cpu_speed,
                        }
                    )
                    print(
                        f"{scale:>5} {width:>4}x{height:<4} {decode:<6} {pipeline:<14} {workers:>7} {speed:>8.1f} "
                        f"{'-' if cpu_speed is None else f'{cpu_speed:.1f}':>9}",
                        flush=True,
                    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
