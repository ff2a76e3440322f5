"""One entry point for the benchmarks: run a suite, then write the results table.

    python benchmarks/run.py --suite quick              # what a reviewer runs (< 15 min on 2 idle cores)
    python benchmarks/run.py --suite full               # the long runs behind the committed figures
    python benchmarks/run.py --suite quick --only two_stage_mnist --only samplers
    python benchmarks/run.py --table-only               # rebuild results/README.md from the JSONs present
    python benchmarks/run.py --suite full --list        # the commands, without running them

Each entry runs ``python benchmarks/<script>.py --suite quick|full <args>`` as a subprocess (its
output streams through), with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set to ``--threads`` and
``LATENTSTUDIO_DATA`` to ``--data-root`` when given. A script writes benchmarks/results/<name>.json;
afterwards this runner reads every entry's JSONs and writes one table, benchmarks/results/README.md
(name, result, reference, ratio, work, time, machine). A missing script or JSON is a row that says
"not run"; a failed run keeps the row of its last JSON and says so.

Every benchmark is budgeted in work (steps, epochs, kimg, images), never in minutes; the time and
load columns say how long it took and how busy the machine was, they never stop a run.

A script's JSON may carry ``"headline": {"result", "reference", "ratio", "work", "time"}`` (see
``_common.headline``); without it the entry's own reader, or a generic one, fills the row.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SUITES = ("quick", "full")
RUN_LOG = "run_log.json"
TABLE_COLUMNS = ("name", "result", "reference", "ratio", "work", "time", "machine")

Row = dict[str, str]


@dataclass(frozen=True)
class Entry:
    """One benchmark of the suites.

    Attributes:
        name: what ``--only`` selects.
        script: ``benchmarks/<script>.py``.
        results: the names of the JSONs it writes (``results/<name>.json``), one table row each ("not run"
            when missing).
        optional: JSONs that get a row only when present (the quick variant of a full-only entry).
        quick / full: extra arguments after ``--suite quick|full``.
        suites: the suites that run it (``--only`` runs it in any suite).
        reader: ``(json dict) -> partial row`` for JSONs without a ``"headline"``.
        details: ``(json dicts by result name) -> markdown`` appended under the table, or None.
    """

    name: str
    script: str
    results: tuple[str, ...]
    quick: tuple[str, ...] = ()
    full: tuple[str, ...] = ()
    suites: tuple[str, ...] = SUITES
    optional: tuple[str, ...] = ()
    reader: Callable[[dict[str, Any]], Row] | None = None
    details: Callable[[dict[str, dict[str, Any]]], str] | None = None
    notes: str = ""

    def args(self, suite: str) -> list[str]:
        """The script's arguments for ``suite``."""
        if suite not in SUITES:
            raise ValueError(f"unknown suite {suite!r}; use one of {', '.join(SUITES)}")
        return ["--suite", suite, *(self.quick if suite == "quick" else self.full)]

    def command(self, suite: str, python: str = sys.executable) -> list[str]:
        return [python, str(HERE / f"{self.script}.py"), *self.args(suite)]

    def result_names(self, results_dir: Path) -> list[str]:
        """``results`` plus the ``optional`` JSONs present in ``results_dir``."""
        return [*self.results, *(r for r in self.optional if (Path(results_dir) / f"{r}.json").is_file())]

    @property
    def script_path(self) -> Path:
        return HERE / f"{self.script}.py"


