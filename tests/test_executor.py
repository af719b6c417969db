"""The trial executors: statuses, limits (and how precisely they hold), reports, pruning,
parallelism, bookkeeping, and the same limits on Dask."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import fake_targets as ft
import psutil
import pytest

from aac_sparse.errors import UserError
from aac_sparse.tuning.executor import (
    CLOSED_ERROR,
    Event,
    Executor,
    Finished,
    LocalExecutor,
    NoFreeSlot,
    Report,
)
from aac_sparse.tuning.trial import TrialSpec


def spec(trial_id: int, **config: object) -> TrialSpec:
    return TrialSpec(trial_id=trial_id, config=dict(config), instance="inst-a", seed=7,
                     budget=2.0)


def run_until_finished(ex: Executor, n: int, limit: float = 20.0) -> list[Event]:
    """Poll until ``n`` Finished events arrived (fail after ``limit`` seconds)."""
    events: list[Event] = []
    deadline = time.monotonic() + limit
    while sum(isinstance(e, Finished) for e in events) < n:
        assert time.monotonic() < deadline, f"only {events} after {limit} s"
        events += ex.poll(0.5)
    return events


def run_one(ex: Executor, trial: TrialSpec) -> Finished:
    ex.submit(trial)
    finished = [e for e in run_until_finished(ex, 1) if isinstance(e, Finished)]
    assert finished[0].spec == trial
    return finished[0]


def is_gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for whoever adopted it to reap it counts)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def local() -> Iterator[LocalExecutor]:
    with LocalExecutor(ft.ok_target, n_workers=1) as ex:
        yield ex


def test_ok_result_is_wrapped_with_times_worker_and_host(local: LocalExecutor) -> None:
    before = time.time()
    done = run_one(local, spec(1, x=3))
    out = done.outcome
    assert out.status == "ok" and out.error == ""
    assert out.result["val_error"] == pytest.approx(0.3)
    assert (out.result["instance"], out.result["seed"], out.result["budget"]) == ("inst-a", 7, 2.0)
    assert before <= out.start <= out.end <= time.time()
    assert out.worker == "local-0" and out.host
    assert out.result["pid"] != os.getpid()
    assert local.free_slots() == 1 and local.running() == []


def test_worker_is_reused_across_trials(local: LocalExecutor) -> None:
    pids = {run_one(local, spec(i)).outcome.result["pid"] for i in range(3)}
    assert len(pids) == 1 and pids == set(local.worker_pids())


def test_target_by_import_path_and_environment() -> None:
    with LocalExecutor("fake_targets:ok_target", n_workers=2,
                       env={"AAC_TEST_MARKER": "m1"}) as ex:
        result = run_one(ex, spec(1)).outcome.result
    assert result["marker"] == "m1"
    expected = os.environ.get("NUMBA_NUM_THREADS") or str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert result["numba_threads"] == expected
    with LocalExecutor(ft.ok_target, env={"NUMBA_NUM_THREADS": "1"}) as ex:
        assert run_one(ex, spec(1)).outcome.result["numba_threads"] == "1"


def test_bad_targets_are_refused_or_crash_cleanly() -> None:
    with pytest.raises(UserError, match="no_such_module_xyz"):
        LocalExecutor("no_such_module_xyz:f")
    with pytest.raises(UserError, match="package.module:function"):
        LocalExecutor("fake_targets")
    with pytest.raises(TypeError, match="cannot be sent"):
        LocalExecutor(lambda *a: {"status": "ok"})
    with LocalExecutor("fake_targets:no_such_function") as ex:
        out = run_one(ex, spec(1)).outcome
        assert out.status == "crashed" and "no_such_function" in out.error
    with LocalExecutor(ft.bad_return_target) as ex:
        out = run_one(ex, spec(1)).outcome
        assert out.status == "crashed" and "[1, 2, 3]" in out.error


def test_exception_is_crashed_with_traceback_and_worker_survives() -> None:
    with LocalExecutor(ft.raising_target) as ex:
        pid = ex.worker_pids()[0]
        out = run_one(ex, spec(1, lr=0.5)).outcome
        assert out.status == "crashed" and out.result == {}
        assert "Traceback" in out.error and "ValueError: bad learning rate 0.5" in out.error
        assert run_one(ex, spec(2, lr=1)).outcome.status == "crashed"
        assert ex.worker_pids() == [pid]


def test_dead_worker_is_crashed_and_replaced() -> None:
    with LocalExecutor("fake_targets:exiting_target") as ex:
        first_pid = ex.worker_pids()[0]
        out = run_one(ex, spec(1, code=3)).outcome
        assert out.status == "crashed" and "exited with code 3" in out.error
        assert ex.free_slots() == 1 and ex.worker_pids()[0] != first_pid
    # A worker killed from outside: crashed with the signal, and the next trial still runs.
    with LocalExecutor(ft.pid_then_sleep_target) as ex:
        ex.submit(spec(1, seconds=30))
        report = next(e for e in run_until_poll(ex) if isinstance(e, Report))
        os.kill(int(report.value), signal.SIGKILL)
        out = [e for e in run_until_finished(ex, 1) if isinstance(e, Finished)][0].outcome
        assert out.status == "crashed" and "SIGKILL" in out.error
        ex.submit(spec(2, seconds=0))
        events = run_until_finished(ex, 1)
        assert [e.outcome.status for e in events if isinstance(e, Finished)] == ["ok"]


def run_until_poll(ex: Executor, limit: float = 20.0) -> list[Event]:
    """Poll until some event arrives."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        events = ex.poll(0.5)
        if events:
            return events
    raise AssertionError(f"no event within {limit} s")


