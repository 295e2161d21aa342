"""The prose gate (tools/prose.py): markdown never types a number a run produces; readings render them."""

import nbformat
import pytest

from tools import notebooks, prose


def _source(tmp_path, *cells: str):
    """A py:percent notebook of the given cells (each starts with its own `# %%` line)."""
    path = tmp_path / "00_demo.py"
    path.write_text("\n\n".join(cells) + "\n")
    return path


def _markdown(text: str, tags: str = "") -> str:
    header = "# %% [markdown]" + (f" tags={tags}" if tags else "")
    return header + "\n" + "\n".join(f"# {line}".rstrip() for line in text.splitlines())


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(kind, text[start:end]) for kind, start, end in prose.run_dependent_numbers(text)]


@pytest.mark.parametrize(
    "text, found",
    [
        ("The model reached a Dice of 0.913 here.", ("decimal", "0.913")),
        ("Both fail, at 0.15 and 0.2.", ("decimal", "0.15")),
        ("Weighting lowers it (.85 plain).", ("decimal", ".85")),
        ("An epoch takes 14 s on this CPU.", ("time", "14 s")),
        ("An epoch takes 5-6 s, the next 14s.", ("time", "5-6 s")),
        ("It runs in about 2 minutes.", ("time", "2 minutes")),
        ("Training for 1.5 h is enough.", ("time", "1.5 h")),
        ("The frozen epoch: about 3 s/epoch.", ("time", "3 s")),
        ("The rare classes hold 4.8% of the pixels.", ("percentage", "4.8%")),
        ("Three poolings keep 89 % of it.", ("percentage", "89 %")),
        ("It is right 12 percent of the time.", ("percentage", "12 percent")),
        ("**wall, 15.8%** of the pixels", ("percentage", "15.8%")),
    ],
)
def test_a_planted_number_of_each_kind_is_found(text, found):
    assert _kinds(text)[0] == found


@pytest.mark.parametrize(
    "text",
    [
        "The U-Net has 31,037,698 parameters; Carvana has 5,088 images of 1918x1280 pixels, 318 cars x 16 views.",
        "Installed from v0.1.0 with torch 2.11.0, numpy 1.24.4, Python 3.10 and torch 2.14 (bf16 from 8.0).",
        "A loss with `lr=3e-3`, `threshold=0.45` and ``x = 0.25``, or $\\alpha = 0.25$ and $$p = 0.005$$.",
        "```python\nfit(model, epochs=3)  # 14 s\n```",
        "The paper ([arXiv:1505.04597](https://arxiv.org/abs/1505.04597)) and <https://example.org/0.913>.",
        "ImageNet has 1.28 million photos; a 90-minute lab; 150 classes; compute capability 7.5.",
        "The published Dice is 0.988 <!-- constant --> and the split keeps 2% <!-- constant --> back.",
        "FCN about **0.36**<!-- constant --> on ADE20K.",
        '<img src="fig.png" width="0.75">',
        "## 7. Train, and resume (core, ~15 min)",
        "## 9. The leak (optional, ~10 min)",
    ],
)
def test_constants_code_math_links_and_marked_numbers_pass(text):
    assert prose.run_dependent_numbers(text) == []


def test_a_percentage_is_one_number_not_also_a_decimal():
    assert _kinds("4.85% of pixels") == [("percentage", "4.85%")]


def test_prose_problems_name_the_file_the_cell_and_the_number_in_context(tmp_path):
    path = _source(
        tmp_path,
        _markdown("# Title\n\nRuntime: 67 s measured."),
        "# %%\nx = 0.913  # code cells are not prose",
        _markdown("In our run the Dice was 0.913, and 4.8% of pixels were wrong."),
        _markdown("| paper | Dice |\n|---|---|\n| U-Net | 0.988 |", tags='["reference"]'),
    )
    problems = prose.prose_problems(path)
    assert problems == [
        f'{path}: cell 0: "Runtime: 67 s measured." (time 67 s)',
        f'{path}: cell 2: "In our run the Dice was 0.913, and 4.8% of pixels were wrong." (decimal 0.913); '
        f'"In our run the Dice was 0.913, and 4.8% of pixels were wrong." (percentage 4.8%)',
    ]


def test_prose_reads_exercise_copies_and_refuses_a_missing_file(tmp_path, capsys):
    path = _source(tmp_path, _markdown("Clean prose with 3 epochs."), "# %%\nx = 1")
    copy = notebooks.make_student(path, tmp_path / "exercises")
    assert prose.prose_problems(copy) == []
    assert prose.main(["prose", str(path), str(copy)]) == 0
    assert "2 notebook(s)" in capsys.readouterr().out
    missing = tmp_path / "99_none.py"
    assert prose.prose_problems(missing) == [
        f"{missing}: no such notebook (give notebooks/NN_slug.py sources or .ipynb files)"
    ]


def test_the_gate_fails_from_the_command_line(tmp_path, capsys):
    path = _source(tmp_path, _markdown("About 2 minutes."))
    assert notebooks.main(["prose", str(path)]) == 1
    out = capsys.readouterr()
    assert f'{path}: cell 0: "About 2 minutes." (time 2 minutes)' in out.out and "reference" in out.err


# Readings: executed notebooks (make tutorial), planted with nbformat.


def _executed(tmp_path, *outputs_per_cell, tags=("reading",), run=True):
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("# Title"))
    for outputs in outputs_per_cell:
        cell = nbformat.v4.new_code_cell("display(Markdown(f'Dice {dice:.3f}'))", metadata={"tags": list(tags)})
        cell.outputs, cell.execution_count = outputs, 1 if run else None
        notebook.cells.append(cell)
    path = tmp_path / "00_demo.ipynb"
    nbformat.write(notebook, path)
    return path


def _markdown_output(text: str):
    return nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": "<Markdown>"})


def test_readings_pass_when_each_ran_and_shows_numbers(tmp_path):
    good = _markdown_output("Dice **0.913**, $\\frac{2|A \\cap B|}{|A|+|B|}$, `{'lr': 3e-3}`, 14 s per epoch")
    assert prose.reading_problems(_executed(tmp_path, [good], [good])) == []
    assert notebooks.main(["readings", str(tmp_path / "00_demo.ipynb")]) == 0


@pytest.mark.parametrize(
    "outputs, run, message",
    [
        ([], False, "cell 1: the reading did not run"),
        ([nbformat.v4.new_output("stream", name="stdout", text="Dice 0.9\n")], True, "displayed no Markdown"),
        ([nbformat.v4.new_output("error", ename="NameError", evalue="dice", traceback=[])], True, "raised NameError"),
        ([_markdown_output("Dice {dice:.3f} after training")], True, 'placeholder "Dice {dice:.3f} after'),
        ([_markdown_output("Dice nan after training")], True, 'placeholder "Dice nan after training"'),
        ([_markdown_output("Dice TBD")], True, 'placeholder "Dice TBD"'),
    ],
)
def test_readings_fail_when_not_run_not_markdown_or_holding_a_placeholder(tmp_path, outputs, run, message):
    problems = prose.reading_problems(_executed(tmp_path, outputs, run=run))
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith(f"{tmp_path / '00_demo.ipynb'}: cell 1: ")


def test_only_reading_cells_are_checked(tmp_path):
    assert prose.reading_problems(_executed(tmp_path, [], tags=(), run=False)) == []
