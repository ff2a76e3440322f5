"""The Face Studio's view of the web studio: generate or upload a face, move direction sliders, mix
styles, sweep, download.

:func:`render_face_view` draws it into the page of :func:`latentstudio.studio.web.studio_app.build_studio_app`
(a tab beside the latent explorer, same session and folder); :func:`build_app` / :func:`serve` make a
page of this view alone. Layout (left: where the face comes from and how it is edited; right: photo |
projection | edit side by side and the downloads; below: the direction sliders):

* **Random face**: a seed (Enter or *Generate*).
* **Upload photo**: a JPEG/PNG/WebP/BMP file, checked at once (:func:`~latentstudio.studio.session.validate_upload`:
  size, type by content, pixel count); the faces found are shown as thumbnails (click one to choose it)
  and numbered from the left (0 = leftmost); *already aligned*; projection steps and how often to show the
  reconstruction; *Align and project* (progress from the first step, the reconstruction every few
  steps, *Cancel*).
* **Latent file**: continue from a saved ``.npz``; a file saved here brings back its sliders too.
* Truncation psi (the ``truncation_psi`` knob control of every family,
  :func:`~latentstudio.studio.web.components.knob_control`), **style mixing** (a second face's seed, its
  rows, how far), **edit options**: the rows (W+ layers) the edits act on and the directions held fixed
  (conditional edits), *Reset* (every control).
* **Sweep**: one direction from a low to a high value as a GIF or MP4.
* Downloads at the model's resolution, named after the face and the edit (``me_Smiling+1.5.png``):
  the image, the edited latent and the unedited (projection) latent.

Every event has an ``api_name`` and named parameters (the direction sliders by direction name), so the
HTTP API and ``gradio_client`` read like the page. A refused input (bad upload, a face number that does
not exist, rows the model lacks) is one line in the server log, a warning on the page and a message
in the status line; the server carries on and the uploaded photo stays. Projections run one at a time
(a waiting user is told why), renders up to four at once.
"""

# No ``from __future__ import annotations`` here: Gradio reads the handlers' ``gr.Request`` /
# ``gr.SelectData`` annotations with typing.get_type_hints, which cannot resolve names of the lazily
# imported ``gr`` from strings.
import time
from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import LatentStudioError
from latentstudio.io.images import save_image
from latentstudio.models.base import Knob
from latentstudio.studio.session import (
    Controls,
    ProjectionCancelled,
    Studio,
    StudioSession,
    validate_upload,
)
from latentstudio.studio.web.components import (
    DISPLAY,
    Page,
    View,
    build_page,
    download_row,
    file_box,
    image_view,
    knob_control,
    launch,
    log,
    offer,
    one_line,
    parse_seed,
    seed_box,
    session_id,
    upscaled,
)
from latentstudio.studio.web.workspace import DEFAULT_SESSION_BYTES, SessionEnded, Workspace

__all__ = ["CONTROL_PARAMS", "TRUNCATION", "build_app", "face_view", "load_models", "render_face_view", "serve"]

PHOTO_VIEW = 320  # uploaded photos are shown at most this large
#: Parameter names of the edit handlers (a direction with one of these names is passed as ``direction_<name>``).
CONTROL_PARAMS = ("session_state", "seed", "truncation_psi", "mix_seed", "mix_rows", "mix_amount", "edit_layers",
                  "hold_fixed", "request", "progress")
#: The face view's truncation: psi around the latent centre (``w_avg`` for StyleGAN2), for every face model.
TRUNCATION = Knob("truncation_psi", 1.0, "truncation trick: latent' = centre + psi (latent - centre); 1 = none, "
                                         "0 = the mean face")
#: The status line's first text when the page opens on the face view.
HINT = "Pick a seed and press Generate, or upload a photo."


def _shrunk(img: torch.Tensor, side: int = PHOTO_VIEW) -> torch.Tensor:
    """A photo scaled down (area) so that its longer side is at most ``side``."""
    h, w = img.shape[1:]
    s = min(1.0, side / max(h, w))
    if s >= 1.0:
        return img
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return torch.nn.functional.interpolate(img[None].float(), size=size, mode="area")[0].round().to(torch.uint8)


