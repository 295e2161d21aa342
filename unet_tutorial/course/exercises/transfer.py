"""Self-checks of notebook 04 (DenseNet121 transfer learning): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
A miss diagnoses the method and never prints the expected value; ``reveal=True`` prints what the check expected
or measured. The BatchNorm check takes the learner's measuring function, not a number, and calls it on copies of
the learner's model with batches of its own, so it can tell what the function measures.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from unet_tutorial.course.exercises import passed


def _stage_channels(
    block_config: tuple[int, ...],
    growth_rate: int,
    num_init_features: int,
    *,
    halve: str = "between",
    report: str = "output",
    stem: bool = True,
) -> list[int]:
    """DenseNet stage channels, right (the defaults) or with one of the mistakes the check diagnoses.

    halve: "between" (after every block but the last), "never" or "first" (the stem halved before block 1 as
    well); report: "output" (a block's output), "input" (what it reads) or "transition" (after its transition).
    """
    channels, stages = num_init_features, [num_init_features] if stem else []
    for index, layers in enumerate(block_config):
        if halve == "first" and index == 0:
            channels //= 2
        before = channels
        channels += layers * growth_rate
        if halve != "never" and index < len(block_config) - 1:
            channels, after = channels // 2, channels  # the transition
        else:
            after = channels
        stages.append({"output": after, "input": before, "transition": channels}[report])
    return stages


# (mistake, what it says): each a way of counting that learners write, diagnosed without the expected list
_CHANNEL_MISTAKES = (
    (
        {"stem": False},
        "the stem's output is missing: the list starts with num_init_features, then one number per block",
    ),
    ({"halve": "never"}, "the channels never halve: a transition after each block but the last halves them"),
    (
        {"report": "transition"},
        "each number is a transition's output: the list wants what each dense block hands "
        "on, before the transition halves it",
    ),
    ({"halve": "first"}, "the stem goes into the first dense block as it is: there is no transition before block 1"),
    ({"report": "input"}, "each number is what a block reads; the list wants what it hands on, after its layers"),
)


def check_densenet_stage_channels(densenet_stage_channels: Callable[..., list[int]], reveal: bool = False) -> None:
    """Notebook 04: channels after the stem and after each dense block, against torchvision's DenseNets.

    A miss is diagnosed (the stem left out, transitions in the wrong places, inputs for outputs, an argument
    ignored) without the expected list; ``reveal=True`` adds it.
    """
    from torchvision.models import DenseNet

    # DenseNet121, 169 and 201, and two made-up ones; the truth is read off torchvision's modules (no forward pass)
    for config, growth, init in (
        ((6, 12, 24, 16), 32, 64),
        ((6, 12, 32, 32), 32, 64),
        ((6, 12, 48, 32), 32, 64),
        ((2, 3), 12, 16),
        ((1, 1, 1), 8, 24),
    ):
        with torch.device("meta"):  # shapes only: no memory, no time spent initialising weights
            features = DenseNet(growth_rate=growth, block_config=config, num_init_features=init).features
        blocks = [m for name, m in features.named_children() if name.startswith("denseblock")]
        expected = [init] + [b[-1].norm1.num_features + growth for b in (list(blk.values()) for blk in blocks)]
        got = densenet_stage_channels(config, growth_rate=growth, num_init_features=init)
        call = f"densenet_stage_channels({config}, growth_rate={growth}, num_init_features={init})"
        assert isinstance(got, (list, tuple)), f"{call} returned a {type(got).__name__}: return a list of numbers"
        got = list(got)
        if got == expected:
            continue
        shown = f" (expected {expected})" if reveal else ""
        for mistake, diagnosis in _CHANNEL_MISTAKES:
            if got == _stage_channels(config, growth, init, **mistake):
                raise AssertionError(f"{call} gave {got}{shown}: {diagnosis}")
        if got == _stage_channels(config, 32, init) and growth != 32:
            raise AssertionError(f"{call} gave {got}{shown}: use the growth_rate argument, not 32")
        if got == _stage_channels(config, growth, 64) and init != 64:
            raise AssertionError(f"{call} gave {got}{shown}: start from the num_init_features argument, not 64")
        if len(got) != len(expected):
            raise AssertionError(
                f"{call} gave {len(got)} numbers{shown}: one for the stem and one per dense block, "
                f"{len(config) + 1} for block_config={config}"
            )
        stage = next(k for k, (a, b) in enumerate(zip(got, expected)) if a != b)
        where = "the stem's output" if stage == 0 else f"dense block {stage}'s output"
        raise AssertionError(
            f"{call} gave {got}{shown}: the first wrong number is {where} (position {stage}). A block adds "
            "layers * growth_rate to what it reads; each transition but the last halves the count. "
            + ("" if reveal else "Call the check with reveal=True to see the expected list.")
        )
    passed("densenet_stage_channels")


_REVEAL = "pass reveal=True to the check to see what it measured"
_BATCHES = 2  # forward passes per measurement: two batches show the drift as well as more
_STATS = ("running_mean", "running_var")


def _norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _drifts(model: nn.Module, batches: list[torch.Tensor]) -> dict[str, float]:
    """Forward passes of ``batches`` in train mode (as fit runs them, without gradients), and the change of the
    running statistics, measured the right way ("right": the largest absolute change of an encoder running_mean)
    and the ways learners slip."""
    encoder = [m for m in _norms(model.encoder) if m.running_mean is not None]  # None: built without statistics
    decoder = [m for m in _norms(model) if m.running_mean is not None and all(m is not e for e in encoder)]
    before = {(i, name): getattr(m, name).clone() for i, m in enumerate(encoder + decoder) for name in _STATS}
    model.train()
    with torch.no_grad():
        for images in batches:
            model(images)

    def change(name: str, norms: list[nn.Module], offset: int = 0) -> torch.Tensor:  # (channels of all layers,)
        return torch.cat([getattr(m, name) - before[i + offset, name] for i, m in enumerate(norms)]).float()

    mean, var = change("running_mean", encoder), change("running_var", encoder)
    decoder_mean = change("running_mean", decoder, len(encoder)) if decoder else mean[:0]
    return {
        "right": mean.abs().max().item(),
        "mean": mean.abs().mean().item(),
        "signed": mean.max().item(),
        "var": var.abs().max().item(),
        "both": torch.cat([mean, var]).abs().max().item(),
        "decoder": torch.cat([mean, decoder_mean]).abs().max().item(),
    }


_DRIFT_METHOD = (
    "that is not the largest absolute change of any running_mean of the encoder's BatchNorm layers. Run the "
    "`batches` your function is given (the check passes its own; not a list of yours), clone the running means "
    "before the forward passes (one pass per batch, in train mode), compare after, and take .abs().max()"
)
_DRIFT_MISTAKES = {  # what each slip measures (a key of _drifts) -> what it says
    "mean": "that is the mean absolute change over all the channels; the question is the largest: .max(), not .mean()",
    "signed": "that is the largest signed change: a running mean that fell counts as much as one that rose, so take "
    ".abs() before .max()",
    "var": "that is a change of running_var; the question is about running_mean",
    "both": "you measured running_var together with running_mean (and a variance moved most); measure running_mean "
    "alone",
    "decoder": "you counted the decoder's BatchNorm layers too; measure the encoder's (model.encoder_batchnorms())",
}


def _batches(device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The check's own image batches: noise, the same every time, small (a forward pass costs little)."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 32, 32, generator=generator).to(device) for _ in range(_BATCHES)]


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every buffer (BatchNorm's running statistics and counts), to measure a model more than once."""
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def _restore(model: nn.Module, buffers: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])


