"""StyleGAN2 speed: generator images/s at 256x256 (random weights) and training step time at 32x32.

- generation: the config-f architecture at 256x256 (channel_base 32768, channel_max 512, 8 mapping
  layers, 14 styles; 30.0 M generator parameters), ``G(z, truncation_psi=0.7, noise_mode="const")`` in
  eval mode (fused modulated convolutions), no gradients; CPU always, CUDA when available (fp32 and
  bf16 autocast).
- training: the ``tiny`` preset at 32x32 (the CPU acceptance network) and, on CUDA, the ``cifar``
  preset (full-width 32x32); one step = G main + D main every batch, path length every 4 and R1 every
  16 batches (the lazy intervals), averaged over ``--train-steps`` batches (a multiple of 16).

Random weights, synthetic inputs: the numbers measure compute only. The 1-minute load average is
recorded because the CPU may be shared.

Writes benchmarks/results/stylegan2_speed.json.

Usage:
    python benchmarks/stylegan2_speed.py [--batch 8] [--iters 3] [--train-steps 16]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch
from _common import environment, write_result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def gen_speed(device: torch.device, batch: int, iters: int, bf16: bool = False) -> dict:
    from latentstudio.models.stylegan2 import Generator, StyleGAN2Config

    torch.manual_seed(0)
    G = Generator(StyleGAN2Config(resolution=256)).to(device).eval()
    z = torch.randn(batch, G.z_dim, device=device)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        G(z, truncation_psi=0.7)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            G(z, truncation_psi=0.7)
        _sync(device)
    dt = time.perf_counter() - t0
    return {"device": str(device), "precision": "bf16-autocast" if bf16 else "fp32", "batch": batch,
            "iters": iters, "images_per_s": round(batch * iters / dt, 3),
            "generator_params": sum(p.numel() for p in G.parameters())}


def train_speed(device: torch.device, preset_name: str, steps: int) -> dict:
    from latentstudio.models.stylegan2 import Discriminator, Generator, StyleGAN2Config
    from latentstudio.models.stylegan2.loss import StyleGAN2Loss
    from latentstudio.presets import preset

    p = preset("stylegan2", preset_name)
    cfg = StyleGAN2Config(**p["model"])
    t = p["train"]
    torch.manual_seed(0)
    G, D = Generator(cfg).to(device).train(), Discriminator(cfg).to(device).train()
    loss = StyleGAN2Loss(G, D, r1_gamma=t["r1_gamma"]).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=t["lr"], betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=t["lr"], betas=(0.0, 0.99))
    n = t["batch_size"]
    real = torch.rand(n, cfg.img_channels, cfg.resolution, cfg.resolution, device=device) * 2 - 1
    gen = torch.Generator(device=device).manual_seed(0)

    def step(i: int) -> None:
        def run(opt, net, out):
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()

        z = torch.randn(n, cfg.z_dim, device=device, generator=gen)
        D.requires_grad_(False)
        run(opt_g, G, loss.g_main(z, gen))
        if i % 4 == 0:
            run(opt_g, G, loss.g_pl(z, 4, gen))
        D.requires_grad_(True)
        G.requires_grad_(False)
        run(opt_d, D, loss.d_main(real, z, gen))
        if i % 16 == 0:
            run(opt_d, D, loss.d_r1(real, 16))
        G.requires_grad_(True)

    step(0)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    return {"device": str(device), "preset": preset_name, "resolution": cfg.resolution, "batch": n,
            "steps": steps, "seconds_per_step": round(dt, 4), "images_per_s": round(n / dt, 2),
            "g_params": sum(q.numel() for q in G.parameters()), "d_params": sum(q.numel() for q in D.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8, help="generation batch on CPU (GPU uses 32)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=16)
    args = ap.parse_args()
    cpu = torch.device("cpu")
    out: dict = {"load_average_1min_start": os.getloadavg()[0], "generation_256": [], "training_32": []}
    out["generation_256"].append(gen_speed(cpu, args.batch, args.iters))
    out["training_32"].append(train_speed(cpu, "tiny", args.train_steps))
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["generation_256"].append(gen_speed(cuda, 32, 20))
        out["generation_256"].append(gen_speed(cuda, 32, 20, bf16=True))
        out["training_32"].append(train_speed(cuda, "tiny", 64))
        out["training_32"].append(train_speed(cuda, "cifar", 64))
    out["load_average_1min_end"] = os.getloadavg()[0]
    out["command"] = (f"python benchmarks/stylegan2_speed.py --batch {args.batch} --iters {args.iters} "
                      f"--train-steps {args.train_steps}")
    out["environment"] = environment()
    write_result("stylegan2_speed", out)


if __name__ == "__main__":
    main()
