"""The training loop and checkpoints: resume equals an uninterrupted run (augmentations included), unsafe or
truncated files, the NaN guard, and the GPU choices (precision, layout, cudnn.benchmark) with CUDA faked on the CPU."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unet_tutorial.checkpoint import read_checkpoint
from unet_tutorial.course.sample_data import make_carvana_like
from unet_tutorial.data import carvana_ids
from unet_tutorial.loaders import carvana_loaders
from unet_tutorial.measure import time_train_step
from unet_tutorial.model import UNet
from unet_tutorial.precision import amp_choice, cudnn_benchmark_for, default_amp_dtype, memory_format_for
from unet_tutorial.train import NonFiniteLossError, evaluate, fit, train_one_epoch
from unet_tutorial.utils import set_seed


def tiny_data(n=8, size=32, seed=0):
    """Images whose first channel decides the mask: learnable by a tiny model in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)  # (N, 3, H, W)
    masks = (images[:, :1] > 0).float()  # (N, 1, H, W)
    return TensorDataset(images, masks)


def tiny_model():
    return UNet(base_channels=4, depth=2)


def loaders(batch_size=4, shuffle=True):
    return (
        DataLoader(tiny_data(8), batch_size=batch_size, shuffle=shuffle),
        DataLoader(tiny_data(4, seed=1), batch_size=4),
    )


@pytest.fixture(scope="module")
def carvana_root(tmp_path_factory):
    return make_carvana_like(tmp_path_factory.mktemp("carvana"), n_cars=2, views=4, size=(32, 48), seed=0)


def augmented_loaders(root):
    """8 training images with notebook 03's augmentations (random crops, flips, warps, jitter), 2 batches."""
    ids = carvana_ids(root)
    return carvana_loaders(root, ids, ids[:4], image_size=32, batch_size=4)


def run_fit(tmp_path, epochs, resume=None, crash_after=None, data_root=None, **kwargs):
    set_seed(0, deterministic=True)
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train, val = loaders() if data_root is None else augmented_loaders(data_root)
    if crash_after is not None:
        train = CrashingLoader(train, crash_after)
    history = fit(
        model,
        train,
        val,
        epochs=epochs,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=optimizer,
        device="cpu",
        num_classes=1,
        checkpoint_dir=tmp_path,
        resume=resume,
        progress=False,
        log=lambda line: None,
        config={"model": "unet"},
        **kwargs,
    )
    return model, history


def test_train_one_epoch_learns_and_reports_numbers():
    set_seed(0)
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train, _ = loaders()
    first = train_one_epoch(model, train, nn.BCEWithLogitsLoss(), optimizer, "cpu", progress=False)
    for _ in range(4):
        last = train_one_epoch(model, train, nn.BCEWithLogitsLoss(), optimizer, "cpu", grad_clip=1.0, progress=False)
    assert set(first) >= {"loss", "lr", "images", "seconds", "images_per_s"}
    assert first["images"] == 8 and last["loss"] < first["loss"]


