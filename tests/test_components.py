"""Meta-algorithm components against dense references: pruning, regrowth, schedules."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from conftest import make_model

from aac_sparse.engine import regrowth
from aac_sparse.engine.config import preset_config
from aac_sparse.engine.layers import SparseLayer
from aac_sparse.engine.pruning import magnitude_prune
from aac_sparse.engine.regrowth import (
    GradientSignals,
    gradient_regrow,
    random_regrow,
    sampled_gradient_regrow,
)
from aac_sparse.engine.trainer import evolve_model, train
from aac_sparse.engine.update_schedule import UpdateSchedule


def make_layer(n_in=37, n_out=23, nnz=200, seed=0):
    return SparseLayer.random(np.random.default_rng(seed), n_in, n_out, nnz, "he_uniform")


def random_signals(layer, batch=16, seed=1):
    rng = np.random.default_rng(seed)
    return GradientSignals(rng.standard_normal((layer.n_in, batch), dtype=np.float32),
                           rng.standard_normal((layer.n_out, batch), dtype=np.float32))


def dense_top_k(layer, kept_keys, sig, k):
    """Reference: the full dense gradient, present positions excluded, top k by |g|."""
    g = np.abs(sig.dz.astype(np.float64) @ sig.x.T.astype(np.float64)).ravel()
    g[kept_keys] = -1.0
    order = np.lexsort((np.arange(g.size), -g))
    return np.sort(order[:k])


def test_magnitude_prune_removes_the_smallest_absolute_values():
    w = np.array([0.5, -0.1, 0.2, -0.9, 0.05, -0.3, 0.7, 0.0, -0.02, 0.3], dtype=np.float32)
    assert set(np.flatnonzero(magnitude_prune(w, 0.3))) == {7, 8, 4}
    assert magnitude_prune(w, 0.0).sum() == 0


@pytest.mark.parametrize("block_entries", [1 << 22, 40, 37 * 3 + 5])
def test_exact_gradient_regrow_matches_dense_top_k(monkeypatch, block_entries):
    monkeypatch.setattr(regrowth, "BLOCK_ENTRIES", block_entries)  # one block or many
    layer = make_layer()
    keys = layer.keys()
    kept = keys[::2]
    sig = random_signals(layer)
    got = gradient_regrow(layer, kept, 30, np.random.default_rng(0), sig)
    np.testing.assert_array_equal(got, dense_top_k(layer, kept, sig, 30))
    assert not np.isin(got, kept).any()
    # removed positions may come back: they are absent after pruning
    assert np.isin(dense_top_k(layer, kept, sig, 200), keys[1::2]).any()


def test_sampled_regrow_equals_exact_when_every_candidate_is_scored_and_overlap_shrinks():
    layer = make_layer(n_in=60, n_out=50, nnz=600)
    kept = layer.keys()[100:]
    sig = random_signals(layer, seed=3)
    k = 100
    exact = gradient_regrow(layer, kept, k, np.random.default_rng(0), sig)
    free = layer.n_in * layer.n_out - kept.shape[0]
    full = sampled_gradient_regrow(layer, kept, k, np.random.default_rng(0), sig,
                                   candidates=free / k)
    np.testing.assert_array_equal(full, exact)
    overlaps = []
    for seed in range(20):
        part = sampled_gradient_regrow(layer, kept, k, np.random.default_rng(seed), sig,
                                       candidates=5.0)
        assert part.shape[0] == k and not np.isin(part, kept).any()
        overlaps.append(np.isin(part, exact).mean())
    # an exact top-k position is chosen iff it was sampled: expected overlap = m / free
    assert np.mean(overlaps) == pytest.approx(5 * k / free, abs=0.05)


def test_signals_give_the_gradient_at_absent_positions():
    """Grow zero-weight connections at absent positions: the backward pass's gradient there
    must equal what the signals say (a dense-free, independent reference)."""
    model = make_model([12, 15, 9, 4], epsilon=2.0, seed=4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 12)).astype(np.float32)
    y = rng.integers(0, 4, 20)
    rows = np.arange(20)
    signals = model.gradient_signals(x, y, rows, rng)
    li = 1
    layer = model.layers[li]
    absent = np.setdiff1d(np.arange(layer.n_in * layer.n_out), layer.keys())[:25]
    from aac_sparse.engine.kernels import merge_sorted_keys

    keys, w, v = merge_sorted_keys(layer.keys(), layer.w, layer.v, absent,
                                   np.zeros(absent.shape[0], np.float32))
    layer.set_structure(keys, w, v)
    model.after_structure_change()
    model.gradient_signals(x, y, rows, rng)  # forward + backward; fills layer.grad
    at = np.searchsorted(layer.keys(), absent)
    sig = signals[li]
    j, i = absent // layer.n_in, absent % layer.n_in
    expected = (sig.dz[j].astype(np.float64) * sig.x[i]).sum(axis=1)
    np.testing.assert_allclose(layer.grad[at], expected, rtol=1e-4, atol=1e-6)


def test_set_regrowth_is_uniform_over_absent_positions():
    layer = make_layer(n_in=10, n_out=10, nnz=50, seed=2)
    kept = layer.keys()[:40]
    counts = np.zeros(100)
    rng = np.random.default_rng(0)
    trials = 3000
    for _ in range(trials):
        counts[random_regrow(layer, kept, 10, rng)] += 1
    assert counts[kept].sum() == 0
    absent = np.setdiff1d(np.arange(100), kept)
    expected = trials * 10 / absent.size
    chi2 = ((counts[absent] - expected) ** 2 / expected).sum()
    # 59 degrees of freedom: P(chi2 > 110) < 1e-4 for a uniform sampler
    assert chi2 < 110


def test_exact_regrow_holds_only_a_block_of_the_dense_gradient(monkeypatch):
    monkeypatch.setattr(regrowth, "BLOCK_ENTRIES", 1 << 20)
    layer = make_layer(n_in=3000, n_out=2000, nnz=60000)
    sig = random_signals(layer, batch=8)
    kept = layer.keys()[:50000]
    gradient_regrow(layer, kept, 10000, np.random.default_rng(0), sig)  # compile first
    tracemalloc.start()
    gradient_regrow(layer, kept, 10000, np.random.default_rng(0), sig)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bytes = 3000 * 2000 * 4
    assert peak < dense_bytes / 2  # ~ one 4 MB block plus O(k) candidates, not 24 MB


def test_sampled_regrow_on_a_huge_layer_stays_o_of_candidates():
    rng = np.random.default_rng(0)
    layer = SparseLayer.random(rng, 54675, 27500, 20000, "he_uniform")
    sig = GradientSignals(rng.standard_normal((54675, 4), dtype=np.float32),
                          rng.standard_normal((27500, 4), dtype=np.float32))
    kept = layer.keys()[1000:]
    sampled_gradient_regrow(layer, kept, 1000, rng, sig, candidates=20)
    tracemalloc.start()
    got = sampled_gradient_regrow(layer, kept, 1000, rng, sig, candidates=20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got.shape[0] == 1000 and peak < 20e6  # dense would be 6 GB


def test_update_schedule_follows_rigl_cosine_and_stops_at_t_end():
    s = UpdateSchedule("steps", every=100, end=0.75, zeta=0.3, decay="cosine")
    total = 1000
    due = [t for t in range(1, total + 1) if s.due(t, total, False, 1)]
    assert due == [100, 200, 300, 400, 500, 600, 700]
    for t in due:
        assert s.drop_fraction(t, total) == pytest.approx(
            0.15 * (1 + math.cos(math.pi * t / 750)))
    assert UpdateSchedule(decay="linear", zeta=0.4).drop_fraction(250, 1000) == \
        pytest.approx(0.3)
    epochs = UpdateSchedule("epoch", every=2, end=1.0, zeta=0.3)
    assert [e for e in range(1, 11) if epochs.due(e * 10, 100, True, e)] == [2, 4, 6, 8]
    assert not epochs.due(100, 100, True, 10)  # never the last step


def test_rigl_preset_updates_every_delta_t_with_cosine_drop_fraction():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 30)).astype(np.float32)
    y = rng.integers(0, 3, 320)
    cfg = preset_config("rigl", hidden=[40, 40], batch_size=16, update_every_steps=20,
                        density=0.2, epochs=10)
    result = train(cfg, x, y)
    total, end = 200, 150
    rows = result.history
    # 20 steps per epoch: one update per epoch while step < 0.75 * 200
    assert [r["updates"] for r in rows] == [1] * 7 + [0] * 3
    sparse_nnz = [layer.nnz for layer in result.model.layers if not layer.dense]
    assert len(sparse_nnz) == 2  # the 40 -> 3 output layer is dense under ERK
    for r in rows[:7]:
        t = 20 * r["epoch"]
        assert r["zeta"] == pytest.approx(0.15 * (1 + math.cos(math.pi * t / end)))
        assert r["replaced"] == sum(math.floor(r["zeta"] * n) for n in sparse_nnz)
    assert rows[0]["replaced"] > 0
    assert len({r["nnz"] for r in rows}) == 1
    assert total == 10 * 20


def test_rigl_step_grows_the_highest_gradient_positions_at_zero():
    cfg = preset_config("rigl", hidden=[30], density=0.3)
    model = make_model([20, 30, 5], epsilon=3.0, seed=1)
    layer = model.layers[0]
    layer.v[:] = 0.5
    sig = random_signals(layer, seed=9)
    fixed = [sig, random_signals(model.layers[1], seed=10)]
    old = set(layer.keys())
    remove = magnitude_prune(layer.w, 0.3)
    kept_keys = layer.keys()[~remove]
    expected = dense_top_k(layer, kept_keys, sig, int(remove.sum()))
    evolve_model(model, cfg, np.random.default_rng(0), 0.3, lambda: fixed)
    keys = layer.keys()
    new = np.isin(keys, expected)
    assert set(keys) == set(kept_keys) | set(expected)
    assert np.all(layer.w[new & ~np.isin(keys, kept_keys)] == 0)  # zero-initialised
    assert np.all(layer.v[np.isin(keys, expected) & ~np.isin(keys, kept_keys)] == 0)
    assert old != set(keys)


def test_gradient_regrow_without_signals_is_a_clear_error():
    with pytest.raises(ValueError, match="gradient signals"):
        evolve_model(make_model([10, 20, 3]), preset_config("rigl", hidden=[20]),
                     np.random.default_rng(0))


def test_caller_can_stop_training_after_an_epoch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    seen = []
    result = train(preset_config("set", hidden=[16], epochs=5, batch_size=16), x, y,
                   on_epoch=lambda row: seen.append(row["epoch"]) or row["epoch"] == 2)
    assert result.status == "stopped" and seen == [1, 2] and len(result.history) == 2


def test_one_registry_of_components_agrees_with_config_code_and_spaces():
    import typing

    from aac_sparse.engine import components
    from aac_sparse.engine.config import TrainConfig
    from aac_sparse.engine.pruning import PRUNE_CRITERIA
    from aac_sparse.engine.regrowth import REGROWERS
    from aac_sparse.space.definition import BY_NAME

    for kind, entries in components.COMPONENTS.items():
        field = TrainConfig.model_fields[kind]
        assert set(typing.get_args(field.annotation)) == set(entries), kind
        assert all(meaning for meaning in entries.values())
        if kind in BY_NAME:  # the spaces offer registered names only
            assert set(BY_NAME[kind].domain) <= set(entries), kind
    assert set(PRUNE_CRITERIA) == set(components.names("prune"))
    assert set(REGROWERS) == set(components.names("regrow"))
