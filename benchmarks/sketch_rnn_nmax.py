"""sketch-rnn training-step time at the data's Nmax (its longest sketch) against a fixed Nmax of 250.

For each stroke set, one model is built and copied: model A is padded to the data's Nmax (what
training does by default), model B to 250 (the published sheep Nmax, and the value older
versions fixed for every set). Both start from the same weights and take full training steps
(loss with recurrent dropout, backward, gradient clipping by value, Adam) on the same batches of
real training sketches (batch 100, no augmentation). Each round times one step of each, in
alternating order (A then B, then B then A), so machine load falls on both alike. The first
``--warmup`` rounds are not timed; ``--steps`` rounds are. Reported per set: every step's wall and
CPU (process) time, the mean and median of each, the B/A ratios of the medians and means (> 1: the
data's Nmax is faster), the median of the per-round ratios, the two Nmax values, the threads, the
batch size, the load average before and after, and the torch version.

The sets: the sheep (``sketches/sketch-rnn-datasets/aaron_sheep.npz``, whose longest sketch has
250 points, so A and B are the same length there: a control of the timing noise) and a set of
Quick, Draw! symbol classes from ``sketches/quickdraw_simplified`` (the classes of
docs/sketch_rnn.md, read from the 344-class sample with a class filter).

Suites: ``full`` (the default): 20 timed rounds after 3 warm-up rounds on both sets, into
benchmarks/results/sketch_rnn_nmax.json; ``quick``: 3 timed rounds after 1 warm-up round on the
symbols set only (the set whose Nmax differs from 250), into sketch_rnn_nmax_quick.json.

Usage:
    python benchmarks/sketch_rnn_nmax.py --suite quick
    python benchmarks/sketch_rnn_nmax.py [--suite full] [--steps 20] [--warmup 3] [--threads 1] [--preset cpu]
        [--sets sheep,symbols] [--section cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from _common import RESULTS, add_suite, data_root, environment, result_name, write_result
from sketch_rnn_sheep import SHEEP, _train_step

NAME = "sketch_rnn_nmax"
FIXED_NMAX = 250
BATCH = 100
QUICK = {"steps": 3, "warmup": 1, "sets": "symbols"}
FULL = {"steps": 20, "warmup": 3, "sets": "sheep,symbols"}
QUICKDRAW = Path("sketches") / "quickdraw_simplified" / "quickdraw_simplified_344classes_25each.ndjson.gz"
#: Quick, Draw! classes whose drawings are symbols (shapes and signs) rather than scenes or objects.
SYMBOLS = ("circle", "diamond", "hexagon", "lightning", "line", "moon", "octagon", "snowflake", "square", "star",
           "triangle")


def _load_existing(name: str = NAME) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _batches(sketches: list, n: int, seed: int) -> list[list]:
    """``n`` batches of ``BATCH`` training sketches: consecutive slices of seeded permutations."""
    g = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < n * BATCH:
        order += torch.randperm(len(sketches), generator=g).tolist()
    return [[sketches[i] for i in order[k * BATCH : (k + 1) * BATCH]] for k in range(n)]


def _summary(wall: list[float], cpu: list[float]) -> dict:
    return {
        "wall_seconds_each_step": [round(s, 4) for s in wall],
        "cpu_seconds_each_step": [round(s, 4) for s in cpu],
        "wall_seconds_mean": statistics.fmean(wall),
        "wall_seconds_median": statistics.median(wall),
        "cpu_seconds_mean": statistics.fmean(cpu),
        "cpu_seconds_median": statistics.median(cpu),
    }


def bench_set(name: str, splits, model_cfg: dict, args) -> dict:
    """Interleaved timing of one set at Nmax = its longest sketch (A) and Nmax = 250 (B)."""
    from latentstudio.data.strokes import pad_batch
    from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig

    nmax = {"data": int(splits.longest), "fixed": FIXED_NMAX}
    if nmax["data"] > FIXED_NMAX:
        raise SystemExit(f"{name}: the longest sketch has {nmax['data']} points, more than {FIXED_NMAX}")
    torch.manual_seed(args.seed)
    models = {k: SketchRNN(SketchRNNConfig(**{**model_cfg, "max_seq_len": n})) for k, n in nmax.items()}
    models["fixed"].load_state_dict(models["data"].state_dict())
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}
    rounds = args.warmup + args.steps
    batches = _batches(splits.train.sketches, rounds, args.seed)
    wall = {k: [] for k in models}
    cpu = {k: [] for k in models}
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    for step, sk in enumerate(batches):
        for k in (("data", "fixed") if step % 2 == 0 else ("fixed", "data")):
            x, ln = pad_batch(sk, nmax[k])  # padding is data loading, outside the timed step
            t0, c0 = time.perf_counter(), time.process_time()
            loss = _train_step(models[k], opts[k], x, ln, step, args.seed)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if step >= args.warmup:
                wall[k].append(dt)
                cpu[k].append(dc)
            tag = "warm-up" if step < args.warmup else "timed"
            print(f"{name} round {step:2d} ({tag}) Nmax {nmax[k]:3d}: loss {loss:.4f}  wall {dt:.3f}s  cpu {dc:.3f}s",
                  flush=True)
    total = time.perf_counter() - t_start
    load_after = os.getloadavg()
    per_round = [b / a for a, b in zip(wall["data"], wall["fixed"], strict=True)]
    res = {k: {"nmax": nmax[k], **_summary(wall[k], cpu[k])} for k in models}
    return {
        "nmax_data": nmax["data"],
        "nmax_fixed": FIXED_NMAX,
        "sketches": {s: len(splits.split(s)) for s in ("train", "valid", "test")},
        "mean_points_per_sketch": statistics.fmean(len(s) for s in splits.train.sketches),
        "timing": res,
        # > 1: a step at the data's Nmax is that many times faster than at 250
        "ratio_wall_median": res["fixed"]["wall_seconds_median"] / res["data"]["wall_seconds_median"],
        "ratio_wall_mean": res["fixed"]["wall_seconds_mean"] / res["data"]["wall_seconds_mean"],
        "ratio_cpu_median": res["fixed"]["cpu_seconds_median"] / res["data"]["cpu_seconds_median"],
        "ratio_wall_per_round_median": statistics.median(per_round),
        "warmup_rounds": args.warmup,
        "timed_rounds": args.steps,
        "wall_seconds_total": total,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for the whole run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="timed rounds (one step of each Nmax per round)")
    p.add_argument("--warmup", type=int, help="untimed rounds first")
    p.add_argument("--preset", default="cpu", help="model size: a sketch-rnn preset (cpu, default = the reference)")
    p.add_argument("--sets", help="comma-separated: sheep, symbols")
    p.add_argument("--section", default=None, help="result section name (default: the preset)")
    suite = add_suite(p, QUICK, FULL)
    args = p.parse_args()
    out_name = result_name(NAME, suite)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}", flush=True)

    from latentstudio.data.strokes import load_strokes
    from latentstudio.presets import preset
    from latentstudio.training.sketch_rnn import retain_freed_memory

    retain_freed_memory()  # as training does
    root = data_root(args.data_root)
    model_cfg = preset("sketch-rnn", args.preset).get("model", {})
    loaders = {
        "sheep": (str(SHEEP), lambda: load_strokes(root / SHEEP)),
        "symbols": (f"{QUICKDRAW} (words {', '.join(SYMBOLS)})", lambda: load_strokes(root / QUICKDRAW, words=SYMBOLS)),
    }
    section = {
        "preset": args.preset,
        "model_config": model_cfg,
        "batch_size": BATCH,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "note": "data = Nmax of the set's longest sketch (the training default), fixed = 250; full training steps "
                "(loss with recurrent dropout, backward, clip by value, Adam), one of each per round in alternating "
                "order; ratio = fixed / data (> 1: the data's Nmax is faster)",
        "sets": {},
    }
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        source, load = loaders[name]
        section["sets"][name] = {"data": source, **bench_set(name, load(), model_cfg, args)}
        r = section["sets"][name]
        print(f"{name}: Nmax {r['nmax_data']} vs {FIXED_NMAX}: median step {r['timing']['data']['wall_seconds_median']:.3f}s"
              f" vs {r['timing']['fixed']['wall_seconds_median']:.3f}s, ratio {r['ratio_wall_median']:.2f}x", flush=True)
    result = _load_existing(out_name)
    result.update({args.section or args.preset: section, "environment": environment(), "suite": suite})
    write_result(out_name, result)


if __name__ == "__main__":
    main()
