"""DRAW on real binarised MNIST: attention against no attention at an equal number of optimizer steps.

Both arms train the same preset (default ``paper``: Gregor et al. 2015, table 3, MNIST: T = 64
glimpses, LSTM 256, z_t of 100 at each step; the attention arm reads 2x2 and writes 5x5 Gaussian
filterbank patches, the other reads [x, x_hat] and writes densely) through ``latentstudio train
draw`` on MNIST 28x28 binarised at 0.5, for the same number of optimizer steps, with the same seed
(same batches, same noise at every step), each in its own process with ``--threads`` torch threads;
by default the two processes run at the same time so that both see the same load. The budget is
work (optimizer steps), never wall-clock time.

The learning curve: every ``--eval-every`` steps the training pauses and the test NLL is estimated
by importance sampling (K = ``--nll-samples`` passes of DRAW's sequential posterior, ``-log p(x)``
in nats) on the first ``--nll-images`` MNIST test images; the same images and the same sampling
noise at every checkpoint and in both arms, so that differences are paired. The pause does not
change the training (its noise has its own generator). After the last step the NLL and the
negative ELBO (the paper's "NLL <=" figure) are estimated on the first ``--final-nll-images`` test
images (all 10,000 in ``full``). Wall-clock and CPU seconds of training and of evaluation, the
threads and the load average before and after are recorded beside the results.

Suites (explicit options override them):

- ``quick``: a smoke test of the protocol, not a result: 30 steps, checkpoints every 10 steps on
  50 test images, final NLL on 100 test images, K = 50 (a few minutes on 2 idle cores).
- ``full``: the real run (see docs/draw.md for how its budget was chosen).

Outputs: benchmarks/results/draw_paper.json (``quick``: draw_paper_quick.json) and the curves
docs/images/draw_paper_curves.png (``quick``: benchmarks/runs/draw_paper_quick_curves.png).

Other modes:

- ``--measure-step-time``: seconds per training step and per importance-sampled test image of
  both arms with 1 and 2 threads, alone and side by side (benchmarks/results/draw_paper_step_time.json).
- ``--conditional``: one class-conditional arm (``--preset cpu``), evaluated with the project's
  report (the classifier's accuracy on samples of each requested digit) into draw_mnist_conditional.json.
- ``--report``: also run the project's evaluation (fid_clf, per-step KL ...) on every arm.
- ``--plot-only``: redraw the curves of an existing results file.

Usage:
    python benchmarks/draw_mnist.py --suite quick
    python benchmarks/draw_mnist.py --suite full
    python benchmarks/draw_mnist.py --measure-step-time
    python benchmarks/draw_mnist.py --conditional --preset cpu --steps 2256
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DOCS_IMAGES, RESULTS, data_root, environment, write_result

ARMS = {
    "attention": {"attention": True},
    "no-attention": {"attention": False},
}
SUITES = {
    "quick": {"steps": 30, "eval_every": 10, "nll_images": 50, "final_nll_images": 100, "nll_samples": 50},
    "full": {"steps": 1000, "eval_every": 125, "nll_images": 200, "final_nll_images": 10000, "nll_samples": 50},
}
EVAL_SEED = 20150216  # noise of the importance samples, the same at every checkpoint and in both arms
RUNS = Path(__file__).parent / "runs"


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def resolve(args) -> argparse.Namespace:
    """Suite defaults under the explicit options."""
    suite = SUITES[args.suite]
    for key, value in suite.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.final_nll_images = min(args.final_nll_images, 10000)
    return args


def _spec(args, arm: str) -> dict:
    from latentstudio.presets import merge, preset

    model = dict(ARMS.get(arm, ARMS["no-attention"]))
    if arm == "conditional":
        model = {**dict(ARMS[args.conditional_arm]), "condition": "class"}
    for key in ("glimpses", "latent_dim", "lstm_dim", "read_n", "write_n"):
        v = getattr(args, key)
        if v is not None:
            name = {"glimpses": "steps"}.get(key, key)
            model.update({"enc_dim": v, "dec_dim": v} if key == "lstm_dim" else {name: v})
    train = {"epochs": 10_000, "max_steps": args.steps, "log_every_n_steps": 5}
    if args.batch_size is not None:
        train["batch_size"] = args.batch_size
    return merge(preset("draw", args.preset), {
        "data": {"name": "mnist", "root": str(data_root(args.data_root)), "options": {"pad": 0}},
        "model": model,
        "train": train,
        "seed": args.seed,
    })


def test_images(args, n: int):
    """The first ``n`` MNIST test images binarised at 0.5 (``float32 [n, 1, 28, 28]``) and their labels."""
    from latentstudio.data import load_images
    from latentstudio.data.images import binarize_images
    from latentstudio.io.images import to_float

    test = load_images("mnist", "test", root=data_root(args.data_root), pad=0)
    return to_float(binarize_images(test.images[:n])), test.labels[:n]


def estimate(model, x, cond, k: int) -> dict:
    """Importance-sampled NLL and negative ELBO of ``x`` (nats), with the time it took."""
    import torch

    t0, c0 = time.perf_counter(), cpu_seconds()
    was_training = model.training
    model.eval()
    log_w = model.log_importance_weights(x, cond, num_samples=k, generator=torch.Generator().manual_seed(EVAL_SEED))
    model.train(was_training)
    nll = -(torch.logsumexp(log_w, dim=0) - math.log(k))
    nelbo = -log_w.mean(dim=0)
    n = nll.numel()
    return {
        "nll": round(nll.mean().item(), 3),
        "nll_stderr": round(nll.std().item() / math.sqrt(n), 3) if n > 1 else None,
        "nelbo": round(nelbo.mean().item(), 3),
        "images": n,
        "k": k,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(cpu_seconds() - c0, 1),
        "per_image_nll": [round(v, 4) for v in nll.tolist()],
    }


def checkpoint_callback(steps: list[int], x, cond, k: int, records: list[dict]):
    """A Lightning callback that estimates the test NLL after each optimizer step in ``steps``."""
    from lightning.pytorch.callbacks import Callback

    class CheckpointNLL(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = int(trainer.global_step)
            if step in steps and all(r["step"] != step for r in records):
                r = estimate(pl_module.model, x, cond, k)
                records.append({"step": step, "load_average": load(), **r})
                arm = "attention" if pl_module.model.config.attention else "no-attention"
                print(f"[{arm}] step {step}: test NLL {r['nll']:.2f} on {r['images']} images "
                      f"({r['wall_seconds']} s)", flush=True)

    return CheckpointNLL()


def run_arm(args, arm: str, out_json: Path) -> None:
    """Train and evaluate one arm in this process; write its summary to ``out_json``."""
    import torch

    torch.set_num_threads(args.threads)
    from latentstudio import api

    spec = _spec(args, arm)
    x_all, labels = test_images(args, max(args.nll_images, args.final_nll_images))
    cond_all = None
    if arm == "conditional":
        cond_all = torch.nn.functional.one_hot(labels.long(), 10).float()
    ckpt_steps = list(range(args.eval_every, args.steps + 1, args.eval_every)) if args.eval_every else []
    if args.steps not in ckpt_steps and args.eval_every:
        ckpt_steps.append(args.steps)
    records: list[dict] = []
    cb = checkpoint_callback(ckpt_steps, x_all[: args.nll_images],
                             None if cond_all is None else cond_all[: args.nll_images], args.nll_samples, records)
    load_before = load()
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = api.train("draw", spec, runs_root=Path(args.runs_root) / arm, progress=False, callbacks=[cb])
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    meta = json.loads((result.model_dir / "meta.json").read_text())
    ckpt_wall = sum(r["wall_seconds"] for r in records)
    ckpt_cpu = sum(r["cpu_seconds"] for r in records)
    steps_done = int(meta["optimizer_steps"])
    load_after_train = load()
    final = estimate(result.model, x_all[: args.final_nll_images],
                     None if cond_all is None else cond_all[: args.final_nll_images], args.nll_samples)
    out = {
        "arm": arm,
        "threads": args.threads,
        "model": result.model.config.to_dict(),
        "train": spec["train"],
        "optimizer_steps": steps_done,
        "epochs_seen": round(steps_done * spec["train"]["batch_size"] / 60000, 3),
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "train_wall_seconds": round(wall - ckpt_wall, 1),
        "train_cpu_seconds": round(cpu - ckpt_cpu, 1),
        "seconds_per_step": {"wall": round((wall - ckpt_wall) / max(steps_done, 1), 3),
                             "cpu": round((cpu - ckpt_cpu) / max(steps_done, 1), 3)},
        "checkpoint_eval_wall_seconds": round(ckpt_wall, 1),
        "checkpoint_eval_cpu_seconds": round(ckpt_cpu, 1),
        "load_average": {"before": load_before, "after_training": load_after_train, "after_final_eval": load()},
        "checkpoints": sorted(records, key=lambda r: r["step"]),
        "final": final,
        "run_dir": str(result.run_dir),
        "curve": learning_curve(result.run_dir),
    }
    if args.report or arm == "conditional":
        from latentstudio.evaluation import evaluate, load_records, summarize_records

        t1 = time.perf_counter()
        report = evaluate(result.model_dir, None, extractor="classifier", n_samples=args.n_samples, seed=args.seed,
                          progress=False, nll_samples=args.nll_samples, nll_images=args.final_nll_images)
        out["report"] = str(report)
        out["report_wall_seconds"] = round(time.perf_counter() - t1, 1)
        out.update({f"report_{k}": v for k, v in summarize_records(load_records(report)).items()})
    out_json.write_text(json.dumps(out, indent=2, default=str))


def learning_curve(run_dir: str | Path, every: int = 25) -> dict[str, list[float]]:
    """Training loss (negative ELBO of the batch, nats) against optimizer steps, from the run's CSV log,
    averaged over windows of ``every`` steps (plotted at the mean step of the window)."""
    import csv

    rows = list(csv.DictReader((Path(run_dir) / "train" / "logs" / "csv" / "metrics.csv").open()))
    points = [(int(r["step"]), float(r["train/loss_step"])) for r in rows if r.get("train/loss_step")]
    steps, losses = [], []
    for start in range(0, max((s for s, _ in points), default=-1) + 1, every):
        window = [(s, v) for s, v in points if start <= s < start + every]
        if window:
            steps.append(round(sum(s for s, _ in window) / len(window) + 1))
            losses.append(round(sum(v for _, v in window) / len(window), 2))
    return {"steps": steps, "train_loss": losses}


def paired(a: list[float], b: list[float]) -> dict:
    """Mean and standard error of the per-image difference a - b (same images in both)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1) / n) if n > 1 else float("nan")
    return {"mean": round(mean, 3), "stderr": round(se, 3), "images": n}


