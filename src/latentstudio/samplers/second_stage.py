"""The second-stage VAE used as a latent sampler (Dai & Wipf 2019)."""

from __future__ import annotations

from typing import Any, Self

import torch

from latentstudio.errors import LatentStudioError
from latentstudio.samplers.base import SAMPLERS, LatentSampler


@SAMPLERS.register("second-stage")
class SecondStageSampler(LatentSampler):
    """u ~ N(0, I) -> second-stage decoder -> z.

    Args:
        latent_dim: D.
        stage2: a :class:`~latentstudio.models.two_stage.SecondStageVAE` (its weights are stored in
            the model directory as part of the two-stage model, so this sampler has no state of
            its own).

    ``fit`` trains the second stage on the posterior with the Lightning trainer
    (:func:`latentstudio.training.fit.fit_second_stage`); the CLI's ``train`` does this for you.
    """

    sampler_type = "second-stage"

    def __init__(self, latent_dim: int, stage2: Any = None) -> None:
        super().__init__(latent_dim)
        self.stage2 = stage2

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, torch.Tensor], model: Any = None) -> Self:
        stage2 = getattr(model, "stage2", None)
        if stage2 is None:
            raise LatentStudioError("the second-stage sampler needs the two-stage model it belongs to")
        return cls(config["latent_dim"], stage2=stage2)

    @property
    def is_fitted(self) -> bool:
        return self.stage2 is not None

    def fit(self, latents: Any, generator: torch.Generator | None = None, **train_options: Any) -> Self:
        from latentstudio.training.fit import fit_second_stage

        self.stage2 = fit_second_stage(latents, stage2=self.stage2, **train_options)
        return self

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``float32 [n, D]`` latents decoded from u ~ N(0, I) (``cond [n, cond_dim]`` if conditional)."""
        self._check_fitted()
        u = torch.randn(n, self.latent_dim, generator=generator)
        was_training = self.stage2.training
        self.stage2.eval()
        z = self.stage2.decode(u.to(self.stage2.loggamma.device), cond)
        self.stage2.train(was_training)
        return z.cpu()
