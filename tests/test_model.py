"""unet_tutorial.model: shapes for any size, parameter counts, gradients, checkpointing, clear errors."""

import pytest
import torch
from torch import nn

from unet_tutorial.measure import activation_bytes, measure_training_step, receptive_field, unet_levels
from unet_tutorial.model import DoubleConv, Down, OutConv, UNet, Up


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_blocks_shapes():
    x = torch.randn(2, 3, 20, 14)
    assert DoubleConv(3, 8)(x).shape == (2, 8, 20, 14)
    assert Down(3, 8)(x).shape == (2, 8, 10, 7)
    assert OutConv(3, 5)(x).shape == (2, 5, 20, 14)
    coarse, skip = torch.randn(2, 16, 5, 7), torch.randn(2, 8, 10, 14)
    for bilinear in (False, True):
        assert Up(16, 8, bilinear)(coarse, skip).shape == (2, 8, 10, 14)
    # A skip one pixel larger than 2x the coarse input (odd sizes) is matched by padding.
    assert Up(16, 4)(coarse, torch.randn(2, 8, 11, 15)).shape == (2, 4, 11, 15)
    # Any skip width, e.g. from a pretrained encoder.
    assert Up(16, 4, skip_channels=3)(coarse, torch.randn(2, 3, 10, 14)).shape == (2, 4, 10, 14)


def test_double_conv_has_no_bias_before_batchnorm():
    convs = [m for m in DoubleConv(3, 8).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(conv.bias is None for conv in convs)


@pytest.mark.parametrize("size", [(1, 1), (7, 7), (16, 16), (31, 17), (32, 33), (45, 64), (63, 2), (100, 51)])
@pytest.mark.parametrize("depth,bilinear", [(1, False), (2, True), (3, False), (4, False), (4, True)])
def test_unet_output_matches_input_size(size, depth, bilinear):
    model = UNet(in_channels=2, num_classes=3, base_channels=2, depth=depth, bilinear=bilinear).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 2, *size))
    assert logits.shape == (2, 3, *size)


def test_padding_does_not_change_an_image_already_a_multiple_of_2_to_the_depth():
    model = UNet(base_channels=2, depth=2).eval()
    x = torch.randn(1, 3, 12, 8)
    with torch.no_grad():
        padded_inside = model(x[..., :11, :7])  # padded to 12 x 8 inside, like x
        same = model(x)
    assert padded_inside.shape == (1, 1, 11, 7) and same.shape == (1, 1, 12, 8)


def test_canonical_parameter_counts():
    # Ronneberger et al. 2015 with padding and BatchNorm: the widely quoted 31,037,698.
    assert count(UNet(in_channels=3, num_classes=2)) == 31_037_698
    # Bilinear decoder: a 1x1 conv replaces each 2x2 transposed conv (4x fewer weights there).
    assert count(UNet(in_channels=3, num_classes=2, bilinear=True)) == 28_948_738


def test_parameter_count_by_hand_for_a_small_unet():
    b, c_in, k = 4, 3, 1  # base channels, in_channels, num_classes; depth 1

    def double_conv(i: int, o: int) -> int:
        return 9 * i * o + 2 * o + 9 * o * o + 2 * o  # two bias-free 3x3 convs, BN weight and bias twice

    expected = (
        double_conv(c_in, b)
        + double_conv(b, 2 * b)  # inc, down
        + (4 * 2 * b * b + b)
        + double_conv(2 * b, b)  # transposed conv 2x2 with bias, DoubleConv
        + (b * k + k)
    )  # OutConv
    assert count(UNet(in_channels=c_in, num_classes=k, base_channels=b, depth=1)) == expected


def test_backward_reaches_every_parameter():
    model = UNet(num_classes=2, base_channels=4, depth=3)
    logits = model(torch.randn(2, 3, 24, 40))
    nn.functional.cross_entropy(logits, torch.randint(0, 2, (2, 24, 40))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


@pytest.mark.parametrize("bilinear", [False, True])
def test_checkpointing_gives_identical_outputs_gradients_and_batchnorm_statistics(bilinear):
    torch.manual_seed(0)
    plain = UNet(num_classes=2, base_channels=4, depth=3, bilinear=bilinear)
    ckpt = UNet(num_classes=2, base_channels=4, depth=3, bilinear=bilinear, checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 37, 29)
    outputs = []
    for model in (plain, ckpt):
        logits = model(x)
        logits.square().mean().backward()
        outputs.append(logits)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=f"gradient of {name} differs")
    # The recomputation in backward must not update BatchNorm's running statistics a second time.
    for (name, a), b in zip(plain.named_buffers(), ckpt.buffers()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"buffer {name} differs")


