"""Downloads that survive real networks, and archives that cannot write outside their folder.

``download_url`` streams to ``<dest>.part`` (resuming with an HTTP Range request after a cut connection) and
renames to ``dest`` only once the checksum matches, so a file at ``dest`` is always complete. ``extract_archive``
refuses archive members that would land outside the target folder, links through links, devices, and zip bombs.
Nothing here knows a dataset: ``download.py`` uses these for Carvana and ADE20K. Left out: mirrors, parallel
chunks, cloud buckets. Taught in: no notebook cell; notebooks 03 and 05 call it through ``download.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import lzma
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path

from tqdm.auto import tqdm

CHUNK = 1 << 20
ZIP_BOMB_MIN_BYTES = 64 << 20  # below this a high compression ratio is harmless (and common in tests)


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm``: anything hashlib knows, e.g. "sha256", "sha1", "md5")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected(sha256: str | None, sha1: str | None, md5: str | None) -> tuple[str, str] | None:
    given = [(name, value.lower()) for name, value in (("sha256", sha256), ("sha1", sha1), ("md5", md5)) if value]
    if len(given) > 1:
        raise ValueError("give at most one of sha256, sha1, md5")
    return given[0] if given else None


class DownloadError(RuntimeError):
    """A download or an archive that cannot be used: the network gave up, the bytes are wrong, or unsafe."""


def download_url(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    *,
    sha1: str | None = None,
    md5: str | None = None,
    retries: int = 5,
    retry_delay: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resuming after cut connections and checking the checksum.

    An existing ``dest`` that matches the checksum (or any existing ``dest`` when no checksum is given) is kept
    and nothing is downloaded; one that does not match is moved aside (``<dest>.sha256-mismatch``) and downloaded
    again. A download that does not match is kept as ``<dest>.sha256-mismatch`` (the expected checksum may be the
    wrong one) and the error says both checksums; no file is written at ``dest``.
    Without a checksum a warning says so, and completeness rests on the server's length: a response without
    one is confirmed by a Range request that must answer "nothing left" (416).

    Args:
        url: http(s) URL.
        dest: the final file path; the partial download lives at ``<dest>.part``, and what identifies its
            version (ETag or Last-Modified, and the total size) at ``<dest>.part.json``, so that a resume never
            appends bytes of another version of the file (the request carries ``If-Range``).
        sha256, sha1, md5: the expected hex digest (give at most one; publishers differ in which they print).
        retries: how many times to reconnect (and resume) after a network error or a cut connection.
        retry_delay: seconds before the first retry; doubles after each.
        timeout: seconds without data before a connection counts as failed.
        progress: show a tqdm progress bar.

    Returns:
        ``dest`` as a Path.
    Raises:
        DownloadError: HTTP 4xx, still failing after ``retries``, or a checksum mismatch.
    """
    dest = Path(dest)
    expected = _expected(sha256, sha1, md5)
    if dest.is_file():
        if expected is None or file_hash(dest, expected[0]) == expected[1]:
            return dest
        aside = move_aside(dest, f".{expected[0]}-mismatch")
        print(f"{dest} does not match its {expected[0]} checksum: kept it as {aside.name}, downloading it again")
    if expected is None:
        warnings.warn(
            f"downloading {url} without a checksum: a damaged or substituted file cannot be detected; "
            "pass sha256= (or sha1=/md5=) when the publisher prints one",
            stacklevel=2,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            if _fetch(url, part, timeout, progress):
                break
            problem = "the connection closed before the whole file arrived"
        except urllib.error.HTTPError as err:
            if err.code < 500 and err.code != 429:  # 4xx will not change by retrying
                raise DownloadError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
            problem = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            problem = str(getattr(err, "reason", None) or err) or type(err).__name__
        if attempt == retries:
            raise DownloadError(
                f"downloading {url} failed after {retries + 1} tries ({problem}); check the "
                "network connection and run again to resume"
            )
        time.sleep(retry_delay * 2**attempt)
    if expected is not None:
        got = file_hash(part, expected[0])
        if got != expected[1]:
            aside = move_aside(part, f".{expected[0]}-mismatch", dest)
            _restart(part)
            raise DownloadError(
                f"checksum mismatch for {url}: expected {expected[0]} {expected[1]}, got {got}; {dest} was not "
                f"written and the download is kept as {aside}. If the expected checksum is out of date (the "
                f"publisher changed the file), check the file and rename it to {dest.name}; else delete it and "
                "try again, from the official URL."
            )
    part.replace(dest)
    _restart(part)  # only the sidecar is left to remove
    return dest


def move_aside(path: Path, tag: str, name_for: Path | None = None) -> Path:
    """Rename ``path`` to ``<name_for><tag>`` (default: ``path`` itself), never over another file: a number is
    added when that name is taken. Returns the new path."""
    base = (name_for or path).with_name((name_for or path).name + tag)
    target, n = base, 1
    while target.exists() or target.is_symlink():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    path.rename(target)
    return target


def _restart(part: Path) -> None:
    """Forget a partial download: the bytes and the sidecar that says which version they belong to."""
    part.unlink(missing_ok=True)
    part.with_name(part.name + ".json").unlink(missing_ok=True)


def _content_range(response_headers) -> tuple[int | None, int | None]:
    """(first byte, total size) of a Content-Range header "bytes 100-999/1000" or "bytes */1000"."""
    value = (response_headers.get("Content-Range") or "").strip()
    if not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.split("-")[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> bool:
    """Append the rest of ``url`` to ``part``; True once the file is complete, False to try again."""
    sidecar = part.with_name(part.name + ".json")
    known = json.loads(sidecar.read_text()) if sidecar.is_file() and part.exists() else None
    if part.exists() and known is None:  # a .part of unknown origin: its bytes may be another version's
        _restart(part)
    known = known or {}
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if offset and known.get("validator"):
        headers["If-Range"] = known["validator"]  # the server sends the whole file (200) if it changed
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: whole only if the sizes agree
            total = _content_range(err.headers)[1]
            if (total if total is not None else known.get("total")) == offset:
                return True
            _restart(part)  # a stale .part longer than the file (or unknown): start again
            return False
        raise
    with response:
        length = response.headers.get("Content-Length")
        if response.status == 206:
            first, total = _content_range(response.headers)
            if first != offset or (known.get("total") not in (None, total)):
                _restart(part)  # bytes from the wrong place, or a file of another size: never append them
                return False
        else:  # 200: the server ignores Range, or the file changed (If-Range): start again from the first byte
            if offset and length is None:
                raise DownloadError(
                    f"{url} neither sends its length nor answers Range requests, so a cut "
                    "download cannot be told from a whole one; pass its sha256 to check it"
                )
            offset, total = 0, int(length) if length is not None else None
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            sidecar.write_text(json.dumps({"validator": validator, "total": total}))
        chunked = "chunked" in (response.headers.get("Transfer-Encoding") or "").lower()
        with (
            open(part, "ab" if offset else "wb") as f,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                 desc=part.name.removesuffix(".part"), disable=not progress) as bar,
        ):  # fmt: skip
            while block := response.read(CHUNK):
                f.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None:
        return size == total
    # No length: a chunked body ends with an explicit last chunk (a cut raises IncompleteRead); otherwise only
    # a follow-up Range request answered with 416 tells a whole file from one cut short.
    return chunked


def _check_member(name: str, dest: Path, archive: Path, links: set[str] = frozenset()) -> None:
    target = (dest / name).resolve()
    if os.path.isabs(name) or not target.is_relative_to(dest):
        raise DownloadError(
            f"archive {archive} holds {name!r}, which would land outside {dest}; refusing to extract it"
        )
    parts = Path(name).parts
    for i in range(1, len(parts)):  # a member under a link member goes wherever the link points
        if str(Path(*parts[:i])) in links:
            raise DownloadError(
                f"archive {archive} holds {name!r}, which passes through the link "
                f"{str(Path(*parts[:i]))!r}; refusing to extract it"
            )


def _check_link_target(member: tarfile.TarInfo, archive: Path, links: set[str]) -> None:
    """Refuse a link whose target walks through another link (``b -> a/a/../..`` with ``a -> .``): resolved on
    disk before extraction, such a chain looks harmless but points wherever the links make it."""
    here = str(Path(member.name).parent) if member.issym() else "."
    for part in Path(member.linkname).parts:
        here = os.path.normpath(os.path.join(here, part))
        if here in links:
            raise DownloadError(
                f"archive {archive} holds link {member.name!r} -> {member.linkname!r}, which "
                f"passes through the link {here!r}; refusing to extract it"
            )


def _check_size(unpacked: int, path: Path, dest: Path, max_ratio: float) -> None:
    """Refuse a compression bomb: more unpacked bytes than the disk holds, or a ratio no real data has."""
    packed = max(path.stat().st_size, 1)
    free = shutil.disk_usage(dest).free
    if unpacked > free:
        raise DownloadError(
            f"archive {path} unpacks to {unpacked / 1e9:.1f} GB but {dest} has "
            f"{free / 1e9:.1f} GB free; free some space or extract elsewhere"
        )
    if unpacked > ZIP_BOMB_MIN_BYTES and unpacked / packed > max_ratio:
        kind = "zip" if zipfile.is_zipfile(path) else "tar"
        raise DownloadError(
            f"archive {path} would unpack {packed} bytes into {unpacked} (ratio {unpacked / packed:.0f}, above "
            f"max_ratio={max_ratio:.0f}): a {kind} bomb, not a dataset, so it was not extracted; if you trust "
            f"it, pass max_ratio={unpacked / packed + 1:.0f}"
        )


def extract_archive(path: str | Path, dest: str | Path, *, max_ratio: float = 200.0) -> Path:
    """Extract a .zip or a tar (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) into ``dest``.

    Every member is checked first: absolute paths, ``..`` escapes, links pointing outside ``dest`` and members
    reached through a link member are refused (DownloadError naming the member) and nothing is extracted. Tar
    links are refused altogether on Pythons without ``tarfile.data_filter`` (before 3.10.12 / 3.11.4). An archive
    that would not fit on the disk, or that expands more than ``max_ratio`` times (past 64 MB), is refused. A
    damaged archive (bad CRC, broken compressed data: a cut copy or a failing disk) is moved aside to
    ``<path>.corrupt``, so that the next run downloads it again instead of failing on it forever.

    Args:
        max_ratio: the most unpacked bytes per archive byte; raise it (e.g. ``float("inf")``) for an archive you
            trust that compresses better than real data does.
    Raises:
        DownloadError: an unsafe member, a compression bomb, a damaged archive, or not an archive.

    Returns:
        ``dest`` as a Path.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    try:
        if zipfile.is_zipfile(path):
            _extract_zip(path, dest, max_ratio)
        elif tarfile.is_tarfile(path):
            _extract_tar(path, dest, max_ratio)
        else:
            raise DownloadError(
                f"{path} is neither a zip nor a tar archive (or it is damaged: delete it and download again)"
            )
    except _DAMAGED as error:
        aside = move_aside(path, ".corrupt")
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise DownloadError(
            f"archive {path} is damaged ({reason}); moved it to {aside}: run again to download it afresh "
            f"(and delete {aside.name} once that works)"
        ) from None
    return dest


# What a damaged archive raises while it is read: bad CRCs and headers, broken deflate/gzip/bz2/xz streams.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, lzma.LZMAError, tarfile.ReadError)


def _extract_zip(path: Path, dest: Path, max_ratio: float) -> None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            _check_member(name, dest, path)
        _check_size(sum(info.file_size for info in archive.infolist()), path, dest, max_ratio)
        for info in archive.infolist():  # each member's CRC is checked as it is read
            try:
                archive.extract(info, dest)
            except _DAMAGED:
                if not info.is_dir():  # never leave a damaged member behind, to be counted as a good file
                    (dest / info.filename).unlink(missing_ok=True)
                raise


def _extract_tar(path: Path, dest: Path, max_ratio: float) -> None:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        while archive.fileobj.read(CHUNK):  # to the end: gzip and xz check their CRC there, before anything is written
            pass
        links = {str(Path(m.name)) for m in members if m.issym() or m.islnk()}
        for member in members:
            _check_member(member.name, dest, path, links)
            if member.issym() or member.islnk():
                _check_link_target(member, path, links)
                if not hasattr(tarfile, "data_filter"):
                    raise DownloadError(
                        f"archive {path} holds link {member.name!r}; this Python has no "
                        "tarfile.data_filter to extract links safely (upgrade to 3.10.12+, "
                        "3.11.4+ or 3.12+)"
                    )
                base = (dest / member.name).parent if member.issym() else dest
                if os.path.isabs(member.linkname) or not (base / member.linkname).resolve().is_relative_to(dest):
                    raise DownloadError(f"archive {path} holds link {member.name!r} -> {member.linkname!r} "
                                        f"pointing outside {dest}; refusing to extract it")  # fmt: skip
            elif not (member.isfile() or member.isdir()):
                raise DownloadError(f"archive {path} holds {member.name!r}, a device or fifo; refusing to extract it")
        _check_size(sum(m.size for m in members if m.isfile()), path, dest, max_ratio)
        try:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.12 (and patched 3.10/3.11): a second safety net
                archive.extractall(dest, members, filter="data")
            else:
                archive.extractall(dest, members)
        except tarfile.ReadError:
            raise  # damaged data: extract_archive moves the archive aside
        except tarfile.TarError as error:  # FilterError and its kinds: the filter caught what we missed
            raise DownloadError(f"archive {path}: {error}; refusing to extract the rest") from None
