"""``training-subsets``: the same VAE trained on all data, a random half, and the halves chosen by
reconstruction error and by Mahalanobis distance (seed table 5).

Protocol (SPEC section 3, thesis 002 sections 3.2-3.3):

1. ``VAE``: the project's two-stage VAE trained on the whole training split (N images).
2. With that model, every training image gets its reconstruction error (mean squared error per
   pixel, images in [0, 1], decoder mean of the posterior mean) and the Mahalanobis distance of its
   posterior mean mu(x) under a Gaussian fitted to all the training mu (sample mean, unbiased
   covariance; :func:`latentstudio.metrics.mahalanobis`).
3. Three more models with the same config and seed, each on ``floor(fraction * N)`` images:
   ``VAE-H`` a random subset (seeded), ``VAE-RL`` the lowest reconstruction errors, ``VAE-MD`` the
   lowest Mahalanobis distances (ties by index).
4. Every model: FID against the reference split for z ~ N(0, I), for the ex-post GMM with 10 full-
   covariance components fitted by EM on the training mu (the GMM the run fits), for the second stage
   (rows ``*-2STG``), and for the reconstructions of the reference images; plus the reconstruction MSE,
   the variance law, the inactive-latent count and both gammas.

Each model trains under ``--budget`` (both stages, see
:meth:`~latentstudio.studies.common.Budget.stage_configs`), so a CPU run and a GPU run are the same
command with a different budget and preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio.errors import ConfigError
from latentstudio.io.images import save_grid, to_float
from latentstudio.metrics import (
    INACTIVE_THRESHOLD,
    extract_features,
    fit_gaussian,
    inactive_latents,
    mahalanobis,
    reconstruction_error,
    variance_law,
)
from latentstudio.studies import common as C
from latentstudio.studies import twostage as T
from latentstudio.studies.runner import Study, markdown_table

NAME = "training-subsets"

#: model key -> (seed's row name, description)
MODELS: dict[str, tuple[str, str]] = {
    "all": ("VAE", "all training images"),
    "half": ("VAE-H", "a random subset"),
    "low-recon": ("VAE-RL", "lowest reconstruction error under VAE"),
    "low-mahalanobis": ("VAE-MD", "lowest Mahalanobis distance of mu under VAE"),
}
SAMPLERS = ("normal", "gmm", "second-stage")
SAMPLER_TITLES = {"normal": "N(0, I)", "gmm": "GMM-10", "second-stage": "second stage"}

__all__ = ["MODELS", "NAME", "rank_training_images", "run_training_subsets", "select_subsets"]


@torch.no_grad()
def rank_training_images(vae, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Per-image selection scores under a trained VAE.

    Args:
        vae: the first-stage VAE trained on all images.
        images: ``uint8 [N, C, H, W]`` training images.

    Returns:
        ``{"recon_error": float64 [N]`` mean squared error per pixel of the reconstruction (decoder mean
        of mu(x)), images in [0, 1]; ``"mahalanobis": float64 [N]`` distance of mu(x) under the Gaussian
        fitted to all mu (in standard deviations)``}``.
    """
    posterior = vae.encode(images)
    recon = T.reconstruct_images(vae, images, batch_size)
    err = torch.cat([reconstruction_error(to_float(images[i : i + batch_size]), to_float(recon[i : i + batch_size]))
                     for i in range(0, images.shape[0], batch_size)]).double()
    mu = posterior.mean.double()
    mean, cov = fit_gaussian(mu)
    return {"recon_error": err, "mahalanobis": mahalanobis(mu, mean, cov), "mu": posterior.mean}


def select_subsets(scores: dict[str, torch.Tensor], n: int, size: int, seed: int) -> dict[str, torch.Tensor]:
    """Indices (``int64``, ascending) of the training subsets ``half``, ``low-recon``, ``low-mahalanobis``.

    Args:
        scores: from :func:`rank_training_images` (``[n]`` each).
        n: number of training images; size: images per subset (``1 <= size <= n``).
        seed: seed of the random subset.

    Raises:
        ConfigError: ``size`` out of range.
    """
    if not 1 <= size <= n:
        raise ConfigError(f"subset size must be in 1..{n}, got {size}")
    rand = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]
    low = {name: torch.sort(scores[key].double(), stable=True).indices[:size]
           for name, key in (("low-recon", "recon_error"), ("low-mahalanobis", "mahalanobis"))}
    return {"half": rand.sort().values, **{k: v.sort().values for k, v in low.items()}}


