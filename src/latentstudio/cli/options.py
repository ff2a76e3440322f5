"""Shared CLI parsing helpers: seed lists, key=value pairs, dotted config overrides."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from latentstudio.config import apply_overrides as config_overrides
from latentstudio.errors import ConfigError


def parse_int_list(text: str) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]``.

    Raises:
        click.BadParameter: on anything but comma-separated ints and ranges ``a-b`` with a <= b.
    """
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise click.BadParameter(f"range {part!r} is empty (start > end)")
            out.extend(range(a, b + 1))
        elif re.fullmatch(r"\d+", part):
            out.append(int(part))
        else:
            raise click.BadParameter(f"{part!r} is not an int or a range like 0-63")
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    """``("k=v", ...)`` -> dict; values parsed as JSON when possible (``3``, ``true``, ``null``)."""
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{what} {p!r} must look like key=value")
        k, v = p.split("=", 1)
        out[k.strip()] = _value(v.strip())
    return out


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``stage1.epochs=5``, ``model.stage1.latent_dim=32``) in a nested dict copy.

    Values are converted to the type of the value they replace (see
    :func:`latentstudio.config.apply_overrides`).

    Raises:
        click.BadParameter: one line naming the key, for a key path that does not exist in the config
            (the known keys listed) or a value that does not parse as the field's type.
    """
    try:
        return config_overrides(base, overrides, what="--set")
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def run_options(fn):
    """The options every ``train`` command shares, in this order: ``--devices``, ``--accelerator``,
    ``--runs-root``, ``--resume``, ``--dry-run``, ``--no-progress`` (parameters of the same names)."""
    options = [
        click.option("--devices", type=int, default=1, show_default=True, help="Processes; > 1 trains with DDP."),
        click.option("--accelerator", default="cpu", show_default=True, help="cpu, gpu or auto."),
        click.option("--runs-root", type=click.Path(file_okay=False), default="runs", show_default=True),
        click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
                     help="Continue an interrupted run directory with its own config."),
        click.option("--dry-run", is_flag=True, help="Print the resolved config and exit."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    ]
    for option in reversed(options):  # click lists options in decorator order, top to bottom
        fn = option(fn)
    return fn
