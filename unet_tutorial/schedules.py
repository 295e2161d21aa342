"""Learning-rate schedules by name, and when each one steps: what ``train.fit`` needs to know.

"plateau" halves the rate when the monitored metric stalls (stepped once per epoch, on that metric),
"onecycle" warms up and anneals (stepped after every optimizer step), "cosine" anneals per epoch. A scheduler
object built by the caller works too, when the caller says when it steps. Left out: warm restarts, polynomial
decay (pass such a scheduler object). Taught in: 03 (one-cycle), 04 (two parameter groups).
"""

from __future__ import annotations

import numbers

import torch

SCHEDULERS = ("plateau", "onecycle", "cosine", None)


def make_scheduler(
    name: str | None, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, mode: str = "max"
):
    """A learning-rate scheduler by name: "plateau" (halve the lr when the monitored metric stalls for 2 epochs),
    "onecycle" (warm up, then anneal; stepped every optimizer step), "cosine" (per epoch), or None."""
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=2)
    if name == "onecycle":
        # A second one-cycle on the same optimizer (e.g. after unfreezing) peaks where the first did ("max_lr"),
        # not at the nearly-zero lr the first one left behind.
        peaks = [g.get("max_lr", g["lr"]) for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=epochs * steps_per_epoch)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name is None:
        return None
    raise ValueError(f"scheduler={name!r} is not known; use one of {SCHEDULERS} or pass a scheduler object")


def resolve_scheduler(
    scheduler,
    step_per_batch: bool | None,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps_per_epoch: int,
    mode: str,
):
    """(scheduler object or None, whether it steps after every optimizer step) for ``fit``'s arguments.

    A name knows when it steps; a scheduler object needs ``step_per_batch`` said (``ReduceLROnPlateau`` always
    steps per epoch, on the monitored metric).
    """
    if isinstance(scheduler, str) or scheduler is None:
        if step_per_batch is not None:
            raise ValueError(f"step_per_batch is for a scheduler object; scheduler={scheduler!r} knows its own")
        step_per_batch = scheduler == "onecycle"
        scheduler = make_scheduler(scheduler, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, mode=mode)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if step_per_batch is None and not plateau:
        raise ValueError(
            f"fit(scheduler={type(scheduler).__name__}(...)) needs step_per_batch=True (stepped after "
            "every optimizer step, e.g. OneCycleLR or a LinearLR warm-up) or False (once per epoch)"
        )
    return scheduler, bool(step_per_batch) and not plateau


def planned_rates(name: str | None, peak: float, *, epochs: int, steps_per_epoch: int) -> list[float]:
    """The learning rate that ``fit(scheduler=name)`` sets at each optimizer step of a run whose rate peaks at
    ``peak``, without training: epochs * steps_per_epoch values, for a figure of the schedule (the history logs
    only each epoch's first). "plateau" follows the metric, so it cannot be planned."""
    if name == "plateau":
        raise ValueError(
            'planned_rates(name="plateau"): the plateau schedule follows the validation metric; pick '
            '"onecycle", "cosine" or None'
        )
    if name not in ("onecycle", "cosine", None):
        raise ValueError(f'planned_rates(name={name!r}) is not known; pick "onecycle", "cosine" or None')
    for label, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"planned_rates({label}={value!r}): give a whole number of 1 or more")
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=peak)
    scheduler, per_step = resolve_scheduler(name, None, optimizer, epochs, steps_per_epoch, "max")
    rates = []
    for step in range(epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: only so that the scheduler sees a step taken
        if scheduler is not None and (per_step or (step + 1) % steps_per_epoch == 0):
            scheduler.step()
    return rates
