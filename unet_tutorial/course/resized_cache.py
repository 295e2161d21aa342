"""A pre-resized copy of Carvana: decode each 1918x1280 photo once, so training reads small files.

Training at half scale from the original files spends most of its loading time decoding full-size JPEGs
and GIF masks that are then shrunk anyway (benchmarks/bench_data.py: about 110 ms for the JPEG and 25 ms for
the GIF per image, against 16 ms and 1 ms for a half-scale JPEG and PNG). This writes the copy once, in the
Carvana layout, so ``data.CarvanaDataset(dest)`` reads it unchanged. Images are decoded in PIL draft mode (the
JPEG decoder's DCT scaling) at the smallest scale still at least the target size, then resized with a
bilinear filter and saved as JPEG; masks are resized nearest-neighbour and saved as PNG (0/1, lossless). Files
are read with ``readers.read_image``/``read_label``, so EXIF-turned photos are turned and lossy masks refused.
Left out: ADE20K (its images have many sizes; resize them in the transform instead).
Used by: notebook 03's GPU recipe on the real photos (where loading speed matters); the CLI is
data_scripts/make_resized_cache.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from unet_tutorial.data import CarvanaDataset
from unet_tutorial.readers import image_size, read_image, read_label

_INFO = "resized_info.json"


def write_resized_carvana(root: str | Path, dest: str | Path, scale: float = 0.5, quality: int = 95) -> Path:
    """Write ``dest/train/<id>.jpg`` and ``dest/train_masks/<id>_mask.png`` resized by ``scale`` from ``root``.

    Files already written are kept, so an interrupted run continues where it stopped; a ``dest`` made with
    another scale or quality is an error rather than a mix.

    Args:
        root: a Carvana folder (``train/`` or ``train_hq/`` and ``train_masks/``).
        dest: output folder (created); must not be ``root``.
        scale: output size as a fraction of each image's size, in (0, 1]; 0.5 gives 959x640 for Carvana.
        quality: JPEG quality of the images.

    Returns:
        ``dest`` as a Path, ready for ``CarvanaDataset(dest)``.
    """
    root, dest = Path(root), Path(dest)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}; 0.5 halves 1918x1280 to 959x640")
    if dest.resolve() == root.resolve():
        raise ValueError(f"dest {dest} is the source folder; write the resized copy to a new folder")
    dataset = CarvanaDataset(root)  # checks the layout and pairs every image with its mask
    info = {"source": str(root.resolve()), "scale": scale, "quality": quality}
    marker = dest / _INFO
    if marker.is_file() and json.loads(marker.read_text()) != info:
        raise FileExistsError(
            f"{dest} holds a copy made with {json.loads(marker.read_text())}, not {info}; "
            "choose another dest or delete it"
        )
    (dest / "train").mkdir(parents=True, exist_ok=True)
    (dest / "train_masks").mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(info))
    for image_id, image_path, mask_path in zip(dataset.ids, dataset.image_paths, dataset.mask_paths):
        image_out, mask_out = dest / "train" / f"{image_id}.jpg", dest / "train_masks" / f"{image_id}_mask.png"
        if image_out.is_file() and mask_out.is_file():
            continue
        height, width = image_size(image_path)  # as displayed (EXIF orientation applied)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))  # (width, height), as PIL wants
        image = read_image(image_path, min_size=size[::-1])  # decoded at 1/1, 1/2, 1/4 or 1/8 scale, >= size
        resized = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        mask_small = Image.fromarray(read_label(mask_path)).resize(size, Image.Resampling.NEAREST)  # stays 0/1
        mask_small = mask_small.convert("P")
        mask_small.putpalette([0, 0, 0, 255, 255, 255])  # 0/1 indices, shown black and white
        # Write beside the folders, then move: the folders only ever hold complete files, even if interrupted.
        mask_small.save(dest / "mask.part", format="PNG")
        resized.save(dest / "image.part", format="JPEG", quality=quality)
        (dest / "mask.part").replace(mask_out)
        (dest / "image.part").replace(image_out)
    return dest
