"""Projection benchmark: steps/s and final PSNR/SSIM of projecting the real FFHQ samples.

For each of the FFHQ images in ``<data-root>/faces/ffhq_256`` (256x256, with 68-point landmarks):

1. alignment check: the ``ffhq`` crop computed from an (already FFHQ-aligned) image's own landmarks
   should be the whole image; the mean corner distance from it (fraction of the side) and the PSNR
   of re-aligning the image are reported (they measure our alignment against the procedure that made
   FFHQ, up to landmark detector differences: the landmarks here come from FAN, FFHQ's from dlib);
2. the face is aligned with the model's template at the model's resolution and projected
   (``latentstudio.studio.projection.project``); steps/s, PSNR, SSIM, MSE of the result and of the
   initial guess (the encoder's posterior mean for VAEs) are recorded.

Writes benchmarks/results/projection.json and docs/images/studio_projection_ffhq.png (rows: FFHQ image,
aligned target, initial guess, projection).

    python benchmarks/projection.py --model runs/studio/00000-two-stage-vae-celeba --steps 300

``--measure-template`` instead re-measures the ``celeba`` alignment template from the CelebA subset
(dlib landmarks on 1,000 images upsampled 4x; see latentstudio.studio.alignment).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import data_root, environment, write_result

REPO = Path(__file__).resolve().parents[1]


def measure_template(root: Path, n: int = 1000) -> dict:
    import io
    import zipfile

    from PIL import Image

    from latentstudio.studio.alignment import DlibLandmarker, face_quad, fit_template

    lm = DlibLandmarker(upsample=1)
    zf = zipfile.ZipFile(next((root / "faces" / "celeba").glob("img_align_celeba*.zip")))
    lms, quads, skipped = [], [], 0
    for i in range(1, n + 1):
        im = Image.open(io.BytesIO(zf.read(f"img_align_celeba/{i:06d}.jpg"))).convert("RGB")
        w, h = im.size
        im = im.resize((w * 4, h * 4), Image.BICUBIC)
        faces = lm.detect(torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous())
        if len(faces) != 1:
            skipped += 1
            continue
        side = round(140 * w / 178)
        s, top, left = side * 4, (h - side) // 2 * 4, (w - side) // 2 * 4
        quads.append(np.array([[left, top], [left, top + s], [left + s, top + s], [left + s, top]], float))
        lms.append(faces[0].landmarks)
    tpl = fit_template(np.array(lms), np.array(quads), "celeba")
    err = [np.abs(face_quad(a, tpl) - q).mean() / (q[3, 0] - q[0, 0]) for a, q in zip(lms, quads, strict=True)]
    return {"template": tpl.__dict__, "faces": len(lms), "skipped": skipped, "mean_corner_error": float(np.mean(err))}


def alignment_check(root: Path, n: int) -> dict:
    """Re-align the first ``n`` FFHQ photos from their own landmarks (the ``ffhq`` template at 256 px):
    the crop should be the whole photo; returns the mean PSNR of the re-aligned photo and the mean
    corner distance of the crop from the photo (fraction of the side), with the per-photo values."""
    from latentstudio.io.images import load_image
    from latentstudio.studio.alignment import align_face
    from latentstudio.studio.projection import image_metrics

    ffhq = root / "faces" / "ffhq_256"
    rows = []
    for path in sorted((ffhq / "images").glob("*.png"))[:n]:
        img = load_image(path, channels=3)
        lm = np.load(ffhq / "landmarks68" / f"{path.stem}.npy")
        res = align_face(img, lm, img.shape[-1], "ffhq")
        side = img.shape[-1]
        full = np.array([[0, 0], [0, side], [side, side], [side, 0]], dtype=float)
        rows.append({"image": path.name, "psnr": image_metrics(res.image[None], img[None])["psnr"],
                     "quad_error": float(np.abs(res.quad - full).mean() / side), "padded": bool(res.padded)})
        print(f"{path.name}: re-alignment PSNR {rows[-1]['psnr']:.2f} dB, padded {res.padded}", flush=True)
    return {"n": len(rows), "psnr": float(np.mean([r["psnr"] for r in rows])),
            "quad_error": float(np.mean([r["quad_error"] for r in rows])),
            "padded": sum(r["padded"] for r in rows), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="Model directory (default: the newest runs/studio/*/model).")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--perceptual", default="lpips-vgg")
    ap.add_argument("--n", type=int, default=10, help="Number of FFHQ images.")
    ap.add_argument("--measure-template", action="store_true")
    ap.add_argument("--alignment-only", action="store_true",
                    help="Only the alignment check (re-alignment PSNR, quad error) of the FFHQ photos; no model.")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1 is fastest for one small image on a busy machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root(args.data_root)
    if args.measure_template:
        write_result("celeba_template", {"celeba_template": measure_template(root), "environment": environment()})
        return

    from latentstudio.io.images import load_image, make_grid, save_image
    from latentstudio.studio.alignment import align_face
    from latentstudio.studio.loading import load_latent_model

    if args.alignment_only:
        write_result("ffhq_alignment", {"ffhq_alignment": alignment_check(root, args.n), "environment": environment()})
        return
    from latentstudio.studio.projection import (
        default_config,
        image_metrics,
        load_projection_distance,
        project,
    )

    model_path = args.model or max((REPO / "runs" / "studio").glob("*/model")).parent
    model = load_latent_model(model_path)
    distance, label = load_projection_distance(args.perceptual)
    ffhq = root / "faces" / "ffhq_256"
    images = sorted((ffhq / "images").glob("*.png"))[: args.n]
    rows, grid = [], []
    for path in images:
        img = load_image(path, channels=3)
        lm = np.load(ffhq / "landmarks68" / f"{path.stem}.npy")
        round_trip = align_face(img, lm, img.shape[-1], "ffhq")
        rt = image_metrics(round_trip.image[None], img[None])
        side = img.shape[-1]
        full = np.array([[0, 0], [0, side], [side, side], [side, 0]], dtype=float)
        quad_error = float(np.abs(round_trip.quad - full).mean() / side)
        target = align_face(img, lm, model.resolution, model.template).image
        if model.channels == 1:
            target = target.float().mean(0, keepdim=True).round().to(torch.uint8)
        cfg = default_config(model, steps=args.steps, perceptual=args.perceptual)
        t0 = time.perf_counter()
        res = project(model.fork() if model.noise_buffers() else model, target, cfg, perceptual=distance,
                      perceptual_label=label)
        wall = time.perf_counter() - t0
        m = res.metrics
        rows.append({"image": path.name, "psnr": m["psnr"], "ssim": m["ssim"], "mse": m["mse"],
                     "initial_psnr": m["initial_psnr"], "initial_ssim": m["initial_ssim"],
                     "steps_per_second": m["steps_per_second"], "seconds": wall,
                     "ffhq_realign_psnr": rt["psnr"], "ffhq_quad_error": quad_error})
        print(f"{path.name}: PSNR {m['initial_psnr']:.2f} -> {m['psnr']:.2f} dB, {m['steps_per_second']:.1f} steps/s,"
              f" re-alignment PSNR {rt['psnr']:.1f} dB", flush=True)
        init = model.images(model.initial_latent(target[None]))[0]
        small = torch.nn.functional.interpolate(img[None].float(), size=model.resolution, mode="area")[0]
        grid += [small.round().to(torch.uint8), target, init, res.image]
    n = len(rows)
    g = torch.stack(grid).view(n, 4, *grid[0].shape).transpose(0, 1).reshape(4 * n, *grid[0].shape)
    big = make_grid(g, nrow=n)
    k = max(1, 256 // model.resolution)
    save_image(big.repeat_interleave(k, 1).repeat_interleave(k, 2), REPO / "docs" / "images" /
               "studio_projection_ffhq.png", overwrite=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "initial_psnr", "initial_ssim",
                                                               "steps_per_second", "ffhq_realign_psnr",
                                                               "ffhq_quad_error")}
    write_result("projection", {
        "command": "python benchmarks/projection.py " + " ".join(sys.argv[1:]),
        "model": model.describe(),
        "perceptual": label,
        "steps": args.steps,
        "projection_config": default_config(model, steps=args.steps, perceptual=args.perceptual).to_dict(),
        "mean": mean,
        "images": rows,
        "data": str(ffhq),
        "environment": environment(),
        "threads": args.threads,
        "load_average_1min": os.getloadavg()[0],
        "note": "steps/s depend on the machine's load (load_average_1min, measured at the end)",
    })


if __name__ == "__main__":
    main()
