"""Fully connected layers in a fixed sparse structure, with in-place parameters and state.

A layer works on neuron-major activations ``(n_neurons, batch)``.  Where the papers use a
dense layer (the density would reach 1), the same structure holds every connection: on
the sizes where that happens (small output layers) the sparse kernels are faster than
single-threaded BLAS, and the model needs only one kind of layer.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .initialisation import init_weights
from .topology import random_keys

NO_ROWS = np.empty((0, 0), dtype=np.float32)  # "no such array" for the fused kernels
NO_BIAS = np.empty(0, dtype=np.float32)


class SparseLayer:
    """A layer whose connections live in a fixed CSR structure between topology changes.

    ``w`` (weights), ``v`` (momentum) and ``grad`` are float32 arrays aligned with the
    structure; they are updated in place.  The structure itself only changes through
    :meth:`set_structure` (topology evolution, neuron removal).
    """

    def __init__(
        self, n_in: int, n_out: int, keys: np.ndarray, weights: np.ndarray, dense: bool = False
    ) -> None:
        self.dense = bool(dense)  # full connectivity: never evolved
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.bias = np.zeros(self.n_out, dtype=np.float32)
        self.v_bias = np.zeros(self.n_out, dtype=np.float32)
        self.grad_bias = np.zeros(self.n_out, dtype=np.float32)
        self.set_structure(keys, weights, np.zeros(keys.shape[0], dtype=np.float32))

    @classmethod
    def random(
        cls, rng: np.random.Generator, n_in: int, n_out: int, nnz: int, weight_init: str
    ) -> SparseLayer:
        """Erdős–Rényi random structure of exactly ``nnz`` connections."""
        keys = random_keys(rng, n_in, n_out, nnz)
        return cls(n_in, n_out, keys, init_weights(rng, weight_init, n_in, n_out, nnz))

    @classmethod
    def full(cls, rng: np.random.Generator, n_in: int, n_out: int, weight_init: str) -> SparseLayer:
        """Every connection present (a dense layer); only for layers that are small."""
        nnz = n_in * n_out
        keys = np.arange(nnz, dtype=np.int64)
        return cls(n_in, n_out, keys, init_weights(rng, weight_init, n_in, n_out, nnz), True)

    # -- structure -------------------------------------------------------------------
    def set_structure(self, keys: np.ndarray, w: np.ndarray, v: np.ndarray) -> None:
        """Install a new sorted key set with aligned weights and momentum; rebuild indices."""
        self.indptr, self.indices = K.keys_to_csr(keys, self.n_in, self.n_out)
        self.w = np.ascontiguousarray(w, dtype=np.float32)
        self.v = np.ascontiguousarray(v, dtype=np.float32)
        self.grad = np.zeros_like(self.w)
        self.t_indptr, self.t_cols, self.t_pos = K.build_transpose(
            self.indptr, self.indices, self.n_in
        )

    def keys(self) -> np.ndarray:
        """Sorted flat keys ``j * n_in + i`` of the current connections."""
        return K.csr_to_keys(self.indptr, self.indices, self.n_in)

    def rows(self) -> np.ndarray:
        """Output neuron of every connection (CSR order)."""
        return np.repeat(np.arange(self.n_out, dtype=np.int32), np.diff(self.indptr))

    @property
    def nnz(self) -> int:
        return int(self.w.shape[0])

    @property
    def n_params(self) -> int:
        return self.nnz + self.n_out

    def to_dense(self) -> np.ndarray:
        """Dense ``(n_out, n_in)`` copy, for tests and small models only."""
        dense = np.zeros((self.n_out, self.n_in), dtype=np.float32)
        dense[self.rows(), self.indices] = self.w
        return dense

    # -- compute ---------------------------------------------------------------------
    def forward(
        self, x: np.ndarray, z: np.ndarray, a: np.ndarray = NO_ROWS,
        slope: float = 0.0, rate: float = 0.0, seed: int = 0, cols: tuple[int, int] | None = None,
    ) -> None:
        """``z = W x + b``; with ``a`` also the leaky activation and dropout of ``z``.

        ``cols = (col0, stride)``: ``x`` holds columns ``col0 ..`` of a mini-batch of
        ``stride`` columns (a micro-batch), whose dropout mask it takes its part of."""
        col0, stride = cols or (0, x.shape[1])
        K.spmm_forward(self.indptr, self.indices, self.w, self.bias, x, z, a, slope, rate, seed,
                       col0, stride)

    def backward(
        self, x: np.ndarray, dz: np.ndarray, dx: np.ndarray | None = None,
        z_prev: np.ndarray = NO_ROWS, slope: float = 0.0, rate: float = 0.0, seed: int = 0,
        cols: tuple[int, int] | None = None, accumulate: bool = False,
        bias_prev: np.ndarray | None = None, bias_known: bool = False,
    ) -> None:
        """Weight and bias gradients into ``grad``/``grad_bias`` (added to them with
        ``accumulate``); ``dx`` if one is given.

        With ``z_prev`` the input gradient is carried through the previous layer's dropout
        and leaky activation, so ``dx`` receives that layer's ``dz``; ``cols`` as in
        :meth:`forward`.  ``bias_prev`` (with ``z_prev``) receives that ``dz``'s row sums,
        the previous layer's bias gradient, in the same sweep; ``bias_known``: this
        layer's own was computed so by the next layer.
        """
        if dx is None:
            K.sddmm(self.indptr, self.indices, x, dz, self.grad, accumulate)
        else:
            col0, stride = cols or (0, x.shape[1])
            K.backward_fused(self.t_indptr, self.t_cols, self.t_pos, self.w, x, dz, dx,
                             self.grad, z_prev, slope, rate, seed, col0, stride, accumulate,
                             NO_BIAS if bias_prev is None else bias_prev)
        if not bias_known:
            K.row_sums(dz, self.grad_bias, accumulate)

    def apply_update(self, lr: float, momentum: float, weight_decay: float) -> None:
        K.sgd_momentum_update(self.w, self.v, self.grad, lr, momentum, weight_decay)
        K.sgd_momentum_update(self.bias, self.v_bias, self.grad_bias, lr, momentum, 0.0)

    # -- neuron removal --------------------------------------------------------------
    def keep_outputs(self, keep: np.ndarray) -> None:
        """Drop output neurons not in the boolean ``keep`` with all their connections."""
        rows = self.rows()
        sel = keep[rows]
        new_index = np.cumsum(keep, dtype=np.int64) - 1
        keys = new_index[rows[sel]] * self.n_in + self.indices[sel]
        self.n_out = int(keep.sum())
        self.bias, self.v_bias = self.bias[keep].copy(), self.v_bias[keep].copy()
        self.grad_bias = np.zeros(self.n_out, dtype=np.float32)
        self.set_structure(keys, self.w[sel], self.v[sel])

    def keep_inputs(self, keep: np.ndarray) -> None:
        """Drop input neurons not in ``keep`` with their outgoing connections; renumber."""
        rows = self.rows()
        sel = keep[self.indices]
        new_index = np.cumsum(keep, dtype=np.int64) - 1
        n_in = int(keep.sum())
        keys = rows[sel].astype(np.int64) * n_in + new_index[self.indices[sel]]
        self.n_in = n_in
        self.set_structure(keys, self.w[sel], self.v[sel])