def test_workers_that_cannot_start_are_given_up_loudly() -> None:
    with LocalExecutor(ft.ok_target, n_workers=1, env={"PYTHONHOME": "/nonexistent"}) as ex:
        ex.submit(spec(1))
        out = [e for e in run_until_finished(ex, 1) if isinstance(e, Finished)][0].outcome
        assert out.status == "crashed" and "before it began" in out.error
        deadline = time.monotonic() + 10
        with pytest.raises(RuntimeError, match="no worker can start"):
            while time.monotonic() < deadline:
                ex.poll(0.2)


def test_wall_time_limit_kills_within_two_seconds() -> None:
    with LocalExecutor(ft.sleeping_target, wall_time=1.0) as ex:
        run_one(ex, spec(0, seconds=0))  # the worker is up: time only the trial
        t0 = time.monotonic()
        done = run_one(ex, spec(1, seconds=30))
        elapsed = time.monotonic() - t0
        out = done.outcome
        assert out.status == "timeout" and "wall-time limit of 1 s" in out.error
        assert 1.0 <= out.duration < 1.5
        assert elapsed < 1.0 + 2.0, f"timeout seen after {elapsed:.2f} s"
        # The replacement worker serves the next trial.
        assert run_one(ex, spec(2, seconds=0)).outcome.status == "ok"


def test_resident_memory_limit_gives_memout() -> None:
    with LocalExecutor(ft.memory_target, memory_mb=200) as ex:
        done = run_one(ex, spec(1, mb=400, hold=20))
        out = done.outcome
        assert out.status == "memout", out
        assert "limit of 200 MiB" in out.error and out.duration < 10
        # A trial under the limit passes on the replacement worker.
        assert run_one(ex, spec(2, mb=20, hold=0)).outcome.status == "ok"


def test_memory_limit_counts_resident_not_virtual_memory() -> None:
    with LocalExecutor(ft.reserving_target, memory_mb=200) as ex:
        assert run_one(ex, spec(1, mb=2000, hold=0.5)).outcome.status == "ok"


def test_memory_limit_counts_and_kills_child_processes() -> None:
    with LocalExecutor(ft.child_memory_target, memory_mb=200) as ex:
        ex.submit(spec(1, mb=300))
        events = run_until_finished(ex, 1)
    child_pid = int(next(e for e in events if isinstance(e, Report)).value)
    out = events[-1].outcome  # type: ignore[union-attr]
    assert out.status == "memout", out
    assert is_gone(child_pid)


def test_diverged_passes_through() -> None:
    with LocalExecutor(ft.diverging_target) as ex:
        out = run_one(ex, spec(1)).outcome
    assert out.status == "diverged" and out.result == {
        "status": "diverged", "val_error": 1.0, "epochs_done": 3}


def test_reports_arrive_in_order_and_prune_stops_the_trial() -> None:
    with LocalExecutor(ft.reporting_target) as ex:
        ex.submit(spec(5, steps=200, delay=0.02))
        events: list[Event] = []
        pruned = False
        while not any(isinstance(e, Finished) for e in events):
            new = run_until_poll(ex)
            events += new
            if not pruned and any(isinstance(e, Report) and e.step >= 3 for e in new):
                ex.prune(5)
                pruned = True
        reports = [e for e in events if isinstance(e, Report)]
        finished = events[-1]
    assert isinstance(finished, Finished) and finished.outcome.status == "pruned"
    assert [r.step for r in reports] == list(range(len(reports)))
    assert all(r.trial_id == 5 and r.value == pytest.approx(1 / (r.step + 1)) for r in reports)
    assert 4 <= len(reports) < 30  # stopped soon after the prune, far before 200 steps
    assert finished.outcome.result["epochs_done"] == len(reports)


