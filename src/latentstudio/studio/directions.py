"""Latent directions: loading, discovering, learning, and a library that stores them.

A :class:`Direction` is a vector ``float32 [L, D]`` (or ``[D]``, broadcast to every row) plus the
rows it acts on. Editing adds ``magnitude * vector`` to the chosen rows of a latent
(:mod:`latentstudio.studio.editing`).

Sources:

* ``npy``: vectors from ``.npy`` files, ``[num_ws, 512]`` or ``[512]`` (the public StyleGAN2 FFHQ
  directions have shape (18, 512)); :func:`load_npy_directions`.
* ``ganspace``: principal components of sampled latents (Harkonen et al., "GANSpace", NeurIPS
  2020): PCA of W (one row of each latent), each component scaled to one standard deviation of
  the samples along it; :func:`ganspace`.
* ``sefa``: closed-form factorisation (Shen & Zhou, "Closed-Form Factorization of Latent Semantics
  in GANs", CVPR 2021): the top eigenvectors of ``A^T A`` where ``A`` stacks the (row-normalised)
  weights of the affine layers that read the latent; :func:`sefa`.
* ``interfacegan``: the normal of a linear boundary separating latents with and without an
  attribute (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing", CVPR
  2020): a linear SVM or logistic regression (scikit-learn) on the raw latents; the unit normal is
  scaled to one standard deviation of the latents' projections on it; :func:`learn_direction`.

Conditional editing (InterFaceGAN, section 2.2): :func:`condition` removes from a direction its
component along others, so that moving along it leaves their attributes' scores unchanged to
first order.

A :class:`DirectionLibrary` is saved as one ``.npz`` (vectors under ``vec/<name>`` plus a JSON
``index`` with names, sources, rows, slider ranges and notes), loaded without pickle.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError
from latentstudio.io.atomic import atomic_path

__all__ = [
    "Direction",
    "DirectionLibrary",
    "condition",
    "ganspace",
    "learn_direction",
    "load_npy_directions",
    "sefa",
]

_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


@dataclass
class Direction:
    """A named latent direction.

    Attributes:
        name: letters, digits and ``_ . + -`` (used as slider label and file key).
        vector: ``float32 [L, D]`` or ``[D]``.
        source: ``npy``, ``ganspace``, ``sefa``, ``interfacegan``, ``conditional`` or free text.
        layers: rows the direction acts on (None: all rows).
        range: slider range ``(low, high)`` of the magnitude.
        note: free text (what the direction was learned from, its accuracy ...).
        meta: JSON-able details (classifier accuracy, variance explained ...).
    """

    name: str
    vector: torch.Tensor
    source: str = "npy"
    layers: list[int] | None = None
    range: tuple[float, float] = (-3.0, 3.0)
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"direction name {self.name!r}: use 1-64 letters, digits, '_', '.', '+', '-'")
        v = torch.as_tensor(self.vector, dtype=torch.float32)
        if v.ndim not in (1, 2) or v.numel() == 0:
            raise ShapeError(f"direction {self.name!r}: vector must be [D] or [L, D], got {list(v.shape)}")
        if not bool(torch.isfinite(v).all()):
            raise ShapeError(f"direction {self.name!r}: vector has NaN or inf values")
        self.vector = v
        if self.layers is not None:
            self.layers = sorted({int(i) for i in self.layers})
        lo, hi = (float(x) for x in self.range)
        if not lo < hi:
            raise ConfigError(f"direction {self.name!r}: range must be (low, high) with low < high, got {self.range}")
        self.range = (lo, hi)

    @property
    def latent_dim(self) -> int:
        return int(self.vector.shape[-1])

    def full(self, num_layers: int) -> torch.Tensor:
        """The vector as ``[num_layers, D]`` with rows outside :attr:`layers` zeroed.

        Raises:
            ShapeError: an ``[L, D]`` vector with another L, or a layer index >= num_layers.
        """
        v = self.vector
        if v.ndim == 1:
            v = v[None].expand(num_layers, -1)
        elif v.shape[0] != num_layers:
            if v.shape[0] > 1 and bool((v == v[:1]).all()):  # a W direction stored per row
                v = v[:1].expand(num_layers, -1)
            else:
                raise ShapeError(f"direction {self.name!r} has {v.shape[0]} rows, the model has {num_layers}")
        v = v.clone()
        if self.layers is not None:
            bad = [i for i in self.layers if not 0 <= i < num_layers]
            if bad:
                raise ShapeError(f"direction {self.name!r}: layers {bad} outside 0..{num_layers - 1}")
            mask = torch.zeros(num_layers, dtype=torch.bool)
            mask[self.layers] = True
            v[~mask] = 0
        return v

    def flat(self) -> torch.Tensor:
        """One row ``[D]`` (the first row of an ``[L, D]`` vector whose rows are equal, else the mean)."""
        v = self.vector
        return v if v.ndim == 1 else v.mean(0)


class DirectionLibrary:
    """An ordered collection of :class:`Direction` objects for one latent shape.

    Args:
        directions: initial directions (names must be unique).
        latent_dim: D shared by all vectors (checked on add; None: taken from the first one).
        info: JSON-able provenance (model path, dataset ...).
    """

    FORMAT = 1

    def __init__(self, directions: list[Direction] | None = None, latent_dim: int | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self._dirs: dict[str, Direction] = {}
        self.latent_dim = latent_dim
        self.info = dict(info or {})
        for d in directions or []:
            self.add(d)

    def add(self, direction: Direction, *, replace: bool = False) -> Direction:
        """Add ``direction``.

        Raises:
            ConfigError: the name exists and ``replace`` is False.
            ShapeError: its width differs from the library's.
        """
        if direction.name in self._dirs and not replace:
            raise ConfigError(f"direction {direction.name!r} is already in the library (pass replace=True)")
        if self.latent_dim is None:
            self.latent_dim = direction.latent_dim
        elif direction.latent_dim != self.latent_dim:
            raise ShapeError(f"direction {direction.name!r} has width {direction.latent_dim}, "
                             f"the library holds width {self.latent_dim}")
        self._dirs[direction.name] = direction
        return direction

    def __getitem__(self, name: str) -> Direction:
        try:
            return self._dirs[name]
        except KeyError:
            raise LatentStudioError(f"no direction {name!r}; the library has: {', '.join(self._dirs) or '(none)'}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._dirs

    def __iter__(self):
        return iter(self._dirs.values())

    def __len__(self) -> int:
        return len(self._dirs)

    def names(self) -> list[str]:
        return list(self._dirs)

    def merge(self, other: DirectionLibrary, *, replace: bool = False) -> DirectionLibrary:
        for d in other:
            self.add(d, replace=replace)
        self.info.update({k: v for k, v in other.info.items() if k not in self.info})
        return self

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the library as one ``.npz`` (atomic).

        Raises:
            RunExistsError: ``path`` exists and ``overwrite`` is False.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise LatentStudioError(f"{path}: a direction library is saved as a .npz file")
        index = {
            "format": self.FORMAT,
            "latent_dim": self.latent_dim,
            "info": self.info,
            "directions": [
                {k: v for k, v in asdict(d).items() if k != "vector"} | {"range": list(d.range)} for d in self
            ],
        }
        arrays = {f"vec/{d.name}": d.vector.numpy() for d in self}
        arrays["index"] = np.array(json.dumps(index, sort_keys=True, default=float))
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DirectionLibrary:
        """Read a library ``.npz`` (or a folder / single file of ``.npy`` directions, see
        :func:`load_npy_directions`).

        Raises:
            LatentStudioError: missing or malformed file (names the problem).
        """
        path = Path(path)
        if path.is_dir() or path.suffix == ".npy":
            return cls(load_npy_directions(path), info={"source": str(path)})
        if not path.is_file():
            raise LatentStudioError(f"direction library {path} does not exist")
        try:
            data = np.load(path, allow_pickle=False)
            with data:
                index = json.loads(str(data["index"]))
                vectors = {k[4:]: data[k] for k in data.files if k.startswith("vec/")}
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise LatentStudioError(f"{path} is not a direction library (.npz with an index): {exc}") from None
        lib = cls(latent_dim=index.get("latent_dim"), info=index.get("info", {}))
        for entry in index.get("directions", []):
            name = entry["name"]
            if name not in vectors:
                raise LatentStudioError(f"{path}: direction {name!r} is listed but has no vector")
            lib.add(Direction(vector=torch.from_numpy(vectors[name].astype(np.float32)), **{
                k: (tuple(v) if k == "range" else v) for k, v in entry.items()}))
        return lib

    def describe(self) -> list[dict[str, Any]]:
        """One row per direction: name, source, shape, layers, range, note."""
        return [{"name": d.name, "source": d.source, "shape": list(d.vector.shape), "layers": d.layers,
                 "range": list(d.range), "note": d.note} for d in self]


def load_npy_directions(path: str | Path, *, range_: tuple[float, float] = (-15.0, 15.0)) -> list[Direction]:
    """Directions from ``.npy`` files: a folder of ``<name>.npy`` or one file.

    Each array must be ``[num_ws, D]`` or ``[D]`` (``[1, num_ws, D]`` is squeezed). The default
    slider range ``(-15, 15)`` is the thesis widget's magnitude for the public StyleGAN2 FFHQ directions.

    Raises:
        LatentStudioError: no ``.npy`` file, an unreadable file or a pickled object array.
        ShapeError: another shape.
    """
    path = Path(path)
    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise LatentStudioError(f"no .npy direction files at {path}")
    out = []
    for f in files:
        try:
            arr = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise LatentStudioError(f"{f} is not a plain .npy array ({exc})") from None
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim not in (1, 2):
            raise ShapeError(f"{f}: a direction must be [num_ws, D] or [D], got {list(arr.shape)}")
        name = re.sub(r"[^A-Za-z0-9_.+-]", "_", f.stem)[:64]
        out.append(Direction(name, torch.from_numpy(arr), source="npy", range=range_, note=f"from {f.name}"))
    return out


def _rows(latents: torch.Tensor) -> torch.Tensor:
    """``[N, L, D]`` or ``[N, D]`` latents as ``[N, D]`` (the mean row; W latents have equal rows)."""
    x = torch.as_tensor(latents, dtype=torch.float32)
    if x.ndim == 3:
        x = x.mean(1)
    if x.ndim != 2:
        raise ShapeError(f"latents: expected [N, D] or [N, L, D], got {list(x.shape)}")
    return x


def ganspace(latents: torch.Tensor, k: int = 10, *, prefix: str = "pc", layers: list[int] | None = None,
             seed: int = 0) -> list[Direction]:
    """GANSpace: the top ``k`` principal components of sampled latents ``[N, L, D]`` / ``[N, D]``.

    Each direction is the unit component times the standard deviation of the samples along it, so
    magnitude 1 moves a latent by one standard deviation; ``meta`` holds the variance ratio.

    Raises:
        ShapeError: fewer than ``k + 1`` samples.
    """
    from sklearn.decomposition import PCA  # lazy: scikit-learn takes ~1 s to import

    x = _rows(latents).double().numpy()
    if x.shape[0] <= k:
        raise ShapeError(f"ganspace: need more than k={k} latents, got {x.shape[0]}")
    pca = PCA(n_components=k, random_state=seed).fit(x)
    out = []
    for i, (comp, var, ratio) in enumerate(zip(pca.components_, pca.explained_variance_,
                                               pca.explained_variance_ratio_, strict=True)):
        vec = torch.from_numpy(comp * np.sqrt(var)).float()
        out.append(Direction(f"{prefix}{i}", vec, source="ganspace", layers=layers, range=(-3.0, 3.0),
                             note=f"principal component {i} ({ratio:.1%} of the variance)",
                             meta={"variance_ratio": float(ratio), "std": float(np.sqrt(var))}))
    return out


def sefa(weights: list[tuple[torch.Tensor, list[int]]], k: int = 10, *, prefix: str = "sefa",
         num_layers: int | None = None, scale: float = 1.0) -> list[Direction]:
    """SeFa: the top ``k`` eigenvectors of ``A^T A`` (unit norm times ``scale``).

    Args:
        weights: ``[(weight [C_i, D], rows_i)]``, the affine (style) layers that read the latent
            and the latent rows they read; ``A`` stacks every weight's rows, each normalised to unit
            norm (as the reference implementation does).
        k: number of directions.
        num_layers: L; the directions act on the union of the given rows when it is not all of them.
        scale: length of each vector.

    Raises:
        ShapeError: no weights or widths that differ.
    """
    if not weights:
        raise ShapeError("sefa: no style weights given (this model exposes none)")
    mats, rows = [], set()
    for w, r in weights:
        w = torch.as_tensor(w, dtype=torch.float64)
        if w.ndim != 2:
            raise ShapeError(f"sefa: weights must be [C, D], got {list(w.shape)}")
        mats.append(w / w.norm(dim=1, keepdim=True).clamp_min(1e-12))
        rows.update(int(i) for i in r)
    widths = {m.shape[1] for m in mats}
    if len(widths) != 1:
        raise ShapeError(f"sefa: weights of different widths {sorted(widths)}")
    a = torch.cat(mats)
    evals, evecs = torch.linalg.eigh(a.T @ a)
    order = torch.argsort(evals, descending=True)[:k]
    layers = None if num_layers is None or len(rows) >= num_layers else sorted(rows)
    total = float(evals.clamp_min(0).sum())
    out = []
    for i, j in enumerate(order.tolist()):
        vec = evecs[:, j]
        vec = vec * torch.sign(vec[vec.abs().argmax()])  # deterministic sign
        out.append(Direction(f"{prefix}{i}", (vec * scale).float(), source="sefa", layers=layers, range=(-5.0, 5.0),
                             note=f"eigenvector {i} of A^T A (eigenvalue share {float(evals[j]) / total:.1%})",
                             meta={"eigenvalue": float(evals[j])}))
    return out


def learn_direction(
    latents: torch.Tensor,
    labels: torch.Tensor,
    name: str,
    *,
    method: str = "svm",
    C: float = 1.0,
    layers: list[int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_per_class: int | None = None,
    active_threshold: float | None = None,
) -> Direction:
    """InterFaceGAN: the normal of a linear boundary between latents with (label > 0) and without.

    The classifier (``svm``: ``LinearSVC``, ``logistic``: ``LogisticRegression``; scikit-learn,
    balanced class weights) is fitted on the raw latents (``[N, D]``, or the mean row of
    ``[N, L, D]``). The direction is its unit normal ``n`` (pointing to the positive class) times the
    standard deviation of ``latents @ n``: magnitude 1 is one standard deviation along the normal.

    Args:
        latents: ``[N, D]`` or ``[N, L, D]``.
        labels: ``[N]``: > 0 positive, < 0 negative, 0 or NaN ignored (e.g. CelebA's +-1).
        name: the direction's name.
        method: ``svm``, ``logistic`` or ``mean-diff`` (the difference of the two classes' mean latents,
            White 2016: it follows the directions along which the data actually vary, so on VAE latents
            it changes the decoded face more visibly than a max-margin normal, which leans on
            low-variance directions).
        C: inverse regularisation strength.
        layers: rows the direction will act on (None: all).
        test_fraction: held-out share used to report ``meta["test_accuracy"]`` (balanced accuracy).
        seed: split and solver seed.
        max_per_class: subsample each class to at most this many latents.
        active_threshold: only coordinates whose variance over ``latents`` exceeds this take part (the
            others get 0 in the normal). For VAE posterior means, 0.01 keeps the active units (Burda et
            al. 2016): a decoder ignores inactive coordinates, so a normal that leans on them moves
            the latent without changing the face.

    Returns:
        A :class:`Direction` with source ``interfacegan`` (``mean-diff`` for that method) and ``meta``
        holding train/test accuracy and class counts.

    Raises:
        ConfigError: unknown method. LatentStudioError: fewer than 2 labelled latents per class.
    """
    from sklearn.linear_model import LogisticRegression  # lazy: scikit-learn takes ~1 s to import
    from sklearn.metrics import balanced_accuracy_score  # lazy: scikit-learn takes ~1 s to import
    from sklearn.svm import LinearSVC  # lazy: scikit-learn takes ~1 s to import

    if method not in ("svm", "logistic", "mean-diff"):
        raise ConfigError(f"unknown direction learning method {method!r}; use 'svm', 'logistic' or 'mean-diff'")
    x_all = _rows(latents).double().numpy()
    active = np.ones(x_all.shape[1], dtype=bool)
    if active_threshold is not None:
        active = x_all.var(axis=0) > active_threshold
        if not active.any():
            raise LatentStudioError(f"direction {name!r}: no latent coordinate has variance > {active_threshold}")
    x = x_all[:, active]
    y = torch.as_tensor(labels, dtype=torch.float64).numpy().reshape(-1)
    if len(y) != len(x):
        raise ShapeError(f"learn_direction: {len(x)} latents but {len(y)} labels")
    keep = np.isfinite(y) & (y != 0)
    x, y = x[keep], (y[keep] > 0).astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = []
    for cls in (0, 1):
        members = np.flatnonzero(y == cls)
        if len(members) < 2:
            raise LatentStudioError(f"direction {name!r}: need at least 2 latents with and 2 without the attribute, "
                                    f"got {int((y == 1).sum())} positive and {int((y == 0).sum())} negative")
        if max_per_class is not None and len(members) > max_per_class:
            members = rng.choice(members, max_per_class, replace=False)
        idx.append(members)
    sel = rng.permutation(np.concatenate(idx))
    x, y = x[sel], y[sel]
    n_test = round(len(y) * test_fraction) if test_fraction > 0 else 0
    if n_test and (len(y) - n_test < 4 or len(np.unique(y[n_test:])) < 2):
        n_test = 0
    x_tr, y_tr, x_te, y_te = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    if method == "mean-diff":
        clf = _MeanDifference()
    elif method == "svm":
        clf = LinearSVC(C=C, class_weight="balanced", max_iter=20000, random_state=seed)
    else:
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
    clf.fit(x_tr, y_tr)
    normal = np.zeros(x_all.shape[1])
    normal[active] = clf.coef_.reshape(-1)
    normal = normal / np.linalg.norm(normal)
    std = float(np.std(x_all @ normal))
    meta = {
        "method": method,
        "C": C,
        "train_accuracy": float(balanced_accuracy_score(y_tr, clf.predict(x_tr))),
        "test_accuracy": float(balanced_accuracy_score(y_te, clf.predict(x_te))) if n_test else None,
        "positives": int(y.sum()),
        "negatives": int(len(y) - y.sum()),
        "std": std,
        "active_dims": int(active.sum()),
    }
    acc = meta["test_accuracy"] if meta["test_accuracy"] is not None else meta["train_accuracy"]
    source = "mean-diff" if method == "mean-diff" else "interfacegan"
    return Direction(name, torch.from_numpy(normal * std).float(), source=source, layers=layers,
                     range=(-3.0, 3.0), note=f"{method}, balanced accuracy {acc:.2f}", meta=meta)


class _MeanDifference:
    """Attribute vector (White, "Sampling Generative Networks", 2016): mean(positives) - mean(negatives);
    predicts positive above the midpoint of the two class means' projections."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> _MeanDifference:
        mp, mn = x[y == 1].mean(0), x[y == 0].mean(0)
        self.coef_ = (mp - mn)[None]
        self.threshold_ = float((mp + mn) @ self.coef_[0] / 2)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.coef_[0] > self.threshold_).astype(np.int64)


