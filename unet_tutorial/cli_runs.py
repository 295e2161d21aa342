"""Run folders for ``python -m unet_tutorial train``: never lose a run, never resume into a different one.

- ``run_folder``: the folder a run writes to: ``--out``, else the resumed checkpoint's folder, else runs/unet.
- ``check_run_folder``: a folder that holds a run is refused unless the run is resumed there or ``--overwrite``
  is said; resuming from an earlier checkpoint (best.pt) never replaces a later last.pt.
- ``replacing``: ``--overwrite`` moves the old run aside and deletes it only once the new run has written a
  checkpoint; a run that fails before that (a typo in ``--masks``, a bad label) gets the old one back.
- ``resumed_settings``: a resumed run keeps its learning rate and schedule. A changed ``--lr`` or ``--scheduler``
  is refused, and so is a cosine or one-cycle schedule asked to run longer than it was built for (the cosine's
  lr is 0 at its end; a one-cycle cannot step past its last step): those need a new run.
Left out: run names, experiment tracking. Taught in: the README (command line).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from unet_tutorial import distributed
from unet_tutorial.checkpoint import read_checkpoint
from unet_tutorial.cli_args import CliError

CHECKPOINTS = ("best.pt", "last.pt")
DEFAULTS = {"lr": 1e-3, "scheduler": "plateau"}


def run_folder(args: argparse.Namespace) -> Path:
    """``--out``; without it the resumed checkpoint's folder (a resume continues its own run), else runs/unet."""
    if args.out is not None:
        return Path(args.out)
    return Path(args.resume).parent if args.resume else Path("runs/unet")


def _epoch(path: Path) -> int:
    return int(read_checkpoint(path).get("epoch", 0))


def check_run_folder(out: Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to train into a folder holding another run's checkpoints, and any resume that would replace a later
    checkpoint of its own run. Raises CliError saying what to pass instead."""
    existing = [out / name for name in CHECKPOINTS if (out / name).exists()]
    if existing and overwrite and resume and Path(resume).resolve().parent == out.resolve():
        raise CliError(f"--overwrite would replace the run that --resume {resume} continues; leave out --overwrite")
    if not existing or overwrite:
        return
    names = " and ".join(p.name for p in existing)
    if not resume:
        raise CliError(
            f"--out {out} already holds {names} from an earlier run; pass --resume {out / 'last.pt'} to continue "
            "it, --overwrite to replace it, or another --out"
        )
    resume_path = Path(resume)
    if resume_path.resolve().parent != out.resolve():
        raise CliError(
            f"--out {out} holds another run ({names}) than --resume {resume}; leave out --out to continue the run "
            "in its own folder, or pass an --out that holds no run"
        )
    last = out / "last.pt"
    if last.exists() and resume_path.resolve() != last.resolve():
        resumed_epoch, last_epoch = _epoch(resume_path), _epoch(last)
        if last_epoch > resumed_epoch:
            raise CliError(
                f"--resume {resume_path.name} (epoch {resumed_epoch}) would replace {last} (epoch {last_epoch}), a "
                f"later epoch of this run; pass --resume {last} to continue it, or --out another folder to "
                f"branch off epoch {resumed_epoch}"
            )


@contextlib.contextmanager
def replacing(out: Path, overwrite: bool) -> Iterator[None]:
    """With ``--overwrite``: move the old run's checkpoints aside for the block; delete them if the new run wrote
    a checkpoint by the end, else put them back. Only the main process moves files."""
    existing = [out / name for name in CHECKPOINTS if (out / name).exists()]
    if not (overwrite and existing and distributed.is_main_process()):
        yield
        return
    aside = Path(tempfile.mkdtemp(dir=out, prefix=".replaced-run-"))
    for path in existing:
        os.replace(path, aside / path.name)
    try:
        yield
    finally:
        if any((out / name).exists() for name in CHECKPOINTS):  # the new run has a checkpoint: the old one goes
            shutil.rmtree(aside, ignore_errors=True)
        else:
            for path in existing:
                os.replace(aside / path.name, path)
            aside.rmdir()


def _schedule_of(saved: dict) -> str:
    """The schedule a checkpoint was trained with: its config's, else read from the scheduler's state."""
    if saved.get("config", {}).get("scheduler"):
        return saved["config"]["scheduler"]
    state = saved.get("scheduler") or {}
    if "total_steps" in state:
        return "onecycle"
    if "T_max" in state:
        return "cosine"
    return "plateau" if "patience" in state else "none"


def resumed_settings(args: argparse.Namespace, saved: dict, steps_per_epoch: int) -> None:
    """Fill ``--lr`` and ``--scheduler`` from the resumed run when not given; refuse changed ones, and an
    ``--epochs`` that a cosine or one-cycle schedule cannot reach. Raises CliError saying how to start a new run."""
    config = saved.get("config") or {}
    new_run = "start a new run (an --out without a run, no --resume)"
    known = {"lr": config.get("lr"), "scheduler": _schedule_of(saved)}
    for name, value in known.items():
        given = getattr(args, name)
        if given is None:
            setattr(args, name, value if value is not None else DEFAULTS[name])
        elif value is not None and given != value:
            raise CliError(
                f"--resume {args.resume} was trained with --{name} {value}, not --{name} {given}: a resumed run "
                f"keeps its optimizer and schedule; leave out --{name} to continue it, or {new_run} with "
                f"--{name} {given}"
            )
    state, epoch = saved.get("scheduler") or {}, int(saved["epoch"])
    end, schedule = None, None
    if args.scheduler == "cosine" and "T_max" in state:
        end, schedule = state["T_max"], "a cosine schedule"
        fits, why = args.epochs == end, "its lr reaches 0 there"
    elif args.scheduler == "onecycle" and "total_steps" in state:
        end = config.get("epochs") or round(state["total_steps"] / max(steps_per_epoch, 1))
        schedule = f"a one-cycle schedule of {state['total_steps']} optimizer steps"
        fits = args.epochs * steps_per_epoch == state["total_steps"]
        why = f"with these --batch-size and --accumulate an epoch is {steps_per_epoch} steps"
    if end is not None and (epoch >= end or not fits):
        raise CliError(
            f"--resume {args.resume} follows {schedule} that ends at epoch {end} ({why}), so it cannot train to "
            f"epoch {args.epochs}; "
            + ("it has finished: " if epoch >= end else f"resume it with --epochs {end} and the same batches, or ")
            + f"{new_run} with --epochs {args.epochs}"
        )
    if epoch >= args.epochs:
        raise CliError(
            f"--resume {args.resume} has already trained {epoch} epochs, and --epochs is {args.epochs}; pass "
            f"--epochs larger than {epoch} to train further"
        )
