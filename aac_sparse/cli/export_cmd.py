"""``aac-sparse export``: a finished (or running) run's trials for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import ConfigError
from .console import make_console

console = make_console()
FORMATS = ("csv", "parquet", "optuna", "deepcave")


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="run directory of an 'aac-sparse tune' run")],
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help=f"one of {', '.join(FORMATS)}")] = "csv",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="file (csv, parquet), SQLite file (optuna) or folder "
        "(deepcave) [default: RUN_DIR/export/...]")] = None,
    include: Annotated[str, typer.Option(
        help="also export these trials: final (incumbent vs default, held-out instances "
        "included), ablation; comma-separated")] = "",
    per: Annotated[str, typer.Option(
        help="optuna and deepcave: one trial per 'configuration' (mean over instances, "
        "per-instance costs kept) or per 'instance' run")] = "configuration",
) -> None:
    """Export a run's trials: CSV or Parquet (one row per stored trial, every column), an
    Optuna study for optuna-dashboard, or a DeepCAVE DataFrame run folder.

    Tuning trials only unless --include says otherwise.  The store is opened read-only,
    so this works while 'tune' is still running.
    """
    from ..tuning import exports
    from ..tuning.store import TrialStore

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    chosen = tuple(x.strip() for x in include.split(",") if x.strip())
    store = TrialStore.open_readonly(run_dir)
    try:
        default = run_dir / "export" / {"csv": "trials.csv", "parquet": "trials.parquet",
                                        "optuna": "optuna.db", "deepcave": "deepcave"}[fmt]
        out = Path(output or default)
        if fmt in ("csv", "parquet"):
            if per != "configuration":
                raise ConfigError("--per applies to optuna and deepcave; csv and parquet "
                                  "keep one row per stored trial")
            write = exports.to_csv if fmt == "csv" else exports.to_parquet
            write(store, out, chosen)
            console.print(f"wrote {escape(str(out))} (one row per trial)")
        elif fmt == "optuna":
            out.parent.mkdir(parents=True, exist_ok=True)
            study = exports.to_optuna_study(store, f"sqlite:///{out.resolve()}",
                                            run_dir.resolve().name, overwrite=True,
                                            include=chosen, per=per)
            console.print(f"wrote {len(study.trials)} Optuna trials (one per {per}) to "
                          f"{escape(str(out))}\nopen with: optuna-dashboard "
                          f"sqlite:///{escape(str(out))}")
        else:
            exports.to_deepcave(store, out, include=chosen, per=per)
            console.print(f"wrote a DeepCAVE run folder (one row per {per}) to "
                          f"{escape(str(out))}")
    finally:
        store.close()
