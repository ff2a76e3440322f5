"""Face studio at scale: a full FFHQ config-f StyleGAN2 generator (1024 px, 18 x 512 W+) on CPU, beside 256 px.

Random weights in the real config-f layout (``latentstudio.presets`` ``config-f``: channel_base 32768,
channel_max 512, 8 mapping layers; 30,370,060 generator parameters at 1024 px, 30,034,338 at 256 px)
stand in for the official file: compute and memory do not depend on the values of the weights. The
model folders are written the way ``latentstudio convert`` writes a converted file (``config.json`` +
``model.safetensors`` + ``meta.json``, dataset ``ffhq``, ``w_avg`` estimated from 10,000 z), into
``benchmarks/runs/studio_scale/config-f-<R>`` unless ``--model-root`` says otherwise.

Each resolution is measured in its own process (so its peak resident set size is its own), with a fixed
number of torch threads (``--threads``, also ``OMP_NUM_THREADS``):

1. generation: ``Generator.sample_seeds([seed])`` (what ``latentstudio sample --seeds`` runs), batch 1,
   one warm-up image, then ``--gen-images`` timed images; then one batch of ``--batch-memory`` images
   (memory only: the growth of the peak RSS per image in a batch);
2. projection: ``latentstudio.studio.projection.project`` (the studio's and the CLI's projector, its
   default StyleGAN2 settings, W+, the perceptual distance the CLI would use) of FFHQ photo 00000
   aligned at the model's resolution, on a forked model as the CLI does, with ``1 + --steps + 1`` steps:
   one warm-up step, ``--steps`` timed steps (time between the projector's progress callbacks: one step
   = synthesis forward + distance + backward + Adam update + noise renormalisation), and one last step
   recorded by torch's profiler for the allocator's peak (``profile_memory``, memory timeline of the
   CPU tensors). The wall time of the whole ``project`` call minus its loop is reported as the call's
   fixed cost (initial and final synthesis, image metrics);
3. image metrics: ``image_metrics`` of the projection's result (MSE, PSNR, SSIM), timed once, and
   the same SSIM in float32 for comparison.

Every time is wall-clock (``perf_counter``) with the process's CPU time (``process_time``) beside it: on a
shared machine the wall time grows with the load while the CPU time of one thread stays close to what
an idle core would take. Derived: the wait for 100 and 1000 projection steps (steps x median step
time, plus the fixed cost).
Memory: the peak resident set size of each phase (``resource.getrusage``'s ``ru_maxrss``, reset between
phases through /proc/self/clear_refs on Linux; ``psutil`` is not installed): loading, generation (batch 1
and the batch), the projection call split into start + warm-up step, timed steps, profiled step and what
follows the loop (final synthesis + image metrics), and the image metrics alone; plus the profiler's
tensor peak of one projection step (torch has no CPU allocator statistics of its own). Timings depend on the machine's load: the 1-minute
load average is recorded before and after each resolution.

Writes benchmarks/results/studio_scale.json.

    OMP_NUM_THREADS=1 python benchmarks/studio_scale.py --threads 1   # full suite: 256 and 1024 px
    python benchmarks/studio_scale.py --suite quick      # 256 px, 2 images, 2 steps -> studio_scale_quick.json
    python benchmarks/studio_scale.py --make-models        # only write the two model folders
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_suite, data_root, environment, result_name, write_result

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL_ROOT = HERE / "runs" / "studio_scale"
PHOTO = "00000"


def _pairs(text: str) -> dict[int, int]:
    """``"256=5,1024=3"`` -> ``{256: 5, 1024: 3}``."""
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        out[int(k)] = int(v)
    return out


def _mib(kib: float) -> float:
    return round(kib / 1024, 1)


def _status_kib(field: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return None


def rss_mib() -> float | None:
    """Current resident set size (``VmRSS`` of /proc/self/status; None where there is none)."""
    try:
        kib = _status_kib("VmRSS")
    except OSError:
        return None
    return None if kib is None else _mib(kib)


class PeakRSS:
    """Peak resident set size per phase. On Linux, writing ``5`` to /proc/self/clear_refs resets the peak
    (``VmHWM``, which ``resource.getrusage`` reports as ``ru_maxrss``), so each phase gets its own; where that
    is refused, the peaks are cumulative since the start of the process (``resettable`` False)."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.phases: dict[str, dict[str, float | None]] = {}
        self._name, self._start = "", None

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    @staticmethod
    def peak() -> float:
        return _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux

    def begin(self, name: str) -> None:
        self._reset()
        self._name, self._start = name, rss_mib()

    def end(self) -> float:
        peak = self.peak()
        self.phases[self._name] = {"rss_at_start_mib": self._start, "peak_rss_mib": peak}
        return peak


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def make_model(resolution: int, root: Path, overwrite: bool = False) -> Path:
    """A config-f generator at ``resolution`` with random weights, saved as a StyleGAN2 model folder."""
    import torch

    from latentstudio.models.stylegan2 import Generator, StyleGAN2Config, save_model
    from latentstudio.presets import preset

    path = root / f"config-f-{resolution}"
    if (path / "config.json").is_file() and not overwrite:
        return path
    torch.manual_seed(resolution)
    G = Generator(StyleGAN2Config(**{**preset("stylegan2", "config-f")["model"], "resolution": resolution})).eval()
    G.mapping.w_avg.copy_(G.estimate_w_avg())
    meta = {"dataset": "ffhq", "note": "random weights in the FFHQ config-f layout (benchmarks/studio_scale.py)"}
    return save_model(path, G, meta=meta, overwrite=True)


