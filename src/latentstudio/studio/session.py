"""The state of the studio for one model: faces, edits, uploads (used by the web app and notebooks).

A :class:`Studio` holds what every user shares (the model, the direction library, the landmark
detector, the projection distance, a lock around the network); :meth:`Studio.warm_up` loads them all
before the first request. A :class:`StudioSession` holds one user's faces: the uploaded photo (in
memory), the base latent (from a seed, a projected photo or a latent file), the second face for style
mixing, and the controls (:class:`Controls`: slider values, truncation, mixing, the rows the edits
act on and the directions held fixed). Rendering is deterministic: the same state gives the same image.

A saved latent (:meth:`StudioSession.save_latent`) holds the edited latent, the unedited one
(``base``), the mixing face and every control, so :meth:`StudioSession.restore` brings back the face
and the sliders as they were. :meth:`StudioSession.project_steps` runs a projection in a worker thread
and yields its progress and an image every few steps; closing the iterator stops the projection.

Uploads are checked before decoding (:func:`validate_upload`): file size, image type (by content,
not by name), pixel count, then decoded with EXIF orientation applied.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from latentstudio.errors import LatentStudioError
from latentstudio.io.atomic import atomic_path
from latentstudio.studio.adapters import LatentModel
from latentstudio.studio.alignment import (
    DlibLandmarker,
    Face,
    MultipleFacesError,
    NoFaceError,
    align_face,
    face_gallery,
    pick_face,
)
from latentstudio.studio.directions import Direction, DirectionLibrary, condition
from latentstudio.studio.editing import edit, mix, parse_rows, sweep
from latentstudio.studio.projection import (
    ProjectionConfig,
    ProjectionResult,
    load_latent,
    load_projection_distance,
    noise_swap,
    project,
)

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "Controls",
    "ProjectionCancelled",
    "ProjectionUpdate",
    "Studio",
    "StudioSession",
    "UploadError",
    "validate_upload",
]

#: Largest accepted upload (bytes) and pixel count (width * height).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
MIN_UPLOAD_SIDE = 32
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


class UploadError(LatentStudioError):
    """An uploaded file was refused (the message says why and what is accepted)."""


class ProjectionCancelled(LatentStudioError):
    """A projection was stopped before its last step (the session keeps its previous face)."""


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


def _safe_name(text: str) -> str:
    """``text`` reduced to letters, digits and ``_ . + -`` (a file-name part), at most 150 characters."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text)).strip("-.")[:150]


@dataclass
class Controls:
    """Every control of a session besides the face itself (what :meth:`StudioSession.save_latent` stores).

    Attributes:
        magnitudes: slider value per direction name.
        truncation: psi applied to the base around the latent centre (1 = off).
        mix_seed / mix_layers / mix_amount: style mixing: the second face's seed, the row group
            (``all``, ``coarse``, ``middle``, ``fine``) and how far the base moves towards it (0 = off).
        edit_layers: the rows the direction edits act on: ``all``, a group name or rows such as ``0-3,8``.
        fixed: directions held fixed (conditional edits): each moved direction loses its component
            along them (:func:`~latentstudio.studio.directions.condition`).
    """

    magnitudes: dict[str, float] = field(default_factory=dict)
    truncation: float = 1.0
    mix_seed: int | None = 1
    mix_layers: str = "all"
    mix_amount: float = 0.0
    edit_layers: str = "all"
    fixed: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Controls:
        """Controls from a saved ``meta["controls"]`` (unknown keys ignored, missing ones at their defaults)."""
        d = cls()
        seed = data.get("mix_seed", d.mix_seed)
        return cls(magnitudes={str(k): float(v) for k, v in dict(data.get("magnitudes") or {}).items()},
                   truncation=float(data.get("truncation", d.truncation)),
                   mix_seed=None if seed is None else int(seed),
                   mix_layers=str(data.get("mix_layers", d.mix_layers)),
                   mix_amount=float(data.get("mix_amount", d.mix_amount)),
                   edit_layers=str(data.get("edit_layers", d.edit_layers)),
                   fixed=[str(n) for n in data.get("fixed") or []])


