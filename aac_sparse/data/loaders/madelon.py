"""Madelon (NIPS 2003 feature selection challenge): 2600 x 500, two classes.

With the UCI files (``madelon_train.data/.labels``, ``madelon_valid.data/.labels``) the
training part is the 2000 training samples and the fixed test set the 600 validation
samples.  Without them, a generator following Guyon's published design makes data of the
same shape: 5 informative features, 15 linear combinations of them, 480 probes without
signal, 32 clusters on the vertices of a 5-dimensional hypercube (16 per class), 1 % label
noise.  Its notes say clearly that it is generated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset
from ..places import locate, search_dirs

NAME = "madelon"
CANDIDATES = ("madelon_train.data", "MADELON/madelon_train.data")
HOW_TO_GET = ("Download madelon_train.data, madelon_train.labels, madelon_valid.data and "
              "madelon_valid.labels from the UCI repository (dataset 'Madelon') into one "
              "folder and pass it with --data-option path=DIR (or: aac-sparse data fetch "
              "madelon, where a network allows).")
N_TRAIN, N_TEST, N_FEATURES = 2000, 600, 500


def find(path: str | Path | None = None) -> Path | None:
    """``madelon_train.data`` if the files are here, else None (the generator is used)."""
    if path is not None and Path(path).expanduser().is_file():
        return Path(path).expanduser()
    try:
        return locate(NAME, CANDIDATES, path)
    except DataError:
        return None


def load(path: str | Path | None = None, seed: int = 0, generate: bool = False) -> Dataset:
    """The UCI files when found (unless ``generate``), otherwise Guyon-style generated data."""
    train = None if generate else find(path)
    if path is not None and train is None and not generate:
        raise DataError(f"dataset 'madelon': no madelon_train.data at {path}. {HOW_TO_GET}")
    if train is None:
        return _generated(seed, path)
    folder = train.parent
    x = _matrix(folder / "madelon_train.data")
    y = _labels(folder / "madelon_train.labels", len(x))
    x_test = _matrix(folder / "madelon_valid.data")
    y_test = _labels(folder / "madelon_valid.labels", len(x_test))
    return Dataset(NAME, x, y, ["-1", "+1"], x_test, y_test, [f"loaded from {folder}"])


def _generated(seed: int, path: str | Path | None) -> Dataset:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=N_TRAIN + N_TEST, n_features=N_FEATURES, n_informative=5, n_redundant=15,
        n_repeated=0, n_classes=2, n_clusters_per_class=16, class_sep=2.0, flip_y=0.01,
        hypercube=True, shuffle=True, random_state=seed)
    places = ", ".join(str(p) for p in search_dirs(NAME, path))
    note = (f"generated (no Madelon files found in: {places}) with Guyon's design: 5 "
            f"informative, 15 redundant, 480 probes, seed {seed}")
    x = x.astype(np.float32)
    return Dataset(NAME, x[:N_TRAIN], y[:N_TRAIN].astype(np.int64), ["-1", "+1"],
                   x[N_TRAIN:], y[N_TRAIN:].astype(np.int64), [note])


def _matrix(file: Path) -> np.ndarray:
    if not file.is_file():
        raise DataError(f"{file}: missing (Madelon needs all four files). {HOW_TO_GET}")
    rows = []
    with open(file, encoding="ascii", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != N_FEATURES:
                raise DataError(f"{file}, line {number}: {len(parts)} values, "
                                f"{N_FEATURES} expected")
            try:
                rows.append(np.asarray(parts, dtype=np.float32))
            except ValueError as exc:
                raise DataError(f"{file}, line {number}: not a number ({exc})") from exc
    if not rows:
        raise DataError(f"{file}: empty")
    return np.stack(rows)


def _labels(file: Path, n: int) -> np.ndarray:
    if not file.is_file():
        raise DataError(f"{file}: missing (Madelon needs all four files). {HOW_TO_GET}")
    values = [line.strip() for line in file.read_text(errors="replace").splitlines()
              if line.strip()]
    if len(values) != n:
        raise DataError(f"{file}: {len(values)} labels for {n} samples")
    bad = sorted({v for v in values if v not in ("-1", "1", "+1")})
    if bad:
        raise DataError(f"{file}: labels must be -1 or 1, found {bad[:3]}")
    return np.asarray([0 if v == "-1" else 1 for v in values], dtype=np.int64)
