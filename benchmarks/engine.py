"""Engine benchmark: truly sparse training against this machine's own limits, in one run.

    python benchmarks/engine.py --shape fashion-mnist --baseline torch --json
    python benchmarks/engine.py --shape leukemia --epochs 1 --json
    python benchmarks/engine.py --shape scale-10m --batches 3 --json
    python benchmarks/engine.py --shape scale-50m --compare HEAD~5 --compare-batch 16
    python benchmarks/engine.py --scaling          # time per batch against nnz

Shapes (synthetic data of the real sizes; batch 128 unless --batch):
  fashion-mnist  784-1000-1000-1000-10,  epsilon 20, 60000 samples (whole epochs)
  leukemia       54675-27500-27500-18,   epsilon 10, 2000 samples (whole epochs)
  scale-1m       65536-500k-500k-2,      epsilon 10, 7000 samples  \\ seed 004's extremely
  scale-10m      65536-5M-5M-2,          epsilon 5,  7000 samples   > large models: a fixed
  scale-50m      65536-5M x 10-2,        epsilon 1,  7000 samples  /  number of batches is
                                                                      timed, the epoch is
                                                                      extrapolated (said so)
Every result carries, measured in the same run: ``sgemm_gflops`` (numpy float32 2048^2
matrix product, the machine's dense peak), ``copy_gbs`` (a two-thread array copy, read +
write), ``gather_gbs`` (two threads summing random rows of micro-batch width from an
array as tall as the widest layer, up to 1 GiB: the access pattern of the sparse
sweeps), ``efficiency`` (useful GFLOP/s / sgemm GFLOP/s), ns per connection-sample and per
neuron-sample, the bytes the sparse sweeps must move at least (``min_bytes_per_sample``)
and their rate against the copy and the gather bandwidth, and ``peak_rss_mb``.

``--baseline torch`` adds PyTorch masked dense layers (same shape, mask, batch, SGD with
momentum and dropout; ``torch_epoch_s``) where torch is importable and the dense layers fit
in memory.  ``--compare REV`` runs this same benchmark on git revision ``REV`` (a temporary
worktree) right after, for before/after ratios on a noisy machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("AAC_SPARSE_BENCH_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(ROOT))

from numba import njit, prange  # noqa: E402

from aac_sparse.engine.config import TrainConfig  # noqa: E402
from aac_sparse.engine.dense_reference import DenseMaskedMLP  # noqa: E402
from aac_sparse.engine.densities import layer_densities  # noqa: E402
from aac_sparse.engine.evolution import evolve_model  # noqa: E402
from aac_sparse.engine.model import SparseMLP  # noqa: E402

_WIDE = 65536
SHAPES = {
    "fashion-mnist": dict(sizes=[784, 1000, 1000, 1000, 10], epsilon=20, samples=60000),
    "leukemia": dict(sizes=[54675, 27500, 27500, 18], epsilon=10, samples=2000),
    "scale-1m": dict(sizes=[_WIDE, 500_000, 500_000, 2], epsilon=10, samples=7000,
                     timed=True),
    "scale-10m": dict(sizes=[_WIDE, 5_000_000, 5_000_000, 2], epsilon=5, samples=7000,
                      timed=True),
    "scale-50m": dict(sizes=[_WIDE, *[5_000_000] * 10, 2], epsilon=1, samples=7000,
                      timed=True),
}
BATCH = 128
LR, MOMENTUM, WD = 0.01, 0.9, 0.0002


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it does not
    inherit the parent's peak across fork and exec, which matters for --compare)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------- machine limits

def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 ``n x n`` matrix product rate: the machine's dense peak here."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


@njit(parallel=True, cache=True)
def _copy(src, dst):  # pragma: no cover - compiled
    n = src.shape[0]
    chunk = 1 << 16
    for c in prange((n + chunk - 1) // chunk):
        lo = c * chunk
        hi = min(lo + chunk, n)
        for k in range(lo, hi):
            dst[k] = src[k]


def copy_gbs(n_bytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Best-of rate of a two-thread float32 copy, counting bytes read and written."""
    src = np.ones(n_bytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    _copy(src, dst)
    best = min(_timed(lambda: _copy(src, dst)) for _ in range(repeats))
    return 2 * n_bytes / best / 1e9


@njit(parallel=True, cache=True, fastmath=True)
def _gather(src, rows, out):  # pragma: no cover - compiled
    n = rows.shape[0]
    width = src.shape[1]
    per = (n + 1) // 2
    for c in prange(2):
        acc = np.zeros(width, dtype=np.float32)
        for k in range(c * per, min(n, (c + 1) * per)):
            r = rows[k]
            for t in range(width):
                acc[t] += src[r, t]
        out[c] = acc.sum()


def gather_gbs(n_rows: int, width: int, n_bytes_max: int = 2**30) -> float:
    """Rate of summing rows of ``width`` floats picked at random from an array of
    ``n_rows`` rows (capped at 1 GiB): the access pattern of a sparse layer's gathers, so
    the bound a wide layer can reach at best on this machine."""
    n_rows = max(1, min(n_rows, n_bytes_max // (4 * width)))
    src = np.ones((n_rows, width), dtype=np.float32)
    rows = np.random.default_rng(0).integers(0, n_rows, 4_000_000)
    out = np.zeros(2, dtype=np.float32)
    _gather(src, rows[:1000], out)
    best = min(_timed(lambda: _gather(src, rows, out)) for _ in range(3))
    return rows.shape[0] * width * 4 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------ engine

def synthetic(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal float32 rows, drawn in chunks (no float64 copy of the whole)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 256):
        x[s:s + 256] = rng.standard_normal((min(256, n - s), d), dtype=np.float32)
    return x, rng.integers(0, k, n)


def build(sizes, epsilon, rng, dropout, memory_mb: float | None) -> SparseMLP:
    kwargs = dict(dropout=dropout)
    if memory_mb is not None and "activation_memory" in inspect.signature(
            SparseMLP.build).parameters:  # older revisions (--compare) have no micro-batches
        kwargs["activation_memory"] = int(memory_mb * 2**20)
    return SparseMLP.build(sizes, layer_densities(sizes, "er", epsilon), rng, **kwargs)


def warm_up() -> None:
    """Compile (or load from cache) every kernel on a tiny model, outside the timings."""
    rng = np.random.default_rng(0)
    model = SparseMLP.build([20, 30, 30, 3], [0.3, 0.3, 1.0], rng, dropout=0.3)
    x, y = synthetic(40, 20, 3)
    for _ in range(2):
        model.train_batch(x, y, np.arange(40), LR, MOMENTUM, WD, rng)
    evolve_model(model, TrainConfig(hidden=[30, 30]), rng)
    model.evaluate(x, y)


def sparse_epoch(model: SparseMLP, x, y, rng, batch: int, max_batches: int | None = None
                 ) -> float:
    order = rng.permutation(len(y))
    starts = range(0, len(y), batch)
    if max_batches is not None:
        starts = starts[:max_batches]
    t0 = time.perf_counter()
    for s in starts:
        model.train_batch(x, y, order[s:s + batch], LR, MOMENTUM, WD, rng)
    return time.perf_counter() - t0


def dense_epoch(dense: DenseMaskedMLP, x, y, rng, batch: int) -> float:
    order = rng.permutation(len(y))
    t0 = time.perf_counter()
    for s in range(0, len(y), batch):
        idx = order[s:s + batch]
        dense.train_batch(x[idx], y[idx], LR, MOMENTUM, WD)
    return time.perf_counter() - t0


def dense_bytes(sizes: list[int]) -> int:
    """Weights, mask, momentum and gradient of a dense masked net, float32."""
    return 4 * 4 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def min_bytes_per_sample(model: SparseMLP) -> int:
    """Bytes a training sample must move at least if no gathered row stays in cache: per
    connection one input row element (forward) and one output-gradient element (fused
    backward), per hidden neuron z and a written and x, z and dx touched again backward."""
    hidden = sum(layer.n_out for layer in model.layers[:-1])
    return 4 * (2 * model.nnz + 5 * hidden)


# ------------------------------------------------------------------------ torch baseline

def torch_epoch(model: SparseMLP, x, y, batch: int, dropout: float, n_batches: int) -> float:
    """Seconds for ``n_batches`` of PyTorch masked dense training of ``model``'s shape."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    weights, masks, biases = [], [], []
    for layer in model.layers:
        mask = torch.zeros(layer.n_out, layer.n_in)
        mask[torch.from_numpy(layer.rows().astype(np.int64)),
             torch.from_numpy(layer.indices.astype(np.int64))] = 1.0
        weights.append(torch.tensor(layer.to_dense(), requires_grad=True))
        masks.append(mask)
        biases.append(torch.zeros(layer.n_out, requires_grad=True))
    opt = torch.optim.SGD([*weights, *biases], lr=LR, momentum=MOMENTUM, weight_decay=WD)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    order = torch.randperm(len(y))
    t0 = time.perf_counter()
    for b in range(n_batches):
        idx = order[(b * batch) % len(y):][:batch]
        h = xt[idx]
        for li, (w, m, bias) in enumerate(zip(weights, masks, biases, strict=True)):
            h = h @ (w * m).T + bias
            if li < len(weights) - 1:
                h = torch.nn.functional.dropout(torch.relu(h), dropout, training=True)
        loss = torch.nn.functional.cross_entropy(h, yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for w, m in zip(weights, masks, strict=True):
                w.mul_(m)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------- shapes

def run_shape(name: str, epochs: int, dropout: float, batch: int, batches: int,
              memory_mb: float | None, baseline: str | None) -> dict:
    spec = SHAPES[name]
    sizes, samples, timed = spec["sizes"], spec["samples"], spec.get("timed", False)
    sgemm, copy = sgemm_gflops(), copy_gbs()
    warm_up()
    n_data = batch * (batches + 1) if timed else samples  # timed shapes: only what is run
    x, y = synthetic(n_data, sizes[0], sizes[-1])
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    model = build(sizes, spec["epsilon"], rng, dropout, memory_mb)
    init_s = time.perf_counter() - t0
    cfg = TrainConfig(hidden=sizes[1:-1], zeta=0.3)
    batches_per_epoch = math.ceil(samples / batch)
    epoch_times, evo_times = [], []
    if timed:
        sparse_epoch(model, x, y, rng, batch, max_batches=1)  # first touch of the buffers
        per_batch = sparse_epoch(model, x, y, rng, batch, max_batches=batches) / batches
        epoch_times = [per_batch * batches_per_epoch]
        t0 = time.perf_counter()
        evolve_model(model, cfg, rng)
        evo_times.append(time.perf_counter() - t0)
    else:
        for _ in range(epochs):
            epoch_times.append(sparse_epoch(model, x, y, rng, batch))
            t0 = time.perf_counter()
            evolve_model(model, cfg, rng)
            evo_times.append(time.perf_counter() - t0)
    epoch_s = statistics.median(epoch_times)
    rss = peak_rss_mb()
    neurons = sum(sizes[1:])
    flops = model.flops_per_sample(training=True) * samples
    gflops = flops / epoch_s / 1e9
    moved = min_bytes_per_sample(model) * samples / epoch_s / 1e9
    micro = model.micro_batch(batch) if hasattr(model, "micro_batch") else batch
    widest = max(sizes[1:-1])
    gather = gather_gbs(widest, micro)
    out = {
        "shape": name, "sizes": sizes, "epsilon": spec["epsilon"], "samples": samples,
        "batch": batch, "micro_batch": micro, "dropout": dropout,
        "nnz": model.nnz, "layer_nnz": [layer.nnz for layer in model.layers],
        "neurons": neurons,
        "timing": (f"{batches} batches timed after one warm-up batch, epoch extrapolated "
                   f"x{batches_per_epoch} batches" if timed else f"median of {epochs} epochs"),
        "sparse_epoch_s": epoch_s, "sparse_epoch_s_all": epoch_times,
        "samples_per_s": samples / epoch_s,
        "init_s": init_s, "evolution_s": statistics.median(evo_times),
        "peak_rss_mb": rss,
        "gflops": gflops, "sgemm_gflops": sgemm, "efficiency": gflops / sgemm,
        "copy_gbs": copy, "min_bytes_per_sample": min_bytes_per_sample(model),
        "achieved_gbs": moved, "bandwidth_fraction": moved / copy,
        "gather_gbs": gather, "gather_fraction": moved / gather,
        "ns_per_connection_sample": epoch_s / (model.nnz * samples) * 1e9,
        "ns_per_neuron_sample": epoch_s / (neurons * samples) * 1e9,
        "dense_memory_gb": dense_bytes(sizes) / 1e9,
        "dense_epoch_s": None, "speedup": None, "torch_epoch_s": None, "torch_speedup": None,
    }
    if name == "fashion-mnist":
        dense = DenseMaskedMLP.from_sparse(model)
        dense_times = [dense_epoch(dense, x, y, rng, batch) for _ in range(epochs)]
        out["dense_epoch_s"] = statistics.median(dense_times)
        out["speedup"] = out["dense_epoch_s"] / epoch_s
        del dense
    if baseline == "torch":
        out.update(torch_result(model, x, y, batch, dropout, batches_per_epoch, epoch_s))
    out["peak_rss_mb_with_baselines"] = peak_rss_mb()
    return out


def torch_result(model, x, y, batch, dropout, batches_per_epoch, epoch_s) -> dict:
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"torch_note": "torch is not importable: pip install torch (CPU build)"}
    need = dense_bytes(model.sizes) + 4 * 3 * sum(  # + autograd's dense temporaries
        a * b for a, b in zip(model.sizes[:-1], model.sizes[1:], strict=True))
    if need > 0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"):
        return {"torch_note": f"masked dense layers need ~{need / 1e9:.0f} GB: not run"}
    n = min(batches_per_epoch, 60)
    t = torch_epoch(model, x, y, batch, dropout, n) * batches_per_epoch / n
    return {"torch_epoch_s": t, "torch_speedup": t / epoch_s,
            "torch_timing": f"{n} batches timed, epoch extrapolated"}


def scaling(batches: int) -> list[dict]:
    """Seconds per batch of the fashion-mnist shape at several epsilons (several nnz)."""
    warm_up()
    sizes = SHAPES["fashion-mnist"]["sizes"]
    x, y = synthetic(BATCH * batches, sizes[0], sizes[-1])
    rows = []
    for eps in (5, 10, 20, 40, 80):
        rng = np.random.default_rng(0)
        model = SparseMLP.build(sizes, layer_densities(sizes, "er", eps), rng, dropout=0.3)
        times = [sparse_epoch(model, x, y, rng, BATCH) / batches for _ in range(3)]
        t = statistics.median(times)
        rows.append({"epsilon": eps, "nnz": model.nnz, "ms_per_batch": t * 1e3,
                     "ns_per_connection_per_sample": t / model.nnz / BATCH * 1e9})
    return rows


# ----------------------------------------------------------------------------- --compare

def compare(rev: str, argv: list[str]) -> dict:
    """The same benchmark on git revision ``rev``, from a temporary worktree."""
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True)
        try:
            env = {**os.environ, "AAC_SPARSE_BENCH_ROOT": str(tree)}
            res = subprocess.run([sys.executable, __file__, *argv, "--json"], env=env,
                                 capture_output=True, text=True)
            if res.returncode != 0:
                return {"rev": rev, "error": res.stderr[-2000:]}
            return {"rev": rev, **json.loads(res.stdout.strip().splitlines()[-1])}
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--shape", choices=list(SHAPES), default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed (median reported)")
    ap.add_argument("--batches", type=int, default=3, help="batches timed (scale-* shapes)")
    ap.add_argument("--batch", type=int, default=BATCH, help="mini-batch size")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--activation-memory", type=float, default=None, metavar="MB",
                    help="memory cap of one micro-batch's activations (default: the engine's)")
    ap.add_argument("--baseline", choices=["torch"], help="also time PyTorch masked dense")
    ap.add_argument("--compare", metavar="REV", help="also run on git revision REV")
    ap.add_argument("--compare-batch", type=int, help="batch size on REV (default: --batch)")
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
    result = run_shape(args.shape, args.epochs, args.dropout, args.batch, args.batches,
                       args.activation_memory, args.baseline)
    if args.compare:
        argv = ["--shape", args.shape, "--epochs", str(args.epochs), "--batches",
                str(args.batches), "--dropout", str(args.dropout),
                "--batch", str(args.compare_batch or args.batch)]
        if args.activation_memory is not None:
            argv += ["--activation-memory", str(args.activation_memory)]
        other = compare(args.compare, argv)
        result["compare"] = other
        if "samples_per_s" in other:
            result["samples_per_s_ratio"] = result["samples_per_s"] / other["samples_per_s"]
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
