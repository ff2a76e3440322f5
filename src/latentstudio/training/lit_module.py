"""One LightningModule for any model that owns its loss (``model.loss(batch, step=..., generator=...)``)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from latentstudio.errors import NonFiniteLossError
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.training.config import TrainConfig
from latentstudio.types import Batch


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the noise at one optimisation step: a pure function of (seed, rank, step).

    Deriving the noise from the step (not from a global RNG stream) makes ``--resume`` reproduce
    an uninterrupted run exactly.
    """
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63 - 1)


INPUTS = ("images", "posterior", "strokes")


class GenerativeLitModule(L.LightningModule):
    """Trains any model through its ``loss(batch, step=..., generator=...)`` (the model contract).

    Batches are ``(images uint8 [N, C, H, W], cond [N, D])`` for image models (``inputs="images"``),
    ``(mu [N, D], logvar [N, D], cond)`` for latent models (``inputs="posterior"``: z is resampled
    as mu + sd * eps at every visit, i.e. every epoch), or ``(strokes float32 [N, Nmax, 5],
    lengths int64 [N])`` for sketch models (``inputs="strokes"``). A zero-width ``cond`` means
    unconditional. The noise of every step is a pure function of (seed, rank, step), so a resumed
    run repeats an uninterrupted one.

    Args:
        model: the model (or a component such as the second stage).
        train: Adam with the halve-every-k-epochs schedule of :class:`TrainConfig` (used unless
            ``configure_optimizers`` is given).
        seed: the run's seed.
        inputs: the batch layout (above).
        prog_bar_terms: loss terms shown beside the loss in the progress bar.
        configure_optimizers: ``params -> Lightning optimiser config`` replacing the default.
        check_gradients: stop when a gradient is NaN/inf, before the optimiser step.
        nonfinite_hint: the fix named when the loss or a gradient is not finite.

    Raises:
        NonFiniteLossError: the loss (or a checked gradient) became NaN/inf; training stops and the
            last checkpoint written before stays the last good one.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train: TrainConfig | None,
        seed: int,
        inputs: str = "images",
        prog_bar_terms: tuple[str, ...] = ("gamma",),
        *,
        configure_optimizers=None,
        check_gradients: bool = False,
        nonfinite_hint: str = ("Lower the learning rate (--set stage1.lr=... or train.lr=...) or clip gradients "
                               "(--set stage1.grad_clip=10 or train.grad_clip=10)."),
    ) -> None:
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
        if train is None and configure_optimizers is None:
            raise ValueError("pass a TrainConfig or configure_optimizers")
        self.model = model
        self.train_cfg = train
        self.seed = seed
        self.inputs = inputs
        self.prog_bar_terms = prog_bar_terms
        self._configure = configure_optimizers
        self.check_gradients = check_gradients
        self.nonfinite_hint = nonfinite_hint

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(step_seed(self.seed, self.global_rank, self.global_step))
        return g

    def _unpack(self, batch, generator: torch.Generator) -> Batch:
        if self.inputs == "strokes":
            strokes, lengths = batch
            return Batch(strokes, None, lengths)
        if self.inputs == "images":
            images, cond = batch
            x = images
        else:
            mu, logvar, cond = batch
            x = DiagonalGaussian(mu, logvar).sample(generator)
        return Batch(x, cond if cond.shape[1] > 0 else None)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        g = self._generator()
        b = self._unpack(batch, g)
        out = self.model.loss(b, step=self.global_step, generator=g)
        if not torch.isfinite(out.loss):
            raise NonFiniteLossError(
                f"non-finite loss {out.loss.item()} at epoch {self.current_epoch}, step {self.global_step} "
                f"(terms: { {k: round(float(v.detach()), 4) for k, v in out.terms.items()} }); the last good checkpoint "
                f"is kept. {self.nonfinite_hint}"
            )
        n = len(b)
        terms = {f"train/{k}": v.detach() for k, v in out.terms.items()}
        self.log_dict(terms, on_step=True, on_epoch=True, batch_size=n, sync_dist=self.trainer.world_size > 1)
        self.log("loss", out.loss.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=n, logger=False)
        for name in self.prog_bar_terms:
            if name in out.terms:
                self.log(name, out.terms[name].detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=n, logger=False)
        return out.loss

    def on_before_optimizer_step(self, optimizer) -> None:
        if not self.check_gradients:
            return
        for name, p in self.model.named_parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                raise NonFiniteLossError(
                    f"non-finite gradient in {name} at step {self.global_step}; the optimiser step was skipped "
                    f"and the last good checkpoint is kept. {self.nonfinite_hint}"
                )

    def configure_optimizers(self):
        if self._configure is not None:
            return self._configure(self.model.parameters())
        opt = torch.optim.Adam(self.model.parameters(), lr=self.train_cfg.lr)
        if self.train_cfg.lr_halve_every <= 0:
            return opt
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.train_cfg.lr_halve_every, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        """Log the learning rate used in this epoch (the schedule steps at epoch ends)."""
        opt = self.optimizers()
        if not isinstance(opt, list):
            self.log("train/lr", opt.param_groups[0]["lr"], on_epoch=True, on_step=False)


class TensorDataModule(L.LightningDataModule):
    """Shuffled batches of in-memory tensors; the shuffle is a function of (seed, epoch).

    Uses :class:`torch.utils.data.DistributedSampler` for every device count (one replica when
    single-process), whose order depends only on the seed and the epoch, so a resumed run sees
    the same batches as an uninterrupted one.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int) -> None:
        super().__init__()
        self.tensors = tensors
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self):
        ds = TensorDataset(*self.tensors)
        sampler = DistributedSampler(
            ds,
            num_replicas=self.trainer.world_size,
            rank=self.trainer.global_rank,
            shuffle=True,
            seed=self.seed,
        )
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=0)
