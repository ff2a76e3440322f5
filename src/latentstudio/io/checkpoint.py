"""Model directories: ``config.json`` + ``model.safetensors`` + ``meta.json`` (+ fitted samplers).

A model directory loads without pickle: weights are safetensors, configs are JSON, and the class is
found in the model registry by ``model_type``. Directories are written to a temporary sibling and
renamed into place, so a crash never leaves a half-written model; an existing directory is only
replaced with ``overwrite=True``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentstudio.errors import CheckpointError
from latentstudio.io.atomic import atomic_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
SAMPLERS_FILE = "samplers.json"
SAMPLERS_WEIGHTS = "samplers.safetensors"
FORMAT_VERSION = 1

_VERSIONED = ("latentstudio", "torch", "torchvision", "lightning", "torchmetrics", "scikit-learn", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape results (plus Python)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DDP / torch.compile wrappers so parameter names are the plain module's."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):  # DDP
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def write_model_files(
    folder: str | Path,
    model: torch.nn.Module,
    *,
    meta: dict[str, Any] | None = None,
    samplers: dict[str, Any] | None = None,
) -> None:
    """Write ``config.json``, ``model.safetensors``, ``meta.json`` (+ samplers) into an existing ``folder``.

    Not atomic by itself: use :func:`save_model_dir`, or call it on the folder yielded by
    :func:`latentstudio.io.atomic.atomic_dir`. Arguments as :func:`save_model_dir`.
    """
    folder = Path(folder)
    model = unwrap(model)
    cfg = {"format_version": FORMAT_VERSION, "model_type": model.model_type, "config": model.config.to_dict()}
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"model_type": model.model_type})
    full_meta = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **(meta or {}),
    }
    (folder / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str) + "\n")
    if samplers:
        _write_samplers(folder, samplers)


def save_model_dir(
    model: torch.nn.Module,
    path: str | Path,
    *,
    meta: dict[str, Any] | None = None,
    samplers: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (a registered model with ``.config`` and ``model_type``) to ``path``.

    Args:
        model: the model (DDP / compile wrappers are removed).
        path: target directory.
        meta: extra provenance (dataset fingerprint, seed, run); library versions and a UTC
            timestamp are added.
        samplers: fitted latent samplers by name (objects with ``sampler_type``, ``config_dict()``
            and ``state_dict()``); their fitted state is stored, not only their config.
        overwrite: replace an existing directory.

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_model_files(tmp, model, meta=meta, samplers=samplers)
    return path


def _write_samplers(folder: Path, samplers: dict[str, Any]) -> None:
    index: dict[str, Any] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, sampler in samplers.items():
        index[name] = {"sampler_type": sampler.sampler_type, "config": sampler.config_dict()}
        for key, value in sampler.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous().clone()
    (folder / SAMPLERS_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(folder / SAMPLERS_WEIGHTS))


def save_samplers(path: str | Path, samplers: dict[str, Any]) -> None:
    """(Re)write the fitted samplers of an existing model directory atomically."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=".samplers.", dir=path))
    try:
        _write_samplers(tmp, samplers)
        for f in (SAMPLERS_WEIGHTS, SAMPLERS_FILE):  # weights first: the index names them
            (tmp / f).replace(path / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model directory.

    Raises:
        CheckpointError: the directory or its files are missing or not valid JSON.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"model directory {path} does not exist (expected {CONFIG_FILE} and {WEIGHTS_FILE} in it; "
            "train one with `latentstudio train` or pass the run's model/ folder)"
        )
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / f).is_file():
            raise CheckpointError(f"{path} is not a complete model directory: {f} is missing")
    try:
        cfg = json.loads((path / CONFIG_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} is not valid JSON: {exc}") from None
    if "model_type" not in cfg or "config" not in cfg:
        raise CheckpointError(f"{path / CONFIG_FILE} lacks 'model_type' or 'config'")
    return cfg


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
#: Largest safetensors JSON header read (bytes); real headers of this project's models are < 1 MB.
MAX_HEADER_BYTES = 64 << 20


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file, checked against the file before anything is allocated.

    Every entry's byte range must lie inside the file and match its dtype and shape.

    Returns:
        ``{name: {"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}}``.

    Raises:
        CheckpointError: a missing, empty, truncated or malformed file (one line naming the file and
            the field).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    size = path.stat().st_size
    where = f"{path} is not a valid safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{where}: it is {size} bytes long (truncated or empty); re-export the model")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{where}: its header claims {n} bytes but the file has {size - 8} after the "
                                  "length field (truncated?)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{where}: its header is not JSON (truncated or corrupted)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: its header is not a table of tensors")
    body = size - 8 - n
    out: dict[str, dict[str, Any]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
            nbytes = _DTYPE_BYTES[dtype] * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: tensor {name!r} has a malformed entry") from None
        if not (0 <= begin <= end <= body) or end - begin != nbytes or min(shape, default=0) < 0:
            raise CheckpointError(f"{where}: tensor {name!r} ({dtype} {shape}) does not fit the file "
                                  f"(bytes {begin}..{end} of {body}); the file is truncated or corrupted")
        out[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    return out


def read_weights(
    path: str | Path,
    *,
    expected: dict[str, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Load a safetensors file (no pickle) after checking its table against the file and, when given,
    against the names and shapes of ``expected`` (a model's ``state_dict()``).

    Raises:
        CheckpointError: see :func:`read_safetensors_header`; or missing/unexpected tensors or a
            shape that differs from ``expected`` (named).
    """
    table = read_safetensors_header(path)
    if expected is not None:
        missing = sorted(set(expected) - set(table))
        extra = sorted(set(table) - set(expected))
        if missing or extra:
            raise CheckpointError(f"{path} does not match the model in its config.json: missing tensors "
                                  f"{missing[:5]}, unexpected tensors {extra[:5]}")
        for name, t in expected.items():
            if list(t.shape) != table[name]["shape"]:
                raise CheckpointError(f"{path}: tensor {name!r} has shape {table[name]['shape']}, the config "
                                      f"needs {list(t.shape)}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read: {str(exc).splitlines()[0]}") from None


def read_samplers_files(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The raw fitted-sampler index (``samplers.json``) and tensors of a model folder (empty if none).

    Raises:
        CheckpointError: an unreadable index or tensor file.
    """
    path = Path(path)
    if not (path / SAMPLERS_FILE).is_file():
        return {}, {}
    try:
        index = json.loads((path / SAMPLERS_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / SAMPLERS_FILE} is not valid JSON: {exc}") from None
    tensors = read_weights(path / SAMPLERS_WEIGHTS) if (path / SAMPLERS_WEIGHTS).is_file() else {}
    return index, tensors


def read_meta(path: str | Path) -> dict[str, Any]:
    """The parsed ``meta.json`` of a model directory (empty dict if absent)."""
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.is_file() else {}
