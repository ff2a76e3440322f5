"""What every view of the web studio shares: the page around the views and the controls they all use.

The page (:func:`build_page`, :func:`launch`): one Gradio ``Blocks`` with a title, one status line and
the views, as tabs when there are several (the Face Studio's view and the latent explorer); one
:class:`Workspace` folder; one ``unload`` handler that ends the browser session in every view and
deletes its folder. :class:`Page` is what a view's render function receives: the workspace, the status
line, :meth:`Page.sessions` (one state object per browser session and view), :meth:`Page.refuse` (a
refused input: one log line, a warning toast, ``Error: ...`` in the status line) and
:meth:`Page.receive` (an upload moved into its session's folder and checked for size).

Controls built once for every family: :func:`seed_box` and its parsers :func:`parse_seed` /
:func:`parse_seeds`; :func:`knob_control` (one control per model knob: a slider for knobs with a natural
range such as ``truncation_psi``, a menu for knobs with choices, a checkbox for boolean knobs, a number
otherwise) and :func:`knob_values`; :func:`condition_control` and :func:`parse_condition`;
:func:`file_box` (the latent-file and input uploads); :func:`download_row` / :func:`offer` (download
buttons, enabled with a file); :func:`output_view` / :func:`image_view`.
"""

# No ``from __future__ import annotations``: Gradio reads the handlers' ``gr.Request`` annotations with
# typing.get_type_hints, which cannot resolve names of the lazily imported ``gr`` from strings.
import contextlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentstudio.errors import LatentStudioError
from latentstudio.models.base import ConditionSpec, Knob
from latentstudio.studio.session import MAX_UPLOAD_BYTES
from latentstudio.studio.web.workspace import Workspace

__all__ = [
    "KNOB_SLIDERS",
    "MAX_SEEDS",
    "Page",
    "Sessions",
    "View",
    "build_page",
    "condition_control",
    "download_row",
    "file_box",
    "image_view",
    "knob_control",
    "knob_values",
    "launch",
    "offer",
    "one_line",
    "output_view",
    "parse_condition",
    "parse_seed",
    "parse_seeds",
    "seed_box",
    "upscaled",
]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger("latentstudio.studio.web")

#: At most this many seeds at once (:func:`parse_seeds`).
MAX_SEEDS = 64
#: Knobs shown as sliders: ``name -> (minimum, maximum, step)``; other number knobs are number boxes.
KNOB_SLIDERS = {"truncation_psi": (0.0, 1.5, 0.05), "temperature": (0.05, 2.0, 0.05)}
#: Images are shown at least this large (nearest-neighbour upscaling of small models).
DISPLAY = 256


def _gradio():
    import gradio as gr  # lazy: slow import, and only the web extra installs it

    return gr


# ---------------------------------------------------------------------------------------------- text


