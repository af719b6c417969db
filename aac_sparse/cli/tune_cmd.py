"""``aac-sparse tune`` and ``aac-sparse scenarios``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from .console import make_console
from .progress import progress_bar

console = make_console()


def tune_command(
    scenario: Annotated[str, typer.Option(
        "--scenario", "-s", help="scenario YAML file, or a bundled one by name "
        "(see 'aac-sparse scenarios'), e.g. leukemia.yaml")],
    new: Annotated[bool, typer.Option(
        "--new", help="the run directory holds another scenario's run: start a fresh run "
        "beside it (<dir>-2, ...)")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="delete the run directory's old run and start over")] = False,
    workers: Annotated[int | None, typer.Option(
        min=1, help="parallel trials (overrides execution.workers)")] = None,
    n_trials: Annotated[int | None, typer.Option(
        min=1, help="trial budget (overrides budget.n_trials)")] = None,
    wall_time: Annotated[float | None, typer.Option(
        min=1, help="seconds for the whole run (overrides budget.wall_time)")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="run directory [default: scenario's output or runs/<name>]")
    ] = None,
) -> None:
    """Tune the sparse-training algorithm on a scenario's instances with SMAC3 or Optuna.

    Every trial goes into the run directory's trial store (trials.sqlite) when it starts
    and when it ends.  Re-running the same command resumes: finished trials are replayed
    into the configurator, never re-run.  At the end, the incumbent and the default are
    compared on the training and held-out test instances, and the incumbent is written
    as a config file for 'aac-sparse train --config'.
    """
    if new and force:
        raise ConfigError("--new and --force exclude each other")
    from ..tuning.checks import check_scenario, with_overrides
    from ..tuning.configurators import CONFIGURATORS
    from ..tuning.scenario import load_scenario
    from ..tuning.tuner import tune

    sc, file = load_scenario(scenario)
    sc = with_overrides(sc, n_trials=n_trials, wall_time=wall_time, workers=workers,
                        output=output)
    checked = check_scenario(sc, file, prepare=False)  # fast: no data is loaded yet
    console.print(f"[bold]{sc.name}[/]: {CONFIGURATORS[sc.configurator.name].description}; "
                  f"space {escape(sc.space)}; {len(checked.train)} training and "
                  f"{len(checked.test)} test instance(s); objectives "
                  f"{', '.join(sc.objectives)}; {sc.execution.workers} worker(s)")
    bar = progress_bar(console)
    tasks: dict[str, int] = {}

    def on_progress(p) -> None:
        if p.phase == "final":
            if "final" not in tasks:
                tasks["final"] = bar.add_task("incumbent vs default", total=p.total, info="")
            bar.update(tasks["final"], completed=p.done, info=f"last: {p.last_status}")
            return
        if "tune" not in tasks:
            total = p.total if p.total is not None else None
            tasks["tune"] = bar.add_task("resuming" if p.phase == "resuming" else "tuning",
                                         total=total, info="")
        best = "–" if p.best is None else f"{p.best:.4f}"
        clock = (f" | {p.elapsed:.0f}/{p.wall_time:.0f}s" if p.wall_time else "")
        bar.update(tasks["tune"], completed=p.done, description="tuning",
                   info=f"best {best}{clock} | last: {p.last_status or '–'}")

    with console.status("preparing instances ...") as status:
        def say(msg: str) -> None:
            status.update(msg)

        with bar:
            result = tune(sc, file, new=new, force=force, progress=on_progress, say=say)
    _print_result(result)


def _fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _print_result(r) -> None:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
    console.print(f"[bold green]done[/]: {r.n_trials} trials ({statuses}); stopped by "
                  f"{r.stopped_by or 'budget'}; run directory {escape(str(r.run_dir))}")
    if not r.incumbents:
        console.print("[yellow]no configuration finished; nothing to compare[/]")
        return
    table = Table(title="incumbent vs default (test error on each instance's test split; "
                        f"seed {r.comparison_seed})")
    for col in ("split", "instance", "default", "incumbent", "Δ"):
        numeric = col in ("default", "incumbent", "Δ")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=True)
    means: dict[str, list[tuple[float, float]]] = {"train": [], "test": []}
    for row in r.comparison:
        d, i = row["default_test_error"], row["incumbent_test_error"]
        means[row["split"]].append((d, i))
        table.add_row(row["split"], escape(row["instance"]), _fmt(d), _fmt(i), _fmt(i - d))
    for split, pairs in means.items():
        if pairs:
            d = sum(p[0] for p in pairs) / len(pairs)
            i = sum(p[1] for p in pairs) / len(pairs)
            table.add_row(f"[bold]{split} mean[/]", "", _fmt(d), _fmt(i), _fmt(i - d))
    console.print(table)
    inc_file, run_dir = escape(str(r.incumbent_file)), escape(str(r.run_dir))
    console.print(f"incumbent written to [bold]{inc_file}[/] "
                  f"(aac-sparse train --config {inc_file} --dataset ...)")
    console.print(f"all trials: {run_dir}/trials.sqlite (also trials.csv)")
    console.print(f"which components matter: [bold]aac-sparse report {run_dir}[/]")


def scenarios_command() -> None:
    """List the scenarios shipped with aac-sparse (use them by name with --scenario)."""
    from ..tuning.scenario import bundled, bundled_dir, load_scenario

    table = Table(title=f"bundled scenarios ({bundled_dir()})")
    for col in ("name", "configurator", "budget", "description"):
        table.add_column(col, no_wrap=col != "description")
    for name in bundled():
        sc, _ = load_scenario(name)
        budget = ", ".join(f"{k}={v}" for k, v in sc.budget.model_dump().items() if v)
        table.add_row(name, sc.configurator.name, budget, escape(sc.description))
    console.print(table)


def irace_target_command(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Option(
        "--scenario", "-s", help="the scenario whose space, fixed settings, instances and "
        "objectives irace tunes")],
    write: Annotated[Path | None, typer.Option(
        "--write", help="write irace's files for the scenario into this folder (then: cd "
        "FOLDER && irace) instead of running an experiment")] = None,
) -> None:
    """Let irace tune aac-sparse: write irace's files (--write DIR), or run one experiment
    as irace's targetRunner and print its cost.

    irace calls: target-runner ID_CONFIG ID_INSTANCE SEED INSTANCE [BOUND] --name=value ...
    """
    from ..tuning.irace_runner import run_irace_target, write_irace_files
    from ..tuning.scenario import load_scenario

    sc, file = load_scenario(scenario)
    if write is not None:
        for path in write_irace_files(sc, file, write):
            console.print(f"wrote {escape(str(path))}")
        console.print(f"tune with: cd {escape(str(write))} && irace --scenario scenario.txt")
        return
    typer.echo(repr(run_irace_target(sc, file, list(ctx.args))))