# ---------------------------------------------------------------------------------------------- readers


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _dig(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _time_generic(d: dict[str, Any]) -> str:
    """Wall / CPU seconds and load from the usual keys of a results JSON."""
    t = _dig(d, "timing", "total") or d
    wall = next((t[k] for k in ("wall_seconds", "total_wall_seconds", "train_seconds", "seconds") if k in t), None)
    if wall is None and "wall_minutes" in t:
        wall = 60 * float(t["wall_minutes"])
    parts = []
    if wall is not None:
        parts.append(f"{float(wall):.0f} s wall")
    if t.get("cpu_seconds") is not None:
        parts.append(f"{float(t['cpu_seconds']):.0f} s CPU")
    return ", ".join(parts)


def _reader_two_stage(d: dict[str, Any]) -> Row:
    """Older two_stage_mnist JSONs (minutes budgets, before the headline key)."""
    fid = d.get("fid_clf", {})
    if not {"normal", "second-stage"} <= set(fid):
        return {}
    budget = d.get("budget_minutes")
    return {"result": f"fid_clf: second stage {fid['second-stage']:.2f}, GMM-10 {fid.get('gmm', float('nan')):.2f}",
            "reference": f"N(0, I) {fid['normal']:.2f}", "ratio": _fmt(fid["second-stage"] / fid["normal"]),
            "work": f"minutes budget {budget} (old protocol: depends on machine speed)" if budget else ""}


def _reader_trainer_overhead(d: dict[str, Any]) -> Row:
    r = d.get("ratio_lightning_over_bare")
    lit, bare = d.get("lightning_images_per_s") or [], d.get("bare_images_per_s") or []
    return {"result": f"Lightning {max(lit, default=0):.0f} images/s (best of {len(lit)})" if lit else "",
            "reference": f"bare PyTorch loop {max(bare, default=0):.0f} images/s" if bare else "",
            "ratio": _fmt(r) + (f" (target >= {d['target']})" if d.get("target") else ""), "work": d.get("data", "")}


def _reader_stylegan2_celeba(d: dict[str, Any]) -> Row:
    a, b = d.get("fid_clf_trained_g_ema"), d.get("fid_clf_initial_weights")
    if a is None or b is None:
        return {}
    return {"result": f"fid_clf after training {a:.2f}", "reference": f"initial weights {b:.2f}",
            "ratio": _fmt(a / b), "work": f"{_fmt(d.get('kimg'))} kimg" + ("" if "minutes" not in d.get("command", "")
                                                                            else " (old minutes budget)")}


def _reader_stylegan2_speed(d: dict[str, Any]) -> Row:
    gen = d.get("generation_256") or []
    tr = d.get("training_32") or []
    res = []
    if gen:
        res.append(f"256 px generation {gen[0].get('images_per_s')} images/s")
    if tr:
        res.append(f"32 px training {tr[0].get('images_per_s')} images/s")
    return {"result": "; ".join(res), "work": d.get("command", "")}


def _reader_studio_scale(d: dict[str, Any]) -> Row:
    res = []
    for r, v in sorted((d.get("resolutions") or {}).items()):
        per = _dig(v, "generation", "cpu_seconds_per_image")
        if per:
            res.append(f"{r} px: {min(per):.2f} CPU s/image")
    w = d.get("work") or {}
    return {"result": "; ".join(res), "work": f"images {w.get('gen_images')}, projection steps {w.get('projection_steps')}"
            if w else ""}


def _reader_draw(d: dict[str, Any]) -> Row:
    """Final test NLL of each arm (``arms.<arm>.final.nll``, or an older ``arms.<arm>.nll``), the paired
    attention - no-attention gap, and the ratio of the two NLLs."""
    arms = d.get("arms") or {}
    nll = {k: next((x for x in (_dig(v, "final", "nll"), _dig(v, "nll")) if x is not None), None)
           for k, v in arms.items()}
    nll = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in nll.items() if v is not None}
    if not nll:
        return {}
    res = ", ".join(f"{k} NLL {float(v):.2f} nats" for k, v in sorted(nll.items()))
    gap = _dig(d, "comparison", "final_nll_attention_minus_no_attention")
    if isinstance(gap, dict) and gap.get("mean") is not None:
        res += f"; attention - none {gap['mean']:+.2f} +- {gap.get('stderr', float('nan')):.2f} ({gap.get('images')} test images)"
    row: Row = {"result": res, "reference": "DRAW without attention, same steps and seed"}
    if "attention" in nll and "no-attention" in nll:
        row["ratio"] = f"{float(nll['attention']) / float(nll['no-attention']):.4g}"
    steps = _dig(d, "budget", "optimizer_steps") or _dig(d, "comparison", "optimizer_steps")
    row["work"] = f"{steps} optimizer steps per arm" if steps else str(d.get("budget", ""))
    return row


