"""Self-check of notebook 04's exercise 4: the encoder's and the decoder's parameter groups, written by hand.

Discriminative learning rates need each parameter in exactly one group: the encoder's (frozen ones too, or they
never train after unfreezing) and the rest (the head too, which need not sit inside ``model.decoder``). The check
tries a toy model built with both traps, then a ``DenseNetUNet`` against its own ``param_groups``, and names the
parameters it finds missing, doubled or in the wrong group. Taught in: notebook 04, exercise 4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from unet_tutorial.course.exercises import call_learner, passed


class _Toy(nn.Module):
    """A U-Net in miniature for the parameter-groups check: an encoder, a decoder and a head outside the decoder."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 1, 1)


def _named(model: nn.Module, params) -> str:
    """The names of some of ``model``'s parameters, for a message: "head.weight, head.bias"."""
    names = {id(p): name for name, p in model.named_parameters()}
    listed = [names.get(id(p), "a tensor that is not the model's") for p in params]
    return ", ".join(listed[:3]) + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")


def check_encoder_decoder_groups(encoder_decoder_groups: Callable[..., list[dict]]) -> None:
    """Notebook 04: two parameter groups for discriminative learning rates, as ``DenseNetUNet.param_groups`` makes.

    ``encoder_decoder_groups(model, lr_encoder, lr_decoder)`` must return [{"name": "encoder", "params": [...], "lr":
    lr_encoder}, {"name": "decoder", "params": [...], "lr": lr_decoder}]: the encoder's parameters, frozen ones too,
    and every other parameter of the model (the head as well), each exactly once. Tried on a toy model whose
    encoder is frozen and whose head sits outside ``model.decoder``, then on a DenseNetUNet against its own
    ``param_groups``. A miss names the parameters that are missing, doubled or in the wrong group.
    """
    from unet_tutorial.densenet_unet import DenseNetUNet

    toy = _Toy()
    for p in toy.encoder.parameters():
        p.requires_grad_(False)  # frozen, as in section 7: it must be in its group all the same
    with torch.device("meta"):
        densenet = DenseNetUNet(num_classes=1, weights=None)
    for model, what in ((toy, "a toy model (encoder frozen, head outside model.decoder)"), (densenet, "DenseNetUNet")):
        call = f"encoder_decoder_groups(<{what}>, 1e-4, 1e-3)"
        assert callable(encoder_decoder_groups), (
            f"encoder_decoder_groups is a {type(encoder_decoder_groups).__name__}: pass the function itself"
        )
        groups, problem = call_learner(encoder_decoder_groups, f"on {what}", model, 1e-4, 1e-3)
        assert problem is None, problem
        assert isinstance(groups, (list, tuple)) and all(isinstance(g, dict) for g in groups), (
            f"{call} returned a {type(groups).__name__}: return a list of two dicts, each with 'name', 'params' and "
            "'lr', as model.param_groups does"
        )
        assert len(groups) == 2, f"{call} returned {len(groups)} groups: two, the encoder's and the decoder's"
        names = [g.get("name") for g in groups]
        assert names == ["encoder", "decoder"], (
            f"{call} named its groups {names}: name them 'encoder' and 'decoder', in that order, so that fit's log "
            "and the notebook's cells can find each group's rate"
        )
        rates = [g.get("lr") for g in groups]
        assert rates == [1e-4, 1e-3], (
            f"{call} gave the groups the rates {rates}: the encoder takes lr_encoder (1e-4 here), the rest lr_decoder"
            + (" (swapped?)" if rates == [1e-3, 1e-4] else "")
        )
        params = [list(g.get("params", [])) for g in groups]  # a generator is fine: the optimizer lists it too
        encoder, rest = params
        in_encoder = {id(p) for p in model.encoder.parameters()}
        wrong_side = [p for p in encoder if id(p) not in in_encoder]
        assert not wrong_side, (
            f"{call}: the encoder group holds {_named(model, wrong_side)}, which are not the encoder's: take "
            "model.encoder.parameters()"
        )
        missing_frozen = [p for p in model.encoder.parameters() if id(p) not in {id(q) for q in encoder}]
        assert not missing_frozen, f"{call}: the encoder group lacks {_named(model, missing_frozen)}" + (
            ", frozen parameters: keep them (they get no gradient, so the optimizer skips them until "
            "unfreeze_encoder turns them on; left out, they would never train)"
            if not any(p.requires_grad for p in missing_frozen)
            else ""
        )
        doubled = [p for p in rest if id(p) in in_encoder]
        assert not doubled, (
            f"{call}: the decoder group holds the encoder's {_named(model, doubled)} too: model.parameters() "
            "includes the encoder's; take every parameter that is not in the encoder (torch refuses a parameter "
            "in two groups)"
        )
        every = [p for p in model.parameters() if id(p) not in in_encoder]
        left_out = [p for p in every if id(p) not in {id(q) for q in rest}]
        assert not left_out, (
            f"{call}: no group holds {_named(model, left_out)}: the second group must hold every parameter that is "
            "not the encoder's, not only model.decoder's"
        )
        assert len(rest) == len({id(p) for p in rest}), f"{call}: the decoder group lists a parameter twice"
    torch.optim.AdamW(encoder_decoder_groups(toy, 1e-4, 1e-3))  # an optimizer takes them as they are
    passed("encoder_decoder_groups")
