"""StyleGAN2 training with Lightning: lazy R1, path-length and style-mixing regularisation, generator
EMA, periodic sample grids and FID, resumable runs, multi-process (DDP) training.

Layout of a run::

    runs/00004-stylegan2-celeba/
        run.json                 resolved config, written before the first step
        train/checkpoints/       last.ckpt (G, D, G_ema, optimisers, pl_mean, images seen) + newest epoch
        train/logs/              TensorBoard + CSV (losses, R1 / path-length penalties, scores)
        train/samples/           epoch-NNNN.png: G_ema on fixed seeds (truncation 1, const noise)
        train/metrics.jsonl      periodic fid_clf / fid of G_ema samples vs the training images
        model/                   exported model folder: G_ema (model.safetensors) + discriminator

One optimisation step (Karras et al. 2020, appendix B; phases as in the official code):
G main (every batch), G path length (every ``pl_interval`` batches), D main (every batch), D R1 (every
``r1_interval`` batches). Lazy regularisation keeps the Adam moments consistent by running the
optimiser with ``lr * k / (k + 1)`` and ``beta ** (k / (k + 1))`` for interval k. Under DDP each
process computes its phase gradients and they are averaged with one all-reduce per phase (no
DistributedDataParallel wrapper, which cannot follow several backward passes per step).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from latentstudio.config import Config, require
from latentstudio.errors import ConfigError, NonFiniteLossError
from latentstudio.evaluation.stylegan2 import (
    classifier_data,
    fid_extractor,
    generate_images,
    load_generator_images,
)
from latentstudio.io.images import make_grid, save_image
from latentstudio.metrics import BiasedMetricWarning, append_record, compute_fid, fid_key
from latentstudio.metrics.records import MetricRecord
from latentstudio.models.stylegan2 import (
    DISCRIMINATOR_FILE,
    Discriminator,
    Generator,
    StyleGAN2Config,
    load_discriminator,
    load_generator,
    save_model,
    z_from_seed,
)
from latentstudio.models.stylegan2.loss import StyleGAN2Loss
from latentstudio.models.stylegan2.networks import images_to_float, images_to_uint8
from latentstudio.training import runs
from latentstudio.training.config import DataConfig
from latentstudio.training.runs import (
    announce,
    fit_module,
    is_rank_zero,
    lightning,
    make_trainer,
    start_run,
)

KIND = "stylegan2"
GRID_SEEDS = tuple(range(64))
FID_SEED = 123


@dataclass(frozen=True)
class StyleGAN2TrainConfig(Config):
    """Optimisation of a StyleGAN2 run (defaults: the paper's FFHQ settings, scaled by presets).

    Attributes:
        batch_size: images per step and process.
        lr: Adam learning rate of G and D (0.002 in the paper, 0.0025 in stylegan2-ada).
        betas: Adam betas (0, 0.99).
        r1_gamma: R1 weight; r1_interval: lazy R1 every k batches (16).
        pl_weight: path-length weight (2; 0 = off); pl_interval: every k batches (4);
            pl_batch_shrink: batch fraction for it (2); pl_decay: running-mean decay (0.01).
        style_mixing_prob: mixing regularisation probability (0.9; 0 = off).
        ema_kimg: half-life of the generator EMA in thousands of images (10);
            ema_rampup: the half-life is at most ``ema_rampup * images seen`` (None = no ramp-up).
        mirror: random horizontal flips of the training images.
        epochs / max_steps / total_kimg: the budget in work (whichever ends first; a step is one
            batch of G and D updates); max_minutes: a wall-clock safety cap (None: none).
        grid_every_n_epochs: sample grid interval (0 = never).
        metrics_every_n_epochs: FID interval (0 = only at the end); metric_samples: images per FID.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``32-true``, ``bf16-mixed``, ``16-mixed``.
        log_every_n_steps: logging interval.
    """

    batch_size: int = 32
    lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 10.0
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    mirror: bool = False
    epochs: int = 1000
    max_steps: int | None = None
    max_minutes: float | None = None
    total_kimg: float | None = None
    grid_every_n_epochs: int = 1
    metrics_every_n_epochs: int = 0
    metric_samples: int = 1000
    precision: str = "auto"
    log_every_n_steps: int = 10

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "must be two values in [0, 1)")
        require(self.r1_gamma >= 0, "r1_gamma", "must be >= 0")
        require(self.r1_interval >= 1, "r1_interval", "must be >= 1")
        require(self.pl_weight >= 0, "pl_weight", "must be >= 0")
        require(self.pl_interval >= 1, "pl_interval", "must be >= 1")
        require(self.pl_batch_shrink >= 1, "pl_batch_shrink", "must be >= 1")
        require(0 <= self.style_mixing_prob <= 1, "style_mixing_prob", "must be in [0, 1]")
        require(self.ema_kimg >= 0, "ema_kimg", "must be >= 0")
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be > 0")
        require(self.total_kimg is None or self.total_kimg > 0, "total_kimg", "must be > 0")
        require(self.metric_samples >= 2, "metric_samples", "must be >= 2")
        require(self.precision in ("auto", "32-true", "bf16-mixed", "16-mixed"), "precision",
                "must be auto, 32-true, bf16-mixed or 16-mixed")


@dataclass(frozen=True)
class StyleGAN2RunConfig(Config):
    """Everything a StyleGAN2 run needs; written to ``run.json`` before the first step.

    Attributes:
        data: the training images (resized to ``model.resolution``).
        model: architecture. train: optimisation.
        seed: initial weights, shuffling and all noise derive from it.
        devices: processes (DDP when > 1); accelerator: ``cpu``, ``gpu`` or ``auto``.
        extractor: features of the periodic FID: ``classifier`` (fid_clf) or ``inception`` (fid).
        classifier_label: for datasets without class labels (CelebA), the binary attribute the
            fid_clf classifier is trained on (e.g. ``Male``); None = the dataset's labels.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(name="celeba"))
    model: StyleGAN2Config = field(default_factory=StyleGAN2Config)
    train: StyleGAN2TrainConfig = field(default_factory=StyleGAN2TrainConfig)
    seed: int = 0
    devices: int = 1
    accelerator: str = "cpu"
    extractor: str = "classifier"
    classifier_label: str | None = None

    def __post_init__(self) -> None:
        require(self.devices >= 1, "devices", f"must be >= 1, got {self.devices}")
        require(self.extractor in ("classifier", "inception"), "extractor", "must be classifier or inception")


@dataclass
class TrainResult:
    """Where a finished run put its outputs."""

    run_dir: Path
    model_dir: Path
    generator: Generator


# --------------------------------------------------------------------------------------------------
# data and metrics helpers


def load_training_images(run: StyleGAN2RunConfig, split: str = "train"):
    """The run's dataset split, resized to the model resolution (``image_size`` option when the loader
    has one). Returns :class:`~latentstudio.data.ImageData`.

    Raises:
        DataError: missing data, or images whose size/channels differ from the model's.
    """
    return load_generator_images(run.data, run.model, split)


def build_fid_extractor(run: StyleGAN2RunConfig, data, progress: bool = False):
    """The feature extractor of the run's FID: the project classifier (fid_clf) or Inception (fid)."""
    return fid_extractor(run.extractor, data, run.classifier_label, progress=progress)


# --------------------------------------------------------------------------------------------------
# Lightning module


def _lit_module_class():
    L = lightning()
    from latentstudio.training.lit_module import step_seed  # lazy: imports Lightning

    class _StyleGAN2Module(L.LightningModule):
        """G, D and the EMA generator trained with the four StyleGAN2 phases (manual optimisation).

        Batches are ``(images uint8 [N, C, R, R],)``. Buffers ``cur_nimg`` (images seen, all
        processes) and ``batches_done`` are part of the checkpoint, so resumed runs continue the EMA
        ramp-up and the noise streams exactly.
        """

        def __init__(self, run: StyleGAN2RunConfig) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.run_cfg = run
            t = run.train
            self.G = Generator(run.model)
            self.D = Discriminator(run.model)
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
            self.loss = StyleGAN2Loss(self.G, self.D, r1_gamma=t.r1_gamma, pl_weight=t.pl_weight,
                                      pl_batch_shrink=t.pl_batch_shrink, pl_decay=t.pl_decay,
                                      style_mixing_prob=t.style_mixing_prob)
            self.register_buffer("cur_nimg", torch.zeros([], dtype=torch.int64))
            self.register_buffer("batches_done", torch.zeros([], dtype=torch.int64))

        # -------------------------------------------------------------- optimisers
        def configure_optimizers(self):
            t = self.run_cfg.train
            opts = []
            for net, interval in ((self.G, t.pl_interval if t.pl_weight > 0 else 0),
                                  (self.D, t.r1_interval if t.r1_gamma > 0 else 0)):
                ratio = interval / (interval + 1) if interval else 1.0
                betas = (float(t.betas[0]) ** ratio, float(t.betas[1]) ** ratio)
                opts.append(torch.optim.Adam(net.parameters(), lr=t.lr * ratio, betas=betas, eps=1e-8))
            return opts

        def on_fit_start(self) -> None:
            if self.trainer.world_size > 1:  # same weights everywhere (no DDP wrapper does it for us)

                for tensor in list(self.parameters()) + list(self.buffers()):
                    dist.broadcast(tensor.data, src=0)

        # -------------------------------------------------------------- helpers
        def _generator(self, phase: int) -> torch.Generator:
            g = torch.Generator(device=self.device)
            g.manual_seed(step_seed(self.run_cfg.seed * 8 + phase, self.global_rank, int(self.batches_done)))
            return g

        def _step(self, opt, net: torch.nn.Module, out, name: str) -> None:
            if not torch.isfinite(out.loss):
                raise NonFiniteLossError(
                    f"non-finite {name} loss {out.loss.item()} after {int(self.cur_nimg)} images "
                    f"(terms: { {k: float(v) for k, v in out.terms.items()} }); the last good checkpoint is kept. "
                    "Lower the learning rate (--set train.lr=...) or raise r1_gamma."
                )
            opt.zero_grad(set_to_none=True)
            self.manual_backward(out.loss)
            params = [p for p in net.parameters() if p.grad is not None]
            if self.trainer.world_size > 1 and params:
                flat = torch.cat([p.grad.flatten() for p in params])
                dist.all_reduce(flat)
                flat /= self.trainer.world_size
                torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
                offset = 0
                for p in params:
                    p.grad.copy_(flat[offset: offset + p.numel()].view_as(p.grad))
                    offset += p.numel()
            else:
                for p in params:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()

        # -------------------------------------------------------------- training
        def training_step(self, batch, batch_idx: int) -> None:
            t = self.run_cfg.train
            (images,) = batch
            n = images.shape[0]
            step = int(self.batches_done)
            opt_g, opt_d = self.optimizers()
            g_aug = self._generator(0)
            real = images_to_float(images)
            if t.mirror:
                flip = torch.rand(n, device=real.device, generator=g_aug) < 0.5
                real = torch.where(flip[:, None, None, None], real.flip(3), real)
            terms: dict[str, torch.Tensor] = {}

            # G main
            self.D.requires_grad_(False)
            self.G.requires_grad_(True)
            g = self._generator(1)
            out = self.loss.g_main(torch.randn(n, self.G.z_dim, device=self.device, generator=g), g)
            self._step(opt_g, self.G, out, "G")
            terms.update(out.terms)
            # G path length (lazy)
            if t.pl_weight > 0 and step % t.pl_interval == 0:
                g = self._generator(2)
                with torch.autocast(self.device.type, enabled=False):
                    out = self.loss.g_pl(torch.randn(n, self.G.z_dim, device=self.device, generator=g),
                                         t.pl_interval, g)
                self._step(opt_g, self.G, out, "path-length")
                terms.update(out.terms)
            # D main
            self.G.requires_grad_(False)
            self.D.requires_grad_(True)
            g = self._generator(3)
            out = self.loss.d_main(real, torch.randn(n, self.G.z_dim, device=self.device, generator=g), g)
            self._step(opt_d, self.D, out, "D")
            terms.update(out.terms)
            # D R1 (lazy)
            if t.r1_gamma > 0 and step % t.r1_interval == 0:
                with torch.autocast(self.device.type, enabled=False):
                    out = self.loss.d_r1(real, t.r1_interval)
                self._step(opt_d, self.D, out, "R1")
                terms.update(out.terms)
            self.G.requires_grad_(True)

            # bookkeeping + EMA
            world = self.trainer.world_size
            self.cur_nimg += n * world
            self.batches_done += 1
            self._update_ema(n * world)
            self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True, on_epoch=False, batch_size=n)
            self.log("train/kimg", self.cur_nimg.float() / 1000, on_step=True, on_epoch=False, batch_size=n)
            bar = {k: terms[k] for k in ("loss_g", "loss_d") if k in terms}
            self.log_dict(bar, prog_bar=True, on_step=True, on_epoch=False, batch_size=n, logger=False)
            if t.total_kimg is not None and int(self.cur_nimg) >= t.total_kimg * 1000:
                self.trainer.should_stop = True
            if t.max_steps is not None and int(self.batches_done) >= t.max_steps:
                self.trainer.should_stop = True

        @torch.no_grad()
        def _update_ema(self, batch_images: int) -> None:
            t = self.run_cfg.train
            ema_nimg = t.ema_kimg * 1000
            if t.ema_rampup is not None:
                ema_nimg = min(ema_nimg, float(self.cur_nimg) * t.ema_rampup)
            beta = 0.5 ** (batch_images / max(ema_nimg, 1e-8))
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b)

    return _StyleGAN2Module


