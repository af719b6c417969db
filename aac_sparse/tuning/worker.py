"""The worker side of the trial executor: a persistent child process that imports the target
once and then runs trial after trial, sending its intermediate reports and its result back
over a socket.

It is started by :class:`aac_sparse.tuning.executor.LocalExecutor` as a fresh interpreter
(``python -c``), never forked, because the engine runs Numba threads and fork is unsafe
after threads exist.  The environment (thread counts) is fixed by the parent before the
interpreter starts, so it holds before NumPy or Numba is imported.  This module imports only
the standard library, so a worker starts fast.

Protocol (pickled tuples over a :class:`multiprocessing.connection.Connection`):
parent -> worker: a hello dict, then one :class:`TrialSpec` per trial, ``None`` to stop.
worker -> parent: ``("ready", pid, import_error)``, then per trial ``("start", id, t)``,
``("report", id, step, value)`` any number of times, and ``("done", id, status, result,
error, start, end)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import mmap
import os
import pickle
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from aac_sparse.errors import UserError
from aac_sparse.tuning.trial import TrialSpec

# Statuses a target may return; "timeout" and "memout" are the executor's to give.
TARGET_STATUSES = ("ok", "diverged", "crashed", "pruned")

# A target is a top-level callable or an import path "package.module:function".
TargetRef = Callable[..., Mapping[str, Any]] | str

NO_PRUNE = -1
_FLAG_FORMAT = "<q"
FLAG_SIZE = struct.calcsize(_FLAG_FORMAT)


class PruneFlag:
    """An 8-byte shared-memory cell holding the id of the trial to prune (-1: none).

    The parent writes it; the worker's ``report`` callback reads it, so a prune needs no
    message round trip.  It lives in an unlinked temporary file whose descriptor is passed
    to the worker, so nothing is left behind whatever happens.
    """

    def __init__(self, fd: int, owner: bool) -> None:
        self.fd = fd
        self._owner = owner
        self._map = mmap.mmap(fd, FLAG_SIZE)

    @classmethod
    def create(cls) -> PruneFlag:
        """A new flag (parent side), initially 'prune nothing'."""
        import tempfile

        handle = tempfile.TemporaryFile(prefix="aac-sparse-prune-")
        fd = os.dup(handle.fileno())
        handle.close()
        os.ftruncate(fd, FLAG_SIZE)
        flag = cls(fd, owner=True)
        flag.set(NO_PRUNE)
        return flag

    def set(self, trial_id: int) -> None:
        """Ask the trial ``trial_id`` to stop at its next report (NO_PRUNE clears it)."""
        struct.pack_into(_FLAG_FORMAT, self._map, 0, trial_id)

    def get(self) -> int:
        """The trial id currently asked to stop, or NO_PRUNE."""
        return struct.unpack_from(_FLAG_FORMAT, self._map, 0)[0]

    def close(self) -> None:
        """Unmap the cell and close its descriptor."""
        self._map.close()
        if self._owner:
            os.close(self.fd)


def target_label(target: TargetRef) -> str:
    """A readable 'module:function' name for a target."""
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", "?")
    return f"{module}:{getattr(target, '__qualname__', repr(target))}"


def check_target(target: TargetRef) -> None:
    """Fail early, in the parent, on a target that no worker could load.

    An import path must look like 'package.module:function' and its module must be found
    (the module itself is imported only in the workers); a callable must be a picklable
    top-level function of an importable module.
    """
    if isinstance(target, str):
        module, sep, func = target.partition(":")
        if not sep or not module or not func.isidentifier():
            raise UserError(
                f"target {target!r} is not an import path of the form "
                "'package.module:function'"
            )
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            spec = None
            reason = f" ({exc})"
        else:
            reason = ""
        if spec is None:
            raise UserError(
                f"target module {module!r} (from {target!r}) cannot be found{reason}; "
                f"searched sys.path: {os.pathsep.join(map(str, sys.path))}. Install the "
                "package or add its folder to PYTHONPATH."
            )
        return
    if not callable(target):
        raise TypeError(f"target must be a callable or an import path string, not {target!r}")
    if getattr(target, "__module__", None) == "__main__":
        raise TypeError(
            f"target {target_label(target)} is defined in __main__, which worker processes "
            "cannot import; move it into a module or pass 'package.module:function'"
        )
    try:
        pickle.dumps(target)
    except Exception as exc:
        raise TypeError(
            f"target {target_label(target)} cannot be sent to a worker process ({exc}); "
            "use a top-level function or an import path 'package.module:function'"
        ) from exc


def load_target(target: TargetRef) -> Callable[..., Mapping[str, Any]]:
    """The target function itself: imports 'package.module:function' or returns the callable."""
    if not isinstance(target, str):
        return target
    module_name, _, func_name = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no function {func_name!r}") from None


def run_trial(
    target: Callable[..., Mapping[str, Any]],
    spec: TrialSpec,
    send: Callable[[tuple[Any, ...]], None],
    prune_requested: Callable[[], bool],
) -> tuple[str, dict[str, Any], str, float, float]:
    """Run one trial in this process: (status, result, error, start, end).

    This is the one place where an exception becomes a trial's status: 'crashed', with
    the traceback as error (a user mistake, such as a missing data file, with just its
    message); a malformed return value too.  A target that reports 'crashed' itself puts
    its text under ``error``.  Reports are passed to ``send`` as they come.
    """

    def report(step: int, value: float) -> bool:
        send(("report", spec.trial_id, int(step), float(value)))
        return prune_requested()

    start = time.time()
    send(("start", spec.trial_id, start))
    try:
        returned = target(spec.config, spec.instance, spec.seed, spec.budget, report)
    except UserError as exc:
        return "crashed", {}, f"{type(exc).__name__}: {exc}", start, time.time()
    except BaseException:  # noqa: B036 - SystemExit/KeyboardInterrupt in a target is a crash too
        return "crashed", {}, traceback.format_exc(), start, time.time()
    end = time.time()
    if not isinstance(returned, Mapping) or returned.get("status") not in TARGET_STATUSES:
        shown = repr(returned)
        if len(shown) > 300:
            shown = shown[:300] + "..."
        return (
            "crashed",
            {},
            f"target returned {shown}; expected a dict whose 'status' is one of "
            f"{TARGET_STATUSES}",
            start,
            end,
        )
    result = dict(returned)
    error = str(result.get("error", "")) if result["status"] == "crashed" else ""
    return result["status"], result, error, start, end


def _exit_when_orphaned(parent_pid: int) -> None:
    """Watchdog thread: end this worker if its parent is gone, even in the middle of a trial."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(70)


