"""The ``samplers`` study on real MNIST and Fashion-MNIST at fixed work: fid_clf of every latent sampler.

For each dataset in ``--data`` it runs ``latentstudio study samplers`` (the function behind it) in a
fresh folder: one two-stage VAE of ``--preset`` trained for ``--epochs1`` + ``--epochs2`` epochs, then
N(0, I), GMMs with k in ``--gmm-k`` (``--covariances``, fitted on mu and on sampled z), the KDE
baseline on the training mu (``--kde``: Scott's rule and/or the held-out cross-validated bandwidth,
see latentstudio.samplers.kde), the second stage and the reconstructions, each scored with fid_clf
(the project classifier of the dataset; NOT comparable with Inception FIDs) against the test images.
It records the orderings the two-stage papers report (second stage <= 0.8 x N(0, I), GMM < N(0, I),
reconstructions lowest) and the wall time, CPU time, threads and load average beside them.

The budget is work (epochs), never minutes. Suites: ``quick`` studies the model of the first 10,000
MNIST training images at 3 + 30 epochs (the one ``two_stage_mnist.py --suite quick`` trained, when
results/two_stage_mnist_quick.json names it and its config matches, so that ``run.py --suite quick``
trains it once; otherwise it trains the same model), fits the samplers on those 10,000 latents and
scores 2,000 samples per sampler against the first 2,000 test images (full covariance only); ``full``
uses all 60,000 images of MNIST and Fashion-MNIST, the preset's epochs (cpu: 10 + 100) and 10,000
samples per sampler.

Writes benchmarks/results/samplers_<data>[_quick].json and the study folder (report.md with plots and
sample grids) under benchmarks/runs/.

Usage:
    python benchmarks/samplers_study.py --suite quick
    python benchmarks/samplers_study.py --suite full --data mnist,fashion-mnist
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import (
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

QUICK = {"data": "mnist", "limit": 10000, "epochs1": 3, "epochs2": 30, "n_samples": 2000, "n_reference": 2000,
         "covariances": "full", "model": "auto"}
FULL = {"data": "mnist,fashion-mnist", "limit": None, "epochs1": None, "epochs2": None, "n_samples": 10000,
        "n_reference": 10000, "covariances": "full,diag"}


def _steps(run_dir: Path, stage: str) -> int | None:
    import torch

    ckpt = run_dir / stage / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return None
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip() and w.strip().lower() != "none"]


def _reusable_model(name: str, suite: str, spec: dict, epochs1: int, epochs2: int, preset: str, seed: int) -> Path | None:
    """The model of results/two_stage_<data>[_quick].json when its run trained what this study would."""
    from _common import RESULTS

    try:
        prior = json.loads((RESULTS / f"{result_name('two_stage_' + name.replace('-', '_'), suite)}.json").read_text())
        run_dir = Path(prior["run_dir"])
        cfg = json.loads((run_dir / "run.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    want = {"name": name, "limit": spec.get("limit"), "epochs1": epochs1, "epochs2": epochs2, "seed": seed,
            "preset": preset, "stopped": False}
    have = {"name": cfg["data"]["name"], "limit": cfg["data"].get("limit"), "epochs1": cfg["stage1"]["epochs"],
            "epochs2": cfg["stage2"]["epochs"], "seed": cfg.get("seed"), "preset": (prior.get("work") or {}).get("preset"),
            "stopped": bool(prior.get("stopped_by_cap"))}
    ok = (want == have and cfg["stage1"].get("max_steps") is None and cfg["stage2"].get("max_steps") is None
          and (run_dir / "model" / "model.safetensors").is_file() and not prior.get("overrides"))
    return run_dir if ok else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist,fashion-mnist", help="comma-separated: mnist, fashion-mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--limit", type=int, default=None, help="first N images of each split (default all)")
    p.add_argument("--epochs1", type=int, default=None, help="stage-1 epochs (default: the preset's)")
    p.add_argument("--epochs2", type=int, default=None, help="stage-2 epochs (default: the preset's)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--gmm-k", default="1,10,50")
    p.add_argument("--covariances", default="full,diag", help="GMM covariance types")
    p.add_argument("--kde", default="scott,cv", help="KDE bandwidth rules (none: no KDE)")
    p.add_argument("--gmm-fit-size", type=int, default=None, help="latents the GMMs / KDEs are fitted on (default all)")
    p.add_argument("--n-samples", type=int, default=10000, help="generated images per sampler")
    p.add_argument("--n-reference", type=int, default=10000, help="reference test images")
    p.add_argument("--threads", type=int, default=2, help="torch / OpenMP CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None,
                   help="study this two-stage model or run folder instead of training one; 'auto': the run of "
                        "results/two_stage_<data>[_quick].json when its training config is the one asked for")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    suite = add_suite(p, QUICK, FULL)
    args = p.parse_args()
    threads = set_threads(args.threads)

    from latentstudio.presets import preset
    from latentstudio.studies import common as C
    from latentstudio.studies.samplers import orderings, run_samplers

    base = preset("two-stage-vae", args.preset)
    epochs1 = args.epochs1 if args.epochs1 is not None else base["stage1"]["epochs"]
    epochs2 = args.epochs2 if args.epochs2 is not None else base["stage2"]["epochs"]
    ks = [int(k) for k in _words(args.gmm_k)]
    covs, kdes = _words(args.covariances), _words(args.kde)
    defaults = QUICK if suite == "quick" else FULL
    custom = overrides(args, p, defaults, ("limit", "epochs1", "epochs2", "preset", "gmm_k", "covariances", "kde",
                                           "gmm_fit_size", "n_samples", "n_reference", "seed"))
    for name in _words(args.data):
        command = ["python benchmarks/samplers_study.py", f"--suite {suite}", *custom,
                   *overrides(args, p, {}, ("threads",)), f"--data {name}"]
        out_dir = Path(args.runs_root) / (f"samplers-{name}-{suite}" + ("-custom" if custom else ""))
        spec = {"name": name, "root": str(data_root(args.data_root)), "limit": args.limit}
        model = args.model
        if model == "auto":
            model = _reusable_model(name, suite, spec, epochs1, epochs2, args.preset, args.seed)
        e1, e2 = epochs1, epochs2
        if model is not None:
            command.append(f"--model {model}")
            try:  # the work of a given model is its own run's
                cfg = json.loads((Path(model) / "run.json").read_text())["config"]
                e1, e2 = cfg["stage1"]["epochs"], cfg["stage2"]["epochs"]
            except (OSError, ValueError, KeyError):
                e1 = e2 = None
        with Meter() as meter:
            report = run_samplers(out_dir, spec, extractor="classifier", model=model, budget=C.Budget(epochs=epochs1),
                                  budget2=C.Budget(epochs=epochs2), preset=args.preset, gmm_components=ks,
                                  gmm_covariances=covs, kde_bandwidths=kdes, gmm_fit_size=args.gmm_fit_size,
                                  n_reference=args.n_reference, n_samples=args.n_samples, seed=args.seed,
                                  accelerator="cpu", progress=False, overwrite=True, command=" ".join(command))
        study = json.loads((out_dir / "study.json").read_text())
        recs = {}
        for line in (out_dir / "results.jsonl").read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                recs[r["cell"]] = r
        train = recs.pop("train", {})
        run_dir = out_dir / train["run"] if train.get("run") else (Path(model) if model is not None else None)
        steps = {s: _steps(run_dir, s) if run_dir else None for s in ("stage1", "stage2")}
        fid = {k: r["fid"] for k, r in recs.items() if "fid" in r}
        checks = orderings(fid)
        cells = {k: {f: r.get(f) for f in ("fid", "fit_seconds", "sample_seconds", "decode_seconds", "ref_log_density",
                                           "bandwidth_h", "cv_scores") if r.get(f) is not None}
                 for k, r in recs.items()}
        proto = study["protocol"]
        n_train = proto["data"]["train"]["size"]
        gmms = {k: v for k, v in fid.items() if k.startswith("gmm/")}
        best_gmm = min(gmms, key=gmms.get) if gmms else None
        record = meter.record()
        work = (f"{args.preset} preset, {n_train} images: stage 1 {e1} ep ({steps['stage1']} steps), stage 2 "
                f"{e2} ep ({steps['stage2']} steps); {proto['samples_per_sampler']} samples per sampler vs "
                f"{proto['reference_size']} test images")
        kde_txt = ", ".join(f"KDE {k.split('/')[1].removeprefix('bw=')} {fid[k]:.2f}" for k in fid if k.startswith("kde/"))
        parts = [f"second stage {fid['second-stage']:.2f}", f"GMM-10 on mu {fid['gmm/k=10/cov=full/fit=mean']:.2f}"
                 if "gmm/k=10/cov=full/fit=mean" in fid else ""]
        if best_gmm:
            parts.append(f"best GMM ({best_gmm.removeprefix('gmm/')}) {fid[best_gmm]:.2f}")
        parts += [kde_txt, f"reconstructions {fid['reconstruction']:.2f}"]
        out = {
            "benchmark": f"samplers_{name.replace('-', '_')}",
            "suite": suite + (" (custom)" if custom else ""),
            "overrides": custom,
            "command": " ".join(command),
            "model": ("trained by this study" if model is None else
                      f"{model} (trained by two_stage_mnist.py with the same config; timing excludes its training)"),
            "data": {"name": name, "train_images": n_train, "reference": proto["reference"],
                     "fingerprints": {s: proto["data"][s]["fingerprint"] for s in ("train", "reference")}},
            "extractor": proto["extractor"],
            "metric": "fid_clf (project classifier of the dataset; not comparable with Inception FID)",
            "work": {"preset": args.preset, "epochs": {"stage1": e1, "stage2": e2}, "optimizer_steps": steps,
                     "train_images": n_train, "gmm_components": ks, "gmm_covariances": covs, "kde_bandwidths": kdes,
                     "fit_latents": proto["gmm_fit_size"], "samples_per_sampler": proto["samples_per_sampler"],
                     "reference_images": proto["reference_size"]},
            "fid_clf": fid,
            "cells": cells,
            "checks": checks,
            "stage_gammas": {"stage1": train.get("stage1_gamma"), "stage2": train.get("stage2_gamma")},
            "timing": {"total": record, "train_stage_seconds": train.get("stage_seconds")},
            "study_dir": str(out_dir),
            "report": str(report),
            "environment": environment(),
            "headline": headline("fid_clf: " + ", ".join(s for s in parts if s),
                                 reference=f"N(0, I) {fid['normal']:.2f}", ratio=fid["second-stage"] / fid["normal"],
                                 work=work, time_text=time_text(record)),
        }
        write_result(result_name(f"samplers_{name.replace('-', '_')}", suite), out)
    _ = threads


if __name__ == "__main__":
    main()
