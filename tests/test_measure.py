"""benchmarks/estimates.py: the memory estimate agrees with torch.profiler on CPU; FLOPs counted on the meta device."""

import pytest
import torch
from estimates import profiled_peak_bytes, saved_tensor_bytes, train_flops_per_image, training_memory

from unet_tutorial.losses import ComboLoss
from unet_tutorial.model import UNet

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.mark.parametrize("num_classes", [1, 150])  # Carvana's one logit; ADE20K's 150, where the loss dominates
def test_estimate_is_within_25_percent_of_the_profiled_peak(num_classes):
    torch.manual_seed(0)
    model = UNet(num_classes=num_classes, base_channels=8)
    loss_fn = ComboLoss({"cross_entropy": 1.0, "dice": 1.0}, ignore_index=255)
    batch, size = 2, 96
    estimate = training_memory(model, loss_fn, batch_size=batch, image_size=(size, size))
    images = torch.randn(batch, 3, size, size)
    targets = (
        (torch.rand(batch, 1, size, size) > 0.5).float()
        if num_classes == 1
        else torch.randint(0, num_classes, (batch, size, size))
    )
    optimizer = torch.optim.AdamW(model.parameters())
    loss_fn(model(images), targets).backward()  # a first step creates AdamW's state, as in training
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    peak = profiled_peak_bytes(model, loss_fn, images, targets, optimizer)
    assert 0.75 < estimate["total"] / peak < 1.25, (estimate, peak)
    assert estimate["optimizer"] == 2 * estimate["gradients"]


def test_saved_tensors_grow_with_pixels_and_shrink_under_autocast():
    model, loss_fn = UNet(base_channels=8), ComboLoss({"cross_entropy": 1.0, "dice": 1.0})
    small = saved_tensor_bytes(model, loss_fn, torch.zeros(1, 3, 32, 32))["saved"]
    large = saved_tensor_bytes(model, loss_fn, torch.zeros(1, 3, 64, 64))["saved"]
    assert large == pytest.approx(4 * small, rel=0.05)
    half = saved_tensor_bytes(model, loss_fn, torch.zeros(1, 3, 64, 64), torch.bfloat16)["saved"]
    assert half < 0.9 * large  # convolutions keep 16-bit inputs; max-pool indices stay int64


def test_flops_are_those_of_bench_train():
    # UNet(base 16) at 32 px: 0.2834 GFLOPs per image for forward and backward (tests/test_benchmarks.py)
    assert train_flops_per_image(lambda: UNet(base_channels=16), (32, 32)) / 1e9 == pytest.approx(0.2834, rel=1e-3)
