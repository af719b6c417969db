"""Where dataset files are looked for, and one error that names every place searched.

Order: a path the user gave (a file or a directory), then ``$AAC_SPARSE_DATA/<name>``,
then ``~/.cache/aac-sparse/data/<name>`` (where ``aac-sparse data fetch`` writes), then
system locations a loader knows (e.g. the Debian package's directory).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aac-sparse"


def default_data_dir() -> Path:
    """The directory ``aac-sparse data fetch`` writes into: ``$AAC_SPARSE_DATA`` or the cache."""
    env = os.environ.get("AAC_SPARSE_DATA")
    return Path(env).expanduser() if env else _cache_root() / "data"


def data_dirs() -> list[Path]:
    """Data directories in search order: ``$AAC_SPARSE_DATA``, then ``~/.cache``."""
    dirs = [default_data_dir()]
    if dirs[0] != _cache_root() / "data":
        dirs.append(_cache_root() / "data")
    return dirs


def prepared_cache_dir() -> Path:
    """Where prepared (split, standardised) arrays are cached: ``$AAC_SPARSE_CACHE`` or
    ``~/.cache/aac-sparse/prepared``."""
    env = os.environ.get("AAC_SPARSE_CACHE")
    return Path(env).expanduser() if env else _cache_root() / "prepared"


def search_dirs(name: str, path: str | Path | None = None,
                system: Sequence[str | Path] = ()) -> list[Path]:
    """Directories searched for dataset ``name``, in order (a file ``path`` is not a dir)."""
    places: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            places.append(p)
    places += [d / name for d in data_dirs()]
    places += [Path(s) for s in system]
    seen: set[Path] = set()
    return [p for p in places if not (p in seen or seen.add(p))]


def locate(
    name: str,
    candidates: Sequence[str],
    path: str | Path | None = None,
    system: Sequence[str | Path] = (),
    how_to_get: str = "",
) -> Path:
    """The first existing file among ``candidates`` (names or globs) in the search places.

    ``path`` may name the file itself.  When nothing is found, a :class:`DataError` lists
    every place searched and ``how_to_get``.
    """
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        if not p.exists():
            raise DataError(f"dataset {name!r}: {p} does not exist" + _hint(how_to_get))
    dirs = search_dirs(name, path, system)
    for d in dirs:
        for cand in candidates:
            hits = sorted(d.glob(cand)) if any(c in cand for c in "*?[") else [d / cand]
            for hit in hits:
                if hit.is_file():
                    return hit
    searched = "\n  ".join(str(d) for d in dirs)
    raise DataError(
        f"dataset {name!r} not found: none of {', '.join(candidates)} is in any of:\n"
        f"  {searched}" + _hint(how_to_get)
    )


def _hint(how_to_get: str) -> str:
    return f"\n{how_to_get}" if how_to_get else ""
