"""Frozen-dataclass configuration base: dict/JSON round trips with unknown-key checks.

Every model, sampler and training config is a ``@dataclass(frozen=True)`` subclass of
:class:`Config`. Values are validated in ``__post_init__`` (raise :class:`ConfigError` naming the
field). ``from_dict`` rejects unknown keys so a misspelt option never silently falls back to its
default.
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
