"""Generate the Carvana-like and ADE20K-like sample datasets the notebooks use when the real data is absent.

Same on-disk formats as the real datasets; deterministic by seed; a second run with the same settings skips.

    python data_scripts/make_sample_data.py --root ~/.cache/unet_tutorial/sample
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from unet_tutorial.cli import parse_size
from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
from unet_tutorial.utils import data_root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root", type=Path, default=data_root() / "sample", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--which", choices=["carvana", "ade20k", "both"], default="both")
    parser.add_argument("--cars", type=int, default=16, help="Carvana-like cars, 16 views each (default: 16)")
    parser.add_argument("--carvana-size", type=parse_size, default=(320, 480), help="HEIGHTxWIDTH (default: 320x480)")
    parser.add_argument("--ade-train", type=int, default=300, help="ADE20K-like training scenes (default: 300)")
    parser.add_argument("--ade-val", type=int, default=60, help="ADE20K-like validation scenes (default: 60)")
    parser.add_argument("--ade-size", type=parse_size, default=(192, 256), help="HEIGHTxWIDTH (default: 192x256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if the same set is there")
    args = parser.parse_args(argv)

    if args.which in ("carvana", "both"):
        start = time.perf_counter()
        root = make_carvana_like(args.root / "carvana", args.cars, size=args.carvana_size, seed=args.seed,
                                 overwrite=args.overwrite)  # fmt: skip
        print(f"Carvana-like: {root} ({time.perf_counter() - start:.1f} s)")
    if args.which in ("ade20k", "both"):
        start = time.perf_counter()
        root = make_ade20k_like(args.root / "ade20k", args.ade_train, args.ade_val, size=args.ade_size,
                                seed=args.seed, overwrite=args.overwrite)  # fmt: skip
        print(f"ADE20K-like: {root} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
