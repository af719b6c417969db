"""``aac-sparse report``, ``aac-sparse importance`` and ``aac-sparse ablate``: which
components matter, read from a run's trial store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError, UserError
from .console import make_console
from .progress import progress_bar

console = make_console()

RUN_HELP = "run directory of an 'aac-sparse tune' run (it holds trials.sqlite)"
OUT_HELP = "where the files go [default: RUN_DIR/report]"


class _Bars:
    """One progress bar per stage of the analysis (forests, surrogate, figures)."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.tasks: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.bar.add_task(what, total=total, info="")
        self.bar.update(self.tasks[what], completed=done, total=total)


def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return "–" if math.isnan(x) else f"{x:.{digits}g}"
    return str(x)


def _out(run_dir: Path, output: Path | None) -> Path:
    return output if output is not None else Path(run_dir) / "report"


def _source(run, name: str) -> dict[str, Any]:
    """The ablation source: the space's default, or a preset with the run's own fixed
    settings (e.g. its epochs and layer sizes) kept."""
    from ..engine.config import PRESETS
    from ..space.changes import preset_in_space

    if name == "default":
        return run.default_config()
    if name not in PRESETS:
        raise ConfigError(f"--source {name!r}: give 'default' or a preset "
                          f"({', '.join(PRESETS)})")
    try:
        return preset_in_space(run.cs, name, run.fixed)
    except ValueError as exc:
        raise ConfigError(f"--source {name}: {exc}") from exc


def _target(run, name: str) -> tuple[str, dict[str, Any]]:
    if name == "incumbent":
        cid = run.incumbent()
        if cid is None:
            raise UserError(f"{run.run_dir}: no configuration finished on the training "
                            "instances; there is no incumbent yet")
    else:
        cid = name
        if cid not in run.configs:
            raise ConfigError(f"--target {name!r}: no configuration with this id in "
                              f"{run.run_dir} (ids are the config_id column of trials.csv)")
    return cid, run.space_part(run.configs[cid])


def report_command(
    run_dir: Annotated[Path, typer.Argument(help=RUN_HELP)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help=OUT_HELP)] = None,
    source: Annotated[str, typer.Option(
        help="ablation source: 'default' (the space's) or a preset name")] = "default",
    forests: Annotated[int, typer.Option(min=1, help="random forests (seeds)")] = 3,
    trees: Annotated[int, typer.Option(min=2, help="trees per forest")] = 32,
    seed: Annotated[int, typer.Option(help="seed of the forests")] = 0,
) -> None:
    """Write the run's report: which parameters matter (fANOVA, local importance), the
    ablation path default -> incumbent, default vs incumbent per instance with paired
    tests, the incumbent trajectory and the run's statuses.

    Files: report.html (self-contained), report.md, report.json, figures/*.png and CSV
    tables (importance, interactions, lpi, ablation, instances, trajectory).  Works on a
    run that is still tuning (a consistent snapshot of its store).
    """
    from ..analysis.report import analyse, write
    from ..analysis.rundata import load_run

    run = load_run(run_dir)
    src = _source(run, source)
    with progress_bar(console) as bar:
        findings = analyse(run, src, source, forests, trees, seed, _Bars(bar))
    files = write(findings, _out(run.run_dir, output))
    _print_importance(findings.importance.get(run.objectives[0]), limit=10)
    if findings.ablation:
        _print_ablation(findings.ablation, run.cs, source, "surrogate", limit=8)
    for note in findings.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"report: [bold]{files['report.html']}[/] (also report.md, report.json, "
                  f"{sum(1 for f in files if f.endswith('.csv'))} CSV tables, "
                  f"{sum(1 for f in files if f.startswith('figures/'))} figures)")


