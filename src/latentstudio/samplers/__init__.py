"""Latent-density samplers (N(0, I), ex-post GMM, KDE baseline) and their storage in model folders."""

from latentstudio.samplers.base import SAMPLERS, LatentSampler, SamplerNotFittedError
from latentstudio.samplers.gaussian import NormalSampler
from latentstudio.samplers.gmm import GMMSampler
from latentstudio.samplers.kde import KDESampler
from latentstudio.samplers.store import load_model_with_samplers, load_samplers

__all__ = ["SAMPLERS", "GMMSampler", "KDESampler", "LatentSampler", "NormalSampler", "SamplerNotFittedError",
           "load_model_with_samplers", "load_samplers"]
