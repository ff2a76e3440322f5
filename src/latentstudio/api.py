"""The Python API used by the CLI (and by notebooks): train, load, sample, reconstruct, evaluate.

Everything here composes the library's pieces; the maths lives in ``models``, ``samplers`` and
``metrics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import CheckpointError, LatentStudioError
from latentstudio.io.images import to_float, to_uint8


@dataclass
class LoadedModel:
    """A model directory in memory.

    Attributes:
        model: the model in eval mode (a :class:`~latentstudio.models.two_stage.TwoStageVAE` or a VAE).
        samplers: fitted latent samplers by name (``normal``, ``gmm``, ``second-stage``).
        meta: ``meta.json`` (dataset fingerprint, seed, versions).
        path: the model directory.
    """

    model: torch.nn.Module
    samplers: dict[str, Any]
    meta: dict[str, Any]
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def vae(self):
        """The image VAE (first stage)."""
        return getattr(self.model, "stage1", self.model)


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a model directory or a run directory (uses its ``model/``).

    Raises:
        CheckpointError: neither holds a model.
    """
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "run.json").is_file():
        from latentstudio.training.runs import read_run

        kind = read_run(path)[0]
        raise CheckpointError(
            f"run {path} has no exported model yet (model/ is missing): it is unfinished; "
            f"continue it with `latentstudio train {kind} --resume {path}`"
        )
    raise CheckpointError(f"{path} is neither a model directory (config.json + model.safetensors) nor a run directory")


def load(path: str | Path, map_location: str = "cpu") -> LoadedModel:
    """Load a model directory (or a run's ``model/``) with its fitted samplers, without pickle."""
    from latentstudio.io.checkpoint import load_model_dir, load_samplers, read_meta
    from latentstudio.samplers import NormalSampler

    model_dir = resolve_model_dir(path)
    model = load_model_dir(model_dir, map_location=map_location)
    samplers = load_samplers(model_dir, model)
    if "normal" not in samplers and not getattr(model, "generates_directly", False):
        vae = getattr(model, "stage1", model)
        samplers = {"normal": NormalSampler(vae.config.latent_dim), **samplers}
    return LoadedModel(model=model, samplers=samplers, meta=read_meta(model_dir), path=model_dir)


def make_conditions(vae, condition: Any, n: int) -> torch.Tensor | None:
    """Condition vectors ``float32 [n, cond_dim]`` for a conditional VAE.

    Args:
        vae: the first-stage VAE (its config says the condition kind).
        condition: class models: an int class, a list of n ints, or None (classes 0..K-1 in turn);
            attribute models: a ``[n, A]`` / ``[A]`` tensor of +-1, a dict ``{attribute index: +-1}``
            (unspecified attributes are 0, i.e. neutral), or None (all 0).
        n: number of samples.

    Raises:
        LatentStudioError: a condition for an unconditional model, or an out-of-range class.
    """
    cfg = vae.config
    if cfg.condition == "none":
        if condition is not None:
            raise LatentStudioError("this model is unconditional; drop --condition")
        return None
    if cfg.condition == "class":
        if condition is None:
            labels = torch.arange(n) % cfg.cond_dim
        elif isinstance(condition, int):
            labels = torch.full((n,), condition)
        else:
            labels = torch.as_tensor(list(condition))
            if labels.numel() != n:
                raise LatentStudioError(f"got {labels.numel()} class conditions for {n} samples")
        if labels.min() < 0 or labels.max() >= cfg.cond_dim:
            raise LatentStudioError(f"class condition must be in 0..{cfg.cond_dim - 1}, got {labels.tolist()[:8]}")
        return torch.nn.functional.one_hot(labels.long(), cfg.cond_dim).float()
    if condition is None:
        return torch.zeros(n, cfg.cond_dim)
    if isinstance(condition, dict):
        c = torch.zeros(cfg.cond_dim)
        for k, v in condition.items():
            c[int(k)] = float(v)
        return c.expand(n, -1).clone()
    c = torch.as_tensor(condition, dtype=torch.float32)
    return (c.expand(n, -1) if c.ndim == 1 else c).clone()


