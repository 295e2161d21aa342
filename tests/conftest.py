"""Shared test settings: smoke mode on, a non-interactive matplotlib, few threads.

The Agg backend is chosen in this process only: notebooks under nbmake keep Jupyter's inline backend, so their
figures are rendered exactly as a learner sees them.
"""

import os

os.environ.setdefault("UNET_TUTORIAL_SMOKE", "1")

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
