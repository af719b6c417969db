"""Exports of a trial store: a pandas DataFrame, CSV, Parquet, an Optuna study (so
optuna-dashboard can open a run) and DeepCAVE's DataFrame run folder.

They only read the store (``TrialStore.open_readonly`` is enough).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aac_sparse.errors import UserError
from aac_sparse.io import atomic_write, atomic_write_json
from aac_sparse.tuning.store import (
    INTERRUPTED,
    META_CONFIGSPACE,
    META_OBJECTIVES,
    RUNNING,
    TrialStore,
    json_ready,
)

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from ConfigSpace import ConfigurationSpace

_PLAIN_COLUMNS = ("trial_id", "config_id", "instance", "seed", "budget", "origin", "status",
                  "error", "start", "end", "duration", "worker", "host", "version", "created")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def to_dataframe(store: TrialStore) -> pd.DataFrame:
    """One row per trial: the plain columns, ``cost`` (or ``cost.<i>`` for several
    objectives), ``config.<name>``, ``objective.<name>`` and scalar ``result.<name>``."""
    import pandas as pd

    trials = store.trials()
    multi = any(isinstance(t.cost, list) for t in trials)
    n_cost = max((len(t.cost) for t in trials if isinstance(t.cost, list)), default=0)
    rows = []
    for t in trials:
        row: dict[str, Any] = {c: getattr(t, c) for c in _PLAIN_COLUMNS}
        if multi:
            if isinstance(t.cost, list):
                costs = t.cost
            else:
                costs = [] if t.cost is None else [t.cost]
            for i in range(n_cost):
                row[f"cost.{i}"] = costs[i] if i < len(costs) else math.nan
        else:
            row["cost"] = math.nan if t.cost is None else t.cost
        row.update({f"config.{k}": v for k, v in sorted(t.config.items())})
        row.update({f"objective.{k}": v for k, v in sorted(t.objectives.items())})
        row.update({f"result.{k}": v for k, v in sorted(t.result.items()) if _is_scalar(v)})
        rows.append(row)
    base = [*_PLAIN_COLUMNS, *([f"cost.{i}" for i in range(n_cost)] if multi else ["cost"])]
    frame = pd.DataFrame(rows, columns=None if rows else base)
    if rows:
        extra = [c for c in frame.columns if c not in base]
        order = sorted(extra, key=lambda c: (("config.", "objective.", "result.")
                                             .index(c.split(".", 1)[0] + "."), c))
        frame = frame[base + order]
    return frame


def reports_dataframe(store: TrialStore) -> pd.DataFrame:
    """All intermediate reports as rows ``trial_id, step, value`` (learning curves)."""
    import pandas as pd

    rows = [(t.trial_id, step, value) for t in store.trials(with_reports=True)
            for step, value in (t.reports or ())]
    return pd.DataFrame(rows, columns=["trial_id", "step", "value"])


def to_csv(store: TrialStore, path: str | Path, include: Sequence[str] | None = None) -> Path:
    """Write :func:`to_dataframe` as CSV, atomically: every trial, or (``include`` given)
    the tuning trials plus the origins it names, as :func:`exported_frame`."""
    frame = to_dataframe(store) if include is None else exported_frame(store, include)
    return atomic_write(path, lambda fh: frame.to_csv(fh, index=False))


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing value types (e.g. str and float) become text so Arrow can store them."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and v == v}
            if len(kinds) > 1 and not kinds <= {int, float}:
                frame[column] = [None if v is None or v != v else str(v)
                                 for v in frame[column]]
    return frame


def to_parquet(store: TrialStore, path: str | Path,
               include: Sequence[str] | None = None) -> Path:
    """Write :func:`to_dataframe` as Parquet (pyarrow), atomically; ``include`` as in
    :func:`to_csv`."""
    frame = _parquet_safe(to_dataframe(store) if include is None
                          else exported_frame(store, include))
    return atomic_write(path, lambda fh: frame.to_parquet(fh, index=False))


def _space_and_objectives(store: TrialStore, cs: ConfigurationSpace | None,
                          objectives: Sequence[str] | None,
                          directions: Sequence[str] | None
                          ) -> tuple[ConfigurationSpace, list[str], list[str]]:
    """Fill what the caller left out from the store's meta (``configspace``, ``objectives``)."""
    if cs is None:
        from ConfigSpace import ConfigurationSpace

        serialized = store.get_meta(META_CONFIGSPACE)
        if serialized is None:
            raise UserError(f"trial store {store.path} has no meta {META_CONFIGSPACE!r}; "
                            "pass the configuration space to the export")
        cs = ConfigurationSpace.from_serialized_dict(serialized)
    if objectives is None:
        recorded = store.get_meta(META_OBJECTIVES)
        if not recorded:
            raise UserError(f"trial store {store.path} has no meta {META_OBJECTIVES!r}; "
                            "pass the objective names and directions to the export")
        objectives = [o["name"] for o in recorded]
        if directions is None:
            directions = [o.get("direction", "minimize") for o in recorded]
    objectives = list(objectives)
    directions = list(directions) if directions is not None else ["minimize"] * len(objectives)
    if len(directions) != len(objectives):
        raise ValueError(f"{len(objectives)} objectives {objectives} but {len(directions)} "
                         f"directions {directions}")
    bad = [d for d in directions if d not in ("minimize", "maximize")]
    if bad:
        raise ValueError(f"objective directions must be 'minimize' or 'maximize', not {bad}")
    return cs, objectives, directions


