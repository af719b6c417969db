"""The tuning loop: scenario -> configurator -> executor -> target -> trial store.

:func:`open_run` decides whether a run directory is resumed, started anew or refused
(its scenario changed).  :class:`Tuner` replays the store into the configurator, then
asks, runs and tells until the budget is spent, recording every trial in the store
before it starts and when it ends; finally it evaluates the incumbent against the
default configuration on the training and held-out test instances.
"""

from __future__ import annotations

import math
import shutil
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config_files import PARALLEL_SECTION, TUNED_ON
from ..data.instances import Instance
from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_text, plain
from ..target import trial_config, trial_parallel
from .checks import check_scenario, default_crash_costs, space_for
from .configurators import Configurator, Proposal, ReplayedTrial, TrialRequest, make_configurator
from .evaluation import Evaluator, Job, record_outcome
from .executor import Executor, Finished, LocalExecutor, Report
from .runlock import LOCK_NAME, RunLock
from .scenario import Scenario, scenario_diff
from .store import META_CONFIGSPACE, META_OBJECTIVES, STORE_FILENAME, TrialStore
from .trial import STATUSES, TrialOutcome, TrialSpec, config_id

TARGET = "aac_sparse.target:target"


# -- run directories ------------------------------------------------------------------

def open_run(scenario: Scenario, new: bool = False, force: bool = False,
             base: Path | None = None) -> tuple[Path, TrialStore, bool]:
    """The run directory and its store; the bool says whether an earlier run is resumed.

    A directory holding a run of a *different* scenario is an error unless ``new`` (start
    a fresh run beside it, ``<dir>-2``, ``-3``, ...) or ``force`` (delete the old run).
    A run in which no trial ever finished (an earlier start that failed or was killed
    early) holds nothing of value: it is cleared and the run starts afresh.
    """
    run_dir = scenario.run_dir(base)
    store_file = run_dir / STORE_FILENAME
    if not store_file.exists():  # journals of a store whose removal was cut short
        for x in ("-wal", "-shm", "-journal"):
            (run_dir / f"{STORE_FILENAME}{x}").unlink(missing_ok=True)
    if store_file.exists() and not force:
        fingerprint, old_identity, n_finished = _old_run(store_file)
        if n_finished == 0:
            _clear(run_dir)
        elif fingerprint != scenario.fingerprint() or new:
            if not new:
                changed = ", ".join(scenario_diff(old_identity, scenario.identity())[:8])
                raise ConfigError(
                    f"{run_dir} holds a run of a different scenario (changed: {changed or '?'})."
                    f"\nRe-run with --new to start a fresh run beside it "
                    f"({_free_dir(run_dir)}), or --force to delete the old run.")
            run_dir = _free_dir(run_dir)
    if force:
        _clear(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = TrialStore(run_dir / STORE_FILENAME)
    resumed = store.get_meta("scenario_fingerprint") is not None
    return run_dir, store, resumed


def _old_run(store_file: Path) -> tuple[str | None, dict, int]:
    """Fingerprint, scenario identity and number of finished trials of an existing store
    (a file a kill left before its schema was committed has none)."""
    if _blank(store_file):
        return None, {}, 0
    old = TrialStore.open_readonly(store_file)
    try:
        with old.snapshot():
            return (old.get_meta("scenario_fingerprint"), old.get_meta("scenario") or {},
                    old.count(STATUSES))
    finally:
        old.close()


def _blank(store_file: Path) -> bool:
    """True for a store file that holds nothing yet: empty (killed as SQLite created it)
    or a database without tables (killed before the schema's transaction committed)."""
    import sqlite3

    try:
        conn = sqlite3.connect(store_file.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        finally:
            conn.close()
    except sqlite3.Error:
        return store_file.stat().st_size == 0


def _clear(run_dir: Path) -> None:
    """Remove a run's files, keeping the directory and its lock (held by this process).

    The store's journal files go first: a kill halfway leaves no journal beside a missing
    store (SQLite could replay it into the next store)."""
    if not run_dir.is_dir():
        return
    journals = [run_dir / f"{STORE_FILENAME}{x}" for x in ("-wal", "-shm", "-journal")]
    rest = sorted((e for e in run_dir.iterdir() if e not in journals), key=lambda e: e.name)
    for entry in [*journals, *rest]:
        if entry.name == LOCK_NAME or not (entry.exists() or entry.is_symlink()):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _free_dir(run_dir: Path) -> Path:
    i = 2
    while (candidate := run_dir.with_name(f"{run_dir.name}-{i}")).exists():
        i += 1
    return candidate


def make_executor(scenario: Scenario) -> Executor:
    """The worker pool a scenario asks for (local processes or a Dask cluster), with its
    per-trial limits, running the real target function."""
    limits = dict(wall_time=scenario.budget.trial_wall_time,
                  memory_mb=scenario.budget.trial_memory_mb)
    execution = scenario.execution
    if execution.backend == "dask":
        from .dask_executor import DaskExecutor

        return DaskExecutor(TARGET, execution.scheduler, n_slots=execution.workers, **limits)
    return LocalExecutor(TARGET, n_workers=execution.workers, **limits)


# -- progress --------------------------------------------------------------------------

@dataclass
class Progress:
    """What the loop tells a progress display after every finished trial."""

    done: int
    total: int | None
    elapsed: float
    wall_time: float | None
    best: float | None
    last_status: str = ""
    phase: str = "tuning"


ProgressFn = Callable[[Progress], None]


@dataclass
class TuneResult:
    run_dir: Path
    n_trials: int
    statuses: dict[str, int]
    incumbents: list[Proposal]
    comparison: list[dict[str, Any]] = field(default_factory=list)
    incumbent_file: Path | None = None
    resumed: bool = False
    stopped_by: str = ""
    comparison_seed: int | None = None
    comparison_budget: float | None = None


# -- the loop ----------------------------------------------------------------------------

class Tuner:
    """Runs one scenario in one run directory (see :func:`open_run`)."""

    def __init__(self, scenario: Scenario, run_dir: Path, store: TrialStore,
                 scenario_file: Path | None = None, progress: ProgressFn | None = None,
                 executor_factory: Callable[..., Executor] | None = None) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.store = store
        self.progress = progress or (lambda p: None)
        self.cs = space_for(scenario, scenario_file)
        self.train = scenario.train_instances()
        self.test = scenario.test_instances()
        self.fixed = dict(scenario.fixed)
        self.objectives = list(scenario.objectives)
        self.executor_factory = executor_factory
        self.crash: dict[str, float] = {}
        self.configurator: Configurator | None = None
        self._executor: Executor | None = None

    def executor(self) -> Executor:
        """The worker pool, started on first use and kept for every phase of the run."""
        if self._executor is None:
            self._executor = self._make_executor()
        return self._executor

    def close(self) -> None:
        """Stop the workers (running trials stay 'running' in the store: resume re-runs)."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    # -- set-up ---------------------------------------------------------------------------
    def prepare_data(self, say: Callable[[str], None] = lambda s: None) -> None:
        """Load and cache every instance once, here, before workers start."""
        for inst in [*self.train, *self.test]:
            say(f"preparing {inst.id}")
            inst.load()
        self.crash = default_crash_costs(self.scenario, self.train)

    def _write_meta(self) -> None:
        s = self.scenario
        meta = {"scenario_fingerprint": s.fingerprint(), "scenario": s.identity(),
                META_CONFIGSPACE: self.cs.to_serialized_dict(),
                META_OBJECTIVES: [{"name": o, "direction": "minimize"} for o in s.objectives],
                "crash_cost": self.crash, "package_version": __version__,
                "train_instances": self.train.ids, "test_instances": self.test.ids,
                "instance_features": {i.id: i.features() for i in [*self.train, *self.test]},
                "configurator": s.configurator.name,
                "execution": s.execution.model_dump()}
        for key, value in meta.items():
            self.store.set_meta(key, value)

    def _make_executor(self) -> Executor:
        s = self.scenario
        if self.executor_factory is not None:
            return self.executor_factory(wall_time=s.budget.trial_wall_time,
                                         memory_mb=s.budget.trial_memory_mb)
        return make_executor(s)

    def _make_configurator(self) -> Configurator:
        s = self.scenario
        fid = s.fidelity
        return make_configurator(
            s.configurator.name, self.cs, self.train, self.objectives,
            ["minimize"] * len(self.objectives), [self.crash[o] for o in self.objectives],
            self.run_dir / "smac3", s.seed, s.budget.n_trials or 10**9, s.execution.workers,
            s.configurator.options,
            (fid.min_epochs, fid.max_epochs, fid.eta) if fid else None,
            self.fixed.get("epochs"))

    # -- helpers --------------------------------------------------------------------------
    def _space_part(self, config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k in self.cs}

    def _full_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return plain({**self._space_part(config), **self.fixed})

    def _elapsed_before(self) -> float:
        return float(self.store.get_meta("elapsed_s", 0.0))

    # -- the run --------------------------------------------------------------------------
    def _key(self, request: TrialRequest) -> tuple:
        return (config_id(self._full_config(request.config)), request.instance,
                int(request.seed), request.budget)

    def run(self) -> TuneResult:
        """Recover interrupted trials, replay the store, then ask/run/tell to the budget.

        Exactly once per key (configuration, instance, seed, budget): a key asked again is
        answered from the store if it finished (in any session), joins the running trial
        if one runs it now, and runs only otherwise."""
        if not self.crash:
            self.crash = default_crash_costs(self.scenario, self.train)
        self.store.mark_interrupted()
        resumed = self.store.get_meta("scenario_fingerprint") is not None
        self._write_meta()
        budget = self.scenario.budget
        t0 = time.time()
        elapsed_before = self._elapsed_before()

        def elapsed() -> float:
            return elapsed_before + time.time() - t0

        def out_of_time() -> bool:
            return budget.wall_time is not None and elapsed() >= budget.wall_time

        recovered = self._recover(elapsed, out_of_time)
        self.configurator = self._make_configurator()
        done = self.store.completed(origin="configurator", with_reports=True)
        self.configurator.replay([
            ReplayedTrial(self._space_part(t.config), t.instance, t.seed, t.budget, t.cost,
                          t.outcome, t.reports or []) for t in done])
        # finished keys (of any session, this one included) answer the configurator
        self._cache: dict[tuple, tuple[Any, TrialOutcome]] = {}
        for t in done:
            self._cache.setdefault((t.config_id, t.instance, t.seed, t.budget),
                                   (t.cost, t.outcome))
        statuses: dict[str, int] = defaultdict(int)
        for t in done:
            statuses[t.status] += 1
        n_done = n_before = len(done)
        stopped_by = ""
        best = self._best()
        # trial id -> (every request waiting for it, the first one first; its spec)
        inflight: dict[int, tuple[list[TrialRequest], TrialSpec]] = {}
        running: dict[tuple, int] = {}  # key -> trial id running it now

        self.progress(Progress(n_done, budget.n_trials, elapsed(), budget.wall_time, best,
                               phase="resuming" if resumed else "tuning"))
        executor = self.executor()

        def free() -> int:  # a slot is free once its result was told, not when it ended
            return min(executor.free_slots(), executor.n_slots - len(inflight))

        while True:
            if budget.n_trials is not None and n_done >= budget.n_trials:
                stopped_by = "n_trials"
                if not inflight:
                    break
            if out_of_time():
                stopped_by = "wall_time"
                break
            room = (budget.n_trials - n_done - len(inflight)
                    if budget.n_trials is not None else free())
            asked_nothing = False
            answered = 0  # asks answered without a new trial, in a row
            repeating = False
            while free() > 0 and room > 0 and not out_of_time():
                if answered > 100 + 10 * executor.n_slots:
                    repeating = True  # it only repeats known keys: wait for running ones
                    break
                request = self.configurator.ask()
                if request is None:
                    asked_nothing = True
                    break
                key = self._key(request)
                if key in self._cache:
                    self.configurator.tell(request, *self._cache[key])
                    answered += 1
                    continue
                if key in running:
                    inflight[running[key]][0].append(request)
                    answered += 1
                    continue
                answered = 0
                spec = TrialSpec(self.store.next_trial_id(),
                                 self._full_config(request.config), request.instance,
                                 int(request.seed), request.budget)
                self.store.start_trial(spec, "configurator", host=socket.gethostname())
                executor.submit(spec)
                inflight[spec.trial_id] = ([request], spec)
                running[key] = spec.trial_id
                room -= 1
            if not inflight and (asked_nothing or self.configurator.exhausted()):
                stopped_by = stopped_by or "configurator exhausted"
                break
            if not inflight and repeating:
                stopped_by = "configurator asks only for finished trials"
                break
            for event in executor.poll(0.25):  # waits even when nothing runs (no busy loop)
                if isinstance(event, Report):
                    self.store.add_report(event.trial_id, event.step, event.value)
                    entry = inflight.get(event.trial_id)
                    if entry and self.configurator.report(entry[0][0], event.step,
                                                          event.value):
                        executor.prune(event.trial_id)
                    continue
                assert isinstance(event, Finished)
                requests, spec = inflight.pop(event.spec.trial_id)
                key = self._key(requests[0])
                running.pop(key, None)
                cost = self._finish(spec, event.outcome)
                self._cache[key] = (cost, event.outcome)
                for request in requests:
                    self.configurator.tell(request, cost, event.outcome)
                n_done += 1
                statuses[event.outcome.status] += 1
                best = self._best()
                self.store.set_meta("elapsed_s", elapsed())
                self.progress(Progress(n_done, budget.n_trials, elapsed(),
                                       budget.wall_time, best, event.outcome.status))
        if inflight:  # the wall time ran out: these did not finish, resume re-runs them
            self.close()
            self.store.mark_interrupted()
        self.store.set_meta("elapsed_s", elapsed())
        stored = self.store.get_meta("incumbents")
        if stored and n_done == n_before and not recovered:
            # Nothing new was told: the decision of the session that ran these trials
            # stands (SMAC's intensifier depends on the order results arrived in, which a
            # replay does not reproduce, so re-deciding could pick another incumbent).
            incumbents = (self._stored_incumbents(stored, done)
                          or self.configurator.incumbents())
        else:
            incumbents = self.configurator.incumbents()
        self.store.set_meta("incumbents", [
            {"config_id": config_id(self._full_config(p.config)), "cost": p.cost,
             "n_instances": p.n_instances} for p in incumbents])
        result = TuneResult(self.run_dir, n_done, dict(statuses), incumbents,
                            resumed=resumed or bool(recovered), stopped_by=stopped_by)
        return result

    def _stored_incumbents(self, stored: list[dict], done: list) -> list[Proposal]:
        configs = {t.config_id: t.config for t in done}
        return [Proposal(self._space_part(configs[p["config_id"]]), p["cost"],
                         p["n_instances"]) for p in stored if p["config_id"] in configs]

    def _recover(self, elapsed: Callable[[], float], out_of_time: Callable[[], bool]
                 ) -> int:
        """Re-run the configurator's trials that an earlier session left unfinished (killed
        or out of wall time), each key once, before the configurator is rebuilt: replayed
        with the rest, they are never dropped nor left to the configurator to ask again.
        Returns how many ran."""
        done = self.store.completed(origin="configurator")
        finished = {(t.config_id, t.instance, t.seed, t.budget) for t in done}
        todo: dict[tuple, Job] = {}
        for t in self.store.trials(status="interrupted", origin="configurator"):
            key = (t.config_id, t.instance, t.seed, t.budget)
            if key not in finished:
                todo.setdefault(key, Job(t.config, t.instance, t.seed, t.budget))
        if not todo or out_of_time():
            return 0
        n_before = len(done)
        total = self.scenario.budget.n_trials

        def progress(done: int, n: int, status: str) -> None:
            self.progress(Progress(n_before + done, total, elapsed(),
                                   self.scenario.budget.wall_time, None, status,
                                   phase="recovering"))

        evaluator = Evaluator(self.store, self.executor, self.objectives, self.crash,
                              "configurator", reuse=lambda t: False, progress=progress)
        evaluator.run(list(todo.values()))
        self.store.set_meta("elapsed_s", elapsed())
        return len(todo)

    def _finish(self, spec: TrialSpec, outcome: TrialOutcome) -> float | list[float]:
        return record_outcome(self.store, spec, outcome, self.objectives, self.crash)[1]

    def _best(self) -> float | None:
        if self.configurator is None:
            return None
        inc = self.configurator.incumbents()
        if not inc:
            return None
        c = inc[0].cost
        return float(c[0] if isinstance(c, list) else c)

    # -- incumbent vs default -------------------------------------------------------------
    def comparison_settings(self, incumbent: dict[str, Any]) -> tuple[int, float | None]:
        """Seed and budget of the final comparison: those the configurator evaluated the
        incumbent with (SMAC-AC draws its own seed, the others use the scenario seed), so
        its tuning trials answer the comparison on the training instances and the default
        runs with the same seed (a paired comparison).  If it never ran: the scenario seed
        and the highest fidelity (or the configuration's own epochs)."""
        cid = config_id(incumbent)
        used = [(t.seed, t.budget) for t in self.store.completed(origin="configurator")
                if t.config_id == cid]
        if used:
            top = max((b for _, b in used if b is not None), default=None)
            used = [u for u in used if u[1] == top]
            return max(sorted(set(used), key=str), key=used.count)
        fid = self.scenario.fidelity
        return int(self.scenario.seed), float(fid.max_epochs) if fid else None

    def compare(self, result: TuneResult) -> TuneResult:
        """Run default and incumbent on every train and test instance (reusing stored
        trials), write the incumbent file and the summary; returns ``result`` filled in."""
        if not result.incumbents:
            return result
        incumbent = self._full_config(result.incumbents[0].config)
        default = self._full_config(dict(self.cs.get_default_configuration()))
        seed, budget = self.comparison_settings(incumbent)
        jobs = [(name, cfg, inst, split)
                for split, insts in (("train", self.train), ("test", self.test))
                for inst in insts
                for name, cfg in (("default", default), ("incumbent", incumbent))]
        outcomes = self._evaluate([(cfg, inst, seed, budget) for _, cfg, inst, _ in jobs])
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for (name, _, inst, split), (res, trial_id) in zip(jobs, outcomes, strict=True):
            row = rows.setdefault((inst.id, split), {"instance": inst.id, "split": split})
            row[f"{name}_val_error"] = res.get("val_error", math.nan)
            row[f"{name}_test_error"] = res.get("test_error", math.nan)
            row[f"{name}_status"] = res.get("status", "crashed")
            row[f"{name}_trial"] = trial_id
        result.comparison = list(rows.values())
        result.comparison_seed = seed
        result.comparison_budget = budget
        # What the analysis reads back: which trials answer the comparison.
        self.store.set_meta("final_comparison", {
            "default": config_id(default), "incumbent": config_id(incumbent), "seed": seed,
            "budget": budget, "rows": result.comparison})
        result.incumbent_file = self._write_incumbent(result)
        return result

    def _evaluate(self, jobs: list[tuple[dict, Instance, int, float | None]]
                  ) -> list[tuple[dict, int]]:
        """Results (with the answering trial's id) of ``(config, instance, seed, budget)``
        jobs.  Each key runs once, ever: a comparison trial that finished in an earlier
        invocation answers whatever its status, and so does a tuning trial of the same key
        (an ``ok`` one only if it measured the test error); identical jobs run once."""
        def progress(done: int, total: int, status: str) -> None:
            self.progress(Progress(done, total, 0.0, None, None, status, phase="final"))

        def reuse(t) -> bool:
            if t.origin not in ("final", "configurator"):
                return False
            return t.status != "ok" or "test_error" in t.result

        evaluator = Evaluator(self.store, self.executor, self.objectives, self.crash, "final",
                              reuse=reuse, progress=progress)
        answers = evaluator.run([Job(cfg, inst.id, seed, budget)
                                 for cfg, inst, seed, budget in jobs])
        return [({**a.result, "status": a.status}, a.trial_id) for a in answers]

    def _write_incumbent(self, result: TuneResult) -> Path:
        """``incumbent.yaml``: the engine configuration the final comparison trained (seed
        and epochs included) and what it was tuned on, so ``aac-sparse train --config
        incumbent.yaml --instance ID`` retrains exactly a stored comparison trial."""
        import yaml

        inc = result.incumbents[0]
        seed, budget = result.comparison_seed, result.comparison_budget
        cfg = trial_config(self._full_config(inc.config), seed, budget)
        path = self.run_dir / "incumbent.yaml"
        example = (self.test or self.train).ids[0]
        header = (f"# Incumbent of scenario {self.scenario.name} (aac-sparse {__version__}).\n"
                  f"# Mean training-instance cost {inc.cost} over {inc.n_instances} "
                  "instance(s).\n"
                  "# Retrain it exactly as the final comparison did (same split, "
                  "preprocessing, seed and epochs):\n"
                  f"#   aac-sparse train --config {path} --instance '{example}'\n"
                  "# or on any dataset:  aac-sparse train --config " + str(path) +
                  " --dataset DATASET\n")
        tuned_on = {"scenario": self.scenario.name, "run": str(self.run_dir), "seed": seed,
                    "epochs": cfg.epochs, "instances": {"train": list(self.train.ids),
                                                        "test": list(self.test.ids)}}
        body = yaml.safe_dump(plain(cfg.model_dump()), sort_keys=False)
        par = trial_parallel(self._full_config(inc.config))
        if par.strategy != "none":
            body += yaml.safe_dump({PARALLEL_SECTION: par.model_dump()}, sort_keys=False)
        body += yaml.safe_dump({TUNED_ON: tuned_on}, sort_keys=False)
        atomic_write_text(path, header + body)
        atomic_write_json(self.run_dir / "summary.json", {
            "scenario": self.scenario.name, "n_trials": result.n_trials,
            "statuses": result.statuses, "stopped_by": result.stopped_by,
            "incumbents": [{"config": plain(p.config), "cost": p.cost,
                            "n_instances": p.n_instances} for p in result.incumbents],
            "comparison_seed": result.comparison_seed,
            "comparison": result.comparison,
        })
        return path


def tune(scenario: Scenario, scenario_file: Path | None = None, new: bool = False,
         force: bool = False, progress: ProgressFn | None = None,
         say: Callable[[str], None] = lambda s: None,
         executor_factory: Callable[..., Executor] | None = None) -> TuneResult:
    """Run (or resume) a scenario end to end; the library form of ``aac-sparse tune``.

    Everything is checked (and every instance prepared) before the run directory is
    written; one process at a time owns the directory.  ``executor_factory`` lends a
    worker pool (a study shares one between its runs)."""
    from .exports import to_csv

    check_scenario(scenario, scenario_file, say=say)
    with RunLock(scenario.run_dir(), "tune"):
        run_dir, store, _ = open_run(scenario, new, force)
        try:
            tuner = Tuner(scenario, run_dir, store, scenario_file, progress, executor_factory)
            try:
                tuner.prepare_data(say)
                result = tuner.compare(tuner.run())
                to_csv(store, run_dir / "trials.csv")
                return result
            finally:
                tuner.close()
        finally:
            store.close()
