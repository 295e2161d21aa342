"""safe_download.py and download.py against a local threaded HTTP server on 127.0.0.1 (Range support, a
connection it cuts once)."""

import hashlib
import io
import os
import sys
import tarfile
import threading
import types
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from unet_tutorial.course.download import kaggle_download
from unet_tutorial.course.safe_download import DownloadError, download_url, extract_archive, file_hash

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    cut_first = False  # send half of the body on the first request, then drop the connection
    no_length = False  # send no Content-Length (and close the connection to end the body)
    wrong_range = False  # answer a Range request with bytes from the start, labelled as such
    etag = '"v1"'
    ranges: ClassVar[list] = []
    if_ranges: ClassVar[list] = []

    def do_GET(self):
        start = 0
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        type(self).if_ranges.append(self.headers.get("If-Range"))
        if header and self.headers.get("If-Range") not in (None, self.etag):
            header = None  # the file changed since the client's partial copy: send all of it
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            if type(self).wrong_range:
                type(self).wrong_range, start = False, 0
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("ETag", self.etag)
        if type(self).no_length:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_first:
            type(self).cut_first = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.cut_first, _Handler.no_length, _Handler.wrong_range = False, False, False
    _Handler.etag, _Handler.ranges, _Handler.if_ranges = '"v1"', [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin", _Handler
    httpd.shutdown()
    httpd.server_close()


def test_download_and_checksum(server, tmp_path):
    url, _ = server
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    dest = download_url(url, tmp_path / "f.bin", sha256=sha, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()
    assert file_hash(dest, "md5") == hashlib.md5(PAYLOAD).hexdigest()


def test_resume_after_cut_connection(server, tmp_path):
    url, handler = server
    handler.cut_first = True
    dest = download_url(url, tmp_path / "f.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), retry_delay=0.01,
                        progress=False)  # fmt: skip
    assert dest.read_bytes() == PAYLOAD
    assert handler.ranges[0] is None
    assert handler.ranges[1] == f"bytes={len(PAYLOAD) // 2}-", "the second request must resume, not restart"


def test_resume_from_a_part_file_left_by_an_earlier_run_sends_if_range(server, tmp_path):
    url, handler = server
    handler.cut_first = True
    with pytest.raises(DownloadError, match="failed after 1 tries"):
        download_url(url, tmp_path / "f.bin", sha1=hashlib.sha1(PAYLOAD).hexdigest(), retries=0, progress=False)
    download_url(url, tmp_path / "f.bin", sha1=hashlib.sha1(PAYLOAD).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert handler.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"] and handler.if_ranges[1] == '"v1"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_stale_part_of_another_version_is_not_appended(server, tmp_path):
    url, handler = server
    (tmp_path / "f.bin.part").write_bytes(b"old version" * 100)
    (tmp_path / "f.bin.part.json").write_text('{"validator": "\\"v0\\"", "total": 1100}')
    with pytest.warns(UserWarning, match="without a checksum"):
        download_url(url, tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert handler.if_ranges == ['"v0"']  # the server saw the old version's tag and sent the new file whole
    (tmp_path / "g.bin.part").write_bytes(b"from who knows where")  # no sidecar: never resumed
    download_url(url, tmp_path / "g.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert (tmp_path / "g.bin").read_bytes() == PAYLOAD and handler.ranges[-1] is None


def test_a_206_from_the_wrong_offset_is_not_appended(server, tmp_path):
    url, handler = server
    handler.cut_first = handler.wrong_range = True
    with pytest.warns(UserWarning):
        download_url(url, tmp_path / "f.bin", retry_delay=0, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_a_cut_without_content_length_is_not_taken_as_complete(server, tmp_path):
    url, handler = server
    handler.cut_first = handler.no_length = True
    with pytest.warns(UserWarning):
        download_url(url, tmp_path / "f.bin", retry_delay=0, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    # the first body ended without a length: a Range request confirms (or completes) it
    assert handler.ranges[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_a_416_for_a_stale_larger_part_restarts(server, tmp_path):
    url, handler = server
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD + b"garbage")
    (tmp_path / "f.bin.part.json").write_text('{"validator": "\\"v1\\"", "total": null}')
    download_url(url, tmp_path / "f.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), retry_delay=0, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert handler.ranges == [f"bytes={len(PAYLOAD) + 7}-", None]


def test_offline_download_fails_with_one_sentence(tmp_path):
    with pytest.raises(DownloadError, match=r"failed after 2 tries .*check the network connection"):
        download_url(
            "http://127.0.0.1:9/x.zip", tmp_path / "x.zip", md5="0" * 32, retries=1, retry_delay=0, progress=False
        )


def test_checksum_mismatch_keeps_the_download_aside_and_says_both_hashes(server, tmp_path):
    url, handler = server
    got = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(DownloadError, match=f"expected sha256 {'0' * 64}, got {got}.*f.bin.sha256-mismatch"):
        download_url(url, tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin.sha256-mismatch"], "dest is never written"
    assert (tmp_path / "f.bin.sha256-mismatch").read_bytes() == PAYLOAD, "a good file under a wrong hash is kept"
    # A file already at dest that does not match is moved aside, not deleted, before downloading again.
    (tmp_path / "f.bin").write_bytes(b"mine")
    assert download_url(url, tmp_path / "f.bin", sha256=got, progress=False).read_bytes() == PAYLOAD
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("f.bin.sha256-mismatch")]
    assert sorted(p.read_bytes() for p in kept) == sorted([PAYLOAD, b"mine"]), "nothing is overwritten"


def test_existing_verified_file_is_kept(server, tmp_path):
    url, handler = server
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    download_url(url, tmp_path / "f.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert handler.ranges == [], "a verified file must not be downloaded again"


def test_http_404_is_clear(tmp_path):
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="HTTP 404"), pytest.warns(UserWarning, match="without a checksum"):
            download_url(f"http://127.0.0.1:{httpd.server_address[1]}/x", tmp_path / "x", progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_extract_zip_and_tar(tmp_path):
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("top/inner/a.txt", "hello")
    assert (extract_archive(zpath, tmp_path / "z") / "top/inner/a.txt").read_text() == "hello"
    tpath = tmp_path / "a.tar.gz"
    with tarfile.open(tpath, "w:gz") as t:
        info = tarfile.TarInfo("top/b.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    assert (extract_archive(tpath, tmp_path / "t") / "top/b.txt").read_text() == "hi"


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil_abs.txt"])
def test_zip_path_traversal_is_refused(tmp_path, name):
    zpath = tmp_path / "bad.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("fine.txt", "x")
        z.writestr(name, "evil")
    with pytest.raises(DownloadError, match="outside"):
        extract_archive(zpath, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "fine.txt").exists(), "nothing is extracted from a bad archive"


def test_tar_traversal_and_links_are_refused(tmp_path):
    for i, (kind, name, link) in enumerate([("file", "../evil.txt", ""), ("sym", "link", "../../etc/passwd"),
                                            ("sym", "abs", "/etc/passwd")]):  # fmt: skip
        tpath = tmp_path / f"bad{i}.tar"
        with tarfile.open(tpath, "w") as t:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, link
                t.addfile(info)
            else:
                info.size = 4
                t.addfile(info, io.BytesIO(b"evil"))
        with pytest.raises(DownloadError, match="outside"):
            extract_archive(tpath, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def _tar(path, members):
    with tarfile.open(path, "w") as archive:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link is None:
                info.size = 4
                archive.addfile(info, io.BytesIO(b"evil"))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, link
                archive.addfile(info)
    return path


def test_a_tar_symlink_chain_is_refused(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    chain = _tar(tmp_path / "chain.tar", [("a", "."), ("b", "a/a/a/../.."), ("b/x", None)])
    with pytest.raises(DownloadError, match=r"'b'.*passes through the link 'a'"):
        extract_archive(chain, tmp_path / "deep" / "er" / "out")
    through = _tar(tmp_path / "through.tar", [("a", "."), ("a/x", None)])
    with pytest.raises(DownloadError, match=r"'a/x', which passes through the link 'a'"):
        extract_archive(through, tmp_path / "out2")
    assert not (tmp_path / "deep" / "x").exists() and not (tmp_path / "x").exists()


def test_tar_links_are_refused_without_data_filter_and_filter_errors_are_clear(tmp_path, monkeypatch):
    linked = _tar(tmp_path / "linked.tar", [("file", None), ("alias", "file")])
    assert (extract_archive(linked, tmp_path / "ok") / "alias").read_bytes() == b"evil"
    monkeypatch.delattr(tarfile, "data_filter", raising=False)  # as on Python 3.10.0-3.10.11, 3.11.0-3.11.3
    with pytest.raises(DownloadError, match=r"'alias'; this Python has no tarfile.data_filter"):
        extract_archive(linked, tmp_path / "old")
    monkeypatch.undo()

    def refuse(self, *args, **kwargs):
        raise tarfile.OutsideDestinationError(self.getmember("file"), "/elsewhere/file")

    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    with pytest.raises(DownloadError, match=r"linked\.tar: .*'file'.*refusing to extract the rest"):
        extract_archive(linked, tmp_path / "filtered")


def test_zip_bombs_are_refused(tmp_path, monkeypatch):
    from unet_tutorial.course import safe_download

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(4 << 20))  # 4 MiB of zeros pack into about 4 KiB
    monkeypatch.setattr(safe_download, "ZIP_BOMB_MIN_BYTES", 1 << 20)
    with pytest.raises(DownloadError, match=r"bomb\.zip would unpack .*ratio .*zip bomb"):
        extract_archive(bomb, tmp_path / "out")
    monkeypatch.setattr(safe_download.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=1000))
    with pytest.raises(DownloadError, match=r"bomb\.zip unpacks to 0\.0 GB but .* has 0\.0 GB free"):
        extract_archive(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_tar_bombs_are_refused_like_zip_bombs_unless_allowed(tmp_path, monkeypatch):
    from unet_tutorial.course import safe_download

    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 4 << 20  # 4 MiB of zeros pack into about 4 KiB
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    monkeypatch.setattr(safe_download, "ZIP_BOMB_MIN_BYTES", 1 << 20)
    with pytest.raises(DownloadError, match=r"bomb\.tar\.gz would unpack .*ratio .*pass max_ratio=\d+") as error:
        extract_archive(bomb, tmp_path / "out")
    assert "\n" not in str(error.value) and not (tmp_path / "out" / "zeros.bin").exists()
    monkeypatch.setattr(safe_download.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=1000))
    with pytest.raises(DownloadError, match=r"bomb\.tar\.gz unpacks to 0\.0 GB but .* has 0\.0 GB free"):
        extract_archive(bomb, tmp_path / "out", max_ratio=float("inf"))
    monkeypatch.undo()
    assert (extract_archive(bomb, tmp_path / "out", max_ratio=float("inf")) / "zeros.bin").stat().st_size == 4 << 20


def _rot(path: Path) -> None:
    """Flip bytes in the middle of a file, as a failing disk or a bad copy does."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["a.zip", "a.tar.gz"])
def test_a_damaged_archive_is_moved_aside_with_one_line_saying_to_run_again(tmp_path, name):
    path = tmp_path / name
    payload = bytes(range(256)) * 64
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data/a.bin", payload)
    else:
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("data/a.bin")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    _rot(path)
    with pytest.raises(DownloadError, match=rf"{name} is damaged .*moved it to .*{name}\.corrupt.*run again") as error:
        extract_archive(path, tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not path.exists() and (tmp_path / f"{name}.corrupt").is_file()


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(DownloadError, match="neither a zip nor a tar"):
        extract_archive(tmp_path / "x.zip", tmp_path / "out")


@pytest.mark.parametrize("script", ["download_carvana.py", "download_ade20k.py", "make_sample_data.py"])
def test_data_scripts_help(script, monkeypatch, capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data_scripts" / script
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    assert "--root" in capsys.readouterr().out


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


FAKES = Path(__file__).resolve().parent / "kaggle_fakes"
ZIP = _zip_bytes({"train/abc_01.jpg": b"j" * 1000})


@pytest.fixture
def site(monkeypatch):
    """The fake clients of kaggle_fakes/ (kaggle 2.0.2, kagglehub 1.0.2) on sys.path, no credentials set."""
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m.split(".")[0] in ("kaggle", "kagglehub", "kaggle_site")]:
        monkeypatch.delitem(sys.modules, name)
    for key in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(key, raising=False)
    import kaggle_site

    kaggle_site.reset()
    kaggle_site.files.update({"train.zip": ZIP, "train_masks.csv": b"img,rle_mask\n"})
    return kaggle_site


@pytest.fixture(params=["kagglehub", "kaggle"])
def client(request, site, monkeypatch):
    """Each client in turn: with "kaggle", kagglehub does not import, as when only kaggle is installed."""
    if request.param == "kaggle":
        monkeypatch.setitem(sys.modules, "kagglehub", None)  # `import kagglehub` raises ImportError
    return request.param


def test_kaggle_download_moves_whole_files_into_dest(client, site, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    paths = kaggle_download("carvana-image-masking-challenge", ["train.zip", "train_masks.csv"], tmp_path)
    assert paths == [tmp_path / "train.zip", tmp_path / "train_masks.csv"]
    assert paths[0].read_bytes() == ZIP and not (tmp_path / ".kaggle-partial").exists()
    assert site.calls == [("carvana-image-masking-challenge", "train.zip"),
                          ("carvana-image-masking-challenge", "train_masks.csv")]  # fmt: skip


def test_kaggle_cut_download_is_never_taken_as_present(client, site, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "me")
    monkeypatch.setenv("KAGGLE_KEY", "key")
    site.cut.add("train.zip")
    with pytest.raises(ConnectionError):
        kaggle_download("c", ["train.zip"], tmp_path)
    assert not (tmp_path / "train.zip").exists(), "half a zip must not sit at the final name"
    assert kaggle_download("c", ["train.zip"], tmp_path)[0].read_bytes() == ZIP  # kaggle resumes, kagglehub redoes


def test_kaggle_403_explains_the_rules(client, site, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    site.refuse = 403
    with pytest.raises(PermissionError, match="accept the competition rules"):
        kaggle_download("carvana-image-masking-challenge", ["train.zip"], tmp_path)


def test_kaggle_without_credentials_gives_our_advice(client, site, tmp_path, capsys):
    # kaggle 2.0.2 prints and calls exit(1) on import; kagglehub raises UnauthenticatedError on download
    with pytest.raises(PermissionError, match="KAGGLE_API_TOKEN"):
        kaggle_download("c", ["train.zip"], tmp_path)


def test_kaggle_colab_secrets_are_passed_on(site, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # the kaggle client reads only the environment
    userdata = types.SimpleNamespace(get={"KAGGLE_API_TOKEN": "from-colab"}.__getitem__)  # others: KeyError
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert kaggle_download("c", ["train.zip"], tmp_path) == [tmp_path / "train.zip"]
    assert os.environ["KAGGLE_API_TOKEN"] == "from-colab" and "KAGGLE_KEY" not in os.environ


def test_kaggle_kept_zips_need_no_client_and_no_credentials(site, monkeypatch, tmp_path):
    for name in ("kagglehub", "kaggle"):
        monkeypatch.setitem(sys.modules, name, None)
    (tmp_path / "train.zip").write_bytes(ZIP)
    (tmp_path / "train_masks.csv").write_bytes(b"img,rle_mask\n")
    assert kaggle_download("c", ["train.zip", "train_masks.csv"], tmp_path) == [
        tmp_path / "train.zip",
        tmp_path / "train_masks.csv",
    ]


def test_kaggle_damaged_zip_is_downloaded_again(site, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    (tmp_path / "train.zip").write_bytes(ZIP[:100])  # a download cut by an older client
    assert kaggle_download("c", ["train.zip"], tmp_path)[0].read_bytes() == ZIP
    assert "not a whole zip" in capsys.readouterr().out


def test_kaggle_missing_package_says_how_to_install(site, monkeypatch, tmp_path):
    for name in ("kagglehub", "kaggle"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"unet_tutorial\[kaggle\]"):
        kaggle_download("c", ["train.zip"], tmp_path)


def _serve_bytes(body: bytes):
    class Handler(BaseHTTPRequestHandler):
        requests = 0

        def do_GET(self):
            type(self).requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, Handler


def test_fetch_ade20k_end_to_end_then_skips(monkeypatch, tmp_path):
    from unet_tutorial.course import download

    monkeypatch.setattr(download, "ADE20K_COUNTS", {"training": 2, "validation": 1})
    files = {
        f"ADEChallengeData2016/{kind}/{split}/ADE_{split[:5]}_{i:08d}.{ext}": b"x"
        for split, n in (("training", 2), ("validation", 1))
        for i in range(1, n + 1)
        for kind, ext in (("images", "jpg"), ("annotations", "png"))
    }
    body = _zip_bytes(files)
    httpd, handler = _serve_bytes(body)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ADEChallengeData2016.zip"
    try:
        folder = download.fetch_ade20k(tmp_path, url=url, sha1=hashlib.sha1(body).hexdigest())
        assert folder == tmp_path / "ADEChallengeData2016"
        assert (folder / "images" / "validation" / "ADE_valid_00000001.jpg").is_file()
        assert not (tmp_path / "ADEChallengeData2016.zip").exists(), "the archive is removed after unpacking"
        download.fetch_ade20k(tmp_path, url=url, sha1="0" * 40)  # complete: skipped, nothing fetched or checked
        assert handler.requests == 1

        with pytest.raises(DownloadError, match="(?i)sha1"):
            download.fetch_ade20k(tmp_path / "other", url=url, sha1="0" * 40)
        assert not (tmp_path / "other" / "ADEChallengeData2016").exists()
    finally:
        httpd.shutdown()
        httpd.server_close()


CARVANA_ARCHIVES = {
    "train.zip": {"train/abc_01.jpg": b"j", "train/abc_02.jpg": b"j"},
    "train_masks.zip": {"train_masks/abc_01_mask.gif": b"g", "train_masks/abc_02_mask.gif": b"g"},
    "train_masks.csv.zip": {"train_masks.csv": b"img,rle_mask\n"},
}


def test_fetch_carvana_unpacks_kaggle_archives(client, site, monkeypatch, tmp_path):
    from unet_tutorial.course import download

    monkeypatch.setattr(download, "CARVANA_COUNT", 2)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    site.files.update({name: _zip_bytes(files) for name, files in CARVANA_ARCHIVES.items()})
    assert download.fetch_carvana(tmp_path) == tmp_path
    assert {competition for competition, _ in site.calls} == {"carvana-image-masking-challenge"}
    assert (tmp_path / "train_masks" / "abc_02_mask.gif").is_file() and (tmp_path / "train_masks.csv").is_file()
    assert not list(tmp_path.glob("*.zip")), "archives are removed after unpacking"


def test_fetch_carvana_keeps_archives_in_their_own_folder_and_reuses_them(site, monkeypatch, tmp_path):
    from unet_tutorial.course import download

    monkeypatch.setattr(download, "CARVANA_COUNT", 2)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    site.files.update({name: _zip_bytes(files) for name, files in CARVANA_ARCHIVES.items()})
    drive, first, second = tmp_path / "drive", tmp_path / "session1", tmp_path / "session2"
    download.fetch_carvana(first, archives=drive)
    assert sorted(p.name for p in drive.glob("*.zip")) == sorted(CARVANA_ARCHIVES), "the zips stay in archives/"
    assert (first / "train" / "abc_01.jpg").is_file() and not list(first.glob("*.zip"))
    # A new Colab VM: no credentials, no client installed; the zips kept on Drive are unpacked, nothing downloaded
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    for name in ("kagglehub", "kaggle"):
        monkeypatch.setitem(sys.modules, name, None)
    download.fetch_carvana(second, archives=drive)
    assert (second / "train_masks.csv").is_file() and len(site.calls) == 3


def test_fetch_carvana_replaces_a_bit_rotted_zip_on_the_next_run(site, monkeypatch, tmp_path):
    from unet_tutorial.course import download

    monkeypatch.setattr(download, "CARVANA_COUNT", 2)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    site.files.update({name: _zip_bytes(files) for name, files in CARVANA_ARCHIVES.items()})
    archives = tmp_path / "drive"
    archives.mkdir()
    rotten = {"train/abc_01.jpg": b"j" * 4000, "train/abc_02.jpg": b"j" * 4000}
    (archives / "train.zip").write_bytes(_zip_bytes(rotten))
    _rot(archives / "train.zip")  # still "a zip" (its central directory is whole), but its data is not
    with pytest.raises(DownloadError, match=r"train\.zip is damaged.*run again"):
        download.fetch_carvana(tmp_path / "data", archives=archives)
    assert (archives / "train.zip.corrupt").is_file()
    assert download.fetch_carvana(tmp_path / "data", archives=archives) == tmp_path / "data"
    assert ("carvana-image-masking-challenge", "train.zip") in site.calls, "the damaged zip was fetched again"
