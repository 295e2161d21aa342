# Like kagglehub 1.0.2's competition_download with output_dir: no resume there, a leftover file is refused.
import os
from pathlib import Path

import kaggle_site

from kagglehub.exceptions import KaggleApiHTTPError, UnauthenticatedError


def competition_download(
    handle: str,
    path: str | None = None,
    *,
    force_download: bool | None = False,
    output_dir: str | None = None,
) -> str:
    if not kaggle_site.has_credentials():
        raise UnauthenticatedError()
    out_path = os.path.join(output_dir or os.path.expanduser("~/.cache/kagglehub"), path or handle)
    marker = os.path.join(output_dir or "", ".complete", f"{path}.complete")
    if os.path.exists(out_path) and not os.path.exists(marker):
        if not force_download:
            raise FileExistsError(
                f"File already exists at output_dir: {out_path}. Set force_download=True to replace it."
            )
        os.remove(out_path)
    kaggle_site.send(handle, path, Path(out_path), KaggleApiHTTPError)
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    Path(marker).touch()
    return out_path
