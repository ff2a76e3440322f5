"""Latent explorer: the latent spaces of any model, through the model contract only.

One code path for every family: what differs comes from the model's :class:`~latentstudio.models.base.GenerativeModel`
description, never from its type:

- ``output_kind``: images (``uint8 [N, C, H, W]``, rendered as PNG grids and GIF strips) or sketches
  (stroke-3, rendered as SVG and GIF);
- ``latent_spaces()``: the spaces offered (those ``decode`` accepts), their shapes and priors;
- ``knobs``: the sampling options shown as controls (``temperature``, ``sampler``, ``truncation_psi`` ...);
- ``capabilities``: encode (inputs -> latents of the default space), ``steps`` (the canvas after each step,
  of samples and of any latent), ``complete`` (continuations of a drawn start);
- ``condition_spec``: a class or attribute condition shared by every call.

Where latents come from (:meth:`Explorer.draw`): in the default space of a model with a ``sampler`` knob
and an encoder (the VAE family), the model's own samples (so the fitted GMM and second stage are used)
and their posterior means; otherwise a space whose prior is ``N(0, I)`` is drawn from it (one
generator per seed); a space reached through a mapping (``LatentSpace.mapped_from``: StyleGAN2's W and
W+) maps the latents its source space gives for the same seeds (``model.to_space``), with the mapping's
knobs (``LatentSpace.mapping_knobs``: truncation). Such latents already carry those knobs, so
:meth:`Explorer.decode` decodes them with those knobs at their defaults (no second truncation).

Tools: :meth:`~Explorer.encode`, :meth:`~Explorer.interpolate` (lerp/slerp of
:mod:`latentstudio.latents`), :meth:`~Explorer.random_walk`, :meth:`~Explorer.principal_directions`
(PCA with scikit-learn, through :func:`~latentstudio.studio.directions.ganspace`; for a space of layer
rows such as W+, PCA of its row space, W, broadcast to every row, GANSpace-style), :meth:`~Explorer.move`
(on chosen layers of W+), :meth:`~Explorer.steps_of` (the drawing of any latent) and
:meth:`~Explorer.complete` (a partial sketch continued); files: :func:`save_latents` (``.npz`` with the model path and space),
:func:`save_outputs` (PNG grid / SVG), :func:`save_animation` (GIF / MP4), :func:`save_directions`
(a direction library ``.npz`` as ``latentstudio edit --directions`` reads it). ``latentstudio edit`` of a model
the Face Studio does not drive (DRAW, sketch-rnn): :meth:`~Explorer.read_directions` (a directions file checked
against the model and the latents' space), :meth:`~Explorer.apply` (moves by name),
:meth:`~Explorer.decode_each` (every frame with the same seed) and :func:`save_edited`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.data.base import ImageData
from latentstudio.data.strokes import (
    StrokeSet,
    drawing_to_stroke3,
    normalizing_scale_factor,
    read_ndjson,
    read_npz,
)
from latentstudio.errors import ConfigError, LatentStudioError, RunExistsError
from latentstudio.io import media
from latentstudio.io.atomic import atomic_path
from latentstudio.io.images import image_format, load_image, make_grid, save_image
from latentstudio.io.strokes_render import grid_image, save_sketches
from latentstudio.latents import INTERPOLATIONS, interpolation_path
from latentstudio.models.base import COMPLETE, DECODE, ENCODE, STEPS, GenerativeModel, LatentSpace
from latentstudio.studio.directions import Direction, DirectionLibrary, ganspace
from latentstudio.types import Sketches

__all__ = [
    "Explorer",
    "ExplorerError",
    "Outputs",
    "Reference",
    "latent_grid",
    "load_sketch_file",
    "save_animation",
    "save_directions",
    "save_latents",
    "save_outputs",
    "sketch_from_drawing",
    "to_frames",
    "unit_spread",
]

Outputs = torch.Tensor | Sketches

#: Latents drawn for the principal directions when none are given.
PCA_SAMPLES = 256


class ExplorerError(LatentStudioError):
    """A request the model cannot serve (a space it cannot draw, an input of the wrong kind ...)."""


@dataclass(frozen=True)
class Directions:
    """Directions of one space: ``vectors [k, *shape]``, ``mean [*shape]`` and, for principal directions,
    the variance ratio of each (unit component times the standard deviation along it); label directions
    have ``labels`` (their names) and a variance ratio of 0."""

    space: str
    vectors: torch.Tensor
    mean: torch.Tensor
    variance_ratio: tuple[float, ...]
    source: str
    labels: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return list(self.labels) if self.labels else [f"pc{i}" for i in range(len(self.vectors))]


@dataclass(frozen=True)
class Reference:
    """Training examples the explorer compares with: ``data`` (images ``uint8 [N, C, H, W]`` or
    :class:`Sketches`), a label per example (class names or words) or None, and a name for the page.

    A conditional model encodes each example with its own condition: ``classes`` (the class index of each
    example, ``N`` ints in ``0..num_classes-1``) for a class-conditional one, ``attributes`` (``float32
    [N, A]`` in +-1) for an attribute-conditional one; None where the data have none.
    """

    data: Any
    labels: tuple[str, ...] | None
    name: str
    classes: tuple[int, ...] | None = None
    attributes: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.data)

    @classmethod
    def of(cls, split: ImageData | StrokeSet) -> Reference:
        """The reference of a loaded split (``latentstudio.api.data_split``)."""
        if isinstance(split, ImageData):
            labels, classes = None, None
            if split.labels is not None:
                names = split.class_names
                classes = tuple(int(i) for i in split.labels)
                labels = tuple(names[i] if names and i < len(names) else str(i) for i in classes)
            return cls(split.images, labels, f"{split.name} {split.split}", classes, split.attributes)
        words = tuple(split.labels) if split.labels and len(set(split.labels)) > 1 else None
        return cls(Sketches(list(split.sketches)), words, f"{split.name} {split.split}")

    def conditions(self, kind: str, start: int, stop: int) -> Any:
        """The conditions of examples ``start:stop`` for a model conditioned on ``kind`` (``ConditionSpec.kind``):
        their classes (a list of ints), their attributes ``float32 [n, A]``, or None for ``none``.

        Raises:
            ExplorerError: the data have no classes (attributes) for a class- (attribute-) conditional model.
        """
        if kind == "none":
            return None
        given = self.classes if kind == "class" else self.attributes
        if given is None:
            what = "class labels" if kind == "class" else "attributes"
            raise ExplorerError(f"the model is {kind}-conditional and the training data ({self.name}) have no "
                                f"{what}: load a split with them (--reference with --data)")
        return list(given[start:stop]) if kind == "class" else given[start:stop].float()


class Explorer:
    """The latent spaces of ``model`` (a loaded :class:`GenerativeModel`), see the module docstring."""

    def __init__(self, model: GenerativeModel, reference: Reference | None = None) -> None:
        self.model = model.eval()
        self.reference = reference
        self._output_shape: tuple[int, ...] | None = None
        self._reference_z: torch.Tensor | None = None

    # ------------------------------------------------------------------ description
    @property
    def family(self) -> str:
        return self.model.model_type

    @property
    def output_kind(self) -> str:
        return self.model.output_kind

    def spaces(self) -> list[LatentSpace]:
        """The spaces the explorer can show: decodable ones of a model that decodes (none for a
        decoder-only model, which can still be sampled)."""
        if not self.model.supports(DECODE):
            return []
        return [s for s in self.model.latent_spaces() if s.decodable]

    def space(self, name: str | None = None) -> LatentSpace:
        spaces = self.spaces()
        if not spaces:
            raise ExplorerError(f"this {self.family} model has no latent space to explore (it only samples)")
        if name is None:
            return spaces[0]
        for s in spaces:
            if s.name == name:
                return s
        raise ExplorerError(f"{self.family} has no explorable space {name!r}; its spaces: "
                            f"{', '.join(s.name for s in spaces)}")

    def drawable(self, space: LatentSpace) -> bool:
        """Whether :meth:`draw` can make latents of ``space``: drawn from its ``N(0, I)`` prior, through the
        model's samples, or mapped (``space.mapped_from``) from a drawable space."""
        if self._through_samples(space) or space.prior.startswith("N(0, I)"):
            return True
        source = self._source(space)
        return source is not None and self.drawable(source)

    def _source(self, space: LatentSpace) -> LatentSpace | None:
        """The space ``space`` is mapped from, or None."""
        if space.mapped_from is None or space.mapped_from == space.name:
            return None
        try:
            return self.model.latent_space(space.mapped_from)
        except ConfigError:
            return None

    def layer_count(self, space: str | None = None) -> int | None:
        """Layer rows of a latent of ``space`` (W+: ``num_ws``) that :meth:`move` can mask, else None."""
        return self.space(space).layers

    def _through_samples(self, space: LatentSpace) -> bool:
        names = {k.name for k in self.model.knobs}
        return ("sampler" in names and self.model.supports(ENCODE)
                and space.name == self.model.latent_spaces()[0].name)

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {
            "family": self.family,
            "output_kind": self.output_kind,
            "path": None if m.path is None else str(m.path),
            "spaces": [{"name": s.name, "shape": list(s.shape), "prior": s.prior, "description": s.description,
                        "drawable": self.drawable(s), "layers": s.layers, "mapped_from": s.mapped_from}
                       for s in self.spaces()],
            "knobs": {k.name: {"default": m.default_knobs().get(k.name), "help": k.help, "kind": k.kind.__name__,
                               "choices": list(m.sampler_choices() or ()) if k.name == "sampler"
                               else (list(k.choices) if k.choices else None)} for k in m.knobs},
            "capabilities": sorted(m.capabilities),
            "condition": {"kind": m.condition_spec.kind, "dim": m.condition_spec.dim},
            "steps": STEPS in m.capabilities,
            "complete": self.can_complete(),
        }

    def headline(self, space: str | None = None) -> str:
        """One line: the family, the output kind and the space shown."""
        text = f"{self.family} ({self.output_kind})"
        if self.spaces():
            s = self.space(space)
            text += f", latent space {s.name} {list(s.shape)}, prior {s.prior}"
        else:
            text += ", no latent space (decoder only: sampling)"
        return text

    # ------------------------------------------------------------------ sampling and decoding
    def knobs(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """The knobs' values, checked (unknown names refused, None = the default)."""
        return self.model.resolve_knobs({k: v for k, v in (values or {}).items()})

    def sample(self, seeds: Sequence[int], *, knobs: dict[str, Any] | None = None, condition: Any = None) -> Outputs:
        """The model's own samples, one per seed (every knob applies)."""
        return self.model.sample_seeds([int(s) for s in seeds], condition=condition, **self.knobs(knobs))

    def draw(self, seeds: Sequence[int], *, space: str | None = None, knobs: dict[str, Any] | None = None,
             condition: Any = None) -> tuple[torch.Tensor, Outputs]:
        """Latents ``[n, *shape]`` of ``space`` and their outputs, one per seed (see the module docstring).

        A mapped space (StyleGAN2's ``w`` ``[n, w_dim]`` and ``w+`` ``[n, num_ws, w_dim]``) gives the mapping
        of the latent its source space (``z``) gives for the same seed, with the mapping's knobs
        (``truncation_psi``, ``truncation_cutoff``) applied; ``truncation_psi=0`` gives ``w_avg``.

        Raises:
            ExplorerError: a space whose latents cannot be drawn here.
        """
        s = self.space(space)
        seeds = [int(v) for v in seeds]
        if not seeds:
            raise ExplorerError("no seeds given: give one or more, e.g. 0-3")
        if self._through_samples(s):
            outs = self.sample(seeds, knobs=knobs, condition=condition)
            z = self.encode(outs, condition=condition)
            return z, outs
        z = self._seed_latents(s, seeds, knobs=knobs, condition=condition)
        return z, self.decode(z, space=s.name, knobs=knobs, condition=condition, seed=seeds[0])

    def _seed_latents(self, s: LatentSpace, seeds: Sequence[int], *, knobs: dict[str, Any] | None,
                      condition: Any) -> torch.Tensor:
        """Latents of ``s`` for ``seeds`` without decoding them (prior draws, or mapped ones)."""
        if s.prior.startswith("N(0, I)"):
            return torch.stack([torch.randn(s.shape, generator=torch.Generator().manual_seed(int(v)))
                                for v in seeds])
        source = self._source(s)
        if source is None or not self.drawable(source):
            raise ExplorerError(f"{self.family}: latents of {s.name} ({s.prior}) are not drawn here; choose "
                                f"{', '.join(x.name for x in self.spaces() if self.drawable(x)) or 'another space'}")
        if self._through_samples(source):
            z = self.draw(seeds, space=source.name, knobs=knobs, condition=condition)[0]
        else:
            z = self._seed_latents(source, seeds, knobs=knobs, condition=condition)
        return self._map(z, s, knobs=knobs, condition=condition)

    def _map(self, z: torch.Tensor, s: LatentSpace, *, knobs: dict[str, Any] | None, condition: Any) -> torch.Tensor:
        return self.model.to_space(z, s.name, condition=self._condition(condition, len(z)),
                                   **self.knobs(knobs)).float().cpu()

    def decode(self, z: torch.Tensor, *, space: str | None = None, knobs: dict[str, Any] | None = None,
               condition: Any = None, seed: int = 0) -> Outputs:
        """Outputs of latents ``[n, *shape]`` (``seed`` fixes stochastic decoders such as sketch-rnn's).

        The knobs a mapped space's latents already carry (``LatentSpace.mapping_knobs``: W and W+'s
        truncation) are not applied again: such latents decode with those knobs at their defaults.

        Raises:
            ExplorerError: latents of another shape than the space's.
        """
        s = self.space(space)
        z = self._checked(z, s)
        return self.model.decode(z, space=s.name, condition=self._condition(condition, len(z)),
                                 generator=torch.Generator().manual_seed(int(seed)), **self._decode_knobs(s, knobs))

    def _checked(self, z: Any, s: LatentSpace) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32)
        if tuple(z.shape[1:]) != s.shape:
            raise ExplorerError(f"{s.name} latents have shape [N, {', '.join(map(str, s.shape))}], "
                                f"got {list(z.shape)}")
        return z

    def _decode_knobs(self, s: LatentSpace, knobs: dict[str, Any] | None) -> dict[str, Any]:
        values = self.knobs(knobs)
        defaults = self.model.default_knobs()
        for name in s.mapping_knobs:
            if name in values:
                values[name] = defaults[name]
        return values

    def _condition(self, condition: Any, n: int) -> Any:
        if condition is None or self.model.condition_spec.kind == "none":
            return condition
        return self.model.condition_spec.make(condition, n)

    def steps(self, seeds: Sequence[int], *, knobs: dict[str, Any] | None = None,
              condition: Any = None) -> torch.Tensor:
        """The canvas after each step of samples, one per seed: ``uint8 [T, n, C, H, W]`` (models with ``steps``)."""
        self.model.require(STEPS)
        frames = [self.model.sample_steps(1, generator=torch.Generator().manual_seed(int(v)),
                                          condition=condition, **self.knobs(knobs))[1] for v in seeds]
        return torch.cat(frames, dim=1)

    def steps_of(self, z: torch.Tensor, *, space: str | None = None, knobs: dict[str, Any] | None = None,
                 condition: Any = None) -> torch.Tensor:
        """The canvas after each step of the drawing of given latents ``[n, *shape]`` (encoded, interpolated,
        moved or drawn ones): ``uint8 [T, n, C', H', W']``, the frames :meth:`steps` shows for samples (DRAW:
        RGB at twice the size, with the write boxes); the last frame is the decoded image (models with
        ``steps``).

        Raises:
            CapabilityError: the model does not draw in steps. ExplorerError: latents of another shape.
        """
        self.model.require(STEPS)
        s = self.space(space)
        z = self._checked(z, s)
        return self.model.decode_steps(z, space=s.name, condition=self._condition(condition, len(z)),
                                       **self._decode_knobs(s, knobs))[1]

    # ------------------------------------------------------------------ completion
    def can_complete(self) -> bool:
        """Whether the model continues a given start (sketch-rnn: a partial sketch), see :meth:`complete`."""
        return self.model.supports(COMPLETE)

    def complete(self, prefix: np.ndarray, n: int = 4, *, knobs: dict[str, Any] | None = None, seed: int = 0,
                 condition: Any = None) -> list[np.ndarray]:
        """``n`` completions of a partial sketch, each the prefix then the model's continuation.

        Args:
            prefix: stroke-3 ``float [L, 3]`` in the dataset's normalisation (what :func:`sketch_from_drawing`
                and :func:`load_sketch_file` give), fewer points than the model's ``max_seq_len``.
            n: completions, >= 1.
            knobs: ``temperature`` / ``greedy`` of the continuation.
            seed: the generator of every random choice (same seed, same completions).

        Returns:
            ``n`` stroke-3 ``float32 [L + K_i, 3]`` sketches whose first ``L`` offsets are the prefix's.

        Raises:
            CapabilityError: the model does not complete (not sketch-rnn). ExplorerError: not a stroke-3
                prefix. DataError: an empty or too long prefix.
        """
        self.model.require(COMPLETE)
        p = np.asarray(prefix, dtype=np.float32)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ExplorerError(f"a sketch to complete is stroke-3 [L, 3] (dx, dy, pen lifted), got shape "
                                f"{list(p.shape)}")
        out = self.model.complete(p, int(n), generator=torch.Generator().manual_seed(int(seed)),
                                  condition=condition, **self.knobs(knobs))
        return list(out.strokes) if isinstance(out, Sketches) else list(out)

    # ------------------------------------------------------------------ encoding
    def encode(self, data: Outputs, *, condition: Any = None) -> torch.Tensor:
        """Posterior means of inputs as latents ``[n, *shape]`` of the default space.

        Raises:
            CapabilityError: the model has no encoder (its hint says what to do instead).
        """
        self.model.require(ENCODE)
        n = len(data)
        q = self.model.encode(data, condition=self._condition(condition, n))
        return q.mean.detach().float().cpu().reshape(n, *self.space().shape)

    def output_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of the model's images (one sample drawn once)."""
        if self._output_shape is None:
            if self.output_kind != "images":
                raise ExplorerError(f"{self.family} draws sketches, not images")
            self._output_shape = tuple(self.sample([0]).shape[1:])
        return self._output_shape

    def read_input(self, path: str | Path) -> Outputs:
        """An input file as the model reads it: an image resized to the model's size, or the sketches
        of a stroke file (``.npz`` / ``.ndjson``) scaled to unit offset spread."""
        path = Path(path)
        if self.output_kind == "images":
            c, h, w = self.output_shape()
            try:
                img = load_image(path, channels=c)
            except (OSError, ValueError) as exc:
                raise ExplorerError(f"{path.name} is not a readable image ({' '.join(str(exc).split())})") from None
            if tuple(img.shape[1:]) != (h, w):
                img = torch.nn.functional.interpolate(img[None].float(), size=(h, w), mode="area")[0]
                img = img.round().clamp(0, 255).to(torch.uint8)
            return img[None]
        return Sketches(load_sketch_file(path))

    # ------------------------------------------------------------------ paths through a space
    @staticmethod
    def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int = 8, method: str = "slerp") -> torch.Tensor:
        """``steps`` latents from ``a`` to ``b`` (both included), linear or spherical."""
        if method not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
        return interpolation_path(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32),
                                  int(steps), method)

    @staticmethod
    def random_walk(start: torch.Tensor, steps: int = 8, step_size: float = 0.3, seed: int = 0) -> torch.Tensor:
        """``steps`` latents: ``start`` then Gaussian steps of ``step_size`` per coordinate (seeded), pulled
        back towards the origin so the walk stays where the N(0, I) prior has its mass."""
        if steps < 2:
            raise ConfigError(f"a walk needs at least 2 steps, got {steps}")
        g = torch.Generator().manual_seed(int(seed))
        out = [torch.as_tensor(start, dtype=torch.float32)]
        keep = math.sqrt(max(0.0, 1.0 - float(step_size) ** 2))
        for _ in range(steps - 1):
            out.append(keep * out[-1] + float(step_size) * torch.randn(out[0].shape, generator=g))
        return torch.stack(out)

    def principal_directions(self, latents: torch.Tensor | None = None, *, k: int = 4, space: str | None = None,
                             knobs: dict[str, Any] | None = None, condition: Any = None,
                             samples: int = PCA_SAMPLES) -> Directions:
        """The top ``k`` principal directions of ``latents [N, *shape]`` (e.g. encoded data: the aggregate
        posterior) or, without them, of ``samples`` latents drawn by :meth:`draw` (W: the mapping outputs of
        ``samples`` drawn z, GANSpace). For a space of layer rows (W+) the PCA is of the row space (W): of the
        mean row of each latent (its W when every row is the same, as for drawn W+ latents without
        ``truncation_cutoff``), and each direction and the mean are the same on every row.

        Returns:
            :class:`Directions` with ``vectors [k', *shape]`` (unit components times their standard
            deviation), ``k' = min(k, N - 1, dim)``.
        """
        s = self.space(space)
        source = "given latents"
        if latents is None:
            z = self._draw_many(s, samples, knobs=knobs, condition=condition)
            source = f"{samples} drawn latents"
        else:
            z = self._checked(latents, s)
        n = len(z)
        flat = z.mean(dim=1) if s.layers else z.reshape(n, -1)
        k = max(1, min(int(k), n - 1, flat.shape[1]))
        dirs = ganspace(flat, k=k)
        vecs = torch.stack([d.vector for d in dirs])
        mean = flat.mean(0)
        if s.layers:
            vecs, mean = vecs[:, None].expand(k, s.layers, -1), mean[None].expand(s.layers, -1)
        return Directions(s.name, vecs.reshape(k, *s.shape).contiguous(), mean.reshape(s.shape).contiguous(),
                          tuple(float(d.meta["variance_ratio"]) for d in dirs), source)

    def _draw_many(self, s: LatentSpace, n: int, *, knobs: dict[str, Any] | None, condition: Any) -> torch.Tensor:
        if self._through_samples(s):
            outs = self.model.sample(n, generator=torch.Generator().manual_seed(12345), condition=condition,
                                     **self.knobs(knobs))
            return self.encode(outs, condition=condition)
        if s.prior.startswith("N(0, I)"):
            return torch.randn(n, *s.shape, generator=torch.Generator().manual_seed(12345))
        source = self._source(s)
        if source is None or not self.drawable(source):
            return self.draw([0], space=s.name)[0]  # raises the explanation
        cond = None if condition is None else self._condition(condition, n)
        return self._map(self._draw_many(source, n, knobs=knobs, condition=cond), s, knobs=knobs, condition=cond)

    # ------------------------------------------------------------------ training data
    def _need_reference(self) -> Reference:
        if self.reference is None or len(self.reference) == 0:
            raise ExplorerError("no training data loaded: start the studio with --reference (and --data)")
        return self.reference

    def reference_latents(self, batch: int = 256) -> torch.Tensor:
        """Posterior means ``float32 [N, *shape]`` of the training examples (default space), computed once,
        ``batch`` at a time; a conditional model encodes each with its own condition
        (:meth:`Reference.conditions`).

        Raises:
            ExplorerError: no reference, or a conditional model and data without their conditions.
            CapabilityError: the model has no encoder.
        """
        ref = self._need_reference()
        if self._reference_z is None:
            self.model.require(ENCODE)
            kind = self.model.condition_spec.kind
            data = ref.data
            parts = []
            for i in range(0, len(data), batch):
                chunk = Sketches(data.strokes[i : i + batch]) if isinstance(data, Sketches) else data[i : i + batch]
                parts.append(self.encode(chunk, condition=ref.conditions(kind, i, i + len(chunk))))
            self._reference_z = torch.cat(parts)
        return self._reference_z

    def nearest(self, output: Outputs, k: int = 6) -> tuple[list[int], list[float], Outputs]:
        """The ``k`` training examples nearest to one output: images by pixel distance (RMS over 0..1),
        sketches by the distance of their posterior means (models with an encoder).

        Returns:
            ``(indices, distances, the examples)``.
        """
        ref = self._need_reference()
        k = max(1, min(int(k), len(ref)))
        if isinstance(ref.data, Sketches):
            if not isinstance(output, Sketches):
                raise ExplorerError("the training data are sketches, the output is not")
            d = torch.cdist(self.encode(Sketches(output.strokes[:1])).flatten(1),
                            self.reference_latents().flatten(1))[0]
        else:
            if not isinstance(output, torch.Tensor) or tuple(output.shape[1:]) != tuple(ref.data.shape[1:]):
                raise ExplorerError(f"the training images ({list(ref.data.shape[1:])}) do not match the model's "
                                    f"outputs ({list(getattr(output, 'shape', [])[1:])})")
            x = output[:1].flatten(1).float() / 255.0
            d = torch.cdist(x, ref.data.flatten(1).float() / 255.0)[0] / math.sqrt(x.shape[1])
        dist, idx = torch.topk(d, k, largest=False)
        indices = [int(i) for i in idx]
        found = Sketches([ref.data.strokes[i] for i in indices]) if isinstance(ref.data, Sketches) \
            else ref.data[indices]
        return indices, [float(v) for v in dist], found

    def label_directions(self, max_labels: int = 6) -> Directions:
        """One direction per label of the training data (the most frequent ``max_labels``): the mean
        posterior latent of the examples with that label minus the mean of all (default space; a conditional
        model's posteriors are of each example with its own condition, :meth:`reference_latents`)."""
        ref = self._need_reference()
        if not ref.labels:
            raise ExplorerError(f"the training data ({ref.name}) have no labels")
        z = self.reference_latents()
        counts: dict[str, int] = {}
        for lab in ref.labels:
            counts[lab] = counts.get(lab, 0) + 1
        top = sorted(counts, key=lambda lab: (-counts[lab], lab))[:max_labels]
        mean = z.mean(0)
        labels = list(ref.labels)
        vecs = [z[[i for i, lab in enumerate(labels) if lab == t]].mean(0) - mean for t in top]
        names = tuple(re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(t))[:40] or "label" for t in top)
        return Directions(self.space().name, torch.stack(vecs), mean, tuple(0.0 for _ in top),
                          f"labels of {ref.name}", labels=names)

    def move(self, latent: torch.Tensor, directions: Directions, amounts: Sequence[float], *,
             layers: Sequence[int] | None = None) -> torch.Tensor:
        """``latent + sum_i amounts[i] * direction_i`` (an amount of 1 is one standard deviation).

        Args:
            latent: one latent ``[*shape]`` or a batch ``[n, *shape]`` of ``directions.space``.
            layers: for a space of layer rows (W+ ``[num_ws, w_dim]``): the rows (style indices
                ``0..num_ws-1``) the move applies to, the others unchanged; None: every row.

        Raises:
            ExplorerError: ``layers`` for a space without layers, or an index out of range.
        """
        out = torch.as_tensor(latent, dtype=torch.float32).clone()
        step = torch.zeros_like(directions.vectors[0]) if len(directions.vectors) else None
        for v, a in zip(directions.vectors, amounts, strict=False):
            step = step + float(a or 0.0) * v
        if step is None:
            return out
        if layers is not None:
            count = self.space(directions.space).layers
            if count is None:
                raise ExplorerError(f"{directions.space} latents have no layers to choose; drop the layer mask "
                                    "(layers apply to w+)")
            rows = [int(i) for i in layers]
            bad = [i for i in rows if not 0 <= i < count]
            if bad:
                raise ExplorerError(f"layer {bad[0]} is out of range: {directions.space} has layers 0..{count - 1}")
            mask = torch.zeros(count, *([1] * (step.ndim - 1)))
            mask[rows] = 1.0
            step = step * mask
        return out + step

    def read_directions(self, *paths: str | Path, space: str | None = None) -> Directions:
        """Direction library files (as :func:`save_directions` writes them) as :class:`Directions` of one
        space of this model, named as in the files (a later file's direction replaces an earlier one of the
        same name).

        Args:
            paths: library ``.npz`` files (or ``.npy`` directions, see ``DirectionLibrary.load``).
            space: the space of the latents they will move (a latent file's); None: the space the files
                record (``info.space``), else the model's default space.

        Returns:
            :class:`Directions` with ``vectors [k, *shape]``, a zero ``mean`` and ``labels`` = the names.

        Raises:
            ExplorerError: no file, a file of another family or of another space than ``space``, files of
                two spaces, a vector that is not of the space's shape, or a file without directions (each
                message names the file and what to give instead).
            LatentStudioError: a missing or unreadable file.
        """
        if not paths:
            raise ExplorerError("no directions file given: give a directions .npz saved by the explorer "
                                "(CLI: --directions FILE)")
        names: dict[str, torch.Tensor] = {}
        ratios: dict[str, float] = {}
        shown: str | None = space
        for p in paths:
            p = Path(p)
            lib = DirectionLibrary.load(p)
            family = lib.info.get("model_type")
            if family and family != self.family:
                raise ExplorerError(f"{p.name} holds directions of a {family} model, not of this {self.family} "
                                    "model: give the directions file saved with this model")
            recorded = lib.info.get("space")
            if recorded and shown is not None and recorded != shown:
                raise ExplorerError(f"{p.name} holds directions of space {recorded!r}, the latents are of space "
                                    f"{shown!r}: give latents of {recorded} (or directions saved in {shown})")
            shown = shown or recorded
            try:
                s = self.space(shown)
            except ExplorerError as exc:
                raise ExplorerError(f"{p.name}: {exc}") from None
            shown = s.name
            if not len(lib):
                raise ExplorerError(f"{p.name} holds no direction")
            for d in lib:
                v = d.full(s.layers) if s.layers else d.vector
                if tuple(v.shape) != s.shape:
                    raise ExplorerError(f"{p.name}: direction {d.name!r} has shape {list(d.vector.shape)}, "
                                        f"{s.name} latents of this model have {list(s.shape)}; was it saved "
                                        "from another model?")
                names[d.name] = v.float()
                ratios[d.name] = float(d.meta.get("variance_ratio", 0.0) or 0.0)
        return Directions(s.name, torch.stack(list(names.values())), torch.zeros(s.shape),
                          tuple(ratios.values()), ", ".join(Path(p).name for p in paths), labels=tuple(names))

    def apply(self, latent: torch.Tensor, directions: Directions, amounts: dict[str, float], *,
              layers: Sequence[int] | None = None) -> torch.Tensor:
        """``latent`` moved along directions chosen by name: :meth:`move` with ``amounts`` ``{name: amount}``
        (directions not named move by 0; an amount of 0 gives ``latent`` itself).

        Args:
            latent: ``[*shape]`` or ``[n, *shape]`` of ``directions.space``.
            layers: W+ rows the move applies to (see :meth:`move`); None: every row.

        Raises:
            ExplorerError: a name that is not one of ``directions.names`` (the known ones listed), or bad
                ``layers`` (see :meth:`move`).
        """
        known = directions.names
        unknown = [n for n in amounts if n not in known]
        if unknown:
            raise ExplorerError(f"no direction {unknown[0]!r} in {directions.source}; its directions: "
                                f"{', '.join(known)}")
        return self.move(latent, directions, [float(amounts.get(n, 0.0)) for n in known], layers=layers)

    def decode_each(self, z: torch.Tensor, *, space: str | None = None, knobs: dict[str, Any] | None = None,
                    condition: Any = None, seed: int = 0) -> Outputs:
        """:meth:`decode` of each latent of ``z [n, *shape]`` on its own with the same ``seed``, so that a
        stochastic decoder (sketch-rnn) draws every latent with the same random numbers (the frames of a
        sweep differ by the move only; a latent gives the output :meth:`decode` gives it alone).

        Returns:
            images ``uint8 [n, C, H, W]`` or :class:`Sketches` of ``n`` sketches.

        Raises:
            ExplorerError: latents of another shape than the space's.
        """
        s = self.space(space)
        z = self._checked(z, s)
        cond = None if condition is None else self._condition(condition, 1)
        outs = [self.decode(z[i : i + 1], space=s.name, knobs=knobs, condition=cond, seed=seed)
                for i in range(len(z))]
        if self.output_kind == "sketches":
            return Sketches([x for o in outs for x in (o.strokes if isinstance(o, Sketches) else o)])
        return torch.cat(outs)


