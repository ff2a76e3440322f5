"""Model definitions (plain ``nn.Module`` networks with frozen configs)."""

from __future__ import annotations


def load_all() -> None:
    """Import every model module so that the registry knows all model types."""
    import latentstudio.models.two_stage
    import latentstudio.models.vae  # noqa: F401
