"""The GPU check: one command that measures what the README's Performance section can only estimate.

On a CUDA machine (``make gpu-check``, at most about 9 minutes) it runs, in order:

1. ``bench_train.py``: fp32 eager against the engine default at 512 px, for UNet (base 64) and DenseNetUNet;
2. ``bench_data.py``: the 2-worker (and min(8, cores)-worker) Carvana loader at half scale, decoding the full
   JPEGs against reading the pre-resized cache;
3. one epoch of each notebook's GPU recipe (``unet_tutorial.recipes``) on generated data at the recipe's full
   image size and batch, through the package (``data``, ``resized_cache``, ``train.fit``), not by running the
   notebooks; seconds per epoch are projected to the real data set from the measured images per second.

and writes one markdown table (device, torch version, images/s, peak memory, seconds per epoch) to
``build/gpu_check.md``, with the benchmarks' JSON next to it. Without CUDA it says so in one line and does a dry
run instead: every step at tiny sizes, one training step each, to prove that each can start.

    python benchmarks/gpu_check.py              # CUDA: the check; elsewhere: the dry run
    python benchmarks/gpu_check.py --dry-run    # the dry run, anywhere (a few seconds)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_data  # noqa: E402
import bench_train  # noqa: E402
from estimates import ADE20K_TRAIN, CARVANA_TRAIN, NOTEBOOKS, notebook_settings  # noqa: E402

from unet_tutorial.conventions import IGNORE_INDEX  # noqa: E402
from unet_tutorial.course.resized_cache import write_resized_carvana  # noqa: E402
from unet_tutorial.course.sample_data import make_ade20k_like, make_carvana_like  # noqa: E402
from unet_tutorial.data import ADE20KDataset, carvana_ids  # noqa: E402
from unet_tutorial.densenet_unet import DenseNetUNet  # noqa: E402
from unet_tutorial.loaders import carvana_loaders  # noqa: E402
from unet_tutorial.losses import ComboLoss  # noqa: E402
from unet_tutorial.model import UNet  # noqa: E402
from unet_tutorial.models import build_model  # noqa: E402
from unet_tutorial.train import fit  # noqa: E402
from unet_tutorial.transforms import eval_transforms, scale_crop_transforms  # noqa: E402
from unet_tutorial.utils import set_seed  # noqa: E402

STEPS = 8  # training steps in each recipe's epoch on generated data: enough to see past cuDNN's autotuning


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _repeat(ids: list[str], count: int) -> list[str]:
    """``count`` ids cycling through ``ids``: an epoch of any length from a few generated images."""
    return [ids[i % len(ids)] for i in range(count)]


def run_epoch(
    name: str,
    model: torch.nn.Module,
    train_loader,
    val_loader,
    loss_fn,
    *,
    device: torch.device,
    num_classes: int,
    accumulate: int = 1,
    real_train_images: int | None,
    ignore_index: int | None = None,
) -> dict:
    """One epoch of ``fit`` (training and evaluation); images/s of training, peak memory, projected epoch seconds."""
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    history = fit(
        model,
        train_loader,
        val_loader,
        epochs=1,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        num_classes=num_classes,
        ignore_index=ignore_index,
        accumulate=accumulate,
        scheduler="onecycle",
        progress=False,
        log=lambda line: None,
    )
    seconds = time.perf_counter() - start
    images = len(train_loader) * train_loader.batch_size
    speed = images / history["seconds"][0]
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    epoch_s = real_train_images / speed if real_train_images else None
    return {"step": name, "images_per_s": speed, "peak_bytes": peak, "epoch_s": epoch_s, "wall_s": seconds}


def settings(stem: str, mode: str) -> dict:
    """The settings cell of notebook ``stem`` run in ``mode``: the values the learner reads (tools.settings)."""
    return notebook_settings(NOTEBOOKS / f"{stem}.py", mode)


def recipe_epochs(work: Path, device: torch.device, dry_run: bool, carvana_root: Path) -> list[dict]:
    """One epoch of each notebook's recipe ("gpu"; the dry run: "smoke", one step) on generated data."""
    mode = "smoke" if dry_run else "gpu"
    rows = []
    # 03: the half-scale cache of Carvana-size photos, as the notebook's GPU path reads the real data
    nb03 = settings("03_carvana_binary", mode)
    root = carvana_root
    cache = write_resized_carvana(root, root.with_name(f"{root.name}_half"), scale=0.5)
    steps = 1 if dry_run else STEPS
    nb04_images = settings("04_densenet121_transfer", "gpu")["TRAIN_IMAGES"] or CARVANA_TRAIN
    real = {} if dry_run else {"03": CARVANA_TRAIN, "04": nb04_images, "05": ADE20K_TRAIN}
    ids = carvana_ids(cache)
    train_loader, val_loader = carvana_loaders(
        cache,
        _repeat(ids, steps * nb03["BATCH_SIZE"]),
        ids[: nb03["BATCH_SIZE"]],
        image_size=nb03["IMAGE_SIZE"],
        batch_size=nb03["BATCH_SIZE"],
        num_workers=nb03["NUM_WORKERS"],
        pin_memory=device.type == "cuda",
    )
    rows.append(
        run_epoch(
            f"03 UNet(base {nb03['BASE_CHANNELS']}) {nb03['IMAGE_SIZE']}, batch {nb03['BATCH_SIZE']}",
            UNet(base_channels=nb03["BASE_CHANNELS"]),
            train_loader,
            val_loader,
            ComboLoss({"cross_entropy": 1.0, "dice": 1.0}),
            device=device,
            num_classes=1,
            real_train_images=real.get("03"),
        )
    )
    # 04: its biggest run (the base-64 U-Net) and a DenseNetUNet, from the full-size photos as the notebook reads them
    nb04 = settings("04_densenet121_transfer", mode)
    ids = carvana_ids(root)
    train_loader, val_loader = carvana_loaders(
        root,
        _repeat(ids, steps * nb04["BATCH_SIZE"]),
        ids[: nb04["BATCH_SIZE"]],
        image_size=nb04["IMAGE_SIZE"],
        batch_size=nb04["BATCH_SIZE"],
        num_workers=nb04["NUM_WORKERS"],
        pin_memory=device.type == "cuda",
    )
    for label, model in (
        (f"UNet(base {nb04['UNET_BASE_CHANNELS']})", UNet(base_channels=nb04["UNET_BASE_CHANNELS"])),
        ("DenseNetUNet", DenseNetUNet(num_classes=1, weights=None)),
    ):
        rows.append(
            run_epoch(
                f"04 {label} {nb04['IMAGE_SIZE']}, batch {nb04['BATCH_SIZE']}",
                model,
                train_loader,
                val_loader,
                ComboLoss({"cross_entropy": 1.0, "dice": 1.0}),
                device=device,
                num_classes=1,
                real_train_images=real.get("04"),
            )
        )
    # 05: 150 classes on ADE20K-like scenes of a real photo's size, in crops of the recipe's side
    nb05 = settings("05_ade20k_multiclass", mode)
    crop = nb05["CROP"]["sample" if dry_run else "real"]
    batch, accumulate = nb05["BATCH_SIZE"], nb05["ACCUMULATE"]
    ade = make_ade20k_like(work / "ade20k", 4 if dry_run else 16, 2, size=(64, 96) if dry_run else (512, 683))
    # notebook 05's pipelines: scale-and-crop for training; the short side at the crop's, masks as annotated
    train_set = ADE20KDataset(ade, "training", scale_crop_transforms(crop, short_side=crop))
    val_set = ADE20KDataset(ade, "validation", eval_transforms(None, short_side=crop, keep_mask=True))
    train_set = torch.utils.data.Subset(train_set, [i % len(train_set) for i in range(steps * accumulate * batch)])
    args = {"num_workers": nb05["NUM_WORKERS"], "pin_memory": device.type == "cuda"}
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True, **args)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=1, **args)
    kwargs = nb05["MODEL_KWARGS"] | ({"weights": None} if nb05["MODEL"] == "densenet_unet" else {})
    model = build_model(nb05["MODEL"], **kwargs)
    rows.append(
        run_epoch(
            f"05 {type(model).__name__} 150 classes, crop {crop}, batch {batch} x {accumulate}",
            model,
            train_loader,
            val_loader,
            ComboLoss({"cross_entropy": 1.0, "dice": 1.0}, IGNORE_INDEX),
            device=device,
            num_classes=150,
            ignore_index=IGNORE_INDEX,
            accumulate=accumulate,
            real_train_images=real.get("05"),
        )
    )
    return rows


