"""Open the built website in headless Chromium as a reader would (``make site-check``; not part of ``make test``).

Usage: python .ci/check_site.py build/site   (Chromium from $CHROMIUM, else `chromium` on the PATH)

Serves the folder on 127.0.0.1, then, starting from the landing page, visits every page it links to and checks:
each page loads; every same-site link (pages, downloads, assets) answers 200; every image drawn from the site
itself (figures are embedded data: URIs) decodes to a picture; each notebook page has at least one figure;
screenshots of the landing page and of the first notebook page are not blank (written to <site>/../site-check/).
Images from other sites (the Colab badges) are listed but not required: this machine may be offline.
"""

import functools
import os
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

from PIL import Image, ImageStat
from playwright.sync_api import sync_playwright

IMAGES_JS = """async () => Promise.all([...document.images].map(async (img) => {
    img.loading = "eager";  // lazy images below the fold would not load otherwise
    const ok = await img.decode().then(() => img.naturalWidth > 0, () => false);
    return {src: img.currentSrc || img.src, ok};
}))"""
LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def not_blank(path: Path) -> str | None:
    """None when the screenshot shows something; else what is wrong with it."""
    image = Image.open(path).convert("L")
    spread = ImageStat.Stat(image).stddev[0]
    colors = len(image.getcolors(maxcolors=1 << 16) or range(1 << 16))
    return None if spread > 10 and colors > 16 else f"{path} looks blank (stddev {spread:.1f}, {colors} greys)"


def check(site: Path, chromium: str) -> list[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    shots = site.parent / "site-check"
    shots.mkdir(exist_ok=True)
    problems, external, seen, todo = [], set(), set(), [base]
    checked_links: dict[str, int] = {}
    notebook_pages = figures = 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            while todo:
                url = todo.pop(0)
                if url in seen:
                    continue
                seen.add(url)
                response = page.goto(url, wait_until="load")
                if response is None or response.status != 200:
                    problems.append(f"{url}: HTTP {response and response.status}")
                    continue
                images = page.evaluate(IMAGES_JS)
                local = [i for i in images if i["src"].startswith((base, "data:"))]
                external.update(i["src"] for i in images if not i["src"].startswith((base, "data:")))
                problems += [f"{url}: image does not load: {i['src'][:80]}" for i in local if not i["ok"]]
                figures += sum(i["ok"] for i in local)
                if "/notebooks/" in urlparse(url).path:
                    notebook_pages += 1
                    if not any(i["ok"] for i in local):
                        problems.append(f"{url}: a notebook page without a single figure")
                    if notebook_pages == 1:
                        page.screenshot(path=shots / "first-notebook.png")
                        problems += filter(None, [not_blank(shots / "first-notebook.png")])
                if url == base:
                    page.screenshot(path=shots / "landing.png")
                    problems += filter(None, [not_blank(shots / "landing.png")])
                for href in page.evaluate(LINKS_JS):
                    target = urldefrag(href).url
                    if not target.startswith(base) or target in checked_links:
                        continue
                    status = page.request.get(target).status
                    checked_links[target] = status
                    if status != 200:
                        problems.append(f"{url}: broken link to {target} (HTTP {status})")
                    elif urlparse(target).path.endswith((".html", "/")):
                        todo.append(target)
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    print(f"{len(seen)} pages ({notebook_pages} notebooks), {figures} images drawn, {len(checked_links)} same-site "
          f"links answered; "
          f"screenshots in {shots}")  # fmt: skip
    if external:
        print(f"{len(external)} image(s) from other sites, not required here: {sorted(external)[:3]} ...")
    if notebook_pages == 0:
        problems.append("no notebook page was reached from the landing page")
    return problems


if __name__ == "__main__":
    site = Path(sys.argv[1])
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not (site / "index.html").is_file():
        sys.exit(f"{site}/index.html not found: run `make site` first")
    if chromium is None:
        sys.exit("Chromium not found: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome")
    problems = check(site, chromium)
    print("\n".join(problems) or "the site reads well: every page, image and link works")
    sys.exit(1 if problems else 0)