def _memory_timeline_peak(prof) -> float | None:
    """Peak of the CPU tensor memory (MiB) in a profile taken with ``profile_memory``, ``record_shapes``
    and ``with_stack`` (torch's memory timeline, all categories summed)."""
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "timeline.json"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated in favour of CUDA-only tools
            prof.export_memory_timeline(str(f), device="cpu")
        _times, sizes = json.loads(f.read_text())
    if not sizes:
        return None
    return round(max(sum(row) for row in sizes) / 2**20, 1)


def worker(args: argparse.Namespace) -> dict:
    """All measurements of one resolution (run in a process of its own)."""
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*LPIPS.*")  # the fallback is recorded as `perceptual`
    mem = PeakRSS()
    out: dict = {"resolution": args.worker, "threads": torch.get_num_threads(), "load_average_1min_start": load1(),
                 "peak_rss_resettable": mem.resettable, "peak_rss_mib_imports": mem.peak()}
    t_all = time.perf_counter()

    from latentstudio.io.images import load_image
    from latentstudio.studio.alignment import align_face
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.projection import (
        default_config,
        image_metrics,
        load_projection_distance,
        project,
    )

    folder = Path(args.model_root) / f"config-f-{args.worker}"
    mem.begin("load")
    t0 = time.perf_counter()
    model = load_latent_model(folder)
    out["load_seconds"] = round(time.perf_counter() - t0, 2)
    mem.end()
    G = model.G
    out["model"] = {"folder": str(folder), "num_ws": model.num_layers, "w_dim": model.latent_dim,
                    "resolution": model.resolution, "generator_params": sum(p.numel() for p in G.parameters()),
                    "model_file_mib": _mib((folder / "model.safetensors").stat().st_size / 1024)}

    # 1. generation, batch 1 (the `latentstudio sample --seeds` path)
    n_gen = args.gen_images
    mem.begin("generation_batch1")
    G.sample_seeds([0])  # warm-up
    times, cpu = [], []
    for seed in range(1, n_gen + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        img = G.sample_seeds([seed])
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    mem.end()
    assert img.shape == (1, 3, args.worker, args.worker) and img.dtype == torch.uint8
    out["generation"] = {"batch": 1, "warmup_images": 1, "timed_images": n_gen,
                         "seconds_per_image": [round(t, 3) for t in times],
                         "median_seconds_per_image": round(statistics.median(times), 3),
                         "cpu_seconds_per_image": [round(t, 3) for t in cpu],
                         "median_cpu_seconds_per_image": round(statistics.median(cpu), 3),
                         "images_per_second": round(n_gen / sum(times), 4)}
    if args.batch_memory > 1:
        nb = args.batch_memory
        mem.begin(f"generation_batch{nb}")
        t0 = time.perf_counter()
        G.sample_seeds(list(range(100, 100 + nb)))
        out["generation"][f"batch{nb}_seconds"] = round(time.perf_counter() - t0, 3)
        mem.end()
        one, many = mem.phases["generation_batch1"], mem.phases[f"generation_batch{nb}"]
        out["generation"]["peak_rss_mib_per_extra_image_in_a_batch"] = round(
            (many["peak_rss_mib"] - one["peak_rss_mib"]) / (nb - 1), 1)

    # 2. projection with the studio's projector
    ffhq = data_root(args.data_root) / "faces" / "ffhq_256"
    photo = load_image(ffhq / "images" / f"{PHOTO}.png", channels=3)
    landmarks = np.load(ffhq / "landmarks68" / f"{PHOTO}.npy")
    target = align_face(photo, landmarks, model.resolution, model.template).image
    distance, label = load_projection_distance(args.perceptual)
    t0 = time.perf_counter()
    _ = model.latent_std  # cached by the adapter; the projector reads it (10,000 mappings)
    out["latent_std_seconds"] = round(time.perf_counter() - t0, 2)
    k = args.steps
    total = 1 + k + 1
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True)

    def on_step(step: int, steps: int, info: dict) -> None:
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        print(f"  {args.worker} px: projection step {step}/{steps} ({stamps[-1] - t_call:.1f} s into the call)",
              file=sys.stderr, flush=True)
        if step == 1:  # start of the call + the warm-up step
            mem.end()
            mem.begin("projection_timed_steps")
        elif step == total - 1:  # the timed steps; the last step is profiled (not timed)
            mem.end()
            mem.begin("projection_profiled_step")
            prof.start()
        elif step == total:
            prof.stop()
            mem.end()
            mem.begin("projection_after_loop")  # final synthesis + image metrics (MSE, PSNR, SSIM)

    cfg = default_config(model, steps=total, perceptual=args.perceptual)
    forked = model.fork()
    mem.begin("projection_start_and_warmup_step")  # initial synthesis, noise maps, first step
    t_call = time.perf_counter()
    res = project(forked, target, cfg, perceptual=distance, perceptual_label=label, progress=on_step,
                  identity=False)
    call_wall = time.perf_counter() - t_call
    mem.end()
    step_times = [b - a for a, b in itertools.pairwise(stamps)][:k]  # steps 2 .. k+1
    step_cpu = [b - a for a, b in itertools.pairwise(cpu_stamps)][:k]
    median, cpu_median = statistics.median(step_times), statistics.median(step_cpu)
    loop = res.metrics["seconds"]
    fixed = call_wall - loop
    out["projection"] = {
        "space": res.space, "perceptual": res.perceptual, "config": cfg.to_dict(),
        "steps_in_call": total, "warmup_steps": 1, "timed_steps": k, "profiled_steps": 1,
        "warmup_step_seconds": round(stamps[0] - (stamps[-1] - loop), 3),  # the loop starts `loop` s before its end
        "seconds_per_step": [round(t, 3) for t in step_times],
        "median_seconds_per_step": round(median, 3),
        "steps_per_second": round(1 / median, 4),
        "cpu_seconds_per_step": [round(t, 3) for t in step_cpu],
        "median_cpu_seconds_per_step": round(cpu_median, 3),
        "call_wall_seconds": round(call_wall, 2), "loop_seconds": round(loop, 2),
        "fixed_seconds_per_call": round(fixed, 2),
        "psnr_after_steps": round(res.metrics["psnr"], 2),
    }
    try:
        out["projection"]["profiled_step_tensor_peak_mib"] = _memory_timeline_peak(prof)
    except Exception as exc:  # noqa: BLE001 (the profiler's timeline is optional evidence)
        out["projection"]["profiled_step_tensor_peak_mib"] = None
        out["projection"]["profiler_error"] = f"{type(exc).__name__}: {exc}"
    out["wait_seconds"] = {str(n): {"steps_only": round(n * median, 1), "with_fixed_cost": round(n * median + fixed, 1),
                                    "steps_only_cpu_seconds": round(n * cpu_median, 1)}
                           for n in (100, 1000)}

    # 3. the image metrics the projector computes twice per call (for the result and the initial guess)
    if args.metrics_timing:
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        a, b = res.image[None], res.target[None]
        mem.begin("image_metrics")
        t0 = time.perf_counter()
        m = image_metrics(a, b)
        t_metrics = time.perf_counter() - t0
        mem.end()
        mem.begin("ssim_float32")
        t0 = time.perf_counter()
        s32 = float(ssim(a.float() / 255.0, b.float() / 255.0, data_range=1.0))
        t_s32 = time.perf_counter() - t0
        mem.end()
        out["image_metrics"] = {"image_metrics_seconds": round(t_metrics, 2), "ssim": m["ssim"],
                                "ssim_float32_seconds": round(t_s32, 2), "ssim_float32": s32,
                                "ssim_float32_abs_difference": abs(s32 - m["ssim"])}
    out["peak_rss_mib"] = mem.phases
    out["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    out["load_average_1min_end"] = load1()
    return out


#: Work of each suite: ``quick`` measures 256 px only (2 images, 2 projection steps; about a minute on one
#: core), ``full`` 256 and 1024 px.
QUICK = {"resolutions": "256", "gen_images": "256=2", "steps": "256=2"}
FULL = {"resolutions": "256,1024", "gen_images": "256=4,1024=3", "steps": "256=4,1024=3"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (and OMP_NUM_THREADS)")
    ap.add_argument("--gen-images", help="timed generated images per resolution")
    ap.add_argument("--steps", help="timed projection steps per resolution")
    ap.add_argument("--batch-memory", type=int, default=2, help="images in the one batch measured for memory")
    ap.add_argument("--perceptual", default="lpips-vgg", help="as the CLI (pyramid-l2 without the LPIPS weights)")
    ap.add_argument("--no-metrics-timing", dest="metrics_timing", action="store_false")
    ap.add_argument("--model-root", default=str(DEFAULT_MODEL_ROOT))
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--make-models", action="store_true", help="only write the model folders and print commands")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    suite = add_suite(ap, QUICK, FULL)
    args = ap.parse_args()
    if args.worker is not None:
        args.gen_images = _pairs(args.gen_images)[args.worker]
        args.steps = _pairs(args.steps)[args.worker]
        Path(args.worker_out).write_text(json.dumps(worker(args)))
        return

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    resolutions = [int(r) for r in args.resolutions.split(",")]
    root = Path(args.model_root)
    t0 = time.perf_counter()
    folders = {r: str(make_model(r, root)) for r in resolutions}
    made = round(time.perf_counter() - t0, 1)
    if args.make_models:
        photo = data_root(args.data_root) / "faces" / "ffhq_256" / "images" / f"{PHOTO}.png"
        for r, f in folders.items():
            print(f"{r} px: {f}\n  latentstudio sample --model {f} --seeds 0-1 --out samples-{r}.png\n"
                  f"  latentstudio project {photo} --model {f} --steps 2 --threads {args.threads} --out face-{r}.npz")
        return
    result: dict = {
        "command": "python benchmarks/studio_scale.py " + " ".join(sys.argv[1:]),
        "what": "FFHQ config-f StyleGAN2 layout with random weights; generation, one projection step "
                "(studio projector), memory, derived waits; CPU only",
        "work": {"gen_images": args.gen_images, "projection_steps": args.steps, "batch_memory": args.batch_memory,
                 "note": "per resolution: 1 warm-up image then the timed images (batch 1); one projection call of "
                         "1 warm-up + the timed steps + 1 profiled step (memory timeline); few steps at 1024 px "
                         "to keep the run short on a shared 2-core CPU"},
        "threads": args.threads,
        "model_folders_seconds": made,
        "load_average_1min_start": load1(),
        "resolutions": {},
    }
    for r in resolutions:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            tmp = f.name
        cmd = [sys.executable, __file__, "--worker", str(r), "--worker-out", tmp, "--threads", str(args.threads),
               "--gen-images", args.gen_images, "--steps", args.steps, "--batch-memory", str(args.batch_memory),
               "--perceptual", args.perceptual, "--model-root", str(root)]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        if not args.metrics_timing:
            cmd.append("--no-metrics-timing")
        print(f"{r} px: measuring (load average {load1()})", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        result["resolutions"][str(r)] = json.loads(Path(tmp).read_text())
        os.unlink(tmp)
    result["load_average_1min_end"] = load1()
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["environment"] = environment()
    result["suite"] = suite
    write_result(result_name("studio_scale", suite), result)


if __name__ == "__main__":
    main()
