"""DRAW: Gregor, Danihelka, Graves, Rezende & Wierstra, "DRAW: A Recurrent Neural Network For Image
Generation" (ICML 2015, arXiv:1502.04623); SPEC section 2.

At each step t = 1..T (paper eq. 3-8)::

    x_hat_t = x - sigmoid(c_{t-1})
    r_t     = read(x, x_hat_t, h_dec_{t-1})
    h_enc_t = LSTM_enc(h_enc_{t-1}, [r_t, h_dec_{t-1}])
    z_t     ~ Q(z_t | h_enc_t) = N(mu_t, sd_t^2)          (mu_t, log sd_t linear in h_enc_t)
    h_dec_t = LSTM_dec(h_dec_{t-1}, z_t)
    c_t     = c_{t-1} + write(h_dec_t)

and the image distribution is D(x | sigmoid(c_T)). The loss is the negative ELBO
``L^x + L^z`` with ``L^z = sum_t KL(Q(z_t | h_enc_t) || N(0, I))`` (eq. 9-12). Conditional DRAW
concatenates a one-hot class to the encoder input and to z_t at the decoder input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from latentstudio.errors import ShapeError
from latentstudio.io.images import to_float, to_uint8
from latentstudio.models.base import (
    DECODE,
    ENCODE,
    NLL,
    RECONSTRUCT,
    STEPS,
    ConditionSpec,
    GenerativeModel,
    Knob,
    LatentSpace,
    _check_n,
)
from latentstudio.models.distributions import DiagonalGaussian, standard_normal_log_prob
from latentstudio.models.draw.attention import AttentionRead, AttentionWrite, PlainRead, PlainWrite
from latentstudio.models.draw.config import DRAWConfig
from latentstudio.models.draw.render import decoding_frames, generation_frames
from latentstudio.models.losses import bernoulli_nll, gaussian_nll
from latentstudio.models.registry import register_model
from latentstudio.types import Batch, LossOutput, check_images

#: Images drawn or reconstructed per pass (bounds memory).
DRAW_BATCH = 256


def lstm_step(
    static: torch.Tensor,
    inp: torch.Tensor,
    w_ih: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    w_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of an LSTM cell (``nn.LSTMCell``'s equations and gate order i, f, g, o) whose input
    pre-activation is split into a part computed once per pass and a part computed at each step.

    Args:
        static: ``[4H]`` or ``[B, 4H]``: both biases plus the projection of the inputs that are the
            same at every step.
        inp: ``[B, D]`` the inputs that change at each step; ``w_ih`` ``[4H, D]`` their weights.
        state: ``(h, c)`` ``[B, H]`` each; ``w_hh`` ``[4H, H]``.

    Returns:
        The new ``(h, c)``.
    """
    h, c = state
    gates = torch.addmm(torch.addmm(static, inp, w_ih.t()), h, w_hh.t())
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@dataclass
class DRAWPass:
    """Everything one pass of DRAW produced (inference or generation).

    Attributes:
        logits: final canvas c_T, ``float [N, C, H, W]`` (pre-sigmoid).
        z: latents ``float [N, T, latent_dim]``.
        mu, logvar: posterior parameters ``float [N, T, latent_dim]`` (None for generation).
        canvases: ``float [T, N, C, H, W]`` sigmoid(c_t) after every step in [0, 1], if kept.
        read_windows / write_windows: ``float [N, T, 5]`` attention (gx, gy, delta, sigma2, gamma)
            in pixels, if kept and the model attends (reads exist only during inference).
    """

    logits: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    canvases: torch.Tensor | None = None
    read_windows: torch.Tensor | None = None
    write_windows: torch.Tensor | None = None

    def kl_steps(self) -> torch.Tensor:
        """KL(Q(z_t | ...) || N(0, I)) of every step in nats, ``float [N, T]`` (summed over latent_dim)."""
        if self.mu is None or self.logvar is None:
            raise ValueError("a generation pass has no posterior; KL is defined for inference passes")
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - self.logvar - 1.0).sum(dim=-1)

    def posterior(self) -> DiagonalGaussian:
        """The posterior along this pass as one diagonal Gaussian over ``[N, T * latent_dim]``."""
        if self.mu is None or self.logvar is None:
            raise ValueError("a generation pass has no posterior")
        return DiagonalGaussian(self.mu.flatten(1), self.logvar.flatten(1))


