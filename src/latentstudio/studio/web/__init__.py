"""The web studio (Gradio): one page for a model of any family
(:func:`~latentstudio.studio.web.studio_app.build_studio_app`,
:func:`~latentstudio.studio.web.studio_app.serve_studio`): the latent explorer's view
(:mod:`~latentstudio.studio.web.explorer_app`) and, for face models, the Face Studio's view
(:mod:`~latentstudio.studio.web.app`), built from the shared controls of
:mod:`~latentstudio.studio.web.components`."""

from __future__ import annotations

from latentstudio.studio.web.app import build_app, serve
from latentstudio.studio.web.explorer_app import build_explorer_app, serve_explorer
from latentstudio.studio.web.studio_app import build_studio_app, serve_studio

__all__ = ["build_app", "build_explorer_app", "build_studio_app", "serve", "serve_explorer", "serve_studio"]
