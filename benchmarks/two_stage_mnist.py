"""Two-Stage VAE on real MNIST at a fixed CPU budget: fid_clf per sampler, reconstructions, latents.

Trains stage 1 for ``--minutes1`` and stage 2 for ``--minutes2`` (wall clock, Lightning's
``max_time``), then evaluates against the 10,000 MNIST test images with the project classifier
(``fid_clf``: NOT comparable with Inception FIDs), N(0, I) / GMM-10 / second-stage samplers,
reconstruction fid_clf, inactive latents and gamma. With ``--conditional`` it trains the
class-conditional variant and reports the fraction of samples classified as the requested digit.

Writes benchmarks/results/two_stage_mnist[_conditional].json (and the run directory under
benchmarks/runs/).

Usage:
    python benchmarks/two_stage_mnist.py --data-root ../shared/data [--minutes1 12 --minutes2 3] [--conditional]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import data_root, environment, write_result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--minutes1", type=float, default=12.0)
    p.add_argument("--minutes2", type=float, default=3.0)
    p.add_argument("--conditional", action="store_true")
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--gamma-init", type=float, default=None, help="initial gamma of both stages (default: preset's)")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    args = p.parse_args()

    from latentstudio import api
    from latentstudio.evaluation import evaluate
    from latentstudio.metrics import read_records
    from latentstudio.presets import merge, preset

    root = str(data_root(args.data_root))
    spec = merge(preset("two-stage-vae", args.preset), {
        "data": {"name": "mnist", "root": root},
        "stage1": {"epochs": 1000, "max_minutes": args.minutes1},
        "stage2": {"epochs": 1000, "max_minutes": args.minutes2},
        "model": {"stage1": {"condition": "class" if args.conditional else "none"}},
        "seed": args.seed,
    })
    if args.gamma_init is not None:
        spec = merge(spec, {"model": {"stage1": {"gamma_init": args.gamma_init}, "stage2": {"gamma_init": args.gamma_init}}})
    t0 = time.perf_counter()
    result = api.train("two-stage-vae", spec, runs_root=args.runs_root, progress=False)
    train_s = time.perf_counter() - t0
    report = evaluate(result.model_dir, {"name": "mnist", "root": root}, extractor="classifier",
                      n_samples=args.n_samples, seed=args.seed, progress=False)
    rows = read_records(report.parent)
    fid = {r["source"]: r["value"] for r in rows if r["metric"] == "fid_clf"}
    out = {
        "benchmark": "two_stage_mnist" + ("_conditional" if args.conditional else ""),
        "command": "python benchmarks/two_stage_mnist.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("conditional", "runs_root") and v is not None
        ) + (" --conditional" if args.conditional else ""),
        "extractor": "classifier (project CNN trained on MNIST train; fid_clf, not Inception FID)",
        "reference": "mnist/test (10000 images)",
        "fid_clf": fid,
        "kid_clf": {r["source"]: r["value"] for r in rows if r["metric"] == "kid_clf"},
        "classifier_accuracy": {r["source"]: r["value"] for r in rows if r["metric"] == "classifier_accuracy"},
        "classifier_accuracy_per_digit": {r["source"]: r["per_class"] for r in rows
                                          if r["metric"] == "classifier_accuracy"},
        "inactive_latents": next(r["value"] for r in rows if r["metric"] == "inactive_latents"),
        "latent_dim": result.model.config.stage1.latent_dim,
        "gamma": next(r["value"] for r in rows if r["metric"] == "gamma"),
        "gamma_z": next(r["value"] for r in rows if r["metric"] == "gamma_z"),
        "recon_mse": next(r["value"] for r in rows if r["metric"] == "recon_mse"),
        "train_seconds": round(train_s, 1),
        "budget_minutes": {"stage1": args.minutes1, "stage2": args.minutes2},
        "run_dir": str(result.run_dir),
        "report": str(report),
        "environment": environment(),
    }
    if not args.conditional:
        gen = [fid[k] for k in ("normal", "gmm", "second-stage")]
        out["checks"] = {
            "second_stage_le_0.8_normal": fid["second-stage"] <= 0.8 * fid["normal"],
            "gmm_lt_normal": fid["gmm"] < fid["normal"],
            "reconstruction_below_all_generation": fid["reconstruction"] < min(gen),
        }
    else:
        per_digit = out["classifier_accuracy_per_digit"]
        out["checks"] = {f"{k}_every_digit_ge_0.9": min(v) >= 0.9 for k, v in per_digit.items()}
    write_result(out["benchmark"], out)


if __name__ == "__main__":
    main()
