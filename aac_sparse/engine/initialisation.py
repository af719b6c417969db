"""Initial weights: of a new network (``weight_init``) and of regrown connections
(``regrow_init``), as registered components."""

from __future__ import annotations

import numpy as np

from .components import COMPONENTS, register


@register("weight_init", "he_uniform", "U(+-sqrt(6 / n_in))")
def he_uniform(rng: np.random.Generator, n_in: int, n_out: int, size: int) -> np.ndarray:
    limit = np.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, size).astype(np.float32)


@register("weight_init", "xavier", "U(+-sqrt(6 / (n_in + n_out)))")
def xavier(rng: np.random.Generator, n_in: int, n_out: int, size: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size).astype(np.float32)


@register("weight_init", "normal", "N(0, 0.1^2)")
def normal(rng: np.random.Generator, n_in: int, n_out: int, size: int) -> np.ndarray:
    return (rng.standard_normal(size, dtype=np.float32) * np.float32(0.1)).astype(np.float32)


def init_weights(
    rng: np.random.Generator, scheme: str, n_in: int, n_out: int, size: int
) -> np.ndarray:
    """``size`` float32 initial weights for a layer ``n_in -> n_out`` by the registered
    ``scheme`` (fan-in and fan-out of the dense layer, as in the SET code)."""
    return COMPONENTS.get("weight_init", scheme)(rng, n_in, n_out, size)


@register("regrow_init", "random", "new weights drawn like the initial weights")
def like_initial(rng: np.random.Generator, weight_init: str, n_in: int, n_out: int,
                 count: int) -> np.ndarray:
    return init_weights(rng, weight_init, n_in, n_out, count)


@register("regrow_init", "zero", "new weights start at zero (RigL)")
def zero(rng: np.random.Generator, weight_init: str, n_in: int, n_out: int,
         count: int) -> np.ndarray:
    return np.zeros(count, dtype=np.float32)
