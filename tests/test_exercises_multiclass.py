"""Notebook 05's self-checks: each plausible wrong answer gets its own diagnosis, no message shows the expected
value unless ``reveal=True``, and the notebook's smoke run gives every check something it can reject."""

from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
from ade20k_fakes import AlwaysWall, thin_lines

from unet_tutorial.course.exercises import multiclass as checks
from unet_tutorial.course.exercises.multiclass import REVEAL_HINT

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_ade20k_multiclass.py"
IGNORE = 255


def failure(check, *args, **kwargs) -> str:
    """The message of the AssertionError ``check`` raises (it must raise one)."""
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    return str(error.value)


def hidden(message: str) -> None:
    """A miss says how to see the expected value, and does not show it."""
    assert REVEAL_HINT in message and "Expected" not in message, message


# --- Exercise 1: median-frequency weights ---------------------------------------------------------------------------


def right_weights(counts):
    freq = counts.double() / counts.sum()
    present = freq > 0
    weights = freq[present].quantile(0.5) / freq
    return torch.where(present, weights, weights[present].max())


def weights_by(reference, *, inverted=False, absent="max"):
    def weights_fn(counts):
        freq = counts.double() / counts.sum()
        present = freq > 0
        weights = freq / reference(freq, present) if inverted else reference(freq, present) / freq
        fill = {"max": weights[present].max(), "zero": torch.tensor(0.0, dtype=torch.float64)}.get(absent)
        return weights if absent == "inf" else torch.where(present, weights, fill)

    return weights_fn


