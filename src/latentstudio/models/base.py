"""The model contract every family implements: :class:`GenerativeModel`.

Everything above ``models/`` (the API, the CLI, evaluation, the studio, the tests) is written once
against this class; nothing there asks which family a model belongs to. A family is one
registered subclass (``@register_model("name")`` in :mod:`latentstudio.models.registry`) that

- takes only its frozen config (``model.config``, saved as ``config.json``);
- trains through one loss signature: ``loss(batch, *, step, generator) -> LossOutput(loss, terms)``;
- samples through one signature: ``sample(n, *, generator, condition=None, **knobs)``, whose knobs
  (``temperature``, ``truncation_psi``, ``sampler`` ...) are declared per family as :class:`Knob`
  and validated by name;
- declares its optional capabilities explicitly (:data:`ENCODE`, :data:`DECODE`,
  :data:`RECONSTRUCT`, :data:`NLL`, :data:`STEPS`, :data:`COMPLETE`) instead of being probed with ``hasattr``;
- describes its latent spaces (:meth:`GenerativeModel.latent_spaces`) and, for spaces reached through a
  mapping (StyleGAN2's W and W+), maps latents into them (:meth:`GenerativeModel.to_space`);
- returns typed outputs: images ``uint8 [N, C, H, W]`` or :class:`~latentstudio.types.Sketches`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from latentstudio.errors import CapabilityError, CheckpointError, ConfigError
from latentstudio.io.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    read_meta,
    read_model_config,
    read_weights,
    save_model_dir,
)
from latentstudio.types import Batch, LossOutput, Sketches

#: ``encode(x) -> DiagonalGaussian`` posterior of data.
ENCODE = "encode"
#: ``decode(z) -> outputs`` from a latent of one of the model's spaces.
DECODE = "decode"
#: ``reconstruct(x) -> outputs`` (decode of the posterior mean).
RECONSTRUCT = "reconstruct"
#: ``nll(x) -> [N]`` nats, an importance-sampled bound of -log p(x).
NLL = "nll"
CAPABILITIES = (ENCODE, DECODE, RECONSTRUCT, NLL)
#: ``sample_steps(n) -> (images, frames [T, N, C, H, W])``: samples with the frames of their drawing, and
#: ``decode_steps(latent) -> (images, frames)`` the same for given latents (an optional output of families
#: that draw in steps; not one of the core :data:`CAPABILITIES`).
STEPS = "steps"
#: ``complete(prefix, n) -> Sketches``: continuations of a given start of a sequence (sketch-rnn's
#: completion of a partial sketch; not one of the core :data:`CAPABILITIES`).
COMPLETE = "complete"

#: What :meth:`GenerativeModel.sample` returns: image tensors or sketches.
OUTPUT_KINDS = ("images", "sketches")


@dataclass(frozen=True)
class Knob:
    """A named sampling option of a family (``temperature``, ``truncation_psi``, ``sampler`` ...).

    Attributes:
        name: the option's name, spelled the same in the API and on every CLI command.
        default: value used when the caller does not give one.
        help: one line for ``--help`` and the web studio.
        kind: ``float``, ``int``, ``str`` or ``bool``; values are converted to it.
        choices: allowed values (strings), or None.
        minimum: smallest allowed value (numbers), or None.
        minimum_inclusive: whether ``minimum`` itself is allowed.
    """

    name: str
    default: Any
    help: str
    kind: type = float
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    minimum_inclusive: bool = True

    def coerce(self, value: Any, family: str, choices: Sequence[str] | None = None) -> Any:
        """``value`` converted to :attr:`kind` and checked.

        Raises:
            ConfigError: naming the family, the option and what is allowed.
        """
        try:
            if self.kind is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                v: Any = value.lower() in ("true", "1")
            else:
                v = self.kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{family}: {self.name} must be a {self.kind.__name__}, got {value!r}") from None
        if self.kind is float and not math.isfinite(v):
            raise ConfigError(f"{family}: {self.name} must be finite, got {value!r}")
        allowed = tuple(choices) if choices is not None else self.choices
        if allowed is not None and v not in allowed:
            raise ConfigError(f"{family}: {self.name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.minimum is not None and (v < self.minimum or (not self.minimum_inclusive and v == self.minimum)):
            op = ">=" if self.minimum_inclusive else ">"
            raise ConfigError(f"{family}: {self.name} must be {op} {self.minimum:g}, got {value!r}")
        return v


@dataclass(frozen=True)
class LatentSpace:
    """One latent space of a model.

    Attributes:
        name: ``z`` (VAE, DRAW, sketch-rnn, StyleGAN2 input), ``u`` (two-stage second stage),
            ``w`` / ``w+`` (StyleGAN2 styles).
        shape: shape of one latent, e.g. ``(latent_dim,)``, ``(T, latent_dim)`` for DRAW,
            ``(num_ws, w_dim)`` for W+.
        prior: the distribution latents of this space are drawn from, in words
            (``"N(0, I)"``, ``"mapping(z), z ~ N(0, I)"``).
        decodable: ``model.decode(latent, space=name)`` accepts it.
        description: one line for reports and the studio.
        mapped_from: the space whose latents :meth:`GenerativeModel.to_space` maps into this one (W and
            W+: ``z``), or None for a space drawn from its own prior.
        mapping_knobs: the knobs :meth:`GenerativeModel.to_space` applies when mapping into this space
            (W, W+: ``truncation_psi``, ``truncation_cutoff``); latents mapped with them already carry
            their effect.
        row_space: the space of one row when the first axis of a latent indexes the generator's layers
            (W+: ``[num_ws, w_dim]``, each row a latent of ``w``); None otherwise.
    """

    name: str
    shape: tuple[int, ...]
    prior: str
    decodable: bool = True
    description: str = ""
    mapped_from: str | None = None
    mapping_knobs: tuple[str, ...] = ()
    row_space: str | None = None

    @property
    def layers(self) -> int | None:
        """Number of layer rows of a latent (``shape[0]`` when :attr:`row_space` is set), else None."""
        return self.shape[0] if self.row_space is not None else None


CONDITION_KINDS = ("none", "class", "attributes")


@dataclass(frozen=True)
class ConditionSpec:
    """What a conditional model is conditioned on.

    Attributes:
        kind: ``none``, ``class`` (one-hot of ``dim`` classes) or ``attributes`` (``dim`` values in +-1).
        dim: size of the condition vector (0 for ``none``).
    """

    kind: str = "none"
    dim: int = 0

    def make(self, condition: Any, n: int) -> torch.Tensor | None:
        """Condition vectors ``float32 [n, dim]`` from a user's description.

        Args:
            condition: class models: an int class, a sequence of ``n`` ints, or None (classes
                ``0..dim-1`` in turn); attribute models: a ``[n, dim]`` / ``[dim]`` tensor of +-1, a
                dict ``{attribute index: +-1}`` (other attributes 0, i.e. neutral), or None (all 0).
                A ready ``float [n, dim]`` tensor is accepted for both.
            n: number of samples.

        Raises:
            ConfigError: a condition for an unconditional model, a class out of range, or a wrong size.
        """
        if self.kind == "none":
            if condition is not None:
                raise ConfigError("this model is unconditional; drop the condition (CLI: --condition)")
            return None
        if isinstance(condition, torch.Tensor) and condition.is_floating_point() and condition.ndim == 2:
            if tuple(condition.shape) != (n, self.dim):
                raise ConfigError(f"condition: expected [{n}, {self.dim}], got {list(condition.shape)}")
            return condition.float()
        if self.kind == "class":
            if condition is None:
                labels = torch.arange(n) % self.dim
            elif isinstance(condition, int | torch.Tensor) and torch.as_tensor(condition).ndim == 0:
                labels = torch.full((n,), int(condition))
            else:
                labels = torch.as_tensor(list(condition))
                if labels.numel() != n:
                    raise ConfigError(f"got {labels.numel()} class conditions for {n} samples")
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.dim):
                raise ConfigError(f"class condition must be in 0..{self.dim - 1}, got {labels.tolist()[:8]}")
            return torch.nn.functional.one_hot(labels.long(), self.dim).float()
        if condition is None:
            return torch.zeros(n, self.dim)
        if isinstance(condition, dict):
            c = torch.zeros(self.dim)
            for k, v in condition.items():
                if not 0 <= int(k) < self.dim:
                    raise ConfigError(f"attribute index must be in 0..{self.dim - 1}, got {k}")
                c[int(k)] = float(v)
            return c.expand(n, -1).clone()
        c = torch.as_tensor(condition, dtype=torch.float32)
        c = c.expand(n, -1) if c.ndim == 1 else c
        if tuple(c.shape) != (n, self.dim):
            raise ConfigError(f"condition: expected [{n}, {self.dim}] attribute values, got {list(c.shape)}")
        return c.clone()


def concat_outputs(parts: Sequence[torch.Tensor | Sketches]) -> torch.Tensor | Sketches:
    """Join typed outputs of several calls: image tensors along N, sketches in order."""
    if isinstance(parts[0], Sketches):
        z = [p.z for p in parts]  # type: ignore[union-attr]
        return Sketches(
            [s for p in parts for s in p.strokes],  # type: ignore[union-attr]
            [k for p in parts for k in p.prefix_lengths],  # type: ignore[union-attr]
            None if any(v is None for v in z) else torch.cat(z),  # type: ignore[arg-type]
        )
    return torch.cat(list(parts))  # type: ignore[arg-type]


class GenerativeModel(nn.Module):
    """Base class of every model family (see the module docstring).

    Subclasses set the class attributes, take only their config in ``__init__`` and implement
    :meth:`loss`, :meth:`_sample`, :meth:`latent_spaces` and the methods of the capabilities they
    declare. Calling a method of an undeclared capability raises :class:`CapabilityError` with
    the family's hint (``capability_hints``).

    Class attributes:
        model_type: registry name (set by ``register_model``).
        config_class: the frozen config dataclass.
        output_kind: ``"images"`` (``uint8 [N, C, H, W]``) or ``"sketches"`` (:class:`Sketches`).
        capabilities: the optional capabilities implemented.
        knobs: the sampling options of :meth:`sample`.
        capability_hints: ``{capability: what to do instead}`` for the missing ones.

    Instance attributes set when loaded from a folder (``latentstudio.load``): ``path`` (the model
    folder), ``meta`` (its ``meta.json``) and ``samplers`` (fitted latent samplers by name).
    """

    model_type: ClassVar[str] = ""
    config_class: ClassVar[type] = type(None)
    output_kind: ClassVar[str] = "images"
    capabilities: ClassVar[frozenset[str]] = frozenset()
    knobs: ClassVar[tuple[Knob, ...]] = ()
    capability_hints: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.samplers: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.path: Path | None = None

    # ------------------------------------------------------------------ description
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (or buffers)."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def condition_spec(self) -> ConditionSpec:
        """What the model is conditioned on (``ConditionSpec()`` when unconditional)."""
        return ConditionSpec()

    def supports(self, capability: str) -> bool:
        """Whether the family implements ``capability`` (one of :data:`CAPABILITIES`)."""
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        """Raise :class:`CapabilityError` unless the family implements ``capability``."""
        if capability not in self.capabilities:
            hint = self.capability_hints.get(capability)
            raise CapabilityError(f"{self.model_type} models cannot {capability}" + (f"; {hint}" if hint else ""))

    @abstractmethod
    def latent_spaces(self) -> tuple[LatentSpace, ...]:
        """The model's latent spaces, the default one (the space ``decode`` reads by default) first."""

    def latent_space(self, name: str | None = None) -> LatentSpace:
        """The space called ``name`` (None: the default one).

        Raises:
            ConfigError: unknown name (the model's spaces are listed).
        """
        spaces = self.latent_spaces()
        if name is None:
            return spaces[0]
        for s in spaces:
            if s.name == name:
                return s
        raise ConfigError(f"{self.model_type} has no latent space {name!r}; its spaces: "
                          f"{', '.join(s.name for s in spaces)}")

    # ------------------------------------------------------------------ training
    @abstractmethod
    def loss(self, batch: Batch, *, step: int = 0, generator: torch.Generator | None = None) -> LossOutput:
        """Training objective of one batch (a scalar to minimise, and named terms for logging).

        Args:
            batch: see :class:`~latentstudio.types.Batch` (the family documents what ``x`` holds).
            step: optimisation step (schedules such as KL annealing or lazy regularisation).
            generator: the source of every random draw of the step (repeatable steps).
        """

    @classmethod
    def example_config(cls, **overrides: Any) -> Any:
        """A seconds-sized config of the family (smoke runs and the contract tests every family runs),
        with ``overrides`` applied."""
        raise NotImplementedError(f"{cls.__name__} does not define example_config")

    def example_batch(self, n: int = 4, generator: torch.Generator | None = None) -> Batch:
        """A random batch of the right shapes and dtypes for this config (smoke tests, dry runs)."""
        raise NotImplementedError(f"{type(self).__name__} does not define example_batch")

    def prepare_for_training(self) -> None:
        """Create what :meth:`loss` needs besides the model when it is missing (a GAN's discriminator);
        nothing for likelihood models."""

    # ------------------------------------------------------------------ sampling
    def sampler_choices(self) -> tuple[str, ...] | None:
        """Allowed values of a ``sampler`` knob (families with fitted samplers override)."""
        return None

    def default_knobs(self) -> dict[str, Any]:
        """The knobs' default values."""
        return {k.name: k.default for k in self.knobs}

    def resolve_knobs(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """Every knob's value: the given ones converted and checked, the others their defaults.

        ``None`` values mean "the default".

        Raises:
            ConfigError: an unknown knob (the family's knobs are listed) or an invalid value.
        """
        known = {k.name: k for k in self.knobs}
        unknown = sorted(k for k, v in knobs.items() if k not in known and v is not None)
        if unknown:
            names = ", ".join(known) or "none"
            raise ConfigError(f"{self.model_type} has no sampling option {unknown[0]!r}; its options: {names}")
        out = self.default_knobs()
        for name, value in knobs.items():
            if value is not None:
                choices = self.sampler_choices() if name == "sampler" else None
                out[name] = known[name].coerce(value, self.model_type, choices)
        return out

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        condition: Any = None,
        **knobs: Any,
    ) -> torch.Tensor | Sketches:
        """Draw ``n`` samples from the model.

        Args:
            n: number of samples, >= 1.
            generator: CPU ``torch.Generator`` of every random draw (same state, same samples).
            condition: see :meth:`ConditionSpec.make` (conditional models only).
            **knobs: the family's sampling options (:attr:`knobs`), e.g. ``temperature=0.5``.

        Returns:
            ``uint8 [n, C, H, W]`` images or :class:`Sketches` (per :attr:`output_kind`).

        Raises:
            ConfigError: ``n < 1``, an unknown knob or a bad value, or a bad condition.
        """
        n = _check_n(n)
        values = self.resolve_knobs(knobs)
        cond = self.condition_spec.make(condition, n)
        with torch.no_grad():
            return self._sample(n, generator=generator, condition=cond, **values)

    def sample_seeds(self, seeds: Sequence[int], *, condition: Any = None, **knobs: Any) -> torch.Tensor | Sketches:
        """One sample per seed (sample ``i`` drawn with a generator seeded ``seeds[i]``), so a seed
        always gives the same sample whatever else is drawn with it.

        Raises:
            ConfigError: no seeds, or as :meth:`sample`.
        """
        if len(seeds) == 0:
            raise ConfigError("no seeds given; pass e.g. seeds=[0, 1, 2] (CLI: --seeds 0-7)")
        values = self.resolve_knobs(knobs)
        cond = self.condition_spec.make(condition, len(seeds))
        with torch.no_grad():
            parts = [self._sample(1, generator=self.seed_generator(int(s)),
                                  condition=None if cond is None else cond[i : i + 1], **values)
                     for i, s in enumerate(seeds)]
        return concat_outputs(parts)

    def seed_generator(self, seed: int) -> torch.Generator:
        """The generator :meth:`sample_seeds` uses for ``seed``."""
        return torch.Generator().manual_seed(int(seed))

    @abstractmethod
    def _sample(self, n: int, *, generator: torch.Generator | None, condition: torch.Tensor | None,
                **knobs: Any) -> torch.Tensor | Sketches:
        """Family sampling with validated knobs and a condition tensor ``[n, dim]`` (or None)."""

    # ------------------------------------------------------------------ optional capabilities
    def encode(self, x: Any, *, condition: Any = None):
        """Posterior ``q(z | x)`` of data ``x`` (images ``uint8 [N, C, H, W]`` or :class:`Sketches`),
        a :class:`~latentstudio.models.distributions.DiagonalGaussian` over the default space.

        Raises:
            CapabilityError: the family has no encoder (the hint says what to use instead).
        """
        self.require(ENCODE)
        raise NotImplementedError

    def decode(self, z: torch.Tensor, *, space: str | None = None, condition: Any = None,
               generator: torch.Generator | None = None, **knobs: Any) -> torch.Tensor | Sketches:
        """Typed outputs from latents ``[N, *shape]`` of ``space`` (default: the first space).

        Raises:
            CapabilityError: the family cannot decode given latents.
        """
        self.require(DECODE)
        raise NotImplementedError

    def reconstruct(self, x: Any, *, condition: Any = None, generator: torch.Generator | None = None,
                    **knobs: Any) -> torch.Tensor | Sketches:
        """Decode of the posterior mean of ``x`` (typed in, typed out; ``generator`` and ``knobs`` for
        families that decode stochastically).

        Raises:
            CapabilityError: the family has no encoder.
        """
        self.require(RECONSTRUCT)
        raise NotImplementedError

    def nll(self, x: Any, *, condition: Any = None, num_samples: int = 100,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-sampled ``-log p(x)`` in nats per example, ``float64 [N]``.

        Raises:
            CapabilityError: the family defines no likelihood.
        """
        self.require(NLL)
        raise NotImplementedError

    def sample_steps(self, n: int, *, generator: torch.Generator | None = None, condition: Any = None,
                     **knobs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` images with the frames of their drawing (families that draw in steps, e.g. DRAW).

        Args:
            n, generator, condition, knobs: as :meth:`sample`.

        Returns:
            ``(images uint8 [n, C, H, W], frames uint8 [T, n, C', H', W'])``: the canvas after each step.

        Raises:
            CapabilityError: the family does not draw in steps.
        """
        self.require(STEPS)
        raise NotImplementedError

    def decode_steps(self, latent: torch.Tensor, *, space: str | None = None, condition: Any = None,
                     **knobs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode given latents with the frames of their drawing (families that draw in steps), the frames
        :meth:`sample_steps` shows for the model's own samples.

        Args:
            latent: ``float [N, *shape]`` latents of ``space`` (default: the first space); encoded,
                interpolated or moved ones as well as drawn ones.
            condition, knobs: as :meth:`decode`.

        Returns:
            ``(images uint8 [N, C, H, W], frames uint8 [T, N, C', H', W'])``: the decoded images (those of
            :meth:`decode`) and the canvas after each step.

        Raises:
            CapabilityError: the family does not draw in steps.
        """
        self.require(STEPS)
        raise NotImplementedError

    def to_space(self, z: torch.Tensor, space: str, *, condition: Any = None, **knobs: Any) -> torch.Tensor:
        """Latents of ``space`` mapped from latents of the space it is reached from (StyleGAN2: ``z`` -> ``w``
        or ``w+`` through the mapping network, with truncation).

        Args:
            z: ``float [N, *shape]`` latents of ``latent_space(space).mapped_from``.
            space: the target space, one whose :attr:`LatentSpace.mapped_from` is set.
            condition: as :meth:`sample` (class-conditional mappings).
            **knobs: the family's knobs; those of :attr:`LatentSpace.mapping_knobs` are applied, the others
                are checked and ignored.

        Returns:
            ``float32 [N, *space shape]`` on CPU.

        Raises:
            CapabilityError: the model maps no latents into ``space`` (spaces drawn from their own prior,
                families without a mapping). ConfigError: an unknown space or knob, a bad shape.
        """
        s = self.latent_space(space)
        raise CapabilityError(f"{self.model_type} models do not map latents into {s.name!r} "
                              f"(its prior: {s.prior})")

    def complete(self, prefix: Any, n: int = 1, *, generator: torch.Generator | None = None,
                 condition: Any = None, **knobs: Any) -> torch.Tensor | Sketches:
        """``n`` continuations of a given start (sketch-rnn: a partial stroke-3 sketch), each with the start.

        Args:
            prefix: the start, in the model's data units (sketch-rnn: stroke-3 ``float [L, 3]``, normalised
                offsets, ``L`` below the model's ``max_seq_len``).
            n: number of continuations, >= 1.
            generator: every random draw (same state, same continuations).
            condition, knobs: as :meth:`sample`.

        Returns:
            Typed outputs (sketch-rnn: :class:`Sketches` whose ``prefix_lengths`` are ``L``).

        Raises:
            CapabilityError: the family does not complete inputs. DataError: an empty or too long prefix.
        """
        self.require(COMPLETE)
        raise NotImplementedError

    # ------------------------------------------------------------------ files
    def save_pretrained(
        self,
        path: str | Path,
        *,
        meta: dict[str, Any] | None = None,
        samplers: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``meta.json`` (+ fitted samplers) to ``path``.

        Raises:
            RunExistsError: ``path`` exists and ``overwrite`` is False.
        """
        return save_model_dir(self, path, meta=meta, samplers=samplers, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, map_location: str | torch.device = "cpu") -> Self:
        """Load a model folder written by :meth:`save_pretrained` (eval mode, no pickle, weights
        bit-identical; fitted samplers are attached by ``latentstudio.load``).

        Raises:
            CheckpointError: missing/incomplete folder, a model of another type, or weights that do
                not match the config.
        """
        path = Path(path)
        cfg = read_model_config(path)
        if cfg["model_type"] != cls.model_type:
            raise CheckpointError(f"{path} holds a {cfg['model_type']!r} model, not {cls.model_type!r}")
        config = cls.config_class.from_dict(cfg["config"], source=str(path / CONFIG_FILE))
        model = cls(config)
        state = read_weights(path / WEIGHTS_FILE, expected=model.state_dict(), device=map_location)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path / WEIGHTS_FILE} does not match {cls.model_type}: {exc}") from None
        model.path = path
        model.meta = read_meta(path)
        return model.eval()


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | torch.Tensor) or int(n) < 1:
        raise ConfigError(f"the number of samples must be an int >= 1, got {n!r} (CLI: --n)")
    return int(n)
