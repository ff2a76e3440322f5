"""Projection of an aligned photo into a generator's latent space by optimisation.

The objective and schedule follow the StyleGAN2 projector (Karras et al., "Analyzing and Improving
the Image Quality of StyleGAN", CVPR 2020, section 5 and appendix D):

* loss = ``perceptual_weight * d(G(w), x) + pixel_weight * mean((G(w) - x)^2)
  + noise_regularize * R(noise) + prior_weight * mean(z^2)``, images in [-1, 1];
  ``d`` is the LPIPS-VGG perceptual distance (:mod:`latentstudio.metrics.perceptual`, which
  documents its offline fallback when the LPIPS weights are absent); the target and the synthesis
  are area-downsampled to at most ``perceptual_size`` pixels first;
* ``R`` penalises spatial autocorrelation of every noise map at every octave (shifts by one pixel
  in x and y; the map is 2x2-averaged until it is 8x8): ``sum_i sum_octaves (mean(n * roll(n, 1,
  x))^2 + mean(n * roll(n, 1, y))^2)``; after every step each noise map is renormalised to zero
  mean and unit variance;
* learning rate ``lr(t) = lr0 * min(1, t / rampup) * (1 - cos(pi * min(1, (1 - t) / rampdown))) / 2``
  with ``t = step / steps`` (cosine ramp-down over the last 25%, linear ramp-up over the first 5%);
* Gaussian noise of std ``latent_std * initial_noise_factor * max(0, 1 - t / noise_ramp)^2`` is added to
  the latent during the first 75% of the steps;
* Adam with betas (0.9, 0.999).

Spaces: ``w`` optimises one row broadcast to all ``num_ws`` style inputs, ``w+`` every row, ``z`` the
VAE latent (initialised at the encoder's posterior mean; ``steps=0`` keeps the encoder's guess).
Metrics are computed on ``uint8`` images at the model's resolution with torchmetrics: MSE (images in
[0, 1]), PSNR (dB, data range 1) and SSIM (11-pixel Gaussian window). The identity similarity of the
photo and its projection (:mod:`latentstudio.studio.identity`: dlib's face-recognition embedding,
distance < 0.6 usually the same person) is recorded when dlib and its model are installed; otherwise
the result says why it is missing.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from latentstudio.config import Config, require
from latentstudio.errors import ExtractorWeightsMissing, LatentStudioError, ShapeError
from latentstudio.io.atomic import atomic_path
from latentstudio.metrics.perceptual import load_perceptual
from latentstudio.studio.adapters import LatentModel
from latentstudio.studio.identity import IdentityScore, compare_faces

__all__ = [
    "ProjectionConfig",
    "ProjectionResult",
    "default_config",
    "image_metrics",
    "learning_rate",
    "load_latent",
    "noise_regularization",
    "project",
]

#: Signature of a perceptual distance: ``(a, b)`` float ``[N, 3, H, W]`` in [-1, 1] -> ``[N]``.
PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ProjectionConfig(Config):
    """Projection settings (defaults: the StyleGAN2 projector's, see the module docstring).

    Attributes:
        space: ``w``, ``w+`` or ``z`` (None: the model's default, ``w+`` for StyleGAN2, ``z`` for VAEs).
        steps: optimisation steps (the reference uses 1000; 0 keeps the initial guess).
        lr: peak Adam learning rate.
        lr_rampup / lr_rampdown: fractions of the run for the linear ramp-up and cosine ramp-down.
        initial_noise_factor / noise_ramp: latent noise std (times the model's latent std) and the
            fraction of the run over which it decays to 0.
        noise_regularize: weight of the noise autocorrelation penalty (StyleGAN2 only).
        perceptual: perceptual distance name for :func:`latentstudio.metrics.perceptual.load_perceptual`
            (``lpips-vgg``; ``pyramid-l2`` is used when its weights are absent), or ``none``.
        perceptual_weight / pixel_weight: weights of the perceptual and pixel (MSE in [-1, 1]) terms.
        prior_weight: weight of ``mean(z^2)`` keeping VAE latents near the prior (0 for StyleGAN2).
        perceptual_size: images larger than this are area-downsampled before the perceptual distance.
        snapshot_every: keep the synthesis every k steps (0: none).
        seed: seed of the latent noise and noise-map initialisation.
    """

    space: str | None = None
    steps: int = 500
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp: float = 0.75
    noise_regularize: float = 1e5
    perceptual: str = "lpips-vgg"
    perceptual_weight: float = 1.0
    pixel_weight: float = 1.0
    prior_weight: float = 0.0
    perceptual_size: int = 256
    snapshot_every: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.space in (None, "w", "w+", "z"), "space", f"must be w, w+ or z, got {self.space!r}")
        require(self.steps >= 0, "steps", f"must be >= 0, got {self.steps}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0 < self.lr_rampup <= 1 and 0 < self.lr_rampdown <= 1, "lr_rampup", "ramps must be in (0, 1]")
        require(0 < self.noise_ramp <= 1, "noise_ramp", "must be in (0, 1]")
        for name in ("initial_noise_factor", "noise_regularize", "perceptual_weight", "pixel_weight", "prior_weight"):
            require(getattr(self, name) >= 0, name, "must be >= 0")
        require(self.perceptual_weight > 0 or self.pixel_weight > 0, "pixel_weight",
                "the perceptual and pixel weights cannot both be 0")
        require(self.perceptual_size >= 16, "perceptual_size", "must be >= 16")
        require(self.snapshot_every >= 0, "snapshot_every", "must be >= 0")


@dataclass
class ProjectionResult:
    """What :func:`project` returns.

    Attributes:
        latent: ``float32 [L, D]`` the projected latent (rows equal for ``w``).
        space: ``w``, ``w+`` or ``z``.
        image: ``uint8 [C, H, W]`` its synthesis; target: the aligned photo, same shape.
        metrics: ``mse`` (images in [0, 1]), ``psnr`` (dB), ``ssim``, and the same for the initial
            guess as ``initial_*``; ``seconds_per_step``, ``steps_per_second``, ``seconds``.
        noise: optimised noise maps by name (StyleGAN2), else empty.
        history: per step ``{"step", "loss", "perceptual", "pixel", "lr"}``.
        snapshots: ``[(step, uint8 [C, H, W])]`` every ``snapshot_every`` steps (and the last step).
        config: the :class:`ProjectionConfig` used; model: the adapter's ``describe()``.
        perceptual: the distance actually used (``lpips-vgg``, ``pyramid-l2`` when the LPIPS weights
            are absent, ``none``, or ``custom``).
        identity: :meth:`IdentityScore.as_dict` of the target and the result: ``distance`` (dlib embedding
            distance, < 0.6 usually the same person), ``similarity`` (cosine), ``same_person``, ``box``;
            the values are None and ``reason`` says why when no face-recognition model is available.
    """

    latent: torch.Tensor
    space: str
    image: torch.Tensor
    target: torch.Tensor
    metrics: dict[str, float]
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    config: ProjectionConfig = field(default_factory=ProjectionConfig)
    model: dict[str, Any] = field(default_factory=dict)
    perceptual: str = "none"
    identity: dict[str, Any] = field(default_factory=lambda: IdentityScore.unavailable("not measured").as_dict())

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``latent`` (``[L, D]``), ``space``, ``noise/<name>`` maps, the images and a JSON
        ``meta`` (metrics, config, model) to an ``.npz`` file, atomically; loads without pickle.

        Raises:
            RunExistsError: ``path`` exists and ``overwrite`` is False.
        """
        arrays: dict[str, np.ndarray] = {
            "latent": self.latent.detach().cpu().numpy().astype(np.float32),
            "space": np.array(self.space),
            "image": self.image.cpu().numpy(),
            "target": self.target.cpu().numpy(),
            "meta": np.array(json.dumps({"metrics": self.metrics, "config": self.config.to_dict(),
                                         "model": self.model, "perceptual": self.perceptual,
                                         "identity": self.identity},
                                        sort_keys=True, default=float)),
        }
        for name, buf in self.noise.items():
            arrays[f"noise/{name}"] = buf.detach().cpu().numpy().astype(np.float32)
        path = Path(path)
        if path.suffix != ".npz":
            raise LatentStudioError(f"{path}: latents are saved as .npz files")
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path


def load_latent(path: str | Path) -> dict[str, Any]:
    """Read a latent file: an ``.npz`` from :meth:`ProjectionResult.save` / the studio, or a bare ``.npy``.

    Returns:
        ``{"latent": float32 [L, D] or [D], "space": str or None, "noise": {name: tensor},
        "meta": dict}``.

    Raises:
        LatentStudioError: a missing or malformed file (no pickle is ever loaded).
    """
    path = Path(path)
    if not path.is_file():
        raise LatentStudioError(f"latent file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LatentStudioError(f"{path} is not a readable .npz/.npy latent file ({exc})") from None
    if isinstance(data, np.ndarray):
        return {"latent": torch.from_numpy(data.astype(np.float32)), "space": None, "noise": {}, "meta": {}}
    with data:
        if "latent" not in data.files:
            raise LatentStudioError(f"{path} has no 'latent' array (arrays: {', '.join(data.files)})")
        out = {
            "latent": torch.from_numpy(data["latent"].astype(np.float32)),
            "space": str(data["space"]) if "space" in data.files else None,
            "noise": {k[6:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("noise/")},
            "meta": json.loads(str(data["meta"])) if "meta" in data.files else {},
        }
    return out


def learning_rate(t: float, lr: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """The projector's learning rate at progress ``t`` in [0, 1] (see the module docstring)."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def noise_regularization(noise: list[torch.Tensor]) -> torch.Tensor:
    """Multi-octave autocorrelation penalty of noise maps ``[1, 1, H, W]`` (scalar tensor)."""
    reg = torch.zeros(())
    for n in noise:
        v = n[None, None] if n.ndim == 2 else n.reshape(1, 1, *n.shape[-2:])
        reg = reg.to(v.device)
        while True:
            reg = reg + (v * torch.roll(v, 1, dims=3)).mean() ** 2 + (v * torch.roll(v, 1, dims=2)).mean() ** 2
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


@torch.no_grad()
def image_metrics(image: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """MSE (in [0, 1] units), PSNR (dB) and SSIM between two ``uint8 [N, C, H, W]`` batches (means).

    SSIM (torchmetrics, 11-pixel Gaussian window) is NaN for images smaller than 11 pixels.
    """
    from torchmetrics.functional.image import (  # lazy: torchmetrics takes seconds to import
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    if image.shape != target.shape or image.dtype != torch.uint8 or target.dtype != torch.uint8:
        raise ShapeError(f"image_metrics: two uint8 batches of one shape needed, got {image.dtype} "
                         f"{list(image.shape)} and {target.dtype} {list(target.shape)}")
    a, b = image.double() / 255.0, target.double() / 255.0
    mse = float((a - b).pow(2).mean())
    psnr = float(peak_signal_noise_ratio(a, b, data_range=1.0)) if mse > 0 else math.inf
    ssim = float("nan")
    if min(a.shape[-2:]) >= 11:
        # float32 is enough for SSIM (values move by ~1e-5) and costs a tenth of float64's time and memory at 1024 px
        ssim = float(structural_similarity_index_measure(image.float() / 255.0, target.float() / 255.0,
                                                         data_range=1.0))
    return {"mse": mse, "psnr": psnr, "ssim": ssim}


def default_config(model: LatentModel, **changes: Any) -> ProjectionConfig:
    """The projection settings the CLI and the studio use for ``model``.

    StyleGAN2: the reference projector's (lr 0.1, noise regularisation 1e5). VAE family (``z`` only):
    the encoder's guess is already close, so lr 0.05, no noise maps, and a small prior term
    ``1e-3 * mean(z^2)`` that keeps the latent where the decoder was trained. ``changes`` override.
    """
    vae = tuple(model.spaces) == ("z",)
    base = {"lr": 0.05, "prior_weight": 1e-3, "noise_regularize": 0.0} if vae else {}
    return ProjectionConfig(**{**base, **changes})


def load_projection_distance(name: str, device: torch.device | str = "cpu") -> tuple[PerceptualFn | None, str]:
    """The perceptual distance ``name`` and a label for reports; ``(None, "none")`` for ``none``.

    When ``lpips-vgg`` (or ``vgg16-features``) lacks its weights, the documented offline fallback
    ``pyramid-l2`` of :mod:`latentstudio.metrics.perceptual` is used instead, with a warning; its label
    says that it is not LPIPS.
    """
    if name == "none":
        return None, "none"

    try:
        net = load_perceptual(name, device=device)
    except ExtractorWeightsMissing as exc:
        warnings.warn(f"{exc} Projecting with the offline fallback pyramid-l2 (NOT LPIPS).", stacklevel=3)
        net = load_perceptual("pyramid-l2", device=device)
    net.requires_grad_(False)
    return net, getattr(net, "name", name)


def _downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


def project(
    model: LatentModel,
    target: torch.Tensor,
    config: ProjectionConfig | None = None,
    *,
    perceptual: PerceptualFn | None | str = "config",
    init: torch.Tensor | None = None,
    progress: bool | Callable[[int, int, dict[str, float]], None] = False,
    perceptual_label: str | None = None,
    identity: bool = True,
) -> ProjectionResult:
    """Find a latent whose synthesis matches ``target`` (see the module docstring).

    Args:
        model: the generator adapter.
        target: the aligned photo, ``uint8 [C, H, W]`` at the model's resolution.
        config: :class:`ProjectionConfig` (defaults if None).
        perceptual: a distance ``(a, b) -> [N]`` on float ``[N, 3, H, W]`` in [-1, 1]; ``"config"``
            loads ``config.perceptual``; None uses the pixel loss only.
        init: starting latent ``[L, D]`` (default: :meth:`LatentModel.initial_latent` of ``target``).
        progress: True for a tqdm bar, or a callback ``(step, steps, info)`` called after each step.
        perceptual_label: name recorded for a ``perceptual`` callable passed in (default ``custom``).
        identity: measure the identity similarity of ``target`` and the result
            (:func:`~latentstudio.studio.identity.compare_faces`, about 0.2 s after a one-off 2 s load).

    Returns:
        :class:`ProjectionResult` (latent, images, metrics, history, snapshots, noise).

    Raises:
        ShapeError: ``target`` is not ``uint8 [C, R, R]`` with the model's channels and resolution.
        LatentStudioError: a space the model does not have.
    """
    cfg = config or ProjectionConfig()
    space = cfg.space or model.default_space
    if space not in model.spaces:
        raise LatentStudioError(f"this {model.model_type} projects into {', '.join(model.spaces)}, not {space!r}")
    c, r = model.channels, model.resolution
    if (not isinstance(target, torch.Tensor) or target.dtype != torch.uint8
            or tuple(target.shape) != (c, r, r)):
        got = f"{target.dtype} {list(target.shape)}" if isinstance(target, torch.Tensor) else type(target).__name__
        raise ShapeError(f"target: expected the aligned photo as uint8 [{c}, {r}, {r}], got {got}")
    label = (perceptual_label or "custom") if perceptual is not None else "none"
    if isinstance(perceptual, str):
        perceptual, label = load_projection_distance(cfg.perceptual)
    w_perc = cfg.perceptual_weight if perceptual is not None else 0.0
    w_pix = cfg.pixel_weight if (perceptual is not None or cfg.pixel_weight > 0) else 1.0
    if perceptual is None and w_pix == 0:
        w_pix = 1.0

    gen = torch.Generator().manual_seed(cfg.seed)
    start = model.check_latents(init if init is not None else model.initial_latent(target[None]))[:1].detach()
    target_f = target[None].float() / 127.5 - 1.0
    target_p = _downsample(target_f, cfg.perceptual_size)
    if perceptual is not None and c == 1:
        target_p = target_p.expand(-1, 3, -1, -1)
    L = model.num_layers
    if space == "w":
        var = start[:, :1].clone()
    else:
        var = start.clone()
    var.requires_grad_(True)
    noise_bufs = model.noise_buffers() if cfg.noise_regularize > 0 or space != "z" else {}
    saved = {k: b.detach().clone() for k, b in noise_bufs.items()}
    for b in noise_bufs.values():
        b.copy_(torch.randn(b.shape, generator=gen).to(b))
        b.requires_grad_(True)
    opt = torch.optim.Adam([var, *noise_bufs.values()], lr=cfg.lr, betas=(0.9, 0.999))
    latent_std = model.latent_std

    def expand(v: torch.Tensor) -> torch.Tensor:
        return v.expand(-1, L, -1) if v.shape[1] == 1 else v

    history: list[dict[str, float]] = []
    snapshots: list[tuple[int, torch.Tensor]] = []
    bar = None
    if progress is True:
        bar = tqdm(total=cfg.steps, desc=f"projecting into {space}", unit="step")
    with torch.no_grad():
        initial_image = model.images(expand(start if space != "w" else start[:, :1]))[0]
    t0 = time.perf_counter()
    try:
        for step in range(cfg.steps):
            t = step / cfg.steps
            noise_scale = latent_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
            lr = learning_rate(t, cfg.lr, cfg.lr_rampup, cfg.lr_rampdown)
            for group in opt.param_groups:
                group["lr"] = lr
            jitter = torch.randn(var.shape, generator=gen) * noise_scale
            synth = model.synthesize(expand(var + jitter.to(var)))
            pix = (synth - target_f.to(synth)).pow(2).mean()
            loss = w_pix * pix
            perc = torch.zeros(())
            if perceptual is not None and w_perc > 0:
                s = _downsample(synth, cfg.perceptual_size)
                if c == 1:
                    s = s.expand(-1, 3, -1, -1)
                perc = perceptual(s, target_p.to(s)).sum()
                loss = loss + w_perc * perc
            if noise_bufs and cfg.noise_regularize > 0:
                loss = loss + cfg.noise_regularize * noise_regularization(list(noise_bufs.values()))
            if cfg.prior_weight > 0:
                loss = loss + cfg.prior_weight * var.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for b in noise_bufs.values():
                    b -= b.mean()
                    b *= b.square().mean().rsqrt()
            info = {"step": step + 1, "loss": loss.item(), "perceptual": perc.item(), "pixel": pix.item(), "lr": lr}
            history.append(info)
            if cfg.snapshot_every and ((step + 1) % cfg.snapshot_every == 0 or step + 1 == cfg.steps):
                with torch.no_grad():
                    snapshots.append((step + 1, model.images(expand(var.detach()))[0]))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{info['loss']:.4f}")
            elif callable(progress):
                progress(step + 1, cfg.steps, info)
        seconds = time.perf_counter() - t0
        latent = expand(var.detach())[0].clone()
        noise = {k: b.detach().clone() for k, b in noise_bufs.items()}
        with torch.no_grad(), noise_swap(noise_bufs, noise):
            image = model.images(latent[None])[0]
    finally:
        if bar is not None:
            bar.close()
        with torch.no_grad():
            for k, b in noise_bufs.items():
                b.requires_grad_(False)
                b.copy_(saved[k])
    metrics = image_metrics(image[None], target[None])
    init_m = image_metrics(initial_image[None], target[None])
    metrics.update({f"initial_{k}": v for k, v in init_m.items()})
    metrics.update(seconds=seconds, steps=float(cfg.steps),
                   seconds_per_step=seconds / cfg.steps if cfg.steps else 0.0,
                   steps_per_second=cfg.steps / seconds if cfg.steps and seconds > 0 else 0.0)
    ident = _identity(target, image, getattr(model, "template", "ffhq")) if identity else \
        IdentityScore.unavailable("not requested")
    return ProjectionResult(latent=latent, space=space, image=image, target=target.clone(), metrics=metrics,
                            noise=noise, history=history, snapshots=snapshots, config=cfg.replace(space=space),
                            model=model.describe(), perceptual=label, identity=ident.as_dict())


def _identity(target: torch.Tensor, image: torch.Tensor, template: str) -> IdentityScore:
    """:func:`compare_faces` of the target and the synthesis; a failure of dlib becomes the reason."""
    if target.shape[0] not in (1, 3):
        return IdentityScore.unavailable(f"{target.shape[0]}-channel images are not faces dlib can read")
    try:
        return compare_faces(target, image, template)
    except RuntimeError as exc:  # dlib reports its errors as RuntimeError
        return IdentityScore.unavailable(f"dlib could not compare the faces: {exc}")


class noise_swap:
    """Temporarily copy ``values`` (the noise maps saved with a projection, ``{name: tensor}``) into the
    noise buffers ``bufs`` (``model.noise_buffers()``); restored on exit. Use it around any render of
    a projected latent so the image is the projection's, not one with the model's own noise."""

    def __init__(self, bufs: dict[str, torch.Tensor], values: dict[str, torch.Tensor]) -> None:
        self.bufs, self.values = bufs, values
        self.saved: dict[str, torch.Tensor] = {}

    def __enter__(self) -> None:
        for k, b in self.bufs.items():
            if k in self.values:
                self.saved[k] = b.detach().clone()
                b.requires_grad_(False)
                b.copy_(self.values[k])

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            self.bufs[k].copy_(v)
