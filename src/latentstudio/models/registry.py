"""Registry of model classes by name (used by model directories and the CLI)."""

from __future__ import annotations

from latentstudio.registry import Registry

MODELS: Registry[type] = Registry("model")


def register_model(name: str):
    """Class decorator: register a model class (which must define ``config_class``) under ``name``."""
    deco = MODELS.register(name)

    def wrap(cls):
        cls.model_type = name
        return deco(cls)

    return wrap
