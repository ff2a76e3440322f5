"""Training and evaluating the project's two-stage VAE inside a study (``training-subsets``, ``samplers``).

Each model a study trains lives in ``<study>/models/<name>/NNNNN-two-stage-vae-<data>/`` (a normal
run directory: ``run.json``, stage checkpoints, logs, grids and the exported ``model/``). A study that
is interrupted while a model trains resumes that run from its last checkpoint (no finished epoch is
repeated); a finished model is loaded, not retrained.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import torch

from latentstudio.config import apply_overrides as config_overrides
from latentstudio.errors import ConfigError
from latentstudio.io.images import save_grid, to_float, to_uint8
from latentstudio.presets import merge
from latentstudio.presets import preset as get_preset
from latentstudio.samplers import load_model_with_samplers
from latentstudio.studies import common as C
from latentstudio.training.config import TwoStageRunConfig
from latentstudio.training.fit import build_run_config, train_spec
from latentstudio.training.runs import lightning, read_run

MODELS_DIR = "models"

__all__ = ["apply_overrides", "decode_latents", "model_spec", "sampler_fid_cell", "train_or_resume"]


def apply_overrides(spec: dict[str, Any], overrides: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``stage1.lr=1e-3``, ``model.stage1.latent_dim=16``) in a copy of ``spec``.

    Args:
        spec: a (partial) nested config dict.
        overrides: dotted key -> value; values are converted to the type of the value in ``known``
            (see :func:`latentstudio.config.apply_overrides`).
        known: the complete config dict; every key path must exist in it.

    Raises:
        ConfigError: a key path that does not exist (the known keys at that level listed), or a value
            that does not parse as the field's type (the key and type named).
    """
    return config_overrides(spec, overrides, known=known, what="--set")


def model_spec(
    data: C.StudyData,
    *,
    preset: str = "cpu",
    budget: C.Budget,
    budget2: C.Budget | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    gmm_components: int = 10,
) -> dict[str, Any]:
    """The complete run-config dict (``TwoStageRunConfig`` layout) of a study's two-stage VAE.

    The ``preset`` gives the model and optimiser; ``budget`` sets both stages' epochs / minutes
    (:meth:`~latentstudio.studies.common.Budget.stage_configs`, stage 2 getting the preset's ratio of
    stage-2 to stage-1 epochs); ``overrides`` are dotted keys applied last. Image shape fields are filled from the data by the trainer.

    Raises:
        UnknownNameError: unknown preset. ConfigError: an unknown override key.
    """
    base = get_preset("two-stage-vae", preset)
    e1, e2 = base.get("stage1", {}).get("epochs"), base.get("stage2", {}).get("epochs")
    ratio = e2 / e1 if e1 and e2 else C.STAGE2_EPOCH_FACTOR
    s1, s2 = budget.stage_configs(budget2, epoch_ratio=ratio)
    spec = merge(base, {
        "data": {"name": data.name, "options": dict(data.spec.get("options") or {}), "limit": data.spec.get("limit")},
        "stage1": s1, "stage2": s2, "seed": seed, "accelerator": accelerator,
        "gmm_components": gmm_components, "gmm_fit_on": "mean",
    })
    if overrides:
        spec = apply_overrides(spec, overrides, merge(TwoStageRunConfig().to_dict(), spec))
    return spec


def _stage_timer():
    """A Lightning callback recording the wall-clock seconds of each ``fit`` it sees (stage 1, stage 2)."""
    from lightning.pytorch.callbacks import Callback  # lazy: Lightning takes seconds to import

    class StageTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_fit_start(self, trainer, pl_module) -> None:
            self._t0 = time.perf_counter()

        def on_fit_end(self, trainer, pl_module) -> None:
            self.seconds.append(round(time.perf_counter() - self._t0, 3))

    return StageTimer()


