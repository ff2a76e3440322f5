"""DRAW (Gregor et al. 2015): recurrent canvas with or without Gaussian filterbank attention."""

from latentstudio.models.draw.config import DRAWConfig
from latentstudio.models.draw.model import DRAW, DRAWPass

__all__ = ["DRAW", "DRAWConfig", "DRAWPass"]
