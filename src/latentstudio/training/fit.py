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

from latentstudio.errors import DataError, LatentStudioError
from latentstudio.io.images import to_float
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.two_stage import SecondStageConfig, SecondStageVAE, TwoStageVAE
from latentstudio.presets import merge
from latentstudio.samplers import GMMSampler
from latentstudio.training import runs
from latentstudio.training.config import DataConfig, TrainConfig, TwoStageRunConfig
from latentstudio.training.runs import Deadline, announce, fit_module, is_rank_zero, lightning, start_run

GRID_SEED = 1234
GRID_N = 64


@dataclass
class TrainResult:
    """Where a finished run put its outputs."""

    run_dir: Path
    model_dir: Path
    model: TwoStageVAE
    samplers: dict[str, Any]


#: Share of a run's ``max_minutes`` cap that stage 1 may use; encoding, stage 2 and the GMM get the rest.
STAGE1_SHARE = 0.75
#: Images per batch when the training set is encoded for stage 2.
ENCODE_BATCH = 1024


class BudgetExceededError(LatentStudioError):
    """A run reached its ``--max-minutes`` cap before it could export a model (checkpoints kept)."""


def _fit_stage(module, datamodule, stage_dir: Path, cfg: TrainConfig, run: TwoStageRunConfig, callbacks, progress,
               *, max_minutes: float | None = None, label: str = "training"):
    return fit_module(module, datamodule, stage_dir, epochs=cfg.epochs, max_steps=cfg.max_steps or -1,
                      max_minutes=cfg.max_minutes if max_minutes is None else max_minutes,
                      accelerator=run.accelerator, devices=run.devices, callbacks=callbacks, progress=progress,
                      log_every_n_steps=cfg.log_every_n_steps, grad_clip=cfg.grad_clip, label=label)


def _stopped_by_cap(trainer, cfg: TrainConfig) -> bool:
    """True when a fit ended before its work budget (epochs / max_steps), i.e. at the time cap."""
    planned = cfg.epochs * int(trainer.num_training_batches)
    if cfg.max_steps:
        planned = min(planned, cfg.max_steps)
    return int(trainer.global_step) < planned


def encode_training_set(stage1, images: torch.Tensor, cond: torch.Tensor, *, deadline: Deadline,
                        progress: bool, run_dir: Path) -> DiagonalGaussian:
    """q(z | x) of every training image ``uint8 [N, C, H, W]`` in batches of ``ENCODE_BATCH``, with a
    progress bar; stops with :class:`BudgetExceededError` once ``deadline`` has passed."""
    from tqdm.auto import tqdm  # lazy: only when a run starts

    means, logvars = [], []
    n = images.shape[0]
    with tqdm(total=n, desc=f"encoding the {n} training images for stage 2", unit="img", disable=not progress,
              leave=False) as bar:
        for i in range(0, n, ENCODE_BATCH):
            c = cond[i : i + ENCODE_BATCH] if cond.shape[1] else None
            q = stage1.encode(images[i : i + ENCODE_BATCH], condition=c)
            means.append(q.mean)
            logvars.append(q.logvar)
            bar.update(q.mean.shape[0])
            if deadline.passed() and i + ENCODE_BATCH < n:
                raise BudgetExceededError(
                    f"the --max-minutes cap ({deadline.minutes:g} min) was reached while encoding the training set "
                    f"for stage 2; stage 1 is saved in {run_dir / 'stage1'}: continue with `latentstudio train "
                    f"two-stage-vae --resume {run_dir} --max-minutes M` and a larger M")
    return DiagonalGaussian(torch.cat(means), torch.cat(logvars))


