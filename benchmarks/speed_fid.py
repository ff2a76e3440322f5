"""FID feature extraction: latentstudio's Inception extractor against pytorch-fid's ``get_activations``.

Both run the FID Inception-v3 architecture with the SAME weights. The standard TF 2015-12-05
weights cannot be fetched here (no network), so the weights are random: a seeded He-normal
initialisation with every BatchNorm's running statistics set from one forward pass over random
images (so activations stay of order 1 through the 94 convolutions). They are built in pytorch-fid's
own model (its download replaced by the model's own state), saved as a state dict in the file
layout both libraries read, and loaded by latentstudio's extractor (torch-fidelity's network) from
that file; every tensor is then compared through a key map (pytorch-fid's ``blocks.i.j.*`` <->
the file's ``Mixed_5b.*`` names). **Features from these weights are not FID features: no number
here is an FID, only speed and agreement.**

Measured (one run, same threads, same batch size, rounds alternate the order A B / B A):

- ``end_to_end``: latentstudio ``extract_features(uint8 images)`` against pytorch-fid
  ``get_activations(png files, num_workers=0)`` (its API reads image files: PNG decoding is part of
  its time; ``num_workers=0`` keeps its work on the same threads); images/s and the ratio
  latentstudio / pytorch-fid (goal >= 1.0).
- ``network_only``: the two networks on tensors already in memory (latentstudio: uint8; pytorch-fid:
  float in [0, 1], what ``get_activations`` feeds it); the same ratio without file decoding.
- ``features_same_input``: both networks on the identical preprocessed 299 x 299 input
  ((u8 - 128) / 128; at 299 x 299 both resizes are the identity and pytorch-fid is built with
  ``resize_input=False, normalize_input=False``): max |difference| of the 2048-d features (goal
  1e-5).
- ``features_own_preprocessing``: the features of the benchmark images with each library's own
  resize rule (named in ``resize_rules``); these differ because the rules differ: latentstudio
  resizes by TensorFlow 1.x ``resize_bilinear`` (legacy coordinates ``src = dst * in / out``, the
  official FID code's rule), pytorch-fid by ``F.interpolate(mode="bilinear")`` (half-pixel
  coordinates ``src = (dst + 0.5) * in / out - 0.5``).
- ``resize_check``: latentstudio's resize of the benchmark images to 299 x 299 against
  torch-fidelity's reference implementation of the TF1 rule (``interpolate_bilinear_2d_like_tensorflow1x``):
  max |difference| and whether the two are bit-identical.

Images: the first ``--images`` CIFAR-10 test images (32 x 32) when found under the data root,
else seeded uniform noise images of ``--size``.

Suites: ``smoke`` (8 tiny images, for the tests), ``quick`` (64 images, batch 32, 2 rounds),
``full`` (500 images, batch 50, 3 rounds). Writes benchmarks/results/speed_fid.json.

Usage:
    python benchmarks/speed_fid.py [--suite quick|full|smoke] [--device cpu|cuda] [--threads 1]
        [--images N] [--batch B] [--rounds R] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import _common
import torch
from _common import data_root, environment, write_result
from torch import nn

NAME = "speed_fid"
GOAL = 1.0
SUITES = {
    "smoke": {"images": 2, "batch": 2, "rounds": 1, "size": 32, "threads": 1, "calibration": 2},
    "quick": {"images": 64, "batch": 32, "rounds": 2, "size": 32, "threads": 1, "calibration": 8},
    "full": {"images": 500, "batch": 50, "rounds": 3, "size": 32, "threads": 1, "calibration": 8},
}
PYTORCH_FID_RESIZE_RULE = (
    "PNG file -> PIL RGB -> ToTensor (uint8 / 255); resized to 299x299 by F.interpolate bilinear "
    "(align_corners=False, half-pixel coordinates src = (dst + 0.5) * in / out - 0.5, no antialias; NOT the "
    "TF1 rule of the official FID code); scaled as 2x - 1 = (u8 - 127.5) / 127.5"
)


@contextlib.contextmanager
def no_download():
    """While inside, pytorch-fid's FID network is built without fetching weights: its loader is handed the
    freshly built network's own (random) state. Yields a dict whose ``"net"`` is the last network built."""
    import pytorch_fid.inception as pfi

    built: dict = {}
    original, original_load = pfi._inception_v3, pfi.load_state_dict_from_url

    def capture(*a, **k):
        built["net"] = original(*a, **k)
        return built["net"]

    pfi._inception_v3 = capture
    pfi.load_state_dict_from_url = lambda *a, **k: built["net"].state_dict()
    try:
        yield built
    finally:
        pfi._inception_v3, pfi.load_state_dict_from_url = original, original_load


