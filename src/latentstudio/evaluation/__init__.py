"""Evaluation of a trained model of any family: one entry point, one evaluator per family.

Usage::

    from latentstudio.evaluation import evaluate
    report = evaluate("runs/00003-two-stage-vae-mnist", extractor="classifier")   # Path of report.md

:func:`evaluate` loads the model (a folder, or a loaded model) and dispatches on ``model.model_type``
through :data:`EVALUATORS`:

- ``vae`` / ``two-stage-vae`` / ``draw``: :func:`latentstudio.evaluation.images.evaluate_images` (FID/KID/IS
  per sampler, class accuracy, reconstruction, latent diagnostics, NLL, family extras);
- ``sketch-rnn``: :func:`latentstudio.evaluation.sketches.evaluate_sketches` (L_R, L_s, L_p, L_KL in nats);
- ``stylegan2``: :func:`latentstudio.evaluation.stylegan2.evaluate_stylegan2` (FID/KID and PPL).

Every value is one stamped record of ``<out_dir>/metrics.jsonl``
(:class:`~latentstudio.metrics.records.MetricRecord`); ``report.md`` is written by
:func:`latentstudio.evaluation.report.write_report`.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentstudio.config import _override_value
from latentstudio.data.spec import DataSpec
from latentstudio.errors import ConfigError
from latentstudio.evaluation.common import (
    check_extractor_name,
    data_spec_for,
    image_metric_values,
    load_extractor,
    load_split,
)
from latentstudio.evaluation.images import DRAW_FAMILY, VAE_FAMILY, evaluate_images, summarize_records
from latentstudio.evaluation.report import load_records
from latentstudio.evaluation.sketches import evaluate_sketches, sketch_results, stroke_losses
from latentstudio.evaluation.stylegan2 import evaluate_stylegan2
from latentstudio.registry import Registry
from latentstudio.samplers import load_model_with_samplers


@dataclass(frozen=True)
class Evaluator:
    """A family's evaluator.

    Attributes:
        run: ``run(model, data, *, extractor, n_samples, out_dir, seed, download_weights, progress,
            **options) -> Path`` of ``report.md``.
        options: the family options and their defaults (anything else is refused).
        help: one line: what it measures.
    """

    run: Callable[..., Path]
    options: dict[str, Any]
    help: str


#: ``model_type`` -> :class:`Evaluator`.
EVALUATORS: Registry[Evaluator] = Registry("evaluator")

_VAE = Evaluator(functools.partial(evaluate_images, family=VAE_FAMILY), dict(VAE_FAMILY.options),
                 "FID/KID/IS per sampler, class accuracy, reconstruction, latent diagnostics, gammas, NLL")
EVALUATORS.register("vae")(_VAE)
EVALUATORS.register("two-stage-vae")(_VAE)
EVALUATORS.register("draw")(Evaluator(
    functools.partial(evaluate_images, family=DRAW_FAMILY), dict(DRAW_FAMILY.options),
    "FID/KID/IS of prior samples, class accuracy, reconstruction, per-step KL and latents, NELBO, NLL"))
EVALUATORS.register("sketch-rnn")(Evaluator(evaluate_sketches, {"batch_size": 100},
                                            "test L_R, L_s, L_p, L_KL in nats"))
EVALUATORS.register("stylegan2")(Evaluator(
    evaluate_stylegan2, {"classifier_label": None, "truncation_psi": 1.0, "ppl_samples": 1000, "perceptual": None},
    "FID/KID against the training images and perceptual path length"))


def evaluate(
    model: Any,
    data: DataSpec | dict[str, Any] | str | None = None,
    *,
    extractor: str = "classifier",
    n_samples: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    **family_options: Any,
) -> Path:
    """Evaluate a model with its family's evaluator; write ``metrics.jsonl`` + ``report.md`` (+ pictures).

    Args:
        model: a loaded :class:`~latentstudio.models.base.GenerativeModel`, or a model / run folder.
        data: the reference data: a :class:`~latentstudio.data.DataSpec`, a spec dict, a dataset name or a
            stroke file (default: the dataset the model was trained on; a dict without ``name`` only sets
            ``root``, ``limit``, ``options`` ... of that dataset).
        extractor: features of FID/KID/IS: ``classifier`` (the project classifier, values ``*_clf``) or
            ``inception`` (standard weights). Unused for sketch models.
        n_samples: generated images per source (default: the test-set size; StyleGAN2: min(10000, data)).
        out_dir: report folder (default: under the model's run, ``eval/``).
        seed: seed of every random draw of the evaluation.
        download_weights: let Inception / LPIPS fetch missing weights.
        progress: show progress bars.
        **family_options: the family's options (``EVALUATORS.get(model_type).options``): ``samplers``,
            ``nll_samples``, ``nll_images`` (VAE family); ``temperature``, ``nll_samples``, ``nll_images``
            (DRAW); ``batch_size`` (sketch-rnn); ``classifier_label``, ``truncation_psi``, ``ppl_samples``,
            ``perceptual`` (StyleGAN2). None values mean "the default"; strings are converted to the type of
            the option's default (``"50"`` -> 50).

    Returns:
        Path of ``report.md``.

    Raises:
        ConfigError: an unknown family option (the family's options are named), a value of the wrong
            type, or an unknown extractor.
        UnknownNameError: a model type without evaluator. CheckpointError: not a model folder.
        DataError / ExtractorWeightsMissing: with the fix in the message.
    """
    if isinstance(model, str | Path):
        model = load_model_with_samplers(model)
    ev = EVALUATORS.get(model.model_type)
    given = {k: v for k, v in family_options.items() if v is not None}
    unknown = sorted(k for k in given if k not in ev.options)
    if unknown:
        raise ConfigError(f"{model.model_type} evaluation has no option {unknown[0]!r}; its options: "
                          f"{', '.join(ev.options) or 'none'}")
    for k, v in given.items():  # command-line values arrive as strings
        if isinstance(v, str) and ev.options[k] is not None:
            given[k] = _override_value(ev.options[k], v, f"{model.model_type} evaluation option {k}")
    check_extractor_name(extractor)
    folders = _report_folders(model, out_dir)
    before = {f: set(f.iterdir()) if f.is_dir() else None for f in folders}
    try:
        return ev.run(model, data, extractor=extractor, n_samples=n_samples, out_dir=out_dir, seed=seed,
                      download_weights=download_weights, progress=progress, **given)
    except BaseException:
        _remove_empty_new(before)
        raise


def _report_folders(model: Any, out_dir: str | Path | None) -> list[Path]:
    """The folders an evaluation may create: ``out_dir``, or ``<run>/eval`` (where the numbered report goes)."""
    if out_dir is not None:
        return [Path(out_dir)]
    meta = getattr(model, "meta", None) or {}
    path = getattr(model, "path", None)
    if meta.get("run_dir"):
        return [Path(meta["run_dir"]) / "eval"]
    return [Path(path).parent / "eval"] if path else []


def _remove_empty_new(before: dict[Path, set[Path] | None]) -> None:
    """After a failed evaluation: remove the folders it created that hold no file (so no empty numbered
    ``eval/NNNNN-...`` folder is left); folders with results and folders that were there before stay."""
    for folder, children in before.items():
        if not folder.is_dir():
            continue
        new = [folder] if children is None else [c for c in folder.iterdir() if c not in children and c.is_dir()]
        for f in new:
            if not any(p.is_file() for p in f.rglob("*")):
                shutil.rmtree(f, ignore_errors=True)


__all__ = [
    "EVALUATORS",
    "Evaluator",
    "data_spec_for",
    "evaluate",
    "image_metric_values",
    "load_extractor",
    "load_records",
    "load_split",
    "sketch_results",
    "stroke_losses",
    "summarize_records",
]
