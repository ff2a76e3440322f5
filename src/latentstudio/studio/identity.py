"""Identity similarity of two aligned faces (a photo and its projection) with dlib's face-recognition network.

dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, shipped in the
``face-recognition-models`` package, so it runs offline) maps a face to a 128-d embedding; dlib
documents that two photos of the same person are usually closer than 0.6 (Euclidean distance,
:data:`SAME_PERSON_DISTANCE`). Comparing two aligned faces of one framing (a photo and its
reconstruction, both ``uint8 [C, R, R]``):

1. both are resized to a side between 256 and 512 pixels (bicubic up, Lanczos down; grey images are
   repeated to RGB): the network reads a 150x150 chip, and the detector needs faces of ~80 pixels;
2. the face box is dlib's HOG detection on the first image (the photo); when it finds none (small or
   blurry faces), the box such a detection would give is placed from the alignment template: side
   2.4 eye distances, centre 0.45 eye-to-mouth distances below the eye midpoint (the medians of dlib's
   boxes on the FFHQ and CelebA faces of the project's data); the same box serves both images;
3. each image gets its own 68 landmarks in that box, dlib's 150x150 face chip (padding 0.25) and its
   embedding; ``distance = |e1 - e2|``, ``similarity`` = the cosine of the two embeddings (1 for the same
   image; the embeddings are not unit vectors, their norms are about 1.4).

Without dlib or the model file, :func:`compare_faces` returns an :class:`IdentityScore` whose values
are None and whose ``reason`` says what is missing; it never raises for that.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from latentstudio.errors import LatentStudioError, ShapeError
from latentstudio.studio.alignment import AlignTemplate, find_predictor, template_points

__all__ = [
    "RECOGNITION_FILE",
    "SAME_PERSON_DISTANCE",
    "FaceEmbedder",
    "IdentityScore",
    "IdentityUnavailable",
    "compare_faces",
    "find_recognition_model",
    "get_embedder",
    "identity_unavailable",
]

#: File name of dlib's face-recognition network inside the ``face-recognition-models`` package.
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
#: Embedding distance under which dlib calls two faces the same person.
SAME_PERSON_DISTANCE = 0.6
#: Detection-like box from the template: side in eye distances, centre below the eyes in eye-to-mouth units.
BOX_EYE_SCALE = 2.4
BOX_MOUTH_SHIFT = 0.45


class IdentityUnavailable(LatentStudioError):
    """The identity embedding cannot be computed here (dlib or the model file is missing)."""


@dataclass(frozen=True)
class IdentityScore:
    """How alike two faces are to dlib's face-recognition network.

    Attributes:
        distance: Euclidean distance of the 128-d embeddings (None when unavailable).
        similarity: cosine of the two embeddings (1 = identical; None when unavailable).
        same_person: ``distance < threshold`` (None when unavailable).
        threshold: dlib's same-person distance, :data:`SAME_PERSON_DISTANCE`.
        box: ``detected`` (dlib found the face in the photo) or ``template`` (placed from the alignment
            template); empty when unavailable.
        model: the embedding network.
        reason: why there is no score (empty when there is one).
    """

    distance: float | None
    similarity: float | None
    same_person: bool | None
    threshold: float = SAME_PERSON_DISTANCE
    box: str = ""
    model: str = "dlib_face_recognition_resnet_model_v1"
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.distance is not None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the projection's metadata and the CLI report)."""
        return asdict(self)

    @classmethod
    def unavailable(cls, reason: str) -> IdentityScore:
        return cls(None, None, None, reason=reason)


def find_recognition_model(path: str | Path | None = None) -> Path:
    """The face-recognition network file: ``path`` if given, else the copy in ``face-recognition-models``.

    Raises:
        IdentityUnavailable: the file does not exist or the package is not installed.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise IdentityUnavailable(f"face-recognition model {p} does not exist (a dlib {RECOGNITION_FILE} file)")
        return p
    spec = importlib.util.find_spec("face_recognition_models")
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        p = Path(loc) / "models" / RECOGNITION_FILE
        if p.is_file():
            return p
    raise IdentityUnavailable(f"no face-recognition model: {RECOGNITION_FILE} ships in the face-recognition-models "
                              "package (`pip install face-recognition-models dlib-bin`)")


def _rgb_hwc(image: torch.Tensor, name: str) -> np.ndarray:
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        got = f"{image.dtype} {list(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
        raise ShapeError(f"{name}: expected an aligned face uint8 [1 or 3, H, W], got {got}")
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())


def _working_size(side: int) -> int:
    return min(max(side, 256), 512)


def _resize(arr: np.ndarray, side: int) -> np.ndarray:
    if arr.shape[0] == side and arr.shape[1] == side:
        return arr
    up = side > max(arr.shape[:2])
    return np.asarray(Image.fromarray(arr).resize((side, side), Image.BICUBIC if up else Image.LANCZOS))


def template_box(template: str | AlignTemplate, side: int) -> tuple[int, int, int, int]:
    """Where dlib's detector would box an upright face aligned with ``template`` in a ``side`` image."""
    el, er, ml, mr = template_points(template, side)
    eye_mid, mouth = (el + er) / 2, (ml + mr) / 2
    d = math.hypot(*(er - el))
    cx, cy = eye_mid + BOX_MOUTH_SHIFT * (mouth - eye_mid)
    half = BOX_EYE_SCALE * d / 2
    return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


