"""One interface over every generator the studio can drive: :class:`LatentModel`.

A latent is always a ``float32 [L, D]`` tensor (batched: ``[N, L, D]``): ``L`` rows, one per
style input of the generator, each of width ``D``.

* VAE family (``vae``, ``two-stage-vae``): ``L = 1``, ``D = latent_dim``, space ``z``. The encoder's
  posterior mean is the initial guess of a projection; random faces come from the model's best
  fitted sampler (second stage, else GMM, else N(0, I)).
* StyleGAN2: ``L = num_ws``, ``D = w_dim``, spaces ``w`` (all rows equal) and ``w+`` (rows free);
  ``w_avg`` is the initial guess; random faces map ``z ~ N(0, I)`` (seeded) through the mapping
  network.

Images: :meth:`LatentModel.synthesize` returns differentiable ``float32 [N, C, H, W]`` in [-1, 1];
:meth:`LatentModel.images` returns ``uint8 [N, C, H, W]``. Adapters are chosen by the model
directory's ``model_type`` through :data:`ADAPTERS` (:func:`load_latent_model`).
"""

from __future__ import annotations

import copy
import json
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import LatentStudioError, ShapeError
from latentstudio.io.images import to_uint8
from latentstudio.latents import truncate
from latentstudio.registry import Registry

__all__ = ["ADAPTERS", "LatentModel", "VAEAdapter"]

#: Adapter classes by model type; each has ``from_model(model)`` (see :mod:`latentstudio.studio.loading`).
ADAPTERS: Registry[Any] = Registry("studio adapter")


