"""Feature extractors for FID / KID / IS: the FID Inception-v3 and a small project-trained classifier.

An extractor is an ``nn.Module`` that maps project images, ``uint8 [N, C, H, W]`` (C = 1 or 3,
any size), to ``float32 [N, D]`` features. It carries ``name``, ``num_features``,
``weights_hash`` and ``resize_rule`` so that every metric value can be stamped with how it was
obtained (see :mod:`latentstudio.metrics.records`). Extractors plug straight into torchmetrics'
``FrechetInceptionDistance(feature=extractor)`` / ``KernelInceptionDistance(feature=extractor)``:
torchmetrics calls ``extractor(imgs)`` with the images passed to ``update`` (uint8 here, no
``normalize``) and reads ``num_features`` instead of probing with a dummy image.

Two extractors are registered in :data:`EXTRACTORS`:

* ``inception`` (:func:`load_inception`): the standard FID network, Inception-v3 with the
  TensorFlow 2015-12-05 weights ported to PyTorch (torch-fidelity / pytorch-fid file), 2048-d
  pool3 features and 1008-class logits for the Inception Score. Numbers are comparable with
  published FIDs (Heusel et al. 2017) only with these weights.
* ``classifier`` (:func:`get_classifier`): a small CNN trained on a dataset's labelled training
  split, cached on disk; 128-d penultimate features. Its FID is reported as ``fid_clf`` and is
  never comparable with Inception FIDs.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentstudio.errors import DataError, ExtractorWeightsMissing, LatentStudioError, ShapeError
from latentstudio.io.atomic import atomic_path, write_json
from latentstudio.metrics._checks import check_images_u8
from latentstudio.metrics.classifier_cache import (
    CONFIG_FILE,
    cached_or_trained,
    classifier_folder,
    load_classifier_files,
    progress_bar,
    save_classifier_files,
    state_bytes,
)
from latentstudio.registry import Registry

__all__ = [
    "CLASSIFIER_ARCH",
    "EXTRACTORS",
    "INCEPTION_WEIGHTS_FILE",
    "INCEPTION_WEIGHTS_SHA256",
    "INCEPTION_WEIGHTS_URL",
    "PYTORCH_FID_WEIGHTS_FILE",
    "PYTORCH_FID_WEIGHTS_URL",
    "ClassifierExtractor",
    "ClassifierNet",
    "FeatureExtractor",
    "InceptionExtractor",
    "build_extractor",
    "classifier_cache_dir",
    "extract_features",
    "extract_logits",
    "find_inception_weights",
    "get_classifier",
    "inception_weights_dir",
    "load_inception",
    "resize_bilinear_tf1",
]


# --------------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------------


class FeatureExtractor(nn.Module):
    """Base class: ``uint8 [N, C, H, W]`` images (C = 1 or 3) -> ``float32 [N, D]`` features.

    Attributes:
        name: registry name (``"inception"``, ``"classifier"``).
        num_features: D, the feature width (torchmetrics reads it instead of probing).
        weights_hash: sha256 hex prefix of the weights file / state, stamped on every record.
        resize_rule: how images are converted and resized before the network, for reports.
        num_classes: K of :meth:`logits`, or None if the extractor has no classification head.

    Subclasses implement ``_features(images_u8)`` and optionally ``_logits(images_u8)``. The module
    never leaves evaluation mode (``train()`` is a no-op) and its parameters need no gradient.
    """

    name: str = "extractor"
    num_features: int = 0
    weights_hash: str = ""
    resize_rule: str = ""
    num_classes: int | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of ``uint8 [N, C, H, W]`` images: ``float32 [N, num_features]``.

        Raises:
            ShapeError: if ``images`` is not uint8 ``[N, C, H, W]`` with C in (1, 3).
        """
        check_images_u8(images)
        return self._features(images).to(torch.float32)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``float32 [N, num_classes]`` of ``uint8 [N, C, H, W]`` images (for IS / accuracy).

        Raises:
            ShapeError: for malformed images.
            LatentStudioError: if this extractor has no classification head.
        """
        if not self.has_logits:
            raise LatentStudioError(f"feature extractor {self.name!r} has no logits (no classification head)")
        check_images_u8(images)
        return self._logits(images).to(torch.float32)

    @property
    def has_logits(self) -> bool:
        """Whether :meth:`logits` is available (the subclass implements ``_logits``)."""
        return type(self)._logits is not FeatureExtractor._logits

    def _features(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _logits(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Stay in evaluation mode whatever ``mode`` is (BatchNorm statistics are frozen)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """Device of the extractor's parameters (CPU if it has none)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def describe(self) -> dict[str, Any]:
        """``name``, ``num_features``, ``weights_hash``, ``resize_rule``, ``num_classes`` as a dict."""
        return {
            "name": self.name,
            "num_features": int(self.num_features),
            "weights_hash": self.weights_hash,
            "resize_rule": self.resize_rule,
            "num_classes": self.num_classes,
        }


