"""The state of the studio for one model: faces, edits, uploads (used by the web app and notebooks).

A :class:`Studio` holds what every user shares (the model, the direction library, the landmark
detector, a lock around the network); a :class:`StudioSession` holds one user's faces: the base
latent (from a seed or a projected photo), the second face for style mixing, and the current
slider values. Rendering is deterministic: the same state gives the same image.

Uploads are checked before decoding (:func:`validate_upload`): file size, image type (by content,
not by name), pixel count, then decoded with EXIF orientation applied.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from latentstudio.errors import LatentStudioError
from latentstudio.io.atomic import atomic_path
from latentstudio.studio.adapters import LatentModel
from latentstudio.studio.alignment import DlibLandmarker, NoFaceError, align_face
from latentstudio.studio.directions import DirectionLibrary
from latentstudio.studio.editing import edit, mix
from latentstudio.studio.projection import (
    ProjectionConfig,
    ProjectionResult,
    _noise_swap,
    load_projection_distance,
    project,
)

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "Studio", "StudioSession", "UploadError", "validate_upload"]

#: Largest accepted upload (bytes) and pixel count (width * height).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
MIN_UPLOAD_SIDE = 32
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


class UploadError(LatentStudioError):
    """An uploaded file was refused (the message says why and what is accepted)."""


def validate_upload(data: bytes | str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES,
                    max_pixels: int = MAX_UPLOAD_PIXELS) -> torch.Tensor:
    """Check and decode an uploaded photo: ``uint8 [3, H, W]`` RGB, EXIF rotation applied.

    Checks, in order: size in bytes, that the content is a JPEG/PNG/WebP/BMP image (Pillow reads the
    header; the file name is ignored), the pixel count before decoding (so decompression bombs are
    refused cheaply), the smallest side, then a full decode.

    Raises:
        UploadError: with the reason and the limits.
    """
    if isinstance(data, str | Path):
        p = Path(data)
        if not p.is_file():
            raise UploadError(f"upload {p.name} could not be read")
        size = p.stat().st_size
        if size > max_bytes:
            raise UploadError(f"the file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        data = p.read_bytes()
    if len(data) > max_bytes:
        raise UploadError(f"the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    if len(data) == 0:
        raise UploadError("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            w, h = im.size
            if fmt not in ALLOWED_FORMATS:
                raise UploadError(f"{fmt} images are not accepted; upload a JPEG, PNG, WebP or BMP photo")
            if w * h > max_pixels:
                raise UploadError(f"the image has {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                                  f"{max_pixels / 1e6:.0f} megapixels")
            if min(w, h) < MIN_UPLOAD_SIDE:
                raise UploadError(f"the image is {w}x{h}; it must be at least {MIN_UPLOAD_SIDE} pixels on each side")
            Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)
            im.load()
            im = ImageOps.exif_transpose(im).convert("RGB")
            arr = np.array(im)
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UploadError(f"the file is not a readable image ({type(exc).__name__}); upload a JPEG, PNG, "
                          "WebP or BMP photo") from None
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


class Studio:
    """Shared state: model, direction library, landmark detector (lazy), projection defaults.

    Args:
        model: the :class:`LatentModel`.
        library: directions shown as sliders (empty library: no sliders).
        projection: default :class:`ProjectionConfig` for uploads.
        predictor: dlib 68-point predictor file (default: the packaged one).
        perceptual: a perceptual distance for projections, ``"config"`` (load the configured one) or
            None (pixel loss only).
    """

    def __init__(self, model: LatentModel, library: DirectionLibrary | None = None, *,
                 projection: ProjectionConfig | None = None, predictor: str | Path | None = None,
                 perceptual: Any = "config") -> None:
        self.model = model
        self.library = library if library is not None else DirectionLibrary(latent_dim=model.latent_dim)
        if self.library.latent_dim not in (None, model.latent_dim):
            raise LatentStudioError(f"the direction library has width {self.library.latent_dim}, "
                                    f"the model's latents {model.latent_dim}")
        self.projection = projection or ProjectionConfig()
        self.predictor = predictor
        self.perceptual = perceptual
        self.lock = threading.RLock()
        self._landmarker = None
        self._distance: tuple[Any, str] | None = None

    def distance(self) -> tuple[Any, str]:
        """``(perceptual distance or None, label)`` for projections, loaded once."""
        with self.lock:
            if self._distance is None:
                if isinstance(self.perceptual, str) and self.perceptual == "config":
                    self._distance = load_projection_distance(self.projection.perceptual)
                elif self.perceptual is None:
                    self._distance = (None, "none")
                else:
                    self._distance = (self.perceptual, getattr(self.perceptual, "name", "custom"))
            return self._distance

    @property
    def landmarker(self):
        """The :class:`~latentstudio.studio.alignment.DlibLandmarker` (created on first use)."""
        with self.lock:
            if self._landmarker is None:
                self._landmarker = DlibLandmarker(self.predictor)
            return self._landmarker

    def render(self, latent: torch.Tensor) -> torch.Tensor:
        """``uint8 [C, H, W]`` of one latent ``[L, D]``."""
        with self.lock:
            return self.model.images(latent[None])[0]

    def session(self) -> StudioSession:
        return StudioSession(self)


@dataclass
class StudioSession:
    """One user's faces and sliders.

    Attributes:
        base: the face being edited, ``float32 [L, D]``.
        source: how it was made (``seed 42``, ``photo``).
        other: the second face for style mixing, ``[L, D]`` or None.
        magnitudes: slider value per direction name.
        truncation: psi applied to the base around the latent centre (1 = off).
        mix_amount / mix_layers: how far, and on which row group, the base moves to ``other``.
        projection: the last photo projection, if any.
    """

    studio: Studio
    base: torch.Tensor | None = None
    source: str = ""
    other: torch.Tensor | None = None
    magnitudes: dict[str, float] = field(default_factory=dict)
    truncation: float = 1.0
    mix_amount: float = 0.0
    mix_layers: str = "all"
    projection: ProjectionResult | None = None
    aligned: torch.Tensor | None = None

    @property
    def model(self) -> LatentModel:
        return self.studio.model

    def from_seed(self, seed: int, truncation_psi: float = 1.0) -> torch.Tensor:
        """Start from the face of ``seed``; returns its latent ``[L, D]``."""
        with self.studio.lock:
            self.base = self.model.random_latents([int(seed)], truncation_psi)[0]
        self.source, self.projection, self.aligned = f"seed {int(seed)}", None, None
        return self.base

    def set_other(self, seed: int) -> torch.Tensor:
        """The second face (style mixing) from ``seed``."""
        with self.studio.lock:
            self.other = self.model.random_latents([int(seed)])[0]
        return self.other

    def from_latent(self, latent: torch.Tensor, source: str = "latent file") -> torch.Tensor:
        self.base = self.model.check_latents(latent)[0]
        self.source, self.projection, self.aligned = source, None, None
        return self.base

    def align(self, photo: torch.Tensor, *, face_index: int | None = 0, already_aligned: bool = False):
        """Align ``photo`` (``uint8 [3, H, W]``) at the model's resolution.

        Returns:
            ``(aligned uint8 [C, R, R], faces)`` where ``faces`` lists the detected faces (largest first).

        Raises:
            NoFaceError / LatentStudioError: see :meth:`DlibLandmarker.choose`.
        """
        m = self.model
        faces = []
        if already_aligned:
            x = photo.float()[None]
            aligned = torch.nn.functional.interpolate(x, size=(m.resolution, m.resolution), mode="area"
                                                      if photo.shape[-1] > m.resolution else "bilinear")[0]
            aligned = aligned.round().clamp(0, 255).to(torch.uint8)
        else:
            lm = self.studio.landmarker
            faces = lm.detect(photo)
            if not faces:
                raise NoFaceError("no face found in the photo: use a frontal, well-lit photo where the face is at "
                                  "least about 80 pixels wide, or tick 'already aligned'")
            idx = 0 if face_index is None else int(face_index)
            if not 0 <= idx < len(faces):
                raise LatentStudioError(f"face {idx} does not exist: the photo has {len(faces)} face(s)")
            aligned = align_face(photo, faces[idx].landmarks, m.resolution, m.template).image
        if m.channels == 1:
            aligned = aligned.float().mean(0, keepdim=True).round().to(torch.uint8)
        self.aligned = aligned
        return aligned, faces

    def project(self, aligned: torch.Tensor, config: ProjectionConfig | None = None,
                progress=None) -> ProjectionResult:
        """Project an aligned face and make it the base face (see :func:`~latentstudio.studio.projection.project`).

        The projection runs on a private copy of the model, so other users are not blocked.
        """
        model = self.model.fork() if self.model.noise_buffers() else self.model
        distance, label = self.studio.distance()
        result = project(model, aligned, config or self.studio.projection, perceptual=distance,
                         progress=progress or False, perceptual_label=label)
        self.base, self.source, self.projection, self.aligned = result.latent, "photo", result, aligned
        return result

    def current_latent(self) -> torch.Tensor:
        """The edited latent ``[L, D]``: base -> truncation -> style mixing -> direction edits.

        Raises:
            LatentStudioError: no face yet.
        """
        if self.base is None:
            raise LatentStudioError("no face yet: pick a seed or upload a photo first")
        x = self.model.truncate(self.base[None], self.truncation)[0] if self.truncation != 1.0 else self.base
        if self.other is not None and self.mix_amount > 0:
            lo, hi = self.model.layer_groups.get(self.mix_layers, (0, self.model.num_layers))
            x = mix(x, self.other, list(range(lo, hi)), self.mix_amount)
        lib = self.studio.library
        return edit(x, [(lib[n], v) for n, v in self.magnitudes.items() if n in lib and v != 0])

    def render(self) -> torch.Tensor:
        """``uint8 [C, H, W]`` of :meth:`current_latent` (with the projection's noise maps, if any)."""
        latent = self.current_latent()
        if self.projection is not None and self.projection.noise:
            with self.studio.lock, torch.no_grad(), _noise_swap(self.model.noise_buffers(), self.projection.noise):
                return self.model.images(latent[None])[0]
        return self.studio.render(latent)

    def render_base(self) -> torch.Tensor:
        """The unedited face (the "before" view)."""
        if self.base is None:
            raise LatentStudioError("no face yet: pick a seed or upload a photo first")
        if self.projection is not None:
            return self.projection.image
        return self.studio.render(self.base)

    def save_latent(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """The current (edited) latent as ``.npz`` (``latent [L, D]``, ``space``, sliders in ``meta``)."""
        latent = self.current_latent()
        space = "z" if self.model.spaces == ("z",) else ("w+" if self.source == "photo" else "w")
        meta = {"source": self.source, "magnitudes": self.magnitudes, "truncation": self.truncation,
                "mix_amount": self.mix_amount, "mix_layers": self.mix_layers, "model": self.model.describe()}
        arrays = {"latent": latent.numpy().astype(np.float32), "space": np.array(space),
                  "meta": np.array(json.dumps(meta, sort_keys=True, default=str))}
        if self.projection is not None:
            for k, v in self.projection.noise.items():
                arrays[f"noise/{k}"] = v.cpu().numpy()
        path = Path(path)
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path