def crossing(steps: list[float], gap: list[float]) -> dict:
    """Least-squares line ``gap = a + b ln(steps)`` and where it reaches 0 beyond the last step.

    ``gap`` is NLL(attention) - NLL(no attention): positive while attention is behind. This is an
    extrapolation of a short stretch of the curves, not a measurement."""
    pts = [(math.log(s), g) for s, g in zip(steps, gap, strict=True) if s > 0]
    if len(pts) < 2:
        return {"fit": None, "crossing_step": None, "meaning": "too few points"}
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else 0.0
    a = my - b * mx
    last = max(steps)
    now = a + b * math.log(last)
    out = {"fit": {"a": round(a, 3), "b_per_ln_step": round(b, 3)}, "points": n,
           "steps_fitted": [min(steps), last], "fitted_gap_at_last_step": round(now, 3), "crossing_step": None}
    if now > 0 and b < 0:
        out["crossing_step"] = round(math.exp(-a / b))
        out["meaning"] = "attention behind, the gap shrinking: the fitted line reaches 0 at crossing_step"
    elif now > 0:
        out["meaning"] = "attention behind and the gap not shrinking: no crossing in sight"
    elif b > 0:
        out["crossing_step"] = round(math.exp(-a / b))
        out["meaning"] = "attention ahead, the gap shrinking: no attention would overtake at crossing_step"
    else:
        out["meaning"] = "attention ahead and the gap growing"
    return out