def test_checkpointing_saves_fewer_activations():
    def saved_bytes(model: nn.Module) -> int:
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.randn(1, 3, 64, 64)).sum()
        return total

    torch.manual_seed(0)
    plain, ckpt = UNet(base_channels=8), UNet(base_channels=8, checkpointing=True)
    assert saved_bytes(ckpt) < 0.5 * saved_bytes(plain)


def test_checkpointing_is_off_without_gradients():
    model = UNet(base_channels=2, depth=2, checkpointing=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 8)).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (1, 4, 32, 32), (3, 32, 32)])
def test_wrong_input_channels_say_what_the_model_expects(shape):
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, H, W\).*in_channels=3"):
        UNet(base_channels=2, depth=2)(torch.randn(*shape))


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match="depth=0"):
        UNet(depth=0)


def test_receptive_field_known_values():
    assert receptive_field(UNet()) == 200  # 140 at the bottleneck, 60 more on the way up
    assert receptive_field(UNet(depth=2)) == 44
    assert receptive_field(DoubleConv(3, 3)) == 5
    assert receptive_field(UNet(depth=4, bilinear=True)) > receptive_field(UNet(depth=4))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_receptive_field_matches_a_measurement_by_perturbing_pixels(depth):
    # Positive weights make every activation positive, so a huge pixel always passes ReLU and max-pool and
    # changes the output exactly when it lies in the receptive field. Images are one row high.
    torch.manual_seed(0)
    model = UNet(in_channels=1, num_classes=1, base_channels=2, depth=depth).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.1)
    width = 160
    base = torch.rand(1, 1, 1, width)
    images = base.repeat(width, 1, 1, 1)
    images[torch.arange(width), 0, 0, torch.arange(width)] += 1000.0  # image i: pixel i perturbed
    measured = 0
    with torch.no_grad():
        reference, perturbed = model(base)[0, 0, 0], model(images)[:, 0, 0]  # (W,), (W, W)
    for column in range(64, 64 + 2**depth):  # every position on the pooling grid
        moved = ((perturbed[:, column] - reference[column]).abs() > 1e-3 * reference[column].abs()).nonzero()
        measured = max(measured, int(moved.max() - moved.min() + 1))
    assert abs(measured - receptive_field(model)) <= 2**depth


def test_unet_levels_reads_channels_resolution_and_parameters():
    model = UNet(num_classes=2)
    levels = unet_levels(model, image_size=(250, 256))  # padded to 256 x 256 inside
    assert [lv["channels"] for lv in levels] == [64, 128, 256, 512, 1024]
    assert [(lv["height"], lv["width"]) for lv in levels] == [(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)]
    total = sum(lv["encoder_params"] + lv["decoder_params"] for lv in levels)
    assert total == count(model) == 31_037_698


@pytest.mark.parametrize(
    "kwargs,size,batch",
    [({"base_channels": 8}, 64, 2), ({"base_channels": 4, "depth": 2, "bilinear": True}, (37, 50), 3)],
)
def test_activation_bytes_matches_what_the_profiler_sees_held_after_forward(kwargs, size, batch):
    from torch.profiler import ProfilerActivity, profile

    model = UNet(**kwargs)
    height, width = (size, size) if isinstance(size, int) else size
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        logits = model(torch.randn(batch, 3, height, width))
    held = sum(e.self_cpu_memory_usage for e in prof.events()) - logits.numel() * logits.element_size()
    estimate = activation_bytes(model, size, batch)
    assert abs(estimate - held) <= 0.02 * held, (estimate, held)
    assert next(model.parameters()).device.type == "cpu"  # the model itself was not moved to "meta"


def test_measure_training_step_memory_time_and_one_pass_of_gradients():
    torch.manual_seed(0)
    plain, ckpt = UNet(base_channels=4, depth=2), UNet(base_channels=4, depth=2, checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    images = torch.randn(2, 3, 32, 32)
    kept_plain, seconds = measure_training_step(plain, images, repeats=3)
    kept_ckpt, _ = measure_training_step(ckpt, images)
    estimate = activation_bytes(plain, 32, batch_size=2)
    assert abs(kept_plain - estimate) <= 0.02 * estimate, (kept_plain, estimate)
    assert 0 < kept_ckpt < 0.5 * kept_plain
    assert 0 < seconds < 10
    # Gradients are zeroed before each pass: after 3 repeats they are one pass's, the same as after 1.
    plain.zero_grad()
    plain(images).mean().backward()
    single = [p.grad.clone() for p in plain.parameters()]
    measure_training_step(plain, images, repeats=3)
    for expected, p in zip(single, plain.parameters()):
        torch.testing.assert_close(p.grad, expected)
