"""Small shared types: loss outputs and tensor-shape checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from latentstudio.errors import ShapeError


@dataclass
class LossOutput:
    """What ``model.loss(batch)`` returns.

    Attributes:
        total: scalar float tensor to minimise (nats per example unless the model says otherwise).
        terms: named scalar tensors for logging (e.g. ``kl``, ``nll``, ``gamma``); detached or not.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def check_shape(
    x: torch.Tensor,
    shape: Sequence[int | None],
    name: str,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Assert ``x`` has ``shape`` (``None`` matches any size) and optionally ``dtype``.

    Raises:
        ShapeError: naming ``name``, the expected and the actual shape/dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape, strict=True)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ShapeError(f"{name}: expected shape {want}, got {list(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise ShapeError(f"{name}: expected dtype {dtype}, got {x.dtype}")
    return x
