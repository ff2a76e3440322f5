"""``fid-shuffle``: FID of training images cut into k equal tiles and shuffled (seed table 2).

Protocol (SPEC section 3, thesis 002 section 3.1.2):

- reference: the first ``M = min(n_reference, |test|)`` test images;
- repetition r (seed ``seed + r``) draws ``min(M, |train|)`` training images at random (the same
  images for every k of that repetition) and shuffles the tiles of each image with its own uniformly
  random permutation (so an image can come back unchanged, with probability 1/k!);
- k runs over 1 (no shuffle, the baseline), 2, 4, 16, 64, 256, 1024; FID(reference, shuffled set)
  per (k, r); mean and unbiased variance over r.

Tile rule (:func:`tile_layout`), for any image size:

- the grid has ``rows x cols = k`` tiles with ``rows`` the largest divisor of k not above sqrt(k)
  (k = 2: 1 x 2, left and right halves; k = 4^j: a square grid; k = 8: 2 x 4);
- tiles are ``th = H // rows`` by ``tw = W // cols`` pixels, all equal; when rows (cols) does not
  divide H (W), the tiled area ``rows*th x cols*tw`` is centred (top offset ``(H - rows*th) // 2``,
  left ``(W - cols*tw) // 2``) and the border strips outside it stay in place; the report gives the
  fraction of pixels that take part in the shuffle;
- a k whose tiles would be smaller than one pixel (``rows > H`` or ``cols > W``) is refused.

Shuffling only moves pixels: every image keeps its multiset of pixel values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio.errors import ConfigError, ShapeError
from latentstudio.io.images import save_grid
from latentstudio.metrics import extract_features
from latentstudio.studies import common as C
from latentstudio.studies.runner import Study, markdown_table

NAME = "fid-shuffle"
DEFAULT_TILES = (1, 2, 4, 16, 64, 256, 1024)

__all__ = ["DEFAULT_TILES", "NAME", "run_fid_shuffle", "shuffle_tiles", "tile_grid", "tile_layout"]


def tile_grid(k: int) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows * cols = k`` and rows the largest divisor of k that is <= sqrt(k).

    Raises:
        ConfigError: ``k < 1``.
    """
    if k < 1:
        raise ConfigError(f"number of tiles must be >= 1, got {k}")
    rows = max(d for d in range(1, math.isqrt(k) + 1) if k % d == 0)
    return rows, k // rows


