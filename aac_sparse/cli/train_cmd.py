"""``aac-sparse train`` and ``aac-sparse presets``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from .console import make_console
from .progress import progress_bar

console = make_console()
# epochs longer than this get a per-batch progress bar (wide networks)
LONG_EPOCH_S = float(os.environ.get("AAC_SPARSE_BATCH_BAR_S", "2"))


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def train(
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="start from a preset (see 'aac-sparse presets'), e.g. set, "
        "rigl, set-allrelu@fashion-mnist")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML/JSON file of settings (may name a 'preset:' itself)")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", "-d", help="dataset name (see 'aac-sparse data list') [default: "
        "digits]")] = None,
    instance: Annotated[str | None, typer.Option(
        "--instance", "-i", help="train on a tuning instance, by its id as 'tune' prints it "
        "and the trial store keeps it (e.g. 'all-leukemia?label=mol.biol#fold=3/5'): the "
        "same split and preprocessing as its trials; with the incumbent.yaml of a run and "
        "its seed this reproduces the stored test error exactly")] = None,
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
    val_fraction: Annotated[float | None, typer.Option(
        min=0.01, max=0.5, help="fraction of the training data held out for validation "
        "[default: 0.1]")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="output directory [default: runs/train-<time>-<dataset>]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-epoch lines")] = False,
    parallel: Annotated[str | None, typer.Option(
        "--parallel", help="data-parallel training over MPI: none, wassp (synchronous) or "
        "wasap (asynchronous parameter server); needs pip install 'aac-sparse[mpi]'. The "
        "ranks are started here, or run the command under mpiexec -n RANKS yourself "
        "[default: none]")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="MPI workers of --parallel (wasap adds a parameter-server rank) "
        "[default: 2]")] = None,
    phase2_from: Annotated[float | None, typer.Option(
        min=0.01, max=1.0, help="fraction of the epochs after which each worker trains "
        "locally and the models are averaged (phase 2); 1 = no phase 2 [default: 1]")] = None,
    sync_every: Annotated[int | None, typer.Option(
        min=0, help="phase 2: local steps between weight-averaging syncs; 0 = only at the "
        "end [default: 0]")] = None,
) -> None:
    """Train a truly sparse MLP and write metrics (CSV/JSON) and the model (npz).

    Settings are taken from the preset, then the config file, then --set and the other
    options.  Run 'aac-sparse presets' for the presets; settings are listed there too.
    A tuned configuration retrains exactly with --config RUN/incumbent.yaml --instance ID.
    """
    from ..config_files import build_config, build_parallel, parse_assignment

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
    par = build_parallel(config, {"strategy": parallel, "workers": workers,
                                  "phase2_from": phase2_from, "sync_every": sync_every})
    if par.strategy != "none":
        _check_ranks(par)
    if instance is not None:
        clash = [name for name, v in (("--dataset", dataset), ("--data-option", data_option),
                                      ("--max-train", max_train),
                                      ("--val-fraction", val_fraction)) if v]
        if clash:
            raise ConfigError(f"--instance fixes the data, split and preprocessing; drop "
                              f"{', '.join(clash)}")
        data_name, split = _instance_split(instance, config)
    else:
        data_name, split = _dataset_split(dataset or "digits", data_option, max_train,
                                          0.1 if val_fraction is None else val_fraction,
                                          cfg.seed)
    from ..training_run import run_training

    out_dir = out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}-{_slug(data_name)}"
    console.print(
        f"[bold]{escape(data_name)}[/]: {len(split.y_train)} train / {len(split.y_val)} val / "
        f"{len(split.y_test)} test samples, {split.x_train.shape[1]} features, "
        f"{split.n_classes} classes, seed {cfg.seed} -> {out_dir}"
    )
    progress = progress_bar(console)
    with progress:
        task = progress.add_task("training", total=cfg.epochs, info="compiling kernels...")
        # per-batch bar, shown once an epoch has run LONG_EPOCH_S (wide networks)
        batches = progress.add_task("  batches", total=1, visible=False, info="")
        state = {"start": time.perf_counter(), "shown": False}

        def on_batch(done: int, total: int) -> None:
            now = time.perf_counter()
            if done == 1:
                state["start"] = now
            elapsed = now - state["start"]
            state["shown"] = state["shown"] or elapsed > LONG_EPOCH_S
            progress.update(batches, completed=done, total=total, visible=state["shown"],
                            info=f"{(done - 1) / elapsed:.2f} batches/s" if done > 1 else "")

        def on_epoch(row: dict) -> None:
            val = f" val_acc {row['val_acc']:.4f}" if "val_acc" in row else ""
            status = (f"loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}{val} "
                      f"nnz {row['nnz']} {row['train_s']:.2f}s/epoch")
            if not quiet:
                progress.console.print(f"epoch {row['epoch']:>4}  {status}  "
                                       f"evolution {row['evolution_s']:.3f}s")
            progress.update(task, advance=1, info=status)

        try:
            result, summary = run_training(cfg, split, out_dir, data_name, on_epoch=on_epoch,
                                           parallel=par, on_batch=on_batch)
        except _not_root() as exc:  # a helper rank under the user's mpiexec: rank 0 reports
            raise typer.Exit(0) from exc
    if result.status != "ok":
        console.print(f"[bold red]{result.status}[/]: {escape(result.message)}")
        console.print(f"metrics written to {out_dir}")
        raise typer.Exit(3)
    console.print(
        f"[bold green]done[/] in {summary['wall_time']:.1f}s: test error "
        f"{summary['test_error']:.4f} (accuracy {1 - summary['test_error']:.4f}), validation "
        f"error {summary['val_error']:.4f}, {summary['nnz']} connections, sizes "
        f"{'-'.join(map(str, summary['sizes']))}"
    )
    console.print(f"wrote {out_dir}/config.json, metrics.csv, metrics.json, model.npz")


def _not_root() -> type[Exception]:
    from ..engine.parallel.runtime import NotRootRank

    return NotRootRank


def _check_ranks(par) -> None:
    """Under the user's mpiexec the rank count must fit the strategy; only rank 0 talks."""
    from ..engine.parallel.runtime import launched_rank, launched_size

    rank, size = launched_rank(), launched_size()
    if rank is None:
        return
    if size is not None and size != par.ranks:
        raise ConfigError(f"--parallel {par.strategy} with {par.workers} workers needs "
                          f"mpiexec -n {par.ranks}, not {size} ranks")
    if rank != 0:
        console.quiet = True


