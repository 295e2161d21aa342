"""Where the real datasets come from: Carvana from Kaggle, ADE20K SceneParsing from MIT.

``kaggle_download`` wraps kagglehub (or the official kaggle client), reads Colab secrets, and turns a 401/403
into advice (a token, the competition's rules accepted once). ``fetch_carvana`` and ``fetch_ade20k`` download,
check and unpack each dataset into the layout ``data.py`` reads, skipping whatever is already complete. The
transfers themselves (resume, checksum, safe extraction) are ``safe_download.py``'s. Left out: the Kaggle test
set (no masks) and ADE20K's full 3,688-class release.
Taught in: notebook 03 (Carvana from Kaggle) and notebook 05 (ADE20K); used by data_scripts/ and the command line.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from unet_tutorial.course.safe_download import download_url, extract_archive

_KAGGLE_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")
_KAGGLE_HOW = ("Create a token at https://www.kaggle.com/settings (API > Create New Token), then set KAGGLE_API_TOKEN "
               "(or KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json in ~/.kaggle/); on Colab add them as secrets "
               "(the key icon on the left) and give this notebook access.")  # fmt: skip


def _kaggle_credentials() -> None:
    """Copy the Colab secrets KAGGLE_API_TOKEN, KAGGLE_USERNAME, KAGGLE_KEY into the environment.

    The kaggle client looks only in the environment and in ~/.kaggle (kagglehub reads Colab secrets itself).
    A variable already set wins; a secret that is missing or not shared with the notebook is skipped.
    """
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return  # not on Colab
    for key in _KAGGLE_SECRETS:
        if not os.environ.get(key):
            try:
                os.environ[key] = userdata.get(key)
            except Exception:  # noqa: BLE001 - SecretNotFoundError, NotebookAccessError: this one is not shared
                continue


def _kaggle_client() -> Callable[[str, str, Path], None]:
    """``download(competition, file_name, folder)`` from kagglehub when it imports, else from the kaggle client.

    Raises PermissionError with our advice where a client gives up on credentials, including kaggle 2.x, which
    prints and calls ``exit(1)`` when it is imported without them (SystemExit; NameError in kernels without
    the ``exit`` builtin).
    """
    _kaggle_credentials()
    try:
        import kagglehub
        from kagglehub.exceptions import UnauthenticatedError
    except ImportError:
        kagglehub = None
    if kagglehub is not None:

        def download(competition: str, name: str, folder: Path) -> None:
            try:  # force_download: start again over a cut file, which kagglehub would otherwise refuse
                kagglehub.competition_download(competition, path=name, output_dir=str(folder), force_download=True)
            except UnauthenticatedError as err:
                raise PermissionError(f"Kaggle credentials not found: {err}. {_KAGGLE_HOW}") from err

        return download
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # kaggle authenticates as it is imported

        api = KaggleApi()
        api.authenticate()
    except ImportError as err:
        raise ImportError(f"no Kaggle client is installed: pip install 'unet_tutorial[kaggle]' (kagglehub; Colab "
                          f"has it) or pip install kaggle ({err})") from err  # fmt: skip
    except (SystemExit, NameError, OSError, ValueError) as err:
        raise PermissionError(f"Kaggle credentials not found or invalid ({type(err).__name__}: {err}). "
                              f"{_KAGGLE_HOW}") from None  # fmt: skip

    def download(competition: str, name: str, folder: Path) -> None:
        api.competition_download_file(competition, name, path=str(folder), quiet=False)  # resumes a cut file

    return download


def _whole(path: Path) -> bool:
    """A file that arrived whole: for a .zip, one whose central directory (written last) is there."""
    return path.is_file() and (path.suffix != ".zip" or zipfile.is_zipfile(path))


def _kept(dest: Path, name: str) -> Path | None:
    """``dest/name`` (or ``dest/name.zip``, as older clients name it) when it is whole; a damaged one is removed."""
    for path in (dest / name, dest / (name + ".zip")):
        if _whole(path):
            return path
        if path.is_file():
            print(f"{path} is not a whole zip (a cut download?): removing it and downloading it again")
            path.unlink()
    return None


def kaggle_download(competition: str, files: list[str], dest: str | Path) -> list[Path]:
    """Download competition files with kagglehub (Colab has it), or else the kaggle client.

    Files already in ``dest`` (zips only when whole) are kept, and no client is imported and no credentials
    are needed when all are there. Each download goes to ``dest/.kaggle-partial/`` and moves to ``dest`` once
    it is whole, so a cut download is never taken for a file (the kaggle client resumes it next time).
    Credentials: KAGGLE_API_TOKEN (or KAGGLE_USERNAME/KAGGLE_KEY) in the environment, ``~/.kaggle/``, or the
    Colab secrets of the same names.

    Args:
        competition: e.g. "carvana-image-masking-challenge".
        files: file names as listed on the competition's Data page, e.g. ["train.zip", "train_masks.zip"].
        dest: folder to download into.

    Returns:
        the paths in ``dest``, in the order of ``files`` (Kaggle may add ``.zip`` to a name).

    Raises:
        PermissionError: no or invalid credentials, or the competition rules not accepted (HTTP 401/403).
        ImportError: neither kagglehub nor kaggle is installed.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    found = {name: _kept(dest, name) for name in files}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return [found[name] for name in files]
    download = _kaggle_client()
    partial = dest / ".kaggle-partial"
    for name in missing:
        try:
            download(competition, name, partial)
        except PermissionError:
            raise
        except Exception as err:  # the clients raise different types across versions; re-raised below
            response = getattr(err, "response", None)
            status = getattr(err, "status", None) or getattr(response, "status_code", None)
            if status in (401, 403) or any(code in str(err) for code in ("401", "403")):
                raise PermissionError(
                    f"Kaggle refused {competition}/{name} (HTTP {status or '401/403'}). Sign in on "
                    f"https://www.kaggle.com/competitions/{competition}/rules and accept the competition rules "
                    f"(downloads need that once per account), and check your API token. {_KAGGLE_HOW}"
                ) from err
            raise
        whole = [path for path in (partial / name, partial / (name + ".zip")) if _whole(path)]
        if not whole:
            raise FileNotFoundError(f"Kaggle reported success but {partial / name} is missing or not a whole zip; "
                                    f"run again to resume")  # fmt: skip
        found[name] = whole[0].replace(dest / whole[0].name)
    shutil.rmtree(partial, ignore_errors=True)  # what kagglehub left there (completion markers)
    return [found[name] for name in files]


