"""The notebook pipeline: pairs in sync and without outputs, the template, and exercises with self-checks."""

import re
from pathlib import Path

import jupytext
import pytest

from unet_tutorial import notebook_tools
from unet_tutorial.utils import REPO_URL

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
SOURCE_IDS = [p.stem for p in SOURCES]


def test_there_are_notebooks():
    assert SOURCES, f"no notebooks/NN_slug.py sources found in {NOTEBOOKS}"


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_ipynb_matches_its_py_source_and_has_no_outputs(source):
    assert notebook_tools.pairing_problems(source) == []


def test_sync_gate_catches_a_stale_or_executed_notebook(tmp_path):
    import nbformat

    source = tmp_path / "00_demo.py"
    source.write_text("# %%\nx = 1\n")
    nbformat.write(jupytext.read(source), tmp_path / "00_demo.ipynb")
    assert notebook_tools.pairing_problems(source) == []

    source.write_text("# %%\nx = 2\n")
    assert "differs" in notebook_tools.pairing_problems(source)[0]

    executed = jupytext.read(source)
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    executed.cells[0].execution_count = 1
    nbformat.write(executed, tmp_path / "00_demo.ipynb")
    assert "outputs" in notebook_tools.pairing_problems(source)[0]


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_template_title_setup_settings_summary(source):
    cells = jupytext.read(source).cells
    title = cells[0].source
    assert cells[0].cell_type == "markdown" and title.startswith("# ")
    badge = f"colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/notebooks/{source.stem}.ipynb"
    assert badge in title, f"{source.name}: the title cell needs the Open-in-Colab badge for {badge}"
    assert "What you will learn" in title and "Runtime" in title

    setup = cells[1].source
    assert 'if "google.colab" in sys.modules' in setup, "the setup cell installs on Colab only"
    assert f"git+{REPO_URL}" in setup and "-c /tmp/keep.txt" in setup
    for kept in ("torch", "torchvision", "ipywidgets"):
        assert f"{kept}==" in setup, f"the setup cell must pin Colab's own {kept} so pip never reinstalls it"
    assert not re.search(r"pip install[^\n]*\b(torch|torchvision|ipywidgets)\b(?!_)", setup)

    assert "smoke_mode()" in cells[2].source, "the third cell is the settings cell, smaller in smoke mode"
    assert any(c.cell_type == "markdown" and c.source.startswith("## Summary") for c in cells)


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_exercise_self_checks_pass_on_solutions_and_fail_on_stubs(source):
    pairs = notebook_tools.exercise_pairs(source)
    assert pairs, f"{source.name} has no exercise (a cell tagged 'solution' followed by a self-check)"
    for solution, check in pairs:
        namespace: dict = {}
        exec(solution, namespace)  # solution cells are self-contained: they import what they use
        exec(check, namespace)
        stub_namespace: dict = {}
        with pytest.raises(NotImplementedError, match="Exercise"):
            exec(notebook_tools.stub_source(solution), stub_namespace)
            exec(check, stub_namespace)


def test_make_student_writes_stubbed_notebooks(tmp_path):
    import nbformat

    out = notebook_tools.make_student(SOURCES[0], tmp_path)
    student = nbformat.read(out, as_version=4)
    exercises = [c for c in student.cells if "exercise" in c.metadata.get("tags", [])]
    assert exercises and all("NotImplementedError" in c.source for c in exercises)
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
