"""sketch-rnn on the sheep set (aaron_sheep.npz) at fixed work: test L_R after N training steps, and step speed.

Three phases (each writes its own section of the results JSON; ``--section`` renames it):

``--phase quality`` (the default; what ``benchmarks/run.py`` runs)
    Train ``--steps`` optimizer steps with ``--preset`` (default ``cpu``: encoder 2 x 128, decoder 256,
    KL annealing rate 0.999; z 128, M 20, batch 100 and the optimiser as the reference) through the
    normal training path (run directory, Lightning, augmentation, KL annealing), evaluating valid and
    test losses at step 0, every ``--eval-every`` steps and at the end (``train/eval.jsonl``), then report
    the test L_R / L_s / L_p / L_KL curve in nats. The budget is work: the same command and seed give
    the same curve on an idle or a loaded machine (one thread; up to the math libraries'
    nondeterminism). Wall time, CPU time, threads and the load average are reported beside it and
    never stop the run.

``--phase speed``
    Time ``--steps`` full training steps (loss, backward, clip by value, Adam) at the reference (magenta)
    hyperparameters, recurrent dropout on: latentstudio's fused sequence kernel (``rnn_impl=fused``)
    against the same model written as a straightforward per-timestep cell loop with autograd
    (``rnn_impl=loop``), alternating one step of each so both see the same machine load. Both start
    from the same weights and seed; the first step (a warm-up, not timed) compares their losses to
    show that they compute the same function. Reports steps per second of process CPU time and of
    wall-clock time, and their ratios. (The comparison with plain ``nn.LSTM`` is
    benchmarks/speed_sketch_rnn.py.)

``--phase curve``
    Plot valid/test L_R and L_KL against steps from a run's ``eval.jsonl`` (``--run``) to ``--out``.

Suites (``--suite``, default full; explicit options win):

- quality: ``quick`` = 40 steps, evaluation every 20 (about a minute on one core);
  ``full`` = 3,000 steps, evaluation every 250 (about an hour on one core).
- speed: ``quick`` = 2 timed steps of each; ``full`` = 12.

Writes benchmarks/results/sketch_rnn_sheep.json (``--suite full``) or sketch_rnn_sheep_quick.json
(``--suite quick``); the run directory goes under benchmarks/runs/.

Usage:
    python benchmarks/sketch_rnn_sheep.py --suite quick                     # quality, 40 steps
    python benchmarks/sketch_rnn_sheep.py --suite full [--steps 3000] [--eval-every 250] [--preset cpu]
        [--threads 1] [--model-json '{"enc_hidden_size": 128}'] [--section quality_enc128]
    python benchmarks/sketch_rnn_sheep.py --phase speed --suite full [--steps 12] [--threads 1]
    python benchmarks/sketch_rnn_sheep.py --phase curve --run RUN --out docs/images/sketch_rnn_sheep_curve.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import _common
import torch
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

from latentstudio.types import Batch

NAME = "sketch_rnn_sheep"
SHEEP = Path("sketches") / "sketch-rnn-datasets" / "aaron_sheep.npz"
#: Work of each phase per suite (option destination -> value).
SUITES = {
    "quality": {"quick": {"steps": 40, "eval_every": 20}, "full": {"steps": 3000, "eval_every": 250}},
    "speed": {"quick": {"steps": 2}, "full": {"steps": 12}},
    "curve": {"quick": {}, "full": {}},
}


def _load_existing(name: str) -> dict:
    path = _common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _train_step(model, opt, x, ln, step: int, seed: int) -> float:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    out = model.loss(Batch(x, None, ln), step=step, generator=g)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
    opt.step()
    return float(out.loss.detach())


def speed(args, path: Path) -> dict:
    from latentstudio.data.strokes import load_strokes
    from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig
    from latentstudio.training.sketch_rnn import retain_freed_memory

    retain_freed_memory()
    splits = load_strokes(path)
    x_all, l_all = splits.train.to_stroke5(250)
    batches = [(x_all[i : i + 100], l_all[i : i + 100]) for i in range(0, 100 * (args.steps + 1), 100)]
    # the published speed table is at Nmax 250 (the batches above are padded to it)
    cfg = SketchRNNConfig(**{"max_seq_len": 250, **(json.loads(args.model_json) if args.model_json else {})})
    torch.manual_seed(args.seed)
    models = {"fused": SketchRNN(cfg.replace(rnn_impl="fused")), "loop": SketchRNN(cfg.replace(rnn_impl="loop"))}
    models["loop"].load_state_dict(models["fused"].state_dict())
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    cpu = {k: [] for k in models}
    wall = {k: [] for k in models}
    first = {}
    for step, (x, ln) in enumerate(batches):
        for name in (("fused", "loop") if step % 2 == 0 else ("loop", "fused")):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = _train_step(models[name], opts[name], x, ln, step, args.seed)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if step == 0:
                first[name] = loss
            else:  # step 0 is a warm-up
                cpu[name].append(dc)
                wall[name].append(dt)
            print(f"step {step} {name:5s} loss {loss:.4f}  cpu {dc:.2f}s  wall {dt:.2f}s", flush=True)

    def rate(v):
        return len(v) / sum(v)

    out = {
        "config": {**cfg.to_dict(), "batch_size": 100, "recurrent_dropout": cfg.recurrent_dropout},
        "timed_steps_each": args.steps,
        "threads": torch.get_num_threads(),
        "steps_per_cpu_second": {k: rate(v) for k, v in cpu.items()},
        "steps_per_wall_second": {k: rate(v) for k, v in wall.items()},
        "cpu_seconds_per_step": {k: sum(v) / len(v) for k, v in cpu.items()},
        "cpu_seconds_each_step": {k: [round(s, 3) for s in v] for k, v in cpu.items()},
        "cpu_seconds_per_step_median": {k: statistics.median(v) for k, v in cpu.items()},
        "ratio_median_cpu_time": statistics.median(cpu["loop"]) / statistics.median(cpu["fused"]),
        "ratio_cpu_time": rate(cpu["fused"]) / rate(cpu["loop"]),
        "ratio_wall_time": rate(wall["fused"]) / rate(wall["loop"]),
        "first_step_loss": first,
        "same_function": math.isclose(first["fused"], first["loop"], rel_tol=1e-4),
        "load_average_1min": os.getloadavg()[0],
        "note": "fused = latentstudio (rnn_impl=fused); loop = the same model as a per-timestep cell loop "
                "with autograd (rnn_impl=loop); alternating steps; the first step is a warm-up",
    }
    return out


def quality(args, path: Path) -> dict:
    """Train ``args.steps`` steps, evaluating every ``args.eval_every``; the section of the results JSON."""
    from latentstudio.training.sketch_rnn import EVAL_FILE, STAGE, build_run_config, train_sketch_rnn

    spec = {"data": {"path": str(path)}, "seed": args.seed, "threads": args.threads,
            "train": {"max_steps": args.steps, "max_minutes": None, "eval_every_n_steps": args.eval_every}}
    if args.model_json:
        spec["model"] = json.loads(args.model_json)
    cfg = build_run_config(spec, args.preset)
    with Meter() as meter:
        res = train_sketch_rnn(cfg, runs_root=args.runs_root, progress=False)
    rows = [json.loads(s) for s in (res.run_dir / STAGE / EVAL_FILE).read_text().splitlines() if s.strip()]
    test = [r for r in rows if r["split"] == "test"]
    curve = [{k: r[k] for k in ("step", "recon", "l_s", "l_p", "kl") if k in r} for r in test]
    timing = meter.record()
    return {
        "preset": args.preset,
        "model_config": cfg.model.to_dict(),
        "train_config": cfg.train.to_dict(),
        "threads": torch.get_num_threads(),
        "steps": res.steps,
        "eval_every": args.eval_every,
        "test_final_nats": res.test,
        "test_curve_nats": curve,
        "no_nan": all(math.isfinite(r["recon"]) for r in rows),
        "timing": {**timing, "steps_per_wall_second": round(res.steps / timing["wall_seconds"], 4)
                   if timing["wall_seconds"] else None},
        "run_dir": str(res.run_dir),
        "model_dir": str(res.model_dir),
    }


def quality_headline(section: dict) -> dict:
    """The results-table row of a quality section: test L_R at the end against step 0."""
    curve = section["test_curve_nats"]
    first, last = curve[0], curve[-1]
    return headline(
        f"test L_R {last['recon']:.3f} nats after {section['steps']} steps (L_KL {last['kl']:.3f}"
        + ("" if section["no_nan"] else "; NaN in the curve") + ")",
        reference=f"step 0: L_R {first['recon']:.3f}", ratio=last["recon"] / first["recon"],
        work=f"{section['preset']} preset, {section['steps']} steps of batch {section['train_config']['batch_size']}, "
             f"test losses every {section['eval_every']}",
        time_text=time_text(section["timing"]))


def curve(args) -> None:
    """Plot valid/test L_R (and L_KL) against steps from a run's eval.jsonl (``--run``) to ``--out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentstudio.training.sketch_rnn import EVAL_FILE, STAGE

    rows = [json.loads(s) for s in (Path(args.run) / STAGE / EVAL_FILE).read_text().splitlines() if s.strip()]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for split, style in (("valid", "--"), ("test", "-")):
        r = [x for x in rows if x["split"] == split]
        ax[0].plot([x["step"] for x in r], [x["recon"] for x in r], style, label=f"{split} L_R")
        ax[1].plot([x["step"] for x in r], [x["kl"] for x in r], style, label=f"{split} L_KL")
    for a, title in zip(ax, ("reconstruction L_R = L_s + L_p (nats)", "L_KL (nats per latent dim)"), strict=True):
        a.set_xlabel("training step")
        a.set_title(title, fontsize=10)
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=sorted(SUITES), default="quality")
    p.add_argument("--run", default=None, help="curve: the run directory")
    p.add_argument("--out", default="sketch_rnn_curve.png", help="curve: output picture")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None,
                   help="the work: quality: optimizer steps; speed: timed steps of each implementation")
    p.add_argument("--eval-every", type=int, default=None, help="quality: evaluation interval in steps")
    p.add_argument("--model-json", default="", help="model config overrides as JSON (speed default: the reference; "
                   "quality default: the preset's)")
    p.add_argument("--section", default=None, help="result section name (default: the phase)")
    p.add_argument("--preset", default="cpu", help="quality: training preset")
    p.add_argument("--runs-root", default=str(Path(__file__).parent / "runs"))
    p.add_argument("--results-dir", type=Path, default=None,
                   help="write the JSON there instead of benchmarks/results (checks, tests)")
    argv = sys.argv[1:] if argv is None else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--phase", choices=sorted(SUITES), default="quality")
    phase = pre.parse_known_args(argv)[0].phase
    suite = add_suite(p, SUITES[phase]["quick"], SUITES[phase]["full"], argv=argv)
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS = args.results_dir
    threads = set_threads(args.threads)
    if args.phase == "curve":
        return curve(args)
    path = data_root(args.data_root) / SHEEP
    name = result_name(NAME, suite)
    custom = overrides(args, p, SUITES[phase][suite], ("steps", "eval_every", "seed", "preset", "model_json"))
    command = " ".join(["python benchmarks/sketch_rnn_sheep.py", *(["--phase speed"] if phase == "speed" else []),
                        f"--suite {suite}", *custom, f"--threads {threads}"])
    result = _load_existing(name)
    key = args.section or args.phase
    if phase == "speed":
        with Meter() as meter:
            section = speed(args, path)
        section.update({"command": command, "timing": meter.record()})
        result.update({key: section})
    else:
        section = {**quality(args, path), "command": command}
        result.update({key: section, "benchmark": name, "suite": suite + (" (custom)" if custom else ""),
                       "command": command, "overrides": custom, "headline": quality_headline(section)})
    result.update({"data": str(SHEEP), "environment": environment()})
    write_result(name, result)


if __name__ == "__main__":
    main()
