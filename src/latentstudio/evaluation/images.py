"""The image evaluator of every image family with an encoder (the VAE family and DRAW).

Written against :class:`~latentstudio.models.base.GenerativeModel`; against the test split of the
reference data (default: the model's training dataset) it records:

- per sample source (every sampler of a ``sampler`` knob: N(0, I), GMM, second stage ...; else one
  ``prior`` source, drawn at the ``temperature`` option when the family has that knob): ``fid``/``kid``/``is``
  with Inception, or ``fid_clf``/``kid_clf``/``is_clf`` with the project classifier; for class-conditional
  models ``classifier_accuracy`` (samples classified as the requested class, with ``per_class``);
- with RECONSTRUCT: the same FID/KID/IS of the test reconstructions and ``recon_mse`` / ``recon_bce`` per pixel;
- with ENCODE: latent diagnostics (``variance_law``, ``inactive_latents``, ``mahalanobis`` of the posterior
  means; DRAW: per step, with ``kl`` and ``nelbo``);
- with NLL and a Bernoulli decoder: ``nll``, importance sampled, in nats, on test images binarised at 0.5;
- family extras: the VAE gammas (``gamma``, ``gamma_z`` of the second stage), DRAW's per-step plot and
  canvas pictures.

Models trained on binarised images (``meta.json`` ``binarize: threshold``) are reconstructed and analysed
on the binarised test images. Each value is one stamped line of ``metrics.jsonl``; ``report.md`` shows
them with the sample grids.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio import metrics as M
from latentstudio.data.images import binarize_images
from latentstudio.data.spec import DataSpec
from latentstudio.errors import ConfigError, DataError
from latentstudio.evaluation.common import (
    data_spec_for,
    image_metric_values,
    interleave_rows,
    load_extractor,
    load_train_test,
    phase,
    report_dir,
    sample_with_progress,
)
from latentstudio.evaluation.report import (
    Recorder,
    fmt,
    pictures,
    pivot_table,
    records_table,
    trained_on,
    versions_line,
    write_report,
)
from latentstudio.io.atomic import atomic_path
from latentstudio.io.images import save_grid, to_float
from latentstudio.models.base import ENCODE, NLL, RECONSTRUCT, GenerativeModel
from latentstudio.models.draw.analysis import collect_posteriors
from latentstudio.models.draw.render import generation_frames, reconstruction_frames, save_drawing

#: Report titles of the samplers of the VAE family.
SAMPLER_TITLES = {"normal": "N(0, I)", "gmm": "GMM (ex post)", "second-stage": "second stage"}
SAMPLER_ORDER = ("normal", "gmm", "second-stage")
#: Sketches drawn step by step in DRAW's canvas pictures.
DRAWING_N = 16
IMAGE_KEYS = ("fid", "kid", "is", "fid_clf", "kid_clf", "is_clf", "classifier_accuracy")
NOTES = {
    "recon_mse": "per pixel, images in [0, 1]",
    "recon_bce": "nats per pixel",
    "mahalanobis": "mean over test images",
    "gamma": "decoder sd of stage 1",
    "gamma_z": "decoder sd of stage 2",
    "kl": "nats per image, sum over steps of KL_t",
    "nelbo": "nats per image: reconstruction + KL (the paper's NLL bound)",
}


@dataclass
class ImageEval:
    """The state an evaluation's hooks read and extend.

    Attributes:
        model: the evaluated model. spec: the reference data spec. train / test: its splits (``ImageData``).
        test_images: ``uint8 [N, C, H, W]`` test images as the model was trained (binarised or not).
        cond_test: condition vectors ``float32 [N, dim]`` of the test images, or None.
        ext: the feature extractor. n: generated images per source. seed, progress, out_dir: as given.
        rec: the :class:`Recorder`. options: the family options. sections: extra report sections.
        recon_pictures: extra pictures of the reconstructions section.
    """

    model: GenerativeModel
    spec: DataSpec
    train: Any
    test: Any
    test_images: torch.Tensor
    cond_test: torch.Tensor | None
    ext: Any
    n: int
    seed: int
    progress: bool
    out_dir: Path
    rec: Recorder
    options: dict[str, Any]
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    recon_pictures: list[tuple[str, str]] = field(default_factory=list)
    source_label: str = ""


@dataclass(frozen=True)
class ImageFamily:
    """What differs between image families (small hooks around the one evaluation).

    Attributes:
        options: the family's evaluation options and their defaults.
        decoder: ``model -> "bernoulli" | "gaussian" | ...`` (the NLL is reported for Bernoulli decoders).
        describe: ``model -> str``: one phrase of architecture for the report (or "").
        latents: ``ImageEval -> None``: latent diagnostics (models with ENCODE).
        extras: ``ImageEval -> None``: family records, pictures and report sections.
        latent_notes: ``(row, model) -> str`` notes of the latent records (variance law, inactive latents).
    """

    options: dict[str, Any]
    decoder: Callable[[Any], str]
    describe: Callable[[Any], str] = lambda model: ""
    latents: Callable[[ImageEval], None] | None = None
    extras: Callable[[ImageEval], None] | None = None


def evaluate_images(
    model: GenerativeModel,
    data: DataSpec | dict[str, Any] | str | None = None,
    *,
    family: ImageFamily,
    extractor: str = "classifier",
    n_samples: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Evaluate an image model and write ``metrics.jsonl`` + ``report.md`` + pictures (see the module docstring).

    Args:
        model: a loaded image model (``output_kind == "images"``).
        data: the reference data (default: the dataset the model was trained on).
        family: the family's hooks (from the ``EVALUATORS`` registry).
        extractor: ``classifier`` (offline; values named ``*_clf``) or ``inception`` (standard FID; its
            weights must be in the torch hub cache, or ``download_weights``).
        n_samples: generated images per source (default: the test-set size).
        out_dir: report folder (default: a new numbered ``<run>/eval/NNNNN-<data>-<extractor>/``).
        seed: seed of sampling and of every random draw of the evaluation.
        **options: family options (``samplers``, ``temperature``, ``nll_samples``, ``nll_images`` ...).

    Returns:
        Path of ``report.md``.

    Raises:
        DataError: the test images do not match the model; ConfigError: a bad option;
        ExtractorWeightsMissing: Inception weights absent.
    """
    opts = {**family.options, **{k: v for k, v in options.items() if v is not None}}
    spec = data_spec_for(model, data)
    if spec.kind != "images":
        raise DataError(f"{model.model_type} models are evaluated on images; {spec.name!r} holds {spec.kind}")
    train, test, ref_split = load_train_test(spec)
    reference = f"{test.name}/{ref_split}"
    expected = tuple(model.example_batch(1).x.shape[1:])
    if test.image_shape != expected:
        raise DataError(f"{reference} has images {list(test.image_shape)}, the model expects {list(expected)}; "
                        "use the model's dataset options (e.g. --data-option pad=0 for 28x28 MNIST)")
    out = report_dir(model, out_dir, f"{test.name}-{extractor}")
    ext = load_extractor(extractor, train, test, download_weights, progress)
    n = n_samples or len(test)
    if min(n, len(test)) < M.FID_MIN_SAMPLES:  # said once here and in the report, not at every value
        warnings.warn(f"evaluating with {len(test)} reference and {n} generated images (< {M.FID_MIN_SAMPLES}): "
                      "FID/KID values are biased upwards; compare them only at equal counts",
                      M.BiasedMetricWarning, stacklevel=2)
    binarized = model.meta.get("binarize") == "threshold"
    kind = model.condition_spec.kind
    ev = ImageEval(
        model=model, spec=spec, train=train, test=test,
        test_images=binarize_images(test.images) if binarized else test.images,
        cond_test=test.conditions(kind) if kind != "none" else None, ext=ext, n=n, seed=seed, progress=progress,
        out_dir=out, options=opts,
        rec=Recorder(out, reference=reference, num_real=len(test), extractor=ext,
                     extra={"model": str(model.path), "seed": seed}),
        source_label=f"test ({'binarised' if binarized else 'as trained'})",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.BiasedMetricWarning)
        return _evaluate(ev, family)


