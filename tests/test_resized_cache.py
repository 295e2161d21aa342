"""The pre-resized Carvana copy: layout, sizes, masks kept 0/1 and aligned, resumable, safe arguments."""

import numpy as np
import pytest
from PIL import Image

from unet_tutorial.course.resized_cache import write_resized_carvana
from unet_tutorial.course.sample_data import make_carvana_like
from unet_tutorial.data import CarvanaDataset


@pytest.fixture(scope="module")
def carvana(tmp_path_factory):
    return make_carvana_like(tmp_path_factory.mktemp("carvana"), 1, views=2, size=(128, 192))


def test_copy_is_a_carvana_folder_at_half_size(carvana, tmp_path):
    dest = write_resized_carvana(carvana, tmp_path / "half", scale=0.5)
    small, full = CarvanaDataset(dest), CarvanaDataset(carvana)
    assert small.ids == full.ids
    image, mask = small[0]
    assert image.shape == (3, 64, 96) and mask.shape == (1, 64, 96)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # nearest-neighbour masks: the car covers the same fraction of the picture
    assert mask.mean().item() == pytest.approx(full[0][1].mean().item(), abs=0.02)
    # the image is the original, shrunk: compare with PIL's own resize
    reference = np.asarray(Image.open(full.image_paths[0]).convert("RGB").resize((96, 64), Image.BILINEAR))
    assert np.abs(image.permute(1, 2, 0).numpy() * 255 - reference).mean() < 6
    assert not list(dest.glob("*.part"))


def test_second_run_skips_and_other_settings_are_refused(carvana, tmp_path):
    dest = write_resized_carvana(carvana, tmp_path / "half")
    first = (dest / "train" / f"{CarvanaDataset(dest).ids[0]}.jpg").stat().st_mtime_ns
    write_resized_carvana(carvana, dest)
    assert (dest / "train" / f"{CarvanaDataset(dest).ids[0]}.jpg").stat().st_mtime_ns == first
    with pytest.raises(FileExistsError, match="scale"):
        write_resized_carvana(carvana, dest, scale=0.25)


def test_bad_arguments(carvana):
    with pytest.raises(ValueError, match="scale"):
        write_resized_carvana(carvana, carvana.parent / "x", scale=1.5)
    with pytest.raises(ValueError, match="source folder"):
        write_resized_carvana(carvana, carvana)
