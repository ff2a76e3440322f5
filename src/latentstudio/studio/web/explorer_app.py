"""The latent explorer's view of the web studio: the latent spaces of a model of any family.

:func:`render_explorer` draws it into the page of :func:`latentstudio.studio.web.studio_app.build_studio_app`
(every model has it; face models have the Face Studio's view beside it, same session and folder);
:func:`build_explorer_app` / :func:`serve_explorer` make a page of this view alone.

Built only on :class:`~latentstudio.studio.explorer.Explorer` (the model contract): the view says which
family and latent space is shown; the space is switched with a radio; the model's knobs are the shared
knob controls (:func:`~latentstudio.studio.web.components.knob_control`); a class or attribute
condition is a control when the model has one.

* **Sample**: the latents of the seeds, decoded (images as a PNG grid, sketches as SVG in the page);
  they become the *pool* the other tools pick latents from by number (0 = the first seed).
* **Encode** (models with an encoder): an image, or a stroke file (``.npz`` / ``.ndjson``) for sketch
  models, or a sketch drawn on the canvas; its latents are added to the pool and its reconstruction
  shown. **Complete the drawing** (models that complete sketches): continuations of the drawn prefix.
* **Path**: interpolation (lerp / slerp) between two pool latents, or a random walk from one, as a strip
  and a GIF (or MP4).
* **Directions**: the principal directions of drawn latents of the space as sliders moving one pool
  latent, on the style layers ticked in the layer mask for spaces with layers (W+); downloads of the
  moved image/sketch, its latent and the directions file.
* **Drawing steps** (models with ``steps``): the canvas after every step, for the seeds' samples or for
  any latent of the pool, as a strip and a GIF.

Every event has an ``api_name``.
"""

# No ``from __future__ import annotations``: Gradio resolves the handlers' ``gr.Request`` annotations.
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.errors import LatentStudioError
from latentstudio.io.images import make_grid, save_image
from latentstudio.io.strokes_render import save_sketches
from latentstudio.models.base import ENCODE, STEPS
from latentstudio.studio.explorer import (
    Directions,
    Explorer,
    latent_grid,
    save_animation,
    save_directions,
    save_latents,
    save_outputs,
    sketch_from_drawing,
)
from latentstudio.studio.projection import load_latent
from latentstudio.studio.web.components import (
    Page,
    View,
    build_page,
    condition_control,
    download_row,
    file_box,
    image_view,
    knob_control,
    knob_values,
    launch,
    offer,
    output_view,
    parse_condition,
    parse_seeds,
    seed_box,
    session_id,
)
from latentstudio.studio.web.workspace import DEFAULT_SESSION_BYTES, SessionEnded, Workspace
from latentstudio.types import Sketches

__all__ = ["ExplorerSession", "build_explorer_app", "explorer_view", "is_latent_file", "parse_condition",
           "parse_seeds", "render_explorer", "serve_explorer"]

VIEW = 96  # images are shown at least this large (nearest-neighbour upscaling)
NUM_DIRECTIONS = 4
MAX_STEP_LATENTS = 8
HANDLER_PARAMS = ("session_state", "space", "seeds", "condition", "request", "first", "second", "method",
                  "frames", "step_size", "file_format", "start", "input_file", "drawing", "pca_of", "layers",
                  "latent_number", "completions")
#: The status line's first text when the page opens on the explorer.
HINT = "Choose seeds and press Sample."
CSS = ".sketches svg { max-width: 100%; height: auto; }"


#: The sketch canvas: draw with the mouse (or a pen or a finger); each stroke is written to the #drawing box.
CANVAS_HTML = ('<div><canvas width="256" height="256" style="border:1px solid #999;touch-action:none;'
               'background:white;width:256px;height:256px;cursor:crosshair"></canvas>'
               '<br><button type="button" class="canvas-clear">Clear the canvas</button></div>')
CANVAS_JS = """
const c = element.querySelector('canvas');
const ctx = c.getContext('2d');
ctx.lineWidth = 3; ctx.lineCap = 'round'; ctx.strokeStyle = '#1a1a1a';
let strokes = [];
let cur = null;
const pos = (e) => {
  const r = c.getBoundingClientRect();
  const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));
  return [clamp((e.clientX - r.left) * 255 / r.width), clamp((e.clientY - r.top) * 255 / r.height)];
};
const publish = () => {
  const box = document.querySelector('#drawing textarea, #drawing input');
  if (!box) return;
  box.value = JSON.stringify(strokes);
  box.dispatchEvent(new Event('input', {bubbles: true}));
};
c.addEventListener('pointerdown', (e) => {
  const [x, y] = pos(e);
  cur = [[x], [y]];
  c.setPointerCapture(e.pointerId);
});
c.addEventListener('pointermove', (e) => {
  if (!cur) return;
  const [x, y] = pos(e);
  const n = cur[0].length - 1;
  ctx.beginPath();
  ctx.moveTo(cur[0][n] * c.width / 255, cur[1][n] * c.height / 255);
  ctx.lineTo(x * c.width / 255, y * c.height / 255);
  ctx.stroke();
  cur[0].push(x); cur[1].push(y);
});
const end = () => {
  if (!cur) return;
  if (cur[0].length > 1) strokes.push(cur);
  cur = null;
  publish();
};
c.addEventListener('pointerup', end);
c.addEventListener('pointercancel', end);
element.querySelector('.canvas-clear').addEventListener('click', () => {
  strokes = []; cur = null;
  ctx.clearRect(0, 0, c.width, c.height);
  publish();
});
"""


