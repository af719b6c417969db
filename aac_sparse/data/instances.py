"""Problem instances: (dataset, loader options, split or fold, subsample, preprocessing).

An :class:`Instance` is what the tuning layer hands to the target function.  Its ``id`` is
a stable, self-describing string (``all-leukemia?label=BT#fold=2/5``) that can be parsed
back, so a trial store row names its instance exactly.  ``load()`` returns the prepared
:class:`~aac_sparse.data.prepare.Split`; prepared arrays are cached on disk as ``.npy``
files (memory-mapped on load, so parallel workers share one copy in the page cache) under
a key of the instance id and a fingerprint of the source file.  ``features()`` describes
the instance for configurators (SMAC's instance features).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import DataError
from .dataset import Dataset
from .places import prepared_cache_dir
from .prepare import PREPROCESSING, Split, split_dataset
from .registry import get_spec, load_dataset

CACHE_VERSION = 1
ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
FEATURE_NAMES = ("n_samples", "n_features", "n_classes", "log_n_samples", "log_n_features",
                 "samples_per_feature", "class_entropy", "imbalance", "input_sparsity")


@dataclass(frozen=True)
class Instance:
    """One problem instance; build with :meth:`make` or :meth:`parse`."""

    dataset: str
    options: tuple[tuple[str, Any], ...] = ()
    fold: int | None = None
    n_folds: int | None = None
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_train: int | None = None
    preprocessing: str = "standardize"

    def __post_init__(self) -> None:
        get_spec(self.dataset)  # unknown dataset: clear DataError now, not in a worker
        if (self.fold is None) != (self.n_folds is None):
            raise DataError(f"instance of {self.dataset!r}: give both fold and n_folds")
        if self.n_folds is not None and not (2 <= self.n_folds and 0 <= self.fold < self.n_folds):
            raise DataError(f"instance of {self.dataset!r}: fold {self.fold} of "
                            f"{self.n_folds} is not a fold (need 0 <= fold < n_folds, n_folds>=2)")
        for name, v, lo, hi in (("val_fraction", self.val_fraction, 0.0, 0.9),
                                ("test_fraction", self.test_fraction, 0.0, 0.9)):
            if not lo < v < hi:
                raise DataError(f"instance of {self.dataset!r}: {name} must be in "
                                f"({lo}, {hi}), got {v}")
        if self.max_train is not None and self.max_train < 2:
            raise DataError(f"instance of {self.dataset!r}: max_train must be at least 2")
        if self.preprocessing not in PREPROCESSING:
            raise DataError(f"instance of {self.dataset!r}: preprocessing must be one of "
                            f"{', '.join(PREPROCESSING)}, got {self.preprocessing!r}")

    @classmethod
    def make(cls, dataset: str, options: Mapping[str, Any] | None = None, **kw: Any) -> Instance:
        """An instance with loader ``options`` given as a mapping (stored sorted)."""
        return cls(dataset, tuple(sorted((options or {}).items())), **kw)

    # -- identity ----------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Canonical id: ``dataset[?opts]#split[,seed=..,val=..,test=..,n=..,pre=..]``;
        fields at their defaults are left out."""
        head = self.dataset
        if self.options:
            head += "?" + urllib.parse.urlencode(
                [(k, _fmt(v)) for k, v in self.options], quote_via=urllib.parse.quote)
        parts = [f"fold={self.fold}/{self.n_folds}" if self.fold is not None else "holdout"]
        if self.seed != 0:
            parts.append(f"seed={self.seed}")
        if self.val_fraction != 0.1:
            parts.append(f"val={self.val_fraction:g}")
        if self.fold is None and self.test_fraction != 0.2:
            parts.append(f"test={self.test_fraction:g}")
        if self.max_train is not None:
            parts.append(f"n={self.max_train}")
        if self.preprocessing != "standardize":
            parts.append(f"pre={self.preprocessing}")
        return head + "#" + ",".join(parts)

    @classmethod
    def parse(cls, text: str) -> Instance:
        """Inverse of :attr:`id` (a bare dataset name means its default holdout split)."""
        head, _, tail = text.partition("#")
        dataset, _, query = head.partition("?")
        options = {k: yaml.safe_load(v) if v else v
                   for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        kw: dict[str, Any] = {}
        keys = {"seed": ("seed", int), "val": ("val_fraction", float),
                "test": ("test_fraction", float), "n": ("max_train", int),
                "pre": ("preprocessing", str)}
        for part in filter(None, tail.split(",")):
            key, _, value = part.partition("=")
            try:
                if key == "fold":
                    f, _, k = value.partition("/")
                    kw["fold"], kw["n_folds"] = int(f), int(k)
                elif key in keys:
                    name, conv = keys[key]
                    kw[name] = conv(value)
                elif key != "holdout":
                    raise ValueError(f"unknown field {key!r}")
            except ValueError as exc:
                raise DataError(f"instance id {text!r}: cannot read {part!r} ({exc})") from exc
        return cls.make(dataset, options, **kw)

    def __str__(self) -> str:
        return self.id

    # -- data ---------------------------------------------------------------------------
    def load(self, cache: bool = True) -> Split:
        """The prepared split; from the cache when it is there (memory-mapped)."""
        if not cache:
            return self._prepare(_raw(self.dataset, self.options))[0]
        d = self.cache_dir()
        if not (d / "meta.json").is_file():
            self._write_cache(d)
        return _read_split(d)

    def features(self) -> dict[str, float]:
        """Instance features for configurators (computed once, kept with the cache)."""
        d = self.cache_dir()
        if not (d / "meta.json").is_file():
            self._write_cache(d)
        meta = json.loads((d / "meta.json").read_text())
        return {k: float(meta["features"][k]) for k in FEATURE_NAMES}

    def info(self) -> dict[str, Any]:
        """Classes, notes and features of the prepared instance (from the cache)."""
        d = self.cache_dir()
        if not (d / "meta.json").is_file():
            self._write_cache(d)
        return json.loads((d / "meta.json").read_text())

    def cache_dir(self) -> Path:
        """``<cache>/<dataset>/<key>``: key = hash of the id and the source's fingerprint."""
        text = json.dumps([CACHE_VERSION, self.id, _fingerprint(self.dataset, self.options)])
        key = hashlib.sha1(text.encode()).hexdigest()[:16]
        return prepared_cache_dir() / self.dataset / key

    def _prepare(self, data: Dataset) -> tuple[Split, dict[str, Any]]:
        split = split_dataset(data, self.val_fraction, self.test_fraction, self.seed,
                              self.max_train, self.fold, self.n_folds, self.preprocessing)
        meta = {"id": self.id, "classes": data.classes, "notes": data.notes,
                "n_classes": data.n_classes,
                "features": compute_features(data, split),
                "sizes": {"train": len(split.y_train), "val": len(split.y_val),
                          "test": len(split.y_test)}}
        return split, meta

    def _write_cache(self, d: Path) -> None:
        """Prepare and write atomically: a temp dir renamed into place (a crash leaves only
        an ignored temp dir; a concurrent writer's finished copy wins)."""
        split, meta = self._prepare(_raw(self.dataset, self.options))
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.", dir=d.parent))
        try:
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(split, name)))
            meta["id"] = self.id
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if d.exists() and not (d / "meta.json").is_file():
                _discard(d)  # an incomplete directory from some earlier failure
            try:
                os.rename(tmp, d)
            except OSError:
                if not (d / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class InstanceSet:
    """An ordered, duplicate-free list of instances."""

    instances: list[Instance] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [i.id for i in self.instances]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise DataError(f"instance set lists the same instance twice: {', '.join(dupes)}")

    def __iter__(self):
        return iter(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.instances]

    def features(self) -> dict[str, list[float]]:
        """``{id: [feature values in FEATURE_NAMES order]}`` (SMAC's instance_features)."""
        return {i.id: [i.features()[k] for k in FEATURE_NAMES] for i in self.instances}


def folds(dataset: str, n_folds: int, which: Iterable[int] | None = None,
          options: Mapping[str, Any] | None = None, **kw: Any) -> list[Instance]:
    """Instances ``fold=f/n_folds`` of ``dataset`` for ``f`` in ``which`` (default: all)."""
    chosen = range(n_folds) if which is None else which
    return [Instance.make(dataset, options, fold=int(f), n_folds=n_folds, **kw) for f in chosen]


def compute_features(data: Dataset, split: Split) -> dict[str, float]:
    """Size, class balance and sparsity of an instance, as floats."""
    n, d = split.x_train.shape
    counts = np.bincount(split.y_train, minlength=data.n_classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    k = data.n_classes
    entropy = float(-(p * np.log(p)).sum() / math.log(k)) if k > 1 else 0.0
    raw = data.x if data.x.size <= 50_000_000 else data.x[:: max(1, data.x.shape[0] // 10000)]
    return {
        "n_samples": float(n), "n_features": float(d), "n_classes": float(data.n_classes),
        "log_n_samples": math.log10(max(n, 1)), "log_n_features": math.log10(max(d, 1)),
        "samples_per_feature": n / max(d, 1), "class_entropy": entropy,
        "imbalance": float(counts.max() / max(counts[counts > 0].min(), 1.0)),
        "input_sparsity": float(np.mean(raw == 0)),
    }


# -- helpers -----------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


_RAW: OrderedDict[tuple, Dataset] = OrderedDict()


def _raw(dataset: str, options: tuple[tuple[str, Any], ...]) -> Dataset:
    """Raw dataset, memoised for the last two loads (preparing k folds parses once)."""
    key = (dataset, options)
    if key in _RAW:
        _RAW.move_to_end(key)
        return _RAW[key]
    data = load_dataset(dataset, **dict(options))
    _RAW[key] = data
    while len(_RAW) > 2:
        _RAW.popitem(last=False)
    return data


def _fingerprint(dataset: str, options: tuple[tuple[str, Any], ...]) -> list:
    """Which source file (path, size, mtime) the data comes from, or that it is generated."""
    spec = get_spec(dataset)
    found = spec.find(dict(options).get("path"))
    if found is None:
        return ["generated"]
    st = found.stat()
    return [str(found.resolve()), st.st_size, st.st_mtime_ns]


def _discard(d: Path) -> None:
    """Move ``d`` aside (atomic, so a concurrent reader never sees it half-deleted), then
    delete it; losing the race to another process is fine."""
    aside = d.parent / f".{d.name}.stale-{os.getpid()}"
    try:
        os.rename(d, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _read_split(d: Path) -> Split:
    meta = json.loads((d / "meta.json").read_text())
    arrays = {name: np.asarray(np.load(d / f"{name}.npy", mmap_mode="r")) for name in ARRAYS}
    return Split(**arrays, n_classes=int(meta["n_classes"]))
