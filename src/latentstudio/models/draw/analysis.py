"""Per-step analysis of a trained DRAW model: KL per step, variance law and inactive latents per step.

DRAW's posterior is sequential: Q(z_t | h_enc_t) depends on x and on the sampled z_{<t}. The
statistics here are taken along sampled inference passes (the same passes that training uses), so
that ``sum_t KL_t`` is the KL term of the loss. The variance law ``Var_x(mu) + E_x[sd^2] ~ 1`` and the
inactive count ``E_x[sd^2] > 0.9`` (SPEC section 2) are computed for every latent of every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentstudio.io.images import to_float
from latentstudio.metrics.latent import INACTIVE_THRESHOLD, variance_law
from latentstudio.models.draw.model import DRAW


@dataclass
class StepPosteriors:
    """Posterior parameters of N images along one sampled pass each.

    Attributes:
        mu, logvar: ``float32 [N, T, latent_dim]`` on CPU.
        log_px: ``float64 [N]`` log D(x | z) of each pass in nats (the reconstruction term), or None.
    """

    mu: torch.Tensor
    logvar: torch.Tensor
    log_px: torch.Tensor | None = None

    def negative_elbo(self) -> torch.Tensor:
        """``-log D(x | z) + sum_t KL_t`` per image in nats, ``float64 [N]`` (one posterior sample each)."""
        if self.log_px is None:
            raise ValueError("no reconstruction term recorded (collect_posteriors records it)")
        mu, lv = self.mu.double(), self.logvar.double()
        return -self.log_px + (0.5 * (mu.pow(2) + lv.exp() - lv - 1.0)).sum(dim=(1, 2))

    def kl_steps(self) -> torch.Tensor:
        """Mean over images of KL_t in nats: ``float64 [T]``; its sum is the KL term of the loss."""
        mu, lv = self.mu.double(), self.logvar.double()
        return (0.5 * (mu.pow(2) + lv.exp() - lv - 1.0).sum(dim=-1)).mean(dim=0)

    def variance_law(self) -> torch.Tensor:
        """``Var_x(mu) + E_x[sd^2]`` of every latent: ``float64 [T, latent_dim]`` (1 is ideal)."""
        n, t, d = self.mu.shape
        return variance_law(self.mu.reshape(n, t * d), self.logvar.reshape(n, t * d)).view(t, d)

    def inactive_per_step(self, threshold: float = INACTIVE_THRESHOLD) -> torch.Tensor:
        """Number of latents with ``E_x[sd^2] > threshold`` at each step: ``int64 [T]``."""
        return (self.logvar.double().exp().mean(dim=0) > threshold).sum(dim=-1)


@torch.no_grad()
def collect_posteriors(
    model: DRAW,
    images: torch.Tensor,
    cond: torch.Tensor | None = None,
    *,
    binarize: bool = False,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> StepPosteriors:
    """Run sampled inference passes over a dataset and keep mu_t, logvar_t of every step.

    Args:
        model: a DRAW model (evaluated in its current mode; callers use eval mode).
        images: ``uint8 [N, C, H, W]``.
        cond: one-hot ``[N, cond_dim]`` for conditional models.
        binarize: threshold the images at 0.5 first (as for binarised MNIST).
        batch_size: images per pass.
        generator: noise of the passes (on the model's device).

    Returns:
        :class:`StepPosteriors` (with ``log_px`` of every pass).
    """
    mus, logvars, log_px = [], [], []
    for i in range(0, images.shape[0], batch_size):
        x = to_float(images[i : i + batch_size])
        if binarize:
            x = (x > 0.5).float()
        c = None if cond is None else cond[i : i + batch_size]
        x = x.to(model.device)
        p = model.infer(x, c, generator)
        mus.append(p.mu.float().cpu())
        logvars.append(p.logvar.float().cpu())
        log_px.append(model.log_px(x, p.logits).double().cpu())
    return StepPosteriors(torch.cat(mus), torch.cat(logvars), torch.cat(log_px))