def _batched(
    images: torch.Tensor, fn, batch_size: int, progress: bool, desc: str, device: torch.device
) -> torch.Tensor:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outs = []
    with torch.no_grad():
        for start in tqdm(range(0, images.shape[0], batch_size), desc=desc, disable=not progress, leave=False):
            outs.append(fn(images[start : start + batch_size].to(device)).cpu())
    if not outs:
        raise ShapeError(f"{desc}: no images given")
    return torch.cat(outs)


def extract_features(
    images: torch.Tensor, extractor: FeatureExtractor, *, batch_size: int = 256, progress: bool = False
) -> torch.Tensor:
    """Features of ``uint8 [N, C, H, W]`` images in batches, without gradients: ``float32 [N, D]`` on CPU.

    Raises:
        ShapeError: if ``images`` is malformed or empty.
    """
    check_images_u8(images)
    return _batched(images, extractor, batch_size, progress, f"{extractor.name} features", extractor.device)


def extract_logits(
    images: torch.Tensor, extractor: FeatureExtractor, *, batch_size: int = 256, progress: bool = False
) -> torch.Tensor:
    """Logits of ``uint8 [N, C, H, W]`` images in batches: ``float32 [N, K]`` on CPU.

    Raises:
        ShapeError: malformed images. LatentStudioError: extractor without logits.
    """
    check_images_u8(images)
    return _batched(images, extractor.logits, batch_size, progress, f"{extractor.name} logits", extractor.device)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


EXTRACTORS: Registry[Any] = Registry("feature extractor")


def build_extractor(name: str, **kwargs: Any) -> FeatureExtractor:
    """Build the extractor registered as ``name`` (``inception``: :func:`load_inception`,
    ``classifier``: :func:`get_classifier`) with ``kwargs``.

    Raises:
        UnknownNameError: for an unknown name.
    """
    return EXTRACTORS.get(name)(**kwargs)


# --------------------------------------------------------------------------------------------
# Inception-v3 (FID)
# --------------------------------------------------------------------------------------------

#: File name torch-fidelity (and torchmetrics through it) caches in ``<torch hub>/checkpoints``.
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
#: Where it comes from: the torch-fidelity v0.2.0 release.
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
#: The same TF 2015-12-05 port as distributed by pytorch-fid; accepted too.
PYTORCH_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
#: sha256 of the standard file; other files still load but are flagged (numbers not comparable).
INCEPTION_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"

