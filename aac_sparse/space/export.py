"""Export a ConfigSpace space to other tools: ConfigSpace JSON/YAML, PCS, irace, Optuna.

Everything here is generic: it takes any ``ConfigurationSpace`` with float, integer,
categorical, ordinal and constant parameters, equality / inequality / membership /
greater-than / less-than conditions and their conjunctions, and equality / membership
forbidden clauses and their conjunctions.  What a format cannot express raises a
``ValueError`` naming the parameter or clause.

The Optuna export is Python source of a define-by-run ``suggest(trial) -> dict``;
:func:`optuna_suggest` executes that same source, so the standalone file and the function
used by aac-sparse sample identically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import optuna
from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    Constant,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)
from ConfigSpace.conditions import (
    AndConjunction,
    EqualsCondition,
    GreaterThanCondition,
    InCondition,
    LessThanCondition,
    NotEqualsCondition,
    OrConjunction,
)
from ConfigSpace.forbidden import (
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    ForbiddenInClause,
)

from .formats import FORMATS  # noqa: F401 - re-exported for callers


class ForbiddenConfiguration(optuna.TrialPruned):
    """The sampled parameters hit a forbidden clause: discard this trial, ask again."""


def export_space(cs: ConfigurationSpace, fmt: str) -> str:
    """The space in format ``fmt`` (one of :data:`FORMATS`) as text."""
    writers: dict[str, Callable[[ConfigurationSpace], str]] = {
        "configspace-json": to_configspace_json, "configspace-yaml": to_configspace_yaml,
        "pcs": to_pcs, "irace": to_irace, "irace4": to_irace4, "optuna": to_optuna_source,
    }
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return writers[fmt](cs)


# -- ConfigSpace's own formats -----------------------------------------------------------

def to_configspace_json(cs: ConfigurationSpace) -> str:
    """ConfigSpace's JSON (read back with ``ConfigurationSpace.from_serialized_dict``)."""
    return json.dumps(cs.to_serialized_dict(), indent=2) + "\n"


def to_configspace_yaml(cs: ConfigurationSpace) -> str:
    """ConfigSpace's serialised dict as YAML."""
    import yaml

    return yaml.safe_dump(cs.to_serialized_dict(), sort_keys=False)


# -- helpers shared by the text formats ------------------------------------------------

def _order(cs: ConfigurationSpace) -> list[str]:
    """Parameter names with every parent before its children (stable otherwise)."""
    names = list(cs.keys())
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in seen:
            return
        if name in path:
            raise ValueError(f"conditions form a cycle through {name!r}")
        parents = [getattr(p, "name", p) for p in cs.parents_of[name]]
        for parent in sorted(parents, key=names.index):
            visit(parent, (*path, name))
        seen.add(name)
        done.append(name)

    for name in names:
        visit(name)
    return done


def _condition(cs: ConfigurationSpace, name: str):
    conds = cs.parent_conditions_of[name]
    if not conds:
        return None
    if len(conds) > 1:
        return AndConjunction(*conds)
    return conds[0]


def _leaves(cond) -> list:
    if isinstance(cond, AndConjunction | OrConjunction):
        return [leaf for c in cond.components for leaf in _leaves(c)]
    return [cond]


def _forbidden_leaves(clause) -> list:
    if isinstance(clause, ForbiddenAndConjunction):
        out = []
        for c in clause.components:
            out += _forbidden_leaves(c)
        return out
    if isinstance(clause, ForbiddenEqualsClause | ForbiddenInClause):
        return [clause]
    raise ValueError(f"forbidden clause {clause} cannot be exported (only equality and "
                     "membership clauses and their conjunctions)")


