"""The line ``fit`` logs for each epoch: live as the epoch ends, or replayed from a checkpoint's stored history.

A run loaded from its checkpoint trains nothing, so ``fit`` replays the epochs it holds from their history, marked
"(stored)": the learner still sees each epoch's losses, score, learning rates and seconds (the images per second
are not stored). Taught in: notebook 03's section 7 (the log) and every notebook that loads a finished run.
"""

from __future__ import annotations


def lr_text(lrs: dict[str, float]) -> str:
    """ "lr 1.00e-03" for one parameter group; "lr_encoder 1.0e-04 lr_decoder 1.0e-03" (the history's keys) for
    several."""
    if len(lrs) == 1:
        return f"lr {next(iter(lrs.values())):.2e}"
    return " ".join(f"lr_{label} {value:.1e}" for label, value in lrs.items())


def epoch_line(
    epoch: int,
    epochs: int,
    losses: tuple[float, float],
    monitor: str,
    score: float,
    improved: bool,
    lrs: dict[str, float],
    seconds: float,
    images_per_s: float | None = None,
) -> str:
    """One epoch's line: "epoch 3/10  train_loss ...  val_loss ...  val_<monitor> ... *  lr ...  12.3 img/s  4s"
    (``losses``: training, validation; "*" on a new best; no img/s when ``images_per_s`` is None)."""
    speed = f"  {images_per_s:.1f} img/s" if images_per_s is not None else ""
    return (
        f"epoch {epoch}/{epochs}  train_loss {losses[0]:.4f}  val_loss {losses[1]:.4f}  val_{monitor} {score:.4f}"
        f"{' *' if improved else ''}  {lr_text(lrs)}{speed}  {seconds:.0f}s"
    )


def stored_epoch_lines(history: dict[str, list], monitor: str, epochs: int) -> list[str]:
    """The epoch lines of a run loaded from its checkpoint, from the history it stored, each marked "(stored)"
    since this session trained none of them; "*" where the score was a new best, as ``fit`` marked it."""
    groups = [key.removeprefix("lr_") for key in history if key.startswith("lr_")]  # several parameter groups
    lines, best = [], None
    rows = zip(history["epoch"], history["train_loss"], history["val_loss"], history.get(f"val_{monitor}", []))
    for index, (epoch, train, val, score) in enumerate(rows):
        improved = best is None or (score < best if monitor == "loss" else score > best)
        best = score if improved else best
        lrs = {group: history[f"lr_{group}"][index] for group in groups} if groups else {"": history["lr"][index]}
        seconds = history["seconds"][index]
        lines.append(f"{epoch_line(epoch, epochs, (train, val), monitor, score, improved, lrs, seconds)}  (stored)")
    return lines
