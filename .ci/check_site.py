"""Check the built website as a reader would see it (``make site-check``; not part of ``make test``).

Usage: python .ci/check_site.py build/site [--shots build/site-shots] [--max-overflow 0.10]
(Chromium from $CHROMIUM, else `chromium` on the PATH)

1. Static checks over every file (tools/site_check.py, tested in tests/test_site_check.py): every same-site link
   names a file and its #anchor an id of that page; no table-of-contents entry without text; no absolute path of
   the build machine in a notebook's outputs; no image without its file.
2. In headless Chromium at 1280 px, from the landing page, every page it links to: the page loads and nothing it
   asks of the site fails; no script, style sheet or font comes from another site (MathJax is the site's own
   copy); MathJax typeset the math without an error and no raw LaTeX is left in the visible text; every image
   decodes; each notebook page has a figure; the code cells (solutions unfolded) that overflow their box are
   counted at 1280 and 1920 px, and more than --max-overflow of them at 1280 px fails. Screenshots of the landing
   page and of the first notebook page must not be blank (build/site-check/); with --shots, a full-page
   screenshot of every page at 1280 px goes there too.
"""

import argparse
import functools
import os
import shutil
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

from PIL import Image, ImageStat
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.site_check import check_files, raw_math  # noqa: E402

WIDTHS = (1280, 1920)
IMAGES_JS = """async () => Promise.all([...document.images].map(async (img) => {
    img.loading = "eager";  // lazy images below the fold would not load otherwise
    const ok = await img.decode().then(() => img.naturalWidth > 0, () => false);
    return {src: img.currentSrc || img.src, ok};
}))"""
LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"
MATH_JS = """async () => {
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return {loaded: false};
    await MathJax.startup.promise;
    return {loaded: true, typeset: document.querySelectorAll('mjx-container').length,
            errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || '?')};
}"""
# a code cell overflows when its code, or any box around it up to the cell, is wider than what it shows
OVERFLOW_JS = """() => {
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const over = (el) => el.scrollWidth > el.clientWidth + 1;
    const article = document.querySelector('.md-content__inner').getBoundingClientRect();
    return [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-editor pre')].map(pre => {
        const cell = pre.closest('.jp-Cell');
        let bad = cell.getBoundingClientRect().right > article.right + 1;
        for (let el = pre; el && el !== cell.parentElement; el = el.parentElement) bad = bad || over(el);
        return bad ? pre.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 70) : null;
    });
}"""


