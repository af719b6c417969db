"""Hidden-layer activations: ReLU, LeakyReLU, All-ReLU and SReLU.

Each activation acts on neuron-major arrays ``(n_neurons, batch)``.  Activations with
learnable parameters (SReLU) hold them, their gradients and momentum, and shrink with the
layer when neurons are pruned.
"""

from __future__ import annotations

import numpy as np

from .components import COMPONENTS, register


class LeakyFamily:
    """``f(z) = z`` for ``z > 0`` and ``slope * z`` otherwise (ReLU is slope 0).

    It has no kernels of its own: the layer kernels apply it on the fly (fused), which
    saves two passes over every hidden activation per batch.
    """

    has_params = False

    def __init__(self, slope: float) -> None:
        self.slope = float(slope)

    @property
    def sign_preserving(self) -> bool:
        """With a slope >= 0, ``f(z) > 0`` exactly where ``z > 0``: the backward pass can
        take the derivative from the activation (and dropout's zeros are masked anyway),
        so the pre-activation need not be stored."""
        return self.slope >= 0

    def keep(self, keep: np.ndarray) -> None:
        """Nothing per neuron to shrink."""


class SReLU:
    """S-shaped ReLU, four learnable parameters per neuron: ``t_l, a_l, t_r, a_r``.

    Initialised as ``t_l=0, a_l=0.2, t_r=1, a_r=1``: a leaky ReLU at the start of
    training that learns where and how to bend.
    """

    has_params = True
    names = ("t_l", "a_l", "t_r", "a_r")

    def __init__(self, n: int) -> None:
        self.params = {
            "t_l": np.zeros(n, dtype=np.float32),
            "a_l": np.full(n, 0.2, dtype=np.float32),
            "t_r": np.ones(n, dtype=np.float32),
            "a_r": np.ones(n, dtype=np.float32),
        }
        self.grads = {k: np.zeros(n, dtype=np.float32) for k in self.names}
        self.moms = {k: np.zeros(n, dtype=np.float32) for k in self.names}

    def forward(self, z: np.ndarray, a: np.ndarray) -> None:
        from . import kernels as K

        p = self.params
        K.srelu_forward(z, a, p["t_l"], p["a_l"], p["t_r"], p["a_r"])

    def backward(self, z: np.ndarray, da: np.ndarray, dz: np.ndarray,
                 accumulate: bool = False) -> None:
        """``dz`` from ``da``; parameter gradients into ``grads`` (added with ``accumulate``)."""
        from . import kernels as K

        p, g = self.params, self.grads
        K.srelu_backward(z, da, dz, p["t_l"], p["a_l"], p["t_r"], p["a_r"],
                         g["t_l"], g["a_l"], g["t_r"], g["a_r"], accumulate)

    def apply_update(self, lr: float, momentum: float) -> None:
        from . import kernels as K

        for k in self.names:
            K.sgd_momentum_update(self.params[k], self.moms[k], self.grads[k], lr, momentum, 0.0)

    def keep(self, keep: np.ndarray) -> None:
        for d in (self.params, self.grads, self.moms):
            for k in self.names:
                d[k] = d[k][keep].copy()


@register("activation", "relu", "max(0, z)")
def relu(hidden_index: int, n: int, alpha: float) -> LeakyFamily:
    return LeakyFamily(0.0)


@register("activation", "leaky_relu", "z, or alpha * z below zero")
def leaky_relu(hidden_index: int, n: int, alpha: float) -> LeakyFamily:
    return LeakyFamily(alpha)


@register("activation", "all_relu", "leaky with slope +alpha on odd and -alpha on even "
          "hidden layers")
def all_relu(hidden_index: int, n: int, alpha: float) -> LeakyFamily:
    """All-ReLU ("Truly Sparse Neural Networks at Scale"): the left slope alternates per
    hidden layer, ``+alpha`` on odd layers and ``-alpha`` on even layers."""
    return LeakyFamily(alpha if hidden_index % 2 == 1 else -alpha)


@register("activation", "srelu", "S-shaped ReLU with four learnable parameters per neuron")
def srelu(hidden_index: int, n: int, alpha: float) -> SReLU:
    return SReLU(n)


def make_activation(name: str, hidden_index: int, n: int, alpha: float) -> LeakyFamily | SReLU:
    """Activation ``name`` of hidden layer ``hidden_index`` (1-based) with ``n`` neurons."""
    return COMPONENTS.get("activation", name)(hidden_index, n, alpha)
