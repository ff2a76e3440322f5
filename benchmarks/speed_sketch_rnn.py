"""sketch-rnn training-step time against a plain PyTorch reference built on ``nn.LSTM`` (goal: <= 0.67x).

Both sides take full training steps (forward, loss, backward, gradient clipping by value 1.0,
Adam) on the same batches at magenta's defaults: batch 100, Nmax 250, encoder 2 x 256, decoder
512, z 128, M = 20; latentstudio with its recurrent dropout (keep probability 0.9), the reference
without (``nn.LSTM`` has none: it computes the cheaper function of the two).

The reference (written here, plain PyTorch):

- encoder: two ``nn.LSTM(5, 256)``, one per direction, on the padded batch trimmed to its longest
  sketch (unpacked): the forward direction on the sketches, the backward one on each sketch
  reversed within its length (magenta's ``reverse_sequence``), final states picked at each
  sketch's last point (masking). A single bidirectional ``nn.LSTM`` on padded input would start
  its backward direction in the padding, which is another function.
- decoder: ``nn.LSTM(5 + 128, 512)`` over all Nmax steps on ``[S_{i-1}, z]``, initial state
  ``tanh(W z + b)``.
- loss: the mixture density in probability space, ``-log(sum_j pi_j N_j + 1e-6)`` masked after
  each sketch's end, the pen cross-entropy over all steps, both divided by Nmax, plus
  ``w_KL max(KL, 0.2)``.

Checks before timing: with the latentstudio weights copied into the reference (gate order and
biases mapped) and dropout off (eval mode), both give the same loss on the same batch and the
same z noise (``loss_check``, to 1e-5). Timing: rounds alternate the order (A B, then B A, ...)
so that machine load falls on both; each step's wall time and CPU time (``time.process_time``)
are recorded; ratios are latentstudio / reference of the medians (< 1: latentstudio is faster).

Data: the first ``batch x rounds`` training sketches of the sheep set
(``sketches/sketch-rnn-datasets/aaron_sheep.npz``, Nmax 250) when present under the data root,
else synthetic sketches (said in the result).

FLOPs: each side's step is counted (FlopCounterMode; the reference's ``nn.LSTM`` products by
formula) and divided by this CPU's fp32 matrix-product rate measured in the same run at the same
threads: the ``floor_seconds`` no implementation of that arithmetic can beat, and
``best_possible_ratio`` (FLOPs over FLOPs), the ratio if both ran at the matrix-product rate.

Threads: one run per count in ``--threads``; one thread by default, because on a CPU shared with
other jobs two threads mostly measure how long each step waits for the other thread to be
scheduled (both sides' CPU time then grows several-fold).

Suites: ``smoke`` (a tiny model, seconds; for the tests), ``quick`` (3 timed rounds, 1 thread),
``full`` (10 timed rounds, 1 and 2 threads); explicit options win. Writes
benchmarks/results/speed_sketch_rnn.json.

Usage:
    python benchmarks/speed_sketch_rnn.py [--suite quick|full|smoke] [--device cpu|cuda] [--threads 1,2]
        [--rounds N] [--batch 100] [--nmax 250] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import _common
import torch
import torch.nn.functional as F
from _common import data_root, environment, write_result
from efficiency import count_flops
from torch import nn

NAME = "speed_sketch_rnn"
GOAL = 0.67
SHEEP = Path("sketches") / "sketch-rnn-datasets" / "aaron_sheep.npz"
_DEFAULTS = {"batch": 100, "nmax": 250, "enc_size": 256, "dec_size": 512, "latent_dim": 128, "mixtures": 20}
SUITES = {
    "smoke": {"batch": 8, "nmax": 24, "enc_size": 16, "dec_size": 32, "latent_dim": 8, "mixtures": 3,
              "rounds": 1, "warmup": 0, "threads": "1"},
    "quick": {**_DEFAULTS, "rounds": 3, "warmup": 1, "threads": "1"},
    "full": {**_DEFAULTS, "rounds": 10, "warmup": 2, "threads": "1,2"},
}


class ReferenceSketchRNN(nn.Module):
    """Plain sketch-rnn: ``nn.LSTM`` encoder (one per direction) and decoder, mixture loss in probability space."""

    def __init__(self, enc: int, dec: int, nz: int, m: int, nmax: int, *, kl_weight: float, kl_tolerance: float,
                 eta_min: float, decay: float, sigma_min: float, rho_max: float, eps: float) -> None:
        super().__init__()
        self.enc_f = nn.LSTM(5, enc)
        self.enc_b = nn.LSTM(5, enc)
        self.mu = nn.Linear(2 * enc, nz)
        self.logvar = nn.Linear(2 * enc, nz)
        self.init = nn.Linear(nz, 2 * dec)
        self.dec = nn.LSTM(5 + nz, dec)
        self.out = nn.Linear(dec, 6 * m + 3)
        self.m, self.nmax, self.dec_size = m, nmax, dec
        self.kl_weight, self.kl_tolerance, self.eta_min, self.decay = kl_weight, kl_tolerance, eta_min, decay
        self.sigma_min, self.rho_max, self.eps = sigma_min, rho_max, eps

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, eps_z: torch.Tensor, step: int = 0) -> torch.Tensor:
        """``x [B, Nmax, 5]`` stroke-5, ``lengths [B]``, ``eps_z [B, Nz]`` -> scalar loss."""
        b = x.shape[0]
        xt = x.transpose(0, 1)  # [T, B, 5]
        t_max = int(lengths.max())
        xe = xt[:t_max]
        steps = torch.arange(t_max, device=x.device)[:, None]
        rev = torch.where(steps < lengths[None], lengths[None] - 1 - steps, steps)
        xe_rev = xe.gather(0, rev[..., None].expand(-1, -1, 5))
        last = (lengths - 1)[None, :, None]
        hf = self.enc_f(xe)[0]
        hb = self.enc_b(xe_rev)[0]
        feat = torch.cat([hf.gather(0, last.expand(1, b, hf.shape[-1]))[0],
                          hb.gather(0, last.expand(1, b, hb.shape[-1]))[0]], dim=-1)
        mu, logvar = self.mu(feat), self.logvar(feat)
        z = mu + torch.exp(0.5 * logvar) * eps_z
        c0, h0 = torch.tanh(self.init(z)).split(self.dec_size, dim=-1)
        start = x.new_tensor([0.0, 0.0, 1.0, 0.0, 0.0]).expand(1, b, 5)
        inp = torch.cat([start, xt[:-1]], dim=0)
        inp = torch.cat([inp, z[None].expand(inp.shape[0], -1, -1)], dim=-1)
        h = self.dec(inp, (h0[None].contiguous(), c0[None].contiguous()))[0]
        y = self.out(h)  # [T, B, 6M + 3]
        pen_logits = y[..., :3]
        pi, mx, my, lsx, lsy, r = y[..., 3:].split(self.m, dim=-1)
        sx = lsx.clamp(min=math.log(self.sigma_min)).exp()
        sy = lsy.clamp(min=math.log(self.sigma_min)).exp()
        rho = torch.tanh(r).clamp(-self.rho_max, self.rho_max)
        dx, dy = xt[..., 0:1] - mx, xt[..., 1:2] - my
        zz = (dx / sx) ** 2 + (dy / sy) ** 2 - 2 * rho * dx * dy / (sx * sy)
        one_m_r2 = 1 - rho * rho
        dens = torch.exp(-zz / (2 * one_m_r2)) / (2 * math.pi * sx * sy * torch.sqrt(one_m_r2))
        p = (torch.softmax(pi, dim=-1) * dens).sum(-1)
        real = (torch.arange(xt.shape[0], device=x.device)[:, None] < lengths[None]).to(p.dtype)
        l_s = (-torch.log(p + self.eps) * real).sum(0).mean() / self.nmax
        l_p = (-(F.log_softmax(pen_logits, dim=-1) * xt[..., 2:]).sum(-1)).sum(0).mean() / self.nmax
        kl = (0.5 * (mu * mu + logvar.exp() - logvar - 1)).mean()
        w = self.kl_weight * (1 - (1 - self.eta_min) * self.decay ** step)
        return l_s + l_p + w * torch.clamp(kl, min=self.kl_tolerance)


def _lstm_weights(layer, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """latentstudio direction ``k`` -> ``nn.LSTM``'s ``weight_ih [4H, F]``, ``weight_hh [4H, H]``, ``bias [4H]``
    (gate order [g, i, f, o] -> [i, f, g, o], the constant forget bias folded into the bias)."""
    h = layer.hidden_size
    order = torch.cat([torch.arange(h, 2 * h), torch.arange(2 * h, 3 * h), torch.arange(0, h),
                       torch.arange(3 * h, 4 * h)])
    w_ih = layer.weight_ih.detach()[k][order]
    w_hh = layer.weight_hh.detach()[k].t()[order]
    bias = layer._bias().detach()[k][order]
    return w_ih, w_hh, bias


def build_reference(model) -> ReferenceSketchRNN:
    """A :class:`ReferenceSketchRNN` holding ``model``'s weights (same function without dropout)."""
    c = model.config
    ref = ReferenceSketchRNN(c.enc_hidden_size, c.dec_hidden_size, c.latent_dim, c.num_mixture, c.max_seq_len,
                             kl_weight=c.kl_weight, kl_tolerance=c.kl_tolerance, eta_min=c.kl_eta_min,
                             decay=c.kl_decay_rate, sigma_min=c.sigma_min, rho_max=c.rho_max, eps=c.log_eps)
    with torch.no_grad():
        for lstm, layer, k in ((ref.enc_f, model.encoder, 0), (ref.enc_b, model.encoder, 1), (ref.dec, model.decoder, 0)):
            w_ih, w_hh, bias = _lstm_weights(layer, k)
            lstm.weight_ih_l0.copy_(w_ih)
            lstm.weight_hh_l0.copy_(w_hh)
            lstm.bias_ih_l0.copy_(bias)
            lstm.bias_hh_l0.zero_()
        for dst, src in ((ref.mu, model.enc_mu), (ref.logvar, model.enc_logvar), (ref.init, model.dec_init),
                         (ref.out, model.output)):
            dst.load_state_dict(src.state_dict())
    return ref


