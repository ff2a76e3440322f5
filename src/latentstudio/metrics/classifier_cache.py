"""Training-and-caching mechanics shared by the project's small classifiers.

A cached classifier is a folder ``cache_dir()/<kind>/<dataset name>-<data fingerprint>-<recipe key>/``
holding ``model.safetensors`` (the state dict, no pickle) and ``config.json`` (architecture, recipe,
dataset facts, accuracies). The recipe key is the first 12 hex digits of the sha256 of the recipe dict
as sorted-key JSON, so any change of architecture or training recipe gives a new folder; a change of
the training data changes the fingerprint.

Used by :func:`latentstudio.metrics.get_classifier` (the FID ``classifier`` extractor) and by the
studio's CelebA attribute classifier.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from tqdm.auto import tqdm

from latentstudio.errors import CheckpointError
from latentstudio.io.atomic import atomic_path, write_json
from latentstudio.paths import cache_dir

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "cached_or_trained",
    "classifier_folder",
    "load_classifier_files",
    "progress_bar",
    "recipe_key",
    "save_classifier_files",
    "state_bytes",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

T = TypeVar("T")


def recipe_key(recipe: dict[str, Any]) -> str:
    """12 hex digits: sha256 of ``recipe`` as sorted-key JSON (non-JSON values written with ``str``)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:12]


def classifier_folder(kind: str, data, recipe: dict[str, Any]) -> Path:
    """``cache_dir()/<kind>/<data.name>-<data.fingerprint()>-<recipe_key(recipe)>``.

    Args:
        kind: the cache sub-folder (``"classifiers"``, ``"attribute-classifiers"``).
        data: an ``ImageData`` (its ``name`` and ``fingerprint()`` are used).
        recipe: architecture + training recipe; every value that changes the weights belongs here.
    """
    return cache_dir() / kind / f"{data.name}-{data.fingerprint()}-{recipe_key(recipe)}"


def state_bytes(net: nn.Module) -> bytes:
    """The safetensors serialisation of ``net``'s state dict (CPU, contiguous tensors)."""
    return save_safetensors({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()})


def save_classifier_files(folder: str | Path, net: nn.Module, config: dict[str, Any], *, overwrite: bool = True) -> str:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (each atomically).

    Returns:
        The weights hash: the first 16 hex digits of the sha256 of the written ``model.safetensors``.

    Raises:
        RunExistsError: a file exists and ``overwrite`` is False.
    """
    folder = Path(folder)
    blob = state_bytes(net)
    with atomic_path(folder / WEIGHTS_FILE, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(blob)
    write_json(folder / CONFIG_FILE, config, overwrite=overwrite)
    return hashlib.sha256(blob).hexdigest()[:16]


def load_classifier_files(
    folder: str | Path,
    build: Callable[[dict[str, Any]], nn.Module],
    *,
    what: str = "classifier",
    fix: str = "train it again",
) -> tuple[nn.Module, dict[str, Any], str]:
    """Load a classifier saved by :func:`save_classifier_files`.

    Args:
        folder: the folder holding ``config.json`` and ``model.safetensors``.
        build: makes the (untrained) network from the loaded config.
        what, fix: used in the error messages (``"... is not a saved <what> ...; <fix>"``).

    Returns:
        ``(net, config, weights_hash)``: the network in eval mode with the saved weights, the config
        dict and the first 16 hex digits of the sha256 of ``model.safetensors``.

    Raises:
        CheckpointError: a missing file, unreadable JSON, a config the network cannot be built from, or
            weights whose tensor names or shapes differ from the network's (the first difference named).
    """
    folder = Path(folder)
    cfg_file, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder} is not a saved {what} ({CONFIG_FILE} + {WEIGHTS_FILE}); {fix}")
    try:
        config = json.loads(cfg_file.read_text())
        net = build(config)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_file} is not a valid {what} config ({type(exc).__name__}: {exc}); {fix}") from None
    try:
        blob = weights.read_bytes()
        state = load_safetensors(blob)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{weights} is not a readable safetensors file ({exc}); {fix}") from None
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = [k for k in sorted(set(expected) & set(got)) if expected[k] != got[k]]
        if wrong:
            detail = f"tensor {wrong[0]!r} has shape {list(got[wrong[0]])}, the config needs {list(expected[wrong[0]])}"
        elif missing:
            detail = f"tensor {missing[0]!r} is missing ({len(missing)} missing)"
        else:
            detail = f"unexpected tensor {extra[0]!r} ({len(extra)} unexpected)"
        raise CheckpointError(f"{weights} does not match the {what} config: {detail}; {fix}")
    net.load_state_dict(state)
    net.eval()
    return net, config, hashlib.sha256(blob).hexdigest()[:16]


def cached_or_trained(
    folder: Path | None,
    *,
    load: Callable[[Path], T],
    train: Callable[[], T],
    save: Callable[[Path, T], None],
    what: str = "classifier",
) -> tuple[T, bool]:
    """Load from ``folder`` when it holds a classifier, else ``train()`` and ``save(folder, result)``.

    Args:
        folder: the cache folder, or None for no caching (always trains, saves nothing).
        load: reads a classifier from a folder; any exception means the cache is unusable.
        train: trains a new classifier.
        save: writes a trained classifier into a folder.
        what: named in the warning about an unusable cache.

    Returns:
        ``(classifier, loaded)``: ``loaded`` is True when it came from the cache.

    Warns:
        UserWarning: the cache folder exists but cannot be loaded (it is retrained and overwritten).
    """
    if folder is not None and (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file():
        try:
            return load(folder), True
        except Exception as exc:  # noqa: BLE001 - any unreadable cache (json, safetensors, keys): retrain
            warnings.warn(f"{what} cache {folder} is unreadable ({exc}); retraining", stacklevel=3)
    result = train()
    if folder is not None:
        save(folder, result)
    return result, False


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm progress bar of ``total`` optimiser steps (a no-op bar when ``enabled`` is False)."""
    return tqdm(total=total, desc=desc, disable=not enabled)
