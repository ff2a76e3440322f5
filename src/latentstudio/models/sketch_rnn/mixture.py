"""The output distribution of sketch-rnn: a bivariate Gaussian mixture of offsets and pen-state logits.

Ha & Eck 2017, eq. 3-4: at each step the decoder emits ``6 M + 3`` numbers, split (as the
reference implementation does) into 3 pen logits, then M mixture logits ``pi``, means
``mu_x, mu_y``, log standard deviations and correlation pre-activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class StrokeMixture:
    """Per-step output distribution; every field has shape ``[..., M]`` except ``pen_logits [..., 3]``.

    Attributes:
        pi_logits: unnormalised mixture weights.
        mu_x, mu_y: component means (normalised offset units).
        log_sigma_x, log_sigma_y: log standard deviations, floored at ``log(sigma_min)``.
        rho: correlations ``tanh(.)`` clamped to ``[-rho_max, rho_max]``.
        pen_logits: logits of (pen down, pen up, end of sketch).
    """

    pi_logits: torch.Tensor
    mu_x: torch.Tensor
    mu_y: torch.Tensor
    log_sigma_x: torch.Tensor
    log_sigma_y: torch.Tensor
    rho: torch.Tensor
    pen_logits: torch.Tensor

    @classmethod
    def from_output(cls, y: torch.Tensor, num_mixture: int, sigma_min: float = 1e-4,
                    rho_max: float = 0.99999) -> StrokeMixture:
        """Split the output layer ``y [..., 6M + 3]`` and apply the numerical guards."""
        if y.shape[-1] != 6 * num_mixture + 3:
            raise ValueError(f"expected {6 * num_mixture + 3} outputs for M={num_mixture}, got {y.shape[-1]}")
        pen = y[..., :3]
        pi, mx, my, lsx, lsy, r = y[..., 3:].split(num_mixture, dim=-1)
        floor = math.log(sigma_min)
        return cls(pi, mx, my, lsx.clamp(min=floor), lsy.clamp(min=floor),
                   torch.tanh(r).clamp(-rho_max, rho_max), pen)

    def component_log_prob(self, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """log N(dx, dy | mu, Sigma) of each component: ``dx, dy [...]`` -> ``[..., M]`` nats."""
        sx, sy = self.log_sigma_x.exp(), self.log_sigma_y.exp()
        zx = (dx.unsqueeze(-1) - self.mu_x) / sx
        zy = (dy.unsqueeze(-1) - self.mu_y) / sy
        one_m_r2 = 1.0 - self.rho * self.rho
        z = zx * zx + zy * zy - 2.0 * self.rho * zx * zy
        return -z / (2.0 * one_m_r2) - LOG_2PI - self.log_sigma_x - self.log_sigma_y - 0.5 * torch.log(one_m_r2)

    def offset_log_prob(self, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """log p(dx, dy) = log sum_j pi_j N_j(dx, dy), computed with log-sum-exp: ``[...]`` nats."""
        return torch.logsumexp(F.log_softmax(self.pi_logits, dim=-1) + self.component_log_prob(dx, dy), dim=-1)

    def offset_nll(self, dx: torch.Tensor, dy: torch.Tensor, log_eps: float = 1e-6) -> torch.Tensor:
        """``-log(p(dx, dy) + eps)`` (the reference's guarded log), stable in log space: ``[...]`` nats."""
        lp = self.offset_log_prob(dx, dy)
        if log_eps > 0:
            lp = torch.logaddexp(lp, torch.full_like(lp, math.log(log_eps)))
        return -lp

    def pen_nll(self, pen_onehot: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the pen state: ``pen_onehot [..., 3]`` -> ``[...]`` nats."""
        return -(F.log_softmax(self.pen_logits, dim=-1) * pen_onehot).sum(-1)

    def sample(self, temperature: float = 1.0, greedy: bool = False,
               generator: torch.Generator | None = None, rule: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one step: ``(offsets [..., 2], pen index [...] in {0, 1, 2})``.

        Temperature tau: mixture and pen logits are divided by tau. ``rule="paper"`` (Ha & Eck,
        section 3.3) multiplies the component variances by tau (sigma by sqrt(tau));
        ``rule="reference"`` multiplies sigma by tau^2, as the reference sampler does. ``greedy``
        takes the most likely pen state and component and that component's mean.

        Raises:
            ValueError: an unknown ``rule``.
        """
        if rule not in ("paper", "reference"):
            raise ValueError(f"rule must be 'paper' or 'reference', got {rule!r}")
        lead = self.pi_logits.shape[:-1]
        if greedy:
            pen = self.pen_logits.argmax(-1)
            comp = self.pi_logits.argmax(-1, keepdim=True)
            mx = self.mu_x.gather(-1, comp).squeeze(-1)
            my = self.mu_y.gather(-1, comp).squeeze(-1)
            return torch.stack([mx, my], dim=-1), pen
        tau = max(float(temperature), 1e-12)
        pen_p = F.softmax(self.pen_logits.reshape(-1, 3) / tau, dim=-1)
        pen = torch.multinomial(pen_p, 1, generator=generator).view(lead)
        pi_p = F.softmax(self.pi_logits.reshape(-1, self.pi_logits.shape[-1]) / tau, dim=-1)
        comp = torch.multinomial(pi_p, 1, generator=generator).view(*lead, 1)
        pick = [t.gather(-1, comp).squeeze(-1) for t in (self.mu_x, self.mu_y, self.log_sigma_x,
                                                         self.log_sigma_y, self.rho)]
        mx, my, lsx, lsy, rho = pick
        eps = torch.randn((*lead, 2), generator=generator, device=mx.device, dtype=mx.dtype)
        s = math.sqrt(tau) if rule == "paper" else tau * tau
        x = mx + lsx.exp() * s * eps[..., 0]
        y = my + lsy.exp() * s * (rho * eps[..., 0] + torch.sqrt(1.0 - rho * rho) * eps[..., 1])
        return torch.stack([x, y], dim=-1), pen
