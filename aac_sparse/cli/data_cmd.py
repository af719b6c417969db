"""``aac-sparse data list`` and ``aac-sparse data fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ..data.fetch import ROUTES, fetch_dataset, fetchable
from ..data.registry import REGISTRY

app = typer.Typer(help="List and fetch datasets.", no_args_is_help=True)
console = Console()

_AVAILABLE = {"yes": "[green]yes[/]", "generated": "[green]generated[/]",
              "generator": "[yellow]generator[/] (files missing)", "no": "[red]no[/]"}


@app.command("list")
def list_datasets() -> None:
    """Show every registered dataset, where it comes from and whether it is here."""
    table = Table(title="datasets (options: --data-option KEY=VALUE)")
    for col in ("name", "task", "shape", "classes", "source", "available", "how to get",
                "options"):
        table.add_column(col)
    for spec in REGISTRY.values():
        state = spec.availability()
        table.add_row(spec.name, spec.task, spec.shape, spec.n_classes, spec.source,
                      _AVAILABLE[state], "" if state in ("yes", "generated") else spec.how_to_get,
                      "\n".join(f"{k}: {v}" for k, v in spec.options.items()))
    console.print(table)


@app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(
        help=f"dataset to fetch: {', '.join(fetchable())}")],
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="data directory [default: $AAC_SPARSE_DATA or ~/.cache/aac-sparse/data]")
    ] = None,
    source: Annotated[str, typer.Option(
        help=f"where from: {', '.join(ROUTES)} (auto: Debian archive first, then the "
             "publisher's URL)")] = "auto",
) -> None:
    """Download a dataset into the data directory (Debian archive or original URL)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def on_bytes(file: str, done: int, total: int | None) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done)

        fetch_dataset(name, directory, say=bar.console.print, progress=on_bytes, route=source)
