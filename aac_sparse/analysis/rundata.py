"""A tuning run as the analysis sees it: read once, read-only, from its trial store.

:func:`load_run` opens ``trials.sqlite`` read-only and reads the meta (space, objectives,
instances, crash costs, incumbents) and every trial in one consistent snapshot, so a
run that ``tune`` is still writing can be analysed.  :meth:`Run.points` aggregates the
tuning trials into one point per (configuration, instance): the mean over seeds, at the
highest budget for multi-fidelity runs; final-comparison and ablation trials are never
model data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..costs import pareto
from ..errors import UserError
from ..tuning.store import (
    META_CONFIGSPACE,
    META_OBJECTIVES,
    RUNNING,
    StoredTrial,
    TrialStore,
    resolve_store_path,
)
from ..tuning.trial import STATUSES

TUNING, FINAL, ABLATION = "configurator", "final", "ablation"
REQUIRED_META = (META_CONFIGSPACE, META_OBJECTIVES, "train_instances", "crash_cost")


class RunError(UserError):
    """A run directory that cannot be analysed (missing, empty, from an older version)."""


@dataclass(frozen=True)
class Point:
    """One configuration on one training instance: ``cost`` is the mean over the
    ``n_trials`` trials (seeds) that ran it at the analysed budget."""

    config_id: str
    instance: str
    cost: float
    n_trials: int


Where = Mapping[str, frozenset]


@dataclass
class Run:
    """Everything the analysis reads from one run directory."""

    run_dir: Path
    meta: dict[str, Any]
    cs: Any  # ConfigSpace.ConfigurationSpace
    objectives: list[str]
    train: list[str]
    test: list[str]
    crash: dict[str, float]
    trials: list[StoredTrial]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.trials:
            self.configs.setdefault(t.config_id, dict(t.config))

    # -- what is in it ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return str((self.meta.get("scenario") or {}).get("name", self.run_dir.name))

    @property
    def running(self) -> list[StoredTrial]:
        return [t for t in self.trials if t.status == RUNNING]

    def finished(self, origin: str | None = TUNING) -> list[StoredTrial]:
        """Trials that ended (any status), optionally of one origin."""
        return [t for t in self.trials if t.status in STATUSES
                and (origin is None or t.origin == origin)]

    def space_part(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The values of ``config`` that belong to the configuration space."""
        return {k: config[k] for k in self.cs.keys() if k in config}

    @property
    def fixed(self) -> dict[str, Any]:
        """Settings outside the space that every trial of the run used (e.g. ``hidden``)."""
        return dict((self.meta.get("scenario") or {}).get("fixed") or {})

    def default_config(self) -> dict[str, Any]:
        """The space's default (active parameters only)."""
        return dict(self.cs.get_default_configuration())

    def objective_values(self, trial: StoredTrial, objective: str) -> float:
        value = trial.objectives.get(objective)
        return float(self.crash.get(objective, np.nan) if value is None else value)

    def budget(self) -> float | None:
        """The highest budget any tuning trial ran at (None: the configuration's own)."""
        budgets = [t.budget for t in self.finished() if t.budget is not None
                   and t.status != "pruned"]
        return max(budgets) if budgets else None

    # -- model data -------------------------------------------------------------------
    def model_trials(self, where: Where | None = None) -> list[StoredTrial]:
        """Tuning trials the analysis models: finished, not pruned (a pruned trial did not
        train to its budget), at the highest budget, matching ``where``."""
        budget = self.budget()
        out = []
        for t in self.finished():
            if t.status == "pruned" or t.budget != budget:
                continue
            if where and not all(t.config.get(k) in v for k, v in where.items()):
                continue
            out.append(t)
        return out

    def points(self, objective: str, where: Where | None = None,
               trials: Iterable[StoredTrial] | None = None) -> list[Point]:
        """One point per (configuration, training instance): the mean over seeds."""
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for t in (self.model_trials(where) if trials is None else trials):
            groups[(t.config_id, t.instance)].append(self.objective_values(t, objective))
        return [Point(cid, inst, float(np.mean(v)), len(v))
                for (cid, inst), v in sorted(groups.items())]

    def config_costs(self, objective: str) -> dict[str, tuple[float, int]]:
        """Mean cost over the instances each configuration ran on, and how many."""
        per: dict[str, list[float]] = defaultdict(list)
        for p in self.points(objective):
            per[p.config_id].append(p.cost)
        return {cid: (float(np.mean(v)), len(v)) for cid, v in per.items()}

    def incumbent(self, objective: str | None = None) -> str | None:
        """The tuner's incumbent when it recorded one (for its first objective), else the
        configuration with the lowest mean cost among those run on the most instances."""
        objective = objective or self.objectives[0]
        recorded = [r["config_id"] for r in self.meta.get("incumbents") or []]
        if recorded and objective == self.objectives[0] and recorded[0] in self.configs:
            return str(recorded[0])
        return best_config(self.config_costs(objective))

    def objective_means(self) -> list[tuple[str, list[float]]]:
        """Mean objective values of every configuration run on all training instances."""
        per: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
        for t in self.model_trials():
            per[t.config_id][t.instance].append(
                [self.objective_values(t, o) for o in self.objectives])
        out = []
        for cid, by_inst in per.items():
            if len(by_inst) == len(self.train):
                means = np.mean([np.mean(v, axis=0) for v in by_inst.values()], axis=0)
                out.append((cid, [float(m) for m in np.atleast_1d(means)]))
        return out

    def pareto(self) -> list[tuple[str, list[float]]]:
        """Configurations on every training instance that no other one dominates."""
        return pareto(self.objective_means(), lambda item: item[1])