def _sources(ev: ImageEval) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """``[(source name, sampling knobs, extra record fields), ...]``."""
    model, opts = ev.model, ev.options
    knobs = {k.name for k in model.knobs}
    if "sampler" in knobs:
        choices = list(model.sampler_choices() or ())
        given = opts.get("samplers")
        if isinstance(given, str):  # "normal,gmm"
            given = [s.strip() for s in given.split(",") if s.strip()]
        names = list(given or ()) or sorted(
            choices, key=lambda s: SAMPLER_ORDER.index(s) if s in SAMPLER_ORDER else len(SAMPLER_ORDER))
        for s in names:
            if s not in choices:
                raise ConfigError(f"unknown sampler {s!r}; this model has: {', '.join(choices)}")
        return [(s, {"sampler": s}, {}) for s in names]
    if opts.get("samplers"):
        raise ConfigError(f"{model.model_type} has no latent samplers; drop samplers (CLI: --samplers)")
    extra = {k: opts[k] for k in ("temperature",) if k in knobs and k in opts}
    return [("prior", extra, dict(extra))]


def _evaluate(ev: ImageEval, family: ImageFamily) -> Path:
    model, test, rec, n, seed = ev.model, ev.test, ev.rec, ev.n, ev.seed
    sources = _sources(ev)
    if ev.progress:
        extras = [w for w, cap in (("reconstructions", RECONSTRUCT), ("latent statistics", ENCODE), ("NLL", NLL))
                  if model.supports(cap)]
        tqdm.write(f"evaluating: {n} samples from each of {', '.join(s for s, _, _ in sources)}, scored against "
                   f"{len(test)} test images with {ev.ext.name} features" + (f"; {', '.join(extras)}" if extras else ""),
                   file=sys.stderr)
    f_real = M.extract_features(test.images, ev.ext, progress=ev.progress)

    def image_metrics(images: torch.Tensor, source: str, **extra: Any) -> None:
        for key, value, std in image_metric_values(f_real, images, ev.ext, num_real=len(test), seed=seed,
                                                   progress=ev.progress):
            rec.add(key, value, source, len(images), std, with_extractor=True, **extra)

    spec_c = model.condition_spec
    class_cond = spec_c.kind == "class"
    sample_pictures: list[tuple[str, str]] = []
    seconds: dict[str, float] = {}
    labels = torch.arange(n) % spec_c.dim if class_cond else None
    for name, knobs, extra in sources:
        if class_cond:
            condition: Any = labels.tolist()
        elif ev.cond_test is not None:
            condition = ev.cond_test[torch.arange(n) % len(test)]
        else:
            condition = None
        t0 = time.perf_counter()
        images = sample_with_progress(model, n, seed=seed, condition=condition, progress=ev.progress, what=name,
                                      **knobs)
        seconds[name] = time.perf_counter() - t0
        image_metrics(images, name, **extra)
        if class_cond and hasattr(ev.ext, "predict"):
            hit = (ev.ext.predict(images) == labels).float()
            per_class = [round(float(hit[labels == k].mean()), 4) for k in range(spec_c.dim) if (labels == k).any()]
            rec.add(M.KEY_CLASSIFIER_ACCURACY, float(hit.mean()), name, n, with_extractor=True, per_class=per_class,
                    min_class=min(per_class), what="fraction of samples classified as the requested class")
        grid = f"samples-{name}.png" if "sampler" in knobs else "samples.png"
        save_grid(images[:64], ev.out_dir / grid, nrow=8, overwrite=True)
        sample_pictures.append((SAMPLER_TITLES.get(name, "samples" if name == "prior" else name), grid))

    recon_pictures: list[tuple[str, str]] = []
    if model.supports(RECONSTRUCT):
        with phase(f"reconstructing the {len(ev.test_images)} test images", ev.progress):
            recon = model.reconstruct(ev.test_images, condition=ev.cond_test)
        image_metrics(recon, "reconstruction")
        x, x_hat = to_float(ev.test_images), to_float(recon)
        rec.add(M.KEY_RECON_MSE, float(M.reconstruction_error(x, x_hat, "mse").mean()), "reconstruction", len(test))
        rec.add(M.KEY_RECON_BCE, float(M.reconstruction_error(x, x_hat, "bce").mean()), "reconstruction", len(test))
        m = min(32, len(test)) // 8 * 8 or len(test)
        save_grid(interleave_rows(ev.test_images[:m], recon[:m]), ev.out_dir / "reconstructions.png",
                  nrow=min(8, m), overwrite=True)
        recon_pictures.append(("reconstructions", "reconstructions.png"))

    if model.supports(ENCODE):
        with phase(f"latent statistics of the {len(test)} test images (encoding, active units)", ev.progress):
            (family.latents or encoder_latents)(ev)
    if family.extras is not None:
        with phase(f"{model.model_type} extras", ev.progress):
            family.extras(ev)
    if model.supports(NLL) and family.decoder(model) == "bernoulli":
        k = min(int(ev.options["nll_images"]), len(test))
        xb = binarize_images(test.images[:k])  # binarised at 0.5, as the NLL benchmarks use
        cb = None if ev.cond_test is None else ev.cond_test[:k]
        t0 = time.perf_counter()
        with phase(f"test NLL of {k} images by importance sampling (K = {int(ev.options['nll_samples'])})",
                   ev.progress):
            nll = model.nll(xb, condition=cb, num_samples=int(ev.options["nll_samples"]),
                            generator=torch.Generator(device=model.device).manual_seed(seed))
        rec.add(M.KEY_NLL, float(nll.mean()), "test (binarised)", k, unit="nats", k=int(ev.options["nll_samples"]),
                stderr=float(nll.std() / math.sqrt(k)) if k > 1 else None, seconds=round(time.perf_counter() - t0, 1))
    return _write(ev, family, sample_pictures, recon_pictures + ev.recon_pictures, seconds)


