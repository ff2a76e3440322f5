"""Using a trained sketch-rnn: evaluation in nats, reconstruction, interpolation, completion.

All functions take stroke-3 sketches in the model's normalised units (divide raw offsets by
``model.scale_factor``; :func:`latentstudio.data.strokes.load_strokes` does this for a dataset)
and return :class:`~latentstudio.models.sketch_rnn.model.Sketches` in the same units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from latentstudio.data.strokes import pad_batch
from latentstudio.errors import DataError
from latentstudio.models.sketch_rnn.model import SketchRNN
from latentstudio.types import Batch, Sketches

#: Result keys of :func:`evaluate` (nats; the paper's definitions).
KEY_RECON = "recon"
KEY_L_S = "l_s"
KEY_L_P = "l_p"
KEY_KL = "kl"
KEY_KL_SUM = "kl_sum"


@torch.no_grad()
def evaluate(model: SketchRNN, strokes: torch.Tensor, lengths: torch.Tensor, *, batch_size: int = 100,
             seed: int = 0) -> dict[str, float]:
    """Test losses in nats, averaged over sketches (eval mode: no recurrent dropout).

    ``z`` is drawn from ``q(z | S)`` with a generator seeded by ``seed`` (as the reference
    evaluates), so repeated calls give equal numbers.

    Args:
        strokes: ``float32 [N, Nmax, 5]``; lengths: ``int64 [N]``.

    Returns:
        ``{"recon": L_R, "l_s": L_s, "l_p": L_p, "kl": L_KL (per latent dimension),
        "kl_sum": KL per sketch, "n": N}``; KL keys only for conditional models.
    """
    if strokes.shape[0] == 0:
        raise DataError("cannot evaluate on an empty split")
    was = model.training
    model.eval()
    g = torch.Generator(device=model.output.weight.device).manual_seed(seed)
    dev = model.output.weight.device
    sums: dict[str, float] = {}
    n_total = 0
    for i in range(0, strokes.shape[0], batch_size):
        x = strokes[i : i + batch_size].to(dev)
        ln = lengths[i : i + batch_size].to(dev)
        out = model.loss(Batch(x, None, ln), step=0, generator=g)
        n = x.shape[0]
        n_total += n
        for k in (KEY_RECON, KEY_L_S, KEY_L_P, KEY_KL, KEY_KL_SUM):
            if k in out.terms:
                sums[k] = sums.get(k, 0.0) + float(out.terms[k]) * n
    model.train(was)
    res = {k: v / n_total for k, v in sums.items()}
    res["n"] = n_total
    return res


def _as_batch(model: SketchRNN, sketches: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    if not model.config.conditional:
        raise DataError("this sketch-rnn is unconditional (decoder only); it cannot encode sketches")
    t = model.config.max_seq_len
    for k, s in enumerate(sketches):
        if len(s) == 0:
            raise DataError(f"sketch {k} is empty")
        if len(s) > t:
            raise DataError(f"sketch {k} has {len(s)} points, more than the model's max_seq_len={t}")
    x, ln = pad_batch(list(sketches), t)
    return x.to(model.output.weight.device), ln.to(model.output.weight.device)


@torch.no_grad()
def encode_mean(model: SketchRNN, sketches: Sequence[np.ndarray]) -> torch.Tensor:
    """Posterior means ``mu [N, latent_dim]`` of stroke-3 sketches (eval mode)."""
    was = model.training
    model.eval()
    x, ln = _as_batch(model, sketches)
    mu = model.posterior(x, ln).mean
    model.train(was)
    return mu


def reconstruct(model: SketchRNN, sketches: Sequence[np.ndarray], *, temperature: float = 0.2,
                greedy: bool = False, sample_z: bool = False, generator: torch.Generator | None = None) -> Sketches:
    """Decode each sketch's latent (``mu``, or a draw from q if ``sample_z``) at ``temperature``."""
    was = model.training
    model.eval()
    x, ln = _as_batch(model, sketches)
    with torch.no_grad():
        q = model.posterior(x, ln)
        z = q.sample(generator) if sample_z else q.mean
    model.train(was)
    return model.generate(z=z, temperature=temperature, greedy=greedy, generator=generator)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``(1 - t) z0 + t z1``: ``z0, z1 [D]``, ``t [K]`` -> ``[K, D]``."""
    t = t.to(z0)[:, None]
    return (1.0 - t) * z0[None] + t * z1[None]


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for latents): ``[D]``, ``[K]`` -> ``[K, D]``.

    Falls back to :func:`lerp` when the two vectors are (anti)parallel within 1e-7.
    """
    t = t.to(z0)[:, None]
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so.abs()) < 1e-7:
        return lerp(z0, z1, t[:, 0])
    return (torch.sin((1.0 - t) * omega) / so) * z0[None] + (torch.sin(t * omega) / so) * z1[None]


def interpolate(model: SketchRNN, a: np.ndarray, b: np.ndarray, *, steps: int = 8, method: str = "slerp",
                temperature: float = 0.1, greedy: bool = False, generator: torch.Generator | None = None
                ) -> Sketches:
    """Decode ``steps`` latents between the posterior means of sketches ``a`` and ``b`` (ends included).

    Raises:
        ValueError: unknown ``method`` (``lerp`` or ``slerp``) or ``steps < 2``.
    """
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    mu = encode_mean(model, [a, b])
    t = torch.linspace(0.0, 1.0, steps)
    z = (slerp if method == "slerp" else lerp)(mu[0], mu[1], t)
    return model.generate(z=z, temperature=temperature, greedy=greedy, generator=generator)


def complete(model: SketchRNN, partial: np.ndarray, n: int = 8, *, temperature: float = 0.5,
             greedy: bool = False, z: torch.Tensor | None = None, latent: str = "encode",
             generator: torch.Generator | None = None) -> Sketches:
    """Continue a partial sketch ``n`` times: the decoder reads the given points, then samples.

    Args:
        partial: stroke-3 ``[P, 3]`` (normalised units), ``P < Nmax``.
        z: latents ``[n, latent_dim]`` to use (conditional models).
        latent: when ``z`` is None: ``encode`` (the partial sketch's posterior mean, the same for
            all ``n``) or ``prior`` (a fresh N(0, I) draw per completion).
    """
    if len(partial) == 0:
        raise DataError("the partial sketch is empty; give at least one point")
    if model.config.conditional and z is None:
        if latent == "encode":
            z = encode_mean(model, [partial]).expand(n, -1)
        elif latent == "prior":
            z = torch.randn(n, model.config.latent_dim, generator=generator)
        else:
            raise ValueError(f"latent must be 'encode' or 'prior', got {latent!r}")
    return model.generate(n, z=z, temperature=temperature, greedy=greedy, generator=generator,
                        prefix=np.asarray(partial, dtype=np.float32))


def truncate(sketch: np.ndarray, keep: float) -> np.ndarray:
    """The first points of a sketch: ``keep`` points (int) or that fraction of them (float in (0, 1))."""
    n = len(sketch)
    k = int(keep) if isinstance(keep, int) or float(keep) >= 1 else max(1, math.ceil(float(keep) * n))
    if not 1 <= k < n:
        raise DataError(f"cannot keep {k} of a sketch's {n} points; keep between 1 and {n - 1}")
    return np.asarray(sketch[:k], dtype=np.float32).copy()