def importance_command(
    run_dir: Annotated[Path, typer.Argument(help=RUN_HELP)],
    method: Annotated[str, typer.Option(
        help="fanova (whole space, conditional parameters in their sub-spaces) or lpi "
             "(around the incumbent)")] = "fanova",
    where: Annotated[list[str] | None, typer.Option(
        help="only trials with NAME=VALUE[,VALUE] (repeatable), e.g. regrow=gradient")
    ] = None,
    objective: Annotated[str | None, typer.Option(
        help="objective to analyse [default: the run's first]")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=OUT_HELP)] = None,
    forests: Annotated[int, typer.Option(min=1, help="random forests (seeds)")] = 3,
    trees: Annotated[int, typer.Option(min=2, help="trees per forest")] = 32,
    seed: Annotated[int, typer.Option(help="seed of the forests")] = 0,
) -> None:
    """Print which parameters matter and write importance.csv and interactions.csv
    (fanova) or lpi.csv (lpi)."""
    from ..analysis.importance import fanova_importance, local_importance
    from ..analysis.report import (
        IMPORTANCE_HEADER,
        INTERACTION_HEADER,
        importance_rows,
        interaction_rows,
        write_csv,
    )
    from ..analysis.rundata import load_run, parse_where
    from ..analysis.surrogate import Surrogate

    if method not in ("fanova", "lpi"):
        raise ConfigError(f"--method {method!r}: choose fanova or lpi")
    run = load_run(run_dir)
    objective = objective or run.objectives[0]
    if objective not in run.objectives:
        raise ConfigError(f"--objective {objective!r}: this run's objectives are "
                          f"{', '.join(run.objectives)}")
    conditions = parse_where(run.cs, where or [])
    out = _out(run.run_dir, output)
    try:
        with progress_bar(console) as bar:
            bars = _Bars(bar)
            if method == "fanova":
                result = fanova_importance(run, objective, conditions, forests, trees, seed,
                                           progress=bars)
            else:
                if conditions:
                    raise ConfigError("--where applies to fanova; lpi is local to the "
                                      "incumbent")
                surrogate = Surrogate(run, objective, forests, trees, seed,
                                      lambda k, n: bars("surrogate forest", k, n))
                cid = run.incumbent(objective)
                assert cid is not None  # a surrogate exists, so configurations finished
                result = local_importance(surrogate, cid, run.configs[cid])
    except ValueError as exc:
        raise UserError(f"{run.run_dir}: {exc}") from exc
    if method == "fanova":
        _print_importance(result)
        files = [write_csv(out / "importance.csv", IMPORTANCE_HEADER,
                           importance_rows(result.main)),
                 write_csv(out / "interactions.csv", INTERACTION_HEADER,
                           interaction_rows(result.interactions))]
    else:
        _print_rows(result.rows, f"local importance around {result.config_id} ({objective})")
        if result.inactive:
            console.print("inactive at the incumbent (not scored): "
                          + ", ".join(result.inactive))
        files = [write_csv(out / "lpi.csv", IMPORTANCE_HEADER, importance_rows(result.rows))]
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print("written: " + ", ".join(str(f) for f in files))


