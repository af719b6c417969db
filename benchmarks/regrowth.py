"""Gradient regrowth: the sampled-candidate variant measured against the exact top-k.

    python benchmarks/regrowth.py [--batch 128] [--epsilon 20] [--zeta 0.3]

On layers small enough for the exact block-wise top-k, for several candidate factors
(candidates scored per regrown connection), reports the overlap of the chosen positions
with the exact choice, the share of the exact choice's gradient mass (sum of |g|) that the
sampled choice captures, and both times (medians of 3).  One JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aac_sparse.engine.densities import er_density, layer_nnz  # noqa: E402
from aac_sparse.engine.layers import SparseLayer  # noqa: E402
from aac_sparse.engine.model import GradientSignals  # noqa: E402
from aac_sparse.engine.regrowth import gradient_regrow, sampled_gradient_regrow  # noqa: E402

SHAPES = [(784, 1000), (1000, 1000), (12625, 1000)]
FACTORS = [2, 5, 10, 50]


def median_time(fn, *args, repeats: int = 3):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def gradient_mass(keys: np.ndarray, n_in: int, sig: GradientSignals) -> float:
    j, i = keys // n_in, keys % n_in
    return float(np.abs((sig.dz[j].astype(np.float64) * sig.x[i]).sum(axis=1)).sum())


def bench_shape(n_in: int, n_out: int, batch: int, epsilon: float, zeta: float,
                rng: np.random.Generator) -> None:
    nnz = layer_nnz(er_density(epsilon, n_in, n_out), n_in, n_out)
    layer = SparseLayer.random(rng, n_in, n_out, nnz, "he_uniform")
    # activations like a ReLU layer's (many zeros) and gradients of mixed sign
    x = np.maximum(rng.standard_normal((n_in, batch), dtype=np.float32), 0)
    dz = rng.standard_normal((n_out, batch), dtype=np.float32) / batch
    sig = GradientSignals(x, dz)
    kept = np.sort(rng.choice(layer.keys(), size=int(nnz * (1 - zeta)), replace=False))
    k = nnz - kept.shape[0]
    gradient_regrow(layer, kept, k, rng, sig)  # compile
    t_exact, exact = median_time(gradient_regrow, layer, kept, k, rng, sig)
    exact_mass = gradient_mass(exact, n_in, sig)
    for factor in FACTORS:
        t_s, picked = median_time(sampled_gradient_regrow, layer, kept, k, rng, sig, factor)
        print(json.dumps({
            "layer": f"{n_in}x{n_out}", "nnz": nnz, "regrown": k, "candidates": factor,
            "overlap": round(float(np.isin(picked, exact).mean()), 4),
            "expected_overlap_m_over_free": round(factor * k / (n_in * n_out - len(kept)), 4),
            "gradient_mass_share": round(gradient_mass(picked, n_in, sig) / exact_mass, 4),
            "exact_s": round(t_exact, 4), "sampled_s": round(t_s, 4),
        }), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epsilon", type=float, default=20.0)
    ap.add_argument("--zeta", type=float, default=0.3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n_in, n_out in SHAPES:
        bench_shape(n_in, n_out, args.batch, args.epsilon, args.zeta, rng)


if __name__ == "__main__":
    main()