def _no_wrap_ddp_strategy():
    """Lightning's DDP strategy without the DistributedDataParallel wrapper (gradients are averaged by the
    module, one all-reduce per phase)."""
    from lightning.pytorch.strategies import DDPStrategy  # lazy: Lightning takes seconds to import

    class _AllReduceDDP(DDPStrategy):
        def configure_ddp(self) -> None:  # keep the LightningModule unwrapped
            pass

    return _AllReduceDDP()


def _callbacks(run: StyleGAN2RunConfig, train_dir: Path, data, progress: bool):
    L = lightning()

    t = run.train

    grid_z = torch.cat([z_from_seed(s, run.model.z_dim) for s in GRID_SEEDS])

    class SamplesAndMetrics(L.Callback):
        """Sample grid of G_ema on fixed seeds every ``grid_every_n_epochs``; FID of G_ema every
        ``metrics_every_n_epochs`` and at the end of training (rank 0)."""

        def __init__(self) -> None:
            self.extractor = None
            self.last_epoch_with_fid = -1

        def _grid(self, trainer, module) -> None:
            with torch.no_grad():
                img = module.G_ema(grid_z.to(module.device), noise_mode="const")
            grid = make_grid(images_to_uint8(img).cpu(), nrow=8)
            save_image(grid, train_dir / "samples" / f"epoch-{trainer.current_epoch + 1:04d}.png", overwrite=True)
            for logger in trainer.loggers:
                exp = getattr(logger, "experiment", None)
                if hasattr(exp, "add_image"):
                    exp.add_image("samples", grid, global_step=trainer.global_step)

        def _fid(self, trainer, module) -> None:
            if self.extractor is None:
                self.extractor = build_fid_extractor(run, data, progress=progress)
            n = min(t.metric_samples, len(data))
            real = data.images[torch.randperm(len(data), generator=torch.Generator().manual_seed(FID_SEED))[:n]]
            fake = generate_images(module.G_ema, n, seed=FID_SEED)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BiasedMetricWarning)
                value = compute_fid(real, fake, self.extractor)
            key = fid_key(self.extractor)
            rec = MetricRecord.from_extractor(key, value, self.extractor, source="G_ema psi=1",
                                              num_real=n, num_generated=n, reference=f"{data.name}/train",
                                              extra={"kimg": float(module.cur_nimg) / 1000,
                                                     "epoch": trainer.current_epoch + 1})
            append_record(train_dir / "metrics.jsonl", rec)
            module.log(f"metrics/{key}", value, on_epoch=True, on_step=False, rank_zero_only=True)
            self.last_epoch_with_fid = trainer.current_epoch

        def on_train_epoch_end(self, trainer, module) -> None:
            if not trainer.is_global_zero:
                return
            e = trainer.current_epoch + 1
            if t.grid_every_n_epochs > 0 and e % t.grid_every_n_epochs == 0:
                self._grid(trainer, module)
            if t.metrics_every_n_epochs > 0 and e % t.metrics_every_n_epochs == 0:
                self._fid(trainer, module)

        def on_train_end(self, trainer, module) -> None:
            if trainer.is_global_zero and self.last_epoch_with_fid != trainer.current_epoch:
                self._grid(trainer, module)

    return [SamplesAndMetrics()]