# ---------------------------------------------------------------------------------------------- files


def load_sketch_file(path: str | Path, limit: int = 16) -> list[np.ndarray]:
    """Up to ``limit`` stroke-3 sketches of a ``.npz`` (sketch-rnn; its ``test`` split first) or a
    Quick, Draw! ``.ndjson`` file, scaled so that their offsets have unit spread.

    Raises:
        ExplorerError / DataError: not a stroke file, or no sketch in it.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        splits = read_npz(path)
        sketches = next((splits[k] for k in ("test", "valid", "train") if splits.get(k)), [])
    elif name.endswith((".ndjson", ".ndjson.gz")):
        sketches, _ = read_ndjson(path, limit=limit)
    elif name.endswith(".json"):
        try:
            drawing = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ExplorerError(f"{path.name}: not a JSON drawing ({exc})") from None
        sketches = [drawing_to_stroke3(drawing.get("drawing", drawing) if isinstance(drawing, dict) else drawing)]
    else:
        raise ExplorerError(f"{path.name}: a sketch is read from .npz, .ndjson or a .json drawing")
    sketches = [np.asarray(s, dtype=np.float32) for s in sketches[:limit]]
    if not sketches:
        raise ExplorerError(f"{path.name} holds no sketch")
    return unit_spread(sketches)


def unit_spread(sketches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Stroke-3 sketches with their offsets divided by their spread (the normalisation of the training
    data, computed on these sketches)."""
    factor = normalizing_scale_factor(sketches) or 1.0
    out = []
    for s in sketches:
        s = np.asarray(s, dtype=np.float32).copy()
        s[:, :2] /= factor
        out.append(s)
    return out


