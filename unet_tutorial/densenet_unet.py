"""A U-Net whose encoder is torchvision's DenseNet121, pretrained on ImageNet: transfer learning for segmentation.

The encoder is ``torchvision.models.densenet121(...).features``, unchanged (its state-dict keys are torchvision's),
read out at five stages of stride 2, 4, 8, 16 and 32. The decoder climbs back up: at each stage it up-samples,
convolves, and merges the result with the encoder's skip of the same size in a bottleneck block; a last up-sample
returns to full resolution and a 1x1 conv gives the logits. Pretrained weights come through torchvision's weights
API, so they are cached in ``$TORCH_HOME/hub/checkpoints`` and load offline once there. The model also knows the
normalisation its weights expect, can freeze its encoder, and hands out parameter groups for discriminative
learning rates.

Left out: other encoders (see segmentation_models_pytorch for a zoo), deep supervision, attention gates.
Taught in: notebook 04 (DenseNet121 transfer).

DenseNet: Huang et al., "Densely Connected Convolutional Networks", https://arxiv.org/abs/1608.06993
U-Net: Ronneberger et al., https://arxiv.org/abs/1505.04597
"""

from __future__ import annotations

import os
import pickle
import warnings
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import DenseNet121_Weights, densenet121

from unet_tutorial.model import pad_to_multiple

# The encoder's five stages, as names of the modules in densenet121().features, with the stride each ends at.
ENCODER_STAGES: tuple[tuple[str, ...], ...] = (
    ("conv0", "norm0", "relu0"),  # 1/2
    ("pool0", "denseblock1"),  # 1/4
    ("transition1", "denseblock2"),  # 1/8
    ("transition2", "denseblock3"),  # 1/16
    ("transition3", "denseblock4", "norm5", "relu5"),  # 1/32
)
ENCODER_CHANNELS: tuple[int, ...] = (64, 256, 512, 1024, 1024)
ENCODER_STRIDES: tuple[int, ...] = (2, 4, 8, 16, 32)


class PretrainedWeightsUnavailable(RuntimeError):
    """The pretrained encoder weights could neither be found in the cache nor downloaded."""


class RandomEncoderWarning(UserWarning):
    """The pretrained weights could not be loaded, and the caller allowed a randomly initialised encoder."""


def resolve_weights(weights: DenseNet121_Weights | str | None) -> DenseNet121_Weights | None:
    """Turn the ``weights`` argument into a ``DenseNet121_Weights`` entry, or None for a random encoder.

    Args:
        weights: None; "imagenet" or "DEFAULT" (the best ImageNet weights); an entry's name such as
            "IMAGENET1K_V1"; or a ``DenseNet121_Weights`` entry.
    """
    if weights is None or isinstance(weights, DenseNet121_Weights):
        return weights
    if isinstance(weights, str):
        name = "DEFAULT" if weights.strip().lower() == "imagenet" else weights.strip()
        if name in DenseNet121_Weights.__members__:  # the entries' names and the DEFAULT alias
            return DenseNet121_Weights.verify(name)
    choices = ", ".join(["None", '"imagenet"', '"DEFAULT"'] + [f'"{w.name}"' for w in DenseNet121_Weights])
    raise ValueError(
        f"weights={weights!r} is not a DenseNet121 weights choice; use one of {choices} "
        "or a torchvision.models.DenseNet121_Weights entry."
    )


