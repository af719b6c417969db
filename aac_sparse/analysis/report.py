"""``aac-sparse report``: one run's findings as HTML (self-contained, figures embedded),
Markdown, JSON and CSV tables, every number computed from the trial store.

The CSV files have fixed names and columns so other tools can read them:
``importance.csv`` (parameter, importance, std, n_trials, subspace), ``interactions.csv``
(parameters, importance, std), ``lpi.csv`` (as importance.csv), ``ablation.csv`` (step,
parameter, value, cost, cost_std, share; step 0 is the source), ``instances.csv`` (split,
instance, default, incumbent, delta) and ``trajectory.csv`` (trial, wall_time,
incumbent_cost).  A multi-objective run gets ``importance.<objective>.csv`` and
``interactions.<objective>.csv`` for every objective as well.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..io import atomic_write, atomic_write_json, atomic_write_text
from ..space.changes import PathStep
from . import plots
from .ablation import surrogate_ablation
from .comparison import (
    Comparison,
    instance_comparison,
    metric_of,
    statuses_over_time,
    trajectory,
    trial_costs,
)
from .importance import Importance, LocalImportance, Row, fanova_importance, local_importance
from .rundata import ABLATION, FINAL, TUNING, Run, load_run
from .surrogate import Surrogate

Progress = Callable[[str, int, int], None]


# -- tables -----------------------------------------------------------------------------

def _num(x: Any) -> str:
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """A CSV file with ``header``; floats with 6 significant digits, NaN as empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_num(v) for v in row])
    return atomic_write_text(path, buf.getvalue())


def importance_rows(rows: Sequence[Row]) -> list[list[Any]]:
    return [[r.parameter, r.importance, r.std, r.n_trials, r.subspace] for r in rows]


def interaction_rows(rows: Sequence[Row]) -> list[list[Any]]:
    return [[r.parameter, r.importance, r.std] for r in rows]


