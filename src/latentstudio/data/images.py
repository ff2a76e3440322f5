"""Image datasets: digits, MNIST, Fashion-MNIST, CIFAR-10, CelebA and folders/zips of image files.

Every loader returns :class:`~latentstudio.data.base.ImageData` with images ``uint8 [N, C, H, W]``
(values 0..255), labels ``int64 [N]`` and, for CelebA, attributes ``float32 [N, 40]`` in {-1, +1}.
Use :func:`load_images` (re-exported by :mod:`latentstudio.data`); the loaders are registered in
:data:`~latentstudio.data.base.DATASETS` with the signature
``(root: Path, split: str, *, download: bool, strict: bool, **options) -> ImageData``; each loader
declares its options as keyword-only parameters with defaults, which :func:`load_images` uses to reject
unknown options and :func:`dataset_options` lists.

Documented, deterministic rules:

* ``digits``: scikit-learn's bundled 8x8 digits (1797 images, values 0..16) are scaled to 0..255 as
  ``round(v * 255 / 16)`` and upsampled to 32x32 with ``torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False, antialias=False)`` on float values, rounded half-to-even and clamped.
  Split: ``test`` = indices ``i`` with ``i % 5 == 0`` (360 images), ``train`` = the other 1437.
* ``mnist`` / ``fashion-mnist``: torchvision's layout ``<root>/MNIST/raw/`` (``FashionMNIST/raw/``) with the
  idx files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (a ``.gz`` next to a missing file is read
  too). They are read with torchvision's ``read_image_file`` / ``read_label_file`` (a ``.gz`` through a
  temporary decompressed copy), so only the requested split's two files are needed; a damaged file is a
  :class:`DataError` naming it and what is wrong (magic number, truncation). ``pad`` (default 2) zero pixels are added on each side, so 28x28 becomes 32x32; ``pad=0`` keeps
  28x28. ``download=True`` fetches the files with torchvision's MNIST/FashionMNIST downloader.
* ``cifar10``: the python batches in ``<root>/cifar-10-batches-py/``. Any subset of ``data_batch_1..5`` is
  accepted for ``train`` (a warning names the batches used and missing); ``test`` needs ``test_batch``.
  Batches are read with a restricted unpickler that only rebuilds numpy arrays and plain containers;
  anything else is refused. Each row holds the R, G and B planes (32x32 each) in that order.
* ``celeba``: ``<root>/celeba/list_attr_celeba.txt`` plus the images, either the folder
  ``img_align_celeba/`` or one or more zips ``img_align_celeba*.zip`` (members
  ``img_align_celeba/NNNNNN.jpg``, matched by base name). **Source rule**: the folder is used when it
  holds every file listed in the attribute file; otherwise a zip is used if one exists (else the partial
  folder). Only listed images are used, in attribute-file order; listed images that are missing count
  as unreadable.
  **Split rule**: with ``list_eval_partition.txt``, ``train`` = partitions 0 and 1 (train + valid),
  ``test`` = partition 2, and images absent from the partition file count as train; without it every image
  is train. **Crop rule** (Dai & Wipf): a centred square of side ``round(140 * W / 178)`` (clamped to the
  image), i.e. 140x140 of the 178x218 aligned image and 70x70 of the half-size 89x109 copy, with offsets
  ``top = (H - side) // 2``, ``left = (W - side) // 2``; then a resize to ``image_size`` (default 64).
* ``folder``: option ``path`` (a folder searched recursively, or a ``.zip``) of ``.png .jpg .jpeg .bmp .pgm
  .ppm .webp`` files in sorted relative-path order (hidden files and ``__MACOSX`` skipped). Optional
  ``labels_csv`` (header ``filename,label[,split]``), ``image_size`` (centre square crop of side
  ``min(H, W)``, then resize) and ``channels`` (1 or 3; default 3 unless every image is greyscale).
  Integer CSV labels are class indices; otherwise labels map to their sorted unique strings. With a CSV
  only listed images are used; ``split="test"`` needs its ``split`` column (else the folder is train only).

**Resizing** (CelebA, folder ``image_size``): bicubic with antialiasing,
``torch.nn.functional.interpolate(mode="bicubic", antialias=True, align_corners=False)`` on float values,
then rounded and clamped to 0..255. This is the same filter as PIL's ``Image.BICUBIC`` resize (Keys
cubic, a = -0.5, support scaled when downsampling); results agree with PIL to within rounding.

**Unreadable images** (folder, CelebA): by default they are skipped; a warning gives the count and the
first paths and :attr:`ImageData.skipped` lists them all (zip members as ``<zip>::<member>``). With
``strict=True`` the first one raises :class:`DataError` naming its path.
"""

from __future__ import annotations

import builtins
import csv
import gzip
import inspect
import io
import os
import posixpath
import struct
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image as _PILImage

from latentstudio.data.base import DATASETS, ImageData, dataset_kind
from latentstudio.errors import DataError
from latentstudio.io import safe_pickle
from latentstudio.io.images import load_image
from latentstudio.paths import ENV_DATA, resolve_data_root

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".webp")
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CELEBA_CROP = 140  # side of the centre crop of a 178-pixel-wide aligned CelebA image (Dai & Wipf)
CELEBA_WIDTH = 178
# What decoding a corrupt, truncated or absurdly large image (or a damaged zip member) raises.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    zipfile.BadZipFile,
    _PILImage.DecompressionBombError,
)
_LOADER_CONTROL = ("download", "strict", "limit")  # keyword parameters that are not dataset options


