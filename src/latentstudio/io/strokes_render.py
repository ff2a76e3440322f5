"""Drawing stroke-3 sketches: SVG, PNG (PIL) and animated GIF, single sketches and labelled grids.

Every sketch is fitted into its own square cell (aspect kept, centred), so sketches of any
scale, normalised or in pixels, render alike. Grids are row-major; ``row_labels`` (e.g. the
temperature of each row) and ``titles`` (per cell) are optional. With ``prefix_lengths`` the
first points of a sketch (the part given to a completion) are drawn in a second colour.

Colours are SVG/PIL colour strings. Files are written atomically and never overwrite an existing
file unless ``overwrite=True``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from latentstudio.errors import LatentStudioError
from latentstudio.io import media
from latentstudio.io.atomic import atomic_path, write_text

INK = "#1a1a1a"
PREFIX_INK = "#d62728"
FORMATS = (".svg", ".png", ".gif")


@dataclass(frozen=True)
class GridStyle:
    """Layout of a sketch grid (sizes in pixels).

    Attributes:
        cell: side of each sketch's square cell.
        margin: inner margin of a cell.
        stroke_width: line width.
        label_width: width of the left column for ``row_labels`` (0 without labels).
        title_height: height reserved under each cell for ``titles`` (0 without titles).
        background: page colour.
    """

    cell: int = 128
    margin: int = 10
    stroke_width: float = 2.0
    label_width: int = 0
    title_height: int = 0
    background: str = "white"


def polylines(sketch: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Stroke-3 ``[L, 3]`` -> pen-down polylines ``(points [K, 2] absolute, index of the first point)``.

    The pen moves without drawing to a point that follows a point with ``pen_lifted = 1``.
    """
    s = np.asarray(sketch, dtype=np.float64)
    if s.size == 0:
        return []
    xy = np.cumsum(s[:, :2], axis=0)
    out, start = [], 0
    for k in range(len(s)):
        if s[k, 2] > 0.5 or k == len(s) - 1:
            out.append((xy[start : k + 1], start))
            start = k + 1
    return out


def _fit(sketch: np.ndarray, size: float, margin: float) -> tuple[float, np.ndarray]:
    """Scale and offset that fit the sketch's bounding box (origin included) into a square cell."""
    s = np.asarray(sketch, dtype=np.float64)
    if s.size == 0:
        return 1.0, np.array([size / 2, size / 2])
    xy = np.vstack([np.zeros((1, 2)), np.cumsum(s[:, :2], axis=0)])
    lo, hi = xy.min(0), xy.max(0)
    span = float((hi - lo).max())
    scale = (size - 2 * margin) / span if span > 0 else 1.0
    offset = size / 2 - scale * (lo + hi) / 2
    return scale, offset


def _split_at(points: np.ndarray, first: int, prefix: int) -> list[tuple[np.ndarray, bool]]:
    """Split a polyline into (points, is_prefix) parts at the prefix boundary (sharing the joint)."""
    if prefix <= first:
        return [(points, False)]
    if prefix >= first + len(points):
        return [(points, True)]
    k = prefix - first
    return [(points[:k], True), (points[k - 1 :], False)]


def _layout(n: int, nrow: int | None) -> tuple[int, int]:
    cols = nrow or max(1, math.ceil(math.sqrt(max(n, 1))))
    rows = max(1, math.ceil(n / cols))
    return cols, rows


