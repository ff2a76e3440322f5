"""Shared fixtures: small real images (scikit-learn's digits), tiny configs, isolated caches."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Caches and data roots in temp folders; never the user's (and no network)."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("LATENTSTUDIO_CACHE", str(base / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch-home"))
    monkeypatch.delenv("LATENTSTUDIO_RUN_DIR", raising=False)
    monkeypatch.delenv("LATENTSTUDIO_DATA", raising=False)


@pytest.fixture(scope="session")
def digits_u8():
    """Real 8x8 digits upsampled to 32x32: (uint8 [1797, 1, 32, 32], int64 labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float()[:, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False)
    return (x * 255).round().clamp(0, 255).to(torch.uint8), torch.from_numpy(d.target).long()


def tiny_run_spec(epochs1: int = 1, epochs2: int = 1, **extra) -> dict:
    """A run-config dict small enough for tests (seconds per epoch on 2 cores)."""
    spec = {
        "model": {
            "stage1": {"latent_dim": 8, "base_dim": 8, "fc_dim": 32, "num_scale": 2},
            "stage2": {"second_depth": 2, "second_dim": 32},
        },
        "stage1": {"epochs": epochs1, "batch_size": 64, "lr": 1e-3, "log_every_n_steps": 5},
        "stage2": {"epochs": epochs2, "batch_size": 64, "lr": 1e-3, "log_every_n_steps": 5},
        "gmm_components": 3,
    }
    for k, v in extra.items():
        spec[k] = v
    return spec


def write_stroke_npz(path, n: int = 84, *, seed: int = 2, max_points: int = 30, splits=(64, 10)):
    """A sketch-rnn ``.npz`` of ``n`` synthetic int16 stroke-3 sketches: ``train`` (first ``splits[0]``),
    ``valid`` (next ``splits[1]``) and ``test`` (the rest), as object arrays like the published files."""
    import numpy as np

    from latentstudio.data.strokes import synthetic_sketches

    sk = [s.round().astype(np.int16) for s in synthetic_sketches(n, seed=seed, max_points=max_points)]

    def obj(items):
        arr = np.empty(len(items), dtype=object)
        for k, s in enumerate(items):
            arr[k] = s
        return arr

    a, b = splits[0], splits[0] + splits[1]
    np.savez(path, train=obj(sk[:a]), valid=obj(sk[a:b]), test=obj(sk[b:]))
    return path
