"""python -m unet_tutorial predict into a folder that already holds files: it never replaces a file it did not
write, merges masks.csv across runs, writes through unique temporary files, and loads notebook 03's checkpoints."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from unet_tutorial.checkpoint import save_checkpoint
from unet_tutorial.cli import main
from unet_tutorial.model import UNet


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = {"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": 4, "depth": 2},
              "num_classes": 1, "image_size": [32, 32]}  # fmt: skip
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", UNet(base_channels=4, depth=2), config=config)


def images(folder, *names):
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (48, 32), (40 * i, 200, 90)).save(folder / name)
    return [str(folder / name) for name in names]


def predict(checkpoint, out, *inputs):
    return main(["predict", "--checkpoint", str(checkpoint), *inputs, "--out", str(out), "--no-progress"])


def test_files_predict_did_not_write_are_never_replaced(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    truth = np.full((32, 48), 255, np.uint8)
    Image.fromarray(truth).save(out / "car_mask.png")  # a ground-truth mask kept next to the predictions
    assert predict(checkpoint, out, *images(tmp_path / "in", "car.jpg", "van.jpg")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "car_mask.png" in err and "predict did not write" in err and "another --out" in err
    assert np.array_equal(np.array(Image.open(out / "car_mask.png")), truth)
    assert sorted(p.name for p in out.iterdir()) == ["car_mask.png"], "nothing was predicted"


def test_a_second_run_merges_masks_csv_and_replaces_only_its_own_files(checkpoint, tmp_path):
    out = tmp_path / "out"
    assert predict(checkpoint, out, *images(tmp_path / "in", "a.jpg", "b.jpg")) == 0
    first = (out / "masks.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in first] == ["img", "a.jpg", "b.jpg"]
    assert predict(checkpoint, out, *images(tmp_path / "more", "c.jpg", "a.jpg")) == 0  # a.jpg again, another image
    rows = (out / "masks.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["img", "a.jpg", "b.jpg", "c.jpg"], "b.jpg's row is kept"
    assert rows[2] == first[2]
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["a_mask.png", "a_overlay.jpg", "b_mask.png", "b_overlay.jpg", "c_mask.png", "c_overlay.jpg",
                     "masks.csv"]  # fmt: skip
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_a_planted_link_at_a_temporary_name_is_not_followed(checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("a_mask.png", "a_overlay.jpg", "masks.csv"):
        (out / f".{name}.tmp").symlink_to(victim)  # the fixed names earlier versions wrote through
    assert predict(checkpoint, out, *images(tmp_path / "in", "a.jpg")) == 0
    assert victim.read_text() == "precious"
    assert Image.open(out / "a_mask.png").size == (48, 32)


def test_notebook_03s_checkpoint_loads_in_predict(tmp_path):
    # notebooks/03_carvana_binary.py: fit(..., checkpoint_dir=RUN_DIR, config=CONFIG) with the model named "UNet"
    from unet_tutorial.train import fit

    config = {"model": "UNet", "model_kwargs": {"base_channels": 4}, "image_size": [32, 32], "epochs": 1,
              "batch_size": 2, "lr": 1e-3, "weight_decay": 1e-4, "loss": {"bce": 1.0}, "augment": {},
              "data": "sample", "real_data": False, "train_images": 2, "seed": 0}  # fmt: skip
    model = UNet(in_channels=3, num_classes=1, base_channels=4)
    data = TensorDataset(torch.randn(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.5).float())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fit(model, DataLoader(data, batch_size=2), DataLoader(data, batch_size=2), epochs=1, optimizer=optimizer,
        loss_fn=torch.nn.BCEWithLogitsLoss(), device="cpu", num_classes=1, scheduler="onecycle",
        checkpoint_dir=tmp_path / "run", config=config, progress=False)  # fmt: skip
    assert predict(tmp_path / "run" / "best.pt", tmp_path / "out", *images(tmp_path / "in", "car.jpg")) == 0
    assert np.array(Image.open(tmp_path / "out" / "car_mask.png")).shape == (32, 48)
