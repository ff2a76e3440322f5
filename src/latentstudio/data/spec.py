"""The data spec: which dataset (and how) a model is trained or evaluated on, as one frozen config.

A :class:`DataSpec` names a registered dataset of :data:`~latentstudio.data.base.DATASETS` (image
datasets such as ``digits``, ``mnist``, ``celeba``, ``folder``, and the stroke-file dataset ``strokes``)
with its loader options. It is what a run's ``run.json`` stores under ``config.data`` and what an exported
model's ``meta.json`` stores under ``data``; :meth:`DataSpec.load` returns one split.

Usage::

    from latentstudio.data import DataSpec
    DataSpec(name="mnist", root="~/data", options={"pad": 0}).load("test")   # ImageData
    DataSpec.parse("sheep.npz").load("test")                                 # StrokeSet (stroke-3 sketches)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentstudio.config import Config, require
from latentstudio.data.base import DATASETS, ImageData, dataset_kind
from latentstudio.data.images import dataset_options, load_images
from latentstudio.data.strokes import STROKES_DATASET, StrokeSet, is_stroke_file
from latentstudio.errors import DataError, UnknownNameError
from latentstudio.paths import resolve_data_root

#: The fields of :class:`DataSpec`, in order (for building command-line options from them).
DATA_SPEC_FIELDS = ("name", "root", "options", "limit", "download", "strict")


@dataclass(frozen=True)
class DataSpec(Config):
    """A dataset and how to load it.

    Attributes:
        name: registered dataset name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``,
            ``folder``, ``strokes``); see ``latentstudio.data.DATASETS``.
        root: data root (None: ``$LATENTSTUDIO_DATA``, else the user data dir).
        options: the dataset's loader options (``latentstudio.data.dataset_options(name)``), e.g.
            ``{"pad": 0}`` for ``mnist``, ``{"path": "faces.zip"}`` for ``folder``, ``{"path": "sheep.npz",
            "epsilon": 2.0, "words": [...], "split_fractions": [0.9, 0.05, 0.05], "split_seed": 0}`` for
            ``strokes``.
        limit: use only the first ``limit`` examples of each loaded split (>= 1), or None.
        download: let the loader fetch missing files (torchvision downloaders).
        strict: an unreadable image is an error instead of being skipped.

    Raises (on construction):
        ConfigError: an empty name, a non-dict ``options`` or ``limit < 1``.
    """

    name: str = "digits"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    download: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and bool(self.name), "data.name", f"must be a dataset name, got {self.name!r}")
        require(isinstance(self.options, dict), "data.options", f"must be an object, got {self.options!r}")
        require(self.limit is None or (isinstance(self.limit, int) and not isinstance(self.limit, bool)
                                       and self.limit >= 1), "data.limit", f"must be an int >= 1, got {self.limit!r}")
        if self.root is not None:
            object.__setattr__(self, "root", str(self.root))

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(cls, text: str, **fields: Any) -> DataSpec:
        """A spec from what a user types: a registered dataset name, or a stroke file path.

        ``"mnist"`` -> ``DataSpec(name="mnist")``; ``"sheep.npz"``, ``"cat.ndjson"`` or ``"cat.ndjson.gz"``
        -> ``DataSpec(name="strokes", options={"path": "sheep.npz"})``. ``fields`` set the other fields
        (``root``, ``limit`` ...); given ``options`` are merged with the path.

        Raises:
            UnknownNameError: neither a registered name nor a stroke file (the known names are listed).
        """
        text = str(text).strip()
        if text in DATASETS:
            return cls(name=text, **fields)
        if is_stroke_file(text):
            options = {"path": text, **dict(fields.pop("options", None) or {})}
            return cls(name=STROKES_DATASET, options=options, **fields)
        raise UnknownNameError(f"unknown dataset {text!r}; known datasets: {', '.join(DATASETS.names())}, "
                               "or a stroke file (.npz, .ndjson, .ndjson.gz)")

    @classmethod
    def coerce(cls, value: DataSpec | dict[str, Any] | str | None) -> DataSpec | None:
        """``value`` as a spec: specs pass through, strings go through :meth:`parse`, dicts through
        :meth:`from_dict` (a ``name`` that is a stroke file path is parsed); None, or a dict without a
        name, gives None.

        Raises:
            ConfigError: unknown fields or invalid values. UnknownNameError: see :meth:`parse`.
        """
        if value is None or isinstance(value, DataSpec):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        d = {k: v for k, v in dict(value).items() if v is not None}
        if not d.get("name"):
            return None
        if d["name"] not in DATASETS and is_stroke_file(d["name"]):
            name = d.pop("name")
            return cls.parse(name, **cls.from_dict(d, source="data").fields_dict(exclude=("name",)))
        return cls.from_dict(d, source="data")

    def fields_dict(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """The fields as keyword arguments (options copied), without ``exclude``."""
        return {k: copy.deepcopy(getattr(self, k)) for k in DATA_SPEC_FIELDS if k not in exclude}

    def with_overrides(self, other: DataSpec | dict[str, Any] | None) -> DataSpec:
        """This spec with the fields ``other`` sets explicitly (non-None values; ``options`` merged; ``download``
        and ``strict`` only when True) applied; ``other``'s name is ignored."""
        if other is None:
            return self
        d = other.to_dict() if isinstance(other, DataSpec) else dict(other)
        changes: dict[str, Any] = {}
        for k in ("root", "limit"):
            if d.get(k) is not None:
                changes[k] = d[k]
        for k in ("download", "strict"):
            if d.get(k):
                changes[k] = True
        if d.get("options"):
            changes["options"] = {**self.options, **d["options"]}
        return self.replace(**changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the six fields (options deep-copied)."""
        out = super().to_dict()
        out["options"] = copy.deepcopy(out["options"])
        return out

    # ------------------------------------------------------------------ loading
    @property
    def kind(self) -> str:
        """``"images"`` or ``"strokes"`` (what :meth:`load` returns).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        return dataset_kind(self.name)

    @property
    def label(self) -> str:
        """A short name for folders and reports: the dataset name, or the stroke file's stem."""
        if self.name == STROKES_DATASET and self.options.get("path"):
            return Path(str(self.options["path"])).name.split(".")[0]
        return self.name

    def load(self, split: str = "train", **options: Any) -> ImageData | StrokeSet:
        """Load one split.

        Args:
            split: ``train`` or ``test`` (image datasets); ``train``, ``valid`` or ``test`` (strokes).
            **options: loader options overriding :attr:`options` for this call (e.g. ``scale_factor`` and
                ``max_seq_len`` of a sketch model).

        Returns:
            :class:`~latentstudio.data.base.ImageData` (images ``uint8 [N, C, H, W]``) for image datasets;
            a :class:`~latentstudio.data.strokes.StrokeSet` (stroke-3 ``float32 [L_i, 3]`` sketches,
            normalised by the training split's scale factor or the ``scale_factor`` option) for ``strokes``.

        Raises:
            UnknownNameError: unregistered name. DataError: bad split, option or limit; missing or
                unreadable files.
        """
        opts = {**self.options, **options}
        if self.kind == "images":
            return load_images(self.name, split, root=self.root, download=self.download, strict=self.strict,
                               limit=self.limit, **opts)
        accepted = dataset_options(self.name)
        unknown = sorted(k for k in opts if k not in accepted)
        if unknown:
            raise DataError(f"dataset {self.name!r} does not accept option(s) {', '.join(map(repr, unknown))}; "
                            f"accepted options: {', '.join(accepted)}")
        loader = DATASETS.get(self.name)
        return loader(resolve_data_root(self.root), split, download=self.download, strict=self.strict,
                      limit=self.limit, **opts)


__all__ = ["DATA_SPEC_FIELDS", "DataSpec"]
