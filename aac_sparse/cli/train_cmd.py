"""``aac-sparse train`` and ``aac-sparse presets``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..engine.config import PRESETS, TrainConfig
from ..errors import ConfigError
from .progress import progress_bar

console = Console()


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def train(
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help=f"start from a preset: {', '.join(sorted(PRESETS))}")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML/JSON file of settings (may name a 'preset:' itself)")] = None,
    dataset: Annotated[str, typer.Option(
        "--dataset", "-d", help="dataset name (see 'aac-sparse data list')")] = "digits",
    epochs: Annotated[int | None, typer.Option(
        "--epochs", "-e", min=1, help="override the number of epochs")] = None,
    hidden: Annotated[str | None, typer.Option(
        help="hidden layer widths, e.g. 1000,1000,1000")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (data split and training)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="override one setting, KEY=VALUE (repeatable), e.g. --set zeta=0.2")
    ] = None,
    data_option: Annotated[list[str] | None, typer.Option(
        "--data-option", help="dataset loader option KEY=VALUE, e.g. n_features=65536")] = None,
    max_train: Annotated[int | None, typer.Option(
        min=10, help="train on a stratified subsample of this many samples")] = None,
    val_fraction: Annotated[float, typer.Option(
        min=0.01, max=0.5, help="fraction of the training data held out for validation")] = 0.1,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="output directory [default: runs/train-<time>-<dataset>]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-epoch lines")] = False,
) -> None:
    """Train a truly sparse MLP and write metrics (CSV/JSON) and the model (npz).

    Settings are taken from the preset, then the config file, then --set and the other
    options.  Run 'aac-sparse presets' for the presets; settings are listed there too.
    """
    from ..config_files import build_config, parse_assignment
    from ..data.prepare import split_dataset
    from ..data.registry import load_dataset
    from ..training_run import run_training

    overrides = dict(parse_assignment(s) for s in (set_ or []))
    if hidden is not None:
        try:
            overrides["hidden"] = [int(h) for h in hidden.split(",") if h.strip()]
        except ValueError as exc:
            raise ConfigError(f"--hidden {hidden!r}: expected comma-separated integers") from exc
    if seed is not None:
        overrides["seed"] = seed
    if epochs is not None:
        overrides["epochs"] = epochs
    cfg = build_config(preset, config, overrides)
    options = dict(parse_assignment(s) for s in (data_option or []))
    with console.status(f"loading {dataset} ..."):
        data = load_dataset(dataset, **options)
        split = split_dataset(data, val_fraction=val_fraction, seed=cfg.seed, max_train=max_train)
    out_dir = out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}-{dataset}"
    console.print(
        f"[bold]{dataset}[/]: {len(split.y_train)} train / {len(split.y_val)} val / "
        f"{len(split.y_test)} test samples, {split.x_train.shape[1]} features, "
        f"{split.n_classes} classes -> {out_dir}"
    )
    progress = progress_bar(console)
    with progress:
        task = progress.add_task("training", total=cfg.epochs, info="compiling kernels...")

        def on_epoch(row: dict) -> None:
            val = f" val_acc {row['val_acc']:.4f}" if "val_acc" in row else ""
            status = (f"loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}{val} "
                      f"nnz {row['nnz']} {row['train_s']:.2f}s/epoch")
            if not quiet:
                progress.console.print(f"epoch {row['epoch']:>4}  {status}  "
                                       f"evolution {row['evolution_s']:.3f}s")
            progress.update(task, advance=1, info=status)

        result, summary = run_training(cfg, split, out_dir, dataset, on_epoch=on_epoch)
    if result.status != "ok":
        console.print(f"[bold red]{result.status}[/]: {result.message}")
        console.print(f"metrics written to {out_dir}")
        raise typer.Exit(3)
    console.print(
        f"[bold green]done[/] in {summary['wall_s']:.1f}s: test accuracy "
        f"{summary['test_acc']:.4f}, validation accuracy {summary['val_acc']:.4f}, "
        f"{summary['nnz']} connections, sizes {'-'.join(map(str, summary['sizes']))}"
    )
    console.print(f"wrote {out_dir}/config.json, metrics.csv, metrics.json, model.npz")


def presets() -> None:
    """List the presets and every setting with its default and meaning."""
    names = sorted(PRESETS)
    table = Table(title="training settings (preset values differ from the default where shown)")
    table.add_column("setting")
    table.add_column("default")
    for n in names:
        table.add_column(n)
    table.add_column("meaning")
    for name, field in TrainConfig.model_fields.items():
        default = TrainConfig().model_dump()[name]
        row = [name, _fmt(default)]
        row += [_fmt(PRESETS[n][name]) if name in PRESETS[n] else "" for n in names]
        row.append(field.description or "")
        table.add_row(*row)
    console.print(table)
