"""The study report: the three research questions of seed 000 answered from the trial
stores of a study's runs (written by ``aac-sparse study``), with paired tests.

* Q1, configurability: default vs tuned error on the held-out instances per space and
  configurator, pooled over instances x seeds (Wilcoxon signed-rank and a sign-flip
  permutation test); tunability as in Probst, Boulesteix & Bischl (JMLR 2019): the
  default's risk minus the tuned risk, and per parameter the surrogate-estimated gain of
  moving that parameter alone from the default to the incumbent's value.
* Q2, combination: the ``meta`` space against the best single space at the same budget,
  paired over instances x seeds, with effect sizes, and incumbent cost over trials.
* Q3, contributions: fANOVA over the pooled ``meta`` trials, summed per component group;
  surrogate ablation paths from the SET and RigL presets to the best ``meta`` incumbent
  (and the racing ablations the study ran); which choices the incumbents share.

Every number comes from the stores; the conclusions are sentences generated from them.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..io import atomic_write, atomic_write_json, atomic_write_text
from ..space.definition import COMPONENT_GROUPS, component_group
from ..tuning.store import STUDY_PLAN_FILENAME
from . import plots
from .comparison import instance_comparison, metric_of, trajectory
from .report import Section, _f, _p, html_document, markdown_document, write_csv
from .rundata import TUNING, Run, RunError, load_run
from .stats import Paired, paired

SINGLE_SPACES = ("set", "rigl")
PRESET_NAMES = {"set": "SET", "rigl": "RigL"}


@dataclass
class StudyRun:
    name: str
    space: str
    configurator: str
    seed: int
    run: Run | None
    problem: str = ""


@dataclass
class StudyFindings:
    """What the report shows; ``numbers`` is also written as study.json."""

    name: str
    metric: str
    runs: list[StudyRun]
    sections: list[Section] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    conclusions: list[str] = field(default_factory=list)
    csv: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)


def load_study_runs(out_dir: Path) -> tuple[dict[str, Any], list[StudyRun]]:
    plan_file = out_dir / STUDY_PLAN_FILENAME
    if not plan_file.is_file():
        raise UserError(f"{out_dir} is not a study directory (no {STUDY_PLAN_FILENAME}); run "
                        "'aac-sparse study STUDY.yaml -o DIR' first")
    plan = json.loads(plan_file.read_text())
    runs = []
    for r in plan["runs"]:
        try:
            run = load_run(out_dir / r["run_dir"])
            problem = ""
        except RunError as exc:
            run = None
            problem = ("not started yet" if not (out_dir / r["run_dir"]).exists()
                       else str(exc))
        runs.append(StudyRun(r["name"], r["space"], r["configurator"], int(r["seed"]), run,
                             problem))
    return plan, runs


# -- per-run numbers ---------------------------------------------------------------------

def held_out(run: Run, objective: str) -> dict[str, tuple[float, float]]:
    """Test instance -> (default, incumbent) value of the comparison metric."""
    comp = instance_comparison(run, objective)
    if comp is None:
        return {}
    return {r.instance: (r.default, r.incumbent) for r in comp.rows if r.split == "test"}


def budget_used(run: Run) -> int:
    return len(run.finished(origin=TUNING))


def curve(run: Run, objective: str, n: int) -> np.ndarray:
    """Incumbent cost after each of the first ``n`` tuning trials (NaN before the first)."""
    out = np.full(n, np.nan)
    for p in trajectory(run, objective):
        if p.trial <= n:
            out[p.trial - 1] = p.incumbent_cost
    last = np.nan
    for i in range(n):
        if math.isnan(out[i]):
            out[i] = last
        last = out[i]
    return out


def pooled_run(runs: list[Run]) -> Run:
    """The tuning trials of several runs of one space as one run (trial ids renumbered);
    only fit for models of the cost landscape, not for per-run questions."""
    from dataclasses import replace

    trials, offset = [], 0
    for r in runs:
        for t in r.finished(origin=TUNING):
            trials.append(replace(t, trial_id=t.trial_id + offset))
        offset += max((t.trial_id for t in r.trials), default=0) + 1
    first = runs[0]
    return Run(first.run_dir, {k: v for k, v in first.meta.items()
                               if k not in ("final_comparison", "incumbents")},
               first.cs, first.objectives, first.train, first.test, first.crash, trials)


def _paired_row(p: Paired) -> list[Any]:
    return [p.n, p.mean_delta, p.median_delta, p.wilcoxon_p, p.permutation_p, p.cohens_dz,
            p.rank_biserial]


PAIRED_HEADER = ["n pairs", "mean Δ", "median Δ", "Wilcoxon p", "permutation p", "d_z",
                 "rank-biserial"]


def _table(sec: Section, header: list[str], rows: list[list[Any]]) -> None:
    """A table with floats shown to 4 significant places (the CSVs keep every digit)."""
    sec.table(header, [[_f(c) if isinstance(c, float) else c for c in row] for row in rows])


def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if not len(v):
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _pm(m: float, s: float) -> str:
    return f"{_f(m)} ± {_f(s)}"


# -- the analysis ------------------------------------------------------------------------

def analyse_study(out_dir: Path, n_forests: int = 3, n_trees: int = 32,
                  seed: int = 0) -> StudyFindings:
    plan, runs = load_study_runs(out_dir)
    ok = [r for r in runs if r.run is not None]
    if not ok:
        raise UserError(f"{out_dir}: no run of the study has finished a trial yet; run "
                        "'aac-sparse study' first")
    objective = ok[0].run.objectives[0]
    metric = metric_of(objective)
    f = StudyFindings(plan["study"]["name"], metric, runs)
    n_budget = int(plan["study"]["budget"]["n_trials"])
    _overview(f, n_budget)
    _q1(f, objective, n_forests, n_trees, seed)
    _q2(f, objective, n_budget)
    _q3(f, objective, n_forests, n_trees, seed)
    _caveats(f)
    concl = Section("Conclusions")
    for line in f.conclusions:
        concl.text(line)
    f.sections.insert(1, concl)
    f.numbers["conclusions"] = f.conclusions
    return f


def _overview(f: StudyFindings, n_budget: int) -> None:
    sec = Section("The study")
    rows = []
    for r in f.runs:
        if r.run is None:
            rows.append([r.name, r.space, r.configurator, r.seed, 0, "", r.problem])
            continue
        comp = r.run.meta.get("final_comparison") or {}
        rows.append([r.name, r.space, r.configurator, r.seed, budget_used(r.run),
                     comp.get("seed", ""), ""])
    used = {row[4] for row in rows}
    sec.text(f"{len(f.runs)} runs, each with a budget of {n_budget} tuning trials "
             f"(trials used: {', '.join(map(str, sorted(used)))}). Costs below are the "
             f"{f.metric} on the held-out test instances unless stated otherwise; Δ is "
             "the second minus the first (negative: the second is better).")
    _table(sec, ["run", "space", "configurator", "seed", "tuning trials",
               "comparison seed", "problem"], rows)
    f.csv["runs"] = (["run", "space", "configurator", "seed", "tuning_trials",
                      "comparison_seed", "problem"], rows)
    f.numbers["runs"] = [dict(zip(f.csv["runs"][0], row, strict=True)) for row in rows]
    f.sections.append(sec)


def _groups(f: StudyFindings) -> dict[tuple[str, str], list[StudyRun]]:
    out: dict[tuple[str, str], list[StudyRun]] = defaultdict(list)
    for r in f.runs:
        if r.run is not None:
            out[(r.space, r.configurator)].append(r)
    return dict(out)


def _q1(f: StudyFindings, objective: str, n_forests: int, n_trees: int, seed: int) -> None:
    from ..space.changes import next_changes
    from .surrogate import Surrogate

    sec = Section("Q1 — How configurable is each algorithm?")
    sec.text("Default configuration of each space (its preset) against the incumbent that "
             "tuning found, on the held-out instances; pairs are (seed, instance). "
             "Tunability d = default − tuned (Probst et al. 2019); relative = d / default.")
    rows, inst_rows, param_rows, numbers = [], [], [], []
    labels, dm, ds, tm, ts = [], [], [], [], []
    for (space, conf), group in sorted(_groups(f).items()):
        a, b = [], []
        per_seed_d, per_seed_t = [], []
        per_inst: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in group:
            values = held_out(r.run, objective)
            for inst, (d, t) in sorted(values.items()):
                a.append(d)
                b.append(t)
                per_inst[inst].append((d, t))
            if values:
                per_seed_d.append(float(np.nanmean([v[0] for v in values.values()])))
                per_seed_t.append(float(np.nanmean([v[1] for v in values.values()])))
        test = paired(a, b)
        d_mean, d_sd = _mean_sd(per_seed_d)
        t_mean, t_sd = _mean_sd(per_seed_t)
        gain = d_mean - t_mean
        rel = gain / d_mean if d_mean else math.nan
        rows.append([space, conf, len(group), _pm(d_mean, d_sd), _pm(t_mean, t_sd), gain, rel,
                     *_paired_row(test)])
        numbers.append({"space": space, "configurator": conf, "n_runs": len(group),
                        "default_mean": d_mean, "default_sd": d_sd, "tuned_mean": t_mean,
                        "tuned_sd": t_sd, "tunability": gain, "relative": rel,
                        "test": test.__dict__, "default": a, "tuned": b})
        labels.append(f"{space}/{conf}")
        dm.append(d_mean)
        ds.append(d_sd)
        tm.append(t_mean)
        ts.append(t_sd)
        for inst, pairs in sorted(per_inst.items()):
            inst_rows.append([space, conf, inst, float(np.nanmean([p[0] for p in pairs])),
                              float(np.nanmean([p[1] for p in pairs])), len(pairs)])
        if gain == gain and test.n:
            verdict = ("improved" if test.mean_delta < 0 else "worsened"
                       if test.mean_delta > 0 else "did not change")
            f.conclusions.append(
                f"Q1 {space} with {conf}: tuning {verdict} the held-out {f.metric} "
                f"({_f(d_mean)} → {_f(t_mean)}, tunability {_f(gain)}; Wilcoxon p = "
                f"{_p(test.wilcoxon_p)}, permutation p = {_p(test.permutation_p)}, "
                f"{test.n} pairs).")
        # per parameter: the surrogate's gain of moving one parameter to the incumbent value
        gains: dict[str, list[float]] = defaultdict(list)
        for r in group:
            run = r.run
            inc = run.incumbent(objective)
            if inc is None:
                continue
            try:
                sur = Surrogate(run, objective, n_forests, n_trees, seed)
            except ValueError:
                continue
            default = run.default_config()
            target = run.space_part(run.configs[inc])
            changes = next_changes(run.cs, default, target)
            if not changes:
                continue
            costs = sur.cost([default, *[c.config for c in changes]])
            for c, (cost, _) in zip(changes, costs[1:], strict=True):
                gains[c.label].append(costs[0][0] - cost)
        for name, g in sorted(gains.items(), key=lambda kv: -float(np.mean(kv[1]))):
            param_rows.append([space, conf, name, float(np.mean(g)),
                               float(np.std(g, ddof=1)) if len(g) > 1 else 0.0, len(g)])
    _table(sec, ["space", "configurator", "runs", "default (mean ± sd over seeds)",
               "tuned", "tunability d", "relative", *PAIRED_HEADER], rows)
    if labels:
        f.figures["q1"] = plots.paired_bars(labels, dm, ds, tm, ts, ("default", "tuned"),
                                            f"held-out {f.metric}",
                                            "default vs tuned (mean ± sd over seeds)")
        sec.figure("q1", "Default vs tuned on the held-out instances, per space and "
                   "configurator (error bars: spread over seeds).")
    sec.text("Per instance (mean over seeds):")
    _table(sec, ["space", "configurator", "instance", "default", "tuned", "seeds"], inst_rows)
    sec.text("Tunability per parameter: the gain in training-instance cost (surrogate "
             "forest of each run) of changing only that parameter from the default to the "
             "incumbent's value; mean and sd over the runs where it differed.")
    _table(sec, ["space", "configurator", "parameter", "gain", "sd", "runs"], param_rows[:60])
    f.csv["q1_configurability"] = (
        ["space", "configurator", "runs", "default", "tuned", "tunability", "relative",
         "n_pairs", "mean_delta", "median_delta", "wilcoxon_p", "permutation_p", "d_z",
         "rank_biserial"],
        [[n["space"], n["configurator"], n["n_runs"], n["default_mean"], n["tuned_mean"],
          n["tunability"], n["relative"], *_paired_row(Paired(**n["test"]))]
         for n in numbers])
    f.csv["q1_instances"] = (["space", "configurator", "instance", "default", "tuned",
                              "seeds"], inst_rows)
    f.csv["q1_tunability_parameters"] = (["space", "configurator", "parameter", "gain",
                                          "sd", "runs"], param_rows)
    f.numbers["q1"] = numbers
    f.sections.append(sec)


def _q2(f: StudyFindings, objective: str, n_budget: int) -> None:
    sec = Section("Q2 — What does combining SET and RigL gain?")
    groups = _groups(f)
    confs = sorted({c for _, c in groups})
    rows, numbers = [], []
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    x = np.arange(1, n_budget + 1)
    for (space, conf), group in sorted(groups.items()):
        cs = np.array([curve(r.run, objective, n_budget) for r in group])
        with warnings.catch_warnings():  # all-NaN columns (before any run's first trial)
            warnings.simplefilter("ignore", RuntimeWarning)
            series[f"{space}/{conf}"] = (x, np.nanmean(cs, axis=0), np.nanstd(cs, axis=0))

    def tuned(space: str, conf: str) -> dict[tuple[int, str], float]:
        out = {}
        for r in groups.get((space, conf), []):
            for inst, (_, t) in held_out(r.run, objective).items():
                out[(r.seed, inst)] = t
        return out

    for conf in confs:
        if ("meta", conf) not in groups:
            continue
        singles = [s for s, c in groups if c == conf and s != "meta"]
        if not singles:
            continue
        means = {s: float(np.nanmean(list(tuned(s, conf).values()) or [math.nan]))
                 for s in singles}
        best = min(singles, key=lambda s: (math.inf if math.isnan(means[s]) else means[s], s))
        meta_t = tuned("meta", conf)
        for other in [best, *[s for s in singles if s != best]]:
            o = tuned(other, conf)
            keys = sorted(set(meta_t) & set(o))
            test = paired([o[k] for k in keys], [meta_t[k] for k in keys])
            label = f"{other} (best single)" if other == best else other
            rows.append([conf, label, float(np.nanmean([o[k] for k in keys] or [math.nan])),
                         float(np.nanmean([meta_t[k] for k in keys] or [math.nan])),
                         *_paired_row(test)])
            numbers.append({"configurator": conf, "single": other, "best": other == best,
                            "single_tuned": [o[k] for k in keys],
                            "meta_tuned": [meta_t[k] for k in keys], "test": test.__dict__})
            if other == best and test.n:
                verdict = ("beats" if test.mean_delta < 0 else
                           "does not beat" if test.mean_delta > 0 else "ties with")
                f.conclusions.append(
                    f"Q2 with {conf}: at equal budget ({n_budget} trials) the combined meta "
                    f"space {verdict} the best single space ({best}) on the held-out "
                    f"instances: {_f(rows[-1][3])} vs {_f(rows[-1][2])}, mean Δ "
                    f"{_f(test.mean_delta)}, Wilcoxon p = {_p(test.wilcoxon_p)}, "
                    f"permutation p = {_p(test.permutation_p)}, d_z = {_f(test.cohens_dz)} "
                    f"({test.n} pairs).")
    sec.text("The tuned `meta` incumbent against each single space's tuned incumbent "
             "with the same configurator, budget and seed, paired over (seed, held-out "
             "instance); Δ = meta − single.")
    _table(sec, ["configurator", "single space", "single tuned", "meta tuned",
               *PAIRED_HEADER], rows)
    if series:
        f.figures["q2"] = plots.curves(series, "tuning trials",
                                       f"incumbent {objective} (training instances)",
                                       "incumbent cost over the budget (mean ± sd over "
                                       "seeds)")
        sec.figure("q2", "Incumbent training cost after each tuning trial, per space and "
                   "configurator: does the larger space pay off only with more budget?")
    f.csv["q2_combination"] = (["configurator", "single_space", "single_tuned",
                                "meta_tuned", "n_pairs", "mean_delta", "median_delta",
                                "wilcoxon_p", "permutation_p", "d_z", "rank_biserial"], rows)
    f.csv["q2_curves"] = (["series", "trial", "mean", "sd"],
                          [[k, int(i), float(m), float(s)] for k, (xs, ms, ss)
                           in series.items() for i, m, s in zip(xs, ms, ss, strict=True)])
    f.numbers["q2"] = numbers
    f.sections.append(sec)


def _q3(f: StudyFindings, objective: str, n_forests: int, n_trees: int, seed: int) -> None:
    from ..space.changes import preset_in_space
    from .ablation import surrogate_ablation
    from .importance import fanova_importance
    from .surrogate import Surrogate

    sec = Section("Q3 — Which components and values contribute most?")
    meta = [r for r in f.runs if r.run is not None and r.space == "meta"]
    if not meta:
        sec.text("The study has no `meta` runs: nothing to analyse here.")
        f.sections.append(sec)
        return
    pooled = pooled_run([r.run for r in meta])
    sec.text(f"fANOVA over the {len(pooled.trials)} tuning trials of the {len(meta)} "
             "`meta` runs pooled (training-instance cost); a group's share is the sum of "
             "the main effects of its parameters that are active everywhere; conditional "
             "ones are analysed in the sub-space where they are active, and their share "
             "is of that sub-space's variance.")
    numbers: dict[str, Any] = {}
    try:
        imp = fanova_importance(pooled, objective, n_forests=n_forests, n_trees=n_trees,
                                seed=seed)
        # Shares of the whole landscape add up; a conditional parameter's share is of
        # its own sub-space's variance and is listed beside its group, not added to it.
        totals: dict[str, float] = defaultdict(float)
        within: dict[str, list[str]] = defaultdict(list)
        for row in imp.main:
            group = component_group(row.parameter)
            if row.subspace == "all trials":
                totals[group] += row.importance
            else:
                totals.setdefault(group, 0.0)
                within[group].append(f"{row.parameter} {_f(row.importance, 2)} "
                                     f"(in {row.subspace})")
        group_rows = sorted(([g, v, ", ".join(n for n in COMPONENT_GROUPS.get(g, ())
                                              if n in pooled.cs), "; ".join(within[g])]
                             for g, v in totals.items()), key=lambda r: -r[1])
        _table(sec, ["component group", "variance share", "parameters",
                     "conditional parameters (share of their sub-space)"], group_rows)
        f.figures["q3_groups"] = plots.horizontal_bars(
            [r[0] for r in group_rows], [r[1] for r in group_rows], [0.0] * len(group_rows),
            "share of variance (main effects)", "importance per component group")
        sec.figure("q3_groups", "Main-effect variance per component group (pooled meta).")
        imp_rows = [[r.parameter, component_group(r.parameter), r.importance, r.std,
                     r.n_trials, r.subspace] for r in imp.main]
        _table(sec, ["parameter", "group", "importance", "std", "trials", "sub-space"],
                  imp_rows[:20])
        f.csv["q3_groups"] = (["group", "share", "parameters", "conditional"], group_rows)
        f.csv["q3_importance"] = (["parameter", "group", "importance", "std", "n_trials",
                                   "subspace"], imp_rows)
        numbers["groups"] = {r[0]: r[1] for r in group_rows}
        if group_rows:
            top = ", ".join(f"{r[0]} ({100 * r[1]:.0f}%)" for r in group_rows[:3])
            f.conclusions.append(f"Q3: in the pooled meta trials the component groups "
                                 f"that explain most of the variance are {top}.")
    except ValueError as exc:
        sec.text(f"fANOVA: {exc}")
    # the best meta incumbent, and ablation paths to it
    best, best_cost = None, math.inf
    for r in meta:
        inc = r.run.incumbent(objective)
        if inc is None:
            continue
        c = r.run.config_costs(objective)[inc][0]
        if c < best_cost:
            best, best_cost = (r, inc), c
    if best is not None:
        r, inc = best
        target = r.run.space_part(r.run.configs[inc])
        try:
            sur = Surrogate(pooled, objective, n_forests, n_trees, seed)
        except ValueError as exc:
            sur = None
            sec.text(f"ablation: {exc}")
        for preset in SINGLE_SPACES:
            try:
                source = preset_in_space(r.run.cs, preset, r.run.fixed)
            except ValueError as exc:
                sec.text(f"ablation from {preset}: {exc}")
                continue
            if sur is not None:
                path = surrogate_ablation(sur, source, target)
                rows = [[s.step, s.change.label if s.change else "(source)",
                         s.values(r.run.cs) if s.change else preset, s.cost, s.share]
                        for s in path]
                sec.text(f"Surrogate ablation from the {PRESET_NAMES[preset]} preset to the best "
                         f"meta incumbent (run {r.name}):")
                _table(sec, ["step", "parameter", "value", "predicted cost", "share"], rows)
                f.figures[f"q3_ablation_{preset}"] = plots.ablation_path(
                    path, f"ablation {preset} → meta incumbent", objective)
                sec.figure(f"q3_ablation_{preset}", f"Ablation path from {preset}.")
                f.csv[f"q3_ablation_{preset}"] = (["step", "parameter", "value", "cost",
                                                   "share"], rows)
                numbers[f"ablation_{preset}"] = rows
                steps = [s for s in path if s.change is not None and s.share == s.share]
                if steps:
                    top = max(steps, key=lambda s: s.share)
                    f.conclusions.append(
                        f"Q3: on the way from {PRESET_NAMES[preset]} to the best meta incumbent "
                        f"the largest single step is {top.change.label} → "
                        f"{top.values(r.run.cs)} ({100 * top.share:.0f}% of the predicted "
                        "change).")
            racing = r.run.meta.get(f"ablation_racing.{preset}")
            if racing:
                sec.text(f"Racing ablation from {PRESET_NAMES[preset]} (real trials, "
                         f"{racing['n_trials']} of them; Friedman + Conover):")
                _table(sec, ["step", "parameter", "value", "cost", "share"],
                          [[s["step"], s["parameter"], s["value"], s["cost"], s["share"]]
                           for s in racing["steps"]])
                numbers[f"racing_{preset}"] = racing
    # which choices the incumbents share
    incs = []
    for r in meta:
        inc = r.run.incumbent(objective)
        if inc is not None:
            incs.append((r.name, r.run.space_part(r.run.configs[inc])))
    from ConfigSpace import CategoricalHyperparameter, OrdinalHyperparameter

    share_rows = []
    for name in pooled.cs:
        hp = pooled.cs[name]
        if not isinstance(hp, CategoricalHyperparameter | OrdinalHyperparameter):
            continue
        values = [str(c.get(name, "(inactive)")) for _, c in incs]
        if not values:
            continue
        value, k = Counter(values).most_common(1)[0]
        share_rows.append([name, component_group(name), value, f"{k}/{len(values)}",
                           k / len(values), ", ".join(values)])
    share_rows.sort(key=lambda row: -row[4])
    sec.text("Choices of the meta incumbents of every run (seed x configurator): the most "
             "common value and how many incumbents share it.")
    _table(sec, ["parameter", "group", "most common", "shared by", "share", "all"],
              share_rows)
    f.csv["q3_shared_choices"] = (["parameter", "group", "value", "shared_by", "share",
                                   "values"], share_rows)
    numbers["shared_choices"] = share_rows
    f.numbers["q3"] = numbers
    f.sections.append(sec)


def _caveats(f: StudyFindings) -> None:
    n_inst = set()
    seeds = set()
    for r in f.runs:
        if r.run is not None:
            n_inst |= set(r.run.test)
            seeds.add(r.seed)
    n_pairs = len(n_inst) * len(seeds)
    min_p = 2.0 / 2 ** n_pairs if n_pairs else math.nan
    line = (f"Caveats: {len(n_inst)} held-out instance(s) × {len(seeds)} seed(s) give "
            f"{n_pairs} pairs per test, so no two-sided exact Wilcoxon p-value can fall "
            f"below {_p(min_p)}; pairs from one instance share its data and are not "
            "independent; training-instance costs are validation errors, noisy at this "
            "data size; per-parameter and per-group figures come from surrogate forests.")
    f.conclusions.append(line)


# -- writing -----------------------------------------------------------------------------

def write_study_report(out_dir: str | Path) -> dict[str, Any]:
    """Write study.html, study.md, study.json, the CSV tables and figures/ into the study
    directory; returns their paths (and the conclusions)."""
    out_dir = Path(out_dir)
    f = analyse_study(out_dir)
    title = f"Study: {f.name}"
    paths: dict[str, Any] = {}
    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    for name, png in f.figures.items():
        atomic_write(figures / f"{name}.png", lambda fh, png=png: fh.write(png))
    for name, (header, rows) in f.csv.items():
        paths[name] = write_csv(out_dir / f"{name}.csv", header, rows)
    paths["md"] = atomic_write_text(out_dir / "study.md",
                                    markdown_document(title, f.sections, f.figures))
    paths["html"] = atomic_write_text(out_dir / "study.html",
                                      html_document(title, f.sections, f.figures))
    paths["json"] = atomic_write_json(out_dir / "study.json",
                                      _finite({"name": f.name, "metric": f.metric,
                                               "generated": time.time(), **f.numbers}))
    paths["conclusions"] = f.conclusions
    return paths


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):
        return _finite(obj.item())
    return obj