def is_latent_file(path: Path) -> bool:
    """Whether ``path`` is a latent file (``.npz`` with a ``latent`` array, or a ``.npy``), not a stroke file."""
    if path.suffix.lower() == ".npy":
        return True
    try:
        with np.load(path, allow_pickle=False) as data:
            return "latent" in data.files
    except (OSError, ValueError):
        return False




@dataclass
class ExplorerSession:
    """What one browser session explores: the space, the pool of latents and where each came from."""

    space: str | None = None
    pool: torch.Tensor | None = None
    labels: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)

    def add(self, z: torch.Tensor, labels: list[str], *, replace: bool) -> None:
        if replace or self.pool is None:
            self.pool, self.labels = z, list(labels)
        else:
            self.pool, self.labels = torch.cat([self.pool, z]), self.labels + list(labels)

    def latent(self, index: Any) -> torch.Tensor:
        if self.pool is None:
            raise LatentStudioError("no latents yet: press Sample (or encode an input) first")
        i = 0 if index is None else int(index)
        if not 0 <= i < len(self.pool):
            raise LatentStudioError(f"latent {i} does not exist; the pool has 0-{len(self.pool) - 1} "
                                    f"({', '.join(self.labels[:8])}{' ...' if len(self.labels) > 8 else ''})")
        return self.pool[i]


