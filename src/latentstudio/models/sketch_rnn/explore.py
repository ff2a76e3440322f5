"""Completing partial sketches with a trained sketch-rnn (reconstruction, interpolation and sampling
are the model contract's: ``latentstudio.reconstruct`` / ``interpolate`` / ``generate``).

Sketches are stroke-3 in the model's normalised units (divide raw offsets by ``model.scale_factor``;
:func:`latentstudio.data.strokes.load_strokes` does this for a dataset).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from latentstudio.errors import DataError
from latentstudio.types import Sketches


@torch.no_grad()
def complete(model: torch.nn.Module, partial: np.ndarray, n: int = 8, *, temperature: float = 0.5,
             greedy: bool = False, z: torch.Tensor | None = None, latent: str = "encode",
             generator: torch.Generator | None = None) -> Sketches:
    """Continue a partial sketch ``n`` times: the decoder reads the given points, then samples (the model
    contract's completion, ``SketchRNN.complete``, calls this; ``model`` is a
    :class:`~latentstudio.models.sketch_rnn.model.SketchRNN`, typed loosely because that module imports this one).

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
            z = model.encode([partial]).mean.expand(n, -1)
        elif latent == "prior":
            z = torch.randn(n, model.config.latent_dim, generator=generator)
        else:
            raise ValueError(f"latent must be 'encode' or 'prior', got {latent!r}")
    return model.generate(n, z=z, temperature=temperature, greedy=greedy, generator=generator,
                        prefix=np.asarray(partial, dtype=np.float32))


def truncate(sketch: np.ndarray, keep: float) -> np.ndarray:
    """The first points of a sketch: ``keep`` points (int) or that fraction of them (float in (0, 1)).

    Raises:
        DataError: a sketch of fewer than 2 points (nothing to keep and complete), or ``keep`` outside
            ``1 .. L - 1`` points.
    """
    n = len(sketch)
    if n < 2:
        raise DataError(f"a sketch of {n} point{'s' if n != 1 else ''} cannot be completed; pick one of 2 or more points")
    k = int(keep) if isinstance(keep, int) or float(keep) >= 1 else max(1, math.ceil(float(keep) * n))
    if not 1 <= k < n:
        raise DataError(f"cannot keep {k} of a sketch's {n} points; keep between 1 and {n - 1}")
    return np.asarray(sketch[:k], dtype=np.float32).copy()
