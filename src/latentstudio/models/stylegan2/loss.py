"""StyleGAN2 training objectives (Karras et al. 2020, section 3 and appendix B).

- Non-saturating logistic loss (Goodfellow et al. 2014): ``L_G = softplus(-D(G(z)))``,
  ``L_D = softplus(D(G(z))) + softplus(-D(x))``.
- R1 regularisation (Mescheder et al. 2018): ``gamma / 2 * ||grad_x D(x)||^2`` on real images,
  computed lazily every ``r1_interval`` minibatches and scaled by the interval.
- Path-length regularisation (StyleGAN2 eq. 4): ``E_{w,y} (||J_w^T y||_2 - a)^2`` with
  ``y ~ N(0, I) / sqrt(H W)`` and ``a`` the running mean of the lengths (decay ``pl_decay``),
  weight ``pl_weight``, every ``pl_interval`` minibatches on ``N / pl_batch_shrink`` samples.
- Style-mixing regularisation (StyleGAN section 3.1): with probability ``style_mixing_prob`` the
  styles from a random cutoff on come from a second latent.

Each phase returns a :class:`~latentstudio.types.LossOutput` whose ``loss`` is what to back-propagate
(regularisers already multiplied by their interval) and whose ``terms`` are per-sample means for logs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.errors import CapabilityError
from latentstudio.types import LossOutput


class StyleGAN2Loss(nn.Module):
    """The four training phases of StyleGAN2: G main, G path length, D main, D R1.

    Args:
        G, D: generator and discriminator (not owned: the loss holds references).
        r1_gamma: R1 weight gamma (paper: 10 at 1024x1024 FFHQ; ``0.0002 R^2 / N`` is a good default).
        pl_weight: path-length weight (2; 0 disables it).
        pl_batch_shrink / pl_decay: batch fraction and running-mean decay of the path-length term.
        style_mixing_prob: probability of mixing two latents in a generated batch (0.9; 0 disables).

    Raises:
        CapabilityError: ``G`` is class-conditional (those generators are converted and sampled, not trained).

    Buffers:
        pl_mean: ``float []`` the running mean ``a`` of path lengths (saved with the training state).
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        *,
        r1_gamma: float = 10.0,
        pl_weight: float = 2.0,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        style_mixing_prob: float = 0.9,
    ) -> None:
        super().__init__()
        if getattr(G, "c_dim", 0):
            raise CapabilityError(f"this StyleGAN2 generator is class-conditional ({G.c_dim} classes): it samples "
                                  "(sample --condition CLASS) but is not trained or fine-tuned here")
        self._nets = (G, D)  # a tuple keeps them out of this module's parameters / state dict
        self.r1_gamma, self.pl_weight = r1_gamma, pl_weight
        self.pl_batch_shrink, self.pl_decay = pl_batch_shrink, pl_decay
        self.style_mixing_prob = style_mixing_prob
        self.register_buffer("pl_mean", torch.zeros([]))

    @property
    def G(self) -> nn.Module:
        return self._nets[0]

    @property
    def D(self) -> nn.Module:
        return self._nets[1]

    def run_G(self, z: torch.Tensor, generator: torch.Generator | None, *, update_w_avg: bool = True):
        """Generate with style mixing: returns ``(images float [N, C, R, R], ws [N, num_ws, w_dim])``."""
        G = self.G
        ws = G.mapping(z, update_w_avg=update_w_avg)
        if self.style_mixing_prob > 0:
            u = torch.rand([], device=z.device, generator=generator)
            cutoff = int(torch.randint(1, ws.shape[1], [], device=z.device, generator=generator))
            if float(u) < self.style_mixing_prob:
                z2 = torch.randn(z.shape, device=z.device, generator=generator)
                ws = ws.clone()
                ws[:, cutoff:] = G.mapping(z2)[:, cutoff:]
        img = G.synthesis(ws, noise_mode="random", generator=generator)
        return img, ws

    def g_main(self, z: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Non-saturating generator loss ``mean softplus(-D(G(z)))``."""
        img, _ = self.run_G(z, generator)
        logits = self.D(img)
        loss = F.softplus(-logits).mean()
        return LossOutput(loss, {"loss_g": loss.detach(), "fake_score": logits.detach().mean()})

    def g_pl(self, z: torch.Tensor, interval: int, generator: torch.Generator | None = None) -> LossOutput:
        """Path-length penalty on ``N // pl_batch_shrink`` samples, times ``interval`` (lazy regularisation)."""
        n = max(1, z.shape[0] // self.pl_batch_shrink)
        img, ws = self.run_G(z[:n], generator, update_w_avg=False)
        h, w = img.shape[2], img.shape[3]
        y = torch.randn(img.shape, device=img.device, generator=generator) / math.sqrt(h * w)
        (grads,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        with torch.no_grad():
            a = self.pl_mean.lerp(lengths.mean().float(), self.pl_decay)
            self.pl_mean.copy_(a)
        penalty = (lengths - a).square().mean()
        total = (img[:, 0, 0, 0] * 0).sum() + penalty * self.pl_weight * interval
        return LossOutput(total, {"pl_penalty": penalty.detach(), "pl_mean": a.detach()})

    def d_main(self, real: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Discriminator logistic loss ``mean softplus(D(G(z))) + mean softplus(-D(x))`` (G frozen)."""
        with torch.no_grad():
            fake, _ = self.run_G(z, generator, update_w_avg=False)
        fake_logits = self.D(fake)
        real_logits = self.D(real)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        return LossOutput(loss, {"loss_d": loss.detach(), "real_score": real_logits.detach().mean(),
                                 "fake_score_d": fake_logits.detach().mean()})

    def d_r1(self, real: torch.Tensor, interval: int) -> LossOutput:
        """R1 penalty ``gamma / 2 * mean ||grad_x D(x)||^2`` on real images, times ``interval``."""
        x = real.detach().requires_grad_(True)
        logits = self.D(x)
        (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        penalty = grads.square().sum([1, 2, 3]).mean()
        total = (logits * 0).sum() + penalty * (self.r1_gamma / 2) * interval
        return LossOutput(total, {"r1_penalty": penalty.detach()})
