"""Micro-batching: a mini-batch too large for the activation memory is split, its
gradients added up, and one step taken; the result equals the unsplit batch's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_model

from aac_sparse.engine.config import TrainConfig
from aac_sparse.engine.model import model_arrays, model_from_arrays
from aac_sparse.engine.trainer import build_model


def _grads(model) -> list[np.ndarray]:
    return [g.copy() for g in model.gradient_arrays()]


def _twin(model, memory: int):
    twin = model_from_arrays(model_arrays(model, momentum=True))
    twin.activation_memory = memory
    return twin


@pytest.mark.parametrize("activation", ["relu", "all_relu", "srelu"])
@pytest.mark.parametrize("batch,dropout", [(32, 0.0), (29, 0.4)])
def test_split_batch_gives_the_unsplit_gradient_and_step(activation, batch, dropout):
    whole = make_model([30, 41, 37, 25, 6], activation, dropout=dropout, seed=batch)
    per_sample = whole.bytes_per_sample()
    split = _twin(whole, 6 * per_sample)  # 6 samples per micro-batch at most
    assert split.micro_batch(batch) <= 6 < batch
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(100, 30)).astype(np.float32)
    y = rng.integers(0, 6, 100)
    rows = rng.permutation(100)[:batch]
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    loss1, correct1 = whole.compute_gradients(x, y, rows, r1)
    loss2, correct2 = split.compute_gradients(x, y, rows, r2)
    assert loss2 == pytest.approx(loss1, rel=1e-5)
    assert correct1 == correct2
    assert r1.integers(1 << 30) == r2.integers(1 << 30)  # the same draws were made
    for g1, g2 in zip(_grads(whole), _grads(split), strict=True):
        np.testing.assert_allclose(g2, g1, rtol=1e-4, atol=1e-6)
    whole.step(0.05, 0.9, 1e-4)
    split.step(0.05, 0.9, 1e-4)
    for p1, p2 in zip(whole.parameter_arrays(), split.parameter_arrays(), strict=True):
        np.testing.assert_allclose(p2, p1, rtol=1e-4, atol=1e-6)


def test_split_is_chosen_from_the_widths_and_the_memory_cap():
    """The micro-batch fits the cap, the parts are equal (a multiple of 8 where that
    fits), and the workspace the training and the evaluation use stays within the cap."""
    model = make_model([64, 500, 400, 3], "relu", seed=0)
    per_sample = model.bytes_per_sample()
    assert per_sample == 4 * (64 + 3 + 2 * (500 + 400))  # a and dz; ReLU keeps no z
    assert make_model([64, 500, 400, 3], "all_relu").bytes_per_sample() == 4 * (
        64 + 3 + 2 * 500 + 3 * 400)  # All-ReLU's second hidden layer has slope -alpha
    assert make_model([64, 500, 400, 3], "srelu").bytes_per_sample() == 4 * (
        64 + 3 + 4 * (500 + 400))  # z, a, dz and da
    model.activation_memory = 34 * per_sample
    assert model.micro_batch(128) == 32  # 4 parts of 32
    assert model.micro_batch(20) == 20  # fits whole
    model.activation_memory = 20 * per_sample
    assert model.micro_batch(128) == 19  # 7 parts; 24 would not fit
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    model.train_batch(x, y, np.arange(128), 0.01, 0.9, 0.0, rng)
    model.evaluate(x, y, batch_size=1024)
    workspace = sum(a.nbytes for a in model._flat.values())
    assert workspace <= model.activation_memory


def test_training_config_sets_the_memory_cap_and_a_big_batch_trains():
    config = TrainConfig(hidden=[300, 300], epsilon=5, batch_size=128, dropout=0.3,
                         activation_memory_mb=0.25)
    model = build_model(config, 200, 4, np.random.default_rng(0))
    assert model.activation_memory == 2**18
    assert model.micro_batch(128) < 128
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 200)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    before, _ = model.evaluate(x, y)
    for _ in range(30):
        for s in range(0, 256, 128):
            model.train_batch(x, y, np.arange(s, s + 128), 0.05, 0.9, 0.0, rng)
    after, _ = model.evaluate(x, y)
    assert after < before - 0.1  # it learns


def test_wide_synthetic_data_is_generated_in_chunks_within_its_own_size():
    """2000 x 65536 float32 is 524 MB: the generator's peak is that plus the interpreter,
    not a float64 copy (which make_classification would make: 1 GB more)."""
    code = ("import resource; from aac_sparse.data.loaders.generated import load_synthetic; "
            "d = load_synthetic(2000, 65536, 2, seed=1); "
            "print(d.x.dtype, d.x.shape, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    dtype, *_, rss_kb = res.stdout.split()
    assert dtype == "float32"
    assert int(rss_kb) * 1024 < 2000 * 65536 * 4 + 250 * 2**20


def test_synthetic_data_is_learnable_and_reproducible():
    from aac_sparse.data.loaders.generated import load_synthetic

    a, b = load_synthetic(600, 40, 3, seed=2), load_synthetic(600, 40, 3, seed=2)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, load_synthetic(600, 40, 3, seed=3).x)
    assert np.bincount(a.y).tolist() == [200, 200, 200]
    centroid_gap = [abs(a.x[a.y == 0, c].mean() - a.x[a.y == 1, c].mean()) for c in range(40)]
    assert sorted(centroid_gap)[-5] > 0.5  # informative columns separate the classes


def test_train_command_runs_a_wide_network_in_micro_batches_with_a_batch_bar(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "AAC_SPARSE_BATCH_BAR_S": "0"}
    for var in ("COLUMNS", "LINES"):
        env.pop(var, None)
    res = subprocess.run(
        [sys.executable, "-m", "aac_sparse", "train", "-d", "synthetic",
         "--data-option", "n_samples=600", "--data-option", "n_features=65536",
         "--hidden", "3000,3000", "--set", "epsilon=2", "--set", "batch_size=128",
         "--set", "activation_memory_mb=4", "-e", "2", "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "batches" in res.stdout and "4/4" in res.stdout  # 432 training samples / 128
    config = json.loads((out / "config.json").read_text())
    assert config["activation_memory_mb"] == 4 and config["batch_size"] == 128
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["status"] == "ok" and summary["sizes"] == [65536, 3000, 3000, 2]
