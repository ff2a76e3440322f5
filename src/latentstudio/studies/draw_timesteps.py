"""Study ``draw-timesteps``: DRAW's number of steps T swept with the total latent size fixed.

The thesis behind SPEC section 2 trained DRAW with T x latent-per-step = 128 on CIFAR-10 and
found that more steps improve reconstruction, FID and the number of active latents, with
diminishing returns. This study repeats the sweep on any image dataset: for each T it trains a
DRAW with ``total_latent / T`` latents per step under the same optimisation budget, evaluates it
with :func:`latentstudio.evaluation.evaluate` and writes one report:

    <out>/study.json, results.jsonl       protocol and one record per T
    <out>/report.md                       table, plots and the drawing of each T
    <out>/draw-timesteps.png              reconstruction error, fid_clf, NLL, inactive latents vs T
    <out>/kl-per-step.png                 KL_t curves, one per T
    <out>/steps-T<T>.png                  16 samples drawn by the model of each T
    <runs_root>/T<T>/NNNNN-draw-<data>/   the training runs (default runs_root: <out>/runs; checkpoints,
                                          not needed by the report)

Re-running the same command resumes: finished cells are read back, a finished training whose
evaluation was interrupted is only evaluated, and an interrupted training continues from its
last checkpoint.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentstudio import evaluation
from latentstudio.errors import ConfigError
from latentstudio.studies.runner import Study, markdown_table
from latentstudio.training import draw as draw_training

NAME = "draw-timesteps"


def _cell_run(runs_root: Path) -> Path | None:
    """The (single) run directory of a cell, if one was started."""
    if not runs_root.is_dir():
        return None
    runs = sorted(p for p in runs_root.iterdir() if p.is_dir() and (p / "run.json").is_file())
    return runs[-1] if runs else None


def run_draw_timesteps(
    out_dir: str | Path,
    *,
    data_spec: dict[str, Any],
    steps: Sequence[int] = (1, 2, 4, 8, 16),
    total_latent: int = 32,
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    binarize: str = "threshold",
    seed: int = 0,
    extractor: str = "classifier",
    n_samples: int | None = None,
    nll_samples: int = 50,
    nll_images: int = 500,
    runs_root: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run (or resume) the sweep and write ``report.md``; returns its path.

    Args:
        out_dir: study folder.
        data_spec: ``{"name", "root", "options", "limit", ...}`` (``limit`` applies to both splits).
        steps: the values of T; each must divide ``total_latent``.
        total_latent: T x latent_dim, fixed.
        model: other :class:`~latentstudio.models.draw.DRAWConfig` fields shared by every cell.
        train: :class:`~latentstudio.training.config.TrainConfig` fields shared by every cell.
        binarize: ``"threshold"`` or ``"none"`` (training images).
        seed: seed of every cell (weights, shuffling, noise, evaluation).
        extractor / n_samples / nll_samples / nll_images: as in
            :func:`~latentstudio.evaluation.evaluate` (DRAW).
        runs_root: folder of the cells' training runs (default ``<out_dir>/runs``).
        overwrite: discard a study with another protocol in ``out_dir`` (and its runs).

    Raises:
        ConfigError: a T that does not divide ``total_latent``, or an empty / repeated T list.
        RunExistsError: ``out_dir`` holds another protocol and ``overwrite`` is False.
    """
    steps = [int(t) for t in steps]
    if not steps or len(set(steps)) != len(steps) or min(steps) < 1:
        raise ConfigError(f"--steps: give distinct positive values of T, got {steps}")
    bad = [t for t in steps if total_latent % t]
    if bad:
        raise ConfigError(
            f"--steps {bad} do not divide --total-latent {total_latent}; the sweep keeps T x latent-per-step fixed, "
            "so every T must be a divisor (e.g. 1,2,4,8,16 for 32)"
        )
    model = dict(model or {})
    for key in ("steps", "latent_dim"):
        if key in model:
            raise ConfigError(f"model.{key} is set by the sweep (--steps, --total-latent); remove it")
    train = dict(train or {})
    data = evaluation.load_split(data_spec, "train")
    protocol = {
        "data": {k: v for k, v in data_spec.items() if k != "root"},
        "train_fingerprint": data.fingerprint(),
        "steps": steps,
        "total_latent": total_latent,
        "model": model,
        "train": train,
        "binarize": binarize,
        "seed": seed,
        "extractor": extractor,
        "n_samples": n_samples,
        "nll_samples": nll_samples,
        "nll_images": nll_images,
    }
    study = Study(out_dir, NAME, protocol, overwrite=overwrite)
    runs_root = Path(runs_root) if runs_root is not None else study.dir / "runs"
    if overwrite:  # the training runs of discarded results must not be resumed either
        shutil.rmtree(runs_root, ignore_errors=True)
        for png in study.dir.glob("steps-T*.png"):
            png.unlink()

    def compute(t: int):
        def fn() -> dict[str, Any]:
            cell_root = runs_root / f"T{t:03d}"
            existing = _cell_run(cell_root)
            spec = {"data": data_spec, "model": {**model, "steps": t, "latent_dim": total_latent // t},
                    "train": train, "binarize": binarize, "seed": seed}
            if existing is not None and (existing / "model").is_dir():
                run_dir = existing  # trained; the evaluation was interrupted
            else:
                result = draw_training.train_draw_spec(spec, runs_root=cell_root, resume=existing, progress=progress,
                                                       data=data)
                run_dir = result.run_dir
            eval_dir = run_dir / "eval" / "study"
            if eval_dir.exists():
                shutil.rmtree(eval_dir)  # a partial evaluation: start it again
            report = evaluation.evaluate(run_dir / "model", data_spec, extractor=extractor, n_samples=n_samples,
                              out_dir=eval_dir, seed=seed, progress=progress, nll_samples=nll_samples,
                              nll_images=nll_images)
            shutil.copyfile(eval_dir / "samples-steps.png", study.dir / f"steps-T{t:03d}.png")
            summary = evaluation.summarize_records(evaluation.load_records(report))
            return {**summary, "latent_dim": total_latent // t, "run_dir": str(run_dir), "report": str(report)}

        return fn

    for t in steps:
        study.cell(f"T={t}", compute(t), steps=t)
    return write_report(study)


def write_report(study: Study) -> Path:
    """Render ``report.md`` and the plots from the study's ``results.jsonl``."""
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    recs = sorted(study.records(), key=lambda r: r["steps"])
    total = study.protocol["total_latent"]
    ts = [r["steps"] for r in recs]
    fid_key = "fid_clf" if study.protocol["extractor"] == "classifier" else "fid"

    fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [
        ("reconstruction error", [("recon_mse", "MSE per pixel")], "MSE per pixel"),
        (fid_key, [(f"{fid_key}_samples", "samples"), (f"{fid_key}_reconstruction", "reconstructions")], fid_key),
        ("NLL (nats)", [("nll", "importance sampled"), ("nelbo", "negative ELBO")], "nats"),
        ("inactive latents", [("inactive_latents", f"of {total}")], "count"),
    ]
    for a, (title, series, ylabel) in zip(ax, panels, strict=True):
        for key, label in series:
            ys = [r.get(key) for r in recs]
            if any(y is not None for y in ys):
                a.plot(ts, ys, "o-", label=label)
        a.set_xscale("log", base=2)
        a.set_xticks(ts, [str(t) for t in ts])
        a.set_xlabel("steps T")
        a.set_ylabel(ylabel)
        a.set_title(title)
        a.legend(fontsize=8)
    ax[3].set_ylim(0, total)
    fig.tight_layout()
    summary_png = study.save_figure(fig, "draw-timesteps.png")

    fig, a = plt.subplots(figsize=(6, 3.6))
    for r in recs:
        per = r.get("kl_per_step") or []
        a.plot(range(1, len(per) + 1), per, "o-", ms=3, label=f"T = {r['steps']}")
    a.set_xlabel("step t")
    a.set_ylabel("KL_t (nats)")
    a.set_yscale("log")
    a.set_title("KL per step")
    a.legend(fontsize=8)
    fig.tight_layout()
    kl_png = study.save_figure(fig, "kl-per-step.png")

    rows = [[r["steps"], r["latent_dim"], r.get("recon_mse"), r.get("recon_bce"), r.get(f"{fid_key}_samples"),
             r.get(f"{fid_key}_reconstruction"), r.get("nll"), r.get("nelbo"), r.get("kl"),
             r.get("inactive_latents"), r.get("variance_law"), r.get("seconds")] for r in recs]
    table = markdown_table(
        ["T", "latents / step", "recon MSE", "recon BCE (nats/px)", f"{fid_key} samples", f"{fid_key} recon",
         "NLL (nats)", "-ELBO (nats)", "KL (nats)", f"inactive (of {total})", "variance law", "seconds"], rows)
    p = study.protocol
    lines = [
        "# DRAW: number of steps T at a fixed total latent size",
        "",
        (f"T x latents-per-step = {total} for every cell; everything else (architecture, data, optimisation, seed) "
        "is the same. NLL: importance-sampled -log p(x) on test images binarised at 0.5 "
        f"(K = {p['nll_samples']}, {p['nll_images']} images); -ELBO on the test images as trained. "
        f"`{fid_key}` uses the project classifier's features (not comparable with Inception FID)."),
        "",
        *study.stamp(),
        "",
        "## Results",
        "",
        table,
        "",
        f"![summary]({summary_png})",
        "",
        f"![KL per step]({kl_png})",
        "",
        "## Drawings (16 samples, canvas after each step)",
        "",
    ]
    for r in recs:
        png = f"steps-T{r['steps']:03d}.png"
        if (study.dir / png).is_file():
            lines += [f"### T = {r['steps']}", "", f"![T = {r['steps']}]({png})", ""]
    return study.write_report("\n".join(lines) + "\n")
