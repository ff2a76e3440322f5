"""Frozen-dataclass configuration base: dict/JSON round trips with unknown-key checks.

Every model, sampler and training config is a ``@dataclass(frozen=True)`` subclass of
:class:`Config`. Values are validated in ``__post_init__`` (raise :class:`ConfigError` naming the
field). ``from_dict`` rejects unknown keys so a misspelt option never silently falls back to its
default. :func:`apply_overrides` sets dotted keys (``--set stage1.epochs=5``) in a config dict, checking
each key path and converting each value to the type of the value it replaces.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Self

from latentstudio.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of all configs (frozen dataclasses)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (tuples become lists, nested configs become dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> Self:
        """Build a config from a dict.

        Raises:
            ConfigError: on an unknown key (named, with the known ones) or an invalid value.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"{source}: unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(fields)}"
            )
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = _coerce(hints.get(name), value, f"{source}.{name}")
        try:
            return cls(**kwargs)
        except TypeError as exc:  # missing required field
            raise ConfigError(f"{source}: {exc}") from None

    def replace(self, **changes: Any) -> Self:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | Path) -> Self:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=str(path))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert JSON values to the annotated field type (nested configs, tuples)."""
    if tp is None:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _coerce(args[0], value, where)
        return value
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        return tp.from_dict(value, source=where)
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    return value


def require(cond: bool, field: str, message: str) -> None:
    """Raise :class:`ConfigError` ``"<field>: <message>"`` unless ``cond`` holds."""
    if not cond:
        raise ConfigError(f"{field}: {message}")


# --------------------------------------------------------------------------------------------------
# Dotted overrides (``--set stage1.epochs=5``)

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _override_value(existing: Any, value: Any, where: str) -> Any:
    """``value`` converted to the type of ``existing`` (bool, int, float, str, list, dict; None: any).

    Strings are parsed (``"5"`` -> 5 for an int field, ``"true"`` -> True for a bool field); ``None``
    is always accepted (the config's own validation decides whether the field may be None).

    Raises:
        ConfigError: ``value`` does not parse as that type (naming ``where`` and the type).
    """
    if existing is None or value is None:
        return value

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{where}={value!r}: expected {expected} (the current value is {existing!r})")

    if isinstance(existing, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise fail("a bool (true or false)")
    if isinstance(existing, int):
        if isinstance(value, bool):
            raise fail("an int")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    f = float(value.strip())
                except ValueError:
                    raise fail("an int") from None
                if f.is_integer():
                    return int(f)
        raise fail("an int")
    if isinstance(existing, float):
        if isinstance(value, bool):
            raise fail("a float")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise fail("a float")
    if isinstance(existing, str):
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | bool):
            return json.dumps(value)  # a CLI value such as ``name=123`` was read as JSON
        raise fail("a string")
    if isinstance(existing, list | tuple | dict):
        expected, kind = ("a list", (list, tuple)) if isinstance(existing, list | tuple) else ("an object", dict)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise fail(f"{expected} (JSON)") from None
        if isinstance(value, kind):
            return list(value) if isinstance(value, tuple) else value
        raise fail(expected)
    return value


def apply_overrides(
    base: dict[str, Any],
    overrides: dict[str, Any],
    *,
    known: dict[str, Any] | None = None,
    what: str = "--set",
) -> dict[str, Any]:
    """Set dotted keys (``stage1.epochs=5``, ``model.stage1.latent_dim=32``) in a copy of ``base``.

    Each value is converted to the type of the value it replaces (taken from ``known``): strings are
    parsed for int, float and bool fields (``"5"``, ``"1e-3"``, ``"true"``), ints are accepted for float
    fields, numbers for string fields; fields whose current value is None take any value, and None
    is accepted for any field (the config's own validation runs later).

    Args:
        base: a nested JSON-like config dict (not modified).
        overrides: dotted key path -> value.
        known: the complete config dict the key paths and types are checked against (default ``base``);
            with a partial ``base``, missing intermediate dicts are created.
        what: how the overrides were given, used at the start of error messages.

    Returns:
        A new nested dict: ``base`` with the overrides set.

    Raises:
        ConfigError: one line naming the key, for a key path that does not exist (the known keys at
            that level listed) or a value that does not parse as the field's type.
    """
    out = json.loads(json.dumps(base))
    known = out if known is None else known
    for key, value in overrides.items():
        node, ref = out, known
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(ref, dict) or part not in ref:
                names = sorted(ref) if isinstance(ref, dict) else []
                raise ConfigError(f"{what} {key}: no field {'.'.join(parts[: i + 1])!r}; known: {names}")
            if i == len(parts) - 1:
                node[part] = _override_value(ref[part], value, f"{what} {key}")
            else:
                ref = ref[part]
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return out
