"""Images/s of the Lightning trainer relative to a bare PyTorch loop (target >= 0.95).

Both loops train the same first-stage VAE (GenerativeLitModule wrapping the same model class and
initial weights) on the same batches in the same order, for the same number of steps; runs are
interleaved (bare, Lightning, bare, Lightning, ...) and the ratio of the median throughputs is
reported. The Lightning side uses the project's own trainer settings: TensorBoard + CSV logging
of every loss term every 10 steps, epoch-end checkpoints; progress bar off in both.

Usage:
    python benchmarks/trainer_overhead.py [--data digits|mnist] [--data-root ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import data_root, environment, write_result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--images", type=int, default=6400, help="training images per epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from latentstudio.data import load_images
    from latentstudio.io.images import to_float
    from latentstudio.models.vae import VAE, VAEConfig
    from latentstudio.training.config import TrainConfig, TwoStageRunConfig
    from latentstudio.training.fit import _fit_stage
    from latentstudio.training.lit_module import GenerativeLitModule, TensorDataModule, step_seed
    from latentstudio.types import Batch

    root = data_root(args.data_root) if args.data != "digits" else None
    data = load_images(args.data, "train", root=root, limit=args.images)
    cfg = VAEConfig(image_channels=1, image_size=32, latent_dim=16, base_dim=16, fc_dim=256)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3)
    cond = torch.zeros(len(data), 0)
    n_images = len(data) * args.epochs

    def bare() -> float:
        torch.manual_seed(0)
        model = VAE(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=train.lr)
        sampler = torch.utils.data.DistributedSampler(
            torch.utils.data.TensorDataset(data.images), num_replicas=1, rank=0, shuffle=True, seed=0
        )
        t = time.perf_counter()
        step = 0
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            idx = torch.tensor(list(sampler))
            for i in range(0, len(idx), args.batch_size):
                x = to_float(data.images[idx[i : i + args.batch_size]])
                g = torch.Generator().manual_seed(step_seed(0, 0, step))
                loss = model.loss(Batch(x), generator=g).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
        return n_images / (time.perf_counter() - t)

    def lightning() -> float:
        torch.manual_seed(0)
        model = VAE(cfg)
        module = GenerativeLitModule(model, train, seed=0)
        dm = TensorDataModule((data.images, cond), args.batch_size, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            _fit_stage(module, dm, Path(tmp), train, TwoStageRunConfig(), [], progress=False)
            return n_images / (time.perf_counter() - t)

    lightning()  # warm-up: imports and first-call costs
    bare_runs, lit_runs = [], []
    for _ in range(args.repeats):
        bare_runs.append(bare())
        lit_runs.append(lightning())
    ratio = statistics.median(lit_runs) / statistics.median(bare_runs)
    write_result("trainer_overhead", {
        "benchmark": "trainer_overhead",
        "data": f"{args.data} train, first {len(data)} images, {args.epochs} epochs, batch {args.batch_size}",
        "model": cfg.to_dict(),
        "bare_images_per_s": [round(v, 1) for v in bare_runs],
        "lightning_images_per_s": [round(v, 1) for v in lit_runs],
        "ratio_lightning_over_bare": round(ratio, 4),
        "target": 0.95,
        "meets_target": ratio >= 0.95,
        "environment": environment(),
    })


if __name__ == "__main__":
    main()
