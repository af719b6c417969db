"""Ablation on the surrogate: the greedy path from a source configuration (the default or
a preset) to a target (the incumbent), each step scored by the forest's prediction
averaged over the training instances.  Seconds on any store; ``ablate --mode racing``
replaces the predictions by real training runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..space.changes import Change, PathStep, greedy_path
from .surrogate import Surrogate


def surrogate_ablation(surrogate: Surrogate, source: Mapping[str, Any],
                       target: Mapping[str, Any]) -> list[PathStep]:
    """The greedy ablation path, scored by ``surrogate``; ties go to the parameter that
    comes first in the space's order."""
    run = surrogate.run
    src, tgt = run.space_part(source), run.space_part(target)

    def choose(step: int, candidates: list[Change]) -> tuple[int, float, float]:
        costs = surrogate.cost([c.config for c in candidates])
        best = min(range(len(costs)), key=lambda k: (costs[k][0], k))
        return best, *costs[best]

    return greedy_path(run.cs, src, tgt, surrogate.cost([src])[0], choose)
