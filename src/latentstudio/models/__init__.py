"""Model definitions (plain ``nn.Module`` networks with frozen configs)."""

from __future__ import annotations

import importlib
import importlib.util

# One entry per model family; importing a module registers its classes in ``registry.MODELS``.
MODEL_MODULES = (
    "latentstudio.models.vae",
    "latentstudio.models.two_stage",
    "latentstudio.models.draw",
    "latentstudio.models.sketch_rnn",
    "latentstudio.models.stylegan2",
)


def load_all() -> None:
    """Import every model family so that the registry knows all model types."""
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