def _trainer(train_dir: Path, run: StyleGAN2RunConfig, callbacks, progress: bool):
    """A trainer laid out like :func:`latentstudio.training.runs.make_trainer`; with several devices it uses
    the all-reduce DDP strategy above instead of the DistributedDataParallel wrapper."""
    t = run.train
    precision = t.precision
    if precision == "auto":
        precision = "bf16-mixed" if run.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() \
            and torch.cuda.is_bf16_supported() else "32-true"
    bounds = [t.max_steps] if t.max_steps else []
    if t.total_kimg is not None:
        bounds.append(math.ceil(t.total_kimg * 1000 / (t.batch_size * run.devices)))
    trainer = make_trainer(train_dir, epochs=t.epochs, max_minutes=t.max_minutes, accelerator=run.accelerator,
                           devices=1, callbacks=callbacks, progress=progress, log_every_n_steps=t.log_every_n_steps,
                           precision=precision, label="StyleGAN2", total_steps=min(bounds) if bounds else None)
    if run.devices == 1:
        return trainer
    L = lightning()
    return L.Trainer(
        default_root_dir=train_dir, max_epochs=t.epochs,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        accelerator=run.accelerator, devices=run.devices, strategy=_no_wrap_ddp_strategy(),
        use_distributed_sampler=False, logger=trainer.loggers, callbacks=trainer.callbacks,
        log_every_n_steps=t.log_every_n_steps, precision=precision, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0,
    )