def condition(primary: Direction, others: list[Direction], name: str | None = None) -> Direction:
    """Conditional direction: ``primary`` minus its projection on the span of ``others``.

    With unit normals ``n1`` and ``n2`` this is InterFaceGAN's ``n1 - (n1 . n2) n2``; several
    conditions are handled with a least-squares projection. The result keeps ``primary``'s length
    (so its slider range stays meaningful) and is orthogonal to every condition.

    Raises:
        ShapeError: different widths. LatentStudioError: ``primary`` lies in the span of ``others``.
    """
    p = primary.flat().double()
    if not others:
        return primary
    basis = torch.stack([o.flat().double() for o in others], dim=1)  # [D, K]
    if basis.shape[0] != p.shape[0]:
        raise ShapeError(f"condition: widths differ ({p.shape[0]} vs {basis.shape[0]})")
    coef = torch.linalg.lstsq(basis, p[:, None]).solution
    resid = p - (basis @ coef)[:, 0]
    if float(resid.norm()) < 1e-6 * float(p.norm()):
        raise LatentStudioError(f"direction {primary.name!r} lies in the span of the conditions; nothing is left")
    resid = resid / resid.norm() * p.norm()
    label = name or f"{primary.name}|{'|'.join(o.name for o in others)}"
    label = re.sub(r"[^A-Za-z0-9_.+-]", "-", label)[:64]
    return Direction(label, resid.float(), source="conditional", layers=primary.layers, range=primary.range,
                     note=f"{primary.name} with {', '.join(o.name for o in others)} held fixed",
                     meta={"primary": primary.name, "conditions": [o.name for o in others]})
