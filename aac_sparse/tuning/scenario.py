"""Scenario files: what to tune, on which instances, against which objectives, how long.

A scenario is a YAML file validated here; every mistake names the file, the field path
and what is allowed, and unknown keys are rejected.  Bundled scenarios (``leukemia.yaml``
and others in ``aac_sparse/scenarios/``) resolve by bare name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..config_files import format_validation_error, read_mapping
from ..data.prepare import PREPROCESSING
from ..engine.config import TrainConfig
from ..errors import ConfigError

if TYPE_CHECKING:  # numpy loads with the data, not when a scenario is read
    from ..data.instances import Instance, InstanceSet

OBJECTIVES = {
    "val_error": "validation error (1 - accuracy) of the final network",
    "n_params": "parameters of the final network (connections, biases, activation params)",
    "train_time": "seconds spent training",
    "train_flops": "floating-point operations spent training",
}
MAX_SEED = 2**31 - 1  # numpy, SMAC and Optuna all take 32-bit seeds
MAX_TRIALS_WITHOUT_WALL_TIME = 100_000
MAX_NAME_LENGTH = 200  # a directory name; file systems allow 255 bytes
WORKERS_PER_CORE = 4
SCHEDULER = r"^tcp://[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}$"


class _Strict(BaseModel):
    # strict: YAML's true is not a number and "3" is not an integer
    model_config = ConfigDict(extra="forbid", strict=True)


class InstanceEntry(_Strict):
    """One dataset and how it is split; ``folds`` expands to one instance per fold used."""

    dataset: str = Field(description="a name from 'aac-sparse data list'")
    options: dict[str, Any] = Field(default_factory=dict, description="loader options")
    folds: int | None = Field(None, ge=2, description="k stratified folds; one instance each")
    use: list[int] | None = Field(None, description="which folds (0-based); default all")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="split seed")
    val_fraction: float = Field(0.1, gt=0, lt=0.9)
    test_fraction: float = Field(0.2, gt=0, lt=0.9)
    max_train: int | None = Field(None, ge=2)
    preprocessing: str = "standardize"

    @field_validator("preprocessing")
    @classmethod
    def _pre(cls, v: str) -> str:
        if v not in PREPROCESSING:
            raise ValueError(f"must be one of {', '.join(PREPROCESSING)}")
        return v

    @model_validator(mode="after")
    def _folds(self) -> InstanceEntry:
        if self.use is not None:
            if self.folds is None:
                raise ValueError("use: needs folds")
            bad = [f for f in self.use if not 0 <= f < self.folds]
            if bad:
                raise ValueError(f"use: folds {bad} outside 0..{self.folds - 1}")
        return self

    def expand(self) -> list[Instance]:
        from ..data.instances import Instance, folds

        kw = dict(seed=self.seed, val_fraction=self.val_fraction,
                  test_fraction=self.test_fraction, max_train=self.max_train,
                  preprocessing=self.preprocessing)
        if self.folds is not None:
            return folds(self.dataset, self.folds, self.use, self.options, **kw)
        return [Instance.make(self.dataset, self.options, **kw)]


class Instances(_Strict):
    train: list[InstanceEntry] = Field(min_length=1)
    test: list[InstanceEntry] = Field(default_factory=list)


class Fidelity(_Strict):
    """Epochs as the budget: trials run between ``min_epochs`` and ``max_epochs``."""

    min_epochs: int = Field(ge=1)
    max_epochs: int = Field(ge=1)
    eta: int = Field(3, ge=2, description="Hyperband's reduction factor")

    @model_validator(mode="after")
    def _order(self) -> Fidelity:
        if self.min_epochs >= self.max_epochs:
            raise ValueError("min_epochs must be below max_epochs")
        return self


class Budget(_Strict):
    n_trials: int | None = Field(100, ge=1, description="trials (configuration x instance)")
    wall_time: float | None = Field(None, gt=0, allow_inf_nan=False,
                                    description="seconds for the whole run")
    trial_wall_time: float | None = Field(600.0, gt=0, allow_inf_nan=False,
                                          description="seconds per trial")
    trial_memory_mb: float | None = Field(None, gt=0, allow_inf_nan=False,
                                          description="resident MB per trial")

    @model_validator(mode="after")
    def _bounded(self) -> Budget:
        if self.n_trials is None and self.wall_time is None:
            raise ValueError("give n_trials, wall_time or both")
        if self.wall_time is None and self.n_trials > MAX_TRIALS_WITHOUT_WALL_TIME:
            raise ValueError(f"n_trials {self.n_trials} without a wall_time: at most "
                             f"{MAX_TRIALS_WITHOUT_WALL_TIME} (or give wall_time too)")
        if (self.wall_time is not None and self.trial_wall_time is not None
                and self.trial_wall_time > self.wall_time):
            raise ValueError(f"trial_wall_time {self.trial_wall_time:g} s is longer than the "
                             f"whole run's wall_time {self.wall_time:g} s")
        return self


class Configurator(_Strict):
    name: str = "smac-ac"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from .configurators import CONFIGURATORS

        if v not in CONFIGURATORS:
            raise ValueError(f"unknown configurator {v!r}; choose one of "
                             f"{', '.join(CONFIGURATORS)}")
        return v


def max_local_workers() -> int:
    """Parallel trials one machine takes: a few per core (more only oversubscribe it)."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


