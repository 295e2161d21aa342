"""Instruments: what a training step costs, read off a model without the GPU it is meant for.

``training_memory`` estimates the peak memory of training a model at a batch size and image size: the
parameters, their gradients, the optimizer's state, the tensors autograd keeps for backward (counted with
``torch.autograd.graph.saved_tensors_hooks`` on a real forward pass at two small sizes on the CPU, then extended
to the target size: those tensors grow linearly with the pixels of the batch) and the gradient buffers that
exist while backward runs. ``train_flops_per_image`` counts the FLOPs of a forward and backward pass on the meta
device (no compute), and ``profiled_peak_bytes`` measures a step's peak with ``torch.profiler``, the reference the
estimate is tested against. Left out: the CUDA context and cuDNN workspaces (a few hundred MB on a GPU, which is
why budgets leave room), and the caching allocator's fragmentation.
Taught in: notebooks 03 to 05, whose GPU recipes (``recipes.py``) are checked with these before anyone has a GPU.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _targets_like(logits: torch.Tensor) -> torch.Tensor:
    """All-background targets for ``logits``: (B, 1, H, W) float for one class, (B, H, W) long for more."""
    batch, classes, height, width = logits.shape
    if classes == 1:
        return torch.zeros(batch, 1, height, width, device=logits.device)
    return torch.zeros(batch, height, width, dtype=torch.long, device=logits.device)


def saved_tensor_bytes(model: nn.Module, loss_fn: Callable, images: torch.Tensor,
                       amp_dtype: torch.dtype | None = None) -> dict[str, int]:
    """Bytes autograd keeps for backward over one forward pass and loss on ``images``, parameters excluded.

    Every tensor saved for backward passes through a pack hook; views of one storage are counted once, at the
    storage's size. The model runs in training mode on a copy, so its BatchNorm statistics are left alone.

    Shape: images (B, 3, H, W) on the device to count on (the CPU for an estimate).
    Returns:
        {"saved": bytes of all distinct saved storages, "largest": bytes of the largest one that is not a copy
        of a weight (the largest feature map or loss tensor)}.
    """
    trial = copy.deepcopy(model).train()
    parameters = {p.untyped_storage().data_ptr() for p in trial.parameters()}
    weight_shapes = {p.shape for p in trial.parameters()}  # autocast's 16-bit weight copies have these
    storages: dict[int, int] = {}
    largest = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
            if tensor.shape not in weight_shapes:
                largest = max(largest, storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = trial(images)  # (B, C, H, W)
            loss_fn(logits, _targets_like(logits))
    return {"saved": sum(storages.values()), "largest": largest}


def training_memory(model: nn.Module, loss_fn: Callable, *, batch_size: int, image_size: tuple[int, int],
                    amp_dtype: torch.dtype | None = None, optimizer_buffers: int = 2,
                    probe_sizes: tuple[int, int] = (64, 96)) -> dict[str, int]:
    """Estimated peak bytes of one training step of ``model`` on batches of ``batch_size`` images of ``image_size``.

    The saved tensors are counted on the CPU (under CPU autocast with ``amp_dtype``, whose op lists match CUDA's
    for convolutions, normalisation and losses) for one image at two square probe sizes, and extended linearly
    in the batch's pixels: every feature map of a fully convolutional network scales with them, while what does
    not (16-bit copies of the weights under autocast, per-class sums) is the constant part of the fit.
    While backward runs, the gradient of the largest saved tensor and the gradient it produces coexist with what
    is still saved: ``backward`` counts two largest tensors.

    Args:
        loss_fn: called as ``loss_fn(logits, targets)``; targets are all-background (values do not change sizes).
        image_size: (height, width); the probes assume both are multiples of 32 (or whatever the model pads to).
        amp_dtype: the autocast dtype of training (torch.float16 or torch.bfloat16), None for fp32.
        optimizer_buffers: tensors of state per trainable parameter: 2 for Adam and AdamW, 1 for SGD momentum.
        probe_sizes: the two square sides measured, small so that the count takes a second on a CPU.
    Returns:
        bytes: {"parameters" (with buffers), "gradients", "optimizer", "activations", "backward", "total"}.
    """
    cpu_model = copy.deepcopy(model).cpu().float()
    measured = {}
    for side in probe_sizes:
        measured[side] = saved_tensor_bytes(cpu_model, loss_fn, torch.zeros(1, 3, side, side), amp_dtype)
    small, large = probe_sizes
    per_pixel = (measured[large]["saved"] - measured[small]["saved"]) / (large**2 - small**2)
    constant = max(measured[small]["saved"] - per_pixel * small**2, 0)
    pixels = batch_size * image_size[0] * image_size[1]
    largest = measured[large]["largest"] * pixels / large**2
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    result = {"parameters": sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]),
              "gradients": trainable, "optimizer": optimizer_buffers * trainable,
              "activations": round(constant + per_pixel * pixels), "backward": round(2 * largest)}
    result["total"] = sum(result.values())
    return result


def profiled_peak_bytes(model: nn.Module, loss_fn: Callable, images: torch.Tensor, targets: torch.Tensor,
                        optimizer: torch.optim.Optimizer, amp_dtype: torch.dtype | None = None) -> int:
    """Peak bytes allocated during one training step (forward, loss, backward, step), by ``torch.profiler``.

    With ``profile_memory=True`` the profiler records, per op, the bytes it allocated and freed; adding them up
    in time order gives the memory in use after each op. The peak returned adds what was allocated before the step (the
    parameters, and the optimizer's state after its first step), so it compares with ``training_memory``'s total.
    """
    device = images.device.type
    before = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    before += sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
                  if isinstance(t, torch.Tensor))
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
        with torch.autocast(device, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    # Each event carries the bytes its op allocated minus those it freed, children excluded ("self");
    # "[memory]" events are allocations and frees outside any op. In time order they add up to the use.
    key = "self_cuda_memory_usage" if device == "cuda" else "self_cpu_memory_usage"
    in_use = peak = 0
    for event in sorted(profiler.events(), key=lambda e: e.time_range.start):
        in_use += getattr(event, key)
        peak = max(peak, in_use)
    return before + peak


def train_flops_per_image(build_model: Callable[[], nn.Module], image_size: tuple[int, int]) -> int:
    """FLOPs of one forward and backward pass on one image, counted on the meta device (nothing is computed).

    Args:
        build_model: a function that returns the model (called under ``torch.device("meta")``).
        image_size: (height, width).
    """
    with torch.device("meta"):
        meta = build_model().train()
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, 3, *image_size, device="meta")).sum().backward()
    return counter.get_total_flops()