def compare(results: dict) -> dict:
    a, b = results["attention"], results["no-attention"]
    ckpts = []
    by_step = {r["step"]: r for r in b["checkpoints"]}
    for r in a["checkpoints"]:
        o = by_step.get(r["step"])
        if o is None:
            continue
        ckpts.append({"step": r["step"], "attention": r["nll"], "no_attention": o["nll"],
                      "attention_minus_no_attention": paired(r["per_image_nll"], o["per_image_nll"])})
    ca, cb = a["curve"], b["curve"]
    common = sorted(set(ca["steps"]) & set(cb["steps"]))
    la, lb = dict(zip(ca["steps"], ca["train_loss"], strict=True)), dict(zip(cb["steps"], cb["train_loss"], strict=True))
    last = max(a["optimizer_steps"], 1)
    train_half = [(s, la[s] - lb[s]) for s in common if s >= last / 2]
    ckpt_half = [c for c in ckpts if c["step"] >= last / 2]
    return {
        "checkpoints": ckpts,
        "training_loss_gap": {"steps": common, "attention_minus_no_attention": [round(la[s] - lb[s], 2) for s in common]},
        "final_nll_attention_minus_no_attention": paired(a["final"]["per_image_nll"], b["final"]["per_image_nll"]),
        "final_nelbo_attention_minus_no_attention": round(a["final"]["nelbo"] - b["final"]["nelbo"], 3),
        "crossing_from_test_nll_second_half": crossing(
            [c["step"] for c in ckpt_half], [c["attention_minus_no_attention"]["mean"] for c in ckpt_half]),
        "crossing_from_training_loss_second_half": crossing([p[0] for p in train_half], [p[1] for p in train_half]),
        "attention_nll_lower": a["final"]["nll"] < b["final"]["nll"],
    }


