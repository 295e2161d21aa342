"""make results (tools/results.py): the README's results table written from make tutorial's metrics and runtimes."""

import json

import nbformat
import pytest

from tools import notebooks, results

MACHINE = {
    "cpu_count": 2,
    "processor": "x86_64",
    "platform": "Linux-6.1",
    "python": "3.11.7",
    "torch": "2.14.1",
    "torch_device": "cpu",
    "torch_threads": 2,
    "omp_num_threads": None,
}
README = """# Course

## Results

Some words that stay.

<!-- results:start -->
| Notebook | Headline | Compare with |
|---|---|---|
| 01 | typed by hand: 0.998 | - |
<!-- results:end -->

### On a GPU

More words that stay.
"""


def _plant(tmp_path, mode="full", error=None, metrics=("01_unet_from_scratch", "03_carvana_binary")):
    run_dir = tmp_path / "build" / "notebooks"
    rows = [
        {"notebook": "01_unet_from_scratch", "seconds": 67.4, "error": None},
        {"notebook": "03_carvana_binary", "seconds": 148.0, "error": error},
    ]
    results.write_run(run_dir, rows, mode, MACHINE)
    (run_dir / "metrics").mkdir()
    records = {
        "01_unet_from_scratch": {"metric": "memorised_dice", "value": 1.0},
        "03_carvana_binary": {"metric": "val_dice", "value": 0.97612, "data": "generated"},
    }
    for name in metrics:
        (run_dir / "metrics" / f"{name}.json").write_text(json.dumps({"notebook": name, **records[name]}))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    return run_dir, readme


def test_results_rewrite_only_the_table_between_the_markers(tmp_path, capsys):
    run_dir, readme = _plant(tmp_path)
    assert results.main([str(run_dir), "--readme", str(readme)]) == 0
    text = readme.read_text()
    date = json.loads((run_dir / "run.json").read_text())["date"]
    block = text.split("<!-- results:start -->\n")[1].split("\n<!-- results:end -->")[0]
    assert block.splitlines() == [
        f"Measured by `make tutorial` on {date}, full mode: 2 CPU cores (x86_64, Linux-6.1), torch 2.14.1 on cpu "
        "with 2 threads (OMP_NUM_THREADS unset), Python 3.11.7. Written by `make results`: do not edit by hand.",
        "",
        "| Notebook | Headline metric | Value | Data | Runtime |",
        "|---|---|---|---|---|",
        "| [01_unet_from_scratch](notebooks/01_unet_from_scratch.ipynb) | `memorised_dice` | 1.0000 | - | 1 min 7 s |",
        "| [03_carvana_binary](notebooks/03_carvana_binary.ipynb) | `val_dice` | 0.9761 | generated | 2 min 28 s |",
    ]
    assert text.startswith(README.split("<!-- results:start -->")[0])
    assert text.endswith(README.split("<!-- results:end -->")[1]) and "typed by hand" not in text
    assert "rewritten" in capsys.readouterr().out
    assert results.main([str(run_dir), "--readme", str(readme)]) == 0 and readme.read_text() == text  # idempotent
    assert "already up to date" in capsys.readouterr().out


def test_a_smoke_run_is_refused_unless_allowed(tmp_path, capsys):
    run_dir, readme = _plant(tmp_path, mode="smoke")
    assert results.main([str(run_dir), "--readme", str(readme)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smoke-mode run" in err and "--allow-smoke" in err and "run.json" in err
    assert readme.read_text() == README
    assert results.main([str(run_dir), "--readme", str(readme), "--allow-smoke"]) == 0
    assert "smoke mode" in readme.read_text()


@pytest.mark.parametrize(
    "plant, readme_text, message",
    [
        ({"error": "CellExecutionError: boom"}, README, "03_carvana_binary failed (CellExecutionError: boom)"),
        ({"metrics": ("01_unet_from_scratch",)}, README, "03_carvana_binary.json not found"),
        ({}, README.replace("<!-- results:end -->\n", ""), "expected one <!-- results:start --> line, then one"),
    ],
)
def test_bad_input_is_one_line_that_says_what_would_work(tmp_path, capsys, plant, readme_text, message):
    run_dir, readme = _plant(tmp_path, **plant)
    readme.write_text(readme_text)
    assert results.main([str(run_dir), "--readme", str(readme)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0, err
    assert readme.read_text() == readme_text


def test_a_folder_without_a_run_says_to_run_make_tutorial(tmp_path, capsys):
    assert results.main([str(tmp_path)]) == 1
    assert "run.json not found: run `make tutorial` first" in capsys.readouterr().err


def test_format_seconds():
    assert [results.format_seconds(s) for s in (4.4, 59.6, 60, 148.0, 605)] == [
        "4 s",
        "1 min 0 s",
        "1 min 0 s",
        "2 min 28 s",
        "10 min 5 s",
    ]


@pytest.mark.slow  # two kernels start
def test_run_notebooks_writes_run_json_and_drops_a_stale_metric(tmp_path, monkeypatch):
    # One tiny notebook that reports its metric, one that fails before it: its old metric must not survive.
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "1")
    monkeypatch.setenv("UNET_TUTORIAL_REPORT", "")  # run_notebooks sets it: restored after the test
    report = (  # what utils.report_metric writes (tests/test_utils.py), without importing torch in the kernel
        "import json, os, pathlib\n"
        "record = {'notebook': '00_good', 'metric': 'val_dice', 'value': 0.5}\n"
        "pathlib.Path(os.environ['UNET_TUTORIAL_REPORT'], '00_good.json').write_text(json.dumps(record))"
    )
    for name, code in (("00_good", report), ("01_bad", "raise ValueError('boom')")):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), tmp_path / f"{name}.ipynb")
    out = tmp_path / "out"
    (out / "metrics").mkdir(parents=True)
    (out / "metrics" / "01_bad.json").write_text('{"notebook": "01_bad", "metric": "val_dice", "value": 0.9}')
    rows = notebooks.run_notebooks([tmp_path / "00_good.ipynb", tmp_path / "01_bad.ipynb"], out, timeout=60)
    assert [row["value"] for row in rows] == [0.5, None] and "boom" in rows[1]["error"]
    run = json.loads((out / "run.json").read_text())
    assert run["mode"] == "smoke" and run["machine"]["cpu_count"] >= 1 and "torch_device" in run["machine"]
    assert [(n["notebook"], n["error"] is None) for n in run["notebooks"]] == [("00_good", True), ("01_bad", False)]
    assert not (out / "metrics" / "01_bad.json").exists()
