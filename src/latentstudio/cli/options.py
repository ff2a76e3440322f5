"""Shared CLI options and parsing: data options, sampling-knob flags, deprecated spellings, train options,
seed lists, key=value pairs, dotted config overrides."""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import click

from latentstudio.config import apply_overrides as config_overrides
from latentstudio.errors import ConfigError, DataError, LatentStudioError


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


def budget_options(*, epochs_help: str, steps_help: str = "Optimizer steps (default: the preset's); whichever "
                   "of --epochs and --max-steps ends first.", cap_help: str = "Wall-clock safety cap in minutes: "
                   "training stops at the next step once reached (results are budgeted by --epochs / --max-steps)."):
    """``--epochs``, ``--max-steps`` (the budget in work) and ``--max-minutes`` (a safety cap), the same on
    every ``train`` command (parameters ``epochs``, ``max_steps``, ``max_minutes``; None when not given)."""

    def decorate(fn):
        options = [
            click.option("--epochs", type=click.IntRange(min=1), default=None, help=epochs_help),
            click.option("--max-steps", type=click.IntRange(min=1), default=None, help=steps_help),
            click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None, help=cap_help),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


# ----------------------------------------------------------------------------- data options


def data_options(fn=None, *, default: str | None = "digits"):
    """``--data``, ``--data-root``, ``--data-option``, ``--download``, ``--strict``, ``--limit`` (parameters
    ``data_name``, ``data_root``, ``data_option``, ``download``, ``strict``, ``limit``; turn them into a spec
    with :func:`data_spec`). ``default``: --data's default; None means "the dataset the model was trained on"."""
    if fn is None:
        return functools.partial(data_options, default=default)
    help_data = "Dataset: digits, mnist, fashion-mnist, cifar10, celeba, folder, or a stroke file (.npz, .ndjson)."
    if default is None:
        help_data += " Default: the dataset the model was trained on."
    opts = [
        click.option("--data", "data_name", default=default, show_default=default is not None, help=help_data),
        click.option("--data-root", type=click.Path(file_okay=False), default=None,
                     help="Folder holding the datasets (default: $LATENTSTUDIO_DATA, else the user data dir)."),
        click.option("--data-option", "data_option", multiple=True, metavar="KEY=VALUE",
                     help="Dataset option, e.g. path=faces.zip for folder, pad=0 for mnist (repeatable)."),
        click.option("--download", is_flag=True, help="Fetch the dataset with torchvision's downloader if missing."),
        click.option("--strict", is_flag=True, help="An unreadable image is an error (default: skip and count)."),
        click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N examples."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def data_spec(data_name, data_root, data_option, download, strict, limit) -> dict[str, Any]:
    """The data spec dict (the layout of a run's ``config.data``) of the :func:`data_options` values.

    A stroke file given as ``--data`` becomes the ``strokes`` dataset with that path (see
    :meth:`latentstudio.data.spec.DataSpec.parse`); ``data_name`` None gives a spec without a name
    ("the model's own dataset").

    Raises:
        click.BadParameter: a malformed ``--data-option``. UnknownNameError: an unknown dataset.
    """
    options = parse_pairs(data_option, "--data-option")
    fields = {"root": data_root, "options": options, "limit": limit, "download": bool(download), "strict": bool(strict)}
    if not data_name:
        return {"name": None, **fields}
    from latentstudio.data.spec import DataSpec  # lazy: imports torch

    return DataSpec.parse(data_name, **fields).to_dict()


# ----------------------------------------------------------------------------- sampling knobs

#: ``--flag`` of every sampling knob (``latentstudio.models.base.Knob``) a registered family declares, by knob
#: name; a family rejects the knobs it does not have with a one-line error naming its own.
KNOB_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "sampler": (("--sampler",), {"metavar": "NAME", "help": "VAE family: latent sampler normal, gmm or second-stage "
                                                          "(default: the model's best)."}),
    "temperature": (("--temperature",), {"type": float, "help": "DRAW, sketch-rnn: sampling temperature "
                                                               "(sketch-rnn: 0 = greedy)."}),
    "greedy": (("--greedy/--no-greedy",), {"help": "sketch-rnn: most likely pen state and mixture component."}),
    "truncation_psi": (("--truncation-psi",), {"type": float, "help": "StyleGAN2: w = w_avg + psi (w - w_avg); "
                                                                     "1 = none (default)."}),
    "truncation_cutoff": (("--truncation-cutoff",), {"type": int, "help": "StyleGAN2: truncate only the first N "
                                                                         "styles (default: all)."}),
    "noise_mode": (("--noise-mode",), {"type": click.Choice(["const", "random", "none"]),
                                       "help": "StyleGAN2: synthesis noise (default: const)."}),
}


def knob_options(fn):
    """Add every :data:`KNOB_OPTIONS` flag (parameters named as the knobs; None when not given)."""
    for name, (decls, attrs) in reversed(list(KNOB_OPTIONS.items())):
        fn = click.option(*decls, name, default=None, **attrs)(fn)
    return fn


