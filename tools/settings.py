"""A notebook's settings, read by running its settings cell in a chosen mode (no other cell runs).

Every notebook keeps its knobs in one cell tagged ``settings`` (py:percent: ``# %% tags=["settings"]``), with
the values per mode on the line a learner reads: ``IMAGE_SIZE = {"smoke": ..., "cpu": ..., "gpu": ...}[MODE]``,
where ``MODE = run_mode(DEVICE)``. ``notebook_settings(source, "gpu")`` runs that cell with
``$UNET_TUTORIAL_MODE=gpu`` and returns its upper-case names, so tests and benchmarks check the numbers the
learner sees (the GPU settings fit a T4) instead of a table kept elsewhere. Left out: every other cell.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from unet_tutorial.utils import MODE_ENV, MODES

_CELL = re.compile(r"^# %%(?P<header>[^\n]*)\n(?P<body>.*?)(?=^# %%|\Z)", re.M | re.S)


def settings_cell(source: str | Path) -> str:
    """The code of ``source``'s cell tagged ``settings`` (a jupytext py:percent notebook)."""
    try:
        text = Path(source).read_text(encoding="utf-8")  # not the locale's: the notebooks hold "·" and "±"
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{source} is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None
    cells = [m["body"] for m in _CELL.finditer(text) if re.search(r'tags=\[[^\]]*"settings"', m["header"])]
    if len(cells) != 1:
        raise ValueError(f'{source}: expected one cell tagged settings (# %% tags=["settings"]), found {len(cells)}')
    return cells[0]


def notebook_settings(source: str | Path, mode: str) -> dict:
    """The upper-case names ``source``'s settings cell defines when it runs in ``mode`` ("smoke", "cpu", "gpu")."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; use one of {', '.join(MODES)}")
    previous = os.environ.get(MODE_ENV)
    os.environ[MODE_ENV] = mode
    try:
        namespace: dict = {}
        exec(compile(settings_cell(source), f"{source} (settings cell)", "exec"), namespace)  # noqa: S102
    finally:
        if previous is None:
            os.environ.pop(MODE_ENV)
        else:
            os.environ[MODE_ENV] = previous
    return {name: value for name, value in namespace.items() if name.isupper()}
