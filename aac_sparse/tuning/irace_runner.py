"""Tune aac-sparse with irace itself: the files irace needs for a scenario, and the target
runner irace calls once per experiment.

``aac-sparse irace-target --scenario S --write DIR`` writes into DIR the space's irace
files (parameters, forbidden expressions, default configuration), ``instances.txt`` (the
scenario's training instances by index: instance ids hold ``#``, which irace reads as a
comment), an executable ``target-runner`` and ``scenario.txt`` (irace 3 and 4 syntax).
Then ``cd DIR && irace`` tunes.  irace calls ``target-runner ID_CONFIG ID_INSTANCE SEED
INSTANCE [BOUND] --name=value ...``; the runner trains that configuration (space values
plus the scenario's fixed settings) on that instance with the real target function and
prints its cost, the crash cost when the trial failed — the same cost ``tune`` would tell
a configurator.
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import atomic_write_text, plain
from .checks import default_crash_costs, space_for
from .evaluation import cost_of, objectives_of
from .scenario import Scenario
from .trial import TrialSpec


def write_irace_files(scenario: Scenario, scenario_file: Path, directory: Path) -> list[Path]:
    """Everything ``irace`` needs to tune ``scenario`` from ``directory``."""
    from ..space.export import irace_files

    cs = space_for(scenario, scenario_file)
    directory.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(directory / name, text)
               for name, text in irace_files(cs, "space").items()]
    train = scenario.train_instances()
    written.append(atomic_write_text(directory / "instances.txt",
                                     "".join(f"{i}\n" for i in range(len(train)))))
    runner = directory / "target-runner"
    atomic_write_text(runner, "#!/bin/sh\n# irace target runner for aac-sparse scenario "
                      f"{scenario.name}\nexec {shlex.quote(sys.executable)} -m aac_sparse "
                      f"irace-target --scenario {shlex.quote(str(scenario_file.resolve()))} "
                      '"$@"\n')
    runner.chmod(0o755)
    written.append(runner)
    lines = (directory / "space.irace-scenario.txt").read_text()
    written.append(atomic_write_text(directory / "scenario.txt", lines + "".join([
        'targetRunner = "./target-runner"\n', 'trainInstancesFile = "instances.txt"\n',
        f"maxExperiments = {scenario.budget.n_trials or 1000}\n",
        f"parallel = {scenario.execution.workers}\n", f"seed = {scenario.seed}\n",
        'execDir = "."\n'])))
    return written


def parse_arguments(cs, args: Sequence[str]) -> tuple[int, int, dict[str, Any]]:
    """(instance index, seed, space values) from irace's command line."""
    positional = [a for a in args if not a.startswith("--")]
    if len(positional) < 4:
        raise ConfigError("irace-target: expected ID_CONFIG ID_INSTANCE SEED INSTANCE "
                          f"[BOUND] --name=value ..., got {' '.join(args)!r}")
    try:
        seed, index = int(positional[2]), int(positional[3])
    except ValueError as exc:
        raise ConfigError(f"irace-target: seed and instance must be integers ({exc}); use "
                          "the instances.txt that 'irace-target --write' made") from exc
    values: dict[str, Any] = {}
    for a in args:
        if not a.startswith("--"):
            continue
        name, sep, text = a[2:].partition("=")
        if not sep or name not in cs:
            raise ConfigError(f"irace-target: {a!r} is not --name=value of a parameter of "
                              f"the space")
        values[name] = _typed(cs[name], text)
    return index, seed, values


def _typed(hp, text: str) -> Any:
    choices = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
    if choices is not None:
        for c in choices:
            if str(c) == text:
                return plain(c)
        raise ConfigError(f"irace-target: {hp.name}={text!r} is not one of {list(choices)}")
    if hasattr(hp, "value"):  # a constant
        return plain(hp.value)
    try:
        return int(text) if isinstance(hp.default_value, int) else float(text)
    except ValueError as exc:
        raise ConfigError(f"irace-target: {hp.name}={text!r}: {exc}") from exc


def run_irace_target(scenario: Scenario, scenario_file: Path, args: Sequence[str]) -> float:
    """Run one irace experiment with the real target; its cost (first objective)."""
    from ..target import target
    from .worker import run_trial

    cs = space_for(scenario, scenario_file)
    index, seed, values = parse_arguments(cs, args)
    train = scenario.train_instances()
    if not 0 <= index < len(train):
        raise ConfigError(f"irace-target: instance {index} out of range (the scenario has "
                          f"{len(train)} training instances)")
    inst = train.instances[index]
    config = plain({**values, **scenario.fixed})
    spec = TrialSpec(0, config, inst.id, seed % (2 ** 31), None)
    status, result, error, _, _ = run_trial(target, spec, lambda message: None,
                                            lambda: False)
    crash = default_crash_costs(scenario, train)
    objectives = list(scenario.objectives)
    cost = cost_of(objectives_of(result, status, objectives, crash), objectives)
    if status != "ok" and error:
        print(f"# {status}: {error.strip().splitlines()[-1]}", file=sys.stderr)
    value = cost[0] if isinstance(cost, list) else cost
    return float(value) if math.isfinite(value) else float(crash[objectives[0]])
