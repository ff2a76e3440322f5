"""``fid-repeats``: FID of n distinct training images repeated to the reference size (seed table 1).

Protocol (SPEC section 3, thesis 002 section 3.1.1):

- reference: the first ``M = min(n_reference, |test|)`` images of the test split;
- for repetition ``r`` (seed ``seed + r``) the training split is shuffled once; the set of size n is
  the first n images of that permutation (so the sets of one repetition are nested), repeated to M
  images: row ``i`` of the set is image ``i mod n``, so every image appears ``floor(M / n)`` or
  ``ceil(M / n)`` times;
- n runs over ``10, 20, 40, ...`` (doubling) below ``full = min(|train|, M)``, then ``full``;
- FID(reference, set) for each (n, r); the report gives the mean and the unbiased variance over r.

Features of the distinct images are extracted once (an artifact of the study) and the repeated set
is formed by repeating feature rows: the extractor is deterministic, so this equals extracting the
repeated images.

MNIST sanity pair (the DRAW thesis): FID between the first and the second ``s`` test images, and
between the first ``s`` test images and ``s`` images of uniform noise (every pixel uniform in
0..255, seeded); ``s = 1000`` or half the test split if smaller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio.errors import ConfigError, DataError
from latentstudio.metrics import extract_features
from latentstudio.studies import common as C
from latentstudio.studies.runner import Study, markdown_table

NAME = "fid-repeats"

__all__ = ["NAME", "default_sizes", "repeat_to", "repeated_set", "run_fid_repeats", "uniform_noise"]


def default_sizes(full: int, start: int = 10) -> list[int]:
    """``start, 2 start, 4 start, ...`` below ``full``, then ``full`` (the seed: 10 .. 5120, 10000).

    Raises:
        ConfigError: ``full < 1``.
    """
    if full < 1:
        raise ConfigError(f"fid-repeats needs at least one training image, got {full}")
    out, n = [], start
    while n < full:
        out.append(n)
        n *= 2
    return [*out, full]


def repeat_to(indices: torch.Tensor, size: int) -> torch.Tensor:
    """Repeat ``int64 [n]`` indices cyclically to ``[size]``: element i is ``indices[i mod n]``.

    Raises:
        ConfigError: empty ``indices`` or ``size < 1``.
    """
    n = int(indices.numel())
    if n < 1 or size < 1:
        raise ConfigError(f"cannot repeat {n} indices to {size}")
    return indices.reshape(-1).repeat((size + n - 1) // n)[:size]


def repeated_set(permutation: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """Indices ``int64 [size]`` of the set of the first ``n`` entries of ``permutation`` repeated to ``size``.

    The result holds exactly ``min(n, size)`` distinct indices.

    Raises:
        ConfigError: ``n`` outside ``1..len(permutation)``.
    """
    if not 1 <= n <= permutation.numel():
        raise ConfigError(f"set size n={n} must be in 1..{permutation.numel()} (the training images)")
    return repeat_to(permutation[:n], size)


def uniform_noise(n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """``uint8 [n, C, H, W]`` images whose pixels are independent and uniform in 0..255."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.int64).to(torch.uint8)


