"""Second-stage VAE and two-stage composite of Dai & Wipf (ICLR 2019, arXiv:1903.05789)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from latentstudio.errors import ShapeError
from latentstudio.models.base import LatentSpace
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.losses import gaussian_nll
from latentstudio.models.registry import register_model
from latentstudio.models.two_stage.config import SecondStageConfig, TwoStageConfig
from latentstudio.models.vae.model import VAE, LatentImageModel
from latentstudio.types import Batch, LossOutput


def _mlp(in_dim: int, width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


class SecondStageVAE(nn.Module):
    """Dense VAE q(u | z), p(z | u) with learned scalar gamma_z (a component of :class:`TwoStageVAE`).

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

    def posterior(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(u | z, c): ``z: [N, latent_dim]`` -> DiagonalGaussian over ``u [N, latent_dim]``."""
        t = self._join(z, cond, "z")
        h = torch.cat([t, self.enc(t)], dim=1)
        return DiagonalGaussian(self.enc_mu(h), 2.0 * self.enc_logsd(h))

    def decode(self, u: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(z | u, c): ``u: [N, latent_dim]`` -> ``z_hat [N, latent_dim]``."""
        t = self._join(u, cond, "u")
        return self.dec_out(torch.cat([t, self.dec(t)], dim=1))

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """kl(u) + Gaussian nll of z with gamma_z, batch-averaged, in nats (terms as the first stage).

        Args:
            batch: ``x`` first-stage latents ``float32 [N, latent_dim]``, ``condition`` ``[N, cond_dim]``.
        """
        z, cond = batch.x, batch.condition
        posterior = self.posterior(z, cond)
        u = posterior.sample(generator)
        z_hat = self.decode(u, cond)
        kl = posterior.kl().mean()
        nll = gaussian_nll(z, z_hat, self.loggamma).mean()
        total = nll + self.config.beta * kl
        mse = (z - z_hat).pow(2).mean()
        return LossOutput(total, {"loss": total, "kl": kl, "nll": nll, "mse": mse, "gamma": self.gamma.detach()})


@register_model("two-stage-vae")
class TwoStageVAE(LatentImageModel):
    """First-stage :class:`VAE` plus :class:`SecondStageVAE` (Dai & Wipf 2019); generation u -> z -> x.

    Attributes:
        stage1: the image VAE.
        stage2: the latent VAE trained on stage1's ``mu + sd * eps``.

    Latent spaces: ``z`` (stage 1) and ``u`` (stage 2; ``decode(u, space="u")`` maps u -> z -> x).
    Sampler ``second-stage``: u ~ N(0, I) decoded by stage 2 (the paper's sampler, the default).

    :meth:`loss` of an image batch is the first stage's negative ELBO; the second stage is trained
    afterwards on the first stage's latents with ``stage2.loss(Batch(z))``, as in the paper.
    """

    config_class = TwoStageConfig
    own_samplers = ("normal", "second-stage")

    @classmethod
    def example_config(cls, **overrides: Any) -> TwoStageConfig:
        """Tiny stages; ``overrides`` go to the first stage (``condition``/``cond_dim`` to both)."""
        s1 = VAE.example_config(**overrides)
        return TwoStageConfig(stage1=s1, stage2=SecondStageConfig(latent_dim=s1.latent_dim, second_depth=1,
                                                                  second_dim=8, condition=s1.condition,
                                                                  cond_dim=s1.cond_dim))

    def __init__(self, config: TwoStageConfig) -> None:
        super().__init__()
        self.config = config
        self.stage1 = VAE(config.stage1)
        self.stage2 = SecondStageVAE(config.stage2)

    @property
    def image_vae(self) -> VAE:
        return self.stage1

    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        d = self.config.stage1.latent_dim
        return (LatentSpace("z", (d,), "second stage: z = decoder2(u), u ~ N(0, I)",
                            description="first-stage latent"),
                LatentSpace("u", (d,), "N(0, I)", description="second-stage latent"))

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """The first stage's loss (:meth:`VAE.loss`) on an image batch."""
        return self.stage1.loss(batch, step=step, generator=generator)

    def sample_latents(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                       sampler: str) -> torch.Tensor:
        if sampler != "second-stage":
            return super().sample_latents(n, generator=generator, condition=condition, sampler=sampler)
        u = torch.randn(n, self.config.stage2.latent_dim, generator=generator)
        return self.to_first_stage(u, "u", condition).cpu()

    def to_first_stage(self, z: torch.Tensor, space: str, condition: torch.Tensor | None) -> torch.Tensor:
        """``u -> z`` through the second stage's decoder mean (eval mode) for ``space="u"``."""
        if space != "u":
            return z
        was = self.stage2.training
        self.stage2.eval()
        with torch.no_grad():
            out = self.stage2.decode(z.to(self.device), None if condition is None else condition.to(self.device))
        self.stage2.train(was)
        return out
