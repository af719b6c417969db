"""Topology evolution of a sparse layer: prune connections, then regrow as many.

Everything is O(nnz): selection uses a partition (no full sort), the kept connections stay
in key order and the regrown ones are merged in.  No dense ``n_in x n_out`` array is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import merge_sorted_keys
from .layers import SparseLayer
from .topology import init_weights, sample_absent

REGROW_INITS = ("random", "zero")


def smallest_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest ``values``; ties go to the lower index.

    O(n) with a partition: everything below the k-th value is taken, then the needed
    number of entries equal to it, in index order.  Returned sorted.
    """
    n = values.shape[0]
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    threshold = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < threshold)
    equal = np.flatnonzero(values == threshold)[: k - below.shape[0]]
    return np.sort(np.concatenate((below, equal)))  # disjoint index sets


def set_prune(w: np.ndarray, zeta: float) -> np.ndarray:
    """SET criterion: boolean mask of connections to remove.

    Removes exactly ``floor(zeta * n_pos)`` smallest non-negative weights and
    ``floor(zeta * n_neg)`` largest negative weights (exact zeros count on the positive
    side, where they are the smallest).
    """
    remove = np.zeros(w.shape[0], dtype=bool)
    pos = np.flatnonzero(w >= 0)
    neg = np.flatnonzero(w < 0)
    remove[pos[smallest_k(w[pos], int(np.floor(zeta * pos.shape[0])))]] = True
    remove[neg[smallest_k(-w[neg], int(np.floor(zeta * neg.shape[0])))]] = True
    return remove


@dataclass
class EvolutionStats:
    """What one evolution step did to one layer."""

    removed: int
    regrown: int


def random_regrow(
    layer: SparseLayer, kept_keys: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """SET regrowth: ``count`` keys uniform over the positions absent after pruning."""
    return sample_absent(rng, layer.n_in * layer.n_out, count, kept_keys)


def evolve_layer(
    layer: SparseLayer,
    remove: np.ndarray,
    rng: np.random.Generator,
    weight_init: str = "he_uniform",
    regrow_init: str = "random",
) -> EvolutionStats:
    """Drop the connections flagged in ``remove`` and regrow as many at random positions.

    New connections get weights from ``weight_init`` (``regrow_init='random'``) or zero,
    and zero optimizer state; kept connections keep weight and momentum.
    """
    count = int(remove.sum())
    if count == 0:
        return EvolutionStats(0, 0)
    keep = ~remove
    kept_keys = layer.keys()[keep]
    new_keys = random_regrow(layer, kept_keys, count, rng)
    if regrow_init == "random":
        new_w = init_weights(rng, weight_init, layer.n_in, layer.n_out, count)
    elif regrow_init == "zero":
        new_w = np.zeros(count, dtype=np.float32)
    else:
        raise ValueError(f"unknown regrow init {regrow_init!r}; choose one of {REGROW_INITS}")
    keys, w, v = merge_sorted_keys(kept_keys, layer.w[keep], layer.v[keep], new_keys, new_w)
    layer.set_structure(keys, w, v)
    return EvolutionStats(count, count)