# --------------------------------------------------------------------------------------------------
# public entry point


def load_images(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    download: bool = False,
    strict: bool = False,
    limit: int | None = None,
    **options: object,
) -> ImageData:
    """Load one split of a registered image dataset.

    Args:
        name: registry name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``, ``folder``).
        split: ``"train"`` or ``"test"``.
        root: data root; default ``$LATENTSTUDIO_DATA``, else the user data dir (see
            :func:`latentstudio.paths.resolve_data_root`). Datasets live in sub-folders of it.
        download: let the loader fetch missing files (MNIST, Fashion-MNIST, CIFAR-10, CelebA via torchvision).
        strict: raise on the first unreadable image instead of skipping it.
        limit: keep only the first ``limit`` images (>= 1); loaders that decode files stop early.
        **options: dataset-specific options (see :func:`dataset_options`), e.g. ``pad=0`` for MNIST,
            ``image_size=64`` for CelebA, ``path=...`` for ``folder``.

    Returns:
        ImageData: images ``uint8 [N, C, H, W]`` in 0..255, labels ``int64 [N]`` or None, attributes
        ``float32 [N, 40]`` in {-1, +1} (CelebA) or None.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the known names).
        DataError: bad ``split``, ``limit`` or option; missing, partial or unreadable dataset files.
    """
    loader = DATASETS.get(name)
    if dataset_kind(name) != "images":
        raise DataError(f"dataset {name!r} holds {dataset_kind(name)}, not images; load it with "
                        f"latentstudio.data.DataSpec(name={name!r}, options=...).load(split)")
    if split not in SPLITS:
        raise DataError(f"dataset {name!r}: unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    accepted, takes_any, takes_limit = _loader_signature(loader)
    unknown = sorted(k for k in options if k not in accepted)
    if unknown and not takes_any:
        listed = ", ".join(accepted) if accepted else "(none)"
        raise DataError(
            f"dataset {name!r} does not accept option(s) {', '.join(repr(k) for k in unknown)}; "
            f"accepted options: {listed}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")
    kwargs = dict(options)
    if takes_limit:
        kwargs["limit"] = limit
    data = loader(resolve_data_root(root), split, download=download, strict=strict, **kwargs)
    if limit is not None and len(data) > limit:
        data = data.subset(torch.arange(limit))
    return data


def dataset_options(name: str) -> dict[str, object]:
    """The options a dataset accepts, mapped to their defaults (``None`` when the option has no default).

    Raises:
        UnknownNameError: ``name`` is not registered.
    """
    loader = DATASETS.get(name)
    params = inspect.signature(loader).parameters
    out: dict[str, object] = {}
    for p in params.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _LOADER_CONTROL:
            out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def _loader_signature(loader: Callable[..., ImageData]) -> tuple[list[str], bool, bool]:
    params = inspect.signature(loader).parameters.values()
    accepted = [
        p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _LOADER_CONTROL
    ]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    takes_limit = any(p.name == "limit" and p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    return accepted, takes_any, takes_limit


# --------------------------------------------------------------------------------------------------
# shared helpers


def _fix_hint(root: Path, download: str | None) -> str:
    """The two ways out of a missing dataset: put the files under the root, or download them."""
    where = (
        f"put the files there (data root now {root}; choose another with --data-root or the {ENV_DATA} "
        "environment variable)"
    )
    how = download or "pass --download (download=True) to fetch them"
    return f"Fix: {where}, or {how}."


def _missing(
    name: str,
    split: str,
    root: Path,
    expected: list[Path] | str,
    download: str | None = None,
    detail: str = "",
) -> DataError:
    """DataError for a missing/partial dataset: the expected files (full paths), then both fixes."""
    files = expected if isinstance(expected, str) else ", ".join(str(p) for p in expected)
    extra = f" {detail}" if detail else ""
    return DataError(
        f"dataset {name!r} ({split}) not found or incomplete: expected {files}.{extra} "
        f"{_fix_hint(root, download)}"
    )


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"dataset {name!r}: unknown split {split!r}; use one of: {', '.join(SPLITS)}")


def _int_option(dataset: str, option: str, value: object, minimum: int, choices: tuple[int, ...] = ()) -> int:
    """Validate an integer option; accepts ints and decimal strings (as the CLI passes them)."""
    ok = False
    if isinstance(value, int) and not isinstance(value, bool):
        number, ok = value, True
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number, ok = int(value.strip()), True
    if not ok or number < minimum or (choices and number not in choices):
        want = f"one of {', '.join(map(str, choices))}" if choices else f"an integer >= {minimum}"
        raise DataError(f"dataset {dataset!r}: option {option!r} must be {want}, got {value!r}")
    return number


class _Skips:
    """Collects unreadable images: skip with a count by default, raise under ``strict``."""

    def __init__(self, dataset: str, strict: bool) -> None:
        self.dataset = dataset
        self.strict = strict
        self.paths: list[str] = []

    def add(self, path: str, reason: str) -> None:
        if self.strict:
            raise DataError(f"dataset {self.dataset!r}: cannot read image {path}: {reason} (strict mode)")
        self.paths.append(path)

    def report(self) -> None:
        if self.paths:
            first = ", ".join(self.paths[:3]) + (", ..." if len(self.paths) > 3 else "")
            warnings.warn(
                f"{self.dataset}: skipped {len(self.paths)} unreadable image(s): {first} "
                "(use strict=True / --strict to stop at the first one)",
                stacklevel=4,
            )


def _decode(read: Callable[[], object], channels: int | None) -> torch.Tensor:
    """Decode one image via :func:`load_image`; ``read`` returns a path or a binary file object."""
    return load_image(read(), channels=channels)  # type: ignore[arg-type]


def _center_crop(img: torch.Tensor, side: int) -> torch.Tensor:
    """Centred ``side x side`` crop of ``[C, H, W]``: top ``(H - side) // 2``, left ``(W - side) // 2``."""
    h, w = img.shape[-2:]
    side = max(1, min(side, h, w))
    top, left = (h - side) // 2, (w - side) // 2
    return img[..., top : top + side, left : left + side]


def binarize_images(images: torch.Tensor) -> torch.Tensor:
    """Fixed binarisation: ``uint8 [N, C, H, W]`` -> ``uint8`` in {0, 255}, pixel > 0.5 (i.e. >= 128) -> 255."""
    return (images >= 128).to(torch.uint8) * 255


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``uint8 [N, C, H, W]`` (or ``[C, H, W]``) to ``size x size`` with antialiased bicubic.

    Uses ``interpolate(mode="bicubic", antialias=True, align_corners=False)`` on floats, then rounds and
    clamps to 0..255 (PIL ``BICUBIC``-equivalent). Returns uint8 of the same rank; no-op if already
    ``size x size``.
    """
    if images.shape[-2:] == (size, size):
        return images
    x = images.unsqueeze(0) if images.ndim == 3 else images
    y = torch.nn.functional.interpolate(
        x.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    )
    y = y.round_().clamp_(0, 255).to(torch.uint8)
    return y[0] if images.ndim == 3 else y


class _BatchResizer:
    """Resizes ``uint8 [C, h, w]`` crops to ``size x size`` in batches of equal-shaped crops (order kept).

    Batching keeps the per-call overhead of :func:`resize_uint8` negligible for many small images.
    """

    def __init__(self, size: int, batch: int = 256) -> None:
        self.size = size
        self.batch = batch
        self.out: list[torch.Tensor | None] = []
        self._pending: list[tuple[int, torch.Tensor]] = []

    def __len__(self) -> int:
        return len(self.out)

    def add(self, crop: torch.Tensor) -> None:
        self.out.append(None)
        self._pending.append((len(self.out) - 1, crop))
        if len(self._pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        groups: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
        for i, crop in self._pending:
            groups.setdefault(tuple(crop.shape), []).append((i, crop))
        for items in groups.values():
            resized = resize_uint8(torch.stack([c for _, c in items]), self.size)
            for (i, _), img in zip(items, resized, strict=True):
                self.out[i] = img
        self._pending = []

    def result(self) -> list[torch.Tensor]:
        self._flush()
        return [t for t in self.out if t is not None]


def _stack(images: list[torch.Tensor], name: str) -> torch.Tensor:
    if not images:
        raise DataError(f"dataset {name!r}: no readable images")
    return torch.stack(images)


# --------------------------------------------------------------------------------------------------
# digits (scikit-learn)


@DATASETS.register("digits")
def load_digits(root: Path, split: str, *, download: bool = False, strict: bool = False) -> ImageData:
    """scikit-learn's bundled real 8x8 handwritten digits, upsampled to 32x32.

    Pixels ``v`` in 0..16 become ``round(v * 255 / 16)``; the 8x8 images are upsampled with bilinear
    interpolation (``align_corners=False``, no antialiasing), rounded and clamped. ``test`` = images
    ``i % 5 == 0`` (360), ``train`` = the rest (1437). ``root`` and ``download`` are ignored.

    Returns:
        ImageData: images ``uint8 [N, 1, 32, 32]``, labels ``int64 [N]`` in 0..9, class_names "0".."9".

    Raises:
        DataError: unknown ``split``.
    """
    _check_split("digits", split)
    from sklearn.datasets import load_digits as sk_load_digits  # lazy: scikit-learn takes ~1 s to import

    bunch = sk_load_digits()
    scaled = np.rint(np.asarray(bunch.images, dtype=np.float64) * 255.0 / 16.0)
    x = torch.from_numpy(scaled).float().unsqueeze(1)
    x = torch.nn.functional.interpolate(
        x, size=(32, 32), mode="bilinear", align_corners=False, antialias=False
    )
    images = x.round().clamp(0, 255).to(torch.uint8)
    labels = torch.as_tensor(np.asarray(bunch.target), dtype=torch.int64)
    idx = torch.arange(len(labels))
    keep = idx[idx % 5 == 0] if split == "test" else idx[idx % 5 != 0]
    return ImageData(
        images=images[keep].contiguous(),
        labels=labels[keep].contiguous(),
        class_names=list(MNIST_CLASSES),
        name="digits",
        split=split,
        source="scikit-learn load_digits",
    )


# --------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (idx files, read with torchvision's readers)

#: How to repair a damaged idx file (ends every such DataError).
_IDX_FIX = "delete it and load again with --download (or put an intact copy there)"


def _idx_problem(path: Path, ndim: int, exc: BaseException) -> str:
    """What is wrong with an idx file torchvision refused, from its header (one line, naming ``path``)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        return f"cannot read idx file {path}: {err}"
    want_magic = 0x0800 + ndim
    if len(raw) < 4 + 4 * ndim:
        return f"idx file {path} is truncated ({len(raw)} bytes)"
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != want_magic:
        return f"idx file {path} has magic number {magic}, expected {want_magic} (uint8, {ndim}-D)"
    dims = [int(d) for d in struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])]
    count, held = int(np.prod(dims)), len(raw) - 4 - 4 * ndim
    if held != count:
        state = "is truncated" if held < count else "is too long"
        return f"idx file {path} {state}: it holds {held} data bytes, its header says {count} ({dims})"
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"idx file {path} is not a valid uint8 {ndim}-D idx file ({detail})"


