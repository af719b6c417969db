"""Running given jobs through the executor and the store, outside the configurator's loop.

``tune`` uses it for the final incumbent-vs-default comparison and ``ablate --mode racing``
for every candidate of an ablation path: each job ``(config, instance, seed, budget)`` is
answered from the store when a matching trial already finished (so a resumed run repeats
nothing), otherwise it is started in the store, run by the executor and recorded when it
ends.  This module is also the one place where a trial's outcome becomes its objective
values and the cost told to a configurator: a failed trial costs the crash cost.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .executor import Executor, Finished
from .store import StoredTrial, TrialStore
from .trial import TrialOutcome, TrialSpec, config_id

OK_STATUSES = ("ok", "pruned")

Cost = float | list[float]


def objectives_of(result: dict[str, Any], status: str, objectives: list[str],
                  crash: dict[str, float]) -> dict[str, float]:
    """Objective values of a trial; a failed trial or a missing value costs the crash cost."""
    out = {}
    for o in objectives:
        v = result.get(o)
        ok = status in OK_STATUSES and isinstance(v, int | float) and math.isfinite(v)
        out[o] = float(v) if ok else crash[o]
    return out


def cost_of(objectives: dict[str, float], names: Sequence[str]) -> Cost:
    """What a configurator is told: the one objective's value, or the list of them."""
    values = [objectives[o] for o in names]
    return values[0] if len(values) == 1 else values


def record_outcome(store: TrialStore, spec: TrialSpec, outcome: TrialOutcome,
                   objectives: list[str], crash: dict[str, float]) -> tuple[dict, Cost]:
    """Finish ``spec`` in the store with its objective values and cost; returns both."""
    values = objectives_of(outcome.result, outcome.status, objectives, crash)
    cost = cost_of(values, objectives)
    store.finish_trial(spec.trial_id, outcome, values, cost)
    return values, cost


@dataclass(frozen=True)
class Job:
    """One evaluation: ``config`` (complete: space values and fixed settings) on
    ``instance`` with ``seed`` for ``budget`` epochs (None: the config's own)."""

    config: dict[str, Any]
    instance: str
    seed: int
    budget: float | None = None

    @property
    def key(self) -> tuple[str, str, int, float | None]:
        return (config_id(self.config), self.instance, int(self.seed), self.budget)


@dataclass(frozen=True)
class Evaluated:
    """What a job gave: the trial that answered it (stored earlier or run now)."""

    trial_id: int
    status: str
    result: dict[str, Any]
    objectives: dict[str, float]
    cost: Cost | None
    reused: bool


def _evaluated(t: StoredTrial) -> Evaluated:
    return Evaluated(t.trial_id, t.status, dict(t.result), dict(t.objectives), t.cost, True)


class Evaluator:
    """Answers jobs from the store or runs them, recording each new trial under ``origin``.

    ``reuse(trial)`` says whether a finished trial with the same key may answer a job
    (e.g. only ``ok`` ones).  ``executor()`` gives the shared worker pool, started on first
    use; ``progress(done, total, status)`` is called after each job that had to run.
    """

    def __init__(self, store: TrialStore, executor: Callable[[], Executor],
                 objectives: list[str], crash: dict[str, float], origin: str,
                 reuse: Callable[[StoredTrial], bool] = lambda t: True,
                 progress: Callable[[int, int, str], None] | None = None) -> None:
        self.store = store
        self.executor = executor
        self.objectives = list(objectives)
        self.crash = dict(crash)
        self.origin = origin
        self.reuse = reuse
        self.progress = progress or (lambda done, total, status: None)
        self.known: dict[tuple, Evaluated] = {}
        for t in store.completed():
            if reuse(t):
                # the first trial of a key answers it, on every later invocation too
                self.known.setdefault((t.config_id, t.instance, t.seed, t.budget),
                                      _evaluated(t))

    def lookup(self, job: Job) -> Evaluated | None:
        """The stored answer to ``job``, if there is one."""
        return self.known.get(job.key)

    def run(self, jobs: Sequence[Job]) -> list[Evaluated]:
        """Answers to ``jobs`` in their order; identical jobs run once."""
        todo: dict[tuple, Job] = {}
        for job in jobs:
            if job.key not in self.known:
                todo.setdefault(job.key, job)
        if todo:
            self._run_all(todo)
        return [self.known[job.key] for job in jobs]

    def _run_all(self, todo: dict[tuple, Job]) -> None:
        executor = self.executor()
        pending = list(todo)
        inflight: dict[int, tuple] = {}
        host = socket.gethostname()
        while pending or inflight:
            while pending and min(executor.free_slots(), executor.n_slots - len(inflight)) > 0:
                key = pending.pop(0)
                job = todo[key]
                spec = TrialSpec(self.store.next_trial_id(), job.config, job.instance,
                                 int(job.seed), job.budget)
                self.store.start_trial(spec, self.origin, host=host)
                executor.submit(spec)
                inflight[spec.trial_id] = key
            for event in executor.poll(0.25):
                if not isinstance(event, Finished):  # a per-epoch report: kept, as always
                    self.store.add_report(event.trial_id, event.step, event.value)
                    continue
                key = inflight.pop(event.spec.trial_id)
                values, cost = record_outcome(self.store, event.spec, event.outcome,
                                              self.objectives, self.crash)
                self.known[key] = Evaluated(event.spec.trial_id, event.outcome.status,
                                            dict(event.outcome.result), values, cost, False)
                self.progress(len(todo) - len(pending) - len(inflight), len(todo),
                              event.outcome.status)
