"""The prediction surrogate: a random forest over every free parameter of the space and
the instance columns, fitted on a run's (configuration, instance) points.

Inactive parameters are encoded as -1, exactly as in its training data, so any valid
configuration (the default, a preset, an ablation step) is encoded the same way the
data were; its predicted cost is the mean over the run's training instances.  Local
parameter importance and the surrogate ablation query it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..space.changes import free_names
from . import forest
from .encoding import Dim, dims_of, encode, order_choices
from .rundata import Point, Run


def design(run: Run, points: Sequence[Point], names: Sequence[str]
           ) -> tuple[list[Dim], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dimensions, configuration rows, instance rows, targets and the training instances'
    rows for fitting a forest on ``points`` over parameters ``names``."""
    configs = [run.configs[p.config_id] for p in points]
    y = np.array([p.cost for p in points], dtype=float)
    dims = order_choices(dims_of(run.cs, names), configs, y)
    _, inst_rows = forest.instance_columns(run.train, run.meta.get("instance_features") or {})
    index = {inst: i for i, inst in enumerate(run.train)}
    x_inst = inst_rows[[index[p.instance] for p in points]]
    return dims, encode(dims, configs), x_inst, y, inst_rows


class Surrogate:
    """Forests over all free parameters; predictions averaged over training instances."""

    def __init__(self, run: Run, objective: str, n_forests: int = 3, n_trees: int = 32,
                 seed: int = 0, progress: forest.Progress | None = None) -> None:
        self.run = run
        self.objective = objective
        self.points = [p for p in run.points(objective) if p.instance in run.train]
        if len({p.config_id for p in self.points}) < 2:
            raise ValueError("fewer than two configurations finished: nothing to model")
        self.names = free_names(run.cs)
        self.dims, x, x_inst, y, inst_rows = design(run, self.points, self.names)
        self.forests = forest.fit(x, x_inst, y, inst_rows, n_forests, n_trees, seed, progress)
        self.n_trials = sum(p.n_trials for p in self.points)

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return encode(self.dims, configs)

    def per_tree(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Each tree's instance-averaged prediction: shape (n_trees, n_configs)."""
        return self.forests.predict_trees(self.encode(configs))

    def per_instance(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The forest's prediction on each training instance: (n_configs, n_instances)."""
        return self.forests.predict_instances(self.encode(configs)).mean(axis=0)

    def cost(self, configs: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
        """Predicted mean cost over the training instances and its spread over them."""
        pred = self.per_instance(configs)
        return [(float(row.mean()), float(row.std())) for row in pred]
