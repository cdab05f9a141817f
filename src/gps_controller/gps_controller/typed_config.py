"""Typed configuration sections: dataclasses filled from YAML mappings with clear errors.

Each config section of the project is a frozen dataclass with defaults. `from_mapping` builds one
from a plain mapping (as loaded from YAML), rejecting unknown keys and values of the wrong type
with a message that names the offending key path, e.g. ``sim.physics_dt: expected a number, got
'x'``; a float field takes finite numbers only (YAML's .nan and .inf are refused).
`to_mapping` turns it back into plain data for echoing into a run folder.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from `mapping`; missing keys keep their defaults."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; "
                          f"known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in mapping.items():
        values[name] = _coerce(hints[name], value, _join(where, name))
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    """The top-level mapping of YAML file `path` ({} for an empty file). A missing file, text
    that is not YAML (the message gives the line and column where parsing stopped) or a
    top level that is not a mapping is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        with path.open() as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got "
                          f"{type(data).__name__}")
    return data


def load_yaml(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Read `path` (optionally one top-level `section` of it) into dataclass `cls`."""
    data = read_yaml_mapping(path)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path}: no section {section!r}")
        data = data[section]
    return from_mapping(cls, data, section or "")


def to_mapping(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) for a dataclass instance, for YAML/JSON output."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        elif origin is tuple:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [_coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value))]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: _coerce(args[1] if args else Any, v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