TUNING_ORIGIN = "configurator"
INCLUDABLE = ("final", "ablation")
PER = ("configuration", "instance")
# A configuration's status over its instances: ok only if every trial was; otherwise the
# most severe status among them.
_SEVERITY = ("crashed", "memout", "timeout", "diverged", INTERRUPTED, "pruned", "ok")


@dataclass
class ConfigurationRecord:
    """The trials of one configuration at one budget (and origin), across instances."""

    origin: str
    config_id: str
    config: dict[str, Any]
    budget: float | None
    trials: list[Any]

    @property
    def status(self) -> str:
        seen = {t.status for t in self.trials}
        return next(s for s in _SEVERITY if s in seen)

    def mean_objective(self, name: str) -> float:
        values = [t.objectives.get(name) for t in self.trials]
        finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
        return sum(finite) / len(finite) if len(finite) == len(values) else math.nan

    @property
    def cost(self) -> Any:
        """Mean of the costs the configurator was told (crash costs included)."""
        costs = [t.cost for t in self.trials if t.cost is not None]
        if not costs:
            return None
        if isinstance(costs[0], list):
            return [sum(c[i] for c in costs) / len(costs) for i in range(len(costs[0]))]
        return sum(costs) / len(costs)


def exported_frame(store: TrialStore, include: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`to_dataframe` restricted like :func:`exported_trials` (one row per trial)."""
    _check_include(include)
    frame = to_dataframe(store)
    keep = frame["origin"].isin({TUNING_ORIGIN, *include}) & (frame["status"] != RUNNING)
    return frame[keep].reset_index(drop=True)


def _check_include(include: Sequence[str]) -> None:
    bad = sorted(set(include) - set(INCLUDABLE))
    if bad:
        raise UserError(f"--include {','.join(bad)}: choose from {', '.join(INCLUDABLE)}")


def exported_trials(store: TrialStore, include: Sequence[str] = ()) -> list[Any]:
    """The trials an export holds: tuning trials, plus final-comparison and/or ablation
    trials when ``include`` names them; running trials never."""
    _check_include(include)
    origins = {TUNING_ORIGIN, *include}
    return [t for t in store.trials(with_reports=True)
            if t.origin in origins and t.status != RUNNING]


def by_configuration(trials: Sequence[Any]) -> list[ConfigurationRecord]:
    """Trials grouped by (origin, configuration, budget), in order of first appearance."""
    groups: dict[tuple, ConfigurationRecord] = {}
    for t in trials:
        key = (t.origin, t.config_id, t.budget)
        if key not in groups:
            groups[key] = ConfigurationRecord(t.origin, t.config_id, dict(t.config),
                                              t.budget, [])
        groups[key].trials.append(t)
    return list(groups.values())


def optuna_distributions(cs: ConfigurationSpace) -> dict[str, Any]:
    """Optuna distributions for the space: floats/ints keep bounds and log scale,
    categoricals and ordinals become string choices, constants are left out."""
    from ConfigSpace.hyperparameters import (
        CategoricalHyperparameter,
        Constant,
        FloatHyperparameter,
        IntegerHyperparameter,
        OrdinalHyperparameter,
    )
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists: dict[str, Any] = {}
    for hp in cs.values():
        if isinstance(hp, Constant):
            continue
        if isinstance(hp, FloatHyperparameter):
            dists[hp.name] = FloatDistribution(float(hp.lower), float(hp.upper), log=hp.log)
        elif isinstance(hp, IntegerHyperparameter):
            dists[hp.name] = IntDistribution(int(hp.lower), int(hp.upper), log=hp.log)
        elif isinstance(hp, CategoricalHyperparameter):
            dists[hp.name] = CategoricalDistribution([str(c) for c in hp.choices])
        elif isinstance(hp, OrdinalHyperparameter):
            dists[hp.name] = CategoricalDistribution([str(c) for c in hp.sequence])
        else:
            raise ValueError(f"hyperparameter {hp.name!r} of type {type(hp).__name__} has no "
                             "Optuna counterpart")
    return dists


def _optuna_param(dist: Any, value: Any) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    if isinstance(dist, FloatDistribution):
        return float(value)
    if isinstance(dist, IntDistribution):
        return int(value)
    return str(value)


def _local_time(timestamp: float) -> datetime:
    """Unix time as the naive local datetime Optuna itself records."""
    return datetime.fromtimestamp(timestamp)


def to_optuna_study(store: TrialStore, storage: str, study_name: str,
                    cs: ConfigurationSpace | None = None, objectives: Sequence[str] | None = None,
                    directions: Sequence[str] | None = None, *, overwrite: bool = False,
                    include: Sequence[str] = (), per: str = "configuration") -> optuna.Study:
    """Copy the run into a new Optuna study (e.g. in ``sqlite:///x.db`` for
    optuna-dashboard); ``overwrite=True`` replaces an existing one.

    ``per="configuration"`` (the default, and the project's own Optuna semantics): one
    Optuna trial per configuration and budget, its values the mean objectives over the
    instances, the per-instance costs, statuses and trial ids in user attrs — so the
    dashboard's Pareto front compares like with like.  ``per="instance"``: one Optuna trial
    per stored trial.  Only tuning trials unless ``include`` names ``final`` (the
    incumbent-vs-default comparison, held-out instances included) or ``ablation``.

    State: ``ok`` -> COMPLETE (FAIL if an objective is missing or NaN), ``pruned`` -> PRUNED
    (value = last finite report, as Optuna does, single objective only), the other statuses
    and ``interrupted`` -> FAIL.  Params are the active parameters, categorical and ordinal
    ones as Optuna's string labels (``aac_sparse.space.values.from_optuna`` maps them back
    to ConfigSpace values; the user attr ``config`` holds the store's values, ready for
    ``aac-sparse train``); intermediate values are the reports.
    """
    import optuna

    if per not in PER:
        raise UserError(f"--per {per!r}: choose one of {', '.join(PER)}")
    cs, objectives, directions = _space_and_objectives(store, cs, objectives, directions)
    dists = optuna_distributions(cs)
    if study_name in optuna.study.get_all_study_names(storage):
        if not overwrite:
            raise UserError(f"an Optuna study named {study_name!r} already exists in {storage}; "
                            "choose another name or pass overwrite=True to replace it")
        optuna.delete_study(study_name=study_name, storage=storage)
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions)
    with warnings.catch_warnings():  # set_metric_names is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    study.set_user_attr("source", str(store.path))
    study.set_user_attr("per", per)

    trials = exported_trials(store, include)
    frozen = []
    if per == "instance":
        for t in trials:
            attrs = {"trial_id": t.trial_id, "instance": t.instance, "seed": t.seed,
                     "budget": t.budget, "status": t.status, "origin": t.origin,
                     "config_id": t.config_id, "cost": json_ready(t.cost), "error": t.error,
                     "config": json_ready(t.config)}
            values = [t.objectives.get(name) for name in objectives]
            frozen.append(_frozen(len(frozen), t.trial_id, t.config, dists, t.status, values,
                                  t.reports or (), t.start, t.end, t.created, attrs,
                                  len(objectives)))
    else:
        for rec in by_configuration(trials):
            ts = rec.trials
            attrs = {"config_id": rec.config_id, "budget": rec.budget, "origin": rec.origin,
                     "status": rec.status, "n_instances": len({t.instance for t in ts}),
                     "cost": json_ready(rec.cost),
                     "instance_costs": {t.instance: json_ready(t.cost) for t in ts},
                     "instance_statuses": {t.instance: t.status for t in ts},
                     "trial_ids": [t.trial_id for t in ts],
                     "seeds": sorted({t.seed for t in ts}),
                     "config": json_ready(rec.config)}
            values = [rec.mean_objective(name) for name in objectives]
            if len(ts) == 1:
                reports = tuple(ts[0].reports or ())
            else:  # one step per instance, its cost (as Optuna's Wilcoxon pruner sees it)
                reports = tuple((i, float(t.cost)) for i, t in enumerate(ts)
                                if isinstance(t.cost, int | float))
            start = min((t.start if t.start is not None else t.created) for t in ts)
            end = max((t.end if t.end is not None else start) for t in ts)
            frozen.append(_frozen(len(frozen), ts[0].trial_id, rec.config, dists, rec.status,
                                  values, reports, start, end, start, attrs, len(objectives)))
    study.add_trials(frozen)
    return study


def _frozen(number: int, trial_id: int, config: dict[str, Any], dists: dict[str, Any],
            status: str, raw: list[Any], reports: Sequence[tuple[int, float]],
            start: float | None, end: float | None, created: float, attrs: dict[str, Any],
            n_objectives: int):
    """One finished Optuna trial for a stored trial or configuration."""
    from optuna.trial import FrozenTrial, TrialState

    params, param_dists = {}, {}
    for name, value in config.items():
        if name not in dists:
            continue
        params[name] = _optuna_param(dists[name], value)
        param_dists[name] = dists[name]
        if not dists[name]._contains(dists[name].to_internal_repr(params[name])):
            raise ValueError(f"trial {trial_id}: {name}={value!r} lies outside the space "
                             f"({dists[name]}); export with the space the run used")
    values: list[float] | None = None
    if status == "ok":
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in raw):
            state = TrialState.FAIL
            attrs["export_note"] = "an objective is missing or NaN"
        else:
            state, values = TrialState.COMPLETE, [float(v) for v in raw]
    elif status == "pruned":
        state = TrialState.PRUNED
        finite = [v for _, v in reports if math.isfinite(v)]
        if n_objectives == 1 and reports and finite and reports[-1][1] == finite[-1]:
            values = [finite[-1]]
    else:
        state = TrialState.FAIL
    start = start if start is not None else created
    end = end if end is not None else start
    return FrozenTrial(
        number=number, state=state, value=None, values=values,
        datetime_start=_local_time(start), datetime_complete=_local_time(end), params=params,
        distributions=param_dists, user_attrs=attrs, system_attrs={},
        intermediate_values={step: v for step, v in reports}, trial_id=0)


# DeepCAVE's DataFrame converter (deepcave.runs.converters.dataframe.DataFrameRun) reads a
# folder with configspace.csv and trials.csv; these are its status names.
_DEEPCAVE_STATUS = {"ok": "success", "diverged": "failed", "crashed": "crashed",
                    "timeout": "timeout", "memout": "memoryout", "pruned": "pruned",
                    INTERRUPTED: "aborted"}
_PANDAS_NA_TOKENS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                     "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                     "nan", "null"}


def _choice_label(value: Any) -> str:
    """A categorical choice as text that pandas reads back as that same text: values that
    would parse as numbers, booleans or NA (``1``, ``True``, ``None``) are put in quotes."""
    text = str(value)
    unsafe = text in _PANDAS_NA_TOKENS or text.strip() != text or text.lower() in (
        "true", "false")
    if not unsafe:
        try:
            float(text)
            unsafe = True
        except ValueError:
            pass
    return f"'{text}'" if unsafe else text


def _decimal(x: float) -> str:
    """A bound in the plain decimal form DeepCAVE's column-name pattern accepts."""
    import numpy as np

    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    text = np.format_float_positional(float(x), trim="0")
    return text if "." in text else text + ".0"


def to_deepcave(store: TrialStore, directory: str | Path,
                cs: ConfigurationSpace | None = None, objectives: Sequence[str] | None = None,
                directions: Sequence[str] | None = None,
                bounds: dict[str, tuple[float, float]] | None = None,
                include: Sequence[str] = (), per: str = "configuration") -> Path:
    """Write the run as a DeepCAVE "DataFrame" run folder (open it in DeepCAVE's run picker).

    DeepCAVE keys a trial by (configuration, budget, seed) and keeps the last row of a key,
    so ``per="configuration"`` (default) writes one row per configuration and budget, with
    the mean objectives and one ``cost:<instance>`` column per instance; ``per="instance"``
    writes one row per stored trial, its ``seed`` made unique per key where two trials
    share one (the trial's own seed is in ``trial_seed``).  Tuning trials only unless
    ``include`` names ``final`` or ``ablation``.

    Files: ``configspace.csv`` (name, type, log, lower, upper, default, distribution,
    item_<i>, ordered, distribution_mu/sigma/alpha/beta), ``trials.csv`` (config_id, one
    column per parameter, ``metric:<name> [<lower>; <upper>] (<minimize|maximize>)``, status,
    start_time, end_time, budget, seed, then trial_id, instance, origin, inactive, error) and,
    for other tools, ``configspace.json`` with the full space.  The DataFrame format has no
    constants or conditions: constants are left out, an inactive parameter is written as its
    default and named in ``inactive``.  Objective bounds default to the observed range.
    Running trials are left out; interrupted ones are 'aborted'.
    """
    import numpy as np
    import pandas as pd
    from ConfigSpace.hyperparameters import (
        BetaFloatHyperparameter,
        BetaIntegerHyperparameter,
        CategoricalHyperparameter,
        Constant,
        FloatHyperparameter,
        IntegerHyperparameter,
        NormalFloatHyperparameter,
        NormalIntegerHyperparameter,
        OrdinalHyperparameter,
    )

    cs, objectives, directions = _space_and_objectives(store, cs, objectives, directions)
    directory = Path(directory)
    hps = [hp for hp in cs.values() if not isinstance(hp, Constant)]

    space_rows = []
    for hp in hps:
        row: dict[str, Any] = {"name": hp.name}
        if isinstance(hp, (FloatHyperparameter, IntegerHyperparameter)):
            row.update(type="float" if isinstance(hp, FloatHyperparameter) else "integer",
                       log=bool(hp.log), lower=hp.lower, upper=hp.upper,
                       default=hp.default_value, distribution="uniform")
            if isinstance(hp, (NormalFloatHyperparameter, NormalIntegerHyperparameter)):
                row.update(distribution="normal", distribution_mu=hp.mu,
                           distribution_sigma=hp.sigma)
            elif isinstance(hp, (BetaFloatHyperparameter, BetaIntegerHyperparameter)):
                row.update(distribution="beta", distribution_alpha=hp.alpha,
                           distribution_beta=hp.beta)
        elif isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
            ordered = isinstance(hp, OrdinalHyperparameter)
            items = hp.sequence if ordered else hp.choices
            row.update(type="categorical", default=_choice_label(hp.default_value),
                       ordered=ordered)
            row.update({f"item_{i}": _choice_label(c) for i, c in enumerate(items)})
        else:
            raise ValueError(f"hyperparameter {hp.name!r} of type {type(hp).__name__} cannot "
                             "be written in DeepCAVE's DataFrame format")
        space_rows.append(row)
    n_items = max((int(k[5:]) + 1 for r in space_rows for k in r if k.startswith("item_")),
                  default=0)
    space_columns = ["name", "type", "log", "lower", "upper", "default", "distribution",
                     *[f"item_{i}" for i in range(n_items)], "ordered", "distribution_mu",
                     "distribution_sigma", "distribution_alpha", "distribution_beta"]
    space_frame = pd.DataFrame(space_rows, columns=space_columns)

    if per not in PER:
        raise UserError(f"--per {per!r}: choose one of {', '.join(PER)}")
    trials = exported_trials(store, include)
    metric_names = [re.sub(r"\W", "_", name) for name in objectives]
    if len(set(metric_names)) != len(metric_names):
        raise ValueError(f"objective names {objectives} collide once made DeepCAVE-safe "
                         f"({metric_names}); rename them")
    bounds = dict(bounds or {})
    metric_columns = []
    for name, safe, direction in zip(objectives, metric_names, directions, strict=True):
        if name in bounds:
            lower, upper = bounds[name]
        else:
            seen = [v for t in trials if isinstance(v := t.objectives.get(name), float | int)
                    and math.isfinite(v)]
            lower, upper = (min(seen), max(seen)) if seen else (0.0, 1.0)
        metric_columns.append(
            f"metric:{safe} [{_decimal(lower)}; {_decimal(upper)}] ({direction})")

    if per == "configuration":
        records = by_configuration(trials)
        instances = list(dict.fromkeys(t.instance for t in trials))
    else:
        records = [ConfigurationRecord(t.origin, t.config_id, dict(t.config), t.budget, [t])
                   for t in trials]
        instances = []
    used: set[tuple] = set()
    trial_rows = []
    for rec in records:
        ts = rec.trials
        row = {"config_id": rec.config_id}
        inactive = []
        for hp in hps:
            value = rec.config.get(hp.name)
            if value is None:
                inactive.append(hp.name)
                value = hp.default_value
            if isinstance(hp, FloatHyperparameter):
                row[hp.name] = float(value)
            elif isinstance(hp, IntegerHyperparameter):
                row[hp.name] = int(value)
            else:
                row[hp.name] = _choice_label(value)
        for name, column in zip(objectives, metric_columns, strict=True):
            row[column] = rec.mean_objective(name)
        start = min((t.start if t.start is not None else t.created) for t in ts)
        end = max((t.end if t.end is not None else start) for t in ts)
        status = _DEEPCAVE_STATUS[rec.status]
        if status == "success" and any(math.isnan(row[c]) for c in metric_columns):
            status = "failed"  # DeepCAVE cannot use a success without all its costs
        seeds = sorted({t.seed for t in ts})
        seed = seeds[0] if len(seeds) == 1 else -1
        while (rec.config_id, rec.budget, seed) in used:  # DeepCAVE would overwrite it
            seed = seed + 1 if seed >= 0 else len(used) + 1
        used.add((rec.config_id, rec.budget, seed))
        row.update(status=status, start_time=start, end_time=end,
                   budget=np.nan if rec.budget is None else rec.budget, seed=seed,
                   trial_id=";".join(str(t.trial_id) for t in ts),
                   instance=";".join(t.instance for t in ts), origin=rec.origin,
                   inactive=";".join(inactive), error=" | ".join(t.error for t in ts
                                                                 if t.error),
                   trial_seed=";".join(str(t.seed) for t in ts))
        for inst in instances:
            costs = [t.cost for t in ts if t.instance == inst and
                     isinstance(t.cost, int | float)]
            row[f"cost:{inst}"] = costs[0] if costs else np.nan
        trial_rows.append(row)
    trial_columns = ["config_id", *[hp.name for hp in hps], *metric_columns, "status",
                     "start_time", "end_time", "budget", "seed", "trial_id", "instance",
                     "origin", "inactive", "error", "trial_seed",
                     *[f"cost:{inst}" for inst in instances]]
    trial_frame = pd.DataFrame(trial_rows, columns=trial_columns)

    atomic_write(directory / "configspace.csv",
                 lambda fh: space_frame.to_csv(fh, index=False))
    atomic_write_json(directory / "configspace.json", cs.to_serialized_dict())
    # trials.csv last: DeepCAVE watches its modification time to notice a changed run.
    atomic_write(directory / "trials.csv", lambda fh: trial_frame.to_csv(fh, index=False))
    return directory
