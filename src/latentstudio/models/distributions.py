"""Posterior distributions returned by encoders."""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


class DiagonalGaussian:
    """A diagonal Gaussian ``N(mean, exp(logvar))`` over ``[N, D]`` latents.

    Args:
        mean: ``float [N, D]``.
        logvar: ``float [N, D]`` natural log of the variance (``2 log sd``).

    ``kl()`` is KL(q || N(0, I)) per example in nats, ``[N]``:
    ``sum_d (mean^2 + sd^2 - 2 log sd - 1) / 2`` (Kingma & Welling 2014, appendix B;
    the ``kl`` term of Dai & Wipf's loss before the batch mean).
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {list(mean.shape)} and logvar {list(logvar.shape)} must have the same shape")
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised draw ``mean + std * eps``, eps ~ N(0, I) from ``generator``: ``[N, D]``."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        """The posterior mean ``[N, D]`` (deterministic embedding)."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per example in nats: ``[N]``."""
        return 0.5 * torch.sum(self.mean.pow(2) + self.logvar.exp() - self.logvar - 1.0, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) in nats summed over dimensions: ``z [N, D] -> [N]`` (also ``[K, N, D] -> [K, N]``)."""
        return -0.5 * torch.sum((z - self.mean).pow(2) / self.logvar.exp() + self.logvar + LOG_2PI, dim=-1)

    def detach(self) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean.detach(), self.logvar.detach())


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) in nats summed over the last dimension."""
    return -0.5 * torch.sum(z.pow(2) + LOG_2PI, dim=-1)
