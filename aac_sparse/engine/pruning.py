"""Prune criteria: which connections of a layer an update removes.

Each criterion maps the layer's weights and a drop fraction ``zeta`` to a boolean mask of
connections to remove, in O(nnz) (partition, no full sort).
"""

from __future__ import annotations

import numpy as np

from .components import register


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


@register("prune", "set", "remove the floor(zeta*n) smallest non-negative and largest "
          "negative weights, per sign (SET)")
def set_prune(w: np.ndarray, zeta: float) -> np.ndarray:
    """SET (Mocanu et al. 2018): remove ``floor(zeta * n_pos)`` smallest non-negative and
    ``floor(zeta * n_neg)`` largest negative weights (exact zeros count as positive, where
    they are the smallest)."""
    remove = np.zeros(w.shape[0], dtype=bool)
    pos = np.flatnonzero(w >= 0)
    neg = np.flatnonzero(w < 0)
    remove[pos[smallest_k(w[pos], int(np.floor(zeta * pos.shape[0])))]] = True
    remove[neg[smallest_k(-w[neg], int(np.floor(zeta * neg.shape[0])))]] = True
    return remove


@register("prune", "magnitude", "remove the floor(zeta*n) weights of smallest |w| (RigL)")
def magnitude_prune(w: np.ndarray, zeta: float) -> np.ndarray:
    """RigL / magnitude pruning: remove the ``floor(zeta * n)`` connections of smallest |w|."""
    remove = np.zeros(w.shape[0], dtype=bool)
    remove[smallest_k(np.abs(w), int(np.floor(zeta * w.shape[0])))] = True
    return remove
