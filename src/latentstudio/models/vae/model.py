"""First-stage VAE of Dai & Wipf, "Diagnosing and Enhancing VAE Models" (ICLR 2019, arXiv:1903.05789)."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentstudio.errors import ShapeError
from latentstudio.models.base import PretrainedMixin
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.layers import scale_block, scale_fc_block
from latentstudio.models.losses import bernoulli_nll, gaussian_nll
from latentstudio.models.registry import register_model
from latentstudio.models.vae.config import VAEConfig
from latentstudio.types import LossOutput


@register_model("vae")
class VAE(PretrainedMixin, nn.Module):
    """ResNet VAE with a learned (or fixed) scalar decoder standard deviation gamma.

    Encoder: 3x3 conv (base_dim) -> num_scale x [ScaleBlock; stride-2 conv doubling the width]
    -> global mean over H, W -> [concat condition] -> dense ScaleBlock (fc_dim) -> mu, logvar.
    Decoder: [z, condition] -> dense 2x2xdims[0] -> (transposed conv x2 -> ScaleBlock) until
    image_size -> 3x3 conv -> sigmoid. Widths double per halving from base_dim, capped at 1024.

    Args:
        config: :class:`VAEConfig`.
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # ---- encoder
        self.enc_in = nn.Conv2d(c.image_channels, c.base_dim, 3, padding=1)
        blocks: list[nn.Module] = []
        dim = c.base_dim
        for i in range(c.num_scale):
            blocks.append(scale_block(dim, dim, c.block_per_scale, c.depth_per_block))
            if i != c.num_scale - 1:
                blocks.append(nn.Conv2d(dim, min(dim * 2, 1024), 3, stride=2, padding=1))
                dim = min(dim * 2, 1024)
        self.enc_convs = nn.Sequential(*blocks)
        self.enc_fc = scale_fc_block(dim + c.cond_dim, c.fc_dim, c.block_per_scale, c.depth_per_block)
        self.enc_mu = nn.Linear(c.fc_dim, c.latent_dim)
        self.enc_logsd = nn.Linear(c.fc_dim, c.latent_dim)
        # ---- decoder
        n_up = int(math.log2(c.image_size)) - 1  # 2x2 -> image_size
        dims = [min(c.base_dim * 2**i, 1024) for i in range(n_up + 1)][::-1]  # at 2x2 ... full res
        self.dec_dims = dims
        self.dec_fc = nn.Linear(c.latent_dim + c.cond_dim, 2 * 2 * dims[0])
        ups: list[nn.Module] = []
        for i in range(n_up):
            ups.append(nn.ConvTranspose2d(dims[i], dims[i + 1], 4, stride=2, padding=1))
            ups.append(scale_block(dims[i + 1], dims[i + 1], c.block_per_scale, c.depth_per_block))
        self.dec_ups = nn.Sequential(*ups)
        self.dec_out = nn.Conv2d(dims[-1], c.image_channels, 3, padding=1)
        # ---- decoder variance: one scalar, log gamma
        loggamma = torch.tensor(math.log(c.gamma_init))
        if c.learn_gamma:
            self.loggamma = nn.Parameter(loggamma)
        else:
            self.register_buffer("loggamma", loggamma)

    # ------------------------------------------------------------------ checks
    def _check_x(self, x: torch.Tensor) -> None:
        c = self.config
        want = (c.image_channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want or not x.is_floating_point():
            raise ShapeError(
                f"VAE input: expected float [N, {want[0]}, {want[1]}, {want[2]}] in [0, 1] "
                f"(convert uint8 images with latentstudio.io.images.to_float), got {x.dtype} {list(x.shape)}"
            )

    def _check_cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        c = self.config
        if c.cond_dim == 0:
            if cond is not None:
                raise ShapeError("this VAE is unconditional; do not pass a condition")
            return None
        if cond is None:
            raise ShapeError(f"this VAE is conditional ({c.condition}); pass cond [N, {c.cond_dim}]")
        if cond.ndim != 2 or cond.shape != (n, c.cond_dim):
            raise ShapeError(f"cond: expected [{n}, {c.cond_dim}], got {list(cond.shape)}")
        return cond.to(self.loggamma.dtype)

    # ------------------------------------------------------------------ API
    @property
    def gamma(self) -> torch.Tensor:
        """Decoder standard deviation gamma = exp(log gamma), a scalar tensor."""
        return self.loggamma.exp()

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """Posterior q(z | x, c).

        Args:
            x: ``float32 [N, C, H, W]`` in [0, 1].
            cond: ``float32 [N, cond_dim]`` (one-hot class or +-1 attributes) for conditional models.

        Returns:
            :class:`DiagonalGaussian` with ``mean``/``logvar`` ``[N, latent_dim]``.

        Raises:
            ShapeError: wrong image shape/dtype or a missing/unexpected condition.
        """
        self._check_x(x)
        cond = self._check_cond(cond, x.shape[0])
        h = self.enc_convs(self.enc_in(x)).mean(dim=(2, 3))
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        h = self.enc_fc(h)
        return DiagonalGaussian(self.enc_mu(h), 2.0 * self.enc_logsd(h))

    def decode_logits(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-sigmoid decoder output ``[N, C, H, W]`` for ``z: [N, latent_dim]``."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ShapeError(f"z: expected [N, {self.config.latent_dim}], got {list(z.shape)}")
        cond = self._check_cond(cond, z.shape[0])
        h = z if cond is None else torch.cat([z, cond], dim=1)
        h = self.dec_fc(h).view(-1, self.dec_dims[0], 2, 2)
        return self.dec_out(self.dec_ups(h))

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean ``float32 [N, C, H, W]`` in [0, 1] for ``z: [N, latent_dim]``."""
        return torch.sigmoid(self.decode_logits(z, cond))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | z, c) per example in nats, ``[N]`` (Gaussian with gamma, or Bernoulli)."""
        logits = self.decode_logits(z, cond)
        if self.config.decoder == "bernoulli":
            return -bernoulli_nll(x, logits)
        return -gaussian_nll(x, torch.sigmoid(logits), self.loggamma)

    def loss(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> LossOutput:
        """Negative ELBO of Dai & Wipf (SPEC section 1), averaged over the batch, in nats per image.

        ``kl = sum(mu^2 + sd^2 - 2 log sd - 1) / 2 / N``;
        Gaussian: ``nll = sum(((x - x_hat) / gamma)^2 / 2 + log gamma + log(2 pi) / 2) / N``;
        Bernoulli: ``nll = BCE(x, x_hat) summed / N``; ``total = nll + beta * kl``.

        Args:
            x: ``float32 [N, C, H, W]`` in [0, 1].
            cond: condition ``[N, cond_dim]`` for conditional models.
            generator: source of the reparameterisation noise.

        Returns:
            :class:`LossOutput` with terms ``loss``, ``kl``, ``nll``, ``mse`` (per pixel), ``gamma``.
        """
        posterior = self.encode(x, cond)
        z = posterior.sample(generator)
        logits = self.decode_logits(z, cond)
        x_hat = torch.sigmoid(logits)
        kl = posterior.kl().mean()
        if self.config.decoder == "bernoulli":
            nll = bernoulli_nll(x, logits).mean()
        else:
            nll = gaussian_nll(x, x_hat, self.loggamma).mean()
        total = nll + self.config.beta * kl
        mse = (x - x_hat).pow(2).mean()
        return LossOutput(
            total, {"loss": total, "kl": kl, "nll": nll, "mse": mse, "gamma": self.gamma.detach()}
        )

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean of the posterior mean: ``[N, C, H, W]`` in [0, 1]."""
        return self.decode(self.encode(x, cond).mode(), cond)