class FaceEmbedder:
    """dlib's HOG detector, 68-point predictor and face-recognition network, loaded once, thread-safe.

    Args:
        predictor: a dlib 68-point predictor file (default: the packaged one).
        model: a ``dlib_face_recognition_resnet_model_v1.dat`` file (default: the packaged one).

    Raises:
        IdentityUnavailable: dlib or a model file is missing.
    """

    def __init__(self, predictor: str | Path | None = None, model: str | Path | None = None) -> None:
        try:
            import dlib  # lazy: optional heavy dependency (dlib), only for identity scores
        except ImportError:
            raise IdentityUnavailable("dlib is not installed (`pip install dlib-bin face-recognition-models`)") from None
        try:
            predictor_path = find_predictor(predictor)
        except LatentStudioError as exc:
            raise IdentityUnavailable(str(exc)) from None
        self.model_path = find_recognition_model(model)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        try:
            self._predictor = dlib.shape_predictor(str(predictor_path))
            self._net = dlib.face_recognition_model_v1(str(self.model_path))
        except RuntimeError as exc:
            raise IdentityUnavailable(f"a dlib model file could not be read: {exc}") from None
        self._lock = threading.Lock()

    def _embed(self, arr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        rect = self._dlib.rectangle(*box)
        with self._lock:
            shape = self._predictor(arr, rect)
            vec = self._net.compute_face_descriptor(arr, shape, 0, 0.25)
        return np.asarray(vec, dtype=np.float64)

    def _box(self, arr: np.ndarray, template: str | AlignTemplate) -> tuple[tuple[int, int, int, int], str]:
        with self._lock:
            rects, scores, _ = self._detector.run(arr, 0, 0.0)
        if len(rects):
            r = rects[int(np.argmax(scores))]
            return (r.left(), r.top(), r.right(), r.bottom()), "detected"
        return template_box(template, arr.shape[0]), "template"

    def embed(self, image: torch.Tensor, template: str | AlignTemplate = "ffhq") -> np.ndarray:
        """The 128-d embedding ``float64 [128]`` of one aligned face ``uint8 [C, R, R]``."""
        arr = _rgb_hwc(image, "image")
        arr = _resize(arr, _working_size(max(arr.shape[:2])))
        box, _ = self._box(arr, template)
        return self._embed(arr, box)

    def compare(self, photo: torch.Tensor, other: torch.Tensor, template: str | AlignTemplate = "ffhq") -> IdentityScore:
        """:class:`IdentityScore` of two aligned faces of one framing (see the module docstring)."""
        a, b = _rgb_hwc(photo, "photo"), _rgb_hwc(other, "other")
        side = _working_size(max(*a.shape[:2], *b.shape[:2]))
        a, b = _resize(a, side), _resize(b, side)
        box, how = self._box(a, template)
        ea, eb = self._embed(a, box), self._embed(b, box)
        dist = float(np.linalg.norm(ea - eb))
        cos = float(ea @ eb / max(np.linalg.norm(ea) * np.linalg.norm(eb), 1e-12))
        return IdentityScore(dist, min(cos, 1.0), dist < SAME_PERSON_DISTANCE, box=how)


_EMBEDDER: FaceEmbedder | None = None
_EMBEDDER_LOCK = threading.Lock()


def get_embedder() -> FaceEmbedder:
    """The shared :class:`FaceEmbedder` with the packaged models (loaded on first use, ~2 s).

    Raises:
        IdentityUnavailable: dlib or a model file is missing.
    """
    global _EMBEDDER
    with _EMBEDDER_LOCK:
        if _EMBEDDER is None:
            _EMBEDDER = FaceEmbedder()
        return _EMBEDDER


def identity_unavailable() -> str | None:
    """Why identity scores cannot be computed here, or None when they can (loads nothing heavy)."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (`pip install dlib-bin face-recognition-models`)"
    try:
        find_recognition_model()
        find_predictor()
    except LatentStudioError as exc:
        return str(exc)
    return None


def compare_faces(photo: torch.Tensor, other: torch.Tensor, template: str | AlignTemplate = "ffhq") -> IdentityScore:
    """Identity similarity of an aligned photo and another aligned face (e.g. its projection).

    Returns:
        :class:`IdentityScore`; when dlib or its model is missing, one with None values and the
        ``reason``.

    Raises:
        ShapeError: an image is not ``uint8 [1 or 3, H, W]``.
    """
    try:
        embedder = get_embedder()
    except IdentityUnavailable as exc:
        return IdentityScore.unavailable(str(exc))
    return embedder.compare(photo, other, template)
