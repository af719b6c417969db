"""Training configuration: one flat, validated record of every engine setting."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .components import COMPONENTS, KINDS


class TrainConfig(BaseModel):
    """Everything that decides how a sparse MLP is built and trained.

    Unknown keys are rejected so a typo in a config file is an error, not a silent default.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    hidden: list[int] = Field(
        default_factory=lambda: [1000, 1000, 1000],
        description="widths of the hidden layers",
    )
    density_distribution: str = Field("er", description="how connections are spread over layers")
    epsilon: float = Field(20.0, gt=0, description="Erdős–Rényi sparsity parameter (er)")
    density: float | None = Field(
        None, gt=0, le=1, description="overall density (erk, uniform)"
    )
    weight_init: str = Field("he_uniform", description="initial weight distribution")
    activation: str = Field("relu", description="hidden activation")
    alpha: float = Field(0.6, ge=0, le=1, description="left slope of leaky_relu / all_relu")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout rate on hidden layers")
    lr: float = Field(0.01, gt=0, description="learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum of SGD")
    weight_decay: float = Field(0.0002, ge=0, description="L2 weight decay")
    batch_size: int = Field(128, ge=1, description="mini-batch size")
    epochs: int = Field(100, ge=1, description="training epochs")
    lr_schedule: str = Field("constant", description="learning-rate schedule over epochs")
    lr_final_fraction: float = Field(0.0, ge=0, le=1,
                                     description="final lr as a fraction of lr (cosine, linear)")
    lr_step_every: int = Field(30, ge=1, description="epochs between lr steps (step)")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="lr factor per step (step)")
    zeta: float = Field(0.3, ge=0, lt=1,
                        description="fraction of a layer's connections replaced per update")
    zeta_decay: str = Field("constant", description="drop fraction over training")
    prune: str = Field("set", description="prune criterion: which connections an update removes")
    regrow: str = Field("random",
                        description="regrowth: where an update puts the removed connections")
    regrow_candidates: float = Field(
        10.0, ge=1, description="gradient_sampled: candidates scored per regrown connection")
    update_schedule: str = Field("epoch", description="when the topology is updated")
    update_every_epochs: int = Field(1, ge=1, description="epochs between topology updates")
    update_every_steps: int = Field(
        100, ge=1, description="optimizer steps between topology updates (RigL's delta T)")
    update_end: float = Field(
        1.0, gt=0, le=1, description="fraction of training after which the topology is fixed")
    evolve_layers: Literal["all", "hidden"] = Field(
        "all", description="'all' sparse layers, or 'hidden' (all but the output layer)"
    )
    regrow_init: str = Field("random", description="initial weights of regrown connections")
    importance_pruning: bool = Field(False, description="remove hidden neurons of low "
                                     "strength during training (Importance Pruning)")
    ip_start: int = Field(50, ge=1, description="first epoch (1-based) of importance pruning")
    ip_every: int = Field(10, ge=1, description="epochs between importance-pruning steps")
    ip_percentile: float = Field(10.0, gt=0, lt=100, description="percentile of neuron "
                                 "strength below which neurons are removed")
    eval_batch_size: int = Field(1024, ge=1, description="batch size of evaluation only")
    activation_memory_mb: float = Field(
        4096, gt=0, description="memory for one micro-batch's activations (MiB): a mini-batch "
        "that needs more is split into micro-batches, gradients added, one step")
    seed: int = Field(0, description="seed of initialisation, shuffling, dropout, evolution")

    @field_validator(*KINDS)
    @classmethod
    def _registered(cls, name: str, info) -> str:
        """A component setting names a registered implementation of its kind."""
        COMPONENTS.entry(info.field_name, name)  # UnknownName lists the choices
        return name

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if any(h < 1 for h in self.hidden):
            raise ValueError("hidden: every width must be at least 1")
        uses = COMPONENTS.entry("density_distribution", self.density_distribution).traits
        if uses.get("uses") == "density" and self.density is None:
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


