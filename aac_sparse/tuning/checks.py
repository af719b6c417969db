"""Everything about a scenario that can be checked before its run directory is written.

:func:`check_scenario` runs after the scenario file was parsed and validated field by
field (:mod:`.scenario`): it checks what needs the registries and the data — the space
(bundled name or ConfigSpace file), values fixed for space parameters, dataset loader
options, overlapping training and held-out instances, the configurator and its options,
the output place, the open-file limit — and prepares every instance (so fold counts too
large for a class are found here).  Every message names the file, the field path and
what is allowed; nothing is written into the run directory before all of it passed.
"""

from __future__ import annotations

import inspect
import json
import math
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.instances import Instance, InstanceSet
from ..data.registry import get_spec
from ..engine.config import TrainConfig
from ..errors import ConfigError, UserError
from ..space.definition import BY_NAME, SPACES, WORKERS, get_space
from .configurators import check as check_configurator
from .runlock import LOCK_NAME
from .scenario import Scenario
from .store import STORE_FILENAME

FDS_PER_WORKER = 8  # pipes, the result file, the process itself
FDS_BASE = 64
SYSTEM_DIRS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt", "/proc",
               "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/tmp", "/home")
NO_WRITE_TREES = ("/proc", "/sys", "/dev", "/boot", "/etc", "/usr", "/bin", "/sbin")


@dataclass
class Checked:
    """A scenario that passed every check, with what the checks already computed."""

    scenario: Scenario
    file: Path | None
    cs: Any
    train: InstanceSet
    test: InstanceSet
    crash: dict[str, float]


def _where(file: Path | None) -> str:
    return str(file) if file is not None else "scenario"


def check_scenario(scenario: Scenario, file: Path | None = None, base: Path | None = None,
                   say: Callable[[str], None] = lambda s: None, prepare: bool = True
                   ) -> Checked:
    """Check ``scenario`` completely (see the module doc); with ``prepare`` every instance
    is loaded and cached too.  Writes nothing but the data cache."""
    where = _where(file)
    check_output(scenario.run_dir(base), where)
    cs = space_for(scenario, file)
    check_fixed(scenario, where)
    _check_entries(scenario, where)
    _no_leakage(scenario, where)
    train, test = scenario.train_instances(), scenario.test_instances()
    check_configurator(scenario.configurator.name, scenario.configurator.options,
                       len(scenario.objectives), len(train), scenario.fidelity is not None,
                       where)
    if scenario.execution.backend == "local":
        check_open_files(scenario.execution.workers)
    else:
        check_scheduler(str(scenario.execution.scheduler), where)
    crash: dict[str, float] = {}
    if prepare:
        for path, inst in _entries(scenario):
            say(f"preparing {inst.id}")
            try:
                inst.load()
            except UserError as exc:
                raise ConfigError(f"{where}: {path}: {exc}") from exc
        crash = check_crash_costs(scenario, train, where)
    return Checked(scenario, file, cs, train, test, crash)


# -- the output place ----------------------------------------------------------------

def check_output(run_dir: Path, where: str) -> None:
    """The run directory may be new, empty, or hold an aac-sparse run; nothing else."""
    resolved = run_dir.expanduser().resolve()
    field = "output (or -o)"
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"{where}: {field}: {run_dir} is a file, not a run directory; "
                          "choose a new directory")
    home = Path.home().resolve()
    if str(resolved) in SYSTEM_DIRS or resolved == home:
        raise ConfigError(f"{where}: {field}: {resolved} is a system or home directory; "
                          "choose a directory of its own, e.g. runs/<name>")
    for tree in NO_WRITE_TREES:
        if resolved.is_relative_to(tree):
            raise ConfigError(f"{where}: {field}: {resolved} is inside {tree}, where runs "
                              "must not be written")
    if resolved.is_dir() and not (resolved / STORE_FILENAME).exists():
        try:
            occupied = any(e.name != LOCK_NAME for e in resolved.iterdir())
        except OSError as exc:
            raise ConfigError(f"{where}: {field}: cannot read {resolved}: {exc}") from exc
        if occupied:
            raise ConfigError(f"{where}: {field}: {resolved} is not empty and holds no "
                              "aac-sparse run; choose a new or empty directory")


