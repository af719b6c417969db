"""Reading training configurations from YAML/JSON files, presets and ``key=value`` options.

Every mistake becomes a :class:`ConfigError` that names the file, the field and what is
allowed, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .engine.config import PRESETS, TrainConfig
from .errors import ConfigError

MAX_FILE_BYTES = 1_000_000
# The section of an incumbent file that says what it was tuned on (not a setting).
TUNED_ON = "tuned_on"
# The section of a settings file that says how training is computed (MPI strategy, workers).
PARALLEL_SECTION = "parallel"
MAX_NODES = 100_000  # a settings file has hundreds; an alias bomb expands to billions


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping (plain data only: no duplicate keys, no
    language-specific tags, no aliases that expand beyond :data:`MAX_NODES` nodes)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a settings file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    kind = "JSON" if path.suffix == ".json" else "YAML"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: {size} bytes; a settings file has at most "
                          f"{MAX_FILE_BYTES} bytes")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte "
                          f"0x{raw[exc.start]:02x}); save the file as UTF-8") from exc
    try:
        data = json.loads(text) if kind == "JSON" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_message(exc)}") from exc
    except _YamlRefused as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


class _YamlRefused(Exception):
    """A YAML document that parses but is not plain settings."""


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (naming both lines)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let the base class say so
                break
            if first is not None:
                raise _YamlRefused(f"line {line}: duplicate key {key!r} (first on line "
                                   f"{first}); each setting may appear once")
            seen[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """Parse ``text`` as plain YAML: the node graph is composed first (aliases stay shared,
    so this is linear in the text) and refused if it would expand beyond MAX_NODES."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > MAX_NODES:
            raise _YamlRefused(f"its aliases (*name) expand to more than {MAX_NODES} values "
                               "(an alias bomb?); write the settings out instead")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node, memo: dict[int, int]) -> int:
    """Nodes the document has once every alias is expanded (memoised, so aliases are not
    walked again and the count stops growing far beyond the limit)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle (a recursive alias) expands without end
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo)
                       for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[key] = min(size, 10 * MAX_NODES)
    return memo[key]


def _yaml_message(exc: yaml.YAMLError) -> str:
    """A YAML error in one line with its line number and, for the usual suspects, what
    to do."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = str(getattr(exc, "problem", None) or exc)
    if "\\t" in problem or "\t" in problem:
        return f"{where}a tab character; YAML indents with spaces only"
    if "could not determine a constructor for the tag" in problem:
        found = re.search(r"'([^']+)'", problem)
        tag = found.group(1) if found else "?"
        return (f"{where}the tag {tag} is not allowed: a settings file holds plain data "
                "(numbers, strings, lists, mappings)")
    return f"{where}not valid YAML: {problem}"


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (numbers, lists, booleans)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set zeta=0.2")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: cannot read value: {exc}") from exc


def format_validation_error(
    exc: ValidationError, where: str,
    unknown: str = "unknown setting (see 'aac-sparse presets' for the settings)",
    prefix: str = "",
) -> str:
    """One line per problem: ``where: field: message (got value)``, the field's path
    starting with ``prefix`` (e.g. ``configurator.options``); ``unknown`` is the message
    for a key that is not allowed."""
    lines = []
    for err in exc.errors():
        field = ".".join([*([prefix] if prefix else []), *(str(p) for p in err["loc"])]) \
            or "(config)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown
        got = f" (got {err['input']!r})" if err["type"] != "extra_forbidden" and "input" in err \
            and not isinstance(err["input"], dict) else ""
        lines.append(f"{where}: {field}: {msg}{got}")
    return "\n".join(lines)


def build_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Preset, then file, then overrides, validated as one :class:`TrainConfig`."""
    values: dict[str, Any] = {}
    where = "settings"
    if file is not None:
        values = read_mapping(file)
        where = str(file)
        preset = values.pop("preset", preset)
        values.pop(TUNED_ON, None)
        values.pop(PARALLEL_SECTION, None)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(
                f"{where}: unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}"
            )
        values = {**PRESETS[preset], **values}
    values.update(overrides or {})
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from exc


def build_parallel(file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None):
    """The file's ``parallel:`` section with ``overrides`` (e.g. ``--parallel wasap
    --workers 2``) on top, validated as a ``ParallelConfig``."""
    from .engine.parallel.config import ParallelConfig

    values: dict[str, Any] = {}
    where = "parallel options"
    if file is not None:
        section = read_mapping(file).get(PARALLEL_SECTION, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{file}: {PARALLEL_SECTION}: expected a mapping (strategy, "
                              "workers, phase2_from, sync_every, ...)")
        values, where = dict(section), f"{file}: {PARALLEL_SECTION}"
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ParallelConfig(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from exc


def tuned_on(file: str | Path) -> dict[str, Any] | None:
    """The ``tuned_on:`` section of an incumbent file (scenario, run, seed, epochs and
    instance ids), or None for a file written by hand."""
    section = read_mapping(file).get(TUNED_ON)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{file}: {TUNED_ON}: expected a mapping (scenario, seed, epochs, "
                          "instances)")
    return section