def _slug(name: str) -> str:
    """A file-name-safe form of a dataset name or instance id."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")[:80]


def _dataset_split(dataset: str, data_option: list[str] | None, max_train: int | None,
                   val_fraction: float, seed: int):
    """A dataset split for ad-hoc training: holdout test and validation, split seed = the
    training seed."""
    from ..config_files import parse_assignment
    from ..data.prepare import split_dataset
    from ..data.registry import load_dataset

    options = dict(parse_assignment(s) for s in (data_option or []))
    with console.status(f"loading {dataset} ..."):
        data = load_dataset(dataset, **options)
        return dataset, split_dataset(data, val_fraction=val_fraction, seed=seed,
                                      max_train=max_train)


def _instance_split(instance: str, config: Path | None):
    """The prepared split of a tuning instance (the trials' own cache and preprocessing);
    an id the config file's ``tuned_on`` does not list is allowed but said."""
    from ..config_files import tuned_on
    from ..data.instances import Instance

    inst = Instance.parse(instance)
    known = tuned_on(config) if config is not None else None
    if known is not None:
        ids = [*known.get("instances", {}).get("train", []),
               *known.get("instances", {}).get("test", [])]
        if ids and inst.id not in ids:
            console.print(f"[yellow]note[/]: {escape(inst.id)} is not one of the instances "
                          f"{escape(str(config))} was tuned on: {escape(', '.join(ids))}")
    with console.status(f"preparing {inst.id} ..."):
        return inst.id, inst.load()


def presets(
    name: Annotated[str | None, typer.Argument(
        help="a preset to show setting by setting, with where each value comes from")] = None,
) -> None:
    """List the presets, or show one: every setting, its value, default, source, meaning.

    Presets named NAME@DATASET are seed 004's per-dataset settings ("Truly Sparse Neural
    Networks at Scale", Table 7 and Table 2), with and without Importance Pruning.
    """
    from ..engine.components import COMPONENTS, KINDS
    from ..engine.config import PRESET_DESCRIPTIONS, PRESET_SOURCES, PRESETS, TrainConfig

    if name is None:
        table = Table(title="presets (aac-sparse presets NAME shows every setting and its "
                      "source; use with train --preset NAME)")
        table.add_column("preset", no_wrap=True)
        table.add_column("what it is")
        for col in ("activation", "epsilon", "lr", "batch", "hidden", "IP"):
            table.add_column(col, no_wrap=True)
        for preset, values in PRESETS.items():
            cfg = TrainConfig(**values)
            sparsity = (f"{cfg.epsilon:g}" if cfg.density_distribution == "er"
                        else f"{cfg.density_distribution} {cfg.density:g}")
            table.add_row(preset, PRESET_DESCRIPTIONS.get(preset, ""), cfg.activation,
                          sparsity, f"{cfg.lr:g}", str(cfg.batch_size),
                          "-".join(map(str, cfg.hidden)),
                          "yes" if cfg.importance_pruning else "no")
        console.print(table)
        return
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = TrainConfig(**PRESETS[name]).model_dump()
    default = TrainConfig().model_dump()
    sources = PRESET_SOURCES.get(name, {})
    table = Table(title=f"preset {name}: {PRESET_DESCRIPTIONS.get(name, '')}")
    for col, wrap in (("setting", False), ("value", False), ("default", False),
                      ("source", True), ("meaning", True)):
        table.add_column(col, no_wrap=not wrap)
    for setting, field in TrainConfig.model_fields.items():
        value = cfg[setting]
        meaning = field.description or ""
        if setting in KINDS:
            meaning = f"{meaning}; {value}: {COMPONENTS.meaning(setting, value)}"
        source = sources.get(setting, "preset" if setting in PRESETS[name] else "default")
        shown = _fmt(value)
        table.add_row(setting, f"[bold]{escape(shown)}[/]" if value != default[setting]
                      else escape(shown), escape(_fmt(default[setting])), source, meaning)
    console.print(table)
