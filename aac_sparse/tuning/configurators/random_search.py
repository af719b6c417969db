"""Random search: the baseline every configurator has to beat.

Configuration ``i`` is drawn from the space with a seed derived from the scenario seed and
``i``, so a resumed run continues the same sequence.  The default configuration comes first.
"""

from __future__ import annotations

from typing import Any

from .base import Group, GroupedConfigurator
from .options import RandomOptions


class RandomSearch(GroupedConfigurator):
    name = "random"

    def __init__(self, cs, instances: list[str], seed: int, options: dict[str, Any],
                 max_open: int, n_trials: int, budget: float | None) -> None:
        super().__init__(instances, seed, max_open)
        RandomOptions(**options)  # it has none: anything given is an error
        self.cs = cs
        self.budget = budget
        self.n_configs = max(1, n_trials // max(1, len(instances)))
        self.drawn = 0

    def exhausted(self) -> bool:
        return self.drawn >= self.n_configs

    def propose(self):
        config = self._draw(self.drawn)
        self.drawn += 1
        return config, self.budget, None

    def _draw(self, i: int) -> dict[str, Any]:
        if i == 0:
            return dict(self.cs.get_default_configuration())
        self.cs.seed(self.seed * 1_000_003 + i)
        return dict(self.cs.sample_configuration())

    def adopt(self, config: dict[str, Any], budget: float | None):
        self.drawn += 1
        return None

    def finish(self, group: Group) -> None:
        """Nothing to learn: the next draw does not depend on results."""
