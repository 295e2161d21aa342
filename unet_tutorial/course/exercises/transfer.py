"""Self-checks of notebook 04 (DenseNet121 transfer learning): each takes the learner's answer and says what is wrong.

A check raises AssertionError with a message a learner can act on, and prints a short success line otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from unet_tutorial.course.exercises import passed


def check_densenet_stage_channels(densenet_stage_channels: Callable[..., list[int]]) -> None:
    """Notebook 04: channels after the stem and after each dense block, against torchvision's DenseNets."""
    from torchvision.models import DenseNet

    from unet_tutorial.densenet_unet import ENCODER_CHANNELS

    got = list(densenet_stage_channels((6, 12, 24, 16)))
    assert got == list(ENCODER_CHANNELS), (
        f"DenseNet121 (block_config=(6, 12, 24, 16)) should give {list(ENCODER_CHANNELS)}, got {got}: e.g. block 1 "
        "gives 64 + 6 * 32 = 256, its transition halves that to 128, block 2 gives 128 + 12 * 32 = 512"
    )
    # DenseNet169 and 201, and two made-up ones; the truth is read off torchvision's modules (no forward pass)
    for config, growth, init in (
        ((6, 12, 32, 32), 32, 64),
        ((6, 12, 48, 32), 32, 64),
        ((2, 3), 12, 16),
        ((1, 1, 1), 8, 24),
    ):
        with torch.device("meta"):  # shapes only: no memory, no time spent initialising weights
            features = DenseNet(growth_rate=growth, block_config=config, num_init_features=init).features
        blocks = [m for name, m in features.named_children() if name.startswith("denseblock")]
        expected = [init] + [b[-1].norm1.num_features + growth for b in (list(blk.values()) for blk in blocks)]
        got = list(densenet_stage_channels(config, growth_rate=growth, num_init_features=init))
        assert got == expected, (
            f"block_config={config}, growth_rate={growth}, num_init_features={init}: "
            f"expected {expected}, got {got}; every transition but the last halves the channels"
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

    from torch import nn

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