def bench_rows(out: Path, device: torch.device, dry_run: bool, carvana_root: Path) -> list[dict]:
    """The train-step benchmark's rows (images/s, peak memory) and the loader's (images/s)."""
    if dry_run:
        argv = ["--quick", "--configs", "fp32", "default", "--device", "cpu", "--threads", "1"]
    else:
        argv = [
            "--models",
            "unet",
            "densenet",
            "--sizes",
            "512",
            "--configs",
            "fp32",
            "default",
            "--data-root",
            str(carvana_root),
        ]
    results = bench_train.main([*argv, "--json", str(out / "bench_train.json")])
    rows = [
        {
            "step": f"bench_train {r['model']} {r['height']}x{r['width']} {r['config']}, batch {r['batch_size']}",
            "images_per_s": r.get("images_per_s"),
            "peak_bytes": r["peak_mb"] * 2**20 if r.get("peak_mb") else None,
            "epoch_s": None,
            "error": r.get("error"),
        }
        for r in results
    ]
    workers = [0] if dry_run else sorted({2, min(8, torch.multiprocessing.cpu_count())})
    scale = 0.05 if dry_run else 0.5  # the dry run's photos are tiny
    for decode in ("full", "cache"):
        for count in workers:
            speed = bench_data.measure_loader(
                carvana_root,
                scale=scale,
                workers=count,
                batch_size=2 if dry_run else 8,
                batches=1 if dry_run else 12,
                decode=decode,
            )
            step = f"bench_data Carvana x{scale}, {decode}, {count} workers, batch {2 if dry_run else 8}"
            rows.append({"step": step, "images_per_s": speed, "peak_bytes": None, "epoch_s": None})
    return rows