def given_knobs(params: dict[str, Any]) -> dict[str, Any]:
    """The knobs the user set (``{name: value}`` of the :data:`KNOB_OPTIONS` parameters that are not None)."""
    return {k: params[k] for k in KNOB_OPTIONS if params.get(k) is not None}


def model_knobs(model, knobs: dict[str, Any]) -> dict[str, Any]:
    """``knobs`` for ``model``: ``temperature 0`` means greedy decoding for models with a ``greedy`` knob.

    Unknown knobs are left in, so that the model rejects them with its own message."""
    names = {k.name for k in model.knobs}
    if "greedy" in names and knobs.get("temperature") == 0:
        knobs = {**{k: v for k, v in knobs.items() if k != "temperature"}, "greedy": True}
    return knobs


# ----------------------------------------------------------------------------- deprecated spellings

#: Old flag -> the one spelling used on every command now. A deprecated flag still works (on the commands
#: that have the new one) and prints one line naming its replacement.
DEPRECATED_FLAGS: dict[str, str] = {
    "--trunc": "--truncation-psi",
    "--truncation": "--truncation-psi",
    "--trunc-cutoff": "--truncation-cutoff",
}


def _option_names(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}


def rewrite_deprecated(group: click.Group, args: list[str]) -> list[str]:
    """``args`` with each deprecated flag of :data:`DEPRECATED_FLAGS` replaced by its new spelling, for the
    command ``args`` invoke when it has the new flag; prints one line per replaced flag to stderr."""
    command: click.Command = group
    i = 0
    while isinstance(command, click.Group) and i < len(args) and args[i] in command.commands:
        command = command.commands[args[i]]
        i += 1
    names = _option_names(command)
    out = list(args[:i])
    for arg in args[i:]:
        if arg == "--":
            out += args[len(out):]
            break
        flag, eq, value = arg.partition("=")
        new = DEPRECATED_FLAGS.get(flag)
        if new and new in names and flag not in names:
            click.echo(f"Warning: {flag} is deprecated; use {new}", err=True)
            arg = new + eq + value
        out.append(arg)
    return out


#: Set to 1 to see the traceback of an error (as ``latentstudio --debug``).
DEBUG_ENV = "LATENTSTUDIO_DEBUG"
_DEBUG_KEY = "latentstudio.debug"


def debug_enabled() -> bool:
    """True with ``latentstudio --debug ...`` or ``LATENTSTUDIO_DEBUG=1``: errors keep their traceback and
    warnings are shown as Python shows them."""
    if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_DEBUG_KEY))


_PY_THEN_FLAG = re.compile(r"\b[a-z_]+=(?:\[[^\]]*\]|'[^']*'|\S+?),? \((?:CLI:? )?(--[a-z][^)]*)\)")
_CLI_PAREN = re.compile(r"\(CLI:? (--[a-z][^)]*)\)")
_PY_PAREN = re.compile(r" ?\((?:Python: [^)]*|[a-z_]+=[^()]*)\)")
_PY_SPLIT = re.compile(r"\bsplit='(\w+)'")
_PY_INNER = re.compile(r"; Python: [^;)]*")
_PY_CALL = re.compile(r",? (?:or )?[\w.]+\([^()]*\) in Python")


def cli_message(text: str) -> str:
    """A library message as the command line says it: one line, flags instead of Python spellings
    (``pass overwrite=True (CLI: --overwrite)`` -> ``pass --overwrite``; ``(download=True)`` dropped)."""
    text = " ".join(str(text).split())
    text = _PY_THEN_FLAG.sub(r"\1", text)
    text = _CLI_PAREN.sub(r"(\1)", text)
    text = _PY_PAREN.sub("", _PY_INNER.sub("", text))
    text = _PY_CALL.sub("", text)
    return _PY_SPLIT.sub(r"--split \1", text)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command line: ``Warning: <first line>`` on stderr, once per text."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    seen: set[str] = _one_line_warning.__dict__.setdefault("seen", set())
    if text in seen:
        return
    seen.add(text)
    click.echo(f"Warning: {cli_message(text)}", err=True)


