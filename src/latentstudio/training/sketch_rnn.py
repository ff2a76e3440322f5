"""sketch-rnn training with Lightning: run directory, augmentation, KL annealing, periodic evaluation.

Layout of a run::

    runs/00004-sketch-rnn-aaron-sheep/
        run.json            resolved config (written before the first step)
        train/
            checkpoints/    last.ckpt (resumable: optimiser, step, schedule) + the newest epoch
            logs/           TensorBoard + CSV (train/* every few steps, valid/* and test/* evaluations)
            eval.jsonl      one line per evaluation: step, split, recon, l_s, l_p, kl, kl_sum (nats)
            samples/        step-NNNNNNN.svg/.png: sketches from fixed latents at tau 0.5
        model/              exported model (config.json, model.safetensors with the scale factor,
                            meta.json with dataset, steps and the final test losses)

Optimisation follows the reference: Adam, learning rate ``(lr - min_lr) decay^step + min_lr``,
every gradient element clipped to ``[-grad_clip, grad_clip]``, the KL weight annealed per step.
A NaN/inf loss or gradient stops training with :class:`NonFiniteLossError` before the optimiser
step, so the last checkpoint on disk stays the last good one.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.config import Config, require
from latentstudio.data.spec import DataSpec
from latentstudio.data.strokes import SPLITS, StrokeSplits, augment, load_strokes, stroke3_to_stroke5
from latentstudio.errors import DataError, LatentStudioError
from latentstudio.evaluation.sketches import stroke_losses
from latentstudio.io.atomic import append_jsonl
from latentstudio.io.strokes_render import save_sketches
from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig
from latentstudio.presets import merge
from latentstudio.presets import preset as get_preset
from latentstudio.training import runs
from latentstudio.training.runs import announce, fit_module, is_rank_zero, lightning, start_run

log = logging.getLogger(__name__)

KIND = "sketch-rnn"
STAGE = "train"
EVAL_FILE = "eval.jsonl"
SAMPLE_SEED = 1234
SAMPLE_N = 16
SAMPLE_TEMPERATURE = 0.5
#: Above this share of the file's sketches dropped by a user-set ``model.max_seq_len``, training stops
#: unless ``data.allow_dropped`` is true.
DROP_LIMIT = 0.05


@dataclass(frozen=True)
class SketchDataConfig(Config):
    """Which strokes to train on (see :func:`latentstudio.data.strokes.load_strokes`).

    Attributes:
        path: sketch-rnn ``.npz`` or Quick, Draw! ``.ndjson(.gz)``.
        epsilon: RDP tolerance for ndjson drawings (pixels).
        words: ndjson: keep only these classes (empty: all).
        split_fractions: ndjson: train/valid/test fractions.
        split_seed: ndjson: seed of the split permutation.
        limit: at most this many sketches per split.
        allow_dropped: train even when a user-set ``model.max_seq_len`` drops more than
            :data:`DROP_LIMIT` (5%) of the file's sketches (the count is printed either way).
    """

    path: str = ""
    epsilon: float = 2.0
    words: tuple[str, ...] = ()
    split_fractions: tuple[float, ...] = (0.9, 0.05, 0.05)
    split_seed: int = 0
    limit: int | None = None
    allow_dropped: bool = False

    def __post_init__(self) -> None:
        require(self.epsilon >= 0, "data.epsilon", "must be >= 0")
        require(self.limit is None or self.limit >= 1, "data.limit", "must be >= 1")

    def to_spec(self) -> DataSpec:
        """The same data as a ``strokes`` :class:`~latentstudio.data.DataSpec` (absolute path; ``epsilon``,
        ``words``, ``split_fractions``, ``split_seed`` as dataset options)."""
        path = str(Path(self.path).expanduser().resolve()) if self.path else ""
        return DataSpec(name="strokes", limit=self.limit, options={
            "path": path, "epsilon": self.epsilon, "words": list(self.words),
            "split_fractions": list(self.split_fractions), "split_seed": self.split_seed})


@dataclass(frozen=True)
class SketchTrainConfig(Config):
    """Optimisation (defaults: the reference's).

    Attributes:
        max_steps: optimisation steps (the budget in work).
        epochs: passes over the training split (None: ``max_steps`` alone); whichever ends first.
        max_minutes: a wall-clock safety cap (None: none); training stops at the next step once reached.
        batch_size: sketches per step (100).
        lr / lr_decay / min_lr: learning rate ``(lr - min_lr) lr_decay^step + min_lr``.
        grad_clip: clip every gradient element to ``[-grad_clip, grad_clip]`` (by value, 1.0).
        random_scale: augmentation: per-axis scale in ``1 +- random_scale`` (0.15).
        drop_prob: augmentation: probability of dropping an eligible point (0.10).
        eval_every_n_steps: evaluate valid and test losses (and write samples) every k steps (0: never).
        log_every_n_steps: training-loss logging interval.
        eval_batch_size: sketches per evaluation batch.
    """

    max_steps: int = 100_000
    epochs: int | None = None
    max_minutes: float | None = None
    batch_size: int = 100
    lr: float = 1e-3
    lr_decay: float = 0.9999
    min_lr: float = 1e-5
    grad_clip: float = 1.0
    random_scale: float = 0.15
    drop_prob: float = 0.10
    eval_every_n_steps: int = 500
    log_every_n_steps: int = 20
    eval_batch_size: int = 100

    def __post_init__(self) -> None:
        require(self.max_steps >= 1, "train.max_steps", "must be >= 1")
        require(self.epochs is None or self.epochs >= 1, "train.epochs", "must be >= 1")
        require(self.max_minutes is None or self.max_minutes > 0, "train.max_minutes", "must be > 0")
        require(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        require(self.lr > 0 and self.min_lr >= 0 and self.min_lr <= self.lr, "train.lr",
                "need lr > 0 and 0 <= min_lr <= lr")
        require(0 < self.lr_decay <= 1, "train.lr_decay", "must be in (0, 1]")
        require(self.grad_clip > 0, "train.grad_clip", "must be > 0")
        require(0 <= self.random_scale < 1, "train.random_scale", "must be in [0, 1)")
        require(0 <= self.drop_prob < 1, "train.drop_prob", "must be in [0, 1)")
        require(self.eval_every_n_steps >= 0, "train.eval_every_n_steps", "must be >= 0")


@dataclass(frozen=True)
class SketchRNNRunConfig(Config):
    """Everything a sketch-rnn run needs; written to ``run.json`` before the first step.

    Attributes:
        data / model / train: see their classes (model defaults = the reference hyperparameters).
        seed: weights, shuffling, augmentation, z noise and dropout masks all derive from it.
        accelerator / devices: Lightning accelerator and processes.
        threads: torch CPU threads (None: torch's default).
    """

    data: SketchDataConfig = field(default_factory=SketchDataConfig)
    model: SketchRNNConfig = field(default_factory=SketchRNNConfig)
    train: SketchTrainConfig = field(default_factory=SketchTrainConfig)
    seed: int = 0
    accelerator: str = "cpu"
    devices: int = 1
    threads: int | None = None

    def __post_init__(self) -> None:
        require(self.devices >= 1, "devices", "must be >= 1")
        require(self.threads is None or self.threads >= 1, "threads", "must be >= 1")




def build_run_config(spec: dict[str, Any], preset: str = "default") -> SketchRNNRunConfig:
    """Merge ``spec`` (nested dict) over a preset and validate.

    Raises:
        ConfigError / LatentStudioError: unknown preset or fields, invalid values.
    """
    return SketchRNNRunConfig.from_dict(merge(get_preset("sketch-rnn", preset), spec),
                                        source=f"sketch-rnn preset {preset}")


# ----------------------------------------------------------------------------- data


class _StepBatchSampler(torch.utils.data.Sampler):
    """Batches as a pure function of the global step: ``[(index, data_epoch), ...]``.

    Batch ``s`` holds positions ``s mod K`` of a permutation of the training set seeded by
    ``(seed, s div K)`` (K batches per pass). Iteration starts at the trainer's current global
    step, so a run resumed from any checkpoint sees exactly the batches (and, through the data
    epoch, the augmentations) of an uninterrupted run, whatever Lightning's epoch bookkeeping does.
    """

    def __init__(self, n: int, batch_size: int, seed: int, step_fn, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.step_fn, self.rank, self.world = n, batch_size, seed, step_fn, rank, world
        self.per_pass = max(1, n // (batch_size * world))
        self._perm: tuple[int, list[int]] | None = None

    def _permutation(self, epoch: int) -> list[int]:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(self.n, generator=g).tolist())
        return self._perm[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The indices of global step ``step`` on this rank."""
        epoch, pos = divmod(step, self.per_pass)
        perm = self._permutation(epoch)
        bs = min(self.batch_size, self.n)
        start = (pos * self.world + self.rank) * bs
        return [(i, epoch) for i in perm[start : start + bs]]

    def __iter__(self):
        start = int(self.step_fn())
        for s in range(start, start + self.per_pass):
            yield self.batch(s)

    def __len__(self) -> int:
        return self.per_pass


class StrokeDataset(torch.utils.data.Dataset):
    """Training sketches -> ``(stroke-5 float32 [Nmax, 5], length)`` with seeded augmentation."""

    def __init__(self, sketches: list[np.ndarray], max_len: int, seed: int, random_scale: float,
                 drop_prob: float, drop_mode: str = "paper") -> None:
        self.sketches, self.max_len, self.seed = sketches, max_len, seed
        self.random_scale, self.drop_prob, self.drop_mode = random_scale, drop_prob, drop_mode

    def __len__(self) -> int:
        return len(self.sketches)

    def __getitem__(self, key):
        idx, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng((self.seed, epoch, idx))
        s = augment(self.sketches[idx], rng, self.random_scale, self.drop_prob, self.drop_mode)
        return torch.from_numpy(stroke3_to_stroke5(s, self.max_len)), len(s)


def _datamodule(train_set, cfg: SketchRNNRunConfig):
    L = lightning()

    class StrokeDataModule(L.LightningDataModule):
        def train_dataloader(self):
            ds = StrokeDataset(train_set.sketches, cfg.model.max_seq_len, cfg.seed, cfg.train.random_scale,
                               cfg.train.drop_prob, cfg.model.parity)
            tr = self.trainer
            sampler = _StepBatchSampler(len(ds), cfg.train.batch_size, cfg.seed, lambda: tr.global_step,
                                        tr.global_rank, tr.world_size)
            return torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=0)

    return StrokeDataModule()


# ----------------------------------------------------------------------------- module


def lr_at(train: SketchTrainConfig, step: int) -> float:
    """Learning rate at ``step``: ``(lr - min_lr) decay^step + min_lr`` (the reference schedule)."""
    return (train.lr - train.min_lr) * train.lr_decay ** step + train.min_lr


def _lit_module(model: SketchRNN, cfg: SketchRNNRunConfig):
    """Adam on ``model.loss`` with the reference's per-step learning-rate schedule; KL annealing follows
    the global step; a NaN gradient stops training before the optimiser step."""
    from latentstudio.training.lit_module import GenerativeLitModule  # lazy: imports Lightning

    def configure(params):
        t = cfg.train
        opt = torch.optim.Adam(params, lr=t.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(t, s) / t.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return GenerativeLitModule(model, None, cfg.seed, inputs="strokes", prog_bar_terms=("recon", "kl"),
                               configure_optimizers=configure, check_gradients=True,
                               nonfinite_hint="Lower the learning rate (--set train.lr=...) or check the data.")


def _eval_callback(stage_dir: Path, splits: StrokeSplits, cfg: SketchRNNRunConfig):
    L = lightning()

    tensors = {s: splits.split(s).to_stroke5(cfg.model.max_seq_len) for s in ("valid", "test") if len(splits.split(s))}
    every = cfg.train.eval_every_n_steps

    class SketchEvalCallback(L.Callback):
        """At step 0 and every ``eval_every_n_steps``: valid/test losses (logged + eval.jsonl) and a sample grid."""

        def __init__(self) -> None:
            self.start = time.time()

        def on_train_start(self, trainer, pl_module):
            if every > 0 and trainer.global_step == 0 and trainer.is_global_zero:
                self.run(trainer, pl_module, 0)  # the starting point of the curves

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if every <= 0 or step % every or not trainer.is_global_zero:
                return
            self.run(trainer, pl_module, step)

        def run(self, trainer, pl_module, step: int) -> None:
            model = pl_module.model
            for split, (x, ln) in tensors.items():
                res = stroke_losses(model, x, ln, batch_size=cfg.train.eval_batch_size, seed=cfg.seed,
                                    nmax=splits.longest or None)
                rec = {"step": step, "split": split, "minutes": round((time.time() - self.start) / 60, 2), **res}
                append_jsonl(stage_dir / EVAL_FILE, rec)
                for lg in trainer.loggers:
                    lg.log_metrics({f"{split}/{k}": v for k, v in res.items() if k != "n"}, step=step)
            g = torch.Generator().manual_seed(SAMPLE_SEED)  # the same latents on every device
            z = torch.randn(SAMPLE_N, cfg.model.latent_dim, generator=g) if cfg.model.conditional else None
            dev = model.output.weight.device
            gd = torch.Generator(device=dev).manual_seed(SAMPLE_SEED + 1)
            sk = model.generate(SAMPLE_N, z=z, temperature=SAMPLE_TEMPERATURE, generator=gd)
            cap = f"step {step}, tau {SAMPLE_TEMPERATURE}"
            for ext in (".svg", ".png"):
                save_sketches(stage_dir / "samples" / f"step-{step:07d}{ext}", sk.strokes, nrow=8, caption=cap,
                              overwrite=True)

    return SketchEvalCallback()


# ----------------------------------------------------------------------------- entry point


@dataclass
class SketchTrainResult:
    """Where a finished run put its outputs."""

    run_dir: Path
    model_dir: Path
    model: SketchRNN
    test: dict[str, float]
    steps: int


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed large blocks mapped (Linux only; returns whether it applied).

    A training step allocates about 1 GB of sequence buffers at the reference size; by default
    glibc returns such blocks to the system at every free, and re-touching them costs page faults
    of the order of 20% of a CPU step. This changes only the allocator's thresholds.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        # mallopt takes a C int: 2**31 - 1 is the largest threshold (a larger Python int would wrap)
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def train_spec(
    spec: dict[str, Any] | None = None,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    callbacks: list | None = None,
):
    """Train sketch-rnn from a run-config dict merged over the ``default`` preset (a ``preset`` key picks
    another); with ``resume`` the run's own config is used; ``dry_run`` returns the resolved config."""
    spec = dict(spec or {})
    cfg = read_run_config(resume, spec) if resume is not None else build_run_config(spec, spec.pop("preset", "default"))
    if dry_run:
        return cfg
    return train_sketch_rnn(cfg, runs_root=runs_root, resume=resume, progress=progress, callbacks=callbacks)


def read_run_config(run_dir: str | Path, caps_from: dict | None = None) -> SketchRNNRunConfig:
    """The :class:`SketchRNNRunConfig` saved in ``run_dir/run.json`` (``max_minutes`` caps from ``caps_from``)."""
    return runs.read_run_config(run_dir, KIND, SketchRNNRunConfig, caps_from)


def load_run_data(cfg: SketchRNNRunConfig, scale_factor: float | None = None) -> StrokeSplits:
    """The run's strokes, normalised (by the training split's factor unless ``scale_factor`` is given),
    cut at ``model.max_seq_len`` (None: the file's longest sketch, nothing dropped)."""
    d = cfg.data
    if not d.path:
        raise LatentStudioError("no stroke file given: pass --data sketches.npz (or .ndjson)")
    return load_strokes(d.path, max_seq_len=cfg.model.max_seq_len, epsilon=d.epsilon, words=d.words or None,
                        split_fractions=d.split_fractions, seed=d.split_seed, limit=d.limit,
                        scale_factor=scale_factor)


def resolve_nmax(cfg: SketchRNNRunConfig, splits: StrokeSplits, *, echo=None) -> SketchRNNRunConfig:
    """``cfg`` with ``model.max_seq_len`` resolved against the loaded data.

    Unset (None): the file's longest sketch over all splits (the reference's Nmax; nothing is
    dropped). Set and smaller than the longest sketch: one line with the number and share of
    dropped sketches goes to ``echo`` (default: stderr); above :data:`DROP_LIMIT` of the file the
    run stops unless ``data.allow_dropped`` is true.

    Raises:
        DataError: too many sketches dropped (the message names ``data.allow_dropped``).
    """
    if cfg.model.max_seq_len is None:
        return cfg.replace(model=cfg.model.replace(max_seq_len=int(splits.max_seq_len)))
    n = sum(splits.dropped.values())
    if n:
        total = sum(splits.total.values())
        share = splits.dropped_share()
        per = ", ".join(f"{k} {v}" for k, v in splits.dropped.items())
        line = (f"model.max_seq_len={cfg.model.max_seq_len} drops {n} of {total} sketches ({100 * share:.1f}%: {per}) "
                f"longer than {cfg.model.max_seq_len} points; the longest has {splits.longest}")
        if share > DROP_LIMIT and not cfg.data.allow_dropped:
            raise DataError(f"{line}: above the {100 * DROP_LIMIT:.0f}% limit; leave model.max_seq_len unset (the data's "
                            f"longest sketch) or accept it with --set data.allow_dropped=true")
        if is_rank_zero():
            (echo or (lambda m: print(m, file=sys.stderr)))(line)
    return cfg


def train_sketch_rnn(
    cfg: SketchRNNRunConfig,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
) -> SketchTrainResult:
    """Train sketch-rnn, evaluate on the test split and export ``model/``.

    Args:
        cfg: the configuration; ``model.max_seq_len`` is resolved by :func:`resolve_nmax` and the result
            written to ``run.json`` (and the model's ``config.json``).
        runs_root: parent of the numbered run directory.
        resume: an interrupted run directory to continue (its own config is required).
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks.

    Returns:
        :class:`SketchTrainResult`.

    Raises:
        DataError: unreadable strokes, or a user-set Nmax dropping too many (:func:`resolve_nmax`); NonFiniteLossError: NaN loss or gradient (the last good
            checkpoint stays); LatentStudioError: bad resume.
    """

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    retain_freed_memory()
    splits = load_run_data(cfg)
    cfg = resolve_nmax(cfg, splits)
    run_dir = start_run(KIND, cfg.to_dict(), runs_root=runs_root, resume=resume, dataset=splits.train.name,
                        devices=cfg.devices)
    announce("setting up training (PyTorch Lightning) ...")
    L = lightning()
    stage_dir = run_dir / STAGE
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = SketchRNN(cfg.model)
    model.scale_factor.fill_(splits.scale_factor)
    module = _lit_module(model, cfg)
    evalcb = _eval_callback(stage_dir, splits, cfg)
    t = cfg.train
    steps_per_epoch = max(1, len(splits.train) // t.batch_size)
    epochs = t.epochs or int(np.ceil(t.max_steps / steps_per_epoch)) + 1
    # small sets have epochs of a few steps: checkpoint at the evaluation interval, not every epoch
    ckpt_every = max(1, (t.eval_every_n_steps or 1) // steps_per_epoch)
    trainer = fit_module(module, _datamodule(splits.train, cfg), stage_dir, epochs=epochs, max_steps=t.max_steps,
                         max_minutes=t.max_minutes, accelerator=cfg.accelerator, devices=cfg.devices,
                         callbacks=[evalcb, *(callbacks or [])], progress=progress,
                         log_every_n_steps=t.log_every_n_steps, grad_clip=t.grad_clip, grad_clip_algorithm="value",
                         label="sketch-rnn", every_n_epochs=ckpt_every)
    steps = int(trainer.global_step)
    model = model.cpu().eval()
    test: dict[str, float] = {}
    if len(splits.test):
        x, ln = splits.test.to_stroke5(cfg.model.max_seq_len)
        test = stroke_losses(model, x, ln, batch_size=t.eval_batch_size, seed=cfg.seed, nmax=splits.longest or None)
    model_dir = run_dir / "model"
    if is_rank_zero():
        if t.eval_every_n_steps and steps % t.eval_every_n_steps:  # a final evaluation + samples at the last step
            evalcb.run(trainer, module, steps)
        meta = {
            "seed": cfg.seed,
            "steps": steps,
            "scale_factor": splits.scale_factor,
            "dataset": {"name": splits.train.name, "path": str(Path(cfg.data.path).expanduser().resolve()),
                        "sizes": {s: len(splits.split(s)) for s in SPLITS}, "dropped_longer_than_nmax": splits.dropped,
                        "nmax": splits.longest, "max_seq_len": cfg.model.max_seq_len,
                        "fingerprint": splits.train.fingerprint(), "epsilon": cfg.data.epsilon},
            "data": cfg.data.to_spec().to_dict(),
            "test": test,
            "run_dir": str(run_dir),
        }
        model.save_pretrained(model_dir, meta=meta)
    return SketchTrainResult(run_dir=run_dir, model_dir=model_dir, model=model, test=test, steps=steps)
