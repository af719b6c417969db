"""The one registry of datasets: name -> how to load it, where it comes from, how to get it.

A loader returns a :class:`Dataset` of raw features and integer labels.  Preprocessing
(splits, standardisation) lives in :mod:`aac_sparse.data.prepare`, so every dataset gets
the same treatment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import read_idx


@dataclass
class Dataset:
    """Features ``x`` (float32, samples x features), labels ``y`` (int64 in 0..k-1).

    ``test_x``/``test_y`` hold a split that the data's publisher fixed (FashionMNIST's
    10,000 test images); otherwise they are None and a split is drawn.
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


@dataclass
class DatasetSpec:
    """A registered dataset."""

    name: str
    task: str
    shape: str
    n_classes: str
    source: str
    how_to_get: str
    loader: Callable[..., Dataset]
    available: Callable[[], bool] = lambda: True


def _cache_data_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aac-sparse" / "data"


def data_dirs() -> list[Path]:
    """Where datasets are looked for, in order: ``$AAC_SPARSE_DATA``, then ``~/.cache``."""
    dirs = [default_data_dir()]
    if dirs[0] != _cache_data_dir():
        dirs.append(_cache_data_dir())
    return dirs


def default_data_dir() -> Path:
    """The directory ``aac-sparse data fetch`` writes into: ``$AAC_SPARSE_DATA`` or the cache."""
    env = os.environ.get("AAC_SPARSE_DATA")
    return Path(env).expanduser() if env else _cache_data_dir()


# --------------------------------------------------------------------------- FashionMNIST

FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_places(path: str | Path | None = None) -> list[Path]:
    """Every directory searched for the FashionMNIST IDX files, in order."""
    places = [Path(path).expanduser()] if path else []
    for d in data_dirs():
        places.append(d / "fashion-mnist")
    places.append(FASHION_DEBIAN)
    return places


def _find_fashion(path: str | Path | None) -> Path | None:
    for place in fashion_mnist_places(path):
        if all((place / f).is_file() for f in FASHION_FILES.values()):
            return place
    return None


def load_fashion_mnist(path: str | Path | None = None) -> Dataset:
    """FashionMNIST: 60,000 training and 10,000 test images, 28x28 grey, 10 classes."""
    place = _find_fashion(path)
    if place is None:
        searched = "\n  ".join(str(p) for p in fashion_mnist_places(path))
        raise DataError(
            "dataset 'fashion-mnist' not found: the four IDX files "
            f"({', '.join(FASHION_FILES.values())}) are in none of:\n  {searched}\n"
            "Get them with:  aac-sparse data fetch fashion-mnist\n"
            "(or: apt-get install dataset-fashion-mnist)"
        )
    arrays = {k: read_idx(place / f) for k, f in FASHION_FILES.items()}
    for part in ("train", "test"):
        if arrays[f"{part}_x"].shape[0] != arrays[f"{part}_y"].shape[0]:
            raise DataError(f"{place}: {part} images and labels differ in count")
    return Dataset(
        "fashion-mnist",
        arrays["train_x"].reshape(len(arrays["train_x"]), -1).astype(np.float32),
        arrays["train_y"].astype(np.int64),
        FASHION_CLASSES,
        arrays["test_x"].reshape(len(arrays["test_x"]), -1).astype(np.float32),
        arrays["test_y"].astype(np.int64),
        [f"loaded from {place}"],
    )


# ---------------------------------------------------------------------------- scikit-learn


def _sklearn(name: str) -> Callable[[], Dataset]:
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


REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "fashion-mnist", "image classification", "70000 x 784", "10",
            "Zalando FashionMNIST (IDX files; Debian package dataset-fashion-mnist)",
            "aac-sparse data fetch fashion-mnist", load_fashion_mnist,
            lambda: _find_fashion(None) is not None,
        ),
        DatasetSpec("digits", "image classification", "1797 x 64", "10",
                    "scikit-learn (bundled)", "installed with scikit-learn", _sklearn("digits")),
        DatasetSpec("breast-cancer", "tabular classification", "569 x 30", "2",
                    "scikit-learn (bundled)", "installed with scikit-learn",
                    _sklearn("breast_cancer")),
        DatasetSpec("wine", "tabular classification", "178 x 13", "3",
                    "scikit-learn (bundled)", "installed with scikit-learn", _sklearn("wine")),
        DatasetSpec("synthetic", "classification (generated)", "any", "any",
                    "scikit-learn make_classification", "generated on demand", load_synthetic),
    ]
}


def load_dataset(name: str, **options) -> Dataset:
    """Load a registered dataset by name; unknown names list the known ones."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(REGISTRY))} "
            "(see: aac-sparse data list)"
        )
    try:
        return spec.loader(**options)
    except TypeError as exc:
        raise DataError(f"dataset {name!r}: bad option ({exc})") from exc
