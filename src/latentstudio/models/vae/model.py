"""First-stage VAE of Dai & Wipf, "Diagnosing and Enhancing VAE Models" (ICLR 2019, arXiv:1903.05789)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from latentstudio.errors import ConfigError, ShapeError
from latentstudio.io.images import to_float, to_uint8
from latentstudio.metrics.likelihood import importance_sampled_nll
from latentstudio.models.base import (
    DECODE,
    ENCODE,
    NLL,
    RECONSTRUCT,
    ConditionSpec,
    GenerativeModel,
    Knob,
    LatentSpace,
)
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.layers import scale_block, scale_fc_block
from latentstudio.models.losses import bernoulli_nll, gaussian_nll
from latentstudio.models.registry import register_model
from latentstudio.models.vae.config import VAEConfig
from latentstudio.types import Batch, LossOutput, check_images

#: Latents decoded per forward pass when sampling or reconstructing (bounds memory).
DECODE_BATCH = 256


class LatentImageModel(GenerativeModel):
    """What the VAE family shares: a first-stage image VAE (``self.image_vae``) whose z is drawn by a
    named sampler (knob ``sampler``): ``normal`` (z ~ N(0, I)), fitted samplers attached from the model
    folder (``gmm``), and the family's own (``second-stage``).

    Batches: ``Batch(x=images uint8 [N, C, H, W], condition=[N, cond_dim] or None)``.
    """

    output_kind: ClassVar[str] = "images"
    capabilities: ClassVar[frozenset[str]] = frozenset({ENCODE, DECODE, RECONSTRUCT, NLL})
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("sampler", "normal", "latent sampler: normal (N(0, I)), gmm (ex-post mixture) or second-stage",
             kind=str),
    )
    #: Samplers the family draws from without fitted state, best first.
    own_samplers: ClassVar[tuple[str, ...]] = ("normal",)

    @property
    def image_vae(self) -> VAE:
        raise NotImplementedError

    @property
    def condition_spec(self) -> ConditionSpec:
        c = self.image_vae.config
        return ConditionSpec(c.condition, c.cond_dim)

    def sampler_choices(self) -> tuple[str, ...]:
        """``normal``, the family's own samplers and every fitted sampler attached to the model."""
        return tuple(dict.fromkeys([*self.own_samplers, *self.samplers]))

    def default_knobs(self) -> dict[str, Any]:
        """The best sampler available: second stage, else a fitted GMM, else N(0, I)."""
        names = self.sampler_choices()
        best = next((s for s in ("second-stage", "gmm") if s in names), "normal")
        return {"sampler": best}

    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        return (LatentSpace("z", (self.image_vae.config.latent_dim,), "N(0, I)",
                            description="first-stage latent (Dai & Wipf)"),)

    def example_batch(self, n: int = 4, generator: torch.Generator | None = None) -> Batch:
        c = self.image_vae.config
        x = torch.randint(0, 256, (n, c.image_channels, c.image_size, c.image_size), generator=generator,
                          dtype=torch.uint8)
        return Batch(x, self.condition_spec.make(None, n))

    # ---------------------------------------------------------------- sampling
    def sample_latents(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                       sampler: str) -> torch.Tensor:
        """``float32 [n, latent_dim]`` first-stage latents drawn by ``sampler`` (on CPU)."""
        if sampler == "normal":
            return torch.randn(n, self.image_vae.config.latent_dim, generator=generator)
        if sampler not in self.samplers:
            raise ConfigError(f"unknown sampler {sampler!r}; this model has: {', '.join(self.sampler_choices())}")
        return self.samplers[sampler].sample(n, generator, condition)

    def latent_sampler(self, name: str) -> Any:
        """The sampler ``name`` as an object with ``sample(n, generator=None, cond=None) -> [n, latent_dim]``
        (fitted ones as stored; the family's own ones drawn through :meth:`sample_latents`).

        Raises:
            ConfigError: unknown name (the model's samplers are listed).
        """
        if name in self.samplers:
            return self.samplers[name]
        if name not in self.own_samplers:
            raise ConfigError(f"unknown sampler {name!r}; this model has: {', '.join(self.sampler_choices())}")
        return _OwnSampler(self, name)

    def _sample(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                sampler: str) -> torch.Tensor:
        z = self.sample_latents(n, generator=generator, condition=condition, sampler=sampler)
        return self._decode_z(z, condition)

    def _decode_z(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        vae = self.image_vae
        out = []
        for i in range(0, z.shape[0], DECODE_BATCH):
            c = None if condition is None else condition[i : i + DECODE_BATCH].to(vae.device)
            out.append(to_uint8(vae.decode_mean(z[i : i + DECODE_BATCH].to(vae.device), c).cpu()))
        return torch.cat(out)

    # ---------------------------------------------------------------- capabilities
    def _images(self, x: torch.Tensor, condition: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        c = self.image_vae.config
        check_images(x, (c.image_channels, c.image_size, c.image_size))
        return to_float(x).to(self.device), self.condition_spec.make(condition, x.shape[0])

    def encode(self, x: torch.Tensor, *, condition: Any = None) -> DiagonalGaussian:
        """Posterior q(z | x, c) of images ``uint8 [N, C, H, W]``: ``DiagonalGaussian [N, latent_dim]`` on CPU.

        Runs the encoder in eval mode (batch-norm running statistics), ``DECODE_BATCH`` images at a time,
        on the model's device.
        """
        vae = self.image_vae
        cond = self.condition_spec.make(condition, x.shape[0])
        was = vae.training
        vae.eval()
        means, logvars = [], []
        with torch.no_grad():
            for i in range(0, x.shape[0], DECODE_BATCH):
                xf, _ = self._images(x[i : i + DECODE_BATCH], None if cond is None else cond[i : i + DECODE_BATCH])
                c = None if cond is None else cond[i : i + DECODE_BATCH].to(xf.device)
                q = vae.posterior(xf, c)
                means.append(q.mean.cpu())
                logvars.append(q.logvar.cpu())
        vae.train(was)
        return DiagonalGaussian(torch.cat(means), torch.cat(logvars))

    def decode(self, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
               generator: torch.Generator | None = None, **knobs: Any) -> torch.Tensor:
        """Images ``uint8 [N, C, H, W]`` (decoder mean) of latents ``[N, D]`` of ``space``."""
        s = self.latent_space(space)
        self.resolve_knobs(knobs)
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim != 2 or tuple(z.shape[1:]) != s.shape:
            raise ShapeError(f"{s.name}: expected [N, {s.shape[0]}], got {list(z.shape)}")
        c = self.condition_spec.make(condition, z.shape[0])
        with torch.no_grad():
            return self._decode_z(self.to_first_stage(z.to(self.device), s.name, c), c)

    def to_first_stage(self, z: torch.Tensor, space: str, condition: torch.Tensor | None) -> torch.Tensor:
        """Latents of ``space`` mapped to the first stage's z (identity for ``z``)."""
        return z

    def reconstruct(self, x: torch.Tensor, *, condition: Any = None, generator: torch.Generator | None = None,
                    **knobs: Any) -> torch.Tensor:
        """Decoder mean of the posterior mean: ``uint8 [N, C, H, W] -> uint8 [N, C, H, W]``."""
        out = []
        for i in range(0, x.shape[0], DECODE_BATCH):
            xf, c = self._images(x[i : i + DECODE_BATCH], None if condition is None else
                                 self.condition_spec.make(condition, x.shape[0])[i : i + DECODE_BATCH])
            with torch.no_grad():
                out.append(to_uint8(self.image_vae.reconstruct_mean(xf, c).cpu()))
        return torch.cat(out)

    def nll(self, x: torch.Tensor, *, condition: Any = None, num_samples: int = 100,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """``-log p(x)`` of images ``uint8`` (pixels / 255) in nats, ``float64 [N]``, by importance
        sampling with the posterior as proposal (Burda et al. 2016, eq. 8)."""
        xf, c = self._images(x, condition)
        vae = self.image_vae

        def rep(m: int) -> torch.Tensor | None:
            return None if c is None else c.repeat(-(-m // len(c)), 1)[:m]

        with torch.no_grad():
            return importance_sampled_nll(xf, lambda v: vae.posterior(v, rep(len(v))),
                                          lambda v, z: vae.log_px_given_z(v, z, rep(len(v))),
                                          num_samples=num_samples, generator=generator)


class _OwnSampler:
    """A sampler the model draws itself (``normal``, ``second-stage``), with the samplers' interface."""

    def __init__(self, model: LatentImageModel, name: str) -> None:
        self.model, self.name = model, name
        self.sampler_type = name
        self.latent_dim = model.image_vae.config.latent_dim

    def sample(self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
               ) -> torch.Tensor:
        """``float32 [n, latent_dim]`` first-stage latents on CPU."""
        return self.model.sample_latents(n, generator=generator, condition=cond, sampler=self.name).cpu()


@register_model("vae")
class VAE(LatentImageModel):
    """ResNet VAE with a learned (or fixed) scalar decoder standard deviation gamma.

    Encoder: 3x3 conv (base_dim) -> num_scale x [ScaleBlock; stride-2 conv doubling the width]
    -> global mean over H, W -> [concat condition] -> dense ScaleBlock (fc_dim) -> mu, logvar.
    Decoder: [z, condition] -> dense 2x2xdims[0] -> (transposed conv x2 -> ScaleBlock) until
    image_size -> 3x3 conv -> sigmoid. Widths double per halving from base_dim, capped at 1024.

    Args:
        config: :class:`VAEConfig`.
    """

    config_class = VAEConfig
    own_samplers = ("normal",)

    @classmethod
    def example_config(cls, **overrides: Any) -> VAEConfig:
        base = {"image_size": 8, "latent_dim": 3, "base_dim": 4, "fc_dim": 8, "num_scale": 2}
        return VAEConfig(**{**base, **overrides})

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
    def image_vae(self) -> VAE:
        return self

    @property
    def gamma(self) -> torch.Tensor:
        """Decoder standard deviation gamma = exp(log gamma), a scalar tensor."""
        return self.loggamma.exp()

    def posterior(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
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

    def decode_mean(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean ``float32 [N, C, H, W]`` in [0, 1] for ``z: [N, latent_dim]`` (differentiable)."""
        return torch.sigmoid(self.decode_logits(z, cond))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | z, c) per example in nats, ``[N]`` (Gaussian with gamma, or Bernoulli)."""
        logits = self.decode_logits(z, cond)
        if self.config.decoder == "bernoulli":
            return -bernoulli_nll(x, logits)
        return -gaussian_nll(x, torch.sigmoid(logits), self.loggamma)

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """Negative ELBO of Dai & Wipf (SPEC section 1), averaged over the batch, in nats per image.

        ``kl = sum(mu^2 + sd^2 - 2 log sd - 1) / 2 / N``;
        Gaussian: ``nll = sum(((x - x_hat) / gamma)^2 / 2 + log gamma + log(2 pi) / 2) / N``;
        Bernoulli: ``nll = BCE(x, x_hat) summed / N``; ``total = nll + beta * kl``.

        Args:
            batch: ``x`` images ``uint8 [N, C, H, W]`` (or ``float32`` in [0, 1]); ``condition``
                ``[N, cond_dim]`` for conditional models.
            step: unused (no schedule).
            generator: source of the reparameterisation noise.

        Returns:
            :class:`LossOutput` with terms ``loss``, ``kl``, ``nll``, ``mse`` (per pixel), ``gamma``.
        """
        x = to_float(batch.x) if batch.x.dtype == torch.uint8 else batch.x
        cond = batch.condition
        posterior = self.posterior(x, cond)
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

    def reconstruct_mean(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean of the posterior mean: ``float [N, C, H, W]`` in [0, 1] -> same (differentiable)."""
        return self.decode_mean(self.posterior(x, cond).mode(), cond)
