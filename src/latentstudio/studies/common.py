"""Pieces shared by the studies: budgets, data, feature extractors, statistics and report sections.

Every study (``fid-repeats``, ``fid-shuffle``, ``training-subsets``, ``samplers``) is a function
``run_<study>(...)`` that builds a :class:`~latentstudio.studies.runner.Study` whose *protocol* holds
everything that fixes its numbers (dataset fingerprints, extractor weights hash, sizes, seeds,
budget, model), computes its cells resumably and renders ``report.md`` from ``results.jsonl``.

Budget syntax (``--budget``): ``5ep`` (epochs), ``10min`` (wall-clock minutes) or both, ``5ep,10min``
(whichever ends first). See :func:`parse_budget` and :meth:`Budget.stage_configs`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentstudio.data import load_images
from latentstudio.errors import ConfigError, DataError
from latentstudio.metrics import (
    FID_MIN_SAMPLES,
    BiasedMetricWarning,
    fid_from_features,
    get_classifier,
    load_inception,
)

__all__ = [
    "SEED_TABLE1",
    "SEED_TABLE2",
    "SEED_TABLE5",
    "Budget",
    "StudyData",
    "build_study_extractor",
    "describe_extractor",
    "device_for",
    "figure_markdown",
    "is_monotonic",
    "load_study_data",
    "mean_var",
    "parse_budget",
    "quiet_small_sample_warning",
]

#: The seed's table 1 (CIFAR-10, Inception FID, 10,000 test images; mean, variance of 10 runs).
SEED_TABLE1: dict[int, tuple[float, float]] = {
    10: (272.123, 85.793), 20: (236.672, 61.045), 40: (197.087, 22.918), 80: (156.184, 17.338),
    160: (114.150, 0.970), 320: (76.921, 0.708), 640: (46.918, 0.150), 1280: (25.600, 0.0640),
    2560: (14.923, 0.011), 5120: (7.746, 0.001), 10000: (5.212, 0.0003),
}
#: The DRAW thesis' MNIST sanity pair (Inception FID): first vs second 1000 test images; 1000 vs uniform noise.
SEED_SANITY = {"split-halves": 11.13, "noise": 431.4}
#: The seed's table 2 (CIFAR-10, Inception FID; mean, variance) by number of tiles k.
SEED_TABLE2: dict[int, tuple[float, float]] = {
    2: (8.404, 0.006), 4: (35.279, 0.044), 16: (103.580, 0.052), 64: (236.659, 0.102),
    256: (300.193, 0.061), 1024: (341.631, 0.058),
}
#: The seed's table 5 (CIFAR-10, Inception FID): rows -> (N(0,I), GMM-10, reconstruction).
SEED_TABLE5: dict[str, tuple[float | None, float | None, float | None]] = {
    "VAE": (98.459, 83.037, 18.078),
    "VAE-H": (117.867, 100.126, 37.507),
    "VAE-RL": (116.931, 98.609, 38.640),
    "VAE-MD": (118.391, 103.456, 40.947),
    "VAE-2STG": (92.394, None, None),
    "VAE-H-2STG": (120.898, None, None),
    "VAE-RL-2STG": (115.398, None, None),
    "VAE-MD-2STG": (111.656, None, None),
}


# --------------------------------------------------------------------------------------------
# Budget
# --------------------------------------------------------------------------------------------

#: Second-stage epochs per first-stage epoch when no preset ratio is given (the seed: 600 + 1200 epochs).
STAGE2_EPOCH_FACTOR = 2.0
#: Share of a minutes budget given to the second stage (its epochs are far cheaper than the first's).
STAGE2_MINUTES_SHARE = 0.2
#: Epoch cap used when only minutes are given (training then stops on the clock).
_UNBOUNDED_EPOCHS = 1_000_000


@dataclass(frozen=True)
class Budget:
    """A training budget: ``epochs`` and/or ``minutes`` (wall clock); training stops at the first reached.

    ``str(budget)`` gives the canonical text (``"5ep"``, ``"10min"``, ``"5ep,10min"``).
    """

    epochs: int | None = None
    minutes: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.minutes is None:
            raise ConfigError("budget: give epochs (e.g. 5ep), minutes (e.g. 10min) or both (5ep,10min)")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"budget: epochs must be >= 1, got {self.epochs}")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"budget: minutes must be > 0, got {self.minutes}")

    def __str__(self) -> str:
        parts = []
        if self.epochs is not None:
            parts.append(f"{self.epochs}ep")
        if self.minutes is not None:
            parts.append(f"{self.minutes:g}min")
        return ",".join(parts)

    def train_config(self) -> dict[str, Any]:
        """``{"epochs", "max_minutes"}`` for one :class:`~latentstudio.training.config.TrainConfig`."""
        return {"epochs": self.epochs if self.epochs is not None else _UNBOUNDED_EPOCHS,
                "max_minutes": self.minutes}

    def stage_configs(
        self, stage2: Budget | None = None, epoch_ratio: float = STAGE2_EPOCH_FACTOR
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Stage-1 and stage-2 ``{"epochs", "max_minutes"}`` of a two-stage VAE under this budget.

        Without an explicit ``stage2`` budget: an epoch budget E gives stage 1 E epochs and stage 2
        ``round(epoch_ratio * E)`` (the training studies pass the preset's own stage-2 / stage-1 epoch
        ratio: 10 for ``cpu``, 2 for ``paper`` as the seed's 600 + 1200); a minutes budget M gives stage 1
        ``0.8 M`` and stage 2 ``0.2 M`` minutes; with both, both rules apply and the first limit reached stops.
        """
        if stage2 is not None:
            return self.train_config(), stage2.train_config()
        s1 = Budget(self.epochs, None if self.minutes is None else self.minutes * (1 - STAGE2_MINUTES_SHARE))
        s2 = Budget(None if self.epochs is None else max(1, round(self.epochs * epoch_ratio)),
                    None if self.minutes is None else self.minutes * STAGE2_MINUTES_SHARE)
        return s1.train_config(), s2.train_config()


