"""Image datasets as in-memory ``uint8 [N, C, H, W]`` tensors.

Usage::

    from latentstudio.data import load_images
    data = load_images("mnist", "train", root="~/data")   # ImageData, images uint8 [60000, 1, 32, 32]

Importing this package registers the built-in loaders (``digits``, ``mnist``, ``fashion-mnist``,
``cifar10``, ``celeba``, ``folder``, and ``strokes`` for stroke files) in :data:`DATASETS`; see
:mod:`latentstudio.data.images` for the documented preprocessing, split and error rules and
:class:`DataSpec` (:mod:`latentstudio.data.spec`) for the typed spec of a dataset.
"""

from __future__ import annotations

from latentstudio.data.base import DATASETS, ImageData, dataset_kind
from latentstudio.data.images import dataset_options, load_images
from latentstudio.data.spec import DataSpec
from latentstudio.data.strokes import load_strokes as load_strokes

__all__ = ["DATASETS", "DataSpec", "ImageData", "dataset_kind", "dataset_options", "load_images"]
