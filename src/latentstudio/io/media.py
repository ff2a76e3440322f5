"""Animated GIF and MP4 files, written through ``imageio``.

Every writer takes the frames of one animation, all of the same size, as either

- a ``numpy`` array ``uint8 [T, H, W, C]`` (or a sequence of ``uint8 [H, W, C]`` arrays), channels last, or
- a ``torch`` tensor ``uint8 [T, C, H, W]`` (or a sequence of ``uint8 [C, H, W]`` tensors), channels first,

with ``C`` = 1 (grey, written as RGB) or 3 (RGB), values 0..255.

GIFs are encoded by Pillow (imageio's ``pillow`` plugin); MP4s are H.264 (``libx264``, ``yuv420p``)
encoded by PyAV (imageio's ``pyav`` plugin, the ``av`` package), the one MP4 encoder used. Files are
written atomically (:func:`latentstudio.io.atomic.atomic_path`): a target is either absent, the
old file or the complete new one, and an existing file is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from imageio.core.request import InitializationError

from latentstudio.errors import LatentStudioError, ShapeError
from latentstudio.io.atomic import atomic_path

__all__ = ["as_frames", "gif_bytes", "write_gif", "write_mp4"]


def as_frames(frames: Any) -> np.ndarray:
    """The frames as one contiguous ``uint8 [T, H, W, 3]`` numpy array (grey is repeated to RGB).

    Args:
        frames: numpy ``uint8 [T, H, W, C]`` / sequence of ``[H, W, C]`` (channels last), or torch
            ``uint8 [T, C, H, W]`` / sequence of ``[C, H, W]`` (channels first); ``C`` in {1, 3}.

    Raises:
        ShapeError: no frames, another dtype or rank, ``C`` not 1 or 3, or frames of different sizes.
    """
    if _is_tensor(frames):
        frames = frames.detach().cpu()
        if frames.ndim == 4:
            frames = frames.permute(0, 2, 3, 1)
        arr = frames.numpy()
    elif isinstance(frames, np.ndarray):
        arr = frames
    else:
        items = list(frames)
        if not items:
            raise ShapeError("an animation needs at least one frame, got none")
        if any(_is_tensor(f) for f in items):
            items = [f.detach().cpu().permute(1, 2, 0).numpy() if _is_tensor(f) and f.ndim == 3 else np.asarray(f)
                     for f in items]
        shapes = {(a.dtype, a.shape) for a in map(np.asarray, items)}
        if len(shapes) != 1:
            raise ShapeError(f"animation frames must all have one dtype and size, got {sorted(map(str, shapes))}")
        arr = np.stack([np.asarray(a) for a in items])
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.shape[0] == 0:
        raise ShapeError(f"animation frames must be uint8 [T, H, W, C] (numpy) or [T, C, H, W] (torch) with C 1 "
                         f"or 3 and T >= 1, got {arr.dtype} {list(arr.shape)}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "permute")


def _durations(n: int, duration_ms: float | Sequence[float] | None, fps: float | None) -> int | list[int]:
    if (duration_ms is None) == (fps is None):
        raise LatentStudioError("give a GIF exactly one of duration_ms (per frame or one for all) and fps")
    if fps is not None:
        if not fps > 0:
            raise LatentStudioError(f"GIF fps must be > 0, got {fps}")
        return max(1, round(1000 / fps))
    if isinstance(duration_ms, int | float):
        return max(1, int(duration_ms))
    durations = [max(1, int(d)) for d in duration_ms]
    if len(durations) != n:
        raise LatentStudioError(f"GIF has {n} frames but {len(durations)} durations (give one per frame)")
    return durations[0] if n == 1 else durations  # Pillow takes a one-frame GIF's time as a number


def _encode_gif(target: str | Path, arr: np.ndarray, durations: int | list[int], loop: int) -> bytes | None:
    return iio.imwrite(target, arr, plugin="pillow", extension=".gif", is_batch=True, duration=durations,
                       loop=int(loop))


def gif_bytes(
    frames: Any,
    *,
    duration_ms: float | Sequence[float] | None = None,
    fps: float | None = None,
    loop: int = 0,
) -> bytes:
    """The bytes of an animated GIF of ``frames`` (see the module docstring for the accepted frames).

    Args:
        frames: ``uint8`` frames, values 0..255.
        duration_ms: display time of every frame in milliseconds, or one time per frame (e.g. a
            longer hold on the last frame). GIF stores hundredths of a second.
        fps: frames per second instead of ``duration_ms`` (each frame shows ``round(1000 / fps)`` ms).
        loop: number of repeats; 0 loops forever.

    Raises:
        ShapeError: bad frames. LatentStudioError: both or neither of ``duration_ms`` and ``fps``,
            ``fps`` <= 0, or a duration list of the wrong length.
    """
    arr = as_frames(frames)
    return _encode_gif("<bytes>", arr, _durations(len(arr), duration_ms, fps), loop)


def write_gif(
    frames: Any,
    path: str | Path,
    *,
    duration_ms: float | Sequence[float] | None = None,
    fps: float | None = None,
    loop: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``frames`` as an animated GIF at ``path``, atomically (arguments as :func:`gif_bytes`).

    Returns:
        ``path``.

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False (nothing is written).
        ShapeError / LatentStudioError: as :func:`gif_bytes`.
    """
    path = Path(path)
    arr = as_frames(frames)
    durations = _durations(len(arr), duration_ms, fps)
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            _encode_gif(tmp, arr, durations, loop)
        except (OSError, ValueError) as exc:
            raise LatentStudioError(f"could not write {path}: {' '.join(str(exc).split())}") from None
    return path


def write_mp4(
    frames: Any,
    path: str | Path,
    *,
    fps: float,
    crf: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``frames`` as an H.264 MP4 (``yuv420p``) at ``path``, atomically.

    Odd heights/widths are padded by one row/column (edge pixels), as ``yuv420p`` needs even sides.

    Args:
        frames: ``uint8`` frames, values 0..255 (see the module docstring).
        fps: frames per second (> 0; fractional rates are kept as a fraction).
        crf: x264 constant rate factor (0..51, lower is better quality); ``None`` keeps the encoder's
            default (23).
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        LatentStudioError: PyAV (``av``) is not installed, ``fps`` <= 0, or the encoder failed.
        RunExistsError: ``path`` exists and ``overwrite`` is False (nothing is written).
        ShapeError: bad frames.
    """
    path = Path(path)
    if importlib.util.find_spec("av") is None:
        raise LatentStudioError(f"writing {path.name} (MP4) needs PyAV: `pip install av`, or write a .gif")
    if not fps > 0:
        raise LatentStudioError(f"video fps must be > 0, got {fps}")
    arr = as_frames(frames)
    h, w = arr.shape[1:3]
    if h % 2 or w % 2:
        arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    import av  # lazy: PyAV is the optional studio extra

    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            with iio.imopen(tmp, "w", plugin="pyav", extension=".mp4", container="mp4") as out:
                out.init_video_stream("libx264", fps=fps, pixel_format="yuv420p")
                if crf is not None:
                    out._video_stream.options = {"crf": str(int(crf))}  # the plugin has no encoder-options argument
                for frame in arr:
                    out.write_frame(frame, pixel_format="rgb24")
        except (OSError, RuntimeError, ValueError, av.error.FFmpegError, InitializationError) as exc:
            raise LatentStudioError(f"could not write {path}: {' '.join(str(exc).split())}") from None
    return path
