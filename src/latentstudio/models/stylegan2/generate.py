"""Generation with a StyleGAN2 generator: seeds, saved latents, style mixing, interpolation videos.

Latent spaces: ``z [N, z_dim]`` (Gaussian input), ``w [N, w_dim]`` (mapping output, one style for
every layer) and ``w+ [N, num_ws, w_dim]`` (one style per layer, e.g. from projection). Every image
function returns ``uint8 [N, C, R, R]``.

- seeds: ``z = np.random.RandomState(seed).randn(1, z_dim)``, exactly as the official generator
  scripts, so a seed gives the same image as with the official code and weights;
- truncation: ``w' = w_avg + psi (w - w_avg)`` (optionally only for the first ``cutoff`` styles);
- style mixing (StyleGAN section 3.1): styles ``mix_styles`` of a row latent are replaced by those
  of a column latent;
- interpolation: linear in W (``lerp``), spherical in Z (``slerp``, which keeps the norm of
  Gaussian draws typical);
- videos: GIF (Pillow) or MP4 (H.264 through PyAV), written by :mod:`latentstudio.io.media`.

Class-conditional generators map z with a class: every function that maps z takes ``condition``
(one class for all, a list with one class per latent, or None: classes 0, 1, ... in turn), as
``Generator.sample_seeds``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.errors import LatentStudioError
from latentstudio.io import media
from latentstudio.io.atomic import atomic_path
from latentstudio.latents import slerp
from latentstudio.models.stylegan2.networks import Generator, z_from_seed

LATENT_SPACES = ("auto", "z", "w")


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """``float32 [len(seeds), z_dim]``: row i is ``np.random.RandomState(seeds[i]).randn(z_dim)``."""
    if len(seeds) == 0:
        raise LatentStudioError("no seeds given; pass e.g. --seeds 0-7")
    return torch.cat([z_from_seed(s, z_dim) for s in seeds])


@torch.no_grad()
def map_z(
    G: Generator,
    z: torch.Tensor,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    batch_size: int = 256,
    condition: Any = None,
) -> torch.Tensor:
    """``z float [N, z_dim]`` -> ``w+ float [N, num_ws, w_dim]`` (truncated), on the generator's device.

    Raises:
        ConfigError: a condition for an unconditional generator, or a class out of range.
    """
    c = G.condition_spec.make(condition, z.shape[0])
    return G.map_latents(z, truncation_psi, truncation_cutoff, batch_size, c=c)


@torch.no_grad()
def synthesize(
    G: Generator,
    ws: torch.Tensor,
    noise_mode: str = "const",
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """``w+ [N, num_ws, w_dim]`` -> images ``uint8 [N, C, R, R]`` (in batches, CPU result; ``batch_size``
    default: :meth:`Generator.synthesize_images`'s).

    ``noise_mode="random"`` draws the noise from a ``torch.Generator`` seeded with ``seed``.
    """
    g = torch.Generator(device=G.device).manual_seed(seed) if noise_mode == "random" else None
    return G.synthesize_images(ws, noise_mode, batch_size, generator=g, progress=progress)


def load_latents(path: str | Path, G: Generator, space: str = "auto", truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None, condition: Any = None) -> torch.Tensor:
    """Read latents from ``.npy`` / ``.npz`` and return ``w+ float32 [N, num_ws, w_dim]``.

    Accepted contents:

    - ``.npz`` with key ``w`` (or ``ws``): ``[N, num_ws, w_dim]`` (W+, e.g. a projection's
      ``projected_w.npz``), ``[num_ws, w_dim]``, ``[N, w_dim]`` or ``[w_dim]`` (W, broadcast to every layer);
      or key ``z``: ``[N, z_dim]`` / ``[z_dim]``, mapped (with truncation). With both, ``w`` is used
      unless ``space="z"``.
    - ``.npy``: 3-D arrays are W+; 1-D/2-D arrays are W unless ``space="z"``.

    Truncation applies to z latents only (saved w latents are used as they are); so does ``condition``
    (the class of class-conditional generators, see :func:`map_z`).

    Raises:
        LatentStudioError: unreadable file, unknown keys, or shapes that do not match the generator
            (the expected shapes are named).
    """
    path = Path(path)
    if space not in LATENT_SPACES:
        raise LatentStudioError(f"latent space must be one of {LATENT_SPACES}, got {space!r}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LatentStudioError(f"latent file {path} does not exist") from None
    except (ValueError, OSError) as exc:
        raise LatentStudioError(f"{path} is not a .npy/.npz array file without pickled objects ({exc})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        has_w = "w" in keys or "ws" in keys
        if "z" in keys and (space == "z" or not has_w):
            arr, kind = loaded["z"], "z"
        elif has_w and space != "z":
            arr, kind = loaded["w" if "w" in keys else "ws"], "w"
        else:
            raise LatentStudioError(f"{path} has arrays {keys}; expected 'w' ([N, {G.num_ws}, {G.w_dim}] or "
                                    f"[N, {G.w_dim}]) or 'z' ([N, {G.z_dim}])")
    else:
        arr, kind = loaded, ("z" if space == "z" else "w")
    t = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    want_wplus, want_w, want_z = f"[N, {G.num_ws}, {G.w_dim}]", f"[N, {G.w_dim}]", f"[N, {G.z_dim}]"
    if kind == "z":
        t = t.reshape(1, -1) if t.ndim == 1 else t
        if t.ndim != 2 or t.shape[1] != G.z_dim:
            raise LatentStudioError(f"{path}: z latents must be {want_z}, got {list(arr.shape)}")
        return map_z(G, t, truncation_psi, truncation_cutoff, condition=condition).cpu()
    if t.ndim == 2 and t.shape == (G.num_ws, G.w_dim) and G.num_ws != G.w_dim:
        t = t[None]
    if t.ndim == 1:
        t = t[None]
    if t.ndim == 2:
        if t.shape[1] != G.w_dim:
            raise LatentStudioError(f"{path}: w latents must be {want_w} or {want_wplus}, got {list(arr.shape)}")
        t = t[:, None, :].repeat(1, G.num_ws, 1)
    if t.ndim != 3 or t.shape[1:] != (G.num_ws, G.w_dim):
        raise LatentStudioError(f"{path}: w+ latents must be {want_wplus} for this generator, got {list(arr.shape)}")
    return t


def save_latents(path: str | Path, *, z: torch.Tensor | None = None, w: torch.Tensor | None = None,
                 seeds: Sequence[int] | None = None, overwrite: bool = False) -> Path:
    """Write ``z [N, z_dim]`` / ``w [N, num_ws, w_dim]`` (and the seeds) to an ``.npz`` file, atomically.

    Raises:
        RunExistsError: the file exists and ``overwrite`` is False.
    """
    arrays = {}
    if z is not None:
        arrays["z"] = z.detach().cpu().numpy().astype(np.float32)
    if w is not None:
        arrays["w"] = w.detach().cpu().numpy().astype(np.float32)
    if seeds is not None:
        arrays["seeds"] = np.asarray(list(seeds), dtype=np.int64)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def style_mix(
    G: Generator,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    mix_styles: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    condition: Any = None,
) -> torch.Tensor:
    """Style-mixing table as one image list: ``uint8 [(R+1)(C+1), C_img, H, W]`` in row-major order.

    Cell (0, 0) is blank, row 0 holds the column images, column 0 the row images, and cell (i, j) is
    row seed i with the styles ``mix_styles`` taken from column seed j (coarse styles 0-3 carry pose and
    face shape, middle 4-7 features, fine 8+ colours and micro-structure at 1024x1024). ``condition``: the
    class of the whole table (class-conditional generators; default 0).

    Raises:
        LatentStudioError: a style index outside ``0..num_ws-1``.
    """
    bad = [s for s in mix_styles if not 0 <= s < G.num_ws]
    if bad or not mix_styles:
        raise LatentStudioError(f"style indices must lie in 0..{G.num_ws - 1} (num_ws of this generator), got "
                                f"{list(mix_styles)}")
    cond = _single_class(G, condition)
    w_rows = map_z(G, seeds_to_z(row_seeds, G.z_dim), truncation_psi, condition=cond)
    w_cols = map_z(G, seeds_to_z(col_seeds, G.z_dim), truncation_psi, condition=cond)
    idx = torch.as_tensor(list(mix_styles))
    cells = []
    for i in range(len(row_seeds)):
        for j in range(len(col_seeds)):
            w = w_rows[i].clone()
            w[idx] = w_cols[j][idx]
            cells.append(w)
    ws = torch.cat([w_cols, w_rows, torch.stack(cells)])
    imgs = synthesize(G, ws, noise_mode)
    cols, rows = imgs[: len(col_seeds)], imgs[len(col_seeds): len(col_seeds) + len(row_seeds)]
    mixed = imgs[len(col_seeds) + len(row_seeds):]
    blank = torch.full_like(imgs[0], 255)
    table = [blank, *cols]
    for i in range(len(row_seeds)):
        table += [rows[i], *mixed[i * len(col_seeds): (i + 1) * len(col_seeds)]]
    return torch.stack(table)


def interpolation_latents(
    G: Generator,
    seeds: Sequence[int],
    frames_per_transition: int = 30,
    space: str = "w",
    truncation_psi: float = 1.0,
    loop: bool = True,
    condition: Any = None,
) -> torch.Tensor:
    """Styles ``w+ [T, num_ws, w_dim]`` of a walk through the latents of ``seeds`` (keyframes).

    ``space="w"``: the keyframes' w are interpolated linearly; ``space="z"``: their z spherically, each
    frame then mapped (and truncated). ``loop`` returns to the first seed; ``T = transitions *
    frames_per_transition`` (+1 without loop, to end on the last keyframe). ``condition``: the class of the
    whole walk (class-conditional generators; default 0).

    Raises:
        LatentStudioError: fewer than 2 seeds, < 1 frame per transition, unknown space.
    """
    if len(seeds) < 2:
        raise LatentStudioError("an interpolation needs at least 2 seeds, e.g. --seeds 0-3")
    if frames_per_transition < 1:
        raise LatentStudioError("frames per transition must be >= 1")
    if space not in ("w", "z"):
        raise LatentStudioError(f"interpolation space must be 'w' (lerp) or 'z' (slerp), got {space!r}")
    z = seeds_to_z(seeds, G.z_dim)
    cond = _single_class(G, condition)
    keys = list(range(len(seeds))) + ([0] if loop else [])
    ts = torch.arange(frames_per_transition, dtype=torch.float32) / frames_per_transition
    if space == "w":
        wk = map_z(G, z, truncation_psi, condition=cond).cpu()
        frames = [torch.lerp(wk[a], wk[b], t) for a, b in itertools.pairwise(keys) for t in ts]
        if not loop:
            frames.append(wk[keys[-1]])
        return torch.stack(frames)
    zs = [slerp(z[a], z[b], t) for a, b in itertools.pairwise(keys) for t in ts]
    if not loop:
        zs.append(z[keys[-1]])
    return map_z(G, torch.stack(zs), truncation_psi, condition=cond).cpu()


def _single_class(G: Generator, condition: Any) -> Any:
    """The class of a whole table or walk: ``condition`` (an int), class 0 for a class-conditional generator
    without one, None for an unconditional one (a given condition is then refused by :func:`map_z`)."""
    if condition is None:
        return 0 if G.c_dim else None
    if not isinstance(condition, int | np.integer) or isinstance(condition, bool):
        raise LatentStudioError(f"one class for all the latents is expected here (an int), got {condition!r:.40}")
    return int(condition)


def write_video(frames: torch.Tensor, path: str | Path, fps: float = 30.0, *, overwrite: bool = False,
                backend: str = "auto") -> Path:
    """Write ``uint8 [T, C, H, W]`` frames (C 1 or 3) as an animated GIF (``.gif``) or H.264 MP4 (``.mp4``), atomically.

    Both go through :mod:`latentstudio.io.media`: GIF with Pillow, MP4 with PyAV (``av``), padded to
    even sizes for yuv420p. ``backend`` selects the MP4 encoder: ``auto`` or ``av`` (the only one).

    Raises:
        LatentStudioError: another extension, bad frames, an unknown backend, PyAV missing for MP4, or an
            encoder failure.
        RunExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise LatentStudioError(f"video file {path} must end in .gif or .mp4")
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise LatentStudioError(f"video frames must be uint8 [T, C, H, W], got {frames.dtype} {list(frames.shape)}")
    if backend not in ("auto", "av"):
        raise LatentStudioError(f"unknown video backend {backend!r}; use auto or av")
    if suffix == ".gif":
        return media.write_gif(frames, path, fps=fps, overwrite=overwrite)
    return media.write_mp4(frames, path, fps=fps, overwrite=overwrite)


def grid_columns(n: int) -> int:
    """Columns of a near-square grid of ``n`` images."""
    return max(1, math.ceil(math.sqrt(n)))
