"""Perceptual path length (Karras et al. 2019, StyleGAN section 4.2; StyleGAN2 section 3.2).

    PPL = E[ d(G(lerp(w1, w2, t)), G(lerp(w1, w2, t + eps))) / eps^2 ],   eps = 1e-4

with ``w1, w2`` the mapped styles of two random z (``space="w"``, linear interpolation) or the
images of ``slerp(z1, z2, t)`` (``space="z"``). ``sampling="end"`` uses t = 0 (the StyleGAN2 paper's
``ppl2_wend``), ``"full"`` t ~ U(0, 1). ``d`` is a perceptual distance from
:mod:`latentstudio.metrics.perceptual` (LPIPS-VGG for published-comparable numbers); images larger
than 256 pixels are box-downsampled to 256 first, as in the official metric. The mean is taken
after discarding values below the 1st and above the 99th percentile (official estimator).

Works with any generator exposing ``mapping(z) -> [N, num_ws, w_dim]``, ``synthesis(ws, noise_mode=...)``
and ``z_dim``; models are never imported here. Both images of a pair use the same (constant) noise.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from latentstudio.errors import LatentStudioError
from latentstudio.latents import unit_slerp

KEY_PPL = "ppl"

__all__ = ["KEY_PPL", "filtered_mean", "perceptual_path_length"]


def filtered_mean(values: np.ndarray | torch.Tensor, lo_pct: float = 1.0, hi_pct: float = 99.0) -> float:
    """Mean of ``values`` within the [``lo_pct``, ``hi_pct``] percentiles (lower/higher sample values kept)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    lo = np.percentile(v, lo_pct, method="lower")
    hi = np.percentile(v, hi_pct, method="higher")
    return float(v[(v >= lo) & (v <= hi)].mean())


@torch.no_grad()
def perceptual_path_length(
    G,
    distance,
    *,
    num_samples: int = 10_000,
    space: str = "w",
    sampling: str = "end",
    epsilon: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> tuple[float, np.ndarray]:
    """Perceptual path length of generator ``G`` under ``distance``.

    Args:
        G: generator (``mapping``, ``synthesis``, ``z_dim``); evaluated on its device.
        distance: callable ``(a, b) -> float [N]`` on images in [-1, 1] (a
            :class:`~latentstudio.metrics.perceptual.PerceptualDistance`).
        num_samples: interpolation pairs (the papers use 50,000 or 100,000).
        space: ``"w"`` (lerp of styles) or ``"z"`` (slerp of inputs).
        sampling: ``"end"`` (t = 0) or ``"full"`` (t ~ U(0, 1)).
        epsilon: step; distances are divided by ``epsilon**2``.
        seed: seed of z and t draws (a ``torch.Generator``; global RNG untouched).

    Returns:
        ``(ppl, per-pair values float64 [num_samples])``; ppl is the 1-99 percentile filtered mean.

    Raises:
        LatentStudioError: bad ``space``/``sampling``/``num_samples``.
    """
    if space not in ("w", "z"):
        raise LatentStudioError(f"PPL space must be 'w' or 'z', got {space!r}")
    if sampling not in ("end", "full"):
        raise LatentStudioError(f"PPL sampling must be 'end' or 'full', got {sampling!r}")
    if num_samples < 2:
        raise LatentStudioError(f"PPL needs at least 2 samples, got {num_samples}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    dev = next(iter(G.parameters())).device if hasattr(G, "parameters") else torch.device("cpu")
    out = []
    for start in tqdm(range(0, num_samples, batch_size), desc="PPL", disable=not progress, leave=False):
        n = min(batch_size, num_samples - start)
        z = torch.randn(2 * n, G.z_dim, generator=g)
        t = torch.rand(n, 1, generator=g) * (1.0 if sampling == "full" else 0.0)
        if space == "w":
            w = G.mapping(z.to(dev))
            w0, w1 = w[:n], w[n:]
            tt = t.to(dev)[:, :, None]
            ws = torch.cat([torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + epsilon)])
        else:
            za = unit_slerp(z[:n], z[n:], t)
            zb = unit_slerp(z[:n], z[n:], t + epsilon)
            ws = G.mapping(torch.cat([za, zb]).to(dev))
        img = G.synthesis(ws, noise_mode="const").float()
        if img.shape[-1] > 256:
            f = img.shape[-1] // 256
            img = img.reshape(img.shape[0], img.shape[1], img.shape[2] // f, f, img.shape[3] // f, f).mean([3, 5])
        d = distance(img[:n], img[n:]).double().cpu() / epsilon**2
        out.append(d)
    values = torch.cat(out).numpy()
    return filtered_mean(values), values
