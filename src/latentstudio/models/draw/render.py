"""Pictures of DRAW at work: per-step canvases with the attention boxes, step grids and animated GIFs.

The frame functions are pure tensor code (``uint8`` in and out); :func:`save_gif` is the one
function that writes a file (atomically, through :mod:`latentstudio.io.media`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from latentstudio.errors import RunExistsError, ShapeError
from latentstudio.io.images import make_grid, save_image, to_uint8
from latentstudio.io.media import write_gif

#: Box colours (RGB): where the decoder writes (green) and where the encoder reads (red).
WRITE_COLOR = (40, 220, 60)
READ_COLOR = (235, 50, 40)


def _box_pixels(window: torch.Tensor, n: int, size: int, scale: int) -> tuple[int, int, int, int] | None:
    """The grid extent of one window ``(gx, gy, delta, ...)`` in pixels of the upscaled frame, clipped;
    None when it lies entirely outside the image."""
    gx, gy, delta = (float(v) for v in window[:3])
    half = (n - 1) / 2 * delta
    lo, hi = 0, size * scale - 1

    def px(v: float) -> int:
        return round((v + 0.5) * scale - 0.5)

    x0, x1, y0, y1 = px(gx - half), px(gx + half), px(gy - half), px(gy + half)
    if x1 < lo or y1 < lo or x0 > hi or y0 > hi:
        return None
    x0, y0, x1, y1 = max(x0, lo), max(y0, lo), min(x1, hi), min(y1, hi)
    # at least a 3 x 3 outline so that a tiny grid stays visible
    if x1 - x0 < 2:
        x0, x1 = max(lo, x0 - 1), min(hi, x1 + 1)
    if y1 - y0 < 2:
        y0, y1 = max(lo, y0 - 1), min(hi, y1 + 1)
    return x0, y0, x1, y1


def _outline(img: torch.Tensor, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    c = torch.tensor(color, dtype=torch.uint8)[:, None]
    img[:, y0, x0 : x1 + 1] = c
    img[:, y1, x0 : x1 + 1] = c
    img[:, y0 : y1 + 1, x0] = c
    img[:, y0 : y1 + 1, x1] = c


def canvas_frames(
    canvases: torch.Tensor,
    *,
    write_windows: torch.Tensor | None = None,
    write_n: int = 0,
    read_windows: torch.Tensor | None = None,
    read_n: int = 0,
    scale: int = 2,
) -> torch.Tensor:
    """The canvas after every step as RGB frames, with the attention boxes drawn on them.

    Frame t shows sigmoid(c_t) with the box of the write window of step t (green) and, for
    inference passes, of the read window of step t (red). A box spans the centres of the N x N
    filter grid (``g +- (N - 1) / 2 * delta``), clipped to the image.

    Args:
        canvases: ``float [T, N, C, H, W]`` in [0, 1] (``DRAWPass.canvases``).
        write_windows / read_windows: ``float [N, T, 5]`` (``DRAWPass.write_windows``) or None.
        write_n / read_n: N of the write / read grids.
        scale: integer upscaling (nearest neighbour) so that 1-pixel box lines stay thin.

    Returns:
        ``uint8 [T, N, 3, H * scale, W * scale]``.

    Raises:
        ShapeError: wrong shapes.
    """
    if canvases.ndim != 5 or canvases.shape[2] not in (1, 3):
        raise ShapeError(f"canvases: expected float [T, N, C, H, W] with C in (1, 3), got {list(canvases.shape)}")
    t, n, _, h, w = canvases.shape
    for name, win in (("write_windows", write_windows), ("read_windows", read_windows)):
        if win is not None and tuple(win.shape) != (n, t, 5):
            raise ShapeError(f"{name}: expected [{n}, {t}, 5], got {list(win.shape)}")
    if scale < 1:
        raise ShapeError(f"scale must be >= 1, got {scale}")
    frames = to_uint8(canvases.detach().cpu().flatten(0, 1))
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    frames = frames.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3).contiguous()
    frames = frames.view(t, n, 3, h * scale, w * scale)
    for windows, grid_n, color in ((read_windows, read_n, READ_COLOR), (write_windows, write_n, WRITE_COLOR)):
        if windows is None:
            continue
        windows = windows.detach().cpu()
        for step in range(t):
            for i in range(n):
                box = _box_pixels(windows[i, step], grid_n, h, scale)
                if box is not None:
                    _outline(frames[step, i], box, color)
    return frames


def select_steps(num_steps: int, max_columns: int = 16) -> list[int]:
    """Indices of at most ``max_columns`` steps, evenly spread, always including the last one."""
    if num_steps <= max_columns:
        return list(range(num_steps))
    picks = {round(i * (num_steps - 1) / (max_columns - 1)) for i in range(max_columns)}
    return sorted(picks)


def step_grid(frames: torch.Tensor, steps: list[int] | None = None, padding: int = 2) -> torch.Tensor:
    """One picture of the drawing process: a row per sample, a column per selected step.

    Args:
        frames: ``uint8 [T, N, 3, H, W]`` from :func:`canvas_frames`.
        steps: step indices (0-based) for the columns; default :func:`select_steps`.

    Returns:
        ``uint8 [3, H', W']``.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 5:
        raise ShapeError(f"frames: expected uint8 [T, N, 3, H, W], got {frames.dtype} {list(frames.shape)}")
    steps = steps if steps is not None else select_steps(frames.shape[0])
    picked = frames[steps].transpose(0, 1)  # [N, S, 3, H, W]
    return make_grid(picked.flatten(0, 1), nrow=len(steps), padding=padding)


