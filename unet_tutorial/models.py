"""One name per model, everywhere: the command line, checkpoints, torch.hub and the notebooks.

``MODELS`` maps each name to its class: "unet" (``model.UNet``, notebook 01) and "densenet_unet"
(``densenet_unet.DenseNetUNet``, notebook 04). ``build_model(name, **kwargs)`` builds one; ``model_name`` also
reads the names older checkpoints stored ("UNet", "densenet-unet", "DenseNetUNet"), so they still load. Loading a
checkpoint into the model it names is ``checkpoint.load_model``. Left out: a registry that other code can add to
(add a model here, with a test). Taught in: notebooks 03 and 04 (their checkpoints name their model).
"""

from __future__ import annotations

from torch import nn

from unet_tutorial.densenet_unet import DenseNetUNet
from unet_tutorial.model import UNet

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "densenet_unet": DenseNetUNet}
# Names earlier versions wrote into checkpoints (the command line said "densenet-unet", notebook 03 "UNet").
_OLD_NAMES = {"UNet": "unet", "densenet-unet": "densenet_unet", "DenseNetUNet": "densenet_unet"}


def model_name(name: str) -> str:
    """The name ``MODELS`` knows for ``name`` (an old checkpoint's name included).

    Raises:
        KeyError: no model is called ``name``; the message lists the names that work.
    """
    name = _OLD_NAMES.get(name, name)
    if name not in MODELS:
        raise KeyError(f"no model is called {name!r}; use one of {', '.join(MODELS)}")
    return name


def build_model(name: str, **kwargs) -> nn.Module:
    """The model called ``name`` built with the constructor's keyword arguments ``kwargs``."""
    return MODELS[model_name(name)](**kwargs)
