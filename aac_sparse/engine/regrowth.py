"""Regrow strategies: where an update puts the connections it removed.

* ``random`` (SET): uniform over the positions absent after pruning.
* ``gradient`` (RigL): the absent positions with the largest |dL/dw|, found by an exact
  block-wise top-k.  The dense gradient of one block of output rows is formed at a time
  (about 4 M entries), so memory stays O(block + k), never O(n_in * n_out); the work is
  O(n_in * n_out * batch), fine for layers of a few thousand neurons.
* ``gradient_sampled``: score ``m = candidates * k`` uniformly drawn absent positions and
  keep the top k: O(m * batch) work and O(m) memory, for layers like 54675 x 27500.

The gradient at an absent position ``(j, i)`` of a layer ``z = W x + b`` over one
mini-batch is ``sum_t dz[j, t] * x[i, t]``; :class:`~.model.GradientSignals` carries ``x``
and ``dz`` (neuron-major) for each layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .components import register
from .topology import sample_absent

if TYPE_CHECKING:  # the kernels (Numba) load when a regrowth first runs, not on import
    from .layers import SparseLayer
    from .model import GradientSignals

BLOCK_ENTRIES = 1 << 22  # dense gradient entries held at once by the exact top-k


@register("regrow", "random", "uniform over the positions absent after pruning (SET)")
def random_regrow(layer: SparseLayer, kept_keys: np.ndarray, count: int,
                  rng: np.random.Generator, signals: GradientSignals | None = None,
                  candidates: float = 0.0) -> np.ndarray:
    """SET regrowth: ``count`` sorted keys uniform over the positions absent after pruning."""
    return sample_absent(rng, layer.n_in * layer.n_out, count, kept_keys)


@register("regrow", "gradient", "absent positions of largest |dL/dw|, exact block-wise "
          "top-k (RigL)", needs_gradient=True)
def gradient_regrow(layer: SparseLayer, kept_keys: np.ndarray, count: int,
                    rng: np.random.Generator, signals: GradientSignals | None = None,
                    candidates: float = 0.0) -> np.ndarray:
    """RigL regrowth, exact: the ``count`` absent positions of largest |gradient|, sorted.

    Ties are broken towards the lower key, so the result is deterministic.
    """
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    from . import kernels as K

    sig = _need(signals)
    kept_indptr, kept_indices = K.keys_to_csr(kept_keys, layer.n_in, layer.n_out)
    rows = max(1, min(layer.n_out, BLOCK_ENTRIES // max(layer.n_in, 1)))
    block = np.empty((rows, layer.n_in), dtype=np.float32)
    best_keys = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    for j0 in range(0, layer.n_out, rows):
        out = block[: min(rows, layer.n_out - j0)]
        K.absent_grad_scores_block(sig.dz, sig.x, j0, kept_indptr, kept_indices, out)
        flat = out.ravel()
        # the block's own top-k first (flat order is key order), so only O(k) keys are made
        pick = _top_k_positions(flat, count)
        pick = pick[flat[pick] >= 0]  # present connections score -1
        keys = np.int64(j0) * layer.n_in + pick
        best_keys, best_scores = _top_k(np.concatenate((best_keys, keys)),
                                        np.concatenate((best_scores, flat[pick])), count)
    return np.sort(best_keys)


@register("regrow", "gradient_sampled", "top-k of sampled absent positions by |dL/dw| "
          "(huge layers)", needs_gradient=True)
def sampled_gradient_regrow(layer: SparseLayer, kept_keys: np.ndarray, count: int,
                            rng: np.random.Generator, signals: GradientSignals | None = None,
                            candidates: float = 10.0) -> np.ndarray:
    """RigL regrowth on sampled candidates: the top ``count`` of ``candidates * count``
    uniformly drawn absent positions, sorted."""
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    from . import kernels as K

    sig = _need(signals)
    free = layer.n_in * layer.n_out - kept_keys.shape[0]
    m = int(min(free, max(count, np.ceil(candidates * count))))
    cand = sample_absent(rng, layer.n_in * layer.n_out, m, kept_keys)
    scores = np.empty(cand.shape[0], dtype=np.float32)
    K.grad_scores_at_keys(cand, layer.n_in, sig.dz, sig.x, scores)
    keys, _ = _top_k(cand, scores, count)
    return np.sort(keys)


def _top_k_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest scores, ties to the lower position; O(n) by partition."""
    n = scores.shape[0]
    if n <= k:
        return np.arange(n)
    threshold = np.partition(scores, n - k)[n - k]
    above = np.flatnonzero(scores > threshold)
    equal = np.flatnonzero(scores == threshold)[: k - above.shape[0]]
    return np.concatenate((above, equal))


def _top_k(keys: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` entries of largest score, ties to the lower key."""
    order = np.argsort(keys, kind="stable")  # positions in key order: ties go to lower keys
    pick = order[_top_k_positions(scores[order], k)]
    return keys[pick], scores[pick]


def _need(signals: GradientSignals | None) -> GradientSignals:
    if signals is None:
        raise ValueError("gradient regrowth needs the gradient signals of a mini-batch")
    return signals