def _number(x: float) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def _render(cond, syntax: dict[str, Callable[..., str]]) -> str:
    """A condition in one format: ``syntax`` maps and/or to a joiner of rendered parts and
    ==, !=, in, >, < to ``(parent_name, value_or_values, condition) -> text``."""
    if isinstance(cond, AndConjunction | OrConjunction):
        parts = [_render(c, syntax) for c in cond.components]
        return syntax["and" if isinstance(cond, AndConjunction) else "or"](parts)
    for kind, key in ((EqualsCondition, "=="), (NotEqualsCondition, "!="), (InCondition, "in"),
                      (GreaterThanCondition, ">"), (LessThanCondition, "<")):
        if isinstance(cond, kind):
            value = cond.values if key == "in" else cond.value
            return syntax[key](cond.parent.name, value, cond)
    raise ValueError(f"condition {cond} cannot be exported ({type(cond).__name__})")


# -- PCS ("new" format, as read by ConfigSpace's pcs_new and SMAC) ------------------------

def to_pcs(cs: ConfigurationSpace) -> str:
    """The space in PCS (AClib's "new" format)."""
    lines = [_pcs_param(cs[name]) for name in _order(cs)]
    conds = [(name, _condition(cs, name)) for name in _order(cs)]
    cond_lines = [f"{name} | {_render(c, _PCS)}" for name, c in conds if c is not None]
    forb_lines = []
    for clause in cs.forbidden_clauses:
        forb_lines += _pcs_forbidden(clause)
    out = "\n".join(lines) + "\n"
    if cond_lines:
        out += "\n" + "\n".join(cond_lines) + "\n"
    if forb_lines:
        out += "\n" + "\n".join(forb_lines) + "\n"
    return out


def _pcs_param(hp) -> str:
    if isinstance(hp, UniformFloatHyperparameter):
        log = "log" if hp.log else ""
        return (f"{hp.name} real [{_number(float(hp.lower))}, {_number(float(hp.upper))}] "
                f"[{_number(float(hp.default_value))}]{log}")
    if isinstance(hp, UniformIntegerHyperparameter):
        log = "log" if hp.log else ""
        return f"{hp.name} integer [{hp.lower}, {hp.upper}] [{hp.default_value}]{log}"
    if isinstance(hp, CategoricalHyperparameter):
        return (f"{hp.name} categorical {{{', '.join(map(str, hp.choices))}}} "
                f"[{hp.default_value}]")
    if isinstance(hp, OrdinalHyperparameter):
        return (f"{hp.name} ordinal {{{', '.join(map(str, hp.sequence))}}} "
                f"[{hp.default_value}]")
    if isinstance(hp, Constant):
        return f"{hp.name} categorical {{{hp.value}}} [{hp.value}]"
    raise ValueError(f"parameter {hp.name!r} ({type(hp).__name__}) cannot be written as PCS")


_PCS: dict[str, Callable[..., str]] = {
    "and": " && ".join, "or": " || ".join,
    "==": lambda p, v, c: f"{p} == {v}", "!=": lambda p, v, c: f"{p} != {v}",
    "in": lambda p, vs, c: f"{p} in {{{', '.join(map(str, vs))}}}",
    ">": lambda p, v, c: f"{p} > {v}", "<": lambda p, v, c: f"{p} < {v}",
}


def _pcs_forbidden(clause) -> list[str]:
    """PCS forbids only equality conjunctions: membership clauses are expanded."""
    options: list[list[tuple[str, Any]]] = [[]]
    for leaf in _forbidden_leaves(clause):
        values = leaf.values if isinstance(leaf, ForbiddenInClause) else [leaf.value]
        options = [o + [(leaf.hyperparameter.name, v)] for o in options for v in values]
    return ["{" + ", ".join(f"{n}={v}" for n, v in o) + "}" for o in options]


# -- irace -------------------------------------------------------------------------------

def to_irace(cs: ConfigurationSpace) -> str:
    """An irace parameters file that irace 3 and irace >= 4 both read: no sections.

    irace 3 has no ``[forbidden]``/``[global]`` sections, so the forbidden expressions go
    to their own file (:func:`to_irace_forbidden`, the scenario's ``forbiddenFile``) and the
    precision to the scenario (``digits``, see :func:`to_irace_scenario`): without it irace
    rounds a bound such as 1e-06 to 0 and rejects a log-scaled domain.
    Reals and integers keep their log scale (``r,log``, ``i,log``); categorical, ordinal
    and constant values are quoted strings (a constant is a one-value categorical, which
    irace treats as fixed); conditions are R expressions after ``|``.
    """
    return "\n".join(_irace_lines(cs, "irace 3 and >= 4; forbidden expressions and "
                                       "digits are in the scenario files")) + "\n"


