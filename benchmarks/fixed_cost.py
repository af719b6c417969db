"""A target of fixed cost for benchmarks/tuning.py: it sleeps or spins for a set time."""

from __future__ import annotations

import os
import time
from typing import Any


def fixed_cost_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                      report: Any) -> dict[str, Any]:
    """Take ``AAC_BENCH_COST`` seconds (``AAC_BENCH_MODE``: sleep, or spin on the CPU) and
    return a cost that depends smoothly on the learning rate, so models have signal."""
    cost = float(os.environ.get("AAC_BENCH_COST", "0.5"))
    if os.environ.get("AAC_BENCH_MODE", "sleep") == "spin":
        end = time.perf_counter() + cost
        x = 0
        while time.perf_counter() < end:
            x += 1
    else:
        time.sleep(cost)
    lr = float(config.get("lr", 0.01))
    err = min(1.0, abs(lr - 0.02) * 5 + 0.1)
    return {"status": "ok", "val_error": err, "test_error": err, "n_params": 1,
            "train_time": cost}
