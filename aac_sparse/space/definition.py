"""The configuration spaces of the SET+RigL meta-algorithm: one table, three spaces.

:data:`PARAMETERS` is the single source of truth: every tunable choice of the trainer with
its domain, scale, condition and one-line meaning.  A space is that table with some
parameters free and the others fixed to a preset's value:

* ``meta``  — everything free; default: the ``set`` preset.
* ``set``   — SET's own choices (ζ, ε, update period) and the shared training settings free;
  SET's components fixed.  Default: the ``set`` preset.
* ``rigl``  — RigL's own choices (ζ and its decay, ΔT, t_end, density) and the shared
  training settings free; RigL's components fixed.  Default: the ``rigl`` preset.

Fixed parameters appear as constants; a parameter whose condition a constant makes
unsatisfiable is left out, and a condition a constant always satisfies is dropped, so
inactive parameters are really inactive.  :func:`to_train_config` maps a configuration of
any of these spaces (plus fixed scenario settings such as ``hidden``) to the engine's
:class:`~aac_sparse.engine.config.TrainConfig`.  The files in ``spaces/`` are generated
from here (``python -m aac_sparse.space.generate``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.components import COMPONENTS
from ..errors import ConfigError

if TYPE_CHECKING:  # pydantic loads when a configuration is built, not with the space table
    from ..engine.config import TrainConfig

REGISTERED = None  # a Param's values: the tunable registered components of its kind


@dataclass(frozen=True)
class Param:
    """One tunable choice: ``kind`` is float, int, cat or ordinal.

    A component's choices (``values=REGISTERED``) and a condition on a component's trait
    (``when`` a callable) are read from the component registry when a space is built, so
    a newly registered component appears in every space that frees its kind."""

    name: str
    kind: str
    values: tuple | None
    meaning: str
    log: bool = False
    parent: str | None = None  # active only when ``parent`` takes one of ``when``
    condition: tuple | Callable[[], tuple] = ()

    @property
    def domain(self) -> tuple:
        if self.values is REGISTERED:
            return COMPONENTS.names(self.name, tunable_only=True)
        return self.values

    @property
    def when(self) -> tuple:
        return self.condition() if callable(self.condition) else self.condition

    def value_meanings(self) -> dict[str, str]:
        """One line per value of a component choice (empty for other parameters)."""
        if self.values is not REGISTERED:
            return {}
        return {n: COMPONENTS.meaning(self.name, n) for n in self.domain}


def _density_uses(what: str) -> Callable[[], tuple]:
    """The density distributions whose trait ``uses`` is ``what`` (epsilon or density)."""
    return lambda: tuple(e.name for e in COMPONENTS.entries("density_distribution")
                         if e.traits.get("uses") == what)


PARAMETERS: tuple[Param, ...] = (
    # -- topology evolution: the SET / RigL components ---------------------------------
    Param("prune", "cat", REGISTERED,
          "prune criterion: SET's per-sign smallest/largest, or smallest |w| (RigL)"),
    Param("regrow", "cat", REGISTERED,
          "regrowth: uniform at random (SET), largest |dL/dw| (RigL), or the top of "
          "sampled candidates"),
    Param("regrow_candidates", "float", (2.0, 100.0),
          "candidates scored per regrown connection (gradient_sampled)", True,
          "regrow", ("gradient_sampled",)),
    Param("regrow_init", "cat", REGISTERED,
          "weights of regrown connections: drawn like the initial weights, or zero (RigL)"),
    Param("update_schedule", "cat", REGISTERED,
          "topology updates after epochs (SET) or after optimizer steps (RigL)"),
    Param("update_every_epochs", "int", (1, 10), "epochs between topology updates", False,
          "update_schedule", ("epoch",)),
    Param("update_every_steps", "int", (10, 2000),
          "optimizer steps between topology updates (RigL's delta T)", True,
          "update_schedule", ("steps",)),
    Param("update_end", "float", (0.3, 1.0),
          "fraction of training after which the topology stays fixed (RigL's t_end)"),
    Param("zeta", "float", (0.02, 0.6), "fraction of a layer's connections replaced per update",
          True),
    Param("zeta_decay", "cat", REGISTERED,
          "drop fraction over training: constant (SET), cosine to 0 at t_end (RigL), linear"),
    Param("evolve_layers", "cat", ("all", "hidden"),
          "layers whose topology evolves: all sparse layers, or all but the output layer"),
    # -- sparsity and initialisation ---------------------------------------------------
    Param("density_distribution", "cat", REGISTERED,
          "how connections are spread over layers: Erdős–Rényi (SET), ERK (RigL), uniform"),
    Param("epsilon", "float", (1.0, 100.0), "Erdős–Rényi sparsity parameter (higher: denser)",
          True, "density_distribution", _density_uses("epsilon")),
    Param("density", "float", (0.005, 0.5), "overall density of the network (erk, uniform)",
          True, "density_distribution", _density_uses("density")),
    Param("weight_init", "cat", REGISTERED, "initial weight distribution"),
    # -- activation and neuron pruning -------------------------------------------------
    Param("activation", "cat", REGISTERED,
          "hidden activation; All-ReLU alternates the sign of its left slope per layer"),
    Param("alpha", "float", (0.01, 0.9), "left slope of leaky_relu / all_relu", False,
          "activation", ("leaky_relu", "all_relu")),
    Param("importance_pruning", "cat", ("off", "on"),
          "remove hidden neurons of low strength during training (Importance Pruning)"),
    Param("ip_start_fraction", "float", (0.1, 0.9),
          "fraction of training at which importance pruning starts", False,
          "importance_pruning", ("on",)),
    Param("ip_every", "int", (1, 50), "epochs between importance-pruning steps", True,
          "importance_pruning", ("on",)),
    Param("ip_percentile", "float", (1.0, 40.0),
          "percentile of neuron strength below which neurons are removed", False,
          "importance_pruning", ("on",)),
    # -- optimisation (shared by every algorithm) --------------------------------------
    Param("lr", "float", (1e-4, 0.5), "learning rate of SGD with momentum", True),
    Param("momentum", "float", (0.0, 0.99), "momentum of SGD"),
    Param("weight_decay", "float", (1e-6, 1e-2), "L2 weight decay", True),
    Param("batch_size", "ordinal", (16, 32, 64, 128, 256), "mini-batch size"),
    Param("dropout", "float", (0.0, 0.6), "dropout rate on hidden activations"),
    Param("epochs", "int", (5, 500), "training epochs (a tuning budget overrides it)", True),
    Param("lr_schedule", "cat", REGISTERED,
          "learning-rate schedule over training"),
    Param("lr_final_fraction", "float", (0.0, 0.5),
          "final learning rate as a fraction of lr (cosine, linear)", False,
          "lr_schedule", ("cosine", "linear")),
    # -- data-parallel training (only in a space whose scenario fixes 'workers') --------
    Param("parallel", "cat", ("none", "wassp", "wasap"),
          "data-parallel strategy over MPI: sequential, synchronous (WASSP-SGD) or "
          "asynchronous parameter server (WASAP-SGD)"),
    Param("phase2_from", "float", (0.5, 1.0), "fraction of training after which phase 2 "
          "(local training, then sparse weight averaging) begins; 1 = none", False,
          "parallel", ("wassp", "wasap")),
    Param("sync_every", "int", (0, 500), "phase 2: local steps between weight-averaging "
          "syncs (0 = only the final averaging)", False, "parallel", ("wassp", "wasap")),
    Param("averaging", "cat", ("swa", "final"), "phase 2 result: running mean of the "
          "syncs' averages, or the last average", False, "parallel", ("wassp", "wasap")),
    Param("phase2_topology", "cat", ("evolve", "frozen"), "phase 2: workers evolve their "
          "own topologies or keep phase 1's", False, "parallel", ("wassp", "wasap")),
    Param("warmup_epochs", "int", (0, 10), "WASSP: epochs of gradual learning-rate warm-up "
          "to workers x lr", False, "parallel", ("wassp",)),
)
# The parallel group is tuned only where a scenario gives each trial workers (fixed
# 'workers: k'); elsewhere it is left out, so existing spaces and scenarios are unchanged.
PARALLEL = ("parallel", "phase2_from", "sync_every", "averaging", "phase2_topology",
            "warmup_epochs")
WORKERS = "workers"  # a fixed setting, not a parameter: MPI workers per trial
BY_NAME = {p.name: p for p in PARAMETERS}

SHARED = ("lr", "momentum", "weight_decay", "batch_size", "dropout", "epochs", "lr_schedule",
          "lr_final_fraction", "weight_init")


@dataclass(frozen=True)
class SpaceSpec:
    """Which parameters a space frees; all others are fixed to ``preset``'s values."""

    name: str
    preset: str
    free: tuple[str, ...]
    description: str
    forbidden: tuple[tuple[tuple[str, str], ...], ...] = field(default=())