def _batches(n: int, batch: int, nmax: int, root: Path) -> tuple[list, str]:
    from latentstudio.data.strokes import (
        load_strokes,
        normalizing_scale_factor,
        pad_batch,
        synthetic_sketches,
    )

    path = root / SHEEP
    if nmax == 250 and path.is_file():
        x, ln = load_strokes(path).train.to_stroke5(nmax)
        source = f"{SHEEP} (train split, first {n * batch} sketches)"
    else:
        import numpy as np

        sk = synthetic_sketches(n * batch, seed=0, max_points=min(nmax, 40))
        f = normalizing_scale_factor(sk)
        sk = [np.column_stack([s[:, :2] / f, s[:, 2]]).astype(np.float32) for s in sk]
        x, ln = pad_batch(sk, nmax)
        source = f"synthetic_sketches({n * batch}, seed=0) (the sheep set is used at Nmax 250 when found)"
    reps = math.ceil(n * batch / len(x))
    x, ln = x.repeat(reps, 1, 1), ln.repeat(reps)
    return [(x[i * batch : (i + 1) * batch], ln[i * batch : (i + 1) * batch]) for i in range(n)], source


def matmul_rate(device: torch.device, n: int = 2048, reps: int = 3) -> float:
    """fp32 FLOP/s of an ``n x n`` torch.mm on ``device`` at the current thread count: on process CPU time
    (best of ``reps``) on CPU, as the step times compared with it; on wall time on CUDA."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = clock()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, clock() - t0)
    return 2 * n**3 / best


def _lstm_flops(t: int, b: int, f: int, h: int) -> int:
    """Matrix-product FLOPs of one ``nn.LSTM`` layer's training step: forward ``[x, h] W``, backward
    ``dx``, ``dh`` and ``dW`` (not counted by FlopCounterMode, which has no formula for the fused RNN op)."""
    fwd = 2 * t * b * (f + h) * 4 * h
    return fwd + 2 * t * b * 4 * h * (f + h) + fwd


def _median(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def run(args, threads: int, device: torch.device) -> dict:
    from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig
    from latentstudio.types import Batch

    torch.set_num_threads(threads)
    load_start = os.getloadavg()
    batches, source = _batches(args.rounds + args.warmup + 1, args.batch, args.nmax, data_root(args.data_root))
    torch.manual_seed(0)
    cfg = SketchRNNConfig(max_seq_len=args.nmax, enc_hidden_size=args.enc_size, dec_hidden_size=args.dec_size,
                          latent_dim=args.latent_dim, num_mixture=args.mixtures)
    model = SketchRNN(cfg).to(device)
    ref = build_reference(model).to(device)
    nz = cfg.latent_dim

    # the same function: eval mode (no dropout), same weights, same batch, same z noise
    x, ln = (t.to(device) for t in batches[0])
    model.eval()
    with torch.no_grad():
        ours = float(model.loss(Batch(x, None, ln), generator=torch.Generator(device).manual_seed(7)).loss)
        eps_z = torch.randn(args.batch, nz, generator=torch.Generator(device).manual_seed(7), device=device)
        theirs = float(ref.loss(x, ln, eps_z))
    diff = abs(ours - theirs)
    loss_check = {"mode": "eval (no dropout), same weights, batch and z noise", "latentstudio": ours,
                  "reference": theirs, "abs_diff": diff, "rel_diff": diff / abs(theirs), "tolerance": 1e-5,
                  "equal": diff <= 1e-5 * max(1.0, abs(theirs))}
    model.train()
    ref.train()

    # FLOPs of one training step (forward + backward) of each, on the first batch
    gen = torch.Generator(device).manual_seed(0)
    flops_ours = count_flops(lambda: model.loss(Batch(x, None, ln), generator=gen).loss.backward())
    t_max = int(ln.max())
    lstm = (2 * _lstm_flops(t_max, args.batch, 5, cfg.enc_hidden_size)
            + _lstm_flops(args.nmax, args.batch, 5 + nz, cfg.dec_hidden_size))
    flops_ref = lstm + count_flops(lambda: ref.loss(x, ln, torch.randn(args.batch, nz, device=device)).backward())
    model.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)

    opts = {"latentstudio": torch.optim.Adam(model.parameters(), lr=1e-3),
            "reference": torch.optim.Adam(ref.parameters(), lr=1e-3)}

    def step(name: str, x: torch.Tensor, ln: torch.Tensor, i: int) -> None:
        net = model if name == "latentstudio" else ref
        if name == "latentstudio":
            loss = model.loss(Batch(x, None, ln), step=i, generator=gen).loss
        else:
            loss = ref.loss(x, ln, torch.randn(x.shape[0], nz, generator=gen, device=device), i)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(net.parameters(), 1.0)
        opts[name].step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    wall: dict[str, list[float]] = {"latentstudio": [], "reference": []}
    cpu: dict[str, list[float]] = {"latentstudio": [], "reference": []}
    for i, (xb, lb) in enumerate(batches[1:]):
        xb, lb = xb.to(device), lb.to(device)
        order = ("latentstudio", "reference") if i % 2 == 0 else ("reference", "latentstudio")
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            step(name, xb, lb, i)
            if i >= args.warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    rate = matmul_rate(device)
    load_end = os.getloadavg()
    ratio_wall = _median(wall["latentstudio"]) / _median(wall["reference"])
    ratio_cpu = _median(cpu["latentstudio"]) / _median(cpu["reference"])
    floor_ours, floor_ref = flops_ours / rate, flops_ref / rate
    return {
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (unset)"),
        "data": source,
        "loss_check": loss_check,
        "wall_seconds": {k: [round(v, 4) for v in vs] for k, vs in wall.items()},
        "cpu_seconds": {k: [round(v, 4) for v in vs] for k, vs in cpu.items()},
        "wall_seconds_median": {k: round(_median(v), 4) for k, v in wall.items()},
        "cpu_seconds_median": {k: round(_median(v), 4) for k, v in cpu.items()},
        "ratio_wall_median": round(ratio_wall, 4),
        "ratio_cpu_median": round(ratio_cpu, 4),
        "ratio_wall_per_round": [round(a / b, 4) for a, b in zip(wall["latentstudio"], wall["reference"])],
        "meets_goal": bool(ratio_cpu <= GOAL and ratio_wall <= GOAL),
        "flops": {
            "latentstudio_step": flops_ours,
            "reference_step": flops_ref,
            "counting": "FlopCounterMode over forward + backward on the first batch (efficiency.count_flops: "
                        "in-place addmm_/baddbmm_ included); the reference's nn.LSTM products are added by formula "
                        "(FlopCounterMode does not see the fused RNN op)",
            "matmul_flops_per_s": round(rate),
            "matmul": "2048 x 2048 fp32 torch.mm, best of 3 on process CPU time, same threads, after the timed "
                      "rounds",
            "floor_seconds": {"latentstudio": round(floor_ours, 3), "reference": round(floor_ref, 3)},
            "best_possible_ratio": round(flops_ours / flops_ref, 4),
            "achieved_fraction_of_matmul_rate_cpu": {
                "latentstudio": round(floor_ours / _median(cpu["latentstudio"]), 3),
                "reference": round(floor_ref / _median(cpu["reference"]), 3)},
        },
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in load_end],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="full",
                    help="work preset: smoke (tiny model, for tests), quick (3 rounds), full (10 rounds); "
                         "explicit options win")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", default=None,
                    help="comma-separated CPU thread counts, one run each (quick: 1; full: 1,2)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--nmax", type=int, default=None)
    ap.add_argument("--enc-size", type=int, default=None)
    ap.add_argument("--dec-size", type=int, default=None)
    ap.add_argument("--latent-dim", type=int, default=None)
    ap.add_argument("--mixtures", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (each: one step of each side)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds first")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=NAME, help="result name under benchmarks/results")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="write the JSON there instead of benchmarks/results (checks, tests)")
    args = ap.parse_args()
    if args.results_dir is not None:
        _common.RESULTS = args.results_dir
    for k, v in SUITES[args.suite].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    from latentstudio.training.sketch_rnn import retain_freed_memory

    retain_freed_memory()  # as training does: freed sequence buffers stay mapped (both sides alike)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    runs = [run(args, int(t), device) for t in str(args.threads).split(",")]
    head = runs[0]
    cmd = (f"python benchmarks/speed_sketch_rnn.py --suite {args.suite} --device {args.device} "
           f"--threads {args.threads}")
    write_result(args.out, {
        "benchmark": NAME,
        "command": cmd,
        "suite": args.suite,
        "device": str(device),
        "batch": args.batch,
        "nmax": args.nmax,
        "model": {"enc_hidden_size": args.enc_size, "dec_hidden_size": args.dec_size, "latent_dim": args.latent_dim,
                  "num_mixture": args.mixtures, "rnn_impl": "fused",
                  "recurrent_dropout_keep_prob": 0.9, "reference_recurrent_dropout": "none (nn.LSTM has none)"},
        "reference": "nn.LSTM encoder (one per direction, unpacked, final states picked at each length) and "
                     "decoder, no recurrent dropout; mixture loss in probability space (written in this script)",
        "step": "forward + loss + backward + clip_grad_value_(1.0) + Adam, training mode",
        "warmup_rounds": args.warmup,
        "timed_rounds": args.rounds,
        "order": "alternating per round (A B, then B A, ...)",
        "ratio_meaning": "latentstudio step time / reference step time, medians (< 1: latentstudio is faster)",
        "goal": f"<= {GOAL}",
        "runs": runs,
        "headline": {
            "result": f"sketch-rnn training step {head['cpu_seconds_median']['latentstudio']:.2f} s CPU "
                      f"(batch {args.batch}, Nmax {args.nmax})",
            "reference": "plain PyTorch nn.LSTM sketch-rnn, same batch and weights; FLOP floor of the ratio "
                         f"{head['flops']['best_possible_ratio']:.2f} (latentstudio's FLOPs / the reference's: the "
                         "ratio if both ran at the matmul rate)",
            "ratio": head["ratio_cpu_median"],
            "work": f"{args.rounds} timed steps of each, interleaved",
            "time": f"{head['threads']} thread(s), load {head['load_average_start'][0]:.1f} -> "
                    f"{head['load_average_end'][0]:.1f}",
        },
        "environment": environment(),
    })


if __name__ == "__main__":
    main()
