"""Notebook 04's self-checks: every message, every plausible wrong answer, and no expected value on a miss."""

import copy
import functools

import pytest
import torch

from unet_tutorial.course.exercises import transfer
from unet_tutorial.course.exercises.param_groups import check_encoder_decoder_groups
from unet_tutorial.course.exercises.transfer import (
    _CHANNEL_MISTAKES,
    _stage_channels,
    check_densenet_stage_channels,
    check_frozen_batchnorm,
)
from unet_tutorial.densenet_unet import ENCODER_CHANNELS, DenseNetUNet

# what the check tries, with the right answers (torchvision's DenseNets, written out by hand)
CONFIGS = {
    ((6, 12, 24, 16), 32, 64): [64, 256, 512, 1024, 1024],  # DenseNet121
    ((6, 12, 32, 32), 32, 64): [64, 256, 512, 1280, 1664],  # DenseNet169
    ((6, 12, 48, 32), 32, 64): [64, 256, 512, 1792, 1920],  # DenseNet201
    ((2, 3), 12, 16): [16, 40, 56],
    ((1, 1, 1), 8, 24): [24, 32, 24, 20],
}


def right(block_config, growth_rate=32, num_init_features=64):
    channels, stages = num_init_features, [num_init_features]
    for index, layers in enumerate(block_config):
        channels += layers * growth_rate
        stages.append(channels)
        if index < len(block_config) - 1:
            channels //= 2
    return stages


def mistake(**kind):
    return lambda block_config, growth_rate=32, num_init_features=64: _stage_channels(
        block_config, growth_rate, num_init_features, **kind
    )


def test_the_cases_and_the_reference_agree_with_torchvision_and_the_model():
    assert CONFIGS[((6, 12, 24, 16), 32, 64)] == list(ENCODER_CHANNELS)
    for (config, growth, init), expected in CONFIGS.items():
        assert right(config, growth, init) == expected == _stage_channels(config, growth, init)
    check_densenet_stage_channels(right)  # and the check reads the same truth off torchvision


def test_channel_check_passes_the_solution_also_as_a_tuple(capsys):
    check_densenet_stage_channels(lambda *args, **kwargs: tuple(right(*args, **kwargs)))
    assert "densenet_stage_channels: all checks passed" in capsys.readouterr().out


def test_every_channel_mistake_is_told_apart_from_the_truth_and_from_the_others():
    config = (6, 12, 24, 16)
    answers = [tuple(_stage_channels(config, 32, 64, **kind)) for kind, _ in _CHANNEL_MISTAKES]
    assert tuple(right(config)) not in answers
    assert len(set(answers)) == len(answers), answers


@pytest.mark.parametrize(("kind", "diagnosis"), _CHANNEL_MISTAKES, ids=[str(kind) for kind, _ in _CHANNEL_MISTAKES])
def test_channel_check_diagnoses_each_mistake_without_the_expected_list(kind, diagnosis, capsys):
    with pytest.raises(AssertionError) as error:
        check_densenet_stage_channels(mistake(**kind))
    message = str(error.value)
    assert diagnosis in message
    assert "expected" not in message and str(list(ENCODER_CHANNELS)) not in message, message
    assert "passed" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda config, growth_rate=32, num_init_features=64: right(config, 32, num_init_features), "growth_rate"),
        (lambda config, growth_rate=32, num_init_features=64: right(config, growth_rate, 64), "num_init_features"),
        (lambda *args, **kwargs: right(*args, **kwargs) + [0], "one for the stem and one per dense block"),
        (lambda *args, **kwargs: [c + 1 for c in right(*args, **kwargs)], "the first wrong number is the stem's"),
        (lambda *args, **kwargs: right(*args, **kwargs)[:-1] + [-1], "dense block 4's output"),
        (lambda *args, **kwargs: iter(right(*args, **kwargs)), "return a list"),
    ],
    ids=["growth-ignored", "init-ignored", "too-long", "all-off", "last-wrong", "iterator"],
)
def test_channel_check_names_other_mistakes_without_the_expected_list(answer, says):
    with pytest.raises(AssertionError) as error:
        check_densenet_stage_channels(answer)
    message = str(error.value)
    assert says in message, message
    assert not any(str(expected) in message for expected in CONFIGS.values()), message