@dataclass
class ProjectionUpdate:
    """One report of :meth:`StudioSession.project_steps`.

    Attributes:
        kind: ``step`` (after every optimisation step: ``info`` has the loss), ``image`` (the synthesis
            of the current latent, every ``preview_every`` steps, at the start and at the end) or
            ``done`` (``result`` holds the :class:`ProjectionResult`; always the last update).
    """

    kind: str
    step: int = 0
    total: int = 0
    info: dict[str, float] = field(default_factory=dict)
    image: torch.Tensor | None = None
    result: ProjectionResult | None = None


class _PreviewTap:
    """The model as :func:`project` sees it, handing every image it renders with ``images`` (the start,
    the snapshot every ``snapshot_every`` steps, the result) to ``sink``; everything else is the model's."""

    def __init__(self, model: LatentModel, sink) -> None:
        self._model, self._sink = model, sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def images(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        out = self._model.images(latents, batch_size)
        self._sink(out[0])
        return out


class Studio:
    """Shared state: model, direction library, landmark detector, projection defaults.

    Args:
        model: the :class:`LatentModel`.
        library: directions shown as sliders (empty library: no sliders).
        projection: default :class:`ProjectionConfig` for uploads.
        predictor: dlib 68-point predictor file (default: the packaged one).
        perceptual: a perceptual distance for projections, ``"config"`` (load the configured one) or
            None (pixel loss only).

    The landmark detector and the perceptual distance are loaded on first use, or all at once by
    :meth:`warm_up` (the web server calls it before it accepts requests, so the first projection
    starts at once and shows its progress from the first step).
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
        self._conditioned: dict[tuple[str, tuple[str, ...]], Direction] = {}
        self._count_lock = threading.Lock()
        #: Projections running now (the web app tells a waiting user why).
        self.projections_running = 0
        #: Why face detection is unavailable (set by :meth:`warm_up`), else None.
        self.landmarker_error: str | None = None

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

    def warm_up(self) -> dict[str, str]:
        """Load everything a projection needs now instead of at the first request: the perceptual
        distance, the landmark detector (when dlib is missing, :attr:`landmarker_error` says so and
        only already aligned faces can be projected), the model's latent statistics, and whatever the
        projector loads on its first run (a one-step projection of the mean face on a copy of the model).

        Returns:
            ``{"perceptual": label, "landmarks": predictor file or why unavailable}`` (for the log).
        """
        distance, label = self.distance()
        loaded = {"perceptual": label}
        try:
            loaded["landmarks"] = str(self.landmarker.predictor_path)
            self.landmarker_error = None
        except LatentStudioError as exc:
            self.landmarker_error = str(exc)
            loaded["landmarks"] = f"unavailable: {exc}"
        with self.lock:
            _ = self.model.latent_center, self.model.latent_std
            target = self.model.images(self.model.latent_center[None])[0]
        model = self.model.fork() if self.model.noise_buffers() else self.model
        project(model, target, self.projection.replace(steps=1, snapshot_every=0), perceptual=distance,
                perceptual_label=label)
        return loaded

    @contextlib.contextmanager
    def projection_slot(self) -> Iterator[None]:
        """Count a running projection in :attr:`projections_running` while the block runs."""
        with self._count_lock:
            self.projections_running += 1
        try:
            yield
        finally:
            with self._count_lock:
                self.projections_running -= 1

    def conditioned(self, name: str, fixed: list[str]) -> Direction:
        """Direction ``name`` with its components along the ``fixed`` directions removed (cached)."""
        key = (name, tuple(sorted(f for f in fixed if f != name)))
        if not key[1]:
            return self.library[name]
        with self.lock:
            if key not in self._conditioned:
                self._conditioned[key] = condition(self.library[name], [self.library[f] for f in key[1]])
            return self._conditioned[key]

    def render(self, latent: torch.Tensor, noise: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``uint8 [C, H, W]`` of one latent ``[L, D]`` (with these noise maps, if given)."""
        with self.lock, torch.no_grad():
            if noise:
                with noise_swap(self.model.noise_buffers(), noise):
                    return self.model.images(latent[None])[0]
            return self.model.images(latent[None])[0]

    def session(self) -> StudioSession:
        return StudioSession(self)


@dataclass
class StudioSession:
    """One user's faces and sliders.

    Attributes:
        base: the face being edited, ``float32 [L, D]``.
        source: how it was made (``seed 42``, ``photo``, ``latent file``).
        name: the face's name in file names (the photo's or latent file's stem, ``seed42``).
        other: the second face for style mixing, ``[L, D]`` or None.
        magnitudes / truncation / mix_seed / mix_layers / mix_amount / edit_layers / fixed: the
            controls (see :class:`Controls`).
        projection: the last photo projection, if any; noise: the noise maps the face is rendered with
            (a StyleGAN2 projection's, else empty).
        photo / photo_name: the uploaded photo ``uint8 [3, H, W]`` (kept in memory only) and its file name;
            faces: the faces found in it (numbered from the left), None before detection; face_used: the
            number of the face the last alignment used.
        aligned: the aligned crop of the last projected photo.
        cache: free for a front end (the web app keeps its file paths there).
    """

    studio: Studio
    base: torch.Tensor | None = None
    source: str = ""
    name: str = "face"
    other: torch.Tensor | None = None
    magnitudes: dict[str, float] = field(default_factory=dict)
    truncation: float = 1.0
    mix_seed: int | None = 1
    mix_amount: float = 0.0
    mix_layers: str = "all"
    edit_layers: str = "all"
    fixed: list[str] = field(default_factory=list)
    projection: ProjectionResult | None = None
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    aligned: torch.Tensor | None = None
    photo: torch.Tensor | None = None
    photo_name: str = ""
    faces: list[Face] | None = None
    face_used: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> LatentModel:
        return self.studio.model

    # ---- faces
    def from_seed(self, seed: int, truncation_psi: float = 1.0) -> torch.Tensor:
        """Start from the face of ``seed``; returns its latent ``[L, D]``."""
        with self.studio.lock:
            self.base = self.model.random_latents([int(seed)], truncation_psi)[0]
        self.source, self.projection, self.aligned, self.noise = f"seed {int(seed)}", None, None, {}
        self.name = f"seed{int(seed)}"
        return self.base

    def set_other(self, seed: int) -> torch.Tensor:
        """The second face (style mixing) from ``seed``."""
        with self.studio.lock:
            self.other = self.model.random_latents([int(seed)])[0]
        self.mix_seed = int(seed)
        return self.other

    def from_latent(self, latent: torch.Tensor, source: str = "latent file",
                    noise: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Start from ``latent``; ``noise`` maps (a StyleGAN2 projection's) are used when they fit the model."""
        self.base = self.model.check_latents(latent)[0]
        self.source, self.projection, self.aligned = source, None, None
        bufs = self.model.noise_buffers()
        self.noise = {k: v.to(bufs[k]) for k, v in (noise or {}).items()
                      if k in bufs and tuple(v.shape) == tuple(bufs[k].shape)}
        return self.base

    # ---- controls
    def controls(self) -> Controls:
        """The current :class:`Controls` (a copy)."""
        return Controls(magnitudes=dict(self.magnitudes), truncation=self.truncation, mix_seed=self.mix_seed,
                        mix_layers=self.mix_layers, mix_amount=self.mix_amount, edit_layers=self.edit_layers,
                        fixed=list(self.fixed))

    def set_controls(self, controls: Controls) -> None:
        """Apply ``controls`` (the second face is drawn when mixing needs a new seed).

        Raises:
            ConfigError: rows in ``edit_layers`` that the model does not have, an unknown row group.
            LatentStudioError: mixing without a second face's seed.
        """
        m = self.model
        parse_rows(controls.edit_layers, m.num_layers, m.layer_groups)
        if controls.mix_layers not in m.layer_groups:
            raise LatentStudioError(f"mixing rows {controls.mix_layers!r}: choose one of {', '.join(m.layer_groups)}")
        if controls.mix_amount > 0:
            if controls.mix_seed is None:
                raise LatentStudioError("style mixing needs the second face's seed")
            if self.other is None or self.mix_seed != int(controls.mix_seed):
                self.set_other(int(controls.mix_seed))
        lib = self.studio.library
        self.magnitudes = {n: float(v) for n, v in controls.magnitudes.items()}
        self.truncation = float(controls.truncation)
        self.mix_seed = None if controls.mix_seed is None else int(controls.mix_seed)
        self.mix_layers, self.mix_amount = controls.mix_layers, float(controls.mix_amount)
        self.edit_layers = (controls.edit_layers or "all").strip() or "all"
        self.fixed = [n for n in controls.fixed if n in lib]

    def reset_controls(self) -> None:
        """Every control back to its default (no edits, psi 1, no mixing, all rows, nothing fixed)."""
        self.set_controls(Controls())

    def edit_rows(self) -> list[int] | None:
        """The rows the edits act on (None: all)."""
        return parse_rows(self.edit_layers, self.model.num_layers, self.model.layer_groups)

    def edits(self) -> list[tuple[Direction, float]]:
        """``(direction, magnitude)`` of every moved slider, conditioned on the fixed directions."""
        lib = self.studio.library
        return [(self.studio.conditioned(n, self.fixed), float(v)) for n, v in self.magnitudes.items()
                if n in lib and v]

    def unedited_latent(self) -> torch.Tensor:
        """The base after truncation and style mixing, before the direction edits."""
        if self.base is None:
            raise LatentStudioError("no face yet: pick a seed or upload a photo first")
        x = self.model.truncate(self.base[None], self.truncation)[0] if self.truncation != 1.0 else self.base
        if self.other is not None and self.mix_amount > 0:
            lo, hi = self.model.layer_groups.get(self.mix_layers, (0, self.model.num_layers))
            x = mix(x, self.other, list(range(lo, hi)), self.mix_amount)
        return x

    def current_latent(self) -> torch.Tensor:
        """The edited latent ``[L, D]``: base -> truncation -> style mixing -> direction edits (on the
        chosen rows, each conditioned on the fixed directions).

        Raises:
            LatentStudioError: no face yet; ConfigError: rows the model does not have.
        """
        return edit(self.unedited_latent(), self.edits(), self.edit_rows())

    def sweep_images(self, name: str, low: float, high: float, frames: int) -> torch.Tensor:
        """``uint8 [T, C, H, W]``: the edited face moved along direction ``name`` from ``low`` to ``high``
        (conditioned and masked like the sliders)."""
        if name not in self.studio.library:
            raise LatentStudioError(f"unknown direction {name!r}")
        if int(frames) < 2:
            raise LatentStudioError(f"a sweep needs at least 2 frames, got {frames}")
        mags = torch.linspace(float(low), float(high), int(frames)).tolist()
        latents = sweep(self.current_latent(), self.studio.conditioned(name, self.fixed), mags, self.edit_rows())
        with self.studio.lock, torch.no_grad():
            if self.noise:
                with noise_swap(self.model.noise_buffers(), self.noise):
                    return self.model.images(latents)
            return self.model.images(latents)

    # ---- photos
    def set_photo(self, photo: torch.Tensor, name: str = "photo") -> None:
        """Keep an uploaded photo (``uint8 [3, H, W]``, from :func:`validate_upload`) for alignment."""
        self.photo, self.photo_name, self.faces = photo, Path(name).name or "photo", None

    def detect_faces(self) -> list[Face]:
        """The faces of :attr:`photo`, numbered from the left (detected once per photo).

        Raises:
            LatentStudioError: no photo, or face detection unavailable (dlib missing).
        """
        if self.photo is None:
            raise LatentStudioError("upload a photo first")
        if self.faces is None:
            self.faces = self.studio.landmarker.detect(self.photo)
        return self.faces

    def face_thumbnails(self, size: int = 96) -> list[np.ndarray]:
        """``uint8 [size, size, 3]`` thumbnails of :attr:`faces` in face-number order (the numbers :meth:`align`
        reads), for choosing one (:func:`~latentstudio.studio.alignment.face_gallery`)."""
        if self.photo is None or not self.faces:
            return []
        return [thumb for _, thumb, _, _ in face_gallery(self.photo, self.faces, size=size)]

    @staticmethod
    def choose_face(faces: list[Face]) -> int:
        """The face to use when none was asked for: the only one, or one whose box dominates the others
        (:func:`~latentstudio.studio.alignment.pick_face`).

        Raises:
            NoFaceError: no faces. MultipleFacesError: several and none dominant (choose a number).
        """
        try:
            return pick_face(faces).index
        except MultipleFacesError as exc:
            raise MultipleFacesError(f"the photo has {len(faces)} faces and none is clearly the main one: choose "
                                     f"one by its number (0 to {len(faces) - 1}, counted from the left)",
                                     exc.faces) from None

    def align(self, photo: torch.Tensor | None = None, *, face_index: int | None = 0, already_aligned: bool = False):
        """Align ``photo`` (``uint8 [3, H, W]``; default: the uploaded :attr:`photo`) at the model's resolution.

        ``face_index`` numbers the faces as :meth:`~latentstudio.studio.alignment.DlibLandmarker.detect`
        lists them (from the left); None chooses with :meth:`choose_face`. :attr:`face_used` records the
        number used.

        Returns:
            ``(aligned uint8 [C, R, R], faces)`` where ``faces`` lists the detected faces.

        Raises:
            NoFaceError / MultipleFacesError / LatentStudioError: no photo, no face, several faces and none
            chosen, or ``face_index`` out of range. The uploaded photo is kept either way.
        """
        m = self.model
        own = photo is None
        if own:
            if self.photo is None:
                raise LatentStudioError("upload a photo first")
            photo = self.photo
        faces: list[Face] = []
        if already_aligned:
            x = photo.float()[None]
            aligned = torch.nn.functional.interpolate(x, size=(m.resolution, m.resolution), mode="area"
                                                      if photo.shape[-1] > m.resolution else "bilinear")[0]
            aligned = aligned.round().clamp(0, 255).to(torch.uint8)
        else:
            faces = self.detect_faces() if own else self.studio.landmarker.detect(photo)
            if not faces:
                raise NoFaceError("no face found in the photo: use a frontal, well-lit photo where the face is at "
                                  "least about 80 pixels wide, or tick 'already aligned'")
            idx = self.choose_face(faces) if face_index is None else int(face_index)
            if not 0 <= idx < len(faces):
                raise LatentStudioError(f"face {idx} does not exist: the photo has {len(faces)} face(s), "
                                        f"numbered 0 to {len(faces) - 1}")
            aligned = align_face(photo, faces[idx].landmarks, m.resolution, m.template).image
            self.face_used = idx
        if m.channels == 1:
            aligned = aligned.float().mean(0, keepdim=True).round().to(torch.uint8)
        self.aligned = aligned
        return aligned, faces

    # ---- projection
    def project(self, aligned: torch.Tensor, config: ProjectionConfig | None = None,
                progress=None, preview=None) -> ProjectionResult:
        """Project an aligned face and make it the base face (see :func:`~latentstudio.studio.projection.project`).

        The projection runs on a private copy of the model, so other users are not blocked. ``preview``
        receives each image the projector renders (the start, every ``snapshot_every`` steps, the end).
        """
        model = self.model.fork() if self.model.noise_buffers() else self.model
        if preview is not None:
            model = _PreviewTap(model, preview)
        distance, label = self.studio.distance()
        result = project(model, aligned, config or self.studio.projection, perceptual=distance,
                         progress=progress or False, perceptual_label=label)
        self.base, self.source, self.projection, self.aligned = result.latent, "photo", result, aligned
        self.noise = dict(result.noise)
        self.name = Path(self.photo_name).stem if self.photo_name else "photo"
        return result

    def project_steps(self, aligned: torch.Tensor, config: ProjectionConfig | None = None, *,
                      preview_every: int = 0) -> Iterator[ProjectionUpdate]:
        """:meth:`project` in a worker thread, reporting as it goes (:class:`ProjectionUpdate`): a ``step``
        update after every step, an ``image`` every ``preview_every`` steps (0: none), ``done`` last.

        Closing the iterator (a cancelled request) stops the projection after its current step; the
        session then keeps its previous face.

        Raises:
            LatentStudioError: from the projection.
        """
        cfg = config or self.studio.projection
        if preview_every > 0:
            cfg = cfg.replace(snapshot_every=int(preview_every))
        updates: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        at = {"step": 0}

        def report(step: int, total: int, info: dict[str, float]) -> None:
            at["step"] = step
            updates.put(ProjectionUpdate("step", step, total, dict(info)))
            if stop.is_set():
                raise ProjectionCancelled(f"the projection was stopped at step {step} of {total}")

        def sink(image: torch.Tensor) -> None:
            # the projector renders the start (step 0), each snapshot right after its step (before that
            # step is reported) and the result after the last step
            at["images"] = at.get("images", 0) + 1
            step = 0 if at["images"] == 1 else min(at["step"] + 1, cfg.steps)
            updates.put(ProjectionUpdate("image", step, cfg.steps, image=image.clone()))

        def work() -> None:
            try:
                result = self.project(aligned, cfg, progress=report, preview=sink if preview_every > 0 else None)
                updates.put(ProjectionUpdate("done", cfg.steps, cfg.steps, result=result))
            except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which raises it)
                updates.put(exc)

        worker = threading.Thread(target=work, name="latentstudio-projection", daemon=True)
        worker.start()
        try:
            while True:
                item = updates.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.kind == "done":
                    return
        finally:
            stop.set()
            worker.join()

    # ---- rendering
    def render(self) -> torch.Tensor:
        """``uint8 [C, H, W]`` of :meth:`current_latent` (with the session's noise maps, if any)."""
        return self.studio.render(self.current_latent(), self.noise)

    def render_base(self) -> torch.Tensor:
        """The unedited face (the "before" view)."""
        if self.base is None:
            raise LatentStudioError("no face yet: pick a seed or upload a photo first")
        if self.projection is not None:
            return self.projection.image
        return self.studio.render(self.base, self.noise)

    # ---- files
    def file_stem(self, edited: bool = True) -> str:
        """A file name (no suffix) for the face: its name, then what was done to it, e.g.
        ``me_Smiling+1.5_Male-2`` or ``seed3_psi0.7``; ``me_projection`` for an unedited projection."""
        parts = [_safe_name(self.name) or "face"]
        if not edited:
            return f"{parts[0]}_projection" if self.source == "photo" else parts[0]
        if self.truncation != 1.0:
            parts.append(f"psi{self.truncation:g}")
        if self.other is not None and self.mix_amount > 0:
            parts.append(f"mix-{self.mix_layers}{self.mix_amount:g}-seed{self.mix_seed}")
        lib = self.studio.library
        moved = [f"{n}{v:+g}" for n, v in self.magnitudes.items() if v and n in lib]
        parts += moved
        if moved and self.edit_layers not in ("", "all"):
            parts.append(f"layers-{self.edit_layers}")
        if moved and self.fixed:
            parts.append("fixed-" + "-".join(self.fixed))
        return _safe_name("_".join(parts)) or "face"

    def save_latent(self, path: str | Path, *, edited: bool = True, overwrite: bool = False) -> Path:
        """Write the face as ``.npz``: ``latent [L, D]`` (the edited latent, or with ``edited=False`` the
        unedited base), ``base`` (the unedited latent), ``other`` (the mixing face), ``space`` (``z`` for the
        VAE family; ``w+`` for StyleGAN2, one row per style input, as ``latentstudio.api.read_latents``
        reads it), the noise maps and a JSON ``meta`` with every control (``controls``), so :meth:`restore`
        brings back the face and the sliders."""
        if self.base is None:
            raise LatentStudioError("no face yet: pick a seed or upload a photo first")
        latent = self.current_latent() if edited else self.base
        controls = self.controls() if edited else Controls()
        # a row per style input is W+ (``LatentSpace`` "w+"), whatever the face came from: a seed, a photo
        # projected in W or W+, mixed or edited rows
        space = "z" if self.model.spaces == ("z",) else "w+"
        meta = {"source": self.source, "name": self.name, "edited": edited, "controls": asdict(controls),
                "magnitudes": controls.magnitudes, "truncation": controls.truncation,
                "mix_amount": controls.mix_amount, "mix_layers": controls.mix_layers,
                "model": self.model.describe()}
        arrays = {"latent": latent.numpy().astype(np.float32), "space": np.array(space),
                  "base": self.base.numpy().astype(np.float32),
                  "meta": np.array(json.dumps(meta, sort_keys=True, default=str))}
        if edited and self.other is not None:
            arrays["other"] = self.other.numpy().astype(np.float32)
        for k, v in self.noise.items():
            arrays[f"noise/{k}"] = v.cpu().numpy()
        path = Path(path)
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path

    def restore(self, path: str | Path) -> list[str]:
        """Continue from a latent file: one written by :meth:`save_latent` brings back its unedited face,
        its mixing face and every control; any other (``latentstudio project``'s ``.npz``, a bare
        ``.npy``, the latent explorer's files) becomes the base with the controls reset. A file of another
        space than the model's own (``z`` of a StyleGAN2, ``u`` of a two-stage VAE) gives its first latent
        (with a note when it holds more) through :meth:`LatentModel.from_space`.

        Returns:
            Notes for the user (sliders the file has but this library lacks).

        Raises:
            LatentStudioError: an unreadable file or a latent that does not fit the model.
        """
        path = Path(path)
        data = load_latent(path)
        extra: dict[str, torch.Tensor] = {}
        raw = np.load(path, allow_pickle=False)
        if not isinstance(raw, np.ndarray):
            with raw:
                extra = {k: torch.from_numpy(raw[k].astype(np.float32)) for k in ("base", "other") if k in raw.files}
        meta = data["meta"] if isinstance(data["meta"], dict) else {}
        saved = meta.get("controls") if "base" in extra else None
        base = extra.get("base", data["latent"])
        notes: list[str] = []
        space = data["space"]
        if "base" not in extra and space is not None and (space == "z" or space not in self.model.spaces):
            # another space's latents (e.g. the latent explorer's z or u): the first of several, mapped into
            # the model's own (StyleGAN2: z through the mapping; a two-stage VAE: u through its second stage)
            z = base.reshape(-1, base.shape[-1])
            if len(z) > 1:
                notes.append(f"{path.name} holds {len(z)} latents of {space}; using latent 0")
            base = self.model.from_space(z[:1], space)
        self.from_latent(base, source="latent file", noise=data["noise"])
        self.name = _safe_name(str(meta.get("name") or path.stem)) or "face"
        if isinstance(saved, dict):
            c = Controls.from_dict(saved)
            lib = self.studio.library
            missing = [n for n in c.magnitudes if n not in lib]
            if missing:
                notes.append(f"not in this studio's directions: {', '.join(missing)}")
            c.magnitudes = {n: v for n, v in c.magnitudes.items() if n in lib}
            if "other" in extra and c.mix_seed is not None:
                self.other, self.mix_seed = self.model.check_latents(extra["other"])[0], c.mix_seed
            self.set_controls(c)
        else:
            self.reset_controls()
        return notes
