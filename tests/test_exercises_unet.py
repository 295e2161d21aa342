"""Notebook 01's self-checks: each plausible wrong answer gets its diagnosis, and no miss prints the answer.

The answers that depend on the data (the pooling round trip) are checked on the notebook's own masks at the
smoke-mode and CPU sizes, so a check that runs in CI can still fail there.
"""

import re
from pathlib import Path

import jupytext
import pytest
import torch
import torch.nn.functional as F

from unet_tutorial.course.exercises.unet import check_bilinear_up, check_depth_to_see, check_pooling_round_trip
from unet_tutorial.model import DoubleConv, Up

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_unet_from_scratch.py"


def miss(check, *args, **kwargs) -> str:
    """The message of the AssertionError ``check(*args, **kwargs)`` must raise."""
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    return str(error.value)


# --- Exercise 1: BilinearUp ----------------------------------------------------------------------------------------


class BilinearUp(torch.nn.Module):
    """The right answer: bilinear x2, a 1x1 convolution, [skip, x], DoubleConv."""

    def __init__(self, in_channels, out_channels, *, bias=True, half=None, align_corners=False, mode="bilinear"):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners
        self.pointwise = torch.nn.Conv2d(in_channels, half or in_channels // 2, kernel_size=1, bias=bias)
        self.conv = DoubleConv(in_channels, out_channels)

    def up(self, x):
        corners = {"align_corners": self.align_corners} if self.mode == "bilinear" else {}
        return self.pointwise(F.interpolate(x, scale_factor=2, mode=self.mode, **corners))

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class ConvolutionFirst(torch.nn.Module):
    """The same layers registered in the other order: DoubleConv first."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)
        self.pointwise = torch.nn.Conv2d(in_channels, in_channels // 2, kernel_size=1)

    def forward(self, x, skip):
        x = self.pointwise(F.interpolate(x, scale_factor=2, mode="bilinear"))
        return self.conv(torch.cat([skip, x], dim=1))


class ConvolveThenResize(BilinearUp):
    """The 1x1 convolution before the resize: both are linear and the resize's weights sum to 1, so it is right."""

    def up(self, x):
        return F.interpolate(self.pointwise(x), scale_factor=2, mode="bilinear")


def test_bilinear_up_accepts_the_right_step_and_its_equivalent(capsys):
    check_bilinear_up(BilinearUp)
    check_bilinear_up(ConvolveThenResize)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "diagnosis"),
    [
        (Up, "transposed convolution"),  # section 3's step
        (lambda i, o: BilinearUp(i, o, half=i), "maps 8 -> 8 channels"),
        (lambda i, o: BilinearUp(i, o, bias=False), "no bias"),
        (ConvolutionFirst, "registered in another order"),
        (lambda i, o: BilinearUp(i, o, mode="nearest"), "nearest-neighbour"),
        (lambda i, o: BilinearUp(i, o, align_corners=True), "align_corners=True"),
    ],
    ids=["transposed", "channels", "bias", "order", "nearest", "corners"],
)
def test_bilinear_up_names_each_mistake_without_the_expected_shapes(answer, diagnosis, capsys):
    message = miss(check_bilinear_up, answer)
    assert diagnosis in message
    assert "expected [" not in message and "passed" not in capsys.readouterr().out


def test_bilinear_up_reveals_the_expected_shapes_on_request(capsys):
    miss(check_bilinear_up, lambda i, o: BilinearUp(i, o, bias=False), reveal=True)
    assert "expected [(4, 8, 1, 1), (4,)" in capsys.readouterr().out


# --- Experiment 2: the depth that sees a whole image ---------------------------------------------------------------

FIELDS_1024 = ("1656", "824", "3320")  # depths 7, 6 and 8: a message that shows them gives the answer away


def right_rule(field):
    return 2 * field + 8


def test_depth_to_see_accepts_the_right_depth_and_rule(capsys):
    check_depth_to_see(7, image_size=1024, next_field=right_rule)
    check_depth_to_see(7.0, image_size=1024)
    check_depth_to_see(1, image_size=10)
    assert capsys.readouterr().out.count("all checks passed") == 3


@pytest.mark.parametrize(
    ("depth", "diagnosis"),
    [
        (4, "UNet()'s default"),
        (6, "does not yet see the whole 1024 x 1024 image"),
        (8, "a shallower U-Net already sees"),
        (10, "bottom grid shrinks to one pixel"),
        (20, "adding a constant instead of doubling"),
        (0, "at least one level"),
    ],
)
def test_depth_to_see_diagnoses_the_method_and_hides_the_answer(depth, diagnosis):
    message = miss(check_depth_to_see, depth, image_size=1024)
    assert diagnosis in message and "reveal=True" in message and "next_field" in message
    assert not re.search(r"\b7\b", message.replace("1024", "")) and not any(f in message for f in FIELDS_1024)


def test_depth_to_see_tests_the_rule_on_the_measured_depths_first():
    message = miss(check_depth_to_see, 8, image_size=1024, next_field=lambda field: 2 * field)
    assert "takes depth 1's field, 18 px, to 36 px, but depth 2 measures 44 px" in message
    assert not any(f in message for f in FIELDS_1024)
    message = miss(check_depth_to_see, 6, image_size=1024, next_field=right_rule)  # right rule, stopped one short
    assert "does not yet see" in message and "Write your rule" not in message


