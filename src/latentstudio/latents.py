"""Latent-space geometry shared by every family: interpolation paths and truncation.

- :func:`lerp`: ``(1 - t) a + t b``.
- :func:`slerp`: spherical interpolation of the directions (Shoemake 1985; White 2016 for latents of
  Gaussian priors, whose typical norm it keeps) with the norms interpolated linearly; falls back to
  :func:`lerp` for (anti)parallel vectors.
- :func:`unit_slerp`: slerp on the unit sphere, the perceptual path length's Z-space walk (Karras et
  al. 2019, appendix; StyleGAN2 section 3.2), returns unit vectors.
- :func:`truncate`: the truncation trick ``centre + psi (x - centre)`` (Karras et al. 2019, section 4).
- :func:`interpolation_path`: ``steps`` latents from one latent to another.
"""

from __future__ import annotations

import torch

from latentstudio.errors import ConfigError

INTERPOLATIONS = ("lerp", "slerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``(1 - t) a + t b`` for ``a, b [..., D]`` and ``t`` broadcastable (e.g. ``[K, 1]``)."""
    return torch.lerp(a, b, torch.as_tensor(t, dtype=a.dtype))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of row vectors ``a, b [..., D]`` at ``t`` (broadcastable): the angle
    between the normalised vectors is interpolated, their norms linearly; (anti)parallel pairs
    (``|sin(angle)| <= 1e-4``) are interpolated linearly."""
    t = torch.as_tensor(t, dtype=a.dtype)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    dot = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    safe = so.abs() > 1e-4
    wa = torch.where(safe, torch.sin((1 - t) * omega) / so.where(safe, torch.ones_like(so)), 1 - t)
    wb = torch.where(safe, torch.sin(t * omega) / so.where(safe, torch.ones_like(so)), t)
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(eps)
    return direction * ((1 - t) * na + t * nb)


def unit_slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Slerp of the normalised ``a, b [N, D]`` at ``t [N, 1]``, returning unit vectors (the perceptual
    path length's interpolation in Z)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def truncate(x: torch.Tensor, centre: torch.Tensor, psi: float) -> torch.Tensor:
    """``centre + psi (x - centre)`` as ``torch.lerp`` (bit-identical to the StyleGAN2 mapping network's
    truncation); ``centre`` broadcasts against ``x``."""
    return torch.lerp(centre.to(x).expand_as(x), x, float(psi))


def interpolation_path(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """``steps`` latents from ``a`` to ``b``, both included: ``[*shape]`` x 2 -> ``[steps, *shape]``
    (slerp treats each latent as one flattened vector).

    Raises:
        ConfigError: ``steps < 2``, an unknown method or ends of different shapes.
    """
    if method not in INTERPOLATIONS:
        raise ConfigError(f"interpolation method must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
    if steps < 2:
        raise ConfigError(f"interpolation steps must be >= 2, got {steps}")
    if a.shape != b.shape:
        raise ConfigError(f"interpolation ends differ in shape: {list(a.shape)} and {list(b.shape)}")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)[:, None]
    fa, fb = a.double().flatten()[None], b.double().flatten()[None]
    path = slerp(fa, fb, t) if method == "slerp" else lerp(fa, fb, t)
    return path.view(steps, *a.shape).to(a.dtype)
