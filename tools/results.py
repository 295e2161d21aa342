"""The README's results, written from what ``make tutorial`` measured: no number typed by hand.

``make tutorial`` (``python -m tools.notebooks run``) executes the notebooks into ``build/notebooks/``; each
notebook records its headline metric with ``utils.report_metric`` in ``metrics/NN_slug.json``, and the runner
writes ``run.json``: the date, the mode (smoke or full), the machine (CPU cores, processor, torch device,
OMP_NUM_THREADS) and each notebook's runtime. ``make results`` (``python -m tools.results build/notebooks
--readme README.md``) turns them into a table, one row per notebook (headline metric, value, data, runtime)
under a line that says machine, date and mode, and rewrites the README between ``<!-- results:start -->`` and
``<!-- results:end -->``. A smoke run measures nothing worth publishing: it is refused unless ``--allow-smoke``.
Left out: the GPU tables and the CamVid check (benchmarks/ measure those), and merging several runs.
Taught in: no notebook; the course's upkeep.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

RUN_FILE = "run.json"
METRICS_DIR = "metrics"
START, END = "<!-- results:start -->", "<!-- results:end -->"


class ResultsError(ValueError):
    """A run folder or README that cannot give the results table; the message says what would."""


def machine() -> dict:
    """Where a run happened: what makes its runtimes comparable (or not) with another's."""
    import torch

    from unet_tutorial.utils import pick_device

    device = pick_device()
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def write_run(out_dir: str | Path, rows: list[dict], mode: str, info: dict | None = None) -> Path:
    """Write ``out_dir/run.json``: today's date, ``mode`` ("smoke" or "full"), the machine and ``rows``
    (``{"notebook", "seconds", "error"}`` each, as ``tools.notebooks.run_notebooks`` makes them)."""
    path = Path(out_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.date.today().isoformat(),
        "mode": mode,
        "machine": machine() if info is None else info,
        "notebooks": [{key: row[key] for key in ("notebook", "seconds", "error")} for row in rows],
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def read_results(run_dir: str | Path, allow_smoke: bool = False) -> tuple[dict, list[dict]]:
    """The run's record and one row per notebook (notebook, metric, value, data, seconds) from ``run_dir``.

    Raises:
        ResultsError: no run.json, a smoke run (unless ``allow_smoke``), a notebook that failed or recorded
            no metric.
    """
    run_dir = Path(run_dir)
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise ResultsError(f"{run_file} not found: run `make tutorial` first (it writes {RUN_FILE} and {METRICS_DIR}/)")
    run = json.loads(run_file.read_text())
    if run.get("mode") != "full" and not allow_smoke:
        raise ResultsError(
            f"{run_file}: a {run.get('mode')}-mode run (UNET_TUTORIAL_SMOKE=1) measures nothing worth publishing; "
            "run `make tutorial` without it, or pass --allow-smoke"
        )
    rows = []
    for entry in run["notebooks"]:
        name = entry["notebook"]
        if entry.get("error"):
            raise ResultsError(f"{run_file}: {name} failed ({entry['error']}): fix it and run `make tutorial` again")
        metric_file = run_dir / METRICS_DIR / f"{name}.json"
        if not metric_file.is_file():
            raise ResultsError(f"{metric_file} not found: {name} must call utils.report_metric(..., '{name}')")
        metric = json.loads(metric_file.read_text())
        rows.append({**metric, "notebook": name, "seconds": entry["seconds"]})
    if not rows:
        raise ResultsError(f"{run_file} lists no notebooks: run `make tutorial`")
    return run, rows


def format_seconds(seconds: float) -> str:
    """A runtime as a reader says it: "48 s", "2 min 28 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def machine_line(run: dict) -> str:
    """One sentence: the date, the mode and the machine of a run."""
    m = run["machine"]
    threads = m.get("omp_num_threads") or "unset"
    return (
        f"Measured by `make tutorial` on {run['date']}, {run['mode']} mode: {m['cpu_count']} CPU cores "
        f"({m['processor']}, {m['platform']}), torch {m['torch']} on {m['torch_device']} with {m['torch_threads']} "
        f"threads (OMP_NUM_THREADS {threads}), Python {m['python']}. Written by `make results`: do not edit by hand."
    )


def results_block(run: dict, rows: list[dict]) -> str:
    """The Markdown that goes between the README's markers: the machine line and the table."""
    lines = [
        machine_line(run),
        "",
        "| Notebook | Headline metric | Value | Data | Runtime |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        link = f"[{row['notebook']}](notebooks/{row['notebook']}.ipynb)"
        cells = [link, f"`{row['metric']}`", f"{row['value']:.4f}", row.get("data") or "-"]
        lines.append("| " + " | ".join(cells + [format_seconds(row["seconds"])]) + " |")
    return "\n".join(lines)


def replace_block(readme_text: str, block: str, readme: str = "README.md") -> str:
    """``readme_text`` with what lies between the results markers replaced by ``block``."""
    if (
        readme_text.count(START) != 1
        or readme_text.count(END) != 1
        or readme_text.index(START) > readme_text.index(END)
    ):
        raise ResultsError(f"{readme}: expected one {START} line, then one {END} line, around the results table")
    head, rest = readme_text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="what make tutorial wrote, e.g. build/notebooks")
    parser.add_argument("--readme", help="rewrite this file's results table (default: print the table)")
    parser.add_argument("--allow-smoke", action="store_true", help="accept a smoke-mode run (to try this command)")
    args = parser.parse_args(argv)
    try:
        run, rows = read_results(args.run_dir, args.allow_smoke)
        block = results_block(run, rows)
        if args.readme is None:
            print(block)
            return 0
        readme = Path(args.readme)
        if not readme.is_file():
            raise ResultsError(f"{readme} not found: give the README to rewrite, e.g. --readme README.md")
        text = readme.read_text()
        new = replace_block(text, block, args.readme)
        readme.write_text(new)
    except ResultsError as error:
        print(f"tools.results: {error}", file=sys.stderr)
        return 1
    state = "rewritten" if new != text else "already up to date"
    print(f"{args.readme}: results of {len(rows)} notebook(s) from the run of {run['date']}, {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
