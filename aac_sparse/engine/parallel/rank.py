"""Entry point of a launched rank: ``python -m aac_sparse.engine.parallel.rank JOB_DIR``.

The launcher (:func:`.runtime.launch`) wrote the configuration and the data into
``JOB_DIR``; every rank trains its part, rank 0 reports each epoch and writes the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(job_dir: Path) -> None:
    from .runtime import abort_on_error, mpi, wait_for_ack

    comm = mpi().COMM_WORLD
    with abort_on_error(comm, job_dir / "error.txt"):
        from ..config import TrainConfig
        from ..model import model_arrays
        from .api import run_on
        from .config import ParallelConfig

        job = json.loads((job_dir / "job.json").read_text())
        config, parallel = TrainConfig(**job["config"]), ParallelConfig(**job["parallel"])
        data = {name: np.load(job_dir / f"{name}.npy", mmap_mode="r")
                for name in ("x_train", "y_train", "x_val", "y_val")
                if (job_dir / f"{name}.npy").exists()}
        rows = job_dir / "epochs.jsonl"

        def report(row: dict) -> bool:
            with rows.open("a") as fh:
                fh.write(json.dumps(row, default=_plain) + "\n")
            return wait_for_ack(job_dir, row["epoch"], job["parent"])

        result = run_on(comm, config, parallel, data["x_train"], data["y_train"],
                        data.get("x_val"), data.get("y_val"), job["n_classes"], report,
                        job["epochs"])
        if result is not None:
            np.savez(job_dir / "result.npz", **model_arrays(result.model))
            (job_dir / "result.json").write_text(json.dumps(
                {"status": result.status, "message": result.message,
                 "history": result.history, "parallel": result.parallel}, default=_plain))


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