INCEPTION_RESIZE_RULE = (
    "uint8 0..255 as float32; resized to 299x299 inside the extractor by TensorFlow 1.x resize_bilinear "
    "(align_corners=False, legacy coordinates src = dst * in / out, not half-pixel; no antialias; the rule of the "
    "official TF FID code and torch-fidelity, bit-identical to torch-fidelity's; 299x299 input is not resampled); "
    "scaled as (x - 128) / 128; grey repeated to 3 channels"
)


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1.x ``tf.image.resize_bilinear(..., align_corners=False)``: the resize of the official FID code.

    Output pixel ``(i, j)`` reads the input at ``(i * H / out_h, j * W / out_w)`` (legacy TF1 coordinates, not
    the half-pixel ones of ``F.interpolate``), interpolating linearly between the two neighbouring input pixels
    of each axis (the upper one clamped at the border); no antialiasing. Separable: the rows are interpolated
    along the width first (``[N, C, H, out_w]``, a gather of two columns), then the result along the height, with
    the same float32 operations in the same order as torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``
    (``a + (b - a) * d``, width then height), so the output is bit-identical to it, at a fraction of its cost (it
    gathers four full-size ``[N, C, out_h, out_w]`` tensors twice each).

    Args:
        images: float ``[N, C, H, W]``, any range (pixel values 0..255 for the FID network).
        size: ``(out_h, out_w)``, each >= 1.

    Returns:
        ``[N, C, out_h, out_w]``, the dtype and device of ``images``; ``images`` itself when the size is unchanged
        (the TF1 rule is then the identity).

    Raises:
        ShapeError: ``images`` is not a 4-d floating tensor, or ``size`` is not two positive ints.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ShapeError(f"resize_bilinear_tf1 needs a float [N, C, H, W] tensor, got {images.dtype} {tuple(images.shape)}")
    if len(size) != 2 or min(size) < 1:
        raise ShapeError(f"resize_bilinear_tf1: size must be two positive ints (out_h, out_w), got {size}")
    out_h, out_w = int(size[0]), int(size[1])
    h, w = images.shape[-2:]
    if (h, w) == (out_h, out_w):
        return images
    lo_x, hi_x, dx = _tf1_taps(w, out_w, images.dtype, images.device)
    lo_y, hi_y, dy = _tf1_taps(h, out_h, images.dtype, images.device)
    left = images.index_select(3, lo_x)
    rows = images.index_select(3, hi_x).sub_(left).mul_(dx).add_(left)  # [N, C, H, out_w]: a + (b - a) * dx
    top = rows.index_select(2, lo_y)
    return rows.index_select(2, hi_y).sub_(top).mul_(dy.view(-1, 1)).add_(top)


