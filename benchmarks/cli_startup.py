"""Start-up time of the quick CLI commands, beside the interpreter's own start-up.

    python benchmarks/cli_startup.py [--runs 7] [--json]

Each command runs ``--runs`` times as a subprocess (stdout to a pipe, as in a script or a
CI log); the median wall time is reported with its ratio to ``python -c pass`` measured in
the same run, so numbers from machines of different speed can be compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = [["--help"], ["data", "list"], ["scenarios"], ["presets"]]


def median_wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    base = median_wall([sys.executable, "-c", "pass"], args.runs)
    rows = [{"command": "python -c pass", "median_s": round(base, 4), "x_python": 1.0}]
    for cmd in COMMANDS:
        t = median_wall([sys.executable, "-m", "aac_sparse", *cmd], args.runs)
        rows.append({"command": "aac-sparse " + " ".join(cmd), "median_s": round(t, 4),
                     "x_python": round(t / base, 1)})
    for row in rows:
        print(json.dumps(row) if args.json else
              f"{row['command']:<24} {row['median_s']:.3f} s  ({row['x_python']}x python)")


if __name__ == "__main__":
    main()
