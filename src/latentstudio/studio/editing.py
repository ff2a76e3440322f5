"""Editing latents: directions times magnitudes over chosen rows, interpolation, style mixing, sweeps.

``edit(latent, [(direction, magnitude), ...]) = latent + sum_i magnitude_i * direction_i``, where each
direction is zero outside its rows (:meth:`Direction.full`) — the thesis' equation 7.1
``latent_code = latent_code + latent_direction * magnitude`` applied per control.

:data:`CONTROLS` lists the thesis widget's controls (section 7.2.12): three-way toggles with fixed
magnitudes for the public StyleGAN2 FFHQ directions. :func:`control_magnitude` turns a toggle
choice into a magnitude; for directions learned here (unit: one standard deviation of the latents
along the boundary normal) the studio uses sliders instead.

Per-layer masks: ``edit(..., rows=[0, 1, 2, 3])`` applies the edits to those rows only (on top of
each direction's own rows); :func:`parse_rows` reads ``all``, ``coarse`` / ``middle`` / ``fine`` (the
model's :attr:`~latentstudio.studio.adapters.LatentModel.layer_groups`) or a list such as ``0-3,8``.

Exports: :func:`save_sweep` writes a PNG strip, an animated GIF (Pillow) or an MP4 (PyAV, H.264)
of the images along a direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError
from latentstudio.io.atomic import atomic_path
from latentstudio.io.media import write_gif, write_mp4
from latentstudio.studio.adapters import LatentModel
from latentstudio.studio.directions import Direction

__all__ = [
    "CONTROLS",
    "CONTROL_ALIASES",
    "control_edit",
    "control_magnitude",
    "edit",
    "interpolate",
    "mix",
    "parse_rows",
    "save_sweep",
    "sweep",
]

#: The thesis widget (section 7.2.12): control -> {choice: magnitude}; "default" is always 0.
CONTROLS: dict[str, dict[str, float]] = {
    "age": {"young": -5.0, "mid_age": 1.2, "old": 8.0},
    "smile": {"no": -5.0, "yes": 5.0},
    "gender": {"male": 5.0, "female": -8.0},
    "yaw": {"right": -15.0, "left": 15.0},
    "pitch": {"front": -15.0, "back": 15.0},
    "roll": {"black": -15.0, "white": 15.0},
    "eyes_open": {"small": -15.0, "big": 15.0},
    "mouth_open": {"closed": -15.0, "open": 15.0},
    "lip_ratio": {"slim": -15.0, "big": 15.0},
    "nose_ratio": {"big": -15.0, "small": 15.0},
    "nose_mouth_distance": {"big": -15.0, "small": 15.0},
    "eye_distance": {"big": -15.0, "small": 15.0},
    "eye_eyebrow_distance": {"small": -15.0, "big": 15.0},
}

#: Directions learned from CelebA's attributes that stand for a thesis control, with the sign that
#: maps the control's positive end onto the attribute (age: old = not Young).
CONTROL_ALIASES: dict[str, tuple[str, float]] = {
    "age": ("Young", -1.0),
    "smile": ("Smiling", 1.0),
    "gender": ("Male", 1.0),
    "mouth_open": ("Mouth_Slightly_Open", 1.0),
    "eyes_open": ("Narrow_Eyes", -1.0),
}


def control_magnitude(control: str, choice: str) -> float:
    """The thesis widget's magnitude for ``control`` set to ``choice`` (``default`` -> 0).

    Raises:
        ConfigError: unknown control or choice (the valid ones listed).
    """
    if control not in CONTROLS:
        raise ConfigError(f"unknown control {control!r}; controls: {', '.join(CONTROLS)}")
    if choice == "default":
        return 0.0
    if choice not in CONTROLS[control]:
        raise ConfigError(f"control {control!r} has choices default, {', '.join(CONTROLS[control])}; got {choice!r}")
    return CONTROLS[control][choice]


def control_edit(control: str, choice: str, library) -> tuple[str, float]:
    """``(direction name, magnitude)`` for a thesis control set to ``choice``.

    A direction named like the control (the public FFHQ ones) gets the widget's magnitude; otherwise a
    learned CelebA direction standing for it (:data:`CONTROL_ALIASES`, in standard deviations) gets
    ``sign * 2 * magnitude / max|magnitudes of the control|``, i.e. +-2 standard deviations at the
    widget's extremes.

    Raises:
        ConfigError: unknown control/choice. LatentStudioError: no direction for the control.
    """
    mag = control_magnitude(control, choice)
    if control in library:
        return control, mag
    if control in CONTROL_ALIASES and CONTROL_ALIASES[control][0] in library:
        name, sign = CONTROL_ALIASES[control]
        return name, sign * 2.0 * mag / max(abs(v) for v in CONTROLS[control].values())
    alias = f" (nor {CONTROL_ALIASES[control][0]!r})" if control in CONTROL_ALIASES else ""
    raise LatentStudioError(f"control {control!r}: the direction library has no {control!r} direction{alias}")


def _as_latent(latent: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(latent, dtype=torch.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ShapeError(f"latent: expected [L, D] (or [D]), got {list(latent.shape)}")
    return x


def edit(latent: torch.Tensor, edits: Iterable[tuple[Direction, float]],
         rows: Sequence[int] | None = None) -> torch.Tensor:
    """``latent + sum(magnitude * direction)`` over each direction's rows.

    Args:
        latent: ``float32 [L, D]`` (``[D]`` is read as one row).
        edits: ``(direction, magnitude)`` pairs; magnitude 0 leaves the latent unchanged.
        rows: apply the edits to these rows only (a per-layer mask, e.g. StyleGAN's coarse rows
            ``0-3``); None: every row a direction acts on.

    Returns:
        A new ``float32 [L, D]`` tensor (the input is not modified).

    Raises:
        ShapeError: a direction whose width or rows do not fit the latent, or a row outside the latent.
    """
    x = _as_latent(latent).clone()
    mask = None
    if rows is not None:
        bad = [int(r) for r in rows if not 0 <= int(r) < x.shape[0]]
        if bad:
            raise ShapeError(f"rows {bad} are outside this latent's rows 0..{x.shape[0] - 1}")
        mask = torch.zeros(x.shape[0], 1)
        mask[[int(r) for r in rows]] = 1.0
    for direction, magnitude in edits:
        if direction.latent_dim != x.shape[1]:
            raise ShapeError(f"direction {direction.name!r} has width {direction.latent_dim}, the latent {x.shape[1]}")
        m = float(magnitude)
        if m != 0.0:
            step = direction.full(x.shape[0]).to(x)
            x = x + m * (step if mask is None else step * mask)
    return x


def parse_rows(text: str | None, num_layers: int, groups: dict[str, tuple[int, int]] | None = None) -> list[int] | None:
    """The rows named by ``text``: None for ``all`` (or empty), a group name (``coarse``, ``middle``,
    ``fine`` from ``groups``), or comma-separated rows and ranges such as ``0-3,8``.

    Raises:
        ConfigError: anything else, an empty range, or a row outside ``0..num_layers - 1`` (the
            accepted forms listed).
    """
    t = (text or "").strip().lower()
    if t in ("", "all"):
        return None
    groups = groups or {}
    if t in groups:
        lo, hi = groups[t]
        return list(range(lo, hi))
    names = ", ".join(["all", *(g for g in groups if g != "all")])
    out: list[int] = []
    for part in t.replace(" ", "").split(","):
        a, sep, b = part.partition("-")
        if not a.isdigit() or (sep and not b.isdigit()):
            raise ConfigError(f"layers {text!r}: give {names} or rows such as 0-3,8 (this model has rows "
                              f"0..{num_layers - 1})")
        lo, hi = int(a), int(b) if sep else int(a)
        if lo > hi:
            raise ConfigError(f"layers {text!r}: the range {part} is empty (start > end)")
        out.extend(range(lo, hi + 1))
    bad = [r for r in out if r >= num_layers]
    if bad:
        raise ConfigError(f"layers {text!r}: rows {bad} do not exist (this model has rows 0..{num_layers - 1})")
    return sorted(set(out))


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int | Sequence[float] = 8) -> torch.Tensor:
    """Linear interpolation between two latents ``[L, D]``: ``[T, L, D]`` at ``t`` in [0, 1].

    ``steps`` is a count (``t = 0, 1/(T-1), ..., 1``) or explicit ``t`` values.

    Raises:
        ShapeError: different shapes. ConfigError: fewer than 2 steps.
    """
    a, b = _as_latent(a), _as_latent(b)
    if a.shape != b.shape:
        raise ShapeError(f"interpolate: latents {list(a.shape)} and {list(b.shape)} differ")
    if isinstance(steps, int):
        if steps < 2:
            raise ConfigError(f"interpolate: steps must be >= 2, got {steps}")
        ts = torch.linspace(0, 1, steps)
    else:
        ts = torch.as_tensor(list(steps), dtype=torch.float32)
    return a[None] + ts[:, None, None] * (b - a)[None]


def mix(a: torch.Tensor, b: torch.Tensor, rows: Sequence[int] | None = None, amount: float = 1.0) -> torch.Tensor:
    """Style mixing: rows ``rows`` of ``a`` moved ``amount`` of the way to ``b`` (all rows if None).

    With ``amount = 1`` this is StyleGAN's style mixing (those style inputs taken from ``b``); on a
    one-row latent (VAE) it is a blend ``a + amount * (b - a)``.
    """
    a, b = _as_latent(a), _as_latent(b)
    if a.shape != b.shape:
        raise ShapeError(f"mix: latents {list(a.shape)} and {list(b.shape)} differ")
    mask = torch.zeros(a.shape[0], 1)
    mask[list(rows) if rows is not None else slice(None)] = 1.0
    return a + float(amount) * mask * (b - a)


def sweep(latent: torch.Tensor, direction: Direction, magnitudes: Sequence[float],
          rows: Sequence[int] | None = None) -> torch.Tensor:
    """``[T, L, D]``: the latent edited along ``direction`` at each magnitude (on ``rows`` only, if given)."""
    return torch.stack([edit(latent, [(direction, m)], rows) for m in magnitudes])


def _frames_hwc(images: torch.Tensor, upscale: int) -> list[np.ndarray]:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ShapeError(f"frames: expected uint8 [T, C, H, W], got {images.dtype} {list(images.shape)}")
    x = images
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if upscale > 1:
        x = x.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)
    return [np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in x]


def save_sweep(images: torch.Tensor, path: str | Path, *, fps: float = 8.0, upscale: int = 1,
               bounce: bool = True, overwrite: bool = False) -> Path:
    """Write ``uint8 [T, C, H, W]`` frames as ``.png`` (one strip), ``.gif`` or ``.mp4`` by suffix.

    Args:
        fps: frames per second of the animation.
        upscale: integer nearest-neighbour upscaling (small models' 32-pixel faces).
        bounce: play the animation forwards then backwards (GIF/MP4).

    Raises:
        ConfigError: another suffix. LatentStudioError: MP4 without PyAV installed.
        RunExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    frames = _frames_hwc(images, int(upscale))
    if suffix == ".png":
        strip = np.concatenate(frames, axis=1)
        with atomic_path(path, overwrite=overwrite) as tmp:
            Image.fromarray(strip).save(tmp, format="PNG")
        return path
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    if suffix == ".gif":
        return write_gif(frames, path, fps=fps, loop=0, overwrite=overwrite)
    if suffix == ".mp4":
        return write_mp4(frames, path, fps=fps, crf=18, overwrite=overwrite)
    raise ConfigError(f"{path}: sweeps are saved as .png, .gif or .mp4")


def sweep_images(model: LatentModel, latent: torch.Tensor, direction: Direction,
                 magnitudes: Sequence[float], rows: Sequence[int] | None = None) -> torch.Tensor:
    """``uint8 [T, C, H, W]`` images of :func:`sweep` through ``model``."""
    return model.images(sweep(model.check_latents(latent)[0], direction, magnitudes, rows))


def check_edits(names: Iterable[str], library) -> None:
    """Raise LatentStudioError naming unknown directions (helper for the CLI and the web app)."""
    missing = [n for n in names if n not in library]
    if missing:
        raise LatentStudioError(f"unknown direction(s) {', '.join(missing)}; the library has: "
                                f"{', '.join(library.names()) or '(none)'}")
