"""Densities and random structures: exact counts, no duplicates, no dense temporaries."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aac_sparse.engine.densities import er_density, layer_densities
from aac_sparse.engine.layers import SparseLayer
from aac_sparse.engine.topology import random_keys, sample_absent


def test_er_density_and_cap_at_one():
    assert er_density(20, 784, 1000) == pytest.approx(20 * 1784 / 784000)
    d = layer_densities([784, 1000, 1000, 10], "er", 20)
    assert d[-1] == 1.0 and d[0] < 0.05


def test_erk_hits_the_global_density_and_caps_layers():
    sizes = [784, 300, 100, 10]
    d = layer_densities(sizes, "erk", density=0.1)
    params = np.array([a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
    assert (np.array(d) * params).sum() / params.sum() == pytest.approx(0.1)
    assert max(d) <= 1.0 and d[0] < d[1] < d[2]
    assert layer_densities(sizes, "uniform", density=0.2) == [0.2] * 3
    with pytest.raises(ValueError, match="density"):
        layer_densities(sizes, "erk")


def test_random_keys_are_unique_sorted_and_in_range():
    keys = random_keys(np.random.default_rng(0), 300, 200, 5000)
    assert keys.shape == (5000,)
    assert np.all(np.diff(keys) > 0) and keys[0] >= 0 and keys[-1] < 300 * 200


def test_sample_absent_avoids_present_even_when_nearly_full():
    rng = np.random.default_rng(1)
    present = np.sort(rng.choice(400, 390, replace=False)).astype(np.int64)
    new = sample_absent(rng, 400, 10, present)
    assert np.array_equal(np.sort(new), np.setdiff1d(np.arange(400), present))
    with pytest.raises(ValueError):
        sample_absent(rng, 400, 11, present)


def test_sample_absent_is_roughly_uniform():
    rng = np.random.default_rng(2)
    counts = np.zeros(50)
    present = np.arange(0, 50, 5, dtype=np.int64)
    for _ in range(2000):
        counts[sample_absent(rng, 50, 4, present)] += 1
    free = np.setdiff1d(np.arange(50), present)
    assert counts[present].sum() == 0
    assert counts[free].min() > 0.7 * counts[free].mean()


def test_large_layer_allocates_only_o_nnz():
    """54675 x 27500 at epsilon 10: a dense temporary would be 6 GB; we stay near O(nnz)."""
    n_in, n_out = 54675, 27500
    nnz = int(er_density(10, n_in, n_out) * n_in * n_out)
    tracemalloc.start()
    layer = SparseLayer.random(np.random.default_rng(0), n_in, n_out, nnz, "he_uniform")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert layer.nnz == nnz
    assert peak < 200 * nnz  # bytes; a dense mask alone would be ~1800x more