# ---------------------------------------------------------------------------------------------- hooks


def encoder_latents(ev: ImageEval) -> None:
    """Variance law and inactive latents of the training posteriors, Mahalanobis distance of the test means."""
    model, train = ev.model, ev.train
    kind = model.condition_spec.kind
    q_train = model.encode(train.images, condition=train.conditions(kind) if kind != "none" else None)
    q_test = model.encode(ev.test_images, condition=ev.cond_test)
    mu_tr, lv_tr = q_train.mean.flatten(1), q_train.logvar.flatten(1)
    law = M.variance_law(mu_tr, lv_tr)
    ev.rec.add(M.KEY_VARIANCE_LAW, float(law.mean()), "train latents", extractor_free=True,
               per_latent=[round(float(v), 4) for v in law], min=float(law.min()), max=float(law.max()))
    ev.rec.add(M.KEY_INACTIVE_LATENTS, M.inactive_latents(mu_tr, lv_tr), "train latents",
               latent_dim=int(mu_tr.shape[1]), threshold=M.INACTIVE_THRESHOLD)
    mean, cov = M.fit_gaussian(mu_tr)
    ev.rec.add(M.KEY_MAHALANOBIS, float(M.mahalanobis(q_test.mean.flatten(1), mean, cov).mean()), "test latents",
               what="mean Mahalanobis distance of test mu under the Gaussian of train mu")