def grid_svg(
    sketches: Sequence[np.ndarray],
    *,
    nrow: int | None = None,
    style: GridStyle | None = None,
    row_labels: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    prefix_lengths: Sequence[int] | None = None,
    caption: str | None = None,
    ink: str = INK,
    prefix_ink: str = PREFIX_INK,
) -> str:
    """An SVG document of sketches in a grid of ``nrow`` columns (default: about square).

    Args:
        sketches: stroke-3 arrays (any units).
        row_labels: one label per row, drawn left of it.
        titles: one caption per cell, drawn under it.
        prefix_lengths: per sketch, how many first points to draw in ``prefix_ink``.
        caption: a line of text above the grid.

    Returns:
        The SVG text (UTF-8).
    """
    st = style or GridStyle()
    lw = st.label_width or (72 if row_labels else 0)
    th = st.title_height or (18 if titles else 0)
    cap_h = 24 if caption else 0
    cols, rows = _layout(len(sketches), nrow)
    cw, ch = st.cell, st.cell + th
    width, height = lw + cols * cw, cap_h + rows * ch
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'),
        f'<rect width="100%" height="100%" fill="{st.background}"/>',
    ]
    if caption:
        parts.append(f'<text x="{width / 2:.1f}" y="17" font-family="sans-serif" font-size="14" '
                     f'text-anchor="middle">{html.escape(caption)}</text>')
    for r in range(rows if row_labels else 0):
        if r < len(row_labels):
            y = cap_h + r * ch + st.cell / 2
            parts.append(f'<text x="{lw - 8}" y="{y:.1f}" font-family="sans-serif" font-size="13" '
                         f'text-anchor="end" dominant-baseline="middle">{html.escape(str(row_labels[r]))}</text>')
    for k, sk in enumerate(sketches):
        r, c = divmod(k, cols)
        x0, y0 = lw + c * cw, cap_h + r * ch
        scale, off = _fit(sk, st.cell, st.margin)
        pre = prefix_lengths[k] if prefix_lengths else 0
        parts.append(f'<g transform="translate({x0},{y0})" fill="none" stroke-linecap="round" '
                     f'stroke-linejoin="round" stroke-width="{st.stroke_width:g}">')
        for pts, first in polylines(sk):
            for seg, is_pre in _split_at(pts, first, pre):
                p = seg * scale + off
                if len(p) == 1:
                    p = np.vstack([p, p])
                coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in p)
                parts.append(f'<polyline stroke="{prefix_ink if is_pre else ink}" points="{coords}"/>')
        parts.append("</g>")
        if titles and k < len(titles):
            parts.append(f'<text x="{x0 + cw / 2:.1f}" y="{y0 + st.cell + th - 5}" font-family="sans-serif" '
                         f'font-size="11" text-anchor="middle">{html.escape(str(titles[k]))}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid_image(
    sketches: Sequence[np.ndarray],
    *,
    nrow: int | None = None,
    style: GridStyle | None = None,
    row_labels: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    prefix_lengths: Sequence[int] | None = None,
    caption: str | None = None,
    points: Sequence[int] | None = None,
    supersample: int = 2,
) -> torch.Tensor:
    """The grid of :func:`grid_svg` as an image: ``uint8 [3, H, W]``.

    ``points`` (per sketch) draws only each sketch's first points (animation frames).
    Lines are drawn ``supersample`` times larger and downsampled for anti-aliasing.
    """
    st = style or GridStyle()
    s = max(1, int(supersample))
    lw = st.label_width or (72 if row_labels else 0)
    th = st.title_height or (18 if titles else 0)
    cap_h = 24 if caption else 0
    cols, rows = _layout(len(sketches), nrow)
    cw, ch = st.cell, st.cell + th
    width, height = lw + cols * cw, cap_h + rows * ch
    img = Image.new("RGB", (width * s, height * s), st.background)
    draw = ImageDraw.Draw(img)
    line_w = max(1, round(st.stroke_width * s))
    for k, sk in enumerate(sketches):
        r, c = divmod(k, cols)
        x0, y0 = lw + c * cw, cap_h + r * ch
        scale, off = _fit(sk, st.cell, st.margin)
        pre = prefix_lengths[k] if prefix_lengths else 0
        limit = points[k] if points is not None else len(sk)
        for pts, first in polylines(sk):
            if first >= limit:
                break
            pts = pts[: max(1, limit - first)]
            for seg, is_pre in _split_at(pts, first, pre):
                p = (seg * scale + off + np.array([x0, y0])) * s
                color = PREFIX_INK if is_pre else INK
                if len(p) == 1:
                    x, y = p[0]
                    draw.ellipse([x - line_w / 2, y - line_w / 2, x + line_w / 2, y + line_w / 2], fill=color)
                else:
                    draw.line([tuple(q) for q in p.tolist()], fill=color, width=line_w, joint="curve")
    img = img.resize((width, height), Image.LANCZOS) if s > 1 else img
    draw = ImageDraw.Draw(img)
    if caption:
        draw.text((width / 2, 12), caption, fill="black", anchor="mm", font=_font(14))
    for r in range(rows if row_labels else 0):
        if r < len(row_labels):
            draw.text((lw - 8, cap_h + r * ch + st.cell / 2), str(row_labels[r]), fill="black", anchor="rm",
                      font=_font(13))
    for k in range(min(len(titles or []), len(sketches))):
        r, c = divmod(k, cols)
        draw.text((lw + c * cw + cw / 2, cap_h + r * ch + st.cell + th / 2), str(titles[k]), fill="black",
                  anchor="mm", font=_font(11))
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def gif_bytes(sketches: Sequence[np.ndarray], *, frames: int = 40, duration_ms: int = 60, hold_ms: int = 1200,
              **kwargs) -> bytes:
    """The bytes of an animated GIF of the sketches being drawn point by point (all cells in step).

    Args:
        frames: drawing frames, at least 2 (the last shows the finished sketches and is held ``hold_ms``).
        duration_ms: display time of each other frame in milliseconds.
        kwargs: layout options of :func:`grid_image`.
    """
    lengths = [len(s) for s in sketches]
    longest = max(lengths + [1])
    frames = max(2, int(frames))
    images = []
    for f in range(1, frames + 1):
        upto = math.ceil(longest * f / frames)
        images.append(grid_image(sketches, points=[min(n, upto) for n in lengths], **kwargs))
    durations = [duration_ms] * (len(images) - 1) + [hold_ms]
    return media.gif_bytes(images, duration_ms=durations, loop=0)


def save_sketches(path: str | Path, sketches: Sequence[np.ndarray], *, overwrite: bool = False,
                  frames: int = 40, **kwargs) -> Path:
    """Write a grid of sketches to ``.svg``, ``.png`` or ``.gif`` (animated drawing), atomically.

    Args:
        kwargs: ``nrow``, ``style``, ``row_labels``, ``titles``, ``prefix_lengths``, ``caption``.

    Raises:
        LatentStudioError: unknown suffix or no sketches; RunExistsError: the file exists and
            ``overwrite`` is False.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LatentStudioError(f"{path}: unknown picture type {suffix!r}; use one of {list(FORMATS)}")
    if len(sketches) == 0:
        raise LatentStudioError("no sketches to draw")
    if suffix == ".svg":
        return write_text(path, grid_svg(sketches, **kwargs), overwrite=overwrite)
    if suffix == ".gif":
        data = gif_bytes(sketches, frames=frames, **kwargs)
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_bytes(data)
        return path
    img = grid_image(sketches, **kwargs)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp, format="PNG")
    return path
