"""Face alignment the FFHQ way: eye and mouth landmarks define an oriented square crop.

The procedure follows the one used to build FFHQ (Karras et al., "A Style-Based Generator
Architecture for GANs", CVPR 2019, appendix A): from the 68-point (iBUG) landmarks take the centres of
the two eyes (points 36-41 and 42-47) and the two mouth corners (48 and 54);

* ``eye_to_eye = eye_right - eye_left``, ``eye_to_mouth = mouth_avg - eye_avg``;
* the crop's x axis is ``eye_to_eye - rot90(eye_to_mouth)`` (the mean of the eye line and the
  face's vertical axis turned by 90 degrees), normalised, with half-side
  ``max(|eye_to_eye| * eye_scale, |eye_to_mouth| * mouth_scale)``; the y axis is x turned by 90 degrees;
* the centre is ``eye_avg + eye_to_mouth * center_shift``;
* FFHQ uses ``eye_scale = 2.0``, ``mouth_scale = 1.8``, ``center_shift = 0.1``.

The warp then (1) shrinks very large photos by an integer factor with a box filter, (2) crops
to the quad plus a border, (3) pads where the quad leaves the photo, by reflection, blending the
padded band towards a blurred copy and towards the median colour (so that the model never sees
a hard mirror seam), and (4) samples the quad bilinearly at twice the output size and halves it
with an area filter.

:data:`TEMPLATES` holds ``ffhq`` (the constants above, for generators trained on FFHQ) and
``celeba`` (the framing of the project's CelebA loader: the 140-pixel centre crop of the aligned
178x218 CelebA images). The ``celeba`` constants were measured, not guessed: 1,000 CelebA images
(000001-001000 of the half-resolution subset) were upsampled 4x, landmarked with the dlib
68-point predictor, and the crop that maps each one's eye/mouth points onto the loader's
centre crop was fitted with :func:`fit_template` (962 single-face detections; mean corner error
2.3% of the side; ``python benchmarks/projection.py --measure-template`` reproduces it).

Landmark detection (:class:`DlibLandmarker`) uses dlib's HOG frontal-face detector and its
68-point shape predictor. Both run offline: the detector is compiled into the ``dlib-bin`` wheel and
the predictor file ``shape_predictor_68_face_landmarks.dat`` ships inside the
``face-recognition-models`` package (found by :func:`find_predictor` without importing it); a
predictor file of the user's is accepted too.

Shapes: images cross this module as ``uint8 [3, H, W]``; landmarks are ``float64 [68, 2]`` (x, y) in
pixels of the image they were detected on; quads are ``float64 [4, 2]`` corners in the order
top-left, bottom-left, bottom-right, top-right.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError

__all__ = [
    "PREDICTOR_FILE",
    "TEMPLATES",
    "AlignTemplate",
    "AlignedFace",
    "DlibLandmarker",
    "Face",
    "MultipleFacesError",
    "NoFaceError",
    "align_face",
    "align_image",
    "eye_mouth_points",
    "face_quad",
    "find_predictor",
    "quad_to_affine",
    "template_points",
]

#: File name of the 68-point predictor inside the ``face-recognition-models`` package.
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class NoFaceError(LatentStudioError):
    """No face was found in the photo."""


class MultipleFacesError(LatentStudioError):
    """Several faces were found and none was chosen; ``faces`` lists them (largest first)."""

    def __init__(self, message: str, faces: list[Face]) -> None:
        super().__init__(message)
        self.faces = faces


@dataclass(frozen=True)
class AlignTemplate:
    """Where the eyes and mouth land in the aligned square (see the module docstring).

    Attributes:
        name: ``"ffhq"``, ``"celeba"`` or a custom name.
        eye_scale: half-side of the crop in units of the eye distance (FFHQ 2.0).
        mouth_scale: half-side in units of the eye-to-mouth distance (FFHQ 1.8); the larger wins.
        center_shift: crop centre = eye midpoint + center_shift * eye_to_mouth (FFHQ 0.1).
    """

    name: str
    eye_scale: float
    mouth_scale: float
    center_shift: float

    def __post_init__(self) -> None:
        if not (self.eye_scale > 0 and self.mouth_scale > 0):
            raise ConfigError(f"align template {self.name!r}: eye_scale and mouth_scale must be > 0")


TEMPLATES: dict[str, AlignTemplate] = {
    "ffhq": AlignTemplate("ffhq", eye_scale=2.0, mouth_scale=1.8, center_shift=0.1),
    # measured on CelebA (see the module docstring); the crop is tighter than FFHQ's and centred
    # slightly above the eyes, like the loader's 140x140 centre crop of the 178x218 aligned images.
    "celeba": AlignTemplate("celeba", eye_scale=1.7889, mouth_scale=1.61, center_shift=-0.1204),
}


def get_template(template: str | AlignTemplate) -> AlignTemplate:
    """The template object for a name (``ffhq``, ``celeba``) or the object itself.

    Raises:
        ConfigError: unknown name (the known ones listed).
    """
    if isinstance(template, AlignTemplate):
        return template
    if template not in TEMPLATES:
        raise ConfigError(f"unknown align template {template!r}; known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[template]


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels of the photo.
        landmarks: ``float64 [68, 2]`` (x, y) pixels.
        score: detector confidence (larger is surer; dlib's HOG margin).
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float = 0.0

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


@dataclass
class AlignedFace:
    """The result of :func:`align_face`.

    Attributes:
        image: ``uint8 [3, S, S]`` aligned face.
        quad: ``float64 [4, 2]`` the crop in the photo's pixels (TL, BL, BR, TR).
        landmarks: ``float64 [68, 2]`` the landmarks mapped into the aligned image's pixels
            (None if only eye/mouth points were given).
        padded: whether the quad left the photo and reflection padding was used.
        template: name of the template used.
    """

    image: torch.Tensor
    quad: np.ndarray
    landmarks: np.ndarray | None = None
    padded: bool = False
    template: str = "ffhq"
    extra: dict = field(default_factory=dict)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] not in (68, 4):
        raise ShapeError(
            "landmarks: expected float [68, 2] (iBUG 68-point x, y) or [4, 2] "
            f"(eye_left, eye_right, mouth_left, mouth_right), got shape {list(lm.shape)}"
        )
    if not np.isfinite(lm).all():
        raise ShapeError("landmarks contain NaN or inf")
    return lm


def eye_mouth_points(landmarks: np.ndarray) -> np.ndarray:
    """``[4, 2]``: left-eye centre, right-eye centre, left and right mouth corner.

    Args:
        landmarks: ``[68, 2]`` iBUG points (eyes 36-41 / 42-47, mouth corners 48 / 54), or the four
            points already (returned unchanged).

    Raises:
        ShapeError: for another shape or non-finite values.
    """
    lm = _check_landmarks(landmarks)
    if lm.shape[0] == 4:
        return lm
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]])


def face_quad(landmarks: np.ndarray, template: str | AlignTemplate = "ffhq") -> np.ndarray:
    """The oriented square crop ``float64 [4, 2]`` (TL, BL, BR, TR) for a face's landmarks.

    See the module docstring for the construction. For an upright face with eye distance ``d`` and
    eye-to-mouth distance ``m`` the quad is the axis-aligned square of side
    ``2 * max(eye_scale * d, mouth_scale * m)`` centred ``center_shift * m`` below the eye midpoint.
    """
    t = get_template(template)
    eye_l, eye_r, mouth_l, mouth_r = eye_mouth_points(landmarks)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (mouth_l + mouth_r) / 2 - eye_avg
    # eye_to_mouth turned by -90 degrees points along +x for an upright face: (m_y, -m_x)
    axis = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
    norm = math.hypot(*axis)
    if norm < 1e-9:
        raise LatentStudioError("degenerate landmarks: the eyes and mouth coincide")
    half = max(math.hypot(*eye_to_eye) * t.eye_scale, math.hypot(*eye_to_mouth) * t.mouth_scale)
    x = axis / norm * half
    y = np.array([-x[1], x[0]])  # x turned by +90 degrees (image y points down)
    c = eye_avg + eye_to_mouth * t.center_shift
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_affine(quad: np.ndarray, size: int) -> np.ndarray:
    """``float64 [2, 3]`` affine map from photo pixels to aligned-image pixels for ``quad``.

    Pixel centres: the quad's top-left corner maps to (-0.5, -0.5), i.e. the outer edge of the first
    output pixel, and its bottom-right corner to (size - 0.5, size - 0.5).
    """
    tl, bl, _, tr = np.asarray(quad, dtype=np.float64)
    # columns: where the output's x and y unit vectors point in the photo
    ex, ey = (tr - tl) / size, (bl - tl) / size
    m = np.stack([ex, ey], axis=1)  # photo = m @ (out + 0.5) + tl
    inv = np.linalg.inv(m)
    return np.concatenate([inv, (-inv @ tl - 0.5)[:, None]], axis=1)


def template_points(template: str | AlignTemplate, size: int, eye_to_mouth_ratio: float = 1.0) -> np.ndarray:
    """Where an upright face's eyes and mouth corners land in a ``size`` aligned image: ``[4, 2]``.

    ``eye_to_mouth_ratio`` is ``|eye_to_mouth| / |eye_to_eye|`` of the face (1 by default).
    """
    pts = np.array([[-0.5, 0.0], [0.5, 0.0], [-0.4, eye_to_mouth_ratio], [0.4, eye_to_mouth_ratio]])
    quad = face_quad(pts, template)
    a = quad_to_affine(quad, size)
    return pts @ a[:, :2].T + a[:, 2]


def _box_shrink(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = img.shape[:2]
    h2, w2 = h // factor, w // factor
    return img[: h2 * factor, : w2 * factor].reshape(h2, factor, w2, factor, -1).mean(axis=(1, 3))


def _pad_blend(img: np.ndarray, pad: tuple[int, int, int, int], blur: float) -> np.ndarray:
    """Reflect-pad ``img [H, W, 3] float`` by (left, top, right, bottom) and soften the band."""
    from scipy.ndimage import gaussian_filter  # lazy: SciPy adds ~0.2 s to import, needed only here

    left, top, right, bottom = pad
    out = np.pad(img, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = out.shape[:2]
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    # FFHQ's mask: 1 at the outer edge of the padding, 0 where the photo begins, and negative inside the
    # photo (-k at k pad-widths from the edge); a side without padding never counts
    with np.errstate(divide="ignore", invalid="ignore"):
        fx = np.minimum(xs / left if left else np.inf, (w - 1 - xs) / right if right else np.inf)
        fy = np.minimum(ys / top if top else np.inf, (h - 1 - ys) / bottom if bottom else np.inf)
    mask = np.maximum(1.0 - fx, 1.0 - fy)[..., None]
    # the blur fades in over the last third of a pad-width inside the photo (mask > -1/3) and is full on
    # the padding; the photo's interior stays sharp
    blurred = gaussian_filter(out, sigma=(blur, blur, 0))
    out = out + (blurred - out) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    out = out + (np.median(out, axis=(0, 1)) - out) * np.clip(mask, 0.0, 1.0)
    return out


def align_image(
    image: torch.Tensor,
    quad: np.ndarray,
    size: int,
    *,
    padding: bool = True,
) -> tuple[torch.Tensor, bool]:
    """Warp the ``quad`` of ``image`` (``uint8 [3, H, W]``) to ``uint8 [3, size, size]``.

    Returns ``(aligned, padded)``. See the module docstring for the four steps.

    Raises:
        ShapeError: ``image`` is not ``uint8 [3, H, W]``.
    """
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        got = f"{image.dtype} {list(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
        raise ShapeError(f"align_image expects an RGB image uint8 [3, H, W], got {got}")
    if size < 4:
        raise ConfigError(f"aligned size must be >= 4, got {size}")
    quad = np.asarray(quad, dtype=np.float64).copy()
    img = image.permute(1, 2, 0).numpy().astype(np.float32)
    qsize = math.hypot(*(quad[3] - quad[0]))
    # 1. shrink by an integer factor when the crop is much larger than twice the output
    shrink = math.floor(qsize / (2 * size) * 0.5)
    if shrink > 1:
        img = _box_shrink(img, shrink)
        quad /= shrink
        qsize /= shrink
    # 2. crop to the quad plus a border
    h, w = img.shape[:2]
    border = max(round(qsize * 0.1), 3)
    x0 = max(math.floor(quad[:, 0].min()) - border, 0)
    y0 = max(math.floor(quad[:, 1].min()) - border, 0)
    x1 = min(math.ceil(quad[:, 0].max()) + border, w)
    y1 = min(math.ceil(quad[:, 1].max()) + border, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise LatentStudioError("the face crop lies outside the photo; check the landmarks")
    img = img[y0:y1, x0:x1]
    quad -= (x0, y0)
    h, w = img.shape[:2]
    # 3. pad where the quad leaves the photo
    pad = (
        max(-math.floor(quad[:, 0].min()) + border, 0),
        max(-math.floor(quad[:, 1].min()) + border, 0),
        max(math.ceil(quad[:, 0].max()) - w + border, 0),
        max(math.ceil(quad[:, 1].max()) - h + border, 0),
    )
    padded = False
    if padding and max(pad) > border - 4:
        p = max(round(qsize * 0.3), 1)
        pad = tuple(max(v, p) for v in pad)
        # reflection cannot exceed the image size: repeat it in steps if needed
        while any(v > 0 for v in pad):
            step = (min(pad[0], w - 1), min(pad[1], h - 1), min(pad[2], w - 1), min(pad[3], h - 1))
            img = _pad_blend(img, step, blur=max(qsize * 0.02, 0.5))
            quad += (step[0], step[1])
            pad = tuple(a - b for a, b in zip(pad, step, strict=True))
            h, w = img.shape[:2]
        padded = True
    # 4. bilinear sampling of the quad at twice the size, then a 2x2 area average
    sup = 2 * size
    a = quad_to_affine(quad, sup)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]  # aligned pixel -> photo pixel
    ys, xs = np.meshgrid(np.arange(sup, dtype=np.float64), np.arange(sup, dtype=np.float64), indexing="ij")
    px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = torch.from_numpy(np.stack([(px + 0.5) / w * 2 - 1, (py + 0.5) / h * 2 - 1], axis=-1)).float()[None]
    src = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = F.avg_pool2d(out, 2)[0]
    return out.round().clamp(0, 255).to(torch.uint8), padded


def align_face(
    image: torch.Tensor,
    landmarks: np.ndarray,
    size: int,
    template: str | AlignTemplate = "ffhq",
    *,
    padding: bool = True,
) -> AlignedFace:
    """Align one face: :func:`face_quad` from its landmarks, then :func:`align_image`.

    Args:
        image: the photo, ``uint8 [3, H, W]``.
        landmarks: ``[68, 2]`` iBUG points or ``[4, 2]`` eye centres + mouth corners, photo pixels.
        size: output side in pixels (the model's resolution).
        template: ``"ffhq"``, ``"celeba"`` or an :class:`AlignTemplate`.
        padding: reflect-pad and blend where the crop leaves the photo (else edge pixels repeat).

    Returns:
        :class:`AlignedFace` with ``image uint8 [3, size, size]`` and the landmarks in its pixels.
    """
    lm = _check_landmarks(landmarks)
    t = get_template(template)
    quad = face_quad(lm, t)
    aligned, padded = align_image(image, quad, size, padding=padding)
    a = quad_to_affine(quad, size)
    return AlignedFace(aligned, quad, lm @ a[:, :2].T + a[:, 2], padded, t.name)


# ----------------------------------------------------------------------------------------------
# Landmark detection (dlib, offline)
# ----------------------------------------------------------------------------------------------


def find_predictor(path: str | Path | None = None) -> Path:
    """The dlib 68-point predictor file: ``path`` if given, else the copy in ``face-recognition-models``.

    The package is located with :func:`importlib.util.find_spec` (it is not imported).

    Raises:
        LatentStudioError: the given file does not exist, or the package is not installed (the
            message names the pip command and the manual alternative).
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise LatentStudioError(f"landmark predictor {p} does not exist (a dlib {PREDICTOR_FILE} file)")
        return p
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            p = Path(loc) / "models" / PREDICTOR_FILE
            if p.is_file():
                return p
    raise LatentStudioError(
        f"no face landmark model: install it with `pip install face-recognition-models dlib-bin` "
        f"(or `pip install latentstudio[studio]`), or pass --predictor PATH to a dlib {PREDICTOR_FILE} file"
    )


class DlibLandmarker:
    """Face boxes (dlib HOG detector) and 68 landmarks (dlib shape predictor), on the CPU, offline.

    Args:
        predictor: path of a dlib 68-point predictor (default: :func:`find_predictor`).
        max_side: photos larger than this are shrunk for detection only (landmarks are predicted
            on the full-resolution photo).
        upsample: detector pyramid upsampling steps for small photos (faces under ~80 pixels).

    Raises:
        LatentStudioError: dlib or the predictor file is missing (with the install command).

    The object is thread-safe (one lock around dlib calls).
    """

    def __init__(self, predictor: str | Path | None = None, *, max_side: int = 1024, upsample: int = 1) -> None:
        try:
            import dlib  # lazy: optional face-alignment dependency (dlib)
        except ImportError:
            raise LatentStudioError(
                "face detection needs dlib: `pip install dlib-bin face-recognition-models` "
                "(or `pip install latentstudio[studio]`)"
            ) from None
        self.predictor_path = find_predictor(predictor)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        try:
            self._predictor = dlib.shape_predictor(str(self.predictor_path))
        except RuntimeError as exc:
            raise LatentStudioError(f"{self.predictor_path} is not a dlib shape predictor file: {exc}") from None
        self.max_side = int(max_side)
        self.upsample = int(upsample)
        self._lock = threading.Lock()

    def landmarks(self, image: torch.Tensor, box: tuple[int, int, int, int]) -> np.ndarray:
        """68 landmarks ``float64 [68, 2]`` of the face in ``box`` (left, top, right, bottom) of ``uint8 [3, H, W]``."""
        arr = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
        rect = self._dlib.rectangle(*(round(v) for v in box))
        with self._lock:
            shape = self._predictor(arr, rect)
        if shape.num_parts != 68:
            raise LatentStudioError(f"{self.predictor_path} predicts {shape.num_parts} points; a 68-point model is needed")
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def detect(self, image: torch.Tensor) -> list[Face]:
        """Every frontal face of ``image`` (``uint8 [3, H, W]``), largest first.

        Raises:
            ShapeError: not an RGB uint8 image.
        """
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ShapeError(f"detect expects uint8 [3, H, W], got {image.dtype} {list(image.shape)}")
        h, w = image.shape[1:]
        scale = min(1.0, self.max_side / max(h, w))
        small = image
        if scale < 1.0:
            small = F.interpolate(image[None].float(), scale_factor=scale, mode="area")[0].round().to(torch.uint8)
        arr = np.ascontiguousarray(small.permute(1, 2, 0).numpy())
        upsample = self.upsample if max(arr.shape[:2]) < 800 else 0
        with self._lock:
            rects, scores, _ = self._detector.run(arr, upsample, 0.0)
        faces = []
        for r, s in zip(rects, scores, strict=True):
            box = tuple(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom()))
            faces.append(Face(box=box, landmarks=self.landmarks(image, box), score=float(s)))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def choose(self, image: torch.Tensor, face_index: int | None = None) -> Face:
        """The face to align: the only one, or ``face_index`` (0 = largest) among several.

        Raises:
            NoFaceError: no face found (the message suggests a frontal, well-lit photo).
            MultipleFacesError: several faces and ``face_index`` is None (the message lists them).
            LatentStudioError: ``face_index`` out of range.
        """
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(
                "no face found in the photo: use a frontal, well-lit photo where the face is at least "
                "about 80 pixels wide (or pass an already aligned face with --aligned)"
            )
        if face_index is None:
            if len(faces) == 1:
                return faces[0]
            listing = "; ".join(f"face {i}: box {f.box}" for i, f in enumerate(faces))
            raise MultipleFacesError(
                f"{len(faces)} faces found ({listing}); choose one with --face N (0 = the largest)", faces
            )
        if not 0 <= face_index < len(faces):
            raise LatentStudioError(f"--face {face_index}: the photo has {len(faces)} face(s) (0..{len(faces) - 1})")
        return faces[face_index]


