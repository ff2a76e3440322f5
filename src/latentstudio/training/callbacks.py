"""Training callbacks: per-epoch sample and reconstruction grids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch

from latentstudio.io.images import make_grid, save_image, to_uint8


class ImageGridCallback(L.Callback):
    """Writes ``<folder>/samples/epoch-NNNN.png`` (and ``recon/``) every ``every`` epochs.

    Args:
        folder: stage directory.
        sample_fn: ``(module) -> float [N, C, H, W]`` in [0, 1], drawn from a fixed seed.
        recon_fn: ``(module) -> float [2N, C, H, W]`` originals and reconstructions interleaved by rows, or None.
        every: epoch interval.
    """

    def __init__(
        self,
        folder: str | Path,
        sample_fn: Callable[[L.LightningModule], torch.Tensor],
        recon_fn: Callable[[L.LightningModule], torch.Tensor] | None = None,
        every: int = 1,
        nrow: int = 8,
    ) -> None:
        self.folder = Path(folder)
        self.sample_fn = sample_fn
        self.recon_fn = recon_fn
        self.every = every
        self.nrow = nrow

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every <= 0 or not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            grids = {"samples": self.sample_fn(pl_module)}
            if self.recon_fn is not None:
                grids["recon"] = self.recon_fn(pl_module)
        pl_module.train(was_training)
        for kind, images in grids.items():
            grid = make_grid(to_uint8(images.cpu()), nrow=self.nrow)
            save_image(grid, self.folder / kind / f"epoch-{trainer.current_epoch + 1:04d}.png", overwrite=True)
            for logger in trainer.loggers:
                exp = getattr(logger, "experiment", None)
                if hasattr(exp, "add_image"):
                    exp.add_image(kind, grid, global_step=trainer.global_step)
