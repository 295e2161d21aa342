"""Run a notebook's Colab setup cell as Colab would, against a git repository, and check what pip installed.

Usage (make test-colab, CI's colab job; both run it in their own environment, .venv-colab):

    python .ci/colab_setup.py notebooks/01_unet_from_scratch.py
    python .ci/colab_setup.py notebooks/01_unet_from_scratch.py --repo URL --expect REF

The setup cell's own code runs, with ``google.colab`` faked so that its Colab branch is taken: it writes the
constraints file from the installed torch, torchvision and ipywidgets, asks the repository (git ls-remote)
whether the release's tag exists, and its ``%pip install`` line runs as pip in this Python, with ``{REPO}``
and ``{ref}`` expanded as IPython expands them. Without ``--repo`` it runs twice against a local git repository
made from this checkout's files (its tag pushed not yet, then pushed, on an older commit than main) and checks
each time that pip installed the ref and commit the cell should have chosen and printed, and that pip kept
Colab's torch, torchvision and ipywidgets. pip installs into the Python that runs this script, after removing
any unet_tutorial there (as on a fresh Colab runtime): never run it in your development environment (it refuses
when the package is installed there in editable mode).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
import tempfile
import types
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

KEPT = ("torch", "torchvision", "ipywidgets")
ROOT = Path(__file__).resolve().parent.parent
_REPO_LINE = re.compile(r'^(\s*REPO, TAG = )"[^"]*", "([^"]*)"', re.M)
_GIT = ["git", "-c", "user.name=colab_setup", "-c", "user.email=colab_setup@localhost", "-c", "commit.gpgsign=false"]


def setup_cell(source: Path) -> str:
    """The second cell of a py:percent notebook (the first is the title), without its ``# %%`` line."""
    cells = Path(source).read_text().split("\n# %%")
    return cells[2].split("\n", 1)[1]


def cell_tag(cell: str) -> str:
    """The release tag the setup cell looks for (its ``REPO, TAG = ...`` line)."""
    match = _REPO_LINE.search(cell)
    if not match:
        raise SystemExit('the setup cell has no line REPO, TAG = "<url>", "v<version>": run `make badges`')
    return match.group(2)


def point_cell(cell: str, repo: str, keep: Path) -> str:
    """The setup cell with REPO pointed at ``repo`` and the constraints file at ``keep``."""
    return _REPO_LINE.sub(lambda m: f'{m.group(1)}"{repo}", "{m.group(2)}"', cell).replace("/tmp/keep.txt", str(keep))


def cell_as_python(cell: str, repo: str, keep: Path) -> str:
    """The setup cell as plain Python (see ``point_cell``), its ``# %pip ...`` line a call ``__pip__(f"...")``:
    an f-string expands its {expressions} as IPython expands them in a magic's line."""
    lines = []
    for line in point_cell(cell, repo, keep).splitlines():
        indent, _, magic = line.partition("# %pip ")
        lines.append(f"{indent}__pip__(f{magic!r})" if magic and not indent.strip() else line)
    if sum(line.lstrip().startswith("__pip__(") for line in lines) != 1:
        raise SystemExit("the setup cell must hold exactly one '# %pip install' line")
    return "\n".join(lines)


def run_cell(cell: str, repo: str, keep: Path, pip) -> str:
    """Execute the setup cell as on Colab (google.colab faked) with ``pip(args)`` for its %pip line.

    Returns what the cell printed (it is echoed too).
    """
    code = cell_as_python(cell, repo, keep)
    saved = sys.modules.get("google.colab")
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(code, {"__pip__": pip, "__name__": "__main__"})
    finally:
        if saved is None:
            del sys.modules["google.colab"]
        else:
            sys.modules["google.colab"] = saved
    print(out.getvalue(), end="")
    return out.getvalue()


def pip(args: str) -> None:
    """What ``%pip <args>`` does: pip in this Python."""
    subprocess.run([sys.executable, "-m", "pip", *shlex.split(args)], check=True)


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*_GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def local_repo(dest: Path, files_from: Path = ROOT) -> Path:
    """A git repository at ``dest`` holding the files of the checkout ``files_from`` (tracked, and untracked
    ones git does not ignore) on branch main, in two commits (the second empty), so that a tag can sit on an
    older commit than main."""
    listed = git(files_from, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        if (files_from / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes((files_from / name).read_bytes())
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "the release")
    git(dest, "commit", "-q", "--allow-empty", "-m", "after the release")
    return dest


def installed() -> dict:
    """pip's record of how unet_tutorial was installed (direct_url.json), or {} when it is not installed."""
    try:
        return json.loads(distribution("unet_tutorial").read_text("direct_url.json") or "{}")
    except PackageNotFoundError:
        return {}


def check_case(cell: str, repo: str, expect_ref: str, expect_commit: str | None = None) -> None:
    """Run the cell against ``repo`` with real pip; fail unless ``expect_ref`` (at ``expect_commit``) came,
    the cell printed it, and pip kept Colab's own packages."""
    before = {name: version(name) for name in KEPT}
    keep = Path(tempfile.mkdtemp()) / "keep.txt"
    printed = run_cell(cell, repo, keep, pip)
    print(f"the setup cell wrote {keep}:\n{keep.read_text()}")
    vcs = installed().get("vcs_info", {})
    commit = vcs.get("commit_id", "")
    if vcs.get("requested_revision") != expect_ref or (expect_commit and commit != expect_commit):
        sys.exit(f"expected unet_tutorial from {expect_ref} {expect_commit or ''}, pip recorded {installed()}")
    if f"from {expect_ref}, commit {commit}" not in printed:
        sys.exit(f"the setup cell should have printed 'from {expect_ref}, commit {commit}', it printed {printed!r}")
    after = {name: version(name) for name in KEPT}
    changed = {name: (before[name], after[name]) for name in KEPT if before[name] != after[name]}
    if changed:
        sys.exit(f"pip changed Colab's own packages (before, after): {changed}")
    print(f"ok: {expect_ref} at {commit[:12]} installed; pip kept Colab's {before}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a notebook source, e.g. notebooks/01_unet_from_scratch.py")
    parser.add_argument("--repo", help="the repository to install from (default: local copies of this checkout)")
    parser.add_argument("--expect", help="with --repo: the ref the cell must install (main or v<version>)")
    args = parser.parse_args(argv)
    cell = setup_cell(args.source)
    if installed().get("dir_info", {}).get("editable"):
        sys.exit("colab_setup.py: unet_tutorial is installed in editable mode here; run it in a throwaway "
                 "environment (make test-colab builds .venv-colab)")  # fmt: skip
    if args.repo:
        if installed():
            pip("uninstall -y -q unet_tutorial")
        check_case(cell, args.repo, args.expect or cell_tag(cell))
        return
    tag = cell_tag(cell)
    repo = local_repo(Path(tempfile.mkdtemp(prefix="unet_tutorial_repo_")))
    for case in ("untagged", "tagged"):
        if case == "tagged":
            git(repo, "tag", "-a", tag, "-m", tag, "HEAD~1")  # as CONTRIBUTING.md says, on an older commit here
        if installed():  # a fresh Colab runtime has none, and pip would keep one of the same version
            pip("uninstall -y -q unet_tutorial")
        expect_ref = tag if case == "tagged" else "main"
        print(f"== {case}: {repo.as_uri()} (expect {expect_ref})", flush=True)
        check_case(cell, repo.as_uri(), expect_ref, git(repo, "rev-parse", f"{expect_ref}^{{commit}}"))


if __name__ == "__main__":
    main()