def render_explorer(explorer: Explorer, page: Page, *, pca_samples: int = 256) -> None:
    """Draw the explorer view of ``explorer`` into the current Blocks context.

    Args:
        page: the page's :class:`~latentstudio.studio.web.components.Page` (workspace, status line, sessions).
        pca_samples: latents drawn for the principal directions of a space.
    """
    import gradio as gr  # lazy: slow import (the web extra)

    ws = page.workspace
    status = page.status
    model = explorer.model
    info = explorer.describe()
    spaces = [s.name for s in explorer.spaces()]
    kind = model.condition_spec.kind
    images = explorer.output_kind == "images"
    can_encode = model.supports(ENCODE) and bool(spaces)
    can_complete = explorer.can_complete()
    knob_kw = {k.name: (f"knob_{k.name}" if k.name in HANDLER_PARAMS else k.name) for k in model.knobs}
    knob_of = {v: k for k, v in knob_kw.items()}
    dir_names = [f"pc{i}" for i in range(NUM_DIRECTIONS)]
    reference = explorer.reference
    label_dirs = None
    if reference is not None and reference.labels and can_encode:
        label_dirs = explorer.label_directions()
    label_names = label_dirs.names if label_dirs is not None else []
    directions: dict[tuple, Directions] = {}
    sessions = page.sessions(ExplorerSession, lambda: ExplorerSession(space=spaces[0] if spaces else None))

    # ---- helpers
    def refuse(sess, what: str, exc: BaseException | str) -> dict:
        return page.refuse(what, exc, {state: sess})

    def knobs_from(kw: dict[str, Any]) -> dict[str, Any]:
        return knob_values(model.knobs, {knob_of.get(k, k): v for k, v in kw.items() if k in knob_of})

    def view(outputs, folder: Path, stem: str, nrow: int | None = None) -> tuple[Any, Path]:
        """(what the page shows, the file to download): a PNG grid or inline SVG and its .svg file."""
        if isinstance(outputs, Sketches):
            path = save_outputs(outputs, folder / f"{stem}.svg", nrow=nrow)
            return path.read_text(), path
        full = save_outputs(outputs, folder / f"{stem}.png", nrow=nrow)
        shown = save_outputs(outputs, folder / f"{stem}-view.png", nrow=nrow, upscale_to=VIEW)
        return str(shown), full

    def show(value, sketches: bool = not images):
        """An update of an image or SVG view."""
        return gr.update(value=f'<div class="sketches">{value}</div>') if sketches else gr.update(value=value)

    def pool_note(sess: ExplorerSession) -> str:
        return ", ".join(f"{i}={lab}" for i, lab in enumerate(sess.labels[:12])) + (
            " ..." if len(sess.labels) > 12 else "")

    def directions_for(space: str, knobs: dict[str, Any], condition: Any) -> Directions:
        key = (space, tuple(sorted((k, str(v)) for k, v in knobs.items())), str(condition))
        if key not in directions:
            directions[key] = explorer.principal_directions(k=NUM_DIRECTIONS, space=space, knobs=knobs,
                                                            condition=condition, samples=pca_samples)
        return directions[key]

    def layer_update(space: str | None):
        """The layer mask of ``space``: one box per style layer, all ticked; hidden for spaces without layers."""
        n = explorer.layer_count(space) if space else None
        return gr.update(choices=[(str(i), i) for i in range(n or 0)], value=list(range(n or 0)),
                         visible=n is not None)

    def mask_of(space: str, ticked) -> list[int] | None:
        """The style layers a move acts on (None: every layer, or a space without layers)."""
        n = explorer.layer_count(space)
        if n is None:
            return None
        chosen = sorted({int(i) for i in (ticked or [])})
        if not chosen:
            raise LatentStudioError("tick at least one style layer for the directions to act on")
        return None if chosen == list(range(n)) else chosen

    # ---- handlers
    def switch_space(session_state, space, request: gr.Request):
        """Show another latent space (the pool is emptied: latents of one space do not decode in another)."""
        sess = sessions.of(session_state, request)
        sess.space, sess.pool, sess.labels = space, None, []
        return {state: sess, space_info: f"**Shown:** {explorer.headline(space)}", layer_mask: layer_update(space),
                status: f"Latent space {space}. Press Sample."}

    def sample(session_state, seeds, condition, request: gr.Request, **kw):
        """The latents of the seeds in the shown space, decoded; they become the pool."""
        sess = sessions.of(session_state, request)
        try:
            seed_list = parse_seeds(seeds)
            knobs, cond = knobs_from(kw), parse_condition(kind, condition)
            folder = page.render_dir(request)
            if sess.space is None:
                outs = explorer.sample(seed_list, knobs=knobs, condition=cond)
                shown, full = view(outs, folder, f"samples_seeds{seed_list[0]}-{seed_list[-1]}")
                return {state: sess, samples_view: show(shown), dl_samples: offer(full, "Samples"),
                        status: f"{len(seed_list)} sample(s) of a decoder-only model (no latent space)."}
            z, outs = explorer.draw(seed_list, space=sess.space, knobs=knobs, condition=cond)
            sess.add(z, [f"seed {s}" for s in seed_list], replace=True)
            stem = f"{sess.space}_seeds{seed_list[0]}-{seed_list[-1]}"
            shown, full = view(outs, folder, stem)
            lat = save_latents(folder / f"{stem}.npz", z, model=model, space=sess.space, seeds=seed_list,
                               knobs=explorer.knobs(knobs), condition=cond)
            ws.enforce_cap(session_id(request), keep=[full, lat])
            return {state: sess, samples_view: show(shown), dl_samples: offer(full, "Samples"),
                    dl_latents: offer(lat, "Latents"),
                    status: f"Sampled {len(seed_list)} latent(s) of {sess.space} (seeds {seeds}"
                            f"{'' if cond is None else f', condition {cond}'}). "
                            f"Pool: {pool_note(sess)}."}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "sample", exc)

    def encode_data(sess, x, name: str, stem: str, condition, request, kw) -> dict:
        """Encode inputs ``x``: their latents join the pool, their reconstruction is shown."""
        if sess.space != spaces[0]:
            raise LatentStudioError(f"the encoder gives latents of {spaces[0]}; switch the space to {spaces[0]} first")
        cond = parse_condition(kind, condition)
        z = explorer.encode(x, condition=cond)
        sess.add(z, [f"{name}[{i}]" for i in range(len(z))], replace=False)
        folder = page.render_dir(request)
        rec = explorer.decode(z, space=sess.space, knobs=knobs_from(kw), condition=cond)
        shown, full = view(rec, folder, f"{stem}_reconstruction")
        lat = save_latents(folder / f"{stem}_{sess.space}.npz", z, model=model, space=sess.space, source=name)
        n0 = len(sess.pool) - len(z)
        return {state: sess, samples_view: show(shown), dl_samples: offer(full, "Reconstruction"),
                dl_latents: offer(lat, "Latents"),
                status: f"Encoded {len(z)} input(s) from {name} as latents {n0}-{len(sess.pool) - 1} (the "
                        f"reconstruction is shown). Pool: {pool_note(sess)}."}

    def load_latents(sess, stored: Path, condition, request, kw) -> dict:
        """Latents from a file written here (or by ``latentstudio``): they join the pool."""
        data = load_latent(stored)
        z = data["latent"]
        space_name = data["space"] or sess.space
        if space_name != sess.space:
            raise LatentStudioError(f"{stored.name} holds latents of {space_name}; switch the space to it first")
        shape = explorer.space(sess.space).shape
        try:
            z = z.reshape(-1, *shape)
        except RuntimeError:
            raise LatentStudioError(f"{stored.name}: latents of shape {list(data['latent'].shape)} are not "
                                    f"{sess.space} latents {list(shape)}") from None
        rec = explorer.decode(z, space=sess.space, knobs=knobs_from(kw), condition=parse_condition(kind, condition))
        sess.add(z, [f"{stored.name}[{i}]" for i in range(len(z))], replace=False)
        shown, full = view(rec, page.render_dir(request), f"{stored.stem}_decoded")
        n0 = len(sess.pool) - len(z)
        return {state: sess, samples_view: show(shown), dl_samples: offer(full, "Decoded"),
                status: f"Loaded {len(z)} latent(s) of {sess.space} from {stored.name} as latents "
                        f"{n0}-{len(sess.pool) - 1}. Pool: {pool_note(sess)}."}

    def encode_input(input_file, session_state, condition, request: gr.Request, **kw):
        """Encode an uploaded image or stroke file; its latents join the pool, its reconstruction is shown."""
        sess = sessions.of(session_state, request)
        if input_file is None:
            return {state: sess}
        stored = None
        try:
            stored = page.receive(request, input_file)
            if stored.suffix.lower() in (".npz", ".npy") and is_latent_file(stored):
                return load_latents(sess, stored, condition, request, kw)
            return encode_data(sess, explorer.read_input(stored), stored.name, stored.stem, condition, request, kw)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            ws.discard(stored)
            return refuse(sess, "input", exc)

    def encode_drawing(drawing, session_state, condition, request: gr.Request, **kw):
        """Encode the sketch drawn on the canvas (stroke-3 of the mouse strokes) and show its reconstruction."""
        sess = sessions.of(session_state, request)
        try:
            sketch = sketch_from_drawing(drawing)
            return encode_data(sess, Sketches([sketch]), "the drawing", "drawing", condition, request, kw)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "drawing", exc)

    def complete_drawing(drawing, completions, seeds, session_state, condition, request: gr.Request, **kw):
        """Continuations of the sketch drawn on the canvas (its strokes kept as the prefix), as SVG."""
        sess = sessions.of(session_state, request)
        try:
            prefix = sketch_from_drawing(drawing)
            seed = parse_seeds(seeds)[0]
            n = max(1, int(completions or 1))
            done = explorer.complete(prefix, n, knobs=knobs_from(kw), seed=seed,
                                     condition=parse_condition(kind, condition))
            full = save_sketches(page.render_dir(request) / f"completions_seed{seed}.svg", list(done), nrow=len(done),
                                 prefix_lengths=[len(prefix)] * len(done), overwrite=True)  # the prefix in red
            ws.enforce_cap(session_id(request), keep=[full])
            return {state: sess, complete_view: show(full.read_text(), sketches=True),
                    dl_complete: offer(full, "Completions"),
                    status: f"{len(done)} completion(s) of the drawing ({len(prefix)} points kept; seed {seed})."}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "completion", exc)

    def write_path(sess, z, what: str, stem: str, file_format: str, knobs, cond, request) -> dict:
        fmt = str(file_format or "gif").lower()
        if fmt not in ("gif", "mp4"):
            raise LatentStudioError(f"animations are written as gif or mp4, not {fmt!r}")
        outs = explorer.decode(z, space=sess.space, knobs=knobs, condition=cond)
        folder = page.render_dir(request)
        shown, full = view(outs, folder, stem, nrow=len(z))
        anim = save_animation(outs, folder / f"{stem}.{fmt}", pingpong=True)
        lat = save_latents(folder / f"{stem}.npz", z, model=model, space=sess.space, path=what)
        ws.enforce_cap(session_id(request), keep=[full, anim, lat])
        return {state: sess, path_view: show(shown), anim_view: str(anim) if fmt == "gif" else None,
                dl_path: offer(full, "Strip"), dl_anim: offer(anim, "Animation"),
                dl_path_latents: offer(lat, "Path latents"), status: f"{what} ({len(z)} steps)."}

    def interpolate(session_state, first, second, method, frames, file_format, condition, request: gr.Request,
                    **kw):
        """Interpolation between two pool latents as a strip and an animation."""
        sess = sessions.of(session_state, request)
        try:
            a, b = sess.latent(first), sess.latent(second)
            z = explorer.interpolate(a, b, int(frames), str(method))
            what = f"{method} from latent {int(first)} to latent {int(second)} in {sess.space}"
            return write_path(sess, z, what, f"{sess.space}_{method}_{int(first)}-{int(second)}", file_format,
                              knobs_from(kw), parse_condition(kind, condition), request)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "interpolation", exc)

    def random_walk(session_state, start, frames, step_size, file_format, condition, request: gr.Request, **kw):
        """A seeded random walk from one pool latent as a strip and an animation."""
        sess = sessions.of(session_state, request)
        try:
            z = explorer.random_walk(sess.latent(start), int(frames), float(step_size), seed=int(start or 0))
            what = f"Random walk from latent {int(start or 0)} in {sess.space}, step {float(step_size):g}"
            return write_path(sess, z, what, f"{sess.space}_walk_{int(start or 0)}", file_format,
                              knobs_from(kw), parse_condition(kind, condition), request)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "random walk", exc)

    def moved_latent(sess, start, pca_of, layers, kw, knobs, cond):
        """The pool latent ``start`` moved by every slider (principal directions on the ticked layers):
        ``(latent [1, *shape], amounts by name, directions, layers or None)``."""
        amounts = [float(kw.pop(n, 0.0) or 0.0) for n in dir_names]
        by_label = [float(kw.pop(f"label_{i}", 0.0) or 0.0) for i in range(len(label_names))]
        base = sess.latent(start)
        mask = mask_of(sess.space, layers)
        if pca_of == "pool":
            if len(sess.pool) < 3:
                raise LatentStudioError("directions of the pool need at least 3 latents in it")
            key = ("pool", sess.space, len(sess.pool), tuple(sess.labels))
            if sess.cache.get("pool_key") != key:
                sess.cache["pool_key"] = key
                sess.cache["pool_dirs"] = explorer.principal_directions(sess.pool, k=NUM_DIRECTIONS,
                                                                        space=sess.space)
            dirs = sess.cache["pool_dirs"]
        else:
            dirs = directions_for(sess.space, knobs, cond)
        z = explorer.move(base, dirs, amounts, layers=mask)
        if any(by_label):
            if sess.space != spaces[0]:
                raise LatentStudioError(f"the label directions are directions of {spaces[0]}; switch to it")
            z = explorer.move(z, label_dirs, by_label)
        moves = {**dict(zip(dir_names, amounts, strict=True)), **dict(zip(label_names, by_label, strict=True))}
        return z[None], moves, dirs, mask

    def move(session_state, start, pca_of, layers, condition, request: gr.Request, **kw):
        """One pool latent moved along the principal directions (of drawn latents or of the pool), on the
        ticked style layers, and along the label directions by the sliders' amounts."""
        sess = sessions.of(session_state, request)
        try:
            knobs, cond = knobs_from(kw), parse_condition(kind, condition)
            z, moves, dirs, mask = moved_latent(sess, start, pca_of, layers, kw, knobs, cond)
            outs = explorer.decode(z, space=sess.space, knobs=knobs, condition=cond)
            moved = "_".join(f"{n}{a:+g}" for n, a in moves.items() if a) or "unmoved"
            on = "" if mask is None else "_layers-" + "-".join(map(str, mask))
            folder = page.render_dir(request)
            stem = f"{sess.space}_latent{int(start or 0)}_{moved}{on}"[:120]
            shown, full = view(outs, folder, stem)
            lat = save_latents(folder / f"{stem}.npz", z, model=model, space=sess.space, directions=moves,
                               layers=mask)
            grid = save_image(latent_grid(z[0], cell=max(4, min(16, 480 // max(z[0].shape[-1], 1)))),
                              folder / f"{stem}_values.png", overwrite=True)
            dfile = folder / f"{sess.space}_directions.npz"
            save_directions(dfile, dirs, model=model)
            ws.enforce_cap(session_id(request), keep=[full, lat, dfile])
            ratios = ", ".join(f"{n} {r:.0%}" for n, r in zip(dirs.names, dirs.variance_ratio, strict=False))
            where = "" if mask is None else f" on style layers {', '.join(map(str, mask))}"
            return {state: sess, edit_view: show(shown), values_view: str(grid),
                    dl_edit: offer(full, "Moved"),
                    dl_edit_latent: offer(lat, "Moved latent"), dl_directions: offer(dfile, "Directions"),
                    status: f"Moved latent {int(start or 0)} ({moved.replace('_', ', ')}){where}; principal "
                            f"directions of {dirs.source} ({ratios} of the variance)."}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "move", exc)

    def nearest(session_state, start, pca_of, layers, condition, request: gr.Request, **kw):
        """The training examples nearest to the moved output of latent ``start``."""
        sess = sessions.of(session_state, request)
        try:
            knobs, cond = knobs_from(kw), parse_condition(kind, condition)
            z, _, _, _ = moved_latent(sess, start, pca_of, layers, kw, knobs, cond)
            out = explorer.decode(z, space=sess.space, knobs=knobs, condition=cond)
            idx, dist, found = explorer.nearest(out, k=6)
            folder = page.render_dir(request)
            shown, full = view(found, folder, f"nearest_latent{int(start or 0)}", nrow=len(idx))
            labels = explorer.reference.labels
            names = [f"#{i}" + (f" ({labels[i]})" if labels else "") + f" {d:.3f}" for i, d in zip(idx, dist,
                                                                                                    strict=True)]
            return {state: sess, nearest_view: show(shown), dl_nearest: offer(full, "Nearest"),
                    status: f"Nearest training examples of the moved latent {int(start or 0)}: {', '.join(names)}."}
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "nearest", exc)

    def write_steps(sess, frames: torch.Tensor, stem: str, request, message: str, values: Path | None = None) -> dict:
        """Canvases ``uint8 [T, n, C, H, W]`` as a strip (a row per latent, a column per step) and a GIF, with
        the picture of the latent's values (``values``: one latent's steps) or none (the seeds' samples)."""
        t, n = frames.shape[:2]
        rgb = frames.expand(-1, -1, 3, -1, -1) if frames.shape[2] == 1 else frames
        strip = make_grid(rgb.transpose(0, 1).flatten(0, 1), nrow=t)
        tiles = [make_grid(f, nrow=n) for f in rgb]
        folder = page.render_dir(request)
        png = save_outputs(strip[None], folder / f"{stem}.png")
        gif = save_animation(tiles, folder / f"{stem}.gif", fps=4.0)
        ws.enforce_cap(session_id(request), keep=[png, gif, *([values] if values else [])])
        no_values = gr.update(value=None, label="Latent values (PNG)", interactive=False)
        return {state: sess, steps_view: str(png), steps_anim: str(gif), dl_steps: offer(gif, "Steps"),
                dl_steps_strip: offer(png, "Strip"), steps_values: None if values is None else str(values),
                dl_steps_values: no_values if values is None else offer(values, "Values"), status: message}

    def drawing_steps(session_state, seeds, condition, request: gr.Request, **kw):
        """The canvas after every step of the seeds' samples: a strip (a row per sample) and a GIF."""
        sess = sessions.of(session_state, request)
        try:
            seed_list = parse_seeds(seeds)[:MAX_STEP_LATENTS]
            frames = explorer.steps(seed_list, knobs=knobs_from(kw), condition=parse_condition(kind, condition))
            return write_steps(sess, frames, f"steps_seeds{seed_list[0]}-{seed_list[-1]}", request,
                               f"The canvas after each of {len(frames)} steps for {frames.shape[1]} sample(s).")
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "steps", exc)

    def latent_steps(session_state, latent_number, condition, request: gr.Request, **kw):
        """The canvas after every step of one pool latent (sampled, encoded or loaded): a strip and a GIF."""
        sess = sessions.of(session_state, request)
        try:
            i = int(latent_number or 0)
            z = sess.latent(i)
            frames = torch.as_tensor(explorer.steps_of(z[None], space=sess.space, knobs=knobs_from(kw),
                                                       condition=parse_condition(kind, condition)))
            grid = save_image(latent_grid(z, cell=max(4, min(16, 480 // max(z.shape[-1], 1)))),
                              page.render_dir(request) / f"steps_latent{i}_values.png", overwrite=True)
            return write_steps(sess, frames, f"steps_latent{i}", request,
                               f"The canvas after each of {len(frames)} steps for latent {i} ({sess.labels[i]}); "
                               "its values, a row per step.", values=grid)
        except SessionEnded:
            return {state: sess}
        except LatentStudioError as exc:
            return refuse(sess, "steps", exc)

    # ---- layout
    header = (f"Model: **{info['family']}** ({'images' if images else 'sketches'}"
              f"{', ' + model.condition_spec.kind + ' condition' if kind != 'none' else ''}); "
              f"latent spaces: {', '.join(sp['name'] + ' ' + str(sp['shape']) for sp in info['spaces']) or 'none'}; "
              f"capabilities: {', '.join(info['capabilities']) or 'sampling only'}.")
    state = gr.State(None)
    gr.Markdown(header, elem_id="header")
    space_info = gr.Markdown(f"**Shown:** {explorer.headline()}", elem_id="space-info")
    sketch_canvas = not images and (can_encode or can_complete)
    with gr.Row():
        with gr.Column(scale=1):
            space = gr.Radio(spaces, value=spaces[0] if spaces else None, label="Latent space",
                             visible=bool(spaces), elem_id="space")
            seeds = seed_box(many=True, elem_id="seeds")
            defaults = model.default_knobs()
            knob_boxes = {knob_kw[k.name]: knob_control(k, value=defaults.get(k.name),
                                                        choices=model.sampler_choices() if k.name == "sampler"
                                                        else None)
                          for k in model.knobs}
            condition = condition_control(model.condition_spec)
            sample_btn = gr.Button("Sample", variant="primary", elem_id="sample")
            what = ("An image, or " if images else "A stroke file (.npz, .ndjson), or ") if can_encode else ""
            box_title = "Encode an input" if can_encode else ("Load latents" if spaces else "Draw a sketch")
            with gr.Accordion(box_title, open=True, visible=bool(spaces) or sketch_canvas):
                input_file = file_box(f"{what}a latent file (.npz) saved here".capitalize(), elem_id="input-file",
                                      visible=bool(spaces))
                if sketch_canvas:
                    gr.HTML(CANVAS_HTML, js_on_load=CANVAS_JS, elem_id="canvas")
                    drawing = gr.Textbox(label="Drawing (strokes [[xs, ys], ...] on a 0-255 canvas; drawn "
                                               "above or pasted)", value="", lines=1, max_lines=3,
                                         elem_id="drawing")
                    drawing_btn = gr.Button("Encode the drawing", elem_id="encode-drawing", visible=can_encode)
                    with gr.Column(visible=can_complete):
                        with gr.Row():
                            completions = gr.Slider(1, 8, value=4, step=1, label="Completions",
                                                    elem_id="completions")
                            complete_btn = gr.Button("Complete the drawing", elem_id="complete")
                        complete_view = gr.HTML(label="Completions", elem_id="completions-view")
                        (dl_complete,) = download_row(("Completions (SVG)", "download-completions"))
        with gr.Column(scale=2):
            samples_view = output_view(images, "Samples", elem_id="samples")
            dl_samples, dl_latents = download_row(("Samples", "download-samples"),
                                                  ("Latents (.npz)", "download-latents"))
    with gr.Accordion("Path: interpolation and random walk", open=True, visible=bool(spaces)):
        with gr.Row():
            first = gr.Number(label="From latent #", value=0, precision=0, minimum=0, elem_id="path-from")
            second = gr.Number(label="To latent #", value=1, precision=0, minimum=0, elem_id="path-to")
            method = gr.Radio(["slerp", "lerp"], value="slerp", label="Interpolation", elem_id="method")
            frames = gr.Slider(2, 32, value=8, step=1, label="Steps", elem_id="path-steps")
            step_size = gr.Slider(0.05, 1.0, value=0.3, step=0.05, label="Walk step", elem_id="walk-step")
            file_format = gr.Radio(["gif", "mp4"], value="gif", label="Animation", elem_id="anim-format")
        with gr.Row():
            interp_btn = gr.Button("Interpolate", elem_id="interpolate")
            walk_btn = gr.Button("Random walk", elem_id="walk")
        path_view = output_view(images, "Strip", elem_id="path")
        anim_view = image_view("Animation", elem_id="anim")
        dl_path, dl_anim, dl_path_latents = download_row(
            ("Strip", "download-path"), ("Animation", "download-anim"),
            ("Path latents (.npz)", "download-path-latents"))
    sliders = []
    with gr.Accordion("Principal directions", open=True, visible=bool(spaces)):
        with gr.Row():
            start = gr.Number(label="Latent # to move", value=0, precision=0, minimum=0, elem_id="move-from")
            pca_of = gr.Radio([("drawn latents", "drawn"), ("the pool (e.g. encoded inputs)", "pool")],
                              value="drawn", label="Principal directions of", elem_id="pca-of")
        n_layers = explorer.layer_count(spaces[0]) if spaces else None
        layer_mask = gr.CheckboxGroup([(str(i), i) for i in range(n_layers or 0)], value=list(range(n_layers or 0)),
                                      label="Style layers the directions move (W+ rows; 0 = coarsest)",
                                      visible=n_layers is not None, elem_id="layer-mask")
        with gr.Row():
            for n in dir_names:
                sliders.append(gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=n, elem_id=f"pc-{n}",
                                         info="standard deviations", min_width=160))
        label_sliders = []
        if label_names:
            gr.Markdown(f"Label directions ({label_dirs.source}): mean latent of a label minus the mean of all.")
            with gr.Row():
                for i, n in enumerate(label_names):
                    label_sliders.append(gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"label {n}",
                                                   elem_id=f"label-{i}", min_width=160))
        with gr.Row():
            edit_view = output_view(images, "Moved", elem_id="moved")
            shape = explorer.space().shape if spaces else ()
            rows = f"a row per step or layer of {shape[0]}" if len(shape) == 2 else "one row"
            values_view = image_view(f"Its latent's values ({rows}; blue -3, white 0, red +3)",
                                     elem_id="latent-values")
        dl_edit, dl_edit_latent, dl_directions = download_row(
            ("Moved", "download-moved"), ("Moved latent (.npz)", "download-moved-latent"),
            ("Directions (.npz)", "download-directions"))
    with gr.Accordion("Training data", open=True, visible=reference is not None and bool(spaces)):
        gr.Markdown(f"{len(reference)} examples of {reference.name}" if reference is not None else "",
                    elem_id="reference-info")
        nearest_btn = gr.Button("Nearest training examples of the moved output (6)", elem_id="nearest")
        nearest_view = output_view(images, "Nearest", elem_id="nearest-view")
        (dl_nearest,) = download_row(("Nearest", "download-nearest"))
    with gr.Accordion("Drawing steps", open=True, visible=STEPS in model.capabilities):
        with gr.Row():
            steps_btn = gr.Button(f"Steps of the seeds' samples (at most {MAX_STEP_LATENTS})", elem_id="seed-steps")
            steps_latent = gr.Number(label="Latent #", value=0, precision=0, minimum=0, elem_id="steps-latent",
                                     visible=bool(spaces))
            latent_steps_btn = gr.Button("Steps of latent # (sampled, encoded or loaded)", elem_id="latent-steps",
                                         visible=bool(spaces))
        with gr.Row():
            steps_view = image_view("Canvas after each step (a row per latent)", elem_id="steps-strip")
            steps_anim = image_view("Animation", elem_id="steps-anim")
            steps_values = image_view("Latent #'s values (a row per step; blue -3, white 0, red +3)",
                                      elem_id="steps-latent-values")
        dl_steps, dl_steps_strip, dl_steps_values = download_row(
            ("Steps (GIF)", "download-steps"), ("Strip (PNG)", "download-steps-strip"),
            ("Latent values (PNG)", "download-steps-values"))

    # ---- events
    kw_in = dict(knob_boxes)
    render: dict[str, Any] = {"concurrency_limit": 2, "concurrency_id": "explore"}
    space.change(switch_space, [state, space], [state, space_info, layer_mask, status], api_name="switch_space",
                 queue=False)
    sample_outs = [state, samples_view, dl_samples, dl_latents, status]
    gr.on([sample_btn.click, seeds.submit], sample, [state, seeds, condition], sample_outs, inputs_kwargs=kw_in,
          api_name="sample", **render)
    input_file.upload(encode_input, [input_file, state, condition], sample_outs, inputs_kwargs=kw_in,
                      api_name="encode", **render)
    if sketch_canvas and can_encode:
        drawing_btn.click(encode_drawing, [drawing, state, condition], sample_outs, inputs_kwargs=kw_in,
                          api_name="encode_drawing", **render)
    if sketch_canvas and can_complete:
        complete_btn.click(complete_drawing, [drawing, completions, seeds, state, condition],
                           [state, complete_view, dl_complete, status], inputs_kwargs=kw_in, api_name="complete",
                           **render)
    path_outs = [state, path_view, anim_view, dl_path, dl_anim, dl_path_latents, status]
    interp_btn.click(interpolate, [state, first, second, method, frames, file_format, condition], path_outs,
                     inputs_kwargs=kw_in, api_name="interpolate", **render)
    walk_btn.click(random_walk, [state, first, frames, step_size, file_format, condition], path_outs,
                   inputs_kwargs=kw_in, api_name="random_walk", **render)
    move_triggers = [t for s in [*sliders, *label_sliders] for t in (s.release, s.input)]
    move_triggers += [start.submit, layer_mask.input]
    slider_kw = {**kw_in, **dict(zip(dir_names, sliders, strict=True)),
                 **{f"label_{i}": s for i, s in enumerate(label_sliders)}}
    nearest_btn.click(nearest, [state, start, pca_of, layer_mask, condition], [state, nearest_view, dl_nearest, status],
                      inputs_kwargs=slider_kw, api_name="nearest", **render)
    gr.on(move_triggers, move, [state, start, pca_of, layer_mask, condition],
          [state, edit_view, values_view, dl_edit, dl_edit_latent, dl_directions, status],
          inputs_kwargs=slider_kw, api_name="move", trigger_mode="always_last", show_progress="minimal", **render)
    steps_outs = [state, steps_view, steps_anim, dl_steps, dl_steps_strip, steps_values, dl_steps_values, status]
    steps_btn.click(drawing_steps, [state, seeds, condition], steps_outs, inputs_kwargs=kw_in,
                    api_name="drawing_steps", **render)
    gr.on([latent_steps_btn.click, steps_latent.submit], latent_steps, [state, steps_latent, condition], steps_outs,
          inputs_kwargs=kw_in, api_name="latent_steps", **render)


def explorer_view(explorer: Explorer, *, pca_samples: int = 256) -> View:
    """The explorer as a :class:`~latentstudio.studio.web.components.View` of the page (tab ``explorer``)."""
    return View("explorer", "Latent explorer", lambda page: render_explorer(explorer, page, pca_samples=pca_samples),
                hint=HINT, css=CSS)


def build_explorer_app(explorer: Explorer, *, title: str = "latentstudio latent explorer",
                       workdir: str | Path | None = None, workspace: Workspace | None = None,
                       keep_files: bool = False, max_session_bytes: int = DEFAULT_SESSION_BYTES,
                       pca_samples: int = 256):
    """A page of the explorer view alone (not launched; see :func:`serve_explorer`). The studio command
    serves :func:`latentstudio.studio.web.studio_app.build_studio_app`, which has this view for every model."""
    ws = workspace or Workspace(workdir, keep_files=keep_files, max_session_bytes=max_session_bytes)
    return build_page([explorer_view(explorer, pca_samples=pca_samples)], title=title, workspace=ws)


def serve_explorer(explorer: Explorer, *, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
                   workdir: str | Path | None = None, quiet: bool = False, keep_files: bool = False,
                   max_session_bytes: int = DEFAULT_SESSION_BYTES, pca_samples: int = 256):
    """Launch :func:`build_explorer_app`; returns ``(demo, url)`` (arguments as
    :func:`~latentstudio.studio.web.components.launch`'s)."""
    return launch(lambda ws: build_explorer_app(explorer, workspace=ws, pca_samples=pca_samples), host=host,
                  port=port, block=block, workdir=workdir, quiet=quiet, keep_files=keep_files,
                  max_session_bytes=max_session_bytes)