def read_run_config(run_dir: str | Path, caps_from: dict[str, Any] | None = None) -> TwoStageRunConfig:
    """The :class:`TwoStageRunConfig` saved in ``run_dir/run.json`` (``max_minutes`` caps from ``caps_from``)."""
    return runs.read_run_config(run_dir, "two-stage-vae", TwoStageRunConfig, caps_from)


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
        resume: an interrupted run directory to continue (same config required, except the
            ``max_minutes`` caps); finished epochs are not repeated and the result equals an
            uninterrupted run.
        progress: show progress bars (training, encoding, GMM fitting).
        callbacks: extra Lightning callbacks for both stages.
        data: an already loaded training :class:`~latentstudio.data.ImageData` (else loaded from
            ``run.data``).

    Budget: each stage trains ``epochs`` (and at most ``max_steps``); ``run.max_minutes`` is a
    wall-clock safety cap on the whole run: stage 1 stops at ``STAGE1_SHARE`` of it, stage 2 and the
    GMM's EM iterations at the cap, all at step granularity; the encoding between the stages stops
    with :class:`BudgetExceededError` (stage 1 kept, resumable) if the cap passes there. What stopped
    early is recorded in ``meta.json`` (``stopped_by_cap``) and printed.

    Returns:
        :class:`TrainResult` (the exported ``model/`` directory holds weights and fitted samplers).

    Raises:
        DataError: dataset problems; NonFiniteLossError: NaN loss; LatentStudioError: bad resume;
        BudgetExceededError: the cap passed while encoding.
    """
    deadline = Deadline(run.max_minutes)
    if data is None:
        data = run.data.load("train")
    _check_data_matches(run, data)
    run_dir = start_run("two-stage-vae", run.to_dict(), runs_root=runs_root, resume=resume, dataset=data.name,
                        devices=run.devices)
    from latentstudio.training.callbacks import ImageGridCallback  # lazy: imports Lightning
    from latentstudio.training.lit_module import (  # lazy: imports Lightning
        GenerativeLitModule,
        TensorDataModule,
    )

    announce("setting up training (PyTorch Lightning) ...")
    L = lightning()
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
    trainer1 = _fit_stage(lit1, dm1, run_dir / "stage1", s1, run, [grids1, *callbacks], progress,
                          max_minutes=deadline.cap_for(STAGE1_SHARE, s1.max_minutes), label="stage 1")
    stopped = {"stage 1": _stopped_by_cap(trainer1, s1)}

    # ---------------- stage 2: latents of the frozen stage 1
    model.stage1.requires_grad_(False)
    posterior = encode_training_set(model.stage1, data.images, cond, deadline=deadline, progress=progress,
                                    run_dir=run_dir)
    s2 = run.stage2
    grid_u = torch.randn(GRID_N, m1.latent_dim, generator=torch.Generator().manual_seed(GRID_SEED + 1))

    def stage2_samples(module):
        dev = module.device
        c = None if grid_c is None else grid_c.to(dev)
        return model.stage1.to(dev).decode_mean(module.model.decode(grid_u.to(dev), c), c)

    lit2 = GenerativeLitModule(model.stage2, s2, run.seed + 1, inputs="posterior")
    dm2 = TensorDataModule((posterior.mean, posterior.logvar, cond), s2.batch_size, run.seed + 1)
    grids2 = ImageGridCallback(run_dir / "stage2", stage2_samples, None, every=s2.grid_every_n_epochs)
    trainer2 = _fit_stage(lit2, dm2, run_dir / "stage2", s2, run, [grids2, *callbacks], progress,
                          max_minutes=deadline.cap_for(1.0, s2.max_minutes), label="stage 2")
    stopped["stage 2"] = _stopped_by_cap(trainer2, s2)
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
    samplers["gmm"].fit(posterior, generator=torch.Generator().manual_seed(run.seed), labels=labels,
                        progress=progress, should_stop=deadline.passed)
    stopped["GMM (EM iterations)"] = samplers["gmm"].stopped_early
    early = [what for what, cut in stopped.items() if cut]
    if early:
        announce(f"warning: the --max-minutes cap ended {', '.join(early)} before the planned work was done "
                 "(recorded in model/meta.json, stopped_by_cap)")
    model_dir = run_dir / "model"
    if is_rank_zero():
        announce(f"exporting the model to {model_dir}")
        meta = {
            "seed": run.seed,
            "dataset": {"name": data.name, "split": data.split, "size": len(data), "fingerprint": data.fingerprint(),
                        "source": data.source},
            "data": run.data.to_dict(),
            "run_dir": str(run_dir),
            "stage1_gamma": float(model.stage1.gamma.detach()),
            "stage2_gamma": float(model.stage2.gamma.detach()),
            "stopped_by_cap": stopped,
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

    With ``resume`` the run's own ``run.json`` is used (only ``spec``'s ``max_minutes`` caps apply). With ``dry_run``
    the resolved config is returned and nothing is trained or written.

    Returns:
        :class:`TrainResult`, or the resolved :class:`TwoStageRunConfig` under ``dry_run``.
    """
    if resume is not None:
        run = read_run_config(resume, spec)
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
