"""Vector sketches: sketch-rnn ``.npz`` and Quick, Draw! ``.ndjson`` -> stroke-3 -> stroke-5.

Formats (Ha & Eck 2017, section 3.1):

- **stroke-3**: ``float32 [L, 3]`` rows ``(dx, dy, pen_lifted)``: the offset from the previous
  point and whether the pen leaves the paper *after* this point. The last row of a sketch has
  ``pen_lifted = 1``.
- **stroke-5**: ``float32 [Nmax, 5]`` rows ``(dx, dy, p1, p2, p3)`` with one-hot pen states
  p1 = pen down, p2 = pen up, p3 = end of sketch; steps after the ``L`` real points are padding
  ``(0, 0, 0, 0, 1)``. Batches are ``float32 [N, Nmax, 5]`` plus ``int64 [N]`` lengths; the
  model prepends the start token ``S0 = (0, 0, 1, 0, 0)`` itself.

Loading rules:

- sketch-rnn ``.npz`` files hold object arrays (one array per sketch), i.e. pickled data. They
  are read only when the archive has the known layout (keys ``train``/``valid``/``test``, each a
  1-D object array) and the pickle stream is decoded by an unpickler that can build nothing but
  numpy arrays and dtypes, so a crafted file cannot run code.
- Quick, Draw! ``.ndjson`` (optionally ``.gz``): one JSON object per line with a ``drawing`` list
  of strokes ``[xs, ys]`` (simplified) or ``[xs, ys, ts]`` (raw, with times in ms). Raw drawings
  are shifted to start at 0 and scaled uniformly so the longer side spans 255, like the
  simplified set. Each stroke is simplified with Ramer-Douglas-Peucker (``epsilon`` 2.0 pixels)
  and the points are turned into offsets. ndjson files have no splits: a seeded permutation
  assigns ``split_fractions`` of the drawings to train/valid/test.
- Nmax defaults to the longest sketch of the file (all splits, as the reference), so nothing is
  dropped; with a smaller ``max_seq_len`` longer sketches are dropped and counted; offsets are clipped to
  +-1000 (the reference loader's guard against stray points); the normalising scale factor is
  the standard deviation of all training offsets (x and y pooled) and is applied to every split.
- Training-only augmentation: a random per-axis scale in ``1 +- random_scale`` and random
  dropping of interior pen-down points with probability ``drop_prob`` (``mode`` chooses which
  neighbour absorbs a dropped offset, see :func:`drop_points`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentstudio.data.base import DATASETS
from latentstudio.errors import DataError
from latentstudio.io import safe_pickle

NMAX = 250
SPLITS = ("train", "valid", "test")
OFFSET_LIMIT = 1000.0
START_TOKEN = (0.0, 0.0, 1.0, 0.0, 0.0)
PAD_TOKEN = (0.0, 0.0, 0.0, 0.0, 1.0)
NPZ_SUFFIXES = (".npz",)
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


# ----------------------------------------------------------------------------- validation


def validate_stroke3(sketch, where: str = "sketch") -> np.ndarray:
    """Check one stroke-3 sketch and return it as ``float32 [L, 3]``.

    Raises:
        DataError: naming ``where``, if the sketch is not ``[L, 3]`` numbers, is empty, holds
            NaN/inf offsets, or has pen states other than 0/1.
    """
    try:
        arr = np.asarray(sketch, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: not a numeric [L, 3] stroke-3 array") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DataError(f"{where}: expected a stroke-3 array of shape [L, 3], got shape {list(arr.shape)}")
    if arr.shape[0] == 0:
        raise DataError(f"{where}: empty sketch (0 points); remove it from the file")
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"{where}: NaN or infinite value at point {bad}; offsets must be finite numbers")
    pen = arr[:, 2]
    if not np.isin(pen, (0.0, 1.0)).all():
        raise DataError(f"{where}: pen_lifted (third column) must be 0 or 1, found {sorted(set(pen.tolist()))[:5]}")
    return arr


# ----------------------------------------------------------------------------- stroke-3 <-> stroke-5


def stroke3_to_stroke5(sketch: np.ndarray, max_len: int = NMAX) -> np.ndarray:
    """``float [L, 3]`` stroke-3 -> ``float32 [max_len, 5]`` stroke-5 padded with ``(0, 0, 0, 0, 1)``.

    Raises:
        DataError: ``L > max_len``.
    """
    s = np.asarray(sketch, dtype=np.float32)
    n = s.shape[0]
    if n > max_len:
        raise DataError(f"sketch has {n} points, more than max_seq_len={max_len}")
    out = np.zeros((max_len, 5), dtype=np.float32)
    out[:n, :2] = s[:, :2]
    out[:n, 3] = s[:, 2]
    out[:n, 2] = 1.0 - s[:, 2]
    out[n:, 4] = 1.0
    return out


def stroke5_to_stroke3(sketch5, length: int | None = None) -> np.ndarray:
    """``[T, 5]`` stroke-5 (array or tensor) -> ``float32 [L, 3]`` stroke-3.

    The sketch ends at ``length`` if given, else before the first end-of-sketch step (p3 = 1,
    or the largest pen logit/probability being p3). The last point gets ``pen_lifted = 1``.
    """
    s = sketch5.detach().cpu().numpy() if isinstance(sketch5, torch.Tensor) else np.asarray(sketch5)
    s = s.astype(np.float32)
    if length is None:
        ends = np.nonzero(np.argmax(s[:, 2:5], axis=1) == 2)[0]
        length = int(ends[0]) if len(ends) else s.shape[0]
    out = np.zeros((length, 3), dtype=np.float32)
    out[:, :2] = s[:length, :2]
    out[:, 2] = (np.argmax(s[:length, 2:5], axis=1) != 0).astype(np.float32)
    if length:
        out[-1, 2] = 1.0
    return out


def pad_batch(sketches: Sequence[np.ndarray], max_len: int = NMAX) -> tuple[torch.Tensor, torch.Tensor]:
    """Stroke-3 sketches -> ``(float32 [N, max_len, 5] stroke-5, int64 [N] lengths)``."""
    x = np.zeros((len(sketches), max_len, 5), dtype=np.float32)
    lengths = np.zeros(len(sketches), dtype=np.int64)
    for k, s in enumerate(sketches):
        x[k] = stroke3_to_stroke5(s, max_len)
        lengths[k] = len(s)
    return torch.from_numpy(x), torch.from_numpy(lengths)


def to_absolute(sketch: np.ndarray) -> list[np.ndarray]:
    """Stroke-3 -> list of polylines, each ``float [K, 2]`` absolute (x, y), one per pen-down stroke."""
    s = np.asarray(sketch, dtype=np.float64)
    xy = np.cumsum(s[:, :2], axis=0)
    lines, start = [], 0
    for k in np.nonzero(s[:, 2] > 0.5)[0].tolist() + [len(s) - 1]:
        if k >= start:
            lines.append(xy[start : k + 1])
        start = k + 1
    return [ln for ln in lines if len(ln)]


def polylines_to_stroke3(lines: Sequence[np.ndarray]) -> np.ndarray:
    """Absolute polylines ``[K_i, 2]`` -> stroke-3 ``float32 [sum K_i, 3]`` (first offset from (0, 0))."""
    pts, pen = [], []
    for ln in lines:
        ln = np.asarray(ln, dtype=np.float64).reshape(-1, 2)
        if len(ln) == 0:
            continue
        pts.append(ln)
        p = np.zeros(len(ln))
        p[-1] = 1.0
        pen.append(p)
    if not pts:
        return np.zeros((0, 3), dtype=np.float32)
    xy = np.concatenate(pts)
    d = np.diff(xy, axis=0, prepend=np.zeros((1, 2)))
    return np.column_stack([d, np.concatenate(pen)]).astype(np.float32)


# ----------------------------------------------------------------------------- simplification


def rdp(points, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline.

    Keeps the end points and, recursively, every point farther than ``epsilon`` from the chord of
    its segment (perpendicular distance; distance to the end point when the chord is a point).

    Args:
        points: ``[K, 2]`` absolute coordinates.
        epsilon: tolerance in the points' units (pixels); ``<= 0`` keeps every point.

    Returns:
        ``float64 [K', 2]`` with ``K' <= K``, a subsequence of ``points``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if epsilon <= 0 or len(pts) < 3:
        return pts.copy()
    keep = np.zeros(len(pts), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = pts[b] - pts[a]
        rel = pts[a + 1 : b] - pts[a]
        norm = float(np.hypot(*seg))
        if norm == 0.0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            m = a + 1 + k
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return pts[keep]


def drawing_to_stroke3(drawing, epsilon: float = 2.0, where: str = "drawing") -> np.ndarray:
    """A Quick, Draw! ``drawing`` (list of ``[xs, ys]`` or raw ``[xs, ys, ts]``) -> stroke-3.

    Raw drawings (three lists per stroke) are shifted to the origin and scaled uniformly so that
    the longer side spans 255 units; simplified drawings are already in 0..255. Each stroke is
    then simplified with :func:`rdp` (``epsilon``), and the sketch is translated so that its
    first point is the origin (its first offset is ``(0, 0)``).

    Raises:
        DataError: malformed strokes (naming ``where``) or an empty drawing.
    """
    if not isinstance(drawing, list) or not drawing:
        raise DataError(f"{where}: 'drawing' must be a non-empty list of strokes [[x...], [y...]]")
    lines, raw = [], False
    for k, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise DataError(f"{where}: stroke {k} must be [xs, ys] or [xs, ys, ts]")
        raw = raw or len(stroke) == 3
        try:
            xs = np.asarray(stroke[0], dtype=np.float64)
            ys = np.asarray(stroke[1], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{where}: stroke {k} has non-numeric coordinates") from None
        if xs.ndim != 1 or xs.shape != ys.shape:
            raise DataError(f"{where}: stroke {k} has {xs.size} x and {ys.size} y coordinates")
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise DataError(f"{where}: stroke {k} has NaN or infinite coordinates")
        if xs.size:
            lines.append(np.column_stack([xs, ys]))
    if not lines:
        raise DataError(f"{where}: empty drawing (no points)")
    if raw:
        allp = np.concatenate(lines)
        lo = allp.min(axis=0)
        span = float((allp.max(axis=0) - lo).max()) or 1.0
        lines = [(ln - lo) * (255.0 / span) for ln in lines]
    start = lines[0][0].copy()  # the sketch starts at the origin: its first offset is (0, 0)
    return polylines_to_stroke3([rdp(ln, epsilon) - start for ln in lines])


# ----------------------------------------------------------------------------- file readers


# What the object ``.npy`` members of a sketch-rnn archive hold: numpy arrays and dtypes, nothing else.
_NPY_GLOBALS = safe_pickle.numpy_globals(scalars=False, buffers=False)


def _refused_npy_global(module: str, name: str) -> str:
    return f"refusing to load {module}.{name}: only numpy arrays are allowed"


def _read_npy_member(zf: zipfile.ZipFile, member: str, where: str) -> np.ndarray:
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        data = f.read()
    if dtype != np.dtype(object):
        if dtype.kind not in "iuf":
            raise DataError(f"{where}: member {member} has dtype {dtype}, expected an object array of sketches")
        arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return arr
    if len(shape) != 1:
        raise DataError(f"{where}: member {member} is an object array of shape {list(shape)}, expected 1-D")
    try:
        arr = safe_pickle.load(data, _NPY_GLOBALS, source=f"{where}: member {member}", error=pickle.UnpicklingError,
                               refusal=_refused_npy_global, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{where}: member {member} is not a sketch-rnn object array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise DataError(f"{where}: member {member} did not decode to an array of shape {list(shape)}")
    return arr


def read_npz(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Read a sketch-rnn ``.npz``: ``{split: [float32 [L, 3], ...]}`` for the splits present.

    The archive must hold only ``train``/``valid``/``test`` members, each a 1-D object array of
    ``[L, 3]`` arrays (int16 or float) or a 3-D numeric array ``[N, L, 3]``. Object arrays are
    decoded without executing code (see the module docstring).

    Raises:
        DataError: missing file, not an npz, unknown or missing keys, or a malformed sketch
            (the member and index are named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"stroke file {path} does not exist")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path} is not an .npz archive (expected sketch-rnn's train/valid/test arrays)") from None
    with zf:
        names = [n.removesuffix(".npy") for n in zf.namelist()]
        unknown = sorted(set(names) - set(SPLITS))
        if unknown or not names:
            raise DataError(
                f"{path}: keys {sorted(names)} are not the sketch-rnn layout; expected only "
                f"{list(SPLITS)} (object arrays of stroke-3 [L, 3] sketches); unknown: {unknown}"
            )
        if "train" not in names:
            raise DataError(f"{path}: no 'train' key; found {sorted(names)}")
        out: dict[str, list[np.ndarray]] = {}
        for split in SPLITS:
            if split not in names:
                continue
            arr = _read_npy_member(zf, f"{split}.npy", str(path))
            items = list(arr) if arr.dtype == object or arr.ndim == 3 else None
            if items is None:
                raise DataError(f"{path}: member {split} has shape {list(arr.shape)}, expected sketches")
            out[split] = [validate_stroke3(s, f"{path}:{split}[{k}]") for k, s in enumerate(items)]
    return out


def read_ndjson(
    path: str | Path,
    *,
    epsilon: float = 2.0,
    words: Iterable[str] | None = None,
    recognized_only: bool = False,
    limit: int | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """Read Quick, Draw! ndjson (simplified or raw; ``.gz`` allowed) -> ``(stroke-3 list, words)``.

    Args:
        epsilon: RDP tolerance in pixels of the 0..255 canvas (0 keeps every point).
        words: keep only drawings of these classes (``word`` field).
        recognized_only: keep only drawings the game recognised.
        limit: stop after this many kept drawings.

    Raises:
        DataError: missing file, a line that is not JSON or lacks ``drawing`` (file and line
            number named), or a malformed drawing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"stroke file {path} does not exist")
    wanted = set(words) if words else None
    opener = gzip.open if path.suffix == ".gz" else open
    sketches, labels = [], []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg}); each line must be one Quick, Draw! object") from None
            if not isinstance(obj, dict) or "drawing" not in obj:
                raise DataError(f"{where}: JSON object without a 'drawing' field")
            word = str(obj.get("word", ""))
            if wanted is not None and word not in wanted:
                continue
            if recognized_only and not obj.get("recognized", True):
                continue
            sketches.append(drawing_to_stroke3(obj["drawing"], epsilon, where))
            labels.append(word)
            if limit is not None and len(sketches) >= limit:
                break
    if not sketches:
        raise DataError(f"{path}: no drawings" + (f" of words {sorted(wanted)}" if wanted else ""))
    return sketches, labels


