"""One LightningModule for any model that owns its loss (``model.loss(x, cond, generator)``)."""

from __future__ import annotations

import lightning as L
import torch

from latentstudio.errors import NonFiniteLossError
from latentstudio.io.images import to_float
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.training.config import TrainConfig


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the noise at one optimisation step: a pure function of (seed, rank, step).

    Deriving the noise from the step (not from a global RNG stream) makes ``--resume`` reproduce
    an uninterrupted run exactly.
    """
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63 - 1)


class GenerativeLitModule(L.LightningModule):
    """Trains ``model`` with Adam and the halve-every-k-epochs schedule.

    Batches are ``(images uint8 [N, C, H, W], cond [N, D])`` for image models (``inputs="images"``)
    or ``(mu [N, D], logvar [N, D], cond)`` for latent models (``inputs="posterior"``: z is
    resampled as mu + sd * eps at every visit, i.e. every epoch). A zero-width ``cond`` means
    unconditional. ``prog_bar_terms`` names the loss terms shown beside the loss in the progress bar.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (training stops; the last checkpoint written
            at an earlier epoch end stays the last good one).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train: TrainConfig,
        seed: int,
        inputs: str = "images",
        prog_bar_terms: tuple[str, ...] = ("gamma",),
    ) -> None:
        super().__init__()
        if inputs not in ("images", "posterior"):
            raise ValueError(f"inputs must be 'images' or 'posterior', got {inputs!r}")
        self.model = model
        self.train_cfg = train
        self.seed = seed
        self.inputs = inputs
        self.prog_bar_terms = prog_bar_terms

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(step_seed(self.seed, self.global_rank, self.global_step))
        return g

    def _unpack(self, batch, generator: torch.Generator):
        if self.inputs == "images":
            images, cond = batch
            x = to_float(images)
        else:
            mu, logvar, cond = batch
            x = DiagonalGaussian(mu, logvar).sample(generator)
        return x, (cond if cond.shape[1] > 0 else None)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        g = self._generator()
        x, cond = self._unpack(batch, g)
        out = self.model.loss(x, cond, generator=g)
        if not torch.isfinite(out.total):
            raise NonFiniteLossError(
                f"non-finite loss {out.total.item()} at epoch {self.current_epoch}, step {self.global_step} "
                f"(terms: { {k: float(v) for k, v in out.terms.items()} }); the last good checkpoint is kept. "
                "Lower the learning rate (--lr) or enable gradient clipping (--grad-clip)."
            )
        n = x.shape[0]
        terms = {f"train/{k}": v.detach() for k, v in out.terms.items()}
        self.log_dict(terms, on_step=True, on_epoch=True, batch_size=n, sync_dist=self.trainer.world_size > 1)
        self.log("loss", out.total.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=n, logger=False)
        for name in self.prog_bar_terms:
            if name in out.terms:
                self.log(name, out.terms[name], prog_bar=True, on_step=True, on_epoch=False, batch_size=n, logger=False)
        return out.total

    def configure_optimizers(self):
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
        from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

        ds = TensorDataset(*self.tensors)
        sampler = DistributedSampler(
            ds,
            num_replicas=self.trainer.world_size,
            rank=self.trainer.global_rank,
            shuffle=True,
            seed=self.seed,
        )
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=0)
