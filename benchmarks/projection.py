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

``--alignment-only`` runs, without a model (about 3.5 minutes on one core), writing
benchmarks/results/ffhq_alignment.json:

* the alignment check (1. above);
* composed photos the project's data never had, built from the data root's faces and written to
  benchmarks/runs/composed_photos: a group of five FFHQ faces on a textured background (one cut by
  the left edge, one by the bottom), a group of CelebA and AT&T faces, a close-up portrait whose crop
  leaves the photo on every side, and a portrait with a small CelebA face on a badge. For each,
  ``latentstudio align PHOTO --preview`` and ``latentstudio align PHOTO --out`` (without --face) are
  run and their output recorded; every detected face is checked against where it was pasted (the
  numbering must be left to right) and aligned at 256 pixels, and the sharpness (mean |Laplacian|
  of the grey face region, the central half of the crop) is compared with the same crop made without
  padding (edge pixels repeated instead), which shows whether the padding blur reached the face;
* dlib's detector scores on 200 CelebA photos (the face and the other candidates, threshold -1);
* identity distances (latentstudio.studio.identity) of same-person and different-person pairs of
  the CelebA subset (identity_CelebA.txt), aligned at 32 and 128 pixels with the ``celeba`` template,
  and how often dlib's 0.6 threshold calls them right.
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


# ------------------------------------------------------------------------------------------ composed photos


def _texture(h: int, w: int, seed: int, base=(120, 110, 100), amp: float = 40.0) -> np.ndarray:
    """``uint8 [h, w, 3]``: smooth-to-grainy coloured noise (four octaves), a busy background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for k, scale in enumerate((64, 16, 4, 1)):
        n = rng.normal(size=(h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        up = np.stack([np.asarray(Image.fromarray(n[..., c]).resize((w + 2 * scale, h + 2 * scale), Image.BICUBIC))
                       [:h, :w] for c in range(3)], -1)
        out += up * amp / (k + 1)
    return np.clip(out + np.array(base, np.float32), 0, 255).astype(np.uint8)


def _head_mask(w: int, h: int):
    """A feathered ellipse (the head and some hair of an aligned face) as a PIL ``L`` mask."""
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt(((xx / w - 0.5) / 0.38) ** 2 + ((yy / h - 0.5) / 0.47) ** 2)
    return Image.fromarray((np.clip((1.0 - d) / 0.06 + 0.5, 0, 1) * 255).astype(np.uint8))


def compose_photos(root: Path, out: Path) -> list[dict]:
    """Build the composed photos (see the module docstring); returns ``{"name", "path", "faces"}`` with the
    pasted faces (source, x range) left to right."""
    import io
    import zipfile

    from PIL import Image

    faces = root / "faces"
    zf = zipfile.ZipFile(next((faces / "celeba").glob("img_align_celeba*.zip")))

    def ffhq(i, side):
        return Image.open(faces / "ffhq_256" / "images" / f"{i:05d}.png").convert("RGB").resize((side, side),
                                                                                              Image.LANCZOS)

    def celeba(i, scale=3):
        im = Image.open(io.BytesIO(zf.read(f"img_align_celeba/{i:06d}.jpg"))).convert("RGB")
        return im.resize((im.width * scale, im.height * scale), Image.BICUBIC)

    def att(subject, k, scale=3):
        im = Image.open(faces / "att_faces" / f"s{subject}" / f"{k}.pgm").convert("RGB")
        return im.resize((im.width * scale, im.height * scale), Image.BICUBIC)

    out.mkdir(parents=True, exist_ok=True)
    photos = []

    def paste_all(canvas, items, name):
        pasted = []
        for label, im, x, y in items:
            canvas.paste(im, (x, y), _head_mask(*im.size))
            pasted.append({"source": label, "box": [x, y, x + im.width, y + im.height]})
        canvas.save(out / f"{name}.png")
        photos.append({"name": name, "path": out / f"{name}.png", "faces": pasted})

    # five FFHQ faces, pasted in an order that is neither left to right nor by size; faces 0 and 4 are cut
    paste_all(Image.fromarray(_texture(560, 1400, 1)),
              [(f"ffhq {i:05d}", ffhq(i, side), x, y) for i, side, x, y in
               [(3, 330, 260, 60), (9, 260, 1220, 300), (1, 250, -60, 150), (7, 300, 960, 90), (5, 270, 640, 180)]],
              "group_ffhq")
    paste_all(Image.fromarray(_texture(520, 1500, 2, base=(90, 120, 140))),
              [("celeba 000040", celeba(40), 600, 60), ("att s3/1", att(3, 1), 300, 100),
               ("celeba 000012", celeba(12), 20, 80), ("att s17/2", att(17, 2), 900, 120),
               ("celeba 000077", celeba(77), 1200, 90)], "group_celeba_att")
    # close-up: FFHQ 00004 at 900 px, cut to 570 x 640 around the face (its crop leaves the photo everywhere)
    ffhq(4, 900).crop((170, 150, 740, 790)).save(out / "closeup.jpg", quality=92)
    photos.append({"name": "closeup", "path": out / "closeup.jpg",
                   "faces": [{"source": "ffhq 00004", "box": [-170, -150, 730, 750]}]})
    # a portrait (FFHQ 00006) with an ID card on the chest holding CelebA 000186
    canvas = Image.fromarray(_texture(900, 700, 3, base=(70, 72, 88), amp=12))
    canvas.paste(ffhq(6, 440), (130, 0), _head_mask(440, 440))
    face = celeba(186, scale=2).resize((130, 159), Image.LANCZOS)
    card = Image.new("RGB", (face.width + 16, face.height + 40), (245, 245, 245))
    card.paste(face, (8, 8))
    canvas.paste(card, (400, 600))
    canvas.save(out / "badge.jpg", quality=92)
    photos.append({"name": "badge", "path": out / "badge.jpg",
                   "faces": [{"source": "ffhq 00006", "box": [130, 0, 570, 440]},
                             {"source": "celeba 000186 (badge)", "box": [408, 608, 538, 767]}]})
    for photo in photos:  # left to right by the centres of the pasted images
        photo["faces"].sort(key=lambda f: f["box"][0] + f["box"][2])
    return photos


def _source(pasted: list[dict], box) -> str | None:
    """The smallest pasted image holding the centre of a detected ``box``."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    inside = [p for p in pasted if p["box"][0] <= cx <= p["box"][2] and p["box"][1] <= cy <= p["box"][3]]
    return min(inside, key=lambda p: (p["box"][2] - p["box"][0]) * (p["box"][3] - p["box"][1]))["source"] \
        if inside else None