def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def run_fid_repeats(
    out_dir: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    data: C.StudyData | None = None,
    extractor: Any = "classifier",
    sizes: list[int] | None = None,
    repeats: int = 10,
    n_reference: int = 10000,
    sanity_size: int = 1000,
    seed: int = 0,
    budget: str | C.Budget | None = None,
    download_weights: bool = False,
    accelerator: str = "auto",
    batch_size: int = 256,
    progress: bool = True,
    overwrite: bool = False,
    command: str | None = None,
) -> Path:
    """Run (or resume) the study in ``out_dir`` and write its report.

    Args:
        out_dir: the study folder (``results.jsonl``, ``report.md``, plots, ``artifacts/``).
        data_spec: the dataset (``{"name", "root", "options", "limit", ...}``), or ``data`` given loaded.
        extractor: ``"classifier"`` (offline, ``fid_clf``), ``"inception"`` (standard FID) or an extractor.
        sizes: set sizes n (default :func:`default_sizes`); each must be <= min(|train|, M).
        repeats: repetitions per size (the seed: 10).
        n_reference: M, reference images (first M of the test split; the seed: 10,000).
        sanity_size: s of the sanity pair (the DRAW thesis: 1000); 0 skips it.
        seed: repetition r uses ``seed + r``; the noise images use ``seed``.
        budget: the classifier extractor's training epochs (``"3ep"``); None: its default recipe.
        accelerator: ``auto`` uses a GPU for feature extraction when present.

    Returns:
        Path of ``report.md``.

    Raises:
        ConfigError: bad sizes/repeats; DataError: dataset problems; ExtractorWeightsMissing: no
        Inception weights; RunExistsError: ``out_dir`` holds another protocol (use ``overwrite``).
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if n_reference < 2:
        raise ConfigError(f"n_reference must be >= 2, got {n_reference}")
    data = data or C.load_study_data(data_spec, seed=seed)
    budget = C.parse_budget(budget)
    device = C.device_for(accelerator)
    ext = C.build_study_extractor(extractor, data, budget=budget, download=download_weights, progress=progress,
                                  device=device)
    m = min(n_reference, len(data.test))
    full = min(len(data.train), m)
    if m < 2:
        raise DataError(f"the reference split has {len(data.test)} images; fid-repeats needs at least 2")
    sizes = sorted(set(sizes)) if sizes else default_sizes(full)
    if sizes[0] < 1 or sizes[-1] > full:
        raise ConfigError(f"set sizes must lie in 1..{full} (min of the {len(data.train)} training and {m} "
                          f"reference images), got {sizes}")
    s = min(sanity_size, len(data.test) // 2) if sanity_size else 0
    protocol = {
        "data": data.protocol(),
        "extractor": C.describe_extractor(ext),
        "reference": f"first {m} images of {data.test.name}/{data.test.split}",
        "reference_size": m,
        "sizes": sizes,
        "repeats": repeats,
        "seed": seed,
        "set_rule": "rep r: one permutation of the training split (seed + r); set n = its first n images, "
                    "row i = image i mod n, repeated to reference_size rows",
        "sanity_size": s,
        "budget": None if budget is None else str(budget),
    }
    study = Study(out_dir, NAME, protocol, overwrite=overwrite)

    def fx(images: torch.Tensor) -> torch.Tensor:
        return extract_features(images, ext, batch_size=batch_size, progress=progress)

    cells = [(n, r) for n in sizes for r in range(repeats)]
    keys = [f"n={n}/rep={r}" for n, r in cells] + (["sanity/split-halves", "sanity/noise"] if s else [])
    try:
        if all(k in study.done() for k in keys):  # finished: only the report is rendered again
            return _report(study, data, ext, m, sizes, repeats, s, command)
        f_ref = study.artifact("reference-features", lambda: {"features": fx(data.test.images[:m])})["features"]
        perms = [_permutation(len(data.train), seed + r) for r in range(repeats)]
        needed = torch.unique(torch.cat([p[: sizes[-1]] for p in perms]))
        pool = study.artifact("pool-features", lambda: {"indices": needed, "features": fx(data.train.images[needed])})
        row_of = torch.full((len(data.train),), -1, dtype=torch.int64)
        row_of[pool["indices"]] = torch.arange(pool["indices"].numel())
        f_pool = pool["features"]
        for n, r in tqdm(cells, desc=f"{NAME} cells", disable=not progress):
            def compute(n=n, r=r) -> dict[str, Any]:
                idx = repeated_set(perms[r], n, m)
                return {"fid": C.fid(f_ref, f_pool[row_of[idx]]), "distinct": int(torch.unique(idx).numel()),
                        "set_size": int(idx.numel())}

            study.cell(f"n={n}/rep={r}", compute, n=n, rep=r)
        if s:
            test = data.test.images

            def halves() -> dict[str, Any]:
                return {"fid": C.fid(fx(test[:s]), fx(test[s : 2 * s])), "size": s}

            def noise() -> dict[str, Any]:
                return {"fid": C.fid(fx(test[:s]), fx(uniform_noise(s, data.test.image_shape, seed))), "size": s}

            study.cell("sanity/split-halves", halves, pair="split-halves")
            study.cell("sanity/noise", noise, pair="noise")
    except BaseException:
        _report(study, data, ext, m, sizes, repeats, s, command)  # what is finished, for a look meanwhile
        raise
    return _report(study, data, ext, m, sizes, repeats, s, command)


def _report(study: Study, data: C.StudyData, ext, m: int, sizes, repeats: int, s: int, command) -> Path:
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    done = study.done()
    key = "fid" if ext.name == "inception" else "fid_clf"
    rows, means, ns, stds = [], [], [], []
    for n in sizes:
        vals = [done[f"n={n}/rep={r}"]["fid"] for r in range(repeats) if f"n={n}/rep={r}" in done]
        if not vals:
            rows.append([n, 0, None, None, None, *(C.SEED_TABLE1.get(n, (None, None)))])
            continue
        mean, var, std = C.mean_var(vals)
        rows.append([n, len(vals), mean, var, std, *(C.SEED_TABLE1.get(n, (None, None)))])
        if len(vals) == repeats:
            ns.append(n)
            means.append(mean)
            stds.append(std or 0.0)
    headers = ["n distinct", "runs", f"mean {key}", "variance", "std", "seed mean (CIFAR-10, Inception)",
               "seed variance"]
    table = markdown_table(headers, rows, fmt="{:.4g}")
    complete = len(ns) == len(sizes)
    if complete:
        mono, bad = C.is_monotonic(means, increasing=False)
        verdict = ("**yes**: the mean FID falls at every step of n." if mono else
                   "**no**: it rises between " + ", ".join(f"n={ns[i]} and n={ns[i + 1]}" for i in bad) + ".")
    else:
        verdict = f"not yet known: {len(sizes) - len(ns)} of {len(sizes)} sizes are unfinished (re-run the command)."
    body = [table, "", f"Monotonically falling as n grows: {verdict}", "",
            (f"Every value is FID({m} reference images, a set of n distinct training images repeated to {m}); "
            f"mean and unbiased variance (n - 1) over {repeats} repetitions; individual values are in results.jsonl.")]

    sections = [("Table 1 layout: FID vs number of distinct images", "\n".join(body))]
    if ns:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        axes[0].errorbar(ns, means, yerr=stds, marker="o", capsize=3, label=f"{data.name}, {key}")
        axes[0].set(xscale="log", yscale="log" if min(means) > 0 else "linear", xlabel="distinct images n",
                    ylabel=key, title=f"this study ({data.name}, {ext.name} features)")
        axes[0].grid(alpha=0.3)
        seed_n = sorted(C.SEED_TABLE1)
        axes[1].plot(seed_n, [C.SEED_TABLE1[n][0] for n in seed_n], marker="s", color="gray")
        axes[1].set(xscale="log", xlabel="distinct images n", ylabel="FID", title="seed, table 1 (CIFAR-10, Inception)")
        axes[1].grid(alpha=0.3)
        sections.append(("Plot", C.figure_markdown("FID vs n", study.save_figure(fig, "fid-vs-n.png"))))
    if s:
        srows = []
        for pair, label in (("split-halves", f"first {s} vs second {s} test images"),
                            ("noise", f"first {s} test images vs {s} uniform-noise images")):
            rec = done.get(f"sanity/{pair}")
            srows.append([label, None if rec is None else rec["fid"], C.SEED_SANITY[pair]])
        sections.append(("Sanity pair (DRAW thesis, MNIST)", markdown_table(
            ["pair", key, "DRAW thesis (MNIST, Inception)"], srows, fmt="{:.4g}")))
    notes = [n for n in (C.small_sample_note(m, m),) if n]
    if notes:
        sections.append(("Notes", C.bullet_list(notes)))
    return C.render_report(
        study, f"FID vs number of distinct images ({data.name}, {ext.name} features)",
        "How FID responds to a set that holds only n distinct images, repeated up to the reference size "
        "(thesis 002, section 3.1.1, table 1; SPEC section 3). Extractor: " + C.extractor_statement(ext),
        sections, differences=_differences(data, ext, m, s), command=command)


def _differences(data: C.StudyData, ext, m: int, s: int) -> list[str]:
    out = []
    if ext.name != "inception":
        out.append("Feature extractor: the project classifier instead of Inception-v3, so the values are fid_clf "
                   "and only their trend compares with the seed's table (its numbers are Inception FIDs).")
    if data.name != "cifar10":
        out.append(f"Dataset: {data.name} instead of CIFAR-10 (the seed drew from 50,000 training images and "
                   "compared with 10,000 test images).")
    else:
        out.append(f"Data subset: the training pool holds {len(data.train)} images "
                   "(the seed's x_train had 50,000).")
    if m != 10000:
        out.append(f"Reference size: {m} images (the seed: 10,000).")
    out.append("Reference images: the first M test images (the seed: 10,000 test images chosen at random; with the "
               "whole test split the two coincide).")
    out.append("Sets: one shuffle of the training split per repetition, the set of size n is its first n images "
               "(nested sets within a repetition); the seed shuffled x_train at every iteration and does not say "
               "how it repeated a set whose size does not divide 10,000 (here: cyclically).")
    out.append("Variance: the unbiased sample variance over repetitions (the seed does not say which).")
    if len(data.train) <= m:
        out.append(f"At n = {len(data.train)} the set is the whole training pool, so every repetition uses the same "
                   "images and the variance is 0 up to rounding (the seed drew 10,000 of 50,000 images).")
    if s and data.name != "mnist":
        out.append(f"Sanity pair: computed on {data.name} (the DRAW thesis used MNIST).")
    out.extend(C.data_notes(data))
    return out
