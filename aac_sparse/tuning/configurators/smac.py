"""SMAC3 driven through ask/tell, with its defaults set explicitly.

* ``smac-ac``: algorithm configuration over instances with instance features and SMAC's
  intensification (racing challengers against the incumbent on instance-seed pairs).
* ``smac-hpo``: Bayesian optimisation of the mean cost over all training instances.
* ``smac-mf``: the same with Hyperband over epochs.  SMAC cannot combine instances with
  a real budget, so every (configuration, budget) trial is run on all training instances
  and their mean is told to SMAC.

SMAC never runs anything itself here and never writes where the user could be asked a
question: its output directory lives inside the run directory and is overwritten
(``overwrite=True``); the trial store, not SMAC's files, is what resume reads.  Crash
costs are finite (an infinite cost breaks SMAC's random forest).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from ...costs import mean_cost
from ...space.values import from_configuration
from ..trial import TrialOutcome
from .base import (
    Configurator,
    Cost,
    Group,
    GroupedConfigurator,
    Proposal,
    ReplayedTrial,
    TrialRequest,
    pareto,
)
from .options import SmacACOptions, SmacOptions

_STATUS = {"ok": "SUCCESS", "pruned": "SUCCESS", "diverged": "CRASHED", "crashed": "CRASHED",
           "timeout": "TIMEOUT", "memout": "MEMORYOUT"}


def _smac_scenario(cs, objectives: list[str], crash_cost: list[float], out_dir: Path,
                   seed: int, n_trials: int, **kw: Any):
    from smac import Scenario

    return Scenario(
        configspace=cs, name="smac3", output_directory=out_dir, deterministic=True,
        objectives=objectives if len(objectives) > 1 else objectives[0],
        crash_cost=crash_cost if len(crash_cost) > 1 else crash_cost[0],
        n_trials=max(1, n_trials), seed=seed, **kw,
    )


def _single_threaded(model):
    """SMAC's forest predicts with ``n_jobs=-1``: its threads add into one array in varying
    order, which can flip near-ties in the acquisition between identical runs.  One thread
    keeps the arithmetic repeatable and leaves the cores to the trials."""
    opts = getattr(model, "_rf_opts", None)
    if isinstance(opts, dict) and "n_jobs" in opts:
        opts["n_jobs"] = 1
    return model


def _value(cost: Cost, outcome: TrialOutcome):
    from smac.runhistory import StatusType, TrialValue

    return TrialValue(cost=cost, time=max(outcome.duration, 0.0),
                      status=getattr(StatusType, _STATUS[outcome.status]),
                      starttime=outcome.start, endtime=outcome.end)


def _config(cs, values: dict[str, Any]):
    from ...space.values import to_configuration

    return to_configuration(cs, values)


class SmacAC(Configurator):
    """SMAC's algorithm-configuration facade: it picks configuration, instance and seed."""

    name = "smac-ac"

    def __init__(self, cs, instances: dict[str, list[float]], objectives: list[str],
                 crash_cost: list[float], out_dir: Path, seed: int, n_trials: int,
                 options: dict[str, Any]) -> None:
        from smac import AlgorithmConfigurationFacade as AC

        self.cs = cs
        opts = SmacACOptions(**options)
        max_calls = opts.max_config_calls or len(instances)
        n_configs = opts.initial_configs
        scenario = _smac_scenario(cs, objectives, crash_cost, out_dir, seed, n_trials,
                                  instances=list(instances), instance_features=instances)
        self.smac = AC(
            scenario, target_function=None, overwrite=True, logging_level=logging.ERROR,
            intensifier=AC.get_intensifier(scenario, max_config_calls=max_calls),
            # SMAC 2.4 reduces instance features by PCA when training its forest but not
            # when marginalising over instances (an assertion fails); our few features
            # need no reduction.
            model=_single_threaded(AC.get_model(scenario, pca_components=None)),
            initial_design=AC.get_initial_design(scenario, additional_configs=[])
            if n_configs <= 1 else _sobol(scenario, n_configs),
        )
        self._asked: dict[int, Any] = {}
        self._n = 0

    def ask(self) -> TrialRequest | None:
        info = _ask(self.smac)
        self._n += 1
        self._asked[self._n] = info
        return TrialRequest(from_configuration(info.config), info.instance,
                            int(info.seed or 0), None, self._n)

    def tell(self, request: TrialRequest, cost: Cost, outcome: TrialOutcome) -> None:
        info = self._asked.pop(request.key, None)
        if info is not None:
            self.smac.tell(info, _value(cost, outcome), save=False)

    def replay(self, trials: list[ReplayedTrial]) -> None:
        from smac.runhistory import TrialInfo

        for t in trials:
            info = TrialInfo(_config(self.cs, t.config), instance=t.instance, seed=t.seed)
            self.smac.tell(info, _value(t.cost, t.outcome), save=False)

    def incumbents(self) -> list[Proposal]:
        rh = self.smac.runhistory
        out = []
        for config in self.smac.intensifier.get_incumbents():
            keys = rh.get_instance_seed_budget_keys(config)
            out.append(Proposal(from_configuration(config), _as_cost(rh.average_cost(config)),
                                len(keys)))
        return pareto(out)


