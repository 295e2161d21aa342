"""DenseNetUNet: shapes for any size, torchvision's DenseNet121 as the encoder, offline weights, freezing."""

import os
import socket
import urllib.request

import pytest
import torch
from torchvision.models import DenseNet121_Weights, densenet121
from torchvision.models.densenet import _DenseBlock, _Transition

from unet_tutorial.densenet_unet import (
    ENCODER_CHANNELS,
    DenseNetUNet,
    PretrainedWeightsUnavailable,
    RandomEncoderWarning,
    normalization,
    resolve_weights,
    weights_cache_path,
)
from unet_tutorial.model import pad_to_multiple

ENTRY = DenseNet121_Weights.IMAGENET1K_V1


@pytest.fixture(autouse=True)
def no_network_and_empty_cache(monkeypatch, tmp_path):
    """Every test runs offline, with its own empty $TORCH_HOME."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DenseNetUNet(num_classes=2).eval()


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 65, 97), (1, 3, 64, 64), (1, 3, 1, 1)])
def test_logits_have_the_input_size(model, shape):
    with torch.no_grad():
        logits = model(torch.randn(shape))
    assert logits.shape == (shape[0], 2, *shape[2:])


def test_one_value_per_channel_in_train_mode_is_explained():
    with pytest.raises(ValueError, match="batch of 2 or more"):
        DenseNetUNet().train()(torch.randn(1, 3, 32, 32))


def test_encode_returns_five_stages_at_strides_2_to_32(model):
    with torch.no_grad():
        features = model.encode(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in features] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(ENCODER_CHANNELS, (2, 4, 8, 16, 32))
    ]
    assert features[-1].min() >= 0, "the last stage ends with relu5, as torchvision's DenseNet forward does"


def test_encoder_is_torchvision_densenet121_features(model):
    assert isinstance(model.encoder.denseblock1, _DenseBlock)
    assert isinstance(model.encoder.transition3, _Transition)
    reference = densenet121().features.state_dict()
    ours = model.encoder.state_dict()
    assert list(ours) == list(reference)
    assert all(ours[k].shape == reference[k].shape for k in reference)
    # The encoder is DenseNet121 up to norm5 + ReLU: compare with torchvision's own forward.
    tv = densenet121().eval()
    tv.features.load_state_dict(ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x)[-1], torch.relu(tv.features(x)))


def test_cached_weights_load_without_network(tmp_path):
    torch.manual_seed(1)
    fake = densenet121().state_dict()  # random, but in the checkpoint's format, under the entry's file name
    path = tmp_path / "torch_home" / "hub" / "checkpoints" / ENTRY.url.rsplit("/", 1)[1]
    assert str(path) == weights_cache_path(ENTRY)
    path.parent.mkdir(parents=True)
    torch.save(fake, path)

    model = DenseNetUNet(num_classes=1, weights="imagenet")
    assert model.pretrained and model.weights == ENTRY
    for key, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, fake[f"features.{key}"])


def test_offline_without_cache_fails_clearly_and_names_the_cache_path():
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        DenseNetUNet(weights=ENTRY)
    message = str(info.value)
    assert weights_cache_path(ENTRY) in message and ENTRY.url in message
    assert "weights=None" in message and "allow_random_encoder=True" in message


def test_corrupt_cache_file_says_delete_it():
    path = weights_cache_path(ENTRY)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(PretrainedWeightsUnavailable, match="delete it"):
        DenseNetUNet(weights="DEFAULT")


def test_random_encoder_only_when_allowed_and_with_a_warning():
    with pytest.warns(RandomEncoderWarning, match="RANDOMLY INITIALISED"):
        model = DenseNetUNet(weights="imagenet", allow_random_encoder=True)
    assert not model.pretrained and model.weights is None
    assert model.normalization == normalization(ENTRY), "the data pipeline must not change with the fallback"


def test_weights_argument_choices():
    assert resolve_weights(None) is None
    assert resolve_weights("imagenet") == resolve_weights("DEFAULT") == resolve_weights("IMAGENET1K_V1") == ENTRY
    with pytest.raises(ValueError, match='"imagenet"'):
        resolve_weights("resnet")


def test_normalization_comes_from_the_weights_entry():
    preset = ENTRY.transforms()
    assert normalization(ENTRY) == {"mean": tuple(preset.mean), "std": tuple(preset.std)}
    assert normalization(None) == normalization("DEFAULT")


def _buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_frozen_encoder_gets_no_gradient_and_keeps_its_batchnorm_statistics():
    model = DenseNetUNet(freeze_encoder=True).train()
    assert model.encoder_frozen and not model.encoder.training and model.merges.training
    encoder_before, decoder_before = _buffers(model.encoder), _buffers(model.merges)
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(torch.equal(v, _buffers(model.encoder)[k]) for k, v in encoder_before.items())
    assert any(not torch.equal(v, _buffers(model.merges)[k]) for k, v in decoder_before.items()), (
        "the decoder's BatchNorm is in train mode and updates its statistics"
    )

    model.unfreeze_encoder()
    assert model.encoder.training and all(p.requires_grad for p in model.encoder.parameters())
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_unfrozen_encoder_can_keep_its_batchnorm_frozen_through_train():
    model = DenseNetUNet(freeze_encoder=True)
    model.unfreeze_encoder(train_batchnorm=False)
    model.train()  # what fit does before every epoch
    norms = model.encoder_batchnorms()
    assert len(norms) == 121 and not any(norm.training for norm in norms)
    assert model.encoder.conv0.training and model.merges.training, "only the encoder's BatchNorm stays in eval mode"
    encoder_before, decoder_before = _buffers(model.encoder), _buffers(model.merges)
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    assert all(torch.equal(v, _buffers(model.encoder)[k]) for k, v in encoder_before.items()), (
        "the encoder's running statistics must not move"
    )
    assert any(not torch.equal(v, _buffers(model.merges)[k]) for k, v in decoder_before.items())
    assert all(p.grad is not None for p in model.encoder.parameters()), "weights, BatchNorm's affine included, train"
    model.eval().train()
    assert not any(norm.training for norm in model.encoder_batchnorms())

    model.unfreeze_encoder()  # the default: BatchNorm trains again
    assert all(norm.training for norm in model.encoder_batchnorms())


def test_requires_grad_alone_lets_batchnorm_statistics_drift():
    """Why freeze_encoder() also keeps the encoder in eval mode: notebook 04's second exercise."""
    model = DenseNetUNet()
    model.encoder.requires_grad_(False)
    before = _buffers(model.encoder)
    model.train()(torch.randn(2, 3, 64, 64))
    assert any(not torch.equal(v, _buffers(model.encoder)[k]) for k, v in before.items())


def test_gradient_reaches_every_decoder_parameter():
    model = DenseNetUNet(num_classes=3)
    model(torch.randn(2, 3, 64, 64)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"


def test_param_groups_cover_every_parameter_once_with_their_learning_rates():
    model = DenseNetUNet(freeze_encoder=True)
    groups = model.param_groups(lr_encoder=1e-4, lr_decoder=1e-3)
    ids = [id(p) for group in groups for p in group["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {g["name"]: g["lr"] for g in groups} == {"encoder": 1e-4, "decoder": 1e-3}
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}
    torch.optim.AdamW(groups)  # accepted as they are


def test_padding_is_split_evenly_and_cropped_back():
    images = torch.randn(1, 3, 33, 64)
    padded, (top, left, height, width) = pad_to_multiple(images, 32)
    assert padded.shape == (1, 3, 64, 64) and (top, left) == (15, 0)
    torch.testing.assert_close(padded[..., top : top + height, left : left + width], images)


def test_non_rgb_input_is_explained(model):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(1, 1, 32, 32))
