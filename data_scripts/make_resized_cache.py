"""Write a pre-resized copy of Carvana (half scale by default), so training reads small files.

Decoding the 1918x1280 JPEGs and GIF masks dominates loading time at half scale; the copy is decoded once
(benchmarks/bench_data.py measures the difference). Train on it with ``--data-dir`` pointing at the copy.
A second run skips the files already written.

    python data_scripts/make_resized_cache.py --root ~/.cache/unet_tutorial/carvana --scale 0.5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from unet_tutorial.course.resized_cache import write_resized_carvana
from unet_tutorial.utils import data_root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root", type=Path, default=data_root() / "carvana", help="the Carvana folder (default: %(default)s)"
    )
    parser.add_argument("--scale", type=float, default=0.5, help="fraction of the original size (default: 0.5)")
    parser.add_argument("--dest", type=Path, default=None, help="output folder (default: <root>_<scale>x)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default: 95)")
    args = parser.parse_args(argv)
    dest = args.dest or args.root.with_name(f"{args.root.name}_{args.scale:g}x")
    start = time.perf_counter()
    write_resized_carvana(args.root, dest, scale=args.scale, quality=args.quality)
    print(f"resized copy: {dest} ({time.perf_counter() - start:.0f} s); train with --data-dir {dest}")


if __name__ == "__main__":
    main()
