"""Splits and preprocessing: the same treatment for every dataset.

Stratified, seeded train/validation/test splits or k folds; per-feature scaling with
statistics of the training split only (nothing leaks from validation or test data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:  # numpy loads when data is prepared, not when a scenario is read
    import numpy as np

    from .dataset import Dataset

PREPROCESSING = ("standardize", "minmax", "none")


@dataclass
class Split:
    """Float32 arrays ready for training."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def scale(train: np.ndarray, *others: np.ndarray, method: str = "standardize") -> list[np.ndarray]:
    """Scale every feature with ``train`` statistics only, float32 out.

    ``standardize``: zero mean, unit variance (constant features centred, scale 1);
    ``minmax``: train range mapped to [0, 1]; ``none``: unchanged.
    """
    import numpy as np

    arrays = (train, *others)
    if method == "none":
        return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
    if method == "standardize":
        shift = train.mean(axis=0, dtype=np.float64)
        width = train.std(axis=0, dtype=np.float64)
    elif method == "minmax":
        shift = train.min(axis=0).astype(np.float64)
        width = train.max(axis=0).astype(np.float64) - shift
    else:
        raise DataError(f"unknown preprocessing {method!r}; choose one of "
                        f"{', '.join(PREPROCESSING)}")
    width[width == 0] = 1.0
    shift32, inv32 = shift.astype(np.float32), (1.0 / width).astype(np.float32)
    out = []
    for a in arrays:
        b = np.asarray(a, dtype=np.float32) - shift32  # float32 math: half the memory
        b *= inv32
        out.append(np.ascontiguousarray(b))
    return out


def stratified(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, part)`` with ``part`` a stratified ``fraction`` of ``y``, sorted."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        a, b = train_test_split(idx, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as exc:
        raise DataError(f"cannot make a stratified split of {len(y)} samples "
                        f"({fraction:g} held out): {exc}") from exc
    return np.sort(a), np.sort(b)


def fold_indices(y: np.ndarray, fold: int, n_folds: int, seed: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """``(train, test)`` indices of stratified fold ``fold`` (0-based) of ``n_folds``."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    if not 0 <= fold < n_folds:
        raise DataError(f"fold must be in 0..{n_folds - 1}, got {fold}")
    smallest = int(np.bincount(y).min())
    if smallest < n_folds:
        raise DataError(f"cannot make {n_folds} stratified folds: the smallest class has "
                        f"{smallest} samples (raise min_class_count or use fewer folds)")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    train, test = list(folds.split(np.zeros(len(y)), y))[fold]
    return np.sort(train), np.sort(test)


def split_dataset(
    data: Dataset,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
    fold: int | None = None,
    n_folds: int | None = None,
    preprocessing: str = "standardize",
) -> Split:
    """Stratified seeded split of ``data``.

    Without ``fold``: a publisher's fixed test set is used when there is one, otherwise a
    stratified ``test_fraction``.  With ``fold``/``n_folds``: fold ``fold`` of a stratified
    k-fold partition is the test set (over the training part when the publisher fixed a
    test set).  Validation is a stratified ``val_fraction`` of the rest; ``max_train``
    keeps a stratified subsample of the training part.
    """
    import numpy as np

    x, y = data.x, data.y
    if fold is not None:
        if n_folds is None:
            raise DataError("fold needs n_folds")
        rest, test = fold_indices(y, fold, n_folds, seed)
        x_test, y_test = x[test], y[test]
        x, y = x[rest], y[rest]
    elif data.test_x is not None and data.test_y is not None:
        x_test, y_test = data.test_x, data.test_y
    else:
        rest, test = stratified(y, test_fraction, seed)
        x_test, y_test = x[test], y[test]
        x, y = x[rest], y[rest]
    train, val = stratified(y, val_fraction, seed + 1)
    if max_train is not None and max_train < len(train):
        keep, _ = stratified(y[train], 1.0 - max_train / len(train), seed + 2)
        train = train[keep]
    x_tr, x_va, x_te = scale(x[train], x[val], x_test, method=preprocessing)
    return Split(x_tr, y[train], x_va, y[val], x_te, np.asarray(y_test), data.n_classes)
