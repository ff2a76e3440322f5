"""The one report writer of every evaluator, and the one stamp of its values.

Each value an evaluator computes is appended to ``<out_dir>/metrics.jsonl`` as a
:class:`~latentstudio.metrics.records.MetricRecord` (extractor, weights hash, image counts, reference
split, source, timestamp) by a :class:`Recorder`; :func:`write_report` renders ``report.md`` from
provenance lines, tables of those records and pictures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from latentstudio.io.atomic import write_text
from latentstudio.io.checkpoint import library_versions
from latentstudio.metrics.records import METRICS_FILE, MetricRecord, append_record, read_records

#: Footer of every report.
FOOTER = ("All values are also in `metrics.jsonl` (one JSON record per value, with extractor, weights hash,\n"
          "image counts, reference split and resize rule).")


_UNSET: Any = object()


def fmt(v: Any) -> str:
    """A value as reports show it: floats with 4 significant digits (``%.3e`` from 1e4), None as ``n/a``."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


#: A spread below this fraction of the value (or of 1e-6 for values near 0) is rounding noise, not spread.
STD_RELATIVE_FLOOR = 1e-6


def meaningful_std(value: Any, std: Any) -> bool:
    """True when ``std`` is a spread worth showing beside ``value``: a number, not NaN, and at least
    :data:`STD_RELATIVE_FLOOR` of ``max(|value|, 1e-6)`` (KID over identical subsets gives 1e-14 noise)."""
    if not isinstance(std, int | float) or math.isnan(std) or not std:
        return False
    scale = abs(value) if isinstance(value, int | float) and not math.isnan(value) else 0.0
    return abs(std) >= STD_RELATIVE_FLOOR * max(scale, 1e-6)


def fmt_value(row: dict[str, Any]) -> str:
    """``value ± std`` of a record (the std only when it is meaningful, see :func:`meaningful_std`)."""
    std = row.get("std")
    return fmt(row["value"]) + (f" ± {fmt(std)}" if meaningful_std(row["value"], std) else "")


