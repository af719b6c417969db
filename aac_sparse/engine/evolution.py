"""Topology evolution of a sparse layer: prune connections, then regrow as many.

Everything is O(nnz) (the exact gradient regrowth adds O(block) scratch, see
:mod:`.regrowth`): kept connections stay in key order and the regrown ones are merged in.
No dense ``n_in x n_out`` array is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .components import names
from .kernels import merge_sorted_keys
from .layers import SparseLayer
from .regrowth import REGROWERS, GradientSignals
from .topology import init_weights

REGROW_INITS = names("regrow_init")


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

    New connections get weights from ``weight_init`` (``regrow_init='random'``) or zero,
    and zero optimizer state; kept connections keep weight and momentum.
    """
    count = int(remove.sum())
    if count == 0:
        return EvolutionStats(0, 0)
    if regrow_init not in REGROW_INITS:
        raise ValueError(f"unknown regrow init {regrow_init!r}; choose one of {REGROW_INITS}")
    keep = ~remove
    kept_keys = layer.keys()[keep]
    new_keys = REGROWERS[regrow](layer, kept_keys, count, rng, signals, candidates)
    if regrow_init == "random":
        new_w = init_weights(rng, weight_init, layer.n_in, layer.n_out, count)
    else:
        new_w = np.zeros(count, dtype=np.float32)
    keys, w, v = merge_sorted_keys(kept_keys, layer.w[keep], layer.v[keep], new_keys, new_w)
    layer.set_structure(keys, w, v)
    return EvolutionStats(count, count)
