"""The Gradio studio: generate or upload a face, move direction sliders, mix styles, download.

Layout (left: where the face comes from; right: before / after and downloads; below: sliders):

* **Random face**: a seed, truncation psi, *Generate*.
* **Upload photo**: a JPEG/PNG/WebP/BMP file (checked by :func:`~latentstudio.studio.session.validate_upload`:
  size, type by content, pixel count), the face to use when there are several, *already aligned*,
  projection steps, *Align and project* (progress bar; the aligned crop is shown).
* **Latent file**: continue from a saved ``.npz`` latent.
* **Directions**: one slider per direction of the library (live preview on release), *Reset*.
* **Style mixing**: a second face's seed, the rows to take from it (all / coarse / middle / fine) and
  how far to go.
* Downloads: the edited image (PNG) and its latent (``.npz``).

Every handler turns a :class:`~latentstudio.errors.LatentStudioError` into a message in the status
line: a bad upload never stops the server. Events go through Gradio's queue (projections one at a
time, renders up to four at once). The server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from latentstudio.errors import LatentStudioError
from latentstudio.io.images import save_image
from latentstudio.studio.projection import load_latent
from latentstudio.studio.session import MAX_UPLOAD_BYTES, Studio, StudioSession, validate_upload

__all__ = ["build_app", "serve"]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DISPLAY = 256  # faces are shown at least this large (nearest-neighbour upscaling of small models)


def _display(img) -> np.ndarray:
    """``uint8 [C, H, W]`` tensor -> ``[H', W', 3]`` numpy, upscaled to at least :data:`DISPLAY` pixels."""
    x = img
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    k = max(1, DISPLAY // int(x.shape[-1]))
    if k > 1:
        x = x.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def build_app(studio: Studio, *, title: str = "latentstudio face studio", workdir: str | Path | None = None):
    """The Gradio ``Blocks`` app for ``studio`` (not launched; see :func:`serve`).

    Args:
        studio: the shared :class:`Studio`.
        workdir: where downloads are written (default: a new temporary folder).
    """
    import gradio as gr  # lazy: optional web extra, slow import

    work = Path(workdir or tempfile.mkdtemp(prefix="latentstudio-studio-"))
    work.mkdir(parents=True, exist_ok=True)
    model = studio.model
    lib = studio.library
    names = lib.names()
    groups = list(model.layer_groups)

    def session_of(state: StudioSession | None) -> StudioSession:
        return state if state is not None else studio.session()

    def outputs_for(sess: StudioSession, message: str):
        """(before, after, image file, latent file, status) for the current state."""
        after = sess.render()
        before = sess.render_base()
        token = uuid.uuid4().hex[:8]
        folder = work / token
        img_path = save_image(after, folder / "face.png")
        lat_path = sess.save_latent(folder / "face-latent.npz")
        return (_display(before), _display(after), gr.update(value=str(img_path), interactive=True),
                gr.update(value=str(lat_path), interactive=True), message)

    def no_change(message: str):
        return gr.update(), gr.update(), gr.update(), gr.update(), message

    def apply_controls(sess: StudioSession, psi, mix_seed, mix_layers, mix_amount, values) -> None:
        sess.truncation = float(psi)
        sess.mix_layers = mix_layers or "all"
        sess.mix_amount = float(mix_amount or 0.0)
        if sess.mix_amount > 0 and mix_seed is not None and (
                sess.other is None or getattr(sess, "_other_seed", None) != int(mix_seed)):
            sess.set_other(int(mix_seed))
            sess._other_seed = int(mix_seed)  # type: ignore[attr-defined]
        sess.magnitudes = {n: float(v) for n, v in zip(names, values, strict=True)}

    def on_generate(state, seed, psi, mix_seed, mix_layers, mix_amount, *values):
        sess = session_of(state)
        try:
            sess.from_seed(int(seed))
            apply_controls(sess, psi, mix_seed, mix_layers, mix_amount, values)
            return (sess, *outputs_for(sess, f"Face from seed {int(seed)}. Move the sliders to edit it."))
        except LatentStudioError as exc:
            return (sess, *no_change(f"Error: {exc}"))

    def on_random_seed():
        return int(np.random.default_rng().integers(0, 2**31 - 1))

    def on_edit(state, psi, mix_seed, mix_layers, mix_amount, *values):
        sess = session_of(state)
        if sess.base is None:
            return (sess, *no_change("Pick a seed and press Generate, or upload a photo, first."))
        try:
            apply_controls(sess, psi, mix_seed, mix_layers, mix_amount, values)
            changed = {n: v for n, v in sess.magnitudes.items() if v}
            desc = ", ".join(f"{n} {v:+.2f}" for n, v in changed.items()) or "no edits"
            return (sess, *outputs_for(sess, f"Edited ({desc})."))
        except LatentStudioError as exc:
            return (sess, *no_change(f"Error: {exc}"))

    def on_upload_project(state, file, face_index, already_aligned, steps, psi, mix_seed, mix_layers, mix_amount,
                          *values, progress=gr.Progress()):  # noqa: B008 (Gradio's progress hook)
        sess = session_of(state)
        if file is None:
            return (sess, gr.update(), gr.update(), *no_change("Choose a photo first."))
        path = file if isinstance(file, str) else getattr(file, "name", str(file))
        try:
            photo = validate_upload(path)
            progress(0.0, desc="detecting and aligning the face")
            aligned, faces = sess.align(photo, face_index=int(face_index or 0), already_aligned=bool(already_aligned))
            note = ""
            if len(faces) > 1:
                note = (f" {len(faces)} faces were found; face {int(face_index or 0)} is used "
                        f"(0 = largest; pick another with 'Face').")
            cfg = studio.projection.replace(steps=int(steps))

            def report(step, total, info):
                progress((step, total), desc=f"projecting: step {step}/{total}, loss {info['loss']:.4f}")

            result = sess.project(aligned, cfg, progress=report)
            apply_controls(sess, psi, mix_seed, mix_layers, mix_amount, values)
            m = result.metrics
            msg = (f"Projected the photo into {result.space} in {int(steps)} steps "
                   f"({m['seconds_per_step'] * 1000:.0f} ms/step): PSNR {m['psnr']:.1f} dB, SSIM {m['ssim']:.3f}."
                   f"{note}")
            return (sess, gr.update(), _display(aligned), *outputs_for(sess, msg))
        except LatentStudioError as exc:  # the refused file is cleared so that another can be dropped
            return (sess, None, gr.update(), *no_change(f"Error: {exc}"))

    def on_latent_file(state, file, psi, mix_seed, mix_layers, mix_amount, *values):
        sess = session_of(state)
        if file is None:
            return (sess, *no_change("Choose a .npz latent file first."))
        path = file if isinstance(file, str) else getattr(file, "name", str(file))
        try:
            if Path(path).stat().st_size > MAX_UPLOAD_BYTES:
                raise LatentStudioError("the latent file is too large")
            sess.from_latent(load_latent(path)["latent"], source="latent file")
            apply_controls(sess, psi, mix_seed, mix_layers, mix_amount, values)
            return (sess, *outputs_for(sess, "Loaded the latent file."))
        except LatentStudioError as exc:
            return (sess, *no_change(f"Error: {exc}"))

    def on_reset():
        return [gr.update(value=0.0) for _ in names]

    info = model.describe()
    header = (f"# {title}\n"
              f"Model: **{info['model_type']}** ({info['resolution']}x{info['resolution']}, latent "
              f"{info['num_layers']} x {info['latent_dim']}, alignment template `{info['template']}`). "
              f"{len(names)} direction(s).")
    theme = gr.themes.Base(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    with gr.Blocks(title=title) as demo:
        demo.studio_theme = theme  # type: ignore[attr-defined]
        demo.studio_workdir = str(work)  # type: ignore[attr-defined]
        state = gr.State(None)
        gr.Markdown(header)
        status = gr.Textbox(label="Status", value="Pick a seed and press Generate, or upload a photo.",
                            interactive=False, elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Random face"):
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="seed")
                    with gr.Row():
                        dice = gr.Button("Random seed", elem_id="random-seed")
                        generate = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Tab("Upload photo", elem_id="upload-tab"):
                    upload = gr.File(label="Photo (JPEG, PNG, WebP or BMP, at most 20 MB)", type="filepath",
                                     elem_id="upload")
                    face_index = gr.Number(label="Face (0 = largest, when the photo has several)", value=0,
                                           precision=0, minimum=0)
                    already = gr.Checkbox(label="Already aligned (skip face detection)", value=False,
                                          elem_id="already-aligned")
                    steps = gr.Slider(0, 2000, value=studio.projection.steps, step=10, label="Projection steps",
                                      elem_id="steps")
                    run_projection = gr.Button("Align and project", variant="primary", elem_id="project")
                    aligned_view = gr.Image(label="Aligned", interactive=False, height=160, elem_id="aligned")
                with gr.Tab("Latent file"):
                    latent_file = gr.File(label="Latent (.npz from the studio or `latentstudio project`)",
                                          file_types=[".npz"], type="filepath")
                psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation psi", elem_id="truncation")
                with gr.Accordion("Style mixing", open=False):
                    mix_seed = gr.Number(label="Second face seed", value=1, precision=0, minimum=0)
                    mix_layers = gr.Dropdown(groups, value="all", label="Rows taken from the second face")
                    mix_amount = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Mix amount", elem_id="mix-amount")
            with gr.Column(scale=2):
                with gr.Row():
                    before = gr.Image(label="Before", interactive=False, elem_id="before")
                    after = gr.Image(label="After", interactive=False, elem_id="after")
                with gr.Row():
                    dl_image = gr.DownloadButton("Download image (PNG)", interactive=False, elem_id="download-image")
                    dl_latent = gr.DownloadButton("Download latent (.npz)", interactive=False,
                                                  elem_id="download-latent")
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
                    info = f"{d.source}, accuracy {acc:.2f}" if isinstance(acc, float) else d.source
                    sliders.append(gr.Slider(d.range[0], d.range[1], value=0.0, step=step, label=n, info=info,
                                             elem_id=f"dir-{n}", min_width=200))
            reset = gr.Button("Reset sliders", elem_id="reset")

        controls = [psi, mix_seed, mix_layers, mix_amount, *sliders]
        outs = [state, before, after, dl_image, dl_latent, status]
        render_kw: dict[str, Any] = {"concurrency_limit": 4, "concurrency_id": "render"}
        dice.click(on_random_seed, None, seed, queue=False)
        generate.click(on_generate, [state, seed, *controls], outs, **render_kw)
        run_projection.click(on_upload_project, [state, upload, face_index, already, steps, *controls],
                             [state, upload, aligned_view, before, after, dl_image, dl_latent, status],
                             concurrency_limit=1, concurrency_id="projection")
        latent_file.upload(on_latent_file, [state, latent_file, *controls], outs, **render_kw)
        for comp in [psi, mix_amount, *sliders]:
            comp.release(on_edit, [state, *controls], outs, trigger_mode="always_last", **render_kw)
        for comp in [mix_seed, mix_layers]:
            comp.change(on_edit, [state, *controls], outs, trigger_mode="always_last", **render_kw)
        reset.click(on_reset, None, sliders, queue=False).then(on_edit, [state, *controls], outs, **render_kw)
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo


def serve(studio: Studio, *, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
          workdir: str | Path | None = None, quiet: bool = False):
    """Build and launch the app; returns ``(demo, url)``.

    Args:
        host: interface to bind (127.0.0.1 by default: only this machine can connect).
        port: TCP port (None: Gradio picks a free one from 7860).
        block: keep serving until interrupted (False: return at once; close with ``demo.close()``).
    """
    demo = build_app(studio, workdir=workdir)
    _, url, _ = demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                            max_file_size=MAX_UPLOAD_BYTES, ssr_mode=False, quiet=quiet, show_error=False,
                            footer_links=[], theme=demo.studio_theme, allowed_paths=[demo.studio_workdir])
    return demo, url
