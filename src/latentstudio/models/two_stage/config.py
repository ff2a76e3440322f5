"""Configurations of the second-stage VAE and of the two-stage composite."""

from __future__ import annotations

from dataclasses import dataclass, field

from latentstudio.config import Config, require
from latentstudio.models.vae.config import CONDITIONS, VAEConfig


@dataclass(frozen=True)
class SecondStageConfig(Config):
    """Dense VAE on first-stage latents z (SPEC section 1, "Second stage").

    Attributes:
        latent_dim: dimension of z (input) and of u (its latent); equal, as in the paper.
        second_depth: dense ReLU layers in encoder and decoder (paper: 3).
        second_dim: their width (paper: 1024).
        learn_gamma: learn log gamma_z (a scalar) or keep it fixed at ``gamma_init``.
        gamma_init: initial gamma_z (log gamma_z = 0 in the paper).
        beta: KL weight.
        condition / cond_dim: as :class:`VAEConfig`; the condition is concatenated to the encoder
            and decoder inputs.
    """

    latent_dim: int = 64
    second_depth: int = 3
    second_dim: int = 1024
    learn_gamma: bool = True
    gamma_init: float = 1.0
    beta: float = 1.0
    condition: str = "none"
    cond_dim: int = 0

    def __post_init__(self) -> None:
        require(self.latent_dim >= 1, "latent_dim", "must be >= 1")
        require(self.second_depth >= 1, "second_depth", f"must be >= 1, got {self.second_depth}")
        require(self.second_dim >= 1, "second_dim", f"must be >= 1, got {self.second_dim}")
        require(self.gamma_init > 0, "gamma_init", "must be > 0")
        require(self.beta >= 0, "beta", "must be >= 0")
        require(self.condition in CONDITIONS, "condition", f"must be one of {CONDITIONS}")
        require((self.condition == "none") == (self.cond_dim == 0), "cond_dim", "must be 0 iff condition is 'none'")


@dataclass(frozen=True)
class TwoStageConfig(Config):
    """A first-stage :class:`VAEConfig` and a matching :class:`SecondStageConfig`."""

    stage1: VAEConfig = field(default_factory=VAEConfig)
    stage2: SecondStageConfig = field(default_factory=SecondStageConfig)

    def __post_init__(self) -> None:
        require(
            self.stage2.latent_dim == self.stage1.latent_dim,
            "stage2.latent_dim",
            f"must equal stage1.latent_dim ({self.stage1.latent_dim}), got {self.stage2.latent_dim}",
        )
        require(
            (self.stage2.condition, self.stage2.cond_dim) == (self.stage1.condition, self.stage1.cond_dim),
            "stage2.condition",
            "must match stage1.condition and cond_dim",
        )