def vae_gammas(ev: ImageEval) -> None:
    """The decoder standard deviations: ``gamma`` (stage 1) and ``gamma_z`` (second stage, when present)."""
    model = ev.model
    ev.rec.add("gamma", float(model.image_vae.gamma.detach()), "stage1")
    if "second-stage" in model.own_samplers:
        ev.rec.add("gamma_z", float(model.stage2.gamma.detach()), "stage2")


def draw_steps(ev: ImageEval) -> None:
    """DRAW per step, along sampled inference passes on the test images: ``kl`` (with ``per_step`` KL_t),
    ``variance_law`` and ``inactive_latents`` per step, ``nelbo``; the per-step plot and the canvas pictures."""
    model, rec, test, cfg = ev.model, ev.rec, ev.test, ev.model.config
    g = torch.Generator(device=model.device).manual_seed(ev.seed)
    post = collect_posteriors(model, ev.test_images, ev.cond_test, generator=g)
    kl_steps, law, inactive = post.kl_steps(), post.variance_law(), post.inactive_per_step()
    source = ev.source_label
    rec.add("kl", float(kl_steps.sum()), source, len(test), unit="nats", per_step=[round(float(v), 4) for v in kl_steps])
    rec.add(M.KEY_VARIANCE_LAW, float(law.mean()), source, len(test),
            per_step=[round(float(v), 4) for v in law.mean(dim=1)], min=float(law.min()), max=float(law.max()))
    rec.add(M.KEY_INACTIVE_LATENTS, int(inactive.sum()), source, len(test), per_step=inactive.tolist(),
            latent_dim=cfg.total_latent_dim, latent_dim_per_step=cfg.latent_dim, threshold=M.INACTIVE_THRESHOLD)
    rec.add("nelbo", float(post.negative_elbo().mean()), source, len(test), unit="nats",
            what="negative ELBO (reconstruction + sum_t KL_t), one posterior sample per image")

    out = ev.out_dir
    temperature = float(ev.options.get("temperature", 1.0))
    _, frames = generation_frames(model, DRAWING_N, model.condition_spec.make(None, DRAWING_N),
                                  torch.Generator().manual_seed(ev.seed), temperature=temperature)
    save_drawing(frames, out / "samples-steps.png", out / "canvas.gif", overwrite=True)
    c8 = None if ev.cond_test is None else ev.cond_test[:8]
    _, rframes = reconstruction_frames(model, to_float(ev.test_images[:8]), c8)
    save_drawing(rframes, out / "reconstruction-steps.png", out / "reconstruction.gif", overwrite=True)
    plot_steps(out / "per-step.png", kl_steps, inactive, cfg.latent_dim)
    ev.recon_pictures.append(("reconstruction steps", "reconstruction-steps.png"))

    kl_r, law_r, in_r = rec.find("kl"), rec.find(M.KEY_VARIANCE_LAW), rec.find(M.KEY_INACTIVE_LATENTS)
    lines = ["![per step](per-step.png)", "",
             f"| step t | KL_t (nats) | variance law (mean of {cfg.latent_dim}) | inactive latents |",
             "|---|---|---|---|"]
    for t, (k, v, i) in enumerate(zip(kl_r["per_step"], law_r["per_step"], in_r["per_step"], strict=True), 1):
        lines.append(f"| {t} | {fmt(k)} | {fmt(v)} | {i} / {cfg.latent_dim} |")
    boxes = " Green boxes: write windows; red boxes: read windows." if cfg.attention else ""
    ev.sections += [
        ("Per step", lines),
        ("Drawing", [f"Canvas after each step (columns), one sample per row.{boxes}", "",
                     "![steps](samples-steps.png)", "", "![drawing](canvas.gif)"]),
    ]