def ablation_rows(path: Sequence[PathStep], cs, source_name: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for s in path:
        if s.change is None:
            out.append([0, "(source)", source_name, s.cost, s.cost_std, s.share])
        else:
            out.append([s.step, s.change.label, s.values(cs), s.cost, s.cost_std, s.share])
    return out


IMPORTANCE_HEADER = ("parameter", "importance", "std", "n_trials", "subspace")
INTERACTION_HEADER = ("parameters", "importance", "std")
ABLATION_HEADER = ("step", "parameter", "value", "cost", "cost_std", "share")
INSTANCE_HEADER = ("split", "instance", "default", "incumbent", "delta")
TRAJECTORY_HEADER = ("trial", "wall_time", "incumbent_cost")


# -- the report -------------------------------------------------------------------------

@dataclass
class Findings:
    """Everything the report shows, computed once and rendered three ways."""

    run: Run
    generated: float
    importance: dict[str, Importance] = field(default_factory=dict)
    lpi: LocalImportance | None = None
    ablation: list[PathStep] = field(default_factory=list)
    ablation_source: str = "default"
    racing: dict[str, Any] | None = None
    comparison: Comparison | None = None
    trajectory: list = field(default_factory=list)
    incumbent: str | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def analyse(run: Run, source: Mapping[str, Any] | None = None, source_name: str = "default",
            n_forests: int = 3, n_trees: int = 32, seed: int = 0,
            progress: Progress | None = None) -> Findings:
    """Compute every finding of the report for ``run``."""
    say = progress or (lambda what, done, total: None)
    f = Findings(run, time.time(), ablation_source=source_name)
    primary = run.objectives[0]
    f.incumbent = run.incumbent(primary)
    for objective in run.objectives:
        try:
            f.importance[objective] = fanova_importance(
                run, objective, n_forests=n_forests, n_trees=n_trees, seed=seed,
                progress=say)
        except ValueError as exc:
            f.notes.append(f"importance of {objective}: {exc}")
    try:
        say("surrogate forest", 0, n_forests)
        surrogate = Surrogate(run, primary, n_forests, n_trees, seed,
                              lambda k, n: say("surrogate forest", k, n))
    except ValueError as exc:
        surrogate = None
        f.notes.append(f"local importance and ablation: {exc}")
    if surrogate is not None and f.incumbent is not None:
        say("local importance and ablation", 0, 2)
        f.lpi = local_importance(surrogate, f.incumbent, run.configs[f.incumbent])
        say("local importance and ablation", 1, 2)
        f.ablation = surrogate_ablation(surrogate, source or run.default_config(),
                                        run.configs[f.incumbent])
        say("local importance and ablation", 2, 2)
    f.racing = run.meta.get("ablation_racing")
    f.comparison = instance_comparison(run, primary)
    f.trajectory = trajectory(run, primary)
    if run.running:
        f.notes.append(f"{len(run.running)} trial(s) are recorded as running: either `tune` "
                       "is still running (this report is a snapshot of the store) or it was "
                       "stopped; running the same `tune` command again resumes it")
    say("figures", 0, 1)
    _figures(f)
    say("figures", 1, 1)
    return f


def _figures(f: Findings) -> None:
    run, primary = f.run, f.run.objectives[0]
    for objective, imp in f.importance.items():
        if imp.main:
            f.figures[f"importance-{objective}"] = plots.importance_bars(
                imp.main, f"fANOVA main effects on {objective}")
    if f.lpi and f.lpi.rows:
        f.figures["lpi"] = plots.importance_bars(
            f.lpi.rows, f"local importance around the incumbent {f.lpi.config_id}")
    if len(f.ablation) > 1:
        f.figures["ablation"] = plots.ablation_path(
            f.ablation, f"ablation path {f.ablation_source} → incumbent (surrogate)",
            f"predicted {primary}")
    if f.comparison:
        f.figures["instances"] = plots.instance_scatter(f.comparison)
    if f.trajectory:
        f.figures["trajectory"] = plots.trajectory(f.trajectory, primary)
    f.figures["ecdf"] = plots.ecdf(trial_costs(run, primary), primary)
    times, counts = statuses_over_time(run)
    if len(times):
        f.figures["statuses"] = plots.statuses(times, counts)
    if len(run.objectives) > 1:
        f.figures["pareto"] = plots.pareto(run.objective_means(), run.pareto(),
                                           run.objectives)


def write(f: Findings, out_dir: Path) -> dict[str, Path]:
    """Write the report files into ``out_dir``; returns them by name."""
    run = f.run
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    primary = run.objectives[0]
    if primary in f.importance:
        imp = f.importance[primary]
        files["importance.csv"] = write_csv(out_dir / "importance.csv", IMPORTANCE_HEADER,
                                            importance_rows(imp.main))
        files["interactions.csv"] = write_csv(out_dir / "interactions.csv",
                                              INTERACTION_HEADER,
                                              interaction_rows(imp.interactions))
    if len(run.objectives) > 1:
        for objective, imp in f.importance.items():
            files[f"importance.{objective}.csv"] = write_csv(
                out_dir / f"importance.{objective}.csv", IMPORTANCE_HEADER,
                importance_rows(imp.main))
            files[f"interactions.{objective}.csv"] = write_csv(
                out_dir / f"interactions.{objective}.csv", INTERACTION_HEADER,
                interaction_rows(imp.interactions))
    if f.lpi:
        files["lpi.csv"] = write_csv(out_dir / "lpi.csv", IMPORTANCE_HEADER,
                                     importance_rows(f.lpi.rows))
    if f.ablation:
        files["ablation.csv"] = write_csv(out_dir / "ablation.csv", ABLATION_HEADER,
                                          ablation_rows(f.ablation, run.cs, f.ablation_source))
    if f.racing:
        files["ablation-racing.csv"] = write_csv(
            out_dir / "ablation-racing.csv", ABLATION_HEADER,
            [[s[k] for k in ABLATION_HEADER] for s in f.racing["steps"]])
    if f.comparison:
        files["instances.csv"] = write_csv(
            out_dir / "instances.csv", INSTANCE_HEADER,
            [[r.split, r.instance, r.default, r.incumbent, r.delta] for r in f.comparison.rows])
    files["trajectory.csv"] = write_csv(
        out_dir / "trajectory.csv", TRAJECTORY_HEADER,
        [[p.trial, p.wall_time, p.incumbent_cost] for p in f.trajectory])
    fig_dir = out_dir / "figures"
    for name, png in f.figures.items():
        files[f"figures/{name}.png"] = atomic_write(fig_dir / f"{name}.png",
                                                    lambda fh, png=png: fh.write(png))
    files["report.md"] = atomic_write_text(out_dir / "report.md", render_markdown(f))
    files["report.html"] = atomic_write_text(out_dir / "report.html", render_html(f))
    files["report.json"] = atomic_write_json(out_dir / "report.json", as_json(f))
    return files


def report(run_dir: str | Path, out_dir: str | Path | None = None,
           source: Mapping[str, Any] | None = None, source_name: str = "default",
           n_forests: int = 3, n_trees: int = 32, seed: int = 0,
           progress: Progress | None = None) -> tuple[Findings, dict[str, Path]]:
    """Analyse a run directory and write its report (default ``RUN_DIR/report``)."""
    run = load_run(run_dir)
    findings = analyse(run, source, source_name, n_forests, n_trees, seed, progress)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "report"
    return findings, write(findings, out)


# -- rendering --------------------------------------------------------------------------

@dataclass
class Section:
    """A block of the report: a heading, paragraphs, tables and figures, in order."""

    title: str
    parts: list[tuple[str, Any]] = field(default_factory=list)

    def text(self, s: str) -> Section:
        self.parts.append(("text", s))
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Section:
        self.parts.append(("table", (list(header), [list(r) for r in rows])))
        return self

    def figure(self, name: str, caption: str) -> Section:
        self.parts.append(("figure", (name, caption)))
        return self


def _f(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


def _p(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3g}"


def sections(f: Findings) -> list[Section]:
    """The report's content, shared by the Markdown and the HTML rendering."""
    run = f.run
    primary = run.objectives[0]
    out: list[Section] = []
    tuning = run.finished(TUNING)
    origins = Counter(t.origin for t in run.trials)
    statuses = Counter(t.status for t in tuning)
    scen = run.meta.get("scenario") or {}
    s = Section("Run")
    s.table(("", ""), [
        ("run directory", str(run.run_dir)),
        ("scenario", run.name),
        ("configurator", run.meta.get("configurator", (scen.get("configurator") or {})
                                      .get("name", "?"))),
        ("space", f"{scen.get('space', '?')} ({len(run.cs)} parameters, "
                  f"{sum(1 for n in run.cs.keys() if n in _free(run))} free)"),
        ("objectives", ", ".join(run.objectives)),
        ("training instances", ", ".join(run.train)),
        ("held-out instances", ", ".join(run.test) or "–"),
        ("tuning trials", f"{len(tuning)} finished ("
                          + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + ")"),
        ("other trials", ", ".join(f"{k} {v}" for k, v in sorted(origins.items())
                                   if k != TUNING) or "–"),
        ("analysed budget", "each configuration's own epochs" if run.budget() is None
                            else f"{run.budget():g} epochs (the highest of the run)"),
        ("generated", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.generated))
                      + f" by aac-sparse {__version__}"),
    ])
    for note in f.notes:
        s.text(f"Note: {note}.")
    out.append(s)

    if f.incumbent:
        s = Section("Incumbent")
        costs = run.config_costs(primary)
        mean, n = costs.get(f.incumbent, (math.nan, 0))
        s.text(f"Configuration `{f.incumbent}`: mean {primary} {_f(mean)} over {n} training "
               f"instance(s) at the analysed budget. Where it differs from the default:")
        inc = run.space_part(run.configs[f.incumbent])
        default = run.default_config()
        rows = [(k, _f(default.get(k, "(inactive)")), _f(inc.get(k, "(inactive)")))
                for k in run.cs.keys() if default.get(k) != inc.get(k)]
        s.table(("parameter", "default", "incumbent"), rows)
        out.append(s)

    if f.comparison:
        c = f.comparison
        s = Section("Default vs incumbent per instance")
        s.text(f"{c.metric} of the default (`{c.default_id}`) and the incumbent "
               f"(`{c.incumbent_id}`) on every training and held-out instance "
               "(the final-comparison trials); Δ = incumbent − default, negative is better.")
        s.table(("split", "instance", "default", "incumbent", "Δ"),
                [(r.split, r.instance, _f(r.default), _f(r.incumbent), _f(r.delta))
                 for r in c.rows])
        s.text("Paired tests across instances (two-sided; with n pairs the exact Wilcoxon "
               "test cannot go below 2/2ⁿ, so few instances cannot give small p-values):")
        s.table(("pairs", "n", "mean Δ", "median Δ", "Wilcoxon p", "permutation p",
                 "Cohen's d_z", "rank-biserial r"),
                [(split, t.n, _f(t.mean_delta), _f(t.median_delta), _p(t.wilcoxon_p),
                  _p(t.permutation_p) + ("" if t.permutation_exact else " (MC)"),
                  _f(t.cohens_dz, 3), _f(t.rank_biserial, 3))
                 for split, t in c.tests.items()])
        if "instances" in f.figures:
            s.figure("instances", "default vs incumbent per instance")
        out.append(s)

    for objective, imp in f.importance.items():
        s = Section(f"Which parameters matter: fANOVA on {objective}")
        s.text("Share of the variance of the predicted cost (averaged over the training "
               "instances) that each parameter explains on its own, over the whole space; "
               "mean ± std over the trees of 3 random forests. A conditional parameter is "
               "analysed only among the trials where it is active (column *sub-space*), so "
               "its share is of the variance inside that sub-space; a parent's share "
               "includes what its children did. Shares of different sub-spaces are not "
               "comparable with each other.")
        s.table(("parameter", "importance", "std", "trials", "sub-space", ""),
                [(r.parameter, _f(r.importance, 3), _f(r.std, 3), r.n_trials, r.subspace,
                  "few trials" if r.flagged else "") for r in imp.main])
        if imp.interactions:
            s.text("Strongest pairwise interactions (variance of the pair's joint effect "
                   "beyond its two main effects), among the top main effects:")
            s.table(("parameters", "importance", "std"),
                    [(r.parameter, _f(r.importance, 3), _f(r.std, 3))
                     for r in imp.interactions])
        for w in imp.warnings:
            s.text(f"Warning: {w}.")
        if f"importance-{objective}" in f.figures:
            s.figure(f"importance-{objective}", f"fANOVA main effects on {objective}")
        out.append(s)

    if f.lpi:
        s = Section("Local importance around the incumbent")
        s.text("How much the predicted cost varies when one parameter moves over its whole "
               "range while all others stay at the incumbent (Biedenkapp et al. 2018), as a "
               "share of the summed variances; mean ± std over trees. It says what matters "
               "*near the incumbent*, which can differ from the global picture.")
        s.table(("parameter", "importance", "std"),
                [(r.parameter, _f(r.importance, 3), _f(r.std, 3)) for r in f.lpi.rows])
        if f.lpi.inactive:
            s.text("Inactive at the incumbent (not scored): " + ", ".join(f.lpi.inactive) + ".")
        if "lpi" in f.figures:
            s.figure("lpi", "local parameter importance")
        out.append(s)

    if f.ablation:
        s = Section(f"Ablation: {f.ablation_source} → incumbent")
        s.text("Greedy path of single-parameter changes from the source to the incumbent "
               "(Fawcett & Hoos 2016): each step takes the change with the lowest predicted "
               "cost; children a change switches on or off move with it (in parentheses). "
               "Costs are the surrogate forest's predictions averaged over the training "
               "instances (± std over instances); *share* is the step's part of the total "
               "predicted change. `aac-sparse ablate --mode racing` measures the same path "
               "with real training runs.")
        s.table(ABLATION_HEADER, [[_f(v) for v in row] for row in
                                  ablation_rows(f.ablation, run.cs, f.ablation_source)])
        if "ablation" in f.figures:
            s.figure("ablation", "ablation path")
        out.append(s)
    if f.racing:
        s = Section(f"Ablation with real runs (racing): {f.racing['source']} → "
                    f"{f.racing['target']}")
        s.text(f"Each candidate trained on the training instances (origin `{ABLATION}` in "
               f"the store, {f.racing.get('n_trials', '?')} trials); candidates that racing "
               "found significantly worse stopped early.")
        s.table(ABLATION_HEADER, [[_f(st[k]) for k in ABLATION_HEADER]
                                  for st in f.racing["steps"]])
        out.append(s)

    s = Section("The run over time")
    if f.trajectory:
        last = f.trajectory[-1]
        s.text(f"Incumbent {primary} after {last.trial} tuning trials and "
               f"{last.wall_time:.0f} s: {_f(last.incumbent_cost)}.")
        s.figure("trajectory", "incumbent trajectory")
    s.figure("ecdf", "cost ECDF")
    if "statuses" in f.figures:
        s.figure("statuses", "statuses over time")
    if "pareto" in f.figures:
        front = run.pareto()
        s.text(f"Pareto front of {', '.join(run.objectives)} ({len(front)} configurations):")
        s.table(("configuration", *run.objectives),
                [(cid, *(_f(v) for v in c)) for cid, c in front])
        s.figure("pareto", "Pareto front")
    out.append(s)
    return [sec for sec in out if sec.parts]


