"""The options each configurator takes in a scenario's ``configurator.options`` (strict:
unknown names and wrong types are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SmacACOptions(_Options):
    initial_configs: int = Field(5, ge=1, description="configurations of the Sobol design")
    max_config_calls: int | None = Field(
        None, ge=1, description="most (instance, seed) runs per configuration "
        "[default: the number of training instances]")


class SmacOptions(_Options):
    initial_configs: int = Field(5, ge=1, description="configurations of the initial design")


class OptunaOptions(_Options):
    sampler: Literal["tpe", "nsga2", "motpe", "random"] | None = Field(
        None, description="default: tpe (one objective), nsga2 (several)")
    pruner: Literal["auto", "none", "median", "hyperband", "wilcoxon"] = "auto"
    n_startup_trials: int = Field(5, ge=0, description="random trials before the sampler")
    p_threshold: float = Field(0.1, gt=0.0, lt=1.0, description="Wilcoxon pruning level")


class RandomOptions(_Options):
    pass