def _reader_sketch_rnn_nmax(d: dict[str, Any]) -> Row:
    """CPU-time ratio of a step at Nmax 250 over the data's Nmax, per preset section and stroke set."""
    res, work = [], []
    for sec, v in d.items():
        for name, st in ((v or {}).get("sets") or {}).items() if isinstance(v, dict) else ():
            r = st.get("ratio_cpu_median")
            if r is not None:
                res.append(f"{sec} {name}: {float(r):.2f}x (Nmax {st.get('nmax_fixed')} vs {st.get('nmax_data')})")
                work.append(f"{st.get('timed_rounds')} rounds")
    return {"result": "; ".join(res), "reference": "step at the data's Nmax", "work": ", ".join(dict.fromkeys(work))}


def _reader_sketch_rnn_sheep(d: dict[str, Any]) -> Row:
    """Older sketch_rnn_sheep JSONs (quality sections trained for a minutes budget, before the headline key):
    the quality section with the most steps."""
    secs = [v for k, v in d.items() if k.startswith("quality") and isinstance(v, dict) and v.get("test_curve_nats")]
    if not secs:
        return {}
    q = max(secs, key=lambda v: v.get("steps") or 0)
    first, last = q["test_curve_nats"][0], q["test_curve_nats"][-1]
    budget = q.get("budget_minutes")
    return {"result": f"test L_R {last['recon']:.3f} nats after {q.get('steps')} steps (L_KL {last['kl']:.3f})",
            "reference": f"step 0: L_R {first['recon']:.3f}", "ratio": _fmt(last["recon"] / first["recon"]),
            "work": f"{q.get('preset')} preset, {q.get('steps')} steps"
                    + (f"; old protocol: a {budget:g}-minute budget, depends on machine speed" if budget else ""),
            "time": f"{60 * float(q['wall_minutes']):.0f} s wall" if q.get("wall_minutes") else ""}


def _reader_two_stage_conditional(d: dict[str, Any]) -> Row:
    acc, per = d.get("classifier_accuracy") or {}, d.get("classifier_accuracy_per_digit") or {}
    if not acc:
        return {}
    return {"result": "samples classified as requested: " + ", ".join(
        f"{k} {float(v):.3f} (worst digit {min(per.get(k) or [v]):.3f})" for k, v in sorted(acc.items())),
        "reference": "target >= 0.9 on every digit"}


def _reader_generic(d: dict[str, Any]) -> Row:
    """Whatever a JSON without headline and reader offers: a few scalar results, its command as the work."""
    skip = {"environment", "command", "benchmark", "suite", "headline", "timing", "run_dir", "report"}
    scalars = [(k, v) for k, v in d.items() if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)]
    return {"result": ", ".join(f"{k} {_fmt(v)}" for k, v in scalars[:3]) or "see the JSON",
            "work": d.get("work") if isinstance(d.get("work"), str) else d.get("command", "")}


def _machine(d: dict[str, Any]) -> str:
    env = d.get("environment") or {}
    t = _dig(d, "timing", "total") or {}
    threads = t.get("threads", d.get("threads", env.get("torch_threads")))
    lb = t.get("load_average_before") or d.get("load_average_before") or d.get("load_average_1min_start")
    la = (t.get("load_average_after") or d.get("load_average_after") or d.get("load_average_1min_end")
          or d.get("load_average_1min_at_end"))
    first = (lambda v: v[0] if isinstance(v, list | tuple) and v else v)
    parts = []
    if env.get("cpu_count"):
        parts.append(f"{env['cpu_count']} CPUs" + (" + CUDA" if env.get("cuda") else ""))
    if threads:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if lb is not None or la is not None:
        parts.append("load " + " -> ".join(f"{float(first(v)):.1f}" for v in (lb, la) if v is not None))
    return ", ".join(parts)