def test_depth_to_see_refuses_a_fraction_and_reveals_on_request(capsys):
    assert "whole number" in miss(check_depth_to_see, 6.5, image_size=1024)
    miss(check_depth_to_see, 6, image_size=1024, reveal=True)
    out = capsys.readouterr().out
    assert "depth 7: 1656 px" in out and "the smallest depth that sees 1024 px is 7" in out


# --- Experiment 3: the pooling round trip, on the notebook's own masks ---------------------------------------------


@pytest.fixture(scope="module")
def make_shapes():
    """The notebook's make_shapes, run from its source (so the test follows the notebook's data)."""
    cell = next(c.source for c in jupytext.read(NOTEBOOK).cells if "def make_shapes" in c.source)
    namespace: dict = {}
    exec(cell.split("\nimages, masks = make_shapes")[0], namespace)  # the imports and the def, not the call
    return namespace["make_shapes"]


def reference_first_lossy(masks, mode="bilinear", factor=lambda k: 2**k, measure="kept"):
    """The exercise done plainly, as a learner would: the first k whose round trip keeps less than 80 %."""
    truth = masks > 0
    for k in range(1, 8):
        if factor(k) > masks.shape[-1]:
            return None
        corners = {"align_corners": False} if mode == "bilinear" else {}
        restored = F.interpolate(F.avg_pool2d(masks, factor(k)), size=masks.shape[-2:], mode=mode, **corners) > 0.5
        share = {
            "kept": (restored & truth).sum() / truth.sum(),
            "dice": 2 * (restored & truth).sum() / (restored.sum() + truth.sum()),
        }[measure].item()
        if share < 0.8:
            return k
    return None


@pytest.mark.parametrize(("num_images", "size"), [(4, 64), (8, 96), (8, 128)], ids=["smoke", "cpu", "gpu"])
def test_pooling_round_trip_accepts_only_the_answer_for_these_masks(make_shapes, num_images, size, capsys):
    _, masks = make_shapes(num_images, size)
    right = reference_first_lossy(masks)
    check_pooling_round_trip(right, masks)
    assert "all checks passed" in capsys.readouterr().out
    for planted in (right - 1, right + 1):  # a run of another size would have said one of these
        message = miss(check_pooling_round_trip, planted, masks)
        assert "depends on the masks' size" in message and "reveal=True" in message
        assert f"is {right}" not in message and "%" not in message.replace("80 %", "").replace("20 %", "")


def test_pooling_round_trip_rejects_the_old_answer_box_in_smoke_mode(make_shapes):
    _, smoke_masks = make_shapes(4, 64)
    _, cpu_masks = make_shapes(8, 96)
    assert reference_first_lossy(smoke_masks) == 3 and reference_first_lossy(cpu_masks) == 4
    miss(check_pooling_round_trip, 4, smoke_masks)  # the answer the old text typed for every mode


def test_pooling_round_trip_names_the_slip_that_gives_the_answer(make_shapes):
    _, masks = make_shapes(8, 96)
    by_factor_k = reference_first_lossy(masks, factor=lambda k: k)
    assert by_factor_k != reference_first_lossy(masks)
    assert "a factor of k, not 2**k" in miss(check_pooling_round_trip, by_factor_k, masks)
    _, masks = make_shapes(4, 64)
    by_dice = reference_first_lossy(masks, measure="dice")
    assert by_dice != reference_first_lossy(masks)
    assert "the round trip's Dice" in miss(check_pooling_round_trip, by_dice, masks)


def test_pooling_round_trip_names_an_off_by_one_before_a_slip_that_gives_the_same_number(make_shapes):
    """On the smoke masks, measuring Dice gives one pooling more than the answer: a plain off-by-one gives the
    same number, and is the likelier mistake, so it is named first and the slip only as a possibility."""
    _, masks = make_shapes(4, 64)
    right = reference_first_lossy(masks)
    assert reference_first_lossy(masks, measure="dice") == right + 1
    message = miss(check_pooling_round_trip, right + 1, masks)
    assert message.index("one pooling too many") < message.index("also what you would get if you measured the round")
    assert "your answer is what you get" not in message and f"is {right}" not in message
    message = miss(check_pooling_round_trip, right - 1, masks)  # no slip gives this one: the off-by-one alone
    assert "one pooling too few" in message and "would get if" not in message


def test_pooling_round_trip_diagnoses_too_few_and_too_many():
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 8:40, 8:40] = 1  # one 32-pixel square: the round trip keeps most of it until the cells are 16 pixels
    assert reference_first_lossy(masks) == 4
    assert "at least 80 % of these masks' foreground still comes back" in miss(check_pooling_round_trip, 1, masks)
    assert "fewer poolings already lose" in miss(check_pooling_round_trip, 6, masks)  # 5: counting all pixels
    message = miss(check_pooling_round_trip, 5, masks)  # one too many, and what counting all pixels gives
    assert message.index("one pooling too many") < message.index("the share of all pixels that are right")
    assert "would get if you pooled by a factor of k" in miss(check_pooling_round_trip, 12, masks)
    assert "whole number" in miss(check_pooling_round_trip, 2.5, masks)
    assert "at least one pooling" in miss(check_pooling_round_trip, 0, masks)


def test_pooling_round_trip_reveals_on_request(make_shapes, capsys):
    _, masks = make_shapes(4, 64)
    miss(check_pooling_round_trip, 5, masks, reveal=True)
    assert "the first k below 80 % is 3" in capsys.readouterr().out
