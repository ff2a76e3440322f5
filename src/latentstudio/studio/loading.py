"""Models as studio latent models: :func:`load_latent_model` (a folder) and :func:`wrap_model` (in memory).

The adapter is chosen by the model's registered type (:data:`~latentstudio.studio.adapters.ADAPTERS`),
never by probing attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import CheckpointError, LatentStudioError
from latentstudio.samplers import load_model_with_samplers
from latentstudio.studio import stylegan as _stylegan  # noqa: F401  (registers the StyleGAN2 adapter)
from latentstudio.studio.adapters import ADAPTERS, LatentModel

__all__ = ["load_latent_model", "wrap_model"]


def wrap_model(model: torch.nn.Module, **kwargs: Any) -> LatentModel:
    """A :class:`LatentModel` for an in-memory model of a family the studio drives.

    ``kwargs`` go to the adapter's constructor (e.g. ``noise_mode`` for StyleGAN2).

    Raises:
        LatentStudioError: a model type the studio cannot drive (the supported ones listed).
    """
    kind = getattr(model, "model_type", "")
    if kind not in ADAPTERS:
        raise LatentStudioError(f"the studio cannot drive a {kind or type(model).__name__!r} model; it drives: "
                                f"{', '.join(ADAPTERS.names())}")
    cls = ADAPTERS.get(kind)
    return cls(model, **kwargs) if kwargs else cls.from_model(model)


def load_latent_model(path: str | Path) -> LatentModel:
    """Load a model folder (or run folder) as a :class:`LatentModel`.

    Raises:
        CheckpointError: not a model folder (a weights file is named with the convert command), or a
            model type the studio cannot drive (the supported ones listed).
    """
    model = load_model_with_samplers(path)
    if model.model_type not in ADAPTERS:
        raise CheckpointError(f"{model.path} holds a {model.model_type!r} model; the studio drives: "
                              f"{', '.join(ADAPTERS.names())}")
    return ADAPTERS.get(model.model_type).from_model(model)