def test_accumulation_matches_one_big_batch():
    # No BatchNorm here: with it, two half batches normalise differently from one full batch.
    data = tiny_data(4)
    grads = []
    for batch_size, accumulate in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = nn.Conv2d(3, 1, 3, padding=1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        train_one_epoch(
            model,
            DataLoader(data, batch_size=batch_size),
            nn.BCEWithLogitsLoss(),
            optimizer,
            "cpu",
            accumulate=accumulate,
            progress=False,
        )
        grads.append(model.weight.detach().clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_a_short_last_accumulation_group_is_scaled_by_its_own_size():
    # 3 batches, accumulate=2: steps after batches 1-2 and after batch 3 alone, each on the mean gradient of its
    # own group; the last step must not be halved because its group is short.
    data = tiny_data(3)
    torch.manual_seed(0)
    model = nn.Conv2d(3, 1, 3, padding=1)
    reference = nn.Conv2d(3, 1, 3, padding=1)
    reference.load_state_dict(model.state_dict())
    loss_fn = nn.BCEWithLogitsLoss()
    train_one_epoch(model, DataLoader(data, batch_size=1), loss_fn, torch.optim.SGD(model.parameters(), lr=0.5),
                    "cpu", accumulate=2, progress=False)  # fmt: skip
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for group in ([0, 1], [2]):
        optimizer.zero_grad()
        loss_fn(reference(data.tensors[0][group]), data.tensors[1][group]).backward()  # the group's mean loss
        optimizer.step()
    torch.testing.assert_close(model.weight, reference.weight)


def test_the_epoch_loss_is_the_mean_over_images_of_batch_losses():
    data = tiny_data(5)
    torch.manual_seed(0)
    model = nn.Conv2d(3, 1, 3, padding=1)
    losses = [nn.BCEWithLogitsLoss()(model(data.tensors[0][i : i + 2]), data.tensors[1][i : i + 2]) for i in (0, 2, 4)]
    result = train_one_epoch(model, DataLoader(data, batch_size=2), nn.BCEWithLogitsLoss(),
                             torch.optim.SGD(model.parameters(), lr=0.0), "cpu", progress=False)  # fmt: skip
    assert result["images"] == 5
    assert result["loss"] == pytest.approx((2 * losses[0].item() + 2 * losses[1].item() + losses[2].item()) / 5)


def fake_gpu(monkeypatch, capability, name="Tesla T4"):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # a T4 says so (emulated)


@pytest.mark.parametrize(
    "capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)]
)
def test_amp_dtype_follows_the_compute_capability(monkeypatch, capability, dtype):
    fake_gpu(monkeypatch, capability)
    assert default_amp_dtype("cuda") == dtype and default_amp_dtype(torch.device("cuda", 0)) == dtype
    assert default_amp_dtype("cpu") is None


def test_amp_reason_names_the_gpu_and_no_cuda_means_fp32(monkeypatch):
    fake_gpu(monkeypatch, (7, 5))
    assert amp_choice("cuda") == (torch.float16, "Tesla T4, compute capability 7.5 has no fast bf16")

    def no_cuda(*args):
        raise AssertionError("torch < 2.5 raises here without CUDA: ask is_available() first")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", no_cuda)
    assert default_amp_dtype("cuda") is None


def test_fit_says_which_precision_it_uses_and_leaves_cudnn_benchmark_as_it_was(tmp_path):
    lines = []
    before = torch.backends.cudnn.benchmark
    model = tiny_model()
    train, val = loaders()
    fit(
        model,
        train,
        val,
        epochs=1,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.SGD(model.parameters()),
        device="cpu",
        num_classes=1,
        progress=False,
        log=lines.append,
    )
    assert lines[0] == "mixed precision: off, float32 (cpu: autocast pays off on CUDA GPUs)"
    fit(
        model,
        train,
        val,
        epochs=1,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.SGD(model.parameters()),
        device="cpu",
        num_classes=1,
        progress=False,
        log=lines.append,
        amp_dtype=torch.bfloat16,
    )
    assert "mixed precision: bfloat16 (amp_dtype=torch.bfloat16 was passed)" in lines
    workers = DataLoader(tiny_data(8), batch_size=4, num_workers=1)
    fit(
        model,
        workers,
        val,
        epochs=1,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.SGD(model.parameters()),
        device="cpu",
        num_classes=1,
        progress=False,
        log=lines.append,
    )
    assert any("without a worker_init_fn" in line and "worker_init_fn=seed_worker" in line for line in lines)
    assert torch.backends.cudnn.benchmark == before


def test_cuda_gets_channels_last_for_the_model_too_and_cudnn_benchmark(monkeypatch):
    assert memory_format_for("cuda") == torch.channels_last and memory_format_for("cpu") == torch.contiguous_format
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    weights = [p for p in model.parameters() if p.dim() == 4]  # (C_out, C_in, kH, kW)
    # channels_last=True is what the default does on CUDA; on the CPU it shows that the weights follow the images.
    train_one_epoch(model, loaders()[0], nn.BCEWithLogitsLoss(), optimizer, "cpu", channels_last=True, progress=False)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)  # (1x1 kernels are both layouts at once)
    assert [p for p in model.parameters() if p.dim() == 4] == weights, "the optimizer's parameters, converted in place"
    train_one_epoch(model, loaders()[0], nn.BCEWithLogitsLoss(), optimizer, "cpu", progress=False)
    assert all(w.is_contiguous() for w in weights)

    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    assert cudnn_benchmark_for("cuda") and not cudnn_benchmark_for("cpu")
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)  # set_seed(deterministic=True)
    assert not cudnn_benchmark_for("cuda")


