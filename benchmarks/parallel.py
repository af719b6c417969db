"""Data-parallel benchmark: sequential vs. WASSP-SGD vs. WASAP-SGD on the FashionMNIST shape.

    python benchmarks/parallel.py --json                 # 3 epochs each, real FashionMNIST
    python benchmarks/parallel.py --epochs 2 --max-train 20000

Measured in one run, on this machine (784-1000-1000-1000-10, epsilon 20, All-ReLU-free
SET, batch 128): samples per second (median over the epochs after the first) and test
accuracy after ``--epochs`` epochs for sequential training, WASSP with 1 and 2 workers and
WASAP with 1 and 2 workers; the bytes each optimizer step moves between ranks; and an MPI
ping-pong (latency and bandwidth of this machine's MPI).

From these it projects the speed-up for 8..96 workers with a stated model:

* a step's compute ``t_c`` (gradient of one batch) and update ``t_u`` (the SGD step on
  nnz weights) are measured sequentially; a message of B bytes costs ``a + B / bw``
  (ping-pong); evolution and validation per epoch ``t_e`` stay serial on rank 0.
* WASSP, k workers, global batch k x b: per step ``t_c + t_u + T_ar(B, k)`` with a ring
  allreduce ``T_ar = 2 (k-1) (a + B / (k bw))``; speed-up = k (t_c + t_u) / that.
* WASAP, k workers: a worker's cycle is ``t_c + 2 (a + B / bw)`` (send gradient, receive
  weights); the server applies one update per ``t_u + 2 B / bw`` at most.  Throughput is
  the smaller of ``k / cycle`` and ``1 / server``; speed-up = throughput x (t_c + t_u).

Both ignore contention for memory bandwidth and cores: on the 2-core machines we run on,
the 2-worker runs share cores with each other (and WASAP's server), so no measured
speed-up is expected here; the measured ratios say what the protocol costs, the
projection what the same costs give where every rank has its own cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aac_sparse.engine.config import preset_config  # noqa: E402
from aac_sparse.engine.parallel import ParallelConfig, train_parallel  # noqa: E402
from aac_sparse.engine.trainer import build_model, train  # noqa: E402

HIDDEN = [1000, 1000, 1000]
BATCH = 128

PINGPONG = textwrap.dedent("""
    import json, time
    import numpy as np
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    out = {}
    for n in (1, 1 << 20, 1 << 23):
        buf = np.zeros(n // 4 or 1, dtype=np.float32)
        reps = 200 if n == 1 else 20
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            if comm.rank == 0:
                comm.Send(buf, dest=1); comm.Recv(buf, source=1)
            else:
                comm.Recv(buf, source=0); comm.Send(buf, dest=0)
        out[n] = (time.perf_counter() - t0) / (2 * reps)
    if comm.rank == 0:
        print(json.dumps(out))
""")


def load_data(max_train: int | None, seed: int = 0):
    """FashionMNIST (standardised) if it is in the cache, else synthetic data of its size."""
    try:
        from aac_sparse.data.prepare import split_dataset
        from aac_sparse.data.registry import load_dataset

        split = split_dataset(load_dataset("fashion-mnist"), val_fraction=0.02, seed=seed,
                              max_train=max_train)
        return "fashion-mnist", split.x_train, split.y_train, split.x_test, split.y_test
    except Exception as exc:  # noqa: BLE001 - fall back, saying so
        print(f"fashion-mnist not available ({exc}); synthetic data of its shape",
              file=sys.stderr)
        rng = np.random.default_rng(seed)
        n = max_train or 60000
        x = rng.standard_normal((n + 10000, 784), dtype=np.float32)
        y = rng.integers(0, 10, n + 10000)
        return "synthetic", x[:n], y[:n], x[n:], y[n:]


def pingpong() -> dict[str, float]:
    """One-way time of MPI messages of 4 B, 1 MiB and 8 MiB between two ranks."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    res = subprocess.run([str(mpiexec), "-n", "2", sys.executable, "-c", PINGPONG],
                         capture_output=True, text=True, timeout=300, check=True)
    times = {int(k): v for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}
    latency = times[1]
    bandwidth = ((1 << 23) - (1 << 20)) / max(times[1 << 23] - times[1 << 20], 1e-12)
    return {"latency_s": latency, "bandwidth_bytes_per_s": bandwidth}