CARVANA_COMPETITION = "carvana-image-masking-challenge"
CARVANA_COUNT = 5088  # 318 cars x 16 views
ADE20K_COUNTS = {"training": 20210, "validation": 2000}
# The official SceneParsing archive (about 1 GB) and its SHA-1, as dmlc/gluon-cv scripts/datasets/ade20k.py pins it.
ADE20K_URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
ADE20K_SHA1 = "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7"


def _count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def fetch_carvana(
    root: str | Path, *, hq: bool = False, keep_archives: bool = False, archives: str | Path | None = None
) -> Path:
    """Download Carvana's training images, masks and train_masks.csv from Kaggle and unpack them in ``root``.

    Idempotent: what is already unpacked and complete is skipped. Needs the Kaggle client, a token and the
    competition rules accepted once on the website (see ``kaggle_download``).

    Args:
        hq: the 1918x1280 high-quality JPEGs (train_hq.zip) instead of train.zip.
        keep_archives: keep the zips after unpacking.
        archives: a folder for the zips other than ``root`` (e.g. Google Drive on Colab, so that a new session
            unpacks them without downloading again); zips found there are reused, and always kept.

    Returns:
        ``root``, ready for ``data.CarvanaDataset(root)``.
    """
    root = Path(root)
    keep_archives = keep_archives or archives is not None
    archives = Path(archives) if archives is not None else root
    images = "train_hq" if hq else "train"
    for name, pattern in {images: "*.jpg", "train_masks": "*_mask.gif", "train_masks.csv": None}.items():
        target = root / name
        if (pattern and _count(target, pattern) >= CARVANA_COUNT) or (pattern is None and target.is_file()):
            print(f"{target}: already there, skipped")
            continue
        (archive,) = kaggle_download(CARVANA_COMPETITION, [f"{name}.zip"], archives)  # skipped if already there
        print(f"unpacking {archive}")
        extract_archive(archive, root)
        if not keep_archives:
            archive.unlink()
    n_images, n_masks = _count(root / images, "*.jpg"), _count(root / "train_masks", "*_mask.gif")
    if n_images != CARVANA_COUNT or n_masks != CARVANA_COUNT:
        raise RuntimeError(
            f"expected {CARVANA_COUNT} images and masks under {root}, found {n_images} and "
            f"{n_masks}: delete the incomplete folders and run again"
        )
    print(f"Carvana is ready: CarvanaDataset({str(root)!r}) ({n_images} images)")
    return root


def _ade20k_complete(folder: Path) -> bool:
    return all(
        _count(folder / "images" / split, "*.jpg") == n and _count(folder / "annotations" / split, "*.png") == n
        for split, n in ADE20K_COUNTS.items()
    )


def fetch_ade20k(
    root: str | Path, *, url: str | None = None, sha1: str | None = None, keep_archive: bool = False
) -> Path:
    """Download the official ADEChallengeData2016.zip (about 1 GB), check its SHA-1, unpack it under ``root``.

    Resumes an interrupted download; skips everything when the unpacked folder is already complete.

    Args:
        root: parent folder; the data lands in ``root/ADEChallengeData2016``.
        url: a mirror of the same zip (default: the official MIT URL, ``ADE20K_URL``).
        sha1: the expected SHA-1 (default: ``ADE20K_SHA1``; "" skips the check).

    Returns:
        the ``ADEChallengeData2016`` folder, ready for ``data.ADE20KDataset``.
    """

    root = Path(root)
    folder = root / "ADEChallengeData2016"
    if _ade20k_complete(folder):
        print(f"{folder}: already there, skipped")
        return folder
    expected = ADE20K_SHA1 if sha1 is None else sha1
    archive = download_url(url or ADE20K_URL, root / "ADEChallengeData2016.zip", sha1=expected or None)
    print(f"unpacking {archive}")
    extract_archive(archive, root)
    if not _ade20k_complete(folder):
        raise RuntimeError(
            f"{folder} does not hold {ADE20K_COUNTS} images and annotations after unpacking "
            f"{archive}: the archive is not the official one"
        )
    if not keep_archive:
        archive.unlink()
    print(f"ADE20K is ready: ADE20KDataset({str(folder)!r})")
    return folder
