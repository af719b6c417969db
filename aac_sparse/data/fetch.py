"""``aac-sparse data fetch``: get the datasets that can be had automatically.

Two routes, tried in this order unless one is asked for:

* ``debian``: ``apt-get download`` fetches the package file into a temporary directory and
  ``dpkg -x`` unpacks it there (no root install, no R); apt checks the package's hash
  against the signed archive index.  The data files are then moved into the data directory.
* ``url``: the publisher's original files, downloaded with a progress report and checked
  against the published MD5 where one exists (otherwise the SHA-256 of what arrived is
  written beside the file so a later copy can be compared).

Every file lands atomically (``.part`` then rename): an interrupted fetch leaves nothing
that a loader would mistake for data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .places import default_data_dir

Say = Callable[[str], None]
Progress = Callable[[str, int, int | None], None]  # (file, bytes done, total or None)


@dataclass(frozen=True)
class DebianSource:
    """A dataset shipped in a Debian package: which files to take from where."""

    package: str
    inner_dir: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class UrlFile:
    """One file of a dataset at its publisher's address, with its published MD5 if any."""

    url: str
    name: str
    md5: str | None = None


FASHION = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DEBIAN_SOURCES: dict[str, DebianSource] = {
    "fashion-mnist": DebianSource("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist",
                                  FASHION),
    "all-leukemia": DebianSource("r-bioc-all", "usr/lib/R/site-library/ALL/data", ("ALL.rda",)),
}

_FM = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
URL_SOURCES: dict[str, tuple[UrlFile, ...]] = {
    "fashion-mnist": (
        UrlFile(_FM + FASHION[0], FASHION[0], "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        UrlFile(_FM + FASHION[1], FASHION[1], "25c81989df183df01b3e8a0aad5dffbe"),
        UrlFile(_FM + FASHION[2], FASHION[2], "bef4ecab320f06d8554ea6380940ec79"),
        UrlFile(_FM + FASHION[3], FASHION[3], "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "cifar10": (UrlFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                        "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
    "madelon": tuple(
        UrlFile(_UCI + f"madelon/MADELON/{f}", f)
        for f in ("madelon_train.data", "madelon_train.labels", "madelon_valid.data")
    ) + (UrlFile(_UCI + "madelon/madelon_valid.labels", "madelon_valid.labels"),),
    "higgs": (UrlFile(_UCI + "00280/HIGGS.csv.gz", "HIGGS.csv.gz"),),
    "gse13159": (UrlFile("https://ftp.ncbi.nlm.nih.gov/geo/series/GSE13nnn/GSE13159/matrix/"
                         "GSE13159_series_matrix.txt.gz", "GSE13159_series_matrix.txt.gz"),),
}

ROUTES = ("auto", "debian", "url")


def fetchable() -> list[str]:
    """Names ``aac-sparse data fetch`` knows a route for."""
    return sorted(set(DEBIAN_SOURCES) | set(URL_SOURCES))


def _present(dest: Path, files: tuple[str, ...]) -> bool:
    return all((dest / f).is_file() for f in files)


def fetch_dataset(
    name: str,
    target: Path | None = None,
    say: Say = print,
    progress: Progress | None = None,
    route: str = "auto",
) -> Path:
    """Download dataset ``name`` into ``target/name`` (default: the data dir); returns it."""
    if name not in fetchable():
        raise DataError(
            f"dataset {name!r} cannot be fetched automatically; fetchable: "
            f"{', '.join(fetchable())}. See README 'Datasets' for how to get it."
        )
    if route not in ROUTES:
        raise DataError(f"--source must be one of {', '.join(ROUTES)}, got {route!r}")
    dest = (target or default_data_dir()) / name
    debian, urls = DEBIAN_SOURCES.get(name), URL_SOURCES.get(name)
    for files in ([debian.files] if debian else []) + ([tuple(u.name for u in urls)]
                                                       if urls else []):
        if _present(dest, files):
            say(f"{name}: already present in {dest}")
            return dest
    errors: list[str] = []
    if debian and route in ("auto", "debian"):
        try:
            return _fetch_debian(name, debian, dest, say)
        except DataError as exc:
            if route == "debian" or not urls:
                raise
            errors.append(str(exc))
            say(f"{name}: the Debian route failed; trying the original download")
    if urls and route in ("auto", "url"):
        try:
            return _fetch_urls(name, urls, dest, say, progress)
        except DataError as exc:
            errors.append(str(exc))
    if not errors:
        raise DataError(f"dataset {name!r} has no {route!r} source; try --source auto")
    raise DataError("\n".join(errors))


# -- Debian ------------------------------------------------------------------------------

def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _fetch_debian(name: str, source: DebianSource, dest: Path, say: Say) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DataError(
            f"fetching {name!r} from Debian needs apt-get and dpkg (Debian/Ubuntu). Elsewhere, "
            f"download the Debian package {source.package!r} or the original files by hand "
            f"and put {', '.join(source.files)} into {dest}"
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
            part = dest / f".{f}.part"
            shutil.copyfile(src, part)
            os.replace(part, dest / f)
    say(f"{name}: ready in {dest}")
    return dest


# -- original URLs -----------------------------------------------------------------------

def _fetch_urls(name: str, files: tuple[UrlFile, ...], dest: Path, say: Say,
                progress: Progress | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        if (dest / f.name).is_file():
            continue
        say(f"{name}: downloading {f.url}")
        download(f, dest, progress)
    say(f"{name}: ready in {dest}")
    return dest


def download(f: UrlFile, dest: Path, progress: Progress | None = None,
             timeout: float = 30.0) -> Path:
    """Stream ``f.url`` into ``dest/f.name`` via a ``.part`` file; verify the MD5 if known."""
    import urllib.error  # only when something is downloaded
    import urllib.request

    part = dest / f".{f.name}.part"
    md5, sha = hashlib.md5(), hashlib.sha256()
    try:
        with urllib.request.urlopen(f.url, timeout=timeout) as resp, open(part, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                md5.update(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(f.name, done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        raise DataError(
            f"cannot download {f.url}: {getattr(exc, 'reason', exc)}\n"
            f"Download it by hand (on a machine with internet) and put it at {dest / f.name}"
        ) from exc
    if f.md5 is not None and md5.hexdigest() != f.md5:
        part.unlink(missing_ok=True)
        raise DataError(f"{f.url}: checksum mismatch (MD5 {md5.hexdigest()}, published "
                        f"{f.md5}); the download is damaged, nothing was kept")
    os.replace(part, dest / f.name)
    if f.md5 is None:
        (dest / f"{f.name}.sha256").write_text(f"{sha.hexdigest()}  {f.name}\n")
    return dest / f.name
