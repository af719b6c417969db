"""The one registry of configurators: scenario name -> what it does, the options it takes,
and a ready ask/tell configurator.

:func:`check` validates a configurator's options against the scenario (objectives,
instances, fidelity) before anything is written; :func:`make_configurator` builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ...data.instances import InstanceSet
from ...errors import ConfigError
from .base import Configurator, Proposal, ReplayedTrial, TrialRequest
from .options import OptunaOptions, RandomOptions, SmacACOptions, SmacOptions, _Options
from .optuna_ import choose_pruner

__all__ = ["Configurator", "Proposal", "ReplayedTrial", "TrialRequest", "make_configurator",
           "CONFIGURATORS", "check"]


@dataclass(frozen=True)
class ConfiguratorSpec:
    """A registered configurator: its meaning, its options, how it uses a fidelity and
    ``build``, which makes it (see :func:`make_configurator` for the arguments)."""

    description: str
    options: type[_Options]
    fidelity: Literal["never", "optional", "required"]
    build: Callable[..., Configurator]


def _smac_ac(cs, train, objectives, directions, crash_cost, out_dir, seed, n_trials, workers,
             opts, fidelity, epochs) -> Configurator:
    from .smac import SmacAC

    return SmacAC(cs, train.features(), objectives, crash_cost, out_dir, seed, n_trials, opts)


def _smac_grouped(cs, train, objectives, directions, crash_cost, out_dir, seed, n_trials,
                  workers, opts, fidelity, epochs) -> Configurator:
    from .smac import SmacGrouped

    return SmacGrouped(cs, train.ids, objectives, crash_cost, out_dir, seed, n_trials, opts,
                       workers, fidelity)


def _optuna(cs, train, objectives, directions, crash_cost, out_dir, seed, n_trials, workers,
            opts, fidelity, epochs) -> Configurator:
    from .optuna_ import OptunaConfigurator

    return OptunaConfigurator(cs, train.ids, directions, seed, opts, workers, n_trials,
                              fidelity, epochs)


def _random(cs, train, objectives, directions, crash_cost, out_dir, seed, n_trials, workers,
            opts, fidelity, epochs) -> Configurator:
    from .random_search import RandomSearch

    budget = float(fidelity[1]) if fidelity else None
    return RandomSearch(cs, train.ids, seed, opts, workers, n_trials, budget)


CONFIGURATORS: dict[str, ConfiguratorSpec] = {
    "smac-ac": ConfiguratorSpec(
        "SMAC3 algorithm configuration: racing over instances with instance features",
        SmacACOptions, "never", _smac_ac),
    "smac-hpo": ConfiguratorSpec(
        "SMAC3 Bayesian optimisation of the mean cost over the training instances",
        SmacOptions, "never", _smac_grouped),
    "smac-mf": ConfiguratorSpec(
        "SMAC3 multi-fidelity: Hyperband over epochs, mean over instances", SmacOptions,
        "required", _smac_grouped),
    "optuna": ConfiguratorSpec(
        "Optuna (TPE; NSGA-II / MO-TPE for several objectives) with pruning", OptunaOptions,
        "optional", _optuna),
    "random": ConfiguratorSpec("random search (baseline)", RandomOptions, "optional", _random),
}


def check(name: str, options: dict[str, Any], n_objectives: int, n_instances: int,
          has_fidelity: bool, where: str) -> dict[str, Any]:
    """Validate configurator ``name`` with ``options`` for a scenario; a ConfigError
    names ``where`` (the file) and the field.  Returns the options as given."""
    from ...config_files import format_validation_error

    spec = CONFIGURATORS.get(name)
    if spec is None:
        raise ConfigError(f"{where}: configurator.name: unknown configurator {name!r}; "
                          f"choose one of {', '.join(CONFIGURATORS)}")
    try:
        opts = spec.options(**options)
    except ValidationError as exc:
        allowed = ", ".join(spec.options.model_fields) or "none"
        raise ConfigError(format_validation_error(
            exc, where, f"unknown option of {name} (its options: {allowed})",
            prefix="configurator.options")) from exc
    if spec.fidelity == "never" and has_fidelity:
        raise ConfigError(f"{where}: fidelity: configurator {name} does not use a fidelity "
                          "(SMAC cannot combine instances with budgets); remove fidelity: "
                          "or use smac-mf")
    if spec.fidelity == "required" and not has_fidelity:
        raise ConfigError(f"{where}: fidelity: configurator {name} needs a fidelity: "
                          "section (epochs as the budget)")
    if isinstance(opts, OptunaOptions):
        try:
            choose_pruner(opts.pruner, n_objectives, n_instances)
        except ValueError as exc:
            raise ConfigError(f"{where}: configurator.options.pruner: {exc}") from exc
        if opts.pruner == "hyperband" and not has_fidelity:
            raise ConfigError(f"{where}: configurator.options.pruner: hyperband needs a "
                              "fidelity: section (min_epochs, max_epochs, eta)")
    return dict(options)


def make_configurator(
    name: str, cs, train: InstanceSet, objectives: list[str], directions: list[str],
    crash_cost: list[float], out_dir: Path, seed: int, n_trials: int, workers: int,
    options: dict[str, Any], fidelity: tuple[int, int, int] | None, epochs: int | None,
) -> Configurator:
    """Build configurator ``name`` (see :data:`CONFIGURATORS`) for a scenario's settings."""
    opts = dict(options)
    check(name, opts, len(objectives), len(train.ids), fidelity is not None, "scenario")
    spec = CONFIGURATORS[name]
    if spec.fidelity == "never":
        fidelity = None
    try:
        return spec.build(cs, train, objectives, directions, crash_cost, out_dir, seed,
                          n_trials, workers, opts, fidelity, epochs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"configurator {name}: {exc}") from exc
