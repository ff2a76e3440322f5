"""Named starting configurations of every family, in one place (``latentstudio train FAMILY --preset NAME``).

A preset is a nested dict in its family's run-config layout (the ``config`` of a run's ``run.json``);
data-dependent fields (image channels and size, condition size, the stroke file's Nmax) are filled
from the dataset when the run is resolved. :func:`preset` returns a copy; :func:`merge` lays a
user's spec over it.

two-stage-vae:

- ``quickstart``: small enough to train on the bundled ``digits`` in about 3 minutes on 2 CPU cores.
- Short-budget presets (``quickstart``, ``cpu``) start both gammas at 0.1 instead of the paper's 1:
  with Adam, log gamma moves by about the learning rate per step, so from 1 it cannot reach the
  reconstruction error within a few thousand steps; the KL term then dominates, most latents stay
  inactive and the second stage collapses to its prior (seen on digits: fid_clf of the second
  stage 107 with gamma 1 vs 13 with gamma 0.1 at the same budget). gamma is still learned.
- ``paper``: Dai & Wipf's settings (base_dim 64, 2 blocks per scale, latent 64, second stage
  3 x 1024, lr 1e-4 halved every 150 epochs / 300 for stage 2), a GPU-scale run.
- ``cpu``: between the two, used by the MNIST benchmark.

draw: ``quickstart`` (digits), ``cpu`` (the MNIST benchmark's model), ``paper`` (Gregor et al. 2015).
sketch-rnn: ``default`` (the reference hyperparameters), ``cpu``, ``tiny``.
stylegan2: ``config-f``, ``paper256`` / ``paper512`` / ``paper1024``, ``cifar``, ``tiny``.
"""

from __future__ import annotations

import copy
from typing import Any

from latentstudio.errors import UnknownNameError