def test_fit_hands_channels_last_to_every_epoch_so_a_cpu_can_measure_it():
    model = tiny_model()
    weights = [p for p in model.parameters() if p.dim() == 4]
    train_loader, val_loader = loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    fit(
        model,
        train_loader,
        val_loader,
        epochs=1,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=optimizer,
        device="cpu",
        num_classes=1,
        scheduler=None,
        channels_last=True,
        progress=False,
        log=lambda _: None,
    )
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def test_fit_logs_and_records_each_parameter_groups_lr(tmp_path):
    model = tiny_model()
    params = list(model.parameters())
    train, val = loaders()
    for groups, labels in (
        (
            [
                {"name": "encoder", "params": params[:4], "lr": 1e-4},
                {"name": "decoder", "params": params[4:], "lr": 1e-3},
            ],
            ("encoder", "decoder"),
        ),
        ([{"params": params[:4], "lr": 1e-4}, {"params": params[4:], "lr": 1e-3}], ("0", "1")),
    ):
        lines = []
        history = fit(
            model,
            train,
            val,
            epochs=1,
            loss_fn=nn.BCEWithLogitsLoss(),
            optimizer=torch.optim.SGD(groups),
            device="cpu",
            num_classes=1,
            scheduler=None,
            progress=False,
            log=lines.append,
        )
        assert f"lr_{labels[0]} 1.0e-04 lr_{labels[1]} 1.0e-03" in lines[-1]
        assert history["lr"] == [1e-4] and history[f"lr_{labels[0]}"] == [1e-4]
        assert history[f"lr_{labels[1]}"] == [1e-3]


def test_bf16_autocast_runs_on_cpu_but_is_not_the_default():
    assert default_amp_dtype("cpu") is None
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = train_one_epoch(
        model, loaders()[0], nn.BCEWithLogitsLoss(), optimizer, "cpu", amp_dtype=torch.bfloat16, progress=False
    )
    assert torch.isfinite(torch.tensor(out["loss"]))


def test_evaluate_binary_and_multiclass_keys():
    model = tiny_model()
    _, val = loaders()
    results = evaluate(model, val, "cpu", num_classes=1, loss_fn=nn.BCEWithLogitsLoss(), progress=False)
    assert set(results) == {"loss", "dice_per_image", "iou", "pixel_accuracy"}
    images = torch.randn(4, 3, 32, 32)
    masks = torch.randint(0, 3, (4, 32, 32))
    masks[:, 0] = 255
    multi = evaluate(
        UNet(num_classes=3, base_channels=4, depth=2),
        DataLoader(TensorDataset(images, masks)),
        "cpu",
        num_classes=3,
        ignore_index=255,
        progress=False,
    )
    assert set(multi) == {"miou", "dice", "pixel_accuracy"} and 0 <= multi["miou"] <= 1


def test_fit_history_checkpoints_and_early_stopping(tmp_path):
    model, history = run_fit(tmp_path, epochs=3, scheduler="cosine")
    assert set(history) >= {"epoch", "train_loss", "val_loss", "val_dice_per_image", "val_iou", "lr", "seconds"}
    assert not [key for key in history if key.startswith("lr_")], "one parameter group: only 'lr'"
    assert history["epoch"] == [1, 2, 3] and all(len(v) == 3 for v in history.values())
    each = history["val_dice_of_each_image"]  # every epoch's validation images, one Dice each, in order
    assert all(np.mean(scores) == pytest.approx(mean) for scores, mean in zip(each, history["val_dice_per_image"]))
    assert history["lr"][0] > history["lr"][-1]  # cosine annealing
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 3 and last["config"] == {"model": "unet"} and last["history"] == history
    assert read_checkpoint(tmp_path / "best.pt")["best"] == max(history["val_dice_per_image"])
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"], "temporary files must be renamed away"

    # monitor the loss with patience 1, a learning rate of 0 and no BatchNorm: nothing improves after epoch 1
    model = nn.Conv2d(3, 1, 3, padding=1)
    train, val = loaders()
    history = fit(
        model,
        train,
        val,
        epochs=5,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        device="cpu",
        num_classes=1,
        monitor="loss",
        patience=1,
        scheduler=None,
        progress=False,
        log=lambda line: None,
    )
    assert history["epoch"] == [1, 2]


