"""Run tuning trials in worker processes whose wall-time and memory limits actually hold.

The configurators (SMAC, Optuna) are driven by ask/tell; every trial runs here instead of in
their own runners.  An executor takes :class:`TrialSpec` s (``submit``), hands back events in
arrival order (``poll``): :class:`Report` for each intermediate value a target reports and
exactly one :class:`Finished` per submitted trial, whatever happens to it.  ``prune`` asks a
running trial to stop at its next report.

:class:`LocalExecutor` keeps ``n_workers`` persistent worker processes
(:mod:`aac_sparse.tuning.worker`); each imports the target once and runs trial after trial,
so Numba compiles once per worker.  A monitor thread reads the workers' messages and checks
every busy worker about every 0.1 s:

* wall time: past ``wall_time`` seconds since the trial started, the worker and its children
  are killed (SIGKILL) and replaced, status ``timeout``.  The monitor wakes exactly at the
  deadline, so the kill comes a few milliseconds after the limit.
* memory: resident memory (RSS, via psutil) of the worker plus its child processes, not
  virtual memory; over ``memory_mb`` MiB -> killed and replaced, status ``memout``.  A spike
  shorter than the check interval (allocate, touch and free within ~0.1 s) can escape it.
  ``RLIMIT_AS`` would make such allocations fail instead, but it limits *virtual* memory,
  which Numba/LLVM and thread stacks reserve by the gigabyte without using, so healthy
  trials would die; it is deliberately not used.  The limit covers the whole worker process
  (interpreter and imported libraries included), like any per-process limit.
* an exception in the target -> ``crashed`` with the traceback, and the worker lives on; a
  worker that dies (``os._exit``, a segfault, a kill from outside) -> ``crashed`` with the
  exit code or signal, and a fresh worker takes its place.

Workers are started as fresh interpreters (never forked: Numba threads make fork unsafe) in
their own process group, with numeric thread counts fixed in their environment before any
import: NUMBA_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS default
to usable cores // n_workers (at least 1) unless the parent's environment already sets them;
``env`` overrides both.  POSIX only.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import psutil

from aac_sparse.errors import ConfigError
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec
from aac_sparse.tuning.worker import (
    BOOT_CODE,
    NO_PRUNE,
    PruneFlag,
    TargetRef,
    check_target,
    target_label,
)

MIB = 2**20
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CLOSED_ERROR = "executor closed"


@dataclass(frozen=True)
class Report:
    """An intermediate value a running trial reported (e.g. validation error after an epoch)."""

    trial_id: int
    step: int
    value: float


@dataclass(frozen=True)
class Finished:
    """A trial is over; ``outcome.status`` says how.  Exactly one per submitted trial."""

    spec: TrialSpec
    outcome: TrialOutcome


Event = Report | Finished


class NoFreeSlot(RuntimeError):
    """``submit`` was called while every slot was busy (check ``free_slots()`` first)."""


_E = TypeVar("_E", bound="Executor")


class Executor(ABC):
    """What the tuning loop needs from a place that runs trials (local processes or Dask)."""

    n_slots: int

    @abstractmethod
    def submit(self, spec: TrialSpec) -> None:
        """Start ``spec`` on a free slot; :class:`NoFreeSlot` if there is none."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more trials ``submit`` accepts right now."""

    @abstractmethod
    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Events since the last poll, in arrival order; waits up to ``timeout`` s for one."""

    @abstractmethod
    def prune(self, trial_id: int) -> None:
        """Ask a running trial to stop: its next ``report`` call returns True."""

    @abstractmethod
    def running(self) -> list[TrialSpec]:
        """The trials submitted and not yet finished (their Finished not yet produced)."""

    @abstractmethod
    def close(self) -> list[Event]:
        """Stop everything; return the events nobody polled, with a ``crashed`` Finished
        (error ``"executor closed"``) for each trial that was still running.  Never hangs."""

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_environment(threads: int, env: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A worker's environment: ours, thread counts defaulting to ``threads``, then ``env``."""
    out = dict(os.environ)
    for var in THREAD_VARS:
        out.setdefault(var, str(threads))
    out.update({str(k): str(v) for k, v in (env or {}).items()})
    return out


