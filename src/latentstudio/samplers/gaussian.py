"""The prior N(0, I)."""

from __future__ import annotations

from typing import Any, Self

import torch

from latentstudio.samplers.base import SAMPLERS, LatentSampler


@SAMPLERS.register("normal")
class NormalSampler(LatentSampler):
    """z ~ N(0, I): the first stage's prior; ``fit`` only checks the latent size."""

    sampler_type = "normal"

    def fit(self, latents: Any = None, generator: torch.Generator | None = None) -> Self:
        return self

    def sample(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``float32 [n, latent_dim]`` standard normal draws."""
        return torch.randn(n, self.latent_dim, generator=generator)
