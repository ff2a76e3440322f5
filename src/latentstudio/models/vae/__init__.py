"""First-stage VAE of Dai & Wipf (2019) with learned decoder variance gamma."""

from latentstudio.models.vae.config import VAEConfig
from latentstudio.models.vae.model import VAE

__all__ = ["VAE", "VAEConfig"]