class LatentModel(ABC):
    """What the studio needs from a generator (see the module docstring).

    Attributes:
        model_type: registry name of the wrapped model (``two-stage-vae``, ``stylegan2`` ...).
        num_layers: L, style rows of a latent (1 for the VAE family).
        latent_dim: D.
        resolution: side of the square images in pixels.
        channels: 1 or 3.
        spaces: latent spaces a projection can optimise in (``("z",)`` or ``("w", "w+")``).
        template: alignment template matching the training data (``celeba`` or ``ffhq``).
        layer_groups: named row ranges ``{"coarse": (0, 4), ...}`` for per-layer masks.
        path: the model directory (None for an in-memory model).
    """

    model_type: str = ""
    num_layers: int = 1
    latent_dim: int = 0
    resolution: int = 0
    channels: int = 3
    spaces: tuple[str, ...] = ("z",)
    template: str = "ffhq"
    path: Path | None = None

    @property
    def default_space(self) -> str:
        """The space projections use by default (``z``; ``w+`` for StyleGAN2)."""
        return self.spaces[-1]

    @property
    def layer_groups(self) -> dict[str, tuple[int, int]]:
        """``{"all": (0, L)}``, plus coarse/middle/fine thirds when L > 2 (StyleGAN's split)."""
        n = self.num_layers
        groups = {"all": (0, n)}
        if n > 2:
            a, b = max(1, round(n * 2 / 9)), max(2, round(n * 4 / 9))  # 18 rows: 0-3, 4-7, 8-17
            groups.update(coarse=(0, a), middle=(a, b), fine=(b, n))
        return groups

    # ---- required
    @abstractmethod
    def synthesize(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents [N, L, D]`` -> ``float32 [N, C, H, W]`` in [-1, 1], differentiable."""

    @abstractmethod
    def draw_latents(self, seeds: list[int]) -> torch.Tensor:
        """One untruncated latent per seed, ``float32 [N, L, D]`` (same seed -> same latent)."""

    def from_z(self, z: torch.Tensor) -> torch.Tensor:
        """Latents of space ``z``, ``float [N, z_dim]`` (e.g. a latent explorer file), as this model's latents
        ``float32 [N, L, D]``: the same latents for models whose latents are z; StyleGAN2 maps them.

        Raises:
            ShapeError: ``z`` does not fit the model.
        """
        z = torch.as_tensor(z, dtype=torch.float32)
        return self.check_latents(z.reshape(-1, 1, z.shape[-1]), "z latent")

    def from_space(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        """Latents of another space of the model (e.g. a latent explorer file's), ``float [N, *shape]``, as
        this model's latents ``float32 [N, L, D]``: ``z`` by :meth:`from_z`; a two-stage VAE also takes ``u``.

        Raises:
            LatentStudioError: a space this model's faces cannot come from. ShapeError: latents that do not fit.
        """
        if space == "z":
            return self.from_z(latents)
        raise LatentStudioError(f"latents of space {space!r}: this {self.model_type} face model reads "
                                f"{', '.join(dict.fromkeys([*self.spaces, 'z']))}")

    def random_latents(self, seeds: list[int], truncation_psi: float = 1.0) -> torch.Tensor:
        """One latent per seed, ``float32 [N, L, D]``, truncated by :meth:`truncate` (the one truncation
        rule of the studio: the CLI's ``--truncation-psi`` and the web slider give the same latents)."""
        x = self.draw_latents(seeds)
        return x if float(truncation_psi) == 1.0 else self.truncate(x, truncation_psi)

    @abstractmethod
    def initial_latent(self, images: torch.Tensor | None = None) -> torch.Tensor:
        """Starting point of a projection, ``[N, L, D]``: the encoder's guess for ``uint8 [N, C, H, W]``
        images where the model has an encoder, else the mean latent (``N = 1`` if ``images`` is None)."""

    @property
    @abstractmethod
    def latent_center(self) -> torch.Tensor:
        """The mean latent ``[L, D]`` (truncation pulls towards it)."""

    @property
    @abstractmethod
    def latent_std(self) -> float:
        """RMS distance ``sqrt(E ||latent - center||^2)`` of random latents from the centre (one row);
        the StyleGAN2 projector's ``w_std``, which scales the projection's latent noise."""

    def fork(self) -> LatentModel:
        """An independent copy (its own network and noise buffers), e.g. for a projection that runs while
        other users of the studio keep generating with this one."""
        return copy.deepcopy(self)

    # ---- optional
    def sample_latents(self, n: int, seed: int = 0, truncation_psi: float = 1.0) -> torch.Tensor:
        """``n`` random latents ``[n, L, D]`` from one seed (for PCA / direction learning)."""
        return self.random_latents([seed * 1_000_003 + i for i in range(n)], truncation_psi)

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """Per-layer noise inputs a projection may optimise (StyleGAN2); empty for the VAE family."""
        return {}

    def style_weights(self) -> list[tuple[torch.Tensor, list[int]]]:
        """``[(weight [C, D], rows)]``: linear maps that read the latent (SeFa factorises them)."""
        return []

    def encode(self, images: torch.Tensor) -> torch.Tensor | None:
        """Encoder latents ``[N, L, D]`` of ``uint8`` images, or None if the model has no encoder."""
        return None

    def truncate(self, latents: torch.Tensor, psi: float) -> torch.Tensor:
        """``center + psi * (latents - center)`` (StyleGAN's truncation trick in the latent's space), as
        ``torch.lerp`` like the StyleGAN2 mapping network, so W latents match it bit for bit."""
        return truncate(latents, self.latent_center, psi)

    def check_latents(self, latents: torch.Tensor, what: str = "latent") -> torch.Tensor:
        """Return ``latents`` as ``float32 [N, L, D]`` (``[L, D]`` and ``[D]`` are broadcast).

        Raises:
            ShapeError: a shape that cannot be read as this model's latent.
        """
        if not isinstance(latents, torch.Tensor):
            latents = torch.as_tensor(latents)
        x = latents.to(torch.float32)
        if x.ndim == 1:
            x = x[None, None]
        elif x.ndim == 2:
            x = x[None]
        L, D = self.num_layers, self.latent_dim
        if x.ndim != 3 or x.shape[2] != D or x.shape[1] not in (1, L):
            raise ShapeError(
                f"{what}: expected [N, {L}, {D}], [{L}, {D}] or [{D}] for this {self.model_type}, "
                f"got {list(latents.shape)}"
            )
        if x.shape[1] != L:
            x = x.expand(-1, L, -1)
        return x.contiguous()

    @torch.no_grad()
    def image_batch(self) -> int:
        """Images rendered at once: 16 up to 256 px, scaled down by pixel count above (4 at 512, 1 at 1024), so a batch
        needs about the memory of 16 images at 256 px (each 1024 px StyleGAN2 image adds ~0.6 GiB on CPU,
        and larger batches are no faster there)."""
        return max(1, min(16, 16 * 256**2 // max(1, self.resolution) ** 2))

    def images(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``latents [N, L, D]`` -> ``uint8 [N, C, H, W]`` (``batch_size`` at a time; default :meth:`image_batch`)."""
        x = self.check_latents(latents)
        batch_size = batch_size or self.image_batch()
        out = [
            to_uint8((self.synthesize(x[i : i + batch_size]).cpu() + 1) / 2) for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(out)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (shown by the CLI and stored with projections)."""
        return {
            "model_type": self.model_type,
            "num_layers": self.num_layers,
            "latent_dim": self.latent_dim,
            "resolution": self.resolution,
            "channels": self.channels,
            "spaces": list(self.spaces),
            "template": self.template,
            "path": None if self.path is None else str(self.path),
        }


# ----------------------------------------------------------------------------------------------
# VAE family
# ----------------------------------------------------------------------------------------------


class VAEAdapter(LatentModel):
    """A (two-stage) VAE as a :class:`LatentModel`: ``z`` latents, ``L = 1``.

    Args:
        model: a :class:`~latentstudio.models.vae.VAE` or :class:`~latentstudio.models.two_stage.TwoStageVAE`.
        samplers: fitted samplers by name (from :func:`latentstudio.api.load`); the first of
            ``second-stage``, ``gmm``, ``normal`` present draws random faces.
        meta: the model directory's ``meta.json`` (its dataset picks the alignment template).
        path: the model directory.

    Raises:
        LatentStudioError: a conditional VAE (the studio edits unconditional latents only).
    """

    spaces = ("z",)

    def __init__(self, model: torch.nn.Module, samplers: dict[str, Any] | None = None,
                 meta: dict[str, Any] | None = None, path: Path | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.vae = model.image_vae
        cfg = self.vae.config
        if cfg.condition != "none":
            raise LatentStudioError(
                f"this VAE is conditional on {cfg.condition}; the studio needs an unconditional model "
                "(train one without --condition)"
            )
        self.model_type = model.model_type
        self.samplers = dict(samplers if samplers is not None else model.samplers)
        self.meta = dict(meta or {})
        self.path = path
        self.num_layers = 1
        self.latent_dim = int(cfg.latent_dim)
        self.resolution = int(cfg.image_size)
        self.channels = int(cfg.image_channels)
        self.dataset = _dataset_of(path, self.meta)
        self.template = "celeba" if "celeba" in self.dataset.lower() else "ffhq"
        self.sampler_name = next((s for s in ("second-stage", "gmm", "normal")
                                  if s in self.samplers or s in model.own_samplers), "normal")
        self._center: torch.Tensor | None = None
        self._std: float | None = None

    @property
    def device(self) -> torch.device:
        return self.vae.loggamma.device

    def synthesize(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.check_latents(latents).to(self.device)
        return self.vae.decode_mean(x[:, 0]) * 2 - 1

    def draw_latents(self, seeds: list[int]) -> torch.Tensor:
        """z of the model's best sampler, one generator per seed: ``[N, 1, latent_dim]``."""
        sampler = self.samplers.get(self.sampler_name) or self.model.latent_sampler(self.sampler_name)
        return torch.cat([sampler.sample(1, torch.Generator().manual_seed(int(s))).cpu() for s in seeds])[:, None].float()

    @torch.no_grad()
    def from_space(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        """As :meth:`LatentModel.from_space`; a two-stage VAE's ``u [N, latent_dim]`` goes through its second
        stage's decoder mean into z (``TwoStageVAE.to_first_stage``)."""
        if space == "u" and space in {s.name for s in self.model.latent_spaces()}:
            u = torch.as_tensor(latents, dtype=torch.float32).reshape(-1, self.latent_dim)
            return self.from_z(self.model.to_first_stage(u.to(self.device), "u", None).cpu())
        return super().from_space(latents, space)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Posterior means ``[N, 1, latent_dim]`` of ``uint8 [N, C, H, W]`` images at the model's size."""
        c, r = self.channels, self.resolution
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (c, r, r):
            raise ShapeError(f"images: expected uint8 [N, {c}, {r}, {r}] (align them to {r} pixels first), "
                             f"got {images.dtype} {list(images.shape)}")
        return self.model.encode(images).mean[:, None]

    def initial_latent(self, images: torch.Tensor | None = None) -> torch.Tensor:
        if images is None:
            return self.latent_center[None].clone()
        return self.encode(images)

    @property
    def latent_center(self) -> torch.Tensor:
        if self._center is None:
            if self.sampler_name == "normal":
                self._center = torch.zeros(1, self.latent_dim)
            else:  # mean of 2000 draws of the model's sampler (fixed seed)
                g = torch.Generator().manual_seed(0)
                s = self.samplers.get(self.sampler_name) or self.model.latent_sampler(self.sampler_name)
                self._center = s.sample(2000, g).mean(0, keepdim=True).float()
        return self._center

    @property
    def latent_std(self) -> float:
        if self._std is None:
            z = self.sample_latents(2000, seed=12345)[:, 0].double()
            self._std = float((z - self.latent_center.double()).pow(2).sum(1).mean().sqrt())
        return self._std

    def style_weights(self) -> list[tuple[torch.Tensor, list[int]]]:
        """The decoder's first dense layer (the only linear map of z), for SeFa."""
        return [(self.vae.dec_fc.weight.detach().cpu()[:, : self.latent_dim], [0])]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sampler": self.sampler_name, "dataset": self.dataset}

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> VAEAdapter:
        """The adapter of a loaded VAE-family model (its samplers, meta and path)."""
        return cls(model, model.samplers, model.meta, model.path)


def _dataset_of(model_dir: Path | None, meta: dict[str, Any]) -> str:
    """The training dataset's name, from meta.json or the run's run.json ("" if unknown)."""
    for key in ("dataset", "data"):
        v = meta.get(key)
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and "name" in v:
            return str(v["name"])
    run = Path(model_dir).parent / "run.json" if model_dir is not None else None
    if run is not None and run.is_file():
        try:
            cfg = json.loads(run.read_text())
            return str(cfg.get("config", cfg).get("data", {}).get("name", ""))
        except (json.JSONDecodeError, AttributeError):
            return ""
    return ""


ADAPTERS.register("vae")(VAEAdapter)
ADAPTERS.register("two-stage-vae")(VAEAdapter)


def ssim_window_ok(size: int) -> bool:
    """Whether SSIM's 11-pixel Gaussian window fits images of side ``size``."""
    return size >= 11


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB of a mean squared error on images with the given range (inf for 0)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)