_BUDGET_PART = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ep|epoch|epochs|min|mins|minutes|m)\s*$", re.IGNORECASE)


def parse_budget(text: str | Budget | None) -> Budget | None:
    """``"5ep"`` / ``"10min"`` / ``"5ep,10min"`` -> :class:`Budget` (None stays None).

    Raises:
        ConfigError: for anything else, with the accepted forms.
    """
    if text is None or isinstance(text, Budget):
        return text
    epochs: int | None = None
    minutes: float | None = None
    for part in str(text).split(","):
        m = _BUDGET_PART.match(part)
        if not m:
            raise ConfigError(f"budget {text!r}: use epochs like 5ep, minutes like 10min, or both like 5ep,10min")
        value, unit = m.group(1), m.group(2).lower()
        if unit.startswith("ep"):
            if "." in value:
                raise ConfigError(f"budget {text!r}: epochs must be a whole number")
            epochs = int(value)
        else:
            minutes = float(value)
    return Budget(epochs, minutes)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class StudyData:
    """The two splits a study uses.

    Attributes:
        train: the training split (``ImageData``, images ``uint8 [N, C, H, W]``): the pool of images
            to draw sets from, and what models and the classifier extractor are trained on.
        test: the reference split for FID.
        spec: the data spec it came from (``name``, ``options``, ``limit``; JSON-able).
        note: how the splits were formed when the dataset has no test split, else "".
    """

    train: Any
    test: Any
    spec: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def name(self) -> str:
        return self.train.name

    def protocol(self) -> dict[str, Any]:
        """Dataset name, options, sizes, image shape and both fingerprints (for the study protocol)."""
        return {
            "name": self.train.name,
            "options": dict(self.spec.get("options") or {}),
            "limit": self.spec.get("limit"),
            "train": {"split": self.train.split, "size": len(self.train), "fingerprint": self.train.fingerprint()},
            "reference": {"split": self.test.split, "size": len(self.test), "fingerprint": self.test.fingerprint()},
            "image_shape": list(self.train.image_shape),
            **({"note": self.note} if self.note else {}),
        }