def one_line(exc: BaseException | str) -> str:
    """An error message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(exc).split())


def upscaled(img: torch.Tensor, side: int = DISPLAY) -> torch.Tensor:
    """``uint8 [C, H, W]`` (C = 1 or 3) -> ``uint8 [3, kH, kW]``, nearest-neighbour upscaled by the whole
    factor ``k = max(1, side // W)``."""
    x = img.expand(3, -1, -1) if img.shape[0] == 1 else img
    k = max(1, side // int(x.shape[-1]))
    return x.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2) if k > 1 else x


_SEED_PART = re.compile(r"(\d+)(?:-(\d+))?")


def parse_seeds(text: Any) -> list[int]:
    """``"0-3, 7"`` -> ``[0, 1, 2, 3, 7]`` (a number gives itself; at most :data:`MAX_SEEDS`).

    Raises:
        LatentStudioError: not numbers and ranges, a range running backwards, too many, or none.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = str(int(text)) if float(text).is_integer() and text >= 0 else str(text)
    out: list[int] = []
    for part in str(text if text is not None else "").replace(" ", "").split(","):
        if not part:
            continue
        m = _SEED_PART.fullmatch(part)
        if not m:
            raise LatentStudioError(f"seeds: {part!r} is not a number or a range such as 0-7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise LatentStudioError(f"seeds: the range {part} runs backwards")
        out.extend(range(lo, hi + 1))
        if len(out) > MAX_SEEDS:
            raise LatentStudioError(f"seeds: at most {MAX_SEEDS} at once")
    if not out:
        raise LatentStudioError("give at least one seed, e.g. 0-7")
    return out


def parse_seed(value: Any) -> int:
    """One seed (a whole number >= 0) from the single seed box.

    Raises:
        LatentStudioError: empty, not a whole number >= 0, or several seeds.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LatentStudioError("give a seed (a whole number >= 0)")
    seeds = parse_seeds(value)
    if len(seeds) != 1:
        raise LatentStudioError(f"give one seed here, not {len(seeds)}")
    return seeds[0]


def parse_condition(kind: str, value: Any) -> Any:
    """The condition control's value as :meth:`ConditionSpec.make` reads it: a class number (None: classes
    in turn) or ``{attribute: +-1}`` from ``"3:+1, 5:-1"``.

    Raises:
        LatentStudioError: attributes not written as ``index:value``.
    """
    if kind == "none" or value in (None, "", "in turn"):
        return None
    if kind == "class":
        return int(value)
    out = {}
    for part in str(value).replace(" ", "").split(","):
        if part:
            m = re.fullmatch(r"(\d+):([+-]?\d+(?:\.\d+)?)", part)
            if not m:
                raise LatentStudioError(f"condition: write attributes as index:value, e.g. 3:+1, 5:-1 (got {part!r})")
            out[int(m.group(1))] = float(m.group(2))
    return out or None


def knob_values(knobs: Sequence[Knob], values: dict[str, Any]) -> dict[str, Any]:
    """The knob controls' values by knob name: whole floats of ``int`` knobs become ints, an empty box
    None (the knob's default)."""
    kinds = {k.name: k.kind for k in knobs}
    out = {}
    for name, value in values.items():
        if isinstance(value, float) and value.is_integer() and kinds.get(name) is int:
            value = int(value)
        out[name] = None if value == "" else value
    return out


# ---------------------------------------------------------------------------------------------- controls


def seed_box(*, many: bool = False, value: Any = None, elem_id: str | None = None):
    """The seed control: one seed (a number box, read with :func:`parse_seed`) or, with ``many``, seeds
    and ranges such as ``0-7`` (a text box, read with :func:`parse_seeds`)."""
    gr = _gradio()
    if many:
        return gr.Textbox(label="Seeds (e.g. 0-7)", value="0-7" if value is None else value,
                          elem_id=elem_id or "seeds")
    return gr.Number(label="Seed", value=0 if value is None else value, precision=0, minimum=0,
                     elem_id=elem_id or "seed")


def knob_control(knob: Knob, *, value: Any = None, choices: Sequence[str] | None = None,
                 label: str | None = None, elem_id: str | None = None):
    """The control of one model knob, for every family and view.

    A knob in :data:`KNOB_SLIDERS` (``truncation_psi``, ``temperature``) is a slider over its range; a
    knob with ``choices`` (or ``knob.choices``) a menu; a boolean knob a checkbox; any other a number box
    (whole numbers for ``int`` knobs). ``value`` defaults to the knob's default, ``label`` to its name and
    ``elem_id`` to ``knob-<name>``; the knob's help is the control's info line.
    """
    gr = _gradio()
    default = knob.default if value is None else value
    label = label or knob.name
    eid = elem_id or f"knob-{knob.name}"
    options = list(choices) if choices else (list(knob.choices) if knob.choices else None)
    if options:
        return gr.Dropdown(options, value=default, label=label, info=knob.help, elem_id=eid)
    if knob.kind is bool:
        return gr.Checkbox(value=bool(default), label=label, info=knob.help, elem_id=eid)
    if knob.name in KNOB_SLIDERS and knob.kind is float:
        lo, hi, step = KNOB_SLIDERS[knob.name]
        return gr.Slider(lo, hi, value=lo if default is None else float(default), step=step, label=label,
                         info=knob.help, elem_id=eid)
    return gr.Number(value=default, label=label, info=knob.help, elem_id=eid,
                     precision=0 if knob.kind is int else None)


def condition_control(spec: ConditionSpec, *, elem_id: str = "condition"):
    """The condition of a conditional model: a class radio (a menu beyond 12 classes; *in turn* = classes
    0, 1, ... across the samples) or an attribute box (``3:+1, 5:-1``); a ``gr.State(None)`` when the
    model has none. Read with :func:`parse_condition`."""
    gr = _gradio()
    if spec.kind == "class":
        classes = ["in turn", *map(str, range(spec.dim))]
        widget = gr.Radio if len(classes) <= 13 else gr.Dropdown
        return widget(classes, value="in turn", label="Class (in turn: 0, 1, ... across samples)", elem_id=elem_id)
    if spec.kind == "attributes":
        return gr.Textbox(label=f"Attributes (index:value, 0-{spec.dim - 1})", value="", elem_id=elem_id)
    return gr.State(None)


def file_box(label: str, *, elem_id: str, file_types: Sequence[str] | None = None, visible: bool = True):
    """An upload box handing the handler the uploaded file's path (latent files, photos, inputs)."""
    gr = _gradio()
    return gr.File(label=label, type="filepath", elem_id=elem_id, visible=visible,
                   **({"file_types": list(file_types)} if file_types else {}))


def image_view(label: str, *, elem_id: str):
    """An image the page shows (not an input), with a full-screen button."""
    return _gradio().Image(label=label, interactive=False, buttons=["fullscreen"], elem_id=elem_id)


def output_view(images: bool, label: str, *, elem_id: str):
    """Where outputs are shown: an image for image models, HTML (inline SVG) for sketch models."""
    return image_view(label, elem_id=elem_id) if images else _gradio().HTML(label=label, elem_id=elem_id)


def download_row(*buttons: tuple[str, str]) -> list:
    """A row of download buttons ``(label, elem_id)``, disabled until :func:`offer` gives them a file."""
    gr = _gradio()
    with gr.Row():
        return [gr.DownloadButton(label, interactive=False, elem_id=eid, elem_classes=["download"])
                for label, eid in buttons]


def offer(path: str | Path, label: str):
    """The update that puts ``path`` into a download button, labelled ``<label>: <file name>``."""
    return _gradio().update(value=str(path), label=f"{label}: {Path(path).name}", interactive=True)


# ---------------------------------------------------------------------------------------------- the page


def session_id(request: Any) -> str:
    """The Gradio session hash of a request (``anonymous`` without one)."""
    return str(getattr(request, "session_hash", None) or "anonymous")


class Sessions:
    """One state object per browser session of one view (made by ``factory`` on a session's first
    event); ``on_end(session)`` runs when the session ends (e.g. to drop a photo from memory)."""

    def __init__(self, kind: type, factory: Callable[[], Any], on_end: Callable[[Any], None] | None = None) -> None:
        self.kind, self.factory, self.on_end = kind, factory, on_end
        self.live: dict[str, Any] = {}

    def of(self, state: Any, request: Any) -> Any:
        """The session held in the view's ``gr.State`` (a new one if it holds none yet)."""
        sess = state if isinstance(state, self.kind) else self.factory()
        self.live[session_id(request)] = sess
        return sess

    def end(self, key: str) -> None:
        sess = self.live.pop(key, None)
        if sess is not None and self.on_end is not None:
            self.on_end(sess)


class Page:
    """What a view's render function gets (see the module docstring): ``workspace``, the ``status`` line."""

    def __init__(self, workspace: Workspace, status: Any) -> None:
        self.workspace = workspace
        self.status = status
        self._sessions: list[Sessions] = []

    def sessions(self, kind: type, factory: Callable[[], Any], on_end: Callable[[Any], None] | None = None
                 ) -> Sessions:
        """A :class:`Sessions` registry of this page (ended with the browser session)."""
        reg = Sessions(kind, factory, on_end)
        self._sessions.append(reg)
        return reg

    def end_session(self, key: str) -> None:
        """A browser session ended: every view forgets it, then its folder is deleted."""
        for reg in self._sessions:
            reg.end(key)
        self.workspace.end_session(key)

    def refuse(self, what: str, exc: BaseException | str, outputs: dict | None = None) -> dict:
        """A refused input: one server log line (``refused <what>: <message>``), a warning toast, the
        message in the status line; ``outputs`` (e.g. the view's state, a cleared upload) are added."""
        msg = one_line(exc)
        log.warning("refused %s: %s", what, msg)
        _gradio().Warning(msg)
        return {**(outputs or {}), self.status: f"Error: {msg}"}

    def receive(self, request: Any, path: str | Path, what: str = "file") -> Path:
        """Move an upload into its session's ``uploads/`` folder; the stored path.

        Raises:
            SessionEnded: the session already ended.
            LatentStudioError: the file is larger than the server's upload limit (it is deleted).
        """
        stored = self.workspace.store_upload(session_id(request), path)
        if stored.stat().st_size > MAX_UPLOAD_BYTES:
            self.workspace.discard(stored)
            raise LatentStudioError(f"the {what} is over {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        return stored

    def render_dir(self, request: Any) -> Path:
        """A new folder for the files of one event of the request's session."""
        return self.workspace.new_render_dir(session_id(request))


@dataclass
class View:
    """One view of the page.

    Attributes:
        name: its tab id (``face``, ``explorer``).
        label: the tab's label.
        render: draws the view into the current Blocks context: ``render(page)``.
        hint: the status line's first text when the page opens on this view.
        css: style rules the view needs.
    """

    name: str
    label: str
    render: Callable[[Page], Any]
    hint: str = ""
    css: str = ""


#: Style rules of every page: a download button's label (``<what>: <file name>``) wraps inside the button
#: instead of running over its neighbours.
BASE_CSS = ".download, .download * { white-space: normal !important; overflow-wrap: anywhere; }"


def build_page(views: Sequence[View], *, title: str, workspace: Workspace, first: str | None = None):
    """One Gradio ``Blocks`` (not launched; see :func:`launch`): the title, one status line, then the
    views, as tabs when there are several (``first``: the id of the tab that opens, default the first).

    Raises:
        LatentStudioError: no view, or ``first`` names none of them.
    """
    if not views:
        raise LatentStudioError("the studio page needs at least one view")
    names = [v.name for v in views]
    first = first or names[0]
    if first not in names:
        raise LatentStudioError(f"no view {first!r} on this page; it has {', '.join(names)}")
    ws = workspace
    ws.activate()  # before any component exists: Gradio reads its cache folder when components are made
    gr = _gradio()
    opening = next(v for v in views if v.name == first)
    with gr.Blocks(title=title, delete_cache=None if ws.keep_files else (3600, 86400)) as demo:
        demo.studio_theme = gr.themes.Base(font=["system-ui", "sans-serif"], font_mono=["monospace"])  # type: ignore[attr-defined]
        demo.studio_css = "\n".join([BASE_CSS, *(v.css for v in views if v.css)])  # type: ignore[attr-defined]
        demo.studio_workspace = ws  # type: ignore[attr-defined]
        demo.studio_workdir = str(ws.root)  # type: ignore[attr-defined]
        gr.Markdown(f"# {title}", elem_id="title")
        status = gr.Textbox(label="Status", value=opening.hint, interactive=False, elem_id="status")
        page = Page(ws, status)
        if len(views) == 1:
            views[0].render(page)
        else:
            with gr.Tabs(selected=first, elem_id="views"):
                for v in views:
                    with gr.Tab(v.label, id=v.name, elem_id=f"{v.name}-view"):
                        v.render(page)

        def end_session(request: gr.Request) -> None:
            """The tab closed: every view forgets the session and its folder is deleted."""
            page.end_session(session_id(request))

        demo.unload(end_session)
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo


def launch(make_demo: Callable[[Workspace], Any], *, host: str = "127.0.0.1", port: int | None = None,
           block: bool = True, workdir: str | Path | None = None, quiet: bool = False, keep_files: bool = False,
           max_session_bytes: int | None = None, before: Callable[[], None] | None = None):
    """Serve the page ``make_demo(workspace)`` builds; returns ``(demo, url)``.

    The server's folder (:class:`Workspace`) is deleted when the server stops: at the end of a blocking
    call (Ctrl-C), on ``demo.close()`` (the server's shutdown) and at interpreter exit, unless
    ``keep_files``. ``before()`` runs first (e.g. loading models), inside the same clean-up.

    Args:
        host: interface to bind (127.0.0.1 by default: only this machine can connect).
        port: TCP port (None: Gradio picks a free one from 7860).
        block: keep serving until interrupted (False: return at once; close with ``demo.close()``).
        workdir: the server's folder (default: a new temporary folder).
        max_session_bytes: cap of one session's folder in bytes (default
            :data:`~latentstudio.studio.web.workspace.DEFAULT_SESSION_BYTES`).
    """
    kw = {} if max_session_bytes is None else {"max_session_bytes": int(max_session_bytes)}
    ws = Workspace(workdir, keep_files=keep_files, **kw)
    log.info("uploads and renders go to %s (%s)", ws.root,
             "kept" if keep_files else "each session's folder is deleted when its tab closes, all when the server stops")
    try:
        if before is not None:
            before()
        demo = make_demo(ws)

        @contextlib.asynccontextmanager
        async def lifespan(app):
            try:
                yield
            finally:  # the server is shutting down
                ws.close()

        _, url, _ = demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                                max_file_size=MAX_UPLOAD_BYTES, ssr_mode=False, quiet=quiet, show_error=False,
                                footer_links=["api"], run_history=False,  # no copies of the runs in the browser
                                theme=demo.studio_theme, css=demo.studio_css or None, allowed_paths=[str(ws.root)],
                                app_kwargs={"lifespan": lifespan})
    except BaseException:
        ws.close()
        raise
    if block:  # launch() returned: the server was interrupted
        demo.close(verbose=False)
        ws.close()
    return demo, url
