"""Training and run configurations."""

from __future__ import annotations

from dataclasses import dataclass, field

from latentstudio.config import Config, require
from latentstudio.data.spec import DataSpec
from latentstudio.models.two_stage.config import TwoStageConfig


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimisation of one stage.

    Attributes:
        epochs: passes over the training set.
        max_steps: optimizer steps (None: ``epochs`` alone decides); whichever of the two ends first.
        batch_size: examples per step (per process under DDP).
        lr: Adam learning rate (Dai & Wipf: 1e-4 .. 1e-3).
        lr_halve_every: halve the learning rate every k epochs (the reference schedule); 0 = never.
        max_minutes: a wall-clock safety cap (None = none): training stops at the next step once it
            is reached. Not a budget for results (they are budgeted in epochs / steps).
        grad_clip: clip the gradient norm (None = no clipping).
        log_every_n_steps: logging interval.
        grid_every_n_epochs: sample/reconstruction grids interval (0 = never).
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    lr_halve_every: int = 0
    max_minutes: float | None = None
    grad_clip: float | None = None
    log_every_n_steps: int = 10
    grid_every_n_epochs: int = 1

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", f"must be >= 0, got {self.epochs}")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.lr_halve_every >= 0, "lr_halve_every", "must be >= 0")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be > 0")
        require(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be > 0")


#: Which dataset a run trains on: the typed data spec (``run.json`` ``config.data`` keeps its six fields
#: ``name``, ``root``, ``options``, ``limit``, ``download``, ``strict``).
DataConfig = DataSpec


@dataclass(frozen=True)
class TwoStageRunConfig(Config):
    """Everything a two-stage run needs; written to ``run.json`` before the first step.

    Attributes:
        data: dataset.
        model: both stages' architectures.
        stage1 / stage2: their optimisation.
        gmm_components / gmm_fit_on: the ex-post GMM sampler (10 components on mu by default).
        max_minutes: a wall-clock safety cap on the whole run (None: none): stage 1 stops at
            ``STAGE1_SHARE`` of it, encoding, stage 2 and the GMM's EM iterations stop at the cap
            (see :func:`latentstudio.training.fit.train_two_stage`).
        seed: initial weights, shuffling and noise all derive from it.
        devices: processes (DDP when > 1).
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: TwoStageConfig = field(default_factory=TwoStageConfig)
    stage1: TrainConfig = field(default_factory=TrainConfig)
    stage2: TrainConfig = field(default_factory=TrainConfig)
    gmm_components: int = 10
    gmm_fit_on: str = "mean"
    max_minutes: float | None = None
    seed: int = 0
    devices: int = 1
    accelerator: str = "cpu"

    def __post_init__(self) -> None:
        require(self.gmm_components >= 1, "gmm_components", "must be >= 1")
        require(self.gmm_fit_on in ("mean", "sample"), "gmm_fit_on", "must be 'mean' or 'sample'")
        require(self.devices >= 1, "devices", f"must be >= 1, got {self.devices}")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be > 0")
