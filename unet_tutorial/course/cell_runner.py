"""Run a notebook cell by cell in a kernel of its own, in a fresh temporary folder, with time limits.

The grader (``grade.py``) calls ``run_notebook`` once per handed-in notebook. It writes a copy into a new
temporary folder and starts a worker process there (``run_cells``, which never imports torch) that runs the
code cells one at a time with nbclient, so that an error does not stop the cells after it, and logs each cell as
one JSON line as soon as it ends: ok or error (with the exception's name and value), timed out, or the kernel
died; and the end of what it printed. The worker gets smoke mode and no trace of the teacher's folder in its
environment; the grader kills it if it outlives its limits, and reads the log.

What it leaves out: it is no sandbox (the code runs with your permissions; only the folder it starts in and its
environment are its own), no memory limit, no rich outputs (figures are dropped as they arrive).
Taught in: TEACHING.md (grading), through ``python -m unet_tutorial.course.grade``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP_S = 120  # for the kernel to start: not counted in a notebook's time limit
KEPT_OUTPUT = 4000  # characters of each cell's printed output the worker keeps (the end, where a ✓ line is)


def run_cells(argv: list[str]) -> int:
    """Run a notebook's code cells one at a time in a new kernel (cwd: this process's), logging each to a file.

    ``argv``: notebook, log file, the notebook's time limit (s, from when its kernel is ready), the limit per
    cell (s), the index of the last cell to run. Each log line is JSON: ``{"cell", "status", "ename", "evalue",
    "stdout", "seconds", ...}``, written as soon as the cell ends, so a killed worker still leaves what it did.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    printed: dict[int, str] = {}  # cell -> the end of what it printed

    class Client(NotebookClient):
        """Keeps only the end of each cell's printed output: a loop that prints cannot fill the memory."""

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] == "stream" and msg["content"].get("name") == "stdout":
                text = printed.get(cell_index, "") + msg["content"].get("text", "")
                printed[cell_index] = text[-KEPT_OUTPUT:]
            return None

    path, log_path, timeout, cell_timeout, last = argv[0], argv[1], float(argv[2]), float(argv[3]), int(argv[4])
    notebook = nbformat.read(path, as_version=4)
    client = Client(
        notebook,
        kernel_name="python3",  # this Python's kernel, whatever kernel the file names
        resources={"metadata": {"path": os.getcwd()}},
        startup_timeout=STARTUP_S,
        shutdown_kernel="immediate",
    )
    with open(log_path, "a", encoding="utf-8") as log:

        def write(record: dict) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        with client.setup_kernel():
            deadline = time.monotonic() + timeout
            for index, cell in enumerate(notebook.cells[: last + 1]):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    write({"stop": index, "reason": f"the notebook's {timeout:g} s limit was used up"})
                    break
                by_notebook = remaining < cell_timeout
                client.timeout = max(1, math.ceil(min(remaining, cell_timeout)))
                record = {"cell": index, "status": "ok", "limit": client.timeout, "by_notebook": by_notebook}
                start = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:
                    record.update(status="error", ename=exc.ename, evalue=exc.evalue)
                except CellTimeoutError:
                    record["status"] = "timeout"
                except DeadKernelError:
                    record["status"] = "dead"
                record.update(seconds=time.monotonic() - start, stdout=printed.pop(index, ""))
                write(record)
                if record["status"] in ("timeout", "dead"):
                    break
    return 0


def _kernel_env(run_dir: Path, threads: int) -> dict[str, str]:
    """The environment of a worker and its kernel: smoke mode, no report folder, no trace of the teacher's cwd,
    ``threads`` threads for torch unless set already (kernels side by side would fight over the cores); in a
    source checkout, the checkout's package first (as the grader imports it)."""
    import unet_tutorial
    from unet_tutorial.utils import REPORT_ENV, SMOKE_ENV

    env = {k: v for k, v in os.environ.items() if k not in (REPORT_ENV, "OLDPWD")}
    env.update({SMOKE_ENV: "1", "PWD": str(run_dir)})
    env.setdefault("OMP_NUM_THREADS", str(threads))
    root = Path(unet_tutorial.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():  # not site-packages: never put that before the standard library
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_notebook(
    notebook, timeout: float, cell_timeout: float, last: int, threads: int = 1
) -> tuple[dict[int, dict], str]:
    """Run an nbformat notebook's code cells up to cell ``last`` in a worker, a kernel and a folder of their own.

    Args:
        timeout: seconds for the whole notebook, counted from when its kernel is ready.
        cell_timeout: seconds for one cell.
        threads: ``OMP_NUM_THREADS`` for its kernel, unless the environment sets it.

    Returns:
        The record of each cell that ran, by index (``status``: ok, error, timeout or dead; ``ename``,
        ``evalue``, ``stdout``, ``seconds``, ``limit``), and why the run stopped early where no record says so
        ("" otherwise).
    """
    import nbformat

    with tempfile.TemporaryDirectory(prefix="unet-grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        run_dir, log_path, submission = tmp / "run", tmp / "cells.jsonl", tmp / "submission.ipynb"
        run_dir.mkdir()
        nbformat.write(notebook, submission)
        code = "import sys; from unet_tutorial.course.cell_runner import run_cells; sys.exit(run_cells(sys.argv[1:]))"
        argv = [sys.executable, "-c", code, str(submission), str(log_path), str(timeout), str(cell_timeout), str(last)]
        stopped = ""
        with open(tmp / "worker.txt", "w+b") as output:  # Ctrl-C reaches the worker too: it stops its kernel
            env = _kernel_env(run_dir, threads)
            worker = subprocess.Popen(argv, cwd=run_dir, env=env, stdout=output, stderr=output)
            try:
                worker.wait(timeout=timeout + STARTUP_S + 30)
            except subprocess.TimeoutExpired:  # nbclient did not stop it: its kernel exits with its parent
                worker.kill()
                worker.wait()
                stopped = f"the grader stopped it after {timeout + STARTUP_S + 30:g} s (its kernel did not answer)"
            output.seek(max(0, output.seek(0, os.SEEK_END) - 2000))
            tail = [line for line in output.read().decode(errors="replace").splitlines() if line.strip()]
        records = {}
        for line in log_path.read_text(encoding="utf-8").splitlines() if log_path.exists() else []:
            try:
                record = json.loads(line)
            except ValueError:  # the last line, cut short by a kill
                continue
            if "stop" in record:
                stopped = record["reason"]
            else:
                records[record["cell"]] = record
    if not records and not stopped and worker.returncode:
        stopped = "the notebook could not be run: " + (tail[-1] if tail else f"worker exit code {worker.returncode}")
    return records, stopped
