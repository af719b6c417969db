"""Engine benchmark: truly sparse training vs. a dense masked baseline, in one process.

    python benchmarks/engine.py --shape fashion-mnist --json
    python benchmarks/engine.py --shape leukemia --epochs 3 --json
    python benchmarks/engine.py --scaling          # time per batch against nnz

Shapes (synthetic data of the real sizes, batch 128):
  fashion-mnist  784-1000-1000-1000-10, epsilon 20, 60000 samples
  leukemia       54675-27500-27500-18,  epsilon 10, 2000 samples (no dense baseline:
                 the memory it would need is reported instead)

Times are medians over ``--epochs`` epochs.  The dense baseline is what most sparse
training code runs: dense float32 weights multiplied by a 0/1 mask, BLAS matrix products,
masked SGD with momentum; same layer sizes, same mask, same batch size.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aac_sparse.engine.config import TrainConfig  # noqa: E402
from aac_sparse.engine.dense_reference import DenseMaskedMLP  # noqa: E402
from aac_sparse.engine.densities import layer_densities  # noqa: E402
from aac_sparse.engine.evolution import evolve_model  # noqa: E402
from aac_sparse.engine.model import SparseMLP  # noqa: E402

SHAPES = {
    "fashion-mnist": dict(sizes=[784, 1000, 1000, 1000, 10], epsilon=20, samples=60000),
    "leukemia": dict(sizes=[54675, 27500, 27500, 18], epsilon=10, samples=2000),
}
BATCH = 128
LR, MOMENTUM, WD = 0.01, 0.9, 0.0002


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d), dtype=np.float32), rng.integers(0, k, n)


def warm_up() -> None:
    """Compile (or load from cache) every kernel on a tiny model, outside the timings."""
    rng = np.random.default_rng(0)
    model = SparseMLP.build([20, 30, 30, 3], [0.3, 0.3, 1.0], rng, dropout=0.3)
    x, y = synthetic(40, 20, 3)
    for _ in range(2):
        model.train_batch(x, y, np.arange(40), LR, MOMENTUM, WD, rng)
    evolve_model(model, TrainConfig(hidden=[30, 30]), rng)
    model.evaluate(x, y)


def sparse_epoch(model: SparseMLP, x, y, rng, max_batches: int | None = None) -> float:
    order = rng.permutation(len(y))
    starts = range(0, len(y), BATCH)
    if max_batches is not None:
        starts = starts[:max_batches]
    t0 = time.perf_counter()
    for s in starts:
        model.train_batch(x, y, order[s:s + BATCH], LR, MOMENTUM, WD, rng)
    return time.perf_counter() - t0


def dense_epoch(dense: DenseMaskedMLP, x, y, rng) -> float:
    order = rng.permutation(len(y))
    t0 = time.perf_counter()
    for s in range(0, len(y), BATCH):
        idx = order[s:s + BATCH]
        dense.train_batch(x[idx], y[idx], LR, MOMENTUM, WD)
    return time.perf_counter() - t0


def dense_bytes(sizes: list[int]) -> int:
    """Weights, mask, momentum and gradient of a dense masked net, float32."""
    return 4 * 4 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def run_shape(name: str, epochs: int, dropout: float) -> dict:
    spec = SHAPES[name]
    sizes = spec["sizes"]
    warm_up()
    x, y = synthetic(spec["samples"], sizes[0], sizes[-1])
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    model = SparseMLP.build(sizes, layer_densities(sizes, "er", spec["epsilon"]), rng,
                            dropout=dropout)
    init_s = time.perf_counter() - t0
    cfg = TrainConfig(hidden=sizes[1:-1], zeta=0.3)
    epoch_times, evo_times = [], []
    for _ in range(epochs):
        epoch_times.append(sparse_epoch(model, x, y, rng))
        t0 = time.perf_counter()
        evolve_model(model, cfg, rng)
        evo_times.append(time.perf_counter() - t0)
    sparse_s = statistics.median(epoch_times)
    rss = peak_rss_mb()
    flops = model.flops_per_sample(training=True) * spec["samples"]
    out = {
        "shape": name,
        "sizes": sizes,
        "epsilon": spec["epsilon"],
        "samples": spec["samples"],
        "batch": BATCH,
        "dropout": dropout,
        "nnz": model.nnz,
        "layer_nnz": [layer.nnz for layer in model.layers],
        "epochs_timed": epochs,
        "sparse_epoch_s": sparse_s,
        "sparse_epoch_s_all": epoch_times,
        "evolution_s": statistics.median(evo_times),
        "init_s": init_s,
        "peak_rss_mb": rss,
        "gflops": flops / sparse_s / 1e9,
        "dense_epoch_s": None,
        "speedup": None,
        "dense_memory_gb": dense_bytes(sizes) / 1e9,
    }
    if name == "fashion-mnist":
        dense = DenseMaskedMLP.from_sparse(model)
        dense_times = [dense_epoch(dense, x, y, rng) for _ in range(epochs)]
        out["dense_epoch_s"] = statistics.median(dense_times)
        out["dense_epoch_s_all"] = dense_times
        out["speedup"] = out["dense_epoch_s"] / sparse_s
        out["peak_rss_mb_with_dense"] = peak_rss_mb()
    return out


def scaling(batches: int) -> list[dict]:
    """Seconds per batch of the fashion-mnist shape at several epsilons (several nnz)."""
    warm_up()
    sizes = SHAPES["fashion-mnist"]["sizes"]
    x, y = synthetic(BATCH * batches, sizes[0], sizes[-1])
    rows = []
    for eps in (5, 10, 20, 40, 80):
        rng = np.random.default_rng(0)
        model = SparseMLP.build(sizes, layer_densities(sizes, "er", eps), rng, dropout=0.3)
        times = [sparse_epoch(model, x, y, rng) / batches for _ in range(3)]
        t = statistics.median(times)
        rows.append({"epsilon": eps, "nnz": model.nnz, "ms_per_batch": t * 1e3,
                     "ns_per_connection_per_sample": t / model.nnz / BATCH * 1e9})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed (median reported)")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument("--scaling", action="store_true", help="time per batch against nnz")
    args = ap.parse_args()
    if args.scaling:
        rows = scaling(100)
        if args.json:
            print(json.dumps({"scaling": rows}))
        else:
            print(f"{'epsilon':>8} {'nnz':>9} {'ms/batch':>9} {'ns/conn/sample':>15}")
            for r in rows:
                print(f"{r['epsilon']:>8} {r['nnz']:>9} {r['ms_per_batch']:>9.2f} "
                      f"{r['ns_per_connection_per_sample']:>15.3f}")
        return
    result = run_shape(args.shape, args.epochs, args.dropout)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
