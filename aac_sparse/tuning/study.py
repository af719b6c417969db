"""A study: every (space, configurator, seed) combination of one base scenario run as an
ordinary ``tune`` run with exactly the same trial budget, so the research questions can
be answered by comparing runs (:mod:`aac_sparse.analysis.study` writes the report).

The study file names a base scenario (bundled name or path; its instances, fixed
settings, objectives and limits), the spaces, the configurators, the seeds and the one
budget.  Runs go to ``DIR/runs/<space>-<configurator>-seed<k>``; re-running the same
command resumes each of them (finished runs are only read back).  All runs borrow one
pool of warm workers.  With ``racing: true`` the study ends with a racing ablation from
the SET and RigL presets to the best ``meta`` incumbent, stored in that run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from ..config_files import format_validation_error, read_mapping
from ..errors import ConfigError
from ..io import atomic_write_json
from .scenario import (
    MAX_NAME_LENGTH,
    Budget,
    Configurator,
    Execution,
    Instances,
    Scenario,
    _Strict,
    load_scenario,
    resolve,
)
from .store import STUDY_PLAN_FILENAME


class StudyFile(_Strict):
    """The fields of a study file (YAML)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=MAX_NAME_LENGTH)
    description: str = ""
    scenario: str | None = Field(None, description="base scenario: a file or bundled name")
    instances: Instances | None = Field(None, description="instead of the base's instances")
    fixed: dict[str, Any] | None = Field(None, description="replaces the base's fixed")
    spaces: list[str] = Field(min_length=1, description="meta, set, rigl or space files")
    configurators: list[str | Configurator] = Field(min_length=1)
    seeds: int | list[int] = Field(3, description="a count (0, 1, ...) or the list of seeds")
    budget: Budget = Field(description="the budget every run gets, exactly")
    execution: Execution | None = None
    racing: bool = Field(True, description="racing ablation SET/RigL -> best meta incumbent")
    output: str | None = Field(None, description="study directory; default studies/<name>")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        seeds = list(range(v)) if isinstance(v, int) else v
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError("give a positive count or a list of distinct seeds ≥ 0")
        return v

    @field_validator("budget")
    @classmethod
    def _budget(cls, b: Budget) -> Budget:
        if b.n_trials is None:
            raise ValueError("a study needs n_trials: every run gets exactly that many")
        if b.wall_time is not None:
            raise ValueError("wall_time would stop runs after unequal numbers of trials; "
                             "give n_trials (and trial_wall_time) only")
        return b

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def configurator_list(self) -> list[Configurator]:
        return [c if isinstance(c, Configurator) else Configurator(name=c)
                for c in self.configurators]


@dataclass(frozen=True)
class PlannedRun:
    """One run of the study."""

    name: str
    space: str
    configurator: str
    seed: int
    scenario: Scenario

    @property
    def run_dir(self) -> Path:
        return Path(self.scenario.output or "")


def load_study(path: str | Path) -> tuple[StudyFile, Path]:
    file = resolve(path, "study")
    data = read_mapping(file)
    if "space" in data and "spaces" not in data:
        raise ConfigError(f"{file}: this is a scenario file (space:, not spaces:); tune it "
                          f"with 'aac-sparse tune -s {file}', or give a study file (README: "
                          "'Research questions')")
    try:
        return StudyFile(**data), file
    except ValidationError as exc:
        raise ConfigError(format_validation_error(
            exc, str(file), "unknown field of a study file (README: 'Research questions')")
        ) from exc


def _space_label(space: str) -> str:
    return Path(space).stem if space not in ("meta", "set", "rigl") else space


def plan(study: StudyFile, file: Path | None, out_dir: Path) -> list[PlannedRun]:
    """Every run of the study as a validated scenario (nothing is written)."""
    from .configurators import CONFIGURATORS

    if study.scenario is None and study.instances is None:
        raise ConfigError(f"{file}: give scenario: (a base scenario) or instances:")
    if study.scenario is not None:
        base_path = Path(study.scenario)
        if file is not None and not base_path.is_absolute() and \
                (file.parent / base_path).is_file():
            base_path = file.parent / base_path
        base, _ = load_scenario(base_path)
        data = base.model_dump()
    else:
        data = {"instances": None}
    if study.instances is not None:
        data["instances"] = study.instances.model_dump()
    if study.fixed is not None:
        data["fixed"] = dict(study.fixed)
    data["budget"] = {**data.get("budget", {}), **study.budget.model_dump(exclude_unset=True)}
    data["budget"]["wall_time"] = None
    if study.execution is not None:
        data["execution"] = study.execution.model_dump()
    runs = []
    for space in study.spaces:
        if file is not None and space not in ("meta", "set", "rigl") and \
                not Path(space).is_absolute():
            space = str(file.parent / space)
        for conf in study.configurator_list:
            for seed in study.seed_list:
                name = f"{_space_label(space)}-{conf.name}-seed{seed}"
                base_conf = data.get("configurator") or {}
                options = conf.options or (base_conf.get("options", {})
                                           if base_conf.get("name") == conf.name else {})
                spec = {**data, "name": f"{study.name}-{name}"[:MAX_NAME_LENGTH],
                        "description": f"{study.name}: {name}", "space": space,
                        "configurator": {"name": conf.name, "options": dict(options)},
                        "seed": seed, "output": str(out_dir / "runs" / name)}
                registered = CONFIGURATORS.get(conf.name)
                if registered is not None and registered.fidelity == "never":
                    spec["fidelity"] = None  # the base's fidelity means nothing to it
                try:
                    sc = Scenario.model_validate(spec)
                except ValidationError as exc:
                    raise ConfigError(format_validation_error(
                        exc, f"{file} (run {name})")) from exc
                runs.append(PlannedRun(name, _space_label(space), conf.name, seed, sc))
    return runs