class Recorder:
    """Appends stamped records to ``<out_dir>/metrics.jsonl`` and keeps them (as dicts) for the report.

    Args:
        out_dir: report folder.
        reference: reference split of every record, e.g. ``"digits/test"``.
        num_real: reference examples of every record (None: not applicable).
        extractor: the feature extractor stamped on records made ``with_extractor``.
        extra: fields added to every record (``model``, ``seed`` ...).
    """

    def __init__(self, out_dir: Path, *, reference: str | None, num_real: int | None, extractor: Any = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.path = Path(out_dir) / METRICS_FILE
        self.reference, self.num_real, self.extractor = reference, num_real, extractor
        self.extra = dict(extra or {})
        self.rows: list[dict[str, Any]] = []

    def add(self, metric: str, value: float, source: str | None, num_generated: int | None = None,
            std: float | None = None, *, with_extractor: bool = False, extractor: str | None = None,
            num_real: Any = _UNSET, reference: Any = _UNSET, **extra: Any) -> dict[str, Any]:
        """Stamp and append one value; returns the record as written.

        Args:
            metric: result key (``fid_clf``, ``recon_mse``, ``nll`` ...).
            value: the value (float; non-finite values are written as null plus ``<key>_nonfinite``).
            source: what was evaluated (a sampler, ``reconstruction``, ``test (binarised)`` ...).
            num_generated: generated / evaluated examples.
            std: spread of the value (KID, IS), or None.
            with_extractor: stamp the recorder's extractor (name, weights hash, resize rule).
            extractor: an extractor / distance name to stamp instead (e.g. PPL's distance).
            num_real / reference: override the recorder's (None allowed).
            **extra: further fields.

        Raises:
            ConfigError: an extra field collides with a standard field.
        """
        fields = {"source": source, "num_generated": num_generated, "std": std,
                  "num_real": self.num_real if num_real is _UNSET else num_real,
                  "reference": self.reference if reference is _UNSET else reference,
                  "extra": {**self.extra, **extra}}
        if with_extractor and self.extractor is not None:
            rec = MetricRecord.from_extractor(metric, value, self.extractor, **fields)
        else:
            rec = MetricRecord(metric=metric, value=value, extractor=extractor, **fields)
        append_record(self.path, rec)
        row = rec.to_dict()
        self.rows.append(row)
        return row

    def find(self, metric: str, source: str | None = None) -> dict[str, Any] | None:
        """The last record of ``metric`` (and ``source`` when given), or None."""
        for r in reversed(self.rows):
            if r["metric"] == metric and (source is None or r.get("source") == source):
                return r
        return None


def records_table(rows: Iterable[dict[str, Any]], notes: dict[str, str] | None = None, *,
                  note_fn: Any = None) -> list[str]:
    """Markdown table ``| metric | source | value | notes |`` of records (``notes`` by metric, or ``note_fn(row)``)."""
    lines = ["| metric | source | value | notes |", "|---|---|---|---|"]
    for r in rows:
        note = note_fn(r) if note_fn is not None else (notes or {}).get(r["metric"], "")
        lines.append(f"| {r['metric']} | {r.get('source') or ''} | {fmt_value(r)} | {note} |")
    return lines


def pivot_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str], titles: dict[str, str] | None = None
                ) -> list[str]:
    """Markdown table with one row per source and one column per metric of ``metrics`` that occurs."""
    by_source: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["metric"] in metrics:
            by_source.setdefault(r["source"], {})[r["metric"]] = r
    cols = [m for m in metrics if any(m in v for v in by_source.values())]
    lines = ["| source | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for source, vals in by_source.items():
        cells = ["" if vals.get(m) is None else fmt_value(vals[m]) for m in cols]
        lines.append(f"| {(titles or {}).get(source, source)} | " + " | ".join(cells) + " |")
    return lines


def pictures(items: Iterable[tuple[str, str]], *, headings: bool = False) -> list[str]:
    """Markdown image links ``![title](file)`` (each under a ``###`` heading when ``headings``)."""
    lines: list[str] = []
    for title, file in items:
        lines += ([f"### {title}", ""] if headings else []) + [f"![{title}]({file})", ""]
    return lines


def versions_line() -> str:
    """``- versions: torch x, ...`` of the libraries that decide the numbers."""
    return f"- versions: {', '.join(f'{k} {v}' for k, v in library_versions().items())}"


def trained_on(meta: dict[str, Any]) -> str:
    """What ``meta.json`` says about the training data, in words."""
    ds = meta.get("dataset", {})
    if not ds:
        return "training data not recorded" + (f", seed {meta['seed']}" if meta.get("seed") is not None else "")
    size = ds.get("size", ds.get("sizes"))
    if isinstance(size, dict):  # examples per split of a stroke file
        size = ", ".join(f"{v} {k}" for k, v in size.items())
    text = (f"trained on {ds.get('name')} {ds.get('split', '')}".rstrip() + f" ({size} examples, fingerprint "
            f"`{ds.get('fingerprint')}`")
    if meta.get("binarize"):
        text += f", binarize {meta['binarize']}"
    return text + f"), seed {meta.get('seed')}"


def write_report(out_dir: str | Path, *, title: str, provenance: Sequence[str],
                 sections: Sequence[tuple[str, Sequence[str]]], footer: str = FOOTER) -> Path:
    """Write ``<out_dir>/report.md``: ``# title``, the provenance lines (markdown list items), then each
    ``## heading`` with its lines, then ``footer``; returns its path (replaced atomically)."""
    lines = [f"# {title}", "", *provenance]
    for heading, body in sections:
        lines += ["", f"## {heading}", "", *body]
    if footer:
        lines += ["", footer]
    return write_text(Path(out_dir) / "report.md", "\n".join(lines).rstrip("\n") + "\n", overwrite=True)


def load_records(report: str | Path) -> list[dict[str, Any]]:
    """The records of the ``metrics.jsonl`` next to ``report`` (a ``report.md`` path)."""
    return read_records(Path(report).parent)


__all__ = ["Recorder", "fmt", "load_records", "pictures", "pivot_table", "records_table", "write_report"]
