"""Fake tuning targets for the executor tests: each misbehaves in one well-defined way.

They follow the target signature ``(config, instance, seed, budget, report) -> dict`` and
import nothing heavy, so worker processes start fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

Report = Callable[[int, float], bool]


def ok_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
              report: Report) -> dict[str, Any]:
    """Succeed at once, echoing the inputs and the worker's pid and thread settings."""
    return {
        "status": "ok",
        "val_error": float(config.get("x", 0.0)) / 10.0,
        "instance": instance,
        "seed": seed,
        "budget": budget,
        "pid": os.getpid(),
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "marker": os.environ.get("AAC_TEST_MARKER"),
    }


def raising_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                   report: Report) -> dict[str, Any]:
    """Raise an exception with a recognisable message."""
    raise ValueError(f"bad learning rate {config.get('lr')}")


def exiting_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                   report: Report) -> dict[str, Any]:
    """Kill its own worker process without any clean-up."""
    os._exit(int(config.get("code", 3)))


def sleeping_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                    report: Report) -> dict[str, Any]:
    """Sleep ``config['seconds']`` seconds, then succeed."""
    time.sleep(float(config["seconds"]))
    return {"status": "ok", "pid": os.getpid()}


def memory_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                  report: Report) -> dict[str, Any]:
    """Allocate and touch ``config['mb']`` MB, then hold it for ``config['hold']`` seconds."""
    block = b"\x01" * (int(config["mb"]) * 2**20)  # filled, so every page is resident
    time.sleep(float(config.get("hold", 10.0)))
    return {"status": "ok", "size": len(block)}


def diverging_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                     report: Report) -> dict[str, Any]:
    """Report a diverged training run with its measurements."""
    return {"status": "diverged", "val_error": 1.0, "epochs_done": 3}


def reporting_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                     report: Report) -> dict[str, Any]:
    """Report ``config['steps']`` epochs, stopping early (pruned) when asked to."""
    delay = float(config.get("delay", 0.05))
    for step in range(int(config.get("steps", 100))):
        time.sleep(delay)
        if report(step, 1.0 / (step + 1)):
            return {"status": "pruned", "epochs_done": step + 1}
    return {"status": "ok", "epochs_done": int(config.get("steps", 100))}


def pid_then_sleep_target(config: dict[str, Any], instance: str, seed: int,
                          budget: float | None, report: Report) -> dict[str, Any]:
    """Report the worker's pid as the value of step 0, then sleep ``config['seconds']``."""
    report(0, float(os.getpid()))
    time.sleep(float(config.get("seconds", 30.0)))
    return {"status": "ok"}


def bad_return_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                      report: Report) -> Any:
    """Return something that is not a result mapping."""
    return [1, 2, 3]


def reserving_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                     report: Report) -> dict[str, Any]:
    """Reserve ``config['mb']`` MB of address space without touching it (virtual, not resident)."""
    import mmap

    region = mmap.mmap(-1, int(config["mb"]) * 2**20)
    time.sleep(float(config.get("hold", 0.5)))
    region.close()
    return {"status": "ok"}


def child_memory_target(config: dict[str, Any], instance: str, seed: int,
                        budget: float | None, report: Report) -> dict[str, Any]:
    """Start a child process that fills ``config['mb']`` MB and sleeps; report its pid; wait."""
    import subprocess
    import sys

    code = f"import time; b = b'x' * ({int(config['mb'])} * 2**20); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code])
    report(0, float(child.pid))
    child.wait()
    return {"status": "ok"}


def misbehaving_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                       report: Any) -> dict[str, Any]:
    """Behave by fold: 0 fine, 1 raise, 2 sleep past any limit, 3 hog memory, 4 NaN loss."""
    fold = int(instance.split("fold=")[1].split("/")[0])
    if fold == 1:
        raise RuntimeError("boom in fold 1")
    if fold == 2:
        time.sleep(60)
    if fold == 3:
        block = bytearray(700 * 2**20)
        block[:: 4096] = b"x" * len(block[:: 4096])
        time.sleep(30)
    if fold == 4:
        return {"status": "diverged", "val_error": float("nan"), "message": "loss became nan"}
    return {"status": "ok", "val_error": abs(float(config.get("lr", 0.01)) - 0.05),
            "test_error": 0.5, "n_params": 10, "train_time": 0.01}


def curve_target(config: dict[str, Any], instance: str, seed: int, budget: float | None,
                 report: Report) -> dict[str, Any]:
    """A learning curve whose level depends on the learning rate (best near 0.01), 30 ms an
    epoch, reported every epoch; stops when the configurator prunes it."""
    import math

    epochs = int(budget or config.get("epochs", 10))
    level = abs(math.log10(float(config.get("lr", 0.01))) + 2.0) / 4.0
    err = 1.0
    for epoch in range(1, epochs + 1):
        time.sleep(0.03)
        err = min(1.0, level + 1.0 / (epoch + 1))
        if report(epoch, err):
            return {"status": "pruned", "val_error": err, "epochs_run": epoch}
    return {"status": "ok", "val_error": err, "test_error": err, "epochs_run": epochs,
            "n_params": 100, "train_time": 0.03 * epochs}