def describe_exit(returncode: int | None) -> str:
    """Human words for a process's exit status (negative: killed by that signal)."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        text = f"killed by signal {name} ({-returncode})"
        if -returncode == signal.SIGKILL:
            text += " from outside, e.g. by the kernel's out-of-memory killer"
        return text
    return f"exited with code {returncode}"


def _check_limits(n_workers: int, wall_time: float | None, memory_mb: float | None) -> None:
    if n_workers < 1:
        raise ConfigError(f"n_workers must be at least 1, got {n_workers}")
    if wall_time is not None and not wall_time > 0:
        raise ConfigError(f"wall_time must be a positive number of seconds, got {wall_time}")
    if memory_mb is not None and not memory_mb > 0:
        raise ConfigError(f"memory_mb must be a positive number of MiB, got {memory_mb}")


_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class _Worker:
    """The parent's handle on one worker process and the trial it runs."""

    def __init__(self, name: str, target: TargetRef, environ: dict[str, str],
                 flag: PruneFlag) -> None:
        self.name = name
        self.flag = flag
        self.spec: TrialSpec | None = None
        self.dispatched = 0.0  # monotonic time of submit
        self.dispatched_wall = 0.0
        self.started: float | None = None  # monotonic time the worker said "start"
        self.started_wall = 0.0
        self.peak_rss = 0
        self.ready = False
        self.trials_done = 0
        self.descendants: list[psutil.Process] = []
        parent_sock, child_sock = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BOOT_CODE.format(root=_PACKAGE_ROOT),
                 str(child_sock.fileno()), str(flag.fd)],
                pass_fds=(child_sock.fileno(), flag.fd),
                env=environ,
                start_new_session=True,
            )
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        self.conn: Connection | None = Connection(parent_sock.detach())
        try:
            self.ps: psutil.Process | None = psutil.Process(self.proc.pid)
        except psutil.Error:
            self.ps = None
        # The target travels pickled inside the hello, to be loaded once sys.path is set.
        hello = {"sys_path": list(sys.path), "parent_pid": os.getpid(),
                 "target": pickle.dumps(target), "label": target_label(target)}
        self.send(hello)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: Any) -> bool:
        """Send to the worker; False if it is gone (its death is then seen by the monitor)."""
        if self.conn is None:
            return False
        try:
            self.conn.send(message)
        except OSError:
            return False
        return True

    def assign(self, spec: TrialSpec) -> bool:
        self.flag.set(NO_PRUNE)
        self.spec = spec
        self.dispatched = time.monotonic()
        self.dispatched_wall = time.time()
        self.started = None
        self.started_wall = 0.0
        self.peak_rss = 0
        return self.send(spec)

    def refresh_descendants(self) -> None:
        """Re-list the worker's child processes (a full process-table scan, so not too often)."""
        try:
            self.descendants = self.ps.children(recursive=True) if self.ps else []
        except psutil.Error:
            self.descendants = []

    def rss(self) -> int:
        """Resident memory of the worker and its known children, in bytes."""
        total = 0
        for proc in [self.ps, *self.descendants]:
            if proc is None:
                continue
            with contextlib.suppress(psutil.Error):  # it may have exited meanwhile
                total += proc.memory_info().rss
        return total

    def kill(self) -> int | None:
        """SIGKILL the worker, its process group and its children; its exit status."""
        kids: list[psutil.Process] = []
        if self.ps is not None:
            try:
                kids = self.ps.children(recursive=True)
            except psutil.Error:
                kids = list(self.descendants)
        with contextlib.suppress(OSError):  # already gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        for kid in kids:
            with contextlib.suppress(psutil.Error):
                kid.kill()
        return self.reap(5.0)

    def reap(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the process to end; close our end of the pipe."""
        try:
            returncode: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        return returncode

    def outcome(self, status: str, error: str) -> TrialOutcome:
        """The outcome of a trial the parent ended (killed or lost), timed by the parent."""
        start = self.started_wall or self.dispatched_wall
        return TrialOutcome(status=status, error=error, start=start, end=time.time(),
                            worker=self.name, host=socket.gethostname())


class LocalExecutor(Executor):
    """Run trials in ``n_workers`` persistent local worker processes with enforced limits.

    ``target`` is a picklable top-level function or an import path "package.module:function";
    ``wall_time`` is in seconds, ``memory_mb`` in MiB of resident memory (None: no limit);
    ``env`` is added to the workers' environment.  ``name`` prefixes worker names
    (``local-0``, ``local-1``, ...).  A trial whose worker has not begun it within
    ``start_timeout`` s (a hanging import) ends as crashed.
    """

    def __init__(
        self,
        target: TargetRef,
        n_workers: int = 1,
        wall_time: float | None = None,
        memory_mb: float | None = None,
        env: Mapping[str, Any] | None = None,
        *,
        name: str = "local",
        check_interval: float = 0.1,
        start_timeout: float = 300.0,
    ) -> None:
        _check_limits(n_workers, wall_time, memory_mb)
        check_target(target)
        self.target = target
        self.n_slots = n_workers
        self.wall_time = wall_time
        self.memory_mb = memory_mb
        self.name = name
        self.check_interval = check_interval
        self.start_timeout = start_timeout
        self.host = socket.gethostname()
        self._environ = worker_environment(max(1, usable_cores() // n_workers), env)
        self._events: queue.Queue[Event] = queue.Queue()
        self._lock = threading.RLock()
        self._closed = False
        self._monitor_error: BaseException | None = None
        self._flags = [PruneFlag.create() for _ in range(n_workers)]
        self._startup_failures = [0] * n_workers
        self._broken: dict[int, str] = {}
        self._next_scan = 0.0
        self._workers: list[_Worker | None] = []
        try:
            for slot in range(n_workers):
                self._workers.append(self._spawn(slot))
        except BaseException:
            self._kill_all()
            raise
        self._monitor = threading.Thread(
            target=self._monitor_loop, name=f"{name}-executor-monitor", daemon=True
        )
        self._monitor.start()

    # -- public interface -------------------------------------------------------------

    def submit(self, spec: TrialSpec) -> None:
        with self._lock:
            self._raise_if_unusable()
            if any(spec.trial_id == s.trial_id for s in self.running()):
                raise ValueError(f"trial {spec.trial_id} is already running")
            for slot, worker in enumerate(self._workers):
                if worker is not None and worker.spec is None:
                    if not worker.assign(spec):
                        # The worker died before taking the trial: replace it, and give the
                        # trial to the replacement rather than report a crash it never had.
                        worker.spec = None
                        self._worker_died(slot, worker)
                        worker = self._workers[slot]
                        if worker is None or not worker.assign(spec):
                            raise NoFreeSlot(f"worker {self.name}-{slot} cannot be started")
                    return
            broken = "".join(f"; {self.name}-{s} is broken: {why}"
                             for s, why in self._broken.items())
            raise NoFreeSlot(f"no free slot: {len(self.running())} of {self.n_slots} workers "
                             f"are busy{broken}")

    def free_slots(self) -> int:
        with self._lock:
            if self._closed:
                return 0
            return sum(1 for w in self._workers if w is not None and w.spec is None)

    def poll(self, timeout: float = 0.0) -> list[Event]:
        events: list[Event] = []
        try:
            if timeout > 0 and not self._closed:
                events.append(self._events.get(timeout=timeout))
            else:
                events.append(self._events.get_nowait())
        except queue.Empty:
            if not self._closed:
                with self._lock:
                    self._raise_if_unusable()
            return events
        return events + self._pending()

    def _pending(self) -> list[Event]:
        events: list[Event] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def prune(self, trial_id: int) -> None:
        with self._lock:
            for worker in self._workers:
                if worker is not None and worker.spec is not None \
                        and worker.spec.trial_id == trial_id:
                    worker.flag.set(trial_id)

    def running(self) -> list[TrialSpec]:
        with self._lock:
            return [w.spec for w in self._workers if w is not None and w.spec is not None]

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for diagnostics and tests)."""
        with self._lock:
            return [w.pid for w in self._workers if w is not None]

    def close(self) -> list[Event]:
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        self._monitor.join(timeout=5.0)
        closing: list[Event] = []
        with self._lock:
            for worker in self._workers:
                if worker is not None and worker.conn is not None:
                    self._drain(worker)  # results that arrived just before closing
            for worker in self._workers:
                if worker is None:
                    continue
                if worker.spec is not None:
                    spec = worker.spec
                    worker.spec = None
                    worker.kill()
                    closing.append(Finished(spec, worker.outcome("crashed", CLOSED_ERROR)))
                else:
                    worker.send(None)
            deadline = time.monotonic() + 1.0
            for worker in self._workers:
                if worker is not None and worker.conn is not None:
                    if worker.reap(max(0.0, deadline - time.monotonic())) is None:
                        worker.kill()
            self._workers = [None] * self.n_slots
            for flag in self._flags:
                flag.close()
            self._flags = []
        return self._pending() + closing

    # -- worker management --------------------------------------------------------------

    def _spawn(self, slot: int) -> _Worker:
        return _Worker(f"{self.name}-{slot}", self.target, self._environ, self._flags[slot])

    def _raise_if_unusable(self) -> None:
        if self._closed:
            raise RuntimeError("the executor is closed")
        if self._monitor_error is not None:
            raise RuntimeError("the executor's monitor thread failed") from self._monitor_error
        if len(self._broken) == self.n_slots:
            reasons = "; ".join(f"{self.name}-{s}: {why}" for s, why in self._broken.items())
            raise RuntimeError(f"no worker can start ({reasons}); check the environment "
                               f"given to the workers and that {sys.executable} runs")

    def _emit(self, event: Event) -> None:
        self._events.put(event)

    def _finish(self, worker: _Worker, outcome: TrialOutcome) -> None:
        spec = worker.spec
        assert spec is not None
        worker.spec = None
        worker.trials_done += 1
        self._emit(Finished(spec, outcome))

    def _replace(self, slot: int, old: _Worker) -> None:
        """Start a fresh worker in ``slot`` (unless it keeps dying at start-up)."""
        if not old.ready:
            self._startup_failures[slot] += 1
        if self._startup_failures[slot] >= 3:
            self._broken[slot] = (f"its worker died at start-up 3 times in a row, last "
                                  f"{describe_exit(old.proc.returncode)}")
            self._workers[slot] = None
            return
        self._workers[slot] = self._spawn(slot)

    def _kill_and_finish(self, slot: int, worker: _Worker, status: str, error: str) -> None:
        worker.kill()
        self._finish(worker, worker.outcome(status, error))
        worker.ready = True  # a kill is not a start-up failure
        self._replace(slot, worker)

    def _worker_died(self, slot: int, worker: _Worker) -> None:
        returncode = worker.reap(2.0)
        if returncode is None:
            returncode = worker.kill()
        else:
            worker.kill()  # its process group may still hold children
        if worker.spec is not None:
            when = "while running" if worker.started is not None else "before it began"
            self._finish(worker, worker.outcome(
                "crashed",
                f"worker process {worker.pid} died {when} the trial: "
                f"{describe_exit(returncode)}",
            ))
        self._replace(slot, worker)

    def _drain(self, worker: _Worker) -> bool:
        """Handle every message waiting from ``worker``; False if it has died."""
        conn = worker.conn
        try:
            while conn is not None and conn.poll():
                self._handle(worker, conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._startup_failures[self._workers.index(worker)] = 0
            return
        spec = worker.spec
        if spec is None or message[1] != spec.trial_id:
            return  # a late message from a trial already ended; nothing to do
        if kind == "start":
            worker.started = time.monotonic()
            worker.started_wall = message[2]
        elif kind == "report":
            self._emit(Report(message[1], message[2], message[3]))
        elif kind == "done":
            _, _, status, result, error, start, end = message
            self._finish(worker, TrialOutcome(status=status, result=result, error=error,
                                              start=start, end=end, worker=worker.name,
                                              host=self.host))

    def _check(self, slot: int, worker: _Worker, now: float, scan: bool) -> None:
        """Enforce death detection, the start-up timeout, wall time and memory on a worker."""
        if worker.proc.poll() is not None:
            self._drain(worker)
            self._worker_died(slot, worker)
            return
        if worker.spec is not None and worker.started is None \
                and now - worker.dispatched > self.start_timeout:
            self._kill_and_finish(slot, worker, "crashed",
                                  f"the worker did not begin the trial within "
                                  f"{self.start_timeout:g} s (target import hanging?)")
            return
        if worker.spec is not None and worker.started is not None \
                and self.wall_time is not None and now - worker.started >= self.wall_time:
            self._kill_and_finish(slot, worker, "timeout",
                                  f"wall-time limit of {self.wall_time:g} s reached; killed "
                                  f"after {now - worker.started:.2f} s")
            return
        if self.memory_mb is None:
            return
        if scan and worker.spec is not None:
            worker.refresh_descendants()
        rss = worker.rss()
        worker.peak_rss = max(worker.peak_rss, rss)
        if rss <= self.memory_mb * MIB:
            return
        if worker.spec is not None:
            self._kill_and_finish(
                slot, worker, "memout",
                f"resident memory {rss / MIB:.0f} MiB of the worker and its children exceeded "
                f"the limit of {self.memory_mb:g} MiB (peak seen {worker.peak_rss / MIB:.0f} MiB)",
            )
        elif worker.ready and worker.trials_done > 0:
            # An idle worker holding on to memory would fail its next trial: recycle it.
            worker.kill()
            self._replace(slot, worker)

    def _wait_time(self, now: float) -> float:
        """Sleep until the next check, or exactly until the nearest wall-time deadline."""
        timeout = self.check_interval
        if self.wall_time is not None:
            for worker in self._workers:
                if worker is not None and worker.spec is not None and worker.started is not None:
                    timeout = min(timeout, worker.started + self.wall_time - now)
        return max(0.0, timeout)

    def _monitor_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    conns = {w.conn: w for w in self._workers
                             if w is not None and w.conn is not None}
                    timeout = self._wait_time(time.monotonic())
                ready: list[Any] = []
                if conns:
                    try:
                        ready = wait(list(conns), timeout)
                    except (OSError, ValueError):
                        pass  # a pipe closed under us by submit(); the checks below see it
                else:
                    time.sleep(timeout)
                with self._lock:
                    if self._closed:
                        return
                    for conn in ready:
                        worker = conns[conn]
                        if worker in self._workers and not self._drain(worker):
                            self._worker_died(self._workers.index(worker), worker)
                    now = time.monotonic()
                    scan = now >= self._next_scan
                    if scan:
                        self._next_scan = now + 1.0
                    for slot, worker in enumerate(self._workers):
                        if worker is not None:
                            self._check(slot, worker, now, scan)
        except BaseException as exc:  # noqa: B036 - surfaced by poll()/submit()
            self._monitor_error = exc

    def _kill_all(self) -> None:
        for worker in self._workers:
            if worker is not None:
                worker.kill()
        for flag in self._flags:
            flag.close()
