"""Layer densities and random sparse structures, built without dense temporaries.

A connection of a layer with ``n_in`` inputs and ``n_out`` outputs is identified by its
flat key ``j * n_in + i`` (output ``j``, input ``i``).  Sorted keys are the CSR order used
by the kernels, so every structure here is a sorted, duplicate-free int64 key array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .components import names

DENSITY_DISTRIBUTIONS = names("density_distribution")
WEIGHT_INITS = names("weight_init")


def er_density(epsilon: float, n_in: int, n_out: int) -> float:
    """Erdős–Rényi density of SET: ``epsilon * (n_in + n_out) / (n_in * n_out)``."""
    return epsilon * (n_in + n_out) / (n_in * n_out)


def layer_densities(
    sizes: Sequence[int],
    distribution: str = "er",
    epsilon: float = 20.0,
    density: float | None = None,
) -> list[float]:
    """Density of each layer ``sizes[l] -> sizes[l + 1]``; a value of 1.0 means dense.

    * ``er``: ``er_density(epsilon, ...)`` per layer, capped at 1 (the papers make such a
      layer dense).
    * ``erk``: densities proportional to ``(n_in + n_out) / (n_in * n_out)``, scaled so
      the whole network has ``density`` of its dense parameter count; layers that would
      exceed 1 are made dense and the rest rescaled (as in RigL's ERK).
    * ``uniform``: every layer has ``density``.
    """
    shapes = [(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    if distribution == "er":
        return [min(1.0, er_density(epsilon, a, b)) for a, b in shapes]
    if density is None or not 0.0 < density <= 1.0:
        raise ValueError(f"density distribution {distribution!r} needs 0 < density <= 1")
    if distribution == "uniform":
        return [float(density)] * len(shapes)
    if distribution != "erk":
        raise ValueError(
            f"unknown density distribution {distribution!r}; choose one of "
            f"{', '.join(DENSITY_DISTRIBUTIONS)}"
        )
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


def layer_nnz(density: float, n_in: int, n_out: int) -> int:
    """Number of connections of a layer of that density (at least one per layer)."""
    return max(1, min(n_in * n_out, int(round(density * n_in * n_out))))


def random_keys(rng: np.random.Generator, n_in: int, n_out: int, nnz: int) -> np.ndarray:
    """``nnz`` distinct flat keys drawn uniformly, sorted; memory O(nnz), never O(n_in*n_out)."""
    return sample_absent(rng, n_in * n_out, nnz, np.empty(0, dtype=np.int64))


def sample_absent(
    rng: np.random.Generator, n_positions: int, count: int, present: np.ndarray
) -> np.ndarray:
    """``count`` distinct keys in ``[0, n_positions)`` not in the sorted ``present``.

    Rejection sampling with over-drawing: each round draws candidates in proportion to
    the free fraction, drops duplicates and present keys, and a uniform subset of the
    survivors is kept, so the result is uniform over absent positions.
    """
    from .kernels import member_of_sorted

    free = n_positions - present.shape[0]
    if count > free:
        raise ValueError(f"cannot place {count} connections in {free} free positions")
    chosen = np.empty(0, dtype=np.int64)
    while chosen.shape[0] < count:
        need = count - chosen.shape[0]
        free_fraction = max((free - chosen.shape[0]) / n_positions, 1e-9)
        draw = int(min(max(need * 1.25 / free_fraction + 64, need), 4 * n_positions + 64))
        cand = sorted_unique(rng.integers(0, n_positions, size=draw, dtype=np.int64))
        if present.shape[0]:
            cand = cand[~member_of_sorted(cand, present)]
        if chosen.shape[0]:
            cand = cand[~member_of_sorted(cand, chosen)]
        if cand.shape[0] > need:
            cand = np.sort(cand[rng.permutation(cand.shape[0])[:need]])
        chosen = np.sort(np.concatenate((chosen, cand)))  # disjoint: no duplicates
    return chosen


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values by sort + neighbour compare.

    (numpy 2.4's ``np.unique`` takes a hash-table path that measured ~20x slower on
    a million int64 keys here.)
    """
    a = np.sort(a)
    if a.shape[0] < 2:
        return a
    keep = np.empty(a.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def init_weights(
    rng: np.random.Generator, scheme: str, n_in: int, n_out: int, size: int
) -> np.ndarray:
    """``size`` float32 initial weights for a layer ``n_in -> n_out``.

    ``he_uniform`` U(±sqrt(6/n_in)), ``xavier`` U(±sqrt(6/(n_in+n_out))) as in the SET
    code (dense fan-in), ``normal`` N(0, 0.1²).
    """
    if scheme == "he_uniform":
        limit = np.sqrt(6.0 / n_in)
    elif scheme == "xavier":
        limit = np.sqrt(6.0 / (n_in + n_out))
    elif scheme == "normal":
        return (rng.standard_normal(size, dtype=np.float32) * np.float32(0.1)).astype(np.float32)
    else:
        raise ValueError(f"unknown weight init {scheme!r}; choose one of {', '.join(WEIGHT_INITS)}")
    return rng.uniform(-limit, limit, size).astype(np.float32)
