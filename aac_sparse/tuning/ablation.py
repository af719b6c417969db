"""Ablation with real training runs (``aac-sparse ablate --mode racing``).

The greedy path from a source to a target configuration (Fawcett & Hoos 2016; see
:mod:`aac_sparse.space.changes`) where every candidate step is trained on the run's
training instances through the run's own executor, limits and trial store (origin
``ablation``).  Candidates race over blocks (instance, seed): after ``first_test`` blocks,
a Friedman test with Conover's post-hoc comparison (as irace's F-race) drops candidates
significantly worse than the best, so hopeless ones stop early.  Every trial is in the
store before it starts and when it ends, and a finished one answers the same job again,
so a run killed at any moment continues where it stopped and repeats nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import plain
from ..space.changes import Change, PathStep, differing, greedy_path
from .evaluation import Evaluator, Job
from .executor import Executor
from .runlock import RunLock
from .scenario import Execution, Scenario
from .store import TrialStore

ORIGIN = "ablation"
Progress = Callable[["RaceProgress"], None]


@dataclass
class RaceProgress:
    step: int  # path step being raced (0: the source)
    max_steps: int  # differing parameters: the path has at most this many steps
    candidates: int  # still racing at this step
    trials_run: int  # trials this session had to run (stored ones are reused)
    last_status: str = ""


@dataclass
class RacingResult:
    path: list[PathStep]
    trials_run: int
    trials_reused: int
    eliminated: dict[int, list[str]] = field(default_factory=dict)  # step -> dropped labels


def scenario_of(store: TrialStore, workers: int | None) -> Scenario:
    """The run's scenario as the store recorded it (what a trial computes), with its
    execution settings (or ``workers`` of them)."""
    identity = store.get_meta("scenario")
    if not identity:
        raise ConfigError(f"{store.path} records no scenario; racing needs a run made by "
                          "`aac-sparse tune`")
    data = dict(identity)
    data["budget"] = {**data.get("budget", {}), "n_trials": 1}
    execution = dict(store.get_meta("execution") or {})
    if workers is not None:
        execution["workers"] = workers
    data["execution"] = Execution(**execution)
    return Scenario(**data)


def friedman_survivors(costs: np.ndarray, alpha: float) -> np.ndarray:
    """Indices of the candidates (columns of ``costs``, blocks as rows) not significantly
    worse than the best: Friedman test, then Conover's post-hoc test against the best
    (two candidates: Wilcoxon signed-rank)."""
    from scipy import stats

    n_blocks, k = costs.shape
    everyone = np.arange(k)
    if k < 2 or n_blocks < 2:
        return everyone
    if k == 2:
        d = costs[:, 1] - costs[:, 0]
        if not np.any(d != 0):
            return everyone
        p = stats.wilcoxon(d, zero_method="wilcox").pvalue
        if p >= alpha:
            return everyone
        return np.array([0 if d.mean() > 0 else 1])
    ranks = np.apply_along_axis(stats.rankdata, 1, costs)
    r = ranks.sum(axis=0)
    a = float(np.sum(ranks ** 2))
    c = n_blocks * k * (k + 1) ** 2 / 4
    if a - c <= 0:  # every block ranks the candidates alike in ties only: no evidence
        return everyone
    t = (k - 1) * (float(np.sum(r ** 2)) - n_blocks * c) / (a - c)  # Friedman statistic
    if stats.chi2.sf(t, k - 1) >= alpha:
        return everyone
    spread = 2 * n_blocks * (a - c) * (1 - t / (n_blocks * (k - 1))) / (
        (n_blocks - 1) * (k - 1))
    best = int(np.argmin(r))
    if spread <= 0:  # perfectly consistent rankings: only the best survives
        return np.array([best])
    t_crit = stats.t.ppf(1 - alpha / 2, (n_blocks - 1) * (k - 1))
    return everyone[np.abs(r - r[best]) <= t_crit * math.sqrt(spread)]


class RacingAblation:
    """The racing ablation of one run directory (hold its lock while it runs)."""

    def __init__(self, store: TrialStore, scenario: Scenario,
                 executor: Callable[[], Executor], repetitions: int = 1, first_test: int = 3,
                 alpha: float = 0.05, progress: Progress | None = None) -> None:
        self.cs = _space(store)
        self.store = store
        self.scenario = scenario
        self.objective = scenario.objectives[0]
        self.crash = dict(store.get_meta("crash_cost") or {})
        self.fixed = dict(scenario.fixed)
        self.budget = float(scenario.fidelity.max_epochs) if scenario.fidelity else None
        self.blocks = [(inst.id, scenario.seed + k) for k in range(repetitions)
                       for inst in scenario.train_instances()]
        self.first_test = max(2, first_test)
        self.alpha = alpha
        self.progress = progress or (lambda p: None)
        self.status = RaceProgress(0, 0, 0, 0)
        self.evaluator = Evaluator(store, executor, scenario.objectives, self.crash, ORIGIN,
                                   reuse=lambda t: t.status != "pruned",
                                   progress=self._ran)
        self.eliminated: dict[int, list[str]] = {}
        self.reused = 0

    def _ran(self, done: int, total: int, status: str) -> None:
        self.status.trials_run += 1
        self.status.last_status = status
        self.progress(self.status)

    def _job(self, config: Mapping[str, Any], block: tuple[str, int]) -> Job:
        return Job(plain({**config, **self.fixed}), block[0], block[1], self.budget)

    def _measure(self, configs: list[dict[str, Any]], blocks: list[tuple[str, int]]
                 ) -> np.ndarray:
        jobs = [self._job(c, b) for b in blocks for c in configs]
        self.reused += sum(self.evaluator.lookup(j) is not None for j in jobs)
        answers = self.evaluator.run(jobs)
        values = [a.objectives.get(self.objective, self.crash.get(self.objective, math.nan))
                  for a in answers]
        return np.array(values, dtype=float).reshape(len(blocks), len(configs))

    def race(self, step: int, candidates: list[Change]) -> tuple[int, float, float]:
        """Race ``candidates`` over the blocks; the winner's index, mean and std."""
        alive = np.arange(len(candidates))
        costs = np.full((len(self.blocks), len(candidates)), np.nan)
        for b, block in enumerate(self.blocks):
            self.status.step, self.status.candidates = step, len(alive)
            self.progress(self.status)
            costs[b, alive] = self._measure([candidates[i].config for i in alive], [block])[0]
            if len(alive) > 1 and b + 1 >= self.first_test:
                keep = friedman_survivors(costs[: b + 1][:, alive], self.alpha)
                dropped = [candidates[i].label for i in alive if i not in alive[keep]]
                if dropped:
                    self.eliminated.setdefault(step, []).extend(dropped)
                alive = alive[keep]
        means = np.nanmean(costs[:, alive], axis=0)
        best = int(alive[int(np.argmin(means))])  # ties: the first in the space's order
        column = costs[:, best]
        return best, float(column.mean()), float(column.std())

    def run(self, source: dict[str, Any], target: dict[str, Any]) -> RacingResult:
        self.status.max_steps = len(differing(self.cs, source, target)) or 1
        src = self._measure([source], self.blocks)[:, 0]
        path = greedy_path(self.cs, source, target, (float(src.mean()), float(src.std())),
                           self.race)
        return RacingResult(path, self.status.trials_run, self.reused, self.eliminated)


