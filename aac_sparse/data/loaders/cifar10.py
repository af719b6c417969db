"""CIFAR-10, python version (Krizhevsky 2009): 60,000 colour images 32x32, 10 classes.

Read straight from ``cifar-10-python.tar.gz`` (or the extracted ``cifar-10-batches-py``
folder).  The batches are pickles; they are read with a restricted unpickler that only
rebuilds plain containers and numpy arrays, so a hostile file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset
from ..places import locate

NAME = "cifar10"
CANDIDATES = ("cifar-10-python.tar.gz", "cifar-10-batches-py/data_batch_1")
HOW_TO_GET = ("Download cifar-10-python.tar.gz (the CIFAR-10 'python version') and pass it "
              "with --data-option path=FILE (or: aac-sparse data fetch cifar10, where a "
              "network allows).")
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"),
    ("builtins", "bytes"), ("builtins", "bytearray"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds only containers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def find(path: str | Path | None = None) -> Path | None:
    """The tarball or a batch file of the extracted folder, or None."""
    try:
        return locate(NAME, CANDIDATES, path)
    except DataError:
        if path is not None and (Path(path).expanduser() / "data_batch_1").is_file():
            return Path(path).expanduser() / "data_batch_1"
        return None


def load(path: str | Path | None = None) -> Dataset:
    """CIFAR-10 as 50,000 training and 10,000 test rows of 3072 raw pixel values (0-255)."""
    found = find(path)
    if found is None:
        locate(NAME, CANDIDATES, path, how_to_get=HOW_TO_GET)  # raises with every place
        raise DataError(f"dataset 'cifar10' not found. {HOW_TO_GET}")
    read = _tar_reader(found) if found.name.endswith(".tar.gz") else _dir_reader(found.parent)
    batches = [_batch(read, name) for name in TRAIN]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    x_test, y_test = _batch(read, "test_batch")
    meta = _unpickle(read("batches.meta"), "batches.meta")
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in meta.get(b"label_names", meta.get("label_names", []))]
    if len(names) != 10:
        raise DataError(f"{found}: batches.meta has {len(names)} class names, 10 expected")
    return Dataset(NAME, x, y, names, x_test, y_test, [f"loaded from {found}"])


def _tar_reader(file: Path):
    try:
        tar = tarfile.open(file)
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{file}: not a readable tar.gz ({exc}). {HOW_TO_GET}") from exc

    def read(name: str) -> bytes:
        member = members.get(name)
        if member is None:
            raise DataError(f"{file}: no {name} inside the archive")
        try:
            return tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{file}: cannot read {name} ({exc}); truncated?") from exc

    return read


def _dir_reader(folder: Path):
    def read(name: str) -> bytes:
        if not (folder / name).is_file():
            raise DataError(f"{folder}: no {name}")
        return (folder / name).read_bytes()

    return read


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"CIFAR-10 {name}: not a CIFAR batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR-10 {name}: expected a dict, got {type(obj).__name__}")
    return obj


def _batch(read, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(read(name), name)
    data, labels = d.get(b"data"), d.get(b"labels")
    if data is None or labels is None:
        raise DataError(f"CIFAR-10 {name}: no data/labels entries")
    x = np.asarray(data)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise DataError(f"CIFAR-10 {name}: data {x.shape} and {len(y)} labels do not fit "
                        "(rows of 3072 pixels, one label each)")
    return x.astype(np.float32), y