def sketch_from_drawing(drawing: Any, epsilon: float = 2.0) -> np.ndarray:
    """A drawing made with the mouse (Quick, Draw! strokes ``[[xs, ys], ...]`` on a 0..255 canvas, or its
    JSON text) as one stroke-3 sketch of unit spread (simplified with RDP, ``epsilon`` canvas pixels).

    Raises:
        ExplorerError: nothing drawn or not a drawing.
    """
    if isinstance(drawing, str):
        try:
            drawing = json.loads(drawing) if drawing.strip() else []
        except ValueError:
            raise ExplorerError("the drawing is not JSON strokes [[xs, ys], ...]") from None
    strokes = [s for s in (drawing or []) if isinstance(s, list | tuple) and len(s) >= 2 and len(s[0]) >= 2]
    if not strokes:
        raise ExplorerError("nothing drawn yet: draw on the canvas (each stroke needs two points or more)")
    return unit_spread([drawing_to_stroke3(strokes, epsilon=epsilon, where="the drawing")])[0]


def latent_grid(latent: torch.Tensor, *, cell: int = 16, limit: float = 3.0) -> torch.Tensor:
    """One latent as a picture of its values: ``uint8 [3, rows * cell, cols * cell]``, a row per step of a
    ``[T, D]`` latent (DRAW) or per style row of ``[L, D]`` (W+), one row for ``[D]``; blue negative, white
    0, red positive, saturated at +-``limit``."""
    from matplotlib import colormaps  # lazy: matplotlib is slow to import

    z = torch.as_tensor(latent, dtype=torch.float32).detach().cpu()
    z = z.reshape(1, -1) if z.ndim == 1 else z.reshape(z.shape[0], -1)
    values = ((z.clamp(-limit, limit) / limit + 1.0) / 2.0).numpy()
    rgb = (colormaps["RdBu_r"](values)[..., :3] * 255.0).round().astype(np.uint8)
    img = torch.from_numpy(rgb).permute(2, 0, 1)
    return img.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2).contiguous()


