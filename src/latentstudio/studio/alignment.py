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

The warp follows FFHQ's script step by step (:func:`align_image`): (1) a photo whose quad is more
than four times the output is shrunk by the integer factor ``floor(qsize / size / 2)`` (Lanczos);
(2) it is cropped to the quad plus a border of 10% of the quad's side; (3) where the quad still
leaves the photo, every side is reflect-padded by at least 30% of the quad's side, the padding
blended towards a blur that fades in over a narrow band inside the photo (the face stays sharp)
and towards the median colour far out (so that the model never sees a hard mirror seam); (4) the
quad is sampled bilinearly at four times the output size and Lanczos-resized to it.

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
predictor file of the user's is accepted too. Faces are numbered left to right (face 0 is the
leftmost) and kept when their detector score is above ``min_face_score`` (dlib's default 0).
:func:`pick_face` chooses one: the only face, the one asked for, or one whose box has at least
:data:`DOMINANT_AREA_RATIO` times the area of every other (a portrait with a badge); otherwise the
choice is left to the user, helped by :func:`draw_faces` (numbered boxes) or :func:`face_gallery`
(thumbnails).

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
from PIL import Image

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError

__all__ = [
    "DOMINANT_AREA_RATIO",
    "MIN_FACE_SCORE",
    "PREDICTOR_FILE",
    "TEMPLATES",
    "AlignTemplate",
    "AlignedFace",
    "DlibLandmarker",
    "Face",
    "FaceChoice",
    "MultipleFacesError",
    "NoFaceError",
    "align_face",
    "align_image",
    "describe_faces",
    "draw_faces",
    "eye_mouth_points",
    "face_gallery",
    "face_quad",
    "find_predictor",
    "pick_face",
    "quad_to_affine",
    "template_points",
]

#: File name of the 68-point predictor inside the ``face-recognition-models`` package.
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class NoFaceError(LatentStudioError):
    """No face was found in the photo."""


class MultipleFacesError(LatentStudioError):
    """Several faces were found and none was chosen; ``faces`` lists them (left to right)."""

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
        score: detector confidence (dlib's HOG score: larger is surer, 0 is dlib's default threshold).
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


def _resize_lanczos(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``img [H, W, C] float32`` with Pillow's Lanczos filter (FFHQ's ``ANTIALIAS``), per channel in float."""
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32))
                        .resize((width, height), Image.LANCZOS)) for c in range(img.shape[2])]
    return np.stack(chans, axis=-1)


def _pad_blend(img: np.ndarray, pad: tuple[int, int, int, int], blur: float) -> np.ndarray:
    """Reflect-pad ``img [H, W, 3] float`` by (left, top, right, bottom) and soften the band (FFHQ's padding)."""
    from scipy.ndimage import gaussian_filter  # lazy: SciPy adds ~0.2 s to import, needed only here

    left, top, right, bottom = pad
    # numpy reflects repeatedly when a pad is wider than the photo
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


#: Supersampling of the quad before the final Lanczos resize (FFHQ: transform_size = 4 * output_size).
SUPERSAMPLE = 4


def align_image(
    image: torch.Tensor,
    quad: np.ndarray,
    size: int,
    *,
    padding: bool = True,
) -> tuple[torch.Tensor, bool]:
    """Warp the ``quad`` of ``image`` (``uint8 [3, H, W]``) to ``uint8 [3, size, size]``.

    Returns ``(aligned, padded)``. The four steps are FFHQ's (see the module docstring):

    1. shrink: ``shrink = floor(qsize / size / 2)`` with ``qsize`` the quad's side; above 1 the photo is
       resized by ``1 / shrink`` with a Lanczos filter;
    2. crop: the quad's bounding box plus ``border = max(round(0.1 qsize), 3)`` pixels, within the photo;
    3. pad: when the quad still leaves the crop by more than ``border - 4`` pixels, every side is
       reflect-padded by at least ``round(0.3 qsize)``; the padding is blended towards a Gaussian blur
       (sigma ``0.02 qsize``), which fades in over the last third of a pad-width inside the photo, and
       towards the median colour far out (:func:`_pad_blend`);
    4. resize: the quad is sampled bilinearly at ``4 size`` pixels, then Lanczos-resized to ``size``.

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
    # 1. shrink when the quad is more than four times the output (FFHQ's rule)
    shrink = math.floor(qsize / size * 0.5)
    if shrink > 1:
        h, w = img.shape[:2]
        rw, rh = max(round(w / shrink), 1), max(round(h / shrink), 1)
        img = _resize_lanczos(img, rw, rh)
        quad = (quad + 0.5) * (rw / w, rh / h) - 0.5  # pixel centres of the resized photo
        qsize = math.hypot(*(quad[3] - quad[0]))
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
        img = _pad_blend(img, pad, blur=qsize * 0.02)
        quad += (pad[0], pad[1])
        h, w = img.shape[:2]
        padded = True
    # 4. bilinear sampling of the quad at four times the size (in bands of rows), then Lanczos to the size
    sup = SUPERSAMPLE * size
    a = quad_to_affine(quad, sup)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]  # aligned pixel -> photo pixel
    src = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    big = np.empty((sup, sup, 3), dtype=np.float32)
    xs = np.arange(sup, dtype=np.float64)[None, :]
    band = max(1, 2**22 // sup)
    for r0 in range(0, sup, band):
        ys = np.arange(r0, min(r0 + band, sup), dtype=np.float64)[:, None]
        px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        grid = torch.from_numpy(np.stack([(px + 0.5) / w * 2 - 1, (py + 0.5) / h * 2 - 1], axis=-1)).float()[None]
        rows = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
        big[r0 : r0 + len(ys)] = rows.permute(1, 2, 0).numpy()
    out = _resize_lanczos(big, size, size)
    aligned = torch.from_numpy(np.clip(np.rint(out), 0, 255).astype(np.uint8)).permute(2, 0, 1).contiguous()
    return aligned, padded


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


#: Default detection threshold: dlib's own (``detector(img)`` keeps candidates whose HOG score is above 0).
MIN_FACE_SCORE = 0.0

#: Without ``face_index``, one face among several is chosen when its box has at least this many times the
#: area of every other face (a portrait with a small face on a badge, a poster or in the background).
DOMINANT_AREA_RATIO = 4.0


def describe_faces(faces: list[Face]) -> str:
    """One line per face for messages: ``face 0: box (l, t, r, b), 120x118 px, score 1.27; face 1: ...``."""
    return "; ".join(f"face {i}: box {f.box}, {f.box[2] - f.box[0]}x{f.box[3] - f.box[1]} px, score {f.score:.2f}"
                     for i, f in enumerate(faces))


@dataclass
class FaceChoice:
    """Which face :func:`pick_face` chose and why.

    Attributes:
        index: its number in ``faces`` (0 = leftmost).
        face: the chosen :class:`Face`.
        faces: every detected face, left to right.
        reason: ``"the only face"``, ``"chosen with --face"`` or why it dominates the others.
    """

    index: int
    face: Face
    faces: list[Face]
    reason: str

    @property
    def landmarks(self) -> np.ndarray:
        return self.face.landmarks

    @property
    def automatic(self) -> bool:
        """True when the face was chosen without an index among several (the caller should say so)."""
        return len(self.faces) > 1 and self.reason != "chosen with --face"


def pick_face(faces: list[Face], face_index: int | None = None, *,
              dominance: float = DOMINANT_AREA_RATIO) -> FaceChoice:
    """Choose the face to align among ``faces`` (numbered left to right from 0).

    ``face_index`` picks one; without it the only face is taken, or, among several, the one whose box
    has at least ``dominance`` times the area of every other face; otherwise the choice is ambiguous.

    Raises:
        NoFaceError: ``faces`` is empty.
        MultipleFacesError: several faces, none dominant, and no ``face_index`` (the message lists the
            faces with their numbers and says how to see and choose them).
        LatentStudioError: ``face_index`` out of range.
    """
    if not faces:
        raise NoFaceError(
            "no face found in the photo: use a frontal, well-lit photo where the face is at least about 80 pixels "
            "wide (`latentstudio project` also takes an already aligned face with --aligned)"
        )
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise LatentStudioError(f"--face {face_index}: the photo has {len(faces)} face(s), numbered "
                                    f"0..{len(faces) - 1} from the left")
        return FaceChoice(face_index, faces[face_index], faces, "chosen with --face")
    if len(faces) == 1:
        return FaceChoice(0, faces[0], faces, "the only face")
    order = sorted(range(len(faces)), key=lambda i: faces[i].area, reverse=True)
    first, second = faces[order[0]].area, faces[order[1]].area
    if first >= dominance * max(second, 1):
        return FaceChoice(order[0], faces[order[0]], faces,
                          f"the dominant face, {first / max(second, 1):.1f}x the area of the next largest")
    raise MultipleFacesError(
        f"{len(faces)} faces found, numbered from the left ({describe_faces(faces)}) and none is clearly the "
        f"main one (the largest has {first / max(second, 1):.1f}x the area of the next, {dominance:g}x would "
        f"be needed): see them numbered with `latentstudio align PHOTO --preview faces.png`, then choose one "
        f"with --face N",
        faces,
    )


class DlibLandmarker:
    """Face boxes (dlib HOG detector) and 68 landmarks (dlib shape predictor), on the CPU, offline.

    Args:
        predictor: path of a dlib 68-point predictor (default: :func:`find_predictor`).
        max_side: photos larger than this are shrunk for detection only (landmarks are predicted
            on the full-resolution photo).
        upsample: detector pyramid upsampling steps for small photos (faces under ~80 pixels).
        min_face_score: detection threshold on dlib's HOG score (:data:`MIN_FACE_SCORE` = dlib's default
            0; lower, e.g. -0.5, finds harder faces and more false ones; higher keeps only clear faces).

    Raises:
        LatentStudioError: dlib or the predictor file is missing (with the install command).

    The object is thread-safe (one lock around dlib calls).
    """

    def __init__(self, predictor: str | Path | None = None, *, max_side: int = 1024, upsample: int = 1,
                 min_face_score: float = MIN_FACE_SCORE) -> None:
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
        self.min_face_score = float(min_face_score)
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

    def _candidates(self, image: torch.Tensor, threshold: float) -> list[tuple[tuple[int, int, int, int], float]]:
        """``(box, score)`` of every detection scoring above ``threshold``, in photo pixels."""
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
            rects, scores, _ = self._detector.run(arr, upsample, float(threshold))
        return [(tuple(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom())), float(s))
                for r, s in zip(rects, scores, strict=True)]

    def _faces(self, image: torch.Tensor, candidates) -> list[Face]:
        faces = [Face(box=box, landmarks=self.landmarks(image, box), score=s) for box, s in candidates]
        faces.sort(key=lambda f: (f.box[0] + f.box[2], f.box[1] + f.box[3]))  # left to right (box centres)
        return faces

    def detect(self, image: torch.Tensor, min_face_score: float | None = None) -> list[Face]:
        """Every frontal face of ``image`` (``uint8 [3, H, W]``) scoring above ``min_face_score`` (default:
        the detector's), ordered left to right by the centres of their boxes (face 0 is the leftmost).

        Raises:
            ShapeError: not an RGB uint8 image.
        """
        threshold = self.min_face_score if min_face_score is None else float(min_face_score)
        return self._faces(image, self._candidates(image, threshold))

    def choose(self, image: torch.Tensor, face_index: int | None = None, *, min_face_score: float | None = None,
               dominance: float = DOMINANT_AREA_RATIO) -> FaceChoice:
        """Detect the faces and choose one with :func:`pick_face` (``.landmarks`` are the chosen face's).

        Raises:
            NoFaceError: no face scores above the threshold (the message gives the best weaker candidate's
                score, if any, and how to lower the threshold).
            MultipleFacesError / LatentStudioError: see :func:`pick_face`.
        """
        threshold = self.min_face_score if min_face_score is None else float(min_face_score)
        candidates = self._candidates(image, min(threshold, -1.0))
        kept = [c for c in candidates if c[1] > threshold]
        if not kept:
            hint = ""
            if candidates:
                best = max(s for _, s in candidates)
                lower = math.floor(best * 10 - 1e-6) / 10
                hint = (f" (the best candidate scored {best:.2f}, below the threshold {threshold:g}: "
                        f"--min-face-score {lower:.1f} accepts it, if it is a face)")
            raise NoFaceError(
                "no face found in the photo" + hint + ": use a frontal, well-lit photo where the face is at least "
                "about 80 pixels wide (`latentstudio project` also takes an already aligned face with --aligned)"
            )
        return pick_face(self._faces(image, kept), face_index, dominance=dominance)


# ----------------------------------------------------------------------------------------------
# Showing the faces: numbered boxes, thumbnails
# ----------------------------------------------------------------------------------------------


def draw_faces(image: torch.Tensor, faces: list[Face], chosen: int | None = None) -> torch.Tensor:
    """The photo with every face's box and number drawn on it: ``uint8 [3, H, W]``.

    Numbers are the faces' positions in ``faces`` (0 = leftmost, as ``--face N`` counts); the ``chosen``
    face is drawn in green, the others in yellow.
    """
    from PIL import ImageDraw, ImageFont  # lazy: drawing is needed only for previews

    pil = Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).convert("RGB")
    draw = ImageDraw.Draw(pil)
    side = max(pil.size)
    line = max(2, round(side / 300))
    for i, f in enumerate(faces):
        colour = (40, 220, 40) if i == chosen else (255, 210, 0)
        left, top, right, bottom = f.box
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        fs = max(12, min(round(0.35 * (right - left)), round(side / 12)))
        try:
            font = ImageFont.load_default(size=fs)
        except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
            font = ImageFont.load_default()
        label = str(i)
        tl, tt, tr, tb = draw.textbbox((0, 0), label, font=font)
        pad = max(2, fs // 6)
        lw, lh = tr - tl + 2 * pad, tb - tt + 2 * pad
        x, y = min(max(left, 0), max(pil.width - lw, 0)), max(0, top - lh)
        draw.rectangle((x, y, x + lw, y + lh), fill=colour)
        draw.text((x + pad - tl, y + pad - tt), label, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1).contiguous()


def face_gallery(image: torch.Tensor, faces: list[Face], size: int = 128,
                 margin: float = 0.3) -> list[tuple[int, np.ndarray, tuple[int, int, int, int], float]]:
    """Thumbnails for choosing a face (e.g. a gallery in the web studio).

    Args:
        image: the photo, ``uint8 [3, H, W]``.
        faces: its faces as :meth:`DlibLandmarker.detect` returns them (left to right).
        size: thumbnail side in pixels.
        margin: context around each box, as a fraction of the box's side on each side.

    Returns:
        ``[(number, thumbnail uint8 [size, size, 3] (HWC, as image widgets take it), box, score)]`` in
        the order of ``faces``; ``number`` is what ``face_index`` / ``--face N`` expects. Parts of the
        square that leave the photo are black.
    """
    if size < 8:
        raise ConfigError(f"thumbnail size must be >= 8, got {size}")
    pil = Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).convert("RGB")
    out = []
    for i, f in enumerate(faces):
        left, top, right, bottom = f.box
        cx, cy = (left + right) / 2, (top + bottom) / 2
        half = max(right - left, bottom - top, 1) * (0.5 + margin)
        crop = pil.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
        out.append((i, np.array(crop.resize((size, size), Image.LANCZOS)), tuple(f.box), float(f.score)))
    return out


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
