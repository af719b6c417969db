"""Run tuning trials on a Dask cluster, under the same limits as local trials.

Each trial is one Dask task.  The task does not run the target in the Dask worker itself:
it hands the trial to a one-slot :class:`LocalExecutor` living in that Dask worker process,
so the target runs in a child process with the wall-time and resident-memory limits
enforced exactly as locally, whatever Dask's own memory management does.  These one-slot
runners are kept warm between tasks of the same executor (one per busy Dask thread), so a
target is imported, and Numba compiles, once per Dask worker thread rather than per trial;
:meth:`DaskExecutor.close` shuts them down.

Intermediate reports travel from the task to the client through a ``distributed.Queue``;
``prune`` writes the trial id into a ``distributed.Variable`` that the task reads every
0.25 s, so a prune reaches the target within about a quarter of a second plus one epoch.

If a Dask worker process dies, Dask may run its task again elsewhere: a trial may then
report the same steps twice, but it still produces exactly one ``Finished``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from typing import Any

from aac_sparse.errors import UserError
from aac_sparse.tuning.executor import (
    CLOSED_ERROR,
    THREAD_VARS,
    Event,
    Executor,
    Finished,
    LocalExecutor,
    NoFreeSlot,
    Report,
    _check_limits,
    usable_cores,
)
from aac_sparse.tuning.trial import TrialOutcome, TrialSpec
from aac_sparse.tuning.worker import TargetRef, check_target

CONTROL_INTERVAL = 0.25  # seconds between a task's reads of the prune/close variable

# Warm one-slot runners in this (Dask worker) process, by executor id.
_POOL_LOCK = threading.Lock()
_IDLE_RUNNERS: dict[str, list[LocalExecutor]] = {}
_DROPPED: set[str] = set()


def _take_runner(uid: str) -> LocalExecutor | None:
    with _POOL_LOCK:
        idle = _IDLE_RUNNERS.get(uid)
        return idle.pop() if idle else None


def _keep_runner(uid: str, runner: LocalExecutor) -> None:
    with _POOL_LOCK:
        if uid not in _DROPPED:
            _IDLE_RUNNERS.setdefault(uid, []).append(runner)
            return
    runner.close()


def drop_runners(uid: str) -> int:
    """Close the warm runners of executor ``uid`` in this process (run on every Dask worker)."""
    with _POOL_LOCK:
        _DROPPED.add(uid)
        runners = _IDLE_RUNNERS.pop(uid, [])
    for runner in runners:
        runner.close()
    return len(runners)


def _read_control(control: Any) -> dict[str, Any] | None:
    """The executor's control record, or None once it is gone (the executor was closed)."""
    try:
        return control.get(timeout=0)
    except TimeoutError:
        return None
    except Exception:
        return {"closed": False, "prune": []}  # a transient hiccup: try again later


