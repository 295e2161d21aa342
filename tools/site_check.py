"""Static checks of the built website, as pure functions over HTML text: no browser, no mkdocs, stdlib only.

``make site-check`` runs them over every page of build/site (``check_files``) and, in headless Chromium
(.ci/check_site.py), runs ``raw_math`` over each page once MathJax has typeset it, and measures code overflow.
tests/test_site_check.py plants each failure in a few lines of HTML. Checked here:

- every same-site link points at a file of the site, and its ``#anchor`` at an id of that page;
- no table-of-contents entry (``a.md-nav__link``) without text;
- no absolute path of the build machine (``/home/...``, ``/tmp/...``) in a notebook's outputs;
- every image has a source that exists: a file of the site or a ``data:`` URI with a payload;
- no raw ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` left in visible text (after typesetting).
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
NOT_TEXT = {"script", "style", "template", "svg", "textarea"}  # never shown as text
LITERAL = {"code", "pre", "kbd", "samp", "mjx-container"}  # shown as typed: math delimiters are meant there
BLOCK = {"p", "div", "li", "td", "th", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "br", "pre", "table", "section"}
OUTPUT_CLASS = "jp-OutputArea-output"  # nbconvert's class for one output of a code cell
TOC_CLASS = "md-nav__link"  # mkdocs-material's class for an entry of the navigation and the table of contents

RAW_MATH = re.compile(
    r"\$\$.+?\$\$"  # display math
    r"|\\\(.+?\\\)|\\\[.+?\\\]"  # \( inline \) and \[ display \]
    r"|\$[^\s$][^$\n]*?(?<![\s\\])\$",  # $inline$: no space inside the dollars, so "$5 and $10" is not math
    re.S,
)
# paths only a build machine has: home folders, temporary folders (GitHub's runners live in /home/runner)
LOCAL_PATH = re.compile(
    r"(?<![\w.~$/-])(?:/(?:home|Users|root|tmp|private|var/folders|mnt|work)(?![\w-])(?:/[^\s'\"<>(),;]*[^\s'\"<>(),;.:])?"
    r"|[A-Za-z]:\\Users\\[^\s'\"<>]*)"
)


@dataclass
class Link:
    href: str
    text: str
    classes: list[str]


@dataclass
class Scan:
    """What the checks need from one page."""

    ids: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    text: str = ""  # visible text, outside code and typeset math, one line per block
    output_text: str = ""  # the text of the notebook's outputs, code included


class _Scanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scan = Scan()
        self.stack: list[tuple[str, bool, bool, bool]] = []  # (tag, hidden, literal, in output)
        self.text: list[str] = []
        self.output: list[str] = []
        self.link: tuple[dict, list[str]] | None = None

    def _state(self) -> tuple[bool, bool, bool]:
        return self.stack[-1][1:] if self.stack else (False, False, False)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.scan.ids.add(attrs[key])
        if tag == "img":
            self.scan.images.append(attrs.get("src") or "")
        if tag == "a" and attrs.get("href") is not None:
            self.link = (attrs, [])
        if tag in BLOCK:
            self.text.append("\n")
            self.output.append("\n")
        if tag in VOID:
            return
        hidden, literal, output = self._state()
        output = output or OUTPUT_CLASS in (attrs.get("class") or "").split()
        self.stack.append((tag, hidden or tag in NOT_TEXT, literal or tag in LITERAL, output))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "a" and self.link is not None:
            attrs, parts = self.link
            text = " ".join("".join(parts).split())
            self.scan.links.append(Link(attrs["href"], text, (attrs.get("class") or "").split()))
            self.link = None
        if tag in BLOCK:
            self.text.append("\n")
            self.output.append("\n")
        for depth in range(len(self.stack) - 1, -1, -1):  # close what the page left open inside this element
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                break

    def handle_data(self, data):
        hidden, literal, output = self._state()
        if hidden:
            return
        if self.link is not None:
            self.link[1].append(data)
        if output:
            self.output.append(data)
        if not literal:
            self.text.append(data)

    def close(self):
        super().close()
        self.scan.text = "".join(self.text)
        self.scan.output_text = "".join(self.output)


def scan(html: str | Scan) -> Scan:
    """Parse one page: its ids, links, images, visible text and the text of its outputs (a Scan is returned as is)."""
    if isinstance(html, Scan):
        return html
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.scan


def raw_math(html: str | Scan) -> list[str]:
    """The LaTeX left untypeset in the visible text of a page (code and typeset math are not looked at)."""
    return [" ".join(m.group(0).split())[:80] for m in RAW_MATH.finditer(scan(html).text)]


def empty_toc_entries(html: str | Scan) -> list[str]:
    """The targets of table-of-contents and navigation entries that show no text."""
    return [link.href for link in scan(html).links if TOC_CLASS in link.classes and not link.text.strip(" ¶")]


def local_paths(html: str | Scan, roots: tuple[str, ...] = ()) -> list[str]:
    """Absolute paths of the build machine shown in a notebook's outputs (``roots``: more prefixes to look for)."""
    text = scan(html).output_text
    found = [m.group(0) for m in LOCAL_PATH.finditer(text)]
    found += [root for root in roots if len(root) > 1 and re.search(rf"(?<![\w.~$/-]){re.escape(root)}(?![\w-])", text)]
    return sorted(set(found))


