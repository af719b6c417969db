"""The one registry of datasets: name -> loader, what it is, where it comes from, how to get it.

Loaders live in :mod:`aac_sparse.data.loaders`, one module per source, and are imported
only when used.  A loader returns a :class:`~aac_sparse.data.dataset.Dataset` of raw
features; splits, standardisation and caching live in :mod:`aac_sparse.data.prepare`
and :mod:`aac_sparse.data.instances`, so every dataset gets the same treatment.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:  # numpy loads with the data, not with the list of datasets
    from .dataset import Dataset


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    ``module`` is the loader module under ``aac_sparse.data.loaders``; it has
    ``load(path=None, **options)`` and, for file-based data, ``find(path=None)``.
    ``generated`` marks data that needs no files; ``fallback`` data that is generated
    when its files are missing (Madelon).
    """

    name: str
    task: str
    shape: str
    n_classes: str
    source: str
    how_to_get: str
    module: str
    options: dict[str, str] = field(default_factory=dict)
    generated: bool = False
    fallback: bool = False
    needs_path: bool = False
    loader_name: str = "load"

    def loader(self) -> Callable[..., Dataset]:
        mod = importlib.import_module(f"aac_sparse.data.loaders.{self.module}")
        return getattr(mod, self.loader_name)

    def find(self, path: str | Path | None = None) -> Path | None:
        """Where the files are (None if missing, or for generated data)."""
        if self.generated:
            return None
        mod = importlib.import_module(f"aac_sparse.data.loaders.{self.module}")
        return mod.find(path)

    def availability(self) -> str:
        """``yes``, ``generated``, ``no``, ``generator`` (files missing, generator used) or
        ``path`` (data the user points to)."""
        if self.generated:
            return "generated"
        if self.needs_path:
            return "path"
        if self.find() is not None:
            return "yes"
        return "generator" if self.fallback else "no"


SKLEARN = "scikit-learn (bundled)"
REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "all-leukemia", "microarray classification", "128 x 12625", "10 (BT) / 6 (mol.biol)",
            "Bioconductor ALL (Chiaretti et al. 2004); Debian package r-bioc-all",
            "aac-sparse data fetch all-leukemia", "all_leukemia",
            {"label": "BT (B/T subtypes) or mol.biol (molecular classes)",
             "min_class_count": "drop classes with fewer samples (default 5)"},
        ),
        DatasetSpec(
            "fashion-mnist", "image classification", "70000 x 784", "10",
            "Zalando FashionMNIST (IDX files; Debian package dataset-fashion-mnist)",
            "aac-sparse data fetch fashion-mnist", "fashion_mnist",
        ),
        DatasetSpec(
            "gse13159", "microarray classification", "2096 x 54675", "18",
            "GEO GSE13159, MILE study (Haferlach et al. 2010), series matrix file",
            "download GSE13159_series_matrix.txt.gz from GEO; --data-option path=FILE",
            "gse13159", {"path": "the series matrix file (.txt or .txt.gz)",
                         "min_class_count": "drop classes with fewer samples (default 5)"},
        ),
        DatasetSpec(
            "madelon", "tabular classification", "2600 x 500", "2",
            "UCI/NIPS 2003 Madelon files; otherwise generated with Guyon's design",
            "download madelon_train.data/.labels, madelon_valid.data/.labels from UCI; "
            "--data-option path=DIR", "madelon", {"path": "directory of the UCI files",
                                                  "seed": "generator seed (no files)"},
            fallback=True,
        ),
        DatasetSpec(
            "higgs", "tabular classification", "11000000 x 28", "2",
            "UCI HIGGS (Baldi et al. 2014), HIGGS.csv.gz",
            "download HIGGS.csv.gz from UCI; --data-option path=FILE", "higgs",
            {"path": "HIGGS.csv or HIGGS.csv.gz", "n_rows": "read only the first rows"},
        ),
        DatasetSpec(
            "cifar10", "image classification", "60000 x 3072", "10",
            "CIFAR-10 python version (Krizhevsky 2009), cifar-10-python.tar.gz",
            "aac-sparse data fetch cifar10 (needs internet) or --data-option path=FILE",
            "cifar10", {"path": "cifar-10-python.tar.gz or the cifar-10-batches-py directory"},
        ),
        DatasetSpec(
            "file", "classification (your data)", "any", "any",
            "your own .npz (x, y[, x_test, y_test]) or CSV file",
            "--data-option path=FILE (scenario: options: {path: FILE})", "user_file",
            {"path": "the file", "label_column": "CSV label column (name or index, default -1)",
             "header": "CSV has a header row (default true)",
             "min_class_count": "drop classes with fewer samples (default 2)"},
            needs_path=True,
        ),
        DatasetSpec("digits", "image classification", "1797 x 64", "10", SKLEARN,
                    "installed with scikit-learn", "generated", generated=True,
                    loader_name="load_digits"),
        DatasetSpec("breast-cancer", "tabular classification", "569 x 30", "2", SKLEARN,
                    "installed with scikit-learn", "generated", generated=True,
                    loader_name="load_breast_cancer"),
        DatasetSpec("wine", "tabular classification", "178 x 13", "3", SKLEARN,
                    "installed with scikit-learn", "generated", generated=True,
                    loader_name="load_wine"),
        DatasetSpec("synthetic", "classification (generated)", "any", "any",
                    "Gaussian classes (like make_classification), in chunks",
                    "generated on demand", "generated",
                    {"n_samples": "rows", "n_features": "columns, e.g. 65536",
                     "n_classes": "classes", "n_informative": "informative columns",
                     "seed": "generator seed"},
                    generated=True, loader_name="load_synthetic"),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; unknown names list the known ones."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(REGISTRY))} "
            "(see: aac-sparse data list)"
        )
    return spec


def load_dataset(name: str, **options) -> Dataset:
    """Load a registered dataset by name with loader ``options`` (raw, unsplit)."""
    loader = get_spec(name).loader()
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        allowed = ", ".join(params) or "none"
        raise DataError(f"dataset {name!r}: unknown option(s) {', '.join(unknown)}; "
                        f"allowed: {allowed}")
    return loader(**options)