def plot_curves(out: dict, path: Path) -> None:
    """Left: test NLL at the checkpoints (markers with standard errors), the final test NLL (stars) and
    the training loss (thin lines) against optimizer steps, both arms on the same axes. Right: the
    gap NLL(attention) - NLL(no attention) against log steps with the fitted lines extended to where
    they would cross 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"attention": "tab:red", "no-attention": "tab:blue"}
    fig, (ax, gx) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.25, 1]})
    top = 0.0
    for arm, r in out["arms"].items():
        c = r["curve"]
        ax.plot(c["steps"], c["train_loss"], color=colors.get(arm), alpha=0.35, lw=1,
                label=f"{arm}: training loss (batch -ELBO, 25-step means)")
        s = [p["step"] for p in r["checkpoints"]]
        y = [p["nll"] for p in r["checkpoints"]]
        e = [p["nll_stderr"] or 0 for p in r["checkpoints"]]
        if s:
            first = r["checkpoints"][0]
            ax.errorbar(s, y, yerr=e, color=colors.get(arm), marker="o", ms=4, capsize=2,
                        label=f"{arm}: test NLL (IS, K = {first['k']}, first {first['images']} test images)")
            top = max(top, max(y))
        f = r["final"]
        ax.plot([r["optimizer_steps"]], [f["nll"]], marker="*", ms=12, color=colors.get(arm), ls="none",
                label=f"{arm}: final test NLL {f['nll']:.1f} ({f['images']} images)")
    ax.set_xlabel(f"optimizer steps (batch {out.get('batch_size')})")
    ax.set_ylabel("nats per image")
    if top:
        ax.set_ylim(top=min(top * 1.15, 300))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(out.get("title", "DRAW on binarised MNIST at equal optimizer steps"), fontsize=9)

    comp = out.get("comparison")
    if comp:
        tg = comp["training_loss_gap"]
        gx.plot(tg["steps"], tg["attention_minus_no_attention"], color="0.6", lw=1, label="training loss gap")
        ck = comp["checkpoints"]
        gx.errorbar([c["step"] for c in ck], [c["attention_minus_no_attention"]["mean"] for c in ck],
                    yerr=[c["attention_minus_no_attention"]["stderr"] for c in ck], color="k", marker="o", ms=4,
                    capsize=2, ls="none", label="test NLL gap (paired, ± s.e.)")
        last = max(c["step"] for c in ck) if ck else max(tg["steps"])
        for key, style, label in (("crossing_from_test_nll_second_half", "-", "fit to test NLL gap, 2nd half"),
                                  ("crossing_from_training_loss_second_half", "--", "fit to training gap, 2nd half")):
            cr = comp.get(key) or {}
            fit = cr.get("fit")
            if not fit:
                continue
            end = max(last * 4, min(cr["crossing_step"] or 0, last * 1000) * 1.3)
            xs = [cr["steps_fitted"][0] * (end / cr["steps_fitted"][0]) ** (i / 100) for i in range(101)]
            gx.plot(xs, [fit["a"] + fit["b_per_ln_step"] * math.log(x) for x in xs], ls=style, color="tab:purple",
                    lw=1.2, label=label + ("" if not cr["crossing_step"] else
                                           f": {'attention' if fit['b_per_ln_step'] < 0 else 'no attention'} "
                                           f"ahead from ~{cr['crossing_step']:,} steps"))
        gx.axhline(0, color="k", lw=0.8)
        gx.axvline(last, color="0.5", lw=0.8, ls=":")
        gx.set_xscale("log")
        gx.set_xlabel("optimizer steps (log; dotted: the budget run)")
        gx.set_ylabel("NLL(attention) - NLL(no attention), nats")
        gx.grid(alpha=0.3, which="both")
        gx.legend(fontsize=7)
        gx.set_title("gap: above 0 attention is behind", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def measure_arm(args, arm: str) -> dict:
    """Seconds per training step (preset batch, Adam, clip) and per importance-sampled image, this process."""
    import torch

    torch.set_num_threads(args.threads)
    from latentstudio.data import load_images
    from latentstudio.data.images import binarize_images
    from latentstudio.models.draw import DRAW, DRAWConfig
    from latentstudio.types import Batch

    spec = _spec(args, arm)
    train = load_images("mnist", "train", root=data_root(args.data_root), pad=0)
    batch = spec["train"]["batch_size"]
    x = binarize_images(train.images[:batch])
    torch.manual_seed(args.seed)
    model = DRAW(DRAWConfig(**{**spec["model"], "image_size": 28}))
    opt = torch.optim.Adam(model.parameters(), lr=spec["train"]["lr"])

    def step():
        opt.zero_grad()
        model.loss(Batch(x, None)).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec["train"]["grad_clip"])
        opt.step()

    step()  # warm-up
    before = load()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in range(args.measure_steps):
        step()
    wall, cpu = (time.perf_counter() - t0) / args.measure_steps, (cpu_seconds() - c0) / args.measure_steps
    xt, _ = test_images(args, 10)
    r = estimate(model, xt, None, args.nll_samples)
    return {"arm": arm, "threads": args.threads, "batch_size": batch, "steps_timed": args.measure_steps,
            "step_wall_seconds": round(wall, 3), "step_cpu_seconds": round(cpu, 3),
            "is_image_wall_seconds": round(r["wall_seconds"] / 10, 4),
            "is_image_cpu_seconds": round(r["cpu_seconds"] / 10, 4), "k": args.nll_samples,
            "load_average": {"before": before, "after": load()}}


def measure_step_time(args, forwarded: list[str]) -> None:
    def launch(arm, threads):
        cmd = [sys.executable, __file__, *forwarded, "--measure-arm", arm, "--threads", str(threads)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    rows = []
    for threads in (1, 2):
        for arm in ARMS:
            p = launch(arm, threads)
            rows.append({"mode": "alone", **json.loads(p.communicate()[0].strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    procs = [launch(arm, 1) for arm in ARMS]
    for p in procs:
        rows.append({"mode": "side by side, 1 thread each", **json.loads(p.communicate()[0].strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    write_result("draw_paper_step_time", {
        "benchmark": "draw_paper_step_time",
        "command": "python benchmarks/draw_mnist.py " + " ".join(forwarded),
        "preset": args.preset,
        "what": ("seconds per optimizer step (real binarised MNIST batch, Adam, gradient clip; after one warm-up "
                 "step) and per test image of the importance-sampled NLL (K passes), wall clock and CPU of the "
                 "process, on a shared 2-core machine"),
        "rows": rows,
        "environment": environment(),
    })


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=sorted(SUITES), default="quick")
    p.add_argument("--data-root", default=None)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps of each arm (the budget)")
    p.add_argument("--eval-every", type=int, default=None, help="optimizer steps between NLL checkpoints (0: none)")
    p.add_argument("--nll-images", type=int, default=None, help="test images of every checkpoint NLL")
    p.add_argument("--final-nll-images", type=int, default=None, help="test images of the final NLL (<= 10000)")
    p.add_argument("--nll-samples", type=int, default=None, help="K, importance samples per image")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each arm's process")
    p.add_argument("--sequential", action="store_true", help="train the arms one after the other")
    p.add_argument("--preset", default="paper")
    p.add_argument("--glimpses", type=int, default=None, help="override the preset's T")
    p.add_argument("--latent-dim", type=int, default=None, help="override the preset's latent size per step")
    p.add_argument("--lstm-dim", type=int, default=None, help="override the preset's LSTM size")
    p.add_argument("--read-n", type=int, default=None, help="override the preset's read patch size")
    p.add_argument("--write-n", type=int, default=None, help="override the preset's write patch size")
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", action="store_true", help="also run the project's evaluation on every arm")
    p.add_argument("--n-samples", type=int, default=10000, help="samples of the project's evaluation (--report)")
    p.add_argument("--conditional", action="store_true", help="train one class-conditional arm instead")
    p.add_argument("--conditional-arm", default="no-attention", choices=sorted(ARMS))
    p.add_argument("--measure-step-time", action="store_true", help="time one step of both arms, 1 and 2 threads")
    p.add_argument("--measure-steps", type=int, default=3, help="steps timed per measurement")
    p.add_argument("--out", default=None, help="results name (default: from the preset and suite)")
    p.add_argument("--runs-root", default=str(RUNS))
    p.add_argument("--plot-only", action="store_true", help="redraw the curves of an existing results file")
    p.add_argument("--only-arm", default=None, help=argparse.SUPPRESS)
    p.add_argument("--arm-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--measure-arm", default=None, help=argparse.SUPPRESS)
    args = resolve(p.parse_args())

    name = args.out or ("draw_mnist_conditional" if args.conditional else
                        f"draw_{args.preset}" if args.preset == "paper" else "draw_mnist")
    if args.suite == "quick" and not args.out:
        name += "_quick"
    png = (RUNS / f"{name}_curves.png") if args.suite == "quick" else DOCS_IMAGES / f"{name}_curves.png"

    if args.only_arm:
        run_arm(args, args.only_arm, Path(args.arm_json))
        return
    if args.measure_arm:
        print(json.dumps(measure_arm(args, args.measure_arm)))
        return
    forwarded = list(sys.argv[1:])
    if args.measure_step_time:
        measure_step_time(args, [a for a in forwarded if a != "--measure-step-time"])
        return
    raw = RUNS / f"{name}_arms"  # the arms' files with per-image values (not committed)
    if args.plot_only:
        path = RESULTS / f"{name}.json"
        out = json.loads(path.read_text())
        if (raw / "attention.json").is_file() and (raw / "no-attention.json").is_file():
            full = {arm: json.loads((raw / f"{arm}.json").read_text()) for arm in ARMS}
            out["comparison"] = compare(full)
            path.write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
        plot_curves(out, png)
        print(f"wrote {png}")
        return

    import torch

    torch.set_num_threads(args.threads)
    if args.conditional or args.report:
        from latentstudio.data import load_images
        from latentstudio.metrics import get_classifier

        # the project classifier (fid_clf, conditional accuracy) is trained once here and cached
        root = data_root(args.data_root)
        get_classifier(load_images("mnist", "train", root=root, pad=0),
                       test=load_images("mnist", "test", root=root, pad=0), progress=False)

    arms = ["conditional"] if args.conditional else list(ARMS)
    load_before = load()
    t0 = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for arm in arms:
            out_json = Path(tmp) / f"{arm}.json"
            cmd = [sys.executable, __file__, *forwarded, "--only-arm", arm, "--arm-json", str(out_json)]
            procs[arm] = (subprocess.Popen(cmd), out_json)
            if args.sequential and procs[arm][0].wait() != 0:
                raise SystemExit(f"arm {arm} failed with exit status {procs[arm][0].returncode}")
        for arm, (proc, out_json) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"arm {arm} failed with exit status {proc.returncode}")
            results[arm] = json.loads(out_json.read_text())
    wall = time.perf_counter() - t0
    raw.mkdir(parents=True, exist_ok=True)
    for arm, r in results.items():
        (raw / f"{arm}.json").write_text(json.dumps(r, default=str))

    spec = _spec(args, arms[0])
    out = {
        "benchmark": name,
        "suite": args.suite,
        "label": ("SMOKE TEST of the protocol (a few steps, few test images): not a result" if args.suite == "quick"
                  else "result"),
        "command": "python benchmarks/draw_mnist.py " + " ".join(forwarded),
        "preset": args.preset,
        "title": (f"DRAW ({args.preset} preset: T = {spec['model']['steps']}, z {spec['model']['latent_dim']} per "
                  f"step, LSTM {spec['model']['enc_dim']}) on binarised MNIST, {args.steps} steps"
                  + (" - smoke test" if args.suite == "quick" else "")),
        "data": "MNIST 28x28 (pad=0), binarised at 0.5; train 60000, test 10000 (the first N test images)",
        "budget": {"optimizer_steps": args.steps, "batch_size": spec["train"]["batch_size"],
                   "threads_per_arm": args.threads, "arms": "one after the other" if args.sequential else "side by side"},
        "batch_size": spec["train"]["batch_size"],
        "nll": {"method": "importance sampling with DRAW's sequential posterior as proposal, nats",
                "k": args.nll_samples, "checkpoint_images": args.nll_images, "final_images": args.final_nll_images,
                "eval_seed": EVAL_SEED},
        "total_wall_seconds": round(wall, 1),
        "load_average": {"before": load_before, "after": load()},
        "arms": results,
        "environment": environment() | {"torch_threads": args.threads},
    }
    if not args.conditional:
        out["comparison"] = compare(results)
    else:
        r = results["conditional"]
        acc = r.get("report_classifier_accuracy_per_class")
        if acc:
            out["checks"] = {"every_digit_ge_0.9": min(acc) >= 0.9}
    # per-image values stay out of the committed file (their paired differences are in "comparison")
    for r in results.values():
        r["final"].pop("per_image_nll", None)
        for c in r["checkpoints"]:
            c.pop("per_image_nll", None)
    write_result(name, out)
    if not args.conditional:
        plot_curves(out, png)
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