def train_or_resume(
    study, name: str, spec: dict[str, Any], train_data, *, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume, or find finished) the two-stage VAE ``name`` of ``study`` on ``train_data``.

    Args:
        study: the :class:`~latentstudio.studies.runner.Study`.
        name: model name, e.g. ``"all"``; its runs live in ``<study>/models/<name>/``.
        spec: run-config dict from :func:`model_spec`.
        train_data: the ``ImageData`` to train on (``uint8 [N, C, H, W]``).

    Returns:
        ``{"run": run dir relative to the study, "model_dir": ..., "num_train": N, "stage_seconds":
        [s1, s2] (this session's training time; None when the model was already finished),
        "stage1_gamma", "stage2_gamma"}``.
    """
    lightning()
    root = study.dir / MODELS_DIR / name
    want = build_run_config(spec, train_data).to_dict()
    runs = sorted(p for p in root.glob("*-two-stage-vae-*") if (p / "run.json").is_file()) if root.is_dir() else []
    runs = [p for p in runs if read_run(p)[1] == want]  # runs of another config are left alone
    finished = [p for p in runs if (p / "model" / "config.json").is_file()]
    timer = _stage_timer()
    t0 = time.perf_counter()
    if finished:
        run_dir, seconds = finished[-1], None
    else:
        resume = runs[-1] if runs else None
        result = train_spec(spec, runs_root=root, resume=resume, progress=progress, data=train_data,
                            callbacks=[timer])
        run_dir = result.run_dir
        seconds = timer.seconds if len(timer.seconds) == 2 else None
    meta = json.loads((run_dir / "model" / "meta.json").read_text())
    return {
        "run": C.relative(run_dir, study.dir),
        "num_train": len(train_data),
        "train_fingerprint": train_data.fingerprint(),
        "stage_seconds": seconds,
        "total_seconds": round(time.perf_counter() - t0, 3),
        "resumed": bool(not finished and runs),
        "stage1_gamma": meta.get("stage1_gamma"),
        "stage2_gamma": meta.get("stage2_gamma"),
    }


def discard_models(study) -> None:
    """Delete ``<study>/models/`` (``--overwrite`` of a training study starts its models afresh)."""
    shutil.rmtree(study.dir / MODELS_DIR, ignore_errors=True)


def load_model(study, record: dict[str, Any], device: torch.device):
    """Load the model of a training record (the model of ``<study>/<record['run']>``, with its samplers)."""
    return load_model_with_samplers(study.dir / record["run"], map_location=str(device))


@torch.no_grad()
def decode_latents(vae, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decoder means of latents: ``z float [n, latent_dim]`` -> ``uint8 [n, C, H, W]`` (on CPU)."""
    was = vae.training
    vae.eval()
    dev = vae.loggamma.device
    out = [to_uint8(vae.decode_mean(z[i : i + batch_size].to(dev)).cpu()) for i in range(0, z.shape[0], batch_size)]
    vae.train(was)
    return torch.cat(out)


@torch.no_grad()
def reconstruct_images(vae, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decoder mean of the posterior mean: ``uint8 [N, C, H, W]`` -> ``uint8 [N, C, H, W]`` (on CPU)."""
    was = vae.training
    vae.eval()
    dev = vae.loggamma.device
    out = [to_uint8(vae.reconstruct_mean(to_float(images[i : i + batch_size]).to(dev)).cpu())
           for i in range(0, images.shape[0], batch_size)]
    vae.train(was)
    return torch.cat(out)


def sampler_fid_cell(
    study, key: str, loaded, sampler, f_ref: torch.Tensor, fx, *, n: int, seed: int, grid: str | None,
    labels: dict[str, Any],
) -> dict[str, Any]:
    """Cell ``key``: draw ``n`` latents from ``sampler`` (seeded), decode, FID against ``f_ref``.

    ``fx`` maps ``uint8`` images to features. The record holds ``fid``, ``sample_seconds`` (drawing
    the latents), ``decode_seconds`` and ``n``; the first 64 images go to ``grid`` (a PNG name in the
    study folder) when given.
    """
    def compute() -> dict[str, Any]:
        t = time.perf_counter()
        z = sampler.sample(n, torch.Generator().manual_seed(seed))
        t_sample = time.perf_counter() - t
        t = time.perf_counter()
        images = decode_latents(loaded.image_vae, z)
        t_decode = time.perf_counter() - t
        if grid:
            save_grid(images[:64], study.dir / grid, nrow=8, overwrite=True)
        return {"fid": C.fid(f_ref, fx(images)), "n": n, "sample_seconds": round(t_sample, 4),
                "decode_seconds": round(t_decode, 3), **({"grid": grid} if grid else {})}

    return study.cell(key, compute, **labels)


def check_shape(data: C.StudyData) -> None:
    """The two-stage VAE needs square images whose side is a power of two (>= 4).

    Raises:
        ConfigError: naming the shape and the fix (e.g. MNIST's default ``pad=2`` gives 32x32).
    """
    _, h, w = data.train.image_shape
    if h != w or h < 4 or h & (h - 1):
        raise ConfigError(f"dataset {data.name!r} has {h}x{w} images; the two-stage VAE needs square images with a "
                          "power-of-two side (use --data-option, e.g. pad=2 for mnist or image_size=64 for celeba)")
