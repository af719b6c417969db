"""Schedules over training time: the learning rate, and when and how much the topology
changes.  One interface: a schedule built from the configuration is called with the time
and answers a number, or None for "nothing now".

* :class:`LearningRate`: ``(epoch) -> learning rate`` (0-based epochs), from a registered
  ``lr_schedule``.
* :class:`TopologySchedule`: ``(step) -> drop fraction | None`` (1-based optimizer
  steps), from a registered ``update_schedule`` (when) and ``zeta_decay`` (how much).
  ``t_end`` is a fraction of all training steps after which the topology stays fixed;
  the network of the last step is never changed (it is the one that was trained).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .components import COMPONENTS, register

# -- learning rate ----------------------------------------------------------------------


@register("lr_schedule", "constant", "the same learning rate throughout")
def constant_lr(base_lr: float, epoch: int, epochs: int, step_every: int, gamma: float,
                final_fraction: float) -> float:
    return base_lr


@register("lr_schedule", "cosine", "half-cosine decay to lr_final_fraction * lr")
def cosine_lr(base_lr: float, epoch: int, epochs: int, step_every: int, gamma: float,
              final_fraction: float) -> float:
    low = final_fraction * base_lr
    progress = epoch / max(epochs - 1, 1)
    return low + 0.5 * (base_lr - low) * (1.0 + math.cos(math.pi * progress))


@register("lr_schedule", "linear", "linear decay to lr_final_fraction * lr")
def linear_lr(base_lr: float, epoch: int, epochs: int, step_every: int, gamma: float,
              final_fraction: float) -> float:
    progress = epoch / max(epochs - 1, 1)
    return base_lr + (final_fraction * base_lr - base_lr) * progress


# Not offered to configurators: its two settings (lr_step_every, lr_gamma) are not in the
# search spaces.
@register("lr_schedule", "step", "multiply by lr_gamma every lr_step_every epochs",
          tunable=False)
def step_lr(base_lr: float, epoch: int, epochs: int, step_every: int, gamma: float,
            final_fraction: float) -> float:
    return base_lr * gamma ** (epoch // max(step_every, 1))


@dataclass(frozen=True)
class LearningRate:
    """The learning rate of each epoch: ``schedule`` decays ``base_lr`` over ``epochs``
    (cosine and linear to ``final_fraction * base_lr`` at the last epoch; step by
    ``gamma`` every ``step_every`` epochs)."""

    schedule: str
    base_lr: float
    epochs: int
    step_every: int = 30
    gamma: float = 0.1
    final_fraction: float = 0.0

    def __call__(self, epoch: int) -> float:
        fn = COMPONENTS.get("lr_schedule", self.schedule)
        return fn(self.base_lr, epoch, self.epochs, self.step_every, self.gamma,
                  self.final_fraction)


def learning_rate(schedule: str, base_lr: float, epoch: int, epochs: int,
                  step_every: int = 30, gamma: float = 0.1,
                  final_fraction: float = 0.0) -> float:
    """Learning rate for 0-based ``epoch`` of ``epochs`` (one call of :class:`LearningRate`)."""
    return LearningRate(schedule, base_lr, epochs, step_every, gamma, final_fraction)(epoch)


# -- topology updates -------------------------------------------------------------------


@register("update_schedule", "epoch", "topology updates after every k epochs (SET)",
          when="epoch", every="update_every_epochs")
def every_epochs(step: int, epoch_end: bool, epoch: int, every: int) -> bool:
    return epoch_end and epoch % every == 0


@register("update_schedule", "steps", "topology updates after every delta-T optimizer "
          "steps (RigL)", when="step", every="update_every_steps")
def every_steps(step: int, epoch_end: bool, epoch: int, every: int) -> bool:
    return step % every == 0


@register("zeta_decay", "constant", "the same drop fraction at every update (SET)")
def constant_zeta(zeta: float, progress: float) -> float:
    return zeta


@register("zeta_decay", "cosine", "drop fraction decays as a half cosine to 0 at t_end (RigL)")
def cosine_zeta(zeta: float, progress: float) -> float:
    """RigL: ``zeta / 2 * (1 + cos(pi * t / t_end))``."""
    return 0.5 * zeta * (1.0 + math.cos(math.pi * progress))


@register("zeta_decay", "linear", "drop fraction decays linearly to 0 at t_end")
def linear_zeta(zeta: float, progress: float) -> float:
    return zeta * (1.0 - progress)


@dataclass(frozen=True)
class UpdateSchedule:
    """``mode`` (a registered update schedule: epoch, steps, ...) with period ``every``;
    ``zeta`` decays by ``decay`` to 0 at ``end``, a fraction of training."""

    mode: str = "epoch"
    every: int = 1
    end: float = 1.0
    zeta: float = 0.3
    decay: str = "constant"

    def __post_init__(self) -> None:
        COMPONENTS.entry("update_schedule", self.mode)  # unknown names fail here
        COMPONENTS.entry("zeta_decay", self.decay)
        if self.every < 1 or not 0.0 < self.end <= 1.0:
            raise ValueError("update every must be >= 1 and end in (0, 1]")

    @property
    def when(self) -> str:
        """Where the trainer asks: after every optimizer ``"step"``, or after each
        ``"epoch"``'s evaluation."""
        return COMPONENTS.entry("update_schedule", self.mode).traits.get("when", "step")

    def due(self, step: int, total_steps: int, epoch_end: bool, epoch: int) -> bool:
        """Whether to update after optimizer step ``step`` (1-based) of ``total_steps``;
        ``epoch_end`` says this step closed epoch ``epoch`` (1-based)."""
        if self.zeta <= 0 or step >= total_steps or step >= self.end * total_steps:
            return False
        return bool(COMPONENTS.get("update_schedule", self.mode)(step, epoch_end, epoch,
                                                                 self.every))

    def drop_fraction(self, step: int, total_steps: int) -> float:
        """Fraction of each layer's connections replaced at ``step``."""
        progress = min(1.0, step / max(self.end * total_steps, 1e-12))
        return float(COMPONENTS.get("zeta_decay", self.decay)(self.zeta, progress))

    def bind(self, total_steps: int, steps_per_epoch: int) -> TopologySchedule:
        """This schedule over a run of ``total_steps`` steps in epochs of
        ``steps_per_epoch``."""
        return TopologySchedule(self, total_steps, steps_per_epoch)


@dataclass(frozen=True)
class TopologySchedule:
    """An :class:`UpdateSchedule` over one run: ``(step) -> drop fraction``, or None when
    no update is due after that step."""

    schedule: UpdateSchedule
    total_steps: int
    steps_per_epoch: int

    @property
    def when(self) -> str:
        return self.schedule.when

    def __call__(self, step: int) -> float | None:
        epoch_end = step % self.steps_per_epoch == 0
        if not self.schedule.due(step, self.total_steps, epoch_end,
                                 step // self.steps_per_epoch):
            return None
        return self.schedule.drop_fraction(step, self.total_steps)

    @classmethod
    def from_config(cls, config, total_steps: int, steps_per_epoch: int
                    ) -> TopologySchedule:
        """The schedule a :class:`~aac_sparse.engine.config.TrainConfig` describes."""
        entry = COMPONENTS.entry("update_schedule", config.update_schedule)
        every = getattr(config, entry.traits.get("every", "update_every_steps"))
        return UpdateSchedule(config.update_schedule, every, config.update_end, config.zeta,
                              config.zeta_decay).bind(total_steps, steps_per_epoch)
