"""Per-image reconstruction error (SPEC "Metrics"; used to rank training images, SPEC section 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError

__all__ = ["reconstruction_error"]

_EPS = 1e-7


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean per-pixel reconstruction error of each image.

    * ``"mse"``: ``mean_pixels (x - x_hat)^2`` (squared intensity units, images in [0, 1]).
    * ``"bce"``: ``mean_pixels -[x log x_hat + (1 - x) log(1 - x_hat)]`` in nats per pixel
      (x_hat clamped to [1e-7, 1 - 1e-7]; x may be grey levels, not only 0/1, so the minimum is the
      entropy of x, not 0).

    Args:
        x: ``float [N, C, H, W]`` (any ``[N, ...]``) targets in [0, 1].
        x_hat: reconstructions, same shape, in [0, 1].
        kind: ``"mse"`` or ``"bce"``.

    Returns:
        ``float [N]`` (float64 if the inputs are float64, else float32).

    Raises:
        ShapeError: if shapes differ, N is missing or the tensors are not floating point.
        ConfigError: for an unknown ``kind``.
        LatentStudioError: for ``bce`` with values outside [0, 1] or non-finite values.
    """
    if kind not in ("mse", "bce"):
        raise ConfigError(f"unknown reconstruction error kind {kind!r}; use 'mse' or 'bce'")
    for name, t in (("x", x), ("x_hat", x_hat)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 2:
            got = f"{t.dtype} {list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"reconstruction_error: {name} must be a float [N, C, H, W] tensor, got {got}")
    if x.shape != x_hat.shape:
        raise ShapeError(f"reconstruction_error: x {list(x.shape)} and x_hat {list(x_hat.shape)} differ")
    dtype = torch.float64 if torch.float64 in (x.dtype, x_hat.dtype) else torch.float32
    a, b = x.detach().to(dtype).flatten(1), x_hat.detach().to(dtype).flatten(1)
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise LatentStudioError("reconstruction_error: inputs contain NaN or inf")
    if kind == "mse":
        return (a - b).pow(2).mean(dim=1)
    if float(a.min()) < 0 or float(a.max()) > 1 or float(b.min()) < 0 or float(b.max()) > 1:
        raise LatentStudioError("reconstruction_error: bce needs x and x_hat in [0, 1]")
    b = b.clamp(_EPS, 1.0 - _EPS)
    return F.binary_cross_entropy(b, a, reduction="none").mean(dim=1)
