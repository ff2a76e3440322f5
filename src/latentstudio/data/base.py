"""The in-memory image dataset every loader returns, and the dataset registry.

Contract: images are ``uint8 [N, C, H, W]`` (C = 1 grey or 3 RGB), labels ``int64 [N]`` class
indices, attributes ``float32 [N, A]`` with values in {-1, +1}. Float conversion happens only in
:func:`latentstudio.io.images.to_float`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from latentstudio.errors import DataError
from latentstudio.registry import Registry


@dataclass
class ImageData:
    """A loaded image dataset split.

    Attributes:
        images: ``uint8 [N, C, H, W]``.
        labels: ``int64 [N]`` class indices in ``0..num_classes-1``, or None.
        attributes: ``float32 [N, A]`` in {-1, +1} (CelebA: A = 40, file order), or None.
        attribute_names: names of the A attributes, or None.
        class_names: names of the classes, or None.
        name: registry name of the dataset (``"digits"``, ``"mnist"`` ...).
        split: ``"train"`` or ``"test"``.
        source: human-readable origin (path or package) for reports.
        skipped: paths of unreadable images that were skipped (empty under ``strict``).
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    attributes: torch.Tensor | None = None
    attribute_names: list[str] | None = None
    class_names: list[str] | None = None
    name: str = "custom"
    split: str = "train"
    source: str = ""
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        x = self.images
        if (
            not isinstance(x, torch.Tensor)
            or x.dtype != torch.uint8
            or x.ndim != 4
            or x.shape[1] not in (1, 3)
        ):
            got = f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(
                f"dataset {self.name!r}: images must be uint8 [N, C, H, W] with C in (1, 3), got {got}"
            )
        n = x.shape[0]
        if self.labels is not None and (self.labels.ndim != 1 or self.labels.shape[0] != n):
            raise DataError(
                f"dataset {self.name!r}: labels must be int64 [{n}], got {list(self.labels.shape)}"
            )
        if self.attributes is not None and (self.attributes.ndim != 2 or self.attributes.shape[0] != n):
            raise DataError(
                f"dataset {self.name!r}: attributes must be [{n}, A], got {list(self.attributes.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int | None:
        if self.labels is None:
            return None
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max().item()) + 1 if len(self.labels) else 0

    def subset(self, indices: torch.Tensor | list[int]) -> ImageData:
        """A new ImageData holding only ``indices`` (labels/attributes follow)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return replace(
            self,
            images=self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            attributes=None if self.attributes is None else self.attributes[idx],
            skipped=list(self.skipped),
        )

    def conditions(self, kind: str) -> torch.Tensor:
        """Condition vectors ``float32 [N, D]``: ``"class"`` -> one-hot labels, ``"attributes"`` -> +-1 values.

        Raises:
            DataError: if the dataset has no labels (or attributes) for the requested kind.
        """
        if kind == "class":
            if self.labels is None:
                raise DataError(
                    f"dataset {self.name!r} has no class labels; it cannot train a class-conditional model"
                )
            return torch.nn.functional.one_hot(self.labels.long(), int(self.num_classes or 0)).float()
        if kind == "attributes":
            if self.attributes is None:
                raise DataError(f"dataset {self.name!r} has no attributes; use --condition class or none")
            return self.attributes.float()
        raise DataError(f"unknown condition kind {kind!r}; use 'class' or 'attributes'")

    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 chars) of the image bytes, shape, labels and attributes."""
        h = hashlib.sha256()
        h.update(str(list(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.to(torch.int64).contiguous().numpy().tobytes())
        if self.attributes is not None:
            h.update(self.attributes.to(torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


class DatasetLoader(Protocol):
    """Signature of a registered loader: returns one split of a dataset."""

    def __call__(self, root, split: str, *, download: bool, strict: bool, **options) -> ImageData: ...


DATASETS: Registry[DatasetLoader] = Registry("dataset")


def dataset_kind(name: str) -> str:
    """``"images"`` (the loader returns :class:`ImageData`) or ``"strokes"`` (it returns a
    :class:`~latentstudio.data.strokes.StrokeSet`) for registered dataset ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (the known names are listed).
    """
    return getattr(DATASETS.get(name), "data_kind", "images")