MEDIAN = lambda freq, present: freq[present].quantile(0.5)  # noqa: E731
WRONG_WEIGHTS = {  # a wrong method -> words its diagnosis must hold
    "lower median": (weights_by(lambda f, p: f[p].median()), "lower of the two middle"),
    "mean": (weights_by(lambda f, p: f[p].mean()), "mean frequency"),
    "median over zeros too": (weights_by(lambda f, p: f.quantile(0.5)), "never occur (f = 0) too"),
    "inverted": (weights_by(MEDIAN, inverted=True), "upside down"),
    "inf for absent classes": (weights_by(MEDIAN, absent="inf"), "inf or NaN"),
    "zero for absent classes": (weights_by(MEDIAN, absent="zero"), "classes that never occur are not"),
    "inverse frequency": (lambda counts: counts.sum() / counts.double().clamp(min=1), "are not median(f) / f_c"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_right_weights_pass_in_either_float_dtype(dtype, capsys):
    checks.check_median_frequency_weights(lambda counts: right_weights(counts).to(dtype))
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(WRONG_WEIGHTS))
def test_each_wrong_weighting_method_is_named_without_the_answer(name):
    weights_fn, diagnosis = WRONG_WEIGHTS[name]
    message = failure(checks.check_median_frequency_weights, weights_fn)
    assert diagnosis in message, message
    hidden(message)
    assert "Expected weights" in failure(checks.check_median_frequency_weights, weights_fn, reveal=True)


def test_weights_of_the_wrong_type_or_shape_are_refused():
    assert "return a tensor" in failure(checks.check_median_frequency_weights, lambda c: right_weights(c).tolist())
    assert "one weight per class" in failure(checks.check_median_frequency_weights, lambda c: right_weights(c)[:-1])
    assert "floating-point" in failure(checks.check_median_frequency_weights, lambda c: right_weights(c).long())


def test_a_float64_answer_that_passes_the_check_passes_the_next_cell_too():
    """The notebook's cell after the check compares the learner's function with section 3's weights: both must
    accept what the other accepts (a float64 answer once passed the check and failed that cell on its dtype)."""
    from unet_tutorial.losses import class_weights

    cell = next(c.source for c in jupytext.read(NOTEBOOK).cells if c.source.startswith("mine = median_frequency"))
    masks = torch.tensor([0] * 50 + [1] * 30 + [2] * 4 + [5] * 1 + [IGNORE] * 7)
    counts = torch.bincount(masks[masks != IGNORE], minlength=150)
    for dtype in (torch.float32, torch.float64):
        namespace = {
            "torch": torch,
            "median_frequency_weights": lambda c, dtype=dtype: right_weights(c).to(dtype),
            "pixel_counts": counts,
            "MAX_CLASS_WEIGHT": 10.0,
            "weights": class_weights(masks, 150, ignore_index=IGNORE, method="median").clamp(max=10.0),
            "order": torch.argsort(counts, descending=True, stable=True),
        }
        checks.check_median_frequency_weights(namespace["median_frequency_weights"])
        exec(cell, namespace)  # raises if the cell disagrees with the check


# --- Experiment 2: per-half gaps of the weighted model over the plain one -----------------------------------------


def planted_confusions(seed: int = 8, classes: int = 10):
    """Confusion matrices of two models on the same images, and training shares, where every known mistake of
    the experiment gives other numbers than the right method (an odd number of classes in the validation
    masks, validation order unlike training order, a class with training pixels but none in validation)."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.randint(50, 500, (classes,), generator=generator)  # (C,) validation pixels per class
    truth[3] = 0  # in the training masks, not in the validation ones

    def confusion() -> torch.Tensor:
        rows = torch.rand(classes, classes, generator=generator) ** 4
        rows += torch.eye(classes) * torch.rand(classes, 1, generator=generator)
        counts = (rows / rows.sum(1, keepdim=True) * truth[:, None]).floor().long()  # (C, C)
        counts[range(classes), range(classes)] += truth - counts.sum(1)  # each row sums to its class's pixels
        return counts

    share = torch.rand(classes, generator=generator, dtype=torch.float64)
    return confusion(), confusion(), share / share.sum()


def half_gaps(plain, weighted, share, method="right"):
    return checks._half_gaps(plain, weighted, share, method)


def test_the_planted_data_tells_every_mistake_apart():
    plain, weighted, share = planted_confusions()
    right = half_gaps(plain, weighted, share)
    assert min(abs(right[0]), abs(right[1]), abs(right[0] - right[1])) > 0.01, right
    for method in ("validation share", "all classes", "round up", "rarest first", "whole"):
        assert max(abs(a - b) for a, b in zip(half_gaps(plain, weighted, share, method), right)) > 0.005, method


def test_the_right_gaps_pass(capsys):
    plain, weighted, share = planted_confusions()
    frequent, rare = half_gaps(plain, weighted, share)
    checks.check_weighting_effect(frequent, rare, plain, weighted, share)
    checks.check_weighting_effect(np.float32(frequent), torch.tensor(rare), plain, weighted, share)  # any number
    assert capsys.readouterr().out.count("all checks passed") == 2


@pytest.mark.parametrize(
    ("mistake", "diagnosis"),
    [
        ("flipped", "signs are flipped"),
        ("swapped", "swapped"),
        ("validation share", "share of the validation pixels"),
        ("all classes", "never occur in the validation masks"),
        ("round up", "takes the middle class"),
        ("rarest first", "rarest first"),
        ("whole", "over all the classes"),
        ("frequent only", "frequent_gap is right, rare_gap is not"),
        ("rare only", "rare_gap is right, frequent_gap is not"),
        ("guess", "neither gap matches"),
    ],
)
def test_each_wrong_gap_is_named_without_the_answer(mistake, diagnosis):
    plain, weighted, share = planted_confusions()
    frequent, rare = half_gaps(plain, weighted, share)
    answers = {
        "flipped": (-frequent, -rare),
        "swapped": (rare, frequent),
        "frequent only": (frequent, rare + 0.1),
        "rare only": (frequent - 0.1, rare),
        "guess": (0.3, -0.3),
    }.get(mistake) or half_gaps(plain, weighted, share, mistake)
    message = failure(checks.check_weighting_effect, *answers, plain, weighted, share)
    assert diagnosis in message, message
    hidden(message)
    assert f"{frequent:+.4f}" not in message and f"{rare:+.4f}" not in message
    revealed = failure(checks.check_weighting_effect, *answers, plain, weighted, share, reveal=True)
    assert f"frequent_gap {frequent:+.4f} and rare_gap {rare:+.4f}" in revealed


def test_gaps_that_are_no_numbers_nan_or_from_other_images_are_refused():
    plain, weighted, share = planted_confusions()
    assert "should be a number" in failure(checks.check_weighting_effect, "weighted", "plain", plain, weighted, share)
    assert "IoU is 0/0" in failure(checks.check_weighting_effect, float("nan"), 0.1, plain, weighted, share)
    other = weighted.clone()
    other[0, 0] += 5
    assert "same images" in failure(checks.check_weighting_effect, 0.0, 0.0, plain, other, share)


# --- Experiment 3: network or annotation resolution ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "diagnosis"),
    [
        ((0.25, 1.0), "swapped"),
        ((1.0, 1.0), "both numbers are counted at the network's resolution"),
        ((0.25, 0.25), "both numbers are counted at the annotation's resolution"),
        ((1.0, 0.5), "at_annotation is not"),
        ((0.5, 0.25), "at_network is not"),
    ],
)
def test_each_wrong_resolution_answer_is_named_without_the_answer(tmp_path, answers, diagnosis):
    root = thin_lines(tmp_path)
    message = failure(checks.check_annotation_resolution, *answers, AlwaysWall(), root, 16)
    assert diagnosis in message, message
    hidden(message)
    assert "1.0000" not in message and "0.2500" not in message
    revealed = failure(checks.check_annotation_resolution, *answers, AlwaysWall(), root, 16, reveal=True)
    assert "at_network 1.0000 and at_annotation 0.2500" in revealed
    checks.check_annotation_resolution(1.0, 0.25, AlwaysWall(), root, 16)  # the right answer passes
    assert "should be a number" in failure(checks.check_annotation_resolution, "1.0", None, AlwaysWall(), root, 16)


class NearestColour(torch.nn.Module):
    """A fixed stand-in for a trained model on the generated scenes: each pixel gets the drawn class whose base
    colour is nearest to it (the images normalised with ImageNet's mean and std, as eval_transforms does)."""

    def __init__(self):
        super().__init__()
        from unet_tutorial.course.drawing import _STYLE, _id

        palette = torch.full((150, 3), 1e3)  # a class the scenes never draw: far from every colour
        for name, (rgb, _) in _STYLE.items():
            palette[_id(name) - 1] = torch.tensor(rgb) / 255
        self.register_buffer("palette", palette)

    def forward(self, images):
        from unet_tutorial.conventions import IMAGENET_MEAN, IMAGENET_STD

        rgb = images * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
        return -((rgb[:, None] - self.palette[None, :, :, None, None]) ** 2).sum(2)  # (B, 150, H, W)


@pytest.mark.parametrize("model", [NearestColour(), AlwaysWall()], ids=["nearest-colour", "always-wall"])
def test_smoke_scenes_at_the_smoke_short_side_tell_the_two_resolutions_apart(tmp_path, model):
    """Smoke mode scores its 64 x 96 scenes at the settings' short side. At 32 px, exactly half, the nearest resize
    of the masks and the bilinear upsampling of the logits line up, and the two resolutions scored nearly the
    same (the trained smoke model: 0.0467 both); at 16 px they differ clearly, so the check rejects a swapped
    answer and both numbers at one resolution, with a model that segments the scenes and with one that does not."""
    from tools.settings import notebook_settings
    from unet_tutorial.course.sample_data import make_ade20k_like
    from unet_tutorial.data import ADE20KDataset
    from unet_tutorial.train import evaluate
    from unet_tutorial.transforms import eval_transforms

    short_side = notebook_settings(NOTEBOOK, "smoke")["CROP"]["sample"]
    root = make_ade20k_like(tmp_path / "scenes", 1, 4, size=(64, 96), seed=0)  # smoke mode's validation scenes
    scores = {}
    for keep_mask in (False, True):
        dataset = ADE20KDataset(root, "validation", eval_transforms(None, short_side=short_side, keep_mask=keep_mask))
        loader = torch.utils.data.DataLoader(dataset, batch_size=1)
        scores[keep_mask] = evaluate(model, loader, "cpu", num_classes=150, ignore_index=255, progress=False)["miou"]
    at_network, at_annotation = scores[False], scores[True]
    assert abs(at_network - at_annotation) > 0.05 * at_annotation, scores  # far beyond the check's tolerance
    checks.check_annotation_resolution(at_network, at_annotation, model, root, short_side)
    for answers, diagnosis in (
        ((at_annotation, at_network), "swapped"),
        ((at_network, at_network), "both numbers are counted at the network's resolution"),
        ((at_annotation, at_annotation), "both numbers are counted at the annotation's resolution"),
    ):
        message = failure(checks.check_annotation_resolution, *answers, model, root, short_side)
        assert diagnosis in message, message
        hidden(message)


# --- Experiment 4: padding share ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "diagnosis"),
    [
        (0.556, "share of crops that hold some padding"),
        (0.0, "hold no padding"),
        (22.0, "looks like a percentage"),
        (0.103, "short side equals the crop"),
        (0.45, "check the arguments of scale_crop_transforms"),
    ],
)
def test_each_wrong_padding_share_is_named_without_the_answer(share, diagnosis):
    message = failure(checks.check_padding_share, share)
    assert diagnosis in message, message
    hidden(message)
    expected = checks._padding_share((512, 683), 512, 384, (0.5, 2.0))
    assert f"{expected:.3f}" not in message and f"{expected:.1%}" not in message
    assert f"a padding share of {expected:.3f}" in failure(checks.check_padding_share, share, reveal=True)


def test_padding_shares_near_the_truth_pass_and_impossible_ones_fail(capsys):
    checks.check_padding_share(0.22)
    checks.check_padding_share(0.10, short_side=512)
    assert capsys.readouterr().out.count("all checks passed") == 2
    assert "between 0 and 1" in failure(checks.check_padding_share, -0.1)
    assert "should be a number" in failure(checks.check_padding_share, "22%")


# --- The notebook's smoke run: the experiments' checks can fail on what CI gives them ----------------------------


@pytest.mark.slow
def test_the_smoke_run_gives_the_experiment_checks_something_to_reject(tmp_path, monkeypatch):
    """Section 5 and 6 as the notebook runs them in smoke mode (its settings cell's values): the two arms differ,
    so experiment 2's planted mistakes fail on their confusion matrices, and experiment 3's swapped answer fails
    on the plain model (in smoke mode the checks once saw an untrained model and equal resolutions)."""
    from torch.utils.data import DataLoader

    from tools.settings import notebook_settings
    from unet_tutorial.course.sample_data import ade20k_data
    from unet_tutorial.data import ADE20KDataset
    from unet_tutorial.losses import class_weights, cross_entropy, dice_loss
    from unet_tutorial.metrics import SegmentationMetrics
    from unet_tutorial.models import build_model
    from unet_tutorial.train import evaluate, fit
    from unet_tutorial.transforms import eval_transforms, scale_crop_transforms
    from unet_tutorial.utils import set_seed

    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(tmp_path))
    s = notebook_settings(NOTEBOOK, "smoke")
    root, real = ade20k_data()
    crop = s["CROP"]["sample"]
    train = ADE20KDataset(
        root,
        "training",
        scale_crop_transforms(crop, short_side=crop, scale=s["SCALE"]),
        limit=s["TRAIN_LIMIT"]["sample"],
        seed=0,
    )
    val = ADE20KDataset(root, "validation", eval_transforms(None, short_side=crop, keep_mask=True), seed=0)
    masks = [ADE20KDataset(root, "training")[i][1] for i in range(len(train))]
    weights = class_weights(masks, 150, ignore_index=255).clamp(max=s["MAX_CLASS_WEIGHT"])
    losses = {
        "plain": lambda logits, t: cross_entropy(logits, t, ignore_index=255) + dice_loss(logits, t, ignore_index=255),
        "weighted": lambda logits, t: (
            cross_entropy(logits, t, weight=weights, ignore_index=255) + dice_loss(logits, t, ignore_index=255)
        ),
    }
    models, confusions = {}, {}
    for name, loss_fn in losses.items():
        set_seed(0)
        model = build_model(s["MODEL"], **s["MODEL_KWARGS"])
        loader = DataLoader(
            train,
            batch_size=s["BATCH_SIZE"],
            shuffle=True,
            drop_last=len(train) > s["BATCH_SIZE"],
            generator=torch.Generator(),
        )
        fit(
            model,
            loader,
            DataLoader(val, batch_size=4),
            epochs=s["EPOCHS"]["sample"],
            loss_fn=loss_fn,
            optimizer=torch.optim.AdamW(model.parameters(), lr=s["LR"], weight_decay=1e-4),
            device="cpu",
            num_classes=150,
            ignore_index=255,
            scheduler="onecycle",
            progress=False,
            log=lambda line: None,
        )
        metrics = SegmentationMetrics(150, ignore_index=255)
        evaluate(
            model,
            DataLoader(val, batch_size=4),
            "cpu",
            num_classes=150,
            ignore_index=255,
            metrics=metrics,
            progress=False,
        )
        models[name], confusions[name] = model, metrics.confusion_matrix()
    share = torch.bincount(torch.cat([m[m != 255] for m in masks]), minlength=150).double()
    share /= share.sum()
    frequent, rare = checks._half_gaps(confusions["plain"], confusions["weighted"], share)
    checks.check_weighting_effect(frequent, rare, confusions["plain"], confusions["weighted"], share)
    for planted in ((-frequent, -rare), (rare, frequent), (0.0, 0.0)):
        failure(checks.check_weighting_effect, *planted, confusions["plain"], confusions["weighted"], share)

    scores = {}
    for keep_mask in (False, True):
        dataset = ADE20KDataset(root, "validation", eval_transforms(None, short_side=crop, keep_mask=keep_mask), seed=0)
        scores[keep_mask] = evaluate(
            models["plain"], DataLoader(dataset, batch_size=1), "cpu", num_classes=150, ignore_index=255, progress=False
        )["miou"]
    assert abs(scores[False] - scores[True]) > 1e-3, scores  # the notebook's reading has a difference to read
    checks.check_annotation_resolution(scores[False], scores[True], models["plain"], root, crop)
    for planted in ((scores[True], scores[False]), (scores[False],) * 2, (scores[True],) * 2):
        failure(checks.check_annotation_resolution, *planted, models["plain"], root, crop)
