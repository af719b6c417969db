"""GEO GSE13159, the MILE leukemia study: 2096 samples x 54675 probe sets, 18 classes.

The series matrix file is large (hundreds of MB of text), so it is read as a stream, one
line at a time: header lines (``!...``) give the sample ids and the labels (a
``!Sample_characteristics_ch1`` line such as ``"leukemia class: CML"``), then one probe per
row between ``!series_matrix_table_begin`` and ``!series_matrix_table_end``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset, drop_small_classes
from ..places import locate

NAME = "gse13159"
CANDIDATES = ("GSE13159_series_matrix.txt.gz", "GSE13159_series_matrix.txt")
HOW_TO_GET = ("Download GSE13159_series_matrix.txt.gz from GEO (series GSE13159, 'Series "
              "Matrix File') and pass it with --data-option path=FILE, or put it into the "
              "data directory's gse13159/ folder (or: aac-sparse data fetch gse13159, where a "
              "network allows).")
MISSING = {"", "null", "na", "nan", "n/a"}


def find(path: str | Path | None = None) -> Path | None:
    """The series matrix file, or None if it is not here."""
    try:
        return locate(NAME, CANDIDATES, path)
    except DataError:
        return None


def load(path: str | Path | None = None, label_key: str = "leukemia class",
         min_class_count: int = 5) -> Dataset:
    """Samples x probes float32 matrix with labels from the characteristic ``label_key``;
    missing values become the probe's mean; classes smaller than ``min_class_count`` go."""
    file = locate(NAME, CANDIDATES, path, how_to_get=HOW_TO_GET)
    opener = gzip.open if file.name.endswith(".gz") else open
    try:
        with opener(file, "rt", encoding="utf-8", errors="replace") as fh:
            samples, labels, rows, missing = _read(fh, file, label_key)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{file}: cannot read ({exc}); the file may be truncated. "
                        f"{HOW_TO_GET}") from exc
    x = np.stack(rows, axis=1)  # (samples, probes)
    notes = [f"loaded from {file}", f"label: {label_key}"]
    if missing:
        notes.append(f"{missing} missing values replaced by their probe's mean")
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    data = Dataset(NAME, np.ascontiguousarray(x), y.astype(np.int64),
                   [str(c) for c in classes], notes=notes)
    return drop_small_classes(data, min_class_count)


def _cells(line: str) -> list[str]:
    return [c.strip().strip('"') for c in line.rstrip("\n").split("\t")]


def _read(fh, file: Path, label_key: str):
    samples: list[str] | None = None
    characteristics: dict[str, list[str]] = {}
    rows: list[np.ndarray] = []
    missing = 0
    in_table = header_seen = ended = False
    for number, line in enumerate(fh, start=1):
        if not in_table:
            if line.startswith("!Sample_geo_accession"):
                samples = _cells(line)[1:]
            elif line.startswith("!Sample_characteristics_ch1"):
                values = _cells(line)[1:]
                key = values[0].split(":", 1)[0].strip() if values else ""
                characteristics.setdefault(key, values)
            elif line.startswith("!series_matrix_table_begin"):
                in_table = True
            continue
        if line.startswith("!series_matrix_table_end"):
            ended = True
            break
        cells = _cells(line)
        if not header_seen:
            header_seen = True
            if cells[0] != "ID_REF":
                raise DataError(f"{file}, line {number}: expected the ID_REF header row")
            if samples is not None and cells[1:] != samples:
                raise DataError(f"{file}, line {number}: the table's sample ids differ from "
                                "!Sample_geo_accession")
            samples = cells[1:]
            continue
        values = cells[1:]
        if len(values) != len(samples):
            raise DataError(f"{file}, line {number}: {len(values)} values for "
                            f"{len(samples)} samples")
        row, n_missing = _row(values, file, number)
        missing += n_missing
        rows.append(row)
    if not ended:
        raise DataError(f"{file}: no !series_matrix_table_end; the file is truncated. "
                        f"{HOW_TO_GET}")
    if samples is None or not rows:
        raise DataError(f"{file}: no expression table found; is this a GEO series matrix?")
    if label_key not in characteristics:
        found = ", ".join(repr(k) for k in characteristics) or "none"
        raise DataError(f"{file}: no sample characteristic {label_key!r}; found: {found} "
                        "(choose one with --data-option label_key=...)")
    labels = [v.split(":", 1)[1].strip() if ":" in v else v
              for v in characteristics[label_key]]
    if len(labels) != len(samples):
        raise DataError(f"{file}: {len(labels)} labels for {len(samples)} samples")
    return samples, labels, rows, missing


def _row(values: list[str], file: Path, number: int) -> tuple[np.ndarray, int]:
    """One probe's values as float32, missing ones replaced by the mean of the others."""
    gaps = [i for i, v in enumerate(values) if v.lower() in MISSING]
    try:
        if not gaps:
            return np.asarray(values, dtype=np.float32), 0
        row = np.asarray([np.nan if i in set(gaps) else v for i, v in enumerate(values)],
                         dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{file}, line {number}: not a number ({exc})") from exc
    fill = np.nanmean(row) if len(gaps) < len(values) else 0.0
    row[np.isnan(row)] = fill
    return row, len(gaps)