def to_irace4(cs: ConfigurationSpace) -> str:
    """The parameters file in irace >= 4's sectioned form (``[forbidden]``, ``[global]``
    with ``digits``): one self-contained file, which irace 3 cannot read."""
    lines = _irace_lines(cs, "irace >= 4.0")
    forbidden = to_irace_forbidden(cs)
    if forbidden:
        lines += ["", "[forbidden]", *forbidden.splitlines()]
    lines += ["", "[global]", f"digits = {_irace_digits(cs)}"]
    return "\n".join(lines) + "\n"


def _irace_lines(cs: ConfigurationSpace, which: str) -> list[str]:
    rows = []
    for name in _order(cs):
        hp = cs[name]
        kind, domain = _irace_domain(hp)
        cond = _condition(cs, name)
        rows.append((name, f'"--{name}="', kind, domain,
                     f"| {_render(cond, _IRACE)}" if cond is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"# aac-sparse configuration space {cs.name} for irace ({which})",
             "# name  switch  type  values  [| condition (R syntax)]"]
    lines += [" ".join(r[i].ljust(widths[i]) for i in range(4)).rstrip() + (f" {r[4]}" if r[4]
                                                                           else "")
              for r in rows]
    return lines


def to_irace_scenario(cs: ConfigurationSpace, stem: str) -> str:
    """The lines of an irace scenario file that go with :func:`to_irace`'s files named
    ``<stem>.irace.txt``, ``<stem>.irace-forbidden.txt`` and ``<stem>.irace-default.txt``."""
    lines = [f"# irace scenario settings for the aac-sparse space {cs.name} (irace 3 and 4)",
             f'parameterFile = "{stem}.irace.txt"',
             f'configurationsFile = "{stem}.irace-default.txt"',
             f"digits = {_irace_digits(cs)}"]
    if cs.forbidden_clauses:
        lines.append(f'forbiddenFile = "{stem}.irace-forbidden.txt"')
    return "\n".join(lines) + "\n"


def irace_files(cs: ConfigurationSpace, stem: str) -> dict[str, str]:
    """Every file irace needs for ``cs``: parameters, forbidden expressions (if any), the
    default configuration and the scenario lines naming them; name -> text."""
    files = {f"{stem}.irace.txt": to_irace(cs),
             f"{stem}.irace-default.txt": to_irace_default_configuration(cs),
             f"{stem}.irace-scenario.txt": to_irace_scenario(cs, stem)}
    if cs.forbidden_clauses:
        files[f"{stem}.irace-forbidden.txt"] = to_irace_forbidden(cs)
    return files


def _q(v: Any) -> str:
    return '"' + str(v).replace('"', '\\"') + '"'


def _irace_domain(hp) -> tuple[str, str]:
    if isinstance(hp, UniformFloatHyperparameter):
        return ("r,log" if hp.log else "r",
                f"({_number(float(hp.lower))}, {_number(float(hp.upper))})")
    if isinstance(hp, UniformIntegerHyperparameter):
        return ("i,log" if hp.log else "i", f"({hp.lower}, {hp.upper})")
    if isinstance(hp, CategoricalHyperparameter):
        return "c", "(" + ", ".join(_q(c) for c in hp.choices) + ")"
    if isinstance(hp, OrdinalHyperparameter):
        return "o", "(" + ", ".join(_q(c) for c in hp.sequence) + ")"
    if isinstance(hp, Constant):
        return "c", f"({_q(hp.value)})"
    raise ValueError(f"parameter {hp.name!r} ({type(hp).__name__}) cannot be written for irace")


def _irace_value(cond_or_clause, value: Any) -> str:
    hp = getattr(cond_or_clause, "parent", None) or cond_or_clause.hyperparameter
    if isinstance(hp, UniformFloatHyperparameter | UniformIntegerHyperparameter):
        return _number(value)
    return _q(value)


_IRACE: dict[str, Callable[..., str]] = {
    "and": lambda parts: " & ".join(f"({x})" for x in parts),
    "or": lambda parts: " | ".join(f"({x})" for x in parts),
    "==": lambda p, v, c: f"{p} == {_irace_value(c, v)}",
    "!=": lambda p, v, c: f"{p} != {_irace_value(c, v)}",
    "in": lambda p, vs, c: f"{p} %in% c({', '.join(_irace_value(c, v) for v in vs)})",
    ">": lambda p, v, c: f"{p} > {_number(v)}", "<": lambda p, v, c: f"{p} < {_number(v)}",
}


def to_irace_forbidden(cs: ConfigurationSpace) -> str:
    """irace's forbidden expressions, one per line (the ``[forbidden]`` section)."""
    lines = []
    for clause in cs.forbidden_clauses:
        parts = []
        for leaf in _forbidden_leaves(clause):
            n = leaf.hyperparameter.name
            if isinstance(leaf, ForbiddenInClause):
                vals = ", ".join(_irace_value(leaf, v) for v in leaf.values)
                parts.append(f"({n} %in% c({vals}))")
            else:
                parts.append(f"({n} == {_irace_value(leaf, leaf.value)})")
        lines.append(" & ".join(parts))
    return "\n".join(lines) + ("\n" if lines else "")


def to_irace_default_configuration(cs: ConfigurationSpace) -> str:
    """irace's configurations file holding the default (``NA`` where inactive)."""
    names = _order(cs)
    default = cs.get_default_configuration()
    values = [str(default[n]) if n in default else "NA" for n in names]
    return " ".join(names) + "\n" + " ".join(values) + "\n"


def _irace_digits(cs: ConfigurationSpace) -> int:
    """Decimal places irace needs to tell every real bound apart (at least its default 4)."""
    digits = 4
    for hp in cs.values():
        if isinstance(hp, UniformFloatHyperparameter):
            for bound in (hp.lower, hp.upper):
                if bound > 0:
                    digits = max(digits, int(math.ceil(-math.log10(bound))) + 2)
    return min(digits, 15)


def parse_irace_parameters(text: str) -> list[dict[str, Any]]:
    """Read the parameter lines of an irace parameters file (what :func:`to_irace` writes):
    name, switch, type, log flag, domain values (strings unquoted) and condition."""
    import shlex

    params = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            break  # [forbidden] / [global] sections follow the parameters
        body, _, condition = line.partition("|")
        lexer = shlex.shlex(body, posix=True)
        lexer.whitespace_split = True
        lexer.whitespace = " \t"
        tokens = list(lexer)
        name, switch, kind = tokens[0], tokens[1], tokens[2]
        domain_text = body[body.index("(", body.index(kind)):]
        if not domain_text.rstrip().endswith(")"):
            raise ValueError(f"irace line without a closing ')' for the domain: {raw!r}")
        inner = domain_text.strip()[1:-1]
        values = [v.strip().strip('"') for v in inner.split(",")]
        base, _, flag = kind.partition(",")
        if base not in ("r", "i", "c", "o") or flag not in ("", "log"):
            raise ValueError(f"unknown irace type {kind!r} in {raw!r}")
        params.append({"name": name, "switch": switch, "type": base, "log": flag == "log",
                       "values": values, "condition": condition.strip()})
    return params


# -- Optuna ------------------------------------------------------------------------------

def to_optuna_source(cs: ConfigurationSpace) -> str:
    """Python source of a standalone module with ``suggest(trial) -> dict``.

    Parents are suggested before children and only active parameters are suggested;
    categorical and ordinal values go to Optuna as strings (Optuna keeps the distribution
    of a name fixed) and are mapped back to their original values; constants are returned
    without a suggestion.  A forbidden combination raises ``ForbiddenConfiguration`` (a
    ``TrialPruned``): tell the trial as pruned and ask again.
    """
    body = []
    for name in _order(cs):
        hp = cs[name]
        cond = _condition(cs, name)
        indent = "    "
        if cond is not None:
            body.append(f"    if {_render(cond, _PYTHON)}:")
            indent = "        "
        body.append(indent + f"p[{name!r}] = {_py_suggest(hp)}")
    for clause in cs.forbidden_clauses:
        test = " and ".join(_py_forbidden(leaf) for leaf in _forbidden_leaves(clause))
        body.append(f"    if {test}:")
        body.append(f"        raise ForbiddenConfiguration({str(clause)!r})")
    return (
        f'"""Optuna search space generated by aac-sparse from the ConfigSpace space '
        f'{cs.name!r}.\n\nUse: ``params = suggest(trial)`` inside an objective, or with '
        f'study.ask().\n"""\n\n'
        "import optuna\n\n\n"
        "class ForbiddenConfiguration(optuna.TrialPruned):\n"
        '    """A forbidden combination was sampled: tell the trial as pruned, ask again."""\n'
        "\n\n"
        "def suggest(trial):\n"
        '    """Sample one configuration; only active parameters are suggested."""\n'
        "    p = {}\n" + "\n".join(body) + "\n    return p\n"
    )


def _py_suggest(hp) -> str:
    n = hp.name
    if isinstance(hp, UniformFloatHyperparameter):
        return (f"trial.suggest_float({n!r}, {float(hp.lower)!r}, {float(hp.upper)!r}, "
                f"log={bool(hp.log)})")
    if isinstance(hp, UniformIntegerHyperparameter):
        return f"trial.suggest_int({n!r}, {int(hp.lower)}, {int(hp.upper)}, log={bool(hp.log)})"
    if isinstance(hp, CategoricalHyperparameter | OrdinalHyperparameter):
        values = list(hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence)
        mapping = "{" + ", ".join(f"{str(v)!r}: {_py_literal(v)}" for v in values) + "}"
        labels = "[" + ", ".join(repr(str(v)) for v in values) + "]"
        return f"{mapping}[trial.suggest_categorical({n!r}, {labels})]"
    if isinstance(hp, Constant):
        return _py_literal(hp.value)
    raise ValueError(f"parameter {n!r} ({type(hp).__name__}) cannot be exported to Optuna")


def _py_literal(v: Any) -> str:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool | int | float | str) or v is None:
        return repr(v)
    raise ValueError(f"value {v!r} cannot be exported to Optuna")


