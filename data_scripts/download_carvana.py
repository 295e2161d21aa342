"""Download the Carvana training images and masks from Kaggle and unpack them in the layout CarvanaDataset reads.

Needs a Kaggle client (kagglehub: pip install 'unet_tutorial[kaggle]'; or kaggle), an API token (KAGGLE_API_TOKEN,
or KAGGLE_USERNAME/KAGGLE_KEY, or ~/.kaggle/kaggle.json, or Colab secrets) and the competition rules accepted once on
https://www.kaggle.com/competitions/carvana-image-masking-challenge/rules. Running it again skips what is there.

    python data_scripts/download_carvana.py --root ~/.cache/unet_tutorial/carvana
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_tutorial.course.download import fetch_carvana
from unet_tutorial.utils import data_root


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root", type=Path, default=data_root() / "carvana", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--hq", action="store_true", help="train_hq.zip (about 5x larger) instead of train.zip")
    parser.add_argument("--keep-archives", action="store_true", help="keep the .zip files after unpacking")
    args = parser.parse_args(argv)
    return fetch_carvana(args.root, hq=args.hq, keep_archives=args.keep_archives)


if __name__ == "__main__":
    main()
