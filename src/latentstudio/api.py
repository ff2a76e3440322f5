"""The Python API: the same calls for every model family (two-stage VAE, DRAW, sketch-rnn, StyleGAN2).

Usage::

    import latentstudio as ls
    model = ls.load("runs/00003-two-stage-vae-mnist")     # any family's model or run folder
    images = ls.generate(model, n=8, seed=0)                # uint8 [8, C, H, W] (sketch-rnn: Sketches)
    q = ls.encode(model, images)                            # DiagonalGaussian posterior (encoder families)
    strip = ls.interpolate(model, images[0], images[1], steps=8)

Every function here composes the model contract of :mod:`latentstudio.models.base`; the maths lives
in ``models``, ``samplers`` and ``metrics``, training in ``training``, evaluation in ``evaluation``.
Errors a user can cause are :class:`~latentstudio.errors.LatentStudioError` subclasses naming the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.errors import ConfigError
from latentstudio.evaluation import evaluate as run_evaluation
from latentstudio.evaluation.common import model_split
from latentstudio.latents import interpolation_path
from latentstudio.models.base import ENCODE, GenerativeModel
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.loading import resolve_model_dir
from latentstudio.samplers import load_model_with_samplers
from latentstudio.studio.projection import load_latent
from latentstudio.training.registry import TRAINERS
from latentstudio.types import Sketches

__all__ = ["LatentFile", "data_split", "decode", "encode", "evaluate", "generate", "interpolate", "load",
           "read_latents", "reconstruct", "resolve_model_dir", "train"]

def load(path: str | Path, *, map_location: str | torch.device = "cpu") -> GenerativeModel:
    """Load a model folder (or a run's ``model/``) of any family, with its fitted samplers, without pickle.

    Returns:
        The :class:`~latentstudio.models.base.GenerativeModel` in eval mode; ``model.path``,
        ``model.meta`` (``meta.json``) and ``model.samplers`` (fitted samplers by name) are set.

    Raises:
        CheckpointError: not a model folder, an unfinished run (the resume command is named), or
            unreadable / mismatching files.
    """
    return load_model_with_samplers(path, map_location=map_location)


def generate(
    model: GenerativeModel,
    n: int = 64,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    condition: Any = None,
    **knobs: Any,
) -> torch.Tensor | Sketches:
    """Sample a model: ``n`` samples from one generator seeded ``seed``, or one sample per seed.

    Args:
        model: from :func:`load`.
        n: number of samples (ignored when ``seeds`` is given).
        seed: seed of the one generator of the batch.
        seeds: one sample per seed (``seeds[i]`` always gives the same sample; StyleGAN2 uses the
            official seed rule).
        condition: class index, list of classes, attribute dict or tensor (conditional models).
        **knobs: the family's sampling options (``model.knobs``): ``sampler`` (VAE family),
            ``temperature`` (DRAW, sketch-rnn), ``truncation_psi`` (StyleGAN2) ...

    Returns:
        ``uint8 [n, C, H, W]`` images, or :class:`~latentstudio.types.Sketches` for sketch models.

    Raises:
        ConfigError: ``n < 1``, an unknown knob (the known ones are named), a bad value or condition.
    """
    if seeds is not None:
        return model.sample_seeds(list(seeds), condition=condition, **knobs)
    return model.sample(n, generator=torch.Generator().manual_seed(int(seed)), condition=condition, **knobs)


def encode(model: GenerativeModel, x: Any, *, condition: Any = None) -> DiagonalGaussian:
    """Posterior of data ``x`` (images ``uint8 [N, C, H, W]``, or sketches for sketch models).

    Returns:
        :class:`~latentstudio.models.distributions.DiagonalGaussian` over the model's default space.

    Raises:
        CapabilityError: the family has no encoder (StyleGAN2: the message points to projection).
    """
    return model.encode(x, condition=condition)


def decode(model: GenerativeModel, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
           seed: int = 0, **knobs: Any) -> torch.Tensor | Sketches:
    """Typed outputs of latents ``[N, *shape]`` of ``space`` (``model.latent_spaces()``; default the first).

    Raises:
        CapabilityError: the family cannot decode; ConfigError: an unknown space or knob.
    """
    return model.decode(z, space=space, condition=condition, generator=torch.Generator().manual_seed(int(seed)),
                        **knobs)


def reconstruct(model: GenerativeModel, x: Any, *, condition: Any = None, seed: int = 0,
                **knobs: Any) -> torch.Tensor | Sketches:
    """Decode of the posterior mean of ``x`` (images ``uint8 [N, C, H, W]`` -> same; sketches -> sketches).

    Raises:
        CapabilityError: the family has no encoder.
    """
    return model.reconstruct(x, condition=condition, generator=torch.Generator().manual_seed(int(seed)), **knobs)


def _as_latent(model: GenerativeModel, end: Any, space: str | None, condition: Any) -> torch.Tensor:
    """An interpolation end as one latent ``[*shape]``: latents pass through, data is encoded (posterior mean)."""
    s = model.latent_space(space)
    if isinstance(end, torch.Tensor) and end.is_floating_point():
        t = end.reshape(s.shape) if end.numel() == math.prod(s.shape) else None
        if t is None:
            raise ConfigError(f"an interpolation end in {s.name} must have shape {list(s.shape)}, got {list(end.shape)}")
        return t
    model.require(ENCODE)
    if isinstance(end, torch.Tensor):  # one uint8 image [C, H, W] or a batch of one
        end = end[None] if end.ndim == 3 else end
    elif isinstance(end, np.ndarray):  # one stroke-3 sketch
        end = [end]
    return model.encode(end, condition=condition).mean[0].reshape(s.shape)


@dataclass(frozen=True)
class LatentFile:
    """Latents read from a file for a model (:func:`read_latents`).

    Attributes:
        path: the file.
        latents: ``float32 [n, *shape]`` of ``space``.
        space: a latent space of the model.
        condition: the condition recorded with them (a class, attribute dict or list of classes), or None.
        note: one line when the file was saved from another model folder than the model's (its space
            and shape fit, so it is used), else None.
        noise: a StyleGAN2 projection's noise maps saved beside its latent, by buffer name (else empty).
    """

    path: Path
    latents: torch.Tensor
    space: str
    condition: Any = None
    note: str | None = None
    noise: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.latents)

    def pick(self, *indices: int) -> list[torch.Tensor]:
        """The latents at ``indices`` (``[*shape]`` each).

        Raises:
            ConfigError: an index outside ``0..n-1``, naming the file.
        """
        n = len(self.latents)
        for i in indices:
            if not 0 <= int(i) < n:
                raise ConfigError(f"{self.path.name} holds {n} latent{'s' if n != 1 else ''} (0..{n - 1}); "
                                  f"latent {i} is not one of them (CLI: --pair A,B picks two)")
        return [self.latents[int(i)] for i in indices]

    def condition_of(self, index: int) -> Any:
        """The recorded condition of latent ``index``: one class of a per-latent list, else the condition
        recorded for all (None when none was)."""
        c = self.condition
        return c[int(index)] if isinstance(c, list) and len(c) == len(self.latents) else c


def read_latents(model: GenerativeModel, path: str | Path, *, default_space: str | None = None) -> LatentFile:
    """Latents of a file for ``model``: an ``.npz`` with ``latent [n, *shape]`` (or ``[*shape]``) and ``space``
    as the latent explorer (``studio.explorer.save_latents``), the studio and projection write it, or a bare
    ``.npy`` (of ``default_space``; default the model's first space).

    Latents with a row per layer (``[num_ws, w_dim]`` or ``[n, num_ws, w_dim]``) are of the space whose rows
    those are (W+): files of the Face Studio and of projections that say ``w`` for them (written before they
    said ``w+``, or projected in W) and bare ``.npy`` files read as W+. The explorer's files (which record
    their model) keep their space: there ``[num_ws, w_dim]`` of ``w`` is num_ws W latents.

    The file's recorded model is checked against ``model``: another family, a space the model does not
    have, or latents of another shape are refused; a file saved from another folder of a model of the
    same family whose space and shape fit is used, with a :attr:`LatentFile.note`.

    Args:
        model: from :func:`load`.
        path: the ``.npz`` / ``.npy`` file.
        default_space: the space of a file that records none (a bare ``.npy``); None: the model's first.

    Returns:
        :class:`LatentFile` with ``latents float32 [n, *shape]`` of its ``space``, and a projection's noise maps.

    Raises:
        LatentStudioError: a missing or unreadable file. ConfigError: the file does not fit the model
            (the message names the file, what it holds and what the model reads).
    """
    path = Path(path)
    data = load_latent(path)
    meta = data["meta"] if isinstance(data["meta"], dict) else {}
    family = meta.get("model_type")
    saved_from = meta.get("model_path") or None
    if family and family != model.model_type:
        raise ConfigError(f"{path.name} holds latents of a {family} model ({saved_from or 'path not recorded'}), "
                          f"not of this {model.model_type} model: give the model it was saved from (--model)")
    spaces = {s.name: s for s in model.latent_spaces()}
    space = data["space"] or default_space or next(iter(spaces), None)
    if space not in spaces:
        raise ConfigError(f"{path.name} holds latents of space {space!r}; this {model.model_type} model's spaces: "
                          f"{', '.join(spaces) or 'none (decoder only)'}")
    z = data["latent"].float()
    if not family:  # not the explorer's: latents with a row per layer are of the layered space (W+)
        space = next((s.name for s in spaces.values() if s.row_space == space and z.ndim in (len(s.shape),
                      len(s.shape) + 1) and tuple(z.shape[z.ndim - len(s.shape):]) == s.shape), space)
    shape = spaces[space].shape
    if tuple(z.shape) == shape:
        z = z[None]
    if z.ndim != len(shape) + 1 or tuple(z.shape[1:]) != shape or len(z) == 0:
        raise ConfigError(f"{path.name}: latents of shape {list(z.shape)} do not fit space {space} of this model "
                          f"(it reads [n, {', '.join(map(str, shape))}]); was it saved from another model?")
    note = None
    if saved_from and model.path is not None and Path(saved_from).resolve() != Path(model.path).resolve():
        note = f"{path.name} was saved from {saved_from}, not {model.path}; its space {space} and shape fit"
    condition = meta.get("condition")
    if isinstance(condition, dict):  # JSON keys are strings: attribute indices
        condition = {int(k): float(v) for k, v in condition.items()}
    return LatentFile(path, z.contiguous(), space, condition, note, dict(data["noise"]))


def interpolate(
    model: GenerativeModel,
    a: Any,
    b: Any,
    *,
    steps: int = 8,
    method: str = "slerp",
    space: str | None = None,
    condition: Any = None,
    seed: int = 0,
    **knobs: Any,
) -> torch.Tensor | Sketches:
    """Decode ``steps`` latents between two ends (ends included).

    Args:
        a, b: latents ``[*shape]`` of ``space`` (float tensors), or data the model encodes (its posterior
            mean): one image ``uint8 [C, H, W]`` / ``[1, C, H, W]``, or one stroke-3 sketch array.
        steps: number of outputs (>= 2).
        method: ``slerp`` (default) or ``lerp``.
        space: latent space (default: the model's first).
        condition: condition of every output (conditional models).
        seed: generator seed of stochastic decoders (sketch-rnn).
        **knobs: the family's decoding options.

    Returns:
        ``uint8 [steps, C, H, W]`` or :class:`~latentstudio.types.Sketches`.

    Raises:
        ConfigError: bad ends, steps or method; CapabilityError: data ends for a family without encoder.
    """
    za, zb = _as_latent(model, a, space, condition), _as_latent(model, b, space, condition)
    path = interpolation_path(za, zb, steps, method)
    cond = None if condition is None else model.condition_spec.make(condition, 1).expand(steps, -1)
    return decode(model, path, space=space, condition=cond, seed=seed, **knobs)


def train(
    family: str,
    spec: dict[str, Any] | None = None,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    **options: Any,
):
    """Train a model family from a run-config dict (the layout of a run's ``run.json`` ``config``).

    Args:
        family: ``two-stage-vae``, ``draw``, ``sketch-rnn`` or ``stylegan2`` (``latentstudio.training.TRAINERS``).
        spec: partial run config; unset fields take the family's defaults and the dataset's shapes.
        runs_root: parent folder of the numbered run folder.
        resume: an interrupted run folder to continue with its own config (``spec`` is ignored).
        progress: show progress bars.
        dry_run: return the resolved config without training or writing anything.
        **options: family-specific (``data`` an already loaded dataset, ``callbacks``, ``init_from`` ...).

    Returns:
        The family's train result (``run_dir``, ``model_dir``, the model), or the resolved config.

    Raises:
        UnknownNameError: unknown family. ConfigError / DataError: bad config or data.
    """
    return TRAINERS.get(family)(spec or {}, runs_root=runs_root, resume=resume, progress=progress,
                                dry_run=dry_run, **options)


def data_split(model: GenerativeModel, data: Any = None, split: str = "test"):
    """The ``split`` of ``data`` (a ``DataSpec``, dict, dataset name or stroke file), or of the dataset
    the model was trained on when ``data`` names none, in the form the model reads (sketch models:
    strokes normalised by the model's scale factor).

    Returns:
        ``ImageData`` (``images uint8 [N, C, H, W]``, labels, attributes) or a ``StrokeSet`` (``sketches``).

    Raises:
        DataError: no dataset given and none recorded with the model; an empty split.
    """
    return model_split(model, data, split)


def evaluate(model: GenerativeModel | str | Path, data: Any = None, **options: Any) -> Path:
    """Evaluate a model with its family's evaluator and write ``metrics.jsonl`` + ``report.md``.

    Args:
        model: a loaded model or a model/run folder.
        data: the reference data spec (default: the dataset the model was trained on).
        **options: the evaluator's options (``extractor``, ``n_samples``, ``out_dir``, ``seed`` ...).

    Returns:
        Path of ``report.md``.
    """
    return run_evaluation(model, data, **options)