@torch.no_grad()
def generate(
    loaded: LoadedModel,
    sampler: str = "second-stage",
    n: int = 64,
    *,
    seed: int = 0,
    seeds: list[int] | None = None,
    condition: Any = None,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sample images: latents from ``sampler`` decoded by the first stage.

    Models that sample by themselves (``model.generates_directly``, e.g. DRAW) ignore ``sampler``
    and draw their own latents (scaled by ``temperature``).

    Args:
        loaded: from :func:`load`.
        sampler: ``normal`` (z ~ N(0, I)), ``gmm`` (ex-post mixture) or ``second-stage``.
        n: number of images (ignored when ``seeds`` is given).
        seed: seed of one generator for the whole batch.
        seeds: one image per seed (image i uses a generator seeded with seeds[i]).
        condition: see :func:`make_conditions`.

    Returns:
        ``uint8 [n, C, H, W]``.

    Raises:
        UnknownNameError-like LatentStudioError: unknown sampler name (the message lists the fitted ones).
    """
    if getattr(loaded.model, "generates_directly", False):  # e.g. DRAW: z_t ~ N(0, I) inside the model
        return _generate_direct(loaded.model, n, seed=seed, seeds=seeds, condition=condition, batch_size=batch_size,
                                temperature=temperature)
    if sampler not in loaded.samplers:
        raise LatentStudioError(f"unknown sampler {sampler!r}; this model has: {', '.join(sorted(loaded.samplers))}")
    s = loaded.samplers[sampler]
    vae = loaded.vae
    if seeds is not None:
        n = len(seeds)
    cond = make_conditions(vae, condition, n)
    if seeds is not None:
        z = torch.cat([s.sample(1, torch.Generator().manual_seed(int(sd)),
                                None if cond is None else cond[i : i + 1]) for i, sd in enumerate(seeds)])
    else:
        z = s.sample(n, torch.Generator().manual_seed(seed), cond)
    out = []
    for i in range(0, n, batch_size):
        c = None if cond is None else cond[i : i + batch_size]
        out.append(to_uint8(vae.decode(z[i : i + batch_size].to(vae.loggamma.device), c).cpu()))
    return torch.cat(out)


def _generate_direct(model, n: int, *, seed: int, seeds, condition, batch_size: int, temperature: float):
    """``uint8 [n, C, H, W]`` from ``model.sample(n, cond, generator, temperature)`` (one generator, or one per seed)."""
    if seeds is not None:
        n = len(seeds)
    cond = make_conditions(model, condition, n)
    if seeds is not None:
        out = [model.sample(1, None if cond is None else cond[i : i + 1], torch.Generator().manual_seed(int(sd)),
                            temperature) for i, sd in enumerate(seeds)]
    else:
        g = torch.Generator().manual_seed(seed)
        out = [model.sample(min(batch_size, n - i), None if cond is None else cond[i : i + batch_size],
                            g, temperature) for i in range(0, n, batch_size)]
    return to_uint8(torch.cat(out).cpu())


@torch.no_grad()
def reconstruct(
    loaded: LoadedModel, images: torch.Tensor, cond: torch.Tensor | None = None, batch_size: int = 256
) -> torch.Tensor:
    """Decoder mean of the posterior mean: ``uint8 [N, C, H, W] -> uint8 [N, C, H, W]``."""
    vae = loaded.vae
    out = []
    for i in range(0, images.shape[0], batch_size):
        c = None if cond is None else cond[i : i + batch_size]
        out.append(to_uint8(vae.reconstruct(to_float(images[i : i + batch_size]), c)))
    return torch.cat(out)


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def build_run_config(spec: dict[str, Any], data) -> Any:
    """Complete a (partial) run-config dict with the dataset's shapes and return the frozen config.

    ``image_channels``, ``image_size`` and ``cond_dim`` always come from ``data``; ``num_scale``
    defaults to log2(image_size) - 2 (3 for 32x32, 4 for 64x64) unless given.

    Raises:
        ConfigError: unknown or invalid fields (named).
    """
    from latentstudio.presets import merge
    from latentstudio.training.config import TwoStageRunConfig

    c, h, _ = data.image_shape
    s1 = dict(spec.get("model", {}).get("stage1", {}))
    condition = s1.get("condition", "none")
    cond_dim = 0 if condition == "none" else int(data.conditions(condition).shape[1])
    s1.update(image_channels=c, image_size=h, cond_dim=cond_dim, condition=condition)
    s1.setdefault("num_scale", max(1, h.bit_length() - 3))
    s2 = dict(spec.get("model", {}).get("stage2", {}))
    s2.update(latent_dim=s1.get("latent_dim", 64), condition=condition, cond_dim=cond_dim)
    full = merge(spec, {"model": {"stage1": s1, "stage2": s2}})
    return TwoStageRunConfig.from_dict(full, source="run config")


def train_draw(spec: dict[str, Any], **kwargs):
    """Train DRAW from a run-config dict (``data``, ``model``, ``train``, ``binarize``, ``seed``, ...).

    Keyword arguments as :func:`latentstudio.training.draw.train_draw_spec` (``runs_root``, ``resume``,
    ``progress``, ``dry_run``, ``data``, ``callbacks``); returns its result.
    """
    from latentstudio.training.draw import train_draw_spec

    return train_draw_spec(spec, **kwargs)


def train(
    spec: dict[str, Any],
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    data=None,
    callbacks: list | None = None,
):
    """Train a two-stage VAE from a run-config dict (see :func:`build_run_config`).

    With ``resume`` the run's own ``run.json`` is used (``spec`` is ignored). With ``dry_run``
    the resolved config is returned and nothing is trained or written.

    Returns:
        :class:`~latentstudio.training.fit.TrainResult`, or the resolved config under ``dry_run``.
    """
    from latentstudio.data import load_images
    from latentstudio.training.config import DataConfig

    if resume is not None:
        from latentstudio.training.fit import read_run_config

        run = read_run_config(resume)
        d = run.data
        if data is None:
            data = load_images(d.name, "train", root=d.root, download=d.download, strict=d.strict, limit=d.limit,
                               **d.options)
    else:
        d = DataConfig.from_dict(spec.get("data", {}), source="data")
        if data is None:
            data = load_images(d.name, "train", root=d.root, download=d.download, strict=d.strict, limit=d.limit,
                               **d.options)
        run = build_run_config(spec, data)
    if dry_run:
        return run
    from latentstudio.training.fit import train_two_stage

    return train_two_stage(run, runs_root=runs_root, resume=resume, progress=progress, data=data, callbacks=callbacks)
