"""Sample-quality metrics on extracted features: FID, KID and the Inception Score.

The maths is torchmetrics' (``FrechetInceptionDistance``, ``KernelInceptionDistance``,
``InceptionScore``), fed either with precomputed features through a pass-through "extractor"
(``*_from_features``) or with project images through a
:class:`~latentstudio.metrics.extractors.FeatureExtractor` plugged in as torchmetrics' ``feature``
module (``compute_*``). Images are ``uint8 [N, C, H, W]``; torchmetrics hands them to the
extractor unchanged (``normalize=False``), the extractor does its own conversion and resizing.

Values from the ``inception`` extractor are reported as ``fid`` / ``kid`` / ``is``; from the
project classifier as ``fid_clf`` / ``kid_clf`` / ``is_clf`` (see
:mod:`latentstudio.metrics.records`). FID on fewer than 2048 images per side is biased upwards
and not comparable with published values: a :class:`BiasedMetricWarning` says so.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

from latentstudio.errors import LatentStudioError, ShapeError
from latentstudio.metrics._checks import as_matrix, check_images_u8, same_width

__all__ = [
    "FID_MIN_SAMPLES",
    "BiasedMetricWarning",
    "compute_fid",
    "compute_inception_score",
    "compute_kid",
    "fid_from_features",
    "inception_score_from_logits",
    "kid_from_features",
]

#: Below this many images per side FID is biased and not comparable (the pool3 width).
FID_MIN_SAMPLES = 2048


class BiasedMetricWarning(UserWarning):
    """A metric value computed on too few samples to be comparable with published numbers."""


class _PassThrough(nn.Module):
    """A torchmetrics ``feature`` module that returns its input (precomputed features ``[N, D]``)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Float64Features(nn.Module):
    """Runs a FeatureExtractor and returns float64 features (KID kernels in double precision)."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self.num_features = int(extractor.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images).to(torch.float64)


class _Logits(nn.Module):
    """Exposes a FeatureExtractor's ``logits`` as ``forward`` (what torchmetrics' InceptionScore calls)."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor.logits(images)


@contextmanager
def _quiet_torchmetrics():
    """Silence torchmetrics' construction chatter (feature-buffer memory notes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        yield


def _warn_if_small(n_real: int, n_fake: int, what: str = "FID") -> None:
    n = min(n_real, n_fake)
    if n < FID_MIN_SAMPLES:
        warnings.warn(
            f"{what} computed on {n_real} real and {n_fake} generated samples (< {FID_MIN_SAMPLES}): the value is "
            "biased upwards and not comparable with published FIDs or with values from other sample sizes",
            BiasedMetricWarning,
            stacklevel=3,
        )


def _fid_value(metric) -> float:
    value = float(metric.compute().item())
    if not math.isfinite(value):
        raise LatentStudioError(f"FID is not finite ({value}); the features are degenerate")
    # Rounding in the eigenvalues can leave a tiny negative number for identical statistics.
    return max(value, 0.0)


def fid_from_features(f_real: torch.Tensor, f_fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, eq. 6).

    ``FID = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` with sample means and unbiased
    (N - 1) covariances, computed in float64 by torchmetrics: the trace of the matrix square root
    is the sum of the square roots of the eigenvalues of ``S_r S_f`` (real parts), so singular
    covariances (fewer samples than dimensions, constant features) give a finite value.

    Args:
        f_real: ``float [N, D]`` reference features (N >= 2).
        f_fake: ``float [M, D]`` features of the evaluated images (M >= 2).

    Returns:
        FID >= 0 in squared feature units (0 for identical feature sets, up to rounding).

    Raises:
        ShapeError: if the inputs are not 2-D, have < 2 rows or different widths.
        LatentStudioError: if the features are not finite.

    Warns:
        BiasedMetricWarning: if N or M < 2048.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance  # lazy: torchmetrics adds ~2.3 s to import

    a = as_matrix(f_real, "real features", min_rows=2).to(torch.float64).cpu()
    b = as_matrix(f_fake, "generated features", min_rows=2).to(torch.float64).cpu()
    same_width(a, b, "real features", "generated features")
    _warn_if_small(a.shape[0], b.shape[0])
    with _quiet_torchmetrics():
        metric = FrechetInceptionDistance(feature=_PassThrough(a.shape[1]))
    metric.update(a, real=True)
    metric.update(b, real=False)
    return _fid_value(metric)


def kid_from_features(
    f_real: torch.Tensor,
    f_fake: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the polynomial kernel
    ``k(x, y) = (gamma x.y + coef)^degree`` (gamma = 1/D by default), averaged over random subsets.

    Args:
        f_real: ``float [N, D]`` reference features; f_fake: ``float [M, D]``.
        subsets: number of random subsets; subset_size: images per subset (capped at min(N, M)).
        seed: seed of the subset draws (the global RNG is left untouched).

    Returns:
        ``(mean, std)`` over subsets, in kernel units. The estimator is unbiased for independent
        samples (it can be slightly negative). For identical (overlapping) sets it is ~0 but
        slightly negative, of order 1/N, because the same points are drawn on both sides.

    Raises:
        ShapeError: non-2-D inputs, < 2 rows or different widths. LatentStudioError: non-finite features.
    """
    from torchmetrics.image.kid import KernelInceptionDistance  # lazy: torchmetrics adds ~2.3 s to import

    a = as_matrix(f_real, "real features", min_rows=2).to(torch.float64).cpu()
    b = as_matrix(f_fake, "generated features", min_rows=2).to(torch.float64).cpu()
    same_width(a, b, "real features", "generated features")
    size = min(int(subset_size), a.shape[0], b.shape[0])
    with _quiet_torchmetrics():
        metric = KernelInceptionDistance(
            feature=_PassThrough(a.shape[1]), subsets=subsets, subset_size=size, degree=degree,
            gamma=None if gamma is None else float(gamma), coef=float(coef),
        )
    metric.update(a, real=True)
    metric.update(b, real=False)
    return _kid_value(metric, seed)


