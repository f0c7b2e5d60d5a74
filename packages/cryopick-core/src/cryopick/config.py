"""Settings: ``--set key=value`` parsing into attrs config classes, presets, and particle diameters."""

from __future__ import annotations

import difflib
import json
import re
import typing
from typing import Any

import attrs

from cryopick.errors import ConfigError


def parse_diameter(text: str | float | int, pixel_size_a: float | None) -> float:
    """``"40"`` or ``40`` -> 40 pixels; ``"150A"`` / ``"150Å"`` -> 150 Å / pixel size."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(px|a|å|A|Å)?\s*", str(text))
        if not m:
            raise ConfigError(f"--diameter {text!r}: give pixels (40) or Ångström (150A)")
        value = float(m.group(1))
        if m.group(2) and m.group(2).lower() in ("a", "å"):
            if not pixel_size_a:
                raise ConfigError(
                    f"--diameter {text} is in Å but the micrographs have no pixel size; add --pixel-size A "
                    "or give the diameter in pixels")
            value = value / pixel_size_a
    if not value > 0:
        raise ConfigError(f"--diameter must be positive, got {text!r}")
    return value


def parse_settings(pairs: typing.Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _convert(value: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        if value.lower() in ("none", "null", "") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"--set {key}: bad value {value!r}")
    if typ is bool:
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={value}: expected true or false")
    if typ in (int, float):
        try:
            return typ(float(value)) if typ is int and float(value).is_integer() else typ(value)
        except ValueError:
            raise ConfigError(f"--set {key}={value}: expected a number ({typ.__name__})") from None
    if origin is tuple or typ is tuple:
        parts = [p for p in re.split(r"[,x ]+", value.strip("()[] ")) if p]
        inner = args[0] if args else float
        return tuple(_convert(p, inner, key) for p in parts)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"--set {key}={value}: choose one of {', '.join(map(str, args))}")
        return value
    return value


def build_config(cls: type, settings: dict[str, str] | None = None, presets: dict[str, dict] | None = None,
                 owner: str = "") -> Any:
    """Build the attrs config ``cls`` from ``settings`` (strings). A ``preset`` key selects a named preset
    from ``presets`` first; unknown keys are an error listing the valid ones and the closest match."""
    settings = dict(settings or {})
    presets = presets or {}
    values: dict[str, Any] = {}
    preset = settings.pop("preset", None)
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"--set preset={preset}: {owner} presets are {', '.join(sorted(presets)) or 'none'}")
        values.update(presets[preset])
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, raw in settings.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"--set {key}: not a setting of {owner or cls.__name__}.{hint} "
                f"Valid keys: {', '.join(sorted(fields))}")
        values[key] = _convert(raw, hints.get(key, str), key)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{owner or cls.__name__} settings: {exc}") from exc


def config_to_dict(config: Any) -> dict:
    return json.loads(json.dumps(attrs.asdict(config), default=str))
