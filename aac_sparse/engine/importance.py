"""Importance Pruning of hidden neurons (Curci, Mocanu, Pechenizkiy 2021).

A neuron's importance is its *strength*, the sum of the absolute values of its incoming
weights.  Neurons whose strength is below the given percentile of their layer are
removed with all incoming and outgoing connections, so the layer really shrinks.
"""

from __future__ import annotations

import numpy as np

from .kernels import row_abs_sums
from .model import SparseMLP


def neuron_strength(layer) -> np.ndarray:
    """Sum of |incoming weights| of every output neuron of ``layer``."""
    out = np.empty(layer.n_out, dtype=np.float32)
    row_abs_sums(layer.indptr, layer.w, out)
    return out


def importance_prune(model: SparseMLP, percentile: float) -> list[int]:
    """Remove, per hidden layer, the neurons with strength below ``percentile`` (0-100).

    Strengths of all hidden layers are measured before any neuron goes (removing a neuron
    also removes incoming connections of the next layer), so the outcome does not depend
    on the order in which layers are pruned.

    At least one neuron per layer always survives.  Returns the number removed per layer.
    """
    strengths = [neuron_strength(layer) for layer in model.layers[:-1]]
    removed = []
    for h, strength in enumerate(strengths):
        threshold = np.percentile(strength, percentile)
        keep = strength >= threshold
        if not keep.any():
            keep[int(np.argmax(strength))] = True
        removed.append(model.remove_hidden_neurons(h, keep))
    return removed
