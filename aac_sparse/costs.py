"""Costs as every layer sees them: one objective is a float, several are a list of floats,
all minimised.  The configurators (to tell and to pick incumbents) and the analysis (to
aggregate the trial store) share these few rules, so both agree on what "better" means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

Cost = float | list[float]
T = TypeVar("T")


def mean_cost(costs: Sequence[Cost]) -> Cost:
    """Per-objective mean of several instances' costs."""
    arr = np.asarray(costs, dtype=float)
    mean = arr.mean(axis=0)
    return float(mean) if arr.ndim == 1 else [float(m) for m in mean]


def dominates(a: Cost, b: Cost) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in one."""
    a_, b_ = np.atleast_1d(a), np.atleast_1d(b)
    return bool(np.all(a_ <= b_) and np.any(a_ < b_))


def pareto(items: Sequence[T], cost: Callable[[T], Cost]) -> list[T]:
    """Items no other item dominates, sorted by their first objective."""
    front = [p for p in items if not any(dominates(cost(q), cost(p)) for q in items)]
    return sorted(front, key=lambda p: float(np.atleast_1d(cost(p))[0]))
