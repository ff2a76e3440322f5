"""Compute efficiency of one training step of each family at its CPU preset (goal: >= 0.35 for the VAE
and StyleGAN2 steps).

For each step: the FLOPs of forward + backward, counted with ``torch.utils.flop_counter.FlopCounterMode``
(matrix products and convolutions: what the arithmetic units do; element-wise work is not counted),
divided by the step's time, over this CPU's fp32 matrix-product rate measured in the same run at the
same threads (``torch.mm`` of two 2048 x 2048 matrices). Rounds interleave the matrix product and
every step (mm, VAE, ..., mm, VAE, ...) so that machine load falls on all of them; the medians are
compared. The ratio is given on CPU time (``time.process_time``, less sensitive to other jobs) and
on wall time.

Steps (training mode, Adam step included in the time, not in the FLOPs):

- ``two-stage-vae/stage1``: the ``cpu`` preset's first-stage VAE on 1 x 32 x 32 images (MNIST padded),
  batch 128.
- ``two-stage-vae/stage2``: its second-stage VAE on 32-d latents, batch 256.
- ``draw``: the ``cpu`` preset (16 steps, attention 5 x 5, LSTMs 256) on 1 x 28 x 28, batch 100.
- ``sketch-rnn``: the ``cpu`` preset (encoder 2 x 128, decoder 256, M = 20) at Nmax 250, batch 100,
  recurrent dropout on.
- ``stylegan2``: the ``tiny`` preset at 32 x 32, batch 32; one step = G main + D main + path length / 4 +
  R1 / 16 (the lazy intervals), FLOPs and time of each phase weighted alike.

Inputs are synthetic (random images / sketches of the right shapes): FLOPs and time do not depend on
pixel values. ``--profile`` adds a torch.profiler table (top operators by self CPU time) per step.

Threads: one run per count in ``--threads`` (quick and full: 1 and 2), each with its own matrix-product
rate. On a CPU shared with other jobs, threads of the OpenMP runtime that wait at a barrier spin by
default and burn the CPU time their partner thread needs; ``--wait-policies default,passive`` (quick and
full) therefore repeats the multi-thread runs in a child process started with ``OMP_WAIT_POLICY=PASSIVE``
(each run says its ``omp_wait_policy``).

Suites: ``smoke`` (tiny shapes, for the tests), ``quick`` (3 rounds), ``full`` (7 rounds). Writes
benchmarks/results/efficiency.json.

Usage:
    python benchmarks/efficiency.py [--suite quick|full|smoke] [--device cpu|cuda] [--threads 1,2]
        [--rounds N] [--only vae,draw,sketch,stylegan2] [--precision fp32|bf16] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import _common
import torch
from _common import environment, write_result

NAME = "efficiency"
GOAL = 0.35
GOAL_STEPS = ("two-stage-vae/stage1", "stylegan2")
SUITES = {
    "smoke": {"rounds": 1, "small": True, "mm_size": 256, "threads": "1", "wait_policies": "current"},
    "quick": {"rounds": 3, "small": False, "mm_size": 2048, "threads": "1,2", "wait_policies": "default,passive"},
    "full": {"rounds": 7, "small": False, "mm_size": 2048, "threads": "1,2", "wait_policies": "default,passive"},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def _step_fn(model, opt, batch_fn, device, precision):
    from latentstudio.types import Batch

    gen = torch.Generator(device=device).manual_seed(0)

    def loss():
        x, extra = batch_fn()
        with _autocast(device, precision):
            return model.loss(Batch(x, None, extra), generator=gen).loss

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    def fwd_bwd():
        loss().backward()

    return step, fwd_bwd


def build_steps(device: torch.device, small: bool, only: set[str], precision: str) -> dict[str, dict]:
    """name -> {"step": callable (one optimisation step), "flops": callable (forward + backward), "info": dict}."""
    from latentstudio.presets import preset

    steps: dict[str, dict] = {}
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    if "vae" in only:
        from latentstudio.models.two_stage.config import SecondStageConfig
        from latentstudio.models.two_stage.model import SecondStageVAE
        from latentstudio.models.vae import VAE, VAEConfig

        p = preset("two-stage-vae", "cpu")
        s1 = dict(p["model"]["stage1"], image_channels=1, image_size=16 if small else 32)
        if small:
            s1.update(base_dim=4, fc_dim=16, latent_dim=4, num_scale=2)
        b1 = 8 if small else p["stage1"]["batch_size"]
        vae = VAE(VAEConfig(**s1)).to(device).train()
        x1 = torch.randint(0, 256, (b1, 1, s1["image_size"], s1["image_size"]), generator=g, dtype=torch.uint8)
        x1 = x1.to(device)
        step, fb = _step_fn(vae, torch.optim.Adam(vae.parameters(), lr=1e-3), lambda: (x1, None), device, precision)
        steps["two-stage-vae/stage1"] = {"step": step, "flops": fb, "info": {
            "preset": "two-stage-vae cpu (stage1)", "config": vae.config.to_dict(), "batch": b1,
            "input": f"uint8 [{b1}, 1, {s1['image_size']}, {s1['image_size']}]"}}
        s2 = dict(p["model"]["stage2"], latent_dim=s1["latent_dim"])
        if small:
            s2.update(second_dim=16)
        b2 = 8 if small else p["stage2"]["batch_size"]
        vae2 = SecondStageVAE(SecondStageConfig(**s2)).to(device).train()
        z2 = torch.randn(b2, s2["latent_dim"], generator=g).to(device)
        step, fb = _step_fn(vae2, torch.optim.Adam(vae2.parameters(), lr=1e-3), lambda: (z2, None), device, precision)
        steps["two-stage-vae/stage2"] = {"step": step, "flops": fb, "info": {
            "preset": "two-stage-vae cpu (stage2)", "config": vae2.config.to_dict(), "batch": b2,
            "input": f"float [{b2}, {s2['latent_dim']}]"}}

    if "draw" in only:
        from latentstudio.models.draw import DRAW, DRAWConfig

        p = preset("draw", "cpu")
        cfg = dict(p["model"], image_size=28)
        if small:
            cfg.update(steps=2, enc_dim=8, dec_dim=8, latent_dim=2)
        b = 8 if small else p["train"]["batch_size"]
        draw = DRAW(DRAWConfig(**cfg)).to(device).train()
        xd = (torch.rand(b, 1, 28, 28, generator=g) > 0.5).to(torch.uint8).mul(255).to(device)
        step, fb = _step_fn(draw, torch.optim.Adam(draw.parameters(), lr=1e-3), lambda: (xd, None), device, precision)
        steps["draw"] = {"step": step, "flops": fb, "info": {
            "preset": "draw cpu", "config": draw.config.to_dict(), "batch": b,
            "input": f"binary uint8 [{b}, 1, 28, 28]"}}

    if "sketch" in only:
        from latentstudio.data.strokes import pad_batch, synthetic_sketches
        from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig

        p = preset("sketch-rnn", "cpu")
        nmax = 24 if small else 250
        cfg = dict(p["model"], max_seq_len=nmax)
        if small:
            cfg.update(enc_hidden_size=8, dec_hidden_size=16, latent_dim=4, num_mixture=2)
        b = 8 if small else 100
        sk = synthetic_sketches(b, seed=0, max_points=min(nmax, 40))
        xs, ls = pad_batch(sk, nmax)
        # lengths spread over 1..Nmax as in a real set (the sheep's mean is about half its Nmax)
        ls = torch.randint(max(1, nmax // 8), nmax + 1, (b,), generator=g)
        xs = xs.to(device)
        ls = ls.to(device)
        model = SketchRNN(SketchRNNConfig(**cfg)).to(device).train()
        step, fb = _step_fn(model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda: (xs, ls), device, "fp32")
        steps["sketch-rnn"] = {"step": step, "flops": fb, "info": {
            "preset": "sketch-rnn cpu", "config": model.config.to_dict(), "batch": b,
            "input": f"stroke-5 [{b}, {nmax}, 5], lengths uniform in {max(1, nmax // 8)}..{nmax}",
            "precision": "fp32 (the family has no bf16 path)"}}

    if "stylegan2" in only:
        from latentstudio.models.stylegan2 import Discriminator, Generator, StyleGAN2Config
        from latentstudio.models.stylegan2.loss import StyleGAN2Loss

        p = preset("stylegan2", "tiny")
        cfg = dict(p["model"])
        if small:
            cfg.update(resolution=16, z_dim=16, w_dim=16, channel_base=64, channel_max=16)
        c = StyleGAN2Config(**cfg)
        t = p["train"]
        n = 4 if small else t["batch_size"]
        G, D = Generator(c).to(device).train(), Discriminator(c).to(device).train()
        loss = StyleGAN2Loss(G, D, r1_gamma=t["r1_gamma"]).to(device)
        opt_g = torch.optim.Adam(G.parameters(), lr=t["lr"], betas=(0.0, 0.99))
        opt_d = torch.optim.Adam(D.parameters(), lr=t["lr"], betas=(0.0, 0.99))
        real = (torch.rand(n, c.img_channels, c.resolution, c.resolution, generator=g) * 2 - 1).to(device)
        gen = torch.Generator(device=device).manual_seed(0)

        def phase(name: str, optimise: bool) -> None:
            z = torch.randn(n, c.z_dim, device=device, generator=gen)
            g_phase = name.startswith("g_")
            D.requires_grad_(not g_phase)
            G.requires_grad_(g_phase)
            opt = opt_g if g_phase else opt_d
            opt.zero_grad(set_to_none=True)
            if name == "g_main":
                with _autocast(device, precision):
                    out = loss.g_main(z, gen)
            elif name == "g_pl":
                out = loss.g_pl(z, 4, gen)
            elif name == "d_main":
                with _autocast(device, precision):
                    out = loss.d_main(real, z, gen)
            else:
                out = loss.d_r1(real, 16)
            out.loss.backward()
            if optimise:
                opt.step()
            G.requires_grad_(True)
            D.requires_grad_(True)

        steps["stylegan2"] = {"phases": {k: (lambda k=k: phase(k, True), lambda k=k: phase(k, False))
                                         for k in ("g_main", "g_pl", "d_main", "d_r1")},
                              "weights": {"g_main": 1.0, "d_main": 1.0, "g_pl": 0.25, "d_r1": 1 / 16},
                              "info": {"preset": "stylegan2 tiny", "config": c.to_dict(), "batch": n,
                                       "input": f"random real images [{n}, {c.img_channels}, {c.resolution}, "
                                                f"{c.resolution}]",
                                       "step": "G main + D main + path length / 4 + R1 / 16"}}
    return steps


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: totals only. The tracker's backward hooks
    refuse ``autograd.grad`` on leaf inputs (the R1 penalty differentiates D with respect to the images)."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of ``fn`` by FlopCounterMode (``Global`` total), with the in-place ``addmm_`` / ``baddbmm_``
    counted like ``addmm`` / ``baddbmm`` (FlopCounterMode's table has only the out-of-place forms; the
    sketch-rnn kernel accumulates its weight gradients in place)."""
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    aten = torch.ops.aten

    def same_as(op):  # the registered formula already takes tensors: mark it raw so it is not wrapped again
        def formula(*args, **kwargs):
            return flop_registry[op](*args, **kwargs)

        formula._get_raw = True
        return formula

    fc = FlopCounterMode(display=False, custom_mapping={aten.baddbmm_: same_as(aten.baddbmm),
                                                        aten.addmm_: same_as(aten.addmm)})
    fc.mod_tracker = _GlobalOnly()
    with fc:
        fn()
    return int(fc.get_total_flops())