# code lines longer than a code cell holds at this width: they wrap (legible, but a reader would rather not)
WRAPPED_JS = """() => {
    let lines = 0, wrapped = 0, fits = 0;
    for (const pre of document.querySelectorAll('.jp-CodeCell .jp-InputArea-editor pre')) {
        const probe = document.createElement('span');
        probe.textContent = 'x'.repeat(100);
        probe.style.cssText = 'white-space: pre; position: absolute; visibility: hidden';
        pre.appendChild(probe);
        const char = probe.getBoundingClientRect().width / 100;
        probe.remove();
        const style = getComputedStyle(pre);
        fits = Math.floor((pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)) / char);
        for (const line of pre.textContent.replace(/\\n$/, '').split('\\n')) {
            lines += 1;
            wrapped += line.length > fits;
        }
    }
    return {lines, wrapped, fits};
}"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def not_blank(path: Path) -> str | None:
    """None when the screenshot shows something; else what is wrong with it."""
    image = Image.open(path).convert("L")
    spread = ImageStat.Stat(image).stddev[0]
    colors = len(image.getcolors(maxcolors=1 << 16) or range(1 << 16))
    return None if spread > 10 and colors > 16 else f"{path} looks blank (stddev {spread:.1f}, {colors} greys)"


def browse(site: Path, chromium: str, shots: Path | None, max_overflow: float) -> list[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    checks = site.parent / "site-check"
    checks.mkdir(exist_ok=True)
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    problems, external, seen, todo = [], set(), set(), [base + "index.html"]
    checked_links: dict[str, int] = {}
    cells = {width: 0 for width in WIDTHS}
    overflowing = {width: 0 for width in WIDTHS}
    lines = {width: 0 for width in WIDTHS}
    wrapped = {width: 0 for width in WIDTHS}
    fits = {width: 0 for width in WIDTHS}
    notebook_pages = figures = typeset = 0
    failed: list[str] = []

    def on_response(response):
        if response.url.startswith(base) and response.status >= 400:
            failed.append(f"{response.url} (HTTP {response.status})")

    def on_request(route):
        url = route.request.url
        if url.startswith((base, "data:")):
            return route.continue_()
        kind = route.request.resource_type
        external.add(url)
        if kind in ("script", "stylesheet", "font"):
            failed.append(f"a {kind} from another site: {url}")
        return route.abort()  # offline here; images from other sites (the Colab badges) are not required

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
            page.on("response", on_response)
            page.on("requestfailed", lambda r: r.url.startswith(base) and failed.append(f"{r.url} (failed)"))
            page.route("**/*", on_request)
            while todo:
                url = todo.pop(0)
                if url in seen:
                    continue
                seen.add(url)
                failed.clear()
                response = page.goto(url, wait_until="load")
                if response is None or response.status != 200:
                    problems.append(f"{url}: HTTP {response and response.status}")
                    continue
                name = urlparse(url).path.rsplit("/", 1)[-1].removesuffix(".html") or "index"
                math = page.evaluate(MATH_JS)
                if not math["loaded"]:
                    problems.append(f"{url}: MathJax did not load")
                else:
                    typeset += math["typeset"]
                    problems += [f"{url}: MathJax could not typeset: {error}" for error in math["errors"]]
                problems += [f"{url}: raw LaTeX left in the text: {snippet}" for snippet in raw_math(page.content())]
                images = page.evaluate(IMAGES_JS)
                local = [i for i in images if i["src"].startswith((base, "data:"))]
                problems += [f"{url}: image does not load: {i['src'][:80]}" for i in local if not i["ok"]]
                figures += sum(i["ok"] for i in local)
                if "/notebooks/" in urlparse(url).path:
                    notebook_pages += 1
                    if not any(i["ok"] for i in local):
                        problems.append(f"{url}: a notebook page without a single figure")
                    for width in WIDTHS:
                        page.set_viewport_size({"width": width, "height": 900})
                        found = page.evaluate(OVERFLOW_JS)
                        cells[width] += len(found)
                        overflowing[width] += sum(line is not None for line in found)
                        wrap = page.evaluate(WRAPPED_JS)
                        lines[width] += wrap["lines"]
                        wrapped[width] += wrap["wrapped"]
                        fits[width] = wrap["fits"]
                        if width == WIDTHS[0]:
                            wide = [line for line in found if line is not None]
                            print(f"{name}: {len(wide)} of {len(found)} code cells overflow at {width} px"
                                  + "".join(f"\n    {line}" for line in wide[:5]))  # fmt: skip
                    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
                    if notebook_pages == 1:
                        page.screenshot(path=checks / "first-notebook.png")
                        problems += filter(None, [not_blank(checks / "first-notebook.png")])
                if url == base + "index.html":
                    page.screenshot(path=checks / "landing.png")
                    problems += filter(None, [not_blank(checks / "landing.png")])
                if shots:
                    page.screenshot(path=shots / f"{name}.png", full_page=True)
                for href in page.evaluate(LINKS_JS):
                    target = urldefrag(href).url  # anchors: checked by the static checks
                    if not target.startswith(base) or target in checked_links:
                        continue
                    status = page.request.get(target).status
                    checked_links[target] = status
                    if status != 200:
                        problems.append(f"{url}: broken link to {target} (HTTP {status})")
                    elif urlparse(target).path.endswith((".html", "/")):
                        todo.append(target)
                problems += [f"{url}: {request}" for request in sorted(set(failed))]
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    print(f"{len(seen)} pages ({notebook_pages} notebooks), {figures} images drawn, {typeset} math expressions "
          f"typeset, {len(checked_links)} same-site links answered")  # fmt: skip
    for width in WIDTHS:
        print(
            f"at {width} px: {overflowing[width]} of {cells[width]} code cells overflow their box; {wrapped[width]} "
            f"of {lines[width]} code lines wrap (a cell holds {fits[width]} characters a line)"
        )
    print(f"screenshots in {checks}" + (f" and, full-page, in {shots}" if shots else ""))
    if external:
        print(f"{len(external)} request(s) to other sites, not answered here: {sorted(external)[:3]} ...")
    if notebook_pages == 0:
        problems.append("no notebook page was reached from the landing page")
    share = overflowing[WIDTHS[0]] / max(cells[WIDTHS[0]], 1)
    if share > max_overflow:
        problems.append(f"{share:.0%} of the code cells overflow at {WIDTHS[0]} px (at most {max_overflow:.0%})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path)
    parser.add_argument("--shots", type=Path, default=None, help="write a full-page screenshot of every page here")
    parser.add_argument("--max-overflow", type=float, default=0.10, help="share of code cells allowed to overflow")
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not (args.site / "index.html").is_file():
        sys.exit(f"{args.site}/index.html not found: run `make site` first")
    if chromium is None:
        sys.exit("Chromium not found: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome")
    roots = tuple(str(p) for p in (ROOT, Path.home(), Path(tempfile.gettempdir())) if len(p.parts) > 1)
    problems, counts = check_files(args.site, roots)
    print("static checks: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    problems += browse(args.site, chromium, args.shots, args.max_overflow)
    print("\n".join(problems) or "the site reads well: every page, link, anchor, image and formula works")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