def load_study_data(spec: dict[str, Any] | None = None, *, train=None, test=None, seed: int = 0) -> StudyData:
    """Load the train and test splits of a dataset of the data layer (or wrap given ``ImageData``).

    Args:
        spec: ``{"name", "root", "options", "limit", "download", "strict"}`` as the CLI's data options
            give it; ``limit`` applies to each split.
        train / test: already loaded splits (tests, notebooks); ``spec`` is then only recorded.
        seed: seed of the fallback split below.

    A dataset without a test split (a ``folder`` without a split column) is split here: a seeded
    permutation of the training images, the last fifth is the reference (noted in the report).

    Raises:
        DataError: missing files, or images of different shapes in the two splits.
    """
    spec = dict(spec or {})
    note = ""
    if train is None:
        if not spec.get("name"):
            raise DataError("no dataset given: pass --data NAME (digits, mnist, fashion-mnist, cifar10, celeba, folder)")
        kw = {"root": spec.get("root"), "download": spec.get("download", False), "strict": spec.get("strict", False),
              "limit": spec.get("limit"), **(spec.get("options") or {})}
        train = load_images(spec["name"], "train", **kw)
        if test is None:
            try:
                test = load_images(spec["name"], "test", **kw)
            except DataError:
                test = None
    if test is None:
        n = len(train)
        if n < 10:
            raise DataError(f"dataset {train.name!r} has {n} images and no test split; need at least 10 to split")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        cut = n - n // 5
        train, test = train.subset(perm[:cut].sort().values), train.subset(perm[cut:].sort().values)
        test.split = "test"
        note = (f"no test split: a seeded permutation (seed {seed}) of the {n} images was cut into "
                f"{cut} training and {n - cut} reference images")
    if train.image_shape != test.image_shape:
        raise DataError(f"dataset {train.name!r}: train images are {list(train.image_shape)} but test images "
                        f"{list(test.image_shape)}; pass a --data-option that gives both splits one size")
    spec.setdefault("name", train.name)
    return StudyData(train=train, test=test, spec={k: spec.get(k) for k in ("name", "options", "limit")}, note=note)


# --------------------------------------------------------------------------------------------
# Extractors
# --------------------------------------------------------------------------------------------


def build_study_extractor(
    name: Any,
    data: StudyData,
    *,
    budget: Budget | None = None,
    download: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """The feature extractor of a study.

    Args:
        name: ``"inception"`` (standard FID: Inception-v3 with the TF 2015-12-05 weights, looked up
            in the torch hub cache; ``download`` fetches them), ``"classifier"`` (the project CNN
            trained on ``data.train``, cached; offline) or a ready
            :class:`~latentstudio.metrics.extractors.FeatureExtractor` (used as is).
        budget: classifier training epochs (``Nep``); minutes are refused because the cached
            classifier must be a reproducible function of its recipe. None: the default recipe.
        device: where the extractor runs.

    Raises:
        ExtractorWeightsMissing: Inception weights absent (names the file, folder, URL and the fix).
        ConfigError: a budget for the Inception extractor, or a minutes budget for the classifier.
        DataError: the classifier needs labels.
    """
    if not isinstance(name, str):
        return name.to(device)
    if name == "inception":
        if budget is not None:
            raise ConfigError("--budget sets the training of the classifier extractor; the inception extractor is "
                              "pretrained: drop --budget")
        return load_inception(download=download, device=device)
    if name == "classifier":
        epochs = None
        if budget is not None:
            if budget.minutes is not None:
                raise ConfigError(
                    f"budget {budget}: the classifier extractor is trained for a whole number of epochs (its cache "
                    "and the study's numbers must not depend on machine speed); give epochs, e.g. --budget 3ep")
            epochs = budget.epochs
        return get_classifier(data.train, test=data.test, epochs=epochs, progress=progress).to(device)
    raise ConfigError(f"unknown extractor {name!r}; use 'inception' or 'classifier'")


def describe_extractor(ext) -> dict[str, Any]:
    """What identifies an extractor's numbers: name, feature width, weights hash (+ recipe for the classifier)."""
    out: dict[str, Any] = {"name": ext.name, "num_features": int(ext.num_features), "weights_hash": ext.weights_hash}
    if getattr(ext, "standard_weights", None) is not None:
        out["standard_weights"] = bool(ext.standard_weights)
    config = getattr(ext, "config", None)
    if isinstance(config, dict) and "epochs" in config:
        out["recipe"] = {k: config[k] for k in ("epochs", "batch_size", "lr", "seed") if k in config}
    return out


def extractor_statement(ext) -> str:
    """A sentence naming the extractor and whether its numbers compare with published FIDs."""
    if ext.name == "inception":
        std = getattr(ext, "standard_weights", True)
        return ("Inception-v3 pool3 features (2048-d), TF 2015-12-05 weights" +
                ("" if std else " **(non-standard weights file: values not comparable)**") +
                "; the metric is the standard FID.")
    acc = getattr(ext, "test_accuracy", None)
    acc_txt = f", test accuracy {acc:.4f}" if acc is not None else ""
    return (f"the project classifier (3-layer CNN trained on this dataset's training split{acc_txt}; "
            f"{ext.num_features}-d penultimate features, weights {ext.weights_hash}); values are `fid_clf`, "
            "**not comparable with Inception FIDs** (published numbers, the seed's tables).")


def device_for(accelerator: str) -> torch.device:
    """``cuda`` when ``accelerator`` is ``gpu``/``cuda``/``auto`` and a GPU is present, else ``cpu``."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@contextmanager
def quiet_small_sample_warning():
    """Silence the per-value small-sample FID warning (a study states it once in its report)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BiasedMetricWarning)
        yield


