"""release.py and the version: one URL and one version in every badge and setup cell (``make badges``), and the
setup cell's choice of what to install (the release's tag once published, else main), run against local git
repositories through ``.ci/colab_setup.py`` with a fake pip (``make test-colab`` runs the real one)."""

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from tools import release
from unet_tutorial import __version__
from unet_tutorial.utils import REPO_URL

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
TAG = f"v{__version__}"


def _load_colab_setup():
    spec = importlib.util.spec_from_file_location("colab_setup", ROOT / ".ci" / "colab_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab_setup = _load_colab_setup()


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebooks_are_up_to_date_with_make_badges(source):
    text = source.read_text()
    assert release.render(text, source.stem) == text, f"{source.name}: run `make badges`"
    assert f"blob/main/notebooks/exercises/{source.stem}.ipynb" in text
    assert f'REPO, TAG = "{REPO_URL}", "{TAG}"' in text


def test_every_notebook_has_the_same_setup_cell():
    # CI's colab job runs notebook 01's setup cell (.ci/colab_setup.py); the others must be the same cell.
    cells = {p.name: colab_setup.setup_cell(p) for p in SOURCES}
    assert len(set(cells.values())) == 1, f"setup cells differ: {sorted(cells)}"


def test_setup_cell_never_imports_the_package_it_installs():
    code = release.setup_cell()
    assert not re.search(r"^\s*(import|from) unet_tutorial\b", code, re.M), code
    assert "torch==" in code and "torchvision==" in code and "ipywidgets==" in code  # Colab's own, kept


def test_render_rewrites_an_old_notebook_and_is_idempotent():
    old = (
        "# %% [markdown]\n# # 09 · Demo\n#\n"
        "# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/someone/fork/blob/main/notebooks/09_demo.ipynb)\n#\n"
        "# %%\nif True:\n"
        '    # %pip install -q -c /tmp/keep.txt "unet_tutorial @ git+https://github.com/someone/fork@main"\n'
        "\n# %%\nx = 1\n"
    )
    new = release.render(old, "09_demo", version="1.2.3")
    assert release.render(new, "09_demo", version="1.2.3") == new
    assert "someone/fork" not in new and new.count("colab-badge.svg") == 2
    assert release.colab_url("notebooks/exercises/09_demo.ipynb") in new
    assert f"# %%\n{release.setup_cell('1.2.3')}\n# %%\nx = 1\n" in new
    assert f'REPO, TAG = "{REPO_URL}", "v1.2.3"' in new
    assert new.startswith("# %% [markdown]\n# # 09 · Demo\n#\n# [![Open In Colab]")


@pytest.mark.parametrize(
    "text",
    [
        "# %%\nx = 1\n",  # no badge, no setup cell
        "# %% [markdown]\n# [![Open In Colab](https://colab.research.google.com/x)](y)\n\n# %%\nx = 1\n",  # no %pip
    ],
)
def test_render_refuses_a_notebook_without_badge_or_setup_cell(text):
    with pytest.raises(ValueError, match="09_demo: expected an Open-in-Colab badge line .* setup cell"):
        release.render(text, "09_demo")


def test_version_has_one_source():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "unet_tutorial.__version__"' in pyproject
    assert '\nversion = "' not in pyproject, "the version lives in unet_tutorial/__init__.py only"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


# The setup cell against local repositories: a release commit, then main one commit ahead of it.


@pytest.fixture
def repo(tmp_path):
    source = tmp_path / "checkout"
    source.mkdir()
    colab_setup.git(source, "init", "-q", "-b", "work")
    (source / ".gitignore").write_text("build/\n")
    (source / "pyproject.toml").write_text("[project]\nname = 'unet_tutorial'\n")
    (source / "new.py").write_text("x = 1\n")  # untracked, not ignored: travels
    (source / "build").mkdir()
    (source / "build" / "out.txt").write_text("ignored\n")
    colab_setup.git(source, "add", ".gitignore", "pyproject.toml")
    return colab_setup.local_repo(tmp_path / "repo", files_from=source)


class FakePip:
    """Records the %pip line and does what pip would record: a dist-info with direct_url.json in ``site``."""

    def __init__(self, site: Path):
        self.site, self.calls = site, []

    def __call__(self, args: str) -> None:
        self.calls.append(args)
        spec = re.search(r'"unet_tutorial @ git\+(file://[^@"]+)@([^"]+)"', args)
        url, ref = spec.groups()
        commit = colab_setup.git(Path(url.removeprefix("file://")), "rev-parse", f"{ref}^{{commit}}")
        info = self.site / f"unet_tutorial-{__version__}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: unet_tutorial\nVersion: {__version__}\n")
        record = {"url": url, "vcs_info": {"vcs": "git", "requested_revision": ref, "commit_id": commit}}
        (info / "direct_url.json").write_text(json.dumps(record))
        importlib.invalidate_caches()


