"""Notebook 04 takes its ImageNet path end to end in smoke mode, with a random file in place of the ImageNet weights.

Nowhere else does that path run: CI has no network and no cached weights, so the notebook always takes its
STAND-IN branch there. torchvision checks a weights file's hash only when it downloads it; a file already in
``$TORCH_HOME/hub/checkpoints`` is loaded as it is. So the state dict of a randomly initialised
``torchvision.models.densenet121()``, saved under the file name of ``DenseNet121_Weights.IMAGENET1K_V1``'s url in a
temporary ``TORCH_HOME``, makes the notebook load "ImageNet" weights from the cache (smoke mode never downloads).
This proves the code path: loading the weights, the ImageNet run, the recipe on a pretrained encoder, the headline
named and reported for ImageNet, and checkpoints that ``python -m unet_tutorial predict`` reads. It says nothing
about what ImageNet's real weights are worth: these are random.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "04_densenet121_transfer.ipynb"


def stand_in_weights(torch_home: Path) -> Path:
    """A random DenseNet121 state dict where torchvision's cache keeps the ImageNet file."""
    from torchvision.models import DenseNet121_Weights, densenet121

    name = os.path.basename(DenseNet121_Weights.IMAGENET1K_V1.url)  # densenet121-a639ec97.pth
    path = torch_home / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True)
    torch.save(densenet121(weights=None).state_dict(), path)
    return path


def outputs_text(notebook) -> str:
    """Every stream and every rendered reading (Markdown) of an executed notebook, as one string."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                parts.append(output.data.get("text/markdown", ""))
    return "\n".join(parts)


@pytest.mark.slow
def test_notebook_04_takes_its_imagenet_path_with_cached_weights(tmp_path, monkeypatch, capsys, official_data):
    """On the real data's layout too (``official_data``): its real-data branch runs in the same pass."""
    from nbclient import NotebookClient

    from unet_tutorial.checkpoint import load_model
    from unet_tutorial.cli import main

    weights = stand_in_weights(tmp_path / "torch")
    runs = tmp_path / "runs"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # smoke-mode sizes (UNET_TUTORIAL_MODE) on data in the official layout, which smoke mode itself would not read
    monkeypatch.setenv("UNET_TUTORIAL_SMOKE", "0")
    monkeypatch.setenv("UNET_TUTORIAL_MODE", "smoke")
    monkeypatch.setenv("UNET_TUTORIAL_DATA", str(official_data))
    monkeypatch.setenv("UNET_TUTORIAL_REPORT", str(tmp_path / "report"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    settings = next(i for i, cell in enumerate(notebook.cells) if "settings" in cell.metadata.get("tags", []))
    # Smoke mode keeps no checkpoints; here they go to a temporary folder, so that the test can read them back. One
    # seed: the nbmake run takes the path of several (SEED_RUNS is 2 in smoke mode), this one the path of one.
    notebook.cells.insert(settings + 1, nbformat.v4.new_code_cell(f"RUN_DIR = Path({str(runs)!r})\nSEED_RUNS = 1"))
    notebook.cells.insert(settings + 1, nbformat.v4.new_code_cell("from pathlib import Path"))
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()

    text = outputs_text(notebook)
    assert f"Loaded the ImageNet weights DenseNet121_Weights.IMAGENET1K_V1 from {weights}" in text, text[:3000]
    assert "headline run: DenseNet, ImageNet encoder, frozen then unfrozen, BatchNorm frozen" in text
    assert "DenseNet, ImageNet encoder " in text  # its row in the comparison's table
    assert "the ImageNet encoder's Dice minus the random encoder's" in text  # read from the run
    assert "one seed cannot separate a gap from training's own noise" in text  # SEED_RUNS = 1's reading
    assert "STAND-IN" not in text, "no STAND-IN is pretrained when the ImageNet weights are there"
    assert "the ImageNet weights are NOT available" not in text
    assert "NOTICE" not in text, "the real-data branch: no notice about generated data"
    report = json.loads((tmp_path / "report" / "04_densenet121_transfer.json").read_text())
    assert report["metric"] == "val_dice", report  # not val_dice_STAND_IN

    # The checkpoints the notebook wrote name their model: the command line rebuilds it from the file alone.
    folders = sorted(p.name for p in runs.iterdir())
    assert folders == sorted(
        [
            "unet_scratch",
            "densenet_random",
            "densenet_imagenet",
            "staged_imagenet_frozen",
            "staged_imagenet_unfrozen",
            "staged_imagenet_unfrozen_bn_frozen",
            "staged_imagenet_kept_frozen",  # section 7's control
            "staged_imagenet_unfrozen_bn_frozen_lr_0.001",  # exercise 2's copy, the encoder at LR
            "staged_imagenet_unfrozen_bn_frozen_batches_2",  # exercise 2's reference: smoke mode's own batch order
        ]
    ), folders
    headline = runs / "staged_imagenet_unfrozen_bn_frozen" / "best.pt"
    model, config = load_model(headline)
    assert type(model).__name__ == "DenseNetUNet" and config["model"] == "densenet_unet"
    assert config["model_kwargs"] == {"num_classes": 1, "weights": "imagenet"} and config["lr_encoder"] == 1e-4
    assert load_model(runs / "unet_scratch" / "best.pt")[1]["model"] == "unet"
    assert Path(config["data"]) == official_data / "carvana"
    image = next((Path(config["data"]) / "train").glob("*.jpg"))
    assert main(["predict", "--checkpoint", str(headline), str(image), "--out", str(tmp_path / "predicted")]) == 0
    assert any((tmp_path / "predicted").iterdir()), capsys.readouterr()