def fid(f_real: torch.Tensor, f_fake: torch.Tensor) -> float:
    """FID between two feature sets (:func:`latentstudio.metrics.fid_from_features`), small-sample warning off."""
    with quiet_small_sample_warning():
        return fid_from_features(f_real, f_fake)


# --------------------------------------------------------------------------------------------
# Statistics and report pieces
# --------------------------------------------------------------------------------------------


def mean_var(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """``(mean, variance, std)`` of repeated values; variance and std are the unbiased (n - 1) estimates,
    None for a single value."""
    vals = [float(v) for v in values]
    if not vals:
        return math.nan, None, None
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, None, None
    var = sum((v - m) ** 2 for v in vals) / (len(vals) - 1)
    return m, var, math.sqrt(var)


def is_monotonic(values: Sequence[float], *, increasing: bool) -> tuple[bool, list[int]]:
    """Whether ``values`` strictly increase (or decrease); also the indices i where step i -> i+1 breaks it."""
    bad = [i for i in range(len(values) - 1)
           if (values[i + 1] <= values[i] if increasing else values[i + 1] >= values[i])]
    return not bad, bad


def figure_markdown(title: str, filename: str) -> str:
    """``![title](filename)``."""
    return f"![{title}]({filename})"


def bullet_list(items: Iterable[str]) -> str:
    return "\n".join(f"- {s}" for s in items)


def small_sample_note(n_real: int, n_fake: int) -> str | None:
    """A sentence for reports computed on fewer than 2048 images per side (biased FID), else None."""
    n = min(n_real, n_fake)
    if n >= FID_MIN_SAMPLES:
        return None
    return (f"FID here uses {n_real} reference and {n_fake} evaluated images (< {FID_MIN_SAMPLES}): values are "
            "biased upwards and comparable only with values at the same sizes.")


def render_report(
    study,
    title: str,
    intro: str,
    sections: Sequence[tuple[str, str]],
    *,
    differences: Sequence[str],
    command: str | None,
    extra_stamp: Sequence[str] = (),
) -> Path:
    """Write ``report.md``: title, intro, command, protocol stamp, differences from the seed, sections.

    Args:
        study: the :class:`~latentstudio.studies.runner.Study`.
        sections: ``(heading, markdown body)`` pairs.
        differences: sentences stating where the protocol differs from the seed's.
        command: the command line that (re)produces the study, or None.
    """
    parts = [f"# {title}", "", intro, ""]
    if command:
        parts += ["## Command", "", "```", command, "```", "",
                  "Re-running it in the same `--out` folder skips every finished cell and re-renders this report.", ""]
    parts += ["## Protocol", "", *study.stamp(list(extra_stamp)), ""]
    parts += ["## Where this protocol differs from the seed's", "", bullet_list(differences), ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    return study.write_report("\n".join(parts).rstrip() + "\n")


def data_notes(data: StudyData) -> list[str]:
    """The report sentences on which data a study used: the ``--limit`` subset and a derived split."""
    out = []
    limit = data.spec.get("limit")
    if limit:
        out.append(f"Data subset: only the first {limit} images of each split are used (--limit {limit}): "
                   f"{len(data.train)} training and {len(data.test)} test images.")
    if data.note:
        out.append(f"Splits: {data.note}.")
    return out


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (portable records), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(Path(path).resolve())