def test_channel_check_diagnoses_a_mistake_the_first_case_cannot_show():
    """Ignoring growth_rate is right for DenseNet121 (growth 32): the made-up DenseNets catch it."""

    def growth_ignored(block_config, growth_rate=32, num_init_features=64):
        return right(block_config, 32, num_init_features)

    with pytest.raises(AssertionError, match=r"\(2, 3\), growth_rate=12.*use the growth_rate argument, not 32"):
        check_densenet_stage_channels(growth_ignored)


def test_channel_check_reveals_the_expected_list_only_on_request():
    with pytest.raises(AssertionError) as error:
        check_densenet_stage_channels(mistake(halve="never"))
    assert "reveal" not in str(error.value)  # a diagnosed mistake needs no reveal
    with pytest.raises(AssertionError) as error:
        check_densenet_stage_channels(lambda *args, **kwargs: [c + 1 for c in right(*args, **kwargs)])
    assert "reveal=True" in str(error.value) and "[64, 256" not in str(error.value)
    with pytest.raises(AssertionError, match=r"\(expected \[64, 256, 512, 1024, 1024\]\)"):
        check_densenet_stage_channels(mistake(halve="never"), reveal=True)


@functools.cache
def _template() -> DenseNetUNet:
    return DenseNetUNet(num_classes=1, decoder_channels=(16, 8, 8, 8, 4))


def small_densenet() -> DenseNetUNet:
    return copy.deepcopy(_template())  # a copy costs far less than initialising DenseNet121 again


def encoder_eval_hook(module, inputs):  # the notebook's fix
    for norm in module.encoder_batchnorms():
        norm.eval()


def all_eval_hook(module, inputs):  # too much: the decoder's BatchNorm stops learning as well
    for norm in module.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.eval()


def norms_of(model, where="encoder"):
    every = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    return model.encoder_batchnorms() if where == "encoder" else every


def drift_measured(stat="running_mean", reduce="max", where="encoder", absolute=True, clone=True, train=True):
    """running_mean_drift as a learner writes it: right with the defaults, else with one slip."""

    def running_mean_drift(model, batches):
        def stats():
            values = torch.cat([getattr(norm, stat).flatten() for norm in norms_of(model, where)])
            return values.clone() if clone else values

        before = stats() if clone else [getattr(norm, stat) for norm in norms_of(model, where)]  # no copy: views
        if train:  # a learner who forgets it measures whatever mode the model came in
            model.train()
        with torch.no_grad():
            for images in batches:
                model(images)
        after = stats()
        change = after - (before if clone else torch.cat(before))
        change = change.abs() if absolute else change
        return getattr(change, reduce)().item()

    return running_mean_drift


right_drift = drift_measured()


@pytest.fixture(scope="module")
def fixed() -> DenseNetUNet:
    model = small_densenet()
    model.encoder.requires_grad_(False)
    model.register_forward_pre_hook(encoder_eval_hook)
    return model.train()


@pytest.fixture(scope="module")
def truth(fixed) -> float:
    """What the check measures with the fix undone: a message must not show it."""
    return right_drift(transfer._undo_fix(fixed), transfer._batches())