class Execution(_Strict):
    workers: int = Field(1, ge=1)
    backend: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(None, description="dask scheduler address, tcp://host:port")

    @model_validator(mode="after")
    def _scheduler(self) -> Execution:
        if self.backend == "dask":
            if not self.scheduler:
                raise ValueError("backend dask needs scheduler: tcp://host:port")
            if not re.match(SCHEDULER, self.scheduler):
                raise ValueError(f"scheduler {self.scheduler!r} is not an address of the "
                                 "form tcp://host:port")
        elif self.workers > max_local_workers():
            raise ValueError(f"workers {self.workers}: at most {max_local_workers()} on this "
                             f"machine ({os.cpu_count()} cores x {WORKERS_PER_CORE}); use "
                             "backend: dask for a cluster")
        return self


class Scenario(_Strict):
    """A tuning scenario (see the README's 'Scenario files' for every field)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=MAX_NAME_LENGTH)
    description: str = ""
    space: str = Field("meta", description="meta, set, rigl, or a ConfigSpace JSON file")
    fixed: dict[str, Any] = Field(default_factory=dict,
                                  description="settings fixed for every trial")
    instances: Instances
    objectives: list[str] = Field(default_factory=lambda: ["val_error"], min_length=1)
    crash_cost: dict[str, float] = Field(default_factory=dict)
    fidelity: Fidelity | None = None
    budget: Budget = Field(default_factory=Budget)
    configurator: Configurator = Field(default_factory=Configurator)
    execution: Execution = Field(default_factory=Execution)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    output: str | None = Field(None, description="run directory; default runs/<name>")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if set(v) <= {"."}:
            raise ValueError(f"{v!r} is not a usable name (it names a directory already); "
                             "use letters, digits, . _ -")
        return v

    @field_validator("crash_cost")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not math.isfinite(x)}
        if bad:
            raise ValueError(f"crash costs must be finite numbers (an infinite cost breaks "
                             f"the configurators' models): {bad}")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        bad = [o for o in v if o not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objective(s) {bad}; choose from {', '.join(OBJECTIVES)}")
        if len(set(v)) != len(v):
            raise ValueError("an objective is listed twice")
        return v

    @field_validator("fixed")
    @classmethod
    def _fixed(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..space.definition import BY_NAME, WORKERS

        known = set(TrainConfig.model_fields) | set(BY_NAME) | {WORKERS}
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(f"unknown setting(s) {bad}; see 'aac-sparse presets' and "
                             "'aac-sparse space show'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        bad = sorted(set(self.crash_cost) - set(self.objectives))
        if bad:
            raise ValueError(f"crash_cost names {bad}, which are not objectives")
        if self.configurator.name == "smac-mf" and self.fidelity is None:
            raise ValueError("configurator smac-mf needs a fidelity: section (epochs)")
        if self.fidelity is not None and "epochs" in self.fixed:
            raise ValueError("fixed.epochs and fidelity both set the epochs; keep one")
        return self

    # -- derived ---------------------------------------------------------------------
    def train_instances(self) -> InstanceSet:
        from ..data.instances import InstanceSet

        return InstanceSet([i for e in self.instances.train for i in e.expand()])

    def test_instances(self) -> InstanceSet:
        from ..data.instances import InstanceSet

        return InstanceSet([i for e in self.instances.test for i in e.expand()])

    def run_dir(self, base: Path | None = None) -> Path:
        if self.output:
            return Path(self.output).expanduser()
        return (base or Path("runs")) / self.name

    def fingerprint(self) -> str:
        """Hash of everything that decides what a trial computes.  The run's length
        (n_trials, wall_time), its workers and its output place are left out, so a run
        can be resumed with a larger budget or more workers."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True,
                                         default=str).encode()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        return self.model_dump(exclude={"output": True, "description": True,
                                        "execution": True,
                                        "budget": {"n_trials", "wall_time"}})


def bundled_dir() -> Path:
    return Path(str(resources.files("aac_sparse") / "scenarios"))


def bundled() -> list[str]:
    """Names of the scenarios shipped with aac-sparse."""
    return sorted(p.name for p in bundled_dir().glob("*.yaml")
                  if not p.name.endswith("-study.yaml"))


def bundled_studies() -> list[str]:
    """Names of the study files shipped with aac-sparse (``*-study.yaml``)."""
    return sorted(p.name for p in bundled_dir().glob("*-study.yaml"))


def resolve(path: str | Path, what: str = "scenario") -> Path:
    """A scenario (or study) path as given, or a bundled one by bare name
    (``leukemia.yaml``, ``leukemia-study``)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    names = bundled_studies() if what == "study" else bundled()
    for name in (p.name, f"{p.name}.yaml"):
        if len(p.parts) == 1 and name in names:
            return bundled_dir() / name
    raise ConfigError(f"{what} {str(path)!r} not found (no such file, and no bundled "
                      f"{what} of that name; bundled: {', '.join(names)})")


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; returns it and the resolved path."""
    file = resolve(path)
    data = read_mapping(file)
    try:
        scenario = Scenario(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(
            exc, str(file), "unknown field; check its spelling (the README's 'Scenario files' "
            "lists every field)")) from exc
    return scenario, file


def scenario_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Field paths whose values differ between two scenario identities."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += scenario_diff(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out