def run_trial_task(
    uid: str,
    target: TargetRef,
    spec: TrialSpec,
    wall_time: float | None,
    memory_mb: float | None,
    env: Mapping[str, Any],
    host_slots: Mapping[str, int],
) -> TrialOutcome:
    """A Dask task: run ``spec`` in a limited child process of this worker; its outcome."""
    from distributed import Queue, Variable, get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    name = f"dask-{worker.name}"
    runner = _take_runner(uid)
    if runner is None:
        slots = host_slots.get(get_address_host(worker.address)) or worker.state.nthreads
        threads = max(1, usable_cores() // max(1, slots))
        runner_env = {var: threads for var in THREAD_VARS} | dict(env)
        runner = LocalExecutor(target, 1, wall_time, memory_mb, runner_env, name=name)
    reports = Queue(f"{uid}-reports")
    control = Variable(f"{uid}-control")
    next_control = 0.0
    outcome: TrialOutcome | None = None
    try:
        runner.submit(spec)
        while outcome is None:
            for event in runner.poll(0.1):
                if isinstance(event, Report):
                    try:
                        reports.put((event.trial_id, event.step, event.value))
                    except Exception:
                        pass  # the client is gone; the outcome still goes back
                else:
                    outcome = event.outcome
            if outcome is None and time.monotonic() >= next_control:
                next_control = time.monotonic() + CONTROL_INTERVAL
                state = _read_control(control)
                if state is None or state.get("closed"):
                    runner.close()
                    now = time.time()
                    outcome = TrialOutcome(status="crashed", error=CLOSED_ERROR, start=now,
                                           end=now, host=socket.gethostname())
                elif spec.trial_id in state.get("prune", ()):
                    runner.prune(spec.trial_id)
    finally:
        if outcome is None or outcome.error == CLOSED_ERROR:
            runner.close()
        else:
            _keep_runner(uid, runner)
    outcome.worker = name
    return outcome


class DaskExecutor(Executor):
    """Run trials as Dask tasks, each in a limited child process of a Dask worker.

    ``client_or_address`` is a ``distributed.Client`` (kept open on close) or a scheduler
    address such as "tcp://host:8786" (a client is made, and closed on close).  ``n_slots``
    defaults to the cluster's total threads when the executor is made.  Each trial's numeric
    libraries get usable cores // (Dask threads on that host) threads unless ``env`` says.
    """

    def __init__(
        self,
        target: TargetRef,
        client_or_address: Any,
        n_slots: int | None = None,
        wall_time: float | None = None,
        memory_mb: float | None = None,
        env: Mapping[str, Any] | None = None,
        *,
        connect_timeout: float = 5.0,
    ) -> None:
        from distributed import Client, Queue, Variable
        from distributed.comm import get_address_host

        _check_limits(n_slots or 1, wall_time, memory_mb)
        check_target(target)
        self.target = target
        self.wall_time = wall_time
        self.memory_mb = memory_mb
        self.env = dict(env or {})
        self.uid = f"aac-sparse-{uuid.uuid4().hex[:12]}"
        if isinstance(client_or_address, Client):
            self.client = client_or_address
            self._own_client = False
        else:
            address = getattr(client_or_address, "scheduler_address", client_or_address)
            try:
                self.client = Client(address, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise UserError(
                    f"cannot reach the Dask scheduler at {address} within "
                    f"{connect_timeout:g} s ({exc}). Check the address and port, start the "
                    "scheduler (dask scheduler), or run the trials locally."
                ) from None
            self._own_client = True
        try:
            nthreads = self.client.nthreads()
            if not nthreads and n_slots is None:
                self.client.wait_for_workers(1, timeout=connect_timeout)
                nthreads = self.client.nthreads()
        except (OSError, TimeoutError) as exc:
            self._close_client()
            raise UserError(f"the Dask scheduler at {self.client.scheduler.address} has no "
                            f"workers ({exc}); start some with dask worker") from None
        self._host_slots: dict[str, int] = {}
        for address, count in nthreads.items():
            host = get_address_host(address)
            self._host_slots[host] = self._host_slots.get(host, 0) + count
        self.n_slots = n_slots if n_slots is not None else sum(nthreads.values())
        self._reports = Queue(f"{self.uid}-reports", client=self.client)
        self._control = Variable(f"{self.uid}-control", client=self.client)
        self._pruned: set[int] = set()
        self._control.set({"closed": False, "prune": []})
        self._running: dict[int, tuple[TrialSpec, Any, float]] = {}
        self._closed = False

    def submit(self, spec: TrialSpec) -> None:
        if self._closed:
            raise RuntimeError("the executor is closed")
        if spec.trial_id in self._running:
            raise ValueError(f"trial {spec.trial_id} is already running")
        if len(self._running) >= self.n_slots:
            raise NoFreeSlot(f"no free slot: all {self.n_slots} Dask slots are busy")
        future = self.client.submit(
            run_trial_task, self.uid, self.target, spec, self.wall_time, self.memory_mb,
            self.env, self._host_slots,
            key=f"aac-trial-{spec.trial_id}-{self.uid}", pure=False,
        )
        self._running[spec.trial_id] = (spec, future, time.time())

    def free_slots(self) -> int:
        return 0 if self._closed else max(0, self.n_slots - len(self._running))

    def poll(self, timeout: float = 0.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            # Futures first: a finished task put all its reports before it returned, so
            # draining the queue after this snapshot keeps every Report before its Finished.
            done = [tid for tid, (_, future, _) in self._running.items() if future.done()]
            events: list[Event] = [Report(*item) for item in self._drain_reports()]
            events += [self._finished(tid) for tid in done]
            left = deadline - time.monotonic()
            if events or left <= 0 or self._closed:
                return events
            time.sleep(min(0.05, left))

    def prune(self, trial_id: int) -> None:
        if self._closed or trial_id not in self._running:
            return
        self._pruned = {tid for tid in self._pruned if tid in self._running} | {trial_id}
        self._control.set({"closed": False, "prune": sorted(self._pruned)})

    def running(self) -> list[TrialSpec]:
        return [spec for spec, _, _ in self._running.values()]

    def close(self) -> list[Event]:
        if self._closed:
            return []
        events = self.poll(0)
        self._closed = True
        try:
            self._control.set({"closed": True, "prune": []})
            # Running tasks see the flag within CONTROL_INTERVAL, kill their trials and return.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and \
                    not all(f.done() for _, f, _ in self._running.values()):
                time.sleep(0.05)
            done = [tid for tid, (_, f, _) in self._running.items() if f.done()]
            events += [Report(*item) for item in self._drain_reports()]
            events += [self._finished(tid) for tid in done]
            # (Cancelling a finished future would throw its result away: only the rest.)
            self.client.cancel([f for _, f, _ in self._running.values()], force=True)
            events += [self._finished(tid) for tid in list(self._running)]
            self.client.run(drop_runners, self.uid, on_error="ignore")
            self._control.delete()
            self._reports.close()
        except Exception:
            # The cluster is gone: whatever still runs there is lost, but not forgotten.
            events += [self._finished(tid) for tid in list(self._running)]
        finally:
            self._close_client()
        return events

    def _close_client(self) -> None:
        if self._own_client:
            with contextlib.suppress(Exception):  # closing a lost connection may fail
                self.client.close(timeout=5)

    def _drain_reports(self) -> list[tuple[int, int, float]]:
        try:
            return list(self._reports.get(batch=True))
        except Exception:
            return []  # reports are a convenience; Finished events do not depend on them

    def _finished(self, trial_id: int) -> Finished:
        spec, future, submitted = self._running.pop(trial_id)
        self._pruned.discard(trial_id)
        outcome: TrialOutcome | None = None
        if future.done() and future.status == "finished":
            try:
                outcome = future.result(timeout=5)
            except Exception:
                outcome = None
        if outcome is None:
            if self._closed:
                error = CLOSED_ERROR
            else:
                try:
                    exc = future.exception(timeout=5)
                    error = "the Dask task failed: " + "".join(
                        traceback.format_exception(type(exc), exc, exc.__traceback__))
                except Exception as other:
                    error = f"the Dask task failed: {type(other).__name__}: {other}"
            outcome = TrialOutcome(status="crashed", error=error, start=submitted,
                                   end=time.time(), worker="dask")
        return Finished(spec, outcome)
