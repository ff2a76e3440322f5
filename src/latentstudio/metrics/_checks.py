"""Input checks shared by the metric functions (internal)."""

from __future__ import annotations

import torch

from latentstudio.errors import LatentStudioError, ShapeError


def as_matrix(x: torch.Tensor, what: str, *, min_rows: int = 1) -> torch.Tensor:
    """Return ``x`` as a floating ``[N, D]`` tensor after checking shape and finiteness.

    Raises:
        ShapeError: if ``x`` is not a 2-D tensor with at least ``min_rows`` rows.
        LatentStudioError: if ``x`` holds NaN or inf values.
    """
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ShapeError(f"{what} must be a 2-D [N, D] tensor, got shape {list(x.shape)}")
    if x.shape[0] < min_rows:
        raise ShapeError(f"{what} needs at least {min_rows} rows, got {x.shape[0]}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise LatentStudioError(f"{what} contains NaN or inf values")
    return x


def same_width(a: torch.Tensor, b: torch.Tensor, what_a: str, what_b: str) -> None:
    """Raise ShapeError unless ``a`` and ``b`` have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"{what_a} has {a.shape[1]} features but {what_b} has {b.shape[1]}")


def check_images_u8(images: torch.Tensor, what: str = "images") -> None:
    """Raise ShapeError unless ``images`` is ``uint8 [N, C, H, W]`` with C in (1, 3)."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {list(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ShapeError(f"{what} must be uint8 [N, C, H, W] images, got {got}")
    if images.shape[1] not in (1, 3):
        raise ShapeError(f"{what} must have 1 or 3 channels, got {images.shape[1]} ({list(images.shape)})")