def _rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _upscaled(images: torch.Tensor, side: int) -> torch.Tensor:
    k = max(1, side // int(images.shape[-1]))
    return images.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1) if k > 1 else images


def to_frames(outputs: Outputs, *, side: int = 128) -> list[torch.Tensor]:
    """One ``uint8 [3, H, W]`` picture per output (images upscaled to at least ``side``; sketches drawn)."""
    if isinstance(outputs, Sketches):
        return [grid_image([s], nrow=1) for s in outputs.strokes]
    return list(_upscaled(_rgb(outputs), side))


def save_outputs(outputs: Outputs, path: str | Path, *, nrow: int | None = None, upscale_to: int = 0) -> Path:
    """Images as one PNG grid (``upscale_to`` > 0: each image at least that many pixels) or sketches as
    an SVG / PNG grid, by the file's extension."""
    path = Path(path)
    if isinstance(outputs, Sketches):
        return save_sketches(path, outputs.strokes, nrow=nrow, overwrite=True)
    imgs = _rgb(outputs)
    if upscale_to:
        imgs = _upscaled(imgs, upscale_to)
    grid = imgs[0] if len(imgs) == 1 else make_grid(imgs, nrow=nrow)
    return save_image(grid, path, overwrite=True)


def save_animation(outputs: Outputs | Sequence[torch.Tensor], path: str | Path, *, fps: float = 6.0,
                   side: int = 128, pingpong: bool = False) -> Path:
    """Outputs (or ready ``uint8 [3, H, W]`` frames) as an animated GIF or an MP4, by the extension."""
    path = Path(path)
    frames = to_frames(outputs, side=side) if isinstance(outputs, torch.Tensor | Sketches) else list(outputs)
    if pingpong and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return media.write_gif(torch.stack(frames), path, fps=fps, overwrite=True)
    if suffix == ".mp4":
        return media.write_mp4(torch.stack(frames), path, fps=fps, overwrite=True)
    raise ExplorerError(f"{path.name}: animations are written as .gif or .mp4")


