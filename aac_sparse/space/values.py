"""The one conversion between the values a trial store holds and each configurator's own
representation of a configuration.

The store keeps a configuration as plain JSON values of its *active* parameters (an
ordinal ``batch_size`` is the integer 256, a categorical ``regrow`` the string ``random``).
ConfigSpace (SMAC) wants a validated ``Configuration``; Optuna keeps categorical and
ordinal parameters as the string labels the generated ``suggest()`` offers and does not
see constants.  Resume replays stored configurations into a configurator through these
functions, so a value that went out as a label comes back as the value it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _choices(hp) -> list[Any] | None:
    from ConfigSpace import CategoricalHyperparameter, OrdinalHyperparameter

    if isinstance(hp, CategoricalHyperparameter):
        return [_plain(v) for v in hp.choices]
    if isinstance(hp, OrdinalHyperparameter):
        return [_plain(v) for v in hp.sequence]
    return None


def _match(hp, value: Any) -> Any:
    """``value`` as the member of ``hp``'s choices it equals (JSON turns 1.0 into 1 and
    tuples into lists; the choice itself is what ConfigSpace compares against)."""
    choices = _choices(hp)
    if choices is None:
        return _plain(value)
    for c in choices:
        if c == value and type(c) is type(value):
            return c
    for c in choices:
        if c == value and not isinstance(c, bool) and not isinstance(value, bool):
            return c
    raise ValueError(f"{value!r} is not a value of parameter {hp.name!r} "
                     f"(its values: {choices})")


def space_values(cs, values: Mapping[str, Any]) -> dict[str, Any]:
    """The space's parameters among ``values`` (store values: fixed training settings that
    are not parameters of ``cs`` are dropped), each as the domain member it stands for."""
    return {k: _match(cs[k], v) for k, v in values.items() if k in cs}


def to_configuration(cs, values: Mapping[str, Any]):
    """A validated ConfigSpace ``Configuration`` of ``cs`` from store values."""
    from ConfigSpace import Configuration

    return Configuration(cs, values=space_values(cs, values))


def from_configuration(config) -> dict[str, Any]:
    """Store values (plain Python scalars) of a ConfigSpace ``Configuration``."""
    return {k: _plain(v) for k, v in dict(config).items()}


def to_optuna(cs, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters Optuna samples for ``values`` in its own representation: numbers as
    they are, categorical and ordinal values as their labels; constants are not sampled."""
    from ConfigSpace import Constant

    out: dict[str, Any] = {}
    for name, value in space_values(cs, values).items():
        hp = cs[name]
        if isinstance(hp, Constant):
            continue
        out[name] = str(value) if _choices(hp) is not None else value
    return out


def from_optuna(cs, params: Mapping[str, Any]) -> dict[str, Any]:
    """Store values of the configuration whose Optuna parameters are ``params``: what the
    generated ``suggest()`` returns for a trial fixed to them (labels mapped back, active
    constants added)."""
    import optuna

    from .export import optuna_suggest

    return optuna_suggest(cs)(optuna.trial.FixedTrial(dict(params)))
