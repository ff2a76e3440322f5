"""The web studio (Gradio): :func:`~latentstudio.studio.web.app.build_app` and :func:`~latentstudio.studio.web.app.serve`."""

from __future__ import annotations

from latentstudio.studio.web.app import build_app, serve

__all__ = ["build_app", "serve"]
