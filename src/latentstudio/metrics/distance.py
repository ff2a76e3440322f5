"""Gaussian fit and Mahalanobis distance, used to rank training images (SPEC section 3, VAE-MD)."""

from __future__ import annotations

import torch

from latentstudio.errors import ShapeError
from latentstudio.metrics._checks import as_matrix

__all__ = ["fit_gaussian", "mahalanobis"]


def fit_gaussian(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and unbiased covariance of ``x``.

    Args:
        x: ``float [N, D]`` with N >= 2.

    Returns:
        ``(mean float64 [D], cov float64 [D, D])``; the covariance divides by N - 1.

    Raises:
        ShapeError: if ``x`` is not ``[N, D]`` with N >= 2. LatentStudioError: non-finite values.
    """
    a = as_matrix(x, "x", min_rows=2).to(torch.float64)
    mean = a.mean(dim=0)
    c = a - mean
    cov = c.T @ c / (a.shape[0] - 1)
    return mean, cov


def mahalanobis(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, *, rcond: float = 1e-10) -> torch.Tensor:
    """Mahalanobis distance ``D(x) = sqrt((x - mu)^T S^-1 (x - mu))`` of each row (SPEC "Metrics").

    A positive-definite ``cov`` is handled with a Cholesky factor ``S = L L^T`` and a triangular
    solve, ``D = ||L^-1 (x - mu)||``. A singular (or numerically indefinite) ``cov`` falls back to
    the Moore-Penrose pseudo-inverse (``torch.linalg.pinv``, symmetric, relative cutoff ``rcond``
    on the eigenvalues): directions without variance are ignored rather than giving inf.

    Args:
        x: ``float [N, D]`` points; mean: ``float [D]``; cov: ``float [D, D]`` symmetric PSD.

    Returns:
        ``float64 [N]`` distances >= 0 (in standard deviations).

    Raises:
        ShapeError: if the shapes do not agree. LatentStudioError: non-finite values.
    """
    a = as_matrix(x, "x", min_rows=1).to(torch.float64)
    mu = torch.as_tensor(mean, dtype=torch.float64, device=a.device)
    s = torch.as_tensor(cov, dtype=torch.float64, device=a.device)
    d = a.shape[1]
    if mu.shape != (d,) or s.shape != (d, d):
        raise ShapeError(f"mahalanobis: x is [N, {d}] but mean is {list(mu.shape)} and cov {list(s.shape)}")
    s = as_matrix(s, "cov")
    s = 0.5 * (s + s.T)
    diff = a - mu
    chol, info = torch.linalg.cholesky_ex(s)
    if int(info) == 0 and bool(torch.isfinite(chol).all()) and float(torch.diagonal(chol).min()) > 0:
        y = torch.linalg.solve_triangular(chol, diff.T, upper=False)
        sq = y.pow(2).sum(dim=0)
    else:
        prec = torch.linalg.pinv(s, rtol=rcond, hermitian=True)
        sq = ((diff @ prec) * diff).sum(dim=1)
    return sq.clamp_min(0.0).sqrt()