def _read_mnist_file(path: Path, ndim: int) -> torch.Tensor:
    """One MNIST idx file (``.gz`` allowed) via ``torchvision.datasets.mnist.read_image_file`` (``ndim=3``:
    ``uint8 [N, H, W]``) or ``read_label_file`` (``ndim=1``: ``int64 [N]``).

    torchvision's readers take uncompressed files only, so a ``.gz`` is decompressed to a temporary file.

    Raises:
        DataError: unreadable file, bad gzip, wrong magic number, truncated or over-long file (one line
            naming ``path`` and the fix).
    """
    from torchvision.datasets import mnist as tv_mnist  # lazy: torchvision adds ~1.1 s to import

    reader = tv_mnist.read_image_file if ndim == 3 else tv_mnist.read_label_file
    try:
        if path.suffix != ".gz":
            return reader(str(path))
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with tempfile.TemporaryDirectory(prefix="latentstudio-idx-") as tmp:
            plain = Path(tmp) / path.stem
            plain.write_bytes(raw)
            return reader(str(plain))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read idx file {path}: {' '.join(str(exc).split())}; {_IDX_FIX}") from None
    except Exception as exc:  # noqa: BLE001 - torchvision asserts / raises KeyError, ValueError, RuntimeError
        raise DataError(f"{_idx_problem(path, ndim, exc)}; {_IDX_FIX}") from None


