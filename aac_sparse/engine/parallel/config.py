"""How a training run is spread over MPI ranks: a record separate from the training settings.

``TrainConfig`` says *what* is trained; :class:`ParallelConfig` says *how it is computed*:
sequentially, WASSP-SGD (synchronous data-parallel SGD, one rank per worker) or WASAP-SGD
(an asynchronous parameter server plus workers), both optionally followed by seed 004's
phase 2 (local training on each worker and sparse weight averaging).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

STRATEGIES = ("none", "wassp", "wasap")


class ParallelConfig(BaseModel):
    """The data-parallel strategy and its settings (seed 004, Algorithm 1 and §2.3)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["none", "wassp", "wasap"] = Field(
        "none", description="none (sequential), wassp (synchronous) or wasap (asynchronous "
        "parameter server)")
    workers: int = Field(2, ge=1, description="data-parallel workers (wasap adds one "
                         "parameter-server rank)")
    phase2_from: float = Field(
        1.0, gt=0, le=1, description="fraction of the epochs after which phase 2 (local "
        "training on each worker, then sparse weight averaging) begins; 1 = no phase 2")
    sync_every: int = Field(
        0, ge=0, description="phase 2: local optimizer steps between weight-averaging syncs "
        "(0 = only the final averaging)")
    averaging: Literal["swa", "final"] = Field(
        "swa", description="phase 2 result: swa = running mean of every sync's average "
        "(stochastic weight averaging); final = the average of the workers' last models")
    phase2_topology: Literal["evolve", "frozen"] = Field(
        "evolve", description="phase 2: each worker evolves its own topology (the seed; "
        "averaging then works on the union and prunes back) or keeps phase 1's")
    lr_scaling: Literal["linear", "none"] = Field(
        "linear", description="wassp: learning rate times the number of workers (Goyal et "
        "al. 2017's linear scaling rule) or unchanged")
    warmup_epochs: int = Field(
        5, ge=0, description="wassp with linear scaling: epochs over which the learning "
        "rate ramps from lr to workers x lr")

    @property
    def ranks(self) -> int:
        """MPI ranks the strategy needs (1 for sequential)."""
        if self.strategy == "none":
            return 1
        return self.workers + (1 if self.strategy == "wasap" else 0)

    def phase2_epoch(self, epochs: int) -> int:
        """The first 0-based epoch of phase 2 (``epochs`` if there is none)."""
        if self.phase2_from >= 1.0:
            return epochs
        return min(epochs, max(1, math.floor(self.phase2_from * epochs + 0.5)))

    def lr_factor(self, epoch: int) -> float:
        """WASSP's learning-rate multiplier in 0-based ``epoch`` (1 for WASAP)."""
        if self.strategy != "wassp" or self.lr_scaling == "none" or self.workers == 1:
            return 1.0
        k = self.workers
        if self.warmup_epochs == 0:
            return float(k)
        return 1.0 + (k - 1) * min(1.0, epoch / self.warmup_epochs)
