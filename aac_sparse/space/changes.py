"""Changing a configuration one parameter at a time without leaving its space.

Ablation (Fawcett & Hoos 2016) walks from a source to a target configuration by single
parameter changes; local importance moves one parameter around an incumbent.  In a space
with conditions, setting a parent can switch children on or off: a child switched on takes
the target's value (or its default when the target has none), a child switched off is
dropped, so every step is a valid, complete configuration.  A change that makes the
configuration forbidden is skipped (when every single change is forbidden, pairs are
tried).  Only ConfigSpace is used here, so the analysis and the tuning layer can share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any


def free_names(cs) -> list[str]:
    """Names of the parameters that can take more than one value, in the space's order."""
    from ConfigSpace import Constant

    return [name for name in cs.keys() if not isinstance(cs[name], Constant)]


def complete(cs, values: Mapping[str, Any], fill: Callable[[str], Any]) -> dict[str, Any]:
    """``values`` restricted to the parameters active under them; an active parameter
    without a value gets ``fill(name)``.  ConfigSpace orders parents before children."""
    out: dict[str, Any] = {}
    for name in cs.keys():
        if _is_active(cs, name, out):
            out[name] = values[name] if name in values else fill(name)
    return out


def _is_active(cs, name: str, decided: Mapping[str, Any]) -> bool:
    for condition in cs.parent_conditions_of[name]:
        try:
            if not condition.satisfied_by_value(decided):
                return False
        except (KeyError, TypeError, ValueError):  # a parent is itself inactive
            return False
    return True


def is_forbidden(cs, values: Mapping[str, Any]) -> bool:
    """True when ``values`` violates one of the space's forbidden clauses."""
    for clause in cs.forbidden_clauses:
        try:
            if clause.is_forbidden_value(dict(values)):
                return True
        except (KeyError, TypeError, ValueError):  # it names an inactive parameter
            continue
    return False


def with_values(cs, config: Mapping[str, Any], changes: Mapping[str, Any],
                donor: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config`` with ``changes`` applied; children switched on take ``donor``'s value
    (else their default), children switched off are dropped."""
    donor = donor or {}
    merged = {**config, **changes}

    def fill(name: str) -> Any:
        return donor[name] if name in donor else cs[name].default_value

    return complete(cs, merged, fill)


def preset_in_space(cs, preset: str, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Preset ``preset`` as a configuration of ``cs`` with a run's ``fixed`` settings (its
    layer sizes, epochs, ...) kept; a ValueError says what does not fit."""
    from .definition import preset_values

    values = {**preset_values(preset), **{k: v for k, v in fixed.items() if k in cs}}
    return in_space(cs, values, f"preset {preset}")


def in_space(cs, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` (which may hold settings outside the space) as a valid configuration of
    ``cs``: active parameters only; a ValueError says what does not fit."""
    from ConfigSpace import Constant

    problems = []
    for name in cs.keys():
        hp = cs[name]
        if name not in values:
            continue
        if isinstance(hp, Constant):
            if values[name] != hp.value:
                problems.append(f"{name} is fixed to {hp.value!r} in this space, "
                                f"{what} has {values[name]!r}")
        elif not hp.legal_value(values[name]):
            problems.append(f"{name}={values[name]!r} is outside its domain")
    config = complete(cs, values, lambda name: cs[name].default_value)
    if not problems and is_forbidden(cs, config):
        problems.append("it is a forbidden combination")
    if problems:
        raise ValueError(f"{what} is not a configuration of this run's space: "
                         + "; ".join(problems))
    return config


@dataclass(frozen=True)
class Change:
    """One ablation step: ``names`` set to the target's values; ``moved`` lists children
    that this switched on or off; ``config`` is the configuration after it."""

    names: tuple[str, ...]
    moved: tuple[str, ...]
    config: dict[str, Any]

    @property
    def label(self) -> str:
        """``name`` or ``a + b``, with moved children in parentheses."""
        text = " + ".join(self.names)
        return f"{text} (+{', '.join(self.moved)})" if self.moved else text


def differing(cs, current: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    """Parameters active in both configurations whose values differ (the space's order)."""
    return [n for n in cs.keys() if n in current and n in target and current[n] != target[n]]


def next_changes(cs, current: Mapping[str, Any], target: Mapping[str, Any]) -> list[Change]:
    """The candidate next steps from ``current`` toward ``target``: every differing
    parameter changed alone (its children moving with it), forbidden results skipped;
    pairs of parameters when every single change is forbidden, all at once as a last
    resort.  Empty when ``current`` equals ``target``."""
    names = differing(cs, current, target)
    if not names:
        return []
    for size in (1, 2):
        found = [change for group in combinations(names, size)
                 if not is_forbidden(cs, (change := _change(cs, current, target, group)).config)]
        if found:
            return found
    return [_change(cs, current, target, tuple(names))]


def _change(cs, current: Mapping[str, Any], target: Mapping[str, Any],
            names: Sequence[str]) -> Change:
    config = with_values(cs, current, {n: target[n] for n in names}, target)
    moved = tuple(n for n in cs.keys() if n not in names and (n in config) != (n in current))
    return Change(tuple(names), moved, config)


@dataclass
class PathStep:
    """A point of an ablation path: step 0 is the source; ``cost`` is its mean over the
    instances, ``cost_std`` the spread over them, ``share`` its part of the total change."""

    step: int
    change: Change | None
    config: dict[str, Any]
    cost: float
    cost_std: float
    share: float = float("nan")

    def values(self, cs) -> str:
        """The values this step set (children it switched on included)."""
        if self.change is None:
            return ""
        names = [*self.change.names, *(n for n in self.change.moved if n in self.config)]
        return " + ".join(f"{self.config[n]:.4g}" if isinstance(self.config[n], float)
                          else str(self.config[n]) for n in names)


Choose = Callable[[int, list[Change]], tuple[int, float, float]]


def greedy_path(cs, source: Mapping[str, Any], target: Mapping[str, Any],
                source_cost: tuple[float, float], choose: Choose) -> list[PathStep]:
    """Fawcett & Hoos's ablation: from ``source``, repeatedly take the candidate change
    that ``choose(step, candidates)`` picks (it returns the index and the chosen
    configuration's cost and spread) until ``target`` is reached; shares are filled in."""
    path = [PathStep(0, None, dict(source), *source_cost)]
    current = dict(source)
    while candidates := next_changes(cs, current, target):
        index, cost, std = choose(len(path), candidates)
        change = candidates[index]
        current = change.config
        path.append(PathStep(len(path), change, dict(current), cost, std))
    fill_shares(path)
    return path


def fill_shares(path: Sequence[PathStep]) -> None:
    """Each step's share of the total improvement from the source to the last step
    (they sum to 1; NaN when source and end cost the same)."""
    total = path[0].cost - path[-1].cost
    path[0].share = 0.0
    for prev, step in zip(path, path[1:], strict=False):
        step.share = (prev.cost - step.cost) / total if total != 0 else float("nan")
