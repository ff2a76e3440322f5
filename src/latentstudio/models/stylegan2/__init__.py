"""StyleGAN2 (Karras et al. 2020): networks, model folders, safe import of official weights.

Usage::

    from latentstudio.models.stylegan2 import load_generator, z_from_seed
    G = load_generator("models/ffhq")                 # a folder written by `latentstudio convert`
    w = G.mapping(z_from_seed(0, G.z_dim), truncation_psi=0.7)   # [1, num_ws, w_dim]
    img = G.synthesis(w, noise_mode="const")          # [1, 3, R, R] float in [-1, 1]

A StyleGAN2 model folder is a latentstudio model directory (``config.json`` with
``model_type: "stylegan2"`` + ``model.safetensors`` holding the generator, usually the EMA copy)
plus, optionally, ``discriminator.safetensors`` (the discriminator of the same config).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from latentstudio.errors import CheckpointError
from latentstudio.io.atomic import atomic_dir
from latentstudio.io.checkpoint import read_model_config, read_weights, unwrap, write_model_files
from latentstudio.models.stylegan2.config import StyleGAN2Config
from latentstudio.models.stylegan2.networks import (
    NOISE_MODES,
    Discriminator,
    Generator,
    MappingNetwork,
    SynthesisNetwork,
    images_to_float,
    images_to_uint8,
    modulated_conv2d,
    upfirdn2d,
    z_from_seed,
)

DISCRIMINATOR_FILE = "discriminator.safetensors"

__all__ = [
    "DISCRIMINATOR_FILE",
    "NOISE_MODES",
    "Discriminator",
    "Generator",
    "MappingNetwork",
    "StyleGAN2Config",
    "SynthesisNetwork",
    "images_to_float",
    "images_to_uint8",
    "load_discriminator",
    "load_generator",
    "modulated_conv2d",
    "save_model",
    "upfirdn2d",
    "z_from_seed",
]


def _model_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        return path / "model"  # a finished training run
    return path


def load_generator(path: str | Path, *, map_location: str | torch.device = "cpu") -> Generator:
    """Load the generator of a StyleGAN2 model folder (or a finished run directory), without pickle.

    Returns:
        :class:`Generator` in eval mode.

    Raises:
        CheckpointError: missing/incomplete folder, or a folder holding another model type (named, with
            the fix: ``latentstudio convert`` for official ``.pkl`` / ``.pt`` files).
    """
    folder = _model_dir(path)
    src = Path(path)
    if src.is_file():
        raise CheckpointError(
            f"{src} is a file; load_generator expects a model folder. Convert official weights first: "
            f"latentstudio convert {src} --out <folder>"
        )
    cfg = read_model_config(folder)
    if cfg["model_type"] != "stylegan2":
        raise CheckpointError(f"{folder} holds a {cfg['model_type']!r} model, not a StyleGAN2 generator")
    return Generator.from_pretrained(folder, map_location=map_location)


def load_discriminator(path: str | Path, *, map_location: str | torch.device = "cpu") -> Discriminator:
    """Load ``discriminator.safetensors`` of a StyleGAN2 model folder (eval mode).

    Raises:
        CheckpointError: the folder has no discriminator, a malformed file, or tensors that do not match the
            config (one line naming the file and the tensor).
    """
    folder = _model_dir(path)
    cfg = read_model_config(folder)
    f = folder / DISCRIMINATOR_FILE
    if not f.is_file():
        raise CheckpointError(f"{folder} has no {DISCRIMINATOR_FILE} (converted files keep it only when the "
                              "source had a discriminator; trained runs always do)")
    config = StyleGAN2Config.from_dict(cfg["config"], source=str(folder / "config.json"))
    d = Discriminator(config)
    state = read_weights(f, expected=d.state_dict(), device=map_location)  # sizes checked before loading
    try:
        d.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{f} does not match the config in {folder / 'config.json'}: "
                              f"{str(exc).splitlines()[0]}") from None
    return d.eval()


def save_model(
    path: str | Path,
    generator: Generator,
    discriminator: Discriminator | None = None,
    *,
    meta: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a StyleGAN2 model folder: ``config.json`` + ``model.safetensors`` (+ ``discriminator.safetensors``).

    The folder is assembled in a temporary sibling and renamed into place
    (:func:`latentstudio.io.atomic.atomic_dir`).

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_model_files(tmp, generator, meta=meta)
        if discriminator is not None:
            state = {k: v.detach().cpu().contiguous().clone() for k, v in unwrap(discriminator).state_dict().items()}
            save_file(state, str(tmp / DISCRIMINATOR_FILE))
    return path
