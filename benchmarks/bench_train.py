"""Train-step benchmark: images/s, time per step and peak memory of the training engine, per configuration.

Each measurement runs ``train.train_one_epoch`` (the loop the notebooks and the CLI use) over one fixed batch of
random images and masks with ``ComboLoss`` and AdamW: ``--warmup`` steps first (cuDNN autotuning,
torch.compile), then ``--repeats`` timed steps, of which the median is reported. Models: "unet" (UNet, base 64,
31M parameters), "unet-small" (base 16) and "densenet" (DenseNetUNet, random encoder). Configurations:

    fp32             eager, float32 (on Ampere and newer GPUs cuDNN convolutions use TF32 by default)
    bf16, fp16       autocast (fp16 with a GradScaler)
    channels_last    float32, model and images in NHWC
    compile          float32, torch.compile(model)
    checkpointing    float32, activations recomputed in backward (UNet(checkpointing=True);
                     DenseNetUNet(memory_efficient=True))
    default          what ``train.fit`` does on this device: ``default_amp_dtype`` (bf16 or fp16 on CUDA,
                     fp32 elsewhere) and channels_last on CUDA only
    default+compile  the same, plus torch.compile (the engine leaves compile out; this says what it would add)

Peak memory is torch.cuda.max_memory_allocated on a GPU and the peak resident set (VmHWM, reset before the
timed steps) on the CPU; ``above_rest`` is the part above what the model and optimizer hold between steps.
FLOPs per image (forward + backward) come from torch.utils.flop_counter on the meta device; on a known GPU the
achieved TFLOP/s is also given as a fraction of the device's dense peak for the config's math (16-bit tensor
cores under autocast, TF32 or FP32 otherwise). On CUDA the script ends by checking the two targets of the
README's Performance section (engine default >= 2x fp32 eager for UNet at 512 px; a 2-worker loader keeps up
with training at Carvana half scale).

    python benchmarks/bench_train.py --quick                  # every code path, tiny, < 1 min on 2 CPU cores
    python benchmarks/bench_train.py                          # the full matrix (GPU), build/bench_train.json
    python benchmarks/bench_train.py --models unet --sizes 256 --configs fp32 checkpointing --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from estimates import train_flops_per_image as train_flops
from torch import nn

from unet_tutorial.losses import ComboLoss
from unet_tutorial.precision import default_amp_dtype
from unet_tutorial.train import train_one_epoch
from unet_tutorial.utils import set_seed

MODELS = ("unet", "unet-small", "densenet")
CONFIGS = ("fp32", "bf16", "fp16", "channels_last", "compile", "checkpointing", "default", "default+compile")
CARVANA_HALF = (640, 959)  # (height, width) of a 1918x1280 Carvana image at half scale
# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets: (16-bit tensor cores, TF32 tensor cores, FP32).
PEAK_TFLOPS = (
    (r"H100.*PCIe", (756.0, 378.0, 51.0)), (r"H100 NVL", (835.0, 418.0, 60.0)),
    (r"H100|H200|GH200", (989.0, 495.0, 67.0)),
    (r"A100", (312.0, 156.0, 19.5)), (r"L40S", (362.0, 183.0, 91.6)), (r"\bL4\b", (121.0, 60.0, 30.3)),
    (r"RTX 4090", (165.0, 82.6, 82.6)), (r"RTX A6000", (154.8, 77.4, 38.7)), (r"V100", (125.0, None, 15.7)),
    (r"\bT4\b", (65.0, None, 8.1)),
)  # fmt: skip


def build_model(name: str, checkpointing: bool = False) -> nn.Module:
    """One of ``MODELS`` with one logit per pixel (Carvana), random weights."""
    if name == "unet":
        from unet_tutorial.model import UNet

        return UNet(base_channels=64, checkpointing=checkpointing)
    if name == "unet-small":
        from unet_tutorial.model import UNet

        return UNet(base_channels=16, checkpointing=checkpointing)
    if name == "densenet":
        from unet_tutorial.densenet_unet import DenseNetUNet

        return DenseNetUNet(num_classes=1, weights=None, memory_efficient=checkpointing)
    raise ValueError(f"model {name!r} is not known; use one of {MODELS}")


def config_settings(config: str, device: torch.device) -> dict:
    """The switches of a configuration on ``device``: amp_dtype, channels_last, compile, checkpointing."""
    if config not in CONFIGS:
        raise ValueError(f"config {config!r} is not known; use one of {CONFIGS}")
    default = config.startswith("default")
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config)
    return {
        "amp_dtype": default_amp_dtype(device) if default else amp,
        "channels_last": config == "channels_last" or (default and device.type == "cuda"),
        "compile": config in ("compile", "default+compile"),
        "checkpointing": config == "checkpointing",
    }


@functools.lru_cache
def train_flops_per_image(model_name: str, size: tuple[int, int]) -> int:
    """Model FLOPs of one forward and backward pass on one image, counted on the meta device (no compute).

    Counted without checkpointing: the recomputed forward is overhead, not model work, so a checkpointed run's
    fraction of peak shows what the recomputation costs.
    """
    return train_flops(lambda: build_model(model_name), size)


def peak_tflops(device: torch.device, amp_dtype: torch.dtype | None) -> float | None:
    """The device's dense peak TFLOP/s for the math a config runs on, or None when unknown (CPU, other GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for pattern, (half, tf32, fp32) in PEAK_TFLOPS:
        if re.search(pattern, name):
            if amp_dtype is not None:
                return half
            return tf32 if tf32 is not None and torch.backends.cudnn.allow_tf32 else fp32
    return None


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[dict]:
    """Peak memory over a block: ``max_memory_allocated`` on CUDA, the resident set's high-water mark on CPU.

    Yields a dict that holds, after the block, "peak_mb" and "above_rest_mb" (the peak minus what was in use
    at the start). On the CPU the high-water mark is reset through /proc/self/clear_refs (Linux); where that
    is not possible, "peak_mb" is the process's lifetime peak (ru_maxrss) and "above_rest_mb" is None.
    """
    stats: dict = {"peak_mb": None, "above_rest_mb": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        rest = torch.cuda.memory_allocated(device)
    else:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the rest level is honest
        reset = _write("/proc/self/clear_refs", "5")  # 5: reset VmHWM to the current VmRSS
        rest = _status_kb("VmRSS") * 1024
    yield stats
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    elif reset:
        peak = _status_kb("VmHWM") * 1024
    else:
        import resource

        stats["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return
    stats.update(peak_mb=peak / 2**20, above_rest_mb=(peak - rest) / 2**20)


def _write(path: str, text: str) -> bool:
    try:
        Path(path).write_text(text)
        return True
    except OSError:
        return False


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model_name: str,
    size: tuple[int, int],
    config: str,
    *,
    device: torch.device,
    batch_size: int,
    warmup: int = 2,
    repeats: int = 5,
) -> dict:
    """Time ``repeats`` training steps (after ``warmup``) of one model, image size and configuration.

    Returns:
        {"model", "height", "width", "config", "batch_size", "step_s" (median), "step_s_all", "images_per_s",
        "peak_mb", "above_rest_mb", "train_gflops_per_image", "achieved_tflops", "peak_tflops",
        "fraction_of_peak"}; on a failure (e.g. out of memory) {"model", ..., "error": message}.
    """
    result = {"model": model_name, "height": size[0], "width": size[1], "config": config, "batch_size": batch_size}
    settings = config_settings(config, device)
    try:
        times, memory = _time_steps(model_name, size, settings, device, batch_size, warmup, repeats)
    except (RuntimeError, torch.OutOfMemoryError) as error:  # OOM, or a backend that cannot compile
        return {**result, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    flops = train_flops_per_image(model_name, size)
    step_s = statistics.median(times)
    achieved = flops * batch_size / step_s / 1e12
    peak = peak_tflops(device, settings["amp_dtype"])
    return {
        **result,
        "step_s": step_s,
        "step_s_all": times,
        "images_per_s": batch_size / step_s,
        **memory,
        "train_gflops_per_image": flops / 1e9,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "fraction_of_peak": achieved / peak if peak else None,
    }


def _time_steps(
    model_name: str,
    size: tuple[int, int],
    settings: dict,
    device: torch.device,
    batch_size: int,
    warmup: int,
    repeats: int,
) -> tuple[list[float], dict]:
    """Build the model, optimizer and one batch, run ``warmup`` steps, then time ``repeats`` steps."""
    set_seed(0)
    model = build_model(model_name, checkpointing=settings["checkpointing"])
    model = model.to(device, memory_format=torch.channels_last if settings["channels_last"] else torch.preserve_format)
    step_model = torch.compile(model) if settings["compile"] else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type) if settings["amp_dtype"] == torch.float16 else None
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, *size, generator=generator).to(device)  # (B, 3, H, W)
    masks = (torch.rand(batch_size, 1, *size, generator=generator) > 0.5).float().to(device)  # (B, 1, H, W)
    step = functools.partial(
        train_one_epoch,
        step_model,
        [(images, masks)],
        ComboLoss(),
        optimizer,
        device,
        amp_dtype=settings["amp_dtype"],
        scaler=scaler,
        channels_last=settings["channels_last"],
        progress=False,
    )
    for _ in range(warmup):
        step()
    times = []
    with peak_memory(device) as memory:
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - start)
    return times, memory


