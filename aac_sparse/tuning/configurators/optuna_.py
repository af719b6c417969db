"""Optuna driven through ask/tell.

Samplers: TPE (default; multivariate, with a constant liar when trials run in parallel),
NSGA-II or MO-TPE for several objectives, random.  One Optuna trial is one configuration
evaluated on every training instance; its value is the mean cost.  Pruning:

* several training instances: Wilcoxon pruning across instances — each instance's cost
  is reported as one step (steps are instance indices, evaluated in a shuffled order) and
  a configuration is dropped once it is significantly worse than the best on the
  instances seen so far;
* one training instance: pruning on the per-epoch validation error (Hyperband over
  epochs when the scenario has a fidelity, the median rule otherwise).

Multi-objective studies are not pruned (Optuna has no multi-objective pruning).  A
sampled configuration that a forbidden clause excludes is told as pruned and another is
asked for, so the sampler learns to avoid the region.
"""

from __future__ import annotations

import random
from typing import Any

from ...costs import mean_cost
from ...errors import ConfigError
from .base import Group, GroupedConfigurator, TrialRequest
from .options import OptunaOptions

PRUNERS = ("auto", "none", "median", "hyperband", "wilcoxon")


def choose_pruner(name: str, n_objectives: int, n_instances: int) -> str:
    """The pruner ``name`` (``auto`` resolved) for a study; ValueError where it cannot
    work (several objectives, Wilcoxon on one instance, per-epoch rules on several)."""
    if n_objectives > 1:
        if name not in ("auto", "none"):
            raise ValueError("pruning is not available with several objectives (Optuna has "
                             "no multi-objective pruning); set pruner: none")
        return "none"
    if name == "auto":
        return "wilcoxon" if n_instances > 1 else "median"
    if name == "wilcoxon" and n_instances < 2:
        raise ValueError("Wilcoxon pruning compares instances and needs several training "
                         "instances")
    if name in ("median", "hyperband") and n_instances > 1:
        raise ValueError(f"{name} pruning works on the per-epoch reports of a single "
                         "training instance; with several instances use wilcoxon")
    return name


class OptunaConfigurator(GroupedConfigurator):
    name = "optuna"

    def __init__(self, cs, instances: list[str], directions: list[str], seed: int,
                 options: dict[str, Any], max_open: int, n_trials: int,
                 fidelity: tuple[int, int, int] | None = None,
                 epochs: int | None = None) -> None:
        import optuna

        from ...space.export import optuna_suggest

        super().__init__(instances, seed, max_open)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        opts = OptunaOptions(**options)
        sampler_name = opts.sampler or ("tpe" if len(directions) == 1 else "nsga2")
        pruner_name, n_startup, p_threshold = opts.pruner, opts.n_startup_trials, opts.p_threshold
        self.cs = cs
        self.suggest = optuna_suggest(cs)
        self.multi = len(directions) > 1
        self.budget = float(fidelity[1]) if fidelity else (float(epochs) if epochs else None)
        try:
            self.pruner_name = choose_pruner(pruner_name, len(directions), len(instances))
        except ValueError as exc:
            raise ConfigError(f"configurator optuna: {exc}") from exc
        self.sequential = self.pruner_name == "wilcoxon"
        self.per_epoch = self.pruner_name in ("median", "hyperband")
        self.study = optuna.create_study(
            directions=directions,
            sampler=self._sampler(sampler_name, seed, n_startup, max_open > 1),
            pruner=self._pruner(fidelity, n_startup, p_threshold),
        )
        self.n_configs = max(1, n_trials // max(1, len(instances)))
        self._rng = random.Random(seed)

    @staticmethod
    def _sampler(name: str, seed: int, n_startup: int, parallel: bool):
        import optuna

        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup,
                                              multivariate=True, constant_liar=parallel)
        if name == "motpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    def _pruner(self, fidelity, n_startup: int, p_threshold: float):
        import optuna

        if self.pruner_name == "wilcoxon":
            import warnings

            with warnings.catch_warnings():  # "experimental" since Optuna 3.6; it works
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.pruners.WilcoxonPruner(p_threshold=p_threshold)
        if self.pruner_name == "hyperband":
            lo, hi, eta = fidelity or (1, int(self.budget or 100), 3)
            return optuna.pruners.HyperbandPruner(min_resource=lo, max_resource=hi,
                                                  reduction_factor=eta)
        if self.pruner_name == "median":
            warmup = fidelity[0] if fidelity else 1
            return optuna.pruners.MedianPruner(n_startup_trials=n_startup,
                                               n_warmup_steps=warmup)
        return optuna.pruners.NopPruner()

    def instance_order(self, gid: int) -> list[str]:
        order = list(self.instances)
        if self.sequential:
            self._rng.shuffle(order)  # as Optuna's Wilcoxon pruner recommends
        return order

    # -- groups ------------------------------------------------------------------------
    def exhausted(self) -> bool:
        return self.n_configurations() >= self.n_configs

    def propose(self):
        from ...space.export import ForbiddenConfiguration

        for _ in range(1000):
            trial = self.study.ask()
            try:
                config = self.suggest(trial)
            except ForbiddenConfiguration:
                import optuna

                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            return config, self.budget, trial
        raise RuntimeError("Optuna proposed only forbidden configurations 1000 times")

    def adopt(self, config: dict[str, Any], budget: float | None):
        from ...space.values import to_optuna

        self.study.enqueue_trial(to_optuna(self.cs, config), skip_if_exists=False)
        trial = self.study.ask()
        self.suggest(trial)
        return trial

    def report(self, request: TrialRequest, step: int, value: float) -> bool:
        group = self.groups.get(request.key)
        if group is None or not self.per_epoch:
            return False
        group.handle.report(value, step)
        return group.handle.should_prune()

    def on_result(self, group: Group, instance: str, cost) -> None:
        if self.sequential:  # Wilcoxon: one step per instance, its index
            group.handle.report(float(cost), self.instances.index(instance))

    def should_prune(self, group: Group) -> bool:
        return group.handle.should_prune()

    def finish(self, group: Group) -> None:
        import optuna

        if group.pruned:
            self.study.tell(group.handle, state=optuna.trial.TrialState.PRUNED)
            return
        self.study.tell(group.handle, mean_cost(list(group.results.values())))