def test_two_workers_run_in_parallel() -> None:
    with LocalExecutor(ft.sleeping_target, n_workers=2) as ex:
        ex.submit(spec(0, seconds=0))
        ex.submit(spec(1, seconds=0))
        run_until_finished(ex, 2)  # both workers are up
        t0 = time.monotonic()
        ex.submit(spec(2, seconds=1))
        ex.submit(spec(3, seconds=1))
        assert ex.free_slots() == 0
        with pytest.raises(NoFreeSlot):
            ex.submit(spec(4, seconds=1))
        done = [e.outcome for e in run_until_finished(ex, 2) if isinstance(e, Finished)]
        total = time.monotonic() - t0
    assert {o.worker for o in done} == {"local-0", "local-1"}
    assert max(o.start for o in done) < min(o.end for o in done)  # they overlapped
    assert total < 1.8, f"two 1-second trials took {total:.2f} s"


def test_many_quick_trials_each_finish_exactly_once() -> None:
    with LocalExecutor(ft.ok_target, n_workers=2) as ex:
        submitted, finished = 0, []
        deadline = time.monotonic() + 30
        while len(finished) < 30:
            assert time.monotonic() < deadline
            while submitted < 30 and ex.free_slots() > 0:
                ex.submit(spec(submitted))
                submitted += 1
            finished += [e for e in ex.poll(0.5) if isinstance(e, Finished)]
        finished += [e for e in ex.poll(0.3) if isinstance(e, Finished)]
        assert ex.running() == []
    ids = [f.spec.trial_id for f in finished]
    assert sorted(ids) == list(range(30))
    assert all(f.outcome.status == "ok" for f in finished)


def test_close_finishes_running_trials_as_crashed_and_does_not_hang() -> None:
    ex = LocalExecutor(ft.sleeping_target, n_workers=2)
    ex.submit(spec(1, seconds=60))
    ex.submit(spec(2, seconds=0))
    time.sleep(0.5)
    pids = ex.worker_pids()
    t0 = time.monotonic()
    events = ex.close()
    assert time.monotonic() - t0 < 3
    finished = {e.spec.trial_id: e.outcome for e in events if isinstance(e, Finished)}
    assert finished[1].status == "crashed" and finished[1].error == CLOSED_ERROR
    assert finished[2].status == "ok"
    assert ex.poll(0.2) == [] and ex.close() == []
    assert all(is_gone(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="closed"):
        ex.submit(spec(3, seconds=0))


# --- Dask -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_runs_trials_under_the_same_limits(dask_client: object) -> None:
    from aac_sparse.tuning.dask_executor import DaskExecutor

    with DaskExecutor("fake_targets:sleeping_target", dask_client, wall_time=1.0) as ex:
        assert ex.n_slots == 2 and ex.free_slots() == 2
        ex.submit(spec(1, seconds=0))
        ex.submit(spec(2, seconds=30))
        done = {e.spec.trial_id: e.outcome for e in run_until_finished(ex, 2, limit=30)
                if isinstance(e, Finished)}
        assert done[1].status == "ok" and done[1].worker.startswith("dask-")
        assert done[2].status == "timeout" and 1.0 <= done[2].duration < 1.5
    with DaskExecutor(ft.memory_target, dask_client, memory_mb=200) as ex:
        assert run_one(ex, spec(3, mb=400, hold=20)).outcome.status == "memout"
    with DaskExecutor(ft.raising_target, dask_client) as ex:
        out = run_one(ex, spec(4, lr=2)).outcome
        assert out.status == "crashed" and "ValueError: bad learning rate 2" in out.error


def test_dask_reports_and_prune(dask_client: object) -> None:
    from aac_sparse.tuning.dask_executor import DaskExecutor

    with DaskExecutor(ft.reporting_target, dask_client) as ex:
        ex.submit(spec(1, steps=200, delay=0.02))
        events: list[Event] = []
        pruned = False
        while not any(isinstance(e, Finished) for e in events):
            new = run_until_poll(ex)
            events += new
            if not pruned and any(isinstance(e, Report) for e in new):
                ex.prune(1)
                pruned = True
    reports = [e for e in events if isinstance(e, Report)]
    assert events[-1].outcome.status == "pruned"  # type: ignore[union-attr]
    assert [r.step for r in reports] == list(range(len(reports)))
    assert len(reports) < 100


def test_dask_unreachable_scheduler_is_a_user_error() -> None:
    from aac_sparse.tuning.dask_executor import DaskExecutor

    t0 = time.monotonic()
    with pytest.raises(UserError, match="tcp://127.0.0.1:1"):
        DaskExecutor(ft.ok_target, "tcp://127.0.0.1:1", connect_timeout=1.0)
    assert time.monotonic() - t0 < 10
