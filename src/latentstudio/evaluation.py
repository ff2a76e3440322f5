"""Evaluation of a trained (two-stage) VAE and the one-command quickstart.

``evaluate_model`` computes, against the test split of the training dataset:

- per latent sampler (N(0, I), GMM, second stage): FID, KID and Inception Score with the chosen
  extractor (``fid``/``kid``/``is`` for Inception, ``fid_clf``/``kid_clf``/``is_clf`` for the
  project classifier), and for class-conditional models the fraction of samples the classifier
  assigns to the requested class;
- reconstruction FID, reconstruction MSE/BCE per pixel;
- the variance law and the inactive-latent count of the first stage (SPEC section 2), the mean
  Mahalanobis distance of test latents under the training latents' Gaussian, and both gammas;
- the importance-sampled NLL (nats) for Bernoulli decoders.

Each value is one line of ``metrics.jsonl``; ``report.md`` shows them with the sample grids.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from latentstudio import api
from latentstudio.errors import DataError
from latentstudio.io.atomic import write_text
from latentstudio.io.images import save_grid, to_float
from latentstudio.io.run_dir import create_run_dir

SAMPLER_TITLES = {"normal": "N(0, I)", "gmm": "GMM (ex post)", "second-stage": "second stage"}


def data_spec_for(loaded, data_spec: dict[str, Any] | None) -> dict[str, Any]:
    """The data spec given (when it names a dataset), else the one of the run that trained the model."""
    if data_spec and data_spec.get("name"):
        return data_spec
    run_dir = loaded.meta.get("run_dir")
    if run_dir and (Path(run_dir) / "run.json").is_file():
        return json.loads((Path(run_dir) / "run.json").read_text())["config"]["data"]
    name = loaded.meta.get("dataset", {}).get("name")
    if not name:
        raise DataError("the model does not record its dataset; pass --data")
    return {"name": name}


def load_split(spec: dict[str, Any], split: str):
    """Load ``split`` of the dataset described by a data spec (``name``, ``root``, ``options``, ...)."""
    from latentstudio.data import load_images

    return load_images(spec["name"], split, root=spec.get("root"), download=spec.get("download", False),
                       strict=spec.get("strict", False), limit=spec.get("limit"), **spec.get("options", {}))


def _extractor(name: str, train, test, download: bool, progress: bool):
    from latentstudio.metrics import get_classifier, load_inception

    if name == "inception":
        return load_inception(download=download)
    return get_classifier(train, test=test, progress=progress)


def image_metric_values(
    f_real: torch.Tensor, images: torch.Tensor, ext, *, num_real: int, seed: int = 0, progress: bool = True
) -> list[tuple[str, float, float | None]]:
    """FID, KID (and IS when the extractor has logits) of generated images against real features.

    Args:
        f_real: features of the ``num_real`` reference images (``extract_features``).
        images: ``uint8 [N, C, H, W]`` generated (or reconstructed) images.
        ext: the feature extractor (its name decides ``fid`` vs ``fid_clf`` keys).

    Returns:
        ``[(result key, value, std or None), ...]``.
    """
    from latentstudio import metrics as M

    f_fake = M.extract_features(images, ext, progress=progress)
    out: list[tuple[str, float, float | None]] = [(M.fid_key(ext.name), M.fid_from_features(f_real, f_fake), None)]
    kid, kid_std = M.kid_from_features(f_real, f_fake, subset_size=min(1000, len(images), num_real), seed=seed)
    out.append((M.kid_key(ext.name), kid, kid_std))
    if ext.has_logits:
        is_mean, is_std = M.inception_score_from_logits(M.extract_logits(images, ext), splits=10, seed=seed)
        out.append((M.is_key(ext.name), is_mean, is_std))
    return out


def evaluate_model(
    model_path: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    extractor: str = "classifier",
    n_samples: int | None = None,
    samplers: list[str] | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    nll_samples: int = 100,
    nll_images: int = 500,
) -> Path:
    """Evaluate a model directory (or run) and write ``metrics.jsonl`` + ``report.md``.

    Args:
        model_path: model or run directory.
        data_spec: ``{"name", "root", "options", ...}``; None uses the training run's dataset.
        extractor: ``classifier`` (offline; values named ``*_clf``) or ``inception`` (standard FID;
            its weights must be in the torch hub cache, or ``download_weights``).
        n_samples: generated images per sampler (default: the test-set size).
        samplers: subset of the fitted samplers (default all).
        out_dir: report folder (default: a new numbered ``<run>/eval/NNNNN-<data>-<extractor>/``).
        seed: sampling seed.
        nll_samples / nll_images: importance samples K and test images for the NLL (Bernoulli only).

    Returns:
        Path of ``report.md``.

    Raises:
        DataError, ExtractorWeightsMissing, CheckpointError: with the fix in the message.
    """
    from latentstudio import metrics as M

    loaded = model_path if not isinstance(model_path, str | Path) else api.load(model_path)
    vae = loaded.image_vae
    spec = data_spec_for(loaded, data_spec)
    train = load_split(spec, "train")
    try:
        test, ref_split = load_split(spec, "test"), "test"
    except DataError:
        test, ref_split = train, "train"  # e.g. a folder dataset without a test split
    reference = f"{test.name}/{ref_split}"
    cfg = vae.config
    if test.image_shape != (cfg.image_channels, cfg.image_size, cfg.image_size):
        raise DataError(f"{reference} has images {list(test.image_shape)}, the model expects "
                        f"{[cfg.image_channels, cfg.image_size, cfg.image_size]}; use the model's dataset options")
    if out_dir is None:
        base = Path(loaded.meta["run_dir"]) if loaded.meta.get("run_dir") else loaded.path.parent
        out_dir = create_run_dir(base / "eval", f"{test.name}-{extractor}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ext = _extractor(extractor, train, test, download_weights, progress)
    n = n_samples or len(test)
    if min(n, len(test)) < M.FID_MIN_SAMPLES:  # said once here and in the report, not at every value
        warnings.warn(f"evaluating with {len(test)} reference and {n} generated images (< {M.FID_MIN_SAMPLES}): "
                      "FID/KID values are biased upwards; compare them only at equal counts",
                      M.BiasedMetricWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.BiasedMetricWarning)
        return _evaluate(loaded, spec, train, test, ref_split, ext, n, samplers, out_dir, seed, progress,
                         nll_samples, nll_images)


def _evaluate(loaded, spec, train, test, ref_split, ext, n, samplers, out_dir, seed, progress, nll_samples,
              nll_images) -> Path:
    from latentstudio import metrics as M

    vae = loaded.image_vae
    cfg = vae.config
    reference = f"{test.name}/{ref_split}"
    metrics_file = out_dir / M.METRICS_FILE
    f_real = M.extract_features(test.images, ext, progress=progress)
    common = {"num_real": len(test), "reference": reference, "extra": {"model": str(loaded.path), "seed": seed}}
    rows: list[dict[str, Any]] = []

    def record(metric: str, value: float, source: str, num_generated: int | None = None, std=None, **extra):
        rec = M.MetricRecord.from_extractor(metric, value, ext, source=source, num_generated=num_generated, std=std,
                                            num_real=common["num_real"], reference=reference,
                                            extra={**common["extra"], **extra})
        M.append_record(metrics_file, rec)
        rows.append(rec.to_dict())

    def image_metrics(images: torch.Tensor, source: str) -> None:
        for key, value, std in image_metric_values(f_real, images, ext, num_real=len(test), seed=seed,
                                                   progress=progress):
            record(key, value, source, len(images), std=std)

    cond_test = test.conditions(cfg.condition) if cfg.condition != "none" else None
    class_cond = cfg.condition == "class"
    grids: dict[str, str] = {}
    names = samplers or [s for s in ("normal", "gmm", "second-stage") if s in loaded.sampler_choices()]
    for name in names:
        t0 = time.perf_counter()
        labels = torch.arange(n) % cfg.cond_dim if class_cond else None
        condition = labels.tolist() if class_cond else (cond_test[torch.arange(n) % len(test)] if cond_test is not None else None)
        images = api.generate(loaded, n, seed=seed, condition=condition, sampler=name)
        seconds = time.perf_counter() - t0
        image_metrics(images, name)
        if class_cond and hasattr(ext, "predict"):
            hit = (ext.predict(images) == labels).float()
            per_class = [round(float(hit[labels == k].mean()), 4) for k in range(cfg.cond_dim) if (labels == k).any()]
            record(M.KEY_CLASSIFIER_ACCURACY, float(hit.mean()), name, n, per_class=per_class, min_class=min(per_class),
                   what="fraction of samples classified as the requested class")
        grid_name = f"samples-{name}.png"
        save_grid(images[:64], out_dir / grid_name, nrow=8, overwrite=True)
        grids[SAMPLER_TITLES.get(name, name)] = grid_name
        rows[-1]["sample_seconds"] = seconds

    # reconstructions of the reference images
    recon = loaded.reconstruct(test.images, condition=cond_test)
    image_metrics(recon, "reconstruction")
    x, x_hat = to_float(test.images), to_float(recon)
    record(M.KEY_RECON_MSE, float(M.reconstruction_error(x, x_hat, "mse").mean()), "reconstruction", len(test))
    record(M.KEY_RECON_BCE, float(M.reconstruction_error(x, x_hat, "bce").mean()), "reconstruction", len(test))
    pairs = torch.stack([test.images[:32].view(4, 8, *test.images.shape[1:]),
                         recon[:32].view(4, 8, *recon.shape[1:])], 1).flatten(0, 2)
    save_grid(pairs, out_dir / "reconstructions.png", nrow=8, overwrite=True)
    grids["reconstructions (odd rows: originals)"] = "reconstructions.png"

    # latent diagnostics
    q_train = loaded.encode(train.images, condition=train.conditions(cfg.condition) if cfg.condition != "none"
                            else None)
    q_test = loaded.encode(test.images, condition=cond_test)
    law = M.variance_law(q_train.mean, q_train.logvar)
    record(M.KEY_VARIANCE_LAW, float(law.mean()), "train latents", extractor_free=True,
           per_latent=[round(float(v), 4) for v in law], min=float(law.min()), max=float(law.max()))
    record(M.KEY_INACTIVE_LATENTS, M.inactive_latents(q_train.mean, q_train.logvar), "train latents",
           latent_dim=cfg.latent_dim, threshold=M.INACTIVE_THRESHOLD)
    mean, cov = M.fit_gaussian(q_train.mean)
    record(M.KEY_MAHALANOBIS, float(M.mahalanobis(q_test.mean, mean, cov).mean()), "test latents",
           what="mean Mahalanobis distance of test mu under the Gaussian of train mu")
    record("gamma", float(vae.gamma.detach()), "stage1")
    if "second-stage" in loaded.own_samplers:
        record("gamma_z", float(loaded.stage2.gamma.detach()), "stage2")
    if cfg.decoder == "bernoulli":
        k = min(nll_images, len(test))
        xb = (to_float(test.images[:k]) > 0.5).float()  # binarised, as the NLL benchmarks use
        cb = None if cond_test is None else cond_test[:k]
        with torch.no_grad():
            nll = M.importance_sampled_nll(
                xb, lambda v, i=None: vae.posterior(v, None if cb is None else cb[: len(v)]),
                lambda v, z: vae.log_px_given_z(v, z, None if cb is None else _rep(cb, len(v))),
                num_samples=nll_samples, generator=torch.Generator().manual_seed(seed))
        record(M.KEY_NLL, float(nll.mean()), "test (binarised)", k, unit="nats", k=nll_samples)

    return _write_report(out_dir, loaded, spec, ext, reference, rows, grids, n, seed)


def _rep(cond: torch.Tensor, m: int) -> torch.Tensor:
    """Conditions repeated to ``m`` rows (importance samples of the same examples)."""
    reps = -(-m // len(cond))
    return cond.repeat(reps, 1)[:m]


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def _write_report(out_dir: Path, loaded, spec, ext, reference, rows, grids, n, seed) -> Path:
    from latentstudio.io.checkpoint import library_versions

    meta = loaded.meta
    ds = meta.get("dataset", {})
    fid_name = "fid_clf" if ext.name == "classifier" else "fid"
    lines = [
        "# Evaluation report",
        "",
        (f"- model: `{loaded.path}` (seed {meta.get('seed')}, trained on {ds.get('name')} {ds.get('split')}, "
         f"{ds.get('size')} images, fingerprint `{ds.get('fingerprint')}`)"),
        f"- reference: {reference} ({rows[0]['num_real']} images); {n} generated images per sampler; seed {seed}",
        f"- extractor: **{ext.name}** (weights `{ext.weights_hash}`); resize rule: {ext.resize_rule}",
        f"- metric names: `{fid_name}`"
        + (" is computed on the project's own classifier features; it is **not comparable** with published "
           "Inception FIDs." if ext.name == "classifier" else " uses the standard TF-2015 Inception-v3 pool3 features."),
    ]
    if getattr(ext, "test_accuracy", None) is not None:
        lines.append(f"- classifier held-out accuracy: {ext.test_accuracy:.4f}")
    if rows[0]["num_real"] < 2048 or n < 2048:
        lines.append("- fewer than 2048 images: FID/KID are biased upwards; compare values only at equal counts.")
    lines.append(f"- versions: {', '.join(f'{k} {v}' for k, v in library_versions().items())}")
    lines += ["", "## Image metrics", ""]
    by_source: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r.get("num_generated") is not None and r["source"] not in ("test (binarised)",):
            by_source.setdefault(r["source"], {})[r["metric"]] = r
    metric_cols: list[str] = []
    for vals in by_source.values():
        for m in vals:
            if m not in metric_cols and m not in ("recon_mse", "recon_bce"):
                metric_cols.append(m)
    lines.append("| images | " + " | ".join(metric_cols) + " |")
    lines.append("|---" * (len(metric_cols) + 1) + "|")
    for source, vals in by_source.items():
        cells = []
        for m in metric_cols:
            r = vals.get(m)
            cells.append("" if r is None else _fmt(r["value"]) + (f" ± {_fmt(r['std'])}" if r.get("std") else ""))
        lines.append(f"| {SAMPLER_TITLES.get(source, source)} | " + " | ".join(cells) + " |")
    lines += ["", "## Reconstruction and latents", "", "| metric | value | notes |", "|---|---|---|"]
    for r in rows:
        if r["metric"] in ("recon_mse", "recon_bce", "variance_law", "inactive_latents", "mahalanobis", "gamma",
                           "gamma_z", "nll"):
            note = {"recon_mse": "per pixel, images in [0, 1]", "recon_bce": "nats per pixel",
                    "variance_law": f"mean over latents of Var(mu) + E[sd^2] (min {_fmt(r.get('min'))}, "
                                    f"max {_fmt(r.get('max'))}); 1 is ideal",
                    "inactive_latents": f"E[sd^2] > {r.get('threshold')} of {r.get('latent_dim')} latents",
                    "mahalanobis": "mean over test images", "gamma": "decoder sd of stage 1",
                    "gamma_z": "decoder sd of stage 2", "nll": f"nats, importance sampled (K = {r.get('k')})"}[r["metric"]]
            lines.append(f"| {r['metric']} | {_fmt(r['value'])} | {note} |")
    lines += ["", "## Samples", ""]
    for title, f in grids.items():
        lines += [f"### {title}", "", f"![{title}]({f})", ""]
    lines += ["All values are also in `metrics.jsonl` (one JSON record per value, with extractor, weights hash,",
              "image counts, reference split and resize rule)."]
    return write_text(out_dir / "report.md", "\n".join(lines) + "\n", overwrite=True)


def quickstart(runs_root: str | Path = "runs", seed: int = 0, progress: bool = True, spec_overrides=None) -> Path:
    """Train a two-stage VAE on ``digits``, sample with all three samplers, evaluate; return report.md.

    Uses the ``quickstart`` preset (about 3-4 minutes on 2 CPU cores) and the offline classifier
    extractor (``fid_clf``).
    """
    from latentstudio.presets import merge, preset

    spec = merge(preset("quickstart"), {"data": {"name": "digits"}, "seed": seed})
    if spec_overrides:
        spec = merge(spec, spec_overrides)
    result = api.train("two-stage-vae", spec, runs_root=runs_root, progress=progress)
    report = evaluate_model(result.model_dir, {"name": "digits"}, extractor="classifier", seed=seed,
                            progress=progress, out_dir=result.run_dir / "eval")
    _print_summary(report)
    return report


def _print_summary(report: Path) -> None:
    from latentstudio.metrics import read_records

    rows = read_records(report.parent)
    print("\n" + "source".ljust(16) + "fid_clf".rjust(10))
    for r in rows:
        if r["metric"] == "fid_clf":
            print(f"{r['source']:<16}{r['value']:>10.3f}")
    for r in rows:
        if r["metric"] in ("inactive_latents", "gamma"):
            print(f"{r['metric']}: {r['value']:.4g}")
