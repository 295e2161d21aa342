# Like kaggle 2.0.2's kaggle/__init__.py: authenticates as it is imported.
import os

from kaggle.api.kaggle_api_extended import KaggleApi

__version__ = "2.0.2"

enable_oauth = os.environ.get("KAGGLE_ENABLE_OAUTH") in ("1", "true", "yes")
api = KaggleApi(enable_oauth=enable_oauth)
api.authenticate()
