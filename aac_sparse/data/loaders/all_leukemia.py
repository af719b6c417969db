"""Bioconductor ``ALL``: 128 acute lymphoblastic leukemia samples x 12625 probe sets.

The data is an S4 ``ExpressionSet`` saved by R.  ``rdata``'s high-level converter does not
handle it, so this walks the low-level parse tree: the ``exprs`` matrix lives in the
``assayData`` environment, the labels in the ``phenoData`` data frame.  No R is needed.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset, drop_small_classes
from ..places import locate

NAME = "all-leukemia"
LABELS = ("BT", "mol.biol")
CANDIDATES = ("ALL.rda", "ALL/data/ALL.rda", "usr/lib/R/site-library/ALL/data/ALL.rda",
              "ALL_*.tar.gz")
SYSTEM = ("/usr/lib/R/site-library/ALL/data",)
HOW_TO_GET = ("Get it with:  aac-sparse data fetch all-leukemia   (Debian package r-bioc-all, "
              "no R needed)\nor download the Bioconductor source package ALL_<version>.tar.gz "
              "and pass its path.")


def find(path: str | Path | None = None) -> Path | None:
    """The ALL data file (``.rda`` or Bioconductor tarball), or None if it is not here."""
    try:
        return locate(NAME, CANDIDATES, path, SYSTEM)
    except DataError:
        return None


def load(path: str | Path | None = None, label: str = "BT", min_class_count: int = 5) -> Dataset:
    """ALL leukemia expression data with labels ``BT`` (B/T subtypes, 10 classes) or
    ``mol.biol`` (molecular classes, 6); classes with fewer than ``min_class_count``
    samples are dropped (and the notes say which)."""
    if label not in LABELS:
        raise DataError(f"dataset {NAME!r}: label must be one of {', '.join(LABELS)}, "
                        f"got {label!r}")
    file = locate(NAME, CANDIDATES, path, SYSTEM, HOW_TO_GET)
    try:
        root = _parse(file)
        x, columns = _expression_and_pheno(root)
    except DataError:
        raise
    except Exception as exc:  # the parser raises many kinds on damaged input
        raise DataError(f"{file}: cannot read the ALL ExpressionSet ({type(exc).__name__}: "
                        f"{exc}); the file may be truncated or corrupt. {HOW_TO_GET}") from exc
    if label not in columns:
        raise DataError(f"{file}: phenoData has no column {label!r}")
    codes, levels = columns[label]
    known = codes >= 0
    y = codes[known]
    data = Dataset(NAME, x[known], y, levels,
                   notes=[f"loaded from {file}", f"label: {label}"])
    if (~known).any():
        data.notes.append(f"dropped {int((~known).sum())} samples without a {label} label")
    return drop_small_classes(data, min_class_count)


def _parse(file: Path):
    import rdata

    if file.name.endswith(".tar.gz"):
        with tarfile.open(file) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("data/ALL.rda")), None)
            if member is None:
                raise DataError(f"{file}: no ALL/data/ALL.rda inside this archive")
            raw = tar.extractfile(member).read()
        return rdata.parser.parse_data(raw).object
    return rdata.parser.parse_file(file).object


# -- walking R's serialisation tree ------------------------------------------------------

def _deref(obj):
    from rdata.parser import RObjectType

    while obj is not None and obj.info.type == RObjectType.REF:
        obj = obj.referenced_object
    return obj


def _name(obj) -> str | None:
    from rdata.parser import RObjectType

    obj = _deref(obj)
    if obj is None:
        return None
    if obj.info.type == RObjectType.SYM:
        return _deref(obj.value).value.decode()
    if obj.info.type == RObjectType.CHAR:
        return obj.value.decode()
    return None


def _pairlist(obj) -> dict:
    """A pairlist (attributes, slots, environment frames) as ``{tag: value}``."""
    from rdata.parser import RObjectType

    out = {}
    obj = _deref(obj)
    while obj is not None and obj.info.type == RObjectType.LIST:
        car, cdr = obj.value
        out[_name(obj.tag)] = _deref(car)
        obj = _deref(cdr)
    return out


def _strings(obj) -> list[str]:
    return [_deref(c).value.decode() for c in _deref(obj).value]


def _expression_and_pheno(root) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, list[str]]]]:
    top = _pairlist(root)
    eset = top.get("ALL") or next(iter(top.values()))
    slots = _pairlist(eset.attributes)
    env = slots["assayData"].value
    exprs = _pairlist(env.frame)["exprs"]
    dims = _pairlist(exprs.attributes)["dim"].value
    n_genes, n_samples = int(dims[0]), int(dims[1])
    # R stores matrices column-major: each sample's genes are contiguous.
    x = np.asarray(exprs.value, dtype=np.float32).reshape(n_samples, n_genes)
    pheno = _pairlist(slots["phenoData"].attributes)["data"]
    names = _strings(_pairlist(pheno.attributes)["names"])
    columns = {}
    for name, col in zip(names, pheno.value, strict=True):
        col = _deref(col)
        attrs = _pairlist(col.attributes) if col.attributes is not None else {}
        if "levels" not in attrs:
            continue
        codes = np.ma.filled(np.ma.asarray(col.value), 0).astype(np.int64) - 1  # NA -> -1
        columns[name] = (codes, _strings(attrs["levels"]))
    return x, columns
