"""Peak memory (RSS) of prediction on one large image: whole-image vs sliding-window (``--tile``).

Cases: "read" (the image only), "whole" (``predict_mask`` at the tile size), "tiled" (``sliding_window_mask``),
"cli" (``python -m unet_tutorial predict --tile``: a tiny U-Net, the mask PNG, the overlay JPEG, masks.csv).
Each case runs in a fresh Python process and reports ``resource.getrusage(...).ru_maxrss``, the process's peak
resident memory, after reading the image (the floor every case shares) and after predicting. The model is a 1x1
convolution, so the numbers measure the prediction pipeline (image copies, probability maps, the mask), not a
network's activations, which depend on the tile size alone (the "cli" case runs a tiny U-Net).
Linux/macOS only (``resource``).

    python benchmarks/predict_memory.py                      # 6000x5000 (height 5000), tile 512
    python benchmarks/predict_memory.py --size 5000x6000 --tile 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, json
import numpy as np, torch
from unet_tutorial.readers import read_image
from unet_tutorial.predict import predict_mask, sliding_window_mask
torch.set_num_threads(1)
case, path, tile = sys.argv[1], sys.argv[2], int(sys.argv[3])
def peak_mb():
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20
model = torch.nn.Conv2d(3, 1, 1).eval()
imported = peak_mb()
image = read_image(path)  # (H, W, 3) uint8
floor = peak_mb()
if case == "tiled":
    mask = sliding_window_mask(model, image, tile=tile)
elif case == "whole":
    mask = predict_mask(model, image, image_size=tile)
elif case == "cli":  # the command line's predict --tile: also the overlay, the PNG and the run-length table
    from unet_tutorial.checkpoint import save_checkpoint
    from unet_tutorial.cli import main
    from unet_tutorial.model import UNet
    checkpoint = save_checkpoint(path + ".pt", UNet(base_channels=4, depth=2),
                                 config={"model": "unet", "model_kwargs": {"base_channels": 4, "depth": 2},
                                         "num_classes": 1, "image_size": [tile, tile]})
    assert main(["predict", "--checkpoint", str(checkpoint), "--tile", str(tile), "--out", path + "-out",
                 "--device", "cpu", "--no-progress", path]) == 0
print(json.dumps({"case": case, "after_import_mb": round(imported), "after_read_mb": round(floor),
                  "peak_mb": round(peak_mb()), "image_mb": round(image.nbytes / 2**20)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5000x6000", help="HEIGHTxWIDTH of the generated image")
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args()
    height, width = map(int, args.size.lower().split("x"))
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.png"
        rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        cols = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        picture = np.stack([rows + 0 * cols, 0 * rows + cols, (rows + cols) / 2], axis=-1).astype(np.uint8)
        Image.fromarray(picture).save(path, compress_level=1)
        del picture
        for case in ("read", "whole", "tiled", "cli"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, case, str(path), str(args.tile)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            print(json.dumps({"size": f"{height}x{width}", "tile": args.tile, **json.loads(out.splitlines()[-1])}))


if __name__ == "__main__":
    main()