def build_pytorch_fid(seed: int, device: torch.device, calibration: int = 8):
    """pytorch-fid's ``InceptionV3([2048])`` and its inner torchvision-layout network, with seeded random
    weights and calibrated BatchNorm statistics."""
    import pytorch_fid.inception as pfi

    with no_download() as built:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    net = built["net"]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.reset_running_stats()
                m.momentum = None  # cumulative average: the statistics of the calibration batch
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * m.in_features**-0.5)
                m.bias.zero_()
        net.train()
        net(torch.rand(calibration, 3, 299, 299, generator=g) * 2 - 1)  # BatchNorm running statistics
        net.eval()
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return model.to(device).eval(), net


def key_map(model: nn.Module, net: nn.Module) -> dict[str, str]:
    """pytorch-fid state-dict key -> file-layout key, by module identity (``blocks.3.1.branch1x1.conv.weight``
    -> ``Mixed_7b.branch1x1.conv.weight``)."""
    names = {id(m): n for n, m in net.named_modules()}
    out = {}
    for mod_name, m in model.named_modules():
        if id(m) in names:
            for k in list(m.state_dict(keep_vars=True)):
                full = f"{mod_name}.{k}" if mod_name else k
                if full not in out:
                    out[full] = f"{names[id(m)]}.{k}" if names[id(m)] else k
    return out


def _images(n: int, size: int, root: Path) -> tuple[torch.Tensor, str]:
    try:
        from latentstudio.data import load_images

        data = load_images("cifar10", "test", root=root, limit=n)
        if len(data) >= n and size == 32:
            return data.images[:n].contiguous(), f"CIFAR-10 test, first {n} images (32 x 32)"
    except Exception as exc:  # noqa: BLE001 - any loader failure falls back to noise images
        reason = f"CIFAR-10 not used ({type(exc).__name__})"
    else:
        reason = "CIFAR-10 not used (too few images or another --size)"
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), \
        f"uniform noise images, seed 0 ({n} x 3 x {size} x {size}); {reason}"


