"""Self-checks of notebook 04 (DenseNet121 transfer learning): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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


def check_frozen_batchnorm(drift_grad_only: float, drift_fixed: float, model: torch.nn.Module) -> None:
    """Notebook 04: ``requires_grad_(False)`` alone lets the encoder's BatchNorm statistics drift; the fix stops it.

    Args:
        drift_grad_only: the largest change of any encoder ``running_mean`` after a few forward passes in train
            mode, with the encoder frozen by ``requires_grad_(False)`` only.
        drift_fixed: the same, measured after the fix.
        model: the ``DenseNetUNet`` with the fix applied, in train mode (as ``fit`` leaves it).
    """
    import copy
    import math

    from torch import nn

    for name, value in (("drift_grad_only", drift_grad_only), ("drift_fixed", drift_fixed)):
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise AssertionError(
                f"{name} is a tensor of {value.numel()} values: pass one number, the largest absolute change of "
                "any running mean (e.g. (after - before).abs().max().item())"
            )
        assert math.isfinite(float(value)), (
            f"{name} is {float(value)}: measure the largest absolute change between running_mean copied with "
            ".clone() before the forward passes and running_mean after them"
        )
    assert float(drift_grad_only) >= 0 and float(drift_fixed) >= 0, (
        "a drift is the largest ABSOLUTE change of a running mean: take .abs() before .max()"
    )
    assert float(drift_grad_only) > 0, (
        f"you measured a drift of {float(drift_grad_only)} with requires_grad_(False) only; look again: BatchNorm "
        "in train mode moves running_mean and running_var towards each batch's statistics on every forward pass, "
        "gradients or not (compare the encoder's buffers before and after a few forward passes in model.train())"
    )
    assert float(drift_fixed) == 0, (
        f"after the fix the running statistics still moved by {float(drift_fixed)}: the encoder's BatchNorm layers "
        "must be in eval mode while the model trains"
    )
    assert model.training, (
        "the model is in eval mode: that stops the drift, but fit calls model.train() before every epoch, and it "
        "would also stop the decoder's BatchNorm from learning; fix the encoder alone, so that it survives "
        "model.train()"
    )

    def norms(module: nn.Module) -> list[nn.Module]:
        return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    # What fit does: model.train(), then forward passes. Tried on a copy, so the learner's model stays as it was.
    trial = copy.deepcopy(model)
    encoder = norms(trial.encoder)
    before = [b.clone() for norm in encoder for b in (norm.running_mean, norm.running_var)]
    with torch.no_grad():
        trial.train()(torch.randn(2, 3, 64, 64, device=next(trial.parameters()).device))
    after = [b for norm in encoder for b in (norm.running_mean, norm.running_var)]
    assert all(torch.equal(x, y) for x, y in zip(before, after)), (
        "after model.train() and a forward pass, the encoder's running statistics moved: the encoder's BatchNorm "
        "layers must normalise in eval mode while the model trains, and stay so through every model.train()"
    )
    training = [norm for norm in encoder if norm.training or not norm.track_running_stats]
    assert not training, (
        f"{len(training)} of the encoder's {len(encoder)} BatchNorm layers still normalise with each batch's own "
        "statistics during training (train mode, or track_running_stats=False), so the decoder's input still "
        "changes with the batch; stopping the running statistics (momentum=0) is not enough: put them in eval mode"
    )
    decoder = [m for m in norms(trial) if all(m is not e for e in encoder)]
    assert all(norm.training for norm in decoder), (
        "the decoder's BatchNorm layers are in eval mode after model.train(): fix the encoder's layers only"
    )
    print(f"requires_grad_(False) alone: running means moved by up to {float(drift_grad_only):.3g}; with the fix: 0")
    passed("frozen_batchnorm")
