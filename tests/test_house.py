"""The house rules a test can see: no module over 400 lines, and the library never imports the course's tooling."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unet_tutorial"
MODULES = sorted(PACKAGE.rglob("*.py"))
COMMAND_LINE = {"cli.py", "cli_args.py", "cli_train.py", "cli_predict.py", "__main__.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.relative_to(PACKAGE)} has {lines} lines; split it at a seam (CONTRIBUTING.md)"


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent == PACKAGE], ids=lambda p: p.name)
def test_the_library_does_not_import_the_course(path):
    if path.name in COMMAND_LINE:
        return  # the command line offers the course's commands (data, grade)
    imported = {
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not [name for name in imported if name.startswith("unet_tutorial.course")], path.name