_PYTHON: dict[str, Callable[..., str]] = {
    "and": lambda parts: "(" + " and ".join(parts) + ")",
    "or": lambda parts: "(" + " or ".join(parts) + ")",
    "==": lambda p, v, c: f"({p!r} in p and p[{p!r}] == {_py_literal(v)})",
    "!=": lambda p, v, c: f"({p!r} in p and p[{p!r}] != {_py_literal(v)})",
    "in": lambda p, vs, c: f"({p!r} in p and p[{p!r}] in "
                           f"({', '.join(_py_literal(v) for v in vs)},))",
    ">": lambda p, v, c: f"({p!r} in p and p[{p!r}] > {_py_literal(v)})",
    "<": lambda p, v, c: f"({p!r} in p and p[{p!r}] < {_py_literal(v)})",
}


def _py_forbidden(leaf) -> str:
    n = repr(leaf.hyperparameter.name)
    if isinstance(leaf, ForbiddenInClause):
        values = ", ".join(_py_literal(v) for v in leaf.values)
        return f"p.get({n}, object()) in ({values},)"
    return f"p.get({n}, object()) == {_py_literal(leaf.value)}"


def optuna_suggest(cs: ConfigurationSpace) -> Callable[[optuna.trial.BaseTrial], dict]:
    """A define-by-run function sampling ``cs`` (the code :func:`to_optuna_source` writes).

    Forbidden combinations raise this module's :class:`ForbiddenConfiguration`.
    """
    namespace: dict[str, Any] = {}
    exec(compile(to_optuna_source(cs), f"<optuna space {cs.name}>", "exec"), namespace)
    namespace["ForbiddenConfiguration"] = ForbiddenConfiguration
    return namespace["suggest"]