def check_open_files(workers: int) -> None:
    """Enough file descriptors for ``workers`` local workers (the soft limit is raised
    toward the hard one when needed)."""
    need = FDS_BASE + FDS_PER_WORKER * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard == resource.RLIM_INFINITY or hard >= need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            return
        except (ValueError, OSError):
            pass
    raise ConfigError(f"execution.workers: {workers} workers need about {need} open files, "
                      f"but this process may open {soft} (hard limit {hard}); use fewer "
                      "workers or raise the limit (ulimit -n)")


def check_scheduler(address: str, where: str, timeout: float = 3.0) -> None:
    """A Dask scheduler answers at ``tcp://host:port`` (a TCP connection, within
    ``timeout`` seconds), so an unreachable one fails before anything is written."""
    import socket

    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: execution.scheduler: no Dask scheduler answers at "
                          f"{address} within {timeout:g} s ({exc}); start one with "
                          "'dask scheduler' or check the address and port") from exc


# -- the space and fixed settings ----------------------------------------------------

def space_for(scenario: Scenario, scenario_file: Path | None = None):
    """The scenario's configuration space with its fixed parameters taken out."""
    where = _where(scenario_file)
    if scenario.space in SPACES:
        return get_space(scenario.space, scenario.fixed)
    from ConfigSpace import ConfigurationSpace

    path = Path(scenario.space).expanduser()
    if not path.is_absolute() and scenario_file is not None:
        path = scenario_file.parent / path
    if path.is_dir():
        raise ConfigError(f"{where}: space: {path} is a directory; give meta, set, rigl or a "
                          "ConfigSpace JSON file")
    if not path.is_file():
        raise ConfigError(f"{where}: space: {scenario.space!r} is neither meta, set, rigl "
                          f"nor a file (looked for {path})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("hyperparameters"), list):
            raise ValueError("no list of hyperparameters in it")
        cs = ConfigurationSpace.from_json(path)
        if not len(cs):
            raise ValueError("it defines no parameters")
    except Exception as exc:  # ConfigSpace raises several kinds on a bad file
        raise ConfigError(f"{where}: space: {path} is not a ConfigSpace JSON file "
                          f"({type(exc).__name__}: {exc}); write one with "
                          "'aac-sparse space export --format configspace-json'") from exc
    clash = sorted(set(scenario.fixed) & set(cs.keys()))
    if clash:
        raise ConfigError(f"{where}: fixed: {clash} are parameters of {path}; remove them "
                          "from the file's space or from fixed")
    unknown = sorted(set(cs.keys()) - set(BY_NAME) - set(TrainConfig.model_fields))
    if unknown:
        raise ConfigError(f"{where}: space: {path} has parameters the trainer does not know: "
                          f"{unknown}")
    return cs


def check_fixed(scenario: Scenario, where: str) -> None:
    """Fixed values of space parameters lie in their domains; the other fixed settings
    are valid training settings of the right type (no true where a number belongs)."""
    from pydantic import ValidationError

    from ..config_files import format_validation_error

    for name, value in scenario.fixed.items():
        p = BY_NAME.get(name)
        if p is None:
            continue
        field = f"{where}: fixed.{name}"
        if p.kind in ("float", "int"):
            # fixed epochs are a trial's budget: any positive number of them
            lo, hi = (1, 10**6) if name == "epochs" else p.domain
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if not numeric or (p.kind == "int" and not float(value).is_integer()):
                kind = "an integer" if p.kind == "int" else "a number"
                raise ConfigError(f"{field}: expected {kind} in [{lo:g}, {hi:g}], "
                                  f"got {value!r}")
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ConfigError(f"{field}: {value!r} is outside [{lo:g}, {hi:g}]")
        elif isinstance(value, bool) or value not in p.domain:
            raise ConfigError(f"{field}: {value!r} is not one of "
                              f"{', '.join(map(str, p.domain))}")
    workers = scenario.fixed.get(WORKERS)
    if WORKERS in scenario.fixed:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"{where}: fixed.{WORKERS}: expected a whole number of MPI "
                              f"workers per trial (at least 1), got {workers!r}")
        from ..engine.parallel.runtime import ParallelUnavailable, find_mpiexec

        try:
            find_mpiexec()
        except ParallelUnavailable as exc:
            raise ConfigError(f"{where}: fixed.{WORKERS}: {exc}") from None
    other = {k: v for k, v in scenario.fixed.items() if k not in BY_NAME and k != WORKERS}
    if other:
        try:
            TrainConfig.model_validate({**TrainConfig().model_dump(), **other}, strict=True)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, where, prefix="fixed")) from exc


# -- instances ----------------------------------------------------------------------

