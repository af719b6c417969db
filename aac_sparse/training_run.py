"""One training run end to end: data split in, metrics and model files out.

Used by ``aac-sparse train``.  Files are written atomically into the output directory:
``config.json`` (the resolved configuration), ``metrics.csv`` and ``metrics.json`` (per
epoch, rewritten after every epoch so a killed run keeps what it did) and ``model.npz``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import __version__
from .data.prepare import Split
from .engine.config import TrainConfig
from .engine.model import save_model
from .engine.trainer import TrainResult, train
from .io import atomic_write, atomic_write_json, atomic_write_text

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "nnz",
                  "n_params", "hidden", "train_s", "evolution_s", "replaced", "neurons_removed"]


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
    dataset: str,
    epochs: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[TrainResult, dict]:
    """Train on ``split``, evaluate on its test part, write all files; returns result, summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "config.json", {"dataset": dataset, **config.model_dump()})
    history: list[dict] = []

    def epoch_done(row: dict) -> None:
        history.append(row)
        atomic_write_text(out_dir / "metrics.csv", metrics_csv(history))
        atomic_write_json(out_dir / "metrics.json",
                          {"summary": {"status": "running", "dataset": dataset},
                           "history": history})
        if on_epoch is not None:
            on_epoch(row)

    t0 = time.perf_counter()
    result = train(config, split.x_train, split.y_train, split.x_val, split.y_val,
                   n_classes=split.n_classes, on_epoch=epoch_done, epochs=epochs)
    wall = time.perf_counter() - t0
    summary = {
        "status": result.status,
        "message": result.message,
        "dataset": dataset,
        "epochs_run": len(result.history),
        "wall_s": wall,
        "nnz": result.model.nnz,
        "n_params": result.model.n_params,
        "sizes": result.model.sizes,
        "aac_sparse_version": __version__,
    }
    if result.status == "ok":
        test_loss, test_acc = result.model.evaluate(split.x_test, split.y_test,
                                                    config.eval_batch_size)
        summary.update(test_loss=test_loss, test_acc=test_acc,
                       val_acc=result.last.get("val_acc"))
        atomic_write(out_dir / "model.npz",
                     lambda fh: save_model(result.model, lambda **a: np.savez_compressed(fh, **a)))
    atomic_write_text(out_dir / "metrics.csv", metrics_csv(result.history))
    atomic_write_json(out_dir / "metrics.json", {"summary": summary, "history": result.history})
    return result, summary
