"""The web studio (Gradio): the face studio (:func:`~latentstudio.studio.web.app.build_app`,
:func:`~latentstudio.studio.web.app.serve`) and the latent explorer of any family
(:func:`~latentstudio.studio.web.explorer_app.build_explorer_app`,
:func:`~latentstudio.studio.web.explorer_app.serve_explorer`)."""

from __future__ import annotations

from latentstudio.studio.web.app import build_app, serve
from latentstudio.studio.web.explorer_app import build_explorer_app, serve_explorer

__all__ = ["build_app", "build_explorer_app", "serve", "serve_explorer"]
