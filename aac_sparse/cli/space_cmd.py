"""``aac-sparse space show`` and ``aac-sparse space export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..space.definition import SPACES, get_space
from ..space.formats import FORMATS
from .console import make_console

app = typer.Typer(help="Show and export the configuration spaces.", no_args_is_help=True,
                  rich_markup_mode="markdown")
console = make_console()

SPACE_HELP = f"space: {', '.join(SPACES)}"


def _space(name: str):
    if name not in SPACES:
        raise ConfigError(f"unknown space {name!r}; choose one of {', '.join(SPACES)}")
    return get_space(name)


@app.command("show")
def show(space: Annotated[str, typer.Option("--space", help=SPACE_HELP)] = "meta") -> None:
    """Print every parameter: domain, scale, default, condition and meaning."""
    cs = _space(space)
    table = Table(title=f"{space}: {cs.meta['description']} (default: preset "
                        f"{cs.meta['preset']})")
    for col in ("parameter", "domain", "default", "active when", "meaning"):
        table.add_column(col, no_wrap=col in ("parameter", "default"))
    for hp in cs.values():
        if hasattr(hp, "lower"):
            domain = f"[{hp.lower:g}, {hp.upper:g}]" + (" log" if hp.log else "")
        elif hasattr(hp, "choices"):
            domain = "{" + ", ".join(map(str, hp.choices)) + "}"
        elif hasattr(hp, "sequence"):
            domain = "(" + ", ".join(map(str, hp.sequence)) + ")"
        else:
            domain = f"fixed: {hp.value}"
        conds = cs.parent_conditions_of[hp.name]
        default = getattr(hp, "default_value", getattr(hp, "value", ""))
        table.add_row(hp.name, domain, str(default), " and ".join(map(str, conds)),
                      hp.meta.get("meaning", ""))
    console.print(table)
    for clause in cs.forbidden_clauses:
        console.print(f"forbidden: {clause}")


@app.command("export")
def export(
    space: Annotated[str, typer.Option("--space", help=SPACE_HELP)] = "meta",
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"one of {', '.join(FORMATS)}")
                   ] = "configspace-json",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="file to write [default: stdout]")] = None,
) -> None:
    """Write a space for ConfigSpace/SMAC (json, yaml, pcs), irace or Optuna (Python).

    irace: the parameters file reads in irace 3 and 4; with -o, the forbidden expressions,
    the default configuration and the scenario lines naming them are written beside it
    (irace 3 has no sections).  irace4: one sectioned file for irace >= 4.
    """
    from ..io import atomic_write_text
    from ..space.export import export_space, irace_files

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    cs = _space(space)
    text = export_space(cs, fmt)
    if output is None:
        typer.echo(text, nl=False)
    elif fmt == "irace":
        stem = output.name.removesuffix(".txt").removesuffix(".irace")
        for name, body in irace_files(cs, stem).items():
            path = output if name.endswith(".irace.txt") else output.parent / name
            atomic_write_text(path, body)
            console.print(f"wrote {path}")
    else:
        atomic_write_text(output, text)
        console.print(f"wrote {output}")
