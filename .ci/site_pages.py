"""Stage the website's pages for mkdocs (``make site``): a landing page, one page per notebook, the README.

Usage: python .ci/site_pages.py build/notebooks build/site-src --mathjax build/vendor/mathjax-3.2.2.tgz

- ``notebooks/NN_slug.ipynb``: the executed notebooks (``make tutorial``'s output, or a smoke run's), cleaned for
  the web: paths of the machine that ran them shortened in the outputs (the repository -> ``.``, home -> ``~``,
  temporary folders -> ``$TMPDIR``); each progress-bar widget replaced by the text of its last state (so the page
  loads no widget JavaScript); which run the outputs come from (smoke or full, device, generated or real data)
  recorded in the notebook's metadata (``site.run``), which .ci/site_hooks.py shows under the title.
- ``index.md``: the landing page for learners and teachers (.ci/site/index.md), with the README's table of the
  notebooks; ``developers.md``: the README, its links to repository files pointed at GitHub.
- ``assets/``: the site's CSS and MathJax configuration (.ci/site/), and MathJax itself, unpacked from the npm
  package named by --mathjax (the Makefile fetches it with ``npm pack``; the site never loads it from a CDN).
"""

import argparse
import html
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent / "site"
# read, not imported: the site's environment has no torch
REPO_URL = re.search(r'^REPO_URL = "(.+)"$', (ROOT / "unet_tutorial" / "utils.py").read_text(), re.M).group(1)
REPO_NAME = REPO_URL.rstrip("/").rsplit("/", 1)[-1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MATHJAX_FILES = re.compile(r"package/(LICENSE|es5/tex-chtml-full\.js|es5/output/chtml/fonts/woff-v2/[\w-]+\.woff)")


def shorten_paths(text: str) -> str:
    """The paths of the machine that ran a notebook, as a reader would write them."""
    for path, short in ((ROOT, "."), (Path.home(), "~"), (Path(tempfile.gettempdir()), "$TMPDIR")):
        if len(path.parts) > 1:  # this machine's own, exactly
            text = re.sub(rf"{re.escape(str(path))}(?![\w-])", short, text)  # no backslash in short
    text = re.sub(rf"(?<![\w.~$/-])/[^\s'\"]*/{re.escape(REPO_NAME)}(?=/)", ".", text)  # a CI checkout
    text = re.sub(r"(?<![\w.~$/-])[^\s'\"]*/(site|dist)-packages/", r"\1-packages/", text)  # warnings' sources
    text = re.sub(r"(?<![\w.~$/-])(?:/home/[^/\s'\"]+|/Users/[^/\s'\"]+|/root)(?![\w-])", "~", text)
    return re.sub(r"(?<![\w.~$/-])(?:/tmp|/var/folders/[^/\s]+/[^/\s]+/T)(?![\w-])", "$TMPDIR", text)


def _map_text(value, fn):
    return fn(value) if isinstance(value, str) else [fn(line) for line in value]


def _widget_text(model_id: str, state: dict) -> str | None:
    """The text of a widget's last state: a tqdm bar (an HBox of HTML, progress, HTML) as tqdm prints it."""
    model = state.get(model_id)
    if model is None:
        return None
    name, values = model.get("model_name", ""), model.get("state", {})
    if name == "HBoxModel":
        parts = [_widget_text(child.removeprefix("IPY_MODEL_"), state) for child in values.get("children", [])]
        return "".join(p for p in parts if p is not None) if any(parts) else None
    if name in ("HTMLModel", "LabelModel"):
        return html.unescape(re.sub(r"<[^>]+>", "", str(values.get("value", "")))).replace("\xa0", " ")
    if name in ("FloatProgressModel", "IntProgressModel"):
        done = round(20 * values.get("value", 0) / (values.get("max") or 1))
        return "|" + "█" * done + " " * (20 - done) + "| "
    return None


def clean(notebook: dict) -> dict:
    """A notebook's outputs as the website shows them: short paths, widgets as text, no widget state."""
    state = notebook["metadata"].pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook["cells"]:
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                text = _widget_text(data.pop(WIDGET_VIEW)["model_id"], state)
                if text is not None:
                    data["text/plain"] = text
                if "text/plain" not in data:
                    continue
            if "text" in output:
                output["text"] = _map_text(output["text"], shorten_paths)
            for mime in data:
                if mime.startswith("text/"):
                    data[mime] = _map_text(data[mime], shorten_paths)
            if "traceback" in output:
                output["traceback"] = _map_text(output["traceback"], shorten_paths)
            outputs.append(output)
        if cell["cell_type"] == "code":
            cell["outputs"] = outputs
    return notebook


def _output_text(notebook: dict) -> str:
    texts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            value = output.get("text") or output.get("data", {}).get("text/plain", "")
            texts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(texts)


def describe_run(notebook: dict) -> str:
    """Which run the outputs come from, read from what the settings cell printed ("smoke mode: True, device: cpu")."""
    text = _output_text(notebook)
    found = re.search(r"smoke mode: (True|False), device: ([\w:]+)", text)
    if found is None:
        return "a run whose settings this page does not show"
    run = "a smoke run" if found.group(1) == "True" else "a full run"
    device = found.group(2)
    run += " on a CPU" if device == "cpu" else f" on a GPU ({device})" if device.startswith("cuda") else f" on {device}"
    if "Using GENERATED" in text:
        run += ", with generated data standing in for the real data set"
    elif re.search(r"real Carvana photos|^real data in|^real ADE20K in", text, re.M):
        run += ", on the real data set"
    return run


def _readme_links(readme: str, pages: set[str]) -> str:
    """The README's relative links: to a notebook, its page; to any other file, that file on GitHub."""

    def link(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z]+:|#", target) or target.split("#")[0] in pages:
            return match.group(0)
        return f"{match.group(1)}({REPO_URL}/blob/main/{target})"

    return re.sub(r"(\]\s*)\(([^)\s]+)\)", link, readme)


def stage(executed: Path, out: Path, mathjax: Path) -> list[Path]:
    notebooks = sorted(executed.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        sys.exit(f"no executed notebooks in {executed}: run `make tutorial` (or a smoke run with --out {executed})")
    shutil.rmtree(out, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    runs = []
    for path in notebooks:
        notebook = clean(json.loads(path.read_text(encoding="utf-8")))
        runs.append(describe_run(notebook))
        run = f"The outputs on this page come from {runs[-1]}."
        if runs[-1].startswith("a smoke run"):
            run += " A smoke run takes tiny data and a few batches to check that every cell runs: its numbers are not"
            run += " results (the text quotes those of a full run). Run the notebook to get your own."
        notebook["metadata"]["site"] = {"run": run}
        (out / "notebooks" / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    pages = {f"notebooks/{p.name}" for p in notebooks}

    readme = _readme_links((ROOT / "README.md").read_text(encoding="utf-8"), pages)
    (out / "developers.md").write_text("---\ntitle: Developers\n---\n\n" + readme, encoding="utf-8")
    table = re.search(r"^\| # \| Notebook .*?\n(?=\n)", readme, re.M | re.S)
    if table is None:
        sys.exit("README.md: the table of the notebooks ('| # | Notebook ...') is missing; the landing page shows it")
    landing = (SITE / "index.md").read_text(encoding="utf-8")
    by_run: dict[str, list[str]] = {}
    for path, run in zip(notebooks, runs):
        by_run.setdefault(run, []).append(path.name[:2])
    run = "; ".join(
        f"{', '.join(numbers[:-1])} and {numbers[-1]}: {run}".removeprefix(" and ") for run, numbers in by_run.items()
    )
    fields = {"notebooks": table.group(0), "run": run, "repo_url": REPO_URL}
    (out / "index.md").write_text(re.sub(r"\{(\w+)\}", lambda m: {**fields, "repo_name": REPO_NAME}[m[1]], landing))

    assets = out / "assets"
    assets.mkdir()
    for asset in SITE.iterdir():
        if asset.suffix in (".css", ".js"):
            shutil.copy2(asset, assets / asset.name)
    with tarfile.open(mathjax) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and MATHJAX_FILES.fullmatch(m.name)]
        for member in members:
            inside = Path(member.name).relative_to("package/es5" if "/es5/" in member.name else "package")
            target = assets / "mathjax" / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
    if not (assets / "mathjax" / "tex-chtml-full.js").is_file():
        sys.exit(f"{mathjax}: no package/es5/tex-chtml-full.js in it (is it MathJax 3's npm package?)")
    return notebooks


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("executed", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mathjax", type=Path, required=True, help="MathJax 3's npm package (npm pack mathjax@3)")
    args = parser.parse_args()
    staged = stage(args.executed, args.out, args.mathjax)
    print(f"staged a landing page, the README and {len(staged)} notebook(s) in {args.out}")
