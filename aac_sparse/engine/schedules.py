"""Learning-rate schedules as pure functions of training progress."""

from __future__ import annotations

import math

from .components import names

LR_SCHEDULES = names("lr_schedule")


def learning_rate(
    schedule: str,
    base_lr: float,
    epoch: int,
    epochs: int,
    step_every: int = 30,
    gamma: float = 0.1,
    final_fraction: float = 0.0,
) -> float:
    """Learning rate for 0-based ``epoch`` of ``epochs``.

    ``cosine`` and ``linear`` decay from ``base_lr`` to ``final_fraction * base_lr`` at the
    last epoch; ``step`` multiplies by ``gamma`` every ``step_every`` epochs.
    """
    if schedule == "constant":
        return base_lr
    progress = epoch / max(epochs - 1, 1)
    low = final_fraction * base_lr
    if schedule == "cosine":
        return low + 0.5 * (base_lr - low) * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return base_lr + (low - base_lr) * progress
    if schedule == "step":
        return base_lr * gamma ** (epoch // max(step_every, 1))
    raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