def weights_cache_path(weights: DenseNet121_Weights) -> str:
    """Where torchvision keeps (and looks for) this entry's file: ``$TORCH_HOME/hub/checkpoints/<file name>``."""
    filename = os.path.basename(urlparse(weights.url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def normalization(weights: DenseNet121_Weights | str | None = "DEFAULT") -> dict[str, tuple[float, ...]]:
    """The per-channel mean and std that images must be normalised with for these weights.

    Read from the weights entry's own transforms. A random encoder (None) gets the statistics of the default
    ImageNet entry, so the data pipeline does not change when you switch pretraining on or off.

    Returns:
        {"mean": (r, g, b), "std": (r, g, b)}, ready for ``eval_transforms(size, **normalization(...))``.
    """
    entry = resolve_weights(weights) or DenseNet121_Weights.DEFAULT
    preset = entry.transforms()
    return {"mean": tuple(float(m) for m in preset.mean), "std": tuple(float(s) for s in preset.std)}


def load_densenet121_features(
    weights: DenseNet121_Weights | str | None = None,
    *,
    allow_random_encoder: bool = False,
    memory_efficient: bool = False,
) -> tuple[nn.Sequential, DenseNet121_Weights | None]:
    """Build torchvision's DenseNet121 and return its ``features`` with the weights actually loaded.

    Args:
        weights: see ``resolve_weights``; None gives a random encoder on purpose, with no message.
        allow_random_encoder: when the weights cannot be loaded (offline, no cached file), warn with a
            ``RandomEncoderWarning`` and go on with a random encoder instead of raising.
        memory_efficient: torchvision's checkpointed dense layers (less memory, slower backward).

    Returns:
        (features, loaded): the ``nn.Sequential`` conv0 ... norm5, and the entry loaded (None if random).

    Raises:
        PretrainedWeightsUnavailable: the weights could not be loaded and ``allow_random_encoder`` is False.
    """
    entry = resolve_weights(weights)
    if entry is None:
        return densenet121(weights=None, memory_efficient=memory_efficient).features, None
    try:
        return densenet121(weights=entry, memory_efficient=memory_efficient).features, entry
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # URLError is an OSError
        message = _unavailable_message(entry, error)
    if not allow_random_encoder:
        raise PretrainedWeightsUnavailable(
            message + " To train from scratch instead, pass weights=None, or "
            "allow_random_encoder=True to fall back to a random encoder."
        )
    warnings.warn(
        message + " Going on with a RANDOMLY INITIALISED encoder (allow_random_encoder=True); "
        "pass weights=None to choose that without this warning.",
        RandomEncoderWarning,
        stacklevel=3,
    )
    return densenet121(weights=None, memory_efficient=memory_efficient).features, None


def _unavailable_message(entry: DenseNet121_Weights, error: BaseException) -> str:
    path = weights_cache_path(entry)
    if os.path.exists(path):
        cause = f"The cached file {path} exists but could not be read; delete it and run again to re-download."
    else:
        cause = (
            f"Torchvision found no cached file at {path} and could not download {entry.url} "
            f"(no internet?). Download that URL on a machine with internet and copy the file to {path} "
            "(or point $TORCH_HOME at a folder holding hub/checkpoints/ with it)."
        )
    return f"Could not load the pretrained DenseNet121 weights {entry} ({type(error).__name__}: {error}). {cause}"


class UpBlock(nn.Sequential):
    """Decoder stage: up-sample x2 (bilinear), 3x3 conv, ReLU. (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )


class MergeBlock(nn.Module):
    """Bottleneck that merges a decoder output with the encoder skip of the same size.

    A 1x1 conv squeezes the concatenation to ``out_channels``, a 3x3 conv mixes it; each with BatchNorm, ReLU.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.mix = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, skip], dim=1)  # (B, in + skip, H, W)
        return self.mix(self.squeeze(x))  # (B, out, H, W)


