"""StyleGAN2 generators as studio models (W / W+ latents).

Rows of a latent are the generator's ``num_ws`` style inputs; the affine (style) layer of every
synthesis layer reads one row: in block ``b4`` conv1 reads row 0 and its toRGB row 1; every later
block reads rows ``i`` (conv0), ``i + 1`` (conv1) and ``i + 2`` (toRGB, shared with the next block's
conv0), with ``i`` advancing by 2 per block. :meth:`StyleGAN2Adapter.style_weights` returns those
weights with their rows, which is what SeFa factorises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import ShapeError
from latentstudio.models.stylegan2 import images_to_uint8, z_from_seed
from latentstudio.studio.adapters import ADAPTERS, LatentModel, _dataset_of

__all__ = ["StyleGAN2Adapter"]


class StyleGAN2Adapter(LatentModel):
    """A StyleGAN2 ``Generator`` as a :class:`LatentModel` (spaces ``w`` and ``w+``).

    Args:
        generator: exposes ``mapping(z, c, truncation_psi, truncation_cutoff) -> [N, num_ws, w_dim]``,
            ``synthesis(ws, noise_mode) -> [N, C, R, R]`` in [-1, 1], ``z_dim``, ``w_dim``, ``num_ws``,
            ``img_resolution``, ``img_channels`` and the buffer ``w_avg``.
        path: the model folder; meta: its ``meta.json`` (a CelebA-trained model aligns with the
            ``celeba`` template, others with ``ffhq``).
        noise_mode: synthesis noise (``const`` keeps images deterministic).
    """

    spaces = ("w", "w+")
    model_type = "stylegan2"

    def __init__(self, generator: torch.nn.Module, *, path: Path | None = None, meta: dict[str, Any] | None = None,
                 noise_mode: str = "const") -> None:
        self.G = generator.eval().requires_grad_(False)
        self.path = Path(path) if path is not None else None
        self.meta = dict(meta or {})
        self.num_layers = int(generator.num_ws)
        self.latent_dim = int(generator.w_dim)
        self.resolution = int(generator.img_resolution)
        self.channels = int(getattr(generator, "img_channels", 3))
        self.z_dim = int(generator.z_dim)
        self.c_dim = int(getattr(generator, "c_dim", 0) or 0)
        self.noise_mode = noise_mode
        self.dataset = _dataset_of(self.path, self.meta) if self.path is not None else ""
        self.template = "celeba" if "celeba" in self.dataset.lower() else "ffhq"
        self._std: float | None = None

    @property
    def device(self) -> torch.device:
        return self.G.w_avg.device

    def synthesize(self, latents: torch.Tensor) -> torch.Tensor:
        ws = self.check_latents(latents).to(self.device)
        return self.G.synthesis(ws, noise_mode=self.noise_mode)

    def _labels(self, n: int) -> torch.Tensor | None:
        """One-hot classes 0, 1, ... in turn for a class-conditional generator (None otherwise)."""
        if not self.c_dim:
            return None
        return torch.nn.functional.one_hot(torch.arange(n) % self.c_dim, self.c_dim).float().to(self.device)

    @torch.no_grad()
    def draw_latents(self, seeds: list[int]) -> torch.Tensor:
        """W of the official seed rule's z (``np.random.RandomState(seed)``): ``[N, num_ws, w_dim]``
        (a class-conditional generator takes classes 0, 1, ... in turn)."""
        return self.from_z(torch.cat([z_from_seed(int(s), self.z_dim) for s in seeds]))

    @torch.no_grad()
    def from_z(self, z: torch.Tensor) -> torch.Tensor:
        """``z float [N, z_dim]`` (seeds' z, an explorer latents file of space ``z``) -> ``w+ [N, num_ws, w_dim]``
        through the mapping, untruncated (the studio's truncation control applies on top; a class-conditional
        generator takes classes 0, 1, ... in turn).

        Raises:
            ShapeError: ``z`` is not ``[N, z_dim]`` or ``[z_dim]``.
        """
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ShapeError(f"z latents: expected [N, {self.z_dim}] for this generator, got {list(z.shape)}")
        return self.G.mapping(z.to(self.device), self._labels(len(z))).float().cpu()

    def images(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``latents [N, L, D]`` -> ``uint8 [N, C, H, W]`` by the official rule (``x * 127.5 + 128``, truncated),
        ``batch_size`` at a time (default :meth:`image_batch`)."""
        x = self.check_latents(latents)
        batch_size = batch_size or self.image_batch()
        with torch.no_grad():
            return torch.cat([images_to_uint8(self.synthesize(x[i : i + batch_size])).cpu()
                              for i in range(0, x.shape[0], batch_size)])

    def initial_latent(self, images: torch.Tensor | None = None) -> torch.Tensor:
        n = 1 if images is None else int(images.shape[0])
        return self.latent_center[None].expand(n, -1, -1).clone()

    @property
    def latent_center(self) -> torch.Tensor:
        return self.G.w_avg.detach().float().cpu()[None].expand(self.num_layers, -1).clone()

    @property
    def latent_std(self) -> float:
        """RMS distance of w from ``w_avg`` over 10,000 seeded z draws (the reference projector's ``w_std``)."""
        if self._std is None:
            g = torch.Generator().manual_seed(123)
            total, n = 0.0, 10_000
            with torch.no_grad():
                for start in range(0, n, 1000):
                    z = torch.randn(1000, self.z_dim, generator=g).to(self.device)
                    w = self.G.mapping(z, self._labels(1000))[:, 0].double().cpu()
                    total += float((w - self.G.w_avg.double().cpu()).pow(2).sum())
            self._std = (total / n) ** 0.5
        return self._std

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        return {name: buf for name, buf in self.G.synthesis.named_buffers() if name.endswith("noise_const")}

    def style_weights(self) -> list[tuple[torch.Tensor, list[int]]]:
        out: list[tuple[torch.Tensor, list[int]]] = []
        syn = self.G.synthesis
        w_idx = 0
        for res in syn.block_resolutions:
            block = getattr(syn, f"b{res}")
            convs = [block.conv1] if block.num_conv == 1 else [block.conv0, block.conv1]
            for k, layer in enumerate(convs):
                out.append((layer.affine.weight.detach().float().cpu(), [w_idx + k]))
            out.append((block.torgb.affine.weight.detach().float().cpu(), [w_idx + block.num_conv]))
            w_idx += block.num_conv
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "z_dim": self.z_dim, "noise_mode": self.noise_mode, "dataset": self.dataset}

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> StyleGAN2Adapter:
        """The adapter of a loaded generator (its meta and path)."""
        return cls(model, path=model.path, meta=model.meta)


ADAPTERS.register("stylegan2")(StyleGAN2Adapter)
