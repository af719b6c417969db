"""The one interface every configurator implements: ask for a trial, tell its cost.

Two shapes exist.  A *per-trial* configurator (SMAC's algorithm configuration) chooses a
configuration, an instance and a seed for every trial itself.  A *per-configuration*
one (SMAC's HPO and multi-fidelity facades, Optuna, random search) chooses a
configuration and a budget; :class:`GroupedConfigurator` then evaluates it on every
training instance and hands back the mean cost — SMAC cannot combine instances with a
real budget, so in those modes the instances are averaged here, outside SMAC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ...costs import Cost, mean_cost
from ...costs import pareto as pareto_front
from ..trial import TrialOutcome, config_id


@dataclass
class TrialRequest:
    """What a configurator wants run; ``key`` is the configurator's own handle."""

    config: dict[str, Any]
    instance: str
    seed: int
    budget: float | None
    key: Any = None


@dataclass
class ReplayedTrial:
    """A finished trial read back from the store on resume."""

    config: dict[str, Any]
    instance: str
    seed: int
    budget: float | None
    cost: Cost
    outcome: TrialOutcome
    reports: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Proposal:
    """A configuration the tuner recommends, with its mean cost on the training instances."""

    config: dict[str, Any]
    cost: Cost
    n_instances: int


class Configurator(ABC):
    """Ask/tell interface driven by the tuner loop."""

    name = "configurator"

    @abstractmethod
    def ask(self) -> TrialRequest | None:
        """The next trial, or None if nothing can be proposed until a running trial ends."""

    @abstractmethod
    def tell(self, request: TrialRequest, cost: Cost, outcome: TrialOutcome) -> None:
        """The result of a trial previously returned by :meth:`ask`."""

    def report(self, request: TrialRequest, step: int, value: float) -> bool:
        """An intermediate value (validation error after epoch ``step``); True: stop it."""
        return False

    @abstractmethod
    def replay(self, trials: list[ReplayedTrial]) -> None:
        """Learn from trials finished in an earlier session (before the first ask)."""

    @abstractmethod
    def incumbents(self) -> list[Proposal]:
        """The best configuration(s) so far (several for a multi-objective Pareto front)."""

    def exhausted(self) -> bool:
        """True when the configurator has nothing more to propose."""
        return False


def pareto(proposals: list[Proposal]) -> list[Proposal]:
    """Proposals no other proposal dominates, best first objective first."""
    return pareto_front(proposals, lambda p: p.cost)


@dataclass
class Group:
    """A configuration being evaluated on every training instance at one budget."""

    gid: int
    config: dict[str, Any]
    budget: float | None
    seed: int
    order: list[str]  # evaluation order of the instances
    handle: Any = None
    results: dict[str, Cost] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    pruned: bool = False

    def next_instance(self) -> str | None:
        for inst in self.order:
            if inst not in self.results and inst not in self.in_flight:
                return inst
        return None

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.order)

    @property
    def key(self) -> tuple[str, float | None, int]:
        return (config_id(self.config), self.budget, self.seed)


class GroupedConfigurator(Configurator):
    """Evaluates each proposed configuration on all training instances and tells the mean.

    ``sequential``: a group runs one instance at a time (so a pruner can stop it between
    instances); otherwise its instances run in parallel.  At most ``max_open`` groups are
    open at once (the number of workers keeps them busy).
    """

    sequential = False

    def __init__(self, instances: list[str], seed: int, max_open: int = 1) -> None:
        self.instances = list(instances)
        self.seed = seed
        self.max_open = max(1, max_open)
        self.groups: dict[int, Group] = {}
        self.closed: list[Group] = []
        self._next_gid = 0

    # -- what subclasses provide -----------------------------------------------------
    @abstractmethod
    def propose(self) -> tuple[dict[str, Any], float | None, Any] | None:
        """A new configuration, its budget and a handle; None when there is none now."""

    @abstractmethod
    def finish(self, group: Group) -> None:
        """A group ended (complete or pruned): tell the underlying optimizer."""

    def adopt(self, config: dict[str, Any], budget: float | None) -> Any:
        """A handle for a group replayed from the store (it was not proposed this session)."""
        return None

    def on_result(self, group: Group, instance: str, cost: Cost) -> None:
        """An instance of ``group`` finished (e.g. report it as an intermediate value)."""

    def should_prune(self, group: Group) -> bool:
        """After an instance finished in an incomplete sequential group: stop it?"""
        return False

    def instance_order(self, gid: int) -> list[str]:
        return list(self.instances)

    def n_configurations(self) -> int:
        """Distinct (configuration, budget, seed) groups opened so far; a configuration the
        optimizer proposes again (answered from the store on resume) is not counted twice."""
        return len({g.key for g in [*self.closed, *self.groups.values()]})

    # -- the ask/tell plumbing ---------------------------------------------------------
    def _open(self, config: dict[str, Any], budget: float | None, handle: Any) -> Group:
        gid = self._next_gid
        self._next_gid += 1
        group = Group(gid, config, budget, self.seed, self.instance_order(gid), handle)
        self.groups[gid] = group
        return group

    def ask(self) -> TrialRequest | None:
        for group in self.groups.values():
            if self.sequential and group.in_flight:
                continue
            inst = group.next_instance()
            if inst is not None:
                return self._request(group, inst)
        if len(self.groups) >= self.max_open or self.exhausted():
            return None
        proposal = self.propose()
        if proposal is None:
            return None
        group = self._open(*proposal)
        return self._request(group, group.order[0])

    def _request(self, group: Group, inst: str) -> TrialRequest:
        group.in_flight.add(inst)
        return TrialRequest(group.config, inst, group.seed, group.budget, group.gid)

    def tell(self, request: TrialRequest, cost: Cost, outcome: TrialOutcome) -> None:
        group = self.groups.get(request.key)
        if group is None:
            return
        group.in_flight.discard(request.instance)
        self._record(group, request.instance, cost, outcome)

    def _record(self, group: Group, inst: str, cost: Cost, outcome: TrialOutcome) -> None:
        group.results[inst] = cost
        self.on_result(group, inst, cost)
        if outcome.status == "pruned":
            group.pruned = True
        elif not group.complete and self.sequential and self.should_prune(group):
            group.pruned = True
        if (group.complete or group.pruned) and not group.in_flight:
            del self.groups[group.gid]
            self.closed.append(group)
            self.finish(group)

    def replay(self, trials: list[ReplayedTrial]) -> None:
        by_key: dict[tuple, Group] = {}
        for t in trials:
            key = (config_id(t.config), t.budget, t.seed)
            group = by_key.get(key)
            if group is None or group.gid not in self.groups:
                group = self._open(t.config, t.budget, self.adopt(t.config, t.budget))
                group.seed = t.seed
                by_key[key] = group
            if t.instance in group.order and t.instance not in group.results:
                self._record(group, t.instance, t.cost, t.outcome)

    def incumbents(self) -> list[Proposal]:
        """The best complete configurations at the highest budget any reached (a Pareto
        front for several objectives); pruned ones do not compete."""
        done = [g for g in self.closed if g.complete and not g.pruned]
        budgets = [g.budget for g in done if g.budget is not None]
        if budgets:
            done = [g for g in done if g.budget == max(budgets)]
        return pareto([Proposal(g.config, mean_cost(list(g.results.values())),
                                len(g.results)) for g in done])
