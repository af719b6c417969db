"""One call for every strategy: :func:`train_parallel` runs sequentially, on the ranks of
the user's ``mpiexec``, or on ranks it starts itself, and returns a ``TrainResult``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..model import model_from_arrays
from ..trainer import EpochCallback, TrainResult, train
from .config import ParallelConfig
from .runtime import NotRootRank, ParallelRunError, abort_on_error, launch, mpi, under_mpiexec


def run_on(comm, config: TrainConfig, parallel: ParallelConfig, x_train, y_train,
           x_val=None, y_val=None, n_classes: int | None = None,
           on_epoch: EpochCallback | None = None,
           epochs: int | None = None) -> TrainResult | None:
    """Run ``parallel.strategy`` on the ranks of ``comm``; the result on rank 0."""
    from .trainers import train_wasap, train_wassp

    if comm.Get_size() != parallel.ranks:
        raise ValueError(f"{parallel.strategy} with {parallel.workers} workers needs "
                         f"{parallel.ranks} MPI ranks, not {comm.Get_size()}")
    fn = train_wassp if parallel.strategy == "wassp" else train_wasap
    return fn(comm, config, parallel, x_train, y_train, x_val, y_val, n_classes, on_epoch,
              epochs)


def train_parallel(config: TrainConfig, parallel: ParallelConfig, x_train, y_train,
                   x_val=None, y_val=None, n_classes: int | None = None,
                   on_epoch: EpochCallback | None = None,
                   epochs: int | None = None,
                   on_batch: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train with ``parallel``'s strategy (see :func:`~..trainer.train` for the rest).

    Under the user's ``mpiexec`` every rank calls this with the same arguments; ranks
    other than 0 get :class:`NotRootRank` at the end.  Otherwise the ranks are started
    here and their result comes back to this process.  ``on_batch`` is called only in
    sequential training (the ranks report per epoch).
    """
    if parallel.strategy == "none":
        return train(config, x_train, y_train, x_val, y_val, n_classes, on_epoch, epochs,
                     on_batch)
    n_classes = int(n_classes if n_classes is not None else np.asarray(y_train).max() + 1)
    if under_mpiexec():
        comm = mpi().COMM_WORLD
        with abort_on_error(comm):
            result = run_on(comm, config, parallel, x_train, y_train, x_val, y_val,
                            n_classes, on_epoch, epochs)
        if result is None:
            raise NotRootRank
        return result
    with tempfile.TemporaryDirectory(prefix="aac-sparse-mpi-") as tmp:
        job = Path(tmp)
        for name, arr in (("x_train", x_train), ("y_train", y_train), ("x_val", x_val),
                          ("y_val", y_val)):
            if arr is not None:
                np.save(job / f"{name}.npy", np.asarray(arr))
        (job / "job.json").write_text(json.dumps(
            {"config": config.model_dump(), "parallel": parallel.model_dump(),
             "n_classes": n_classes, "epochs": epochs, "parent": os.getpid()}))
        launch(job, parallel.ranks, (lambda row: bool(on_epoch(row))) if on_epoch
               else (lambda row: False))
        if not (job / "result.json").exists():
            raise ParallelRunError("the parallel run ended without a result")
        info = json.loads((job / "result.json").read_text())
        with np.load(job / "result.npz") as npz:
            model = model_from_arrays({k: npz[k] for k in npz.files})
    return TrainResult(model, info["history"], info["status"], info["message"],
                       info["parallel"])
