"""Tuning-layer benchmark: configurator overhead per trial and parallel efficiency.

    python benchmarks/tuning.py [--trials 40] [--cost 0.5] [--mode sleep|spin]
                                [--configurators random,smac-ac,smac-hpo,optuna]

Every trial of a fixed-cost target takes exactly ``--cost`` seconds (sleeping, or spinning
on a core with ``--mode spin``).  Each configurator runs the same scenario twice, with 1
and with 2 workers, through the real tuner (store, executor, configurator):

* overhead per trial = (wall time with 1 worker - trials x cost) / trials — what asking,
  telling, recording and dispatching add to every trial;
* parallel efficiency = trials x cost / (2 x wall time with 2 workers) — 1.0 is perfect.

Prints one JSON line per configurator.  Worker start-up is included (as users see it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from aac_sparse.tuning.executor import LocalExecutor  # noqa: E402
from aac_sparse.tuning.scenario import Scenario  # noqa: E402
from aac_sparse.tuning.tuner import Tuner, open_run  # noqa: E402


def scenario(out: Path, configurator: str, trials: int, workers: int) -> Scenario:
    entry = {"dataset": "synthetic", "options": {"n_samples": 120, "n_features": 8}, "folds": 4}
    return Scenario(
        name="bench", space="meta", fixed={"hidden": [8], "epochs": 1},
        instances={"train": [{**entry, "use": [0, 1]}], "test": [{**entry, "use": [2]}]},
        budget={"n_trials": trials, "trial_wall_time": 60},
        configurator={"name": configurator}, execution={"workers": workers},
        output=str(out))


def run(configurator: str, trials: int, workers: int, cost: float, mode: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        sc = scenario(Path(tmp) / "run", configurator, trials, workers)
        run_dir, store, _ = open_run(sc)
        env = {"AAC_BENCH_COST": str(cost), "AAC_BENCH_MODE": mode}
        tuner = Tuner(sc, run_dir, store, executor_factory=lambda **limits: LocalExecutor(
            "fixed_cost:fixed_cost_target", n_workers=workers, env=env, **limits))
        tuner.prepare_data()
        t0 = time.perf_counter()
        result = tuner.run()
        wall = time.perf_counter() - t0
        store.close()
        assert result.n_trials == trials, result
        return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--cost", type=float, default=0.5, help="seconds per trial")
    ap.add_argument("--mode", choices=("sleep", "spin"), default="sleep")
    ap.add_argument("--configurators", default="random,smac-ac,smac-hpo,optuna")
    args = ap.parse_args()
    os.environ.setdefault("AAC_SPARSE_CACHE", tempfile.mkdtemp(prefix="aac-bench-cache-"))
    for name in args.configurators.split(","):
        one = run(name, args.trials, 1, args.cost, args.mode)
        two = run(name, args.trials, 2, args.cost, args.mode)
        work = args.trials * args.cost
        print(json.dumps({
            "configurator": name, "trials": args.trials, "cost_s": args.cost,
            "mode": args.mode, "wall_1_worker_s": round(one, 3),
            "wall_2_workers_s": round(two, 3),
            "overhead_per_trial_s": round((one - work) / args.trials, 4),
            "parallel_efficiency_2_workers": round(work / (2 * two), 3),
            "speedup_2_workers": round(one / two, 3),
        }), flush=True)


if __name__ == "__main__":
    main()
