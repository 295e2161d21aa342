"""Stage the website's pages for mkdocs (``make site``): the README as the landing page, one page per notebook.

Usage: python .ci/site_pages.py build/notebooks build/site-src

Copies the executed notebooks (``make tutorial``'s output, or a smoke run's) into ``<out>/notebooks/`` and the
README into ``<out>/index.md``. The README's links to the notebooks then point at their pages; its other
relative links (files of the repository) are rewritten to GitHub, where they live.
"""

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# read, not imported: the site's environment has no torch
REPO_URL = re.search(r'^REPO_URL = "(.+)"$', (ROOT / "unet_tutorial" / "utils.py").read_text(), re.M).group(1)


def stage(executed: Path, out: Path) -> list[Path]:
    notebooks = sorted(executed.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        sys.exit(f"no executed notebooks in {executed}: run `make tutorial` (or a smoke run with --out {executed})")
    shutil.rmtree(out, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    for notebook in notebooks:
        shutil.copy2(notebook, out / "notebooks" / notebook.name)
    pages = {f"notebooks/{p.name}" for p in notebooks}

    def link(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z]+:|#", target) or target.split("#")[0] in pages:
            return match.group(0)
        return f"{match.group(1)}({REPO_URL}/blob/main/{target})"

    readme = (ROOT / "README.md").read_text()
    (out / "index.md").write_text(re.sub(r"(\]\s*)\(([^)\s]+)\)", link, readme))
    return notebooks


if __name__ == "__main__":
    staged = stage(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"staged the README and {len(staged)} notebook(s) in {sys.argv[2]}")
