"""A dense, masked numpy MLP: the independent reference for the sparse engine.

It stores every layer as a dense ``(n_in, n_out)`` matrix with a 0/1 mask, works
batch-major with BLAS matrix products, and is written without any of the sparse
engine's kernels.  Tests compare the sparse engine against it; the engine benchmark uses
it as the "dense masks" baseline that most sparse-training code really runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _leaky(z: np.ndarray, slope: float) -> np.ndarray:
    return np.where(z > 0, z, slope * z)


def _leaky_prime(z: np.ndarray, slope: float) -> np.ndarray:
    return np.where(z > 0, 1.0, slope).astype(z.dtype)


class DenseMaskedMLP:
    """Dense weights times a fixed mask; activations given as slopes or SReLU params."""

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
        activations: Sequence[dict],
        dtype=np.float32,
    ) -> None:
        self.W = [np.asarray(w, dtype=dtype) * m for w, m in zip(weights, masks, strict=True)]
        self.M = [np.asarray(m, dtype=dtype) for m in masks]
        self.b = [np.asarray(b, dtype=dtype).copy() for b in biases]
        self.act = [{k: (np.asarray(v, dtype=dtype).copy() if k != "kind" else v)
                     for k, v in a.items()} for a in activations]
        self.VW = [np.zeros_like(w) for w in self.W]
        self.Vb = [np.zeros_like(b) for b in self.b]

    @classmethod
    def from_sparse(cls, model, dtype=np.float32) -> DenseMaskedMLP:
        """Dense copy of a :class:`~aac_sparse.engine.model.SparseMLP` (small models)."""
        weights, masks = [], []
        for layer in model.layers:
            dense = layer.to_dense().T  # (n_in, n_out)
            mask = np.zeros_like(dense)
            mask[layer.indices, layer.rows()] = 1.0
            weights.append(dense)
            masks.append(mask)
        acts = []
        for a in model.activations:
            if a.has_params:
                acts.append({"kind": "srelu", **{k: v.copy() for k, v in a.params.items()}})
            else:
                acts.append({"kind": "leaky", "slope": a.slope})
        return cls(weights, masks, [layer.bias for layer in model.layers], acts, dtype)

    def _f(self, h: int, z: np.ndarray) -> np.ndarray:
        a = self.act[h]
        if a["kind"] == "leaky":
            return _leaky(z, a["slope"])
        tl, al, tr, ar = a["t_l"], a["a_l"], a["t_r"], a["a_r"]
        return np.where(z >= tr, tr + ar * (z - tr), np.where(z <= tl, tl + al * (z - tl), z))

    def forward(self, x: np.ndarray, dropout_masks: Sequence[np.ndarray] | None = None):
        """Batch-major forward; returns logits and the cache for :meth:`backward`."""
        zs, inputs = [], [x]
        for li, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = inputs[-1] @ w + b
            zs.append(z)
            if li < len(self.W) - 1:
                a = self._f(li, z)
                if dropout_masks is not None:
                    a = a * dropout_masks[li]
                inputs.append(a)
        return zs[-1], (zs, inputs, dropout_masks)

    @staticmethod
    def loss_grad(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(-np.mean(np.log(p[rows, y])))
        g = p.copy()
        g[rows, y] -= 1.0
        return loss, g / len(y)

    def backward(self, dlogits: np.ndarray, cache, input_grad: bool = True) -> dict:
        """Gradients: ``W`` (masked), ``b``, SReLU params per hidden layer, and ``x``."""
        zs, inputs, dmasks = cache
        grads: dict = {"W": [None] * len(self.W), "b": [None] * len(self.W),
                       "act": [None] * len(self.act)}
        dz = dlogits
        for li in range(len(self.W) - 1, -1, -1):
            grads["W"][li] = (inputs[li].T @ dz) * self.M[li]
            grads["b"][li] = dz.sum(axis=0)
            if li == 0:
                if input_grad:
                    grads["x"] = dz @ self.W[0].T
                break
            da = dz @ self.W[li].T
            if dmasks is not None:
                da = da * dmasks[li - 1]
            z = zs[li - 1]
            a = self.act[li - 1]
            if a["kind"] == "leaky":
                dz = da * _leaky_prime(z, a["slope"])
            else:
                tl, al, tr, ar = a["t_l"], a["a_l"], a["t_r"], a["a_r"]
                right, left = z >= tr, (z <= tl) & ~(z >= tr)
                mid = ~(right | left)
                dz = da * (right * ar + left * al + mid)
                grads["act"][li - 1] = {
                    "t_l": (da * left * (1 - al)).sum(axis=0),
                    "a_l": (da * left * (z - tl)).sum(axis=0),
                    "t_r": (da * right * (1 - ar)).sum(axis=0),
                    "a_r": (da * right * (z - tr)).sum(axis=0),
                }
        return grads

    def train_batch(self, x, y, lr: float, momentum: float, weight_decay: float) -> float:
        """One masked SGD-with-momentum step, as dense-mask sparse training does it."""
        logits, cache = self.forward(x)
        loss, g = self.loss_grad(logits, y)
        grads = self.backward(g, cache, input_grad=False)
        for li in range(len(self.W)):
            self.VW[li] *= momentum
            self.VW[li] -= lr * (grads["W"][li] + weight_decay * self.W[li])
            self.VW[li] *= self.M[li]
            self.W[li] += self.VW[li]
            self.Vb[li] = momentum * self.Vb[li] - lr * grads["b"][li]
            self.b[li] += self.Vb[li]
        return loss
