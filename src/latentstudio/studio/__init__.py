"""Face studio: align and project photos, discover/learn latent directions, edit, and a web app.

Works with every generator of the project that synthesises images from latents, through
:class:`~latentstudio.studio.adapters.LatentModel` (the VAE family and StyleGAN2).

Modules: :mod:`~latentstudio.studio.alignment` (FFHQ-style alignment, dlib landmarks),
:mod:`~latentstudio.studio.projection` (photo -> latent), :mod:`~latentstudio.studio.directions`
(npy / GANSpace / SeFa / InterFaceGAN, direction library), :mod:`~latentstudio.studio.editing`,
:mod:`~latentstudio.studio.attributes` (CelebA attribute classifier), :mod:`~latentstudio.studio.session`
(state of one studio user) and :mod:`~latentstudio.studio.web` (the Gradio app).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LatentModel": "latentstudio.studio.adapters",
    "load_latent_model": "latentstudio.studio.loading",
    "wrap_model": "latentstudio.studio.loading",
    "align_face": "latentstudio.studio.alignment",
    "DlibLandmarker": "latentstudio.studio.alignment",
    "ProjectionConfig": "latentstudio.studio.projection",
    "project": "latentstudio.studio.projection",
    "load_latent": "latentstudio.studio.projection",
    "Direction": "latentstudio.studio.directions",
    "DirectionLibrary": "latentstudio.studio.directions",
    "edit": "latentstudio.studio.editing",
    "interpolate": "latentstudio.studio.editing",
    "StudioSession": "latentstudio.studio.session",
}

__all__ = [
    "Direction",
    "DirectionLibrary",
    "DlibLandmarker",
    "LatentModel",
    "ProjectionConfig",
    "StudioSession",
    "align_face",
    "edit",
    "interpolate",
    "load_latent",
    "load_latent_model",
    "project",
    "wrap_model",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'latentstudio.studio' has no attribute {name!r}")
