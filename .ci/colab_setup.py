"""Run a notebook's Colab setup cell as Colab would, against this checkout, and check what pip kept.

Usage: python .ci/colab_setup.py notebooks/01_unet_from_scratch.py   (make test-colab, CI's colab job)

The setup cell's own code runs (with ``google.colab`` faked so that its Colab branch is taken): it writes the
constraints file from the installed torch, torchvision and ipywidgets. Its ``%pip install`` line runs as pip
with the package's git URL replaced by this checkout (the tag it names is not reachable from CI before the
release). Fails when pip changed any of the three.
"""

import shlex
import subprocess
import sys
import tempfile
import types
from importlib.metadata import version
from pathlib import Path

KEPT = ("torch", "torchvision", "ipywidgets")
ROOT = Path(__file__).resolve().parent.parent


def setup_cell(source: Path) -> str:
    """The second cell of a py:percent notebook (the first is the title)."""
    cells = source.read_text().split("\n# %%")
    return cells[2].split("\n", 1)[1]


def main(source: str) -> None:
    before = {name: version(name) for name in KEPT}
    keep = Path(tempfile.mkdtemp()) / "keep.txt"
    code, pip_lines = [], []
    for line in setup_cell(Path(source)).replace("/tmp/keep.txt", str(keep)).splitlines():
        if line.strip().startswith("# %pip"):
            pip_lines.append(line.strip().removeprefix("# %pip"))
        else:
            code.append(line)
    assert len(pip_lines) == 1, f"{source}: expected one '# %pip install' line in the setup cell, got {pip_lines}"
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    exec("\n".join(code), {})
    print(f"the setup cell wrote {keep}:\n{keep.read_text()}")
    args = [arg if "git+" not in arg else f"unet_tutorial @ {ROOT.as_uri()}" for arg in shlex.split(pip_lines[0])]
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)
    after = {name: version(name) for name in KEPT}
    changed = {name: (before[name], after[name]) for name in KEPT if before[name] != after[name]}
    if changed:
        sys.exit(f"pip changed Colab's own packages (before, after): {changed}")
    print(f"pip kept Colab's {before} and added unet_tutorial {version('unet_tutorial')}")


if __name__ == "__main__":
    main(*sys.argv[1:])