_HANDED_IN_EVAL = "that copy handed over in eval mode, as validation leaves a model"


def _undo_fix(model: nn.Module) -> nn.Module:
    """A copy of ``model`` frozen by ``requires_grad_(False)`` only: forward pre-hooks, ``train``/``eval``
    overrides set on a module, and ``freeze_encoder``'s flags removed, so that its encoder's BatchNorm drifts."""
    loose = copy.deepcopy(model)
    for module in loose.modules():
        module._forward_pre_hooks.clear()
        for name in ("train", "eval", "forward"):
            vars(module).pop(name, None)  # set on the instance: the class's own comes back
    for flag in ("encoder_frozen", "encoder_batchnorm_frozen"):
        if getattr(loose, flag, False):
            setattr(loose, flag, False)
    loose.encoder.requires_grad_(False)
    return loose.train()


def _measured(running_mean_drift: Callable, model: nn.Module, batches: list[torch.Tensor], which: str) -> float:
    """The learner's function called on ``model`` (a copy) and the check's batches, as one number."""
    try:
        value = running_mean_drift(model, [images.clone() for images in batches])
    except Exception as error:
        raise AssertionError(
            f"running_mean_drift(model, batches) raised {type(error).__name__}: {error} (on {which}). It takes a "
            "DenseNetUNet and a list of image batches, each a tensor (B, 3, H, W) on the model's device, and "
            f"returns one number ({_REVEAL})"
        ) from error
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise AssertionError(
            f"running_mean_drift returned a tensor of {value.numel()} values: return one number, the largest "
            f"absolute change of any running mean (e.g. (after - before).abs().max().item()) ({_REVEAL})"
        )
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"running_mean_drift returned {value!r}: return one number ({_REVEAL})") from None
    assert math.isfinite(value), (
        f"running_mean_drift returned {value} (on {which}): compare running_mean copied with .clone() before the "
        f"forward passes with running_mean after them ({_REVEAL})"
    )
    return value


