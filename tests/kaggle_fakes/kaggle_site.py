"""The Kaggle website behind the fake clients: competition files, what goes wrong, what was asked for."""

import os
from pathlib import Path

files: dict[str, bytes] = {}  # file name -> content, for any competition
refuse: int | None = None  # an HTTP status (401, 403) returned for every download
cut: set[str] = set()  # names whose next download stops halfway, then the connection drops
calls: list[tuple[str, str]] = []  # (competition, file name) per download request


def reset() -> None:
    global refuse
    files.clear(), cut.clear(), calls.clear()
    refuse = None


def has_credentials() -> bool:
    env = os.environ
    return bool(env.get("KAGGLE_API_TOKEN") or (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")))


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def send(competition: str, name: str, target: Path, error: type[Exception]) -> None:
    """Write ``name`` to ``target`` from where it stops (as a resuming client does), or raise."""
    calls.append((competition, name))
    if refuse:
        raise error(f"{refuse} Client Error", Response(refuse))
    body = files[name]
    done = target.stat().st_size if target.is_file() else 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "ab" if done else "wb") as f:
        if name in cut:
            cut.discard(name)
            f.write(body[done : len(body) // 2])
            raise ConnectionError("Connection broken: IncompleteRead")
        f.write(body[done:])