# -- running -----------------------------------------------------------------------------

@dataclass
class StudyProgress:
    runs_done: int
    n_runs: int
    trials_done: int
    n_trials: int
    current: str
    phase: str = "tuning"


class _Lent:
    """The study's worker pool as one run sees it: closing it at the end of a run leaves
    the workers warm for the next, unless trials still run (then it really closes)."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.inner = pool.get()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self):
        if self.inner.running():
            self.pool.discard()
        return []


class _Pool:
    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.executor: Any = None

    def get(self):
        if self.executor is None:
            self.executor = self.make()
        return self.executor

    def discard(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None


def run_study(study: StudyFile, file: Path | None, out_dir: Path | None = None,
              progress: Callable[[StudyProgress], None] | None = None,
              say: Callable[[str], None] = lambda s: None) -> list[PlannedRun]:
    """Run or resume every run of ``study`` under ``out_dir`` (default
    ``studies/<name>``); returns the plan.  Every run is checked before any is written."""
    from .ablation import racing_ablation
    from .checks import check_scenario
    from .tuner import make_executor, tune

    out_dir = Path(out_dir or study.output or Path("studies") / study.name)
    runs = plan(study, file, out_dir)
    for r in runs:
        check_scenario(r.scenario, file, prepare=False)
    report = progress or (lambda p: None)
    n_trials = int(study.budget.n_trials or 0)
    total = n_trials * len(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / STUDY_PLAN_FILENAME, {
        "study": study.model_dump(), "file": str(file) if file else None,
        "runs": [{"name": r.name, "space": r.space, "configurator": r.configurator,
                  "seed": r.seed, "run_dir": str(Path("runs") / r.name)} for r in runs]})
    pool = _Pool(lambda: make_executor(runs[0].scenario))
    done_trials = 0
    try:
        for k, r in enumerate(runs):
            def on_progress(p, k=k, r=r, base=done_trials) -> None:
                if p.phase in ("tuning", "resuming", "recovering"):
                    report(StudyProgress(k, len(runs), base + min(p.done, n_trials), total,
                                         r.name))
                else:
                    report(StudyProgress(k, len(runs), base + n_trials, total, r.name,
                                         "final comparison"))

            report(StudyProgress(k, len(runs), done_trials, total, r.name))
            tune(r.scenario, file, progress=on_progress, say=say,
                 executor_factory=lambda **limits: _Lent(pool))
            done_trials += n_trials
            report(StudyProgress(k + 1, len(runs), done_trials, total, r.name))
        if study.racing:
            best = best_meta_run(runs)
            if best is not None:
                for preset in ("set", "rigl"):
                    report(StudyProgress(len(runs), len(runs), total, total, best.name,
                                         f"racing ablation from {preset}"))
                    source, target = _racing_ends(best, preset)
                    racing_ablation(best.run_dir, source, target, preset, "incumbent",
                                    meta_key=f"ablation_racing.{preset}", say=say)
    finally:
        pool.discard()
    return runs


def best_meta_run(runs: list[PlannedRun]) -> PlannedRun | None:
    """The ``meta`` run whose incumbent has the lowest mean training cost."""
    from .store import TrialStore

    best, best_cost = None, float("inf")
    for r in runs:
        if r.space != "meta":
            continue
        store = TrialStore.open_readonly(r.run_dir)
        try:
            incs = store.get_meta("incumbents") or []
        finally:
            store.close()
        if incs:
            c = incs[0]["cost"]
            c = c[0] if isinstance(c, list) else c
            if c < best_cost:
                best, best_cost = r, c
    return best


def _racing_ends(run: PlannedRun, preset: str) -> tuple[dict, dict]:
    """Source (a preset, with the run's fixed settings) and target (its incumbent)."""
    from ..space.changes import preset_in_space
    from .checks import space_for
    from .store import TrialStore

    cs = space_for(run.scenario)
    store = TrialStore.open_readonly(run.run_dir)
    try:
        inc_id = (store.get_meta("incumbents") or [{}])[0].get("config_id")
        target = next(t.config for t in store.trials(origin="configurator")
                      if t.config_id == inc_id)
    finally:
        store.close()
    source = preset_in_space(cs, preset, run.scenario.fixed)
    return source, {k: v for k, v in target.items() if k in cs}