def _run(repo: Path, tmp_path: Path, monkeypatch) -> tuple[FakePip, str]:
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))  # found before this checkout's own unet_tutorial
    pip = FakePip(site)
    printed = colab_setup.run_cell(release.setup_cell(), repo.as_uri(), tmp_path / "keep.txt", pip)
    return pip, printed


def test_local_repo_holds_the_checkouts_files_on_main(repo):
    files = colab_setup.git(repo, "ls-files").split()
    assert sorted(files) == [".gitignore", "new.py", "pyproject.toml"]
    assert colab_setup.git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_setup_cell_installs_main_while_the_tag_is_not_published(repo, tmp_path, monkeypatch):
    pip, printed = _run(repo, tmp_path, monkeypatch)
    assert pip.calls == [f'install -q -c {tmp_path / "keep.txt"} "unet_tutorial @ git+{repo.as_uri()}@main"']
    main = colab_setup.git(repo, "rev-parse", "main")
    assert printed == f"unet_tutorial {__version__} from main, commit {main} ({TAG} is not published yet)\n"
    keep = (tmp_path / "keep.txt").read_text().splitlines()
    assert [line.split("==")[0] for line in keep] == ["torch", "torchvision", "ipywidgets"]


@pytest.mark.parametrize("annotated", [True, False], ids=["annotated", "lightweight"])
def test_setup_cell_installs_the_tag_once_published(repo, tmp_path, monkeypatch, annotated):
    colab_setup.git(repo, "tag", *(["-a", "-m", TAG] if annotated else []), TAG, "HEAD~1")
    pip, printed = _run(repo, tmp_path, monkeypatch)
    assert pip.calls[0].endswith(f'"unet_tutorial @ git+{repo.as_uri()}@{TAG}"')
    released = colab_setup.git(repo, "rev-parse", "HEAD~1")  # the tagged commit, not main's and not the tag object
    assert printed == f"unet_tutorial {__version__} from {TAG}, commit {released}\n"


def test_another_releases_tag_does_not_count(repo, tmp_path, monkeypatch):
    colab_setup.git(repo, "tag", f"{TAG}-rc1")
    colab_setup.git(repo, "tag", f"{TAG}.1")
    pip, _ = _run(repo, tmp_path, monkeypatch)
    assert pip.calls[0].endswith('@main"')


def test_the_ipynb_setup_cell_runs_under_ipython(repo, tmp_path, monkeypatch):
    # The paired .ipynb holds `%pip install ... {REPO}@{ref}` inside an if block: IPython must expand it.
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    notebook = nbformat.read(ROOT / "notebooks" / f"{SOURCES[0].stem}.ipynb", as_version=4)
    code = colab_setup.point_cell(notebook.cells[1].source, repo.as_uri(), tmp_path / "keep.txt")
    assert "    %pip install -q -c " in code
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    shell = InteractiveShell.instance()
    fake = FakePip(site)
    monkeypatch.setitem(shell.magics_manager.magics["line"], "pip", fake)
    result = shell.run_cell(code, silent=True)
    result.raise_error()
    assert fake.calls == [f'install -q -c {tmp_path / "keep.txt"} "unet_tutorial @ git+{repo.as_uri()}@main"']
    assert shell.user_ns["ref"] == "main"