# ----------------------------------------------------------------------------- datasets


def normalizing_scale_factor(sketches: Sequence[np.ndarray]) -> float:
    """Standard deviation of all offsets (dx and dy pooled) of ``sketches``; the divisor of every split.

    Raises:
        DataError: no sketches, or all offsets zero.
    """
    if not sketches:
        raise DataError("cannot compute a scale factor from an empty training split")
    d = np.concatenate([np.asarray(s, dtype=np.float64)[:, :2].reshape(-1) for s in sketches])
    sd = float(np.std(d))
    if not np.isfinite(sd) or sd <= 0:
        raise DataError("all training offsets are zero; the sketches have no extent")
    return sd


def _fingerprint(sketches: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for s in sketches:
        h.update(np.ascontiguousarray(s, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


@dataclass
class StrokeSet:
    """One split of sketches in stroke-3.

    Attributes:
        sketches: ``float32 [L_i, 3]`` arrays (normalised once :meth:`scaled` was applied).
        name: dataset name (the file stem).
        split: ``train``, ``valid`` or ``test``.
        source: where they came from.
        scale_factor: the factor the offsets were divided by (1.0 = raw units).
        labels: per-sketch class words (ndjson) or empty.
    """

    sketches: list[np.ndarray]
    name: str = "sketches"
    split: str = "train"
    source: str = ""
    scale_factor: float = 1.0
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sketches)

    def lengths(self) -> np.ndarray:
        """``int64 [N]`` points per sketch."""
        return np.array([len(s) for s in self.sketches], dtype=np.int64)

    def scaled(self, factor: float) -> StrokeSet:
        """Offsets divided by ``factor`` (pen states kept)."""
        out = []
        for s in self.sketches:
            t = s.copy()
            t[:, :2] /= factor
            out.append(t)
        return StrokeSet(out, self.name, self.split, self.source, self.scale_factor * factor, list(self.labels))

    def subset(self, indices: Sequence[int]) -> StrokeSet:
        """The sketches at ``indices`` (in that order)."""
        for i in indices:
            if not 0 <= i < len(self):
                raise DataError(f"index {i} out of range for the {self.split} split of {self.name} ({len(self)} sketches)")
        labels = [self.labels[i] for i in indices] if self.labels else []
        return StrokeSet([self.sketches[i] for i in indices], self.name, self.split, self.source,
                         self.scale_factor, labels)

    def to_stroke5(self, max_len: int = NMAX) -> tuple[torch.Tensor, torch.Tensor]:
        """``(float32 [N, max_len, 5], int64 [N] lengths)``; see :func:`pad_batch`."""
        return pad_batch(self.sketches, max_len)

    def fingerprint(self) -> str:
        """sha256 prefix of the sketches' float32 bytes."""
        return _fingerprint(self.sketches)


@dataclass
class StrokeSplits:
    """train/valid/test :class:`StrokeSet` s normalised by the training split's scale factor.

    Attributes:
        scale_factor: std of the raw training offsets; divide raw offsets by it (the model saves it).
        max_seq_len: the Nmax the splits were cut at (the file's longest sketch when none was given).
        dropped: per split, how many sketches were longer than ``max_seq_len`` and dropped.
        longest: points of the file's longest sketch over all splits (the reference's Nmax).
        total: per split, sketches in the file before dropping.
    """

    train: StrokeSet
    valid: StrokeSet
    test: StrokeSet
    scale_factor: float
    max_seq_len: int
    dropped: dict[str, int]
    source: str
    longest: int = 0
    total: dict[str, int] = field(default_factory=dict)

    def dropped_share(self) -> float:
        """Dropped sketches over all sketches of the file (all splits), in [0, 1]."""
        n = sum(self.total.values())
        return sum(self.dropped.values()) / n if n else 0.0

    def split(self, name: str) -> StrokeSet:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; use one of {list(SPLITS)}")
        return getattr(self, name)


def _split_permutation(n: int, fractions: Sequence[float], seed: int) -> dict[str, list[int]]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not 0 < sum(fractions) <= 1.0 + 1e-9:
        raise DataError(f"split_fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    perm = np.random.default_rng(seed).permutation(n).tolist()
    n_valid = round(fractions[1] * n)
    n_test = round(fractions[2] * n)
    n_train = max(1, n - n_valid - n_test)
    return {"train": perm[:n_train], "valid": perm[n_train : n_train + n_valid],
            "test": perm[n_train + n_valid : n_train + n_valid + n_test]}


def stroke_format(path: str | Path) -> str:
    """``"npz"`` or ``"ndjson"`` from the file name.

    Raises:
        DataError: any other suffix.
    """
    name = Path(path).name.lower()
    if name.endswith(NPZ_SUFFIXES):
        return "npz"
    if name.endswith(NDJSON_SUFFIXES):
        return "ndjson"
    raise DataError(f"{path}: unknown stroke file type; use a sketch-rnn .npz or a Quick, Draw! .ndjson(.gz)")


def load_strokes(
    path: str | Path,
    *,
    max_seq_len: int | None = None,
    epsilon: float = 2.0,
    words: Iterable[str] | None = None,
    split_fractions: Sequence[float] = (0.9, 0.05, 0.05),
    seed: int = 0,
    limit: int | None = None,
    scale_factor: float | None = None,
) -> StrokeSplits:
    """Load a stroke file as normalised train/valid/test splits.

    Args:
        path: sketch-rnn ``.npz`` or Quick, Draw! ``.ndjson`` / ``.ndjson.gz``.
        max_seq_len: Nmax; longer sketches are dropped (counted in ``dropped``). None: the file's
            longest sketch over all splits (nothing is dropped).
        epsilon: RDP tolerance for ndjson drawings (pixels).
        words: ndjson only: keep these classes.
        split_fractions: ndjson only: train/valid/test fractions of a seeded permutation.
        seed: ndjson split seed.
        limit: keep at most this many sketches per split (after dropping long ones).
        scale_factor: use this factor (e.g. the one saved with a model) instead of the training
            split's offset standard deviation.

    Raises:
        DataError: unreadable file or sketches, or an empty training split.
    """
    path = Path(path).expanduser()
    fmt = stroke_format(path)
    if fmt == "npz":
        raw = read_npz(path)
        labels = {k: [] for k in raw}
    else:
        sk, lab = read_ndjson(path, epsilon=epsilon, words=words)
        idx = _split_permutation(len(sk), split_fractions, seed)
        raw = {k: [sk[i] for i in v] for k, v in idx.items()}
        labels = {k: [lab[i] for i in v] for k, v in idx.items()}
    name = path.name.split(".")[0]
    longest = max((len(s) for items in raw.values() for s in items), default=0)
    max_seq_len = longest if max_seq_len is None else max_seq_len
    sets, dropped = {}, {}
    for split in SPLITS:
        items = raw.get(split, [])
        labs = labels.get(split, [])
        keep = [k for k, s in enumerate(items) if len(s) <= max_seq_len]
        dropped[split] = len(items) - len(keep)
        if limit is not None:
            keep = keep[:limit]
        sketches = []
        for k in keep:
            s = items[k].copy()
            s[:, :2] = np.clip(s[:, :2], -OFFSET_LIMIT, OFFSET_LIMIT)
            sketches.append(s)
        sets[split] = StrokeSet(sketches, name, split, str(path), 1.0, [labs[k] for k in keep] if labs else [])
    if not sets["train"].sketches:
        raise DataError(f"{path}: no training sketches of at most {max_seq_len} points")
    factor = scale_factor if scale_factor is not None else normalizing_scale_factor(sets["train"].sketches)
    if not factor > 0:
        raise DataError(f"scale_factor must be > 0, got {factor}")
    return StrokeSplits(
        train=sets["train"].scaled(factor), valid=sets["valid"].scaled(factor), test=sets["test"].scaled(factor),
        scale_factor=float(factor), max_seq_len=max_seq_len, dropped=dropped, source=str(path),
        longest=longest, total={k: len(raw.get(k, [])) for k in SPLITS},
    )


#: Name of the stroke-file dataset in :data:`~latentstudio.data.base.DATASETS`.
STROKES_DATASET = "strokes"


def is_stroke_file(path: str | Path) -> bool:
    """Whether ``path`` has a stroke-file suffix (``.npz``, ``.ndjson``, ``.ndjson.gz``, ``.jsonl(.gz)``)."""
    name = Path(str(path)).name.lower()
    return name.endswith(NPZ_SUFFIXES + NDJSON_SUFFIXES)


@DATASETS.register(STROKES_DATASET)
def load_stroke_split(
    root: Path,
    split: str,
    *,
    download: bool = False,
    strict: bool = False,
    path: str = "",
    max_seq_len: int | None = None,
    epsilon: float = 2.0,
    words: Sequence[str] = (),
    split_fractions: Sequence[float] = (0.9, 0.05, 0.05),
    split_seed: int = 0,
    scale_factor: float | None = None,
    limit: int | None = None,
) -> StrokeSet:
    """One split of a stroke file (the ``strokes`` dataset), normalised as :func:`load_strokes` does.

    Options (``DataSpec.options``): ``path`` (a sketch-rnn ``.npz`` or Quick, Draw! ``.ndjson(.gz)``; a
    relative path is tried against ``root`` when it does not exist as given), ``max_seq_len``,
    ``epsilon``, ``words`` (ndjson classes kept; empty: all), ``split_fractions`` / ``split_seed`` (ndjson
    train/valid/test permutation) and ``scale_factor`` (e.g. the one saved with a model; default: the
    training split's offset standard deviation).

    Returns:
        :class:`StrokeSet` of ``split`` (``train``, ``valid`` or ``test``); sketches ``float32 [L_i, 3]``.

    Raises:
        DataError: no ``path``, an unknown split, or an unreadable file.
    """
    if not path:
        raise DataError("dataset 'strokes' needs option path=<file.npz|file.ndjson> (or give the file as --data)")
    if split not in SPLITS:
        raise DataError(f"dataset 'strokes': unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    file = Path(str(path)).expanduser()
    if not file.is_absolute() and not file.exists() and (Path(root) / file).exists():
        file = Path(root) / file
    splits = load_strokes(file, max_seq_len=None if max_seq_len is None else int(max_seq_len), epsilon=float(epsilon), words=list(words) or None,
                          split_fractions=tuple(float(f) for f in split_fractions), seed=int(split_seed),
                          limit=limit, scale_factor=None if scale_factor is None else float(scale_factor))
    return splits.split(split)


#: The loader returns :class:`StrokeSet` s, not images (``latentstudio.data.base.dataset_kind``).
load_stroke_split.data_kind = "strokes"  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- augmentation


def random_scale(sketch: np.ndarray, rng: np.random.Generator, factor: float = 0.15) -> np.ndarray:
    """Multiply dx and dy by independent factors drawn uniformly from ``[1 - factor, 1 + factor]``."""
    out = np.array(sketch, dtype=np.float32, copy=True)
    sx, sy = rng.uniform(1.0 - factor, 1.0 + factor, size=2)
    out[:, 0] *= sx
    out[:, 1] *= sy
    return out


def drop_points(sketch: np.ndarray, rng: np.random.Generator, prob: float = 0.1, mode: str = "paper") -> np.ndarray:
    """Randomly remove interior points of pen-down strokes.

    A point may be removed when it and its predecessor are pen-down points and it is at least the
    third such point of its stroke (so strokes keep their first points and every pen lift); each
    eligible point is removed with probability ``prob``. Where its offset goes depends on ``mode``:

    - ``paper``: the next kept point's offset absorbs it, so the absolute positions of all kept
      points stay where they were;
    - ``reference``: the previous kept point's offset absorbs it (the reference loader's rule), so
      that point moves onto the removed point's position and the later points stay.

    Args:
        sketch: stroke-3 ``[L, 3]``.
        rng: source of the per-point draws (one uniform number per point).
        prob: removal probability of an eligible point.
        mode: ``paper`` or ``reference``.

    Returns:
        stroke-3 ``float32 [L', 3]``, ``L' <= L``.

    Raises:
        ValueError: an unknown ``mode``.
    """
    if mode not in ("paper", "reference"):
        raise ValueError(f"mode must be 'paper' or 'reference', got {mode!r}")
    s = np.asarray(sketch, dtype=np.float32)
    if prob <= 0 or len(s) < 4:
        return s.copy()
    down = s[:, 2] == 0
    both = down.copy()
    both[1:] &= down[:-1]
    both[0] = False
    # length of the current run of consecutive "both pen-down" points
    run = np.zeros(len(s), dtype=np.int64)
    for k in range(1, len(s)):
        run[k] = run[k - 1] + 1 if both[k] else 0
    eligible = both & (run > 2)
    drop = eligible & (rng.random(len(s)) < prob)
    if not drop.any():
        return s.copy()
    if mode == "reference":
        owner = np.cumsum(~drop) - 1  # each point's offset goes to the last kept point at or before it
        out = np.zeros((int((~drop).sum()), 3), dtype=np.float64)
        np.add.at(out[:, 0], owner, s[:, 0].astype(np.float64))
        np.add.at(out[:, 1], owner, s[:, 1].astype(np.float64))
        out[:, 2] = s[~drop, 2]
        return out.astype(np.float32)
    xy = np.cumsum(s[:, :2].astype(np.float64), axis=0)[~drop]
    out = np.empty((len(xy), 3), dtype=np.float32)
    out[:, :2] = np.diff(xy, axis=0, prepend=np.zeros((1, 2)))
    out[:, 2] = s[~drop, 2]
    return out


def augment(sketch: np.ndarray, rng: np.random.Generator, scale: float = 0.15, drop_prob: float = 0.1,
            mode: str = "paper") -> np.ndarray:
    """Training augmentation: :func:`random_scale` then :func:`drop_points` (``mode`` as there)."""
    out = random_scale(sketch, rng, scale) if scale > 0 else np.array(sketch, dtype=np.float32, copy=True)
    return drop_points(out, rng, drop_prob, mode) if drop_prob > 0 else out


# ----------------------------------------------------------------------------- tiny synthetic set


def synthetic_sketches(n: int, seed: int = 0, *, min_points: int = 8, max_points: int = 40) -> list[np.ndarray]:
    """A small set of simple drawings (polygons, circles, zig-zags; one or two strokes) in pixels.

    For tests and demos: shapes are random in size, position and rotation but clearly structured,
    so a model can lower its loss on them in a few hundred steps. Returns stroke-3 ``float32``
    arrays of ``min_points..max_points`` points (shapes have at most 24 points).
    """
    if max_points < 12 or min_points > max_points:
        raise ValueError(f"need 12 <= max_points and min_points <= max_points, got {min_points}..{max_points}")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        kind = rng.integers(0, 3)
        r = rng.uniform(20, 60)
        rot = rng.uniform(0, 2 * np.pi)
        if kind == 0:  # polygon
            k = int(rng.integers(3, 7))
            ang = rot + np.linspace(0, 2 * np.pi, k + 1)
            line = np.column_stack([r * np.cos(ang), r * np.sin(ang)])
        elif kind == 1:  # circle
            m = int(rng.integers(10, 20))
            ang = rot + np.linspace(0, 2 * np.pi, m + 1)
            line = np.column_stack([r * np.cos(ang), r * 0.8 * np.sin(ang)])
        else:  # zig-zag
            m = int(rng.integers(4, 10))
            xs = np.linspace(-r, r, m)
            ys = np.where(np.arange(m) % 2 == 0, -r / 3, r / 3)
            line = np.column_stack([xs, ys])
        lines = [line]
        if rng.random() < 0.5:  # a second stroke: a short bar below
            y = r * 1.2
            lines.append(np.array([[-r / 2, y], [0.0, y], [r / 2, y]]))
        lines = [ln + rng.normal(0, 1.0, ln.shape) for ln in lines]
        s3 = polylines_to_stroke3(lines)
        if min_points <= len(s3) <= max_points:
            out.append(s3)
    return out
