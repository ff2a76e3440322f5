"""Small shared types: training batches, loss outputs, typed model outputs and shape checks.

Every model family exchanges data through these types (see :mod:`latentstudio.models.base`):

- images cross module boundaries as ``uint8 [N, C, H, W]`` tensors (:func:`check_images`);
- sketches as :class:`Sketches` (stroke-3 arrays with their lengths, convertible to padded
  stroke-5 ``float32 [N, T, 5]`` plus ``int64 [N]`` lengths);
- a training step receives one :class:`Batch` and returns one :class:`LossOutput`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from latentstudio.errors import ShapeError


@dataclass
class LossOutput:
    """What ``model.loss(batch, step=..., generator=...)`` returns.

    Attributes:
        loss: scalar float tensor to minimise (nats per example unless the model says otherwise).
        terms: named scalar tensors for logging (e.g. ``kl``, ``nll``, ``gamma``); detached or not.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    """One training batch, in the form the data layer delivers it.

    Attributes:
        x: the examples: images ``uint8 [N, C, H, W]`` (or ``float32`` in [0, 1] when a trainer has
            already converted them, e.g. binarised MNIST), stroke-5 sketches ``float32 [N, Nmax, 5]``,
            or latents ``float32 [N, D]`` for a second-stage model.
        condition: ``float32 [N, cond_dim]`` (one-hot class or +-1 attributes), or None.
        lengths: ``int64 [N]`` real points per sketch (sketches only), else None.
    """

    x: torch.Tensor
    condition: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Sketches:
    """Vector sketches (the typed output and input of sketch models).

    Attributes:
        strokes: one stroke-3 ``float32 [L_i, 3]`` array per sketch (dx, dy, pen lifted after the
            point), in the model's normalised units (multiply dx, dy by the model's
            ``scale_factor`` for the data's original units).
        prefix_lengths: points of each sketch that were given (completion), else zeros.
        z: ``float32 [N, latent_dim]`` latents that produced them, or None.
    """

    strokes: list[np.ndarray]
    prefix_lengths: list[int] = field(default_factory=list)
    z: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not self.prefix_lengths:
            self.prefix_lengths = [0] * len(self.strokes)

    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def lengths(self) -> list[int]:
        """Points per sketch."""
        return [len(s) for s in self.strokes]


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


def check_images(x: torch.Tensor, shape: Sequence[int] | None = None, name: str = "images") -> torch.Tensor:
    """Assert ``x`` is ``uint8 [N, C, H, W]`` (and ``[C, H, W] == shape`` when given).

    Raises:
        ShapeError: naming ``name``, what was expected and what was given.
    """
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
        got = f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"{name}: expected uint8 [N, C, H, W] images, got {got}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ShapeError(f"{name}: expected uint8 [N, {', '.join(map(str, shape))}], got {list(x.shape)}")
    return x
