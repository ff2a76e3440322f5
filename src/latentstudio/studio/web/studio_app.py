"""The web studio: one Gradio page for a model of any family (``latentstudio studio --model M``).

Every model has the latent explorer's view (:func:`~latentstudio.studio.web.explorer_app.render_explorer`);
models the Face Studio drives (StyleGAN2 and VAEs of faces) also have the Face Studio's view
(:func:`~latentstudio.studio.web.app.render_face_view`) in a second tab of the same page: same browser
session, same :class:`~latentstudio.studio.web.workspace.Workspace` folder (deleted when the tab closes),
one status line and the controls of :mod:`latentstudio.studio.web.components`. The face view's tab
opens first unless ``first="explorer"`` (``latentstudio studio --explorer``).
"""

from __future__ import annotations

from pathlib import Path

from latentstudio.errors import LatentStudioError
from latentstudio.studio.explorer import Explorer
from latentstudio.studio.session import Studio
from latentstudio.studio.web.app import face_view, load_models
from latentstudio.studio.web.components import build_page, launch
from latentstudio.studio.web.explorer_app import explorer_view
from latentstudio.studio.web.workspace import DEFAULT_SESSION_BYTES, Workspace

__all__ = ["TITLE", "build_studio_app", "serve_studio"]

TITLE = "latentstudio studio"


def build_studio_app(explorer: Explorer | None, studio: Studio | None = None, *, first: str | None = None,
                     title: str = TITLE, workdir: str | Path | None = None, workspace: Workspace | None = None,
                     keep_files: bool = False, max_session_bytes: int = DEFAULT_SESSION_BYTES,
                     pca_samples: int = 256, preview_every: int = 25):
    """The studio page (a Gradio ``Blocks``, not launched; see :func:`serve_studio`).

    Args:
        explorer: the model's :class:`Explorer` (the explorer view), or None for a face view alone.
        studio: the :class:`Studio` of a face model (the face view, tab ``face``), or None.
        first: the tab that opens, ``face`` or ``explorer`` (default: ``face`` when there is a face view).
        workspace: the :class:`Workspace` (made from ``workdir``, ``keep_files`` and ``max_session_bytes``
            if None); it becomes Gradio's upload folder and cache.
        pca_samples: latents drawn for the explorer's principal directions.
        preview_every: default of the face view's "show the reconstruction every k steps".

    Raises:
        LatentStudioError: neither view given, or ``first`` names a view the page does not have.
    """
    views = []
    if studio is not None:
        views.append(face_view(studio, preview_every=preview_every))
    if explorer is not None:
        views.append(explorer_view(explorer, pca_samples=pca_samples))
    if not views:
        raise LatentStudioError("the studio page needs a model: give an explorer, a face studio or both")
    ws = workspace or Workspace(workdir, keep_files=keep_files, max_session_bytes=max_session_bytes)
    return build_page(views, title=title, workspace=ws, first=first)


def serve_studio(explorer: Explorer | None, studio: Studio | None = None, *, first: str | None = None,
                 host: str = "127.0.0.1", port: int | None = None, block: bool = True,
                 workdir: str | Path | None = None, quiet: bool = False, keep_files: bool = False,
                 max_session_bytes: int = DEFAULT_SESSION_BYTES, pca_samples: int = 256, warm_up: bool = True):
    """Build and launch the studio page; returns ``(demo, url)``.

    The face view's models (perceptual distance, landmarks) are loaded first (:meth:`Studio.warm_up`,
    unless ``warm_up`` is False). The server's folder is deleted when the server stops, unless
    ``keep_files``; the other arguments are :func:`~latentstudio.studio.web.components.launch`'s and
    :func:`build_studio_app`'s.
    """
    return launch(lambda ws: build_studio_app(explorer, studio, first=first, workspace=ws, pca_samples=pca_samples),
                  host=host, port=port, block=block, workdir=workdir, quiet=quiet, keep_files=keep_files,
                  max_session_bytes=max_session_bytes,
                  before=(lambda: load_models(studio)) if (studio is not None and warm_up) else None)
