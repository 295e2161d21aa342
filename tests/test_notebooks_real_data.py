"""Notebooks 03 and 05 take their real-data branch, on a tiny tree in the official layouts (04's: in the ImageNet test).

CI has neither Kaggle's Carvana nor MIT's ADE20K, so without this the branch a learner with the real data runs
would never execute in a test. ``official_data`` (tests/conftest.py) writes drawn pictures under the real file
names and formats; the notebooks run with smoke-mode sizes (``UNET_TUTORIAL_MODE=smoke``) but with smoke mode off,
since smoke mode always generates its data. Each must find the data as real (no notice about generated data) and
report its headline metric.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                parts.append(output.data.get("text/markdown", "") or output.data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["03_carvana_binary", "05_ade20k_multiclass"])
def test_a_notebook_takes_its_real_data_branch(stem, tmp_path, monkeypatch, official_data):
    from nbclient import NotebookClient

    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    monkeypatch.setenv("UNET_TUTORIAL_MODE", "smoke")
    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(official_data))
    monkeypatch.setenv("UNET_TUTORIAL_REPORT", str(tmp_path / "report"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    work = tmp_path / "work"  # the kernel's folder: run folders and downloads land here, not in the checkout
    work.mkdir()
    notebook = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()

    text = outputs_text(notebook)
    assert "NOTICE" not in text, "the real-data branch prints no notice about generated data"
    assert str(official_data) in text, "the notebook says which folder it read"
    report = json.loads((tmp_path / "report" / f"{stem}.json").read_text())
    assert report.get("data") == "real", report
