"""``aac-sparse data list`` and ``aac-sparse data fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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
from .console import make_console

app = typer.Typer(help="List and fetch datasets.", no_args_is_help=True,
                  rich_markup_mode="markdown")
console = make_console()

_AVAILABLE = {"yes": "[green]yes[/]", "generated": "[green]generated[/]",
              "generator": "[yellow]generator[/] (files missing)", "no": "[red]no[/]",
              "path": "your file"}


@app.command("list")
def list_datasets() -> None:
    """Show every registered dataset and whether it is here ('data info NAME' for more)."""
    table = Table(title="datasets (details and options: aac-sparse data info NAME)")
    for col in ("name", "what", "here", "how to get"):
        table.add_column(col, no_wrap=col == "name")  # names whole; text wraps at spaces
    for spec in REGISTRY.values():
        state = spec.availability()
        what = f"{spec.task}, {spec.shape}, {spec.n_classes} classes"
        table.add_row(spec.name, what, _AVAILABLE[state],
                      "" if state in ("yes", "generated") else spec.how_to_get)
    console.print(table)


@app.command("info")
def info(name: Annotated[str, typer.Argument(help="dataset name (see 'aac-sparse data list')")]
         ) -> None:
    """Where a dataset comes from, its loader options and every place searched for it."""
    from ..data.places import search_dirs
    from ..data.registry import get_spec

    spec = get_spec(name)
    console.print(f"[bold]{spec.name}[/]: {spec.task}, {spec.shape}, {spec.n_classes} classes")
    console.print(f"source: {spec.source}")
    console.print(f"here: {_AVAILABLE[spec.availability()]}"
                  + (f" ({spec.find()})" if spec.find() else ""))
    console.print(f"how to get: {spec.how_to_get}")
    if not spec.generated:
        console.print("searched: " + ", ".join(str(p) for p in search_dirs(spec.name)))
    for key, meaning in spec.options.items():
        console.print(f"  --data-option {key}=...  {meaning}")


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
