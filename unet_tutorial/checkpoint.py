"""Checkpoints that are safe to write and to read: atomic saves, ``weights_only`` loads, clear errors.

A checkpoint holds the model's state dict, the optimizer, scheduler and scaler states, the epoch, the history,
every random generator's state (so a resumed run repeats the uninterrupted one) and a ``config`` of plain values
(model name and constructor kwargs, so ``load_model`` can rebuild the model from the file alone; ``storable``
refuses a NumPy number or a Path before anything is written, as a weights-only load would after). It is
written to a temporary file and renamed, so a crash never leaves half a file, and loaded with
``weights_only=True``, so it can never run code. Reading checks the zip archive's CRCs (bit rot) and refuses
weights that are NaN or infinite. ``resumable`` says whether a run folder holds the run a notebook asks for
(``same_settings``: a tuple is the list of its items, NaN is NaN, so a round trip never forces a new run).
What it leaves out: sharded or distributed checkpoints, safetensors. Taught in: 03 (Carvana binary).
"""

from __future__ import annotations

import inspect
import io
import math
import os
import pickle
import random
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unet_tutorial.models import MODELS, model_name

CHECKPOINT_FORMAT = "unet_tutorial.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: truncated, not a checkpoint, unsafe to unpickle, or for another model."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel (``.module``) or torch.compile (``._orig_mod``) wrapper."""
    while isinstance(getattr(model, "module", None), nn.Module) or hasattr(model, "_orig_mod"):
        model = model.module if isinstance(getattr(model, "module", None), nn.Module) else model._orig_mod
    return model


def non_finite(state: dict) -> list[str]:
    """Names of the floating-point tensors in a state dict that hold a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()
    ]


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that a write killed before its rename left in ``folder``; returns them."""
    stale = sorted(Path(folder).glob(".*.pt.*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def rng_states() -> dict:
    """Python, NumPy, torch (and CUDA) random states as tensors and plain values, safe for ``weights_only``.

    This covers the data too: ``fit`` seeds the training loader's shuffle and augmentations from torch's state
    at the start of every epoch (``loaders.seed_loader``), so restoring it repeats the epochs that follow.
    """
    np_state = np.random.get_state()  # ("MT19937", keys uint32 (624,), pos, has_gauss, cached_gaussian)
    py_state = random.getstate()  # (version, 625 ints, gauss_next)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
    }


def set_rng_states(states: dict) -> None:
    """Restore what ``rng_states`` returned."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def _unstorable(value, where: str) -> str | None:
    """Where in ``value`` is something a ``weights_only`` load refuses (what it is), else None."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
        return None
    except (pickle.PicklingError, pickle.UnpicklingError, AttributeError, TypeError):
        pass
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        if found := _unstorable(item, f"{where}[{key!r}]"):
            return found
    return f"{where} is a {type(value).__module__}.{type(value).__qualname__} ({value!r:.60})"


def storable(value, name: str = "config"):
    """``value`` itself, once it is known to load back from a checkpoint (``weights_only=True``).

    Raises:
        CheckpointError: it holds something else than plain values (bool, int, float, str, None, lists, tuples,
            dicts, tensors), e.g. a NumPy number or a Path; the message names where. Written anyway, the file
            could only be refused by every later load.
    """
    if found := _unstorable(value, name):
        raise CheckpointError(
            f"{found}, which a checkpoint cannot store: it must load with weights_only=True, so it holds only "
            "bool, int, float, str, None, lists, tuples, dicts and tensors; convert it, e.g. float(x), int(x), "
            "str(path) or x.tolist()"
        )
    return value


def save_checkpoint(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **extra
) -> Path:
    """Write model (and optimizer) state, RNG states and ``extra`` atomically: a temporary file, then a rename.

    A crash mid-write leaves the previous checkpoint intact. Objects with a ``state_dict`` (scheduler, scaler)
    are stored as their state dicts; everything else in ``extra`` (epoch, history, config) must be plain values.
    """
    checkpoint = {"format": CHECKPOINT_FORMAT, "model": unwrap(model).state_dict(), "rng": rng_states()}
    if optimizer is not None:
        checkpoint["optimizer"] = optimizer.state_dict()
    for key, value in extra.items():
        checkpoint[key] = value.state_dict() if hasattr(value, "state_dict") else storable(value, key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint gets the mode any new file would
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint file as a dict with ``weights_only=True``; a bare state dict becomes {"model": ...}.

    Raises:
        FileNotFoundError: no such file (IsADirectoryError: a folder).
        CheckpointError: truncated, damaged (a CRC mismatch) or not a checkpoint, it holds pickled objects that
            could run code, or its weights are not finite.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint; pass the last.pt or best.pt inside it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the last.pt or best.pt that training wrote")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one loses its directory
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint (torch.save writes a zip archive, "
            "this file is not one); use a complete last.pt or best.pt written by save_checkpoint"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # reads every member and checks its CRC-32: flipped bits show here
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        damaged = f"its zip directory ({error})"
    if damaged is not None:
        raise CheckpointError(
            f"{path} is damaged: {damaged} does not match the checksum stored in the file "
            "(disk or copy error); use another copy, or the other of last.pt and best.pt"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CheckpointError(
                f"refusing to load {path}: it holds pickled Python objects, not just tensors and plain values, and "
                "unpickling them could run code. Re-save the weights with save_checkpoint from a trusted "
                "source."
            ) from None
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({error})") from None
    except Exception as error:  # noqa: BLE001 (zip reader and unpickler fail in many ways)
        reason = f"{type(error).__name__}: {str(error).strip().split('. ')[0][:120]}"
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({reason}); "
            "use a complete last.pt or best.pt written by save_checkpoint"
        ) from None
    if (
        isinstance(checkpoint, dict)
        and "model" not in checkpoint
        and checkpoint
        and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    ):
        checkpoint = {"model": checkpoint}  # torch.save(model.state_dict()) from elsewhere
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path} is a PyTorch file but not a model checkpoint (no 'model' state dict)")
    if bad := non_finite(checkpoint["model"]):
        raise CheckpointError(
            f"{path} holds weights that are NaN or infinite ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}): the run it came from diverged; use an earlier "
            "checkpoint, or train again with a smaller --lr"
        )
    return checkpoint


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler=None,
    scaler=None,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = False,
    strict: bool = True,
) -> dict:
    """Load weights into ``model`` (and the states of optimizer, scheduler, scaler) from a checkpoint file.

    Loading uses ``weights_only=True``: a checkpoint is never allowed to run code.
    Returns:
        The checkpoint dict: "epoch", "history", "config", ... as saved.
    Raises:
        CheckpointError: unreadable, unsafe, or made for a model with other layers or shapes.
    """
    checkpoint = read_checkpoint(path, map_location)
    try:
        unwrap(model).load_state_dict(checkpoint["model"], strict=strict)
    except RuntimeError as error:
        config = checkpoint.get("config") or {}
        saved = (
            f" It was saved from model {config.get('model')!r} with {config.get('model_kwargs')}."
            if config.get("model")
            else ""
        )
        details = "; ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise CheckpointError(
            f"{path} does not fit this {type(unwrap(model)).__name__}.{saved} "
            f"Build the same model to load it. ({details})"
        ) from None
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if target is not None and checkpoint.get(name) is not None:
            target.load_state_dict(checkpoint[name])
    if restore_rng and "rng" in checkpoint:
        set_rng_states(checkpoint["rng"])
    return checkpoint


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The model a checkpoint names, rebuilt from its config and loaded with its weights, in eval mode.

    The checkpoint's ``config`` must hold "model" (a name ``models.MODELS`` knows; older checkpoints' names too)
    and "model_kwargs" (the constructor's keyword arguments): ``python -m unet_tutorial train`` and notebook 03
    store both (notebooks 04 and 05 do not yet: load theirs with ``load_checkpoint`` into the model they build).
    A DenseNetUNet is rebuilt without fetching ImageNet weights: the file holds its encoder.

    Returns:
        (model on ``device``, the checkpoint's config).
    Raises:
        CheckpointError: no model config, a model name or constructor argument this version does not know, or
            weights that do not fit.
    """
    config = read_checkpoint(path).get("config") or {}
    if "model" not in config or "model_kwargs" not in config:
        raise CheckpointError(
            f"{path} has no model config (no 'model' and 'model_kwargs'); build the model yourself and load "
            "the weights with load_checkpoint(path, model)"
        )
    if not isinstance(config["model_kwargs"], dict):
        raise CheckpointError(
            f"{path}'s model_kwargs is {config['model_kwargs']!r}, not a dict of keyword arguments; build the "
            "model yourself and load the weights with load_checkpoint(path, model)"
        )
    try:
        name = model_name(config["model"])
    except KeyError as error:
        raise CheckpointError(f"{path} names a model this version does not know: {error.args[0]}") from None
    kwargs = dict(config["model_kwargs"])
    if name == "densenet_unet":
        kwargs["weights"] = None  # the checkpoint holds the trained encoder
    if unknown := sorted(set(kwargs) - set(inspect.signature(MODELS[name]).parameters)):
        raise CheckpointError(
            f"{path} holds a {name} built with {config['model_kwargs']}, but this version's "
            f"{MODELS[name].__name__} takes no {', '.join(unknown)}; use the unet_tutorial version that wrote it"
        )
    model = MODELS[name](**kwargs)
    load_checkpoint(path, model)
    return model.to(device).eval(), config


