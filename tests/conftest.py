"""Shared test settings: smoke mode on, a non-interactive matplotlib, few threads; shared fixtures.

The Agg backend is chosen in this process only: notebooks under nbmake keep Jupyter's inline backend, so their
figures are rendered exactly as a learner sees them. ``official_data`` writes a tiny data folder in the real
datasets' own layouts (drawn pictures, real file names and formats); ``smoke_val_ids``, the validation ids of
notebook 03's smoke run.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("UNET_TUTORIAL_SMOKE", "1")
# benchmarks/ is scripts, not a package: its estimates (benchmarks/estimates.py) are tested as `import estimates`
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")

torch.set_num_threads(min(2, torch.get_num_threads()))

# Under pytest-xdist (`make test` runs two workers) each worker gets its own data folder, so two workers never
# generate the same sample set at once, and its notebooks' kernels inherit it.
if "PYTEST_XDIST_WORKER" in os.environ:
    import atexit
    import shutil
    import tempfile

    _worker_data = tempfile.mkdtemp(prefix=f"unet_tutorial_{os.environ['PYTEST_XDIST_WORKER']}_")
    os.environ["UNET_TUTORIAL_DATA"] = _worker_data
    atexit.register(shutil.rmtree, _worker_data, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def one_thread():
    """One torch thread for the test: a tiny model gains nothing from two, and loses a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def official_data(tmp_path_factory) -> Path:
    """A tiny data folder in the official layouts, which ``carvana_data``/``ade20k_data`` take for the real data.

    ``<folder>/carvana/``: ``train/<car>_<view>.jpg``, ``train_masks/<car>_<view>_mask.gif`` (palette 0/1),
    ``train_masks.csv`` (img,rle_mask) and ``metadata.csv`` (Kaggle's columns), 3 drawn cars x 16 views of 64x96.
    ``<folder>/ADEChallengeData2016/``: ``images/{training,validation}/ADE_*.jpg``,
    ``annotations/{training,validation}/ADE_*.png`` and ``objectInfo150.txt``, 8 + 4 drawn scenes of 128x160
    (at least one crop of notebook 05's real-data recipe in smoke mode, 96 px).
    A notebook takes its real-data branch with ``UNET_TUTORIAL_DATA=<folder>`` and smoke mode off
    (``UNET_TUTORIAL_SMOKE=0``): in smoke mode ``carvana_data``/``ade20k_data`` always generate their data.
    """
    from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like
    from unet_tutorial.data import ADE20K_CLASSES, carvana_ids

    folder = tmp_path_factory.mktemp("official_data")
    carvana = make_carvana_like(folder / "carvana", n_cars=3, size=(64, 96), seed=7)
    ade = make_ade20k_like(folder / "ADEChallengeData2016", n_train=8, n_val=4, size=(128, 160), seed=7)
    for root in (carvana, ade):
        (root / "sample_info.json").unlink()  # the generators' marker: without it the folder looks downloaded
    cars = sorted({i.rsplit("_", 1)[0] for i in carvana_ids(carvana)})
    rows = ['"id","year","make","model","trim1","trim2"'] + [f'"{car}","2014","Acura","TL","TL","w/SE"' for car in cars]
    (carvana / "metadata.csv").write_text("\n".join(rows) + "\n")
    # ADE20K's class table: Idx, pixel ratio, images in training and validation, names (the real file's columns)
    table = ["Idx\tRatio\tTrain\tVal\tName"] + [
        f"{k}\t0.001\t10\t1\t{name}" for k, name in enumerate(ADE20K_CLASSES, start=1)
    ]
    (ade / "objectInfo150.txt").write_text("\n".join(table) + "\n")
    return folder


@pytest.fixture(scope="session")
def smoke_val_ids(tmp_path_factory) -> list[str]:
    """The validation ids of notebook 03's smoke run: its SAMPLE_CARS cars split by its VAL_FRACTION (the
    exercise checks' tests plant shortcuts on them)."""
    from tools.settings import notebook_settings
    from unet_tutorial.data import carvana_split

    settings = notebook_settings(Path(__file__).resolve().parents[1] / "notebooks" / "03_carvana_binary.py", "smoke")
    root = tmp_path_factory.mktemp("carvana")
    (root / "train").mkdir()
    for car in range(settings["SAMPLE_CARS"]):
        for view in range(1, 17):
            (root / "train" / f"car{car}_{view:02d}.jpg").touch()
    _, val_ids = carvana_split(root, val_fraction=settings["VAL_FRACTION"], seed=settings["SEED"])
    return val_ids
