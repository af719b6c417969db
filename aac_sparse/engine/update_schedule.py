"""When the topology is updated and how much of it: SET's per-epoch updates, RigL's every
ΔT steps, a stop point ``t_end`` and a decaying drop fraction.

Time is measured in optimizer steps.  ``t_end`` is a fraction of all training steps after
which the topology stays fixed; the network of the last step is never changed (it is the
one that was trained).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .components import names

ZETA_DECAYS = names("zeta_decay")
UPDATE_MODES = names("update_schedule")


@dataclass(frozen=True)
class UpdateSchedule:
    """``mode`` epoch: update after every ``every`` epochs; steps: after every ``every``
    optimizer steps (RigL's ΔT).  ``zeta`` decays by ``decay`` to 0 at ``end``."""

    mode: str = "epoch"
    every: int = 1
    end: float = 1.0
    zeta: float = 0.3
    decay: str = "constant"

    def __post_init__(self) -> None:
        if self.mode not in UPDATE_MODES:
            raise ValueError(f"update schedule {self.mode!r}; choose one of {UPDATE_MODES}")
        if self.decay not in ZETA_DECAYS:
            raise ValueError(f"zeta decay {self.decay!r}; choose one of {ZETA_DECAYS}")
        if self.every < 1 or not 0.0 < self.end <= 1.0:
            raise ValueError("update every must be >= 1 and end in (0, 1]")

    def due(self, step: int, total_steps: int, epoch_end: bool, epoch: int) -> bool:
        """Whether to update after optimizer step ``step`` (1-based) of ``total_steps``.

        ``epoch_end`` says this step closed epoch ``epoch`` (1-based).
        """
        if self.zeta <= 0 or step >= total_steps or step >= self.end * total_steps:
            return False
        if self.mode == "steps":
            return step % self.every == 0
        return epoch_end and epoch % self.every == 0

    def drop_fraction(self, step: int, total_steps: int) -> float:
        """Fraction of each layer's connections replaced at ``step``.

        cosine (RigL): ``zeta / 2 * (1 + cos(pi * t / t_end))``; linear: ``zeta * (1 - t /
        t_end)``; constant: ``zeta``.
        """
        if self.decay == "constant":
            return self.zeta
        progress = min(1.0, step / max(self.end * total_steps, 1e-12))
        if self.decay == "cosine":
            return 0.5 * self.zeta * (1.0 + math.cos(math.pi * progress))
        return self.zeta * (1.0 - progress)