def plot_steps(path: Path, kl_steps: torch.Tensor, inactive: torch.Tensor, latent_dim: int) -> None:
    """Bar plots of KL_t (nats) and of the inactive latents per step, as a PNG at ``path``."""
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    t = torch.arange(1, len(kl_steps) + 1)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].bar(t.numpy(), kl_steps.numpy(), color="#4c72b0")
    ax[0].set_xlabel("step t")
    ax[0].set_ylabel("KL_t (nats)")
    ax[0].set_title("KL per step")
    ax[1].bar(t.numpy(), inactive.numpy(), color="#dd8452")
    ax[1].set_ylim(0, latent_dim)
    ax[1].set_xlabel("step t")
    ax[1].set_ylabel(f"inactive latents (of {latent_dim})")
    ax[1].set_title("inactive latents per step")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def describe_draw(model) -> str:
    cfg = model.config
    attention = (f"attention (read {cfg.read_n}x{cfg.read_n}, write {cfg.write_n}x{cfg.write_n})" if cfg.attention
                 else "no attention")
    return (f"DRAW, T = {cfg.steps} steps x {cfg.latent_dim} latents, LSTM {cfg.enc_dim}/{cfg.dec_dim}, {attention}, "
            f"{cfg.decoder} decoder, condition {cfg.condition}")


def describe_vae(model) -> str:
    cfg = model.image_vae.config
    return f"{model.model_type}, {cfg.latent_dim} latents, {cfg.decoder} decoder, condition {cfg.condition}"


#: The VAE family (``vae``, ``two-stage-vae``): one source per sampler, the gammas.
VAE_FAMILY = ImageFamily(options={"samplers": None, "nll_samples": 100, "nll_images": 500},
                         decoder=lambda m: m.image_vae.config.decoder, describe=describe_vae, extras=vae_gammas)
#: DRAW: prior samples at ``temperature``, per-step analysis instead of the encoder diagnostics.
DRAW_FAMILY = ImageFamily(options={"temperature": 1.0, "nll_samples": 100, "nll_images": 1000},
                          decoder=lambda m: m.config.decoder, describe=describe_draw, latents=draw_steps)


# ---------------------------------------------------------------------------------------------- report


def _latent_note(r: dict[str, Any]) -> str:
    m = r["metric"]
    if m == "variance_law":
        return (f"mean over latents of Var(mu) + E[sd^2] (min {fmt(r.get('min'))}, max {fmt(r.get('max'))}); "
                "1 is ideal")
    if m == "inactive_latents":
        return f"E[sd^2] > {r.get('threshold')} of {r.get('latent_dim')} latents"
    if m == "nll":
        return f"nats, importance sampled (K = {r.get('k')}), standard error {fmt(r.get('stderr'))}"
    return NOTES.get(m, "")