def animation_frames(frames: torch.Tensor, nrow: int | None = None, padding: int = 2) -> list[torch.Tensor]:
    """One tiled ``uint8 [3, H', W']`` picture of all N samples per step (the frames of a GIF)."""
    if frames.dtype != torch.uint8 or frames.ndim != 5:
        raise ShapeError(f"frames: expected uint8 [T, N, 3, H, W], got {frames.dtype} {list(frames.shape)}")
    nrow = nrow or max(1, math.ceil(math.sqrt(frames.shape[1])))
    return [make_grid(f, nrow=nrow, padding=padding, pad_value=0) for f in frames]


def save_gif(
    frames: list[torch.Tensor],
    path: str | Path,
    *,
    step_ms: int | None = None,
    hold_ms: int = 1500,
    overwrite: bool = False,
) -> Path:
    """Write ``uint8 [3, H, W]`` frames as a looping animated GIF, atomically.

    Args:
        frames: the pictures in order (e.g. :func:`animation_frames`).
        path: target ``.gif`` file.
        step_ms: display time of each frame; default about 3 s for the whole drawing (40..300 ms).
        hold_ms: display time of the last frame (the finished picture).
        overwrite: replace an existing file.

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False. ShapeError: bad frames.
    """
    if not frames:
        raise ShapeError("save_gif needs at least one frame")
    for f in frames:
        if f.dtype != torch.uint8 or f.ndim != 3 or f.shape[0] != 3:
            raise ShapeError(f"GIF frames must be uint8 [3, H, W], got {f.dtype} {list(f.shape)}")
    step_ms = step_ms or int(min(300, max(40, 3000 // len(frames))))
    durations = [step_ms] * (len(frames) - 1) + [hold_ms]
    return write_gif(frames, path, duration_ms=durations, loop=0, overwrite=overwrite)


def pass_frames(model, p, scale: int = 2) -> torch.Tensor:
    """:func:`canvas_frames` of a :class:`~latentstudio.models.draw.DRAWPass` kept with ``keep_steps=True``,
    with the model's read/write grid sizes (boxes only for attention models)."""
    cfg = model.config
    return canvas_frames(
        p.canvases,
        write_windows=p.write_windows,
        write_n=cfg.write_n,
        read_windows=p.read_windows,
        read_n=cfg.read_n,
        scale=scale,
    )


@torch.no_grad()
def decoding_frames(
    model, z: torch.Tensor, cond: torch.Tensor | None = None, *, scale: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode given latents and return the frames of their drawing (the one home of the generation frames:
    :func:`generation_frames` decodes prior draws through it).

    Args:
        z: ``float [n, T, latent_dim]`` (or ``[n, T * latent_dim]``), any latents.
        cond: one-hot ``[n, cond_dim]`` for class-conditional models.

    Returns:
        ``(images uint8 [n, C, H, W], frames uint8 [T, n, 3, H * scale, W * scale])``; the images are
        sigmoid(c_T) (the model's decode), the frames show the write boxes when the model attends.
    """
    p = model.run_decoder(z, cond, keep_steps=True)
    return to_uint8(p.canvases[-1].cpu()), pass_frames(model, p, scale)


@torch.no_grad()
def generation_frames(
    model,
    n: int,
    cond: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    temperature: float = 1.0,
    scale: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` images and the frames of their drawing (:func:`decoding_frames` of z_t ~ N(0,
    temperature^2 I)).

    Returns:
        ``(images uint8 [n, C, H, W], frames uint8 [T, n, 3, H * scale, W * scale])``; frames show
        the write boxes when the model attends.
    """
    return decoding_frames(model, model.prior_sample(n, generator, temperature), cond, scale=scale)


@torch.no_grad()
def reconstruction_frames(
    model, x: torch.Tensor, cond: torch.Tensor | None = None, *, scale: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruct ``x`` (``float [N, C, H, W]`` in [0, 1], z_t = mu_t) and return the frames with the
    read (red) and write (green) boxes: ``(uint8 [N, C, H, W], uint8 [T, N, 3, H', W'])``."""
    p = model.infer(x.to(model.device), cond, sample=False, keep_steps=True)
    return to_uint8(p.canvases[-1].cpu()), pass_frames(model, p, scale)


def save_drawing(
    frames: torch.Tensor,
    png: str | Path | None = None,
    gif: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write the step grid (:func:`step_grid`) as ``png`` and the animation as ``gif`` (either may be None).

    Raises:
        RunExistsError: a target exists and ``overwrite`` is False (checked before anything is written).
    """
    targets = [Path(t) for t in (png, gif) if t is not None]
    for t in targets:
        if t.exists() and not overwrite:
            raise RunExistsError(f"{t} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    written = []
    if png is not None:
        written.append(save_image(step_grid(frames), png, overwrite=overwrite))
    if gif is not None:
        written.append(save_gif(animation_frames(frames), gif, overwrite=overwrite))
    return written
