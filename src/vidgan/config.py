"""Typed configs: frozen dataclasses, a JSON round trip, presets in YAML and `key=value` overrides.

Every model has one frozen `@dataclass` config with the paper's defaults. This module holds the
machinery they share: `to_dict` / `from_dict` (nested dataclasses, tuples), `apply_overrides`
(one typed function for `--model.n_bands=3`-style overrides, with "did you mean" errors) and
`load_preset` (YAML files in `vidgan/presets/`).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vidgan.errors import ConfigError
from vidgan.registry import nearest

C = TypeVar("C")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain JSON-able dict (tuples become lists)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a JSON/YAML/CLI value to the annotated type `tp`, or raise a ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}.")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}.")
        return from_dict(tp, value, where=where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where} needs {len(args)} values, got {len(value)}.")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}.")
        if len(args) != 2:
            return dict(value)
        # JSON turns int keys into strings: convert keys and values back to the declared types
        return {
            _coerce(k, args[0], f"{where} key"): _coerce(v, args[1], f"{where}[{k}]")
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {value!r}.")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be an integer, got {value!r}.")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be a number, got {value!r}.")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}.")
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], *, where: str = "") -> C:
    """Build dataclass `cls` from a dict; unknown keys name the nearest valid ones."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__} must be a mapping, got {data!r}.")
    types_ = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(
                f"unknown config key {path!r}{nearest(key, names)} "
                f"Valid keys here: {', '.join(names)}."
            )
        kwargs[key] = _coerce(value, types_[key], path)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid {where or cls.__name__}: {e}") from None


def _parse_scalar(text: str) -> Any:
    """CLI value -> Python: numbers, booleans, lists via literal_eval / YAML; else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: C, overrides: Iterable[str] | Mapping[str, Any]) -> C:
    """Return a copy of `cfg` with `a.b=value` overrides applied, type-checked per field."""
    items = (
        list(overrides.items())
        if isinstance(overrides, Mapping)
        else [_split_override(o) for o in overrides]
    )
    data = to_dict(cfg)
    for key, value in items:  # strings are parsed per field type in _set_path
        _set_path(type(cfg), data, key.split("."), value, key)
    return from_dict(type(cfg), data)


def _split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. train.batch=8).")
    key, value = item.split("=", 1)
    return key.strip().lstrip("-"), value.strip()


def _set_path(cls: Any, data: dict, parts: list[str], value: Any, full: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    head = parts[0]
    if head not in names:
        raise ConfigError(
            f"unknown config key {full!r}{nearest(head, names)} Valid keys: {', '.join(names)}."
        )
    if len(parts) == 1:
        tp = _field_types(cls)[head]
        takes_str = tp is str or str in typing.get_args(tp)
        if isinstance(value, str) and typing.get_origin(tp) is not tuple and not takes_str:
            value = _parse_scalar(value)
        data[head] = value
        return
    sub = _field_types(cls)[head]
    if not dataclasses.is_dataclass(sub):
        raise ConfigError(f"config key {full!r}: {head!r} has no sub-keys.")
    _set_path(sub, data[head], parts[1:], value, full)


def preset_dir() -> Path:
    return Path(str(resources.files("vidgan") / "presets"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name (`fmr-toy-32`) or path; unknown names list the valid presets."""
    path = Path(name_or_path)
    if not path.suffix:
        path = preset_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            names = preset_names()
            raise ConfigError(
                f"unknown preset {name_or_path!r}{nearest(name_or_path, names)} "
                f"Valid presets: {', '.join(names) or '(none)'}."
            )
    if not path.exists():
        raise ConfigError(f"preset file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"preset {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset {path} must hold a mapping at the top level.")
    return data


def save_json(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
