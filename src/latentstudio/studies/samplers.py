"""``samplers``: how the latent sampler of one trained VAE changes its FID, and what it costs.

Protocol (SPEC sections 1 and 3; Ghosh et al. 2020 ex-post density estimation; Dai & Wipf 2019):

- one two-stage VAE, trained here under ``--budget`` (or given with ``--model``);
- samplers: z ~ N(0, I); a Gaussian mixture with k components for every k in ``gmm_components``
  (default 1, 10, 50), full or diagonal covariance (``gmm_covariances``), fitted by EM (scikit-learn,
  k-means initialisation, seed fixed) either on the posterior means mu(x) of the training images or on
  one draw z = mu + sd * eps per image; a Gaussian kernel density estimate on the training mu(x) (the
  baseline: scikit-learn's ``KernelDensity`` on per-dimension standardised mu, one cell per bandwidth
  rule in ``kde_bandwidths``, default Scott's rule and the held-out cross-validated bandwidth; see
  :mod:`latentstudio.samplers.kde`); the second-stage VAE (u ~ N(0, I) -> decoder 2 -> z);
- per sampler: FID of ``n_samples`` decoded samples against the reference split, the seconds to fit
  it (the second stage: its training time in this study), to draw the latents and to decode them,
  and the mean log-density (nats) of the reference images' mu under the fitted density (N(0, I), GMMs
  and KDEs; a held-out check of the density fit);
- the orderings the two-stage papers report, checked on the finished cells: second stage <= 0.8 x
  N(0, I), every GMM < N(0, I), reconstructions below every sampler.

Timings are wall-clock seconds on the machine that ran the cell (recorded with it).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio.errors import ConfigError
from latentstudio.io.checkpoint import read_meta
from latentstudio.io.images import save_grid
from latentstudio.metrics import extract_features
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.loading import resolve_model_dir
from latentstudio.samplers import GMMSampler, KDESampler, NormalSampler, load_model_with_samplers
from latentstudio.samplers.gmm import COVARIANCE_TYPES
from latentstudio.samplers.kde import BANDWIDTH_RULES
from latentstudio.studies import common as C
from latentstudio.studies import twostage as T
from latentstudio.studies.runner import Study, markdown_table

NAME = "samplers"
DEFAULT_GMM_K = (1, 10, 50)
DEFAULT_COVARIANCES = ("full", "diag")
DEFAULT_KDE_BANDWIDTHS = ("scott", "cv")
#: The second stage must reach at most this fraction of the fid of N(0, I) (Dai & Wipf's claim, issue target).
SECOND_STAGE_RATIO = 0.8

__all__ = ["DEFAULT_COVARIANCES", "DEFAULT_GMM_K", "DEFAULT_KDE_BANDWIDTHS", "NAME", "orderings", "run_samplers",
           "sampler_grid"]


def sampler_grid(
    ks: list[int],
    covariances: tuple[str, ...] | list[str] = DEFAULT_COVARIANCES,
    kde_bandwidths: tuple[str, ...] | list[str] = DEFAULT_KDE_BANDWIDTHS,
) -> list[dict[str, Any]]:
    """The sampler variants of the study: ``normal``, every GMM (k x covariance x fit_on), every KDE
    (bandwidth rule, fitted on mu), ``second-stage``.

    Each variant is ``{"key", "kind", "k", "covariance", "fit_on", "bandwidth"}`` (None where it does not apply).
    """
    none = {"k": None, "covariance": None, "fit_on": None, "bandwidth": None}
    out: list[dict[str, Any]] = [{"key": "normal", "kind": "normal", **none}]
    for k in ks:
        for cov in covariances:
            for fit_on in ("mean", "sample"):
                out.append({"key": f"gmm/k={k}/cov={cov}/fit={fit_on}", "kind": "gmm", **none, "k": k,
                            "covariance": cov, "fit_on": fit_on})
    for bw in kde_bandwidths:
        out.append({"key": f"kde/bw={bw}/fit=mean", "kind": "kde", **none, "fit_on": "mean", "bandwidth": bw})
    out.append({"key": "second-stage", "kind": "second-stage", **none})
    return out


def orderings(fids: dict[str, float]) -> dict[str, bool | None]:
    """The orderings expected of the samplers, from ``{cell key: fid}`` (None when a cell is missing):

    - ``second_stage_le_0.8_normal``: second stage <= 0.8 x N(0, I);
    - ``every_gmm_lt_normal``: every GMM below N(0, I) (``gmm10_mu_lt_normal``: the GMM with 10 full
      components on mu, the two-stage model's own);
    - ``reconstruction_lowest``: reconstructions below every sampler.
    """
    normal, second, rec = fids.get("normal"), fids.get("second-stage"), fids.get("reconstruction")
    gmms = [v for k, v in fids.items() if k.startswith("gmm/")]
    gmm10 = fids.get("gmm/k=10/cov=full/fit=mean")
    samplers = [v for k, v in fids.items() if k != "reconstruction"]
    return {
        f"second_stage_le_{SECOND_STAGE_RATIO}_normal":
            None if normal is None or second is None else second <= SECOND_STAGE_RATIO * normal,
        "every_gmm_lt_normal": None if normal is None or not gmms else all(v < normal for v in gmms),
        "gmm10_mu_lt_normal": None if normal is None or gmm10 is None else gmm10 < normal,
        "reconstruction_lowest": None if rec is None or not samplers else rec < min(samplers),
    }


def _model_identity(path: Path) -> dict[str, Any]:
    model_dir = resolve_model_dir(path)

    h = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()[:16]
    meta = read_meta(model_dir)
    return {"path": str(model_dir), "weights_sha256": h, "trained_on": meta.get("dataset")}


def run_samplers(
    out_dir: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    data: C.StudyData | None = None,
    extractor: Any = "classifier",
    budget: str | C.Budget = "5ep",
    budget2: str | C.Budget | None = None,
    preset: str = "cpu",
    overrides: dict[str, Any] | None = None,
    model: str | Path | None = None,
    gmm_components: list[int] | None = None,
    gmm_covariances: list[str] | None = None,
    kde_bandwidths: list[str] | None = None,
    gmm_fit_size: int | None = None,
    n_reference: int = 10000,
    n_samples: int | None = None,
    extractor_budget: str | C.Budget | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    download_weights: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    command: str | None = None,
) -> Path:
    """Run (or resume) the sampler study in ``out_dir`` and write its report.

    Args:
        model: a trained two-stage model or run directory to study instead of training one (its
            weights hash goes into the protocol; ``budget``, ``preset`` and ``overrides`` are then unused).
        gmm_components: k values (default :data:`DEFAULT_GMM_K`).
        gmm_covariances: GMM covariance types (default :data:`DEFAULT_COVARIANCES`: full and diag).
        kde_bandwidths: bandwidth rules of the KDE cells (default :data:`DEFAULT_KDE_BANDWIDTHS`;
            ``[]`` leaves the KDE out); see :class:`~latentstudio.samplers.KDESampler`.
        gmm_fit_size: fit the GMMs and KDEs on this many training latents (a seeded random subset; default all).
        Other arguments as :func:`latentstudio.studies.training_subsets.run_training_subsets`.

    Returns:
        Path of ``report.md``.

    Raises:
        ConfigError: bad k values, covariance types, bandwidth rules or fit size, a model of another
        image shape; DataError,
        ExtractorWeightsMissing, RunExistsError as for the other studies.
    """
    ks = sorted(set(gmm_components or DEFAULT_GMM_K))
    if ks[0] < 1:
        raise ConfigError(f"GMM component counts must be >= 1, got {ks}")
    covs = tuple(dict.fromkeys(gmm_covariances if gmm_covariances is not None else DEFAULT_COVARIANCES))
    bad = [c for c in covs if c not in COVARIANCE_TYPES]
    if bad or not covs:
        raise ConfigError(f"GMM covariance types must be some of {', '.join(COVARIANCE_TYPES)}; got {list(covs)}")
    bws = tuple(dict.fromkeys(kde_bandwidths if kde_bandwidths is not None else DEFAULT_KDE_BANDWIDTHS))
    bad = [b for b in bws if b not in BANDWIDTH_RULES]
    if bad:
        raise ConfigError(f"KDE bandwidth rules must be some of {', '.join(BANDWIDTH_RULES)}; got {bad}")
    data = data or C.load_study_data(data_spec, seed=seed)
    T.check_shape(data)
    n_train = len(data.train)
    fit_size = min(gmm_fit_size or n_train, n_train)
    if fit_size < ks[-1]:
        raise ConfigError(f"a GMM with {ks[-1]} components needs at least {ks[-1]} latents to fit; "
                          f"got {fit_size} (training images or --gmm-fit-size)")
    device = C.device_for(accelerator)
    ext = C.build_study_extractor(extractor, data, budget=C.parse_budget(extractor_budget),
                                  download=download_weights, progress=progress, device=device)
    m = min(n_reference, len(data.test))
    n_gen = n_samples or m
    protocol: dict[str, Any] = {
        "data": data.protocol(),
        "extractor": C.describe_extractor(ext),
        "reference": f"first {m} images of {data.test.name}/{data.test.split}",
        "reference_size": m,
        "samples_per_sampler": n_gen,
        "gmm_components": ks,
        "gmm_fit_size": fit_size,
        **({"gmm_covariances": list(covs)} if covs != DEFAULT_COVARIANCES else {}),
        "kde_bandwidths": list(bws),
        "seed": seed,
    }
    if model is not None:
        protocol["model"] = {"given": _model_identity(Path(model))}
    else:
        bud = C.parse_budget(budget)
        if bud is None:
            raise ConfigError("the samplers study trains a model: give --budget (e.g. 5ep) or --model")
        b2 = C.parse_budget(budget2)
        spec = T.model_spec(data, preset=preset, budget=bud, budget2=b2, overrides=overrides, seed=seed,
                            accelerator=accelerator)
        protocol["model"] = {"preset": preset, "overrides": overrides or {}, "spec": spec, "budget": str(bud),
                             "budget2": None if b2 is None else str(b2)}
    study = Study(out_dir, NAME, protocol, overwrite=overwrite)
    if overwrite:
        T.discard_models(study)
    variants = sampler_grid(ks, covs, bws)

    def fx(images: torch.Tensor) -> torch.Tensor:
        return extract_features(images, ext, batch_size=256, progress=False)

    reference = data.test.images[:m]
    keys = [*(v["key"] for v in variants), "reconstruction", *([] if model is not None else ["train"])]
    try:
        if all(k in study.done() for k in keys):  # finished: only the report is rendered again
            return _report(study, data, ext, m, n_gen, ks, variants, fit_size, command)
        f_ref = study.artifact("reference-features", lambda: {"features": fx(reference)})["features"]
        if model is None:
            rec = study.cell("train", lambda: T.train_or_resume(study, "vae", spec, data.train, progress=progress),
                             step="train")
            loaded = load_model_with_samplers(study.dir / rec["run"], map_location=str(device))
        else:
            rec = {}
            loaded = load_model_with_samplers(model, map_location=str(device))
        cfg = loaded.image_vae.config
        if (cfg.image_channels, cfg.image_size, cfg.image_size) != data.train.image_shape:
            raise ConfigError(f"the model makes {cfg.image_channels}x{cfg.image_size}x{cfg.image_size} images but "
                              f"{data.name} has {list(data.train.image_shape)}")

        def posteriors() -> dict[str, torch.Tensor]:
            q = loaded.image_vae.encode(data.train.images)
            q_ref = loaded.image_vae.encode(reference)
            return {"mean": q.mean, "logvar": q.logvar, "ref_mean": q_ref.mean}

        post = study.artifact("posteriors", posteriors)
        fit_idx = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))[:fit_size].sort().values

        q_fit = DiagonalGaussian(post["mean"][fit_idx], post["logvar"][fit_idx])
        stage_seconds = rec.get("stage_seconds")
        bar = tqdm(variants, desc=f"{NAME} cells", disable=not progress)
        for i, v in enumerate(bar):
            bar.set_postfix(sampler=v["key"])
            labels = {k: v[k] for k in ("kind", "k", "covariance", "fit_on", "bandwidth")}
            study.cell(v["key"], lambda v=v, i=i: _sampler_cell(study, v, loaded, q_fit, post["ref_mean"], f_ref, fx,
                                                                n_gen, seed + 1 + i, stage_seconds), **labels)

        def recon() -> dict[str, Any]:
            r = T.reconstruct_images(loaded.image_vae, reference)
            return {"fid": C.fid(f_ref, fx(r))}

        study.cell("reconstruction", recon, kind="reconstruction")
    except BaseException:
        _report(study, data, ext, m, n_gen, ks, variants, fit_size, command)  # what is finished, meanwhile
        raise
    return _report(study, data, ext, m, n_gen, ks, variants, fit_size, command)


def _sampler_cell(study, v, loaded, q_fit, ref_mu, f_ref, fx, n_gen, seed, stage_seconds) -> dict[str, Any]:
    d = loaded.image_vae.config.latent_dim
    fit_seconds: float | None = 0.0
    log_density: float | None = None
    extra: dict[str, Any] = {}
    if v["kind"] == "normal":
        sampler = NormalSampler(d)
        log_density = float(torch.distributions.Normal(0.0, 1.0).log_prob(ref_mu.double()).sum(1).mean())
    elif v["kind"] in ("gmm", "kde"):
        if v["kind"] == "gmm":
            sampler = GMMSampler(d, n_components=v["k"], covariance_type=v["covariance"], fit_on=v["fit_on"],
                                 seed=seed)
        else:
            sampler = KDESampler(d, bandwidth=v["bandwidth"], fit_on=v["fit_on"], seed=seed)
        t = time.perf_counter()
        sampler.fit(q_fit, generator=torch.Generator().manual_seed(seed))
        fit_seconds = time.perf_counter() - t
        log_density = float(sampler.log_prob(ref_mu).double().mean())
        if v["kind"] == "kde":
            extra["bandwidth_h"] = round(sampler.bandwidth_, 5)
            if sampler.cv_scores:
                extra["cv_scores"] = {str(h): round(s, 4) for h, s in sampler.cv_scores.items()}
    else:
        sampler = loaded.latent_sampler("second-stage")
        fit_seconds = None if not stage_seconds else float(stage_seconds[1])
    t = time.perf_counter()
    z = sampler.sample(n_gen, torch.Generator().manual_seed(seed))
    t_sample = time.perf_counter() - t
    t = time.perf_counter()
    images = T.decode_latents(loaded.image_vae, z)
    t_decode = time.perf_counter() - t
    grid = None
    if v["kind"] != "gmm" or (v["covariance"] == "full" and v["fit_on"] == "mean"):
        grid = "samples-" + v["key"].replace("/", "-").replace("=", "") + ".png"
        save_grid(images[:64], study.dir / grid, nrow=8, overwrite=True)
    return {"fid": C.fid(f_ref, fx(images)), "fit_seconds": None if fit_seconds is None else round(fit_seconds, 4),
            "sample_seconds": round(t_sample, 4), "decode_seconds": round(t_decode, 3),
            "ref_log_density": log_density, "n": n_gen, **extra, **({"grid": grid} if grid else {})}


def _report(study: Study, data: C.StudyData, ext, m, n_gen, ks, variants, fit_size, command) -> Path:
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    done = study.done()
    key = "fid" if ext.name == "inception" else "fid_clf"
    rows = []
    for v in variants:
        r = done.get(v["key"], {})
        name = {"normal": "N(0, I)", "second-stage": "second stage", "kde": "KDE"}.get(v["kind"], "GMM")
        kernel = v["covariance"] or ""
        if v["kind"] == "kde":
            kernel = f"bandwidth {v['bandwidth']}" + (f" (h = {r['bandwidth_h']:.3g})" if "bandwidth_h" in r else "")
        rows.append([name, v["k"] if v["k"] is not None else "", kernel, v["fit_on"] or "",
                     r.get("fid"), r.get("fit_seconds"), r.get("sample_seconds"), r.get("decode_seconds"),
                     r.get("ref_log_density")])
    rec = done.get("reconstruction")
    rows.append(["reconstruction (reference point)", "", "", "", None if rec is None else rec["fid"], None, None, None,
                 None])
    table = markdown_table(["sampler", "k", "covariance / kernel", "fit on", key, "fit (s)", "sample latents (s)",
                            "decode (s)", "log p(mu_ref) (nats)"], rows, fmt="{:.4g}")
    sections = [("FID and cost per sampler", table + f"\n\n{n_gen} samples per sampler against {m} reference images; "
                 f"GMMs and KDEs fitted on {fit_size} training latents. 'fit' of the second stage is its training time "
                 "in this study (empty when the model was given or its training was resumed); 'log p(mu_ref)' is the "
                 "mean log-density of the reference images' posterior means under the fitted density. KDE bandwidths "
                 "h are in units of each latent dimension's standard deviation: Scott's rule n^(-1/(d+4)), or 'cv', "
                 "the h of a grid (1/16 to 2 times Scott's) with the highest log-likelihood of a held-out tenth of "
                 "the fit latents.")]
    fids = {k_: r["fid"] for k_, r in done.items() if isinstance(r, dict) and "fid" in r}
    checks = orderings({k_: fids[k_] for k_ in [*(v["key"] for v in variants), "reconstruction"] if k_ in fids})
    words = {True: "yes", False: "**no**", None: "not measured"}
    check_rows = [
        [f"second stage <= {SECOND_STAGE_RATIO} x N(0, I)", words[checks[f"second_stage_le_{SECOND_STAGE_RATIO}_normal"]]],
        ["every GMM < N(0, I)", words[checks["every_gmm_lt_normal"]]],
        ["GMM-10 (full, on mu) < N(0, I)", words[checks["gmm10_mu_lt_normal"]]],
        ["reconstructions below every sampler", words[checks["reconstruction_lowest"]]],
    ]
    sections.append(("Expected orderings", markdown_table(["ordering", "holds"], check_rows)))
    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = False
    for cov in ("full", "diag"):
        for fit_on, style in (("mean", "-o"), ("sample", "--s")):
            pts = [(k, done[f"gmm/k={k}/cov={cov}/fit={fit_on}"]["fid"]) for k in ks
                   if f"gmm/k={k}/cov={cov}/fit={fit_on}" in done]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"GMM {cov}, fit on {'mu' if fit_on == 'mean' else 'z'}")
                plotted = True
    kde_lines = [(v["key"], f"KDE ({v['bandwidth']})", c) for v, c in
                 zip([v for v in variants if v["kind"] == "kde"], ("tab:purple", "tab:brown", "tab:olive"), strict=False)]
    for k_, label, color in (("normal", "N(0, I)", "black"), ("second-stage", "second stage", "tab:red"), *kde_lines,
                             ("reconstruction", "reconstruction", "tab:green")):
        if k_ in done:
            ax.axhline(done[k_]["fid"], color=color, ls=":", label=label)
            plotted = True
    if plotted:
        ax.set(xscale="log", xlabel="GMM components k", ylabel=key, title=f"{data.name}: FID per sampler")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        sections.append(("Plot", C.figure_markdown("FID per sampler", study.save_figure(fig, "fid-samplers.png"))))
    else:
        plt.close(fig)
    pics = [f"{v['key']}: " + C.figure_markdown(v["key"], done[v["key"]]["grid"]) for v in variants
            if v["key"] in done and done[v["key"]].get("grid")]
    if pics:
        sections.append(("Samples", "\n\n".join(pics)))
    notes = [n for n in (C.small_sample_note(m, n_gen),) if n]
    notes.append("Timings are wall-clock seconds of the machine that ran each cell; compare them within one report.")
    if any(v["kind"] == "kde" for v in variants):
        notes.append("The KDE draws a training latent and adds kernel noise: with a small bandwidth its samples are "
                     "near-copies of training images' reconstructions (it memorises), with a large one it blurs "
                     "between them; it is a baseline for the fitted densities, not a generator of new images.")
    sections.append(("Notes", C.bullet_list(notes)))
    diffs = []
    if ext.name != "inception":
        diffs.append("Feature extractor: the project classifier (fid_clf), not Inception-v3.")
    diffs.append(f"Dataset: {data.name}; the seed compared N(0, I), a 10-component GMM and a second stage on CIFAR-10 "
                 "(table 5); the other GMM sizes, the diagonal covariance, fitting on sampled z and the KDE baseline "
                 "extend it.")
    diffs.append("Model: the project's two-stage VAE (see the protocol) instead of the seed's Keras VAE.")
    diffs.extend(C.data_notes(data))
    return C.render_report(
        study, f"Latent samplers of one VAE ({data.name}, {ext.name} features)",
        "Which density over the latent space gives the best samples from one trained VAE, and at what cost: the "
        "prior N(0, I), Gaussian mixtures fitted ex post (Ghosh et al. 2020), a kernel density estimate on the "
        "training posterior means (the baseline) and the second-stage VAE (Dai & Wipf 2019). Extractor: " + C.extractor_statement(ext), sections, differences=diffs, command=command)