def same_settings(a, b) -> bool:
    """Whether two settings are the same as a learner means them: a tuple equals the list of its items (a notebook
    may say either), NaN equals NaN, a tensor equals its values; otherwise ``==``."""
    a, b = (x.tolist() if isinstance(x, torch.Tensor) else x for x in (a, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_settings(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_settings(a[key], b[key]) for key in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def resumable(run_dir: str | Path | None, config: dict, log: Callable[[str], Any] = print) -> Path | None:
    """The run folder's ``last.pt`` when it was trained with exactly ``config``, else None (train from scratch).

    Pass it to ``fit(..., resume=resumable(run_dir, config), checkpoint_dir=run_dir, config=config)``: an
    interrupted run continues after its last finished epoch, a finished one is loaded with nothing left to train,
    and a run with any other setting (the whole ``config`` is compared, see ``same_settings``; a setting missing
    on one side counts as None) is trained again from scratch, its checkpoints then replaced. One line says which,
    and which settings differ.

    Raises:
        CheckpointError: ``config`` holds a value a checkpoint cannot store, or ``last.pt`` cannot be read or was
            not written by ``fit`` (it is never replaced then). NotADirectoryError: ``run_dir`` is a file.
    """
    if run_dir is None:
        return None
    storable(config, "config")  # now, not after the first epoch's training
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise NotADirectoryError(f"run folder {run_dir} is a file, not a folder; pass a folder for last.pt and best.pt")
    last = Path(run_dir) / "last.pt"
    if not last.exists():
        log(f"no run in {run_dir} yet: training from scratch")
        return None
    try:
        saved = read_checkpoint(last)
    except (CheckpointError, OSError) as error:
        raise CheckpointError(f"{error}; to train this run from scratch instead, delete {last}") from None
    if "epoch" not in saved:
        raise CheckpointError(
            f"{last} was not written by fit (it holds no epoch), and training would replace it; move it out of "
            f"{run_dir}, or choose another run folder"
        )
    stored = saved.get("config") or {}
    # A setting one side lacks counts as None: a run saved before a notebook added a setting whose value is None
    # (the default, "off") is the same run, and is not thrown away.
    changed = [
        f"{key} {stored.get(key, '(unset)')} -> {config.get(key, '(unset)')}"
        for key in sorted(set(stored) | set(config))
        if not same_settings(stored.get(key), config.get(key))
    ]
    if changed:
        log(f"{last} was trained with other settings ({'; '.join(changed)}): training it anew, replacing it")
        return None
    epoch, epochs = saved.get("epoch", 0), config.get("epochs")
    if isinstance(epochs, int) and epoch >= epochs:  # nothing left to train: say so, not "continuing"
        log(f"{last} holds this run, finished after epoch {epoch}: loading it (delete {run_dir} to train it again)")
    else:
        log(
            f"{last} holds this run after epoch {epoch}: fit resumes from it, if any epochs are left "
            f"(delete {run_dir} to start over)"
        )
    return last