def row_for(entry: Entry, result_name: str, data: dict[str, Any] | None, status: str = "") -> Row:
    """The table row of one results JSON (``data`` None: "not run")."""
    row = dict.fromkeys(TABLE_COLUMNS, "")
    row["name"] = result_name if result_name == entry.name else f"{entry.name}: {result_name}"
    if data is None:
        row["result"] = "not run" + (f" ({status})" if status else "")
        return row
    h = data.get("headline") if isinstance(data.get("headline"), dict) else None
    got: Row = {}
    if h:
        got = {k: _fmt(h.get(k)) for k in ("result", "reference", "ratio", "work")}
        got["time"] = _fmt(h.get("time"))
    else:
        try:
            got = (entry.reader or _reader_generic)(data) or {}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            got = {}
        if not got.get("result"):
            got = {**_reader_generic(data), **{k: v for k, v in got.items() if v}}
    row.update({k: str(v) for k, v in got.items() if k in row and v})
    if " --minutes" in str(data.get("command", "")) and "minutes" not in row["work"]:
        row["work"] = (row["work"] + "; " if row["work"] else "") + "old protocol: a minutes budget, depends on machine speed"
    if not row["time"]:
        row["time"] = _time_generic(data)
    if data.get("suite"):
        row["work"] = f"{data['suite']}: {row['work']}" if row["work"] else str(data["suite"])
    row["machine"] = _machine(data)
    if status:
        row["result"] = f"{row['result']} ({status})"
    return row


# ---------------------------------------------------------------------------------------------- details


def _details_samplers(results: dict[str, dict[str, Any]]) -> str:
    """fid_clf of every sampler, one column per dataset."""
    sets = {name: d for name, d in results.items() if d and d.get("fid_clf")}
    if not sets:
        return ""
    keys: list[str] = []
    for d in sets.values():
        keys += [k for k in d["fid_clf"] if k not in keys]
    order = {"normal": 0, "second-stage": 3, "reconstruction": 4}
    keys.sort(key=lambda k: (order.get(k, 1 if k.startswith("gmm/") else 2), _gmm_key(k)))
    label = {"normal": "N(0, I)", "second-stage": "second stage", "reconstruction": "reconstructions (reference point)"}
    head = "| sampler | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets)
    lines = [head]
    for k in keys:
        cells = []
        for d in sets.values():
            v = d["fid_clf"].get(k)
            normal = d["fid_clf"].get("normal")
            cells.append("" if v is None else f"{v:.2f}" + (f" ({v / normal:.2f}x)" if normal and k != "normal" else ""))
        name = label.get(k, k.replace("gmm/", "GMM ").replace("kde/", "KDE ").replace("/", ", "))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = [("second stage <= 0.8 x N(0, I)", "second_stage_le_0.8_normal"),
              ("every GMM < N(0, I)", "every_gmm_lt_normal"), ("GMM-10 on mu < N(0, I)", "gmm10_mu_lt_normal"),
              ("reconstructions lowest", "reconstruction_lowest")]
    lines.append("| **orderings** | " + " | ".join("" for _ in sets) + " |")
    for text, key in checks:
        lines.append(f"| {text} | " + " | ".join(_fmt(_dig(d, "checks", key)) or "not measured" for d in sets.values())
                     + " |")
    work = "; ".join(f"{n}: {_dig(d, 'headline', 'work')} ({_dig(d, 'headline', 'time')})" for n, d in sets.items())
    return ("fid_clf per sampler (ratio to N(0, I) in brackets); GMM keys are k, covariance and what the mixture "
            "was fitted on (mean = mu, sample = z); KDE keys the bandwidth rule.\n\n" + "\n".join(lines)
            + f"\n\nWork and time: {work}.")