def read_run_config(run_dir: str | Path, caps_from: dict | None = None) -> StyleGAN2RunConfig:
    """The :class:`StyleGAN2RunConfig` saved in ``run_dir/run.json`` (``max_minutes`` caps from ``caps_from``)."""
    return runs.read_run_config(run_dir, KIND, StyleGAN2RunConfig, caps_from)


def train_stylegan2(
    run: StyleGAN2RunConfig,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    data=None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train StyleGAN2 on ``run.data`` and export G_ema (+ D) to ``<run>/model``.

    Args:
        run: the resolved configuration (written to ``run.json`` before the first step).
        runs_root: parent of the numbered run directory.
        resume: an interrupted run directory to continue (same config); continues from ``last.ckpt``.
        progress: show progress bars.
        callbacks: extra Lightning callbacks.
        data: already loaded :class:`~latentstudio.data.ImageData` (else loaded from ``run.data``).
        init_from: a StyleGAN2 model folder whose G (and D, when present) initialise the networks
            (fine-tuning converted official weights); its config must equal ``run.model``.

    Returns:
        :class:`TrainResult`.

    Raises:
        DataError: dataset problems; NonFiniteLossError: NaN/inf losses; LatentStudioError: bad resume.
    """
    if data is None:
        data = load_training_images(run)
    run_dir = start_run(KIND, run.to_dict(), runs_root=runs_root, resume=resume, dataset=data.name,
                        devices=run.devices)
    announce("setting up training (PyTorch Lightning) ...")
    from latentstudio.training.lit_module import TensorDataModule  # lazy: imports Lightning

    L = lightning()
    # G_ema is kept in eval mode on purpose
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    train_dir = run_dir / "train"
    L.seed_everything(run.seed, workers=True, verbose=False)
    module = _lit_module_class()(run)
    if init_from is not None:
        _init_from(module, init_from, run.model)
    cbs = [*_callbacks(run, train_dir, data, progress), *(callbacks or [])]
    trainer = _trainer(train_dir, run, cbs, progress)
    dm = TensorDataModule((data.images,), run.train.batch_size, run.seed)
    t0 = time.perf_counter()
    fit_module(module, dm, train_dir, trainer=trainer)
    G = module.G_ema.cpu().eval()
    model_dir = run_dir / "model"
    if is_rank_zero():
        meta = {
            "seed": run.seed,
            "dataset": {"name": data.name, "split": data.split, "size": len(data), "fingerprint": data.fingerprint(),
                        "source": data.source},
            "data": run.data.to_dict(),
            "run_dir": str(run_dir),
            "kimg": float(module.cur_nimg) / 1000,
            "train_seconds_this_session": round(time.perf_counter() - t0, 1),
            "generator": "G_ema",
        }
        save_model(model_dir, G, module.D.cpu().eval(), meta=meta)
    return TrainResult(run_dir=run_dir, model_dir=model_dir, generator=G)


def _init_from(module, folder: str | Path, config: StyleGAN2Config) -> None:
    G = load_generator(folder)
    if G.config != config:
        raise ConfigError(f"--init {folder}: its config differs from the run's model config; "
                          f"use --preset/--set to match {G.config.to_dict()}")
    module.G.load_state_dict(G.state_dict())
    module.G_ema.load_state_dict(G.state_dict())
    if (Path(folder) / DISCRIMINATOR_FILE).is_file():
        module.D.load_state_dict(load_discriminator(folder).state_dict())


def resolve_run_config(spec: dict[str, Any]) -> StyleGAN2RunConfig:
    """Build a :class:`StyleGAN2RunConfig` from a (partial) nested dict."""
    return StyleGAN2RunConfig.from_dict(spec, source="stylegan2 run config")


def train_spec(
    spec: dict[str, Any] | None = None,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    callbacks: list | None = None,
    data=None,
    init_from: str | Path | None = None,
):
    """Train StyleGAN2 from a run-config dict (:func:`resolve_run_config`); with ``resume`` the run's own
    config is used; ``dry_run`` returns the resolved config without training."""
    run = read_run_config(resume, spec) if resume is not None else resolve_run_config(dict(spec or {}))
    if dry_run:
        return run
    return train_stylegan2(run, runs_root=runs_root, resume=resume, progress=progress, callbacks=callbacks,
                           data=data, init_from=init_from)


__all__ = [
    "StyleGAN2RunConfig",
    "StyleGAN2TrainConfig",
    "TrainResult",
    "build_fid_extractor",
    "classifier_data",
    "generate_images",
    "load_training_images",
    "read_run_config",
    "resolve_run_config",
    "train_spec",
    "train_stylegan2",
]

