"""Importance pruning shrinks layers consistently and keeps the engine exact."""

from __future__ import annotations

import numpy as np
from conftest import make_model

from aac_sparse.engine.dense_reference import DenseMaskedMLP
from aac_sparse.engine.evolution import evolve_layer
from aac_sparse.engine.importance import importance_prune, neuron_strength
from aac_sparse.engine.model import softmax_cross_entropy, to_neuron_major
from aac_sparse.engine.pruning import set_prune


def test_prunes_weakest_neurons_and_shapes_stay_consistent():
    model = make_model([20, 50, 40, 5], "srelu", epsilon=4.0)
    strengths = [neuron_strength(layer) for layer in model.layers[:-1]]
    removed = importance_prune(model, 20.0)
    assert removed[0] > 0 and removed[1] > 0
    assert model.sizes == [20, 50 - removed[0], 40 - removed[1], 5]
    for h, s in enumerate(strengths):
        kept = model.neuron_ids[h]
        gone = np.setdiff1d(np.arange(len(s)), kept)
        assert s[gone].max() < s[kept].min()
        assert len(model.activations[h].params["t_l"]) == len(kept)
    for a, b in zip(model.layers[:-1], model.layers[1:], strict=True):
        assert a.n_out == b.n_in and b.indices.max() < b.n_in
        assert a.t_indptr.shape == (a.n_in + 1,) and b.t_indptr.shape == (b.n_in + 1,)
        assert len(a.bias) == a.n_out == len(a.v_bias)


def test_pruned_model_still_matches_dense_reference_and_trains():
    model = make_model([20, 50, 40, 5], "all_relu", epsilon=4.0)
    importance_prune(model, 30.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 20)).astype(np.float32), rng.integers(0, 5, 9)
    logits = model.forward(to_neuron_major(x)).copy()
    ref_logits, _ = DenseMaskedMLP.from_sparse(model, np.float64).forward(x.astype(np.float64))
    np.testing.assert_allclose(logits.T, ref_logits, rtol=1e-4, atol=1e-5)
    loss0 = softmax_cross_entropy(logits, y)[0]
    for _ in range(20):
        model.train_batch(x, y, np.arange(9), 0.05, 0.9, 0.0, rng)
    assert softmax_cross_entropy(model.forward(to_neuron_major(x)).copy(), y)[0] < loss0


def test_pruned_neurons_cannot_be_revived_by_regrowth():
    model = make_model([20, 50, 40, 5], epsilon=4.0)
    importance_prune(model, 25.0)
    n_hidden = model.layers[0].n_out
    for _ in range(5):
        for layer in model.layers:
            if not layer.dense:
                evolve_layer(layer, set_prune(layer.w, 0.5), rng=np.random.default_rng(0))
    assert model.layers[0].n_out == n_hidden
    assert model.layers[1].indices.max() < n_hidden
