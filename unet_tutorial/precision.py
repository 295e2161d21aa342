"""Per-device speed choices made once, in one place: mixed precision, memory layout and cuDNN's autotuner.

``default_amp_dtype`` picks bf16 from compute capability 8.0, fp16 (with a GradScaler) below it, as on a Colab T4,
and fp32 off CUDA; ``memory_format_for`` picks channels_last on CUDA; ``cudnn_benchmark_for`` turns cuDNN's
autotuner on for training on CUDA. On a CPU every choice is "as it was": measured here, channels_last and
autocast make CPU training slower. Left out: torch.compile (slower to start than a lesson's short runs gain).
Taught in: 03 (the AMP appendix); used by ``train.fit``.
"""

from __future__ import annotations

import contextlib

import torch


def default_amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """Autocast dtype that helps on ``device``. Taught in 03.

    bf16 on GPUs of compute capability 8.0 and newer (A100, L4, H100); fp16 below (T4, V100), which needs a
    GradScaler; None (fp32) off CUDA. The capability is asked for, not ``torch.cuda.is_bf16_supported()``, which
    counts emulation and is true on a T4, where cuDNN has no bf16 convolutions. bf16 autocast works on the CPU
    but is usually slower there, so it is never the default.
    """
    return amp_choice(device)[0]


def amp_choice(device: torch.device | str) -> tuple[torch.dtype | None, str]:
    """``default_amp_dtype`` and the reason for it, in words."""
    device = torch.device(device)
    # torch < 2.5 raises on get_device_capability without a CUDA runtime, so ask whether there is one first.
    if device.type != "cuda" or not torch.cuda.is_available():
        return None, f"{device.type}: autocast pays off on CUDA GPUs"
    major, minor = torch.cuda.get_device_capability(device)
    gpu = f"{torch.cuda.get_device_name(device)}, compute capability {major}.{minor}"
    if (major, minor) >= (8, 0):
        return torch.bfloat16, f"{gpu} has fast bf16"
    return torch.float16, f"{gpu} has no fast bf16"


def memory_format_for(device: torch.device | str) -> torch.memory_format:
    """channels_last (NHWC) on CUDA, whose tensor-core convolutions want it; the default layout elsewhere."""
    return torch.channels_last if torch.device(device).type == "cuda" else torch.contiguous_format


def cudnn_benchmark_for(device: torch.device | str) -> bool:
    """Whether cuDNN should time its convolution algorithms and keep the fastest: on CUDA, unless deterministic
    kernels were asked for (``set_seed(..., deterministic=True)``).

    It pays off when every batch has the same size, as training crops do; each new size is timed again, so
    ``fit`` turns it on for the training epochs only (validation images may differ in size).
    """
    return torch.device(device).type == "cuda" and not torch.are_deterministic_algorithms_enabled()


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool):
    """``torch.backends.cudnn.benchmark`` set to ``enabled`` inside the ``with`` block, restored after it."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
