"""UCI HIGGS (Baldi, Sadowski, Whiteson 2014): 11 million rows of 28 features, 2 classes.

Each row of ``HIGGS.csv(.gz)`` is the label (1 signal, 0 background) and 28 features.  Read
whole, the last 500,000 rows are the publisher's test set; ``n_rows`` reads only the first
rows (no fixed test set then).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset
from ..places import locate

NAME = "higgs"
CANDIDATES = ("HIGGS.csv.gz", "HIGGS.csv")
HOW_TO_GET = ("Download HIGGS.csv.gz from the UCI repository (dataset 'HIGGS', 2.6 GB) and "
              "pass it with --data-option path=FILE (or: aac-sparse data fetch higgs, where "
              "a network allows).")
N_COLUMNS = 29
N_TEST = 500_000


def find(path: str | Path | None = None) -> Path | None:
    """The HIGGS csv file, or None if it is not here."""
    try:
        return locate(NAME, CANDIDATES, path)
    except DataError:
        return None


def load(path: str | Path | None = None, n_rows: int | None = None) -> Dataset:
    """HIGGS features (float32) and labels; ``n_rows`` limits how many rows are read."""
    import pandas as pd

    if n_rows is not None and n_rows < 2:
        raise DataError(f"dataset 'higgs': n_rows must be at least 2, got {n_rows}")
    file = locate(NAME, CANDIDATES, path, how_to_get=HOW_TO_GET)
    try:
        frame = pd.read_csv(file, header=None, dtype=np.float32, nrows=n_rows, engine="c")
    except (ValueError, pd.errors.ParserError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{file}: not a HIGGS csv ({exc})") from exc
    if frame.shape[1] != N_COLUMNS:
        raise DataError(f"{file}: {frame.shape[1]} columns, {N_COLUMNS} expected "
                        "(label + 28 features)")
    data = frame.to_numpy(dtype=np.float32)
    labels = data[:, 0]
    if not np.isin(labels, (0.0, 1.0)).all():
        raise DataError(f"{file}: the first column must be the label 0 or 1")
    x, y = np.ascontiguousarray(data[:, 1:]), labels.astype(np.int64)
    notes = [f"loaded from {file}"]
    if n_rows is None and len(y) > N_TEST:
        notes.append(f"the last {N_TEST} rows are the fixed test set")
        return Dataset(NAME, x[:-N_TEST], y[:-N_TEST], ["background", "signal"],
                       x[-N_TEST:], y[-N_TEST:], notes)
    notes.append(f"first {len(y)} rows only; no fixed test set (a split is drawn)")
    return Dataset(NAME, x, y, ["background", "signal"], notes=notes)
