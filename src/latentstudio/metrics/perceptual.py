"""Perceptual image distances: LPIPS-VGG (Zhang et al. 2018) and a labelled offline fallback.

API (images are ``float [N, C, H, W]`` in [-1, 1], C = 1 or 3; grey is repeated to RGB)::

    d = perceptual_distance(a, b)                  # float32 [N], LPIPS-VGG by default
    lp = load_perceptual("lpips-vgg")              # an nn.Module: lp(a, b) -> [N]; lp.is_lpips, lp.label

Distances (:data:`PERCEPTUAL_DISTANCES`):

``lpips-vgg``
    LPIPS v0.1 with VGG16 (the distance of StyleGAN's perceptual path length and of image
    projection): inputs shifted/scaled by LPIPS's ImageNet constants, features after relu1_2,
    relu2_2, relu3_3, relu4_3 and relu5_3, each unit-normalised over channels, squared differences
    weighted per channel by the learned linear layers, averaged over space and summed over layers.
    Needs (1) torchvision's ImageNet VGG16 weights ``vgg16-397923af.pth`` in the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``; ``download=True`` fetches them) and (2) the LPIPS linear weights
    ``weights/v0.1/vgg.pth``, read from the installed PyPI ``lpips`` package (its wheel ships them) or
    from ``lin_weights=`` / ``$LATENTSTUDIO_LPIPS_WEIGHTS``. Both files are read with
    ``torch.load(weights_only=True)``; the ``lpips`` package itself is never imported.
``vgg16-features``
    The same VGG16 features with every channel weighted 1 (LPIPS's uncalibrated "baseline"); needs
    only the VGG16 weights. Not LPIPS.
``pyramid-l2``
    Offline fallback without any pretrained weights: mean squared difference over a 5-level
    Gaussian pyramid (binomial 1-4-6-4-1 blur, 2x decimation), averaged over levels. It is NOT LPIPS
    and NOT perceptual in the learned sense; values (and PPLs computed with it) are not comparable with
    published numbers. For two constant images ``c1``, ``c2`` it equals ``(c1 - c2)^2``.

A missing weights file raises :class:`~latentstudio.errors.ExtractorWeightsMissing` at once, naming the
file and where to put it; nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.errors import ExtractorWeightsMissing, LatentStudioError, ShapeError

__all__ = [
    "LPIPSVGG",
    "LPIPS_WEIGHTS_ENV",
    "PERCEPTUAL_DISTANCES",
    "VGG16_WEIGHTS_FILE",
    "PerceptualDistance",
    "PyramidL2",
    "find_lpips_weights",
    "load_perceptual",
    "perceptual_distance",
    "vgg16_weights_path",
]

PERCEPTUAL_DISTANCES = ("lpips-vgg", "vgg16-features", "pyramid-l2")
#: torchvision's ImageNet VGG16 (IMAGENET1K_V1) as cached by torch.hub.
VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"
#: Environment variable naming an LPIPS linear-weights file (``vgg.pth`` of LPIPS v0.1).
LPIPS_WEIGHTS_ENV = "LATENTSTUDIO_LPIPS_WEIGHTS"
#: torchvision vgg16.features slices ending at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
VGG_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class PerceptualDistance(nn.Module):
    """Base class: ``forward(a, b)`` with ``float [N, C, H, W]`` in [-1, 1] -> ``float32 [N]`` distances.

    Attributes:
        name: registry name (``lpips-vgg``, ``vgg16-features``, ``pyramid-l2``).
        is_lpips: True only for the genuine LPIPS weights.
        label: one-line description for reports (says "NOT LPIPS" where applicable).
    """

    name = "perceptual"
    is_lpips = False
    label = ""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances ``float32 [N]`` between image pairs ``a[i]``, ``b[i]``.

        Raises:
            ShapeError: non-4-D inputs, different shapes, or channels other than 1 and 3.
        """
        if a.ndim != 4 or a.shape != b.shape or a.shape[1] not in (1, 3):
            raise ShapeError(f"perceptual distance expects two float [N, C, H, W] images of the same shape with "
                             f"C in (1, 3), got {list(a.shape)} and {list(b.shape)}")
        if a.shape[1] == 1:
            a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
        return self._distance(a.float(), b.float())

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def train(self, mode: bool = True) -> PerceptualDistance:
        """Always in evaluation mode."""
        return super().train(False)