def render_face_view(studio: Studio, page: Page, *, preview_every: int = 25) -> None:
    """Draw the face view of ``studio`` (the shared :class:`Studio`) into the current Blocks context.

    Args:
        page: the page's :class:`~latentstudio.studio.web.components.Page` (workspace, status line, sessions).
        preview_every: default of "show the reconstruction every k steps" (0: only at the end).
    """
    import gradio as gr  # lazy: slow import (the web extra)

    ws = page.workspace
    status = page.status
    model = studio.model
    lib = studio.library
    names = lib.names()
    groups = model.layer_groups
    kw_of = {n: (f"direction_{n}" if n in CONTROL_PARAMS else n) for n in names}
    name_of = {k: n for n, k in kw_of.items()}

    def forget(sess: StudioSession) -> None:
        """The session ended: drop the photo and everything made from it from memory."""
        sess.photo, sess.faces, sess.aligned, sess.projection = None, None, None, None

    sessions = page.sessions(StudioSession, studio.session, forget)

    # ---- helpers
    def refuse(sess: StudioSession, what: str, exc: BaseException | str, extra: dict | None = None) -> dict:
        return page.refuse(what, exc, {state: sess, **(extra or {})})

    def controls_from(truncation_psi, mix_seed, mix_rows, mix_amount, edit_layers, hold_fixed,
                      directions: dict[str, Any]) -> Controls:
        return Controls(magnitudes={name_of.get(k, k): float(v or 0.0) for k, v in directions.items()},
                        truncation=float(1.0 if truncation_psi is None else truncation_psi),
                        mix_seed=None if mix_seed is None else int(mix_seed),
                        mix_layers=mix_rows or "all", mix_amount=float(mix_amount or 0.0),
                        edit_layers=str(edit_layers or "all"), fixed=list(hold_fixed or []))

    def control_updates(c: Controls) -> dict:
        out = {psi: c.truncation, mix_seed: c.mix_seed, mix_layers: c.mix_layers, mix_amount: c.mix_amount,
               edit_layers: c.edit_layers, fixed: list(c.fixed)}
        out.update({sliders[i]: float(c.magnitudes.get(n, 0.0)) for i, n in enumerate(names)})
        return out

    def keep_paths(sess: StudioSession, *more) -> list:
        return [*(sess.cache.get(k) for k in ("before", "unedited", "photo")), *more]

    def face_outputs(sess: StudioSession, request, message: str, *, base_changed: bool) -> dict:
        """Render the face, write its files into the session's folder and return the outputs."""
        h = session_id(request)
        after_img = sess.render()
        folder = ws.new_render_dir(h)
        stem = sess.file_stem()
        full = save_image(after_img.expand(3, -1, -1) if after_img.shape[0] == 1 else after_img,
                          folder / f"{stem}.png")
        view = full if model.resolution >= DISPLAY else save_image(upscaled(after_img), folder / "view.png")
        lat = sess.save_latent(folder / f"{stem}.npz")
        if base_changed or not Path(sess.cache.get("before", "")).is_file():
            bfolder = ws.new_render_dir(h)
            sess.cache["before"] = str(save_image(upscaled(sess.render_base()), bfolder / "view-before.png"))
            sess.cache["unedited"] = str(sess.save_latent(bfolder / f"{sess.file_stem(edited=False)}.npz",
                                                          edited=False))
        ws.enforce_cap(h, keep=keep_paths(sess, full, view, lat))
        return {state: sess, before: sess.cache["before"], after: str(view),
                dl_image: offer(full, "Image"), dl_latent: offer(lat, "Edited latent"),
                dl_unedited: offer(sess.cache["unedited"], "Unedited latent"),
                status: message}

    def describe_edits(sess: StudioSession) -> str:
        moved = [f"{n} {v:+.2f}" for n, v in sess.magnitudes.items() if v]
        extra = []
        if moved and sess.edit_layers not in ("", "all"):
            extra.append(f"on rows {sess.edit_layers}")
        if moved and sess.fixed:
            extra.append(f"holding {', '.join(sess.fixed)} fixed")
        return ", ".join(moved + extra) or "no edits"

    # ---- handlers (one per event; parameter names are the API's)
    def random_seed() -> int:
        """A random seed for the Seed box."""
        return int(torch.randint(0, 2**31 - 1, ()).item())

    def generate(session_state, seed, truncation_psi, mix_seed, mix_rows, mix_amount, edit_layers, hold_fixed,
                 request: gr.Request, **directions):
        """The face of a seed, with the current controls applied."""
        sess = sessions.of(session_state, request)
        try:
            seed = parse_seed(seed)
            sess.set_controls(controls_from(truncation_psi, mix_seed, mix_rows, mix_amount, edit_layers,
                                            hold_fixed, directions))
            sess.from_seed(int(seed))
            out = face_outputs(sess, request, f"Face from seed {int(seed)} ({describe_edits(sess)}). "
                                              "Move the sliders to edit it.", base_changed=True)
            sess.cache.pop("photo", None)
            return {**out, photo_view: None}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "generate", exc)

    def upload_photo(photo, session_state, already_aligned, request: gr.Request):
        """Check an uploaded photo at once, keep it in memory and in the session's folder, find its faces."""
        sess = sessions.of(session_state, request)
        if photo is None:
            return {state: sess}
        h = session_id(request)
        original = Path(str(photo)).name
        stored = None
        try:
            stored = ws.store_upload(h, photo)
            img = validate_upload(stored)
        except SessionEnded:
            ws.discard(photo)
            return {state: sess}
        except LatentStudioError as exc:
            ws.discard(stored)
            ws.discard(photo)
            return refuse(sess, "upload", exc, {upload: None})
        sess.set_photo(img, original)
        folder = ws.new_render_dir(h)
        sess.cache["photo"] = str(save_image(_shrunk(img), folder / "view-photo.png"))
        gallery: list = []
        note = ""
        if already_aligned:
            note = "It is used as an aligned face."
        elif studio.landmarker_error:
            note = f"Face detection is unavailable ({studio.landmarker_error}); tick 'already aligned'."
        else:
            try:
                faces = sess.detect_faces()
            except LatentStudioError as exc:
                faces = []
                note = f"Face detection failed: {one_line(exc)}."
            else:
                if not faces:
                    note = "No face was found: use a frontal, well-lit photo, or tick 'already aligned'."
                elif len(faces) == 1:
                    note = "One face found."
                else:
                    note = f"{len(faces)} faces found, numbered from the left: click one or type its number."
            for i, thumb in enumerate(sess.face_thumbnails()):
                path = save_image(torch.from_numpy(thumb).permute(2, 0, 1), folder / f"face-{i}.png")
                gallery.append((str(path), f"face {i}"))
        h_, w_ = img.shape[1:]
        return {state: sess, upload: str(stored), photo_view: sess.cache["photo"], faces_gallery: gallery,
                face_index: None,
                status: f"Photo {original} ({w_}x{h_}) ready. {note} Press 'Align and project'."}

    def clear_photo(session_state, request: gr.Request):
        """Forget the uploaded photo."""
        sess = sessions.of(session_state, request)
        sess.photo, sess.faces = None, None
        return {state: sess, faces_gallery: [], status: "Photo removed."}

    def choose_face(evt: gr.SelectData) -> int:
        """The face number of a clicked thumbnail."""
        return int(evt.index)

    def projection_queue_status(session_state) -> str:
        """Tells a user whose projection has to wait why (and notes when it was asked for: a Cancel after that
        stops it, even while it waits)."""
        if isinstance(session_state, StudioSession):
            session_state.cache["asked_at"] = time.monotonic()
        if studio.projections_running:
            return ("Waiting: another photo is being projected. Projections run one at a time on this server; "
                    "yours starts as soon as it is done (the queue position shows on the images).")
        return "Starting the projection..."

    def project_photo(session_state, face_number, already_aligned, steps, show_every, request: gr.Request,
                      progress=gr.Progress()):  # noqa: B008 (Gradio's progress hook)
        """Align the uploaded photo and project it, showing the reconstruction every few steps."""
        sess = sessions.of(session_state, request)
        asked = sess.cache.pop("asked_at", None) or time.monotonic()  # None: called through the HTTP API alone

        def cancelled() -> bool:
            return sess.cache.get("cancelled_at", float("-inf")) >= asked

        if cancelled():  # while it waited in the queue
            yield cancelled_message(sess)
            return
        if sess.photo is None:
            yield refuse(sess, "projection", "choose a photo first (Upload photo)")
            return
        h = session_id(request)
        try:
            progress(0.0, desc="aligning the face")
            aligned, faces = sess.align(face_index=None if face_number is None else int(face_number),
                                        already_aligned=bool(already_aligned))
            folder = ws.new_render_dir(h)
            sess.cache["photo"] = str(save_image(upscaled(aligned), folder / "view-aligned.png"))
        except SessionEnded:
            return
        except LatentStudioError as exc:  # the photo stays: pick another face number and press again
            yield refuse(sess, "projection", exc)
            return
        note = ""
        if len(faces) > 1:
            note = f" The photo has {len(faces)} faces; face {sess.face_used} (from the left) was used."
        total = int(steps)
        cfg = studio.projection.replace(steps=total)
        if cancelled():
            yield cancelled_message(sess)
            return
        yield {photo_view: sess.cache["photo"], status: f"Aligned. Projecting in {total} steps...{note}"}
        result = None
        sess.cache["projecting"] = True
        try:
            with studio.projection_slot():
                for upd in sess.project_steps(aligned, cfg, preview_every=int(show_every or 0)):
                    if cancelled():  # stops the worker after its current step (closing project_steps)
                        raise ProjectionCancelled("cancelled from the page")
                    if upd.kind == "step":
                        progress((upd.step, upd.total), desc=f"projecting: loss {upd.info['loss']:.4f}")
                    elif upd.kind == "image" and upd.step < total:
                        path = save_image(upscaled(upd.image), folder / f"step-{upd.step:05d}.png")
                        yield {before: str(path), status: f"Projecting: step {upd.step}/{total}.{note}"}
                    elif upd.kind == "done":
                        result = upd.result
        except SessionEnded:
            return
        except ProjectionCancelled:
            # said again in this projection's own stream of updates, after its last preview: Cancel's answer
            # may reach the page before a preview sent just before it
            if cancelled():
                yield cancelled_message(sess)
            return
        except LatentStudioError as exc:
            yield refuse(sess, "projection", exc)
            return
        finally:
            sess.cache["projecting"] = False
        sess.reset_controls()  # a new face starts unedited: psi, mixing and sliders do not carry over
        m = result.metrics
        ident = getattr(result, "identity", None) or {}
        same = ""
        if ident.get("distance") is not None:
            verdict = "the same person" if ident["same_person"] else "not the same person"
            same = (f" Identity distance {ident['distance']:.2f} ({verdict} to dlib's face recognition, "
                    f"which calls below {ident['threshold']:g} the same).")
        msg = (f"Projected the photo into {result.space} in {total} steps "
               f"({m['seconds_per_step'] * 1000:.0f} ms/step): PSNR {m['psnr']:.1f} dB, SSIM {m['ssim']:.3f}."
               f"{same}{note}")
        try:
            yield {**face_outputs(sess, request, msg, base_changed=True), **control_updates(sess.controls())}
        except SessionEnded:
            return

    def cancelled_message(sess) -> dict:
        shown = sess.cache.get("before") if sess is not None else None
        return {status: "Projection cancelled; the face from before it started is kept.", before: shown}

    def cancel_projection(session_state):
        """Stop this session's projection, running or queued (its face stays as it was before): the projection
        sees the time of this call at its next step (or when it leaves the queue), stops and says so last."""
        sess = session_state if isinstance(session_state, StudioSession) else None
        if sess is not None:
            sess.cache["cancelled_at"] = time.monotonic()
        return cancelled_message(sess)

    def load_latent_file(latent_file, session_state, request: gr.Request):
        """Continue from a latent file; one saved here brings back the sliders too."""
        sess = sessions.of(session_state, request)
        if latent_file is None:
            return {state: sess}
        stored = None
        try:
            stored = page.receive(request, latent_file, "latent file")
            notes = sess.restore(stored)
            sess.cache.pop("photo", None)
            restored = describe_edits(sess)
            msg = f"Loaded the latent file ({restored})." + (f" Note: {'; '.join(notes)}." if notes else "")
            return {**face_outputs(sess, request, msg, base_changed=True), **control_updates(sess.controls()),
                    photo_view: None}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            ws.discard(stored)
            return refuse(sess, "latent file", exc, {latent_file_box: None})

    def edit_face(session_state, truncation_psi, mix_seed, mix_rows, mix_amount, edit_layers, hold_fixed,
                  request: gr.Request, **directions):
        """Apply the controls to the current face."""
        sess = sessions.of(session_state, request)
        if sess.base is None:
            return {state: sess, status: "Pick a seed and press Generate, or upload a photo, first."}
        try:
            sess.set_controls(controls_from(truncation_psi, mix_seed, mix_rows, mix_amount, edit_layers,
                                            hold_fixed, directions))
            return face_outputs(sess, request, f"Edited ({describe_edits(sess)}).", base_changed=False)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "edit", exc)

    def reset_controls(session_state, request: gr.Request):
        """Every control back to its default: sliders 0, psi 1, no mixing, all rows, nothing held fixed."""
        sess = sessions.of(session_state, request)
        sess.reset_controls()
        out = {state: sess, **control_updates(sess.controls())}
        if sess.base is None:
            return {**out, status: "Reset every control."}
        try:
            return {**out, **face_outputs(sess, request, "Reset every control (no edits).", base_changed=False)}
        except SessionEnded:
            return out

    def make_sweep(session_state, direction, sweep_from, sweep_to, frames, file_format, request: gr.Request):
        """The edited face moved along one direction, as an animated GIF or an MP4."""
        sess = sessions.of(session_state, request)
        try:
            if sess.base is None:
                raise LatentStudioError("no face yet: generate one or upload a photo first")
            if not direction:
                raise LatentStudioError("choose the direction to sweep")
            fmt = str(file_format or "gif").lower()
            if fmt not in ("gif", "mp4"):
                raise LatentStudioError(f"sweeps are written as gif or mp4, not {fmt!r}")
            imgs = sess.sweep_images(direction, float(sweep_from), float(sweep_to), int(frames))
            from latentstudio.studio.editing import save_sweep  # lazy: pulls imageio's writers

            folder = ws.new_render_dir(session_id(request))
            path = folder / f"{sess.file_stem()}_sweep-{direction}{float(sweep_from):+g}..{float(sweep_to):+g}.{fmt}"
            save_sweep(imgs, path, fps=8.0, upscale=max(1, DISPLAY // model.resolution) if fmt == "gif" else 1)
            ws.enforce_cap(session_id(request), keep=keep_paths(sess, path))
            return {state: sess, sweep_view: str(path) if fmt == "gif" else None,
                    dl_sweep: offer(path, "Sweep"),
                    status: f"Sweep of {direction} from {float(sweep_from):+g} to {float(sweep_to):+g} "
                            f"({int(frames)} frames, {fmt.upper()})."}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "sweep", exc)

    # ---- layout
    info = model.describe()
    header = (f"Model: **{info['model_type']}** ({info['resolution']}x{info['resolution']}, latent "
              f"{info['num_layers']} x {info['latent_dim']}, alignment template `{info['template']}`). "
              f"{len(names)} direction(s).")
    if studio.landmarker_error:
        header += f"\n\nFace detection is unavailable ({studio.landmarker_error}): upload aligned faces."
    layer_choices = [("all rows", "all")] + [(f"{g}: rows {lo}-{hi - 1}", g) for g, (lo, hi) in groups.items()
                                             if g != "all"]
    state = gr.State(None)
    gr.Markdown(header, elem_id="face-header")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tab("Random face"):
                seed = seed_box(elem_id="seed")
                with gr.Row():
                    dice = gr.Button("Random seed", elem_id="random-seed")
                    generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Tab("Upload photo", elem_id="upload-tab"):
                upload = file_box("Photo (JPEG, PNG, WebP or BMP, at most 20 MB)", elem_id="upload")
                faces_gallery = gr.Gallery(label="Faces in the photo (click one)", columns=6, height=110,
                                           allow_preview=False, interactive=False, elem_id="faces")
                face_index = gr.Number(label="Face number, from the left (empty: the only or clearly largest face)",
                                       value=None, precision=0, minimum=0, elem_id="face-index")
                already = gr.Checkbox(label="Already aligned (skip face detection)", value=False,
                                      elem_id="already-aligned")
                steps = gr.Slider(0, 2000, value=studio.projection.steps, step=10, label="Projection steps",
                                  elem_id="steps")
                show_every = gr.Slider(0, 200, value=preview_every, step=1,
                                       label="Show the reconstruction every k steps (0: at the end only)",
                                       elem_id="preview-every")
                with gr.Row():
                    project_btn = gr.Button("Align and project", variant="primary", elem_id="project")
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Tab("Latent file"):
                latent_file_box = file_box("Latent (.npz from the studio or `latentstudio project`)",
                                           file_types=[".npz", ".npy"], elem_id="latent-file")
            psi = knob_control(TRUNCATION, label="Truncation psi", elem_id="truncation")
            with gr.Accordion("Style mixing", open=False):
                mix_seed = gr.Number(label="Second face seed", value=1, precision=0, minimum=0,
                                     elem_id="mix-seed")
                mix_layers = gr.Dropdown(list(groups), value="all", label="Rows taken from the second face",
                                         elem_id="mix-rows")
                mix_amount = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Mix amount", elem_id="mix-amount")
            with gr.Accordion("Edit options", open=False):
                edit_layers = gr.Dropdown(layer_choices, value="all", allow_custom_value=True,
                                          label="Rows (W+ layers) the edits act on",
                                          info=f"a group, or rows such as 0-3,8 (this model has rows 0-"
                                               f"{model.num_layers - 1})", elem_id="edit-layers")
                fixed = gr.CheckboxGroup(names, value=[], label="Hold fixed while editing (conditional edits)",
                                         info="each moved direction loses its component along these",
                                         elem_id="hold-fixed")
        with gr.Column(scale=2):
            with gr.Row():
                photo_view = image_view("Photo (aligned)", elem_id="photo")
                before = image_view("Projection / unedited", elem_id="before")
                after = image_view("Edited", elem_id="after")
            dl_image, dl_latent, dl_unedited = download_row(
                ("Image (PNG)", "download-image"), ("Edited latent (.npz)", "download-latent"),
                ("Unedited latent (.npz)", "download-unedited"))
            with gr.Accordion("Sweep (GIF / MP4)", open=False):
                with gr.Row():
                    sweep_direction = gr.Dropdown(names, value=names[0] if names else None, label="Direction",
                                                  elem_id="sweep-direction")
                    sweep_from = gr.Number(label="From", value=-3.0, elem_id="sweep-from")
                    sweep_to = gr.Number(label="To", value=3.0, elem_id="sweep-to")
                    sweep_frames = gr.Slider(2, 60, value=9, step=1, label="Frames", elem_id="sweep-frames")
                    sweep_format = gr.Radio(["gif", "mp4"], value="gif", label="Format", elem_id="sweep-format")
                with gr.Row():
                    sweep_btn = gr.Button("Make sweep", elem_id="sweep")
                    (dl_sweep,) = download_row(("Sweep", "download-sweep"))
                sweep_view = image_view("Sweep", elem_id="sweep-view")
    sliders = []
    with gr.Accordion("Directions", open=True):
        if not names:
            gr.Markdown("No directions loaded: start the studio with `--directions LIBRARY.npz` "
                        "(see `latentstudio directions --help`).")
        with gr.Row():
            for n in names:
                d = lib[n]
                span = d.range[1] - d.range[0]
                step = 0.05 if span <= 12 else 0.1
                acc = d.meta.get("test_accuracy") if isinstance(d.meta, dict) else None
                note = f"{d.source}, accuracy {acc:.2f}" if isinstance(acc, float) else d.source
                sliders.append(gr.Slider(d.range[0], d.range[1], value=0.0, step=step, label=n, info=note,
                                         elem_id=f"dir-{n}", min_width=200))
        reset = gr.Button("Reset every control", elem_id="reset")

    # ---- events
    controls = [psi, mix_seed, mix_layers, mix_amount, edit_layers, fixed]
    direction_kw = {kw_of[n]: s for n, s in zip(names, sliders, strict=True)}
    face_outs = [state, photo_view, before, after, dl_image, dl_latent, dl_unedited, status]
    all_outs = [*face_outs, *controls, *sliders]
    render_kw: dict[str, Any] = {"concurrency_limit": 4, "concurrency_id": "render"}
    dice.click(random_seed, None, seed, queue=False, api_name="random_seed")
    gr.on([generate_btn.click, seed.submit], generate, [state, seed, *controls], face_outs,
          inputs_kwargs=direction_kw, api_name="generate", **render_kw)
    upload.upload(upload_photo, [upload, state, already],
                  [state, upload, photo_view, faces_gallery, face_index, status],
                  api_name="upload_photo", **render_kw)
    upload.clear(clear_photo, [state], [state, faces_gallery, status], api_name="clear_photo", queue=False)
    faces_gallery.select(choose_face, None, face_index, api_name="choose_face", queue=False)
    gr.on([project_btn.click, face_index.submit], projection_queue_status, [state], status,
          queue=False, api_name="projection_queue_status").then(
        project_photo, [state, face_index, already, steps, show_every], all_outs,
        api_name="project", concurrency_limit=1, concurrency_id="projection")
    cancel_btn.click(cancel_projection, [state], [status, before], queue=False,
                     api_name="cancel_projection")
    latent_file_box.upload(load_latent_file, [latent_file_box, state], [*all_outs, latent_file_box],
                           api_name="load_latent", **render_kw)
    edit_triggers = [t for s in [psi, mix_amount, *sliders] for t in (s.release, s.input)]
    edit_triggers += [mix_seed.submit, mix_seed.blur, mix_layers.input, edit_layers.input, fixed.input]
    gr.on(edit_triggers, edit_face, [state, *controls], face_outs, inputs_kwargs=direction_kw,
          api_name="edit", trigger_mode="always_last", show_progress="minimal", **render_kw)
    reset.click(reset_controls, [state], all_outs, api_name="reset", **render_kw)
    sweep_btn.click(make_sweep, [state, sweep_direction, sweep_from, sweep_to, sweep_frames, sweep_format],
                    [state, sweep_view, dl_sweep, status], api_name="sweep", **render_kw)


def face_view(studio: Studio, *, preview_every: int = 25) -> View:
    """The face view as a :class:`~latentstudio.studio.web.components.View` of the page (tab ``face``)."""
    return View("face", "Face studio", lambda page: render_face_view(studio, page, preview_every=preview_every),
                hint=HINT)


def build_app(studio: Studio, *, title: str = "latentstudio face studio", workdir: str | Path | None = None,
              workspace: Workspace | None = None, keep_files: bool = False,
              max_session_bytes: int = DEFAULT_SESSION_BYTES, preview_every: int = 25):
    """A page of the face view alone (not launched; :func:`serve` launches it). The studio command
    serves it beside the latent explorer (:func:`latentstudio.studio.web.studio_app.build_studio_app`).

    Args:
        workspace: the :class:`Workspace` (made from ``workdir``, ``keep_files`` and ``max_session_bytes``
            if None); it becomes Gradio's upload folder and cache.
    """
    ws = workspace or Workspace(workdir, keep_files=keep_files, max_session_bytes=max_session_bytes)
    return build_page([face_view(studio, preview_every=preview_every)], title=title, workspace=ws)


def serve(studio: Studio, *, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
          workdir: str | Path | None = None, quiet: bool = False, keep_files: bool = False,
          max_session_bytes: int = DEFAULT_SESSION_BYTES, warm_up: bool = True):
    """Launch :func:`build_app` (the models loaded first, :meth:`Studio.warm_up`); returns ``(demo, url)``.
    The arguments are :func:`~latentstudio.studio.web.components.launch`'s."""
    return launch(lambda ws: build_app(studio, workspace=ws), host=host, port=port, block=block, workdir=workdir,
                  quiet=quiet, keep_files=keep_files, max_session_bytes=max_session_bytes,
                  before=(lambda: load_models(studio)) if warm_up else None)


def load_models(studio: Studio) -> None:
    """Load the face view's models before the first request (:meth:`Studio.warm_up`) and log what loaded."""
    loaded = studio.warm_up()
    log.info("loaded: perceptual distance %s; landmarks %s", loaded["perceptual"], loaded["landmarks"])