def check_frozen_batchnorm(
    running_mean_drift: Callable[[nn.Module, list[torch.Tensor]], float], model: nn.Module, reveal: bool = False
) -> None:
    """Notebook 04: ``requires_grad_(False)`` alone lets the encoder's BatchNorm statistics drift; the fix stops it.

    The check calls ``running_mean_drift`` on copies of ``model``, with batches of its own: one copy with the fix
    undone (forward pre-hooks and ``train`` overrides removed, the encoder frozen by ``requires_grad_(False)``
    only), where it must return what the check measures on an identical copy (also when that copy comes in eval
    mode, as validation leaves a model: the function must put it in train mode), and one copy as fixed, where it
    must return 0. The learner's model is left as it was.

    Args:
        running_mean_drift: ``running_mean_drift(model, batches)`` puts the model in train mode, runs the image
            batches (a list of (B, 3, H, W) tensors) through it without gradients, and returns the largest
            absolute change of any ``running_mean`` of the encoder's BatchNorm layers.
        model: the ``DenseNetUNet`` with the fix applied, in train mode (as ``fit`` leaves it).
        reveal: print what the check measured (on its batches, with the fix undone and as fixed).
    """
    assert callable(running_mean_drift), (
        f"pass your function running_mean_drift itself, not {type(running_mean_drift).__name__}: the check calls "
        "it on copies of your model, with batches of its own, so that it can tell what your function measures"
    )
    batches = _batches(next(model.parameters()).device)
    # What fit does: model.train(), then forward passes. Tried on a copy, so the learner's model stays as it was.
    trial = copy.deepcopy(model)
    as_given = _buffers(trial)
    fixed = _drifts(trial, batches)
    if reveal:
        print(f"the check's {_BATCHES} batches, with your fix: the encoder's running means moved by {fixed['right']}")
    assert model.training, (
        "the model is in eval mode: that stops the drift, but fit calls model.train() before every epoch, and it "
        "would also stop the decoder's BatchNorm from learning; fix the encoder alone, so that it survives "
        f"model.train() ({_REVEAL})"
    )
    assert not (model._forward_hooks and not model._forward_pre_hooks and fixed["right"] != 0), (
        "your hook is a forward hook, which runs after the forward pass, so the pass itself ran with the encoder's "
        "BatchNorm in train mode and moved its statistics: register it with register_forward_pre_hook, which runs "
        f"before ({_REVEAL})"
    )
    assert not (model.encoder._forward_pre_hooks and fixed["right"] != 0), (
        "your forward pre-hook sits on model.encoder, which never runs as a whole: the model's encode() calls the "
        "encoder's parts one by one (to keep each stage's output), so that hook never fires. Register it on the "
        f"model itself, whose forward runs on every pass ({_REVEAL})"
    )
    assert fixed["right"] == 0 and fixed["var"] == 0, (
        "after model.train() and forward passes, the encoder's running statistics moved: the encoder's BatchNorm "
        f"layers must normalise in eval mode while the model trains, and stay so through every model.train() "
        f"({_REVEAL})"
    )
    encoder = _norms(trial.encoder)
    training = [norm for norm in encoder if norm.training or not norm.track_running_stats]
    assert not training, (
        f"{len(training)} of the encoder's {len(encoder)} BatchNorm layers still normalise with each batch's own "
        "statistics during training (train mode, or track_running_stats=False), so the decoder's input still "
        "changes with the batch; stopping the running statistics (momentum=0) is not enough: put them in eval mode "
        f"({_REVEAL})"
    )
    decoder = [m for m in _norms(trial) if all(m is not e for e in encoder)]
    assert all(norm.training for norm in decoder), (
        f"the decoder's BatchNorm layers are in eval mode after model.train(): fix the encoder's layers only "
        f"({_REVEAL})"
    )

    # requires_grad_(False) only: the learner's function against the check's own measurement of the same copy, as
    # it was; then with one running mean raised far above what the batches give, so that a fall is the largest change
    loose = _undo_fix(model)
    unplanted = _buffers(loose)
    truth = _drifts(loose, batches)
    _restore(loose, unplanted)
    with torch.no_grad():
        _norms(loose.encoder)[0].running_mean[0] += 1000 * max(truth["right"], 1e-3)
    planted = _buffers(loose)
    trials = [
        ("a copy of your model frozen by requires_grad_(False) only", unplanted, truth),
        ("that copy with one running mean raised far above what the batches give, so that its fall is the largest "
         "change", planted, _drifts(loose, batches)),
        (_HANDED_IN_EVAL, unplanted, truth),
    ]  # fmt: skip
    if reveal:
        for which, _, want in trials:
            print(
                f"on {which}: the largest absolute change of an encoder running mean is {want['right']:.6g} (the "
                f"mean change {want['mean']:.3g}, the largest running_var change {want['var']:.3g})"
            )
    assert truth["right"] > 0, (
        "to test running_mean_drift the check undoes your fix on a copy (it removes forward pre-hooks and train() "
        "overrides), but that copy's encoder statistics still stayed put: fix the model with a forward pre-hook "
        f"(notebook 01) or an overridden train() (as DenseNetUNet.freeze_encoder does) ({_REVEAL})"
    )
    measured = []
    for which, state, want in trials:
        _restore(loose, state)  # as it was before the check measured it
        loose.train(which != _HANDED_IN_EVAL)  # as validation leaves a model: the function must put it in train mode
        got = _measured(running_mean_drift, loose, batches, which)
        measured.append(got)
        if reveal:
            print(f"your function returned {got:.6g} on {which}")
        if math.isclose(got, want["right"], rel_tol=1e-4, abs_tol=1e-7):
            continue
        if got == 0 and which == _HANDED_IN_EVAL:
            problem = (
                "no drift on a model handed to you in eval mode, as validation leaves it: put it in train mode "
                "(model.train()) inside your function before the forward passes, as fit does before every epoch"
            )
        elif got == 0:
            problem = (
                "no drift, though this copy's encoder running means do move: copy them with .clone() before the "
                "forward passes (else 'before' changes with them), and put the model in train mode as fit does"
            )
        elif got < 0:
            problem = "a drift is the largest ABSOLUTE change of a running mean: take .abs() before .max()"
        else:
            slips = [text for key, text in _DRIFT_MISTAKES.items() if math.isclose(got, want[key], rel_tol=1e-4)]
            problem = slips[0] if slips else _DRIFT_METHOD
        raise AssertionError(f"running_mean_drift returned {got:.4g} on {which}: {problem} ({_REVEAL})")
    # as fixed: the encoder's statistics stay put (checked above), so the function must say 0
    _restore(trial, as_given)
    got_fixed = _measured(running_mean_drift, trial, batches, "a copy of your fixed model")
    if reveal:
        print(f"your function returned {got_fixed:.6g} on a copy of your fixed model")
    if got_fixed != 0:
        problem = (
            _DRIFT_MISTAKES["decoder"]
            if math.isclose(got_fixed, fixed["decoder"], rel_tol=1e-4)
            else "measure the encoder's running means only, cloned before the passes and compared after"
        )
        raise AssertionError(
            f"running_mean_drift returned {got_fixed:.4g} on a copy of your fixed model, whose encoder statistics "
            f"the check saw stay put: {problem} ({_REVEAL})"
        )
    print(
        f"requires_grad_(False) alone: your running_mean_drift saw a running mean move by up to {measured[0]:.3g} in "
        f"{_BATCHES} forward passes of the check's batches (random noise, unlike any photo, so the statistics move "
        "further than on your training batches); with your fix: 0"
    )
    passed("frozen_batchnorm")
