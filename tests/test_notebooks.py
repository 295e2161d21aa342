"""The notebook pipeline: pairs in sync and without outputs, the template, and exercises with self-checks."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from tools import notebooks
from unet_tutorial.utils import REPO_URL

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
SOURCE_IDS = [p.stem for p in SOURCES]
COLAB_LINK = r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)"


def test_there_are_notebooks():
    assert SOURCES, f"no notebooks/NN_slug.py sources found in {NOTEBOOKS}"


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_ipynb_matches_its_py_source_and_has_no_outputs(source):
    assert notebooks.pairing_problems(source) == []


def test_sync_gate_catches_a_stale_or_executed_notebook(tmp_path):
    import nbformat

    source = tmp_path / "00_demo.py"
    source.write_text("# %%\nx = 1\n")
    nbformat.write(jupytext.read(source), tmp_path / "00_demo.ipynb")
    assert "exercises/00_demo.ipynb is missing" in notebooks.pairing_problems(source)[0]
    notebooks.make_student(source)
    assert notebooks.pairing_problems(source) == []

    source.write_text("# %%\nx = 2\n")
    problems = notebooks.pairing_problems(source)
    assert len(problems) == 2 and all("differs" in p for p in problems), problems  # the .ipynb and the copy

    executed = jupytext.read(source)
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    executed.cells[0].execution_count = 1
    nbformat.write(executed, tmp_path / "00_demo.ipynb")
    notebooks.make_student(source)
    assert "outputs" in notebooks.pairing_problems(source)[0]


def test_student_copy_keeps_the_paired_notebooks_cell_ids(tmp_path):
    import nbformat

    source = tmp_path / "00_demo.py"
    source.write_text("# %%\nx = 1\n\n# %% [markdown]\n# text\n")
    nbformat.write(jupytext.read(source), tmp_path / "00_demo.ipynb")
    first = notebooks.make_student(source).read_bytes()
    assert notebooks.make_student(source).read_bytes() == first, "a rerun must not change the copy"
    paired = nbformat.read(tmp_path / "00_demo.ipynb", as_version=4)
    copy = nbformat.read(notebooks.student_path(source), as_version=4)
    assert [c.id for c in copy.cells] == [c.id for c in paired.cells]


def test_sync_gate_compares_cell_tags(tmp_path):
    import nbformat

    source = tmp_path / "00_demo.py"
    source.write_text('# %% tags=["skip-execution"]\nx = 1\n')
    nbformat.write(jupytext.read(source), tmp_path / "00_demo.ipynb")
    notebooks.make_student(source)
    assert notebooks.pairing_problems(source) == []
    source.write_text("# %%\nx = 1\n")  # the same code, the tag dropped in the .py only
    problems = notebooks.pairing_problems(source)
    assert problems and all("tags differ" in p for p in problems), problems


def test_stub_source_keeps_only_the_comments_before_the_first_statement():
    solution = """# Hint: guide the learner, do not solve.
# Explain the task.
import torch


def area(height: int,
         width: int) -> int:
    \"\"\"Pixels of a (height, width) image.\"\"\"
    # secret: multiply them
    return height * width


class Counter:
    \"\"\"Counts.\"\"\"

    def add(self, x: int) -> int:
        # secret inside a method
        return x + 1