def _find_idx(raw: Path, stem: str) -> Path | None:
    for p in (raw / stem, raw / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def _load_mnist_like(
    name: str, folder: str, classes: list[str], root: Path, split: str, download: bool, pad: object
) -> ImageData:
    _check_split(name, split)
    pad_px = _int_option(name, "pad", pad, minimum=0)
    raw = root / folder / "raw"
    prefix = "train" if split == "train" else "t10k"
    stems = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    found = [_find_idx(raw, s) for s in stems]
    if None in found and download:
        from torchvision import datasets as tvd  # lazy: torchvision (~1.1 s); downloads only

        cls = tvd.MNIST if folder == "MNIST" else tvd.FashionMNIST
        try:
            cls(str(root), train=split == "train", download=True)
        except Exception as exc:  # noqa: BLE001 - torchvision raises anything (network, checksum, disk)
            raise DataError(f"dataset {name!r}: download into {raw} failed: {' '.join(str(exc).split())}") from None
        found = [_find_idx(raw, s) for s in stems]
    if None in found:
        missing = [raw / s for s, p in zip(stems, found, strict=True) if p is None]
        raise _missing(
            name,
            split,
            root,
            [raw / s for s in stems],
            detail=(
                "(a .gz of each is also accepted)"
                if len(missing) == len(stems)
                else f"Missing: {', '.join(str(p) for p in missing)} (a .gz is also accepted)."
            ),
        )
    img_path, lab_path = found
    assert img_path is not None and lab_path is not None
    images = _read_mnist_file(img_path, 3)
    labels = _read_mnist_file(lab_path, 1).to(torch.int64)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{img_path} holds {images.shape[0]} images but {lab_path} {labels.shape[0]} labels")
    if labels.numel() and int(labels.max()) >= len(classes):
        raise DataError(f"{lab_path} holds label {int(labels.max())}; expected 0..{len(classes) - 1}")
    x = images.unsqueeze(1)
    if pad_px:
        x = torch.nn.functional.pad(x, (pad_px, pad_px, pad_px, pad_px), value=0)
    return ImageData(
        images=x.contiguous(),
        labels=labels.contiguous(),
        class_names=list(classes),
        name=name,
        split=split,
        source=f"{img_path}, {lab_path}",
    )


@DATASETS.register("mnist")
def load_mnist(
    root: Path, split: str, *, download: bool = False, strict: bool = False, pad: int = 2
) -> ImageData:
    """MNIST from ``<root>/MNIST/raw/`` (torchvision layout), zero-padded by ``pad`` pixels on each side.

    Returns:
        ImageData: images ``uint8 [N, 1, 28 + 2*pad, 28 + 2*pad]`` (default 32x32), labels ``int64 [N]``
        in 0..9; N = 60000 (train) / 10000 (test) for the full dataset.

    Raises:
        DataError: missing files (naming them, with the ``--data-root`` / ``--download`` fixes), corrupt
            idx files, bad ``pad``, or a failed download.
    """
    return _load_mnist_like("mnist", "MNIST", MNIST_CLASSES, root, split, download, pad)


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(
    root: Path, split: str, *, download: bool = False, strict: bool = False, pad: int = 2
) -> ImageData:
    """Fashion-MNIST from ``<root>/FashionMNIST/raw/``; same format and options as :func:`load_mnist`.

    Returns:
        ImageData: images ``uint8 [N, 1, 28 + 2*pad, 28 + 2*pad]``, labels ``int64 [N]`` in 0..9 with
        class_names "T-shirt/top" ... "Ankle boot".

    Raises:
        DataError: as :func:`load_mnist`.
    """
    return _load_mnist_like("fashion-mnist", "FashionMNIST", FASHION_CLASSES, root, split, download, pad)


# --------------------------------------------------------------------------------------------------
# CIFAR-10 (python pickles, read with a restricted unpickler)


# What CIFAR python batches hold: numpy arrays/dtypes/scalars and builtin containers, nothing else.
_CIFAR_GLOBALS: dict[tuple[str, str], Callable[..., object]] = {
    **safe_pickle.numpy_globals(),
    ("_codecs", "encode"): __import__("_codecs").encode,
    ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
}
for _builtin in ("list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float", "bool"):
    _CIFAR_GLOBALS[("builtins", _builtin)] = _CIFAR_GLOBALS[("__builtin__", _builtin)] = getattr(builtins, _builtin)


def read_cifar_pickle(path: Path) -> dict[str, object]:
    """Read one CIFAR python batch (or ``batches.meta``) safely; keys are returned as ``str``.

    Raises:
        DataError: the file references anything but numpy arrays/builtins ("refusing to unpickle ..."),
            is not a dict, or cannot be read.
    """
    try:
        obj = safe_pickle.load(
            path, _CIFAR_GLOBALS, error=DataError, encoding="latin1",
            refusal=lambda module, name: f"refusing to unpickle {module}.{name} from {path}: not a CIFAR-10 batch",
        )
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a garbage pickle can raise almost any exception type
        raise DataError(f"cannot read CIFAR-10 file {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR-10 file {path} holds a {type(obj).__name__}, expected a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = read_cifar_pickle(path)
    if "data" not in d or "labels" not in d:
        raise DataError(f"CIFAR-10 batch {path} lacks 'data'/'labels' (keys: {', '.join(sorted(d))})")
    try:
        data = np.asarray(d["data"], dtype=np.uint8)
        labels = np.asarray(d["labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"CIFAR-10 batch {path}: bad data/labels: {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"CIFAR-10 batch {path}: data {list(data.shape)} / labels {list(labels.shape)}; "
            "expected data [N, 3072] and N labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR-10 batch {path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


@DATASETS.register("cifar10")
def load_cifar10(root: Path, split: str, *, download: bool = False, strict: bool = False) -> ImageData:
    """CIFAR-10 from the python batches in ``<root>/cifar-10-batches-py/``.

    ``train`` uses whichever of ``data_batch_1..5`` exist (warning when some are missing); ``test`` uses
    ``test_batch``. Rows are R, G, B planes of 32x32. ``download=True`` fetches the official archive
    with torchvision when any batch is missing.

    Returns:
        ImageData: images ``uint8 [N, 3, 32, 32]`` (RGB), labels ``int64 [N]`` in 0..9, class_names from
        ``batches.meta`` (else the standard 10).

    Raises:
        DataError: no train batch / no ``test_batch`` (naming the expected files and the fixes), a file
            that is not a CIFAR batch (including pickles referencing other code), or a failed download.
    """
    _check_split("cifar10", split)
    folder = root / "cifar-10-batches-py"
    train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    test_file = folder / "test_batch"
    wanted = train_files if split == "train" else [test_file]
    if download and not all(p.is_file() for p in wanted):
        from torchvision.datasets import CIFAR10  # lazy: torchvision (~1.1 s); downloads only
        from torchvision.datasets.utils import (  # lazy: torchvision (~1.1 s); downloads only
            download_and_extract_archive,
        )

        try:
            download_and_extract_archive(
                CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5
            )
        except Exception as exc:  # noqa: BLE001 - network, checksum and disk errors of any type
            raise DataError(f"dataset 'cifar10': download into {folder} failed: {exc}") from None
    present = [p for p in wanted if p.is_file()]
    if not present:
        detail = "At least one of the train batches is needed." if split == "train" else ""
        raise _missing("cifar10", split, root, wanted, detail=detail)
    if split == "train" and len(present) < len(train_files):
        missing = [p.name for p in train_files if p not in present]
        warnings.warn(
            f"cifar10: using {len(present)} of 5 train batches ({', '.join(p.name for p in present)}); "
            f"missing {', '.join(missing)} in {folder}",
            stacklevel=3,
        )
    parts = [_cifar_batch(p) for p in present]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    class_names = list(CIFAR10_CLASSES)
    meta_path = folder / "batches.meta"
    if meta_path.is_file():
        names = read_cifar_pickle(meta_path).get("label_names")
        if isinstance(names, list) and len(names) == 10:
            class_names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    return ImageData(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)),
        class_names=class_names,
        name="cifar10",
        split=split,
        source=", ".join(str(p) for p in present),
    )


# --------------------------------------------------------------------------------------------------
# CelebA


def read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt``: line 1 a count, line 2 the attribute names, then ``<file> <+-1 ...>``.

    Whitespace (including repeated spaces) separates fields. A count on line 1 that disagrees with the
    number of rows only produces a warning.

    Returns:
        (attribute_names, file_names, values) with values ``float32 [N, A]`` in {-1, +1}.

    Raises:
        DataError: unreadable file, a row with the wrong number of fields or a value other than -1/1
            (naming the file and line).
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read CelebA attribute file {path}: {exc}") from None
    if len(lines) < 2:
        raise DataError(f"CelebA attribute file {path} needs a count line and an attribute-name line")
    names_attr = lines[1].split()
    n_attr = len(names_attr)
    files: list[str] = []
    rows: list[list[int]] = []
    for lineno, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_attr + 1:
            raise DataError(f"{path}, line {lineno}: {len(fields) - 1} values, expected {n_attr}")
        try:
            vals = [int(v) for v in fields[1:]]
        except ValueError:
            raise DataError(f"{path}, line {lineno}: attribute values must be -1 or 1") from None
        if any(v not in (-1, 1) for v in vals):
            raise DataError(f"{path}, line {lineno}: attribute values must be -1 or 1")
        files.append(fields[0])
        rows.append(vals)
    head = lines[0].split()
    if head and head[0].isdigit() and int(head[0]) != len(files):
        warnings.warn(f"celeba: {path} says {head[0]} images on line 1 but lists {len(files)}", stacklevel=4)
    values = np.asarray(rows, dtype=np.float32).reshape(len(files), n_attr)
    return names_attr, files, values


def _read_partition(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {lineno}: expected '<file> <0|1|2>', got {line.strip()!r}")
        out[fields[0]] = int(fields[1])
    return out


_CELEBA_DOWNLOAD = (
    "pass --download (download=True) to try torchvision's CelebA downloader (it needs the gdown package and "
    "Google Drive, which often refuses with a quota error; the manual route is to download "
    "img_align_celeba.zip and list_attr_celeba.txt from the CelebA page and place them as above)"
)


@DATASETS.register("celeba")
def load_celeba(
    root: Path,
    split: str,
    *,
    download: bool = False,
    strict: bool = False,
    image_size: int = 64,
    limit: int | None = None,
) -> ImageData:
    """CelebA aligned faces from ``<root>/celeba/`` with the 40 binary attributes.

    Needs ``list_attr_celeba.txt`` and the images in ``img_align_celeba/`` or ``img_align_celeba*.zip``
    (the folder if it has every listed file, else the zip). ``list_eval_partition.txt`` is optional:
    train = partitions 0 and 1, test = 2; without it all images are train. Each image is centre-cropped to a
    square of side ``round(140 * W / 178)`` (140 for 178x218, 70 for 89x109) and resized to ``image_size``
    with antialiased bicubic. Only the first ``limit`` readable images of the split are decoded.

    Returns:
        ImageData: images ``uint8 [N, 3, image_size, image_size]``, attributes ``float32 [N, 40]`` in
        {-1, +1} (attribute-file order), attribute_names, labels None; ``skipped`` lists unreadable files.

    Raises:
        DataError: missing attribute file or images (naming the expected paths and the fixes), a split with
            no images in the partition file, a malformed attribute/partition file, no readable image, or
            (``strict``) the first unreadable image.
    """
    _check_split("celeba", split)
    size = _int_option("celeba", "image_size", image_size, minimum=1)
    cdir = root / "celeba"
    attr_path = cdir / "list_attr_celeba.txt"
    folder = cdir / "img_align_celeba"
    expected = (
        f"{attr_path} and the images, either as {folder}/000001.jpg ... or in a zip "
        f"{cdir}/img_align_celeba*.zip holding img_align_celeba/000001.jpg ... "
        f"(optional: {cdir / 'list_eval_partition.txt'})"
    )

    def have_images() -> bool:
        return folder.is_dir() or any(cdir.glob("img_align_celeba*.zip"))

    if download and not (attr_path.is_file() and have_images()):
        from torchvision.datasets import CelebA  # lazy: torchvision (~1.1 s); downloads only

        try:
            CelebA(str(root), split="all", target_type="attr", download=True)
        except Exception as exc:  # noqa: BLE001 - gdown missing, Google Drive quota, checksum, disk ...
            raise _missing(
                "celeba",
                split,
                root,
                expected,
                download="place the files by hand (the manual route: img_align_celeba.zip and "
                "list_attr_celeba.txt from the CelebA page)",
                detail=f"torchvision's CelebA download (Google Drive, needs gdown) failed: "
                f"{type(exc).__name__}: {exc}.",
            ) from None
    if not attr_path.is_file() or not have_images():
        lacking = [str(attr_path)] if not attr_path.is_file() else []
        if not have_images():
            lacking.append(f"{folder}/ or {cdir}/img_align_celeba*.zip")
        raise _missing(
            "celeba",
            split,
            root,
            expected,
            download=_CELEBA_DOWNLOAD,
            detail=f"Missing: {'; '.join(lacking)}.",
        )

    attribute_names, files, values = read_celeba_attributes(attr_path)
    part_path = cdir / "list_eval_partition.txt"
    if part_path.is_file():
        partition = _read_partition(part_path)
        parts = np.asarray([partition.get(f, 0) for f in files])
        keep = np.flatnonzero(parts == 2) if split == "test" else np.flatnonzero(parts != 2)
        if keep.size == 0:
            other, parts_of = ("train", "partition 2") if split == "test" else ("test", "partitions 0/1")
            raise DataError(
                f"dataset 'celeba': {part_path} assigns no listed image to the {split} split ({parts_of}); "
                f"use split='{other}' (--split {other})"
            )
    else:
        if split == "test":
            raise DataError(
                f"dataset 'celeba': there is no {part_path}, so every image is in the train split and the "
                "test split is empty; use split='train' (--split train) or add list_eval_partition.txt"
            )
        keep = np.arange(len(files))

    skips = _Skips("celeba", strict)
    resizer = _BatchResizer(size)
    kept_rows: list[int] = []
    with ExitStack() as stack:
        listing = set(os.listdir(folder)) if folder.is_dir() else set()
        zips = sorted(cdir.glob("img_align_celeba*.zip"))
        use_zip = bool(zips) and sum(1 for f in files if f in listing) < len(files)
        members: dict[str, tuple[zipfile.ZipFile, str]] = {}
        if use_zip:
            for zp in zips:
                try:
                    zf = stack.enter_context(zipfile.ZipFile(zp))
                except (OSError, zipfile.BadZipFile) as exc:
                    raise DataError(f"dataset 'celeba': cannot open zip {zp}: {exc}") from None
                for info in zf.infolist():
                    if not info.is_dir():
                        members.setdefault(posixpath.basename(info.filename), (zf, info.filename))
            source = ", ".join(str(z) for z in zips)
        else:
            source = str(folder)
        for row in keep:
            if limit is not None and len(kept_rows) >= limit:
                break
            fname = files[row]
            if use_zip:
                hit = members.get(fname)
                where = (
                    f"{zips[0]}::img_align_celeba/{fname}" if hit is None else f"{hit[0].filename}::{hit[1]}"
                )
                read = None if hit is None else (lambda h=hit: io.BytesIO(h[0].read(h[1])))
            else:
                where = str(folder / fname)
                read = None if fname not in listing else (lambda p=where: p)
            if read is None:
                skips.add(where, "listed in list_attr_celeba.txt but missing")
                continue
            try:
                img = _decode(read, channels=3)
            except _DECODE_ERRORS as exc:  # corrupt or truncated image, CRC error in the zip
                skips.add(where, f"{type(exc).__name__}: {exc}")
                continue
            side = round(CELEBA_CROP * img.shape[-1] / CELEBA_WIDTH)
            resizer.add(_center_crop(img, side))
            kept_rows.append(int(row))
    skips.report()
    if not kept_rows:
        raise DataError(
            f"dataset 'celeba' ({split}): none of the listed images could be read from {source}; "
            f"{len(skips.paths)} unreadable (first: {', '.join(skips.paths[:3])})"
        )
    return ImageData(
        images=torch.stack(resizer.result()),
        attributes=torch.from_numpy(values[kept_rows]),
        attribute_names=attribute_names,
        name="celeba",
        split=split,
        source=f"{source}; {attr_path}",
        skipped=list(skips.paths),
    )


# --------------------------------------------------------------------------------------------------
# folder / zip of images


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(rel).parts)


def _list_images(
    path: Path, stack: ExitStack
) -> tuple[list[str], Callable[[str], Callable[[], object]], Callable[[str], str]]:
    """Relative posix paths of the images in a folder or zip, a reader factory and a path describer."""
    if path.is_dir():
        rels = sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        rels = [r for r in rels if not _hidden(r)]
        return rels, (lambda rel: lambda: path / rel), (lambda rel: str(path / rel))
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"dataset 'folder': {path} is neither a folder nor a readable zip: {exc}") from None
    rels = sorted(
        i.filename
        for i in zf.infolist()
        if not i.is_dir()
        and PurePosixPath(i.filename).suffix.lower() in IMAGE_EXTENSIONS
        and not _hidden(i.filename)
    )
    return rels, (lambda rel: lambda: io.BytesIO(zf.read(rel))), (lambda rel: f"{path}::{rel}")


def _read_labels_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [h.strip() for h in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    except OSError as exc:
        raise DataError(f"cannot read labels CSV {path}: {exc}") from None
    if "filename" not in fields or not ({"label", "split"} & set(fields)):
        raise DataError(
            f"labels CSV {path} must have a header with 'filename' and 'label' (optional 'split'); "
            f"got {fields}"
        )
    return fields, rows


def _norm_rel(name: str) -> str:
    rel = PurePosixPath(name.replace("\\", "/")).as_posix()
    return rel.removeprefix("./")


@DATASETS.register("folder")
def load_folder(
    root: Path,
    split: str,
    *,
    download: bool = False,
    strict: bool = False,
    path: str | Path | None = None,
    labels_csv: str | Path | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
) -> ImageData:
    """Images from a folder (recursive) or a ``.zip``: ``.png .jpg .jpeg .bmp .pgm .ppm .webp``.

    Options:
        path: the folder or zip (required; ``root`` is not used).
        labels_csv: CSV with header ``filename,label`` and optional ``split`` (``train``/``test``);
            ``filename`` is relative to the folder/zip root. Integer labels are used as class indices;
            any non-integer label maps all labels to indices of their sorted unique strings (recorded as
            class_names). With a CSV, only listed images are used (others are ignored with a warning);
            listed but missing files count as unreadable.
        image_size: centre-crop each image to a square of side ``min(H, W)`` and resize to this size
            (antialiased bicubic). Without it all images must share one size.
        channels: 1 (grey) or 3 (RGB); default 3 unless every image is greyscale.

    Without a ``split`` column the folder has only a ``train`` split.

    Returns:
        ImageData: images ``uint8 [N, C, H, W]`` in sorted relative-path order, labels ``int64 [N]`` (with
        a CSV) or None.

    Raises:
        DataError: missing ``path``; nothing found; differing image sizes without ``image_size`` (naming two
            files); bad CSV; ``split="test"`` without a CSV ``split`` column; no readable image; or
            (``strict``) the first unreadable image.
    """
    _check_split("folder", split)
    if path is None or str(path) == "":
        raise DataError(
            "dataset 'folder' needs the option 'path' (a folder or .zip of images): "
            "--data-option path=/my/images on the command line, load_images('folder', path=...) in Python"
        )
    src = Path(str(path)).expanduser()
    if not src.exists():
        raise DataError(f"dataset 'folder': path {src} does not exist")
    size = None if image_size is None else _int_option("folder", "image_size", image_size, minimum=1)
    chans = (
        None if channels is None else _int_option("folder", "channels", channels, minimum=1, choices=(1, 3))
    )
    with ExitStack() as stack:
        rels, reader, describe = _list_images(src, stack)
        if labels_csv is not None:
            order, label_of, class_names = _select_from_csv(
                Path(str(labels_csv)).expanduser(), rels, src, split
            )
        elif split == "test":
            raise DataError(
                "dataset 'folder' has only a train split; use split='train', or give a labels CSV "
                "(labels_csv=...) with a 'split' column"
            )
        else:
            order, label_of, class_names = rels, None, None
        if not order:
            raise DataError(f"dataset 'folder': no image files ({' '.join(IMAGE_EXTENSIONS)}) found in {src}")

        on_disk = set(rels)
        skips = _Skips("folder", strict)
        images: list[torch.Tensor] = []
        resizer = None if size is None else _BatchResizer(size)
        names: list[str] = []
        first: tuple[tuple[int, ...], str] | None = None
        for rel in order:
            if limit is not None and len(names) >= limit:
                break
            where = describe(rel)
            if rel not in on_disk:
                skips.add(where, "listed in the labels CSV but missing")
                continue
            try:
                img = _decode(reader(rel), channels=chans)
            except _DECODE_ERRORS as exc:  # corrupt/truncated file or zip member
                skips.add(where, f"{type(exc).__name__}: {exc}")
                continue
            if resizer is not None:
                resizer.add(_center_crop(img, min(img.shape[-2:])))
                names.append(rel)
                continue
            if first is None:
                first = (tuple(img.shape[-2:]), where)
            elif tuple(img.shape[-2:]) != first[0]:
                (h0, w0), f0 = first
                raise DataError(
                    f"dataset 'folder': images differ in size: {f0} is {w0}x{h0} but {where} is "
                    f"{img.shape[-1]}x{img.shape[-2]}; pass image_size=N (--data-option image_size=64) "
                    "to centre-crop and resize all of them"
                )
            images.append(img)
            names.append(rel)
    skips.report()
    if resizer is not None:
        images = resizer.result()
    if not images:
        raise DataError(f"dataset 'folder': none of the {len(order)} image(s) in {src} could be read")
    if chans is None and any(im.shape[0] == 3 for im in images):
        images = [im.expand(3, -1, -1) if im.shape[0] == 1 else im for im in images]
    labels = None if label_of is None else torch.tensor([label_of[n] for n in names], dtype=torch.int64)
    return ImageData(
        images=_stack(images, "folder"),
        labels=labels,
        class_names=class_names,
        name="folder",
        split=split,
        source=str(src),
        skipped=list(skips.paths),
    )


def _select_from_csv(
    csv_path: Path, rels: list[str], src: Path, split: str
) -> tuple[list[str], dict[str, int] | None, list[str] | None]:
    """Images of ``split`` listed in the CSV (sorted), their class index (or None) and class names."""
    fields, rows = _read_labels_csv(csv_path)
    has_split, has_label = "split" in fields, "label" in fields
    if split == "test" and not has_split:
        raise DataError(
            f"dataset 'folder' has only a train split: {csv_path} has no 'split' column; "
            "use split='train' or add a split column (train/test)"
        )
    seen: set[str] = set()
    for line, r in enumerate(rows, start=2):
        rel = _norm_rel(r.get("filename", ""))
        if not rel or rel in seen:
            raise DataError(f"{csv_path}, line {line}: empty or repeated filename {r.get('filename')!r}")
        seen.add(rel)
        if has_split and r.get("split", "").lower() not in SPLITS:
            raise DataError(f"{csv_path}, line {line}: split must be train or test, got {r.get('split')!r}")
        if has_label and not r.get("label"):
            raise DataError(f"{csv_path}, line {line}: empty label for {rel}")
    class_names: list[str] | None = None
    index: dict[str, int] = {}
    if has_label:
        values = [r["label"] for r in rows]  # classes come from every row, so train/test indices agree
        if all(v.isdigit() for v in values):
            index = {v: int(v) for v in values}
        else:
            class_names = sorted(set(values))
            index = {v: k for k, v in enumerate(class_names)}
    selected = {
        _norm_rel(r["filename"]): r.get("label", "")
        for r in rows
        if not has_split or r["split"].lower() == split
    }
    if not selected:
        raise DataError(f"dataset 'folder': {csv_path} lists no image for the {split} split")
    unlisted = sum(1 for r in rels if r not in seen)
    if unlisted:
        warnings.warn(
            f"folder: {unlisted} image(s) in {src} are not listed in {csv_path} and are ignored", stacklevel=4
        )
    order = sorted(selected)
    label_of = {rel: index[v] for rel, v in selected.items()} if has_label else None
    return order, label_of, class_names