def _entries(scenario: Scenario) -> Iterator[tuple[str, Instance]]:
    """(field path, instance) for every instance of the scenario."""
    for split in ("train", "test"):
        for i, entry in enumerate(getattr(scenario.instances, split)):
            for inst in entry.expand():
                yield f"instances.{split}.{i}", inst


def _check_entries(scenario: Scenario, where: str) -> None:
    """Every instance entry names a known dataset with options its loader takes."""
    for split in ("train", "test"):
        for i, entry in enumerate(getattr(scenario.instances, split)):
            path = f"instances.{split}.{i}"
            try:
                spec = get_spec(entry.dataset)
            except UserError as exc:
                raise ConfigError(f"{where}: {path}.dataset: {exc}") from exc
            allowed = list(inspect.signature(spec.loader()).parameters)
            for option in entry.options:
                if option not in allowed:
                    raise ConfigError(
                        f"{where}: {path}.options.{option}: not an option of dataset "
                        f"{entry.dataset!r}; its options: {', '.join(allowed) or 'none'} "
                        f"(see 'aac-sparse data info {entry.dataset}')")
            try:
                entry.expand()
            except UserError as exc:
                raise ConfigError(f"{where}: {path}: {exc}") from exc


def _no_leakage(scenario: Scenario, where: str) -> None:
    train = {inst.id: path for path, inst in _entries(scenario) if ".train." in path}
    seen: dict[str, str] = {}
    for path, inst in _entries(scenario):
        if inst.id in seen:
            raise ConfigError(f"{where}: {path}: instance {inst.id} is listed twice (also in "
                              f"{seen[inst.id]})")
        seen[inst.id] = path
        if ".test." in path and inst.id in train:
            raise ConfigError(f"{where}: {path}: held-out instance {inst.id} is also a "
                              f"training instance ({train[inst.id]}): tuning on it would leak "
                              "the held-out data; use other folds (use:) or another split")


# -- costs --------------------------------------------------------------------------

def worst_outcomes(scenario: Scenario, train: InstanceSet) -> dict[str, float]:
    """The worst value a real trial can reach per objective: an error of 1, the dense
    network's parameter count and FLOPs, the trial time limit."""
    hidden = list(scenario.fixed.get("hidden", TrainConfig().hidden))
    epochs = (scenario.fidelity.max_epochs if scenario.fidelity else
              int(scenario.fixed.get("epochs", BY_NAME["epochs"].domain[1])))
    worst_params = worst_flops = 1.0
    for inst in train:
        f = inst.features()
        sizes = [int(f["n_features"]), *hidden, int(f["n_classes"])]
        dense = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        worst_params = max(worst_params, float(dense))
        worst_flops = max(worst_flops, 6.0 * dense * f["n_samples"] * epochs)
    return {"val_error": 1.0, "n_params": worst_params, "train_flops": worst_flops,
            "train_time": float(scenario.budget.trial_wall_time or 3600.0)}


def default_crash_costs(scenario: Scenario, train: InstanceSet) -> dict[str, float]:
    """The finite cost of a failed trial per objective: the scenario's, else the worst
    real outcome."""
    costs = {**worst_outcomes(scenario, train), **scenario.crash_cost}
    return {o: costs[o] for o in scenario.objectives}


def check_crash_costs(scenario: Scenario, train: InstanceSet, where: str
                      ) -> dict[str, float]:
    """A crash must cost at least the worst real outcome, or crashing would win."""
    worst = worst_outcomes(scenario, train)
    for o, value in scenario.crash_cost.items():
        if value < worst[o]:
            raise ConfigError(f"{where}: crash_cost.{o}: {value:g} is better than the worst "
                              f"real outcome ({worst[o]:g}), so a failed trial would beat "
                              f"real ones; use at least {worst[o]:g} (or leave it out)")
    return default_crash_costs(scenario, train)


def with_overrides(scenario: Scenario, **changes: Any) -> Scenario:
    """The scenario with command-line overrides (``n_trials``, ``wall_time``, ``workers``,
    ``output``), validated like the file itself."""
    from pydantic import ValidationError

    from ..config_files import format_validation_error

    data = scenario.model_dump()
    names = {"n_trials": ("budget", "--n-trials"), "wall_time": ("budget", "--wall-time"),
             "workers": ("execution", "--workers")}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "output":
            data["output"] = str(value)
        else:
            data[names[key][0]][key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "with the command-line options")
                          ) from exc