def _timed(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def profile_table(fn: Callable[[], None], rows: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "calls": e.count, "self_cpu_ms": round(e.self_cpu_time_total / 1000, 2),
             "share": round(e.self_cpu_time_total / total, 3)} for e in events[:rows]]


def wait_policy() -> str:
    """``OMP_WAIT_POLICY`` of this process (read by the OpenMP runtime when torch loads it)."""
    return os.environ.get("OMP_WAIT_POLICY", "default (unset)")


def passive_runs(threads: list[int]) -> list[dict]:
    """The multi-thread runs again in a child process started with ``OMP_WAIT_POLICY=PASSIVE`` (threads
    that wait at a barrier sleep instead of spinning; the variable only acts when set before start-up)."""
    import subprocess
    import sys
    import tempfile

    argv = list(sys.argv[1:])
    for opt in ("--threads", "--results-dir", "--out", "--wait-policies"):
        while opt in argv:
            i = argv.index(opt)
            del argv[i : i + 2]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, __file__, *argv, "--threads", ",".join(map(str, threads)),
                        "--wait-policies", "current", "--results-dir", tmp, "--out", "passive"],
                       check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, stdout=subprocess.DEVNULL)
        return json.loads((Path(tmp) / "passive.json").read_text())["runs"]


def measure(args, device: torch.device, threads: int) -> dict:
    """One full measurement at ``threads``: FLOPs, interleaved timing, fractions of the matmul rate."""
    torch.set_num_threads(threads)
    load_start = os.getloadavg()
    steps = build_steps(device, bool(args.small), set(args.only.split(",")), args.precision)

    # FLOPs of forward + backward (no optimiser), once per step / phase; a step that fails is
    # reported in one line and left out of the timing
    flops: dict[str, float] = {}
    failed: dict[str, dict] = {}
    for name, s in list(steps.items()):
        try:
            if "phases" in s:
                s["phase_flops"] = {k: count_flops(fb) for k, (_, fb) in s["phases"].items()}
                flops[name] = sum(s["weights"][k] * v for k, v in s["phase_flops"].items())
            else:
                flops[name] = count_flops(s["flops"])
        except (RuntimeError, ValueError) as exc:
            failed[name] = {**s["info"], "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            del steps[name]

    m = args.mm_size
    a = torch.randn(m, m, device=device)
    b = torch.randn(m, m, device=device)
    mm_flops = 2 * m**3

    def mm() -> None:
        with _autocast(device, args.precision):
            torch.mm(a, b)

    units: dict[str, Callable[[], None]] = {"matmul": mm}
    for name, s in steps.items():
        if "phases" in s:
            for k, (opt_fn, _) in s["phases"].items():
                units[f"{name}:{k}"] = opt_fn
        else:
            units[name] = s["step"]
    for fn in units.values():  # warm-up
        fn()
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in units}
    for _ in range(args.rounds):
        for k, fn in units.items():
            wall, cpu = _timed(fn, device)
            times[k]["wall"].append(wall)
            times[k]["cpu"].append(cpu)
    load_end = os.getloadavg()
    med = {k: {u: statistics.median(v[u]) for u in ("wall", "cpu")} for k, v in times.items()}
    rate = {u: mm_flops / med["matmul"][u] for u in ("wall", "cpu")}

    results = {}
    for name, s in steps.items():
        if "phases" in s:
            t = {u: sum(s["weights"][k] * med[f"{name}:{k}"][u] for k in s["phases"]) for u in ("wall", "cpu")}
            per_phase = {k: {"flops": s["phase_flops"][k], "weight": s["weights"][k],
                             "wall_seconds": [round(x, 4) for x in times[f"{name}:{k}"]["wall"]],
                             "cpu_seconds": [round(x, 4) for x in times[f"{name}:{k}"]["cpu"]],
                             "fraction_of_matmul_rate_cpu": round(
                                 s["phase_flops"][k] / med[f"{name}:{k}"]["cpu"] / rate["cpu"], 4)}
                         for k in s["phases"]}
        else:
            t = med[name]
            per_phase = None
        achieved = {u: flops[name] / t[u] for u in ("wall", "cpu")}
        r = {**s["info"], "flops_per_step": int(flops[name]),
             "step_seconds_median": {u: round(t[u], 4) for u in ("wall", "cpu")},
             "achieved_flops_per_s": {u: round(achieved[u]) for u in ("wall", "cpu")},
             "fraction_of_matmul_rate": {u: round(achieved[u] / rate[u], 4) for u in ("wall", "cpu")}}
        if per_phase is None:
            r["wall_seconds"] = [round(x, 4) for x in times[name]["wall"]]
            r["cpu_seconds"] = [round(x, 4) for x in times[name]["cpu"]]
        else:
            r["phases"] = per_phase
        if name in GOAL_STEPS:
            r["goal"] = f">= {GOAL}"
            r["meets_goal"] = bool(r["fraction_of_matmul_rate"]["cpu"] >= GOAL)
        if args.profile:
            fns = [fn for fn, _ in s["phases"].values()] if per_phase is not None else [s["step"]]
            r["profile_top_ops"] = profile_table(lambda fns=fns: [f() for f in fns])
        results[name] = r
    results.update(failed)
    return {
        "threads": torch.get_num_threads(),
        "omp_wait_policy": wait_policy(),
        "matmul": {"size": m, "flops": mm_flops, "precision": args.precision,
                   "wall_seconds": [round(x, 5) for x in times["matmul"]["wall"]],
                   "cpu_seconds": [round(x, 5) for x in times["matmul"]["cpu"]],
                   "flops_per_s": {u: round(v) for u, v in rate.items()}},
        "steps": results,
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in load_end],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="full",
                    help="work preset (smoke: tests; quick; full); explicit options win")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts, one run each")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--mm-size", type=int, default=None, help="side of the reference matrix product")
    ap.add_argument("--only", default="vae,draw,sketch,stylegan2")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: autocast where the family allows it (not sketch-rnn, not the regularisers), "
                         "and the reference matrix product in bf16")
    ap.add_argument("--small", action="store_true", default=None, help="tiny shapes (tests)")
    ap.add_argument("--profile", action="store_true", help="add the top operators of each step")
    ap.add_argument("--wait-policies", choices=("current", "default,passive"), default=None,
                    help="default,passive: also measure the multi-thread counts with OMP_WAIT_POLICY=PASSIVE "
                         "(a child process; CPU only)")
    ap.add_argument("--out", default=NAME)
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="write the JSON there instead of benchmarks/results (checks, tests)")
    args = ap.parse_args()
    if args.results_dir is not None:
        _common.RESULTS = args.results_dir
    for k, v in SUITES[args.suite].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    from latentstudio.training.sketch_rnn import retain_freed_memory

    retain_freed_memory()
    counts = [int(t) for t in str(args.threads).split(",")]
    runs = [measure(args, device, t) for t in counts]
    multi = [t for t in counts if t > 1]
    if args.wait_policies == "default,passive" and multi and device.type == "cpu" and wait_policy() != "PASSIVE":
        runs += passive_runs(multi)
    first = runs[0]
    ok = {k: v for k, v in first["steps"].items() if "fraction_of_matmul_rate" in v}
    head = ok.get("two-stage-vae/stage1") or next(iter(ok.values()), {"fraction_of_matmul_rate": {"cpu": None}})
    write_result(args.out, {
        "benchmark": NAME,
        "command": f"python benchmarks/efficiency.py --suite {args.suite} --device {args.device} "
                   f"--threads {args.threads}" + (f" --precision {args.precision}" if args.precision != "fp32" else "")
                   + (" --profile" if args.profile else ""),
        "suite": args.suite,
        "device": str(device),
        "precision": args.precision,
        "rounds": args.rounds,
        "order": "every round runs the matrix product then each step once (interleaved)",
        "flop_counting": "torch.utils.flop_counter.FlopCounterMode over forward + backward of one step "
                         "(matrix products and convolutions; the optimiser and element-wise work are not counted)",
        "fraction_meaning": "achieved FLOP/s of the step / FLOP/s of the matrix product, same threads, same run "
                            "(cpu: on process CPU time; wall: on wall time)",
        "runs": runs,
        "headline": {
            "result": f"fraction of the {args.precision} matmul rate: " + ", ".join(
                f"{k} {v['fraction_of_matmul_rate']['cpu']:.2f}" for k, v in ok.items()),
            "reference": f"torch.mm {args.mm_size} x {args.mm_size}, same threads, same run",
            "ratio": head["fraction_of_matmul_rate"]["cpu"],
            "work": f"{args.rounds} rounds of one step each",
            "time": f"{first['threads']} thread(s), load {first['load_average_start'][0]:.1f} -> "
                    f"{first['load_average_end'][0]:.1f}",
        },
        "environment": environment(),
    })


if __name__ == "__main__":
    main()
