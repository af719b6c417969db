"""Micro-batching: a mini-batch too large for the activation memory is split, its
gradients added up, and one step taken; the result equals the unsplit batch's."""

from __future__ import annotations

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
    assert per_sample == 4 * (64 + 3 + 3 * (500 + 400))
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
