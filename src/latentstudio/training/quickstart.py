"""The one-command quickstart: train a two-stage VAE on the bundled digits, then evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentstudio.evaluation import evaluate
from latentstudio.metrics import read_records
from latentstudio.presets import merge, preset
from latentstudio.training.registry import TRAINERS


def quickstart(runs_root: str | Path = "runs", seed: int = 0, progress: bool = True,
               spec_overrides: dict[str, Any] | None = None) -> Path:
    """Train a two-stage VAE on ``digits``, sample with all three samplers, evaluate; return report.md.

    Uses the ``quickstart`` preset (about 3-4 minutes on 2 CPU cores) and the offline classifier
    extractor (``fid_clf``); prints the FID of each sampler.

    Args:
        runs_root: parent folder of the numbered run folder.
        seed: seed of training and evaluation.
        progress: show progress bars.
        spec_overrides: nested run-config fields merged over the preset.

    Returns:
        Path of ``<run>/eval/report.md``.
    """
    spec = merge(preset("two-stage-vae", "quickstart"), {"data": {"name": "digits"}, "seed": seed})
    if spec_overrides:
        spec = merge(spec, spec_overrides)
    result = TRAINERS.get("two-stage-vae")(spec, runs_root=runs_root, resume=None, progress=progress, dry_run=False)
    report = evaluate(result.model_dir, {"name": "digits"}, extractor="classifier", seed=seed, progress=progress,
                      out_dir=result.run_dir / "eval")
    _print_summary(report)
    return report


def _print_summary(report: Path) -> None:
    rows = read_records(report.parent)
    print("\n" + "source".ljust(16) + "fid_clf".rjust(10))
    for r in rows:
        if r["metric"] == "fid_clf":
            print(f"{r['source']:<16}{r['value']:>10.3f}")
    for r in rows:
        if r["metric"] in ("inactive_latents", "gamma"):
            print(f"{r['metric']}: {r['value']:.4g}")


__all__ = ["quickstart"]
