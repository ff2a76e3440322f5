"""Second-stage VAE and two-stage composite of Dai & Wipf (ICLR 2019, arXiv:1903.05789)."""

from __future__ import annotations

import torch
from torch import nn

from latentstudio.errors import ShapeError
from latentstudio.models.base import PretrainedMixin
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.losses import gaussian_nll
from latentstudio.models.registry import register_model
from latentstudio.models.two_stage.config import SecondStageConfig, TwoStageConfig
from latentstudio.models.vae.model import VAE
from latentstudio.types import LossOutput


def _mlp(in_dim: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


@register_model("second-stage-vae")
class SecondStageVAE(PretrainedMixin, nn.Module):
    """Dense VAE q(u | z), p(z | u) with learned scalar gamma_z.

    Encoder: [z, c] -> second_depth x (dense second_dim, ReLU) -> concat([z, c], features)
    -> dense mu_u, dense log sd_u. Decoder mirrors it from [u, c] and outputs z_hat; the loss is
    the first stage's Gaussian loss on z (SPEC section 1).
    """

    config_class = SecondStageConfig

    def __init__(self, config: SecondStageConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        d_in = c.latent_dim + c.cond_dim
        self.enc = _mlp(d_in, c.second_dim, c.second_depth)
        self.enc_mu = nn.Linear(d_in + c.second_dim, c.latent_dim)
        self.enc_logsd = nn.Linear(d_in + c.second_dim, c.latent_dim)
        self.dec = _mlp(d_in, c.second_dim, c.second_depth)
        self.dec_out = nn.Linear(d_in + c.second_dim, c.latent_dim)
        loggamma = torch.log(torch.tensor(float(c.gamma_init)))
        if c.learn_gamma:
            self.loggamma = nn.Parameter(loggamma)
        else:
            self.register_buffer("loggamma", loggamma)

    def _join(self, v: torch.Tensor, cond: torch.Tensor | None, name: str) -> torch.Tensor:
        c = self.config
        if v.ndim != 2 or v.shape[1] != c.latent_dim:
            raise ShapeError(f"{name}: expected [N, {c.latent_dim}], got {list(v.shape)}")
        if c.cond_dim == 0:
            if cond is not None:
                raise ShapeError("this second stage is unconditional; do not pass a condition")
            return v
        if cond is None or cond.shape != (v.shape[0], c.cond_dim):
            got = None if cond is None else list(cond.shape)
            raise ShapeError(f"cond: expected [{v.shape[0]}, {c.cond_dim}], got {got}")
        return torch.cat([v, cond.to(v.dtype)], dim=1)

    @property
    def gamma(self) -> torch.Tensor:
        """gamma_z = exp(log gamma_z), a scalar tensor."""
        return self.loggamma.exp()

    def encode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(u | z, c): ``z: [N, latent_dim]`` -> DiagonalGaussian over ``u [N, latent_dim]``."""
        t = self._join(z, cond, "z")
        h = torch.cat([t, self.enc(t)], dim=1)
        return DiagonalGaussian(self.enc_mu(h), 2.0 * self.enc_logsd(h))

    def decode(self, u: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(z | u, c): ``u: [N, latent_dim]`` -> ``z_hat [N, latent_dim]``."""
        t = self._join(u, cond, "u")
        return self.dec_out(torch.cat([t, self.dec(t)], dim=1))

    def loss(
        self, z: torch.Tensor, cond: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> LossOutput:
        """kl(u) + Gaussian nll of z with gamma_z, batch-averaged, in nats (terms as the first stage)."""
        posterior = self.encode(z, cond)
        u = posterior.sample(generator)
        z_hat = self.decode(u, cond)
        kl = posterior.kl().mean()
        nll = gaussian_nll(z, z_hat, self.loggamma).mean()
        total = nll + self.config.beta * kl
        mse = (z - z_hat).pow(2).mean()
        return LossOutput(total, {"loss": total, "kl": kl, "nll": nll, "mse": mse, "gamma": self.gamma.detach()})


@register_model("two-stage-vae")
class TwoStageVAE(PretrainedMixin, nn.Module):
    """First-stage :class:`VAE` plus :class:`SecondStageVAE`; generation u -> z -> x.

    Attributes:
        stage1: the image VAE.
        stage2: the latent VAE trained on stage1's ``mu + sd * eps``.
    """

    config_class = TwoStageConfig

    def __init__(self, config: TwoStageConfig) -> None:
        super().__init__()
        self.config = config
        self.stage1 = VAE(config.stage1)
        self.stage2 = SecondStageVAE(config.stage2)

    @torch.no_grad()
    def generate(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` images ``float32 [n, C, H, W]`` in [0, 1]: u ~ N(0, I) -> decoder 2 -> z -> decoder 1."""
        device = self.stage1.loggamma.device
        u = torch.randn(n, self.config.stage2.latent_dim, generator=generator, device=device)
        z = self.stage2.decode(u, cond)
        return self.stage1.decode(z, cond)
