"""Latent-density samplers (N(0, I), ex-post GMM, second stage)."""

from latentstudio.samplers.base import SAMPLERS, LatentSampler, SamplerNotFittedError
from latentstudio.samplers.gaussian import NormalSampler
from latentstudio.samplers.gmm import GMMSampler
from latentstudio.samplers.second_stage import SecondStageSampler

__all__ = ["SAMPLERS", "GMMSampler", "LatentSampler", "NormalSampler", "SamplerNotFittedError", "SecondStageSampler"]
