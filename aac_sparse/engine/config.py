"""Training configuration: one flat, validated record of every engine setting."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """Everything that decides how a sparse MLP is built and trained.

    Unknown keys are rejected so a typo in a config file is an error, not a silent default.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    hidden: list[int] = Field(
        default_factory=lambda: [1000, 1000, 1000],
        description="widths of the hidden layers",
    )
    density_distribution: Literal["er", "erk", "uniform"] = Field(
        "er", description="how connections are spread over layers"
    )
    epsilon: float = Field(20.0, gt=0, description="Erdős–Rényi sparsity parameter (er)")
    density: float | None = Field(
        None, gt=0, le=1, description="overall density (erk, uniform)"
    )
    weight_init: Literal["he_uniform", "xavier", "normal"] = "he_uniform"
    activation: Literal["relu", "leaky_relu", "all_relu", "srelu"] = "relu"
    alpha: float = Field(0.6, ge=0, le=1, description="left slope of leaky_relu / all_relu")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout rate on hidden layers")
    lr: float = Field(0.01, gt=0, description="learning rate")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0002, ge=0)
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(100, ge=1)
    lr_schedule: Literal["constant", "cosine", "linear", "step"] = "constant"
    lr_final_fraction: float = Field(0.0, ge=0, le=1)
    lr_step_every: int = Field(30, ge=1)
    lr_gamma: float = Field(0.1, gt=0, le=1)
    zeta: float = Field(0.3, ge=0, lt=1,
                        description="fraction of a layer's connections replaced per update")
    zeta_decay: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="drop fraction over time: constant (SET), cosine to 0 at "
        "update_end (RigL), linear to 0")
    prune: Literal["set", "magnitude"] = Field(
        "set", description="prune criterion: set (smallest positive and largest negative, "
        "per sign) or magnitude (smallest |w|, RigL)")
    regrow: Literal["random", "gradient", "gradient_sampled"] = Field(
        "random", description="regrowth: random (SET), gradient (RigL, exact top-k of "
        "|dL/dw| over absent positions), gradient_sampled (top-k of sampled candidates)")
    regrow_candidates: float = Field(
        10.0, ge=1, description="gradient_sampled: candidates scored per regrown connection")
    update_schedule: Literal["epoch", "steps"] = Field(
        "epoch", description="topology updates after epochs (SET) or optimizer steps (RigL)")
    update_every_epochs: int = Field(1, ge=1, description="epochs between topology updates")
    update_every_steps: int = Field(
        100, ge=1, description="optimizer steps between topology updates (RigL's delta T)")
    update_end: float = Field(
        1.0, gt=0, le=1, description="fraction of training after which the topology is fixed")
    evolve_layers: Literal["all", "hidden"] = Field(
        "all", description="'all' sparse layers, or 'hidden' (all but the output layer)"
    )
    regrow_init: Literal["random", "zero"] = Field(
        "random", description="weights of regrown connections: from weight_init, or zero")
    importance_pruning: bool = False
    ip_start: int = Field(50, ge=1, description="first epoch (1-based) of importance pruning")
    ip_every: int = Field(10, ge=1, description="epochs between importance-pruning steps")
    ip_percentile: float = Field(10.0, gt=0, lt=100)
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if any(h < 1 for h in self.hidden):
            raise ValueError("hidden: every width must be at least 1")
        if self.density_distribution != "er" and self.density is None:
            raise ValueError(
                f"density: required when density_distribution is "
                f"{self.density_distribution!r} (a number in (0, 1])"
            )
        return self


# The sparse-training components of each preset follow its paper; the shared training
# settings (optimizer, dropout, batch size) are the same across presets, so a comparison
# of presets isolates the algorithms.
_SET_COMPONENTS = dict(prune="set", regrow="random", update_schedule="epoch",
                       update_every_epochs=1, update_end=1.0, zeta=0.3, zeta_decay="constant",
                       regrow_init="random", density_distribution="er")
PRESETS: dict[str, dict] = {
    # Mocanu et al. 2018 (SET), as in the authors' truly sparse SET-MLP code.
    "set": dict(
        **_SET_COMPONENTS, epsilon=20, activation="relu", dropout=0.3,
        lr=0.01, momentum=0.9, weight_decay=0.0002, batch_size=128, weight_init="he_uniform",
        importance_pruning=False,
    ),
    # Evci et al. 2020 (RigL): ERK at 90 % sparsity, magnitude pruning, exact gradient
    # regrowth at zero, an update every 100 steps, zeta 0.3 cosine-decayed to 0 at 75 %.
    "rigl": dict(
        prune="magnitude", regrow="gradient", update_schedule="steps", update_every_steps=100,
        update_end=0.75, zeta=0.3, zeta_decay="cosine", regrow_init="zero",
        density_distribution="erk", density=0.1, activation="relu", dropout=0.3,
        lr=0.01, momentum=0.9, weight_decay=0.0002, batch_size=128, weight_init="he_uniform",
        importance_pruning=False,
    ),
    # Curci, Mocanu, Pechenizkiy 2021: SET with All-ReLU and Importance Pruning.  The
    # structure follows the paper; ip_start / ip_every / ip_percentile are our defaults.
    "set-allrelu-ip": dict(
        **_SET_COMPONENTS, epsilon=10, activation="all_relu", alpha=0.6,
        dropout=0.3, lr=0.005, momentum=0.9, weight_decay=0.0002, batch_size=128,
        weight_init="he_uniform", importance_pruning=True,
        ip_start=50, ip_every=10, ip_percentile=10.0,
    ),
}


def preset_config(name: str, **overrides) -> TrainConfig:
    """A preset's configuration with ``overrides`` applied on top."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return TrainConfig(**{**PRESETS[name], **overrides})
