"""The MPI side of the parallel trainers: finding MPI, starting the ranks, failing cleanly.

``pip install 'aac-sparse[mpi]'`` brings mpi4py and the PyPI ``mpich`` wheel, whose
``mpiexec`` sits next to the interpreter: no system MPI and no root needed.  A run either
starts its ranks itself (:func:`launch`: ``mpiexec -n R python -m
aac_sparse.engine.parallel.rank JOB``, the parent following the epochs through files in
the job directory) or, started by the user under ``mpiexec``, runs on ``COMM_WORLD``.
Each rank gets ``usable cores // ranks`` threads (at least 1), so ranks do not
oversubscribe the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

INSTALL_HINT = "install it with: pip install 'aac-sparse[mpi]' (mpi4py and the mpich wheel)"
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS")
# set by mpiexec in every rank: MPICH/Hydra, Open MPI, PMIx
_RANK_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


class ParallelUnavailable(RuntimeError):
    """MPI (mpi4py or mpiexec) is not installed: a user error with a fix, not a crash."""


class ParallelRunError(RuntimeError):
    """A rank failed; the message says which and why."""


class NotRootRank(Exception):  # noqa: N818 - a signal, not an error
    """Raised on every rank but 0 after a run under the user's mpiexec: nothing to report."""


def under_mpiexec() -> bool:
    """True when this process is a rank started by mpiexec (not a plain interpreter)."""
    return any(v in os.environ for v in _RANK_VARS)


def launched_rank() -> int | None:
    """This process's rank as mpiexec set it in the environment (None outside mpiexec)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return None


def launched_size() -> int | None:
    """The number of ranks mpiexec started (None if the environment does not say)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if var in os.environ:
            return int(os.environ[var])
    return None


def mpi():
    """The ``mpi4py.MPI`` module, or :class:`ParallelUnavailable` saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ParallelUnavailable(f"the parallel trainers need mpi4py, which is not "
                                  f"installed ({exc}); {INSTALL_HINT}") from None
    return MPI


def check_installed() -> None:
    """:class:`ParallelUnavailable` unless mpi4py is importable (without starting MPI)."""
    try:
        import mpi4py  # noqa: F401 - the package only; mpi4py.MPI would initialise MPI
    except ImportError as exc:
        raise ParallelUnavailable(f"the parallel trainers need mpi4py, which is not "
                                  f"installed ({exc}); {INSTALL_HINT}") from None


def find_mpiexec() -> str:
    """The mpiexec next to this interpreter (the mpich wheel's), else one on PATH."""
    check_installed()
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise ParallelUnavailable(f"no mpiexec found beside {sys.executable} or on PATH; "
                                  f"{INSTALL_HINT}")
    return found


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def rank_environment(ranks: int) -> dict[str, str]:
    """The environment of launched ranks: thread counts divided among them."""
    env = dict(os.environ)
    budget = usable_cores()
    if os.environ.get("NUMBA_NUM_THREADS", "").isdigit():  # e.g. a tuning worker's share
        budget = int(os.environ["NUMBA_NUM_THREADS"])
    threads = str(max(1, budget // ranks))
    for var in THREAD_VARS:
        env[var] = threads
    return env


@contextlib.contextmanager
def abort_on_error(comm, error_file: Path | None = None) -> Iterator[None]:
    """Run a rank's work; an exception in it aborts every rank (no hang), after its
    traceback is printed and, for the launcher, written to ``error_file``."""
    try:
        yield
    except BaseException as exc:  # noqa: BLE001 - any failure must take the others down
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        text = f"rank {comm.Get_rank()}: {type(exc).__name__}: {exc}"
        sys.stderr.write(f"{text}\n{traceback.format_exc()}")
        sys.stderr.flush()
        if error_file is not None:
            with contextlib.suppress(OSError):
                error_file.write_text(text)
        time.sleep(1.0)  # let mpiexec forward the message before the abort kills its pipes
        comm.Abort(1)


def launch(job_dir: Path, ranks: int, on_row: Callable[[dict], bool],
           poll_s: float = 0.02) -> None:
    """Run the job in ``job_dir`` on ``ranks`` fresh MPI ranks and wait for it.

    Rank 0 appends each epoch's row to ``epochs.jsonl`` and waits for ``ack-N``: this
    process answers every row with ``on_row(row)`` ("stop" if it returns True), so a
    caller's pruning takes effect after exactly the epoch it saw.  A failing rank takes
    the others down (``abort_on_error``) and this raises :class:`ParallelRunError`; if
    this process is interrupted, the ranks are killed.
    """
    cmd = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m",
           "aac_sparse.engine.parallel.rank", str(job_dir)]
    rows_file, seen = job_dir / "epochs.jsonl", 0
    proc = subprocess.Popen(cmd, env=rank_environment(ranks), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    stderr_tail: list[str] = []
    try:
        import threading

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                stderr_tail.append(line)
                del stderr_tail[:-40]

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        while True:
            done = proc.poll() is not None
            if rows_file.exists():
                lines = rows_file.read_text().splitlines()
                for line in lines[seen:]:
                    if not line.endswith("}"):
                        break  # still being written
                    row = json.loads(line)
                    stop = bool(on_row(row))
                    ack = job_dir / f"ack-{row['epoch']}"
                    ack.with_suffix(".tmp").write_text("stop" if stop else "continue")
                    ack.with_suffix(".tmp").rename(ack)
                    seen += 1
            if done:
                break
            time.sleep(poll_s)
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            _kill_tree(proc.pid)
            proc.wait()
    if proc.returncode != 0:
        error = job_dir / "error.txt"
        why = error.read_text() if error.exists() else "".join(stderr_tail[-10:]).strip()
        raise ParallelRunError(f"the parallel run failed (mpiexec exit {proc.returncode}): "
                               f"{why or 'no message'}")


def _kill_tree(pid: int) -> None:
    try:
        import psutil

        parent = psutil.Process(pid)
        for proc in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    except Exception:  # noqa: BLE001 - best effort; the process may be gone already
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def wait_for_ack(job_dir: Path, epoch: int, parent: int, poll_s: float = 0.005) -> bool:
    """Rank 0 of a launched run: True if the parent says stop after ``epoch``; an error
    if the parent process ``parent`` is gone (the ranks must not outlive it)."""
    ack = job_dir / f"ack-{epoch}"
    while not ack.exists():
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            raise ParallelRunError(f"the launching process {parent} is gone") from None
        time.sleep(poll_s)
    return ack.read_text() == "stop"