@register_model("draw")
class DRAW(GenerativeModel):
    """DRAW with LSTM encoder/decoder, canvas accumulation over ``config.steps`` steps, and read/write
    with or without the Gaussian filterbank attention.

    Batches: ``Batch(x=images uint8 [N, C, H, W], condition=one-hot [N, cond_dim] or None)``.
    Latent space ``z``: ``[T, latent_dim]`` per image, z_t ~ N(0, I) at every step. Sampling knob
    ``temperature`` scales the prior's standard deviation.

    Args:
        config: :class:`DRAWConfig`.
    """

    config_class = DRAWConfig
    output_kind: ClassVar[str] = "images"
    capabilities: ClassVar[frozenset[str]] = frozenset({ENCODE, DECODE, RECONSTRUCT, NLL, STEPS})
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("temperature", 1.0, "scale of the prior's standard deviation (z_t ~ N(0, temperature^2 I))",
             minimum=0.0, minimum_inclusive=False),
    )

    def __init__(self, config: DRAWConfig) -> None:
        super().__init__()
        self.config = c = config
        h = w = c.image_size
        if c.attention:
            self.read = AttentionRead(c.image_channels, h, w, c.read_n, c.dec_dim)
            self.write = AttentionWrite(c.image_channels, h, w, c.write_n, c.dec_dim)
        else:
            self.read = PlainRead(c.image_channels, h, w)
            self.write = PlainWrite(c.image_channels, h, w, c.dec_dim)
        self.encoder = nn.LSTMCell(self.read.out_dim + c.dec_dim + c.cond_dim, c.enc_dim)
        self.posterior_params = nn.Linear(c.enc_dim, 2 * c.latent_dim)  # mu_t, log sd_t
        self.decoder = nn.LSTMCell(c.latent_dim + c.cond_dim, c.dec_dim)

    # ------------------------------------------------------------------ contract
    @classmethod
    def example_config(cls, **overrides: Any) -> DRAWConfig:
        base = {"image_size": 12, "steps": 3, "latent_dim": 2, "enc_dim": 16, "dec_dim": 16, "read_n": 3,
                "write_n": 4}
        return DRAWConfig(**{**base, **overrides})

    @property
    def condition_spec(self) -> ConditionSpec:
        return ConditionSpec(self.config.condition, self.config.cond_dim)

    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        c = self.config
        return (LatentSpace("z", (c.steps, c.latent_dim), "N(0, I) at every step",
                            description="one latent per drawing step"),)

    def example_batch(self, n: int = 4, generator: torch.Generator | None = None) -> Batch:
        c = self.config
        x = torch.randint(0, 2, (n, c.image_channels, c.image_size, c.image_size), generator=generator,
                          dtype=torch.uint8) * 255
        return Batch(x, self.condition_spec.make(None, n))

    def _images(self, x: torch.Tensor, condition: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        c = self.config
        check_images(x, (c.image_channels, c.image_size, c.image_size))
        return to_float(x).to(self.device), self.condition_spec.make(condition, x.shape[0])

    def _sample(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                temperature: float) -> torch.Tensor:
        """Images ``uint8 [n, C, H, W]``: the mean image sigmoid(c_T) of z_t ~ N(0, temperature^2 I)."""
        z = self.prior_sample(n, generator, temperature)
        return self._decode_images(z, condition)

    def sample_steps(self, n: int, *, generator: torch.Generator | None = None, condition: Any = None,
                     **knobs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their drawing: ``(images uint8 [n, C, H, W], frames uint8 [T, n, 3, 2H, 2W])``,
        the canvas after every step with the write boxes when the model attends (knobs as :meth:`sample`)."""
        n = _check_n(n)
        values = self.resolve_knobs(knobs)
        cond = self.condition_spec.make(condition, n)
        with torch.no_grad():
            return generation_frames(self, n, cond, generator, temperature=values["temperature"])

    def decode_steps(self, latent: torch.Tensor, *, space: str | None = None, condition: Any = None,
                     **knobs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Given latents ``[N, T, latent_dim]`` (or ``[N, T * latent_dim]``) decoded with their drawing:
        ``(images uint8 [N, C, H, W], frames uint8 [T, N, 3, 2H, 2W])``, the images those of :meth:`decode`,
        the frames those of :meth:`sample_steps` (knobs checked; decoding given latents uses none).

        Raises:
            ShapeError: latents of another shape. ConfigError: an unknown space, knob or a bad condition.
        """
        self.latent_space(space)
        self.resolve_knobs(knobs)
        z = torch.as_tensor(latent, dtype=torch.float32)
        cond = self.condition_spec.make(condition, z.shape[0])
        with torch.no_grad():
            return decoding_frames(self, z, cond)

    def _decode_images(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        out = []
        for i in range(0, z.shape[0], DRAW_BATCH):
            c = None if condition is None else condition[i : i + DRAW_BATCH]
            out.append(to_uint8(torch.sigmoid(self.run_decoder(z[i : i + DRAW_BATCH], c).logits).cpu()))
        return torch.cat(out)

    def encode(self, x: torch.Tensor, *, condition: Any = None) -> DiagonalGaussian:
        """Posterior of images ``uint8 [N, C, H, W]`` along the deterministic pass (z_t = mu_t), as one
        ``DiagonalGaussian [N, T * latent_dim]`` (reshape to ``[N, T, latent_dim]`` for the steps)."""
        xf, c = self._images(x, condition)
        with torch.no_grad():
            return self.infer(xf, c, sample=False).posterior().detach()

    def decode(self, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
               generator: torch.Generator | None = None, **knobs: Any) -> torch.Tensor:
        """Images ``uint8 [N, C, H, W]`` of latents ``[N, T, latent_dim]`` (or ``[N, T * latent_dim]``)."""
        self.latent_space(space)
        self.resolve_knobs(knobs)
        z = torch.as_tensor(z, dtype=torch.float32)
        cond = self.condition_spec.make(condition, z.shape[0])
        with torch.no_grad():
            return self._decode_images(z, cond)

    def reconstruct(self, x: torch.Tensor, *, condition: Any = None, generator: torch.Generator | None = None,
                    **knobs: Any) -> torch.Tensor:
        """sigmoid(c_T) with z_t = mu_t at every step: ``uint8 [N, C, H, W] -> uint8 [N, C, H, W]``."""
        xf, c = self._images(x, condition)
        out = []
        with torch.no_grad():
            for i in range(0, xf.shape[0], DRAW_BATCH):
                cb = None if c is None else c[i : i + DRAW_BATCH]
                out.append(to_uint8(torch.sigmoid(self.infer(xf[i : i + DRAW_BATCH], cb, sample=False).logits).cpu()))
        return torch.cat(out)

    def nll(self, x: torch.Tensor, *, condition: Any = None, num_samples: int = 100,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """:meth:`importance_sampled_nll` of images ``uint8`` (pixels / 255; binarise them first for the
        binarised-MNIST NLL), ``float64 [N]`` nats."""
        xf, c = self._images(x, condition)
        return self.importance_sampled_nll(xf, c, num_samples=num_samples, generator=generator)

    # ------------------------------------------------------------------ checks

    def _check_x(self, x: torch.Tensor) -> None:
        c = self.config
        want = (c.image_channels, c.image_size, c.image_size)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != want or not x.is_floating_point():
            got = f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(
                f"DRAW input: expected float [N, {want[0]}, {want[1]}, {want[2]}] in [0, 1] "
                f"(convert uint8 images with latentstudio.io.images.to_float), got {got}"
            )

    def _check_cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        c = self.config
        if c.cond_dim == 0:
            if cond is not None:
                raise ShapeError("this DRAW model is unconditional; do not pass a condition")
            return None
        if cond is None:
            raise ShapeError(f"this DRAW model is class-conditional; pass a one-hot cond [N, {c.cond_dim}]")
        if cond.ndim != 2 or tuple(cond.shape) != (n, c.cond_dim):
            raise ShapeError(f"cond: expected one-hot [{n}, {c.cond_dim}], got {list(cond.shape)}")
        return cond.to(device=self.device, dtype=self.posterior_params.weight.dtype)

    def _zeros(self, n: int, dim: int) -> torch.Tensor:
        return torch.zeros(n, dim, device=self.device, dtype=self.posterior_params.weight.dtype)

    # ------------------------------------------------------------------ passes
    def infer(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        sample: bool = True,
        keep_steps: bool = False,
    ) -> DRAWPass:
        """Run the encoder and decoder over T steps on ``x`` (the training pass).

        Args:
            x: ``float32 [N, C, H, W]`` in [0, 1].
            cond: one-hot ``float32 [N, cond_dim]`` for class-conditional models.
            generator: source of the reparameterisation noise (z_t = mu_t + sd_t * eps_t).
            sample: False uses z_t = mu_t at every step (deterministic reconstruction).
            keep_steps: keep the canvas after every step and the attention windows.

        Returns:
            :class:`DRAWPass` with ``mu``/``logvar``/``z`` ``[N, T, latent_dim]``.

        Raises:
            ShapeError: wrong image shape/dtype or a missing/unexpected condition.
        """
        self._check_x(x)
        n = x.shape[0]
        cfg = self.config
        cond = self._check_cond(cond, n)
        extra = [] if cond is None else [cond]
        h_enc = (self._zeros(n, cfg.enc_dim), self._zeros(n, cfg.enc_dim))
        h_dec = (self._zeros(n, cfg.dec_dim), self._zeros(n, cfg.dec_dim))
        canvas = torch.zeros_like(x)
        # The encoder is self.encoder's LSTM cell, its input [read, h_dec, cond]. The leading columns
        # of the read that never change (x itself without attention) are projected once per pass
        # instead of at every step: the same function, ~27% less work per step without attention.
        enc, s = self.encoder, self.read.static_dim
        static = enc.bias_ih + enc.bias_hh
        if s:
            static = torch.addmm(static, self.read.static(x), enc.weight_ih[:, :s].t())
        w_varying = enc.weight_ih[:, s:]
        mus, logvars, zs, canvases, reads, writes = [], [], [], [], [], []
        for _ in range(cfg.steps):
            x_hat = x - torch.sigmoid(canvas)
            r, read_win = self.read.varying(x, x_hat, h_dec[0])
            h_enc = lstm_step(static, torch.cat([r, h_dec[0], *extra], dim=1), w_varying, h_enc, enc.weight_hh)
            mu, logsd = self.posterior_params(h_enc[0]).chunk(2, dim=1)
            if sample:
                eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                z = mu + torch.exp(logsd) * eps
            else:
                z = mu
            h_dec = self.decoder(torch.cat([z, *extra], dim=1), h_dec)
            update, write_win = self.write(h_dec[0])
            canvas = canvas + update
            mus.append(mu)
            logvars.append(2.0 * logsd)
            zs.append(z)
            if keep_steps:
                canvases.append(torch.sigmoid(canvas))
                if read_win is not None:
                    reads.append(read_win.stack())
                    writes.append(write_win.stack())
        return DRAWPass(
            logits=canvas,
            z=torch.stack(zs, dim=1),
            mu=torch.stack(mus, dim=1),
            logvar=torch.stack(logvars, dim=1),
            canvases=torch.stack(canvases) if keep_steps else None,
            read_windows=torch.stack(reads, dim=1) if reads else None,
            write_windows=torch.stack(writes, dim=1) if writes else None,
        )

    def run_decoder(self, z: torch.Tensor, cond: torch.Tensor | None = None, *, keep_steps: bool = False) -> DRAWPass:
        """Run the decoder alone on given latents (the generative model p(x | z_{1:T})).

        Args:
            z: ``float [N, T, latent_dim]`` (or ``[N, T * latent_dim]``).
            cond: one-hot ``[N, cond_dim]`` for class-conditional models.
            keep_steps: keep the canvas after every step and the write windows.

        Returns:
            :class:`DRAWPass` without posterior (``mu``/``logvar`` None).
        """
        cfg = self.config
        if z.ndim == 2 and z.shape[1] == cfg.total_latent_dim:
            z = z.view(-1, cfg.steps, cfg.latent_dim)
        if z.ndim != 3 or tuple(z.shape[1:]) != (cfg.steps, cfg.latent_dim):
            raise ShapeError(
                f"z: expected [N, {cfg.steps}, {cfg.latent_dim}] (steps x latent_dim) or "
                f"[N, {cfg.total_latent_dim}], got {list(z.shape)}"
            )
        n = z.shape[0]
        cond = self._check_cond(cond, n)
        extra = [] if cond is None else [cond]
        z = z.to(self.device)
        h_dec = (self._zeros(n, cfg.dec_dim), self._zeros(n, cfg.dec_dim))
        canvas = torch.zeros(n, cfg.image_channels, cfg.image_size, cfg.image_size, device=self.device, dtype=z.dtype)
        canvases, writes = [], []
        for t in range(cfg.steps):
            h_dec = self.decoder(torch.cat([z[:, t], *extra], dim=1), h_dec)
            update, write_win = self.write(h_dec[0])
            canvas = canvas + update
            if keep_steps:
                canvases.append(torch.sigmoid(canvas))
                if write_win is not None:
                    writes.append(write_win.stack())
        return DRAWPass(
            logits=canvas,
            z=z,
            canvases=torch.stack(canvases) if keep_steps else None,
            write_windows=torch.stack(writes, dim=1) if writes else None,
        )

    def prior_sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """z_t ~ N(0, temperature^2 I) for every step: ``float [n, T, latent_dim]`` (on CPU, from ``generator``)."""
        if n < 1:
            raise ShapeError(f"number of samples must be >= 1, got {n}")
        if not temperature > 0:
            raise ShapeError(f"temperature must be > 0, got {temperature}")
        cfg = self.config
        return temperature * torch.randn(n, cfg.steps, cfg.latent_dim, generator=generator)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        temperature: float = 1.0,
        keep_steps: bool = True,
    ) -> DRAWPass:
        """Generate ``n`` images with z_t ~ N(0, I) at every step, keeping the canvas of each step.

        Returns:
            :class:`DRAWPass`; ``canvases`` ``float [T, n, C, H, W]`` in [0, 1] (the last one is the
            sample), ``write_windows`` ``[n, T, 5]`` with attention.
        """
        return self.run_decoder(self.prior_sample(n, generator, temperature), cond, keep_steps=keep_steps)

    def reconstruct_mean(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """sigmoid(c_T) with z_t = mu_t at every step: ``float [N, C, H, W]`` in [0, 1] (differentiable)."""
        return torch.sigmoid(self.infer(x, cond, sample=False).logits)

    # ------------------------------------------------------------------ likelihoods
    def log_px(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log D(x | sigmoid(c_T)) per example in nats, ``[N]`` (Bernoulli, or Gaussian with sd gamma)."""
        if self.config.decoder == "bernoulli":
            return -bernoulli_nll(x, logits)
        loggamma = torch.tensor(math.log(self.config.gamma), device=logits.device, dtype=logits.dtype)
        return -gaussian_nll(x, torch.sigmoid(logits), loggamma)

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """Negative ELBO averaged over the batch, in nats per image (paper eq. 9-12; SPEC section 2).

        ``nll = -log D(x | sigmoid(c_T))`` (BCE summed over pixels, or the Gaussian/MSE term);
        ``kl = sum_t KL_t``; ``total = nll + kl`` (``kl_reduction="mean"``: ``nll + kl / T``).

        Args:
            batch: ``x`` images ``uint8 [N, C, H, W]`` (or ``float32`` in [0, 1]); ``condition`` one-hot
                ``[N, cond_dim]`` if conditional.
            step: unused (no schedule).
            generator: reparameterisation noise.

        Returns:
            :class:`LossOutput` with terms ``loss``, ``kl``, ``nll``, ``elbo`` (= -(nll + kl), nats),
            ``mse`` (per pixel) and ``kl_first`` / ``kl_last`` (KL of step 1 and step T).
        """
        x = to_float(batch.x).to(self.device) if batch.x.dtype == torch.uint8 else batch.x
        cond = batch.condition
        p = self.infer(x, cond, generator)
        kl_steps = p.kl_steps().mean(dim=0)  # [T]
        kl = kl_steps.sum()
        nll = -self.log_px(x, p.logits).mean()
        total = nll + (kl if self.config.kl_reduction == "sum" else kl / self.config.steps)
        mse = (x - torch.sigmoid(p.logits)).pow(2).mean()
        terms = {
            "loss": total,
            "kl": kl,
            "nll": nll,
            "elbo": -(nll + kl).detach(),
            "mse": mse.detach(),
            "kl_first": kl_steps[0].detach(),
            "kl_last": kl_steps[-1].detach(),
        }
        return LossOutput(total, terms)

    @torch.no_grad()
    def importance_sampled_nll(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        num_samples: int = 100,
        generator: torch.Generator | None = None,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """``-log p(x)`` per example in nats by importance sampling (Burda et al. 2016, eq. 8).

        The proposal is DRAW's sequential posterior: each of the K samples runs the whole inference
        pass, drawing z_t ~ Q(z_t | h_enc_t), which depends on x and z_{<t}. With the log weights
        ``log w_k`` of :meth:`log_importance_weights`, ``-log p(x) ~= -(logsumexp_k log w_k - log K)``,
        a stochastic upper bound of the NLL that tightens as K grows (K = 1: the negative ELBO in
        expectation).

        Args:
            x: ``float32 [N, C, H, W]`` (binarised in {0, 1} for the standard binarised-MNIST NLL).
            cond: one-hot ``[N, cond_dim]`` for conditional models (the NLL is then -log p(x | class)).
            num_samples: K >= 1.
            generator: RNG of the samples.
            batch_size: at most this many (x, z) rows per pass.

        Returns:
            ``float64 [N]`` on CPU.

        Raises:
            ValueError: ``num_samples`` or ``batch_size`` < 1. ShapeError: bad ``x`` / ``cond``.
        """
        log_w = self.log_importance_weights(x, cond, num_samples, generator, batch_size)
        return -(torch.logsumexp(log_w, dim=0) - math.log(num_samples))

    @torch.no_grad()
    def log_importance_weights(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        num_samples: int = 100,
        generator: torch.Generator | None = None,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """K importance log weights per example: ``float64 [K, N]`` on CPU, in nats.

        ``log w_k = log D(x | z^k) + sum_t log N(z_t^k; 0, I) - sum_t log Q(z_t^k | ...)`` with z^k drawn
        along the sequential posterior (one whole inference pass per sample). ``-log w_k`` averaged
        over k estimates the negative ELBO (the paper's ``NLL <=`` figure, eq. 12);
        :meth:`importance_sampled_nll` is ``-(logsumexp_k log w_k - log K)``. Arguments as there.
        """
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
        self._check_x(x)
        self._check_cond(cond, x.shape[0])
        per_call = max(1, batch_size // num_samples)  # examples per pass, each repeated K times
        out = []
        for i in range(0, x.shape[0], per_call):
            xb = x[i : i + per_call].to(self.device)
            m = xb.shape[0]
            log_w = []
            # split K so that one pass holds at most batch_size rows (at least one example x one sample)
            k_per = max(1, batch_size // m)
            for k0 in range(0, num_samples, k_per):
                k = min(k_per, num_samples - k0)
                x_rep = xb.repeat(k, 1, 1, 1)
                c_rep = None if cond is None else cond[i : i + per_call].to(self.device).repeat(k, 1)
                p = self.infer(x_rep, c_rep, generator)
                z = p.z.flatten(1).double()
                q = DiagonalGaussian(p.mu.flatten(1).double(), p.logvar.flatten(1).double())
                lw = self.log_px(x_rep, p.logits).double() + standard_normal_log_prob(z) - q.log_prob(z)
                log_w.append(lw.view(k, m))
            out.append(torch.cat(log_w).cpu())
        return torch.cat(out, dim=1)
