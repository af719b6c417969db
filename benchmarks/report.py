"""Analysis benchmark: how long `aac-sparse report` takes on large trial stores.

    python benchmarks/report.py [--trials 2000,500] [--trees 32] [--forests 3]

For each size, a synthetic store of the meta space (``tests/synthetic_store.py``: 3
training instances, so trials/3 configurations, plus the final comparison) is written and
the whole report is timed through the real command (a subprocess, start-up included),
then the phases in-process (load, fANOVA, surrogate + LPI + ablation, figures and files).
The machine's own numpy sgemm rate is measured in the same run so figures from
different machines can be compared (seconds x GFLOP/s is roughly machine-independent).
Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def sgemm_gflops(n: int = 2048, repeat: int = 3) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(n_trials: int, trees: int, forests: int, workdir: Path) -> dict:
    from synthetic_store import make_store

    from aac_sparse.analysis.ablation import surrogate_ablation
    from aac_sparse.analysis.importance import fanova_importance, local_importance
    from aac_sparse.analysis.report import analyse, write
    from aac_sparse.analysis.rundata import load_run
    from aac_sparse.analysis.surrogate import Surrogate

    run_dir = make_store(workdir / f"run-{n_trials}", n_configs=max(2, n_trials // 3))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "aac_sparse", "report", str(run_dir), "-o",
           str(workdir / f"out-{n_trials}"), "--trees", str(trees), "--forests", str(forests)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    command_s = time.perf_counter() - t

    phases = {}
    t = time.perf_counter()
    run = load_run(run_dir)
    phases["load"] = time.perf_counter() - t
    t = time.perf_counter()
    fanova_importance(run, "val_error", n_forests=forests, n_trees=trees)
    phases["fanova"] = time.perf_counter() - t
    t = time.perf_counter()
    surrogate = Surrogate(run, "val_error", forests, trees)
    inc = run.incumbent()
    local_importance(surrogate, inc, run.configs[inc])
    surrogate_ablation(surrogate, run.default_config(), run.configs[inc])
    phases["surrogate_lpi_ablation"] = time.perf_counter() - t
    t = time.perf_counter()
    write(analyse(run, n_forests=1, n_trees=2), workdir / f"files-{n_trials}")
    phases["figures_and_files_min_forest"] = time.perf_counter() - t
    return {"trials": len(run.finished()), "configurations": len(run.configs),
            "trees": trees * forests, "report_command_s": round(command_s, 2),
            "phases_s": {k: round(v, 2) for k, v in phases.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", default="2000,500", help="store sizes, comma-separated")
    ap.add_argument("--trees", type=int, default=32)
    ap.add_argument("--forests", type=int, default=3)
    args = ap.parse_args()
    gflops = sgemm_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.trials.split(",")):
            row = bench(n, args.trees, args.forests, Path(tmp))
            row["sgemm_gflops"] = round(gflops, 1)
            row["report_s_x_gflops"] = round(row["report_command_s"] * gflops, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