# Random regrowth at exactly zero weight gives a connection no gradient evidence and no
# weight; under SET's rule and magnitude pruning it is first in line for removal.  Zero
# init is motivated (Evci et al.) only for gradient-chosen connections.
_NO_RANDOM_AT_ZERO = (("regrow", "random"), ("regrow_init", "zero"))

SPACES: dict[str, SpaceSpec] = {
    "meta": SpaceSpec("meta", "set", tuple(p.name for p in PARAMETERS),
                      "every component of the SET+RigL meta-algorithm",
                      (_NO_RANDOM_AT_ZERO,)),
    "set": SpaceSpec("set", "set", ("zeta", "epsilon", "update_every_epochs", *SHARED),
                     "SET (Mocanu et al. 2018): its own choices and the shared training "
                     "settings"),
    "rigl": SpaceSpec("rigl", "rigl", ("zeta", "zeta_decay", "update_every_steps",
                                       "update_end", "density", *SHARED),
                      "RigL (Evci et al. 2020): its own choices and the shared training "
                      "settings"),
}


def preset_values(preset: str) -> dict[str, Any]:
    """A preset in the space's vocabulary (``importance_pruning`` on/off, IP start as a
    fraction of training)."""
    from ..engine.config import PRESETS, TrainConfig

    cfg = TrainConfig(**PRESETS[preset]).model_dump()
    values = {p.name: cfg[p.name] for p in PARAMETERS if p.name in cfg}
    values["importance_pruning"] = "on" if cfg["importance_pruning"] else "off"
    values["ip_start_fraction"] = min(0.9, max(0.1, cfg["ip_start"] / cfg["epochs"]))
    if values.get("density") is None:
        values["density"] = 0.1
    values.update(parallel="none", phase2_from=1.0, sync_every=0, averaging="swa",
                  phase2_topology="evolve", warmup_epochs=5)
    return values


