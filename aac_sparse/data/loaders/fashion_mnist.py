"""FashionMNIST from its four IDX ``.gz`` files (Zalando; Debian ``dataset-fashion-mnist``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import Dataset
from ..idx import read_idx
from ..places import search_dirs

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_GET = ("Get them with:  aac-sparse data fetch fashion-mnist\n"
              "(or: apt-get install dataset-fashion-mnist)")


def places(path: str | Path | None = None) -> list[Path]:
    """Every directory searched for the four IDX files, in order."""
    return search_dirs("fashion-mnist", path, [DEBIAN_DIR])


def find(path: str | Path | None = None) -> Path | None:
    """The first directory holding all four files, or None."""
    for place in places(path):
        if all((place / f).is_file() for f in FILES.values()):
            return place
    return None


def load(path: str | Path | None = None) -> Dataset:
    """FashionMNIST: 60,000 training and 10,000 test images, 28x28 grey, 10 classes."""
    place = find(path)
    if place is None:
        searched = "\n  ".join(str(p) for p in places(path))
        raise DataError(
            "dataset 'fashion-mnist' not found: the four IDX files "
            f"({', '.join(FILES.values())}) are in none of:\n  {searched}\n{HOW_TO_GET}"
        )
    arrays = {k: read_idx(place / f) for k, f in FILES.items()}
    for part in ("train", "test"):
        if arrays[f"{part}_x"].shape[0] != arrays[f"{part}_y"].shape[0]:
            raise DataError(f"{place}: {part} images and labels differ in count")
    return Dataset(
        "fashion-mnist",
        arrays["train_x"].reshape(len(arrays["train_x"]), -1).astype(np.float32),
        arrays["train_y"].astype(np.int64),
        CLASSES,
        arrays["test_x"].reshape(len(arrays["test_x"]), -1).astype(np.float32),
        arrays["test_y"].astype(np.int64),
        [f"loaded from {place}"],
    )
