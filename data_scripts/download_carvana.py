"""Download the Carvana training images and masks from Kaggle and unpack them in the layout CarvanaDataset reads.

Needs the Kaggle client (pip install 'unet_tutorial[kaggle]'), an API token (~/.kaggle/kaggle.json, or
KAGGLE_USERNAME/KAGGLE_KEY, or Colab secrets) and the competition rules accepted once on
https://www.kaggle.com/competitions/carvana-image-masking-challenge/rules. Running it again skips what is there.

    python data_scripts/download_carvana.py --root ~/.cache/unet_tutorial/carvana
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_tutorial.download import extract_archive, kaggle_download
from unet_tutorial.utils import data_root

COMPETITION = "carvana-image-masking-challenge"
N_IMAGES = 5088  # 318 cars x 16 views


def _count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", type=Path, default=data_root() / "carvana", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--hq", action="store_true", help="train_hq.zip (about 5x larger) instead of train.zip"
    )
    parser.add_argument("--keep-archives", action="store_true", help="keep the .zip files after unpacking")
    args = parser.parse_args(argv)

    images = "train_hq" if args.hq else "train"
    wanted = {images: "*.jpg", "train_masks": "*_mask.gif", "train_masks.csv": None}
    for name, pattern in wanted.items():
        target = args.root / name
        if (pattern and _count(target, pattern) >= N_IMAGES) or (pattern is None and target.is_file()):
            print(f"{target}: already there, skipped")
            continue
        (archive,) = kaggle_download(COMPETITION, [f"{name}.zip"], args.root)
        print(f"unpacking {archive}")
        extract_archive(archive, args.root)
        if not args.keep_archives:
            archive.unlink()
    n_images, n_masks = _count(args.root / images, "*.jpg"), _count(args.root / "train_masks", "*_mask.gif")
    if n_images != N_IMAGES or n_masks != N_IMAGES:
        raise SystemExit(
            f"expected {N_IMAGES} images and masks, found {n_images} and {n_masks} under {args.root}"
        )
    print(f"Carvana is ready: CarvanaDataset({str(args.root)!r}) ({n_images} images)")
    return args.root


if __name__ == "__main__":
    main()
