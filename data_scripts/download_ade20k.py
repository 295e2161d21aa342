"""Download ADE20K SceneParsing (ADEChallengeData2016.zip, about 1 GB) from MIT and unpack it for ADE20KDataset.

The archive is checked against its published SHA-1 (the value the GluonCV dataset script pins,
dmlc/gluon-cv scripts/datasets/ade20k.py); a broken or changed file is an error and is not unpacked.
An interrupted download resumes. Running it again skips what is there.

    python data_scripts/download_ade20k.py --root ~/.cache/unet_tutorial
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_tutorial.course.download import ADE20K_SHA1, ADE20K_URL, fetch_ade20k
from unet_tutorial.utils import data_root


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=data_root(), help="parent folder (default: %(default)s)")
    parser.add_argument("--url", default=ADE20K_URL, help="a mirror of the same zip (default: the official URL)")
    parser.add_argument("--sha1", default=ADE20K_SHA1, help="expected SHA-1 of the zip; '' skips the check")
    parser.add_argument("--keep-archive", action="store_true", help="keep the .zip after unpacking")
    args = parser.parse_args(argv)
    return fetch_ade20k(args.root, url=args.url, sha1=args.sha1, keep_archive=args.keep_archive)


if __name__ == "__main__":
    main()