class PyramidL2(PerceptualDistance):
    """Offline fallback (NOT LPIPS): mean squared difference over a ``levels``-level Gaussian pyramid."""

    name = "pyramid-l2"
    label = "pyramid-l2: Gaussian-pyramid MSE, offline fallback, NOT LPIPS (values not comparable)"

    def __init__(self, levels: int = 5) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = torch.outer(taps, taps)
        self.register_buffer("kernel", (k / k.sum())[None, None], persistent=False)
        self.levels = levels

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d = a - b
        total = torch.zeros(a.shape[0], device=a.device)
        used = 0
        for level in range(self.levels):
            total = total + d.square().mean(dim=[1, 2, 3])
            used += 1
            if level == self.levels - 1 or min(d.shape[-2:]) < 2:
                break
            c = d.shape[1]
            d = F.conv2d(F.pad(d, [2, 2, 2, 2], mode="replicate"), self.kernel.expand(c, 1, 5, 5), groups=c)
            d = d[:, :, ::2, ::2]
        return total / used


def vgg16_weights_path() -> Path:
    """``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth`` (where torchvision caches VGG16)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE


def _vgg16_features(download: bool) -> nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers  # lazy: torchvision adds ~1.1 s to import

    path = vgg16_weights_path()
    if not path.is_file():
        if not download:
            raise ExtractorWeightsMissing(
                f"VGG16 ImageNet weights not found: put {VGG16_WEIGHTS_FILE} at {path} ($TORCH_HOME/hub/checkpoints; "
                "https://download.pytorch.org/models/vgg16-397923af.pth), or fetch it with --download-weights "
                "(of `latentstudio evaluate`; Python: download=True), or use the offline 'pyramid-l2' distance "
                "(not LPIPS)"
            )
        from torchvision.models import VGG16_Weights  # lazy: torchvision (~1.1 s); downloads only

        VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)  # caches the file at `path`
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same fix
        raise ExtractorWeightsMissing(f"{path} is not a readable VGG16 state dict ({exc}); delete it and fetch "
                                      "it again") from None
    net = make_layers(cfgs["D"], batch_norm=False)  # = torchvision vgg16().features, without the classifier
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    try:
        net.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        raise ExtractorWeightsMissing(f"{path} does not hold torchvision VGG16 features: {exc}") from None
    return net.eval().requires_grad_(False)


def find_lpips_weights(lin_weights: str | Path | None = None) -> Path:
    """The LPIPS v0.1 VGG linear-weights file: ``lin_weights``, else ``$LATENTSTUDIO_LPIPS_WEIGHTS``, else
    ``weights/v0.1/vgg.pth`` inside the installed ``lpips`` package (located without importing it).

    Raises:
        ExtractorWeightsMissing: none found (names the ways to provide it).
    """
    candidates = []
    if lin_weights is not None:
        candidates.append(Path(lin_weights))
    elif os.environ.get(LPIPS_WEIGHTS_ENV):
        candidates.append(Path(os.environ[LPIPS_WEIGHTS_ENV]))
    else:
        spec = importlib.util.find_spec("lpips")
        for loc in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(Path(loc) / "weights" / "v0.1" / "vgg.pth")
    for c in candidates:
        if c.is_file():
            return c
    where = ", ".join(str(c) for c in candidates) or "(no lpips package installed)"
    raise ExtractorWeightsMissing(
        f"LPIPS linear weights (v0.1, vgg.pth) not found (looked at {where}). Install the PyPI package "
        f"`lpips` (its wheel ships them; pip install lpips), or set {LPIPS_WEIGHTS_ENV}=/path/to/vgg.pth, "
        "or use 'vgg16-features' / the offline 'pyramid-l2' (neither is LPIPS)"
    )


class LPIPSVGG(PerceptualDistance):
    """LPIPS with VGG16 (v0.1 linear weights), or ``calibrated=False`` for unit channel weights.

    Args:
        features: torchvision ``vgg16().features`` with ImageNet weights.
        lin: 5 tensors ``[1, C_l, 1, 1]`` of non-negative channel weights (None: all ones).
    """

    def __init__(self, features: nn.Sequential, lin: list[torch.Tensor] | None) -> None:
        super().__init__()
        self.slices = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in VGG_SLICES)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        weights = lin if lin is not None else [torch.ones(1, c, 1, 1) for c in VGG_CHANNELS]
        for i, w in enumerate(weights):
            if tuple(w.shape) != (1, VGG_CHANNELS[i], 1, 1):
                raise LatentStudioError(f"LPIPS linear layer {i}: expected weight [1, {VGG_CHANNELS[i]}, 1, 1], "
                                        f"got {list(w.shape)}")
            self.register_buffer(f"lin{i}", w.detach().float().clone(), persistent=False)
        self.is_lpips = lin is not None
        self.name = "lpips-vgg" if self.is_lpips else "vgg16-features"
        self.label = ("lpips-vgg: LPIPS v0.1 (VGG16, learned linear weights)" if self.is_lpips else
                      "vgg16-features: VGG16 feature distance with unit weights, NOT LPIPS")
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised VGG16 activations at the five LPIPS layers, for ``x float [N, 3, H, W]`` in [-1, 1]."""
        h = (x - self.shift) / self.scale
        out = []
        for s in self.slices:
            h = s(h)
            out.append(h / (h.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        feats = self.features(torch.cat([a, b]))
        n = a.shape[0]
        total = torch.zeros(n, device=a.device)
        for i, f in enumerate(feats):
            diff = (f[:n] - f[n:]).square()
            total = total + (diff * getattr(self, f"lin{i}")).sum(dim=1).mean(dim=[1, 2])
        return total


def _read_lin(path: Path) -> list[torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ExtractorWeightsMissing(f"{path} is not a readable LPIPS weights file ({exc})") from None
    try:
        return [state[f"lin{i}.model.1.weight"] for i in range(5)]
    except (KeyError, TypeError):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ExtractorWeightsMissing(f"{path} is not an LPIPS VGG weights file (expected lin0..lin4.model.1.weight, "
                                      f"found {keys})") from None


def load_perceptual(
    name: str = "lpips-vgg",
    *,
    download: bool = False,
    lin_weights: str | Path | None = None,
    device: str | torch.device | None = None,
) -> PerceptualDistance:
    """Build the perceptual distance ``name`` (see the module docstring), in eval mode, without gradients
    to its own weights (gradients flow to the images, for projection).

    Raises:
        LatentStudioError: unknown name. ExtractorWeightsMissing: a needed weights file is absent (at once;
            no download unless ``download``).
    """
    if name not in PERCEPTUAL_DISTANCES:
        raise LatentStudioError(f"unknown perceptual distance {name!r}; choose one of {', '.join(PERCEPTUAL_DISTANCES)}")
    if name == "pyramid-l2":
        module: PerceptualDistance = PyramidL2()
    else:
        lin = _read_lin(find_lpips_weights(lin_weights)) if name == "lpips-vgg" else None
        module = LPIPSVGG(_vgg16_features(download), lin)
    return module.to(device or "cpu").eval()


_CACHE: dict[tuple[str, str], PerceptualDistance] = {}


def perceptual_distance(a: torch.Tensor, b: torch.Tensor, name: str = "lpips-vgg") -> torch.Tensor:
    """``float32 [N]`` distances between ``a`` and ``b`` (``float [N, C, H, W]`` in [-1, 1]) with the
    distance ``name`` (built once per name and device, then reused).

    Raises:
        ShapeError, LatentStudioError, ExtractorWeightsMissing: see :func:`load_perceptual`.
    """
    key = (name, str(a.device))
    if key not in _CACHE:
        _CACHE[key] = load_perceptual(name, device=a.device)
    return _CACHE[key](a, b)