def reference_lrs(make, epochs, steps_per_epoch, step_per_batch):
    """The learning rate at the start of each epoch of a scheduler stepped as fit should step it."""
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-2)
    scheduler, lrs = make(optimizer), []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps_per_epoch if step_per_batch else 1):
            optimizer.step()
            scheduler.step()
    return lrs


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_fit_steps_a_named_scheduler_as_its_name_says(tmp_path, name):
    steps = len(loaders()[0])
    _, history = run_fit(tmp_path, epochs=3, scheduler=name)
    make = {
        "onecycle": lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3 * steps),
        "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3),
    }[name]
    expected = reference_lrs(make, 3, steps, step_per_batch=name == "onecycle")
    assert history["lr"] == pytest.approx(expected)
    assert history["lr"][0] == pytest.approx(1e-2 / 25 if name == "onecycle" else 1e-2)  # one-cycle warms up


def test_fit_steps_a_warm_up_object_per_batch_when_asked(tmp_path):
    steps = len(loaders()[0])
    set_seed(0)
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    warm_up = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2 * steps)
    train, val = loaders()
    history = fit(
        model,
        train,
        val,
        epochs=3,
        loss_fn=nn.BCEWithLogitsLoss(),
        optimizer=optimizer,
        device="cpu",
        num_classes=1,
        scheduler=warm_up,
        step_per_batch=True,
        progress=False,
        log=lambda line: None,
    )
    # 0.1 of the lr at the start, halfway after one epoch of steps, the full lr after two
    assert history["lr"] == pytest.approx([1e-3, 5.5e-3, 1e-2])


def test_fit_asks_when_a_scheduler_object_steps(tmp_path):
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train, val = loaders()
    with pytest.raises(ValueError, match="needs step_per_batch=True"):
        fit(
            model,
            train,
            val,
            epochs=1,
            loss_fn=nn.BCEWithLogitsLoss(),
            optimizer=optimizer,
            device="cpu",
            num_classes=1,
            scheduler=torch.optim.lr_scheduler.LinearLR(optimizer),
            progress=False,
        )
    with pytest.raises(ValueError, match="knows its own"):
        fit(
            model,
            train,
            val,
            epochs=1,
            loss_fn=nn.BCEWithLogitsLoss(),
            optimizer=optimizer,
            device="cpu",
            num_classes=1,
            scheduler="cosine",
            step_per_batch=True,
            progress=False,
        )


class Interrupt(Exception):
    pass