def _data_uri_ok(src: str) -> bool:
    header, _, payload = src.partition(",")
    if not payload.strip():
        return False
    if header.endswith(";base64"):
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return False
    return True


def _resolve(page: str, path: str, base: str = "/") -> str:
    """The site-relative path that a link's path names: relative to ``page``, or absolute under the site's ``base``.

    A path outside the site starts with "../".
    """
    if not path:
        return page
    if path.startswith("/"):
        if not path.startswith(base):
            return "../" + path.lstrip("/")
        path = "/" + path[len(base) :]
    target = posixpath.normpath(posixpath.join("/" if path.startswith("/") else posixpath.dirname(page), path))
    target = target.lstrip("/") if path.startswith("/") else target
    if path.endswith("/") or posixpath.basename(path) in (".", ".."):  # a folder: its index.html
        target = posixpath.join("" if target == "." else target, "index.html")
    return target


def missing_images(html: str | Scan, page: str, files: set[str]) -> list[str]:
    """Images of ``page`` (a site-relative path) whose source is empty, broken or not a file of the site."""
    problems = []
    for src in scan(html).images:
        if src.startswith("data:"):
            if not _data_uri_ok(src):
                problems.append(f"{src[:40]}... (an empty or undecodable data URI)")
        elif not src.strip():
            problems.append("an image without a source")
        elif not urlsplit(src).scheme and not src.startswith("//"):  # other sites' images: not checked here
            if _resolve(page, unquote(urlsplit(src).path)) not in files:
                problems.append(f"{src} (no such file in the site)")
    return problems


def broken_links(pages: dict[str, str | Scan], files: set[str], base: str = "/") -> list[str]:
    """Same-site links that name no file, or an ``#anchor`` that no element of the target page has.

    Args:
        pages: site-relative path of each HTML page -> its HTML (or its Scan).
        files: site-relative paths of every file of the site (pages included).
        base: the site's path on its server ("/unet-tutorial/" on GitHub Pages), for links that start with "/".
    """
    scans = {path: scan(html) for path, html in pages.items()}
    problems = []
    for page, page_scan in scans.items():
        for link in page_scan.links:
            parts = urlsplit(link.href)
            if parts.scheme or parts.netloc or link.href.startswith("//"):
                continue  # another site (or mailto:, javascript:)
            target = _resolve(page, unquote(parts.path), base)
            if target not in files and target + "/index.html" in files:
                target += "/index.html"
            if target.startswith("../") or target not in files:
                problems.append(f"{page}: link to {link.href} names no file of the site")
            elif parts.fragment and target in scans and unquote(parts.fragment) not in scans[target].ids:
                problems.append(f"{page}: link to {link.href}: no element with id {unquote(parts.fragment)!r}")
    return problems


def check_files(site: Path, roots: tuple[str, ...] = ()) -> tuple[list[str], dict[str, int]]:
    """Every static check over a built site; returns the problems and what was counted.

    The site's path on its server comes from the landing page's canonical link (mkdocs writes it from site_url).
    """
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    pages = {path: scan((site / path).read_text(encoding="utf-8")) for path in sorted(files) if path.endswith(".html")}
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', (site / "index.html").read_text(encoding="utf-8"))
    base = posixpath.dirname(urlsplit(canonical.group(1)).path).rstrip("/") + "/" if canonical else "/"
    problems = broken_links(pages, files, base)
    links = anchors = toc = 0
    for path, page_scan in pages.items():
        links += len(page_scan.links)
        anchors += sum("#" in link.href and not urlsplit(link.href).scheme for link in page_scan.links)
        toc += sum(TOC_CLASS in link.classes for link in page_scan.links)
        problems += [f"{path}: table-of-contents entry without text (to {h})" for h in empty_toc_entries(page_scan)]
        problems += [f"{path}: a local path in an output: {p}" for p in local_paths(page_scan, roots)]
        problems += [f"{path}: missing image: {p}" for p in missing_images(page_scan, path, files)]
    return problems, {"pages": len(pages), "links": links, "anchors": anchors, "toc entries": toc}
