"""A CelebA face-attribute classifier trained here, and what it says about latent directions.

:class:`AttributeNet` is a small CNN with one logit per CelebA attribute (40): 4 x [conv 3x3, BatchNorm,
ReLU, max-pool 2] (16-32-64-128 channels on 32x32 inputs), global average pool, dense 40. It is
trained with a per-attribute binary cross-entropy on CelebA (positives of rare attributes weighted by
``neg / pos``, at most 10; random horizontal flips), and reports
each attribute's balanced accuracy on a held-out share. It is used

* to label generated faces so that InterFaceGAN directions can be learned for generators without
  labelled latents (StyleGAN2): :func:`label_latents`;
* to check that a direction changes the attribute it names: :func:`direction_effects` decodes
  latents moved by ``-m`` and ``+m`` and compares the attribute's logit.

Images are ``uint8 [N, 3, H, W]`` of any size; they are resized to 32x32 (area filter when
shrinking, bilinear when enlarging) and scaled to [0, 1]. The trained weights are a model
directory-like folder: ``config.json`` + ``model.safetensors`` (no pickle), cached under
``cache_dir()/attribute-classifiers/<name>-<fingerprint>-<recipe hash>/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.errors import DataError, LatentStudioError, ShapeError
from latentstudio.metrics.classifier_cache import (
    cached_or_trained,
    classifier_folder,
    load_classifier_files,
    progress_bar,
    save_classifier_files,
)
from latentstudio.studio.editing import edit

__all__ = [
    "AttributeClassifier",
    "AttributeNet",
    "direction_effects",
    "get_attribute_classifier",
    "label_latents",
    "load_attribute_classifier",
    "most_frequent_attributes",
    "train_attribute_classifier",
]

INPUT_SIZE = 32
CHANNELS = (16, 32, 64, 128)


class AttributeNet(nn.Module):
    """``float32 [N, 3, 32, 32]`` in [0, 1] -> ``[N, num_attributes]`` logits (see the module docstring)."""

    def __init__(self, num_attributes: int, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def _prepare(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ShapeError(f"attribute classifier: expected uint8 [N, 3, H, W] faces, got {images.dtype} "
                         f"{list(images.shape)}")
    x = images.float() / 255.0
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    h = x.shape[-1]
    if h > INPUT_SIZE or x.shape[-2] > INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    elif h < INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return x


class AttributeClassifier(nn.Module):
    """A trained :class:`AttributeNet` with its attribute names and held-out accuracies.

    Attributes:
        names: attribute names (CelebA file order).
        config: recipe, data fingerprint, ``test_accuracy`` (balanced, per attribute) and ``positive_rate``.
        folder: where it was saved / loaded (None if not saved).
    """

    def __init__(self, net: AttributeNet, names: list[str], config: dict[str, Any]) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.names = list(names)
        self.config = config
        self.folder: Path | None = None

    def train(self, mode: bool = True) -> AttributeClassifier:
        return super().train(False)

    def index(self, name: str) -> int:
        """Column of attribute ``name`` (case-insensitive).

        Raises:
            LatentStudioError: unknown attribute (the known ones listed).
        """
        lower = {n.lower(): i for i, n in enumerate(self.names)}
        if name.lower() not in lower:
            raise LatentStudioError(f"unknown attribute {name!r}; the classifier knows: {', '.join(self.names)}")
        return lower[name.lower()]

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``uint8 [N, 3, H, W]`` -> ``float32 [N, A]`` logits (positive: attribute present)."""
        out = [self.net(_prepare(images[i : i + batch_size])) for i in range(0, images.shape[0], batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(self.names))

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """``config.json`` + ``model.safetensors`` in ``folder`` (atomic writes); returns ``folder``.

        Raises:
            RunExistsError: a file exists and ``overwrite`` is False.
        """
        folder = Path(folder)
        save_classifier_files(folder, self.net, {**self.config, "names": self.names}, overwrite=overwrite)
        self.folder = folder
        return folder


def load_attribute_classifier(folder: str | Path) -> AttributeClassifier:
    """Load a classifier saved by :meth:`AttributeClassifier.save`.

    Raises:
        CheckpointError: missing files, an unreadable config, or weights whose tensor names or shapes
            do not match the config (one line, with the fix).
    """
    folder = Path(folder)
    net, config, _ = load_classifier_files(
        folder,
        lambda cfg: AttributeNet(len(cfg["names"]), tuple(cfg.get("channels", CHANNELS))),
        what="attribute classifier",
        fix="train one with `latentstudio directions classifier`",
    )
    clf = AttributeClassifier(net, config["names"], config)
    clf.folder = folder
    return clf


def _balanced_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> list[float | None]:
    pred = logits > 0
    pos = labels > 0
    out: list[float | None] = []
    for j in range(labels.shape[1]):
        p, q = pos[:, j], pred[:, j]
        if p.all() or (~p).all():
            out.append(None)
            continue
        tpr = float((q & p).sum()) / float(p.sum())
        tnr = float((~q & ~p).sum()) / float((~p).sum())
        out.append(round((tpr + tnr) / 2, 4))
    return out


def train_attribute_classifier(
    data,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 2e-3,
    test_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> AttributeClassifier:
    """Train an :class:`AttributeClassifier` on an ``ImageData`` with attributes (CelebA).

    Adam with a one-cycle schedule, binary cross-entropy summed over attributes, random horizontal
    flips; the last ``test_fraction`` of the images (file order) is held out for the accuracies.

    Raises:
        DataError: the dataset has no attributes or fewer than 20 images.
    """
    if data.attributes is None or data.attribute_names is None:
        raise DataError(f"dataset {data.name!r} has no attributes; the attribute classifier needs CelebA-style labels")
    n = len(data)
    if n < 20:
        raise DataError(f"dataset {data.name!r} has {n} images; the attribute classifier needs at least 20")
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    x_tr, y_tr = data.images[: n - n_test], (data.attributes[: n - n_test] > 0).float()
    x_te, y_te = data.images[n - n_test :], data.attributes[n - n_test :]
    names = list(data.attribute_names)
    # rare attributes: weight positives by neg/pos (clamped to 1..10) so that they are not ignored
    rate = y_tr.mean(0).clamp(1e-3, 1 - 1e-3)
    pos_weight = ((1 - rate) / rate).clamp(1.0, 10.0)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, len(x_tr) // batch_size)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = AttributeNet(len(names))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
        net.train()
        with progress_bar(epochs * steps_per_epoch, "training attribute classifier", progress) as bar:
            for _ in range(epochs):
                perm = torch.randperm(len(x_tr), generator=gen)
                for b in range(steps_per_epoch):
                    idx = perm[b * batch_size : (b + 1) * batch_size]
                    x = _prepare(x_tr[idx])
                    flip = torch.rand(len(idx), generator=gen) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                    loss = F.binary_cross_entropy_with_logits(net(x), y_tr[idx], pos_weight=pos_weight)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    net.eval()
    config: dict[str, Any] = {
        "arch": "attrnet4",
        "channels": list(CHANNELS),
        "input_size": INPUT_SIZE,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "dataset": data.name,
        "train_fingerprint": data.fingerprint(),
        "num_train": len(x_tr),
        "num_test": n_test,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "positive_rate": [round(float(v), 4) for v in (data.attributes > 0).float().mean(0)],
    }
    clf = AttributeClassifier(net, names, config)
    if n_test:
        acc = _balanced_accuracy(clf.logits(x_te), y_te)
        config["test_accuracy"] = acc
        vals = [a for a in acc if a is not None]
        config["mean_test_accuracy"] = round(float(np.mean(vals)), 4) if vals else None
    return clf


def get_attribute_classifier(data, *, cache: bool = True, progress: bool = True, **recipe: Any) -> AttributeClassifier:
    """The attribute classifier of ``data``: loaded from the cache, or trained and cached.

    The cache folder is ``cache_dir()/attribute-classifiers/<name>-<fingerprint>-<recipe key>/``: the
    key covers the recipe (:func:`train_attribute_classifier`'s keyword arguments as given) and the
    architecture, so a changed recipe trains and caches a new classifier. With ``cache=False`` it
    always trains and saves nothing.

    Returns:
        An :class:`AttributeClassifier` (``folder`` set when cached).

    Raises:
        DataError: as :func:`train_attribute_classifier` (no attributes, fewer than 20 images).

    Warns:
        UserWarning: an unreadable cache folder (it is retrained and overwritten).
    """
    spec = {"arch": "attrnet4", "version": 2, "channels": CHANNELS, "input_size": INPUT_SIZE, **recipe}
    folder = classifier_folder("attribute-classifiers", data, spec) if cache else None
    clf, _ = cached_or_trained(
        folder,
        load=load_attribute_classifier,
        train=lambda: train_attribute_classifier(data, progress=progress, **recipe),
        save=lambda path, trained: trained.save(path, overwrite=True),
        what="attribute classifier",
    )
    return clf


def most_frequent_attributes(classifier: AttributeClassifier, k: int = 10) -> list[str]:
    """The ``k`` attributes with the highest positive rate in the classifier's training data."""
    rate = classifier.config.get("positive_rate")
    if not rate:
        raise LatentStudioError("this classifier has no positive_rate in its config")
    order = np.argsort(-np.asarray(rate), kind="stable")[:k]
    return [classifier.names[i] for i in order]


@torch.no_grad()
def label_latents(model, latents: torch.Tensor, classifier: AttributeClassifier, batch_size: int = 32) -> torch.Tensor:
    """Classifier logits ``[N, A]`` of the faces the model synthesises from ``latents [N, L, D]``."""
    out = []
    for i in range(0, latents.shape[0], batch_size):
        out.append(classifier.logits(model.images(latents[i : i + batch_size])))
    return torch.cat(out)


@dataclass
class DirectionEffect:
    """How a direction moves its attribute's logit (:func:`direction_effects`)."""

    name: str
    attribute: str
    sign: float
    mean_change: float
    fraction_right: float
    logit_minus: float
    logit_zero: float
    logit_plus: float

    @property
    def right_direction(self) -> bool:
        return self.sign * self.mean_change > 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "right_direction": self.right_direction}


@torch.no_grad()
def direction_effects(
    model,
    library,
    classifier: AttributeClassifier,
    pairs: list[tuple[str, str, float]],
    *,
    n: int = 64,
    magnitude: float = 2.0,
    seed: int = 0,
    truncation_psi: float = 1.0,
) -> list[DirectionEffect]:
    """Move ``n`` random latents by ``-magnitude``, 0 and ``+magnitude`` along each direction and
    measure the named attribute's classifier logit.

    Args:
        pairs: ``(direction name, attribute name, sign)``; sign +1 if the direction should raise the
            attribute (-1 for e.g. ``age`` vs ``Young``).

    Returns:
        One :class:`DirectionEffect` per pair: mean logit change ``logit(+m) - logit(-m)``, the
        share of latents whose logit moved the expected way, and the mean logits.
    """
    base = model.sample_latents(n, seed=seed, truncation_psi=truncation_psi)
    out = []
    for dname, attr, sign in pairs:
        d = library[dname]
        j = classifier.index(attr)
        logits = {}
        for m in (-magnitude, 0.0, magnitude):
            lat = torch.stack([edit(x, [(d, m)]) for x in base])
            logits[m] = label_latents(model, lat, classifier)[:, j]
        change = logits[magnitude] - logits[-magnitude]
        out.append(DirectionEffect(dname, classifier.names[j], sign, float(change.mean()),
                                   float(((sign * change) > 0).float().mean()), float(logits[-magnitude].mean()),
                                   float(logits[0.0].mean()), float(logits[magnitude].mean())))
    return out
