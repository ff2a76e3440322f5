"""DRAW runs: configuration and presets, training with Lightning, and export.

Layout of a run::

    runs/00001-draw-mnist/
        run.json                  resolved config, written before the first step
        train/                    checkpoints/last.ckpt (resumable state), logs/ (TensorBoard + CSV),
                                  samples/ and recon/ grids per epoch
        model/                    exported model directory (config.json, model.safetensors, meta.json)
        samples-steps.png         16 samples of the final model, one column per step
        canvas.gif                the same 16 samples being drawn (attention: write boxes in green)
        eval/NNNNN-<data>-<extractor>/   report.md, metrics.jsonl and pictures (``latentstudio.evaluation.evaluate``)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentstudio.config import Config, require
from latentstudio.data.images import binarize_images
from latentstudio.errors import DataError
from latentstudio.evaluation.common import interleave_rows
from latentstudio.io.images import to_float
from latentstudio.models.draw import DRAW, DRAWConfig
from latentstudio.models.draw.render import generation_frames, save_drawing
from latentstudio.presets import merge
from latentstudio.training.config import DataConfig, TrainConfig
from latentstudio.training.runs import (
    announce,
    fit_module,
    is_rank_zero,
    lightning,
    read_run_config,
    start_run,
)

KIND = "draw"
GRID_SEED = 1234
GRID_N = 64
DRAWING_N = 16
BINARIZE = ("none", "threshold")


@dataclass(frozen=True)
class DRAWRunConfig(Config):
    """Everything a DRAW run needs; written to ``run.json`` before the first step.

    Attributes:
        data: dataset.
        model: the DRAW architecture (image shape and cond_dim are filled from the data).
        train: optimisation (epochs, batch size, lr, max_minutes, grad_clip, grid interval).
        binarize: ``"none"`` (grey levels as Bernoulli targets) or ``"threshold"`` (pixels > 0.5 become 1,
            once, before training: the fixed binarisation under which the NLL is reported).
        seed: initial weights, shuffling and noise all derive from it.
        devices: processes (DDP when > 1).
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: DRAWConfig = field(default_factory=DRAWConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    binarize: str = "none"
    seed: int = 0
    devices: int = 1
    accelerator: str = "cpu"

    def __post_init__(self) -> None:
        require(self.binarize in BINARIZE, "binarize", f"must be one of {BINARIZE}, got {self.binarize!r}")
        require(self.devices >= 1, "devices", f"must be >= 1, got {self.devices}")


@dataclass
class DRAWTrainResult:
    """Where a finished DRAW run put its outputs."""

    run_dir: Path
    model_dir: Path
    model: DRAW


def load_train_data(d: DataConfig):
    """The training split of the run's data spec (``ImageData``)."""
    return d.load("train")


def build_draw_run_config(spec: dict[str, Any], data) -> DRAWRunConfig:
    """Complete a (partial) DRAW run-config dict with the dataset's image shape and class count.

    Raises:
        ConfigError: unknown or invalid fields (named). DataError: non-square images, or a
            class-conditional model on a dataset without labels.
    """
    c, h, w = data.image_shape
    if h != w:
        raise DataError(f"dataset {data.name!r} has {h}x{w} images; DRAW here needs square images (crop or resize)")
    m = dict(spec.get("model", {}))
    condition = m.get("condition", "none")
    cond_dim = 0 if condition == "none" else int(data.conditions(condition).shape[1])
    m.update(image_channels=c, image_size=h, condition=condition, cond_dim=cond_dim)
    return DRAWRunConfig.from_dict(merge(spec, {"model": m}), source="draw run config")


def read_draw_run_config(run_dir: str | Path, caps_from: dict | None = None) -> DRAWRunConfig:
    """The :class:`DRAWRunConfig` saved in ``run_dir/run.json`` (``max_minutes`` caps from ``caps_from``).

    Raises:
        LatentStudioError: not a DRAW run.
    """
    return read_run_config(run_dir, KIND, DRAWRunConfig, caps_from)


def train_draw_spec(
    spec: dict[str, Any],
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    data=None,
    callbacks: list | None = None,
):
    """Train DRAW from a run-config dict (see :func:`build_draw_run_config`).

    With ``resume`` the run's own ``run.json`` is used (only ``spec``'s ``max_minutes`` caps apply); with ``dry_run`` the
    resolved :class:`DRAWRunConfig` is returned and nothing is trained or written.

    Returns:
        :class:`DRAWTrainResult`, or the resolved config under ``dry_run``.
    """
    if resume is not None:
        run = read_draw_run_config(resume, spec)
        data = data if data is not None else load_train_data(run.data)
    else:
        d = DataConfig.from_dict(spec.get("data", {}), source="data")
        data = data if data is not None else load_train_data(d)
        run = build_draw_run_config(spec, data)
    if dry_run:
        return run
    return train_draw(run, runs_root=runs_root, resume=resume, progress=progress, data=data, callbacks=callbacks)


def grid_conditions(cfg: DRAWConfig, n: int) -> torch.Tensor | None:
    """One-hot classes 0..K-1 in turn (a class per grid column block), or None if unconditional."""
    if cfg.cond_dim == 0:
        return None
    return torch.nn.functional.one_hot(torch.arange(n) % cfg.cond_dim, cfg.cond_dim).float()


def train_draw(
    run: DRAWRunConfig,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    data=None,
) -> DRAWTrainResult:
    """Train DRAW on images, export the model and write a drawing of 16 samples (PNG + GIF).

    Args:
        run: the resolved configuration (written to ``run.json`` before the first step).
        runs_root: parent of the numbered run directory (``<runs_root>/NNNNN-draw-<dataset>/``).
        resume: an interrupted run directory to continue (same config required); finished epochs
            are not repeated.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks.
        data: an already loaded training :class:`~latentstudio.data.ImageData` (else loaded from ``run.data``).

    Returns:
        :class:`DRAWTrainResult`.

    Raises:
        DataError: dataset problems or a dataset that does not match ``run.model``;
        NonFiniteLossError: NaN/inf loss (the last good checkpoint is kept); LatentStudioError: bad resume.
    """
    data = data if data is not None else load_train_data(run.data)
    _check_data_matches(run, data)
    run_dir = start_run(KIND, run.to_dict(), runs_root=runs_root, resume=resume, dataset=data.name,
                        devices=run.devices)
    from latentstudio.training.callbacks import ImageGridCallback  # lazy: imports Lightning
    from latentstudio.training.lit_module import (  # lazy: imports Lightning
        GenerativeLitModule,
        TensorDataModule,
    )

    announce("setting up training (PyTorch Lightning) ...")
    L = lightning()
    cfg = run.model
    images = binarize_images(data.images) if run.binarize == "threshold" else data.images
    cond = data.conditions(cfg.condition) if cfg.condition != "none" else torch.zeros(len(data), 0)

    L.seed_everything(run.seed, workers=True, verbose=False)
    model = DRAW(cfg)

    grid_c = grid_conditions(cfg, GRID_N)
    grid_idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(GRID_SEED))[:32]
    grid_idx = grid_idx[: len(grid_idx) // 8 * 8]

    def samples(module):
        g = torch.Generator().manual_seed(GRID_SEED)
        return torch.sigmoid(module.model.generate(GRID_N, grid_c, g, keep_steps=False).logits)

    def recon(module):
        x = to_float(images[grid_idx]).to(module.device)
        c = cond[grid_idx].to(module.device) if cond.shape[1] else None
        return interleave_rows(x, module.model.reconstruct_mean(x, c))

    t = run.train
    module = GenerativeLitModule(model, t, run.seed, inputs="images", prog_bar_terms=("kl", "nll"))
    dm = TensorDataModule((images, cond), t.batch_size, run.seed)
    grids = ImageGridCallback(run_dir / "train", samples, recon if len(grid_idx) else None,
                              every=t.grid_every_n_epochs)
    t0 = time.perf_counter()
    trainer = fit_module(module, dm, run_dir / "train", epochs=t.epochs, max_steps=t.max_steps or -1,
                         max_minutes=t.max_minutes, label="DRAW", accelerator=run.accelerator,
                         devices=run.devices, callbacks=[grids, *(callbacks or [])], progress=progress,
                         log_every_n_steps=t.log_every_n_steps, grad_clip=t.grad_clip)
    seconds = time.perf_counter() - t0
    model = model.cpu().eval()

    model_dir = run_dir / "model"
    if is_rank_zero():
        meta = {
            "seed": run.seed,
            "dataset": {"name": data.name, "split": data.split, "size": len(data), "fingerprint": data.fingerprint(),
                        "source": data.source},
            "data": run.data.to_dict(),
            "binarize": run.binarize,
            "run_dir": str(run_dir),
            "train_seconds_this_session": round(seconds, 1),
            "optimizer_steps": int(trainer.global_step),
            "epochs_completed": int(trainer.current_epoch),
        }
        model.save_pretrained(model_dir, meta=meta)
        _, frames = generation_frames(model, DRAWING_N, grid_conditions(cfg, DRAWING_N),
                                      torch.Generator().manual_seed(GRID_SEED))
        save_drawing(frames, run_dir / "samples-steps.png", run_dir / "canvas.gif", overwrite=True)
    return DRAWTrainResult(run_dir=run_dir, model_dir=model_dir, model=model)


def _check_data_matches(run: DRAWRunConfig, data) -> None:
    m = run.model
    c, h, w = data.image_shape
    if (c, h, w) != (m.image_channels, m.image_size, m.image_size):
        raise DataError(
            f"dataset {data.name!r} has images [{c}, {h}, {w}] but the DRAW model expects "
            f"[{m.image_channels}, {m.image_size}, {m.image_size}]; set model.image_channels/image_size to match "
            "(the CLI does this automatically), or use the dataset options the model was trained with"
        )
    if m.condition != "none":
        dim = data.conditions(m.condition).shape[1]
        if dim != m.cond_dim:
            raise DataError(f"dataset {data.name!r} has {dim} classes, the DRAW model cond_dim={m.cond_dim}")


__all__ = [
    "DRAWRunConfig",
    "DRAWTrainResult",
    "binarize_images",
    "build_draw_run_config",
    "read_draw_run_config",
    "train_draw",
    "train_draw_spec",
]