TWO_STAGE_VAE: dict[str, dict[str, Any]] = {
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

DRAW: dict[str, dict[str, Any]] = {
    # about a minute per 10 epochs on the 1,437 bundled digits (2 CPU cores)
    "quickstart": {
        "model": {"steps": 8, "latent_dim": 4, "enc_dim": 128, "dec_dim": 128, "attention": True,
                  "read_n": 4, "write_n": 6},
        "train": {"epochs": 30, "batch_size": 64, "lr": 1e-3, "grad_clip": 10.0},
    },
    # the MNIST benchmark's model (benchmarks/draw_mnist.py): a CPU-sized DRAW, 16 steps x 10 latents;
    # read 5x5 rather than the paper's 2x2: at a budget of about a thousand steps the 2x2 reader learns
    # much more slowly (see docs/draw.md)
    "cpu": {
        "model": {"steps": 16, "latent_dim": 10, "enc_dim": 256, "dec_dim": 256, "attention": True,
                  "read_n": 5, "write_n": 5},
        "train": {"epochs": 20, "batch_size": 100, "lr": 1e-3, "grad_clip": 10.0},
        "binarize": "threshold",
    },
    # Gregor et al. 2015, table 3, "MNIST Model": 64 glimpses, LSTM 256 (encoder and decoder), #z = 100
    # (read as the size of each z_t: 6,400 latents in all; 100 in all is not a whole number per step),
    # read 2x2, write 5x5, binarised MNIST; --no-attention gives the paper's "DRAW without attention"
    # (same sizes, read [x, x_hat], dense write). The paper says Adam and nothing more: learning rate
    # 1e-3, gradient-norm clip 10 and batch 64 are ours (benchmarks/draw_mnist.py --suite full, docs/draw.md)
    "paper": {
        "model": {"steps": 64, "latent_dim": 100, "enc_dim": 256, "dec_dim": 256, "attention": True,
                  "read_n": 2, "write_n": 5},
        "train": {"epochs": 100, "batch_size": 64, "lr": 1e-3, "grad_clip": 10.0},
        "binarize": "threshold",
    },
}

#: Starting points for ``latentstudio train sketch-rnn --preset``.
SKETCH_RNN: dict[str, dict[str, Any]] = {
    # the reference (magenta) hyperparameters; no preset fixes max_seq_len: Nmax is the data's longest sketch
    "default": {},
    # CPU budgets of about an hour: smaller LSTMs (encoder 2 x 128, decoder 256; z and the mixture
    # unchanged) and KL annealing over ~2,000 steps instead of ~100,000 (R = 0.999), so that samples
    # from the prior are meaningful after a short run
    "cpu": {"model": {"enc_hidden_size": 128, "dec_hidden_size": 256, "kl_decay_rate": 0.999},
            "train": {"eval_every_n_steps": 250}},
    # seconds per step on tiny sets: for smoke tests and demos
    "tiny": {"model": {"enc_hidden_size": 32, "dec_hidden_size": 64, "latent_dim": 16,
                       "num_mixture": 5, "hyper_size": 16, "hyper_embed_size": 4},
             "train": {"batch_size": 32, "max_steps": 300, "eval_every_n_steps": 100, "log_every_n_steps": 10}},
}

STYLEGAN2: dict[str, dict[str, Any]] = {
    "config-f": {
        "model": {"resolution": 1024, "channel_base": 32768, "channel_max": 512, "mapping_layers": 8},
        "train": {"batch_size": 32, "lr": 0.002, "r1_gamma": 10.0, "ema_kimg": 10.0},
    },
    "paper256": {
        "model": {"resolution": 256, "channel_base": 16384, "channel_max": 512, "mapping_layers": 8,
                  "mbstd_group_size": 8},
        "train": {"batch_size": 64, "lr": 0.0025, "r1_gamma": 1.0, "ema_kimg": 20.0},
    },
    "paper512": {
        "model": {"resolution": 512, "channel_base": 32768, "channel_max": 512, "mapping_layers": 8,
                  "mbstd_group_size": 8},
        "train": {"batch_size": 64, "lr": 0.0025, "r1_gamma": 0.5, "ema_kimg": 20.0},
    },
    "paper1024": {
        "model": {"resolution": 1024, "channel_base": 32768, "channel_max": 512, "mapping_layers": 8},
        "train": {"batch_size": 32, "lr": 0.002, "r1_gamma": 2.0, "ema_kimg": 10.0},
    },
    "cifar": {
        "model": {"resolution": 32, "channel_base": 32768, "channel_max": 512, "mapping_layers": 2,
                  "mbstd_group_size": 32},
        "train": {"batch_size": 64, "lr": 0.0025, "r1_gamma": 0.01, "ema_kimg": 500.0, "ema_rampup": 0.05},
    },
    "tiny": {
        "model": {"resolution": 32, "z_dim": 128, "w_dim": 128, "channel_base": 1024, "channel_max": 128,
                  "mapping_layers": 2},
        "train": {"batch_size": 32, "lr": 0.0025, "r1_gamma": 0.05, "ema_kimg": 2.0, "ema_rampup": 0.05},
    },
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "two-stage-vae": TWO_STAGE_VAE,
    "draw": DRAW,
    "sketch-rnn": SKETCH_RNN,
    "stylegan2": STYLEGAN2,
}


def preset_names(family: str) -> list[str]:
    """The preset names of ``family`` (sorted).

    Raises:
        UnknownNameError: a family without presets (the families are listed).
    """
    if family not in PRESETS:
        raise UnknownNameError(f"no presets for {family!r}; families with presets: {', '.join(sorted(PRESETS))}")
    return sorted(PRESETS[family])


def preset(family: str, name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name`` of ``family``.

    Raises:
        UnknownNameError: an unknown family or preset (the known ones are listed).
    """
    names = preset_names(family)
    if name not in PRESETS[family]:
        raise UnknownNameError(f"unknown {family} preset {name!r}; known presets: {', '.join(names)}")
    return copy.deepcopy(PRESETS[family][name])


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins)."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
