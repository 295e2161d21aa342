"""The command line: ``python -m unet_tutorial train | predict | data | grade`` (also installed as ``unet-tutorial``).

``get_parser()`` builds the arguments of every command and ``main()`` runs one, turning expected failures (the
package's own error types and OSError: a wrong folder, a bad checkpoint, a diverged run) into a one-line error
without a traceback; a bug keeps its traceback. The commands live beside it: ``cli_train``, ``cli_predict``,
``data_command`` here, and the course's grader (``course.grade``). What it leaves out: hyperparameter search,
experiment tracking. Taught in: the README (command line, your own data and multi-GPU sections).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from unet_tutorial.checkpoint import CheckpointError
from unet_tutorial.cli_args import (
    CliError,
    available_device,
    class_count,
    mask_value,
    nonnegative_int,
    open_unit_interval,
    parse_size,
    positive_float,
    positive_int,
    seed_value,
    unit_interval,
)
from unet_tutorial.cli_predict import predict_command
from unet_tutorial.cli_train import AMP, DATASETS, train_command
from unet_tutorial.course import grade
from unet_tutorial.course.download import fetch_ade20k, fetch_carvana
from unet_tutorial.course.safe_download import DownloadError
from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
from unet_tutorial.densenet_unet import PretrainedWeightsUnavailable
from unet_tutorial.models import MODELS
from unet_tutorial.readers import DataError
from unet_tutorial.train import NonFiniteLossError
from unet_tutorial.utils import data_root

USAGE = """The command line: python -m unet_tutorial train | predict | data | grade (also installed as unet-tutorial).

    python -m unet_tutorial data sample carvana --root data/sample
    python -m unet_tutorial train --dataset carvana --data-dir data/sample/carvana --base-channels 16 \\
        --image-size 128 --epochs 5 --out runs/carvana
    python -m unet_tutorial train --dataset folder --images my/images --masks my/masks --num-classes 3 \\
        --base-channels 16 --image-size 256 --out runs/mine          # your own data (1 class: binary masks)
    python -m unet_tutorial predict --checkpoint runs/carvana/best.pt photos/ --out predictions
    torchrun --nproc_per_node=2 -m unet_tutorial train ...      # several GPUs (or CPU processes): DDP
    python -m unet_tutorial grade handed_in/*.ipynb --out grades.csv   # a teacher grades exercise notebooks
"""


def data_command(args: argparse.Namespace) -> None:
    """``python -m unet_tutorial data sample|download``."""

    which = ["carvana", "ade20k"] if args.dataset == "both" else [args.dataset]
    if args.action == "sample":
        base = Path(args.root) if args.root else data_root(writable=True) / "sample"
        for name in which:
            folder = base / DATASETS[name]["folder"]
            if name == "carvana":
                make_carvana_like(folder, args.cars, size=(args.height or 320, args.width or 480), seed=args.seed)
            else:
                make_ade20k_like(
                    folder,
                    args.scenes,
                    max(args.scenes // 5, 1),
                    size=(args.height or 192, args.width or 256),
                    seed=args.seed,
                )
            print(f"{name}-like sample data: {folder} (train with --dataset {name} --data-dir {folder})")
        return

    base = Path(args.root) if args.root else data_root(writable=True)
    for name in which:
        try:
            folder = fetch_carvana(base / "carvana") if name == "carvana" else fetch_ade20k(base)
        except ImportError as error:  # the Kaggle client is an optional extra
            raise CliError(str(error)) from None
        except SystemExit:  # some Kaggle clients print a line and call exit(1) when no token is found
            raise CliError(
                "the Kaggle client found no API token: create one at https://www.kaggle.com/settings "
                "(API > Create New Token) and put kaggle.json in ~/.kaggle/, or set KAGGLE_USERNAME "
                "and KAGGLE_KEY; then accept the competition rules on its Kaggle page"
            ) from None
        print(f"{name}: {folder}")


def get_parser() -> argparse.ArgumentParser:
    """The argument parser of all three commands."""
    main = argparse.ArgumentParser(
        prog="python -m unet_tutorial", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main.add_subparsers(dest="command", required=True)
    d = argparse.ArgumentDefaultsHelpFormatter

    train = commands.add_parser("train", help="train a model; writes best.pt and last.pt", formatter_class=d)
    train.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    train.add_argument("--data-dir", help="dataset folder (default: <data root>/carvana or .../ADEChallengeData2016)")
    train.add_argument("--images", help="--dataset folder: the folder of images")
    train.add_argument("--masks", help="--dataset folder: the folder of masks, one per image, same file names")
    train.add_argument("--num-classes", type=class_count, help="--dataset folder: 1 for binary masks, else 2..255")
    train.add_argument("--mask-suffix", default="", help="--dataset folder: mask name = image stem + this")
    train.add_argument(
        "--ignore-index", type=mask_value, default=None, help="--dataset folder: a mask value that is not a class"
    )
    train.add_argument("--model", default="unet", choices=list(MODELS))
    train.add_argument("--base-channels", type=positive_int, default=64, help="UNet width; 8-16 for CPU runs")
    train.add_argument("--depth", type=positive_int, default=4, help="UNet down-sampling steps")
    train.add_argument("--pretrained", action="store_true", help="densenet_unet: ImageNet encoder weights")
    train.add_argument("--epochs", type=positive_int, default=10)
    train.add_argument("--batch-size", type=positive_int, default=8, help="per process")
    train.add_argument(
        "--lr", type=positive_float, default=None, help="learning rate (default 1e-3, or the resumed run's)"
    )
    train.add_argument("--image-size", type=parse_size, default=(256, 256), help="256 or HEIGHTxWIDTH")
    train.add_argument(
        "--amp",
        choices=sorted(AMP),
        default="auto",
        nargs="?",
        const="auto",
        help="autocast: auto = bf16 (or fp16 + GradScaler) on CUDA, off on the CPU",
    )
    train.add_argument(
        "--scheduler",
        choices=["plateau", "onecycle", "cosine", "none"],
        default=None,
        help="learning-rate schedule (default plateau, or the resumed run's)",
    )
    train.add_argument("--patience", type=positive_int, default=None, help="early stopping after this many flat epochs")
    train.add_argument("--grad-clip", type=positive_float, default=None, help="clip the gradients' total norm")
    train.add_argument("--accumulate", type=positive_int, default=1, help="batches per optimizer step")
    train.add_argument(
        "--val-fraction", type=open_unit_interval, default=0.1, help="Carvana: cars held out; folder: images"
    )
    train.add_argument(
        "--limit", type=positive_int, default=None, help="use only this many training images (quick runs)"
    )
    train.add_argument("--workers", type=nonnegative_int, default=2, help="DataLoader worker processes")
    train.add_argument(
        "--device", type=available_device, default=None, help="cpu, cuda, mps (default: the best available)"
    )
    train.add_argument("--seed", type=seed_value, default=0)
    train.add_argument("--deterministic", action="store_true", help="deterministic kernels (for exact resumes)")
    train.add_argument("--resume", metavar="CKPT", help="continue from a last.pt, in its folder unless --out")
    train.add_argument("--out", default=None, help="folder for best.pt and last.pt (default runs/unet, or --resume's)")
    train.add_argument("--overwrite", action="store_true", help="replace the checkpoints of a run already in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bars, only one line per epoch")

    predict = commands.add_parser("predict", help="masks and overlays for images", formatter_class=d)
    predict.add_argument("--checkpoint", required=True, metavar="CKPT", help="best.pt or last.pt from train")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    predict.add_argument("--out", default="predictions")
    predict.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    predict.add_argument(
        "--tile", type=positive_int, default=None, help="sliding-window tiles of this side, at full size"
    )
    predict.add_argument("--threshold", type=unit_interval, default=0.5, help="binary models")
    predict.add_argument("--device", type=available_device, default=None)
    predict.add_argument("--no-progress", action="store_true")

    data = commands.add_parser("data", help="make sample data, or download the real datasets", formatter_class=d)
    data.add_argument("action", choices=["sample", "download"])
    data.add_argument("dataset", choices=["ade20k", "carvana", "both"])
    data.add_argument("--root", help="parent folder (default: <data root>/sample for samples, <data root>)")
    data.add_argument("--cars", type=positive_int, default=16, help="sample: Carvana-like cars, 16 views each")
    data.add_argument("--scenes", type=positive_int, default=300, help="sample: ADE20K-like training scenes")
    data.add_argument("--height", type=positive_int, default=None, help="sample: height (Carvana 320, ADE20K 192)")
    data.add_argument("--width", type=positive_int, default=None, help="sample: width (Carvana 480, ADE20K 256)")
    data.add_argument("--seed", type=seed_value, default=0)

    grader = commands.add_parser(
        "grade", help="grade handed-in exercise notebooks (smoke mode, each in its own kernel); a CSV and a summary"
    )
    grade.add_arguments(grader)
    return main


def one_line(error: BaseException) -> str:
    """The message of an expected failure on one line; a DataLoader worker's wrapped error becomes its original."""
    text = str(error).strip()
    if "Original Traceback" in text:  # "Caught DataError in DataLoader worker process 0. Original Traceback ..."
        text = text.splitlines()[-1].partition(": ")[2] or text.splitlines()[-1]
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text += f": {error.filename}"
    return " ".join(text.split())


# The package's own error types and OSError: a sentence for the user. Anything else is a bug: it keeps its traceback.
EXPECTED_ERRORS = (
    CliError,
    CheckpointError,
    DataError,
    DownloadError,
    NonFiniteLossError,
    PretrainedWeightsUnavailable,
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print ``error: ...`` and return 2 (set UNET_TUTORIAL_DEBUG=1 to raise).

    Expected: the package's own error types (bad data, checkpoints, downloads, a diverged run, pretrained weights
    out of reach) and OSError (a file or folder: missing, not writable, disk full). Anything else is a bug and
    keeps its traceback.
    """
    args = get_parser().parse_args(argv)
    try:
        if args.command == "grade":
            return grade.run(args)
        {"train": train_command, "predict": predict_command, "data": data_command}[args.command](args)
    except EXPECTED_ERRORS as error:
        if os.environ.get("UNET_TUTORIAL_DEBUG"):
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume training with --resume <out>/last.pt", file=sys.stderr)
        return 130
    return 0
