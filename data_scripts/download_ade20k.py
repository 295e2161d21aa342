"""Download ADE20K SceneParsing (ADEChallengeData2016.zip, ~923 MB) from MIT and unpack it for ADE20KDataset.

The archive is checked against its published SHA-1 (the value the GluonCV dataset script pins,
dmlc/gluon-cv scripts/datasets/ade20k.py); a broken or changed file is an error and is not unpacked.
An interrupted download resumes. Running it again skips what is there.

    python data_scripts/download_ade20k.py --root ~/.cache/unet_tutorial
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unet_tutorial.download import download_url, extract_archive
from unet_tutorial.utils import data_root

URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
SHA1 = "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7"
COUNTS = {"training": 20210, "validation": 2000}


def _complete(folder: Path) -> bool:
    return all(
        len(list((folder / "images" / split).glob("*.jpg"))) == n
        and len(list((folder / "annotations" / split).glob("*.png"))) == n
        for split, n in COUNTS.items()
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=data_root(), help="parent folder (default: %(default)s)")
    parser.add_argument("--url", default=URL, help="a mirror of the same zip (default: the official URL)")
    parser.add_argument("--sha1", default=SHA1, help="expected SHA-1 of the zip; '' skips the check")
    parser.add_argument("--keep-archive", action="store_true", help="keep the .zip after unpacking")
    args = parser.parse_args(argv)

    folder = args.root / "ADEChallengeData2016"
    if _complete(folder):
        print(f"{folder}: already there, skipped")
        return folder
    archive = download_url(args.url, args.root / "ADEChallengeData2016.zip", sha1=args.sha1 or None)
    print(f"unpacking {archive}")
    extract_archive(archive, args.root)
    if not _complete(folder):
        raise SystemExit(f"{folder} does not hold {COUNTS} images and annotations after unpacking {archive}")
    if not args.keep_archive:
        archive.unlink()
    print(f"ADE20K is ready: ADE20KDataset({str(folder)!r})")
    return folder


if __name__ == "__main__":
    main()
