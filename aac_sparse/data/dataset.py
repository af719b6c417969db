"""The in-memory form every loader returns: raw features and integer labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """Features ``x`` (float32, samples x features), labels ``y`` (int64 in 0..k-1).

    ``test_x``/``test_y`` hold a split that the data's publisher fixed (FashionMNIST's
    10,000 test images); otherwise they are None and a split is drawn.  ``notes`` say
    where the data came from and what the loader did to it (dropped classes, generated).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def drop_small_classes(data: Dataset, min_count: int) -> Dataset:
    """Remove classes with fewer than ``min_count`` samples (they cannot be stratified),
    relabel the rest 0..k-1 and say so in ``notes``."""
    counts = np.bincount(data.y, minlength=data.n_classes)
    small = np.flatnonzero(counts < min_count)
    if small.size == 0:
        return data
    keep_classes = np.flatnonzero(counts >= min_count)
    if keep_classes.size < 2:
        from ..errors import DataError

        raise DataError(f"dataset {data.name!r}: fewer than two classes have at least "
                        f"{min_count} samples; lower min_class_count")
    new_label = np.full(data.n_classes, -1, dtype=np.int64)
    new_label[keep_classes] = np.arange(keep_classes.size)
    rows = new_label[data.y] >= 0
    dropped = ", ".join(f"{data.classes[c]} ({counts[c]})" for c in small)
    note = (f"dropped {int((~rows).sum())} samples of classes with fewer than {min_count} "
            f"samples, too few to stratify: {dropped}")
    return Dataset(data.name, data.x[rows], new_label[data.y[rows]],
                   [data.classes[c] for c in keep_classes], data.test_x, data.test_y,
                   [*data.notes, note])