def test_frozen_batchnorm_accepts_the_fixes(fixed, capsys):
    check_frozen_batchnorm(right_drift, fixed)
    check_frozen_batchnorm(lambda model, batches: torch.tensor(right_drift(model, batches)), fixed)  # a tensor of 1
    package = small_densenet()
    package.freeze_encoder()
    check_frozen_batchnorm(right_drift, package.train())
    package.unfreeze_encoder(train_batchnorm=False)  # the statistics stay frozen, the weights train
    check_frozen_batchnorm(right_drift, package.train())
    out = capsys.readouterr().out
    assert out.count("frozen_batchnorm: all checks passed") == 4 and "a running mean move by up to 0." in out


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (drift_measured(reduce="mean"), ".max(), not .mean()"),
        (drift_measured(absolute=False), "a running mean that fell counts as much as one that rose"),
        (drift_measured(stat="running_var"), "that is a change of running_var"),
        (drift_measured(where="all"), "you counted the decoder's BatchNorm layers too"),
        (drift_measured(clone=False), "copy them with .clone() before the forward passes"),
        (drift_measured(train=False), "put it in train mode (model.train()) inside your function"),
        (lambda model, batches: -right_drift(model, batches), "ABSOLUTE change"),
        (lambda model, batches: 2 * right_drift(model, batches), "clone the running means before the forward passes"),
        (lambda model, batches: right_drift(model, batches[:1]), "Run the `batches` your function is given"),
        (lambda model, batches: float("nan"), "returned nan"),
        (lambda model, batches: torch.zeros(5), "a tensor of 5 values: return one number"),
        (lambda model: 0.3, "running_mean_drift(model, batches) raised TypeError"),
        (0.3, "pass your function running_mean_drift itself, not float"),
    ],
    ids=["mean", "signed", "running-var", "decoder-too", "no-clone", "no-train", "negative", "other", "own-batches",
         "nan", "many", "args", "a-number"],
)  # fmt: skip
def test_frozen_batchnorm_diagnoses_each_wrong_measurement_without_the_expected_drift(
    answer, says, fixed, truth, capsys
):
    with pytest.raises(AssertionError) as error:
        check_frozen_batchnorm(answer, fixed)
    message = str(error.value)
    assert says in message, message
    diagnosis = message.split(" on ", 1)[-1]  # what comes after the learner's own number
    assert f"{truth:.4g}" not in diagnosis and f"{truth:.3g}" not in diagnosis
    assert ("reveal=True" in message) == callable(answer)  # a number instead of a function: nothing to reveal
    assert "passed" not in capsys.readouterr().out


def test_a_signed_measurement_fails_even_where_the_largest_change_is_a_rise(fixed):
    """On the check's own batches the largest change may well be a rise, where .max() without .abs() gives the
    right number: the check also measures a copy where one running mean falls most, so the slip still fails."""
    model = transfer._undo_fix(fixed)
    with torch.no_grad():
        for norm in model.encoder_batchnorms():
            norm.running_mean -= 10  # every batch mean now lies above: every running mean rises
    for norm in model.encoder_batchnorms():
        norm.eval()
    model.register_forward_pre_hook(encoder_eval_hook)
    signed = drift_measured(absolute=False)
    loose = transfer._undo_fix(model)
    assert signed(copy.deepcopy(loose), transfer._batches()) == pytest.approx(right_drift(loose, transfer._batches()))
    with pytest.raises(AssertionError, match="so that its fall is the largest change: that is the largest signed"):
        check_frozen_batchnorm(signed, model.train())
    check_frozen_batchnorm(right_drift, model.train())


def test_frozen_batchnorm_reveals_what_it_measured_on_request(fixed, truth, capsys):
    with pytest.raises(AssertionError):
        check_frozen_batchnorm(drift_measured(reduce="mean"), fixed, reveal=True)
    out = capsys.readouterr().out
    assert f"the largest absolute change of an encoder running mean is {truth:.6g}" in out
    assert "with your fix: the encoder's running means moved by 0" in out
    check_frozen_batchnorm(right_drift, fixed, reveal=True)
    assert "your function returned 0 on a copy of your fixed model" in capsys.readouterr().out


