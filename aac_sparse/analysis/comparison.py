"""Default vs incumbent per instance, the incumbent's trajectory, and the run's statuses
over time, all from the trial store."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..tuning.store import StoredTrial
from ..tuning.trial import STATUSES
from .rundata import FINAL, Run
from .stats import Paired, paired


def metric_of(objective: str) -> str:
    """What is compared per instance: the error on the instance's test split for the
    validation-error objective (validation was what tuning saw), else the objective."""
    return "test_error" if objective == "val_error" else objective


@dataclass
class InstanceRow:
    split: str  # train | test
    instance: str
    default: float
    incumbent: float
    default_status: str
    incumbent_status: str

    @property
    def delta(self) -> float:
        return self.incumbent - self.default


@dataclass
class Comparison:
    """The incumbent against the default on every training and held-out instance."""

    metric: str
    default_id: str
    incumbent_id: str
    rows: list[InstanceRow]
    tests: dict[str, Paired]  # split (train, test, all) -> paired tests


def _value(t: StoredTrial | None, metric: str) -> float:
    if t is None or t.status != "ok":
        return math.nan
    v = t.result.get(metric, t.objectives.get(metric))
    return float(v) if isinstance(v, int | float) else math.nan


def instance_comparison(run: Run, objective: str) -> Comparison | None:
    """The comparison the tuner recorded (its trials), or, for a run that recorded none,
    the latest trials of the default and the incumbent on each instance."""
    metric = metric_of(objective)
    by_id = {t.trial_id: t for t in run.trials}
    recorded = run.meta.get("final_comparison")
    rows: list[InstanceRow] = []
    if recorded:
        default_id, incumbent_id = recorded["default"], recorded["incumbent"]
        for r in recorded["rows"]:
            d, i = by_id.get(r.get("default_trial")), by_id.get(r.get("incumbent_trial"))
            rows.append(InstanceRow(r["split"], r["instance"], _value(d, metric),
                                    _value(i, metric), d.status if d else "missing",
                                    i.status if i else "missing"))
    else:
        default_id = _find_default(run)
        incumbent_id = run.incumbent(objective)
        if default_id is None or incumbent_id is None:
            return None
        latest: dict[tuple[str, str], StoredTrial] = {}
        for t in sorted(run.finished(origin=None), key=lambda t: (t.origin == FINAL, t.end or 0)):
            latest[(t.config_id, t.instance)] = t
        for split, insts in (("train", run.train), ("test", run.test)):
            for inst in insts:
                d, i = latest.get((default_id, inst)), latest.get((incumbent_id, inst))
                if d is None and i is None:
                    continue
                rows.append(InstanceRow(split, inst, _value(d, metric), _value(i, metric),
                                        d.status if d else "missing",
                                        i.status if i else "missing"))
    if not rows:
        return None
    tests = {}
    for split in ("train", "test", "all"):
        chosen = [r for r in rows if split in ("all", r.split)]
        if chosen:
            tests[split] = paired([r.default for r in chosen], [r.incumbent for r in chosen])
    return Comparison(metric, default_id, incumbent_id, rows, tests)


def _find_default(run: Run) -> str | None:
    default = run.default_config()
    for cid, config in run.configs.items():
        if run.space_part(config) == default:
            return cid
    return None


@dataclass
class TrajectoryPoint:
    trial: int  # finished tuning trials so far
    wall_time: float  # seconds since the first trial started
    incumbent_cost: float
    incumbent: str | None


def trajectory(run: Run, objective: str) -> list[TrajectoryPoint]:
    """After each finished tuning trial (in the order they ended): the incumbent so far.

    As in racing configurators, a challenger replaces the incumbent only once it has run
    on at least as many instances and its mean cost is lower, so a configuration that has
    run on more instances than every other one does not win by that alone."""
    trials = sorted(run.finished(), key=lambda t: (t.end or 0.0, t.trial_id))
    if not trials:
        return []
    t0 = min(t.start or t.created for t in trials)
    modelled = {t.trial_id for t in run.model_trials()}
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    costs: dict[str, tuple[float, int]] = {}
    inc: str | None = None
    out = []
    for k, t in enumerate(trials, 1):
        if t.trial_id in modelled:
            per[t.config_id][t.instance].append(run.objective_values(t, objective))
            by_inst = per[t.config_id]
            costs[t.config_id] = (float(np.mean([np.mean(v) for v in by_inst.values()])),
                                  len(by_inst))
            n_inc = costs[inc][1] if inc is not None else 0
            inc = min((c for c, (_, n) in costs.items() if n >= n_inc),
                      key=lambda c: (costs[c][0], c))
        out.append(TrajectoryPoint(k, float((t.end or t0) - t0),
                                   costs[inc][0] if inc else math.nan, inc))
    return out


def trial_costs(run: Run, objective: str) -> dict[str, np.ndarray]:
    """Costs of the finished tuning trials by status (for the ECDF)."""
    out: dict[str, list[float]] = defaultdict(list)
    for t in run.finished():
        out[t.status].append(run.objective_values(t, objective))
    return {s: np.sort(np.array(v)) for s, v in out.items()}


def statuses_over_time(run: Run) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """End times (s since the first start) of the tuning trials, and the cumulative count
    of each status at those times."""
    trials = sorted(run.finished(), key=lambda t: (t.end or 0.0, t.trial_id))
    if not trials:
        return np.zeros(0), {}
    t0 = min(t.start or t.created for t in trials)
    times = np.array([(t.end or t0) - t0 for t in trials])
    counts = {s: np.cumsum([t.status == s for t in trials]) for s in STATUSES
              if any(t.status == s for t in trials)}
    return times, counts
