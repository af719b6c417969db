"""A user's own data from one file: ``.npz`` (arrays ``x``, ``y``, optionally ``x_test``,
``y_test``) or CSV (``.csv``/``.csv.gz``, one sample per row, a label column).

Labels may be numbers or strings; they are mapped to 0..k-1 in sorted order and the
original names kept as class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset, drop_small_classes

NAME = "file"
HOW_TO_GET = ("Give your file with --data-option path=FILE (scenario: options: {path: FILE}); "
              ".npz with arrays x and y (optionally x_test, y_test), or a CSV whose label "
              "column is named by label_column (default: the last column).")


def find(path: str | Path | None = None) -> Path | None:
    """The file if it exists (this dataset is only ever a path the user gives)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_file() else None


def load(path: str | Path | None = None, label_column: str | int = -1, header: bool = True,
         min_class_count: int = 2) -> Dataset:
    """Load ``path`` (.npz or CSV); classes with fewer than ``min_class_count`` samples go."""
    if path is None:
        raise DataError(f"dataset 'file' needs a path. {HOW_TO_GET}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"dataset 'file': {p} does not exist. {HOW_TO_GET}")
    name = p.name
    if name.endswith(".npz"):
        x, y, x_test, y_test = _npz(p)
    elif name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        x, y = _csv(p, label_column, header, "\t" if ".tsv" in name else ",")
        x_test = y_test = None
    else:
        raise DataError(f"dataset 'file': {p}: unknown format; use .npz or .csv. {HOW_TO_GET}")
    labels = y if y_test is None else np.concatenate([y, y_test])
    classes, codes = np.unique(labels.astype(str), return_inverse=True)
    data = Dataset(NAME, x, codes[: len(y)].astype(np.int64), [str(c) for c in classes],
                   x_test, None if y_test is None else codes[len(y):].astype(np.int64),
                   [f"loaded from {p}"])
    return drop_small_classes(data, min_class_count)


def _npz(p: Path):
    try:
        with np.load(p, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise DataError(f"{p}: needs arrays named x and y (has {', '.join(f.files)})")
            x = np.asarray(f["x"], dtype=np.float32)
            y = np.asarray(f["y"])
            x_test = np.asarray(f["x_test"], dtype=np.float32) if "x_test" in f else None
            y_test = np.asarray(f["y_test"]) if "y_test" in f else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read as .npz ({exc})") from exc
    _check(p, x, y)
    if (x_test is None) != (y_test is None):
        raise DataError(f"{p}: give both x_test and y_test, or neither")
    if x_test is not None:
        _check(p, x_test, y_test)
        if x_test.shape[1] != x.shape[1]:
            raise DataError(f"{p}: x_test has {x_test.shape[1]} features, x has {x.shape[1]}")
    return x.reshape(len(x), -1), y, x_test, y_test


def _csv(p: Path, label_column: str | int, header: bool, sep: str):
    import pandas as pd

    try:
        frame = pd.read_csv(p, header=0 if header else None, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{p}: cannot read as CSV ({exc})") from exc
    cols = list(frame.columns)
    if isinstance(label_column, int) or str(label_column).lstrip("-").isdigit():
        idx = int(label_column)
        if not -len(cols) <= idx < len(cols):
            raise DataError(f"{p}: label_column {idx} out of range ({len(cols)} columns)")
        label = cols[idx]
    elif label_column in cols:
        label = label_column
    else:
        raise DataError(f"{p}: no column {label_column!r}; columns: {', '.join(map(str, cols))}")
    features = frame.drop(columns=[label])
    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DataError(f"{p}: non-numeric feature column(s) {', '.join(bad[:5])}; encode them "
                        "as numbers first")
    x = features.to_numpy(dtype=np.float32)
    y = frame[label].to_numpy()
    _check(p, x, y)
    return x, y


def _check(p: Path, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim < 2 or len(x) != len(y) or len(x) < 2:
        raise DataError(f"{p}: x must be samples x features with one label per sample "
                        f"(x {x.shape}, y {y.shape})")
    if not np.isfinite(x).all():
        raise DataError(f"{p}: features contain NaN or infinite values; impute them first")