def ablate_command(
    run_dir: Annotated[Path, typer.Argument(help=RUN_HELP)],
    mode: Annotated[str, typer.Option(
        help="surrogate (forest predictions, seconds) or racing (real training runs on "
             "the training instances, recorded in the run's store, resumable)")
    ] = "surrogate",
    source: Annotated[str, typer.Option(
        help="start: 'default' (the space's) or a preset name")] = "default",
    target: Annotated[str, typer.Option(
        help="end: 'incumbent' or a configuration id (config_id in trials.csv)")
    ] = "incumbent",
    output: Annotated[Path | None, typer.Option("--output", "-o", help=OUT_HELP)] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="racing: parallel trials [default: the run's]")] = None,
    repetitions: Annotated[int, typer.Option(
        min=1, help="racing: seeds per training instance")] = 1,
    first_test: Annotated[int, typer.Option(
        min=2, help="racing: blocks (instance, seed) before candidates can be dropped")] = 3,
    alpha: Annotated[float, typer.Option(
        min=0.0001, max=0.5, help="racing: significance level of the elimination test")
    ] = 0.05,
    forests: Annotated[int, typer.Option(min=1, help="surrogate: random forests")] = 3,
    trees: Annotated[int, typer.Option(min=2, help="surrogate: trees per forest")] = 32,
    seed: Annotated[int, typer.Option(help="surrogate: seed of the forests")] = 0,
) -> None:
    """The ablation path from a source to a target configuration: which changes carry
    the improvement, in the order a greedy walk finds them (Fawcett & Hoos 2016).

    Writes ablation.csv (surrogate) or ablation-racing.csv (racing).  A racing ablation
    killed at any moment resumes when the same command runs again.
    """
    from ..analysis.ablation import surrogate_ablation
    from ..analysis.report import ABLATION_HEADER, ablation_rows, write_csv
    from ..analysis.rundata import load_run
    from ..analysis.surrogate import Surrogate

    if mode not in ("surrogate", "racing"):
        raise ConfigError(f"--mode {mode!r}: choose surrogate or racing")
    run = load_run(run_dir)
    src = _source(run, source)
    target_id, tgt = _target(run, target)
    out = _out(run.run_dir, output)
    if mode == "surrogate":
        try:
            with progress_bar(console) as bar:
                bars = _Bars(bar)
                surrogate = Surrogate(run, run.objectives[0], forests, trees, seed,
                                      lambda k, n: bars("surrogate forest", k, n))
        except ValueError as exc:
            raise UserError(f"{run.run_dir}: {exc}") from exc
        path = surrogate_ablation(surrogate, src, tgt)
        _print_ablation(path, run.cs, source, "surrogate")
        file = write_csv(out / "ablation.csv", ABLATION_HEADER,
                         ablation_rows(path, run.cs, source))
    else:
        from ..tuning.ablation import racing_ablation

        with console.status("preparing instances ...") as status, \
                progress_bar(console) as bar:
            task = bar.add_task("racing", total=None, info="")

            def on_progress(p) -> None:
                bar.update(task, completed=p.step, total=p.max_steps,
                           description=f"racing step {p.step}",
                           info=f"{p.candidates} candidate(s) | {p.trials_run} trials run"
                                f" | last: {p.last_status or '–'}")

            result = racing_ablation(run.run_dir, src, tgt, source, target_id, workers,
                                     repetitions, first_test, alpha, on_progress,
                                     say=status.update)
        _print_ablation(result.path, run.cs, source, "racing, measured")
        for step, labels in sorted(result.eliminated.items()):
            console.print(f"step {step}: racing dropped {', '.join(labels)}")
        console.print(f"{result.trials_run} trials run now, {result.trials_reused} answered "
                      "from the store")
        file = write_csv(out / "ablation-racing.csv", ABLATION_HEADER,
                         ablation_rows(result.path, run.cs, source))
    console.print(f"written: {file}")


def _print_rows(rows, title: str, limit: int | None = None) -> None:
    table = Table(title=title)
    for col in ("parameter", "importance", "std", "trials", "sub-space"):
        table.add_column(col, justify="right" if col in ("importance", "std", "trials")
                         else "left", no_wrap=col == "parameter")
    for r in rows[:limit]:
        flag = " [yellow](few trials)[/]" if r.flagged else ""
        table.add_row(r.parameter, _fmt(r.importance, 3) + flag, _fmt(r.std, 3),
                      str(r.n_trials), r.subspace)
    console.print(table)


def _print_importance(result, limit: int | None = None) -> None:
    if result is None:
        return
    _print_rows(result.main, f"fANOVA: share of the variance of {result.objective} "
                             "(mean ± std over trees)", limit)
    if result.interactions:
        table = Table(title="strongest pairwise interactions")
        for col in ("parameters", "importance", "std"):
            table.add_column(col)
        for r in result.interactions[:5]:
            table.add_row(r.parameter, _fmt(r.importance, 3), _fmt(r.std, 3))
        console.print(table)


def _print_ablation(path, cs, source: str, how: str, limit: int | None = None) -> None:
    from ..analysis.report import ablation_rows

    table = Table(title=f"ablation path {source} -> target ({how} cost, mean ± std over "
                        "instances)")
    for col in ("step", "change", "value", "cost", "± std", "share"):
        table.add_column(col, justify="right" if col in ("step", "cost", "± std", "share")
                         else "left", no_wrap=col != "value")
    rows = ablation_rows(path, cs, source)
    for row in rows[:limit] if limit else rows:
        table.add_row(*(_fmt(v) for v in row))
    if limit and len(rows) > limit:
        table.add_row("…", f"{len(rows) - limit} more steps (see ablation.csv)", "", "", "",
                      "")
    console.print(table)
