"""Two-stage VAE training with Lightning: run directory, both stages, samplers, export.

Layout of a run::

    runs/00003-two-stage-vae-digits/
        run.json                 resolved config, written before the first step
        stage1/ stage2/          checkpoints/last.ckpt (resumable state), logs/ (TensorBoard + CSV),
                                 samples/ and recon/ grids per epoch
        model/                   exported model directory (config.json, model.safetensors,
                                 meta.json, samplers.json, samplers.safetensors)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import DataError
from latentstudio.io.images import to_float
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.two_stage import SecondStageConfig, SecondStageVAE, TwoStageVAE
from latentstudio.presets import merge
from latentstudio.samplers import GMMSampler
from latentstudio.training import runs
from latentstudio.training.config import DataConfig, TrainConfig, TwoStageRunConfig
from latentstudio.training.runs import fit_module, is_rank_zero, lightning, start_run

GRID_SEED = 1234
GRID_N = 64


@dataclass
class TrainResult:
    """Where a finished run put its outputs."""

    run_dir: Path
    model_dir: Path
    model: TwoStageVAE
    samplers: dict[str, Any]


def _fit_stage(module, datamodule, stage_dir: Path, cfg: TrainConfig, run: TwoStageRunConfig, callbacks, progress):
    return fit_module(module, datamodule, stage_dir, epochs=cfg.epochs, max_minutes=cfg.max_minutes,
                      accelerator=run.accelerator, devices=run.devices, callbacks=callbacks, progress=progress,
                      log_every_n_steps=cfg.log_every_n_steps, grad_clip=cfg.grad_clip)


def read_run_config(run_dir: str | Path) -> TwoStageRunConfig:
    """The :class:`TwoStageRunConfig` saved in ``run_dir/run.json``."""
    return runs.read_run_config(run_dir, "two-stage-vae", TwoStageRunConfig)


def train_two_stage(
    run: TwoStageRunConfig,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    data=None,
) -> TrainResult:
    """Train stage 1 on images, stage 2 on stage 1's latents, fit the GMM, export the model.

    Args:
        run: the resolved configuration (written to ``run.json`` before the first step).
        runs_root: parent of the numbered run directory.
        resume: an interrupted run directory to continue (same config required); finished
            epochs are not repeated and the result equals an uninterrupted run.
        progress: show Lightning's progress bars.
        callbacks: extra Lightning callbacks for both stages.
        data: an already loaded training :class:`~latentstudio.data.ImageData` (else loaded from
            ``run.data``).

    Returns:
        :class:`TrainResult` (the exported ``model/`` directory holds weights and fitted samplers).

    Raises:
        DataError: dataset problems; NonFiniteLossError: NaN loss; LatentStudioError: bad resume.
    """
    from latentstudio.training.callbacks import ImageGridCallback  # lazy: imports Lightning
    from latentstudio.training.lit_module import (  # lazy: imports Lightning
        GenerativeLitModule,
        TensorDataModule,
    )

    L = lightning()
    if data is None:
        data = run.data.load("train")
    _check_data_matches(run, data)
    run_dir = start_run("two-stage-vae", run.to_dict(), runs_root=runs_root, resume=resume, dataset=data.name,
                        devices=run.devices)
    callbacks = list(callbacks or [])
    m1 = run.model.stage1
    cond = data.conditions(m1.condition) if m1.condition != "none" else torch.zeros(len(data), 0)

    L.seed_everything(run.seed, workers=True, verbose=False)
    model = TwoStageVAE(run.model)

    # ---------------- stage 1: images
    grid_g = torch.Generator().manual_seed(GRID_SEED)
    grid_z = torch.randn(GRID_N, m1.latent_dim, generator=grid_g)
    grid_idx = torch.randperm(len(data), generator=grid_g)[:32]
    grid_c = _grid_conditions(run, data, cond)

    def stage1_samples(module):
        dev = module.device
        return module.model.decode_mean(grid_z.to(dev), None if grid_c is None else grid_c.to(dev))

    def stage1_recon(module):
        dev = module.device
        x = to_float(data.images[grid_idx]).to(dev)
        c = cond[grid_idx].to(dev) if cond.shape[1] else None
        r = module.model.reconstruct_mean(x, c)
        return torch.stack([x.view(4, 8, *x.shape[1:]), r.view(4, 8, *x.shape[1:])], 1).flatten(0, 2)

    s1 = run.stage1
    lit1 = GenerativeLitModule(model.stage1, s1, run.seed, inputs="images")
    dm1 = TensorDataModule((data.images, cond), s1.batch_size, run.seed)
    grids1 = ImageGridCallback(run_dir / "stage1", stage1_samples, stage1_recon, every=s1.grid_every_n_epochs)
    _fit_stage(lit1, dm1, run_dir / "stage1", s1, run, [grids1, *callbacks], progress)

    # ---------------- stage 2: latents of the frozen stage 1
    model.stage1.requires_grad_(False)
    posterior = model.stage1.encode(data.images, condition=cond if cond.shape[1] else None)
    s2 = run.stage2
    grid_u = torch.randn(GRID_N, m1.latent_dim, generator=torch.Generator().manual_seed(GRID_SEED + 1))

    def stage2_samples(module):
        dev = module.device
        c = None if grid_c is None else grid_c.to(dev)
        return model.stage1.to(dev).decode_mean(module.model.decode(grid_u.to(dev), c), c)

    lit2 = GenerativeLitModule(model.stage2, s2, run.seed + 1, inputs="posterior")
    dm2 = TensorDataModule((posterior.mean, posterior.logvar, cond), s2.batch_size, run.seed + 1)
    grids2 = ImageGridCallback(run_dir / "stage2", stage2_samples, None, every=s2.grid_every_n_epochs)
    _fit_stage(lit2, dm2, run_dir / "stage2", s2, run, [grids2, *callbacks], progress)
    model.requires_grad_(True)
    model = model.cpu().eval()

    # ---------------- samplers + export (rank 0 only)
    # N(0, I) and the second stage are the model's own samplers; the GMM is fitted and stored beside it
    samplers: dict[str, Any] = {
        "gmm": GMMSampler(m1.latent_dim, n_components=run.gmm_components, fit_on=run.gmm_fit_on, seed=run.seed,
                          num_classes=m1.cond_dim if m1.condition == "class" else 0),
    }
    # class-conditional models get one mixture per class, so a GMM latent matches its requested class
    labels = data.labels if m1.condition == "class" else None
    samplers["gmm"].fit(posterior, generator=torch.Generator().manual_seed(run.seed), labels=labels)
    model_dir = run_dir / "model"
    if is_rank_zero():
        meta = {
            "seed": run.seed,
            "dataset": {"name": data.name, "split": data.split, "size": len(data), "fingerprint": data.fingerprint(),
                        "source": data.source},
            "data": run.data.to_dict(),
            "run_dir": str(run_dir),
            "stage1_gamma": float(model.stage1.gamma.detach()),
            "stage2_gamma": float(model.stage2.gamma.detach()),
        }
        model.save_pretrained(model_dir, meta=meta, samplers=samplers)
    model.samplers = dict(samplers)
    return TrainResult(run_dir=run_dir, model_dir=model_dir, model=model, samplers=samplers)


def _check_data_matches(run: TwoStageRunConfig, data) -> None:
    m1 = run.model.stage1
    c, h, w = data.image_shape
    if (c, h, w) != (m1.image_channels, m1.image_size, m1.image_size):
        raise DataError(
            f"dataset {data.name!r} has images [{c}, {h}, {w}] but the model expects "
            f"[{m1.image_channels}, {m1.image_size}, {m1.image_size}]; set model image_channels/image_size "
            "to match (the CLI does this automatically)"
        )
    if m1.condition != "none":
        dim = data.conditions(m1.condition).shape[1]
        if dim != m1.cond_dim:
            raise DataError(f"dataset {data.name!r} gives {m1.condition} vectors of size {dim}, model cond_dim={m1.cond_dim}")


def _grid_conditions(run: TwoStageRunConfig, data, cond: torch.Tensor) -> torch.Tensor | None:
    """Conditions of the fixed sample grid: each row one class (class models) or real attribute rows."""
    m1 = run.model.stage1
    if m1.condition == "none":
        return None
    if m1.condition == "class":
        return torch.nn.functional.one_hot(torch.arange(GRID_N) % m1.cond_dim, m1.cond_dim).float()
    return cond[torch.arange(GRID_N) % cond.shape[0]]


def fit_second_stage(
    posterior: DiagonalGaussian,
    stage2: SecondStageVAE | None = None,
    *,
    train: TrainConfig | None = None,
    cond: torch.Tensor | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> SecondStageVAE:
    """Train a second-stage VAE on a fixed posterior (z resampled every epoch); returns it.

    ``train_two_stage`` does the same inside a run; studies use this to fit a second stage to the
    latents of any first stage.
    """
    from latentstudio.training.lit_module import (  # lazy: imports Lightning
        GenerativeLitModule,
        TensorDataModule,
    )

    train = train or TrainConfig(epochs=10)
    d = posterior.mean.shape[1]
    if stage2 is None:
        torch.manual_seed(seed)
        kw = {"condition": "class", "cond_dim": cond.shape[1]} if cond is not None else {}
        stage2 = SecondStageVAE(SecondStageConfig(latent_dim=d, **kw))
    c = cond if cond is not None else torch.zeros(posterior.mean.shape[0], 0)
    module = GenerativeLitModule(stage2, train, seed, inputs="posterior")
    dm = TensorDataModule((posterior.mean, posterior.logvar, c), train.batch_size, seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out_dir) if out_dir else Path(tmp)
        _fit_stage(module, dm, folder, train, TwoStageRunConfig(), [], progress)
    return stage2.eval()


def build_run_config(spec: dict[str, Any], data) -> TwoStageRunConfig:
    """Complete a (partial) run-config dict with the dataset's shapes and return the frozen config.

    ``image_channels``, ``image_size`` and ``cond_dim`` always come from ``data``; ``num_scale``
    defaults to log2(image_size) - 2 (3 for 32x32, 4 for 64x64) unless given.

    Raises:
        ConfigError: unknown or invalid fields (named).
    """
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


def train_spec(
    spec: dict[str, Any] | None = None,
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
        :class:`TrainResult`, or the resolved :class:`TwoStageRunConfig` under ``dry_run``.
    """
    if resume is not None:
        run = read_run_config(resume)
        d = run.data
    else:
        d = DataConfig.from_dict((spec or {}).get("data", {}), source="data")
    if dry_run and resume is not None:
        return run
    if data is None:
        data = d.load("train")
    if resume is None:
        run = build_run_config(spec or {}, data)
    if dry_run:
        return run
    return train_two_stage(run, runs_root=runs_root, resume=resume, progress=progress, data=data, callbacks=callbacks)
