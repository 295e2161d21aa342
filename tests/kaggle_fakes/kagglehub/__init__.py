# Like kagglehub 1.0.2's public names used here.
__version__ = "1.0.2"

from kagglehub.competition import competition_download  # noqa: E402

__all__ = ["competition_download"]