def fit_template(landmarks: np.ndarray, quads: np.ndarray, name: str = "custom", mouth_ratio: float = 0.9) -> AlignTemplate:
    """Fit a template to faces whose desired crops are known (medians over faces).

    For face i with eye distance ``d``, eye-to-mouth distance ``m``, eye midpoint ``e`` and desired
    crop centre ``c`` / half-side ``h``: ``eye_scale = median(h / max(d, mouth_ratio * m))``,
    ``mouth_scale = mouth_ratio * eye_scale`` (FFHQ's ratio 1.8 / 2.0 = 0.9 by default) and
    ``center_shift = median((c - e) . u / m)`` with ``u`` the unit eye-to-mouth vector.

    Args:
        landmarks: ``[N, 68, 2]`` or ``[N, 4, 2]`` (see :func:`eye_mouth_points`).
        quads: ``[N, 4, 2]`` desired crops (TL, BL, BR, TR), same pixels.

    Returns:
        The fitted :class:`AlignTemplate`; :func:`face_quad` with it reproduces the crops of
        faces that agree with the medians.
    """
    lms = np.asarray(landmarks, dtype=np.float64)
    qs = np.asarray(quads, dtype=np.float64)
    if lms.ndim != 3 or qs.ndim != 3 or qs.shape[1:] != (4, 2) or len(lms) != len(qs) or len(lms) == 0:
        raise ShapeError(f"fit_template: landmarks [N, 68|4, 2] and quads [N, 4, 2] needed, got "
                         f"{list(lms.shape)} and {list(qs.shape)}")
    scales, shifts = [], []
    for lm, q in zip(lms, qs, strict=True):
        eye_l, eye_r, mouth_l, mouth_r = eye_mouth_points(lm)
        eye_avg = (eye_l + eye_r) / 2
        e2m = (mouth_l + mouth_r) / 2 - eye_avg
        d, m = math.hypot(*(eye_r - eye_l)), math.hypot(*e2m)
        half = math.hypot(*(q[3] - q[0])) / 2
        scales.append(half / max(d, mouth_ratio * m))
        shifts.append(float((q.mean(0) - eye_avg) @ (e2m / m)) / m)
    eye_scale = float(np.median(scales))
    return AlignTemplate(name, eye_scale=round(eye_scale, 4), mouth_scale=round(mouth_ratio * eye_scale, 4),
                         center_shift=round(float(np.median(shifts)), 4))