def step_costs(config, x, y) -> dict[str, float]:
    """Sequential gradient (t_c) and update (t_u) time of one batch, medians."""
    model = build_model(config, x.shape[1], 10, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    rows = np.arange(BATCH)
    tc, tu = [], []
    for _ in range(12):
        t0 = time.perf_counter()
        model.compute_gradients(x, y, rows, rng)
        t1 = time.perf_counter()
        model.step(0.01, 0.9, 0.0002)
        tc.append(t1 - t0)
        tu.append(time.perf_counter() - t1)
    return {"t_c": statistics.median(tc[2:]), "t_u": statistics.median(tu[2:])}


def summarise(name: str, result, seconds: float, n: int, x_test, y_test) -> dict:
    epochs = [r["train_s"] for r in result.history]
    steady = epochs[1:] or epochs
    return {"variant": name, "samples_per_s": n / statistics.median(steady),
            "epoch_s": statistics.median(steady), "wall_s": seconds,
            "test_acc": result.model.evaluate(x_test, y_test)[1],
            "bytes_per_step": result.history[-1].get("bytes_per_step", 0),
            "evolution_s": statistics.median(r.get("evolution_s", 0.0)
                                             for r in result.history),
            "nnz": result.model.nnz, "status": result.status}


def project(costs: dict, comm: dict, nbytes: float, evolution_s: float, steps: int,
            workers: list[int]) -> list[dict]:
    a, bw = comm["latency_s"], comm["bandwidth_bytes_per_s"]
    tc, tu = costs["t_c"], costs["t_u"]
    seq_epoch = steps * (tc + tu) + evolution_s
    rows = []
    for k in workers:
        t_ar = 2 * (k - 1) * (a + nbytes / (k * bw))
        wassp_epoch = (steps / k) * (tc + tu + t_ar) + evolution_s
        cycle = tc + 2 * (a + nbytes / bw)
        server = tu + 2 * nbytes / bw
        rate = min(k / cycle, 1 / server)
        wasap_epoch = steps / rate + evolution_s
        rows.append({"workers": k, "wassp_speedup": seq_epoch / wassp_epoch,
                     "wasap_speedup": seq_epoch / wasap_epoch,
                     "wasap_bound": "server" if 1 / server < k / cycle else "workers"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-train", type=int, default=None,
                    help="subsample the training set (default: all 60000)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    data, x, y, xt, yt = load_data(args.max_train)
    cfg = preset_config("set", hidden=HIDDEN, epsilon=20, batch_size=BATCH,
                        epochs=args.epochs)
    n = x.shape[0]
    results = []
    t0 = time.perf_counter()
    seq = train(cfg, x, y)
    results.append(summarise("sequential", seq, time.perf_counter() - t0, n, xt, yt))
    for strategy in ("wassp", "wasap"):
        for k in (1, 2):
            par = ParallelConfig(strategy=strategy, workers=k)
            t0 = time.perf_counter()
            res = train_parallel(cfg, par, x, y)
            results.append(summarise(f"{strategy}-{k}", res, time.perf_counter() - t0, n,
                                     xt, yt))
    base = results[0]["samples_per_s"]
    for row in results:
        row["speed_vs_sequential"] = row["samples_per_s"] / base
    costs = step_costs(cfg, x, y)
    comm = pingpong()
    nnz_floats = seq.model.nnz + sum(layer.n_out for layer in seq.model.layers)
    step_bytes = 4 * nnz_floats
    steps = int(np.ceil(n / BATCH))
    doc = {"data": data, "n_train": n, "epochs": args.epochs, "nnz": seq.model.nnz,
           "variants": results, "step_costs": costs, "mpi": comm,
           "bytes_per_step_per_direction": step_bytes,
           "bytes_per_step_over_nnz": step_bytes / seq.model.nnz,
           "projection": project(costs, comm, step_bytes, results[0]["evolution_s"], steps,
                                 [8, 16, 32, 64, 96])}
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    print(f"{data}: {n} samples, {seq.model.nnz} connections, {args.epochs} epochs")
    for row in results:
        print(f"  {row['variant']:<11} {row['samples_per_s']:>9.0f} samples/s "
              f"({row['speed_vs_sequential']:.2f}x)  test acc {row['test_acc']:.4f}  "
              f"{row['bytes_per_step']:.0f} B/step")
    print(f"  step: gradient {costs['t_c'] * 1e3:.2f} ms, update {costs['t_u'] * 1e3:.2f} ms;"
          f" MPI latency {comm['latency_s'] * 1e6:.1f} us, "
          f"bandwidth {comm['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s")
    for row in doc["projection"]:
        print(f"  projected {row['workers']:>3} workers: WASSP {row['wassp_speedup']:.1f}x, "
              f"WASAP {row['wasap_speedup']:.1f}x (bound by {row['wasap_bound']})")


if __name__ == "__main__":
    main()