def test_frozen_batchnorm_rejects_wrong_fixes():
    eval_mode = small_densenet()
    eval_mode.encoder.requires_grad_(False)
    with pytest.raises(AssertionError, match="the model is in eval mode"):
        check_frozen_batchnorm(right_drift, eval_mode.eval())

    grad_only = small_densenet()
    grad_only.encoder.requires_grad_(False)
    with pytest.raises(AssertionError, match="the encoder's running statistics moved"):
        check_frozen_batchnorm(right_drift, grad_only.train())

    once = small_densenet()
    once.encoder.eval()  # evaluated once, undone by the check's model.train()
    with pytest.raises(AssertionError, match="the encoder's running statistics moved"):
        check_frozen_batchnorm(right_drift, once.train())

    for setting in ({"momentum": 0.0}, {"track_running_stats": False}):
        model = small_densenet()
        for norm in model.encoder_batchnorms():
            for name, value in setting.items():
                setattr(norm, name, value)
        with pytest.raises(AssertionError, match="still normalise with each batch's own statistics"):
            check_frozen_batchnorm(right_drift, model.train())

    after = small_densenet()  # a forward hook runs after the pass: too late for that pass's statistics
    after.register_forward_hook(lambda module, inputs, output: encoder_eval_hook(module, inputs))
    with pytest.raises(AssertionError, match="register it with register_forward_pre_hook"):
        check_frozen_batchnorm(right_drift, after.train())

    on_encoder = small_densenet()  # encode() runs the encoder's parts by name: a hook on the whole never fires
    on_encoder.encoder.register_forward_pre_hook(lambda module, inputs: [m.eval() for m in module.modules()])
    with pytest.raises(AssertionError, match="your forward pre-hook sits on model.encoder"):
        check_frozen_batchnorm(right_drift, on_encoder.train())

    everything = small_densenet()
    everything.register_forward_pre_hook(all_eval_hook)
    everything.train()
    everything(torch.randn(2, 3, 64, 64))  # the hook has run: the decoder's layers are in eval mode now
    with pytest.raises(AssertionError, match="the decoder's BatchNorm layers are in eval mode"):
        check_frozen_batchnorm(right_drift, everything)


def test_the_checks_leave_the_learners_model_as_it_was(fixed):
    before = [norm.running_mean.clone() for norm in fixed.encoder_batchnorms()]
    check_frozen_batchnorm(right_drift, fixed)
    assert all(torch.equal(a, norm.running_mean) for a, norm in zip(before, fixed.encoder_batchnorms()))
    assert fixed.training
    assert transfer.check_frozen_batchnorm is check_frozen_batchnorm


def _groups(encoder_params, rest_params):
    return lambda model, a, b: [
        {"name": "encoder", "params": encoder_params(model), "lr": a},
        {"name": "decoder", "params": rest_params(model), "lr": b},
    ]


def test_encoder_decoder_groups_accepts_the_right_split_and_names_each_slip(capsys):
    def encoder(model):
        return list(model.encoder.parameters())

    def rest(model):
        return [p for name, p in model.named_parameters() if not name.startswith("encoder.")]

    check_encoder_decoder_groups(_groups(encoder, rest))
    assert "encoder_decoder_groups: all checks passed" in capsys.readouterr().out
    slips = {
        "the decoder group holds the encoder's encoder.0.weight": _groups(encoder, lambda m: list(m.parameters())),
        "no group holds head.weight, head.bias": _groups(encoder, lambda m: list(m.decoder.parameters())),
        "frozen parameters: keep them": _groups(lambda m: [p for p in encoder(m) if p.requires_grad], rest),
        r"the rates \[0.001, 0.0001\].*\(swapped\?\)": lambda m, a, b: _groups(encoder, rest)(m, b, a),
        r"named its groups \['decoder', 'encoder'\]": lambda m, a, b: [
            {**group, "name": name} for group, name in zip(_groups(encoder, rest)(m, a, b), ("decoder", "encoder"))
        ],
        "which are not the encoder's": _groups(lambda m: list(m.parameters()), lambda m: []),
        "raised ZeroDivisionError": lambda m, a, b: 1 / 0,
        "pass the function itself": [],
    }
    for message, answer in slips.items():
        with pytest.raises(AssertionError, match=message):
            check_encoder_decoder_groups(answer)