#: Extensions written as animations by :func:`save_edited` (every other one is a picture).
ANIMATIONS = (".gif", ".mp4")


def edit_target(path: str | Path, output_kind: str, *, overwrite: bool = False) -> Path:
    """Check where :func:`save_edited` will write, before any work: an animation (``.gif`` / ``.mp4``) or a
    picture of the model's ``output_kind`` (images: ``.png`` / ``.jpg`` / ``.webp``; sketches: ``.svg`` /
    ``.png``).

    Raises:
        ConfigError: another extension (the known ones named). RunExistsError: ``path`` exists and
            ``overwrite`` is False.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATIONS:
        if output_kind == "sketches":
            if suffix not in (".svg", ".png"):
                raise ConfigError(f"{path}: sketches are written as .svg or .png, animations as .gif or .mp4; "
                                  f"got {suffix or '(no extension)'!r}")
        else:
            image_format(path)
    if path.exists() and not overwrite:
        raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    return path


def save_edited(outputs: Outputs, path: str | Path, *, upscale: int = 1, fps: float = 6.0,
                overwrite: bool = False) -> Path:
    """Outputs (one, or the frames of a sweep or interpolation) as one picture, a row of them (PNG / JPEG /
    WebP images, SVG / PNG sketches), or an animation (``.gif`` / ``.mp4``, one frame per output), by the
    extension; images are scaled by the integer ``upscale`` (nearest neighbour).

    Raises:
        ConfigError / RunExistsError: see :func:`edit_target`.
    """
    kind = "sketches" if isinstance(outputs, Sketches) else "images"
    path = edit_target(path, kind, overwrite=overwrite)
    n = len(outputs)
    side = 0 if kind == "sketches" else int(outputs.shape[-1]) * max(1, int(upscale))
    if path.suffix.lower() in ANIMATIONS:
        return save_animation(outputs, path, fps=fps, side=side)
    return save_outputs(outputs, path, nrow=n, upscale_to=side if upscale > 1 else 0)


def save_latents(path: str | Path, latents: torch.Tensor, /, *, model: GenerativeModel, space: str,
                 **meta: Any) -> Path:
    """Latents ``[n, *shape]`` as an ``.npz``: ``latent``, ``space``, ``model_path``, ``model_type`` and
    ``meta`` (JSON), the layout :func:`latentstudio.studio.projection.load_latent` reads."""
    path = Path(path)
    info = {"model_path": None if model.path is None else str(model.path), "model_type": model.model_type,
            "space": space, **meta}
    arrays = {"latent": torch.as_tensor(latents, dtype=torch.float32).numpy(), "space": np.array(space),
              "model_path": np.array(info["model_path"] or ""), "model_type": np.array(model.model_type),
              "meta": np.array(json.dumps(info, sort_keys=True, default=float))}
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def save_directions(path: str | Path, directions: Directions, *, model: GenerativeModel) -> Path:
    """The principal directions as a direction library ``.npz`` (``latentstudio edit --directions``)."""
    source = "labels" if directions.labels else "pca"
    lib = DirectionLibrary(
        [Direction(name, v, source=source, range=(-3.0, 3.0),
                   note=(f"label {name} of {directions.source}" if directions.labels else
                         f"principal component {i} of {directions.space} ({r:.1%} of the variance)"),
                   meta={"variance_ratio": r})
         for i, (name, v, r) in enumerate(zip(directions.names, directions.vectors, directions.variance_ratio,
                                               strict=True))],
        info={"space": directions.space, "model_type": model.model_type, "source": directions.source,
              "model_path": None if model.path is None else str(model.path)})
    return lib.save(path, overwrite=True)