# Seed 004 ("Truly Sparse Neural Networks at Scale", Curci, Mocanu, Pechenizkiy 2021), its
# per-dataset settings: Table 7 ("Experiments hyperparameters": epsilon, learning rate,
# batch size, weight init, All-ReLU slope alpha) and the architectures of Table 2.  §5.4.3
# adds momentum 0.9, dropout 0.3, a fixed learning rate and Importance Pruning from epoch
# 200 for all models; Table 2's accuracies are the best of 500 epochs.
_TABLE7 = "seed 004, Table 7"
_TABLE2 = "seed 004, Table 2 (architecture)"
_TEXT = "seed 004, §5.4.3"
_SEED_DATASETS: dict[str, dict] = {
    "leukemia": dict(epsilon=10, lr=0.005, batch_size=5, weight_init="normal", alpha=0.75,
                     hidden=[27500, 27500]),
    "higgs": dict(epsilon=10, lr=0.01, batch_size=128, weight_init="xavier", alpha=0.05,
                  hidden=[1000, 1000, 1000]),
    "madelon": dict(epsilon=10, lr=0.01, batch_size=32, weight_init="normal", alpha=0.5,
                    hidden=[400, 100, 400]),
    "fashion-mnist": dict(epsilon=20, lr=0.01, batch_size=128, weight_init="he_uniform",
                          alpha=0.6, hidden=[1000, 1000, 1000]),
    "cifar10": dict(epsilon=20, lr=0.01, batch_size=128, weight_init="he_uniform", alpha=0.75,
                    hidden=[4000, 1000, 4000]),
}
_SEED_SOURCES = {
    **{k: _TABLE7 for k in ("epsilon", "lr", "batch_size", "weight_init", "alpha")},
    "hidden": _TABLE2, "activation": "seed 004 (All-ReLU)", "momentum": _TEXT,
    "dropout": _TEXT, "lr_schedule": _TEXT + " (fixed learning rate)", "ip_start": _TEXT,
    "epochs": "seed 004, Table 2 (500 epochs)",
    "weight_decay": "SET code (seed 004 gives no value)",
    "zeta": "SET, Mocanu et al. 2018 (seed 004's value is lost in the text)",
    "ip_every": "aac-sparse default (not in seed 004)",
    "ip_percentile": "aac-sparse default (not in seed 004)",
    **{k: "SET (Mocanu et al. 2018), which seed 004 trains" for k in _SET_COMPONENTS},
}
PRESET_DESCRIPTIONS: dict[str, str] = {
    "set": "SET (Mocanu et al. 2018) with the shared training settings",
    "rigl": "RigL (Evci et al. 2020) with the shared training settings",
    "set-allrelu-ip": "SET + All-ReLU + Importance Pruning with seed 004's Leukemia row, "
                      "for any dataset",
}
# where each value of a preset comes from; settings not listed are the presets' own
# components (see the comments above) or TrainConfig defaults
PRESET_SOURCES: dict[str, dict[str, str]] = {}
for _data, _values in _SEED_DATASETS.items():
    for _ip in (False, True):
        _name = f"set-allrelu{'-ip' if _ip else ''}@{_data}"
        PRESETS[_name] = dict(
            **_SET_COMPONENTS, activation="all_relu", dropout=0.3, momentum=0.9,
            weight_decay=0.0002, lr_schedule="constant", epochs=500, **_values,
            importance_pruning=_ip, **(dict(ip_start=200, ip_every=10, ip_percentile=10.0)
                                       if _ip else {}))
        PRESET_DESCRIPTIONS[_name] = (f"seed 004's {_data} settings: SET + All-ReLU"
                                      f"{' + Importance Pruning' if _ip else ''}")
        PRESET_SOURCES[_name] = {k: v for k, v in _SEED_SOURCES.items()
                                 if k in PRESETS[_name]}


def preset_config(name: str, **overrides) -> TrainConfig:
    """A preset's configuration with ``overrides`` applied on top."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})