def _space(store: TrialStore):
    from ConfigSpace import ConfigurationSpace

    from .store import META_CONFIGSPACE

    return ConfigurationSpace.from_serialized_dict(store.get_meta(META_CONFIGSPACE))


def racing_ablation(run_dir: str | Path, source: dict[str, Any], target: dict[str, Any],
                    source_name: str, target_name: str, workers: int | None = None,
                    repetitions: int = 1, first_test: int = 3, alpha: float = 0.05,
                    progress: Progress | None = None,
                    say: Callable[[str], None] = lambda s: None,
                    meta_key: str = "ablation_racing") -> RacingResult:
    """Run (or resume) the racing ablation of a run directory from ``source`` to
    ``target`` (space values); records the path in the store's meta ``meta_key``."""
    from .store import resolve_store_path
    from .tuner import make_executor

    run_dir = Path(run_dir)
    with RunLock(run_dir, "ablate --mode racing"):
        store = TrialStore(resolve_store_path(run_dir))
        pool: list[Executor] = []
        try:
            scenario = scenario_of(store, workers)
            for inst in scenario.train_instances():
                say(f"preparing {inst.id}")
                inst.load()
            store.mark_interrupted()

            def executor() -> Executor:
                if not pool:
                    pool.append(make_executor(scenario))
                return pool[0]

            racer = RacingAblation(store, scenario, executor, repetitions,
                                   first_test, alpha, progress)
            result = racer.run(source, target)
            store.set_meta(meta_key, {
                "source": source_name, "target": target_name, "objective": racer.objective,
                "blocks": [list(b) for b in racer.blocks],
                "n_trials": len(store.trials(origin=ORIGIN)),
                "eliminated": {str(k): v for k, v in result.eliminated.items()},
                "steps": [{"step": s.step,
                           "parameter": s.change.label if s.change else "(source)",
                           "value": s.values(racer.cs) if s.change else source_name,
                           "cost": s.cost, "cost_std": s.cost_std, "share": s.share}
                          for s in result.path]})
            return result
        finally:
            for ex in pool:
                ex.close()
            store.close()