def _tf1_taps(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower / upper source indices (int64 ``[n_out]``) and fractions (``[n_out]``) of the TF1 legacy rule.

    The source coordinate ``dst * (n_in / n_out)`` is computed in the images' dtype with the scale rounded to
    float32 first, as torch-fidelity does (so the fractions, and the outputs, are the same bits)."""
    src = torch.arange(n_out, dtype=dtype, device=device) * torch.tensor(n_in / n_out, dtype=torch.float32)
    lo = src.long()  # floor: the coordinates are >= 0
    hi = (lo + 1).clamp_max(n_in - 1)
    return lo, hi, src - lo.to(dtype)


def inception_weights_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), where the weights are looked for."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_inception_weights() -> Path | None:
    """Path of the FID Inception weights in :func:`inception_weights_dir`, or None.

    Looks for :data:`INCEPTION_WEIGHTS_FILE` (torch-fidelity) then :data:`PYTORCH_FID_WEIGHTS_FILE`
    (pytorch-fid); touches no network.
    """
    folder = inception_weights_dir()
    for fname in (INCEPTION_WEIGHTS_FILE, PYTORCH_FID_WEIGHTS_FILE):
        p = folder / fname
        if p.is_file():
            return p
    return None


def _missing_message() -> str:
    folder = inception_weights_dir()
    return (
        f"FID Inception-v3 weights not found. Put the file {INCEPTION_WEIGHTS_FILE} at "
        f"{folder / INCEPTION_WEIGHTS_FILE} (torch-fidelity release: {INCEPTION_WEIGHTS_URL}); the identical "
        f"pytorch-fid copy {PYTORCH_FID_WEIGHTS_FILE} ({PYTORCH_FID_WEIGHTS_URL}) is accepted at "
        f"{folder / PYTORCH_FID_WEIGHTS_FILE}. The folder is $TORCH_HOME/hub/checkpoints. Fetch it with "
        f"--download-weights (of `latentstudio evaluate` and the study commands; Python: download=True), or use "
        f"the 'classifier' extractor (--extractor classifier: fid_clf, not comparable with published FIDs)."
    )


def _download_inception(timeout: float = 60.0) -> Path:
    dst = inception_weights_dir() / INCEPTION_WEIGHTS_FILE
    try:
        with (
            atomic_path(dst, overwrite=True) as tmp,
            urllib.request.urlopen(INCEPTION_WEIGHTS_URL, timeout=timeout) as resp,
            open(tmp, "wb") as f,
        ):
            shutil.copyfileobj(resp, f, length=1 << 20)
    except OSError as exc:  # URLError, timeouts and disk errors are OSErrors
        raise ExtractorWeightsMissing(f"download of {INCEPTION_WEIGHTS_URL} failed ({exc}). {_missing_message()}")
    return dst


def _is_plain_max_pool_3x3_s2(layer: nn.Module) -> bool:
    """Whether ``layer`` is ``nn.MaxPool2d(3, stride=2)`` (no padding, no dilation, floor mode)."""
    return (isinstance(layer, nn.MaxPool2d) and layer.kernel_size in (3, (3, 3)) and layer.stride in (2, (2, 2))
            and layer.padding in (0, (0, 0)) and layer.dilation in (1, (1, 1)) and not layer.ceil_mode
            and not layer.return_indices)


def _max_pool_3x3_s2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 3, stride=2)`` of ``[N, C, H, W]`` (H, W >= 3) as separable maxima: rows, then columns.

    The maximum is exact, so the result is the same bits as ``max_pool2d`` (NaN propagates in both), without
    the indices that CPU ``max_pool2d`` computes even when no gradient is needed.
    """
    ho, wo = (x.shape[-2] - 3) // 2 + 1, (x.shape[-1] - 3) // 2 + 1
    rows = torch.maximum(x[..., 0 : 2 * ho - 1 : 2, :], x[..., 1 : 2 * ho : 2, :])
    torch.maximum(rows, x[..., 2 : 2 * ho + 1 : 2, :], out=rows)
    out = torch.maximum(rows[..., 0 : 2 * wo - 1 : 2], rows[..., 1 : 2 * wo : 2])
    return torch.maximum(out, rows[..., 2 : 2 * wo + 1 : 2], out=out)


def _max_pool_3x3_s1_same(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 3, stride=1, padding=1)`` of ``[N, C, H, W]`` as separable maxima (exact, see
    :func:`_max_pool_3x3_s2`); the border is padded with -inf, which never wins."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(xp[..., 0:h, :], xp[..., 1 : h + 1, :])
    torch.maximum(rows, xp[..., 2 : h + 2, :], out=rows)
    out = torch.maximum(rows[..., 0:w], rows[..., 1 : w + 1])
    return torch.maximum(out, rows[..., 2 : w + 2], out=out)


def _avg_pool_3x3_s1_same(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)`` of ``[N, C, H, W]``: the same bits.

    The nine shifted copies are summed in the order CPU ``avg_pool2d`` sums a window (row by row, left to
    right; the zero padding adds exact zeros where the kernel skips the border) and the sum is divided by
    the number of pixels inside the image (9, 6 or 4), as the kernel does; about 2.5x faster on CPU for the
    Inception blocks' 35x35 and 17x17 maps.
    """
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1))
    acc = xp[..., 0:h, 0:w].clone()
    for i in range(3):
        for j in range(3):
            if i or j:
                acc.add_(xp[..., i : i + h, j : j + w])

    def inside(n: int) -> torch.Tensor:  # pixels of the 3-window inside [0, n) around each position
        k = torch.arange(n, device=x.device)
        return (k + 1).clamp(max=n - 1) - (k - 1).clamp(min=0) + 1

    return acc.div_((inside(h)[:, None] * inside(w)[None, :]).to(x.dtype))


_AVG, _MAX_S1, _MAX_S2 = "avg_pool_3x3_s1", "max_pool_3x3_s1", "max_pool_3x3_s2"
_POOLS = {_AVG: _avg_pool_3x3_s1_same, _MAX_S1: _max_pool_3x3_s1_same, _MAX_S2: _max_pool_3x3_s2}
#: The wiring of the Inception-v3 blocks (Szegedy et al. 2016; the FID variant's pools: TF's average pool
#: without the padding, max pool in the last block), by the class names torch-fidelity gives them: each
#: branch is a chain of sub-module names and pools, a pair inside a chain runs both on the same input and
#: concatenates them, and the branches are concatenated along the channels in this order.
_INCEPTION_BLOCKS: dict[str, tuple] = {
    "InceptionA": (("branch1x1",), ("branch5x5_1", "branch5x5_2"),
                   ("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), (_AVG, "branch_pool")),
    "InceptionB": (("branch3x3",), ("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), (_MAX_S2,)),
    "InceptionC": (("branch1x1",), ("branch7x7_1", "branch7x7_2", "branch7x7_3"),
                   ("branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"),
                   (_AVG, "branch_pool")),
    "InceptionD": (("branch3x3_1", "branch3x3_2"),
                   ("branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"), (_MAX_S2,)),
    "InceptionE_1": (("branch1x1",), ("branch3x3_1", ("branch3x3_2a", "branch3x3_2b")),
                     ("branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")),
                     (_AVG, "branch_pool")),
    "InceptionE_2": (("branch1x1",), ("branch3x3_1", ("branch3x3_2a", "branch3x3_2b")),
                     ("branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")),
                     (_MAX_S1, "branch_pool")),
}


def _run_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One layer of the Inception trunk: on CPU the blocks by their wiring with the exact fast pools and the
    stem's ``MaxPool2d(3, 2)`` as :func:`_max_pool_3x3_s2`; anything else, and every layer on other devices
    (whose pooling kernels sum in their own order), as itself."""
    if x.device.type != "cpu":
        return layer(x)
    if _is_plain_max_pool_3x3_s2(layer):
        return _max_pool_3x3_s2(x)
    spec = _INCEPTION_BLOCKS.get(type(layer).__name__)
    if spec is None:
        return layer(x)
    outs = []
    for chain in spec:
        y = x
        for step in chain:
            if isinstance(step, tuple):
                y = torch.cat([getattr(layer, name)(y) for name in step], 1)
            else:
                y = _POOLS[step](y) if step in _POOLS else getattr(layer, step)(y)
        outs.append(y)
    return torch.cat(outs, 1)


#: The layers of torch-fidelity's ``FeatureExtractorInceptionV3`` from the 299x299 input to pool3, in order.
_INCEPTION_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool",
)


