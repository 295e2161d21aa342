"""hubconf.py: torch.hub.load on this checkout builds the package's models with their keyword arguments."""

from pathlib import Path

import torch

from unet_tutorial.densenet_unet import DenseNetUNet
from unet_tutorial.model import UNet

ROOT = str(Path(__file__).resolve().parents[1])


def test_hub_load_unet_passes_keyword_arguments():
    model = torch.hub.load(ROOT, "unet", source="local", num_classes=2, base_channels=4, depth=2)
    assert isinstance(model, UNet) and model.num_classes == 2 and model.depth == 2
    assert model(torch.randn(1, 3, 20, 28)).shape == (1, 2, 20, 28)


def test_hub_load_densenet_unet_without_weights():
    model = torch.hub.load(ROOT, "densenet_unet", source="local", num_classes=3, weights=None,
                           decoder_channels=(8, 8, 8, 8, 8))  # fmt: skip
    assert isinstance(model, DenseNetUNet) and not model.pretrained
    assert model.head.out_channels == 3
