"""Bad input to ``train`` and ``predict``: flags that would crash with a traceback or train silently wrong, a
multi-class checkpoint without "num_classes" in its config, the same image named twice."""

import numpy as np
import pytest
import torch
from PIL import Image

from unet_tutorial.checkpoint import save_checkpoint
from unet_tutorial.cli import get_parser, main
from unet_tutorial.model import UNet

TRAIN = ["train", "--dataset", "carvana"]


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--lr", "nan", "a positive number"),  # AdamW: ValueError "Invalid learning rate: nan", a traceback
        ("--lr", "-1", "a positive number"),
        ("--lr", "0", "a positive number"),  # trains nothing, for as many epochs as asked
        ("--grad-clip", "-1", "a positive number"),  # a negative max norm flips every gradient: ascent
        ("--grad-clip", "inf", "a positive number"),
        ("--base-channels", "0", "at least 1"),  # UNet's ValueError, a traceback
        ("--depth", "0", "at least 1"),
        ("--seed", "-1", "from 0 to 4294967295"),  # NumPy: "Seed must be between 0 and 2**32 - 1", a traceback
        ("--seed", str(2**32), "from 0 to 4294967295"),
    ],
)
def test_train_flags_out_of_range_are_one_line_naming_the_flag(flag, value, says, capsys):
    with pytest.raises(SystemExit) as stop:
        get_parser().parse_args([*TRAIN, flag, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}: {value!r} is not" in err and says in err, err


def test_train_flags_in_range_parse():
    args = get_parser().parse_args([*TRAIN, "--lr", "3e-4", "--grad-clip", "1", "--seed", "4294967295"])
    assert (args.lr, args.grad_clip, args.seed) == (3e-4, 1.0, 2**32 - 1)


def test_a_multi_class_checkpoint_without_num_classes_in_its_config_predicts_class_indices(tmp_path):
    # load_model needs only "model" and "model_kwargs": the classes come from the model, never "binary" by default
    # (that saved class 2 as 2 * 255 = 254 in uint8, and wrote masks.csv rows of a multi-class mask).
    torch.manual_seed(0)
    model = UNet(num_classes=3, base_channels=4, depth=1)
    with torch.no_grad():
        model.outc.conv.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # every pixel: class 2
    config = {"model": "unet", "model_kwargs": {"num_classes": 3, "base_channels": 4, "depth": 1}}
    checkpoint = save_checkpoint(tmp_path / "best.pt", model, config=config)
    Image.new("RGB", (24, 16), (10, 200, 90)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "a.png"), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    assert np.unique(np.array(Image.open(out / "a_mask.png"))).tolist() == [2]
    assert not (out / "masks.csv").exists()


def test_the_same_image_named_twice_is_predicted_once(tmp_path, capsys):
    model = UNet(base_channels=4, depth=1)
    config = {"model": "unet", "model_kwargs": {"num_classes": 1, "base_channels": 4, "depth": 1}}
    checkpoint = save_checkpoint(tmp_path / "best.pt", model, config=config)
    Image.new("RGB", (24, 16), (10, 200, 90)).save(tmp_path / "a.png")
    image = str(tmp_path / "a.png")
    argv = ["predict", "--checkpoint", str(checkpoint), image, str(tmp_path / "." / "a.png"), str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 0, capsys.readouterr().err
    assert "wrote 1 masks" in capsys.readouterr().out
    assert [row.split(",")[0] for row in (tmp_path / "out" / "masks.csv").read_text().splitlines()] == ["img", "a.png"]
