"""Checkpoints: atomic, umask-respecting writes; refused when unsafe, truncated, bit-rotten or non-finite;
``fit`` never saves a diverged model, writes best.pt before last.pt and clears a killed write's leftovers."""

import os
import pickle
import zipfile

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unet_tutorial import train as train_module
from unet_tutorial.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from unet_tutorial.model import UNet
from unet_tutorial.train import NonFiniteLossError, fit, train_one_epoch
from unet_tutorial.utils import set_seed


def tiny_model():
    return UNet(base_channels=4, depth=2)


def loaders():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(12, 3, 32, 32, generator=generator)  # (N, 3, H, W)
    data = TensorDataset(images, (images[:, :1] > 0).float())  # masks (N, 1, H, W)
    return DataLoader(torch.utils.data.Subset(data, range(8)), batch_size=4), DataLoader(
        torch.utils.data.Subset(data, range(8, 12)), batch_size=4
    )


def run_fit(folder, loss_fn=None, epochs=2, model=None, **kwargs):
    set_seed(0)
    model = model or tiny_model()
    train, val = loaders()
    fit(
        model,
        train,
        val,
        epochs=epochs,
        loss_fn=loss_fn or nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.Adam(model.parameters()),
        device="cpu",
        num_classes=1,
        checkpoint_dir=folder,
        progress=False,
        log=lambda line: None,
        **kwargs,
    )
    return model


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pt.*could run code"):
        load_checkpoint(path, tiny_model())


def test_truncated_or_foreign_files_name_the_file(tmp_path):
    model = tiny_model()
    good = save_checkpoint(tmp_path / "good.pt", model, epoch=1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt is truncated or not a PyTorch checkpoint"):
        load_checkpoint(truncated, model)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.pt"):
        load_checkpoint(text, model)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt", model)
    pickled = tmp_path / "plain.pkl"
    pickled.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(CheckpointError, match=r"plain\.pkl"):
        load_checkpoint(pickled, model)
    csv = tmp_path / "train_masks.csv"
    csv.write_text("img,rle_mask\na.jpg,1 2\n")
    with pytest.raises(CheckpointError, match=r"train_masks\.csv is truncated or not a PyTorch checkpoint"):
        read_checkpoint(csv)


def test_a_checkpoint_for_another_model_says_which(tmp_path):
    path = save_checkpoint(
        tmp_path / "wide.pt",
        UNet(base_channels=8, depth=2),
        config={"model": "unet", "model_kwargs": {"base_channels": 8, "depth": 2}},
    )
    with pytest.raises(CheckpointError, match=r"wide\.pt does not fit this UNet.*base_channels': 8"):
        load_checkpoint(path, tiny_model())


def test_round_trip_restores_weights_optimizer_and_a_bare_state_dict(tmp_path):
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_one_epoch(model, loaders()[0], nn.BCEWithLogitsLoss(), optimizer, "cpu", progress=False)
    save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=7)
    copy, copy_optimizer = tiny_model(), torch.optim.Adam(tiny_model().parameters(), lr=1.0)
    state = load_checkpoint(tmp_path / "ckpt.pt", copy, copy_optimizer)
    assert state["epoch"] == 7 and copy_optimizer.param_groups[0]["lr"] == 1e-3
    for a, b in zip(model.state_dict().values(), copy.state_dict().values()):
        assert torch.equal(a, b)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    load_checkpoint(tmp_path / "bare.pt", tiny_model())


def test_non_finite_weights_are_refused_by_name(tmp_path):
    model = tiny_model()
    model.inc.block[1].running_var.fill_(float("inf"))  # what --lr 1e6 does to BatchNorm statistics
    path = save_checkpoint(tmp_path / "diverged.pt", model)
    with pytest.raises(
        CheckpointError,
        match=r"diverged\.pt holds weights that are NaN or infinite "
        r"\(inc\.block\.1\.running_var\)",
    ):
        read_checkpoint(path)


def test_a_flipped_byte_in_the_weights_fails_the_crc(tmp_path):
    path = save_checkpoint(tmp_path / "rotten.pt", tiny_model())
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)  # the biggest tensor's storage
    data = bytearray(path.read_bytes())
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x40  # one bit, mid-weights
    path.write_bytes(bytes(data))
    assert zipfile.is_zipfile(path), "still a valid zip: only the CRC tells"
    with pytest.raises(CheckpointError, match=rf"rotten\.pt is damaged: {info.filename} does not match"):
        read_checkpoint(path)


def test_checkpoint_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "shared.pt", tiny_model())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_stale_temporaries_of_a_killed_write_are_removed_when_a_run_starts(tmp_path):
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("the user's")
    run_fit(tmp_path, epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "notes.tmp"]


def test_best_pt_is_written_before_last_pt(tmp_path, monkeypatch):
    order = []

    def recording(path, *args, **kwargs):
        order.append(path.name)
        return save_checkpoint(path, *args, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", recording)
    run_fit(tmp_path, epochs=1)
    assert order == ["best.pt", "last.pt"]  # a kill between the two leaves this epoch's best on disk


def test_nan_weights_after_an_epochs_last_step_are_never_saved(tmp_path):
    model = tiny_model()
    calls = {"n": 0}

    def loss_fn(logits, masks):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2's last training step: a finite loss, then NaN weights after the step
            with torch.no_grad():
                model.outc.conv.bias.fill_(float("nan"))
        return nn.functional.binary_cross_entropy_with_logits(logits, masks)

    with pytest.raises(
        NonFiniteLossError,
        match=r"after epoch 2, the validation loss, outc\.conv\.bias are NaN "
        r"or infinite and nothing was saved; the last good checkpoint is "
        r".*last\.pt",
    ):
        run_fit(tmp_path, loss_fn=loss_fn, epochs=3, model=model)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # finite, so readable
    assert read_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_divergence_in_the_first_epoch_names_no_checkpoint(tmp_path):
    def loss_fn(logits, masks):
        return nn.functional.binary_cross_entropy_with_logits(logits, masks) * float("inf")

    with pytest.raises(NonFiniteLossError, match="no checkpoint was written yet"):
        run_fit(tmp_path, loss_fn=loss_fn, epochs=1)
    assert not list(tmp_path.glob("*.pt"))