class CrashingLoader:
    """A DataLoader stand-in that raises after ``after`` batches in all, like a session that dies mid-epoch."""

    def __init__(self, loader, after):
        self.loader, self.after, self.count = loader, after, 0

    def __getattr__(self, name):  # sampler, generator, num_workers, dataset: the DataLoader's
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.count += 1
            if self.count > self.after:
                raise Interrupt
            yield batch


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path, carvana_root):
    # Random crops, flips, warps and jitter: albumentations draws from generators of its own, which fit seeds
    # from torch's state every epoch, and torch's state is in the checkpoint.
    full, full_history = run_fit(tmp_path / "full", epochs=3, data_root=carvana_root)

    with pytest.raises(Interrupt):  # 2 batches per epoch: dies in epoch 2
        run_fit(tmp_path / "cut", epochs=3, crash_after=3, data_root=carvana_root)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    resumed, resumed_history = run_fit(
        tmp_path / "cut", epochs=3, resume=tmp_path / "cut" / "last.pt", data_root=carvana_root
    )

    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming"
    assert resumed_history["train_loss"] == full_history["train_loss"]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss_fn(logits, masks):
        calls["n"] += 1
        loss = nn.functional.binary_cross_entropy_with_logits(logits, masks)
        # 2 train batches + 1 val batch per epoch: the 5th call is epoch 2's second training step
        return loss * float("nan") if calls["n"] == 5 else loss

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2 of 2.*last good checkpoint is .*last\.pt"):
        _fit_with_loss(tmp_path, loss_fn)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def _fit_with_loss(tmp_path, loss_fn):
    set_seed(0)
    model = tiny_model()
    train, val = loaders()
    fit(
        model,
        train,
        val,
        epochs=3,
        loss_fn=loss_fn,
        optimizer=torch.optim.Adam(model.parameters()),
        device="cpu",
        num_classes=1,
        checkpoint_dir=tmp_path,
        progress=False,
        log=lambda line: None,
    )


@pytest.mark.parametrize("amp_dtype, channels_last", [(None, False), (torch.bfloat16, True)])
def test_time_train_step_times_a_copy_and_leaves_the_model_alone(amp_dtype, channels_last):
    model = tiny_model()
    before = {name: p.clone() for name, p in model.state_dict().items()}
    images, masks = tiny_data(2)[:]
    seconds = time_train_step(
        model, images, masks, nn.BCEWithLogitsLoss(), amp_dtype=amp_dtype, channels_last=channels_last, steps=1
    )
    assert 0 < seconds < 60
    for name, p in model.state_dict().items():
        assert torch.equal(p, before[name]), f"{name} changed: the timing must train a copy"
    assert all(p.grad is None for p in model.parameters())


def test_a_second_onecycle_on_the_same_optimizer_peaks_at_the_first_ones_max_lr():
    from unet_tutorial.schedules import make_scheduler

    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [weight], "lr": 1e-3}])
    for phase in range(2):  # e.g. a frozen phase, then an unfrozen one, each with its own schedule
        scheduler = make_scheduler("onecycle", optimizer, epochs=1, steps_per_epoch=10)
        lrs = []
        for _ in range(10):
            optimizer.step()
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        assert max(lrs) == pytest.approx(1e-3, rel=0.05), f"phase {phase} peaked at {max(lrs)}"
        assert lrs[-1] < 1e-4  # annealed towards the end of each phase