class InceptionExtractor(FeatureExtractor):
    """The FID Inception-v3 (torch-fidelity ``FeatureExtractorInceptionV3``): 2048-d pool3 features, 1008 logits.

    Build it with :func:`load_inception`. ``forward``: ``uint8 [N, C, H, W]`` -> ``float32 [N, 2048]``;
    ``logits``: ``-> float32 [N, 1008]`` (``logits_unbiased``: the fc layer without bias, as used by
    torch-fidelity and torchmetrics for the Inception Score, Salimans et al. 2016).

    Attributes:
        weights_path: the file the weights came from.
        standard_weights: whether its sha256 is that of the standard TF 2015-12-05 port.
    """

    name = "inception"
    num_features = 2048
    num_classes = 1008
    resize_rule = INCEPTION_RESIZE_RULE

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import (  # lazy: torch-fidelity adds ~1.2 s to import
            FeatureExtractorInceptionV3,
        )

        weights_path = Path(weights_path)
        # Validate with the safe (weights-only) unpickler first: torch-fidelity re-reads the file
        # with weights_only=False, which is only done once the file is known to hold plain tensors.
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ExtractorWeightsMissing(
                f"{weights_path} is not a loadable Inception state dict ({exc}); delete it. {_missing_message()}"
            ) from exc
        if not isinstance(state, dict) or "fc.weight" not in state or tuple(state["fc.weight"].shape) != (1008, 2048):
            raise ExtractorWeightsMissing(
                f"{weights_path} does not hold FID Inception-v3 weights (expected an fc.weight of shape "
                f"[1008, 2048]); delete it. {_missing_message()}"
            )
        del state
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights_path)
            )
        except RuntimeError as exc:  # wrong keys / shapes in load_state_dict
            raise ExtractorWeightsMissing(f"{weights_path}: {exc}. {_missing_message()}") from exc
        self.net.requires_grad_(False)
        self.net.eval()
        digest = _sha256_file(weights_path)
        self.weights_path = weights_path
        self.weights_hash = digest[:16]
        self.standard_weights = digest == INCEPTION_WEIGHTS_SHA256
        if not self.standard_weights:
            warnings.warn(
                f"{weights_path} (sha256 {digest[:16]}...) is not the standard TF 2015-12-05 Inception file "
                f"(sha256 {INCEPTION_WEIGHTS_SHA256[:16]}...): FID/IS values are not comparable with published ones",
                stacklevel=3,
            )

    def _both(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pool3 ``[N, 2048]`` and unbiased logits ``[N, 1008]`` of ``uint8 [N, C, H, W]`` images.

        The layers of torch-fidelity's network run in its order (its convolutions, BatchNorms and weights),
        with exact shortcuts that give the same bits as its own forward: the TF1 resize
        (:func:`resize_bilinear_tf1`, about 10x faster than torch-fidelity's) on the image's own channels (a
        grey image is resized once, then repeated to 3 channels), every max-pool as separable maxima (2 to
        5x faster on CPU than ``max_pool2d``, which also computes the indices of the maxima) and the blocks'
        average pools as nine shifted sums in the kernel's order (:func:`_avg_pool_3x3_s1_same`); the pools
        only on CPU. The layout stays NCHW: channels-last runs about 1.4x faster on CPU but changes the
        convolutions' rounding.
        """
        net = self.net
        x = images.to(net.feature_extractor_internal_dtype)
        x = resize_bilinear_tf1(x, (net.INPUT_IMAGE_SIZE, net.INPUT_IMAGE_SIZE))
        x = (x - 128) / 128
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.contiguous()
        for name in _INCEPTION_LAYERS:
            x = _run_layer(getattr(net, name), x)
        pool3 = torch.flatten(x, 1)
        return pool3, pool3.mm(net.fc.weight.T)  # logits_unbiased: the fc layer without its bias

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self._both(images)[0]

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._both(images)[1]


@EXTRACTORS.register("inception")
def load_inception(*, download: bool = False, device: str | torch.device | None = None) -> InceptionExtractor:
    """Load the FID Inception-v3 from ``torch.hub.get_dir()/checkpoints`` (see :func:`find_inception_weights`).

    Args:
        download: fetch :data:`INCEPTION_WEIGHTS_URL` (about 92 MB) when the file is missing.
        device: where to put the network (default CPU).

    Raises:
        ExtractorWeightsMissing: immediately (no network access) when the file is absent and
            ``download`` is False, naming the file, the full path to put it at, its URL and the
            ``--download`` flag; also when a download fails or the file is not a valid state dict.

    Warns:
        UserWarning: if the file's sha256 differs from the standard weights' (values not comparable).
    """
    path = find_inception_weights()
    if path is None:
        if not download:
            raise ExtractorWeightsMissing(_missing_message())
        path = _download_inception()
    ext = InceptionExtractor(path)
    if device is not None:
        ext.to(device)
    return ext


# --------------------------------------------------------------------------------------------
# Project classifier
# --------------------------------------------------------------------------------------------

#: Architecture (hashed into the cache folder name together with the training recipe).
CLASSIFIER_ARCH: dict[str, Any] = {
    "arch": "cnn3",
    "channels": [32, 64, 128],
    "feature_dim": 128,
    "input_size": 32,
    "version": 1,
}
CLASSIFIER_RESIZE_RULE = (
    "uint8 / 255 -> float in [0, 1]; resized to 32x32 with bilinear interpolation (align_corners=False, "
    "antialias when shrinking); channels as the training dataset"
)


def _prepare_classifier_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8 [N, C, H, W]`` -> ``float32 [N, C, size, size]`` in [0, 1]."""
    x = images.to(torch.float32) / 255.0
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=h > size or w > size)
        x = x.clamp(0.0, 1.0)
    return x


class ClassifierNet(nn.Module):
    """The classifier network: 3 x [conv 3x3, BatchNorm, ReLU, max-pool 2] (32-64-128 channels on 32x32),
    global average pool, dense 128 + ReLU (the features), dense ``num_classes`` (the logits).

    Input ``float32 [N, in_channels, 32, 32]`` in [0, 1].
    """

    def __init__(self, in_channels: int, num_classes: int, channels=(32, 64, 128), feature_dim: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c_in, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 [N, C, 32, 32]`` in [0, 1] -> ``[N, feature_dim]`` penultimate (post-ReLU) features."""
        return self.fc(self.conv(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 [N, C, 32, 32]`` in [0, 1] -> ``[N, num_classes]`` logits."""
        return self.head(self.features(x))


class ClassifierExtractor(FeatureExtractor):
    """A trained :class:`ClassifierNet` as a feature extractor (build it with :func:`get_classifier`).

    ``forward``: ``uint8 [N, C, H, W]`` -> ``float32 [N, 128]`` penultimate features;
    ``logits``: ``-> float32 [N, num_classes]``; ``predict``: ``-> int64 [N]`` class indices.
    C must equal the training dataset's channel count; any H, W (resized to 32x32).

    Attributes:
        config: the ``config.json`` content (architecture, recipe, dataset, accuracies).
        folder: cache folder it was saved to / loaded from (None if not cached).
        loaded_from_cache: True if the weights were loaded, False if trained by this call.
        test_accuracy: held-out accuracy in [0, 1] if a test split was given, else None.
    """

    name = "classifier"
    resize_rule = CLASSIFIER_RESIZE_RULE

    def __init__(self, net: ClassifierNet, config: dict[str, Any], weights_hash: str) -> None:
        super().__init__()
        self.net = net
        self.net.requires_grad_(False)
        self.net.eval()
        self.config = config
        self.in_channels = int(config["in_channels"])
        self.input_size = int(config["input_size"])
        self.num_features = int(config["feature_dim"])
        self.num_classes = int(config["num_classes"])
        self.weights_hash = weights_hash
        self.folder: Path | None = None
        self.loaded_from_cache = False
        self.test_accuracy: float | None = config.get("test_accuracy")

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.in_channels:
            raise ShapeError(
                f"classifier for {self.config.get('dataset')!r} expects {self.in_channels}-channel images, "
                f"got {list(images.shape)}"
            )
        return _prepare_classifier_input(images, self.input_size)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(self._input(images))

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self._input(images))

    def predict(self, images: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Predicted classes ``int64 [N]`` of ``uint8 [N, C, H, W]`` images."""
        return extract_logits(images, self, batch_size=batch_size).argmax(dim=1).to(torch.int64)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 512) -> float:
        """Fraction in [0, 1] of ``images`` whose prediction equals ``labels`` (``int64 [N]``)."""
        pred = self.predict(images, batch_size=batch_size)
        return float((pred == labels.to(torch.int64).cpu()).to(torch.float64).mean().item())


def _default_epochs(n: int, batch_size: int) -> int:
    """About 200 optimiser steps, at least 3 and at most 20 epochs (digits: 9, MNIST: 3)."""
    steps_per_epoch = math.ceil(n / batch_size)
    return int(min(20, max(3, math.ceil(200 / steps_per_epoch))))


def classifier_cache_dir(train_data, recipe: dict[str, Any]) -> Path:
    """``cache_dir()/classifiers/<dataset name>-<fingerprint>-<arch hash>`` for ``train_data``.

    The arch hash (:func:`~latentstudio.metrics.classifier_cache.recipe_key`, 12 hex digits) covers
    :data:`CLASSIFIER_ARCH` plus the training ``recipe`` (epochs, batch size, learning rate, seed,
    channels, classes).
    """
    return classifier_folder("classifiers", train_data, {**CLASSIFIER_ARCH, **recipe})


def _build_classifier_net(config: dict[str, Any]) -> ClassifierNet:
    return ClassifierNet(config["in_channels"], config["num_classes"], config["channels"], config["feature_dim"])


def _train_net(train_data, recipe: dict[str, Any], progress: bool) -> tuple[ClassifierNet, float]:
    images, labels = train_data.images, train_data.labels.to(torch.int64)
    n, bs, epochs = len(images), recipe["batch_size"], recipe["epochs"]
    size = CLASSIFIER_ARCH["input_size"]
    # A last batch of one image is dropped (BatchNorm needs two).
    batches = n // bs + (1 if n % bs >= 2 else 0)
    steps = epochs * batches
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe["seed"])
        net = ClassifierNet(
            recipe["in_channels"], recipe["num_classes"], CLASSIFIER_ARCH["channels"], CLASSIFIER_ARCH["feature_dim"]
        )
        gen = torch.Generator().manual_seed(recipe["seed"])
        opt = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps)
        net.train()
        correct = seen = 0
        with progress_bar(steps, f"training the fid_clf classifier on {train_data.name} ({steps} steps, cached for "
                          "later runs)", progress) as bar:
            for epoch in range(epochs):
                perm = torch.randperm(n, generator=gen)
                correct = seen = 0
                for b in range(batches):
                    idx = perm[b * bs : (b + 1) * bs]
                    x = _prepare_classifier_input(images[idx], size)
                    y = labels[idx]
                    out = net(x)
                    loss = F.cross_entropy(out, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    correct += int((out.argmax(1) == y).sum())
                    seen += len(idx)
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", acc=f"{correct / max(seen, 1):.3f}")
    net.eval()
    return net, correct / max(seen, 1)


@EXTRACTORS.register("classifier")
def get_classifier(
    train_data,
    *,
    test=None,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
) -> ClassifierExtractor:
    """The project classifier of ``train_data``: loaded from the cache, or trained (CPU, Adam) and cached.

    Args:
        train_data: an ``ImageData`` with labels (``uint8 [N, C, H, W]`` images, ``int64 [N]`` labels).
        test: optional held-out ``ImageData`` with labels; its accuracy is stored in ``config.json``
            (``test_accuracy``, ``test_split``) and as ``.test_accuracy``.
        epochs: training epochs; default about 200 optimiser steps, 3..20 epochs (digits 9, MNIST 3).
        batch_size, lr: Adam mini-batch size and peak learning rate (one-cycle schedule).
        seed: seed of initialisation and shuffling (the global RNG is left untouched).
        cache: load from / save to ``cache_dir()/classifiers/<name>-<fingerprint>-<arch hash>/``
            (``model.safetensors`` + ``config.json``, atomic writes, no pickle).
        progress: show a tqdm progress bar while training.

    Returns:
        A :class:`ClassifierExtractor` (128-d features, ``name == "classifier"``; metrics ``fid_clf`` ...).

    Raises:
        DataError: if ``train_data`` (or ``test``) has no labels, or ``train_data`` has < 2 images.
        ShapeError: if ``test`` images have another channel count.
    """
    if train_data.labels is None or len(train_data) < 2:
        raise DataError(
            f"dataset {train_data.name!r} ({train_data.split}) has no labels or fewer than 2 images; "
            "the classifier extractor needs a labelled training split"
        )
    if test is not None and test.labels is None:
        raise DataError(f"dataset {test.name!r} ({test.split}) has no labels; cannot measure classifier accuracy")
    num_classes = int(train_data.num_classes or 0)
    bs = int(batch_size)
    recipe = {
        "in_channels": int(train_data.images.shape[1]),
        "num_classes": num_classes,
        "epochs": int(epochs) if epochs is not None else _default_epochs(len(train_data), bs),
        "batch_size": bs,
        "lr": float(lr),
        "seed": int(seed),
        "optimizer": "adam-onecycle",
    }
    folder = classifier_cache_dir(train_data, recipe) if cache else None

    def load(path: Path) -> ClassifierExtractor:
        net, config, whash = load_classifier_files(path, _build_classifier_net)
        return ClassifierExtractor(net, config, whash)

    def train() -> ClassifierExtractor:
        t0 = time.perf_counter()
        net, train_acc = _train_net(train_data, recipe, progress)
        seconds = time.perf_counter() - t0
        config = {
            **CLASSIFIER_ARCH,
            **recipe,
            "dataset": train_data.name,
            "train_split": f"{train_data.name}/{train_data.split}",
            "train_fingerprint": train_data.fingerprint(),
            "num_train": len(train_data),
            "train_accuracy_last_epoch": round(train_acc, 6),
            "train_seconds": round(seconds, 2),
            "class_names": train_data.class_names,
            "resize_rule": CLASSIFIER_RESIZE_RULE,
        }
        whash = hashlib.sha256(state_bytes(net)).hexdigest()[:16]
        return ClassifierExtractor(net, {**config, "weights_hash": whash}, whash)

    def save(path: Path, ext: ClassifierExtractor) -> None:
        save_classifier_files(path, ext.net, ext.config)

    ext, loaded = cached_or_trained(folder, load=load, train=train, save=save)
    ext.loaded_from_cache = loaded
    ext.folder = folder
    if test is not None:
        acc = ext.accuracy(test.images, test.labels)
        ext.test_accuracy = acc
        ext.config["test_accuracy"] = round(acc, 6)
        ext.config["test_split"] = f"{test.name}/{test.split}"
        ext.config["num_test"] = len(test)
    if folder is not None and test is not None:
        ext.config["weights_hash"] = ext.weights_hash
        write_json(folder / CONFIG_FILE, ext.config, overwrite=True)
    return ext