def _write_pngs(images: torch.Tensor, folder: Path) -> list[str]:
    from PIL import Image

    files = []
    for k, im in enumerate(images):
        p = folder / f"{k:05d}.png"
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(p)
        files.append(str(p))
    return files


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> tuple[float, float, object]:
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="full",
                    help="work preset (smoke: tests; quick; full); explicit options win")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--size", type=int, default=None, help="side of the noise images when CIFAR-10 is not used")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=None, help="random images that set the BatchNorm statistics")
    ap.add_argument("--out", default=NAME)
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="write the JSON there instead of benchmarks/results (checks, tests)")
    args = ap.parse_args()
    if args.results_dir is not None:
        _common.RESULTS = args.results_dir
    for k, v in SUITES[args.suite].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    try:
        import pytorch_fid
        from pytorch_fid.fid_score import get_activations
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        raise SystemExit("pytorch-fid is needed: pip install -e '.[bench]' (pytorch-fid==0.3.0)") from None
    from latentstudio.metrics.extractors import InceptionExtractor, extract_features

    load_start = os.getloadavg()
    model, net = build_pytorch_fid(args.seed, device, args.calibration)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    images, source = _images(args.images, args.size, data_root(args.data_root))
    with tempfile.TemporaryDirectory() as tmp:
        wpath = Path(tmp) / "random-inception.pth"
        torch.save(state, wpath)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not the standard weights": known, they are random
            ext = InceptionExtractor(wpath).to(device)
        # every tensor equal through the key map
        theirs = model.state_dict()
        ours = ext.net.state_dict()
        kmap = key_map(model, net)
        compared = [k for k in theirs if kmap.get(k) in ours]
        weights_equal = bool(compared) and all(torch.equal(theirs[k].cpu(), ours[kmap[k]].cpu()) for k in compared)
        weights = {"kind": "random (seeded He-normal convolutions, BatchNorm statistics from one batch of random "
                           "images); NOT the FID weights: no FID value can be read from this benchmark",
                   "seed": args.seed, "calibration_images": args.calibration, "tensors_compared": len(compared), "all_equal": weights_equal,
                   "extractor_standard_weights": bool(ext.standard_weights)}

        # features on the same preprocessed input
        g = torch.Generator().manual_seed(args.seed + 1)
        u8 = torch.randint(0, 256, (2, 3, 299, 299), generator=g, dtype=torch.uint8)
        x = (u8.float() - 128) / 128
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        same_pre = torch.equal(
            (interpolate_bilinear_2d_like_tensorflow1x(u8.float(), size=(299, 299), align_corners=False) - 128) / 128,
            x)
        with no_download():
            raw = InceptionV3([3], resize_input=False, normalize_input=False)
        raw.load_state_dict(model.state_dict())
        raw = raw.to(device).eval()
        with torch.no_grad():
            f_ours = ext(u8.to(device)).cpu()
            f_theirs = raw(x.to(device))[0].flatten(1).cpu()
        diff = (f_ours - f_theirs).abs().max().item()
        features_same = {"input": "2 random 299x299 uint8 images; both networks see (u8 - 128) / 128 "
                                  f"(latentstudio's own preprocessing reproduces it exactly: {same_pre})",
                         "max_abs_diff": diff, "max_abs_feature": f_theirs.abs().max().item(),
                         "tolerance": 1e-5, "equal": diff <= 1e-5}

        # latentstudio's resize against torch-fidelity's reference implementation of the TF1 rule
        from latentstudio.metrics.extractors import resize_bilinear_tf1

        ref = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
        got = resize_bilinear_tf1(images.float(), (299, 299))
        resize_check = {"input": f"the {len(images)} benchmark images, {tuple(images.shape[-2:])} -> 299 x 299",
                        "reference": "torch_fidelity.interpolate_compat_tensorflow."
                                     "interpolate_bilinear_2d_like_tensorflow1x (align_corners=False)",
                        "max_abs_diff": (got - ref).abs().max().item(), "bit_identical": torch.equal(got, ref)}
        del ref, got

        files = _write_pngs(images, Path(tmp))
        n, b = len(images), args.batch
        batch_u8 = images[:b].to(device)
        batch_f = (images[:b].float() / 255).to(device)

        def ls_end():
            return extract_features(images, ext, batch_size=b)

        def pf_end():
            return get_activations(files, model, batch_size=b, dims=2048, device=device, num_workers=0)

        def ls_net():
            with torch.no_grad():
                return ext(batch_u8)

        def pf_net():
            with torch.no_grad():
                return model(batch_f)[0]

        import pytorch_fid.fid_score as pfs

        bar, pfs.tqdm = pfs.tqdm, lambda it, **k: it  # no progress bar from get_activations
        ls_net()  # warm-up of both
        pf_net()
        timing = {k: {"latentstudio": {"wall": [], "cpu": []}, "pytorch_fid": {"wall": [], "cpu": []}}
                  for k in ("end_to_end", "network_only")}
        feats = {}
        for r in range(args.rounds):
            order = ("latentstudio", "pytorch_fid") if r % 2 == 0 else ("pytorch_fid", "latentstudio")
            for name in order:
                for kind, fn in (("end_to_end", ls_end if name == "latentstudio" else pf_end),
                                 ("network_only", ls_net if name == "latentstudio" else pf_net)):
                    wall, cpu, out = _timed(fn, device)
                    timing[kind][name]["wall"].append(wall)
                    timing[kind][name]["cpu"].append(cpu)
                    if kind == "end_to_end":
                        feats[name] = torch.as_tensor(out).float()
        pfs.tqdm = bar
        load_end = os.getloadavg()

    def summary(kind: str, count: int) -> dict:
        t = timing[kind]
        med = {k: {m: statistics.median(v[m]) for m in ("wall", "cpu")} for k, v in t.items()}
        return {
            "images_per_call": count,
            "wall_seconds": {k: [round(x, 4) for x in v["wall"]] for k, v in t.items()},
            "cpu_seconds": {k: [round(x, 4) for x in v["cpu"]] for k, v in t.items()},
            "images_per_s_wall": {k: round(count / v["wall"], 3) for k, v in med.items()},
            "images_per_s_cpu": {k: round(count / v["cpu"], 3) for k, v in med.items()},
            "ratio_wall": round(med["pytorch_fid"]["wall"] / med["latentstudio"]["wall"], 4),
            "ratio_cpu": round(med["pytorch_fid"]["cpu"] / med["latentstudio"]["cpu"], 4),
        }

    end, netw = summary("end_to_end", n), summary("network_only", b)
    own = (feats["latentstudio"] - feats["pytorch_fid"]).abs()
    result = {
        "benchmark": NAME,
        "command": f"python benchmarks/speed_fid.py --suite {args.suite} --device {args.device} "
                   f"--threads {args.threads}",
        "suite": args.suite,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (unset)"),
        "batch": b,
        "images": source,
        "pytorch_fid_version": getattr(pytorch_fid, "__version__", "?"),
        "weights": weights,
        "rounds": args.rounds,
        "order": "alternating per round (A B, then B A)",
        "ratio_meaning": "latentstudio images/s / pytorch-fid images/s, medians (> 1: latentstudio is faster)",
        "goal": f">= {GOAL}",
        "end_to_end": end,
        "network_only": netw,
        "meets_goal": bool(end["ratio_cpu"] >= GOAL and end["ratio_wall"] >= GOAL),
        "features_same_input": features_same,
        "features_own_preprocessing": {"max_abs_diff": own.max().item(), "mean_abs_diff": own.mean().item(),
                                       "note": "different resize rules, so different features (expected)"},
        "resize_rules": {"latentstudio": ext.resize_rule, "pytorch_fid": PYTORCH_FID_RESIZE_RULE},
        "resize_check": resize_check,
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in load_end],
        "headline": {
            "result": f"Inception features {end['images_per_s_cpu']['latentstudio']:.2f} images/s per CPU second "
                      f"(batch {b}, random weights)",
            "reference": "pytorch-fid get_activations, same weights and images",
            "ratio": end["ratio_cpu"],
            "work": f"{n} images x {args.rounds} rounds each",
            "time": f"{torch.get_num_threads()} thread(s), load {load_start[0]:.1f} -> {load_end[0]:.1f}",
        },
        "environment": environment(),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
