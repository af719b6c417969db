"""Random sparse structures: which connections a layer has, built without dense
temporaries (how many it has is :mod:`.densities`'s business).

A connection of a layer with ``n_in`` inputs and ``n_out`` outputs is identified by its
flat key ``j * n_in + i`` (output ``j``, input ``i``).  Sorted keys are the CSR order used
by the kernels, so every structure here is a sorted, duplicate-free int64 key array.
"""

from __future__ import annotations

import numpy as np


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