def test_evaluate_counts_at_the_mask_resolution_when_masks_are_larger():
    class Halves(nn.Module):  # logits (1, 2, 2, 2): class 0 on the left column, class 1 on the right
        def forward(self, images):
            left = torch.tensor([[5.0, -5.0], [5.0, -5.0]])  # (2, 2)
            return torch.stack([left, -left])[None].expand(len(images), -1, -1, -1)  # (B, 2, 2, 2)

    masks = torch.zeros(1, 4, 8, dtype=torch.long)  # a 4x8 annotation: left 3 columns class 0, the rest class 1
    masks[:, :, 3:] = 1
    loader = DataLoader(TensorDataset(torch.zeros(1, 3, 2, 2), masks), batch_size=1)
    result = evaluate(Halves(), loader, "cpu", num_classes=2, loss_fn=nn.functional.cross_entropy, progress=False)
    # Bilinear upsampling puts the class boundary at the middle (column 4): column 3 is the only error.
    assert result["pixel_accuracy"] == pytest.approx(7 / 8)
    assert result["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)


def test_evaluate_loss_is_the_mean_per_image_on_a_hand_case():
    class Constant(nn.Module):  # logit 0 everywhere: p = 0.5, so BCE is ln 2 at every pixel, whatever the mask
        def forward(self, images):
            return torch.zeros(len(images), 1, *images.shape[-2:])

    class Certain(nn.Module):  # logit +20 everywhere: BCE ~0 on a foreground pixel, ~20 on a background one
        def forward(self, images):
            return torch.full((len(images), 1, *images.shape[-2:]), 20.0)

    masks = torch.zeros(3, 1, 2, 2)
    masks[0] = 1.0  # image 0 all foreground, images 1 and 2 all background
    loader = DataLoader(TensorDataset(torch.zeros(3, 3, 2, 2), masks), batch_size=2)  # batches of 2 and 1
    bce = nn.BCEWithLogitsLoss()
    assert evaluate(Constant(), loader, "cpu", num_classes=1, loss_fn=bce, progress=False)["loss"] == pytest.approx(
        math.log(2)
    )
    # per image: ~0, 20, 20; batch means 10 and 20, weighted by images: (10 * 2 + 20) / 3
    assert evaluate(Certain(), loader, "cpu", num_classes=1, loss_fn=bce, progress=False)["loss"] == pytest.approx(
        40 / 3, rel=1e-6
    )


def test_planned_rates_are_the_rates_fit_starts_each_epoch_with(tmp_path):
    from unet_tutorial.schedules import planned_rates

    loader = DataLoader(tiny_data(8), batch_size=2)  # 4 steps per epoch
    for name in ("onecycle", "cosine", None):
        model = tiny_model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        history = fit(
            model,
            loader,
            loader,
            epochs=3,
            loss_fn=nn.BCEWithLogitsLoss(),
            optimizer=optimizer,
            device="cpu",
            num_classes=1,
            scheduler=name,
            progress=False,
        )
        rates = planned_rates(name, 1e-3, epochs=3, steps_per_epoch=4)
        assert len(rates) == 12
        assert rates[::4] == pytest.approx(history["lr"]), name  # the logged rate is each epoch's first step's
    onecycle = planned_rates("onecycle", 1e-3, epochs=3, steps_per_epoch=4)
    assert (
        max(onecycle) == pytest.approx(1e-3, rel=0.01) and onecycle[0] < 1e-4 and onecycle[-1] < 1e-5
    )  # warm up, anneal
    with pytest.raises(ValueError, match="plateau"):
        planned_rates("plateau", 1e-3, epochs=1, steps_per_epoch=4)
    with pytest.raises(ValueError, match=r"planned_rates\(name='nonsense'\) is not known"):
        planned_rates("nonsense", 1e-3, epochs=1, steps_per_epoch=4)
    for bad in (
        {"epochs": 0, "steps_per_epoch": 4},
        {"epochs": 2.0, "steps_per_epoch": 4},
        {"epochs": 1, "steps_per_epoch": 0},
    ):
        with pytest.raises(ValueError, match="give a whole number of 1 or more"):
            planned_rates("cosine", 1e-3, **bad)  # cosine and None would return [] without a word


def test_a_loaded_run_logs_the_epochs_it_holds_as_they_ran(tmp_path):
    """A finished run loaded from its checkpoint trains nothing, and its log still shows each stored epoch."""
    from unet_tutorial.epoch_log import stored_epoch_lines

    set_seed(0)
    model = tiny_model()
    train, val = loaders()
    kwargs = dict(loss_fn=nn.BCEWithLogitsLoss(), device="cpu", num_classes=1, checkpoint_dir=tmp_path, progress=False)
    history = fit(model, train, val, epochs=2, optimizer=torch.optim.Adam(model.parameters()), log=print, **kwargs)
    lines: list[str] = []
    fit(
        model,
        train,
        val,
        epochs=2,
        optimizer=torch.optim.Adam(model.parameters()),
        resume=tmp_path / "last.pt",
        log=lines.append,
        **kwargs,
    )
    stored = [line for line in lines if line.endswith("(stored)")]
    assert stored == stored_epoch_lines(history, "dice_per_image", 2) and len(stored) == 2
    assert stored[1].startswith(f"epoch 2/2  train_loss {history['train_loss'][1]:.4f}")
    assert f"val_dice_per_image {history['val_dice_per_image'][1]:.4f}" in stored[1]
    assert "lr 1.00e-03" in stored[1]  # the rate the epoch trained at, as the live line gives it
    assert f"{history['val_dice_per_image'][0]:.4f} *" in stored[0]  # the first epoch is a new best, as fit marked it
    assert any("nothing left to train" in line for line in lines)
