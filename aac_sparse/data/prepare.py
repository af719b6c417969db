"""Splits and preprocessing: the same treatment for every dataset.

Stratified, seeded train/validation/test splits; per-feature standardisation with
statistics of the training split only (so nothing leaks from validation or test data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .dataset import Dataset


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


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every feature to zero mean, unit variance using ``train`` statistics only.

    Constant features (zero variance) are centred and left at scale 1.
    """
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _stratified(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        a, b = train_test_split(idx, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as exc:
        raise DataError(f"cannot make a stratified split of {len(y)} samples: {exc}") from exc
    return np.sort(a), np.sort(b)


def split_dataset(
    data: Dataset,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
) -> Split:
    """Stratified seeded split; a publisher's fixed test set is used when there is one.

    ``max_train`` keeps a stratified subsample of the training part (quick runs).
    """
    x, y = data.x, data.y
    if data.test_x is not None and data.test_y is not None:
        x_test, y_test = data.test_x, data.test_y
    else:
        rest, test = _stratified(y, test_fraction, seed)
        x_test, y_test = x[test], y[test]
        x, y = x[rest], y[rest]
    train, val = _stratified(y, val_fraction, seed + 1)
    if max_train is not None and max_train < len(train):
        keep, _ = _stratified(y[train], 1.0 - max_train / len(train), seed + 2)
        train = train[keep]
    x_tr, x_va, x_te = standardize(x[train], x[val], x_test)
    return Split(x_tr, y[train], x_va, y[val], x_te, y_test, data.n_classes)