class VerbGroup(click.Group):
    """The root group: accepts the deprecated flag spellings (see :func:`rewrite_deprecated`), prints every
    error a user can cause as one ``Error: ...`` line (exit 1) and every warning as one ``Warning: ...``
    line; ``--debug`` (or ``LATENTSTUDIO_DEBUG=1``) shows tracebacks and warnings as Python does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_deprecated(self, list(args)))

    def invoke(self, ctx: click.Context):
        if debug_enabled():
            return super().invoke(ctx)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            _one_line_warning.__dict__["seen"] = set()
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except LatentStudioError as exc:
                raise click.ClickException(cli_message(str(exc))) from None
            except Exception as exc:  # noqa: BLE001 - an unforeseen failure: one line; --debug shows where
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise click.ClickException(f"{type(exc).__name__}: {first} (unexpected; rerun with "
                                           f"--debug or {DEBUG_ENV}=1 for the traceback)") from None


def debug_option(fn):
    """``--debug`` of the root group: show the traceback of an error."""
    def remember(ctx: click.Context, _param, value: bool) -> None:
        ctx.meta[_DEBUG_KEY] = bool(value)

    return click.option("--debug", is_flag=True, expose_value=False, callback=remember,
                        help=f"Show the traceback of an error and warnings as Python prints them "
                             f"(also {DEBUG_ENV}=1).")(fn)


# ----------------------------------------------------------------------------- train commands


def spec_options(*, presets: str, preset_default: str, set_example: str, preset_choices: tuple[str, ...] | None = None):
    """``--preset``, ``--config``, ``--set`` of a ``train`` command (parameters ``preset``, ``config_file``,
    ``overrides``); ``presets`` lists them for the help, ``set_example`` shows a dotted override."""

    def decorate(fn):
        opts = [
            click.option("--preset", type=click.Choice(preset_choices) if preset_choices else None,
                         default=preset_default, show_default=True, help=f"Starting config: {presets}."),
            click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
                         help="JSON run config (the layout of a run's run.json 'config'); applied after the preset."),
            click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                         help=f"Dotted override, e.g. {set_example} (repeatable)."),
        ]
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return decorate


#: Image shape (C, H, W at the default options), classes and attributes of the datasets whose layout is fixed:
#: a dry run resolves its config from these when the files are not on disk.
_KNOWN_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "mnist": (1, 28, 10, 0), "fashion-mnist": (1, 28, 10, 0), "cifar10": (3, 32, 10, 0), "celeba": (3, 64, 0, 40),
}


def shape_stand_in(data: dict[str, Any]):
    """A few blank images with the shape, classes and attributes the dataset of spec ``data`` would have (mnist and
    fashion-mnist with their ``pad``, celeba with its ``image_size``), or None when only the files tell."""
    known = _KNOWN_SHAPES.get(str(data.get("name")))
    if known is None:
        return None
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.data.base import ImageData  # lazy: imports torch

    c, side, classes, attributes = known
    options = data.get("options") or {}
    try:
        if classes and c == 1:
            side += 2 * int(options.get("pad", 2))
        elif attributes:
            side = int(options.get("image_size", side))
    except (TypeError, ValueError):
        return None
    n = max(classes, 2)
    return ImageData(
        images=torch.zeros(n, c, side, side, dtype=torch.uint8),
        labels=torch.arange(n) % classes if classes else None,
        class_names=[str(i) for i in range(classes)] if classes else None,
        attributes=torch.ones(n, attributes) if attributes else None,
        name=str(data["name"]), source="published shape (dry run without the files)")


def train_command(family: str, spec: dict[str, Any], *, runs_root, resume, progress: bool, dry_run: bool, **options):
    """``api.train``; a dry run whose dataset is not on disk resolves with the dataset's published shape
    (:func:`shape_stand_in`) or fails with one line naming the flags that make the data readable."""
    from latentstudio import api  # lazy: imports torch

    try:
        return api.train(family, spec, runs_root=runs_root, resume=resume, progress=progress, dry_run=dry_run,
                         **options)
    except DataError as exc:
        if not dry_run or resume:
            raise
        data = (spec or {}).get("data") or {}
        stand_in = shape_stand_in(data)
        if stand_in is None:
            raise DataError(f"{exc} (--dry-run reads the data for its image shape: point --data-root or "
                            "--data-option path=... at it, or pass --download)") from None
        c, h, w = stand_in.image_shape
        click.echo(f"Note: {data['name']} is not on disk; the dry run uses its published shape {c}x{h}x{w}",
                   err=True)
        return api.train(family, spec, runs_root=runs_root, resume=resume, progress=progress, dry_run=dry_run,
                         data=stand_in, **options)


def seed_option(fn):
    """``--seed`` (default 0)."""
    return click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")(fn)


def read_config_file(path: str | None) -> dict[str, Any]:
    """The JSON object of a ``--config`` file ({} when None).

    Raises:
        click.BadParameter: not a JSON object.
    """
    if not path:
        return {}

    try:
        obj = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--config {path}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise click.BadParameter(f"--config {path}: expected a JSON object")
    return obj


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without its None values."""
    return {k: v for k, v in d.items() if v is not None}


def friendly_errors(fn):
    """Turn library errors into ``click.ClickException`` (one line, exit 1; with ``--debug`` the error
    keeps its traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LatentStudioError as exc:
            if debug_enabled():
                raise
            raise click.ClickException(cli_message(str(exc))) from None

    return wrapper


def echo_train_result(result, dry_run: bool, extra: str = "") -> None:
    """Print the resolved config (dry run) or where the run and its model are (rank 0 only)."""
    if dry_run:
        click.echo(result.to_json())
    elif int(os.environ.get("LOCAL_RANK", "0")) == 0:
        click.echo(f"run directory: {result.run_dir}\nmodel: {result.model_dir}{extra}")