def _sobol(scenario, n_configs: int):
    from smac.initial_design import SobolInitialDesign

    return SobolInitialDesign(scenario, n_configs=n_configs, additional_configs=[
        scenario.configspace.get_default_configuration()])


def _as_cost(c: Any) -> Cost:
    return [float(x) for x in c] if isinstance(c, list | tuple) else float(c)


def _ask(smac):
    """SMAC's ask, without the numpy warnings its local search logs on empty timings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return smac.ask()


class SmacGrouped(GroupedConfigurator):
    """SMAC's HPO facade (``budgets=None``) or multi-fidelity facade (Hyperband over
    epochs); each SMAC trial is the mean over all training instances."""

    def __init__(self, cs, instances: list[str], objectives: list[str],
                 crash_cost: list[float], out_dir: Path, seed: int, n_trials: int,
                 options: dict[str, Any], max_open: int,
                 budgets: tuple[int, int, int] | None = None) -> None:
        from smac import HyperparameterOptimizationFacade as HPO
        from smac import MultiFidelityFacade as MF

        super().__init__(instances, seed, max_open)
        self.cs = cs
        n_configs = SmacOptions(**options).initial_configs
        kw: dict[str, Any] = {}
        if budgets is not None:
            kw.update(min_budget=budgets[0], max_budget=budgets[1])
        n_smac = max(1, n_trials // max(1, len(instances)))
        scenario = _smac_scenario(cs, objectives, crash_cost, out_dir, seed, n_smac, **kw)
        facade = MF if budgets is not None else HPO
        intensifier = (MF.get_intensifier(scenario, eta=budgets[2]) if budgets is not None
                       else HPO.get_intensifier(scenario, max_config_calls=1))
        self.name = "smac-mf" if budgets is not None else "smac-hpo"
        self.smac = facade(scenario, target_function=None, overwrite=True,
                           logging_level=logging.ERROR, intensifier=intensifier,
                           model=_single_threaded(facade.get_model(scenario)),
                           initial_design=facade.get_initial_design(scenario,
                                                                    n_configs=n_configs))

    def propose(self):
        info = _ask(self.smac)
        return from_configuration(info.config), info.budget, info

    def adopt(self, config: dict[str, Any], budget: float | None):
        from smac.runhistory import TrialInfo

        return TrialInfo(_config(self.cs, config), budget=budget, seed=self.seed)

    def finish(self, group: Group) -> None:
        info = group.handle
        from smac.runhistory import StatusType, TrialValue

        costs = list(group.results.values())
        now = time.time()
        self.smac.tell(info, TrialValue(cost=mean_cost(costs), time=0.0,
                                        status=StatusType.SUCCESS, starttime=now,
                                        endtime=now), save=False)
