"""Helpers shared by the benchmark scripts (not part of the package).

Every benchmark is budgeted in *work* (optimizer steps, epochs, kimg, images), never in minutes:
the same command with the same seed gives the same quality figures on an idle or a loaded machine
(up to the documented nondeterminism of the math libraries). Wall time, CPU time, threads and the
load average are measured by :class:`Meter` and written beside the result; they never stop a run.

Each script takes ``--suite quick|full`` (:func:`add_suite`): the suite fills the defaults of the
script's other options (explicit options still win), so ``python benchmarks/run.py --suite quick``
and ``python benchmarks/<script>.py --suite quick`` run the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Self

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]  # the repository
DOCS_IMAGES = ROOT / "docs" / "images"  # figures of the full suite
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUITES = ("quick", "full")


def data_root(arg: str | None) -> Path:
    """``--data-root``, else ``$LATENTSTUDIO_DATA``, else ../shared/data beside the repository."""
    return Path(arg or os.environ.get("LATENTSTUDIO_DATA") or DEFAULT_DATA)


def add_suite(parser: argparse.ArgumentParser, quick: dict[str, Any], full: dict[str, Any],
              argv: list[str] | None = None) -> str:
    """Add ``--suite quick|full`` to ``parser`` and make the chosen suite's values the defaults.

    ``quick`` / ``full`` map option destinations (``"epochs1"``) to values; options given on the
    command line override them. Call it after the other ``add_argument`` calls and before
    ``parse_args``. Returns the suite chosen in ``argv`` (default ``full``).

    Raises:
        KeyError: a suite names a destination the parser does not have (a typo would be silently ignored).
    """
    parser.add_argument("--suite", choices=SUITES, default="full",
                        help="work preset of this benchmark: quick (small fixed work, what run.py --suite quick "
                             "runs) or full (the long runs behind the committed figures); explicit options win")
    dests = {a.dest for a in parser._actions}
    for name, values in (("quick", quick), ("full", full)):
        unknown = sorted(set(values) - dests)
        if unknown:
            raise KeyError(f"suite {name!r} sets unknown options {unknown}")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=SUITES, default="full")
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    parser.set_defaults(**(quick if known.suite == "quick" else full))
    return known.suite


def result_name(base: str, suite: str) -> str:
    """``base`` for the full suite, ``base + "_quick"`` for the quick one: both kinds of results live side by
    side in benchmarks/results/ (a quick run never overwrites the committed long run)."""
    return base if suite == "full" else f"{base}_{suite}"


def overrides(args: argparse.Namespace, parser: argparse.ArgumentParser, suite_values: dict[str, Any],
              names: list[str] | tuple[str, ...]) -> list[str]:
    """The options among ``names`` whose value differs from the suite's (or the parser's) default, as
    ``["--epochs1 2", ...]``: what makes a run a custom variant of its suite."""
    out = []
    for k in names:
        v = getattr(args, k)
        if v != suite_values.get(k, parser.get_default(k)):
            out.append(f"--{k.replace('_', '-')} {v}")
    return out


def set_threads(n: int | None) -> int:
    """Fix the CPU threads of torch (intra-op) and of OpenMP/MKL children to ``n`` (None: leave torch's
    choice); returns the thread count in effect. Called before any work so timings say what they used."""
    import torch

    if n is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Meter:
    """Wall time, CPU time, threads and load average around a piece of work (reported, never a limit).

    ``with Meter() as m: ...`` then ``m.record()`` ->
    ``{"wall_seconds", "cpu_seconds", "cpu_over_wall", "threads", "load_average_before", "load_average_after"}``.
    ``cpu_seconds`` counts this process and its finished child processes; on a machine shared with
    other jobs the wall time grows while the CPU time stays close to the idle machine's.
    """

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.load_before: list[float] = []
        self.load_after: list[float] = []
        self._t0 = self._c0 = 0.0

    def __enter__(self) -> Self:
        self.load_before = [round(v, 2) for v in os.getloadavg()]
        self._t0, self._c0 = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = _cpu_seconds() - self._c0
        self.load_after = [round(v, 2) for v in os.getloadavg()]

    def record(self) -> dict[str, Any]:
        import torch

        return {
            "wall_seconds": round(self.wall, 1),
            "cpu_seconds": round(self.cpu, 1),
            "cpu_over_wall": round(self.cpu / self.wall, 2) if self.wall > 0 else None,
            "threads": torch.get_num_threads(),
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
        }


def environment() -> dict[str, Any]:
    import torch

    from latentstudio.io.checkpoint import library_versions

    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "versions": library_versions(),
    }


def headline(result: str, *, reference: str = "", ratio: float | None = None, work: str = "",
             time_text: str = "") -> dict[str, Any]:
    """The row ``benchmarks/run.py`` puts in benchmarks/results/README.md for one results JSON
    (``"headline"`` key): what was measured, what it is compared with, their ratio, the work
    (steps / epochs / kimg) and the time it took."""
    return {"result": result, "reference": reference, "ratio": None if ratio is None else round(ratio, 4),
            "work": work, "time": time_text}


def time_text(meter: dict[str, Any]) -> str:
    """``"312 s wall, 590 s CPU, 2 threads, load 6.9 -> 7.3"`` from :meth:`Meter.record`."""
    lb, la = meter.get("load_average_before") or [None], meter.get("load_average_after") or [None]
    load = f", load {lb[0]:.1f} -> {la[0]:.1f}" if lb[0] is not None and la[0] is not None else ""
    return (f"{meter['wall_seconds']:.0f} s wall, {meter['cpu_seconds']:.0f} s CPU, "
            f"{meter['threads']} thread{'s' if meter['threads'] != 1 else ''}{load}")


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Print ``result`` as JSON and write it to benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    print(text)
    path = RESULTS / f"{name}.json"
    path.write_text(text + "\n")
    return path
