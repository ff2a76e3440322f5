"""Second-stage VAE and the two-stage composite (Dai & Wipf 2019)."""

from latentstudio.models.two_stage.config import SecondStageConfig, TwoStageConfig
from latentstudio.models.two_stage.model import SecondStageVAE, TwoStageVAE

__all__ = ["SecondStageConfig", "SecondStageVAE", "TwoStageConfig", "TwoStageVAE"]
