"""Data that needs no files: scikit-learn's bundled sets and a generated problem of any size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import DataError
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


CHUNK_ROWS = 256  # rows generated at a time: the float32 output is the only full array


def load_synthetic(
    n_samples: int = 2000,
    n_features: int = 100,
    n_classes: int = 2,
    n_informative: int | None = None,
    seed: int = 0,
) -> Dataset:
    """A classification problem of any width (e.g. 65536 features for scale studies).

    Like scikit-learn's ``make_classification`` (one Gaussian cluster per class around a
    vertex of a hypercube in the informative columns, unit Gaussian noise elsewhere), but
    generated straight into float32 in chunks of rows, each from its own seed: 7000 x
    65536 takes its 1.8 GB and nothing more.
    """
    for name, value, least in (("n_samples", n_samples, max(2, n_classes)),
                               ("n_features", n_features, 1), ("n_classes", n_classes, 2)):
        if not isinstance(value, int) or value < least:
            raise DataError(f"synthetic: {name} must be an integer of at least {least}, "
                            f"got {value!r}")
    if n_informative is None:
        n_informative = max(2, min(n_features, int(np.ceil(np.log2(n_classes))) + 8))
    if not isinstance(n_informative, int) or not 1 <= n_informative <= n_features:
        raise DataError(f"synthetic: n_informative must be an integer in 1..n_features "
                        f"({n_features}), got {n_informative!r}")
    root = np.random.SeedSequence(seed)
    setup, *chunks = root.spawn(1 + -(-n_samples // CHUNK_ROWS))
    rng = np.random.default_rng(setup)
    columns = np.sort(rng.choice(n_features, n_informative, replace=False))
    centroids = rng.choice([-1.0, 1.0], size=(n_classes, n_informative)).astype(np.float32)
    mixing = rng.uniform(-1, 1, (n_informative, n_informative)).astype(np.float32)
    y = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    x = np.empty((n_samples, n_features), dtype=np.float32)
    for c, seq in enumerate(chunks):
        lo, hi = c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n_samples)
        r = np.random.default_rng(seq)
        x[lo:hi] = r.standard_normal((hi - lo, n_features), dtype=np.float32)
        signal = r.standard_normal((hi - lo, n_informative), dtype=np.float32) @ mixing
        x[lo:hi, columns] = signal + centroids[y[lo:hi]]
    return Dataset("synthetic", x, y, [str(c) for c in range(n_classes)],
                   notes=[f"generated: {n_classes} Gaussian classes in {n_informative} of "
                          f"{n_features} columns (seed={seed})"])


load_digits = sklearn_loader("digits")
load_breast_cancer = sklearn_loader("breast_cancer")
load_wine = sklearn_loader("wine")