def get_space(name: str, fixed: Mapping[str, Any] | None = None):
    """The ConfigSpace ``ConfigurationSpace`` called ``name`` (meta, set or rigl).

    ``fixed`` takes parameters out of the search: they become constants with the given
    values (a scenario's ``fixed:`` settings).
    """
    from ConfigSpace import ConfigurationSpace

    spec = SPACES.get(name)
    if spec is None:
        raise ConfigError(f"unknown space {name!r}; choose one of {', '.join(SPACES)} "
                          "or give a ConfigSpace JSON file")
    defaults = preset_values(spec.preset)
    fixed_settings = fixed
    user = {k: v for k, v in (fixed or {}).items() if k in BY_NAME}
    fixed = {n: v for n, v in defaults.items() if n not in spec.free and n not in PARALLEL}
    fixed.update(user)
    cs = ConfigurationSpace(name=f"aac-sparse-{name}",
                            meta={"description": spec.description, "preset": spec.preset})
    included: dict[str, Any] = {}
    for p in PARAMETERS:
        if p.name in PARALLEL and WORKERS not in (fixed_settings or {}):
            continue
        if p.parent is not None and p.parent in fixed and fixed[p.parent] not in p.when:
            continue  # a constant makes this parameter inactive for good
        hp = _constant(p, fixed[p.name]) if p.name in fixed else _hyperparameter(p, defaults)
        cs.add(hp)
        included[p.name] = hp
    conditions = []
    for p in PARAMETERS:
        if p.name in included and p.parent is not None and p.parent not in fixed:
            conditions.append(_condition(included[p.name], included[p.parent], p.when))
    cs.add(conditions)
    cs.add([_forbidden(included, clause) for clause in spec.forbidden
            if all(n in included and n not in fixed for n, _ in clause)])
    return cs


def _hyperparameter(p: Param, defaults: Mapping[str, Any]):
    from ConfigSpace import (
        CategoricalHyperparameter,
        OrdinalHyperparameter,
        UniformFloatHyperparameter,
        UniformIntegerHyperparameter,
    )

    meta = {"meaning": p.meaning}
    default = defaults[p.name]
    if p.kind == "float":
        lo, hi = p.domain
        return UniformFloatHyperparameter(p.name, lo, hi, default_value=float(default),
                                          log=p.log, meta=meta)
    if p.kind == "int":
        lo, hi = p.domain
        return UniformIntegerHyperparameter(p.name, lo, hi, default_value=int(default),
                                            log=p.log, meta=meta)
    if p.kind == "ordinal":
        return OrdinalHyperparameter(p.name, list(p.domain), default_value=default, meta=meta)
    if p.value_meanings():
        meta["values"] = p.value_meanings()
    return CategoricalHyperparameter(p.name, list(p.domain), default_value=default, meta=meta)


