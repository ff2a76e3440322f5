"""Fitted samplers stored beside a model (``samplers.json`` + ``samplers.safetensors``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentstudio.errors import CheckpointError
from latentstudio.io.checkpoint import read_samplers_files
from latentstudio.models.loading import load_model, resolve_model_dir
from latentstudio.samplers.base import SAMPLERS

#: Sampler types older model folders list although the model draws them itself (the two-stage
#: model's own second stage); they are skipped when loading.
BUILT_IN_TYPES = ("second-stage",)


def load_samplers(path: str | Path, model: Any = None) -> dict[str, Any]:
    """The fitted samplers stored in the model folder ``path`` (empty dict if none), by name.

    Raises:
        CheckpointError: an unreadable index or tensor file, or an unknown sampler type.
    """
    index, tensors = read_samplers_files(path)
    out: dict[str, Any] = {}
    for name, entry in index.items():
        kind = entry.get("sampler_type") if isinstance(entry, dict) else None
        if kind in BUILT_IN_TYPES:
            continue
        if kind not in SAMPLERS:
            raise CheckpointError(f"{Path(path) / 'samplers.json'}: sampler {name!r} has unknown type {kind!r}; "
                                  f"known types: {', '.join(SAMPLERS.names())}")
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        out[name] = SAMPLERS.get(kind).from_state(entry.get("config", {}), state, model=model)
    return out


def load_model_with_samplers(path: str | Path, *, map_location: Any = "cpu") -> Any:
    """The model of a model or run folder (any family) with its fitted samplers attached
    (``model.samplers``); what :func:`latentstudio.load` returns.

    Raises:
        CheckpointError: see :func:`latentstudio.models.loading.load_model` and :func:`load_samplers`.
    """
    model = load_model(path, map_location=map_location)
    model.samplers = load_samplers(resolve_model_dir(path), model)
    return model
