"""DRAW on real binarised MNIST: attention vs no attention at the same CPU budget (or conditional DRAW).

Both arms train the ``cpu`` preset's DRAW (T = 16 steps x 10 latents, LSTM 256, binarised 28x28
MNIST, Bernoulli decoder) for ``--minutes`` of wall clock *at the same time*, each in its own
process with ``--threads`` threads, so that both see the same load on a shared machine; each
process also reports the CPU seconds it used. The attention arm reads and writes 5x5
Gaussian-filterbank patches (Gregor et al. 2015 read 2x2 on MNIST; at this budget a 2x2 reader
learns far more slowly); the other reads the whole image and writes densely. Each arm is then evaluated on the 10,000 MNIST test images:

- ``nll``: importance-sampled -log p(x) in nats (K = ``--nll-samples``) on the first
  ``--nll-images`` test images binarised at 0.5, with its standard error;
- ``nelbo``: the negative ELBO (the paper's "NLL <=" number) on all test images;
- ``kl`` and ``kl_per_step`` (nats), inactive latents per step, variance law;
- ``fid_clf`` of 10,000 samples and of the reconstructions (the project classifier's features,
  NOT comparable with Inception FID), reconstruction MSE/BCE.

With ``--conditional`` a single class-conditional arm is trained instead and the fraction of
samples conditioned on digit d that the project classifier assigns to d is reported per digit.

Writes benchmarks/results/draw_mnist.json (or draw_mnist_conditional.json); run directories go
under benchmarks/runs/.

Usage:
    python benchmarks/draw_mnist.py --data-root ../shared/data --minutes 25
    python benchmarks/draw_mnist.py --data-root ../shared/data --minutes 15 --conditional
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import data_root, environment, write_result

ARMS = {
    "attention": {"attention": True, "read_n": 5, "write_n": 5},
    "no-attention": {"attention": False},
}


def _spec(args, arm: str) -> dict:
    from latentstudio.presets import merge, preset

    model = dict(ARMS.get(arm, ARMS["no-attention"]))
    if arm == "conditional":
        model = {**dict(ARMS[args.conditional_arm]), "condition": "class"}
    for key in ("steps", "latent_dim", "lstm_dim"):
        v = getattr(args, key)
        if v is not None:
            model.update({"enc_dim": v, "dec_dim": v} if key == "lstm_dim" else {key: v})
    return merge(preset("draw", args.preset), {
        "data": {"name": "mnist", "root": str(data_root(args.data_root)), "options": {"pad": 0}},
        "model": model,
        "train": {"epochs": 1000, "max_minutes": args.minutes, "grid_every_n_epochs": 1},
        "seed": args.seed,
    })


def run_arm(args, arm: str, out_json: Path) -> None:
    """Train and evaluate one arm in this process; write its summary to ``out_json``."""
    import torch

    torch.set_num_threads(args.threads)
    from latentstudio import api
    from latentstudio.evaluation import evaluate, load_records, summarize_records

    spec = _spec(args, arm)
    t0 = time.perf_counter()
    result = api.train("draw", spec, runs_root=Path(args.runs_root) / arm, progress=False)
    train_s = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    meta = json.loads((result.model_dir / "meta.json").read_text())
    t1 = time.perf_counter()
    report = evaluate(result.model_dir, None, extractor="classifier", n_samples=args.n_samples, seed=args.seed,
                      progress=False, nll_samples=args.nll_samples, nll_images=args.nll_images)
    out = {
        "arm": arm,
        "model": result.model.config.to_dict(),
        "train": spec["train"],
        "train_wall_seconds": round(train_s, 1),
        "train_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "optimizer_steps": meta["optimizer_steps"],
        "epochs_seen": round(meta["optimizer_steps"] * spec["train"]["batch_size"] / 60000, 2),
        "eval_wall_seconds": round(time.perf_counter() - t1, 1),
        "run_dir": str(result.run_dir),
        "report": str(report),
        "curve": learning_curve(result.run_dir),
        **summarize_records(load_records(report)),
    }
    out_json.write_text(json.dumps(out, indent=2, default=str))


def learning_curve(run_dir: str | Path, every: int = 50) -> dict[str, list[float]]:
    """Training loss (negative ELBO of the batch, nats) against optimiser steps, from the run's CSV log,
    averaged over windows of ``every`` steps."""
    import csv

    rows = list(csv.DictReader((Path(run_dir) / "train" / "logs" / "csv" / "metrics.csv").open()))
    points = [(int(r["step"]), float(r["train/loss_step"])) for r in rows if r.get("train/loss_step")]
    steps, losses = [], []
    for start in range(0, max((s for s, _ in points), default=-1) + 1, every):
        window = [(s, v) for s, v in points if start <= s < start + every]
        if window:  # plotted at the mean step of the window
            steps.append(round(sum(s for s, _ in window) / len(window) + 1))
            losses.append(round(sum(v for _, v in window) / len(window), 2))
    return {"steps": steps, "train_loss": losses}


def plot_curves(out: dict, path: Path) -> None:
    """Training loss against steps and against the share of the wall-clock budget, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for arm, r in out["arms"].items():
        c = r.get("curve") or learning_curve(r["run_dir"])
        minutes = [s / r["optimizer_steps"] * r["train_wall_seconds"] / 60 for s in c["steps"]]
        label = f"{arm} ({r['optimizer_steps']} steps, test NLL {r['nll']:.1f})"
        ax[0].plot(c["steps"], c["train_loss"], label=label)
        ax[1].plot(minutes, c["train_loss"], label=label)
    for a, xlabel in zip(ax, ("optimiser steps", "wall-clock minutes (shared machine)"), strict=True):
        a.set_xlabel(xlabel)
        a.set_ylabel("training loss (nats, negative ELBO)")
        a.set_ylim(top=260)
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("DRAW on binarised MNIST at an equal wall-clock budget")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--minutes", type=float, default=25.0, help="wall-clock training budget of each arm")
    p.add_argument("--threads", type=int, default=1, help="torch threads per arm (arms run concurrently)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=None, help="override the preset's T")
    p.add_argument("--latent-dim", type=int, default=None, help="override the preset's latent size per step")
    p.add_argument("--lstm-dim", type=int, default=None, help="override the preset's LSTM size")
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--nll-samples", type=int, default=50)
    p.add_argument("--nll-images", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditional", action="store_true", help="train one class-conditional arm instead")
    p.add_argument("--conditional-arm", default="no-attention", choices=sorted(ARMS))
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    p.add_argument("--plot-only", action="store_true",
                   help="add learning curves to an existing results file and draw them (no training)")
    p.add_argument("--only-arm", default=None, help=argparse.SUPPRESS)
    p.add_argument("--arm-json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.only_arm:
        run_arm(args, args.only_arm, Path(args.arm_json))
        return
    if args.plot_only:
        from _common import RESULTS

        path = RESULTS / "draw_mnist.json"
        out = json.loads(path.read_text())
        for r in out["arms"].values():
            r["curve"] = learning_curve(r["run_dir"])
        plot_curves(out, RESULTS / "draw_mnist_curves.png")
        path.write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
        print(f"wrote {RESULTS / 'draw_mnist_curves.png'} and the curves in {path}")
        return

    import torch

    torch.set_num_threads(args.threads)  # small recurrent ops: more threads than free cores only add waiting
    from latentstudio.data import load_images
    from latentstudio.metrics import get_classifier

    # the project classifier (fid_clf, conditional accuracy) is trained once here and cached
    root = data_root(args.data_root)
    train = load_images("mnist", "train", root=root, pad=0)
    test = load_images("mnist", "test", root=root, pad=0)
    clf = get_classifier(train, test=test, progress=False)

    arms = ["conditional"] if args.conditional else list(ARMS)
    forwarded = [a for a in sys.argv[1:]]
    procs = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for arm in arms:
            out_json = Path(tmp) / f"{arm}.json"
            cmd = [sys.executable, __file__, *forwarded, "--only-arm", arm, "--arm-json", str(out_json)]
            procs[arm] = (subprocess.Popen(cmd), out_json)
        results = {}
        for arm, (proc, out_json) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"arm {arm} failed with exit status {proc.returncode}")
            results[arm] = json.loads(out_json.read_text())
        wall = time.perf_counter() - t0

    command = "python benchmarks/draw_mnist.py " + " ".join(forwarded)
    out = {
        "benchmark": "draw_mnist" + ("_conditional" if args.conditional else ""),
        "command": command,
        "data": "MNIST 28x28 (pad=0), binarised at 0.5; train 60000, test 10000",
        "budget": (f"{args.minutes} min wall clock per arm, arms trained concurrently with {args.threads} torch "
                   "thread(s) each on a shared 2-core CPU machine (see train_cpu_seconds for the CPU time each got)"),
        "extractor": f"classifier (project CNN on MNIST train, test accuracy {clf.test_accuracy:.4f}; fid_clf, "
                     "not Inception FID)",
        "nll": f"importance sampled, K = {args.nll_samples}, first {args.nll_images} test images, nats",
        "arms": results,
        "total_wall_seconds": round(wall, 1),
        "environment": environment(),
    }
    if args.conditional:
        r = results["conditional"]
        out["checks"] = {"every_digit_ge_0.9": min(r["classifier_accuracy_per_class"]) >= 0.9}
    else:
        a, b = results["attention"], results["no-attention"]
        out["comparison"] = {
            "nll_attention_minus_no_attention": round(a["nll"] - b["nll"], 3),
            "combined_stderr": round((a["nll_stderr"] ** 2 + b["nll_stderr"] ** 2) ** 0.5, 3),
            "nelbo_attention_minus_no_attention": round(a["nelbo"] - b["nelbo"], 3),
            "optimizer_steps": {"attention": a["optimizer_steps"], "no-attention": b["optimizer_steps"]},
        }
        out["checks"] = {"attention_nll_lower": a["nll"] < b["nll"]}
    path = write_result(out["benchmark"], out)
    if not args.conditional:
        plot_curves(out, path.with_name("draw_mnist_curves.png"))


if __name__ == "__main__":
    main()
