"""Named starting configurations for ``latentstudio train two-stage-vae --preset NAME``.

Each preset is a nested dict in :class:`~latentstudio.training.config.TwoStageRunConfig` layout;
data-dependent fields (image_channels, image_size, cond_dim) are filled from the dataset.

- ``quickstart``: small enough to train on the bundled ``digits`` in about 3 minutes on 2 CPU cores.
- Short-budget presets (``quickstart``, ``cpu``) start both gammas at 0.1 instead of the paper's 1:
  with Adam, log gamma moves by about the learning rate per step, so from 1 it cannot reach the
  reconstruction error within a few thousand steps; the KL term then dominates, most latents stay
  inactive and the second stage collapses to its prior (seen on digits: fid_clf of the second
  stage 107 with gamma 1 vs 13 with gamma 0.1 at the same budget). gamma is still learned.
- ``paper``: Dai & Wipf's settings (base_dim 64, 2 blocks per scale, latent 64, second stage
  3 x 1024, lr 1e-4 halved every 150 epochs / 300 for stage 2) — a GPU-scale run.
- ``cpu``: between the two, used by the MNIST benchmark.
"""

from __future__ import annotations

from typing import Any

from latentstudio.errors import UnknownNameError

PRESETS: dict[str, dict[str, Any]] = {
    "quickstart": {
        "model": {
            "stage1": {"latent_dim": 16, "base_dim": 16, "fc_dim": 256, "block_per_scale": 1, "gamma_init": 0.1},
            "stage2": {"latent_dim": 16, "second_depth": 3, "second_dim": 256, "gamma_init": 0.1},
        },
        "stage1": {"epochs": 40, "batch_size": 64, "lr": 1e-3, "lr_halve_every": 15},
        "stage2": {"epochs": 300, "batch_size": 128, "lr": 1e-3, "lr_halve_every": 100},
    },
    "cpu": {
        "model": {
            "stage1": {"latent_dim": 32, "base_dim": 16, "fc_dim": 512, "block_per_scale": 1, "gamma_init": 0.1},
            "stage2": {"latent_dim": 32, "second_depth": 3, "second_dim": 512, "gamma_init": 0.1},
        },
        "stage1": {"epochs": 10, "batch_size": 128, "lr": 1e-3, "lr_halve_every": 4},
        "stage2": {"epochs": 100, "batch_size": 256, "lr": 1e-3, "lr_halve_every": 40},
    },
    "paper": {
        "model": {
            "stage1": {"latent_dim": 64, "base_dim": 64, "fc_dim": 512, "block_per_scale": 2},
            "stage2": {"latent_dim": 64, "second_depth": 3, "second_dim": 1024},
        },
        "stage1": {"epochs": 300, "batch_size": 64, "lr": 1e-4, "lr_halve_every": 150},
        "stage2": {"epochs": 600, "batch_size": 64, "lr": 1e-4, "lr_halve_every": 300},
    },
}


def preset(name: str) -> dict[str, Any]:
    """A deep copy of preset ``name`` (see module docstring).

    Raises:
        UnknownNameError: listing the presets.
    """
    import copy

    if name not in PRESETS:
        raise UnknownNameError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name])


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins)."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
