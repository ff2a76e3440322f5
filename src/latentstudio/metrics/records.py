"""Metric result names and the ``metrics.jsonl`` log.

Every metric value the project writes is one JSON line stamped with what is needed to judge
whether two numbers are comparable: the feature extractor and a hash of its weights, how images
were resized, how many real and generated images were used, the reference split and the
sampler/source of the generated images.

Inception-based and classifier-based metrics are kept under different names (``fid`` vs
``fid_clf``): a classifier FID is not comparable with published Inception FIDs (SPEC "Metrics").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latentstudio.errors import ConfigError
from latentstudio.io.atomic import append_jsonl, read_jsonl

KEY_FID = "fid"
KEY_FID_CLF = "fid_clf"
KEY_KID = "kid"
KEY_KID_CLF = "kid_clf"
KEY_IS = "is"
KEY_IS_CLF = "is_clf"
KEY_RECON_MSE = "recon_mse"
KEY_RECON_BCE = "recon_bce"
KEY_NLL = "nll"
KEY_MAHALANOBIS = "mahalanobis"
KEY_VARIANCE_LAW = "variance_law"
KEY_INACTIVE_LATENTS = "inactive_latents"
KEY_CLASSIFIER_ACCURACY = "classifier_accuracy"

METRICS_FILE = "metrics.jsonl"

#: Extractor name -> (fid, kid, is) result keys.
_KEYS_BY_EXTRACTOR: dict[str, tuple[str, str, str]] = {
    "inception": (KEY_FID, KEY_KID, KEY_IS),
    "classifier": (KEY_FID_CLF, KEY_KID_CLF, KEY_IS_CLF),
}


def _keys(extractor_name: Any) -> tuple[str, str, str]:
    name = getattr(extractor_name, "name", extractor_name)
    try:
        return _KEYS_BY_EXTRACTOR[name]
    except KeyError:
        known = ", ".join(sorted(_KEYS_BY_EXTRACTOR))
        raise ConfigError(f"no metric names are defined for feature extractor {name!r}; known: {known}") from None


def fid_key(extractor_name: str) -> str:
    """Result key of an FID computed with ``extractor_name``: ``"fid"`` (inception) or ``"fid_clf"`` (classifier).

    A :class:`~latentstudio.metrics.extractors.FeatureExtractor` (anything with ``.name``) is accepted too.

    Raises:
        ConfigError: for an extractor name without defined result keys.
    """
    return _keys(extractor_name)[0]


def kid_key(extractor_name: str) -> str:
    """Result key of a KID: ``"kid"`` (inception) or ``"kid_clf"`` (classifier). See :func:`fid_key`."""
    return _keys(extractor_name)[1]


def is_key(extractor_name: str) -> str:
    """Result key of an Inception Score: ``"is"`` (inception) or ``"is_clf"`` (classifier). See :func:`fid_key`."""
    return _keys(extractor_name)[2]


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. ``2025-01-31T12:00:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class MetricRecord:
    """One metric value with the context needed to compare it with others.

    Attributes:
        metric: result key (``KEY_FID``, ``KEY_FID_CLF``, ...).
        value: the value (float). Non-finite floats (here or in ``extra``) are written as ``null``
            plus a ``<key>_nonfinite`` field (``"nan"``, ``"inf"``), keeping the file valid JSON.
        extractor: feature-extractor name (``"inception"``, ``"classifier"``) or None.
        weights_hash: sha256 prefix of the extractor weights, or None.
        num_real: number of real (reference) images, or None.
        num_generated: number of generated/evaluated images, or None.
        reference: reference split, e.g. ``"digits/test"``, or None.
        resize_rule: how images were resized/converted for the extractor, or None.
        source: sampler or source of the evaluated images (``"prior"``, ``"gmm10"``, a path ...), or None.
        std: spread of the value when it has one (KID, IS over subsets/splits), or None.
        timestamp: UTC ISO 8601 time of creation.
        extra: any further fields (written at the top level of the JSON object).
    """

    metric: str
    value: float
    extractor: str | None = None
    weights_hash: str | None = None
    num_real: int | None = None
    num_generated: int | None = None
    reference: str | None = None
    resize_rule: str | None = None
    source: str | None = None
    std: float | None = None
    timestamp: str = field(default_factory=utc_now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_extractor(cls, metric: str, value: float, extractor: Any, **fields: Any) -> MetricRecord:
        """A record whose extractor, weights hash and resize rule come from ``extractor``'s attributes."""
        return cls(
            metric=metric,
            value=value,
            extractor=getattr(extractor, "name", None),
            weights_hash=getattr(extractor, "weights_hash", None),
            resize_rule=getattr(extractor, "resize_rule", None),
            **fields,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``metrics.jsonl`` (``extra`` merged at the top level).

        Raises:
            ConfigError: if a key of ``extra`` collides with a standard field.
        """
        out = asdict(self)
        extra = out.pop("extra")
        clash = sorted(set(extra) & set(out))
        if clash:
            raise ConfigError(f"metric record extra fields {clash} collide with standard fields")
        for key in ("value", "std"):
            if out[key] is not None:
                out[key] = float(out[key])  # tensors / numpy scalars -> float
        out.update(extra)
        return _finite_json(out)


def _finite_json(obj: dict[str, Any]) -> dict[str, Any]:
    """Replace top-level non-finite floats (invalid JSON) by None plus a ``<key>_nonfinite`` string."""
    out: dict[str, Any] = {}
    for key, v in obj.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[key] = None
            out[f"{key}_nonfinite"] = repr(v)
        else:
            out[key] = v
    return out


def _metrics_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".jsonl" else path / METRICS_FILE


def append_record(path: str | Path, record: MetricRecord | dict[str, Any]) -> Path:
    """Append ``record`` as one JSON line and return the file written.

    Args:
        path: a ``.jsonl`` file, or a folder (a run directory) in which ``metrics.jsonl`` is used.
        record: a :class:`MetricRecord`, or a plain dict (must hold ``metric`` and ``value``; a
            ``timestamp`` is added when missing).

    Raises:
        ConfigError: if a dict record lacks ``metric``/``value`` or extra fields collide.
    """
    if isinstance(record, MetricRecord):
        obj = record.to_dict()
    else:
        if "metric" not in record or "value" not in record:
            raise ConfigError("a metric record needs 'metric' and 'value' fields")
        obj = _finite_json({"timestamp": utc_now_iso(), **record})
    return append_jsonl(_metrics_path(path), obj)


def read_records(path: str | Path, metric: str | None = None) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (``path`` as in :func:`append_record`), optionally of one metric."""
    rows = read_jsonl(_metrics_path(path))
    return rows if metric is None else [r for r in rows if r.get("metric") == metric]
