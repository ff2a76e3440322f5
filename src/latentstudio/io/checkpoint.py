"""Model directories: ``config.json`` + ``model.safetensors`` + ``meta.json`` (+ fitted samplers).

A model directory loads without pickle: weights are safetensors, configs are JSON, and the class is
found in the model registry by ``model_type``. Directories are written to a temporary sibling and
renamed into place, so a crash never leaves a half-written model; an existing directory is only
replaced with ``overwrite=True``.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latentstudio.errors import CheckpointError, RunExistsError

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


def _commit_dir(tmp: Path, path: Path, overwrite: bool) -> None:
    if path.exists():
        if not overwrite:
            raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old)
    else:
        tmp.rename(path)


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
    model = unwrap(model)
    path = Path(path)
    if path.exists() and not overwrite:
        raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        cfg = {"format_version": FORMAT_VERSION, "model_type": model.model_type, "config": model.config.to_dict()}
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"model_type": model.model_type})
        full_meta = {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "versions": library_versions(),
            **(meta or {}),
        }
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str) + "\n")
        if samplers:
            _write_samplers(tmp, samplers)
        _commit_dir(tmp, path, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
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


def load_model_dir(path: str | Path, *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in ``path`` (no pickle; the class comes from the registry).

    Returns the model in eval mode with bit-identical weights.

    Raises:
        CheckpointError: missing files, unknown model type or mismatching weights.
    """
    from latentstudio.models import load_all
    from latentstudio.models.registry import MODELS

    load_all()
    path = Path(path)
    cfg = read_model_config(path)
    cls = MODELS.get(cfg["model_type"])
    config = cls.config_class.from_dict(cfg["config"], source=str(path / CONFIG_FILE))
    model = cls(config)
    state = load_file(str(path / WEIGHTS_FILE), device=str(map_location))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path / WEIGHTS_FILE} does not match {cfg['model_type']}: {exc}") from None
    return model.eval()


def load_samplers(path: str | Path, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """The fitted samplers stored with a model directory (empty dict if none).

    ``model`` is passed to samplers that wrap part of it (the second stage).
    """
    from latentstudio.samplers import SAMPLERS

    path = Path(path)
    if not (path / SAMPLERS_FILE).is_file():
        return {}
    index = json.loads((path / SAMPLERS_FILE).read_text())
    tensors = load_file(str(path / SAMPLERS_WEIGHTS)) if (path / SAMPLERS_WEIGHTS).is_file() else {}
    out: dict[str, Any] = {}
    for name, entry in index.items():
        cls = SAMPLERS.get(entry["sampler_type"])
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        out[name] = cls.from_state(entry["config"], state, model=model)
    return out


def read_meta(path: str | Path) -> dict[str, Any]:
    """The parsed ``meta.json`` of a model directory (empty dict if absent)."""
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.is_file() else {}
