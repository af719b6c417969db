"""One process at a time writes a run directory: ``tune`` and ``ablate --mode racing`` hold
an exclusive lock on ``<run>/.lock`` while they run; readers (report, export) need none."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    """Context manager holding the run directory's write lock (released when the process
    dies, however it dies, since the kernel drops ``flock`` locks with their file)."""

    def __init__(self, run_dir: str | Path, what: str) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{self.path.parent} is in use by {holder}; wait until it "
                            f"finishes before running {self.what} on it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"aac-sparse {self.what} (pid {os.getpid()})".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
