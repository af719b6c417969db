"""Data that needs no files: scikit-learn's bundled sets and ``make_classification``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..dataset import Dataset


def sklearn_loader(name: str) -> Callable[[], Dataset]:
    """A loader for scikit-learn's bundled ``load_<name>`` dataset."""

    def load() -> Dataset:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        names = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
        return Dataset(name.replace("_", "-"), bunch.data.astype(np.float32),
                       bunch.target.astype(np.int64), names,
                       notes=["scikit-learn bundled dataset"])

    load.__doc__ = f"scikit-learn's bundled ``{name}`` dataset."
    return load


def load_synthetic(
    n_samples: int = 2000,
    n_features: int = 100,
    n_classes: int = 2,
    n_informative: int | None = None,
    seed: int = 0,
) -> Dataset:
    """A ``make_classification`` problem of any width (e.g. 65536 features for scale studies)."""
    from sklearn.datasets import make_classification

    if n_informative is None:
        n_informative = max(2, min(n_features, int(np.ceil(np.log2(n_classes))) + 8))
    x, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=n_informative,
        n_redundant=0, n_classes=n_classes, random_state=seed,
    )
    return Dataset("synthetic", x.astype(np.float32), y.astype(np.int64),
                   [str(c) for c in range(n_classes)],
                   notes=[f"generated: make_classification(seed={seed})"])


load_digits = sklearn_loader("digits")
load_breast_cancer = sklearn_loader("breast_cancer")
load_wine = sklearn_loader("wine")
