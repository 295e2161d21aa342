"""mkdocs hooks for ``make site`` (named in .ci/mkdocs.yml): what mkdocs-jupyter's pages lack.

- ``site_url`` and the repository link from ``unet_tutorial/utils.py``'s REPO_URL (the GitHub Pages address);
- on each notebook page: a bar under the title (download the .ipynb, open it in Colab, the exercise version, which
  run its outputs come from), each exercise's solution folded away, and nbconvert's MathJax 2 loader removed
  (the site ships MathJax 3: .ci/site/mathjax.js);
- the table of contents built from the page's own headings, so that each entry links to an id that exists and
  keeps its inline code (mkdocs-jupyter builds it from a Markdown copy whose ids differ).
"""

import html
import json
import re
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from mkdocs.structure.toc import get_toc

ROOT = Path(__file__).resolve().parent.parent
# read, not imported: the site's environment has no torch
REPO_URL = re.search(r'^REPO_URL = "(.+)"$', (ROOT / "unet_tutorial" / "utils.py").read_text(), re.M).group(1)
OWNER, NAME = REPO_URL.rstrip("/").split("/")[-2:]
SITE_URL = f"https://{OWNER.lower()}.github.io/{NAME}/"
COLAB = f"https://colab.research.google.com/github/{OWNER}/{NAME}/blob/main/notebooks"
SOLUTION_SUMMARY = "Our solution: try the exercise first (the exercise version leaves this cell to you)"
ANSWER_SUMMARY = "Our run's answer: open it once you have your own"  # the words of tools/notebooks.py
TOC_LEVELS = ("h2", "h3")  # the h1 is the page's title


def on_config(config):
    config["site_url"] = SITE_URL
    config["repo_url"] = REPO_URL
    config["repo_name"] = f"{OWNER}/{NAME}"
    notebooks = sorted(p.name for p in (Path(config["docs_dir"]) / "notebooks").glob("*.ipynb"))
    config["nav"] = [
        {"Home": "index.md"},
        {"Notebooks": [f"notebooks/{name}" for name in notebooks]},
        {"Developers": "developers.md"},
    ]
    return config


def on_page_content(content, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return content
    soup = BeautifulSoup(content, "html.parser")
    for script in soup.find_all("script"):  # nbconvert's MathJax 2: an empty src and its x-mathjax-config
        if script.get("src") == "" or script.get("type") == "text/x-mathjax-config":
            script.decompose()
    _fold(soup, "celltag_solution", SOLUTION_SUMMARY)
    _fold(soup, "celltag_answer", ANSWER_SUMMARY)
    title = soup.find("h1")
    if title is not None:  # under the title cell, which has the Colab badges and what you will learn
        (title.find_parent("div", class_="jp-Cell") or title).insert_after(BeautifulSoup(_bar(page), "html.parser"))
    page.toc = get_toc(_toc_tokens(soup))
    return str(soup)


def _fold(soup: BeautifulSoup, cell_class: str, summary: str) -> None:
    """Put every cell with this class into a closed <details> whose <summary> says what it holds."""
    for cell in soup.select(f"div.jp-Cell.{cell_class}"):
        details = soup.new_tag("details", attrs={"class": "site-fold"})
        label = soup.new_tag("summary")
        label.string = summary
        cell.wrap(details)
        details.insert(0, label)


def _bar(page) -> str:
    """The links and the run's description shown under a notebook page's title."""
    name = Path(page.file.src_uri).name
    meta = json.loads(Path(page.file.abs_src_path).read_text(encoding="utf-8"))["metadata"].get("site", {})
    links = [
        f'<a href="{name}" download>Download this notebook (.ipynb, with these outputs)</a>',
        f'<a href="{COLAB}/{name}">Open it in Colab</a>',
        f'<a href="{COLAB}/exercises/{name}">the exercise version in Colab</a>',
        f'<a href="{REPO_URL}/blob/main/notebooks/{Path(name).with_suffix(".py").name}">its source on GitHub</a>',
    ]
    run = html.escape(meta.get("run", "Outputs from a run of this notebook."))
    return f'<div class="site-bar"><p>{" · ".join(links)}</p><p class="site-run">{run}</p></div>'


def _title_html(heading: Tag) -> str:
    """A heading's text as HTML for the table of contents: inline code kept, the ¶ anchor left out."""
    parts = []
    for child in heading.children:
        if isinstance(child, NavigableString):
            parts.append(html.escape(str(child)))
        elif "anchor-link" in (child.get("class") or []):
            continue
        elif child.name == "code":
            parts.append(f"<code>{html.escape(child.get_text())}</code>")
        else:
            parts.append(html.escape(child.get_text()))
    return "".join(parts).strip()


def _toc_tokens(soup: BeautifulSoup) -> list[dict]:
    """Nested table-of-contents tokens (mkdocs' format) from the page's h2 and h3 that have an id."""
    tokens: list[dict] = []
    stack: list[dict] = []
    for heading in soup.find_all(TOC_LEVELS):
        if not heading.get("id"):
            continue
        token = {"level": int(heading.name[1]), "id": heading["id"], "name": _title_html(heading), "children": []}
        while stack and stack[-1]["level"] >= token["level"]:
            stack.pop()
        (stack[-1]["children"] if stack else tokens).append(token)
        stack.append(token)
    return tokens
