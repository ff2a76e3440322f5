"""Diagnostics of a VAE's latent space: the variance law and the count of inactive latents.

For a VAE whose aggregate posterior matches the N(0, I) prior, the law of total variance gives,
for every latent dimension d,

    Var_x(mu_d(x)) + E_x[sd_d(x)^2] = 1

(Dai & Wipf 2019, "Diagnosing and enhancing VAE models", sec. 4; SPEC section 2 "DRAW",
variance law). A latent is *inactive* (it carries no information about x) when its posterior
variance stays near the prior's: E_x[sd_d(x)^2] > 0.9.
"""

from __future__ import annotations

import torch

from latentstudio.errors import ShapeError
from latentstudio.metrics._checks import as_matrix

__all__ = ["INACTIVE_THRESHOLD", "inactive_latents", "mean_posterior_variance", "variance_law"]

#: A latent is inactive when E_x[sd^2] exceeds this (SPEC section 2).
INACTIVE_THRESHOLD = 0.9


def _check(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = as_matrix(mu, "mu", min_rows=1)
    lv = as_matrix(logvar, "logvar", min_rows=1)
    if m.shape != lv.shape:
        raise ShapeError(f"mu {list(m.shape)} and logvar {list(lv.shape)} must have the same [N, D] shape")
    return m.to(torch.float64), lv.to(torch.float64)


def mean_posterior_variance(logvar: torch.Tensor) -> torch.Tensor:
    """``E_x[sd(x)^2]`` per latent: ``logvar float [N, D]`` (natural log of the variance) -> ``float64 [D]``.

    Raises:
        ShapeError: if ``logvar`` is not ``[N, D]`` with N >= 1. LatentStudioError: non-finite values.
    """
    lv = as_matrix(logvar, "logvar", min_rows=1).to(torch.float64)
    return lv.exp().mean(dim=0)


def variance_law(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``Var_x(mu(x)) + E_x[exp(logvar(x))]`` per latent (Dai & Wipf 2019; SPEC section 2).

    Args:
        mu: ``float [N, D]`` posterior means of N data points.
        logvar: ``float [N, D]`` posterior log variances (natural log of sd^2).

    Returns:
        ``float64 [D]``; close to 1 for every latent when the aggregate posterior matches N(0, I).
        The variance over x is the population variance (divides by N), so that the total
        variance of the aggregate posterior is exactly the sum of the two terms.

    Raises:
        ShapeError: if the shapes differ or are not ``[N, D]``. LatentStudioError: non-finite values.
    """
    m, lv = _check(mu, logvar)
    return m.var(dim=0, unbiased=False) + lv.exp().mean(dim=0)


def inactive_latents(mu: torch.Tensor, logvar: torch.Tensor, threshold: float = INACTIVE_THRESHOLD) -> int:
    """Number of latents with ``E_x[sd(x)^2] > threshold`` (inactive: posterior ~ prior; SPEC section 2).

    Args:
        mu: ``float [N, D]`` (checked for shape only; activity depends on the variances).
        logvar: ``float [N, D]`` natural log of the posterior variance.
        threshold: variance above which a latent counts as inactive (default 0.9).

    Returns:
        An int in 0..D.

    Raises:
        ShapeError: if the shapes differ or are not ``[N, D]``. LatentStudioError: non-finite values.
    """
    _, lv = _check(mu, logvar)
    return int((lv.exp().mean(dim=0) > threshold).sum().item())