def tile_layout(height: int, width: int, k: int) -> dict[str, int]:
    """Where the k tiles of an ``height x width`` image lie (see the module's tile rule).

    Returns:
        ``{"rows", "cols", "tile_h", "tile_w", "top", "left"}`` in pixels.

    Raises:
        ConfigError: the tiles would be smaller than one pixel (the message gives the largest k).
    """
    rows, cols = tile_grid(k)
    th, tw = height // rows, width // cols
    if th < 1 or tw < 1:
        raise ConfigError(
            f"k={k} tiles ({rows} x {cols}) do not fit a {height}x{width} image (tiles under one pixel); "
            f"the largest square grid here has {min(height, width) ** 2} tiles")
    return {"rows": rows, "cols": cols, "tile_h": th, "tile_w": tw,
            "top": (height - rows * th) // 2, "left": (width - cols * tw) // 2}


def shuffle_tiles(images: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cut every image into k equal tiles and put the tiles back in a random order.

    Args:
        images: ``uint8 [N, C, H, W]`` (any dtype works; the values are only moved).
        k: number of tiles (layout: :func:`tile_layout`); ``k = 1`` returns a copy.
        generator: source of the per-image uniform permutations.

    Returns:
        Same shape and dtype; each image is a permutation of its own pixels (tiles moved whole).

    Raises:
        ShapeError: ``images`` is not ``[N, C, H, W]``. ConfigError: k does not fit the image size.
    """
    if images.ndim != 4:
        raise ShapeError(f"shuffle_tiles expects [N, C, H, W] images, got {list(images.shape)}")
    n, c, h, w = images.shape
    lay = tile_layout(h, w, k)
    out = images.clone()
    if k == 1 or n == 0:
        return out
    r, q, th, tw, top, left = (lay[key] for key in ("rows", "cols", "tile_h", "tile_w", "top", "left"))
    region = images[:, :, top : top + r * th, left : left + q * tw]
    tiles = region.reshape(n, c, r, th, q, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, k, c, th, tw)
    perm = torch.rand(n, k, generator=generator).argsort(dim=1)
    tiles = torch.gather(tiles, 1, perm[:, :, None, None, None].expand_as(tiles))
    region = tiles.reshape(n, r, q, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, r * th, q * tw)
    out[:, :, top : top + r * th, left : left + q * tw] = region
    return out


def shuffled_fraction(height: int, width: int, k: int) -> float:
    """Fraction of the image's pixels inside the tiled area (1.0 when the grid divides the image)."""
    lay = tile_layout(height, width, k)
    return lay["rows"] * lay["tile_h"] * lay["cols"] * lay["tile_w"] / (height * width)


def run_fid_shuffle(
    out_dir: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    data: C.StudyData | None = None,
    extractor: Any = "classifier",
    tiles: list[int] | None = None,
    repeats: int = 10,
    n_reference: int = 10000,
    seed: int = 0,
    budget: str | C.Budget | None = None,
    download_weights: bool = False,
    accelerator: str = "auto",
    batch_size: int = 256,
    progress: bool = True,
    overwrite: bool = False,
    command: str | None = None,
) -> Path:
    """Run (or resume) the tile-shuffle study in ``out_dir`` and write its report.

    Args:
        tiles: numbers of tiles k (default :data:`DEFAULT_TILES`; 1 is the unshuffled baseline).
        repeats: repetitions per k (the seed reports mean and variance; 10 here by default).
        n_reference: M, the reference images (first M of the test split); the shuffled sets have
            ``min(M, |train|)`` images.
        Other arguments as :func:`latentstudio.studies.fid_repeats.run_fid_repeats`.

    Returns:
        Path of ``report.md``.

    Raises:
        ConfigError: a k that does not fit the images, bad repeats; DataError, ExtractorWeightsMissing,
        RunExistsError as for the other studies.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    data = data or C.load_study_data(data_spec, seed=seed)
    _, h, w = data.train.image_shape
    ks = sorted(set(tiles or DEFAULT_TILES))
    layouts = {k: tile_layout(h, w, k) for k in ks}  # refuses a k that does not fit, before any work
    budget = C.parse_budget(budget)
    device = C.device_for(accelerator)
    ext = C.build_study_extractor(extractor, data, budget=budget, download=download_weights, progress=progress,
                                  device=device)
    m = min(n_reference, len(data.test))
    set_size = min(m, len(data.train))
    protocol = {
        "data": data.protocol(),
        "extractor": C.describe_extractor(ext),
        "reference": f"first {m} images of {data.test.name}/{data.test.split}",
        "reference_size": m,
        "set_size": set_size,
        "tiles": ks,
        "repeats": repeats,
        "seed": seed,
        "tile_rule": "rows = largest divisor of k <= sqrt(k), cols = k / rows; tiles H // rows x W // cols; "
                     "tiled area centred, border strips stay in place; uniform random permutation per image",
        "set_rule": "rep r: generator seeded with seed + r draws set_size training images (same for every k), "
                    "then one tile permutation per image",
        "budget": None if budget is None else str(budget),
    }
    study = Study(out_dir, NAME, protocol, overwrite=overwrite)

    def fx(images: torch.Tensor) -> torch.Tensor:
        return extract_features(images, ext, batch_size=batch_size, progress=progress)

    def shuffled_set(k: int, r: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + r)
        idx = torch.randperm(len(data.train), generator=g)[:set_size]
        gk = torch.Generator().manual_seed((seed + r) * 100_003 + k)
        return shuffle_tiles(data.train.images[idx], k, gk)

    cells = [(k, r) for k in ks for r in range(repeats)]
    try:
        _examples(study, data, ks, seed)
        if all(f"k={k}/rep={r}" in study.done() for k, r in cells):  # finished: only the report is rendered again
            return _report(study, data, ext, m, set_size, ks, layouts, repeats, command)
        f_ref = study.artifact("reference-features", lambda: {"features": fx(data.test.images[:m])})["features"]
        for k, r in tqdm(cells, desc=f"{NAME} cells", disable=not progress):
            def compute(k=k, r=r) -> dict[str, Any]:
                return {"fid": C.fid(f_ref, fx(shuffled_set(k, r))), "set_size": set_size}

            study.cell(f"k={k}/rep={r}", compute, k=k, rep=r)
    except BaseException:
        _report(study, data, ext, m, set_size, ks, layouts, repeats, command)  # what is finished, meanwhile
        raise
    return _report(study, data, ext, m, set_size, ks, layouts, repeats, command)


def _examples(study: Study, data: C.StudyData, ks: list[int], seed: int) -> None:
    """``shuffle-examples.png``: 4 training images (rows) at every k (columns), like the seed's figure 7
    (images under 96 pixels enlarged by an integer factor, nearest neighbour)."""
    base = data.train.images[:4]
    cols = [shuffle_tiles(base, k, torch.Generator().manual_seed(seed + k)) for k in ks]
    grid = torch.stack(cols, dim=1).flatten(0, 1)
    scale = max(1, 96 // max(grid.shape[-2:]))  # small images are enlarged (nearest neighbour) for viewing
    grid = grid.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    save_grid(grid, study.dir / "shuffle-examples.png", nrow=len(ks), overwrite=True)


def _report(study: Study, data: C.StudyData, ext, m: int, set_size: int, ks, layouts, repeats: int,
            command) -> Path:
    import matplotlib  # lazy: plotting only, matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting only, pyplot is slow to import

    done = study.done()
    key = "fid" if ext.name == "inception" else "fid_clf"
    _, h, w = data.train.image_shape
    rows, full_k, means, stds = [], [], [], []
    for k in ks:
        lay = layouts[k]
        vals = [done[f"k={k}/rep={r}"]["fid"] for r in range(repeats) if f"k={k}/rep={r}" in done]
        mean, var, std = C.mean_var(vals) if vals else (None, None, None)
        seed_mean, seed_var = C.SEED_TABLE2.get(k, (None, None))
        rows.append([k if k > 1 else "1 (no shuffle)", f"{lay['rows']} x {lay['cols']}",
                     f"{lay['tile_h']} x {lay['tile_w']}", f"{shuffled_fraction(h, w, k):.3f}", len(vals),
                     mean, var, std, seed_mean, seed_var])
        if len(vals) == repeats:
            full_k.append(k)
            means.append(mean)
            stds.append(std or 0.0)
    headers = ["tiles k", "grid", "tile (px)", "pixels shuffled", "runs", f"mean {key}", "variance", "std",
               "seed mean (CIFAR-10, Inception)", "seed variance"]
    if len(full_k) == len(ks):
        mono, bad = C.is_monotonic(means, increasing=True)
        verdict = ("**yes**: the mean FID rises at every step of k." if mono else
                   "**no**: it falls between " + ", ".join(f"k={full_k[i]} and k={full_k[i + 1]}" for i in bad) + ".")
        if not mono and ext.name != "inception":
            verdict += (" The classifier extractor was trained only on this dataset's images; for inputs far from "
                        "them (finely shuffled images) its features are no calibrated distance, so FID need not keep "
                        "rising. The seed's monotone rise is a property of Inception (ImageNet) features.")
    else:
        verdict = f"not yet known: {len(ks) - len(full_k)} of {len(ks)} values of k are unfinished (re-run the command)."
    body = "\n".join([
        markdown_table(headers, rows, fmt="{:.4g}"), "",
        f"Monotonically rising with k: {verdict}", "",
        (f"Every value is FID({m} reference images, {set_size} training images with shuffled tiles); mean and "
        f"unbiased variance over {repeats} repetitions; individual values are in results.jsonl.")])
    sections = [("Table 2 layout: FID vs number of shuffled tiles", body)]
    if full_k:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        axes[0].errorbar(full_k, means, yerr=stds, marker="o", capsize=3)
        axes[0].set(xscale="log", xlabel="tiles k", ylabel=key, title=f"this study ({data.name}, {ext.name} features)")
        axes[0].grid(alpha=0.3)
        sk = sorted(C.SEED_TABLE2)
        axes[1].plot(sk, [C.SEED_TABLE2[k][0] for k in sk], marker="s", color="gray")
        axes[1].set(xscale="log", xlabel="tiles k", ylabel="FID", title="seed, table 2 (CIFAR-10, Inception)")
        axes[1].grid(alpha=0.3)
        sections.append(("Plot", C.figure_markdown("FID vs k", study.save_figure(fig, "fid-vs-k.png"))))
    if (study.dir / "shuffle-examples.png").is_file():
        sections.append(("Examples", "Four training images (rows) with their tiles shuffled, k = "
                         + ", ".join(map(str, ks)) + " (columns):\n\n"
                         + C.figure_markdown("shuffled tiles", "shuffle-examples.png")))
    notes = [n for n in (C.small_sample_note(m, set_size),) if n]
    if any(shuffled_fraction(h, w, k) < 1 for k in ks):
        notes.append(f"Some k do not divide the {h}x{w} image: their border strips stay in place (column "
                     "'pixels shuffled').")
    if notes:
        sections.append(("Notes", C.bullet_list(notes)))
    return C.render_report(
        study, f"FID vs shuffled tiles ({data.name}, {ext.name} features)",
        "How FID responds to images whose content is kept but whose layout is destroyed: each image is cut into "
        "k equal tiles that are put back in random order (thesis 002, section 3.1.2, table 2; SPEC section 3). "
        "Extractor: " + C.extractor_statement(ext),
        sections, differences=_differences(data, ext, m, set_size, h, w), command=command)


def _differences(data: C.StudyData, ext, m: int, set_size: int, h: int, w: int) -> list[str]:
    out = []
    if ext.name != "inception":
        out.append("Feature extractor: the project classifier instead of Inception-v3, so the values are fid_clf "
                   "and only their trend compares with the seed's table 2 (Inception FIDs).")
    if data.name != "cifar10":
        out.append(f"Dataset: {data.name} ({h}x{w}) instead of CIFAR-10 (32x32).")
    else:
        out.append(f"Data subset: the shuffled images are drawn from {len(data.train)} training images (the seed's "
                   "x_train had 50,000).")
    if set_size == len(data.train):
        out.append(f"Every repetition shuffles all {set_size} training images (only the tile permutations differ), so "
                   "the k = 1 baseline is the same set each time (variance 0 up to rounding).")
    if m != 10000 or set_size != 10000:
        out.append(f"Sizes: {m} reference and {set_size} shuffled images (the seed: 10,000 test images as reference).")
    out.append("The seed does not say which images it shuffled, how k = 2 splits an image, whether every image got "
               "its own permutation, or how many repetitions gave its variance; here: random training images, left "
               "and right halves for k = 2, one uniform permutation per image, and the repetitions stated above. "
               "k = 1 (no shuffle) is added as the baseline.")
    out.extend(C.data_notes(data))
    return out
