"""Importance-sampled negative log-likelihood of a latent-variable model (Burda et al. 2016, eq. 8).

    log p(x) ~= logsumexp_k [log p(x | z_k) + log N(z_k; 0, I) - log q(z_k | x)] - log K,
    z_k ~ q(z | x), k = 1..K

The estimate is a stochastic lower bound of log p(x) that tightens as K grows (K = 1 is the ELBO
in expectation) and is exact for every K when q(z | x) is the true posterior. Models are passed
as callables; nothing here imports a model class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from latentstudio.errors import ShapeError

__all__ = ["importance_sampled_nll"]

_LOG_2PI = math.log(2.0 * math.pi)


def _diag_normal_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((z - mean).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(dim=-1)


def importance_sampled_nll(
    x: torch.Tensor,
    encode: Callable[[torch.Tensor], object],
    log_px_given_z: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    num_samples: int = 100,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """``-log p(x)`` per example, in nats, by importance sampling from the encoder's posterior.

    Args:
        x: ``[N, ...]`` inputs (e.g. ``float [N, C, H, W]`` images in [0, 1]).
        encode: ``x [n, ...] -> q``, a diagonal Gaussian with ``mean`` and ``logvar`` ``[n, D]``
            (e.g. :class:`latentstudio.models.distributions.DiagonalGaussian`).
        log_px_given_z: ``(x [m, ...], z [m, D]) -> [m]`` log-likelihood log p(x | z) in nats
            (summed over pixels, including the normalising constant of the decoder's density).
        num_samples: K, importance samples per example (K >= 1).
        generator: RNG for the samples (on the posterior's device); None uses the global RNG.
        batch_size: at most this many (x, z) rows per ``log_px_given_z`` call (at least one
            example with one sample); examples are encoded ``batch_size`` at a time.

    Returns:
        ``float64 [N]`` NLL in nats (lower is better), a stochastic upper bound of the true NLL.

    Raises:
        ShapeError: if q's mean/logvar are not ``[n, D]`` or ``log_px_given_z`` does not return ``[m]``.
        ValueError: if ``num_samples`` or ``batch_size`` < 1.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            n = xb.shape[0]
            q = encode(xb)
            mean, logvar = q.mean, q.logvar
            if mean.ndim != 2 or mean.shape[0] != n or logvar.shape != mean.shape:
                raise ShapeError(
                    f"encode must return mean/logvar of shape [{n}, D], got {list(mean.shape)} / {list(logvar.shape)}"
                )
            std = torch.exp(0.5 * logvar)
            per_call = max(1, batch_size // n)
            log_w = []
            for k0 in range(0, num_samples, per_call):
                k = min(per_call, num_samples - k0)
                eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
                z = mean + std * eps  # [k, n, D]
                x_rep = xb.unsqueeze(0).expand(k, *xb.shape).reshape(k * n, *xb.shape[1:])
                lp = log_px_given_z(x_rep, z.reshape(k * n, -1))
                if lp.shape != (k * n,):
                    raise ShapeError(f"log_px_given_z must return [{k * n}], got {list(lp.shape)}")
                lp = lp.reshape(k, n).to(torch.float64)
                zd = z.to(torch.float64)
                log_prior = -0.5 * (zd.pow(2) + _LOG_2PI).sum(dim=-1)
                log_q = _diag_normal_log_prob(zd, mean.to(torch.float64), logvar.to(torch.float64))
                log_w.append(lp + log_prior - log_q)
            log_px = torch.logsumexp(torch.cat(log_w, dim=0), dim=0) - math.log(num_samples)
            out.append(-log_px.cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
