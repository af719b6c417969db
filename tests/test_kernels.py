"""Every kernel of the engine against a dense numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model

from aac_sparse.engine import kernels as K
from aac_sparse.engine.dense_reference import DenseMaskedMLP
from aac_sparse.engine.model import dropout_mask, softmax_cross_entropy, to_neuron_major

ACTIVATIONS = ["relu", "leaky_relu", "all_relu", "srelu"]


def dense_grad(layer):
    g = np.zeros((layer.n_out, layer.n_in))
    g[layer.rows(), layer.indices] = layer.grad
    return g.T


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch,dropout", [(17, 0.0), (32, 0.0), (13, 0.4)])
def test_forward_and_all_gradients_match_dense_reference(activation, batch, dropout):
    model = make_model([30, 41, 37, 25, 6], activation, dropout=dropout, seed=batch)
    ref = DenseMaskedMLP.from_sparse(model, dtype=np.float64)
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(batch, 30)).astype(np.float32)
    y = rng.integers(0, 6, batch)
    seeds = [11, 22, 33]
    masks = None
    if dropout:
        masks = [dropout_mask(n, batch, dropout, s).T.astype(np.float64)
                 for n, s in zip(model.sizes[1:-1], seeds, strict=True)]
    logits = model.forward(to_neuron_major(x), train=True, dropout_seeds=seeds).copy()
    loss, grad, _ = softmax_cross_entropy(logits, y)
    model.backward(grad)

    ref_logits, cache = ref.forward(x.astype(np.float64), masks)
    ref_loss, ref_g = ref.loss_grad(ref_logits, y)
    ref_grads = ref.backward(ref_g, cache)

    np.testing.assert_allclose(logits.T, ref_logits, rtol=1e-4, atol=1e-5)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for li, layer in enumerate(model.layers):
        np.testing.assert_allclose(dense_grad(layer), ref_grads["W"][li], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.grad_bias, ref_grads["b"][li], rtol=1e-4, atol=1e-6)
    if activation == "srelu":
        for h, act in enumerate(model.activations):
            for k in act.names:
                np.testing.assert_allclose(act.grads[k], ref_grads["act"][h][k],
                                           rtol=1e-4, atol=1e-6)


def test_dense_reference_agrees_with_finite_differences():
    """The reference itself is checked by central differences in float64."""
    model = make_model([8, 9, 7, 3], "srelu", epsilon=2.0, seed=3)
    ref = DenseMaskedMLP.from_sparse(model, dtype=np.float64)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 8)), rng.integers(0, 3, 5)

    def loss():
        return ref.loss_grad(ref.forward(x)[0], y)[0]

    logits, cache = ref.forward(x)
    grads = ref.backward(ref.loss_grad(logits, y)[1], cache)
    eps = 1e-6
    for li in range(len(ref.W)):
        rows, cols = np.nonzero(ref.M[li])
        for r, c in list(zip(rows, cols, strict=True))[:6]:
            ref.W[li][r, c] += eps
            up = loss()
            ref.W[li][r, c] -= 2 * eps
            down = loss()
            ref.W[li][r, c] += eps
            assert grads["W"][li][r, c] == pytest.approx((up - down) / (2 * eps), abs=1e-7)
    act = ref.act[0]
    for k in ("t_l", "a_l", "t_r", "a_r"):
        for n in range(3):
            act[k][n] += eps
            up = loss()
            act[k][n] -= 2 * eps
            down = loss()
            act[k][n] += eps
            assert grads["act"][0][k][n] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


@pytest.mark.parametrize("activation", ["leaky_relu", "all_relu", "srelu"])
def test_engine_gradient_matches_finite_differences(activation):
    """Directly on the float32 engine: central differences of the loss per weight.

    A perturbation that moves any pre-activation across a kink makes the difference
    quotient meaningless there, so such weights are skipped (and most are not).
    """
    model = make_model([10, 12, 8, 4], activation, epsilon=2.0, seed=5)
    rng = np.random.default_rng(1)
    x = to_neuron_major(rng.normal(size=(6, 10)).astype(np.float32))
    y = rng.integers(0, 4, 6)

    def loss_and_pattern():
        logits = model.forward(x).copy()
        pattern = []
        for h, act in enumerate(model.activations):
            z = model._buffers(6)["z"][h]
            if act.has_params:
                pattern.append((z >= act.params["t_r"][:, None]) * 2
                               + (z <= act.params["t_l"][:, None]))
            else:
                pattern.append(z > 0)
        return softmax_cross_entropy(logits, y)[0], [p.copy() for p in pattern]

    _, base = loss_and_pattern()
    _, g, _ = softmax_cross_entropy(model.forward(x).copy(), y)
    model.backward(g)
    eps = 1e-3
    checked = skipped = 0
    for layer in model.layers:
        analytic = layer.grad.copy()
        for k in range(layer.nnz):
            old = layer.w[k]
            layer.w[k] = old + eps
            up, p_up = loss_and_pattern()
            layer.w[k] = old - eps
            down, p_down = loss_and_pattern()
            layer.w[k] = old
            moved = p_up + p_down
            if any(not np.array_equal(a, b) for a, b in zip(base + base, moved, strict=True)):
                skipped += 1
                continue
            checked += 1
            assert analytic[k] == pytest.approx((up - down) / (2 * eps), abs=5e-4, rel=2e-2)
    assert checked > 5 * skipped


def test_transpose_index_lists_every_connection_once():
    model = make_model([50, 40, 5], epsilon=4.0)
    layer = model.layers[0]
    rows = layer.rows()
    seen = np.zeros(layer.nnz, dtype=int)
    for i in range(layer.n_in):
        sl = slice(layer.t_indptr[i], layer.t_indptr[i + 1])
        pos, cols = layer.t_pos[sl], layer.t_cols[sl]
        assert np.all(layer.indices[pos] == i)
        assert np.array_equal(rows[pos], cols)
        assert np.all(np.diff(cols) > 0)
        seen[pos] += 1
    assert np.all(seen == 1)


def test_structure_helpers_round_trip():
    rng = np.random.default_rng(0)
    keys = np.sort(rng.choice(30 * 20, 77, replace=False)).astype(np.int64)
    indptr, indices = K.keys_to_csr(keys, 30, 20)
    assert np.array_equal(K.csr_to_keys(indptr, indices, 30), keys)
    other = np.setdiff1d(np.arange(600), keys)[:10]
    merged, w, v = K.merge_sorted_keys(keys, np.ones(77, np.float32), np.full(77, 2, np.float32),
                                       other, np.zeros(10, np.float32))
    assert np.array_equal(merged, np.union1d(keys, other))
    assert v[np.isin(merged, other)].sum() == 0 and np.all(v[np.isin(merged, keys)] == 2)
    queries = np.sort(rng.choice(600, 50, replace=False)).astype(np.int64)
    assert np.array_equal(K.member_of_sorted(queries, keys), np.isin(queries, keys))


def test_gather_transpose_and_softmax_match_numpy(rng):
    x = rng.normal(size=(40, 70)).astype(np.float32)
    rows = rng.permutation(40)[:13]
    assert np.array_equal(to_neuron_major(x, rows), x[rows].T)
    logits = rng.normal(size=(5, 13)).astype(np.float32) * 3
    y = rng.integers(0, 5, 13)
    loss, grad, correct = softmax_cross_entropy(logits, y)
    p = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    assert loss == pytest.approx(-np.mean(np.log(p[y, np.arange(13)])), rel=1e-5)
    expected = p.copy()
    expected[y, np.arange(13)] -= 1
    np.testing.assert_allclose(grad, expected / 13, rtol=1e-5, atol=1e-7)
    assert correct == int((logits.argmax(0) == y).sum())


def test_dropout_mask_is_deterministic_scaled_and_at_rate():
    m1 = dropout_mask(500, 128, 0.3, 42)
    assert np.array_equal(m1, dropout_mask(500, 128, 0.3, 42))
    assert not np.array_equal(m1, dropout_mask(500, 128, 0.3, 43))
    assert set(np.unique(m1)) == {0.0, np.float32(1 / 0.7)}
    assert (m1 == 0).mean() == pytest.approx(0.3, abs=0.01)


def test_sgd_momentum_update_matches_formula(rng):
    w = rng.normal(size=100).astype(np.float32)
    v = rng.normal(size=100).astype(np.float32)
    g = rng.normal(size=100).astype(np.float32)
    v_ref = 0.9 * v - 0.1 * (g + 0.01 * w)
    w_ref = w + v_ref
    K.sgd_momentum_update(w, v, g, 0.1, 0.9, 0.01)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
