"""Image tensors <-> floats, grids and PNG files.

Convention: images cross module boundaries as ``uint8 [N, C, H, W]`` (C = 1 or 3). Models work on
floats in [0, 1]; :func:`to_float` and :func:`to_uint8` are the only conversions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from latentstudio.errors import ConfigError, ShapeError
from latentstudio.io.atomic import atomic_path


def to_float(images: torch.Tensor) -> torch.Tensor:
    """Convert ``uint8 [N, C, H, W]`` images in 0..255 to ``float32`` in [0, 1].

    Raises:
        ShapeError: if ``images`` is not a 4-D uint8 tensor.
    """
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {list(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ShapeError(f"to_float expects uint8 [N, C, H, W] images, got {got}")
    return images.to(torch.float32) / 255.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Convert float images in [0, 1] (values outside are clamped) to ``uint8`` 0..255, rounding.

    Shape is kept (``[N, C, H, W]`` expected). NaNs become 0.
    """
    if images.dtype == torch.uint8:
        return images
    x = torch.nan_to_num(images.detach().float(), nan=0.0).clamp(0.0, 1.0)
    return (x * 255.0).round().to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> torch.Tensor:
    """Tile ``uint8 [N, C, H, W]`` images into one ``uint8 [C, H', W']`` image (torchvision's make_grid).

    ``nrow`` is the number of images per row (default: ceil(sqrt(N))).
    """
    from torchvision.utils import make_grid as tv_make_grid  # lazy: torchvision adds ~1.1 s to import

    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ShapeError(f"make_grid expects uint8 [N, C, H, W], got {images.dtype} {list(images.shape)}")
    n = images.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    return tv_make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)


#: Image formats by file extension (Pillow's names); JPEG and WebP are written at quality 95.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def image_format(path: str | Path) -> str:
    """Pillow's format name for ``path``'s extension.

    Raises:
        ConfigError: an extension without an image format (the known ones are listed).
    """
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_FORMATS:
        raise ConfigError(f"{path}: unknown image type {ext or '(no extension)'!r}; use one of "
                          f"{', '.join(IMAGE_FORMATS)}")
    return IMAGE_FORMATS[ext]


def save_image(image: torch.Tensor, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write one ``uint8 [C, H, W]`` image (C = 1 or 3) atomically, as PNG, JPEG or WebP by the extension.

    Raises:
        ConfigError: an extension that is not an image format. RunExistsError: if ``path`` exists and
            ``overwrite`` is False.
    """
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ShapeError(f"save_image expects uint8 [C, H, W] with C in (1, 3), got {image.dtype} {list(image.shape)}")
    fmt = image_format(path)
    arr = image.cpu().numpy()
    pil = Image.fromarray(arr[0], mode="L") if arr.shape[0] == 1 else Image.fromarray(np.moveaxis(arr, 0, -1), "RGB")
    with atomic_path(path, overwrite=overwrite) as tmp:
        pil.save(tmp, format=fmt, **({} if fmt == "PNG" else {"quality": 95}))
    return Path(path)


def save_grid(
    images: torch.Tensor, path: str | Path, nrow: int | None = None, *, overwrite: bool = False
) -> Path:
    """Tile ``uint8 [N, C, H, W]`` images (see :func:`make_grid`) and write one PNG atomically."""
    return save_image(make_grid(images, nrow=nrow), path, overwrite=overwrite)


def save_folder(images: torch.Tensor, folder: str | Path, prefix: str = "", *, overwrite: bool = False) -> list[Path]:
    """Write each ``uint8 [N, C, H, W]`` image as ``<folder>/<prefix>000000.png`` ..."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [save_image(img, folder / f"{prefix}{i:06d}.png", overwrite=overwrite) for i, img in enumerate(images)]


def load_image(path: str | Path | BinaryIO, channels: int | None = None) -> torch.Tensor:
    """Read an image file as ``uint8 [C, H, W]`` (C = ``channels`` if given: 1 grey, 3 RGB).

    Raises:
        OSError / PIL.UnidentifiedImageError: if the file is not a readable image.
    """
    with Image.open(path) as im:
        im.load()
        if channels == 1:
            im = im.convert("L")
        elif channels == 3 or im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        arr = np.array(im)  # a writable copy (PIL arrays are read-only)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = np.moveaxis(arr, -1, 0)
    return torch.from_numpy(np.ascontiguousarray(arr))
