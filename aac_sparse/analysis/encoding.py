"""Configurations as numeric vectors for the analysis forests, with the measure each
coordinate is integrated against.

Numeric parameters map to [0, 1] (log-scaled ones on their log scale, as ConfigSpace's
vector form does), categorical and ordinal ones to their choice index.  A numeric
coordinate's measure is uniform on [0, 1]; a choice coordinate's is uniform over its
choices.  An inactive parameter is encoded as :data:`INACTIVE` (-1, outside every range):
only the prediction surrogate sees such values; fANOVA forests are fitted on parameters
active in every row they use, so an inactive value is never integrated as if it were a
point of the parameter's range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

INACTIVE = -1.0


@dataclass(frozen=True)
class Dim:
    """One encoded parameter: ``choices`` for categorical/ordinal ones (discrete measure
    over their indices), None for numeric ones (uniform measure on [0, 1])."""

    name: str
    hp: Any
    choices: tuple | None

    @property
    def discrete(self) -> bool:
        return self.choices is not None

    @property
    def size(self) -> int:
        return len(self.choices) if self.choices is not None else 0

    def encode(self, value: Any) -> float:
        if self.choices is not None:
            return float(self.choices.index(value))
        return float(np.clip(self.hp.to_vector(value), 0.0, 1.0))

    def decode(self, x: float) -> Any:
        if self.choices is not None:
            return self.choices[int(round(x))]
        value = self.hp.to_value(np.array([float(x)]))[0]
        return value.item() if hasattr(value, "item") else value

    def measure_coords(self, x: np.ndarray) -> np.ndarray:
        """The measure of (-inf, x]: the interval (lo, hi] then has measure
        ``max(0, F(hi) - F(lo))``, and an intersection of intervals
        ``max(0, min F(hi) - max F(lo))`` since F is monotone."""
        if self.choices is None:
            return np.clip(x, 0.0, 1.0)
        with np.errstate(invalid="ignore"):
            return np.clip(np.floor(x) + 1.0, 0.0, self.size) / self.size

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Measure of the intervals (lo, hi] (arrays of the same shape)."""
        return np.maximum(self.measure_coords(hi) - self.measure_coords(lo), 0.0)

    def grid(self, n: int) -> list[Any]:
        """Values to move this parameter over: every choice, or ``n`` points evenly spaced
        on its (log) scale, integers deduplicated."""
        if self.choices is not None:
            return list(self.choices)
        values = [self.decode(x) for x in np.linspace(0.0, 1.0, n)]
        return list(dict.fromkeys(values))


def dims_of(cs, names: Sequence[str]) -> list[Dim]:
    """Encoders for ``names`` of ``cs``."""
    out = []
    for name in names:
        hp = cs[name]
        choices = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
        out.append(Dim(name, hp, tuple(choices) if choices is not None else None))
    return out


def order_choices(dims: Sequence[Dim], configs: Sequence[Mapping[str, Any]],
                  y: np.ndarray) -> list[Dim]:
    """Categorical dimensions with their choices sorted by the mean of ``y`` among the
    rows that take them (unseen choices last).  For squared loss the best binary split of
    a category set is then a threshold (Breiman et al. 1984), so a tree can isolate any
    choice with one split instead of needing several on an arbitrary index order."""
    from ConfigSpace import CategoricalHyperparameter

    out = []
    for dim in dims:
        if not isinstance(dim.hp, CategoricalHyperparameter):
            out.append(dim)
            continue
        sums: dict[Any, list[float]] = {c: [] for c in dim.choices}
        for config, value in zip(configs, y, strict=True):
            if dim.name in config:
                sums[config[dim.name]].append(float(value))
        means = {c: (np.mean(v) if v else np.inf) for c, v in sums.items()}
        order = sorted(dim.choices, key=lambda c: (means[c], dim.choices.index(c)))
        out.append(Dim(dim.name, dim.hp, tuple(order)))
    return out


def encode(dims: Sequence[Dim], configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Rows of encoded configurations (inactive parameters: :data:`INACTIVE`)."""
    x = np.full((len(configs), len(dims)), INACTIVE)
    for i, config in enumerate(configs):
        for j, dim in enumerate(dims):
            if dim.name in config:
                x[i, j] = dim.encode(config[dim.name])
    return x
