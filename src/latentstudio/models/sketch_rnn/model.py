"""sketch-rnn (Ha & Eck 2017, "A Neural Representation of Sketch Drawings").

A sequence-to-sequence VAE over stroke-5 sequences. The encoder is a bidirectional LSTM over
the sketch; its two final hidden states give ``mu`` and ``sigma_hat`` (``sigma = exp(sigma_hat / 2)``,
i.e. ``sigma_hat`` is the log-variance). ``z`` initialises the decoder state through
``tanh(W z + b)`` and is appended to every decoder input ``[S_{i-1}, z]``. The decoder emits a
20-component bivariate Gaussian mixture over the next offset and 3 pen-state logits.

Loss (section 3.2-3.3, eq. 5-6)::

    L_s = -1/Nmax sum_{i <= L} log(sum_j pi_j N(dx_i, dy_i | mu_j, Sigma_j) + eps)   (masked after the end)
    L_p = -1/Nmax sum_{i <= Nmax} sum_k p_k,i log q_k,i                              (all Nmax steps)
    L_KL = -1/(2 N_z) sum (1 + sigma_hat - mu^2 - exp(sigma_hat))                   (averaged over dims)
    loss = L_s + L_p + w(step) max(L_KL, KL_min)

all averaged over the batch, in nats. Nmax is ``config.max_seq_len``, the data's longest sketch
unless set otherwise (the reference's normalisation); ``w(step)`` is :func:`kl_weight`. The
unconditional variant has no encoder: the decoder starts from a zero state and its input is
``S_{i-1}`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from latentstudio.data.strokes import pad_batch, stroke3_to_stroke5, stroke5_to_stroke3
from latentstudio.errors import ConfigError, DataError, ShapeError
from latentstudio.models.base import (
    COMPLETE,
    DECODE,
    ENCODE,
    RECONSTRUCT,
    GenerativeModel,
    Knob,
    LatentSpace,
    _check_n,
)
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.registry import register_model
from latentstudio.models.sketch_rnn.cells import dropout_mask, make_layer
from latentstudio.models.sketch_rnn.config import SketchRNNConfig
from latentstudio.models.sketch_rnn.explore import complete as complete_sketch
from latentstudio.models.sketch_rnn.mixture import StrokeMixture
from latentstudio.types import Batch, LossOutput, Sketches

START_TOKEN = (0.0, 0.0, 1.0, 0.0, 0.0)


def kl_weight(config: SketchRNNConfig, step: int) -> float:
    """Weight of ``max(L_KL, KL_min)`` at optimisation ``step`` (0-based).

    ``paper``: ``w_KL (1 - (1 - eta_min) R^step)``; ``reference``: ``w_KL - (w_KL - eta_min) R^step``
    (the schedule is ``config.kl_schedule``, or ``config.parity``'s when that is None).
    """
    r = config.kl_decay_rate ** max(int(step), 0)
    if config.schedule == "paper":
        return config.kl_weight * (1.0 - (1.0 - config.kl_eta_min) * r)
    return config.kl_weight - (config.kl_weight - config.kl_eta_min) * r


@register_model("sketch-rnn")
class SketchRNN(GenerativeModel):
    """sketch-rnn with the reference defaults (see :class:`SketchRNNConfig`).

    Batches: ``Batch(x=strokes float32 [N, Nmax, 5], lengths=int64 [N])``, stroke-5 without the
    start token and ``lengths`` real points per sketch (1..Nmax). The buffer ``scale_factor`` holds
    the dataset's normalising factor (saved with the weights). Outputs are :class:`Sketches`
    (stroke-3 in normalised units). Sampling knobs: ``temperature`` (tau, section 3.3) and ``greedy``.
    Conditional models encode, decode and reconstruct; unconditional ones (decoder only) only sample.
    """

    config_class = SketchRNNConfig
    output_kind: ClassVar[str] = "sketches"
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("temperature", 0.5, "sampling temperature tau > 0 (the paper's figures use 0.1 to 1.0)",
             minimum=0.0, minimum_inclusive=False),
        Knob("greedy", False, "most likely pen state and mixture component, offsets at the component mean",
             kind=bool),
    )
    capability_hints: ClassVar[dict[str, str]] = {
        ENCODE: "this sketch-rnn is unconditional (decoder only); train with an encoder to encode sketches",
        DECODE: "this sketch-rnn is unconditional (decoder only); it has no latent to decode",
        RECONSTRUCT: "this sketch-rnn is unconditional (decoder only); train with an encoder to reconstruct",
    }

    def __init__(self, config: SketchRNNConfig) -> None:
        """Build the model.

        Raises:
            ConfigError: ``max_seq_len`` is None (training resolves it from the data; set it to build
                a model without data).
        """
        super().__init__()
        if config.max_seq_len is None:
            raise ConfigError("max_seq_len: a sketch-rnn model needs Nmax; training sets it to the data's longest "
                              "sketch, or set it (--set model.max_seq_len=N)")
        self.config = config
        c = config
        common = {"keep_prob": c.keep_prob, "mask_mode": c.dropout_mask, "forget_bias": c.forget_bias}
        if c.conditional:
            self.encoder = make_layer(c.enc_model, 5, c.enc_hidden_size, directions=2, impl=c.rnn_impl, **common)
            self.enc_mu = nn.Linear(2 * c.enc_hidden_size, c.latent_dim)
            self.enc_logvar = nn.Linear(2 * c.enc_hidden_size, c.latent_dim)
        dec_in = 5 + (c.latent_dim if c.conditional else 0)
        extra = {"hyper_size": c.hyper_size, "embed_size": c.hyper_embed_size, "hyper_dropout": not c.reference,
                 "scale_init": 0.1 if c.reference else 1.0} if c.dec_model == "hyper" else {}
        self.decoder = make_layer(c.dec_model, dec_in, c.dec_hidden_size, directions=1, impl=c.rnn_impl,
                                  **common, **extra)
        if c.conditional:
            self.dec_init = nn.Linear(c.latent_dim, self.decoder.state_size)
        self.output = nn.Linear(c.dec_hidden_size, c.output_size)
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self._init_weights()

    def _init_weights(self) -> None:
        # the reference draws the latent heads and the state initialiser from N(0, 0.001^2)
        heads = [self.enc_mu, self.enc_logvar, self.dec_init] if self.config.conditional else []
        for lin in heads:
            nn.init.normal_(lin.weight, std=0.001)
            nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.output.weight)
        if self.config.reference:  # a 1-D variable's Glorot-uniform limit: sqrt(6 / (n + n))
            limit = math.sqrt(3.0 / self.output.out_features)
            nn.init.uniform_(self.output.bias, -limit, limit)
        else:
            nn.init.zeros_(self.output.bias)

    # ------------------------------------------------------------------ contract

    @classmethod
    def example_config(cls, **overrides: Any) -> SketchRNNConfig:
        base = {"max_seq_len": 16, "enc_hidden_size": 8, "dec_hidden_size": 16, "latent_dim": 4, "num_mixture": 2}
        return SketchRNNConfig(**{**base, **overrides})

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        """encode, decode and reconstruct for conditional models; complete for every model."""
        return frozenset({ENCODE, DECODE, RECONSTRUCT, COMPLETE}) if self.config.conditional else frozenset({COMPLETE})

    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        if not self.config.conditional:
            return ()
        return (LatentSpace("z", (self.config.latent_dim,), "N(0, I)",
                            description="sketch latent (initial decoder state and decoder input)"),)

    def example_batch(self, n: int = 4, generator: torch.Generator | None = None) -> Batch:
        t = self.config.max_seq_len
        lengths = torch.randint(1, t + 1, (n,), generator=generator)
        x = torch.zeros(n, t, 5)
        for k in range(n):
            m = int(lengths[k])
            x[k, :m, :2] = torch.randn(m, 2, generator=generator) * 0.3
            pen = torch.randint(0, 2, (m,), generator=generator)
            x[k, :m, 2] = (pen == 0).float()
            x[k, :m, 3] = (pen == 1).float()
            x[k, m:, 4] = 1.0
        return Batch(x, None, lengths)

    def _as_batch(self, sketches: Sketches | Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stroke-3 sketches (normalised units) -> padded stroke-5 ``[N, Nmax, 5]`` and ``lengths [N]``."""
        strokes = list(sketches.strokes if isinstance(sketches, Sketches) else sketches)
        t = self.config.max_seq_len
        if not strokes:
            raise DataError("no sketches given")
        for k, s in enumerate(strokes):
            if len(s) == 0:
                raise DataError(f"sketch {k} is empty")
            if len(s) > t:
                raise DataError(f"sketch {k} has {len(s)} points, more than the model's max_seq_len={t}")
        x, ln = pad_batch(strokes, t)
        return x.to(self.device), ln.to(self.device)

    def _sample(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                temperature: float, greedy: bool) -> Sketches:
        return self.generate(n, temperature=temperature, greedy=greedy, generator=generator)

    def encode(self, x: Sketches | Sequence[np.ndarray], *, condition: Any = None) -> DiagonalGaussian:
        """Posterior ``q(z | S)`` of stroke-3 sketches (normalised units): ``DiagonalGaussian [N, latent_dim]``
        (eval mode, no dropout)."""
        self.require(ENCODE)
        self.condition_spec.make(condition, 1)
        was = self.training
        self.eval()
        strokes, lengths = self._as_batch(x)
        with torch.no_grad():
            q = self.posterior(strokes, lengths).detach()
        self.train(was)
        return q

    def decode(self, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
               generator: torch.Generator | None = None, **knobs: Any) -> Sketches:
        """Sketches decoded from latents ``z [N, latent_dim]`` at the knobs' temperature."""
        self.require(DECODE)
        self.latent_space(space)
        self.condition_spec.make(condition, 1)
        v = self.resolve_knobs(knobs)
        return self.generate(z=torch.as_tensor(z, dtype=torch.float32), temperature=v["temperature"],
                             greedy=v["greedy"], generator=generator)

    def reconstruct(self, x: Sketches | Sequence[np.ndarray], *, condition: Any = None,
                    generator: torch.Generator | None = None, **knobs: Any) -> Sketches:
        """Each sketch decoded from its posterior mean (knobs as :meth:`decode`)."""
        self.require(RECONSTRUCT)
        return self.decode(self.encode(x, condition=condition).mean, generator=generator, **knobs)

    def complete(self, prefix: np.ndarray, n: int = 1, *, generator: torch.Generator | None = None,
                 condition: Any = None, **knobs: Any) -> Sketches:
        """``n`` continuations of a partial sketch (:func:`~latentstudio.models.sketch_rnn.explore.complete`):
        models with an encoder decode from the prefix's posterior mean, the decoder reads the prefix and
        then samples at the knobs' ``temperature`` (or ``greedy``).

        Args:
            prefix: stroke-3 ``float [L, 3]`` in the model's normalised units, ``1 <= L < max_seq_len``.
            n: continuations, >= 1.
            generator: every random choice (same state, same sketches).

        Returns:
            :class:`Sketches` of stroke-3 ``float32 [L + K, 3]`` starting with the prefix
            (``prefix_lengths`` ``L``).

        Raises:
            DataError: an empty prefix, not ``[L, 3]``, or one of ``max_seq_len`` points or more.
            ConfigError: ``n < 1``, an unknown knob or a bad value, or a condition.
        """
        n = _check_n(n)
        self.condition_spec.make(condition, 1)
        v = self.resolve_knobs(knobs)
        p = np.asarray(prefix, dtype=np.float32)
        if p.ndim != 2 or p.shape[1] != 3:
            raise DataError(f"a sketch prefix is stroke-3 [L, 3] (dx, dy, pen lifted), got shape {list(p.shape)}")
        limit = self.config.max_seq_len
        if len(p) >= limit:
            raise DataError(f"the prefix has {len(p)} points; this model completes prefixes of fewer than "
                            f"max_seq_len={limit} points: give a shorter start")
        return complete_sketch(self, p, n, temperature=v["temperature"], greedy=v["greedy"], generator=generator)

    # ------------------------------------------------------------------ checks

    def _check_batch(self, strokes: torch.Tensor, lengths: torch.Tensor, full: bool = True) -> None:
        t = self.config.max_seq_len if full else None
        if strokes.ndim != 3 or strokes.shape[-1] != 5 or (t is not None and strokes.shape[1] != t):
            want = f"[N, {t if t is not None else 'T'}, 5]"
            raise ShapeError(f"strokes: expected stroke-5 float {want}, got {list(strokes.shape)}")
        if lengths.shape != strokes.shape[:1]:
            raise ShapeError(f"lengths: expected shape [{strokes.shape[0]}], got {list(lengths.shape)}")
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > strokes.shape[1]):
            raise ShapeError(f"lengths must be in 1..{strokes.shape[1]}, got {int(lengths.min())}..{int(lengths.max())}")

    # ------------------------------------------------------------------ encoder

    def posterior(self, strokes: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
                  ) -> DiagonalGaussian:
        """Posterior ``q(z | S)``: ``strokes [N, T, 5]``, ``lengths [N]`` -> DiagonalGaussian ``[N, latent_dim]``.

        ``logvar`` is the paper's ``sigma_hat``. Steps after each sketch's length are ignored (the
        backward direction starts at the last real point). ``generator`` drives recurrent dropout
        in training mode.

        Raises:
            ShapeError: bad shapes or lengths; RuntimeError for an unconditional model.
        """
        if not self.config.conditional:
            raise RuntimeError("an unconditional sketch-rnn has no encoder")
        self._check_batch(strokes, lengths, full=False)
        lengths = lengths.to(strokes.device)
        order = torch.argsort(lengths, descending=True, stable=True)
        x = strokes[order]
        lens = lengths[order]
        t_max = int(lens[0])
        x = x[:, :t_max].transpose(0, 1)  # [T, B, 5]
        t_idx = torch.arange(t_max, device=x.device)[:, None]
        rev = torch.where(t_idx < lens[None], lens[None] - 1 - t_idx, t_idx)  # reverse within each length
        x_rev = x.gather(0, rev[..., None].expand(-1, -1, 5))
        inp = torch.stack([x, x_rev], dim=1)  # [T, 2, B, 5]
        batch_sizes = (lens[None, :] > torch.arange(t_max, device=x.device)[:, None]).sum(1).tolist()
        h = self.encoder(inp, generator=generator, batch_sizes=batch_sizes)  # [T, 2, B, H]
        last = (lens - 1)[None, None, :, None].expand(1, 2, -1, h.shape[-1])
        h_last = h.gather(0, last)[0]  # [2, B, H]
        feat = torch.cat([h_last[0], h_last[1]], dim=-1)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(len(order), device=order.device)
        feat = feat[inv]
        return DiagonalGaussian(self.enc_mu(feat), self.enc_logvar(feat))

    # ------------------------------------------------------------------ decoder

    def initial_state(self, z: torch.Tensor | None, batch: int, like: torch.Tensor):
        """Decoder start state: ``tanh(W z + b)`` split into the cell's state, or zeros (unconditional)."""
        if z is None:
            return self.decoder.zero_state(batch, like)
        return self.decoder.split_state(torch.tanh(self.dec_init(z))[None])

    def decoder_inputs(self, strokes: torch.Tensor) -> torch.Tensor:
        """``[S0, S_1, ..., S_{T-1}]``: ``strokes [N, T, 5]`` -> ``[N, T, 5]``."""
        s0 = strokes.new_tensor(START_TOKEN).expand(strokes.shape[0], 1, 5)
        return torch.cat([s0, strokes[:, :-1]], dim=1)

    def teacher_forced(self, strokes: torch.Tensor, z: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> StrokeMixture:
        """Teacher-forced output distributions for every step: ``strokes [N, T, 5]`` -> fields ``[T, N, .]``.

        Args:
            strokes: the targets; the decoder reads ``[S0, S_1..S_{T-1}]``.
            z: ``[N, latent_dim]`` (conditional) or None (unconditional).

        Raises:
            ValueError: z missing for a conditional model or given to an unconditional one.
        """
        n = strokes.shape[0]
        if self.config.conditional and z is None:
            raise ValueError("a conditional sketch-rnn needs z to decode")
        if not self.config.conditional and z is not None:
            raise ValueError("an unconditional sketch-rnn takes no z")
        c = self.config
        inp = self.decoder_inputs(strokes).transpose(0, 1)[:, None]  # [T, 1, N, 5]
        state = self.initial_state(z, n, strokes)
        const = z[None] if c.conditional else None
        if self.training and c.input_keep_prob < 1.0:  # a fresh mask per step over [S_{i-1}, z]
            if const is not None:
                inp = torch.cat([inp, const[None].expand(inp.shape[0], -1, -1, -1)], dim=-1)
                const = None
            inp = inp * dropout_mask(inp.shape, c.input_keep_prob, generator=generator, device=inp.device,
                                     dtype=inp.dtype)
        h = self.decoder(inp, state, const=const, generator=generator)[:, 0]  # [T, N, H]
        if self.training and c.output_keep_prob < 1.0:  # the output layer's input only, not the recurrence
            h = h * dropout_mask(h.shape, c.output_keep_prob, generator=generator, device=h.device, dtype=h.dtype)
        return StrokeMixture.from_output(self.output(h), c.num_mixture, c.sigma_min, c.rho_max)

    # ------------------------------------------------------------------ loss

    def step_nll(self, strokes: torch.Tensor, lengths: torch.Tensor, mix: StrokeMixture
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step negative log-likelihoods in nats: ``(offsets [N, T], pen [N, T])``.

        The offset term ``-log(p(dx, dy) + eps)`` is 0 after each sketch's ``lengths`` real points;
        the pen term covers every step (the padding's targets are end-of-sketch).
        """
        tgt = strokes.transpose(0, 1)  # [T, N, 5]
        t_len = tgt.shape[0]
        nll = mix.offset_nll(tgt[..., 0], tgt[..., 1], self.config.log_eps)  # [T, N]
        real = (torch.arange(t_len, device=tgt.device)[:, None] < lengths.to(tgt.device)[None]).to(nll.dtype)
        return (nll * real).t(), mix.pen_nll(tgt[..., 2:]).t()

    def reconstruction_terms(self, strokes: torch.Tensor, lengths: torch.Tensor, mix: StrokeMixture,
                             nmax: int | None = None) -> dict[str, torch.Tensor]:
        """``l_s`` and ``l_p`` per sketch (``[N]`` nats): sums over all T steps divided by ``nmax``
        (default ``config.max_seq_len``, the reference's normalisation)."""
        s_steps, p_steps = self.step_nll(strokes, lengths, mix)
        nmax = nmax or self.config.max_seq_len
        return {"l_s": s_steps.sum(1) / nmax, "l_p": p_steps.sum(1) / nmax}

    def forward_terms(self, strokes: torch.Tensor, lengths: torch.Tensor,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One pass without reductions: ``s_steps``, ``p_steps`` (``[N, T]`` nats, see :meth:`step_nll`)
        and, for conditional models, ``kl_dims`` (``[N, latent_dim]`` nats). Any padded length
        ``T >= max(lengths)`` is accepted.

        Raises:
            ShapeError: strokes not ``[N, T, 5]`` or lengths out of range.
        """
        self._check_batch(strokes, lengths, full=False)
        z, out = None, {}
        if self.config.conditional:
            q = self.posterior(strokes, lengths, generator)
            z = q.sample(generator)
            out["kl_dims"] = 0.5 * (q.mean.pow(2) + q.logvar.exp() - q.logvar - 1.0)  # [N, Nz]
        mix = self.teacher_forced(strokes, z, generator)
        out["s_steps"], out["p_steps"] = self.step_nll(strokes, lengths, mix)
        return out

    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """Training loss (module docstring) on one batch.

        Args:
            batch: ``x`` stroke-5 ``float32 [N, Nmax, 5]`` padded with ``(0, 0, 0, 0, 1)``; ``lengths``
                ``int64 [N]`` real points (1..Nmax).
            step: optimisation step of the KL annealing.
            generator: draws z's noise and the dropout masks.

        Returns:
            ``LossOutput(loss, terms)`` with ``recon`` (L_R), ``l_s``, ``l_p`` (sums over steps / Nmax),
            ``kl`` (the reported L_KL: raw with ``parity=paper``, ``max(L_KL, kl_tolerance)`` with
            ``parity=reference``), ``kl_raw`` and ``kl_floored`` (both, nats per latent dimension),
            ``kl_sum`` (nats per sketch), ``kl_weight`` and ``loss``, batch means.

        Raises:
            ShapeError: strokes not ``[N, Nmax, 5]`` or lengths out of range.
        """
        strokes, lengths = batch.x, batch.lengths
        if lengths is None:
            raise ShapeError("a sketch batch needs lengths (int64 [N] real points per sketch)")
        self._check_batch(strokes, lengths)
        c = self.config
        parts = self.forward_terms(strokes, lengths, generator)
        terms: dict[str, torch.Tensor] = {}
        l_s = parts["s_steps"].sum(1).mean() / c.max_seq_len
        l_p = parts["p_steps"].sum(1).mean() / c.max_seq_len
        recon = l_s + l_p
        total = recon
        if c.conditional:
            kl_raw = parts["kl_dims"].mean()
            kl_floored = torch.clamp(kl_raw, min=c.kl_tolerance)
            w = kl_weight(c, step)
            total = recon + w * kl_floored
            terms.update({"kl": kl_floored if c.reference else kl_raw, "kl_raw": kl_raw, "kl_floored": kl_floored,
                          "kl_sum": parts["kl_dims"].sum(-1).mean(), "kl_weight": torch.tensor(w)})
        terms.update({"l_s": l_s, "l_p": l_p, "recon": recon, "loss": total})
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(
        self,
        n: int | None = None,
        *,
        z: torch.Tensor | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        prefix: np.ndarray | None = None,
        max_len: int | None = None,
    ) -> Sketches:
        """Generate sketches point by point (eval mode, no dropout).

        Args:
            n: number of sketches (default: ``len(z)``, else 1).
            z: ``[n, latent_dim]`` latents (conditional models; default: draws from N(0, I)).
            temperature: tau > 0 (section 3.3); ``greedy`` ignores it.
            greedy: most likely pen state and component, component mean as offset.
            generator: seeds every random choice (repeatable results).
            prefix: a stroke-3 ``[P, 3]`` start (normalised units) that every sketch continues.
            max_len: maximum points per sketch including the prefix (default Nmax).

        Returns:
            :class:`Sketches` (stroke-3 in normalised units, prefix included).
        """
        c = self.config
        if temperature <= 0 and not greedy:
            raise ValueError(f"temperature must be > 0 (or use greedy), got {temperature}")
        if z is not None and not c.conditional:
            raise ValueError("an unconditional model takes no z")
        n = n if n is not None else (z.shape[0] if z is not None else 1)
        device = self.output.weight.device
        if c.conditional and z is None:
            z = torch.randn(n, c.latent_dim, generator=generator, device=device)
        if z is not None:
            z = z.to(device=device, dtype=self.output.weight.dtype)
            if z.shape != (n, c.latent_dim):
                raise ShapeError(f"z: expected [{n}, {c.latent_dim}], got {list(z.shape)}")
        was = self.training
        self.eval()
        max_len = max_len or c.max_seq_len
        like = self.output.weight
        state = self.initial_state(z, n, like)
        const = z[None] if z is not None else None
        prev = like.new_tensor(START_TOKEN).expand(1, n, 5).clone()
        pts = []
        p_len = 0
        if prefix is not None:
            p_len = len(prefix)
            if p_len >= max_len:
                raise ValueError(f"prefix has {p_len} points; max_len is {max_len}")
            p5 = torch.from_numpy(stroke3_to_stroke5(prefix, p_len)).to(like)
            for t in range(p_len):
                _, state = self.decoder.step(prev, state, const)
                prev = p5[t].expand(1, n, 5).clone()
                pts.append(prev[0].clone())
        done = torch.zeros(n, dtype=torch.bool, device=device)
        ends = torch.full((n,), max_len, dtype=torch.long, device=device)
        for t in range(p_len, max_len):
            h, state = self.decoder.step(prev, state, const)
            mix = StrokeMixture.from_output(self.output(h[0]), c.num_mixture, c.sigma_min, c.rho_max)
            xy, pen = mix.sample(temperature, greedy, generator, rule=c.parity)
            nxt = torch.zeros(n, 5, device=device, dtype=like.dtype)
            nxt[:, :2] = xy
            nxt[torch.arange(n), 2 + pen] = 1.0
            newly = (pen == 2) & ~done
            ends[newly] = t
            done |= newly
            pts.append(nxt)
            prev = nxt[None]
            if bool(done.all()):
                break
        self.train(was)
        seq = torch.stack(pts, dim=1) if pts else torch.zeros(n, 0, 5)
        out = [stroke5_to_stroke3(seq[k], int(min(ends[k], seq.shape[1]))) for k in range(n)]
        return Sketches(out, [p_len] * n, None if z is None else z.cpu())

    def extra_repr(self) -> str:
        c = self.config
        kind = "conditional" if c.conditional else "unconditional"
        return (f"{kind}, enc={c.enc_hidden_size}x2, dec={c.dec_model}:{c.dec_hidden_size}, "
                f"latent_dim={c.latent_dim}, M={c.num_mixture}")