def _free(run: Run) -> set[str]:
    from ..space.changes import free_names

    return set(free_names(run.cs))


def render_markdown(f: Findings) -> str:
    return markdown_document(f"Report: {f.run.name}", sections(f), f.figures)


def markdown_document(title: str, secs: Sequence[Section], figures: Mapping[str, bytes]
                      ) -> str:
    """Sections as Markdown; figures are referenced as ``figures/<name>.png``."""
    lines = [f"# {title}", ""]
    for sec in secs:
        lines += [f"## {sec.title}", ""]
        for kind, body in sec.parts:
            if kind == "text":
                lines += [body, ""]
            elif kind == "table":
                header, rows = body
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "|".join("---" for _ in header) + "|")
                lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"
                          for r in rows]
                lines.append("")
            else:
                name, caption = body
                if name in figures:
                    lines += [f"![{caption}](figures/{name}.png)", ""]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:60em;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.8em 0}code{background:#f5f5f5;
padding:0 .2em}figure{margin:1em 0}figcaption{font-size:.85em;color:#555}
"""


def _inline(text: str) -> str:
    """Escape, then render `code` and *emphasis* the way the Markdown does."""
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


def render_html(f: Findings) -> str:
    return html_document(f"Report: {f.run.name}", sections(f), f.figures)


def html_document(title: str, secs: Sequence[Section], figures: Mapping[str, bytes]) -> str:
    """Sections as one self-contained HTML page (figures embedded as PNG data)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>aac-sparse {html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for sec in secs:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        for kind, body in sec.parts:
            if kind == "text":
                parts.append(f"<p>{_inline(body)}</p>")
            elif kind == "table":
                header, rows = body
                parts.append("<table><thead><tr>" + "".join(
                    f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr></thead><tbody>")
                for r in rows:
                    parts.append("<tr>" + "".join(
                        f'<td class="{"n" if _numeric(c) else ""}">{_inline(str(c))}</td>'
                        for c in r) + "</tr>")
                parts.append("</tbody></table>")
            else:
                name, caption = body
                if name in figures:
                    data = base64.b64encode(figures[name]).decode()
                    parts.append(f'<figure><img alt="{html.escape(caption)}" '
                                 f'src="data:image/png;base64,{data}">'
                                 f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _numeric(cell: Any) -> bool:
    try:
        float(str(cell).split(" ")[0])
        return True
    except ValueError:
        return False


def as_json(f: Findings) -> dict[str, Any]:
    """The findings as plain data (for scripts and the study command)."""
    def rows(rs: Sequence[Row]) -> list[dict[str, Any]]:
        return [{"parameter": r.parameter, "importance": r.importance, "std": r.std,
                 "std_seeds": r.std_seeds, "n_trials": r.n_trials, "subspace": r.subspace,
                 "flagged": r.flagged} for r in rs]

    c = f.comparison
    return _finite({
        "run_dir": str(f.run.run_dir), "scenario": f.run.name, "objectives": f.run.objectives,
        "generated": f.generated, "version": __version__, "incumbent": f.incumbent,
        "importance": {o: {"main": rows(i.main), "interactions": rows(i.interactions),
                           "warnings": i.warnings} for o, i in f.importance.items()},
        "lpi": None if f.lpi is None else {"config_id": f.lpi.config_id,
                                           "rows": rows(f.lpi.rows),
                                           "inactive": f.lpi.inactive},
        "ablation": [dict(zip(ABLATION_HEADER, r, strict=True))
                     for r in ablation_rows(f.ablation, f.run.cs, f.ablation_source)],
        "ablation_racing": f.racing,
        "comparison": None if c is None else {
            "metric": c.metric, "default": c.default_id, "incumbent": c.incumbent_id,
            "rows": [{"split": r.split, "instance": r.instance, "default": r.default,
                      "incumbent": r.incumbent, "delta": r.delta} for r in c.rows],
            "tests": {k: vars(t) for k, t in c.tests.items()}},
        "trajectory": [vars(p) for p in f.trajectory],
        "notes": f.notes,
        "final_trials": sum(1 for t in f.run.trials if t.origin == FINAL),
        "metric": metric_of(f.run.objectives[0]),
    })


def _finite(obj: Any) -> Any:
    """NaN and infinity as None, so the JSON is strict (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
