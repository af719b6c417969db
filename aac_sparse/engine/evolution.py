"""Topology evolution in one place: prune connections, then regrow as many.

:class:`TopologyEvolution` is built once from a configuration (prune criterion, regrowth,
initialisation of regrown weights, schedule, which layers evolve) and the trainer calls
it after every step and after every epoch.  Everything is O(nnz) (the exact gradient
regrowth adds O(block) scratch, see :mod:`.regrowth`): kept connections stay in key order
and the regrown ones are merged in.  No dense ``n_in x n_out`` array is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .components import COMPONENTS
from .kernels import merge_sorted_keys
from .layers import SparseLayer
from .model import GradientSignals, SparseMLP
from .schedules import TopologySchedule

if TYPE_CHECKING:
    from .config import TrainConfig

SignalsFn = Callable[[], "list[GradientSignals]"]


@dataclass
class EvolutionStats:
    """What one evolution step did to one layer."""

    removed: int
    regrown: int


def evolve_layer(
    layer: SparseLayer,
    remove: np.ndarray,
    rng: np.random.Generator,
    weight_init: str = "he_uniform",
    regrow_init: str = "random",
    regrow: str = "random",
    signals: GradientSignals | None = None,
    candidates: float = 10.0,
) -> EvolutionStats:
    """Drop the connections flagged in ``remove`` and regrow as many with ``regrow``.

    New connections get weights from ``regrow_init`` (``random``: like ``weight_init``;
    ``zero``) and zero optimizer state; kept connections keep weight and momentum.
    """
    count = int(remove.sum())
    if count == 0:
        return EvolutionStats(0, 0)
    init = COMPONENTS.get("regrow_init", regrow_init)
    keep = ~remove
    kept_keys = layer.keys()[keep]
    new_keys = COMPONENTS.get("regrow", regrow)(layer, kept_keys, count, rng, signals,
                                                candidates)
    new_w = init(rng, weight_init, layer.n_in, layer.n_out, count)
    keys, w, v = merge_sorted_keys(kept_keys, layer.w[keep], layer.v[keep], new_keys, new_w)
    layer.set_structure(keys, w, v)
    return EvolutionStats(count, count)


@dataclass
class TopologyEvolution:
    """The prune-and-regrow components of one configuration, applied to a model.

    ``schedule`` (optional) says when and how much; :meth:`evolve` does one step with a
    given drop fraction on every evolvable sparse layer."""

    prune: str
    regrow: str
    regrow_init: str
    weight_init: str
    candidates: float
    evolve_layers: str
    zeta: float
    schedule: TopologySchedule | None = None

    def __post_init__(self) -> None:
        self._prune = COMPONENTS.get("prune", self.prune)
        entry = COMPONENTS.entry("regrow", self.regrow)
        self.needs_gradient = bool(entry.traits.get("needs_gradient", False))
        COMPONENTS.entry("regrow_init", self.regrow_init)

    @classmethod
    def from_config(cls, config: TrainConfig, total_steps: int | None = None,
                    steps_per_epoch: int | None = None) -> TopologyEvolution:
        """Evolution of ``config``; with the run's step counts it carries its schedule."""
        schedule = None
        if total_steps is not None and steps_per_epoch is not None:
            schedule = TopologySchedule.from_config(config, total_steps, steps_per_epoch)
        return cls(config.prune, config.regrow, config.regrow_init, config.weight_init,
                   config.regrow_candidates, config.evolve_layers, config.zeta, schedule)

    def targets(self, model: SparseMLP) -> list[int]:
        """Indices of the layers that evolve: sparse ones, the output layer only if 'all'."""
        last = len(model.layers) - 1
        return [li for li, layer in enumerate(model.layers)
                if not layer.dense and not (self.evolve_layers == "hidden" and li == last)]

    def evolve(self, model: SparseMLP, rng: np.random.Generator, zeta: float | None = None,
               signals: SignalsFn | None = None) -> int:
        """One prune-and-regrow step; returns connections replaced.  ``zeta`` is this
        step's drop fraction (default: the configured one); ``signals`` computes a
        mini-batch's gradient signals when the regrowth needs them."""
        zeta = self.zeta if zeta is None else zeta
        targets = self.targets(model)
        if zeta <= 0 or not targets:
            return 0
        sig = None
        if self.needs_gradient:
            if signals is None:
                raise ValueError(f"regrow={self.regrow!r} needs gradient signals")
            sig = signals()
        replaced = 0
        for li in targets:
            layer = model.layers[li]
            stats = evolve_layer(layer, self._prune(layer.w, zeta), rng, self.weight_init,
                                 self.regrow_init, self.regrow,
                                 None if sig is None else sig[li], self.candidates)
            replaced += stats.regrown
        model.after_structure_change()
        return replaced

    def due(self, step: int, when: str) -> float | None:
        """The drop fraction if the schedule updates after ``step`` at this point of the
        loop (``when``: "step" after an optimizer step, "epoch" after an epoch)."""
        if self.schedule is None or self.schedule.when != when:
            return None
        return self.schedule(step)


def evolve_model(model: SparseMLP, config: TrainConfig, rng: np.random.Generator,
                 zeta: float | None = None, signals: SignalsFn | None = None) -> int:
    """One prune-and-regrow step of ``config``'s components on ``model`` (see
    :meth:`TopologyEvolution.evolve`)."""
    return TopologyEvolution.from_config(config).evolve(model, rng, zeta, signals)
