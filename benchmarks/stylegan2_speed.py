"""StyleGAN2 speed: generator images/s at 256 px (batch 1 and 4) and 1024 px (batch 1), and training
steps at 32 and 256 px.

- generation: random weights in the config-f layout (``StyleGAN2Config(resolution=R)``: channel_base
  32768, channel_max 512, 8 mapping layers; 30.0 M generator parameters at 256 px, 30.4 M at 1024),
  ``G(z, truncation_psi=0.7, noise_mode="const")`` in eval mode (fused modulated convolutions), no
  gradients; ``--iters`` calls after one warm-up call.
- training: a step is the four phases of :class:`~latentstudio.models.stylegan2.loss.StyleGAN2Loss`
  (zero_grad, forward, backward, Adam step each): G main and D main every batch, path length every 4
  and R1 every 16 batches (the lazy intervals). Each phase is timed ``--train-rounds`` times
  (medians) and the step time is ``G main + D main + G pl / 4 + D r1 / 16``, what a long run averages.
  32 px: the ``tiny`` preset (batch 32); 256 px: the ``paper256`` preset's networks (channel_base
  16384) at ``--train-batch-256`` (2 on CPU in the quick suite; the preset's 64 on CUDA).
- precision: fp32 everywhere; ``--precision fp32,bf16`` adds bf16 autocast runs (the default on CUDA).
  In generation the mapping network runs outside autocast and the synthesis inside it
  (``G(z, truncation_psi=0.7)`` wholly under bf16 autocast fails in the truncation's ``w_avg.lerp``:
  float32 ``w_avg`` against bfloat16 ``w``).
- ``--reference-repo PATH``: a checkout of the official stylegan2-ada-pytorch (never bundled here).
  When given, its ``training.networks.Generator`` is built with the same config, loaded with the
  same state dict (``strict=True``), timed beside latentstudio's generator (rounds alternate the
  order) and their images compared. Without it that part is skipped and the result says so.

Threads are set explicitly (``--threads``, default 1: on a CPU shared with other jobs, more threads
mostly measure waits for the scheduler); wall time and CPU time (``time.process_time``) are recorded
with the load average before and after. Random weights and synthetic inputs: compute only.

Suites: ``smoke`` (tiny networks, seconds; for the tests), ``quick`` (a few minutes on 2 idle
cores), ``full``. Writes benchmarks/results/stylegan2_speed.json.

Usage:
    python benchmarks/stylegan2_speed.py [--suite quick|full|smoke] [--device cpu|cuda] [--threads 1]
        [--gen 256:1,256:4,1024:1] [--iters 2] [--train-rounds 3] [--train-batch-256 2]
        [--precision fp32,bf16] [--reference-repo PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import _common
import torch
from _common import environment, write_result

NAME = "stylegan2_speed"
SMALL = {"z_dim": 32, "w_dim": 32, "channel_base": 256, "channel_max": 16, "mapping_layers": 2}
SUITES = {
    "smoke": {"gen": "32:1", "iters": 1, "train": "32:tiny:4", "train_rounds": 1, "train_batch_256": 2,
              "small": True},
    "quick": {"gen": "256:1,256:4,1024:1", "iters": 2, "train": "32:tiny:32,256:paper256:0", "train_rounds": 1,
              "train_batch_256": 2, "small": False},
    "full": {"gen": "256:1,256:4,1024:1", "iters": 5, "train": "32:tiny:32,256:paper256:0", "train_rounds": 3,
             "train_batch_256": 4, "small": False},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _timed(fn, device: torch.device) -> tuple[float, float]:
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def gen_config(resolution: int, small: bool):
    from latentstudio.models.stylegan2 import StyleGAN2Config

    return StyleGAN2Config(resolution=resolution, **(SMALL if small else {}))


def official_generator(repo: Path, cfg, state: dict):
    """The official stylegan2-ada-pytorch ``Generator`` of ``cfg`` with ``state`` loaded (strict)."""
    sys.path.insert(0, str(repo))
    try:
        from training.networks import Generator as OfficialGenerator
    finally:
        sys.path.remove(str(repo))
    og = OfficialGenerator(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                           img_channels=cfg.img_channels,
                           mapping_kwargs={"num_layers": cfg.mapping_layers, "lr_multiplier": cfg.mapping_lr_multiplier,
                                           "w_avg_beta": cfg.w_avg_beta},
                           synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                                             "num_fp16_res": 0, "conv_clamp": cfg.conv_clamp})
    og.load_state_dict(state, strict=True)
    return og


@torch.no_grad()
def gen_speed(device: torch.device, resolution: int, batch: int, iters: int, precision: str, small: bool,
              reference_repo: Path | None) -> dict:
    from latentstudio.models.stylegan2 import Generator

    torch.manual_seed(0)
    cfg = gen_config(resolution, small)
    G = Generator(cfg).to(device).eval()
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)

    def ours():  # = G(z, truncation_psi=0.7, noise_mode="const"), the mapping outside autocast (see below)
        ws = G.mapping(z, None, truncation_psi=0.7)
        with _autocast(device, precision):
            return G.synthesis(ws, noise_mode="const")

    nets = {"latentstudio": ours}
    out: dict = {"device": str(device), "precision": precision, "resolution": resolution, "batch": batch,
                 "iters": iters, "generator_params": sum(p.numel() for p in G.parameters()),
                 "architecture": "small test network" if small else "config-f layout"}
    if reference_repo is not None:
        og = official_generator(reference_repo, cfg, G.state_dict()).to(device).eval()
        c = torch.zeros(batch, 0, device=device)

        def official():
            ws = og.mapping(z, c, truncation_psi=0.7)
            with _autocast(device, precision):
                return og.synthesis(ws, noise_mode="const")

        nets["official"] = official
        a, b = nets["latentstudio"]().float(), nets["official"]().float()
        diff = (a - b).abs().max().item()
        tol = 1e-4 if precision == "fp32" else 5e-2
        out["official_check"] = {"max_abs_diff": diff, "tolerance": tol, "equal": diff <= tol,
                                 "weights": "the same state dict, loaded strict=True"}
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in nets}
    for fn in nets.values():
        fn()  # warm-up
    for i in range(iters):
        for name in (list(nets) if i % 2 == 0 else list(nets)[::-1]):
            wall, cpu = _timed(nets[name], device)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    for name, t in times.items():
        wall, cpu = statistics.median(t["wall"]), statistics.median(t["cpu"])
        key = "" if name == "latentstudio" else "official_"
        out[f"{key}wall_seconds"] = [round(v, 4) for v in t["wall"]]
        out[f"{key}cpu_seconds"] = [round(v, 4) for v in t["cpu"]]
        out[f"{key}images_per_s"] = round(batch / wall, 4)
        out[f"{key}images_per_cpu_s"] = round(batch / cpu, 4)
    if "official" in nets:
        out["ratio_images_per_s_latentstudio_over_official"] = round(out["images_per_s"] / out["official_images_per_s"], 4)
    return out


def train_speed(device: torch.device, resolution: int, preset_name: str, batch: int, rounds: int,
                precision: str, small: bool) -> dict:
    from latentstudio.models.stylegan2 import Discriminator, Generator, StyleGAN2Config
    from latentstudio.models.stylegan2.loss import StyleGAN2Loss
    from latentstudio.presets import preset

    p = preset("stylegan2", preset_name)
    model = dict(p["model"], resolution=resolution)
    if small:
        model.update({k: min(v, model.get(k, v)) for k, v in SMALL.items()})
    cfg = StyleGAN2Config(**model)
    t = p["train"]
    n = batch or t["batch_size"]
    torch.manual_seed(0)
    G, D = Generator(cfg).to(device).train(), Discriminator(cfg).to(device).train()
    loss = StyleGAN2Loss(G, D, r1_gamma=t["r1_gamma"]).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=t["lr"], betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=t["lr"], betas=(0.0, 0.99))
    real = torch.rand(n, cfg.img_channels, cfg.resolution, cfg.resolution, device=device) * 2 - 1
    gen = torch.Generator(device=device).manual_seed(0)

    def phase(name: str) -> None:
        z = torch.randn(n, cfg.z_dim, device=device, generator=gen)
        g_phase = name.startswith("g_")
        D.requires_grad_(not g_phase)
        G.requires_grad_(g_phase)
        opt = opt_g if g_phase else opt_d
        opt.zero_grad(set_to_none=True)
        if name == "g_main":
            with _autocast(device, precision):
                out = loss.g_main(z, gen)
        elif name == "g_pl":  # the regularisers in fp32, as the trainer runs them
            out = loss.g_pl(z, 4, gen)
        elif name == "d_main":
            with _autocast(device, precision):
                out = loss.d_main(real, z, gen)
        else:
            out = loss.d_r1(real, 16)
        out.loss.backward()
        opt.step()
        G.requires_grad_(True)
        D.requires_grad_(True)

    phases = ("g_main", "g_pl", "d_main", "d_r1")
    if device.type == "cuda":
        for name in phases:
            phase(name)  # warm-up (kernel selection, allocator)
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in phases}
    for _ in range(rounds):
        for name in phases:
            wall, cpu = _timed(lambda name=name: phase(name), device)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    med = {k: {m: statistics.median(v[m]) for m in ("wall", "cpu")} for k, v in times.items()}
    step = {m: med["g_main"][m] + med["d_main"][m] + med["g_pl"][m] / 4 + med["d_r1"][m] / 16 for m in ("wall", "cpu")}
    return {"device": str(device), "precision": precision, "preset": preset_name, "resolution": resolution,
            "batch": n, "rounds": rounds, "warmup": device.type == "cuda",
            "phase_wall_seconds": {k: [round(x, 4) for x in v["wall"]] for k, v in times.items()},
            "phase_cpu_seconds": {k: [round(x, 4) for x in v["cpu"]] for k, v in times.items()},
            "seconds_per_step": round(step["wall"], 4), "cpu_seconds_per_step": round(step["cpu"], 4),
            "images_per_s": round(n / step["wall"], 3), "kimg_per_s": round(n / step["wall"] / 1000, 6),
            "images_per_cpu_s": round(n / step["cpu"], 3),
            "step": "G main + D main + G path length / 4 + D R1 / 16 (medians of each phase)",
            "g_params": sum(q.numel() for q in G.parameters()), "d_params": sum(q.numel() for q in D.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="full",
                    help="work preset (smoke: tests; quick; full); explicit options win")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gen", default=None, help="generation runs RES:BATCH, comma-separated")
    ap.add_argument("--iters", type=int, default=None, help="timed generator calls per run")
    ap.add_argument("--train", default=None, help="training runs RES:PRESET:BATCH (0: the preset's batch; 256 px "
                                                  "uses --train-batch-256 on CPU), comma-separated")
    ap.add_argument("--train-rounds", type=int, default=None, help="timed repetitions of each training phase")
    ap.add_argument("--train-batch-256", type=int, default=None, help="batch of the 256 px step on CPU")
    ap.add_argument("--precision", default=None, help="fp32 and/or bf16 (autocast), comma-separated "
                                                      "(default: fp32 on CPU, fp32,bf16 on CUDA)")
    ap.add_argument("--reference-repo", type=Path, default=None,
                    help="a checkout of the official stylegan2-ada-pytorch: also time its generator on the same weights")
    ap.add_argument("--small", action="store_true", default=None, help="tiny networks (tests)")
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
    if args.reference_repo is not None and not (args.reference_repo / "training" / "networks.py").is_file():
        raise SystemExit(f"--reference-repo {args.reference_repo}: no training/networks.py there "
                         "(expected a checkout of stylegan2-ada-pytorch)")
    torch.set_num_threads(args.threads)
    precisions = (args.precision or ("fp32,bf16" if device.type == "cuda" else "fp32")).split(",")
    load_start = os.getloadavg()
    out: dict = {"benchmark": NAME, "suite": args.suite, "device": str(device), "threads": torch.get_num_threads(),
                 "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (unset)"),
                 "generation": [], "training": []}
    if device.type == "cuda":
        out["gpu_name"] = torch.cuda.get_device_name(0)

    def attempt(what: dict, fn, *fn_args) -> dict:
        """Run one measurement; a failure is recorded in one line beside its settings, not raised."""
        try:
            return fn(*fn_args)
        except (RuntimeError, ValueError) as exc:
            return {**what, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}

    for spec in args.gen.split(","):
        res, batch = (int(v) for v in spec.split(":"))
        for prec in precisions:
            out["generation"].append(attempt(
                {"device": str(device), "precision": prec, "resolution": res, "batch": batch},
                gen_speed, device, res, batch, args.iters, prec, args.small, args.reference_repo))
    for spec in args.train.split(","):
        res, name, batch = spec.split(":")
        b = int(batch) or (args.train_batch_256 if int(res) >= 256 and device.type == "cpu" else 0)
        for prec in precisions:
            out["training"].append(attempt(
                {"device": str(device), "precision": prec, "resolution": int(res), "preset": name, "batch": b},
                train_speed, device, int(res), name, b, args.train_rounds, prec, args.small))
    out["official_reference"] = (
        f"timed and compared: {args.reference_repo}" if args.reference_repo is not None else
        "skipped: no --reference-repo given (a checkout of stylegan2-ada-pytorch); latentstudio numbers only")
    load_end = os.getloadavg()
    out["load_average_start"] = [round(v, 2) for v in load_start]
    out["load_average_end"] = [round(v, 2) for v in load_end]
    cmd = (f"python benchmarks/stylegan2_speed.py --suite {args.suite} --device {args.device} --threads {args.threads}"
           + (f" --precision {args.precision}" if args.precision else "")
           + (" --reference-repo PATH" if args.reference_repo is not None else ""))
    out["command"] = cmd
    g0 = next((g for g in out["generation"] if "images_per_s" in g), {"images_per_s": float("nan"),
                                                                       "resolution": "?", "batch": "?"})
    official = [g["ratio_images_per_s_latentstudio_over_official"] for g in out["generation"]
                if "ratio_images_per_s_latentstudio_over_official" in g]
    out["headline"] = {
        "result": f"generator {g0['images_per_s']:.3g} images/s at {g0['resolution']} px batch {g0['batch']}",
        "reference": "official stylegan2-ada-pytorch generator" if official else "none (no --reference-repo)",
        "ratio": official[0] if official else None,
        "work": f"{args.iters} generator calls per size, {args.train_rounds} rounds of each training phase",
        "time": f"{out['threads']} thread(s), load {load_start[0]:.1f} -> {load_end[0]:.1f}",
    }
    out["environment"] = environment()
    write_result(args.out, out)


if __name__ == "__main__":
    main()