class DenseNetUNet(nn.Module):
    """U-Net with torchvision's DenseNet121 as the encoder; logits (B, num_classes, H, W) for any H and W.

    Args:
        num_classes: output channels (1 for binary masks, C for C classes).
        weights: None (random encoder), "imagenet" / "DEFAULT", an entry name or a ``DenseNet121_Weights``.
        freeze_encoder: start with the encoder frozen (see ``freeze_encoder()``).
        allow_random_encoder: if the weights cannot be loaded, warn and use a random encoder instead of raising.
        decoder_channels: widths of the four merge stages (1/16 ... 1/2) and of the last up-sample (1/1).
        memory_efficient: torchvision's checkpointed dense layers, for large images on a small GPU.

    Attributes:
        weights: the entry actually loaded, or None; ``pretrained`` is ``weights is not None``.
        normalization: {"mean", "std"} the images must be normalised with (see ``normalization()``).

    Shape:
        images (B, 3, H, W) -> logits (B, num_classes, H, W).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1,
        weights: DenseNet121_Weights | str | None = None,
        freeze_encoder: bool = False,
        allow_random_encoder: bool = False,
        decoder_channels: tuple[int, int, int, int, int] = (256, 128, 64, 64, 32),
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        if len(decoder_channels) != 5:
            raise ValueError(
                f"decoder_channels needs 5 widths (four merge stages and the last up-sample), "
                f"got {decoder_channels!r}; e.g. (256, 128, 64, 64, 32)."
            )
        requested = resolve_weights(weights)
        self.encoder, self.weights = load_densenet121_features(
            requested, allow_random_encoder=allow_random_encoder, memory_efficient=memory_efficient
        )
        self.encoder.add_module("relu5", nn.ReLU(inplace=True))  # torchvision applies it in forward()
        self.normalization = normalization(requested)
        self.encoder_frozen = False
        self.encoder_batchnorm_frozen = False

        widths = (ENCODER_CHANNELS[-1],) + tuple(decoder_channels[:4])
        skips = ENCODER_CHANNELS[-2::-1]  # (1024, 512, 256, 64): the skips at 1/16, 1/8, 1/4, 1/2
        self.ups = nn.ModuleList(UpBlock(widths[i], widths[i + 1]) for i in range(4))
        self.merges = nn.ModuleList(MergeBlock(widths[i + 1], skips[i], widths[i + 1]) for i in range(4))
        self.final_up = UpBlock(decoder_channels[3], decoder_channels[4])
        self.head = nn.Conv2d(decoder_channels[4], num_classes, kernel_size=1)
        if freeze_encoder:
            self.freeze_encoder()

    @property
    def pretrained(self) -> bool:
        return self.weights is not None

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps after each of its five stages.

        Shape:
            images (B, 3, H, W) -> [(B, 64, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8),
            (B, 1024, H/16, W/16), (B, 1024, H/32, W/32)], sizes rounded as the convs round them.
        """
        features, x = [], images
        for names in ENCODER_STAGES:
            for name in names:
                x = self.encoder.get_submodule(name)(x)
            features.append(x)
        return features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"DenseNetUNet expects RGB images of shape (B, 3, H, W), got {tuple(images.shape)}; "
                "repeat a grey channel three times, or drop an alpha channel."
            )
        x, (top, left, height, width) = pad_to_multiple(images, ENCODER_STRIDES[-1])  # (B, 3, H', W'), 32k
        if self.training and x.shape[0] * x.shape[-2] * x.shape[-1] == ENCODER_STRIDES[-1] ** 2:
            raise ValueError(
                f"images of shape {tuple(images.shape)} leave one value per channel at the 1/32 "
                "stage, and BatchNorm cannot train on that: use a batch of 2 or more, images "
                "larger than 32 px, or model.eval() for inference."
            )
        *skips, x = self.encode(x)  # x: (B, 1024, H'/32, W'/32)
        for up, merge, skip in zip(self.ups, self.merges, reversed(skips)):
            x = merge(up(x), skip)  # (B, width, 2h, 2w): one stage up, merged with the skip of that size
        x = self.final_up(x)  # (B, decoder_channels[4], H', W')
        return self.head(x)[..., top : top + height, left : left + width]  # (B, num_classes, H, W)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the encoder: up-samples, merges and the head."""
        encoder_ids = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in encoder_ids]

    def freeze_encoder(self) -> None:
        """Stop training the encoder: no gradients, and its BatchNorm keeps the pretrained running statistics.

        ``requires_grad_(False)`` alone would not do the second part: a BatchNorm layer in train mode updates its
        running mean and variance on every forward pass, gradients or not. So the encoder stays in eval mode,
        also after ``model.train()``, until ``unfreeze_encoder()``.
        """
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.encoder_frozen = True
        self.encoder_batchnorm_frozen = True

    def unfreeze_encoder(self, train_batchnorm: bool = True) -> None:
        """Train the encoder again: gradients on.

        Args:
            train_batchnorm: True: the encoder's BatchNorm follows the model's train/eval mode again (normalises
                with each batch's statistics and updates its running ones). False: its BatchNorm layers stay in
                eval mode, also after ``model.train()``: they keep normalising with the running statistics they
                have (ImageNet's, for a pretrained encoder) and never update them, while their weight and bias
                still train. The usual choice at small batch sizes (say under 16), where the statistics of a
                few images are too noisy to normalise with.
        """
        self.encoder.requires_grad_(True)
        self.encoder_frozen = False
        self.encoder_batchnorm_frozen = not train_batchnorm
        self.train(self.training)

    def encoder_batchnorms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The encoder's BatchNorm layers: DenseNet121 has 121 (two per dense layer, the stem's, the transitions',
        norm5)."""
        return [m for m in self.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> DenseNetUNet:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        elif self.encoder_batchnorm_frozen:
            for norm in self.encoder_batchnorms():
                norm.eval()
        return self

    def param_groups(self, lr_encoder: float, lr_decoder: float) -> list[dict]:
        """Parameter groups for discriminative learning rates, e.g. ``AdamW(model.param_groups(1e-4, 1e-3))``.

        Frozen encoder parameters are included (they get no gradient, so the optimizer skips them), which lets
        you unfreeze later without building a new optimizer.

        Returns:
            [{"name": "encoder", "params": [...], "lr": lr_encoder}, {"name": "decoder", "params": [...], "lr": ...}]
        """
        return [
            {"name": "encoder", "params": list(self.encoder.parameters()), "lr": lr_encoder},
            {"name": "decoder", "params": self.decoder_parameters(), "lr": lr_decoder},
        ]
