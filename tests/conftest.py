"""Shared helpers: small random sparse models and their dense references."""

from __future__ import annotations

import numpy as np
import pytest

from aac_sparse.engine.densities import layer_densities
from aac_sparse.engine.model import SparseMLP


def make_model(sizes, activation="relu", epsilon=3.0, seed=0, dropout=0.0, alpha=0.3):
    """A small random SparseMLP; SReLU parameters are spread out so every branch is hit."""
    rng = np.random.default_rng(seed)
    model = SparseMLP.build(sizes, layer_densities(sizes, "er", epsilon), rng,
                            activation=activation, alpha=alpha, dropout=dropout)
    for layer in model.layers:
        layer.bias[:] = rng.normal(0, 0.1, layer.n_out)
    if activation == "srelu":
        for act in model.activations:
            n = len(act.params["t_l"])
            act.params["t_l"][:] = rng.normal(-0.3, 0.2, n)
            act.params["a_l"][:] = rng.uniform(0.05, 0.5, n)
            act.params["t_r"][:] = rng.normal(0.5, 0.2, n)
            act.params["a_r"][:] = rng.uniform(0.3, 1.5, n)
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
