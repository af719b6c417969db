"""The target function: the one door from the tuning layer into the engine.

``target(config, instance, seed, budget, report) -> dict`` builds the trainer from a
configuration (a point of a configuration space plus fixed settings such as ``hidden``),
trains on the instance's training split for ``budget`` epochs (or the configuration's
own) with :func:`~aac_sparse.training_run.fit_and_evaluate` — the function behind
``aac-sparse train`` — and returns its plain, JSON-ready measurements with a status (ok,
diverged, pruned).  An exception is not caught here: the worker that runs every target
(:mod:`aac_sparse.tuning.worker`) is the one place where it becomes a ``crashed`` trial
with its traceback, for this target and any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .data.instances import Instance
from .engine.config import TrainConfig
from .engine.parallel.config import ParallelConfig
from .io import plain
from .space.definition import to_parallel_config, to_train_config
from .training_run import fit_and_evaluate

Report = Callable[[int, float], bool]


def trial_config(config: Mapping[str, Any], seed: int, budget: float | None) -> TrainConfig:
    """The engine configuration a trial of ``(config, seed, budget)`` trains: ``budget``
    is a number of epochs (rounded, at least 1)."""
    epochs = None if budget is None else max(1, int(round(float(budget))))
    return to_train_config(plain(dict(config)), {"seed": int(seed)}, epochs)


def trial_parallel(config: Mapping[str, Any]) -> ParallelConfig:
    """How a trial of ``config`` is computed: sequentially unless the scenario gives
    trials MPI workers (fixed ``workers``) and the configuration picks a strategy."""
    return to_parallel_config(plain(dict(config)))


def target(
    config: Mapping[str, Any],
    instance: Instance | str,
    seed: int,
    budget: float | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``instance`` with training seed ``seed``; returns measurements.

    After every epoch ``report(epoch, validation_error)`` is called if given; when it
    returns True the run stops with status ``pruned``.  ``wall_time`` includes loading
    the instance.  Errors propagate (see the module doc).
    """
    t_start = time.perf_counter()
    inst = instance if isinstance(instance, Instance) else Instance.parse(instance)
    cfg = trial_config(config, seed, budget)
    split = inst.load()

    def on_epoch(row: dict) -> bool:
        if report is None:
            return False
        err = 1.0 - row["val_acc"] if "val_acc" in row else float("nan")
        return bool(report(row["epoch"], err))

    _, out = fit_and_evaluate(cfg, split, on_epoch=on_epoch, parallel=trial_parallel(config))
    out["wall_time"] = time.perf_counter() - t_start
    return out
