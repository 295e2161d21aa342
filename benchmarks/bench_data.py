"""Loader throughput (images/s) on Carvana-size images (1918x1280 JPEG + GIF mask) at half scale.

Generates a Carvana-like set at full Carvana size once (in --root), then times a DataLoader over
CarvanaDataset with the training pipeline (resized to 640x959, i.e. half scale) for each worker count.
Reading and decoding a 1918x1280 JPEG dominates, so the numbers carry over to the real data.

    python benchmarks/bench_data.py --workers 0 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from unet_tutorial.data import CarvanaDataset
from unet_tutorial.sample_data import make_carvana_like
from unet_tutorial.transforms import eval_transforms, train_transforms


def images_per_second(loader: DataLoader, max_batches: int) -> float:
    """Images per second over up to ``max_batches`` batches, after one warm-up batch (worker start-up)."""
    batches = iter(loader)
    next(batches)
    count, start = 0, time.perf_counter()
    for i, (images, _) in enumerate(batches):
        count += images.shape[0]
        if i + 1 >= max_batches:
            break
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", type=Path, default=Path(tempfile.gettempdir()) / "unet_tutorial_bench_carvana"
    )
    parser.add_argument("--cars", type=int, default=2, help="cars to generate (16 images each)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=6, help="timed batches per setting")
    parser.add_argument("--scale", type=float, default=0.5, help="output size as a fraction of 1918x1280")
    parser.add_argument(
        "--eval", action="store_true", help="time eval_transforms instead of train_transforms"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    make_carvana_like(args.root, args.cars, size=(1918, 1280))
    print(
        f"data: {args.root} ({args.cars * 16} images of 1918x1280, ready in {time.perf_counter() - start:.1f} s)"
    )
    size = (round(1280 * args.scale), round(1918 * args.scale))  # (height, width)
    transform = eval_transforms(size) if args.eval else train_transforms(size, crop="resize", mask_fill=0)
    dataset = CarvanaDataset(args.root, transform=transform)
    print(f"{'workers':>7}  {'images/s':>8}   ({'eval' if args.eval else 'train'} pipeline -> {size[1]}x{size[0]}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()})")  # fmt: skip
    results = {}
    for workers in args.workers:
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                            persistent_workers=False)  # fmt: skip
        results[workers] = images_per_second(loader, args.batches)
        print(f"{workers:>7}  {results[workers]:>8.1f}")
    return results


if __name__ == "__main__":
    main()
