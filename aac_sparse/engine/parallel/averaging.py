"""Sparse weight averaging of models whose topologies may differ (WASAP-SGD's phase 2).

Seed 004 (§2.3, eq. 2): after phase 2 each worker's sparse model has evolved its own
topology, so their average lives on the *union* of the structures (a connection a worker
lacks counts as a zero weight there) and is denser than the target; the connections of
smallest magnitude (the largest negative and smallest positive weights) are then pruned
until each layer is back at its target number of connections.  Everything is O(k nnz).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import kernels as K


def _layer_count(arrays: dict) -> int:
    return len(arrays["sizes"]) - 1


def target_nnz(arrays: dict) -> list[int]:
    """Connections per layer of a model given as :func:`~..model.model_arrays`."""
    return [int(arrays[f"layer{li}_w"].shape[0]) for li in range(_layer_count(arrays))]


def average_models(models: Sequence[dict], weights: Sequence[float] | None = None,
                   target: Sequence[int] | None = None) -> dict:
    """The weighted mean of ``models`` (model arrays of one architecture) on the union of
    their structures, each layer pruned back by magnitude to ``target[layer]`` connections
    (none pruned where ``target`` is None)."""
    if not models:
        raise ValueError("nothing to average")
    first = models[0]
    sizes = [int(s) for s in first["sizes"]]
    for m in models[1:]:
        if [int(s) for s in m["sizes"]] != sizes:
            raise ValueError(f"cannot average models of sizes {sizes} and {list(m['sizes'])}")
    coef = np.full(len(models), 1.0 / len(models)) if weights is None else np.asarray(weights)
    out: dict = {k: v for k, v in first.items()
                 if k.startswith("hidden") or k in ("sizes", "dropout") or k.endswith("_dense")
                 or k.endswith("_slope")}
    for li in range(len(sizes) - 1):
        n_in, n_out = sizes[li], sizes[li + 1]
        keys = np.concatenate([K.csr_to_keys(m[f"layer{li}_indptr"], m[f"layer{li}_indices"],
                                             n_in) for m in models])
        w = np.concatenate([np.asarray(m[f"layer{li}_w"], np.float64) * c
                            for m, c in zip(models, coef, strict=True)])
        union, inverse = np.unique(keys, return_inverse=True)
        mean = np.bincount(inverse, weights=w, minlength=union.shape[0])
        if target is not None and union.shape[0] > target[li]:
            keep = np.sort(np.argpartition(-np.abs(mean), target[li] - 1)[:target[li]])
            union, mean = union[keep], mean[keep]
        out[f"layer{li}_indptr"], out[f"layer{li}_indices"] = K.keys_to_csr(
            np.ascontiguousarray(union, dtype=np.int64), n_in, n_out)
        out[f"layer{li}_w"] = mean.astype(np.float32)
        out[f"layer{li}_bias"] = sum(np.asarray(m[f"layer{li}_bias"], np.float64) * c
                                     for m, c in zip(models, coef, strict=True)
                                     ).astype(np.float32)
    for key in first:
        if key.startswith("act") and not key.endswith("_slope") and not key.endswith("_mom"):
            out[key] = sum(np.asarray(m[key], np.float64) * c
                           for m, c in zip(models, coef, strict=True)).astype(np.float32)
    return out


def running_mean(mean: dict | None, count: int, new: dict, target: Sequence[int]) -> dict:
    """Fold ``new`` into the mean of ``count`` earlier averages (stochastic weight
    averaging over the syncs), pruned back to ``target``."""
    if mean is None or count == 0:
        return average_models([new], target=target)
    return average_models([mean, new], [count / (count + 1), 1 / (count + 1)], target)
