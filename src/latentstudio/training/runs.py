"""Shared training plumbing for every model family: run directories and the Lightning trainer.

A run directory (``runs/00003-<kind>-<dataset>/``) holds ``run.json`` (the resolved config,
written before the first step), one folder per trained module (``stage1/``, ``stage2/`` or
``train/``) with ``checkpoints/last.ckpt`` (resumable state) and ``logs/`` (TensorBoard + CSV),
and the exported ``model/`` directory once training has finished.

- :func:`start_run` creates a numbered run (or validates one to resume);
- :func:`read_run` reads ``run.json`` back;
- :func:`fit_module` trains one LightningModule in a stage folder, resuming from its
  ``last.ckpt`` when one exists (so ``--resume`` repeats no finished epoch).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentstudio.errors import LatentStudioError, RunExistsError
from latentstudio.io.atomic import write_json
from latentstudio.io.run_dir import ENV_RUN_DIR, create_run_dir

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
MODEL_DIR = "model"


class _DropAdverts(logging.Filter):
    """Drops Lightning's advertising tip and its device banner ("GPU available: False ...", "TPU
    available ...", which devices are used is in the run's config) from the console log; its other
    messages stay."""

    NOISE = ("litlogger", "GPU available:", "TPU available:", "HPU available:", "LOCAL_RANK:")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.NOISE)


def lightning():
    """Import Lightning lazily (about 9 s) with its console noise filtered; returns the module."""
    import lightning as L  # lazy: Lightning takes seconds to import

    # a deprecation inside Lightning itself, raised at every fit; nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # small datasets: fewer batches per epoch than the logging interval (the CSV log still gets the epoch values)
    warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")
    # resuming a stage: the CSV logger rewrites its metrics file, which holds every earlier row
    warnings.filterwarnings("ignore", message=r".*Previous log files in this directory will be deleted.*")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdverts())
    return L


def announce(message: str) -> None:
    """Print one line about the run to stderr (rank 0 only), between progress bars rather than through them."""
    if not is_rank_zero():
        return
    from tqdm.auto import tqdm  # lazy: keeps this module importable without tqdm's notebook checks

    tqdm.write(message, file=sys.stderr)


class Deadline:
    """A wall-clock safety cap (``--max-minutes``) shared by every phase of a run.

    It never decides the science of a run: quality figures are budgeted in work (epochs, steps,
    kimg); a run that reaches its cap stops at the next step and says so.

    Args:
        minutes: the cap (None: no cap).
    """

    def __init__(self, minutes: float | None) -> None:
        self.minutes = minutes
        self.start = time.monotonic()

    def remaining_minutes(self) -> float | None:
        """Minutes left (may be <= 0), or None without a cap."""
        if self.minutes is None:
            return None
        return self.minutes - (time.monotonic() - self.start) / 60

    def passed(self) -> bool:
        left = self.remaining_minutes()
        return left is not None and left <= 0

    def cap_for(self, share: float = 1.0, own: float | None = None) -> float | None:
        """Minutes a phase may run: the smaller of its own cap and ``share`` of the run's cap left
        (at least a second, so a phase started just before the cap still ends cleanly)."""
        caps = [c for c in (own,) if c is not None]
        if self.minutes is not None:
            elapsed = (time.monotonic() - self.start) / 60
            caps.append(max(self.minutes * share - elapsed, 1 / 60))
        return min(caps) if caps else None


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def progress_bar(label: str = "training", max_minutes: float | None = None, total_steps: int | None = None):
    """One progress bar over the whole budget of a fit (not one per epoch).

    The bar counts batches from the first to the last of the run (``epochs x batches``, or fewer
    under ``max_steps`` / ``total_steps``), shows the epoch, the loss terms and an ETA for the whole
    budget; under a ``max_minutes`` cap the ETA is the earlier of the work left and the cap.
    Lightning's logger version (``v_num``) is left out: it means nothing to a user.

    Args:
        label: what is trained (``"stage 1"``, ``"DRAW"`` ...), the bar's description.
        max_minutes: the cap of this fit (None: none).
        total_steps: a further bound on the batches of the fit (e.g. StyleGAN2's kimg budget).
    """
    from lightning.pytorch.callbacks import TQDMProgressBar  # lazy: Lightning takes seconds to import

    class ProgressBar(TQDMProgressBar):
        BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"

        def __init__(self) -> None:
            super().__init__()
            self._budget_total: int | None = None
            self._first: tuple[float, int] | None = None
            self._cap_end = None if max_minutes is None else time.monotonic() + 60 * max_minutes

        @property
        def train_description(self) -> str:
            return f"{label}: "

        def get_metrics(self, trainer, pl_module):
            metrics = super().get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            return metrics

        def _total(self, trainer) -> int | None:
            per_epoch = self.total_train_batches
            if not isinstance(per_epoch, int | float) or per_epoch == float("inf"):
                return None
            bounds = [int(per_epoch) * int(trainer.max_epochs)] if trainer.max_epochs and trainer.max_epochs > 0 else []
            if trainer.max_steps and trainer.max_steps > 0:
                bounds.append(int(trainer.max_steps))
            if total_steps:
                bounds.append(int(total_steps))
            return min(bounds) if bounds else None

        def on_train_epoch_start(self, trainer, *_):
            bar = self.train_progress_bar
            per_epoch = int(self.total_train_batches) if self.total_train_batches != float("inf") else 0
            if self._budget_total is None:
                self._budget_total = self._total(trainer)
                bar.reset(total=self._budget_total)
                bar.n = bar.initial = trainer.current_epoch * per_epoch
            epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
            bar.set_description(f"{label} epoch {trainer.current_epoch + 1}{epochs}")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            bar = self.train_progress_bar
            per_epoch = int(self.total_train_batches) if self.total_train_batches != float("inf") else 0
            n = trainer.current_epoch * per_epoch + batch_idx + 1
            if self._first is None:
                self._first = (time.monotonic(), n)
            if bar.disable or not self._should_update(n, bar.total or n + 1):
                return
            bar.n = n
            parts = [f"{k}={bar.format_num(v) if isinstance(v, int | float) else v}"
                     for k, v in self.get_metrics(trainer, pl_module).items()]
            eta = self._eta(n)
            if eta:
                parts.insert(0, eta)
            bar.set_postfix_str(", ".join(parts), refresh=True)

        def _eta(self, n: int) -> str:
            t0, n0 = self._first or (time.monotonic(), n)
            now = time.monotonic()
            rate = (n - n0) / (now - t0) if n > n0 and now > t0 else None
            work = None if rate is None or self._budget_total is None else (self._budget_total - n) / rate
            cap = None if self._cap_end is None else self._cap_end - now
            if work is None and cap is None:
                return ""
            if cap is not None and (work is None or cap < work):
                return f"<{_clock(cap)} (--max-minutes cap)"
            return f"<{_clock(work)} left"

    return ProgressBar()


def is_rank_zero() -> bool:
    """True in the launching process (and in single-process runs)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def start_run(
    kind: str,
    config: dict[str, Any],
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    dataset: str = "",
    devices: int = 1,
) -> Path:
    """Create a numbered run directory (or check one to resume) and write ``run.json``.

    Args:
        kind: model family, e.g. ``"two-stage-vae"``, ``"draw"``; also the run name's first part.
        config: the resolved config as a JSON-able dict (``Config.to_dict()``).
        runs_root: parent folder of the numbered runs.
        resume: an existing run directory to continue; its ``run.json`` must hold ``config``.
        dataset: dataset name for the directory name (``00003-draw-mnist``).
        devices: processes; with several, DDP workers join the launcher's directory.

    Returns:
        The run directory.

    Raises:
        LatentStudioError: ``resume`` is not a run of ``kind`` or its config differs (fields named).
        RunExistsError: ``resume`` has already finished (``model/`` exists).
    """
    if resume is None:
        inherited = os.environ.get(ENV_RUN_DIR)  # a DDP worker joins its launcher's run
        name = f"{kind}-{dataset}" if dataset else kind
        run_dir = Path(inherited) if inherited else create_run_dir(runs_root, name)
        if devices > 1:
            os.environ[ENV_RUN_DIR] = str(run_dir.resolve())
        if is_rank_zero() and not (run_dir / RUN_FILE).exists():
            write_json(run_dir / RUN_FILE, {"kind": kind, "config": config})
            announce(f"run directory: {run_dir}")
        return run_dir
    run_dir = Path(resume)
    saved_kind, saved = read_run(run_dir)
    if saved_kind != kind:
        raise LatentStudioError(f"cannot resume {run_dir}: it is a {saved_kind!r} run, not {kind!r}")
    if _without_caps(saved) != _without_caps(config):
        diff = sorted(k for k in set(saved) | set(config) if _without_caps(saved.get(k)) != _without_caps(config.get(k)))
        raise LatentStudioError(
            f"cannot resume {run_dir}: its {RUN_FILE} differs from the requested config in {diff}; "
            "resume with the run's own config (latentstudio train ... --resume RUN without other options)"
        )
    if (run_dir / MODEL_DIR).exists():
        raise RunExistsError(f"{run_dir} has already finished ({MODEL_DIR}/ exists); start a new run instead")
    announce(f"resuming run directory: {run_dir}")
    return run_dir


def _without_caps(value: Any) -> Any:
    """``value`` without its ``max_minutes`` keys: a wall-clock cap is a safety limit, not part of a
    run's science, so a resumed run may have another one."""
    if isinstance(value, dict):
        return {k: _without_caps(v) for k, v in value.items() if k != "max_minutes"}
    return value


def read_run(run_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """``(kind, config dict)`` saved in ``run_dir/run.json``.

    Raises:
        LatentStudioError: ``run.json`` is missing or unreadable.
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise LatentStudioError(f"{run_dir} is not a run directory: {RUN_FILE} is missing")
    try:
        data = json.loads(path.read_text())
        return data.get("kind", "two-stage-vae"), data["config"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise LatentStudioError(f"{path} is not a valid run file ({exc}); it should hold 'kind' and 'config'") from None


def read_run_config(run_dir: str | Path, kind: str, config_class: type, caps_from: dict[str, Any] | None = None):
    """The ``config_class`` saved in ``run_dir/run.json`` of a ``kind`` run (e.g. ``"draw"``).

    ``caps_from``: a (partial) run-config dict whose ``max_minutes`` values replace the saved ones
    (a resumed run may have another wall-clock cap; nothing else may change).

    Raises:
        LatentStudioError: not a run folder, a run of another family (its resume command named), or a
            config that does not validate.
    """
    saved_kind, config = read_run(run_dir)
    if saved_kind != kind:
        raise LatentStudioError(f"{run_dir} is a {saved_kind!r} run, not a {kind!r} run; resume it with "
                                f"`latentstudio train {saved_kind} --resume {run_dir}`")
    if caps_from:
        config = _with_caps(config, caps_from)
    return config_class.from_dict(config, source=str(Path(run_dir) / RUN_FILE))


def _with_caps(saved: Any, given: Any) -> Any:
    """``saved`` with the ``max_minutes`` values that ``given`` sets at the same paths."""
    if not isinstance(saved, dict) or not isinstance(given, dict):
        return saved
    out = dict(saved)
    for k, v in given.items():
        if k == "max_minutes" and v is not None:
            out[k] = v
        elif k in out:
            out[k] = _with_caps(out[k], v)
    return out


def make_trainer(
    stage_dir: str | Path,
    *,
    epochs: int,
    max_minutes: float | None = None,
    max_steps: int = -1,
    accelerator: str = "cpu",
    devices: int = 1,
    callbacks: Sequence = (),
    progress: bool = True,
    log_every_n_steps: int = 10,
    grad_clip: float | None = None,
    grad_clip_algorithm: str = "norm",
    precision: str | None = None,
    every_n_epochs: int = 1,
    label: str = "training",
    total_steps: int | None = None,
):
    """A Lightning ``Trainer`` writing ``checkpoints/`` (the newest epoch every ``every_n_epochs`` epochs,
    ``last.ckpt`` a link to it) and
    ``logs/tensorboard`` + ``logs/csv`` under ``stage_dir``.

    Args:
        epochs / max_minutes / max_steps: stopping rules (whichever comes first).
        grad_clip: clip value (None: none); ``grad_clip_algorithm`` ``"norm"`` or ``"value"``.
        precision: Lightning precision string (e.g. ``"16-mixed"``); None = 32-bit.
        label / total_steps: the progress bar's description and a further bound on its batches
            (see :func:`progress_bar`).
    """
    L = lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint  # lazy: Lightning takes seconds to import
    from lightning.pytorch.loggers import (  # lazy: Lightning takes seconds to import
        CSVLogger,
        TensorBoardLogger,
    )

    stage_dir = Path(stage_dir)
    ckpt = ModelCheckpoint(  # the newest epoch, and last.ckpt as a link to it: one write per interval
        dirpath=stage_dir / "checkpoints",
        filename="epoch-{epoch:04d}",
        auto_insert_metric_name=False,
        save_last="link",
        save_top_k=1,
        every_n_epochs=every_n_epochs,
        save_on_train_epoch_end=True,
    )
    loggers = [
        TensorBoardLogger(save_dir=stage_dir, name="logs", version="tensorboard", default_hp_metric=False),
        CSVLogger(save_dir=stage_dir, name="logs", version="csv"),
    ]
    return L.Trainer(
        default_root_dir=stage_dir,
        max_epochs=epochs,
        max_steps=max_steps,
        max_time={"minutes": max_minutes} if max_minutes else None,
        accelerator=accelerator,
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        use_distributed_sampler=False,
        logger=loggers,
        callbacks=[*callbacks, ckpt, *([progress_bar(label, max_minutes, total_steps)] if progress else [])],
        log_every_n_steps=log_every_n_steps,
        gradient_clip_val=grad_clip,
        gradient_clip_algorithm=grad_clip_algorithm if grad_clip else None,
        precision=precision,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=False,
        num_sanity_val_steps=0,
    )


def fit_module(module, datamodule, stage_dir: str | Path, trainer=None, **trainer_kwargs):
    """Train ``module`` in ``stage_dir``, resuming from ``stage_dir/checkpoints/last.ckpt`` if present.

    Args:
        module: a ``LightningModule``.
        datamodule: a ``LightningDataModule`` (or None when the module has its own dataloaders).
        stage_dir: folder of this module's checkpoints and logs.
        trainer: a ready ``Trainer``; otherwise one is made by :func:`make_trainer` from ``trainer_kwargs``.

    Returns:
        The ``Trainer`` after fitting.
    """
    stage_dir = Path(stage_dir)
    trainer = trainer or make_trainer(stage_dir, **trainer_kwargs)
    last = stage_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if last.is_file() else None
    if ckpt_path:
        log.info("resuming %s from %s", stage_dir.name, last)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer
