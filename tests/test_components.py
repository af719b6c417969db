"""Meta-algorithm components against dense references: pruning, regrowth, schedules."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from conftest import make_model

from aac_sparse.engine import regrowth
from aac_sparse.engine.config import preset_config
from aac_sparse.engine.evolution import evolve_model
from aac_sparse.engine.layers import SparseLayer
from aac_sparse.engine.model import GradientSignals
from aac_sparse.engine.pruning import magnitude_prune
from aac_sparse.engine.regrowth import (
    gradient_regrow,
    random_regrow,
    sampled_gradient_regrow,
)
from aac_sparse.engine.schedules import TopologySchedule, UpdateSchedule
from aac_sparse.engine.trainer import train


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
    # the schedule the trainer builds answers exactly those steps, with those fractions
    schedule = TopologySchedule.from_config(cfg, total, 20)
    answered = {t: z for t in range(1, total + 1) if (z := schedule(t)) is not None}
    assert list(answered) == [20 * r["epoch"] for r in rows[:7]]
    assert list(answered.values()) == pytest.approx([r["zeta"] for r in rows[:7]])


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


def _largest_prune(calls):
    """A prune criterion unlike the built-ins: remove the largest |w| (records its calls)."""
    def prune(w, zeta):
        calls.append((w.shape[0], zeta))
        remove = np.zeros(w.shape[0], dtype=bool)
        remove[np.argsort(-np.abs(w), kind="stable")[:int(np.floor(zeta * w.shape[0]))]] = True
        return remove
    return prune


def test_a_component_registered_here_trains_and_appears_in_the_spaces_that_free_its_kind():
    from pydantic import ValidationError

    from aac_sparse.engine.components import COMPONENTS
    from aac_sparse.space.definition import get_space

    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 60)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    calls: list = []
    meaning = "remove the largest |w| (registered by a test)"
    with COMPONENTS.registered("prune", "largest", meaning, _largest_prune(calls)):
        meta = get_space("meta")["prune"]
        assert list(meta.choices) == ["set", "magnitude", "largest"]
        assert meta.meta["values"]["largest"] == meaning
        assert get_space("set")["prune"].value == "set"  # SET's space keeps SET's criterion
        cfg = preset_config("set", prune="largest", hidden=[100, 100], epochs=3,
                            batch_size=32, zeta=0.25)
        result = train(cfg, x, y)
        assert result.status == "ok"
        # an update after epochs 1 and 2 (never after the last) of the two sparse layers
        # (the 100 -> 3 output layer is dense under ER with epsilon 20)
        assert [z for _, z in calls] == [0.25] * 4
        assert [r["replaced"] for r in result.history] == [
            sum(int(0.25 * n) for n, _ in calls[:2]), sum(int(0.25 * n) for n, _ in calls[2:]), 0]
        layer = make_model([40, 30, 3], epsilon=3.0, seed=5).layers[0]
        big = set(layer.keys()[np.argsort(-np.abs(layer.w), kind="stable")[:10]])
        evolve_layer_kw = dict(weight_init="he_uniform", regrow_init="zero")
        from aac_sparse.engine.evolution import evolve_layer

        evolve_layer(layer, COMPONENTS.get("prune", "largest")(layer.w, 10 / layer.nnz),
                     np.random.default_rng(1), **evolve_layer_kw)
        survivors = big & set(layer.keys())
        assert all(layer.w[np.searchsorted(layer.keys(), k)] == 0 for k in survivors)
    assert "largest" not in get_space("meta")["prune"].choices
    with pytest.raises(ValidationError, match="unknown prune criterion 'largest'"):
        preset_config("set", prune="largest")


def test_the_registry_is_the_only_list_of_components():
    """Config, spaces and trainer take names from the registry; every entry has a meaning
    and every component kind is a TrainConfig setting."""
    from aac_sparse.engine.components import COMPONENTS, KINDS
    from aac_sparse.engine.config import TrainConfig
    from aac_sparse.space.definition import BY_NAME

    for kind in KINDS:
        entries = COMPONENTS.entries(kind)
        assert entries and all(e.meaning for e in entries), kind
        assert kind in TrainConfig.model_fields, kind
        assert BY_NAME[kind].domain == COMPONENTS.names(kind, tunable_only=True), kind
        for e in entries:  # every registered name is accepted where it is used
            if kind == "density_distribution":
                TrainConfig(density_distribution=e.name, density=0.1)
            else:
                TrainConfig(**{kind: e.name})
    assert COMPONENTS.names("lr_schedule", tunable_only=True) == ("constant", "cosine", "linear")
    with pytest.raises(ValueError, match="already registered"):
        COMPONENTS.register("prune", "set", "again")(lambda w, z: w)


def test_a_plugin_package_registers_a_component_for_the_cli_and_its_workers(tmp_path):
    """A package that declares the entry point group ``aac_sparse.components`` adds a
    component without editing aac-sparse: the real CLI trains with it and lists it."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "largest_prune.py").write_text(
        "import numpy as np\n"
        "from aac_sparse.engine.components import register\n\n"
        "@register('prune', 'largest', 'remove the largest |w| (a plugin)')\n"
        "def largest(w, zeta):\n"
        "    remove = np.zeros(w.shape[0], dtype=bool)\n"
        "    remove[np.argsort(-np.abs(w), kind='stable')[:int(zeta * w.shape[0])]] = True\n"
        "    return remove\n")
    info = tmp_path / "largest_prune-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: largest-prune\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[aac_sparse.components]\nlargest = largest_prune\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    cli = [sys.executable, "-m", "aac_sparse"]
    shown = subprocess.run([*cli, "space", "show", "--space", "meta"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "largest" in shown.stdout
    out = tmp_path / "run"
    done = subprocess.run([*cli, "train", "--dataset", "digits", "--set", "prune=largest",
                           "--epochs", "2", "--hidden", "64", "--quiet", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["prune"] == "largest"
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[0]["replaced"] > 0
