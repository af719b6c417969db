"""The one registry of the meta-algorithm's components: kind -> name -> implementation.

Each built-in component registers itself next to its implementation with
``@COMPONENTS.register(kind, name, meaning)``; the configuration (:class:`~aac_sparse.
engine.config.TrainConfig`), the trainer and the search spaces take names, meanings and
implementations from here only.  A new component is one function or class plus one
registration, in aac-sparse or in any package that declares the entry point group
``aac_sparse.components`` (so tuning workers load it too).

What an implementation of each kind is called with (see the built-ins for examples):

=====================  ==================================================================
kind                   implementation
=====================  ==================================================================
prune                  ``(w, zeta) -> bool mask`` of the connections to remove
regrow                 ``(layer, kept_keys, count, rng, signals, candidates) -> sorted
                       int64 keys`` of new connections; trait ``needs_gradient``
regrow_init            ``(rng, weight_init, n_in, n_out, count) -> float32 weights``
update_schedule        ``(step, epoch_end, epoch, every) -> bool`` (due now?); traits
                       ``when`` (``"step"``: asked after every optimizer step,
                       ``"epoch"``: after each epoch's evaluation) and ``every`` (the
                       config field giving the period)
zeta_decay             ``(zeta, progress) -> drop fraction``, progress in [0, 1]
density_distribution   ``(shapes, epsilon, density) -> density per layer``; trait
                       ``uses`` (``"epsilon"`` or ``"density"``)
weight_init            ``(rng, n_in, n_out, size) -> float32 weights``
activation             ``(hidden_index, n, alpha) -> activation`` (see ``activations``)
lr_schedule            ``(base_lr, epoch, epochs, step_every, gamma, final_fraction) ->
                       learning rate``
=====================  ==================================================================
"""

from __future__ import annotations

from ..registry import Registry

KINDS: dict[str, str] = {
    "prune": "prune criterion",
    "regrow": "regrowth strategy",
    "regrow_init": "initialisation of regrown weights",
    "update_schedule": "topology update schedule",
    "zeta_decay": "drop-fraction decay",
    "density_distribution": "density distribution",
    "weight_init": "weight initialisation",
    "activation": "activation",
    "lr_schedule": "learning-rate schedule",
}


def _builtins() -> None:
    """Import the modules whose components register on import (none imports Numba)."""
    from . import activations, densities, initialisation, pruning, regrowth, schedules  # noqa: F401


COMPONENTS = Registry("component", KINDS, _builtins, entry_point_group="aac_sparse.components")
register = COMPONENTS.register


def names(kind: str) -> tuple[str, ...]:
    """The registered names of one kind of component, in registration order."""
    return COMPONENTS.names(kind)
