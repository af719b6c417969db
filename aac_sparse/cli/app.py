"""``aac-sparse``: the command line entry point and its error handling.

A :class:`~aac_sparse.errors.UserError` is printed as one clear message and exits with
status 2; no traceback is shown for a user's mistake.
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from ..errors import UserError
from . import analysis_cmd, data_cmd, export_cmd, space_cmd, study_cmd, train_cmd, tune_cmd
from .console import make_console

app = typer.Typer(
    name="aac-sparse",
    help=(
        "Truly sparse training of MLPs (SET, RigL, All-ReLU, Importance Pruning) and "
        "automated configuration of these algorithms with SMAC3 and Optuna.\n\n"
        "Start with:  `aac-sparse data list`,  `aac-sparse train --preset set --dataset "
        "digits`,  `aac-sparse tune --scenario leukemia.yaml`,  `aac-sparse report "
        "runs/leukemia`"
    ),
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(train_cmd.train)
app.command("presets")(train_cmd.presets)
app.command("tune")(tune_cmd.tune_command)
app.command("scenarios")(tune_cmd.scenarios_command)
app.command("report")(analysis_cmd.report_command)
app.command("importance")(analysis_cmd.importance_command)
app.command("ablate")(analysis_cmd.ablate_command)
app.command("study")(study_cmd.study_command)
app.command("export")(export_cmd.export_command)
app.command("irace-target", context_settings={
    "allow_extra_args": True, "ignore_unknown_options": True})(tune_cmd.irace_target_command)
app.add_typer(data_cmd.app, name="data")
app.add_typer(space_cmd.app, name="space")

err_console = make_console(stderr=True)


INTERRUPTED = 130


def _interrupted() -> None:
    err_console.print("[yellow]interrupted[/] (a tuning run continues where it stopped "
                      "when you run the same command again)")
    sys.exit(INTERRUPTED)


def _caused_by_interrupt(exc: BaseException) -> bool:
    """True when Ctrl-C is behind ``exc``: a KeyboardInterrupt that lands inside a Numba
    kernel surfaces as a SystemError whose context is the KeyboardInterrupt."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _click_exception_types() -> tuple[type, ...]:
    """Click's exception class and Typer's bundled copy of it (Typer >= 0.2x raises its
    own), so a usage error from either is recognised."""
    import click

    types: list[type] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException
    except ImportError:  # an older Typer that uses click itself
        pass
    else:
        types.append(TyperClickException)
    return tuple(types)


def main() -> None:
    """Console-script entry point."""
    try:
        # Outside standalone mode Typer *returns* the exit code of typer.Exit, and turns
        # Ctrl-C into a returned 130: both must become the process's exit status.
        code = app(standalone_mode=False, prog_name="aac-sparse")
        if code == INTERRUPTED:
            _interrupted()
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except UserError as exc:
        # The message may echo the user's text: print it literally, never as markup.
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[yellow]aborted[/]")
        sys.exit(1)
    except Exception as exc:  # usage errors arrive here in standalone_mode=False
        if isinstance(exc, _click_exception_types()):
            exc.show()  # the usage line, a hint and the message
            sys.exit(exc.exit_code)
        if _caused_by_interrupt(exc):
            _interrupted()
        err_console.print("[bold red]internal error[/] — this is a bug in aac-sparse, not "
                          "in your input; please report it with the traceback below:")
        raise
