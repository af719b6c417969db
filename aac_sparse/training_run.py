"""Train, then evaluate: the one function behind ``aac-sparse train`` and the target.

:func:`fit_and_evaluate` trains a configuration on a prepared split and measures it with
one set of names (:data:`MEASURES`), whether a person runs ``aac-sparse train`` or a
configurator runs a trial; so a stored trial and a retraining of its configuration on the
same instance and seed can be compared field by field.  :func:`run_training` adds the
files of ``aac-sparse train``, written atomically into the output directory:
``config.json`` (the resolved configuration), ``metrics.csv`` and ``metrics.json`` (per
epoch, rewritten after every epoch so a killed run keeps what it did) and ``model.npz``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.prepare import Split
from .engine.config import TrainConfig
from .engine.model import save_model
from .engine.parallel import ParallelConfig, ParallelUnavailable, train_parallel
from .engine.trainer import TrainResult
from .errors import UserError
from .io import atomic_write, atomic_write_json, atomic_write_text

# What a training run measures (a trial's result; the summary of 'aac-sparse train').
MEASURES = ("status", "val_error", "test_error", "train_time", "wall_time", "nnz",
            "n_params", "train_flops", "inference_flops", "epochs_run", "curve", "message")
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "nnz",
                  "n_params", "hidden", "train_s", "evolution_s", "replaced", "neurons_removed"]

EpochHook = Callable[[dict], "bool | None"]


def fit_and_evaluate(config: TrainConfig, split: Split, epochs: int | None = None,
                     on_epoch: EpochHook | None = None,
                     parallel: ParallelConfig | None = None,
                     on_batch: Callable[[int, int], None] | None = None,
                     ) -> tuple[TrainResult, dict[str, Any]]:
    """Train ``config`` on ``split``'s training part (data-parallel over MPI ranks as
    ``parallel`` says), then measure it.

    ``on_epoch(row)`` sees each epoch's metrics; returning True stops the run (status
    ``pruned``).  Statuses: ok, pruned, diverged (no errors measured then).  The
    validation error is the last epoch's; the test error is measured once at the end.
    """
    t0 = time.perf_counter()
    out: dict[str, Any] = {"status": "ok", "val_error": math.nan, "test_error": math.nan,
                           "train_time": 0.0, "wall_time": 0.0, "nnz": 0, "n_params": 0,
                           "train_flops": 0.0, "inference_flops": 0.0, "epochs_run": 0,
                           "curve": [], "message": ""}

    def epoch_done(row: dict) -> bool:
        out["curve"].append(1.0 - row["val_acc"] if "val_acc" in row else math.nan)
        return bool(on_epoch(row)) if on_epoch is not None else False

    try:  # train_parallel is plain sequential training for strategy none
        result = train_parallel(config, parallel or ParallelConfig(), split.x_train,
                                split.y_train, split.x_val, split.y_val,
                                n_classes=split.n_classes, on_epoch=epoch_done, epochs=epochs,
                                on_batch=on_batch)
    except ParallelUnavailable as exc:
        raise UserError(str(exc)) from None
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
        _, test_acc = result.model.evaluate(split.x_test, split.y_test, config.eval_batch_size)
        out["test_error"] = 1.0 - test_acc
    out["wall_time"] = time.perf_counter() - t0
    return result, out


def metrics_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({**row, "hidden": "-".join(str(h) for h in row.get("hidden", []))})
    return buf.getvalue()


def run_training(
    config: TrainConfig,
    split: Split,
    out_dir: Path,
    data: str,
    epochs: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    parallel: ParallelConfig | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[TrainResult, dict]:
    """:func:`fit_and_evaluate` with all files written; ``data`` names the dataset or
    instance.  Returns the result and the summary (the measures plus provenance)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = ({"parallel": parallel.model_dump()}
             if parallel is not None and parallel.strategy != "none" else {})
    atomic_write_json(out_dir / "config.json", {"data": data, **config.model_dump(), **extra})
    history: list[dict] = []

    def epoch_done(row: dict) -> None:
        history.append(row)
        atomic_write_text(out_dir / "metrics.csv", metrics_csv(history))
        atomic_write_json(out_dir / "metrics.json",
                          {"summary": {"status": "running", "data": data},
                           "history": history})
        if on_epoch is not None:
            on_epoch(row)

    result, measures = fit_and_evaluate(config, split, epochs, epoch_done, parallel, on_batch)
    summary = {**{k: measures[k] for k in MEASURES}, "data": data, "sizes": result.model.sizes,
               "aac_sparse_version": __version__}
    if result.parallel:
        summary["parallel"] = result.parallel
    if result.status == "ok":
        atomic_write(out_dir / "model.npz",
                     lambda fh: save_model(result.model, lambda **a: np.savez_compressed(fh, **a)))
    atomic_write_text(out_dir / "metrics.csv", metrics_csv(result.history))
    atomic_write_json(out_dir / "metrics.json", {"summary": summary, "history": result.history})
    return result, summary
