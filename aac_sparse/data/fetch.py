"""``aac-sparse data fetch``: get datasets that can be had offline from Debian's archive.

``apt-get download`` fetches the package file into a temporary directory and ``dpkg -x``
unpacks it there; nothing is installed system-wide and no R is needed.  The data files
are then moved into the aac-sparse data directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .registry import FASHION_FILES, default_data_dir


@dataclass(frozen=True)
class DebianSource:
    """A dataset shipped in a Debian package: which files to take from where."""

    package: str
    inner_dir: str
    files: tuple[str, ...]


DEBIAN_SOURCES: dict[str, DebianSource] = {
    "fashion-mnist": DebianSource(
        "dataset-fashion-mnist", "usr/share/datasets/fashion-mnist",
        tuple(FASHION_FILES.values()),
    ),
}


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def fetch_dataset(
    name: str, target: Path | None = None, say: Callable[[str], None] = print
) -> Path:
    """Download and unpack dataset ``name`` into ``target/name``; returns that directory."""
    source = DEBIAN_SOURCES.get(name)
    if source is None:
        raise DataError(
            f"dataset {name!r} cannot be fetched automatically; fetchable: "
            f"{', '.join(sorted(DEBIAN_SOURCES))}. See README 'Datasets' for how to get it."
        )
    dest = (target or default_data_dir()) / name
    if all((dest / f).is_file() for f in source.files):
        say(f"{name}: already present in {dest}")
        return dest
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DataError(
            f"fetching {name!r} needs apt-get and dpkg (Debian/Ubuntu). Elsewhere, download "
            f"the Debian package {source.package!r} or the original files by hand and put "
            f"{', '.join(source.files)} into {dest}"
        )
    with tempfile.TemporaryDirectory(prefix="aac-sparse-fetch-") as tmp:
        work = Path(tmp)
        say(f"{name}: downloading Debian package {source.package} ...")
        res = _run(["apt-get", "download", source.package], work)
        if res.returncode != 0 and os.geteuid() == 0:
            say("apt-get download failed; refreshing package lists (apt-get update) ...")
            _run(["apt-get", "update"], work)
            res = _run(["apt-get", "download", source.package], work)
        debs = sorted(work.glob(f"{source.package}_*.deb"))
        if res.returncode != 0 or not debs:
            raise DataError(
                f"apt-get download {source.package} failed:\n{res.stderr.strip()}\n"
                "Run 'apt-get update' (as root) and try again."
            )
        say(f"{name}: unpacking {debs[0].name} ...")
        unpacked = work / "root"
        res = _run(["dpkg", "-x", str(debs[0]), str(unpacked)], work)
        if res.returncode != 0:
            raise DataError(f"dpkg -x {debs[0].name} failed:\n{res.stderr.strip()}")
        dest.mkdir(parents=True, exist_ok=True)
        for f in source.files:
            src = unpacked / source.inner_dir / f
            if not src.is_file():
                raise DataError(f"package {source.package} does not contain {source.inner_dir}/{f}")
            tmp_dest = dest / f".{f}.part"
            shutil.copyfile(src, tmp_dest)
            os.replace(tmp_dest, dest / f)
    say(f"{name}: ready in {dest}")
    return dest