def _write(ev: ImageEval, family: ImageFamily, sample_pictures, recon_pictures, seconds) -> Path:
    model, ext, rows = ev.model, ev.ext, ev.rec.rows
    describe = family.describe(model)
    fid_name = "fid_clf" if ext.name == "classifier" else "fid"
    provenance = [
        f"- model: `{model.path}`" + (f": {describe}" if describe else ""),
        f"- {trained_on(model.meta)}",
        f"- reference: {ev.rec.reference} ({ev.rec.num_real} images); {ev.n} generated images per source; seed {ev.seed}",
        f"- extractor: **{ext.name}** (weights `{ext.weights_hash}`); resize rule: {ext.resize_rule}",
        f"- metric names: `{fid_name}`"
        + (" is computed on the project's own classifier features; it is **not comparable** with published "
           "Inception FIDs." if ext.name == "classifier" else " uses the standard TF-2015 Inception-v3 pool3 features."),
    ]
    if getattr(ext, "test_accuracy", None) is not None:
        provenance.append(f"- classifier held-out accuracy: {ext.test_accuracy:.4f}")
    if ev.rec.num_real < 2048 or ev.n < 2048:
        provenance.append("- fewer than 2048 images: FID/KID are biased upwards; compare values only at equal counts.")
    provenance.append("- sampling " + ", ".join(f"{ev.n} images ({name}) took {s:.1f} s" for name, s in seconds.items()))
    provenance.append(versions_line())
    sections: list[tuple[str, list[str]]] = [("Image metrics", pivot_table(rows, IMAGE_KEYS, SAMPLER_TITLES))]
    acc = [r for r in rows if r["metric"] == "classifier_accuracy"]
    for r in acc:
        sections[-1][1].extend(["", f"Per-class accuracy of conditional samples ({SAMPLER_TITLES.get(r['source'], r['source'])}"
                                f", worst class {fmt(r.get('min_class'))}): "
                                + ", ".join(f"{k}: {v:.3f}" for k, v in enumerate(r["per_class"]))])
    others = [r for r in rows if r["metric"] not in IMAGE_KEYS]
    sections.append(("Reconstruction and latents", records_table(others, note_fn=_latent_note)))
    sections += ev.sections
    sections.append(("Samples", pictures(sample_pictures, headings=len(sample_pictures) > 1)))
    if recon_pictures:
        sections.append(("Reconstructions", ["Odd rows: test images; even rows: reconstructions.", "",
                                             *pictures(recon_pictures)]))
    title = "DRAW evaluation report" if model.model_type == "draw" else "Evaluation report"
    return write_report(ev.out_dir, title=title, provenance=provenance, sections=sections)


def summarize_records(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A flat summary of an image evaluation's records (for benchmarks and studies): ``<fid key>_samples``
    (the ``prior`` source) / ``<fid key>_<source>``, ``kl`` / ``variance_law`` / ``inactive_latents`` with
    ``*_per_step``, ``classifier_accuracy(_per_class)``, ``nll`` with ``nll_stderr``, ``nll_k``, ``nll_images``,
    and every other metric by name."""
    out: dict[str, Any] = {}
    for r in rows:
        m, src = r["metric"], r.get("source")
        if m in ("fid_clf", "kid_clf", "is_clf", "fid", "kid", "is"):
            out[f"{m}_{'samples' if src == 'prior' else src}"] = r["value"]
        elif m in ("kl", "variance_law", "inactive_latents"):
            out[m] = r["value"]
            out[f"{m}_per_step"] = r.get("per_step")
        elif m == "classifier_accuracy":
            out[m] = r["value"]
            out["classifier_accuracy_per_class"] = r.get("per_class")
        elif m == "nll":
            out["nll"] = r["value"]
            out["nll_stderr"] = r.get("stderr")
            out["nll_k"] = r.get("k")
            out["nll_images"] = r.get("num_generated")
        else:
            out[m] = r["value"]
    return out


__all__ = ["DRAW_FAMILY", "VAE_FAMILY", "ImageEval", "ImageFamily", "evaluate_images", "summarize_records"]
