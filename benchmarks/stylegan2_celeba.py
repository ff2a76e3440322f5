"""StyleGAN2 on the real CelebA subset at 32x32 at fixed work: fid_clf before and after training.

Trains the ``tiny`` preset (z = w = 128, 2 mapping layers, channels 128/128/64/32 at 4/8/16/32) on
the 5,000 aligned CelebA images of ../shared/data/faces (Dai & Wipf crop, resized to 32x32) for
``--kimg`` thousand training images (``total_kimg``; work, not minutes: the same command and seed give
the same figures on an idle or a loaded machine with the same ``--threads``), then compares the EMA
generator with the identically seeded initial generator. Wall time, CPU time, threads and the load
average are reported beside the result; ``--max-minutes`` is only a safety cap (a run it stops is
marked ``"stopped_by_cap": true``). Both are scored with ``fid_clf``: the project classifier trained here on the CelebA
attribute ``Male`` (128-d penultimate features), ``--n`` generated vs ``--n`` training images.
fid_clf is NOT comparable with Inception FIDs.

Writes benchmarks/results/stylegan2_celeba32.json, the run under benchmarks/runs/ and the sample grids
docs/images/stylegan2_celeba32_{init,trained}.png (64 fixed seeds, truncation 1, constant noise).

Suites: ``quick`` 4 kimg and 500 images per side; ``full`` 60 kimg (about what 30 minutes on one idle
core gave before) and 2,000 per side.

Usage:
    python benchmarks/stylegan2_celeba.py --suite quick
    python benchmarks/stylegan2_celeba.py --suite full [--data-root ../shared/data/faces] [--kimg 60] [--n 2000]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from _common import (
    DOCS_IMAGES,
    ROOT,
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
    p.add_argument("--data-root", default=None, help="folder holding celeba/ (default ../shared/data/faces)")
    p.add_argument("--kimg", type=float, default=60.0, help="training budget: thousands of real images shown to D")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock safety cap (off by default)")
    p.add_argument("--threads", type=int, default=1, help="torch / OpenMP CPU threads")
    p.add_argument("--n", type=int, default=2000, help="images per side of each fid_clf")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default: the preset's 32)")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    suite = add_suite(p, {"kimg": 4.0, "n": 500}, {"kimg": 60.0, "n": 2000})
    args = p.parse_args()
    threads = set_threads(args.threads)

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
        "train": {**pr["train"], "total_kimg": args.kimg, "max_minutes": args.max_minutes, "epochs": 10_000,
                  "grid_every_n_epochs": 1,
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

    grid_dir = DOCS_IMAGES if suite == "full" else Path(args.runs_root)  # quick runs leave the docs' grids alone
    grids: list[str] = []

    def grid(G, name: str) -> Path:
        with torch.no_grad():
            img = images_to_uint8(G.eval()(grid_z, noise_mode="const"))
        path = save_grid(img, grid_dir / name, nrow=8, overwrite=True)
        full = path.resolve()
        grids.append(str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(path))
        return path

    torch.manual_seed(args.seed)  # the training run builds its G first after seeding with the same seed
    G0 = Generator(run.model).eval()
    fid_init = score(G0)
    grid(G0, "stylegan2_celeba32_init.png")

    with Meter() as train_meter:
        result = train_stylegan2(run, runs_root=args.runs_root, progress=False, data=data)
    G = load_generator(result.model_dir)
    with Meter() as score_meter:
        fid_final = score(G)
    grid(G, "stylegan2_celeba32_trained.png")
    import json

    meta = json.loads((result.model_dir / "meta.json").read_text())
    capped = float(meta.get("kimg") or 0.0) < args.kimg  # the budget was not reached: the safety cap stopped it
    train_rec = train_meter.record()
    total = {**train_rec, "wall_seconds": round(train_meter.wall + score_meter.wall, 1),
             "cpu_seconds": round(train_meter.cpu + score_meter.cpu, 1),
             "load_average_after": score_meter.record()["load_average_after"]}
    out = {
        "task": "StyleGAN2 tiny preset, CelebA subset 32x32 (5000 images), fixed kimg",
        "suite": suite,
        "command": f"python benchmarks/stylegan2_celeba.py --suite {suite} --kimg {args.kimg:g} --n {args.n} "
                   f"--threads {threads}" + (f" --batch-size {args.batch_size}" if args.batch_size else "")
                   + (f" --max-minutes {args.max_minutes:g}" if args.max_minutes else ""),
        "batch_size": run.train.batch_size,
        "budget_kimg": args.kimg,
        "stopped_by_cap": capped,
        "metric": "fid_clf (project classifier on CelebA 'Male'; not comparable with Inception FID)",
        "classifier": {k: extractor.config.get(k) for k in ("train_accuracy_last_epoch", "num_train", "epochs")},
        "num_images_per_side": n,
        "fid_clf_initial_weights": round(fid_init, 3),
        "fid_clf_trained_g_ema": round(fid_final, 3),
        "improved": fid_final < fid_init,
        "kimg": meta.get("kimg"),
        "train_seconds": round(train_meter.wall, 1),
        "timing": {"train": train_rec, "total": total},
        "data_load_seconds": round(load_s, 1),
        "run_dir": str(result.run_dir),
        "grids": grids,
        "environment": environment(),
    }
    out["headline"] = headline(
        f"fid_clf of the trained G_ema {fid_final:.2f}" + (" (STOPPED BY --max-minutes)" if capped else ""),
        reference=f"initial weights {fid_init:.2f}", ratio=fid_final / fid_init,
        work=f"tiny preset, {meta.get('kimg')} kimg (batch {run.train.batch_size}); {n} images per side",
        time_text=time_text(total))
    write_result(result_name("stylegan2_celeba32", suite), out)


if __name__ == "__main__":
    main()
