"""Likelihood terms shared by the VAE stages (per example, in nats)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, loggamma: torch.Tensor) -> torch.Tensor:
    """-log N(x; x_hat, gamma^2 I) per example, in nats: ``[N, ...] -> [N]``.

    Dai & Wipf (2019) eq. of the learned-variance decoder (SPEC section 1):
    ``sum( ((x - x_hat) / gamma)^2 / 2 + log gamma + log(2 pi) / 2 )`` over all non-batch dims,
    with ``gamma = exp(loggamma)`` a scalar standard deviation.
    """
    gamma = torch.exp(loggamma)
    per = ((x - x_hat) / gamma).pow(2) / 2 + loggamma + HALF_LOG_2PI
    return per.flatten(1).sum(dim=1)


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(x; sigmoid(logits)) per example, in nats (binary cross-entropy summed): ``[N]``.

    ``x`` may be in [0, 1] (non-binary targets give the usual continuous BCE).
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)
