"""Reading training configurations from YAML/JSON files, presets and ``key=value`` options.

Every mistake becomes a :class:`ConfigError` that names the file, the field and what is
allowed, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .engine.config import PRESETS, TrainConfig
from .errors import ConfigError


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                          f"{exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


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
) -> str:
    """One line per problem: ``where: field: message (got value)``; ``unknown`` is the
    message for a key that is not allowed."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
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
