"""Several GPUs (or CPU processes) training one model: DistributedDataParallel in a few plain functions.

``torchrun --nproc_per_node=N -m unet_tutorial train ...`` starts N processes and sets RANK, WORLD_SIZE and
LOCAL_RANK; each process trains a replica on its own shard of the data (a DistributedSampler) and DDP averages
the gradients. Only rank 0 writes checkpoints and logs. What it leaves out: multi-node setup, FSDP, SyncBatchNorm.
Taught in: the README's multi-GPU section (no notebook: Colab has one GPU).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes, 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (or without distribution): the one process that writes checkpoints and logs."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set WORLD_SIZE above 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup_distributed(device: torch.device | str | None = None) -> torch.device:
    """Join the process group torchrun prepared; return this process's device.

    Uses NCCL with one GPU per process (cuda:LOCAL_RANK) when CUDA is available and not declined, else gloo on
    the CPU. Without torchrun's environment it does nothing and returns ``device`` (or the CPU).
    """
    wanted = torch.device(device) if device is not None else None
    if not launched_by_torchrun():
        return wanted or torch.device("cpu")
    use_cuda = torch.cuda.is_available() and (wanted is None or wanted.type == "cuda")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not is_distributed():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return device


def cleanup_distributed() -> None:
    """Leave the process group (safe to call when there is none)."""
    if is_distributed():
        dist.destroy_process_group()
