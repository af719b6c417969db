"""Training: reaches a stated accuracy, reproducible, stops on divergence."""

from __future__ import annotations

import io

import numpy as np
import pytest

from aac_sparse.data.prepare import split_dataset
from aac_sparse.data.registry import load_dataset
from aac_sparse.engine.config import TrainConfig, preset_config
from aac_sparse.engine.model import load_model, save_model
from aac_sparse.engine.schedules import learning_rate
from aac_sparse.engine.trainer import train


@pytest.fixture(scope="module")
def digits():
    return split_dataset(load_dataset("digits"), seed=0)


def quick(**kw) -> TrainConfig:
    base = dict(hidden=[256, 256], epsilon=10, epochs=12, batch_size=32, lr=0.02, dropout=0.1)
    return preset_config("set", **{**base, **kw})


def test_set_on_digits_reaches_93_percent(digits):
    result = train(quick(), digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    assert result.status == "ok"
    _, acc = result.model.evaluate(digits.x_test, digits.y_test)
    assert acc >= 0.93
    nnz = [row["nnz"] for row in result.history]
    assert len(set(nnz)) == 1  # SET keeps the number of connections constant
    assert all(row["replaced"] > 0 for row in result.history[:-1])
    assert result.history[-1]["replaced"] == 0  # the last epoch's network is not evolved


@pytest.mark.parametrize("activation", ["all_relu", "srelu"])
def test_other_activations_and_importance_pruning_learn(digits, activation):
    cfg = quick(activation=activation, importance_pruning=True, ip_start=3, ip_every=3,
                ip_percentile=10, epochs=10)
    result = train(cfg, digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    assert result.status == "ok" and result.last["val_acc"] > 0.85
    hidden = [row["hidden"] for row in result.history]
    assert hidden[0] == [256, 256] and hidden[-1][0] < 256  # layers really shrank
    assert sum(row["neurons_removed"] > 0 for row in result.history) == 3  # epochs 3, 6, 9


def test_same_seed_same_run_different_seed_different_run(digits):
    cfg = quick(epochs=3)
    a = train(cfg, digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    b = train(cfg, digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    c = train(quick(epochs=3, seed=1), digits.x_train, digits.y_train, digits.x_val, digits.y_val)
    strip = [{k: v for k, v in r.items() if not k.endswith("_s")} for r in a.history]
    assert strip == [{k: v for k, v in r.items() if not k.endswith("_s")} for r in b.history]
    assert a.history[-1]["train_loss"] != c.history[-1]["train_loss"]


def test_divergence_stops_with_a_clear_status(digits):
    result = train(quick(lr=1e6, momentum=0.0, dropout=0.0, epochs=5), digits.x_train,
                   digits.y_train)
    assert result.status == "diverged"
    assert "loss became" in result.message and len(result.history) < 5


def test_evaluation_counts_the_last_partial_batch(digits):
    result = train(quick(epochs=1), digits.x_train, digits.y_train)
    x, y = digits.x_test[:301], digits.y_test[:301]
    logits = result.model.predict_logits(x, batch_size=64)
    assert logits.shape == (301, 10)
    full = result.model.predict_logits(x, batch_size=1000)
    np.testing.assert_allclose(logits, full, rtol=1e-5, atol=1e-5)
    _, acc = result.model.evaluate(x, y, batch_size=64)
    assert acc == pytest.approx(float((full.argmax(1) == y).mean()))


def test_model_round_trips_through_npz(digits):
    model = train(quick(epochs=2, activation="srelu"), digits.x_train, digits.y_train).model
    buf = io.BytesIO()
    save_model(model, lambda **a: np.savez(buf, **a))
    buf.seek(0)
    again = load_model(np.load(buf))
    np.testing.assert_array_equal(again.predict_logits(digits.x_test),
                                  model.predict_logits(digits.x_test))


def test_learning_rate_schedules():
    assert learning_rate("constant", 0.1, 5, 10) == 0.1
    assert learning_rate("cosine", 0.1, 0, 11) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 10, 11) == pytest.approx(0.0)
    assert learning_rate("cosine", 0.1, 5, 11) == pytest.approx(0.05)
    assert learning_rate("linear", 0.1, 5, 11, final_fraction=0.1) == pytest.approx(0.055)
    assert learning_rate("step", 0.1, 30, 100, step_every=30, gamma=0.5) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        learning_rate("bogus", 0.1, 0, 10)


def test_config_rejects_unknown_and_out_of_range_settings():
    with pytest.raises(ValueError, match="zeta"):
        TrainConfig(zeta=1.5)
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(zetta=0.1)
    with pytest.raises(ValueError, match="density"):
        TrainConfig(density_distribution="erk")