def _gmm_key(k: str) -> tuple:
    if k.startswith("gmm/"):
        parts = dict(p.split("=") for p in k.split("/")[1:])
        return (int(parts.get("k", 0)), parts.get("cov", ""), parts.get("fit", ""))
    return (0, k, "")


def _details_two_stage(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, d in results.items():
        if not d or not d.get("checks"):
            continue
        checks = ", ".join(f"{k} {_fmt(v)}" for k, v in d["checks"].items())
        lines.append(f"- `{name}`: {checks}; command `{d.get('command', '')}`")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- entries

ENTRIES: tuple[Entry, ...] = (
    Entry("two_stage_mnist", "two_stage_mnist", ("two_stage_mnist_quick", "two_stage_mnist"), details=_details_two_stage,
          reader=_reader_two_stage,
          notes="Two-stage VAE (cpu preset) on real MNIST: second stage vs N(0, I) fid_clf (target ratio <= 0.8)."),
    Entry("samplers", "samplers_study", ("samplers_mnist_quick", "samplers_mnist", "samplers_fashion_mnist"),
          details=_details_samplers,
          notes="The samplers study: N(0, I), GMM k in {1, 10, 50} on mu / z, KDE on mu, second stage, reconstructions."),
    Entry("draw_paper", "draw_mnist", ("draw_paper_quick", "draw_paper"), reader=_reader_draw,
          notes="DRAW at the paper's configuration, attention vs none."),
    Entry("speed_sketch_rnn", "speed_sketch_rnn", ("speed_sketch_rnn",)),
    Entry("speed_fid", "speed_fid", ("speed_fid",)),
    Entry("stylegan2_speed", "stylegan2_speed", ("stylegan2_speed",), reader=_reader_stylegan2_speed),
    Entry("efficiency", "efficiency", ("efficiency",)),
    Entry("sketch_rnn_nmax", "sketch_rnn_nmax", ("sketch_rnn_nmax_quick", "sketch_rnn_nmax"), reader=_reader_sketch_rnn_nmax),
    Entry("studio_scale", "studio_scale", ("studio_scale_quick", "studio_scale"), reader=_reader_studio_scale),
    Entry("sketch_rnn_sheep", "sketch_rnn_sheep", ("sketch_rnn_sheep_quick", "sketch_rnn_sheep"),
          reader=_reader_sketch_rnn_sheep,
          notes="sketch-rnn (cpu preset) on the sheep set: test L_R after a fixed number of steps."),
    Entry("two_stage_mnist_conditional", "two_stage_mnist", ("two_stage_mnist_conditional",),
          optional=("two_stage_mnist_conditional_quick",),
          full=("--conditional", "--gamma-init", "1.0"), quick=("--conditional", "--gamma-init", "1.0"),
          suites=("full",), details=_details_two_stage, reader=_reader_two_stage_conditional,
          notes="Class-conditional two-stage VAE: fraction of samples classified as the requested digit."),
    Entry("stylegan2_celeba", "stylegan2_celeba", ("stylegan2_celeba32",), suites=("full",),
          optional=("stylegan2_celeba32_quick",),
          reader=_reader_stylegan2_celeba, notes="StyleGAN2 tiny preset on 32x32 CelebA: fid_clf before/after."),
    Entry("trainer_overhead", "trainer_overhead", ("trainer_overhead",), suites=("full",),
          optional=("trainer_overhead_quick",),
          reader=_reader_trainer_overhead, notes="Lightning trainer vs a bare loop, images/s (target >= 0.95)."),
)


def entries_for(suite: str, only: list[str] | None = None) -> list[Entry]:
    """The entries ``suite`` runs, or the ``only`` ones (in the order given, any suite).

    Raises:
        SystemExit: an unknown name in ``only`` (the known names listed).
    """
    if not only:
        return [e for e in ENTRIES if suite in e.suites]
    by_name = {e.name: e for e in ENTRIES}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise SystemExit(f"run.py: unknown benchmark {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(only)]


# ---------------------------------------------------------------------------------------------- table


def load_results(results_dir: Path, entries: tuple[Entry, ...] | list[Entry] = ENTRIES
                 ) -> dict[str, dict[str, dict[str, Any] | None]]:
    """``{entry name: {result name: JSON dict or None}}`` for every entry (None: no file or unreadable)."""
    out: dict[str, dict[str, dict[str, Any] | None]] = {}
    for e in entries:
        out[e.name] = {}
        for r in e.result_names(results_dir):
            path = Path(results_dir) / f"{r}.json"
            try:
                data = json.loads(path.read_text())
                out[e.name][r] = data if isinstance(data, dict) else None
            except (OSError, ValueError):
                out[e.name][r] = None
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def build_table(results_dir: Path, entries: tuple[Entry, ...] | list[Entry] = ENTRIES,
                log: dict[str, Any] | None = None) -> str:
    """The markdown of benchmarks/results/README.md from the JSONs in ``results_dir``.

    ``log`` is the runner's last log (``run_log.json``): entries that failed there are marked, and
    a section lists that run.
    """
    results = load_results(results_dir, entries)
    ran = (log or {}).get("entries", {})
    rows = []
    for e in entries:
        for r in results[e.name]:
            status = ""
            info = ran.get(e.name)
            if info and info.get("returncode") not in (0, None):
                status = f"last run failed, rc {info['returncode']}" + ("; figures from an earlier run"
                                                                      if results[e.name][r] is not None else "")
            elif info and info.get("missing_script"):
                status = "script missing"
            rows.append(row_for(e, r, results[e.name][r], status))
    lines = [
        "# Benchmark results",
        "",
        ("Written by `python benchmarks/run.py` from the JSON files in this folder (do not edit by hand: "
         "`python benchmarks/run.py --table-only` rewrites it). Every benchmark is budgeted in work (optimizer "
         "steps, epochs, kimg or images), never in minutes; the time column (wall and CPU seconds) and the machine "
         "column (threads, 1-minute load average before -> after) are measured beside the result and never stop a "
         "run. Rows named *_quick come from `--suite quick`, the others from `--suite full` (\"custom\" in the work "
         "column: with options changed from the suite's; the JSON holds the command). fid_clf values use the project "
         "classifier, not Inception: they are not comparable with published FIDs."),
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(_cell(row[c]) for c in TABLE_COLUMNS) + " |" for row in rows]
    for e in entries:
        if e.details is None:
            continue
        got = {r: d for r, d in results[e.name].items() if d is not None}
        if not got:
            continue
        text = e.details(got)
        if text:
            lines += ["", f"## {e.name}", "", *([e.notes, ""] if e.notes else []), text]
    if log:
        lines += ["", "## Last run of run.py", "",
                  (f"`{log.get('command', '')}` started {log.get('started', '')}, "
                   f"{log.get('wall_seconds', 0):.0f} s wall, {log.get('cpu_seconds', 0):.0f} s CPU of the scripts, "
                   f"load {log.get('load_average_before', '')} -> {log.get('load_average_after', '')}."), "",
                  "| entry | return code | wall (s) | CPU (s) |", "|---|---|---|---|"]
        for name, info in ran.items():
            rc = "script missing" if info.get("missing_script") else info.get("returncode")
            lines.append(f"| {name} | {rc} | {_fmt(info.get('wall_seconds'))} | {_fmt(info.get('cpu_seconds'))} |")
    return "\n".join(lines) + "\n"


def write_table(results_dir: Path = RESULTS, entries: tuple[Entry, ...] | list[Entry] = ENTRIES) -> Path:
    """Write ``results_dir/README.md`` (with the last run log when ``run_log.json`` is present)."""
    log = None
    try:
        log = json.loads((Path(results_dir) / RUN_LOG).read_text())
    except (OSError, ValueError):
        pass
    path = Path(results_dir) / "README.md"
    path.write_text(build_table(results_dir, entries, log))
    return path


# ---------------------------------------------------------------------------------------------- running


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_entries(entries: list[Entry], suite: str, *, threads: int | None, data_root: str | None,
                results_dir: Path = RESULTS, command: str = "") -> dict[str, Any]:
    """Run every entry's script (streaming its output) and return the run log."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if data_root:
        env["LATENTSTUDIO_DATA"] = str(Path(data_root).resolve())
    log: dict[str, Any] = {"command": command, "suite": suite, "threads": threads,
                           "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                           "load_average_before": round(os.getloadavg()[0], 2), "entries": {}}
    t0, c0 = time.perf_counter(), _children_cpu()
    for e in entries:
        if not e.script_path.is_file():
            print(f"== {e.name}: benchmarks/{e.script}.py is missing, not run", flush=True)
            log["entries"][e.name] = {"missing_script": True}
            continue
        cmd = command_for(e, suite, threads)
        print(f"== {e.name}: {' '.join(cmd[1:])}", flush=True)
        t, c = time.perf_counter(), _children_cpu()
        rc = subprocess.call(cmd, env=env, cwd=HERE.parent)
        info = {"returncode": rc, "wall_seconds": round(time.perf_counter() - t, 1),
                "cpu_seconds": round(_children_cpu() - c, 1), "command": " ".join(cmd[1:])}
        log["entries"][e.name] = info
        print(f"== {e.name}: rc {rc}, {info['wall_seconds']:.0f} s wall, {info['cpu_seconds']:.0f} s CPU", flush=True)
    log["wall_seconds"] = round(time.perf_counter() - t0, 1)
    log["cpu_seconds"] = round(_children_cpu() - c0, 1)
    log["load_average_after"] = round(os.getloadavg()[0], 2)
    return log


#: Scripts of this runner's entries known to take ``--threads`` (others get OMP_NUM_THREADS only).
THREADED_SCRIPTS = frozenset({"two_stage_mnist", "samplers_study", "stylegan2_celeba", "trainer_overhead"})


def command_for(e: Entry, suite: str, threads: int | None, python: str = sys.executable) -> list[str]:
    """The entry's command line for ``suite``, with ``--threads`` for the scripts that take it."""
    cmd = e.command(suite, python)
    if threads and e.script in THREADED_SCRIPTS:
        cmd += ["--threads", str(threads)]
    return cmd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=SUITES, default="quick")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this entry (repeatable, or comma-separated); any suite")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every script (0: leave them alone)")
    p.add_argument("--data-root", default=None, help="datasets folder (sets LATENTSTUDIO_DATA for the scripts)")
    p.add_argument("--table-only", action="store_true", help="only rebuild results/README.md from the JSONs")
    p.add_argument("--list", action="store_true", help="print the commands of the suite and exit")
    args = p.parse_args(argv)
    args.only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_only:
        print(f"wrote {write_table()}")
        return 0
    entries = entries_for(args.suite, args.only)
    if args.list:
        for e in entries:
            mark = "" if e.script_path.is_file() else "   (script missing)"
            cmd = command_for(e, args.suite, args.threads or None, python="python")
            print(f"{e.name}: python benchmarks/{e.script}.py {' '.join(cmd[2:])}{mark}")
        return 0
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    log = run_entries(entries, args.suite, threads=args.threads or None, data_root=args.data_root, command=command)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / RUN_LOG).write_text(json.dumps(log, indent=2) + "\n")
    path = write_table()
    failed = [n for n, i in log["entries"].items() if i.get("returncode") not in (0, None)]
    print(f"wrote {path}; {len(log['entries'])} entries, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else "") + f", {log['wall_seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