def _kid_value(metric, seed: int) -> tuple[float, float]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean.item()), float(std.item())


def inception_score_from_logits(logits: torch.Tensor, splits: int = 10, *, seed: int = 0) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` from class logits.

    The images are shuffled (``seed``) and cut into ``splits`` groups; p(y) is the mean of the
    softmax over each group, and the score is averaged over groups (torchmetrics' definition).

    Args:
        logits: ``float [N, K]`` unnormalised class scores (N >= splits).
        splits: number of groups (1 gives std 0).
        seed: seed of the shuffle (global RNG untouched).

    Returns:
        ``(mean, std)`` over groups; the score lies in [1, K]: 1 for identical predictions, K for
        confident predictions spread evenly over K classes.

    Raises:
        ShapeError: if logits are not 2-D or N < splits. LatentStudioError: non-finite logits.
    """
    from torchmetrics.image.inception import InceptionScore  # lazy: torchmetrics adds ~2.3 s to import

    x = as_matrix(logits, "logits", min_rows=1).to(torch.float64).cpu()
    if splits < 1 or x.shape[0] < splits:
        raise ShapeError(f"Inception Score with {splits} splits needs at least {splits} images, got {x.shape[0]}")
    with _quiet_torchmetrics():
        metric = InceptionScore(feature=_PassThrough(x.shape[1]), splits=splits)
    metric.update(x)
    return _is_value(metric, seed, splits)


def _is_value(metric, seed: int, splits: int) -> tuple[float, float]:
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # std of a single split
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean.item()), (0.0 if splits == 1 else float(std.item()))


def _feed(metric, images: torch.Tensor, batch_size: int, progress: bool, desc: str, device, **kw) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with torch.no_grad():
        for start in tqdm(range(0, images.shape[0], batch_size), desc=desc, disable=not progress, leave=False):
            metric.update(images[start : start + batch_size].to(device), **kw)


def _check_pair(real_u8: torch.Tensor, fake_u8: torch.Tensor) -> None:
    check_images_u8(real_u8, "real images")
    check_images_u8(fake_u8, "generated images")
    if real_u8.shape[0] < 2 or fake_u8.shape[0] < 2:
        raise ShapeError(f"need at least 2 real and 2 generated images, got {real_u8.shape[0]} and {fake_u8.shape[0]}")


def compute_fid(
    real_u8: torch.Tensor, fake_u8: torch.Tensor, extractor, *, batch_size: int = 64, progress: bool = False
) -> float:
    """FID (Heusel et al. 2017) between two image sets through ``extractor`` plugged into torchmetrics.

    Args:
        real_u8: ``uint8 [N, C, H, W]`` reference images; fake_u8: ``uint8 [M, C, H, W]`` generated.
        extractor: a :class:`~latentstudio.metrics.extractors.FeatureExtractor` (``inception`` -> report as
            ``fid``, ``classifier`` -> ``fid_clf``; see :func:`latentstudio.metrics.records.fid_key`).
        batch_size: images per extractor call; progress: show a tqdm bar.

    Returns:
        FID >= 0 (see :func:`fid_from_features`).

    Raises:
        ShapeError: malformed images or fewer than 2 per side. LatentStudioError: non-finite result.

    Warns:
        BiasedMetricWarning: if N or M < 2048.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance  # lazy: torchmetrics adds ~2.3 s to import

    _check_pair(real_u8, fake_u8)
    _warn_if_small(real_u8.shape[0], fake_u8.shape[0])
    device = extractor.device
    with _quiet_torchmetrics():
        metric = FrechetInceptionDistance(feature=extractor).to(device)
    _feed(metric, real_u8, batch_size, progress, f"FID real ({extractor.name})", device, real=True)
    _feed(metric, fake_u8, batch_size, progress, f"FID generated ({extractor.name})", device, real=False)
    return _fid_value(metric)


def compute_kid(
    real_u8: torch.Tensor,
    fake_u8: torch.Tensor,
    extractor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018) between two ``uint8 [N, C, H, W]`` image sets through ``extractor``.

    Features are taken in float64; see :func:`kid_from_features` for the estimator and arguments.

    Returns:
        ``(mean, std)`` over subsets (report as ``kid`` / ``kid_clf``).

    Raises:
        ShapeError: malformed images or fewer than 2 per side.
    """
    from torchmetrics.image.kid import KernelInceptionDistance  # lazy: torchmetrics adds ~2.3 s to import

    _check_pair(real_u8, fake_u8)
    size = min(int(subset_size), real_u8.shape[0], fake_u8.shape[0])
    device = extractor.device
    with _quiet_torchmetrics():
        metric = KernelInceptionDistance(
            feature=_Float64Features(extractor), subsets=subsets, subset_size=size
        ).to(device)
    _feed(metric, real_u8, batch_size, progress, f"KID real ({extractor.name})", device, real=True)
    _feed(metric, fake_u8, batch_size, progress, f"KID generated ({extractor.name})", device, real=False)
    return _kid_value(metric, seed)


def compute_inception_score(
    images_u8: torch.Tensor,
    extractor,
    *,
    splits: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of ``uint8 [N, C, H, W]`` images from ``extractor.logits``.

    With the ``inception`` extractor the 1008-way ``logits_unbiased`` are used (torch-fidelity /
    torchmetrics convention); with the project classifier its K-way logits (report as ``is_clf``).

    Returns:
        ``(mean, std)`` over ``splits`` groups, in [1, K].

    Raises:
        ShapeError: malformed images or N < splits.
        LatentStudioError: if the extractor has no classification head.
    """
    from torchmetrics.image.inception import InceptionScore  # lazy: torchmetrics adds ~2.3 s to import

    check_images_u8(images_u8)
    if not getattr(extractor, "has_logits", hasattr(extractor, "logits")):
        raise LatentStudioError(f"feature extractor {extractor.name!r} has no logits; it cannot give an Inception Score")
    if splits < 1 or images_u8.shape[0] < splits:
        raise ShapeError(f"Inception Score with {splits} splits needs at least {splits} images, got {images_u8.shape[0]}")
    device = extractor.device
    with _quiet_torchmetrics():
        metric = InceptionScore(feature=_Logits(extractor), splits=splits).to(device)
    _feed(metric, images_u8, batch_size, progress, f"IS ({extractor.name})", device)
    return _is_value(metric, seed, splits)