def _constant(p: Param, value: Any):
    from ConfigSpace import Constant

    return Constant(p.name, value, meta={"meaning": p.meaning + " (fixed)"})


def _condition(child, parent, when: tuple):
    from ConfigSpace import EqualsCondition, InCondition

    if len(when) == 1:
        return EqualsCondition(child, parent, when[0])
    return InCondition(child, parent, list(when))


def _forbidden(included: Mapping[str, Any], clause):
    from ConfigSpace import ForbiddenAndConjunction, ForbiddenEqualsClause

    return ForbiddenAndConjunction(*(ForbiddenEqualsClause(included[n], v) for n, v in clause))


def to_train_config(values: Mapping[str, Any], fixed: Mapping[str, Any] | None = None,
                    epochs: int | None = None) -> TrainConfig:
    """A configuration of any space (active parameters only is fine) plus ``fixed``
    settings (e.g. ``hidden``, ``seed``) as a validated :class:`TrainConfig`.

    ``epochs`` (a tuning budget) overrides the configuration's own epochs; importance
    pruning starts at ``ip_start_fraction`` of the epochs actually trained.
    """
    from ..engine.config import TrainConfig

    merged = {**(fixed or {}), **dict(values)}
    out: dict[str, Any] = {k: v for k, v in merged.items()
                           if k not in ("importance_pruning", "ip_start_fraction", WORKERS,
                                        *PARALLEL)}
    if "importance_pruning" in merged:
        ip = merged["importance_pruning"]
        out["importance_pruning"] = ip if isinstance(ip, bool) else ip == "on"
    if epochs is not None:
        out["epochs"] = int(epochs)
    n_epochs = int(out.get("epochs", TrainConfig.model_fields["epochs"].default))
    if "ip_start_fraction" in merged:
        out["ip_start"] = max(1, round(float(merged["ip_start_fraction"]) * n_epochs))
    for name in ("batch_size", "update_every_epochs", "update_every_steps", "ip_every",
                 "epochs"):
        if name in out and out[name] is not None:
            out[name] = int(out[name])
    from pydantic import ValidationError

    from ..config_files import format_validation_error

    try:
        return TrainConfig(**out)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "configuration")) from exc


def to_parallel_config(values: Mapping[str, Any]):
    """The :class:`~aac_sparse.engine.parallel.ParallelConfig` of a configuration (space
    values plus fixed settings); sequential where it names no workers or no strategy."""
    from pydantic import ValidationError

    from ..config_files import format_validation_error
    from ..engine.parallel.config import ParallelConfig

    strategy = values.get("parallel", "none")
    if WORKERS not in values or strategy == "none":
        return ParallelConfig()
    settings = {k: values[k] for k in PARALLEL[1:] if k in values}
    for name in ("sync_every", "warmup_epochs"):
        if name in settings:
            settings[name] = int(settings[name])
    try:
        return ParallelConfig(strategy=strategy, workers=int(values[WORKERS]), **settings)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "configuration")) from exc


# The component groups the research questions speak of (seed 000, Q3): every parameter of
# the meta space belongs to exactly one (a test checks it).
COMPONENT_GROUPS: dict[str, tuple[str, ...]] = {
    "prune criterion": ("prune",),
    "regrow strategy": ("regrow", "regrow_init", "regrow_candidates"),
    "update schedule": ("update_schedule", "update_every_epochs", "update_every_steps",
                        "update_end", "zeta", "zeta_decay", "evolve_layers"),
    "density distribution": ("density_distribution", "density", "epsilon"),
    "activation": ("activation", "alpha"),
    "importance pruning": ("importance_pruning", "ip_every", "ip_percentile",
                           "ip_start_fraction"),
    "optimiser": ("lr", "lr_schedule", "lr_final_fraction", "momentum", "weight_decay",
                  "batch_size", "dropout", "epochs"),
    "initialisation": ("weight_init",),
    "parallel training": PARALLEL,
}


def component_group(name: str) -> str:
    """The component group of parameter ``name`` ('other' for a user's own parameter)."""
    for group, names in COMPONENT_GROUPS.items():
        if name in names:
            return group
    return "other"
