"""Resumable studies: a grid of cells, each computed once and appended to ``results.jsonl``.

A study directory holds::

    study.json       name, protocol (everything that fixes the numbers), versions, creation time
    results.jsonl    one JSON record per finished cell ({"cell": key, ...values, "seconds": s})
    report.md        tables and plots rendered from results.jsonl
    *.png            plots
    artifacts/       tensors a study reuses across cells and runs (features, rankings), safetensors

Running the same study again in the same directory skips every finished cell (so an interrupted
study resumes where it stopped); a different protocol in an existing directory is refused unless
``overwrite`` is given, so results of two protocols are never mixed.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from latentstudio.errors import LatentStudioError, RunExistsError
from latentstudio.io.atomic import append_jsonl, atomic_path, write_json, write_text
from latentstudio.io.checkpoint import library_versions

STUDY_FILE = "study.json"
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.md"
ARTIFACTS_DIR = "artifacts"


class Study:
    """A resumable study in ``out_dir``.

    Args:
        out_dir: the study directory (created if missing).
        name: study name, e.g. ``"fid-repeats"``.
        protocol: JSON-able dict of everything that determines the results (dataset and its
            fingerprint, extractor and its weights hash, seeds, budget, sizes). An existing
            directory must have been created with the same ``name`` and ``protocol``.
        overwrite: discard an existing directory's results (protocol mismatch or not).

    Raises:
        RunExistsError: ``out_dir`` holds a study with another name or protocol (fields named) and
            ``overwrite`` is False.
    """

    def __init__(self, out_dir: str | Path, name: str, protocol: dict[str, Any], *, overwrite: bool = False) -> None:
        self.dir = Path(out_dir)
        self.name = name
        self.protocol = json.loads(json.dumps(protocol))  # normalise tuples etc. as JSON would
        path = self.dir / STUDY_FILE
        if path.is_file() and not overwrite:
            saved = json.loads(path.read_text())
            if saved.get("name") != name or saved.get("protocol") != self.protocol:
                old = saved.get("protocol", {})
                diff = sorted(k for k in set(old) | set(self.protocol) if old.get(k) != self.protocol.get(k))
                raise RunExistsError(
                    f"{self.dir} holds study {saved.get('name')!r} with another protocol (differs in "
                    f"{diff or ['name']}); choose another --out folder or pass --overwrite to discard its results"
                )
            self.created = saved.get("created")
        else:
            if overwrite:
                for f in (RESULTS_FILE, REPORT_FILE):
                    (self.dir / f).unlink(missing_ok=True)
                for f in (self.dir / ARTIFACTS_DIR).glob("*.safetensors"):
                    f.unlink()
            self.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            write_json(path, {"name": name, "protocol": self.protocol, "created": self.created,
                              "versions": library_versions()}, overwrite=True)
        self.versions = json.loads(path.read_text()).get("versions", {})

    @property
    def results_path(self) -> Path:
        return self.dir / RESULTS_FILE

    def records(self) -> list[dict[str, Any]]:
        """Finished cells in the order they were computed (a torn last line is ignored)."""
        if not self.results_path.is_file():
            return []
        out = []
        lines = self.results_path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:  # interrupted while writing the last line
                    continue
                raise LatentStudioError(f"{self.results_path}:{i + 1} is not valid JSON; fix or delete that line")
        return out

    def done(self) -> dict[str, dict[str, Any]]:
        """Finished cells by key."""
        return {r["cell"]: r for r in self.records()}

    def cell(self, key: str, compute: Callable[[], dict[str, Any]], **labels: Any) -> dict[str, Any]:
        """The record of cell ``key``: read back if finished, else ``compute()``d and appended.

        Args:
            key: unique name of the cell, e.g. ``"n=40/rep=3"``.
            compute: returns the cell's values (JSON-able dict).
            labels: coordinates stored with the values (e.g. ``n=40, rep=3``).
        """
        finished = self.done()
        if key in finished:
            return finished[key]
        t0 = time.perf_counter()
        values = compute()
        record = {"cell": key, **labels, **values, "seconds": round(time.perf_counter() - t0, 3)}
        append_jsonl(self.results_path, record)
        return record

    def artifact(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Named tensors stored once in ``artifacts/<name>.safetensors``: read back if present, else
        ``compute()``d (a dict of tensors) and written atomically. For intermediate results several cells
        reuse (extracted features, rankings); they belong to this protocol and go with ``overwrite``.
        """
        path = self.dir / ARTIFACTS_DIR / f"{name}.safetensors"
        if path.is_file():
            return load_file(str(path))
        tensors = {k: v.detach().contiguous().cpu() for k, v in compute().items()}
        with atomic_path(path, overwrite=True) as tmp:
            save_file(tensors, str(tmp))
        return tensors

    def stamp(self, extra: Sequence[str] = ()) -> list[str]:
        """Markdown bullet lines stating the protocol, creation time and library versions."""
        lines = [f"- study: `{self.name}`, directory `{self.dir}`, started {self.created}"]
        for k, v in self.protocol.items():
            lines.append(f"- {k}: {_inline(v)}")
        lines += [f"- {e}" for e in extra]
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return lines

    def write_report(self, text: str) -> Path:
        """Atomically (re)write ``report.md``."""
        return write_text(self.dir / REPORT_FILE, text, overwrite=True)

    def save_figure(self, fig, filename: str) -> str:
        """Save a matplotlib figure atomically as ``filename`` (PNG) in the study folder; returns the name."""
        import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

        with atomic_path(self.dir / filename, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        return filename


def _inline(v: Any) -> str:
    return f"`{json.dumps(v)}`" if isinstance(v, dict | list) else str(v)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "{:.4g}") -> str:
    """A GitHub markdown table; floats formatted with ``fmt``, None shown as an empty cell."""

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return fmt.format(v)
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)
