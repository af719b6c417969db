"""The one way the commands make a console: tables that stay whole in a pipe or a CI log.

Rich assumes 80 columns when output is not a terminal, which cuts tables mid-identifier.
Off a terminal (and without ``COLUMNS`` set) the console is :data:`PIPE_WIDTH` wide
instead; identifier columns are made ``no_wrap`` by the tables themselves, so an instance
id, a parameter name or a path is never split, while free text wraps at spaces.
"""

from __future__ import annotations

import os

from rich.console import Console

PIPE_WIDTH = 200


def make_console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr) that is wide when it writes to a pipe or a file."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console
