"""Two-Stage VAE on real MNIST (or Fashion-MNIST) at fixed work: fid_clf per sampler, reconstructions, latents.

Trains stage 1 for ``--epochs1`` and stage 2 for ``--epochs2`` epochs (optionally capped at
``--max-steps1`` / ``--max-steps2`` optimizer steps) of the ``--preset`` model, then evaluates against
the 10,000 test images with the project classifier (``fid_clf``: NOT comparable with Inception FIDs):
N(0, I) / GMM-10 / second-stage samplers, reconstruction fid_clf, inactive latents and gamma. With
``--conditional`` it trains the class-conditional variant and reports the fraction of samples
classified as the requested digit.

The budget is work, never minutes: the same command and seed give the same figures on an idle or a
loaded machine (with the same ``--threads``; up to the math libraries' nondeterminism). Wall time,
CPU time, threads and the load average are reported beside the result. ``--max-minutes`` is a
safety cap only: a run it stops is marked ``"stopped_by_cap": true`` and its checks are void.

Suites: ``quick`` trains on the first 10,000 training images (3 + 30 epochs, 237 + 1,170 steps),
evaluates against the test set with the classifier of those 10,000 images and draws 5,000 samples
per sampler; ``full`` is the preset's schedule on all 60,000 images (cpu: 10 + 100 epochs) with 10,000
samples per sampler.

Writes benchmarks/results/two_stage_<data>[_conditional][_quick].json (``--result-name`` overrides)
and the run directory under benchmarks/runs/; ``full`` (unconditional) also writes the README's figure
docs/images/<name>_samples.png (:func:`sample_strip`).

Usage:
    python benchmarks/two_stage_mnist.py --suite quick [--threads 2]
    python benchmarks/two_stage_mnist.py --suite full [--data fashion-mnist] [--conditional --gamma-init 1.0]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from _common import (
    DOCS_IMAGES,
    ROOT,
    Meter,
    add_suite,
    data_root,
    environment,
    headline,
    overrides,
    result_name,
    set_threads,
    time_text,
    write_result,
)

QUICK = {"limit": 10000, "epochs1": 3, "epochs2": 30, "n_samples": 5000}
FULL = {"limit": None, "epochs1": None, "epochs2": None, "n_samples": 10000}


STRIP = ("samples-normal.png", "samples-gmm.png", "samples-second-stage.png", "reconstructions.png")


def sample_strip(eval_dir: Path, path: Path, gap: int = 10) -> Path:
    """The evaluation's grids side by side, ``gap`` white pixels apart: left to right N(0, I), GMM, second
    stage, reconstructions (odd rows the originals). Grey ``uint8`` PNG at ``path`` (replaced)."""
    import torch

    from latentstudio.io.images import load_image, save_image

    grids = [load_image(eval_dir / name, channels=1) for name in STRIP]
    space = torch.full((1, grids[0].shape[1], gap), 255, dtype=torch.uint8)
    parts = [g for grid in grids for g in (grid, space)][:-1]
    return save_image(torch.cat(parts, dim=2), path, overwrite=True)


def _steps(run_dir: Path, stage: str) -> int | None:
    """Optimizer steps a stage took (``global_step`` of its last checkpoint)."""
    import torch

    ckpt = run_dir / stage / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return None
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images (default all)")
    p.add_argument("--epochs1", type=int, default=None, help="stage-1 epochs (default: the preset's)")
    p.add_argument("--epochs2", type=int, default=None, help="stage-2 epochs (default: the preset's)")
    p.add_argument("--max-steps1", type=int, default=None, help="stage-1 optimizer steps cap (work)")
    p.add_argument("--max-steps2", type=int, default=None, help="stage-2 optimizer steps cap (work)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock safety cap on training (off by default); a capped run is marked and its checks void")
    p.add_argument("--threads", type=int, default=2, help="torch / OpenMP CPU threads")
    p.add_argument("--conditional", action="store_true")
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--gamma-init", type=float, default=None, help="initial gamma of both stages (default: preset's)")
    p.add_argument("--result-name", default=None, help="results/<name>.json (default two_stage_<data>[_conditional])")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    suite = add_suite(p, QUICK, FULL)
    args = p.parse_args()
    threads = set_threads(args.threads)

    from latentstudio import api
    from latentstudio.evaluation import evaluate
    from latentstudio.metrics import read_records
    from latentstudio.presets import merge, preset

    root = str(data_root(args.data_root))
    base = preset("two-stage-vae", args.preset)
    epochs1 = args.epochs1 if args.epochs1 is not None else base["stage1"]["epochs"]
    epochs2 = args.epochs2 if args.epochs2 is not None else base["stage2"]["epochs"]
    spec = merge(base, {
        "data": {"name": args.data, "root": root, "limit": args.limit},
        "stage1": {"epochs": epochs1, "max_steps": args.max_steps1},
        "stage2": {"epochs": epochs2, "max_steps": args.max_steps2},
        "max_minutes": args.max_minutes,
        "model": {"stage1": {"condition": "class" if args.conditional else "none"}},
        "seed": args.seed,
        "accelerator": "cpu",
    })
    if args.gamma_init is not None:
        spec = merge(spec, {"model": {"stage1": {"gamma_init": args.gamma_init}, "stage2": {"gamma_init": args.gamma_init}}})
    with Meter() as train_meter:
        result = api.train("two-stage-vae", spec, runs_root=args.runs_root, progress=False)
    with Meter() as eval_meter:
        report = evaluate(result.model_dir, {"name": args.data, "root": root, "limit": args.limit}, extractor="classifier",
                          n_samples=args.n_samples, seed=args.seed, progress=False)
    import json

    meta = json.loads((result.model_dir / "meta.json").read_text())
    capped = any(bool(v) for v in (meta.get("stopped_by_cap") or {}).values())
    rows = read_records(report.parent)
    fid = {r["source"]: r["value"] for r in rows if r["metric"] == "fid_clf"}
    n_train = meta.get("dataset", {}).get("size")
    steps = {"stage1": _steps(result.run_dir, "stage1"), "stage2": _steps(result.run_dir, "stage2")}
    base_name = "two_stage_" + args.data.replace("-", "_") + ("_conditional" if args.conditional else "")
    name = args.result_name or result_name(base_name, suite)
    custom = overrides(args, p, QUICK if suite == "quick" else FULL,
                       ("limit", "epochs1", "epochs2", "max_steps1", "max_steps2", "n_samples", "seed", "preset",
                        "gamma_init"))
    command = ["python benchmarks/two_stage_mnist.py", f"--suite {suite}", *custom,
               *overrides(args, p, {}, ("data", "max_minutes", "threads"))]
    if args.conditional:
        command.append("--conditional")
    timing = {"train": train_meter.record(), "evaluate": eval_meter.record()}
    total = {"wall_seconds": round(train_meter.wall + eval_meter.wall, 1),
             "cpu_seconds": round(train_meter.cpu + eval_meter.cpu, 1), "threads": threads,
             "load_average_before": timing["train"]["load_average_before"],
             "load_average_after": timing["evaluate"]["load_average_after"]}
    work = (f"{args.preset} preset, {n_train} images: stage 1 {epochs1} ep ({steps['stage1']} steps), "
            f"stage 2 {epochs2} ep ({steps['stage2']} steps); {args.n_samples} samples per sampler")
    out = {
        "benchmark": name,
        "suite": suite + (" (custom)" if custom else ""),
        "overrides": custom,
        "command": " ".join(command),
        "data": f"{args.data} train (first {n_train} images)" if args.limit else f"{args.data} train ({n_train} images)",
        "extractor": f"classifier (project CNN trained on {args.data} train; fid_clf, not Inception FID)",
        "reference": f"{args.data}/test (10000 images)",
        "work": {"preset": args.preset, "train_images": n_train, "epochs": {"stage1": epochs1, "stage2": epochs2},
                 "max_steps": {"stage1": args.max_steps1, "stage2": args.max_steps2}, "optimizer_steps": steps,
                 "samples_per_sampler": args.n_samples},
        "stopped_by_cap": capped,
        "max_minutes": args.max_minutes,
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
        "timing": {**timing, "total": total},
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
        out["headline"] = headline(
            f"fid_clf: second stage {fid['second-stage']:.2f}, GMM-10 {fid['gmm']:.2f}, "
            f"reconstructions {fid['reconstruction']:.2f}",
            reference=f"N(0, I) {fid['normal']:.2f}", ratio=fid["second-stage"] / fid["normal"],
            work=work, time_text=time_text(total))
    else:
        per_digit = out["classifier_accuracy_per_digit"]
        out["checks"] = {f"{k}_every_digit_ge_0.9": min(v) >= 0.9 for k, v in per_digit.items()}
        acc = out["classifier_accuracy"]
        worst = {k: min(v) for k, v in per_digit.items()}
        out["headline"] = headline(
            "samples classified as requested: " + ", ".join(f"{k} {acc[k]:.3f} (worst digit {worst[k]:.3f})"
                                                              for k in sorted(acc)),
            reference="target >= 0.9 on every digit", work=work, time_text=time_text(total))
    if capped:
        out["checks"] = {k: None for k in out["checks"]}
        out["headline"]["result"] += " (STOPPED BY --max-minutes: not comparable)"
    if any(isinstance(v, float) and not math.isfinite(v) for v in fid.values()):
        out["headline"]["result"] += " (non-finite fid_clf)"
    if suite == "full" and not args.conditional:
        out["figure"] = str(sample_strip(report.parent, DOCS_IMAGES / f"{name}_samples.png").relative_to(ROOT))
    write_result(name, out)


if __name__ == "__main__":
    main()
