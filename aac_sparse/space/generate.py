"""Write the files in ``spaces/`` from :mod:`aac_sparse.space.definition`.

    python -m aac_sparse.space.generate [DIR]

The test suite regenerates them in memory and fails when the committed files differ, so
the files can never drift from the Python definition.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..io import atomic_write_text
from .definition import SPACES, get_space
from .export import export_space, irace_files

SUFFIXES = {"configspace-json": ".json", "pcs": ".pcs", "irace4": ".irace4.txt",
            "optuna": "_optuna.py"}


def generated_files() -> dict[str, str]:
    """File name -> content for every space and format."""
    files = {}
    for name in SPACES:
        cs = get_space(name)
        for fmt, suffix in SUFFIXES.items():
            files[f"{name}{suffix}"] = export_space(cs, fmt)
        files.update(irace_files(cs, name))
    return files


def write(directory: Path) -> list[Path]:
    return [atomic_write_text(directory / f, text) for f, text in generated_files().items()]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2] / "spaces"
    for path in write(target):
        print(path)
