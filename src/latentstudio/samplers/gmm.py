"""Gaussian mixture fitted ex post on the latents (scikit-learn's EM, Ghosh et al. 2020)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import torch

from latentstudio.config import require
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.samplers.base import SAMPLERS, LatentSampler

FIT_ON = ("mean", "sample")
COVARIANCE_TYPES = ("full", "diag")


@SAMPLERS.register("gmm")
class GMMSampler(LatentSampler):
    """A ``n_components`` Gaussian mixture on first-stage latents.

    Args:
        latent_dim: D.
        n_components: mixture size (10 in the seed studies).
        covariance_type: ``"full"`` (default) or ``"diag"``.
        fit_on: ``"mean"`` fits on the posterior means mu(x); ``"sample"`` on z = mu + sd * eps.
        reg_covar: added to covariance diagonals (scikit-learn's regulariser).
        max_iter: EM iterations.
        seed: scikit-learn random_state of the k-means initialisation.

    Fitted state (saved): ``weights [K]``, ``means [K, D]``, ``covariances [K, D, D]`` (full) or
    ``[K, D]`` (diag).
    """

    sampler_type = "gmm"

    def __init__(
        self,
        latent_dim: int,
        n_components: int = 10,
        covariance_type: str = "full",
        fit_on: str = "mean",
        reg_covar: float = 1e-6,
        max_iter: int = 200,
        seed: int = 0,
    ) -> None:
        super().__init__(latent_dim)
        require(n_components >= 1, "n_components", f"must be >= 1, got {n_components}")
        require(covariance_type in COVARIANCE_TYPES, "covariance_type", f"must be one of {COVARIANCE_TYPES}")
        require(fit_on in FIT_ON, "fit_on", f"must be one of {FIT_ON}, got {fit_on!r}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.fit_on = fit_on
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.seed = int(seed)
        self.weights: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.covariances: torch.Tensor | None = None

    def config_dict(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "fit_on": self.fit_on,
            "reg_covar": self.reg_covar,
            "max_iter": self.max_iter,
            "seed": self.seed,
        }

    @property
    def is_fitted(self) -> bool:
        return self.weights is not None

    def fit(self, latents: DiagonalGaussian | torch.Tensor, generator: torch.Generator | None = None) -> Self:
        """Fit by EM on ``mu`` or on sampled ``z`` (``fit_on``).

        Args:
            latents: posterior ``[N, D]`` (required for ``fit_on="sample"``) or a ``[N, D]`` tensor
                of codes, used as they are.
            generator: noise for ``fit_on="sample"``.

        Raises:
            ConfigError: fewer latents than components, or a plain tensor with ``fit_on="sample"``.
        """
        from sklearn.mixture import GaussianMixture

        if isinstance(latents, DiagonalGaussian):
            x = latents.mode() if self.fit_on == "mean" else latents.sample(generator)
        else:
            require(self.fit_on == "mean", "fit_on", "'sample' needs a posterior (mean and logvar), not codes")
            x = latents
        x = x.detach().cpu().double()
        require(x.ndim == 2 and x.shape[1] == self.latent_dim, "latents", f"expected [N, {self.latent_dim}]")
        require(x.shape[0] >= self.n_components, "n_components", f"{self.n_components} > {x.shape[0]} latents")
        gm = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            random_state=self.seed,
        ).fit(x.numpy())
        self.weights = torch.from_numpy(gm.weights_).float()
        self.means = torch.from_numpy(gm.means_).float()
        self.covariances = torch.from_numpy(gm.covariances_).float()
        return self

    def _scale(self) -> torch.Tensor:
        assert self.covariances is not None
        if self.covariance_type == "diag":
            return self.covariances.sqrt()
        return torch.linalg.cholesky(self.covariances.double()).float()

    def sample(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``float32 [n, D]``: component k ~ Categorical(weights), then z ~ N(means[k], cov[k]).

        Raises:
            SamplerNotFittedError: before :meth:`fit`.
        """
        self._check_fitted()
        assert self.weights is not None and self.means is not None
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator)
        scale = self._scale()[k]
        if self.covariance_type == "diag":
            return self.means[k] + scale * eps
        return self.means[k] + torch.einsum("nij,nj->ni", scale, eps)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Mixture log-density of ``z [N, D]`` in nats, ``[N]``."""
        self._check_fitted()
        assert self.weights is not None and self.means is not None and self.covariances is not None
        cov = self.covariances if self.covariance_type == "full" else torch.diag_embed(self.covariances)
        comp = torch.distributions.MultivariateNormal(self.means.double(), covariance_matrix=cov.double())
        lp = comp.log_prob(z.double()[:, None, :]) + self.weights.double().log()
        return torch.logsumexp(lp, dim=1).float()

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.is_fitted:
            return {}
        assert self.weights is not None and self.means is not None and self.covariances is not None
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self.weights = state["weights"].float()
            self.means = state["means"].float()
            self.covariances = state["covariances"].float()

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Fitted parameters as numpy arrays (for inspection)."""
        return {k: v.numpy() for k, v in self.state_dict().items()}