def best_config(costs: Mapping[str, tuple[float, int]]) -> str | None:
    """Among the configurations run on the most instances, the one with the lowest mean
    (ties: the first in id order)."""
    if not costs:
        return None
    most = max(n for _, n in costs.values())
    return min((c for c, (_, n) in costs.items() if n == most),
               key=lambda c: (costs[c][0], c))


def load_run(path: str | Path) -> Run:
    """Read a run directory (or its ``trials.sqlite``) for analysis; a clear
    :class:`RunError` when it is missing, empty or was written by an older aac-sparse."""
    from ConfigSpace import ConfigurationSpace

    path = Path(path).expanduser()
    if not path.exists():
        raise RunError(f"{path}: no such run directory; give the directory an "
                       "`aac-sparse tune` run wrote (e.g. runs/leukemia)")
    store_file = resolve_store_path(path)
    if not store_file.is_file():
        raise RunError(f"{path} holds no trial store ({store_file.name}); give the "
                       "directory an `aac-sparse tune` run wrote (e.g. runs/leukemia)")
    store = TrialStore.open_readonly(store_file)
    try:
        with store.snapshot():
            meta = store.meta()
            trials = store.trials()
    finally:
        store.close()
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        if not trials:
            raise RunError(f"{store_file} holds no trials yet: `tune` stopped (or is "
                           "still starting) before its first trial; run it again")
        raise RunError(f"{store_file} lacks {', '.join(missing)} in its metadata: it was "
                       f"written by an older aac-sparse ({meta.get('package_version', '?')}); "
                       "re-run the scenario with this version to analyse it")
    run = Run(run_dir=store_file.parent, meta=meta,
              cs=ConfigurationSpace.from_serialized_dict(meta[META_CONFIGSPACE]),
              objectives=[o["name"] for o in meta[META_OBJECTIVES]],
              train=list(meta["train_instances"]), test=list(meta.get("test_instances", [])),
              crash=dict(meta["crash_cost"]), trials=trials)
    if not run.finished():
        if run.running:
            raise RunError(f"{run.run_dir}: the run is still running and no trial has "
                           f"finished yet ({len(run.running)} running); try again later")
        raise RunError(f"{run.run_dir}: no tuning trial has finished; nothing to analyse")
    return run


def parse_where(cs, clauses: Iterable[str]) -> dict[str, frozenset]:
    """``name=value[,value...]`` clauses as {name: allowed values}, typed by the space."""
    out: dict[str, frozenset] = {}
    for clause in clauses:
        name, sep, text = clause.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise UserError(f"--where {clause!r}: write NAME=VALUE (several values: "
                            "NAME=V1,V2), e.g. regrow=gradient")
        if name not in cs:
            raise UserError(f"--where {clause!r}: {name!r} is not a parameter of this run's "
                            f"space; its parameters: {', '.join(cs.keys())}")
        out[name] = frozenset(_typed(cs[name], v.strip(), clause) for v in text.split(","))
    return out


def _typed(hp, text: str, clause: str) -> Any:
    choices = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
    if choices is None and hasattr(hp, "value"):  # a constant
        choices = (hp.value,)
    if choices is not None:
        for c in choices:
            if str(c) == text:
                return c
        raise UserError(f"--where {clause!r}: {text!r} is not a value of {hp.name}; "
                        f"its values: {', '.join(map(str, choices))}")
    try:
        return int(text) if float(text).is_integer() and "int" in type(hp).__name__.lower() \
            else float(text)
    except ValueError:
        raise UserError(f"--where {clause!r}: {text!r} is not a number") from None
