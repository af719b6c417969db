"""``aac-sparse study``: run a study (every space x configurator x seed as a tune run with
the same budget) and write the report that answers the research questions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .console import make_console
from .progress import progress_bar

console = make_console()


def study_command(
    study: Annotated[str, typer.Argument(
        help="study YAML file, or a bundled one by name (leukemia-study.yaml, "
        "smoke-study.yaml)")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="study directory [default: the study's output or "
        "studies/<name>]")] = None,
    report_only: Annotated[bool, typer.Option(
        "--report-only", help="do not run anything: write the report from the runs as "
        "they are")] = False,
) -> None:
    """Answer the research questions: tune every (space, configurator, seed) with the same
    trial budget, then report configurability (Q1), what the combined space gains (Q2) and
    which components matter (Q3), with paired tests.

    Runs go to DIR/runs/; re-running the same command resumes them (finished trials are
    never re-run).  The report is DIR/study.html (also study.md, study.json, CSVs).
    """
    from ..analysis.study import write_study_report
    from ..tuning.study import load_study, plan, run_study

    st, file = load_study(study)
    out_dir = Path(output or st.output or Path("studies") / st.name)
    runs = plan(st, file, out_dir)
    n = st.budget.n_trials
    console.print(f"[bold]{escape(st.name)}[/]: {len(runs)} runs "
                  f"({', '.join(st.spaces)} x "
                  f"{', '.join(c.name for c in st.configurator_list)} x "
                  f"{len(st.seed_list)} seeds), {n} trials each; {escape(str(out_dir))}")
    if not report_only:
        bar = progress_bar(console)
        task = bar.add_task("study", total=len(runs) * int(n or 0), info="")

        def on_progress(p) -> None:
            bar.update(task, completed=p.trials_done,
                       info=f"runs {p.runs_done}/{p.n_runs} | {p.current} | {p.phase}")

        with console.status("checking ...") as status, bar:
            run_study(st, file, out_dir, progress=on_progress,
                      say=lambda s: status.update(s))
    with console.status("writing the report ..."):
        paths = write_study_report(out_dir)
    console.print(f"report: [bold]{escape(str(paths['html']))}[/] (also study.md, "
                  "study.json and CSV tables)")
    for line in paths.get("conclusions", []):
        console.print(f"- {escape(line)}")
