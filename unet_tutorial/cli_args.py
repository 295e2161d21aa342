"""What the command line's commands share: the argument types, the output-folder check and ``CliError``.

Each argparse type turns a wrong value into one line that says what would work (``--image-size 19x``: "use 256 or
HEIGHTxWIDTH like 192x256"). Left out: everything a command does (``cli_train``, ``cli_predict``, ``cli``).
Taught in: the README (command line).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from unet_tutorial.utils import pick_device


class CliError(Exception):
    """An expected failure: ``main`` prints its message on one line, without a traceback."""


def parse_size(text: str) -> tuple[int, int]:
    """ "256" -> (256, 256); "192x256" -> (height 192, width 256)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use 256 or HEIGHTxWIDTH like 192x256") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; sides must be at least 1 pixel, e.g. 256")
    return height, width


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def unit_interval(text: str) -> float:
    """An argparse type: a probability between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1, e.g. 0.5")
    return value


def _integer_in(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer of at least 0 (``--workers 0`` loads in the main process)."""
    return _integer_in(text, 0, 2**31, "a whole number of at least 0, e.g. 0 or 2")


def class_count(text: str) -> int:
    """An argparse type: ``--num-classes``, 1 (binary masks) to 255 (labels are stored in 8-bit masks)."""
    return _integer_in(text, 1, 255, "a number of classes from 1 (binary masks) to 255, e.g. 3")


def mask_value(text: str) -> int:
    """An argparse type: a value an 8-bit mask can hold, 0 to 255 (``--ignore-index``)."""
    return _integer_in(text, 0, 255, "a mask value from 0 to 255, e.g. 255")


def open_unit_interval(text: str) -> float:
    """An argparse type: a fraction strictly between 0 and 1 (``--val-fraction``)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction strictly between 0 and 1, e.g. 0.1")
    return value


def available_device(text: str) -> str:
    """An argparse type: a device name that exists on this machine ("cpu", "cuda", "cuda:1", "mps")."""

    try:
        pick_device(text)
    except RuntimeError as error:  # torch's own "Expected one of cpu, cuda, ..." for a name it does not know
        raise argparse.ArgumentTypeError(str(error).splitlines()[0]) from None
    return text


def check_out(out: Path, flag: str = "--out") -> None:
    """Create the output folder and prove it writable now, not after the first epoch."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as error:
        raise CliError(
            f"{flag} {out} cannot be written ({error.strerror or error}); choose a folder you can write to"
        ) from None