def run_training_subsets(
    out_dir: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    data: C.StudyData | None = None,
    extractor: Any = "classifier",
    budget: str | C.Budget = "5ep",
    budget2: str | C.Budget | None = None,
    preset: str = "cpu",
    overrides: dict[str, Any] | None = None,
    fraction: float = 0.5,
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
    """Run (or resume) the study in ``out_dir`` and write its report.

    Args:
        out_dir: study folder; trained models go to ``out_dir/models/<model>/``.
        data_spec / data: the dataset (its train split is "all data", its test split the reference).
        extractor: ``classifier`` (offline, ``fid_clf``), ``inception`` (standard FID) or an extractor.
        budget: per model: ``"5ep"``, ``"10min"`` or ``"5ep,10min"`` (stage 2: see ``Budget.stage_configs``).
        budget2: explicit stage-2 budget (default derived from ``budget``).
        preset: model/optimiser preset (``quickstart``, ``cpu``, ``paper``); overrides: dotted keys.
        fraction: subset size as a fraction of the training split (the seed: 0.5).
        n_reference: reference images (first M of the test split); n_samples: generated images per
            sampler (default M).
        extractor_budget: classifier extractor epochs (``"3ep"``), default its recipe.
        seed: model seed (the same for all four models) and seed of the random half and sampling.
        accelerator: Lightning accelerator for training (``auto`` uses a GPU when present).

    Returns:
        Path of ``report.md``.

    Raises:
        ConfigError, DataError, ExtractorWeightsMissing, RunExistsError (see the other studies).
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    data = data or C.load_study_data(data_spec, seed=seed)
    T.check_shape(data)
    budget = C.parse_budget(budget)
    if budget is None:
        raise ConfigError("training-subsets needs a --budget, e.g. 5ep or 10min")
    budget2 = C.parse_budget(budget2)
    device = C.device_for(accelerator)
    ext = C.build_study_extractor(extractor, data, budget=C.parse_budget(extractor_budget),
                                  download=download_weights, progress=progress, device=device)
    spec = T.model_spec(data, preset=preset, budget=budget, budget2=budget2, overrides=overrides, seed=seed,
                        accelerator=accelerator)
    m = min(n_reference, len(data.test))
    n_gen = n_samples or m
    size = int(fraction * len(data.train))
    protocol = {
        "data": data.protocol(),
        "extractor": C.describe_extractor(ext),
        "reference": f"first {m} images of {data.test.name}/{data.test.split}",
        "reference_size": m,
        "samples_per_sampler": n_gen,
        "model": {"preset": preset, "overrides": overrides or {}, "spec": spec},
        "budget": str(budget),
        "budget2": None if budget2 is None else str(budget2),
        "subset_fraction": fraction,
        "subset_size": size,
        "seed": seed,
        "selection": "recon_error = per-pixel MSE of the reconstruction of mu(x); mahalanobis = distance of mu(x) "
                     "under a Gaussian fitted to all training mu; both under the model trained on all images",
    }
    study = Study(out_dir, NAME, protocol, overwrite=overwrite)
    if overwrite:
        T.discard_models(study)

    def fx(images: torch.Tensor) -> torch.Tensor:
        return extract_features(images, ext, batch_size=256, progress=False)

    reference = data.test.images[:m]
    keys = ["rank", *(f"train/{k}" for k in MODELS),
            *(f"eval/{k}/{s}" for k in MODELS for s in (*SAMPLERS, "reconstruction", "latents"))]
    try:
        if all(k in study.done() for k in keys):  # finished: only the report is rendered again
            return _report(study, data, ext, m, n_gen, size, budget, preset, command)
        f_ref = study.artifact("reference-features", lambda: {"features": fx(reference)})["features"]
        steps = list(MODELS)
        bar = tqdm(steps, desc=f"{NAME} models", disable=not progress)
        for name in bar:
            bar.set_postfix(model=name)
            if name == "all":
                idx = None
            else:
                subsets = _subsets(study, data, size, seed, device, progress)
                idx = subsets[name]
            train = data.train if idx is None else data.train.subset(idx)
            rec = study.cell(f"train/{name}", lambda train=train, name=name: T.train_or_resume(
                study, name, spec, train, progress=progress), model=name, step="train")
            _evaluate(study, name, rec, train, reference, f_ref, fx, n_gen, seed, device)
    except BaseException:
        _report(study, data, ext, m, n_gen, size, budget, preset, command)  # what is finished, meanwhile
        raise
    return _report(study, data, ext, m, n_gen, size, budget, preset, command)


def _subsets(study: Study, data: C.StudyData, size: int, seed: int, device, progress: bool) -> dict[str, Any]:
    """Scores of every training image under the all-data model (cell ``rank``) and the three subsets."""
    done = study.done()
    all_rec = done["train/all"]

    def scores() -> dict[str, torch.Tensor]:
        loaded = T.load_model(study, all_rec, device)
        out = rank_training_images(loaded.image_vae, data.train.images)
        return {"recon_error": out["recon_error"], "mahalanobis": out["mahalanobis"]}

    sc = study.artifact("selection-scores", scores)
    subsets = select_subsets(sc, len(data.train), size, seed)

    def summary() -> dict[str, Any]:
        rank_r = sc["recon_error"].argsort().argsort().double()
        rank_m = sc["mahalanobis"].argsort().argsort().double()
        spearman = float(torch.corrcoef(torch.stack([rank_r, rank_m]))[0, 1])
        a, b = set(subsets["low-recon"].tolist()), set(subsets["low-mahalanobis"].tolist())
        h = set(subsets["half"].tolist())
        out: dict[str, Any] = {"spearman_recon_vs_mahalanobis": spearman,
                               "overlap_rl_md": len(a & b) / size, "overlap_h_rl": len(h & a) / size,
                               "overlap_h_md": len(h & b) / size}
        for key in ("recon_error", "mahalanobis"):
            v = sc[key]
            out[key] = {"mean": float(v.mean()), "median": float(v.median()), "max": float(v.max()),
                        "threshold": float(v.sort().values[size - 1])}
        if data.train.labels is not None:
            counts = {}
            for name, idx in subsets.items():
                c = torch.bincount(data.train.labels[idx], minlength=int(data.train.num_classes or 0))
                counts[name] = c.tolist()
            counts["all"] = torch.bincount(data.train.labels, minlength=int(data.train.num_classes or 0)).tolist()
            out["class_counts"] = counts
        return out

    study.cell("rank", summary, step="rank")
    grid = study.dir / "selected-examples.png"
    if not grid.is_file():
        order = {k: sc[k].double().argsort(stable=True) for k in ("recon_error", "mahalanobis")}
        rows = [data.train.images[order["recon_error"][:16]], data.train.images[order["recon_error"][-16:]],
                data.train.images[order["mahalanobis"][:16]], data.train.images[order["mahalanobis"][-16:]]]
        save_grid(torch.cat(rows), grid, nrow=16, overwrite=True)
    return subsets


def _evaluate(study: Study, name: str, rec, train, reference, f_ref, fx, n_gen: int, seed: int, device) -> None:
    """Evaluation cells of one model (FID per sampler, reconstruction, latent diagnostics)."""
    keys = [f"eval/{name}/{s}" for s in (*SAMPLERS, "reconstruction", "latents")]
    done = study.done()
    if all(k in done for k in keys):
        return
    loaded = T.load_model(study, rec, device)
    for i, s in enumerate(SAMPLERS):
        T.sampler_fid_cell(study, f"eval/{name}/{s}", loaded, loaded.latent_sampler(s), f_ref, fx, n=n_gen,
                           seed=seed + 1 + i, grid=f"samples-{name}-{s}.png", labels={"model": name, "sampler": s})

    def recon() -> dict[str, Any]:
        r = T.reconstruct_images(loaded.image_vae, reference)
        pairs = torch.stack([reference[:32].view(4, 8, *reference.shape[1:]),
                             r[:32].view(4, 8, *r.shape[1:])], 1).flatten(0, 2)
        save_grid(pairs, study.dir / f"recon-{name}.png", nrow=8, overwrite=True)
        mse = float(reconstruction_error(to_float(reference), to_float(r)).mean())
        return {"fid": C.fid(f_ref, fx(r)), "recon_mse": mse, "grid": f"recon-{name}.png"}

    study.cell(f"eval/{name}/reconstruction", recon, model=name, sampler="reconstruction")

    def latents() -> dict[str, Any]:
        q = loaded.image_vae.encode(train.images)
        law = variance_law(q.mean, q.logvar)
        return {"variance_law": float(law.mean()), "variance_law_min": float(law.min()),
                "variance_law_max": float(law.max()), "inactive_latents": int(inactive_latents(q.mean, q.logvar)),
                "inactive_threshold": INACTIVE_THRESHOLD, "latent_dim": int(q.mean.shape[1]),
                "gamma": float(loaded.image_vae.gamma.detach()), "gamma_z": float(loaded.stage2.gamma.detach())}

    study.cell(f"eval/{name}/latents", latents, model=name, sampler="latents")


def _report(study: Study, data: C.StudyData, ext, m: int, n_gen: int, size: int, budget, preset, command) -> Path:
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    done = study.done()
    key = "fid" if ext.name == "inception" else "fid_clf"

    def val(model: str, s: str, field: str = "fid"):
        rec = done.get(f"eval/{model}/{s}")
        return None if rec is None else rec.get(field)

    rows = [[f"{MODELS[k][0]}", val(k, "normal"), val(k, "gmm"), val(k, "reconstruction")] for k in MODELS]
    rows += [[f"{MODELS[k][0]}-2STG", val(k, "second-stage"), None, None] for k in MODELS]
    table5 = markdown_table(["model", f"N(0, I) {key}", f"GMM-10 {key}", f"reconstruction {key}"], rows, fmt="{:.4g}")
    seed_rows = [[k, *v] for k, v in C.SEED_TABLE5.items()]
    seed_table = markdown_table(["model", "N(0, I)", "GMM", "reconstruction"], seed_rows, fmt="{:.3f}")

    diag_rows = []
    for k, (row, desc) in MODELS.items():
        tr = done.get(f"train/{k}", {})
        lat = done.get(f"eval/{k}/latents", {})
        secs = tr.get("stage_seconds")
        diag_rows.append([row, desc, tr.get("num_train"), val(k, "reconstruction", "recon_mse"),
                          lat.get("variance_law"), lat.get("inactive_latents"), lat.get("gamma"), lat.get("gamma_z"),
                          None if not secs else round(sum(secs) / 60, 1)])
    diag = markdown_table(["model", "training images", "images", "recon MSE (test)", "variance law (mean)",
                           "inactive latents", "gamma", "gamma_z", "train minutes"], diag_rows, fmt="{:.4g}")

    sections = [("Table 5 layout", table5 + "\n\nRows `*-2STG`: the same first stage sampled through its second "
                 f"stage. Generated: {n_gen} images per sampler; reference: {m} test images."),
                ("Models", diag + "\n\nVariance law: mean over latents of Var_x(mu) + E_x[sd^2] on the model's own "
                 "training images (1 when the aggregate posterior matches N(0, I)); inactive: E_x[sd^2] > 0.9.")]
    rank = done.get("rank")
    if rank:
        lines = [
            (f"Spearman correlation between the two scores over all training images: "
            f"{rank['spearman_recon_vs_mahalanobis']:.3f}."),
            (f"Overlap of the selected subsets ({size} images each): VAE-RL and VAE-MD {rank['overlap_rl_md']:.3f}, "
            f"VAE-H and VAE-RL {rank['overlap_h_rl']:.3f}, VAE-H and VAE-MD {rank['overlap_h_md']:.3f}."),
            (f"Reconstruction error (MSE per pixel): mean {rank['recon_error']['mean']:.4g}, selection threshold "
            f"{rank['recon_error']['threshold']:.4g}; Mahalanobis distance: mean {rank['mahalanobis']['mean']:.4g}, "
            f"threshold {rank['mahalanobis']['threshold']:.4g}."),
        ]
        body = C.bullet_list(lines)
        counts = rank.get("class_counts")
        if counts:
            ncls = len(counts["all"])
            crow = [[MODELS[k][0] if k in MODELS else k, *counts[k]] for k in ("all", "half", "low-recon",
                                                                                  "low-mahalanobis")]
            body += "\n\nImages per class in each training set:\n\n" + markdown_table(
                ["set", *[str(c) for c in range(ncls)]], crow)
        if (study.dir / "selected-examples.png").is_file():
            body += ("\n\nRows: the 16 training images with the lowest and the highest reconstruction error, then the "
                     "lowest and the highest Mahalanobis distance:\n\n"
                     + C.figure_markdown("selection extremes", "selected-examples.png"))
        sections.append(("Selection of the subsets", body))
    have = [k for k in MODELS if all(val(k, s) is not None for s in (*SAMPLERS, "reconstruction"))]
    if have:
        fig, ax = plt.subplots(figsize=(8, 3.8))
        width = 0.2
        for j, s in enumerate((*SAMPLERS, "reconstruction")):
            ax.bar([i + (j - 1.5) * width for i in range(len(have))], [val(k, s) for k in have], width,
                   label=SAMPLER_TITLES.get(s, s))
        ax.set_xticks(range(len(have)), [MODELS[k][0] for k in have])
        ax.set(ylabel=key, title=f"{data.name}: FID per training set and sampler ({ext.name} features)")
        ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        ax.grid(axis="y", alpha=0.3)
        sections.append(("Plot", C.figure_markdown("FID per model and sampler", study.save_figure(fig, "fid-bars.png"))))
    pics = []
    for k in MODELS:
        names = [f"samples-{k}-{s}.png" for s in SAMPLERS] + [f"recon-{k}.png"]
        if all((study.dir / n).is_file() for n in names):
            pics.append(f"**{MODELS[k][0]}**: " + " ".join(
                C.figure_markdown(f"{MODELS[k][0]} {t}", n) for t, n in
                zip([*(SAMPLER_TITLES[s] for s in SAMPLERS), "reconstructions"], names, strict=True)))
    if pics:
        sections.append(("Samples", "Per model: N(0, I), GMM-10, second stage, then reconstructions (odd rows "
                         "originals).\n\n" + "\n\n".join(pics)))
    sections.append(("Seed's table 5 (CIFAR-10, Inception FID; for the trend only)", seed_table))
    notes = [n for n in (C.small_sample_note(m, n_gen),) if n]
    if notes:
        sections.append(("Notes", C.bullet_list(notes)))
    return C.render_report(
        study, f"VAE performance vs training set ({data.name}, {ext.name} features)",
        "Does a VAE trained on a well-chosen half of the data match one trained on all of it? The same two-stage "
        "VAE is trained on all training images, a random half, the half with the lowest reconstruction error and "
        "the half with the lowest Mahalanobis distance (both measured with the model trained on all images), and "
        "each is sampled with N(0, I), an ex-post GMM with 10 components and its second stage (thesis 002, "
        "section 3.3, table 5; SPEC section 3). Extractor: " + C.extractor_statement(ext),
        sections, differences=_differences(data, ext, m, n_gen, budget, preset, study.protocol), command=command)


def _differences(data, ext, m, n_gen, budget, preset, protocol) -> list[str]:
    out = []
    if ext.name != "inception":
        out.append("Feature extractor: the project classifier instead of Inception-v3 (values are fid_clf, not "
                   "comparable with the seed's numbers; compare the ordering of rows and columns only).")
    if data.name != "cifar10":
        out.append(f"Dataset: {data.name} ({len(data.train)} training images) instead of CIFAR-10 (50,000).")
    else:
        out.append(f"Data subset: {len(data.train)} training images instead of the seed's 50,000.")
    spec = protocol["model"]["spec"]
    s1 = spec.get("model", {}).get("stage1", {})
    out.append(
        f"Model: the project's two-stage VAE (preset `{preset}`: ResNet first stage after Dai & Wipf with learned "
        f"gamma, latent_dim {s1.get('latent_dim')}, base_dim {s1.get('base_dim')}; dense second stage) instead of "
        "the seed's Keras VAE (conv 128-256-512-1024 encoder, latent 128, dense 8x8x1024 decoder with two "
        "transposed convolutions) and its dense second stage.")
    st1, st2 = spec.get("stage1", {}), spec.get("stage2", {})

    def amount(st: dict) -> str:
        parts = [] if st.get("epochs", 0) >= 10**6 else [f"{st.get('epochs')} epochs"]
        if st.get("max_minutes"):
            parts.append(f"{st['max_minutes']:g} minutes")
        return " or ".join(parts)

    out.append(
        f"Training: budget {budget} per model, i.e. stage 1 {amount(st1)}, stage 2 {amount(st2)}; Adam lr "
        f"{st1.get('lr')} halved every {st1.get('lr_halve_every')} epochs (stage 2: {st2.get('lr')}, every "
        f"{st2.get('lr_halve_every')}); the seed trained 600 + 1200 epochs at lr 1e-4, halved when the loss stopped "
        "falling.")
    out.append("Selection scores: reconstruction error = MSE per pixel of the reconstruction of mu(x); Mahalanobis "
               "distance of mu(x) in the latent space of the all-data model. The seed names both criteria but not "
               "the space of the distance (its text mentions the distribution the FID is measured on).")
    out.append("GMM: 10 full-covariance components fitted by EM on the training posterior means (the seed: a "
               "10-component GMM fitted on the latent space).")
    if m != 10000 or n_gen != 10000:
        out.append(f"Sizes: {m} reference and {n_gen} generated images per sampler (the seed: 10,000).")
    out.extend(C.data_notes(data))
    return out
