"""``aac-sparse data list`` and ``aac-sparse data fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..data.fetch import fetch_dataset
from ..data.registry import REGISTRY

app = typer.Typer(help="List and fetch datasets.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_datasets() -> None:
    """Show every registered dataset and whether it is available on this machine."""
    table = Table(title="datasets")
    for col in ("name", "task", "shape", "classes", "source", "available", "how to get"):
        table.add_column(col)
    for spec in REGISTRY.values():
        ok = spec.available()
        table.add_row(spec.name, spec.task, spec.shape, spec.n_classes, spec.source,
                      "[green]yes[/]" if ok else "[red]no[/]", "" if ok else spec.how_to_get)
    console.print(table)


@app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="dataset to fetch, e.g. fashion-mnist")],
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="data directory [default: $AAC_SPARSE_DATA or ~/.cache/aac-sparse/data]")
    ] = None,
) -> None:
    """Download a dataset that can be fetched (from Debian's archive) into the data directory."""
    with console.status(f"fetching {name} ...") as status:
        fetch_dataset(name, directory, say=lambda msg: status.update(msg) or console.print(msg))
