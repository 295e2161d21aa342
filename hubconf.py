"""torch.hub entry points: the course's two models in one line, with the constructors' keyword arguments.

    model = torch.hub.load("unet-tutorial/unet-tutorial", "unet", num_classes=1)            # model.UNet
    model = torch.hub.load("unet-tutorial/unet-tutorial", "densenet_unet", num_classes=150,
                           weights="imagenet")                                               # DenseNetUNet

Both return untrained models (``densenet_unet`` with an ImageNet encoder when ``weights`` asks for one);
``torch.hub.help(repo, "unet")`` prints the constructor's docstring. Append ``:v<version>`` to the repository
for a release, e.g. "unet-tutorial/unet-tutorial:v0.1.0". Taught in: notebooks 01 (UNet) and 04 (DenseNetUNet).
"""

from unet_tutorial.models import MODELS as _MODELS

dependencies = ["torch", "torchvision"]  # torch.hub checks that these import before loading

# The entry points are named as everywhere else (models.MODELS): checkpoints, the command line, the notebooks.
unet = _MODELS["unet"]
densenet_unet = _MODELS["densenet_unet"]
