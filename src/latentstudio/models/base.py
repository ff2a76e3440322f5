"""Shared model behaviour: saving to and loading from model directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from latentstudio.errors import CheckpointError


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` over :mod:`latentstudio.io.checkpoint`."""

    def save_pretrained(
        self,
        path: str | Path,
        *,
        meta: dict[str, Any] | None = None,
        samplers: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``meta.json`` (+ samplers) to ``path``.

        Raises:
            RunExistsError: ``path`` exists and ``overwrite`` is False.
        """
        from latentstudio.io.checkpoint import save_model_dir

        return save_model_dir(self, path, meta=meta, samplers=samplers, overwrite=overwrite)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, path: str | Path, *, map_location: str = "cpu") -> Self:
        """Load a model directory written by :meth:`save_pretrained` (eval mode, no pickle).

        Raises:
            CheckpointError: missing/incomplete directory or a model of another type.
        """
        from latentstudio.io.checkpoint import load_model_dir

        model = load_model_dir(path, map_location=map_location)
        if not isinstance(model, cls):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
