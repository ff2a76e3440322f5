"""Loading a model folder of any registered family (no pickle; the class comes from ``config.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from latentstudio.errors import CheckpointError
from latentstudio.io.checkpoint import CONFIG_FILE, read_model_config
from latentstudio.models import load_all
from latentstudio.models.base import GenerativeModel
from latentstudio.models.registry import MODELS

RUN_FILE = "run.json"


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a model folder or a run folder (uses its ``model/``).

    Raises:
        CheckpointError: neither holds a model (an unfinished run is named with the resume command).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; pass a model folder or a run folder (runs/NNNNN-...)")
    if (path / CONFIG_FILE).is_file():
        return path
    if (path / "model" / CONFIG_FILE).is_file():
        return path / "model"
    if (path / RUN_FILE).is_file():
        try:
            kind = json.loads((path / RUN_FILE).read_text()).get("kind", "FAMILY")
        except (json.JSONDecodeError, AttributeError):
            kind = "FAMILY"
        raise CheckpointError(
            f"run {path} has no exported model yet (model/ is missing): it is unfinished; "
            f"continue it with `latentstudio train {kind} --resume {path}`"
        )
    if path.is_file():
        raise CheckpointError(f"{path} is a file; pass a model folder (config.json + model.safetensors). Official "
                              f"StyleGAN2 weights are converted first: latentstudio convert {path} --out FOLDER")
    raise CheckpointError(f"{path} is neither a model folder (config.json + model.safetensors) nor a run folder")


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> GenerativeModel:
    """The model of a model or run folder, in eval mode, with ``path`` and ``meta`` set (fitted
    samplers are attached by :func:`latentstudio.api.load`).

    Raises:
        CheckpointError: missing/incomplete folder, unknown model type or mismatching weights.
    """
    load_all()
    folder = resolve_model_dir(path)
    cfg = read_model_config(folder)
    return MODELS.get(cfg["model_type"]).from_pretrained(folder, map_location=map_location)
