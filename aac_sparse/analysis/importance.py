"""Which parameters matter: fANOVA over the whole run and local importance around the
incumbent.

fANOVA is honest about conditional parameters.  The main model uses the parameters that
are active in every trial it rests on; a conditional parameter (e.g. ``regrow_candidates``,
active only with ``regrow=gradient_sampled``) is analysed in its own sub-space, among the
trials where it is active, and its row says so (``subspace``) and how many trials that is.
Its importance is then a share of the variance *within* that sub-space.  A parent's
importance (``regrow``) includes whatever its children's settings did, as sampled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..space.changes import free_names, is_forbidden, with_values
from . import forest
from .fanova import Effect, fanova
from .rundata import Point, Run, Where
from .surrogate import Surrogate, design

MIN_TRIALS_PER_PARAMETER = 10
Progress = Callable[[str, int, int], None]


@dataclass
class Row:
    """One importance: ``parameter`` (or ``a × b`` for an interaction), mean and std over
    trees, the trials it rests on and the sub-space it was computed in."""

    parameter: str
    importance: float
    std: float
    n_trials: int
    subspace: str
    std_seeds: float = 0.0
    flagged: bool = False  # fewer than MIN_TRIALS_PER_PARAMETER trials per parameter


@dataclass
class Importance:
    """fANOVA results for one objective."""

    objective: str
    main: list[Row]
    interactions: list[Row]
    warnings: list[str] = field(default_factory=list)


def where_label(where: Where | None) -> str:
    if not where:
        return "all trials"
    return "; ".join(f"{k}={','.join(map(str, sorted(v, key=str)))}" for k, v in where.items())


def condition_label(cs, name: str) -> str:
    """The condition that makes ``name`` active, as ``parent=value[,value]``."""
    parts = []
    for cond in cs.parent_conditions_of[name]:
        values = getattr(cond, "values", None)
        if values is None:
            values = [getattr(cond, "value", "?")]
        parts.append(f"{cond.parent.name}={','.join(map(str, values))}")
    return " and ".join(parts) or "all trials"


def _fit_fanova(run: Run, points: Sequence[Point], names: Sequence[str], n_forests: int,
                n_trees: int, seed: int, top_pairs: int, progress: forest.Progress | None
                ) -> tuple[list[Effect], list[Effect]]:
    dims, x, x_inst, y, inst_rows = design(run, points, names)
    forests = forest.fit(x, x_inst, y, inst_rows, n_forests, n_trees, seed, progress)
    return fanova(forests, dims, top_pairs)


def fanova_importance(run: Run, objective: str, where: Where | None = None,
                      n_forests: int = 3, n_trees: int = 32, seed: int = 0,
                      top_pairs: int = 6, progress: Progress | None = None) -> Importance:
    """Main effects of every parameter (conditional ones in their sub-spaces) and the
    strongest pairwise interactions, for ``objective``."""
    trials = run.model_trials(where)
    points = [p for p in run.points(objective, trials=trials) if p.instance in run.train]
    if len({p.config_id for p in points}) < 2:
        raise ValueError(f"{where_label(where)}: fewer than two configurations finished at "
                         "the analysed budget; nothing to decompose")
    fixed_by_where = {k for k, v in (where or {}).items() if len(v) == 1}
    names = [n for n in free_names(run.cs) if n not in fixed_by_where]
    active = {n: [n in run.configs[p.config_id] for p in points] for n in names}
    always = [n for n in names if all(active[n])]
    groups: dict[tuple[bool, ...], list[str]] = defaultdict(list)
    for n in names:
        if any(active[n]) and not all(active[n]):
            groups[tuple(active[n])].append(n)
    n_fits = (1 + len(groups)) * n_forests
    done = [0]

    def step(label: str) -> forest.Progress:
        def report(k: int, total: int) -> None:
            done[0] += 1
            if progress is not None:
                progress(f"fANOVA ({label})", done[0], n_fits)
        return report

    warnings: list[str] = []
    label = where_label(where)
    main_rows: list[Row] = []
    interaction_rows: list[Row] = []
    n_trials = sum(p.n_trials for p in points)
    if always:
        mains, pairs = _fit_fanova(run, points, always, n_forests, n_trees, seed, top_pairs,
                                   step(label))
        flagged = _flag(warnings, label, n_trials, len(always))
        main_rows += [_row(e, n_trials, label, flagged) for e in mains]
        interaction_rows += [_row(e, n_trials, label, flagged) for e in pairs]
    for mask, group in groups.items():
        sub = [p for p, keep in zip(points, mask, strict=True) if keep]
        sub_label = condition_label(run.cs, group[0])
        sub_names = [n for n in names if all(n in run.configs[p.config_id] for p in sub)]
        sub_trials = sum(p.n_trials for p in sub)
        if len({p.config_id for p in sub}) < 2:
            warnings.append(f"{', '.join(group)}: active in fewer than two configurations "
                            f"({sub_label}); not analysed")
            for _ in range(n_forests):
                step(sub_label)(0, n_forests)
            continue
        mains, _ = _fit_fanova(run, sub, sub_names, n_forests, n_trees, seed, 0,
                               step(sub_label))
        flagged = _flag(warnings, sub_label, sub_trials, len(sub_names))
        main_rows += [_row(e, sub_trials, sub_label, flagged) for e in mains
                      if e.names[0] in group]
    main_rows.sort(key=lambda r: -r.importance)
    return Importance(objective, main_rows, interaction_rows, warnings)


def _flag(warnings: list[str], label: str, n_trials: int, n_params: int) -> bool:
    if n_trials >= MIN_TRIALS_PER_PARAMETER * n_params:
        return False
    warnings.append(f"{label}: {n_trials} trials for {n_params} parameters (fewer than "
                    f"{MIN_TRIALS_PER_PARAMETER} per parameter); these numbers are indicative")
    return True


def _row(e: Effect, n_trials: int, subspace: str, flagged: bool) -> Row:
    return Row(" × ".join(e.names), e.importance, e.std, n_trials, subspace, e.std_seeds,
               flagged)


# -- local parameter importance ---------------------------------------------------------

@dataclass
class LocalImportance:
    """LPI around a configuration, with the predicted cost along each parameter."""

    objective: str
    config_id: str
    rows: list[Row]
    curves: dict[str, list[tuple[Any, float]]]  # parameter -> (value, predicted cost)
    inactive: list[str]  # parameters not active at the configuration (not scored)
    warnings: list[str] = field(default_factory=list)


def local_importance(surrogate: Surrogate, config_id: str, config: Mapping[str, Any],
                     grid: int = 20) -> LocalImportance:
    """Biedenkapp et al. (2018): move each active parameter over its range with the
    others at ``config``; its share of the summed prediction variances, tree by tree.
    A parent's move switches its children on (at their defaults) or off; forbidden
    neighbours are skipped."""
    cs = surrogate.run.cs
    base = surrogate.run.space_part(config)
    names = [n for n in surrogate.names if n in base]
    inactive = [n for n in surrogate.names if n not in base]
    variances = []
    curves: dict[str, list[tuple[Any, float]]] = {}
    for dim in surrogate.dims:
        if dim.name not in base:
            continue
        configs, values = [], []
        for v in dim.grid(grid):
            moved = with_values(cs, base, {dim.name: v})
            if not is_forbidden(cs, moved):
                configs.append(moved)
                values.append(v)
        pred = surrogate.per_tree(configs)  # (trees, grid)
        variances.append(pred.var(axis=1))
        curves[dim.name] = [(v, float(c)) for v, c in zip(values, pred.mean(axis=0),
                                                           strict=True)]
    var = np.array(variances).T  # (trees, params)
    total = var.sum(axis=1, keepdims=True)
    frac = np.divide(var, total, out=np.zeros_like(var), where=total > 1e-15)
    seeds = surrogate.forests.tree_seed
    label = f"around {config_id}"
    warnings: list[str] = []
    flagged = _flag(warnings, label, surrogate.n_trials, len(surrogate.names))
    rows = []
    for j, name in enumerate(names):
        by_seed = [frac[seeds == s, j].mean() for s in np.unique(seeds)]
        rows.append(Row(name, float(frac[:, j].mean()), float(frac[:, j].std()),
                        surrogate.n_trials, label,
                        float(np.std(by_seed)) if len(by_seed) > 1 else 0.0, flagged))
    rows.sort(key=lambda r: -r.importance)
    return LocalImportance(surrogate.objective, config_id, rows, curves, inactive, warnings)
