"""Images/s of the Lightning trainer relative to a bare PyTorch loop (target >= 0.95).

Both loops train the same first-stage VAE (GenerativeLitModule wrapping the same model class and
initial weights) on the same batches in the same order, for the same number of steps; runs are
interleaved (bare, Lightning, bare, Lightning, ...) and the ratio of the median throughputs is
reported. The Lightning side uses the project's own trainer settings: TensorBoard + CSV logging
of every loss term every 10 steps, epoch-end checkpoints; progress bar off in both.

The work is fixed (images x epochs x repeats); wall time, CPU time, threads and the load average
are reported beside the ratio. Suites: ``quick`` 3,200 images x 1 epoch, 1 repeat; ``full`` 6,400 x 2,
3 repeats.

Usage:
    python benchmarks/trainer_overhead.py --suite quick|full [--data digits|mnist] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import (
    Meter,
    add_suite,
    data_root,
    environment,
    headline,
    result_name,
    set_threads,
    time_text,
    write_result,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--images", type=int, default=6400, help="training images per epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch / OpenMP CPU threads")
    suite = add_suite(p, {"images": 3200, "epochs": 1, "repeats": 1}, {"images": 6400, "epochs": 2, "repeats": 3})
    args = p.parse_args()
    threads = set_threads(args.threads)

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

    with Meter() as meter:
        lightning()  # warm-up: imports and first-call costs
        bare_runs, lit_runs = [], []
        for _ in range(args.repeats):
            bare_runs.append(bare())
            lit_runs.append(lightning())
    ratio = statistics.median(lit_runs) / statistics.median(bare_runs)
    total = meter.record()
    steps = -(-len(data) // args.batch_size) * args.epochs
    write_result(result_name("trainer_overhead", suite), {
        "benchmark": "trainer_overhead",
        "suite": suite,
        "command": f"python benchmarks/trainer_overhead.py --suite {suite} --data {args.data} --images {args.images} "
                   f"--epochs {args.epochs} --batch-size {args.batch_size} --repeats {args.repeats} --threads {threads}",
        "timing": {"total": total},
        "headline": headline(
            f"Lightning {statistics.median(lit_runs):.0f} images/s (median of {args.repeats})",
            reference=f"bare loop {statistics.median(bare_runs):.0f} images/s", ratio=ratio,
            work=f"{len(data)} {args.data} images x {args.epochs} epochs ({steps} steps of {args.batch_size}) x "
                 f"{args.repeats} repeats per loop, 1 warm-up", time_text=time_text(total)),
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
