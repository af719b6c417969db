"""The target function: the one door from the tuning layer into the engine.

``target(config, instance, seed, budget, report) -> dict`` builds the trainer from a
configuration (a point of a configuration space plus fixed settings such as ``hidden``),
trains on the instance's training split for ``budget`` epochs (or the configuration's
own), and returns plain, JSON-ready measurements with a status (ok, diverged, pruned).
An exception is not caught here: the worker that runs every target
(:mod:`aac_sparse.tuning.worker`) is the one place where it becomes a ``crashed`` trial
with its traceback, for this target and any other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from .data.instances import Instance
from .engine.trainer import train
from .io import plain
from .space.definition import to_train_config

Report = Callable[[int, float], bool]


def target(
    config: Mapping[str, Any],
    instance: Instance | str,
    seed: int,
    budget: float | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``instance`` with training seed ``seed``; returns measurements.

    ``budget`` is a number of epochs (rounded, at least 1).  After every epoch
    ``report(epoch, validation_error)`` is called if given; when it returns True the run
    stops with status ``pruned``.  Statuses: ok, diverged (loss became NaN/inf; ``message``
    says when), pruned.  Errors propagate (see the module doc).
    """
    t_start = time.perf_counter()
    out: dict[str, Any] = {"status": "ok", "val_error": math.nan, "test_error": math.nan,
                           "train_time": 0.0, "wall_time": 0.0, "nnz": 0, "n_params": 0,
                           "train_flops": 0.0, "inference_flops": 0.0, "epochs_run": 0,
                           "curve": [], "message": ""}
    inst = instance if isinstance(instance, Instance) else Instance.parse(instance)
    epochs = None if budget is None else max(1, int(round(float(budget))))
    cfg = to_train_config(plain(dict(config)),
                          {"seed": int(seed)}, epochs)
    split = inst.load()

    def on_epoch(row: dict) -> bool:
        err = 1.0 - row["val_acc"] if "val_acc" in row else math.nan
        out["curve"].append(err)
        return bool(report(row["epoch"], err)) if report is not None else False

    result = train(cfg, split.x_train, split.y_train, split.x_val, split.y_val,
                   n_classes=split.n_classes, on_epoch=on_epoch)
    hist = result.history
    out.update(
        nnz=result.model.nnz, n_params=result.model.n_params, epochs_run=len(hist),
        train_time=float(sum(r["train_s"] + r.get("evolution_s", 0.0) for r in hist)),
        train_flops=float(sum(r["train_flops"] for r in hist)),
        inference_flops=float(result.model.flops_per_sample(training=False)),
        message=result.message,
    )
    if result.status == "diverged":
        out["status"] = "diverged"
    else:
        out["status"] = "pruned" if result.status == "stopped" else "ok"
        out["val_error"] = out["curve"][-1] if out["curve"] else math.nan
        _, test_acc = result.model.evaluate(split.x_test, split.y_test,
                                            cfg.eval_batch_size)
        out["test_error"] = 1.0 - test_acc
    out["wall_time"] = time.perf_counter() - t_start
    return out
