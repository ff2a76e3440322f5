"""latentstudio: train, evaluate and explore latent-variable generative models.

The public entry points live in :mod:`latentstudio.api` (``train``, ``load``, ``generate``,
``reconstruct``, ``evaluate``) and :mod:`latentstudio.training.quickstart` (``quickstart``); they are
re-exported here lazily so that ``import latentstudio`` stays fast (Lightning is imported only by
training).
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import Any

try:
    __version__ = metadata.version("latentstudio")
except metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

_EXPORTS = {
    "train": "latentstudio.api",
    "load": "latentstudio.api",
    "generate": "latentstudio.api",
    "reconstruct": "latentstudio.api",
    "encode": "latentstudio.api",
    "decode": "latentstudio.api",
    "interpolate": "latentstudio.api",
    "data_split": "latentstudio.api",
    "evaluate": "latentstudio.api",
    "quickstart": "latentstudio.training.quickstart",
    "load_images": "latentstudio.data",
}

__all__ = ["__version__", "data_split", "decode", "encode", "evaluate", "generate", "interpolate", "load", "load_images", "quickstart",
           "reconstruct", "train"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'latentstudio' has no attribute {name!r}")
