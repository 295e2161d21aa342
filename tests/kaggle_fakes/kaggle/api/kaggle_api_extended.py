# Like kaggle 2.0.2's KaggleApi: exit(1) without credentials; downloads resume into the file's own name.
import os
from pathlib import Path

import kaggle_site


class HTTPError(Exception):  # requests.HTTPError: the response carries the status
    def __init__(self, message: str, response: kaggle_site.Response) -> None:
        super().__init__(message)
        self.response = response


class KaggleApi:
    def __init__(self, enable_oauth: bool = False) -> None:
        self.enable_oauth = enable_oauth

    def authenticate(self) -> None:
        if kaggle_site.has_credentials():
            return
        print("You must authenticate before you can call the Kaggle API.")
        print(
            "Follow the instructions to authenticate at: https://github.com/Kaggle/kaggle-cli/blob/main/docs/README.md#authentication"
        )
        exit(1)

    def competition_download_file(
        self, competition: str, file_name: str, path: str | None = None, force: bool = False, quiet: bool = False
    ) -> None:
        effective_path = path or os.path.join(os.path.expanduser("~"), ".kaggle", "competitions", competition)
        kaggle_site.send(competition, file_name, Path(effective_path) / file_name, HTTPError)