def format_table(results: list[dict]) -> str:
    """The results as a fixed-width text table, one row per measurement."""
    header = (
        f"{'model':<10} {'size':>8} {'config':<15} {'batch':>5} {'step s':>8} {'img/s':>8} {'peak MB':>8} "
        f"{'>rest MB':>8} {'GFLOP/img':>9} {'TFLOP/s':>8} {'of peak':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        size = f"{r['height']}x{r['width']}"
        if "error" in r:
            lines.append(f"{r['model']:<10} {size:>8} {r['config']:<15} {r['batch_size']:>5}  {r['error'][:70]}")
            continue
        rest = f"{r['above_rest_mb']:>8.0f}" if r["above_rest_mb"] is not None else f"{'-':>8}"
        share = f"{r['fraction_of_peak']:>7.1%}" if r["fraction_of_peak"] is not None else f"{'-':>7}"
        lines.append(
            f"{r['model']:<10} {size:>8} {r['config']:<15} {r['batch_size']:>5} {r['step_s']:>8.3f} "
            f"{r['images_per_s']:>8.2f} {r['peak_mb']:>8.0f} {rest} {r['train_gflops_per_image']:>9.1f} "
            f"{r['achieved_tflops']:>8.3f} {share}"
        )
    return "\n".join(lines)


def environment(device: torch.device) -> dict:
    """Machine and library versions, stored with the results."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    if device.type == "cuda":
        info.update(
            gpu=torch.cuda.get_device_name(device),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_convolutions=torch.backends.cudnn.allow_tf32,
        )
    return info


def find(results: list[dict], model: str, size: tuple[int, int], config: str) -> dict | None:
    """The successful measurement of (model, size, config), or None."""
    for r in results:
        if (r["model"], r["height"], r["width"], r["config"]) == (model, *size, config) and "error" not in r:
            return r
    return None


def check_targets(results: list[dict], loader: dict[str, float] | None) -> list[str]:
    """The two GPU targets as sentences: default vs fp32 eager for UNet at 512 px; loader vs training.

    ``loader`` holds the 2-worker loader's images/s at Carvana half scale: "full" (the CLI's dataset, decoding
    whole JPEGs) and "cache" (reading a copy resized once to half scale).
    """
    lines = []
    default, fp32 = find(results, "unet", (512, 512), "default"), find(results, "unet", (512, 512), "fp32")
    if default and fp32:
        ratio = default["images_per_s"] / fp32["images_per_s"]
        lines.append(
            f"Target 1: UNet (base 64) at 512 px, engine default {default['images_per_s']:.1f} img/s vs "
            f"fp32 eager {fp32['images_per_s']:.1f} img/s = {ratio:.2f}x (target >= 2x): "
            f"{'MET' if ratio >= 2 else 'NOT MET'}"
        )
    else:
        lines.append("Target 1: not measured (needs unet at 512 px with configs fp32 and default)")
    train = find(results, "unet", CARVANA_HALF, "default")
    if train and loader is not None:
        ratio = loader["full"] / train["images_per_s"]
        lines.append(
            f"Target 2: Carvana half scale ({CARVANA_HALF[1]}x{CARVANA_HALF[0]}), loader with 2 workers "
            f"{loader['full']:.1f} img/s vs engine-default training {train['images_per_s']:.1f} img/s "
            f"= {ratio:.2f}x: {'KEEPS UP' if ratio >= 1 else 'DOES NOT KEEP UP'} "
            f"(from a pre-resized cache: {loader['cache']:.1f} img/s)"
        )
    else:
        lines.append("Target 2: not measured (needs unet at Carvana half scale with config default, and the loader)")
    return lines


def loader_throughput(root: Path) -> dict[str, float]:
    """Images/s of the CLI's Carvana training loader (2 workers, half scale), decoding "full" JPEGs or reading
    a "cache" resized once; measured by bench_data.py."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_data

    root = bench_data.prepare_data(root)
    return {
        decode: bench_data.measure_loader(root, scale=0.5, workers=2, batch_size=8, batches=12, decode=decode)
        for decode in ("full", "cache")
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["256", "512"],
        help="square sizes or HxW; on CUDA the Carvana half scale (640x959) is added for unet",
    )
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 on CUDA, 1 on the CPU")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3 CUDA, 1 CPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 10 CUDA, 3 CPU)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="unet-small at 32 px, every config but compile, 2 steps: checks the code paths",
    )
    parser.add_argument("--json", type=Path, default=Path("build/bench_train.json"), help="where to write results")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path("/tmp/unet_tutorial_bench_carvana"),
        help="generated Carvana-size data for the loader target (CUDA)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # autotune convolutions for the fixed shapes
    if args.quick:
        args.models, args.sizes = ["unet-small"], ["32"]
        args.configs = [c for c in args.configs if "compile" not in c]
        args.batch_size, args.warmup, args.repeats = 2, 1, 2
    batch_size = args.batch_size or (8 if cuda else 1)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    repeats = args.repeats or (10 if cuda else 3)
    sizes = [
        tuple(int(s) for s in text.lower().split("x")) * (2 if "x" not in text.lower() else 1) for text in args.sizes
    ]
    jobs = [(m, s, c) for m in args.models for s in sizes for c in args.configs]
    if cuda and not args.quick and "unet" in args.models and "default" in args.configs:
        jobs.append(("unet", CARVANA_HALF, "default"))

    info = environment(device)
    print(
        f"device {device} ({info.get('gpu', platform.processor() or 'cpu')}), torch {torch.__version__}, "
        f"{info['torch_threads']} threads, 1-min load {info['load_average_1min']}"
    )
    results = []
    for model_name, size, config in jobs:
        start = time.perf_counter()
        results.append(
            measure(model_name, size, config, device=device, batch_size=batch_size, warmup=warmup, repeats=repeats)
        )
        r = results[-1]
        status = r["error"] if "error" in r else f"{r['images_per_s']:.2f} img/s"
        print(
            f"  {model_name} {size[0]}x{size[1]} {config}: {status}  ({time.perf_counter() - start:.0f} s)", flush=True
        )
    print(format_table(results))
    targets = check_targets(results, loader_throughput(args.data_root) if cuda and not args.quick else None)
    if cuda:
        print("\n".join(targets))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": info, "results": results, "targets": targets}, indent=1))
    print(f"results: {args.json}")
    return results


if __name__ == "__main__":
    main()