def markdown(rows: list[dict], device: torch.device) -> str:
    """The results as one markdown table, headed by the device and the torch version."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run: tiny sizes, one step)"
    lines = [
        f"# gpu-check: {name}, torch {torch.__version__}",
        "",
        "| device | torch | step | img/s | peak memory | s/epoch (real data, projected) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        speed = row.get("error") or (f"{row['images_per_s']:.1f}" if row["images_per_s"] is not None else "-")
        epoch = f"{row['epoch_s']:.0f}" if row["epoch_s"] is not None else "-"
        peak = _gib(row["peak_bytes"])
        lines.append(f"| {name} | {torch.__version__} | {row['step']} | {speed} | {peak} | {epoch} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, one step each (what happens without CUDA)")
    parser.add_argument("--out", type=Path, default=Path("build"), help="where gpu_check.md and the JSON go")
    parser.add_argument("--work", type=Path, default=None, help="generated data (default: a temporary folder)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    dry_run = args.dry_run or not cuda
    if not cuda:
        print("gpu-check: no CUDA device here; dry run only (tiny sizes, one step of each part)")
    device = torch.device("cuda" if cuda and not args.dry_run else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes: let cuDNN pick the fastest convolutions
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        work = args.work or Path(scratch)
        set_seed(0)
        carvana_root = (
            make_carvana_like(work / "carvana", 1, views=4, size=(128, 192))
            if dry_run
            else bench_data.prepare_data(work / "carvana_full")
        )
        rows = bench_rows(args.out, device, dry_run, carvana_root)
        rows += recipe_epochs(work, device, dry_run, carvana_root)
    report = args.out / ("gpu_check_dry_run.md" if dry_run else "gpu_check.md")
    report.write_text(markdown(rows, device))
    print(report.read_text() + f"\n{report} ({time.perf_counter() - start:.0f} s)")
    return report


if __name__ == "__main__":
    main()