def _quiet_sender(conn: Connection) -> Callable[[tuple], None]:
    """``conn.send`` that ends this worker quietly, with one line, once the tuner is gone
    (a broken pipe is not a failure of the trial, and there is no one left to tell)."""
    def send(message: tuple) -> None:
        try:
            conn.send(message)
        except OSError:  # BrokenPipeError, ConnectionResetError: the tuner died
            try:
                sys.stderr.write(f"aac-sparse worker {os.getpid()}: the tuner is gone; "
                                 "exiting\n")
                sys.stderr.flush()
            finally:
                os._exit(70)
    return send


def serve(conn_fd: int, flag_fd: int) -> None:
    """Worker main loop: handshake, import the target once, then run trials until told to stop."""
    conn = Connection(conn_fd)
    send = _quiet_sender(conn)
    hello = conn.recv()
    sys.path[:] = hello["sys_path"]
    threading.Thread(
        target=_exit_when_orphaned, args=(hello["parent_pid"],), daemon=True
    ).start()
    flag = PruneFlag(flag_fd, owner=False)
    import_error = ""
    target: Callable[..., Mapping[str, Any]] | None = None
    try:
        target = load_target(pickle.loads(hello["target"]))
    except BaseException:  # noqa: B036 - reported to the parent, trial by trial
        import_error = (
            f"cannot load target {hello['label']}:\n{traceback.format_exc()}"
        )
    send(("ready", os.getpid(), import_error))
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        if target is None:
            now = time.time()
            send(("start", spec.trial_id, now))
            send(("done", spec.trial_id, "crashed", {}, import_error, now, now))
            continue
        trial_id = spec.trial_id
        status, result, error, start, end = run_trial(
            target, spec, send, lambda tid=trial_id: flag.get() == tid
        )
        try:
            send(("done", trial_id, status, result, error, start, end))
        except Exception as exc:  # pickling fails before anything is written
            send(
                ("done", trial_id, "crashed", {},
                 f"the target's result cannot be sent back (not picklable: {exc})", start, end)
            )


# The command a LocalExecutor runs: makes this package importable, then serves.
BOOT_CODE = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from aac_sparse.tuning.worker import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
)
