"""How many connections each layer gets: the registered density distributions.

A distribution maps the layer shapes ``(n_in, n_out)`` to one density per layer; a value
of 1.0 means the layer is dense.  Which connections a layer gets is :mod:`.topology`'s
business.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .components import COMPONENTS, register

Shapes = Sequence[tuple[int, int]]


def er_density(epsilon: float, n_in: int, n_out: int) -> float:
    """Erdős–Rényi density of SET: ``epsilon * (n_in + n_out) / (n_in * n_out)``."""
    return epsilon * (n_in + n_out) / (n_in * n_out)


@register("density_distribution", "er", "Erdos-Renyi: epsilon * (n_in + n_out) / "
          "(n_in * n_out) per layer (SET)", uses="epsilon")
def er(shapes: Shapes, epsilon: float, density: float | None) -> list[float]:
    """``er_density(epsilon, ...)`` per layer, capped at 1 (the papers make such a layer
    dense)."""
    return [min(1.0, er_density(epsilon, a, b)) for a, b in shapes]


@register("density_distribution", "erk", "Erdos-Renyi-Kernel scaled to an overall density "
          "(RigL)", uses="density")
def erk(shapes: Shapes, epsilon: float, density: float | None) -> list[float]:
    """Densities proportional to ``(n_in + n_out) / (n_in * n_out)``, scaled so the whole
    network has ``density`` of its dense parameter count; layers that would exceed 1 are
    made dense and the rest rescaled (as in RigL's ERK)."""
    params = np.array([a * b for a, b in shapes], dtype=np.float64)
    raw = np.array([(a + b) / (a * b) for a, b in shapes], dtype=np.float64)
    budget = density * params.sum()
    dense = np.zeros(len(shapes), dtype=bool)
    while True:
        free_budget = budget - params[dense].sum()
        scale = free_budget / (raw[~dense] * params[~dense]).sum()
        out = np.where(dense, 1.0, raw * scale)
        over = (~dense) & (out > 1.0)
        if not over.any():
            return [float(x) for x in out]
        dense |= over


@register("density_distribution", "uniform", "the same density in every layer",
          uses="density")
def uniform(shapes: Shapes, epsilon: float, density: float | None) -> list[float]:
    return [float(density)] * len(shapes)


def layer_densities(
    sizes: Sequence[int],
    distribution: str = "er",
    epsilon: float = 20.0,
    density: float | None = None,
) -> list[float]:
    """Density of each layer ``sizes[l] -> sizes[l + 1]`` under a registered
    ``distribution``; those that use ``density`` need ``0 < density <= 1``."""
    entry = COMPONENTS.entry("density_distribution", distribution)
    if entry.traits.get("uses") == "density" and (density is None or
                                                  not 0.0 < density <= 1.0):
        raise ValueError(f"density distribution {distribution!r} needs 0 < density <= 1")
    shapes = [(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return entry.impl(shapes, epsilon, density)


def layer_nnz(density: float, n_in: int, n_out: int) -> int:
    """Number of connections of a layer of that density (at least one per layer)."""
    return max(1, min(n_in * n_out, int(round(density * n_in * n_out))))