def _sharpness(img: torch.Tensor) -> float:
    """Mean |Laplacian| of the grey central half (the face) of an aligned ``uint8 [3, S, S]`` crop."""
    g = img.float().mean(0).numpy()
    s = g.shape[0]
    g = g[s // 4 : 3 * s // 4, s // 4 : 3 * s // 4]
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(np.abs(lap).mean())


def composed_check(root: Path, out: Path) -> dict:
    """Run ``latentstudio align`` on the composed photos and measure their faces (see the module docstring)."""
    import subprocess

    from latentstudio.io.images import load_image
    from latentstudio.studio.alignment import DlibLandmarker, align_face

    landmarker = DlibLandmarker()
    rows = []
    for photo in compose_photos(root, out):
        path, name = photo["path"], photo["name"]
        cli = {}
        for what, extra in (("preview", ["--preview", str(out / f"{name}-faces.png")]),
                            ("align", ["--out", str(out / f"{name}-face.png"), "--size", "256"])):
            cmd = [sys.executable, "-m", "latentstudio.cli", "align", str(path.relative_to(REPO)),
                   *(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in extra), "--overwrite"]
            res = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
            cli[what] = {"command": "latentstudio align " + " ".join(str(a) for a in cmd[4:]),
                         "exit_code": res.returncode, "output": (res.stdout + res.stderr).strip()}
            print(f"$ {cli[what]['command']}\n{cli[what]['output']}", flush=True)
        img = load_image(path, channels=3)
        faces = landmarker.detect(img)
        found = []
        for i, f in enumerate(faces):
            source = _source(photo["faces"], f.box)
            padded = align_face(img, f.landmarks, 256, "ffhq")
            plain = align_face(img, f.landmarks, 256, "ffhq", padding=False)
            found.append({"number": i, "source": source, "box": list(f.box), "score": round(f.score, 3),
                          "padded": padded.padded, "sharpness": round(_sharpness(padded.image), 3),
                          "sharpness_without_padding": round(_sharpness(plain.image), 3),
                          "sharpness_ratio": round(_sharpness(padded.image) / max(_sharpness(plain.image), 1e-9), 4)})
        expected = [p["source"] for p in photo["faces"]]
        rows.append({"photo": name, "size": list(img.shape[1:]), "pasted_left_to_right": expected,
                     "faces": found, "left_to_right": [f["source"] for f in found] == expected, "cli": cli})
    padded = [f for r in rows for f in r["faces"] if f["padded"]]
    return {"photos": rows, "folder": str(out.relative_to(REPO)), "faces": sum(len(r["faces"]) for r in rows),
            "faces_expected": sum(len(r["pasted_left_to_right"]) for r in rows),
            "all_left_to_right": all(r["left_to_right"] for r in rows), "padded_crops": len(padded),
            "min_sharpness_ratio_padded": min((f["sharpness_ratio"] for f in padded), default=None)}


def score_check(root: Path, n: int = 200) -> dict:
    """Detector scores on the first ``n`` CelebA photos (upsampled 3x, one face each): the best candidate
    of each photo (the face) and the other candidates, all found with the threshold at -1."""
    import io
    import zipfile

    from PIL import Image

    from latentstudio.studio.alignment import DlibLandmarker

    landmarker = DlibLandmarker(upsample=1)
    zf = zipfile.ZipFile(next((root / "faces" / "celeba").glob("img_align_celeba*.zip")))
    best, others, none = [], [], 0
    for i in range(1, n + 1):
        im = Image.open(io.BytesIO(zf.read(f"img_align_celeba/{i:06d}.jpg"))).convert("RGB")
        im = im.resize((im.width * 3, im.height * 3), Image.BICUBIC)
        scores = sorted(s for _, s in landmarker._candidates(torch.from_numpy(np.array(im)).permute(2, 0, 1)
                                                              .contiguous(), -1.0))
        if not scores:
            none += 1
            continue
        best.append(scores[-1])
        others += scores[:-1]
    pct = {f"p{q}": float(np.percentile(best, q)) for q in (1, 5, 10, 50)}
    return {"photos": n, "no_candidate": none, "best": pct, "best_below_0": int(np.sum(np.array(best) <= 0)),
            "other_candidates": len(others), "others_above_minus_0.2": int(np.sum(np.array(others) > -0.2)),
            "others_max": float(max(others, default=float("nan")))}


def identity_check(root: Path, pairs: int = 40) -> dict:
    """Identity distances of same- and different-person CelebA pairs at 32 and 128 pixels (``celeba`` template)."""
    import io
    import zipfile

    from PIL import Image

    from latentstudio.errors import LatentStudioError
    from latentstudio.studio.alignment import DlibLandmarker, align_face
    from latentstudio.studio.identity import SAME_PERSON_DISTANCE, compare_faces

    celeba = root / "faces" / "celeba"
    ids: dict[str, list[str]] = {}
    for line in (celeba / "identity_CelebA.txt").read_text().split("\n"):
        if line.strip():
            name, who = line.split()
            ids.setdefault(who, []).append(name)
    zf = zipfile.ZipFile(next(celeba.glob("img_align_celeba*.zip")))
    landmarker = DlibLandmarker(upsample=1)
    cache: dict[str, object] = {}

    def face(name):
        if name not in cache:
            im = Image.open(io.BytesIO(zf.read(f"img_align_celeba/{name}"))).convert("RGB")
            im = im.resize((im.width * 3, im.height * 3), Image.BICUBIC)
            img = torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()
            try:
                cache[name] = (img, landmarker.choose(img).landmarks)
            except LatentStudioError:  # no face, or several: the pair is skipped
                cache[name] = None
        return cache[name]

    people = [v for v in ids.values() if len(v) >= 2]
    same = [(v[0], v[1]) for v in people]
    diff = [(people[i][0], people[i + 1][0]) for i in range(len(people) - 1)]
    out = {}
    for label, candidates in (("same", same), ("different", diff)):
        dists = {32: [], 128: []}
        for a, b in candidates:
            fa, fb = face(a), face(b)
            if fa is None or fb is None:
                continue
            for size, values in dists.items():
                ia = align_face(fa[0], fa[1], size, "celeba").image
                ib = align_face(fb[0], fb[1], size, "celeba").image
                values.append(compare_faces(ia, ib, "celeba").distance)
            if len(dists[32]) >= pairs:
                break
        out[label] = {str(k): {"pairs": len(v), "median": float(np.median(v)), "mean": float(np.mean(v)),
                               "below_threshold": float(np.mean(np.array(v) < SAME_PERSON_DISTANCE))}
                      for k, v in dists.items()}
    for size in ("32", "128"):
        out[f"accuracy_{size}"] = (out["same"][size]["below_threshold"] * out["same"][size]["pairs"]
                                   + (1 - out["different"][size]["below_threshold"]) * out["different"][size]["pairs"]) \
            / (out["same"][size]["pairs"] + out["different"][size]["pairs"])
    out["note"] = ("CelebA 89x109 images upsampled 3x, dlib landmarks, celeba template; the same box and threshold "
                   f"({SAME_PERSON_DISTANCE}) as the projection's identity report")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="Model directory (default: the newest runs/studio/*/model).")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--perceptual", default="lpips-vgg")
    ap.add_argument("--n", type=int, default=10, help="Number of FFHQ images.")
    ap.add_argument("--measure-template", action="store_true")
    ap.add_argument("--alignment-only", action="store_true",
                    help="Only the alignment checks, no model: re-alignment PSNR and quad error of the FFHQ photos, "
                         "`latentstudio align` on composed group / close-up / badge photos with the sharpness of "
                         "padded crops, and identity distances of CelebA pairs (see above).")
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
        t0 = time.perf_counter()
        result = {"ffhq_alignment": alignment_check(root, args.n),
                  "composed_photos": composed_check(root, REPO / "benchmarks" / "runs" / "composed_photos"),
                  "detector_scores": score_check(root), "identity_check": identity_check(root)}
        write_result("ffhq_alignment", {**result, "command": "python benchmarks/projection.py " + " ".join(sys.argv[1:]),
                                        "seconds": round(time.perf_counter() - t0, 1), "environment": environment()})
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
