"""What one trial is (a configuration on an instance with a seed and budget) and what came
of it.  These records travel between configurator, executor and trial store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..io import plain

# ok: trained; diverged: loss became NaN/inf; crashed: an exception or a dead worker;
# timeout / memout: killed at the wall-time / resident-memory limit; pruned: stopped early
# by the configurator after an intermediate report.
STATUSES = ("ok", "diverged", "crashed", "timeout", "memout", "pruned")


def config_id(config: dict[str, Any]) -> str:
    """Stable id of a configuration: the first 12 hex digits of SHA-1 over sorted JSON."""
    text = json.dumps(plain(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TrialSpec:
    """A trial to run: ``target(config, instance, seed, budget)``."""

    trial_id: int
    config: dict[str, Any]
    instance: str
    seed: int
    budget: float | None = None  # epochs; None: the configuration's own epochs

    @property
    def config_id(self) -> str:
        return config_id(self.config)


@dataclass
class TrialOutcome:
    """What came of a trial.

    ``result`` is the mapping the target returned (its measurements: validation error,
    test error, training time, nnz, ...); it is empty when the worker was killed or died.
    ``start``/``end`` are Unix times.
    """

    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    start: float = 0.0
    end: float = 0.0
    worker: str = ""
    host: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown trial status {self.status!r}; one of {STATUSES}")

    @property
    def duration(self) -> float:
        return self.end - self.start
