"""StyleGAN2 on the real CelebA subset at 32x32 for a fixed CPU budget: fid_clf before and after training.

Trains the ``tiny`` preset (z = w = 128, 2 mapping layers, channels 128/128/64/32 at 4/8/16/32) on
the 5,000 aligned CelebA images of ../shared/data/faces (Dai & Wipf crop, resized to 32x32) for
``--minutes`` of wall clock, then compares the EMA generator with the identically seeded initial
generator. Both are scored with ``fid_clf``: the project classifier trained here on the CelebA
attribute ``Male`` (128-d penultimate features), ``--n`` generated vs ``--n`` training images.
fid_clf is NOT comparable with Inception FIDs.

Writes benchmarks/results/stylegan2_celeba32.json, the run under benchmarks/runs/ and the sample grids
docs/images/stylegan2_celeba32_{init,trained}.png (64 fixed seeds, truncation 1, constant noise).

Usage:
    python benchmarks/stylegan2_celeba.py --data-root ../shared/data/faces [--minutes 35] [--n 2000]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from _common import data_root, environment, write_result

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None, help="folder holding celeba/ (default ../shared/data/faces)")
    p.add_argument("--minutes", type=float, default=35.0)
    p.add_argument("--n", type=int, default=2000, help="images per side of each fid_clf")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default: the preset's 32)")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    args = p.parse_args()

    from latentstudio.io.images import save_grid
    from latentstudio.metrics import BiasedMetricWarning, compute_fid
    from latentstudio.models.stylegan2 import Generator, load_generator, z_from_seed
    from latentstudio.models.stylegan2.networks import images_to_uint8
    from latentstudio.presets import preset
    from latentstudio.training.stylegan2 import (
        StyleGAN2RunConfig,
        build_fid_extractor,
        generate_images,
        load_training_images,
        train_stylegan2,
    )

    root = args.data_root or str(data_root(None) / "faces")
    pr = preset("stylegan2", "tiny")
    run = StyleGAN2RunConfig.from_dict({
        "data": {"name": "celeba", "root": root},
        "model": pr["model"],
        "train": {**pr["train"], "max_minutes": args.minutes, "epochs": 10_000, "grid_every_n_epochs": 1,
                  **({"batch_size": args.batch_size} if args.batch_size else {})},
        "seed": args.seed,
        "classifier_label": "Male",
    })
    t0 = time.perf_counter()
    data = load_training_images(run)
    load_s = time.perf_counter() - t0
    extractor = build_fid_extractor(run, data)
    n = min(args.n, len(data))
    real = data.images[torch.randperm(len(data), generator=torch.Generator().manual_seed(1))[:n]]
    grid_z = torch.cat([z_from_seed(s, run.model.z_dim) for s in range(64)])

    def score(G) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BiasedMetricWarning)
            return compute_fid(real, generate_images(G, n, seed=args.seed + 1), extractor)

    def grid(G, name: str) -> Path:
        with torch.no_grad():
            img = images_to_uint8(G.eval()(grid_z, noise_mode="const"))
        return save_grid(img, DOCS_IMAGES / name, nrow=8, overwrite=True)

    torch.manual_seed(args.seed)  # the training run builds its G first after seeding with the same seed
    G0 = Generator(run.model).eval()
    fid_init = score(G0)
    grid(G0, "stylegan2_celeba32_init.png")

    t1 = time.perf_counter()
    result = train_stylegan2(run, runs_root=args.runs_root, progress=False, data=data)
    train_s = time.perf_counter() - t1
    G = load_generator(result.model_dir)
    fid_final = score(G)
    grid(G, "stylegan2_celeba32_trained.png")
    import json

    meta = json.loads((result.model_dir / "meta.json").read_text())
    out = {
        "task": "StyleGAN2 tiny preset, CelebA subset 32x32 (5000 images), CPU budget",
        "command": f"python benchmarks/stylegan2_celeba.py --minutes {args.minutes} --n {args.n}"
                   + (f" --batch-size {args.batch_size}" if args.batch_size else ""),
        "batch_size": run.train.batch_size,
        "load_average_1min_end": __import__("os").getloadavg()[0],
        "metric": "fid_clf (project classifier on CelebA 'Male'; not comparable with Inception FID)",
        "classifier": {k: extractor.config.get(k) for k in ("train_accuracy_last_epoch", "num_train", "epochs")},
        "num_images_per_side": n,
        "fid_clf_initial_weights": round(fid_init, 3),
        "fid_clf_trained_g_ema": round(fid_final, 3),
        "improved": fid_final < fid_init,
        "kimg": meta.get("kimg"),
        "train_seconds": round(train_s, 1),
        "data_load_seconds": round(load_s, 1),
        "run_dir": str(result.run_dir),
        "grids": ["docs/images/stylegan2_celeba32_init.png", "docs/images/stylegan2_celeba32_trained.png"],
        "environment": environment(),
    }
    write_result("stylegan2_celeba32", out)


if __name__ == "__main__":
    main()