# secret between statements
total = area(2, 3)  # secret at the end of a line
"""
    stub = notebooks.stub_source(solution)
    assert "secret" not in stub and "height * width" not in stub and "total =" not in stub, stub
    assert stub.startswith("# Hint: guide the learner, do not solve.\n# Explain the task.\n")
    # kept lines keep their formatting: the two-line signature and the triple-quoted docstring as written
    assert "def area(height: int,\n         width: int) -> int:\n" in stub
    assert '    """Pixels of a (height, width) image."""' in stub
    namespace: dict = {}
    with pytest.raises(NotImplementedError, match="Hint: guide the learner"):
        exec(stub, namespace)  # the loose statement became a raise at the end of the cell
    for call in (lambda: namespace["area"](2, 3), lambda: namespace["Counter"]().add(1)):
        with pytest.raises(NotImplementedError, match="The hint is at the top of this cell"):
            call()
    assert stub.count("guide the learner") == 2, stub  # the comment, and the cell's last line: not every stub


def test_student_copy_badges_open_the_exercise_copy(tmp_path):
    base = "https://colab.research.google.com/github/me/repo/blob/main/notebooks/"
    svg = "(https://colab.research.google.com/assets/colab-badge.svg)"
    solutions = f"[![Open In Colab]{svg}]({base}00_demo.ipynb)"
    exercise = f"[![Open the exercise version in Colab]{svg}]({base}exercises/00_demo.ipynb)"
    source = tmp_path / "00_demo.py"
    cases = {  # title lines -> the copy's first lines
        f"# {solutions}\n#\n": f"# 00 · Demo\n\n{solutions.replace(base, base + 'exercises/')}\n\n",
        f"# {solutions} with the solutions ·\n# {exercise} the exercise version\n#\n": (
            f"# 00 · Demo\n\n{exercise} the exercise version\n\n"
        ),
        f"# {solutions}\n#\n# {exercise}\n#\n": f"# 00 · Demo\n\n{exercise}\n\n",
    }
    for badges, start in cases.items():
        source.write_text(f"# %% [markdown]\n# # 00 · Demo\n#\n{badges}# **What you will learn**\n\n# %%\nx = 1\n")
        copy = notebooks.student_notebook(source).cells[0].source
        links = re.findall(COLAB_LINK, copy)
        assert links == [f"{base}exercises/00_demo.ipynb"], copy  # one badge, to the copy itself
        assert copy == start + "**What you will learn**" and "solutions" not in copy, copy


def test_committed_student_copies_open_themselves_and_stub_every_solution():
    import nbformat

    for source in SOURCES:
        copy = nbformat.read(notebooks.student_path(source), as_version=4)
        links = re.findall(COLAB_LINK, copy.cells[0].source)
        assert links and all(link.endswith(f"/notebooks/exercises/{source.stem}.ipynb") for link in links), links
        exercises = [c for c in copy.cells if "exercise" in c.metadata.get("tags", [])]
        assert exercises and all("NotImplementedError" in c.source for c in exercises)
        assert not any("solution" in c.metadata.get("tags", []) for c in copy.cells)


def test_student_copy_leaves_the_answers_out(tmp_path):
    source = tmp_path / "00_demo.py"
    source.write_text(
        '# %% [markdown] tags=["answer"]\n# The answer is 42.\n\n# %% tags=["answer", "reading"]\n'
        'reading("42")\n\n# %% [markdown]\n# ### Next\n'
    )
    (heading,) = notebooks.student_notebook(source).cells
    assert heading.source == "### Next"


def test_committed_student_copies_hold_no_answers():
    for source in SOURCES:
        copy = nbformat.read(notebooks.student_path(source), as_version=4)
        assert not [c for c in copy.cells if notebooks.ANSWER_TAG in c.metadata.get("tags", [])], source
        assert not [c for c in copy.cells if "<details>" in c.source], source


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_discussion_after_a_self_check_is_tagged_answer(source):
    """Prose right after an exercise's self-check discusses its result: tagged, so the student copy folds it."""
    cells = jupytext.read(source).cells
    for index, cell in enumerate(cells):
        if notebooks.SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        check = next(k for k in range(index + 1, len(cells)) if cells[k].cell_type == "code")
        after, then = (cells[check + 1 : check + 3] + [None, None])[:2]
        introduces_code = then is not None and then.cell_type == "code"  # e.g. "your function on our data:"
        prose = after is not None and after.cell_type == "markdown" and not after.source.startswith("#")
        if prose and not introduces_code:
            assert notebooks.ANSWER_TAG in after.metadata.get("tags", []), (
                f"{source.name}: the prose after the self-check of cell {index} ({after.source[:60]!r}) discusses "
                "the result: tag it 'answer' (and start the next exercise in a cell of its own)"
            )


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_answer_cells_hold_no_heading(source):
    """The exercise copy folds an answer cell away: a heading in it would hide the next exercise's task."""
    for cell in jupytext.read(source).cells:
        if notebooks.ANSWER_TAG in cell.metadata.get("tags", []) and cell.cell_type == "markdown":  # not "# @title"
            heading = next((line for line in cell.source.splitlines() if line.startswith("#")), None)
            assert heading is None, f"{source.name}: the answer cell holds {heading!r}: start it in a cell of its own"


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_no_placeholder_is_left(source):
    for cell in jupytext.read(source).cells:
        assert not re.search(r"\bTBD\b|_TBD\b|\bTODO\b", cell.source), f"{source.name}: {cell.source[:80]!r}"


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_template_title_setup_settings_summary(source):
    cells = jupytext.read(source).cells
    title = cells[0].source
    assert cells[0].cell_type == "markdown" and title.startswith("# ")
    repository = REPO_URL.split("github.com/")[1]
    badge = f"colab.research.google.com/github/{repository}/blob/main/notebooks/{source.stem}.ipynb"
    assert badge in title, f"{source.name}: the title cell needs the Open-in-Colab badge for {badge}"
    assert "What you will learn" in title and "Runtime" in title

    setup = cells[1].source
    assert 'if "google.colab" in sys.modules' in setup, "the setup cell installs on Colab only"
    assert f'REPO, TAG = "{REPO_URL}"' in setup and "git+{REPO}" in setup and "-c /tmp/keep.txt" in setup
    for kept in ("torch", "torchvision", "ipywidgets"):
        assert f"{kept}==" in setup, f"the setup cell must pin Colab's own {kept} so pip never reinstalls it"
    assert not re.search(r"pip install[^\n]*\b(torch|torchvision|ipywidgets)\b(?!_)", setup)

    assert "settings" in cells[2].metadata.get("tags", []), "the third cell is the settings cell, tagged settings"
    assert any(c.cell_type == "markdown" and c.source.startswith("## Summary") for c in cells)


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_IDS)
def test_exercise_self_checks_pass_on_solutions_and_fail_on_stubs(source, capsys):
    pairs = notebooks.exercise_pairs(source)
    assert pairs, f"{source.name} has no exercise (a cell tagged 'solution' followed by a self-check)"
    for solution, check in pairs:
        namespace: dict = {}
        try:
            exec(solution, namespace)  # solution cells import what they use
        except NameError:
            continue  # an experiment on the notebook's own variables: nbmake runs it with its self-check
        capsys.readouterr()
        try:
            exec(check, namespace)
        except NameError:  # the cell goes on with the notebook's own variables (nbmake runs all of it) ...
            assert "all checks passed" in capsys.readouterr().out, "... but only after its self-check passed"
        stub_namespace: dict = {}
        with pytest.raises(NotImplementedError, match="Exercise"):
            exec(notebooks.stub_source(solution), stub_namespace)
            exec(check, stub_namespace)
