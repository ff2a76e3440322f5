"""Latent-density samplers: ``fit(latents) -> self`` then ``sample(n, generator)``.

A sampler models the aggregate posterior of a trained VAE so that decoding its samples gives
images (ex-post density estimation, Ghosh et al. 2020; Dai & Wipf 2019). Its fitted state is
saved with the model directory (``samplers.json`` + ``samplers.safetensors``) and reloaded,
not only its config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import torch

from latentstudio.errors import LatentStudioError
from latentstudio.registry import Registry


class SamplerNotFittedError(LatentStudioError, RuntimeError):
    """``sample`` was called before ``fit`` (or loading a fitted state)."""


class LatentSampler(ABC):
    """Base class. Subclasses set ``sampler_type`` and implement the abstract methods.

    Attributes:
        latent_dim: D of the latents ``[N, D]`` it models.
    """

    sampler_type: str = ""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = int(latent_dim)

    @abstractmethod
    def fit(self, latents: Any, generator: torch.Generator | None = None) -> Self:
        """Fit to encoder outputs. ``latents``: a DiagonalGaussian posterior ``[N, D]`` (or a
        ``[N, D]`` tensor of codes where the sampler allows it). Returns ``self``."""

    @abstractmethod
    def sample(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` latents ``float32 [n, D]``; same generator state -> same latents."""

    @property
    def is_fitted(self) -> bool:
        return True

    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""
        return {"latent_dim": self.latent_dim}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Fitted state as named tensors (empty for stateless samplers)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore fitted state from :meth:`state_dict`."""

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, torch.Tensor], model: Any = None) -> Self:
        """Rebuild a fitted sampler from its config and state (``model`` for model-backed ones)."""
        sampler = cls(**config)
        sampler.load_state_dict(state)
        return sampler

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise SamplerNotFittedError(f"{type(self).__name__} is not fitted: call fit(latents) first")


SAMPLERS: Registry[type[LatentSampler]] = Registry("sampler")
