"""SET topology evolution: exact counts, invariants, state of new connections."""

from __future__ import annotations

import numpy as np
import pytest

from aac_sparse.engine.evolution import evolve_layer
from aac_sparse.engine.layers import SparseLayer
from aac_sparse.engine.pruning import set_prune, smallest_k


def test_smallest_k_breaks_ties_by_lower_index():
    v = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 0.5])
    assert list(smallest_k(v, 3)) == [1, 3, 5]
    assert list(smallest_k(v, 0)) == []
    assert list(smallest_k(v, 10)) == list(range(6))


def test_set_prune_removes_exact_counts_per_sign():
    w = np.array([0.5, -0.1, 0.2, -0.9, 0.05, -0.3, 0.7, 0.0, -0.02, 0.3], dtype=np.float32)
    remove = set_prune(w, 0.4)
    # non-negative: 6 -> floor(2.4)=2 smallest: 0.0, 0.05 ; negative: 4 -> 1 largest: -0.02
    assert set(np.flatnonzero(remove)) == {7, 4, 8}
    assert not set_prune(w, 0.0).any()


def make_layer(seed=0, n_in=60, n_out=40, nnz=500):
    return SparseLayer.random(np.random.default_rng(seed), n_in, n_out, nnz, "he_uniform")


@pytest.mark.parametrize("regrow_init", ["random", "zero"])
def test_evolution_keeps_nnz_and_structure_valid(regrow_init):
    layer = make_layer()
    layer.v[:] = 1.0
    old_keys, old_w = layer.keys(), layer.w.copy()
    remove = set_prune(layer.w, 0.3)
    kept = dict(zip(old_keys[~remove], old_w[~remove], strict=True))
    stats = evolve_layer(layer, remove, np.random.default_rng(1), regrow_init=regrow_init)
    assert stats.removed == stats.regrown == remove.sum() > 0
    assert layer.nnz == 500
    keys = layer.keys()
    assert np.all(np.diff(keys) > 0)  # sorted, unique
    assert layer.indices.min() >= 0 and layer.indices.max() < layer.n_in
    assert np.all(np.diff(layer.indptr) >= 0) and layer.indptr[-1] == 500
    for r in range(layer.n_out):
        assert np.all(np.diff(layer.indices[layer.indptr[r]:layer.indptr[r + 1]]) > 0)
    is_new = ~np.isin(keys, list(kept))
    assert is_new.sum() == remove.sum()
    assert np.all(layer.v[is_new] == 0) and np.all(layer.v[~is_new] == 1.0)
    np.testing.assert_array_equal(layer.w[~is_new], [kept[k] for k in keys[~is_new]])
    if regrow_init == "zero":
        assert np.all(layer.w[is_new] == 0)
    else:
        assert np.all(layer.w[is_new] != 0)
    # the transposed index was rebuilt too
    assert layer.t_indptr[-1] == 500 and np.array_equal(np.sort(layer.t_pos), np.arange(500))


def test_evolution_with_nothing_to_remove_changes_nothing():
    layer = make_layer()
    keys = layer.keys()
    evolve_layer(layer, np.zeros(layer.nnz, bool), np.random.default_rng(0))
    assert np.array_equal(layer.keys(), keys)


def test_regrowth_reaches_positions_outside_old_structure():
    layer = make_layer(n_in=30, n_out=20, nnz=100)
    before = set(layer.keys())
    evolve_layer(layer, set_prune(layer.w, 0.5), np.random.default_rng(3))
    assert set(layer.keys()) - before
