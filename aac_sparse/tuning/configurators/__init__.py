"""The one registry of configurators: scenario name -> a ready ask/tell configurator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...data.instances import InstanceSet
from ...errors import ConfigError
from .base import Configurator, Proposal, ReplayedTrial, TrialRequest

__all__ = ["Configurator", "Proposal", "ReplayedTrial", "TrialRequest", "make_configurator",
           "CONFIGURATORS"]

CONFIGURATORS: dict[str, str] = {
    "smac-ac": "SMAC3 algorithm configuration: racing over instances with instance features",
    "smac-hpo": "SMAC3 Bayesian optimisation of the mean cost over the training instances",
    "smac-mf": "SMAC3 multi-fidelity: Hyperband over epochs, mean over instances",
    "optuna": "Optuna (TPE; NSGA-II / MO-TPE for several objectives) with pruning",
    "random": "random search (baseline)",
}


def make_configurator(
    name: str, cs, train: InstanceSet, objectives: list[str], directions: list[str],
    crash_cost: list[float], out_dir: Path, seed: int, n_trials: int, workers: int,
    options: dict[str, Any], fidelity: tuple[int, int, int] | None, epochs: int | None,
) -> Configurator:
    """Build configurator ``name`` (see :data:`CONFIGURATORS`) for a scenario's settings."""
    opts = dict(options)
    ids = train.ids
    try:
        if name == "smac-ac":
            from .smac import SmacAC

            if fidelity is not None:
                raise ConfigError("configurator smac-ac does not use a fidelity: SMAC cannot "
                                  "combine instances with budgets (use smac-mf)")
            return SmacAC(cs, train.features(), objectives, crash_cost, out_dir, seed,
                          n_trials, opts)
        if name in ("smac-hpo", "smac-mf"):
            from .smac import SmacGrouped

            return SmacGrouped(cs, ids, objectives, crash_cost, out_dir, seed, n_trials,
                               opts, workers, fidelity if name == "smac-mf" else None)
        if name == "optuna":
            from .optuna_ import OptunaConfigurator

            return OptunaConfigurator(cs, ids, directions, seed, opts, workers, n_trials,
                                      fidelity, epochs)
        if name == "random":
            from .random_search import RandomSearch

            budget = float(fidelity[1]) if fidelity else None
            return RandomSearch(cs, ids, seed, opts, workers, n_trials, budget)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"configurator {name}: {exc}") from exc
    raise ConfigError(f"unknown configurator {name!r}; choose one of {', '.join(CONFIGURATORS)}")
