"""Gaussian mixture fitted ex post on the latents (scikit-learn's EM, Ghosh et al. 2020)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Self

import numpy as np
import torch
from tqdm.auto import tqdm

from latentstudio.config import require
from latentstudio.errors import ConfigError
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
        num_classes: 0 fits one mixture on all latents; C > 0 fits one mixture per class (for
            class-conditional VAEs: ``fit(..., labels=...)``, ``sample(..., cond=one-hot)``), so that
            a sampled latent comes from the requested class's region of the latent space.

    Fitted state (saved): ``weights [K]``, ``means [K, D]``, ``covariances [K, D, D]`` (full) or
    ``[K, D]`` (diag); with ``num_classes = C`` each gets a leading ``[C, ...]`` dimension.
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
        num_classes: int = 0,
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
        require(num_classes >= 0, "num_classes", f"must be >= 0, got {num_classes}")
        self.num_classes = int(num_classes)
        self.weights: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.covariances: torch.Tensor | None = None
        self.stopped_early = False

    def config_dict(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "fit_on": self.fit_on,
            "reg_covar": self.reg_covar,
            "max_iter": self.max_iter,
            "seed": self.seed,
            "num_classes": self.num_classes,
        }

    @property
    def is_fitted(self) -> bool:
        return self.weights is not None

    def fit(
        self,
        latents: DiagonalGaussian | torch.Tensor,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        *,
        progress: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> Self:
        """Fit by EM on ``mu`` or on sampled ``z`` (``fit_on``).

        EM runs one iteration at a time (scikit-learn's warm start, the same iterations as one
        ``fit`` call), so a progress bar can follow it and a run's wall-clock cap can end it early.

        Args:
            latents: posterior ``[N, D]`` (required for ``fit_on="sample"``) or a ``[N, D]`` tensor
                of codes, used as they are.
            generator: noise for ``fit_on="sample"``.
            labels: ``int64 [N]`` classes in ``0..num_classes-1``; required iff ``num_classes > 0``.
            progress: show a progress bar of EM iterations.
            should_stop: called after every iteration; True ends EM there (the mixture of that
                iteration is kept; ``stopped_early`` is then True).

        Raises:
            ConfigError: fewer latents (of a class) than components, a plain tensor with
                ``fit_on="sample"``, or labels missing/unexpected/out of range.
        """

        if isinstance(latents, DiagonalGaussian):
            x = latents.mode() if self.fit_on == "mean" else latents.sample(generator)
        else:
            require(self.fit_on == "mean", "fit_on", "'sample' needs a posterior (mean and logvar), not codes")
            x = latents
        x = x.detach().cpu().double()
        require(x.ndim == 2 and x.shape[1] == self.latent_dim, "latents", f"expected [N, {self.latent_dim}]")
        self.stopped_early = False
        parts = [(x, "")]
        if self.num_classes == 0:
            require(labels is None, "labels", "this GMM has num_classes=0; pass no labels")
        else:
            require(labels is not None and labels.shape == (x.shape[0],), "labels", f"expected int64 [{x.shape[0]}]")
            require(0 <= int(labels.min()) and int(labels.max()) < self.num_classes, "labels",
                    f"must lie in 0..{self.num_classes - 1}")
            parts = [(x[labels.cpu() == c], f" of class {c}") for c in range(self.num_classes)]
        for part, what in parts:
            require(part.shape[0] >= self.n_components, "n_components",
                    f"{self.n_components} > {part.shape[0]} latents{what}")
        what = f"fitting the GMM ({self.n_components} components, {x.shape[0]} latents" + (
            ", one mixture per class)" if self.num_classes else ")")
        with tqdm(total=self.max_iter * len(parts), desc=what, unit="EM it", disable=not progress, leave=False) as bar:
            fits = [self._em(part, bar, should_stop) for part, _ in parts]
        if self.num_classes == 0:
            self.weights, self.means, self.covariances = fits[0]
        else:
            self.weights, self.means, self.covariances = (torch.stack(t) for t in zip(*fits, strict=True))
        return self

    def _em(self, x: torch.Tensor, bar, should_stop) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from sklearn.exceptions import ConvergenceWarning  # lazy: scikit-learn takes ~1 s to import
        from sklearn.mixture import GaussianMixture  # lazy: scikit-learn takes ~1 s to import

        gm = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            max_iter=1,
            warm_start=True,
            random_state=self.seed,
        )
        start = bar.n
        with warnings.catch_warnings():
            # one iteration per call "does not converge" by design; convergence is read below
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(self.max_iter):
                gm.fit(x.numpy())
                bar.update()
                if gm.converged_:
                    break
                if should_stop is not None and should_stop():
                    self.stopped_early = True
                    break
        bar.n = start + self.max_iter  # the remaining iterations of this mixture are not needed
        bar.refresh()
        return (torch.from_numpy(gm.weights_).float(), torch.from_numpy(gm.means_).float(),
                torch.from_numpy(gm.covariances_).float())

    def _scale(self) -> torch.Tensor:
        assert self.covariances is not None
        if self.covariance_type == "diag":
            return self.covariances.sqrt()
        return torch.linalg.cholesky(self.covariances.double()).float()

    def _classes(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Class index per row for a per-class mixture (None when unconditional)."""
        if self.num_classes == 0:
            return None
        if cond is None or cond.shape != (n, self.num_classes):
            got = None if cond is None else list(cond.shape)
            raise ConfigError(f"this GMM has one mixture per class: pass one-hot cond [{n}, {self.num_classes}], got {got}")
        return cond.argmax(dim=1).cpu()

    def sample(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``float32 [n, D]``: component k ~ Categorical(weights), then z ~ N(means[k], cov[k]).

        With ``num_classes > 0`` row i uses the mixture of class ``argmax(cond[i])``.

        Raises:
            SamplerNotFittedError: before :meth:`fit`. ConfigError: missing ``cond`` for a per-class GMM.
        """
        self._check_fitted()
        assert self.weights is not None and self.means is not None
        classes = self._classes(cond, n)
        if classes is None:
            k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
            means, scale = self.means[k], self._scale()[k]
        else:
            k = torch.multinomial(self.weights[classes], 1, generator=generator).squeeze(1)
            means, scale = self.means[classes, k], self._scale()[classes, k]
        eps = torch.randn(n, self.latent_dim, generator=generator)
        if self.covariance_type == "diag":
            return means + scale * eps
        return means + torch.einsum("nij,nj->ni", scale, eps)

    def log_prob(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mixture log-density of ``z [N, D]`` in nats, ``[N]`` (per-class mixtures: the one of ``cond``)."""
        self._check_fitted()
        assert self.weights is not None and self.means is not None and self.covariances is not None
        cov = self.covariances if self.covariance_type == "full" else torch.diag_embed(self.covariances)
        weights, means = self.weights, self.means
        classes = self._classes(cond, z.shape[0])
        if classes is not None:
            weights, means, cov = weights[classes], means[classes], cov[classes]
        comp = torch.distributions.MultivariateNormal(means.double(), covariance_matrix=cov.double())
        lp = comp.log_prob(z.double()[:, None, :]) + weights.double().log()
        return torch.logsumexp(lp, dim=-1).float()

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
