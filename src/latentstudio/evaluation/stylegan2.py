"""The StyleGAN2 evaluator: FID / KID against the training images and perceptual path length (PPL).

Also the helpers training shares with it: :func:`load_generator_images` (the dataset at the generator's
resolution), :func:`classifier_data` / :func:`fid_extractor` (the fid_clf classifier of a dataset) and
:func:`generate_images` (seeded samples).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from latentstudio.data.images import dataset_options
from latentstudio.data.spec import DataSpec
from latentstudio.errors import DataError, ExtractorWeightsMissing
from latentstudio.evaluation.common import check_extractor_name, data_spec_for
from latentstudio.evaluation.report import Recorder, fmt, trained_on, versions_line, write_report
from latentstudio.io.images import save_grid
from latentstudio.metrics import (
    KEY_PPL,
    BiasedMetricWarning,
    compute_fid,
    compute_kid,
    fid_key,
    get_classifier,
    kid_key,
    load_inception,
    load_perceptual,
    perceptual_path_length,
)
from latentstudio.models.stylegan2.networks import images_to_uint8


def load_generator_images(spec: DataSpec, model_config, split: str = "train"):
    """``split`` of ``spec``'s dataset at the generator's resolution (the loader's ``image_size`` option is set
    to ``model_config.resolution`` when the loader has one and the spec does not set it).

    Returns:
        :class:`~latentstudio.data.ImageData` with images ``uint8 [N, img_channels, R, R]``.

    Raises:
        DataError: missing data, or images whose size/channels differ from the model's.
    """
    options = {}
    if "image_size" in dataset_options(spec.name) and "image_size" not in spec.options:
        options["image_size"] = model_config.resolution
    data = spec.load(split, **options)
    c, h, w = data.image_shape
    m = model_config
    if (h, w) != (m.resolution, m.resolution) or c != m.img_channels:
        raise DataError(
            f"dataset {data.name!r} has images [{c}, {h}, {w}] but the model expects "
            f"[{m.img_channels}, {m.resolution}, {m.resolution}]; use data of that shape (celeba, folder: "
            f"--data-option image_size={m.resolution})"
        )
    return data


def classifier_data(data, label: str | None):
    """``data`` with class labels for the fid_clf classifier: its own labels, or the binary attribute ``label``
    (``0`` where the attribute is -1, ``1`` where +1).

    Raises:
        DataError: no labels and no ``label``; an unknown attribute name (the known ones listed).
    """
    if label is None:
        if data.labels is None:
            raise DataError(
                f"dataset {data.name!r} has no class labels for the fid_clf classifier; pass an attribute "
                "(classifier_label, CLI --classifier-label Male) or use --extractor inception"
            )
        return data
    names = data.attribute_names or []
    if label not in names:
        raise DataError(f"dataset {data.name!r} has no attribute {label!r}; known attributes: {', '.join(names)}")
    y = (data.attributes[:, names.index(label)] > 0).to(torch.int64)
    return replace(data, labels=y, class_names=[f"not {label}", label])


def fid_extractor(extractor: str, data, classifier_label: str | None = None, *, download: bool = False,
                  progress: bool = False):
    """The features of a StyleGAN2 FID: Inception (``fid``) or the project classifier trained on ``data``
    (``fid_clf``; labelled by ``classifier_label`` for datasets without classes).

    Raises:
        ConfigError: an unknown extractor. DataError / ExtractorWeightsMissing: see :func:`classifier_data`,
            ``load_inception``.
    """
    check_extractor_name(extractor)
    if extractor == "inception":
        return load_inception(download=download)
    return get_classifier(classifier_data(data, classifier_label), progress=progress)


@torch.no_grad()
def generate_images(G, n: int, *, seed: int = 0, truncation_psi: float = 1.0, noise_mode: str = "const",
                    batch_size: int = 64) -> torch.Tensor:
    """``n`` images ``uint8 [n, C, R, R]`` of a StyleGAN2 generator from seeded z (one ``torch.Generator``
    stream from ``seed``, ``batch_size`` z at a time). A class-conditional generator draws its classes
    in turn (0, 1, ..., c_dim - 1, 0, ...), so every class is equally represented."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    dev = G.device
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z = torch.randn(m, G.z_dim, generator=g).to(dev)
        c = None
        if c_dim:
            c = torch.nn.functional.one_hot((torch.arange(start, start + m) % c_dim), c_dim).float().to(dev)
        img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)
        out.append(images_to_uint8(img).cpu())
    return torch.cat(out)


def evaluate_stylegan2(
    model,
    data: DataSpec | dict[str, Any] | str | None = None,
    *,
    extractor: str = "classifier",
    n_samples: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    classifier_label: str | None = None,
    truncation_psi: float = 1.0,
    ppl_samples: int = 1000,
    perceptual: str | None = None,
) -> Path:
    """FID and KID of a StyleGAN2 generator against its training data, and perceptual path length.

    Args:
        model: a loaded StyleGAN2 generator.
        data: the reference data; None: the training run's dataset (recorded with the model); converted
            official models need one.
        extractor: ``classifier`` (fid_clf / kid_clf; CelebA uses ``classifier_label``, default ``Male``)
            or ``inception`` (fid / kid, standard weights required).
        n_samples: generated and real images (default: min(10000, dataset size)).
        out_dir: report folder (default ``<model>/eval``).
        seed: seed of the real subset, the samples and PPL.
        classifier_label: binary attribute of the fid_clf classifier (default: the run's).
        truncation_psi: truncation of the evaluated samples (1 = none, the usual FID setting).
        ppl_samples: PPL pairs (W space, endpoints; 0 = skip).
        perceptual: PPL distance; None = ``lpips-vgg`` when its weights are present, else ``pyramid-l2``
            (recorded with the value, flagged as not LPIPS).

    Returns:
        Path of ``report.md`` (values are also appended to ``metrics.jsonl`` there).

    Raises:
        DataError: no dataset known or image size mismatch. ExtractorWeightsMissing: Inception weights absent.
    """
    check_extractor_name(extractor)
    G, folder = model, Path(model.path)
    try:
        spec = data_spec_for(model, data)
    except DataError:
        raise DataError(f"{folder} does not record its training dataset; pass --data (and --data-root)") from None
    run_file = Path(model.meta["run_dir"]) / "run.json" if model.meta.get("run_dir") else None
    if classifier_label is None and run_file is not None and run_file.is_file():
        classifier_label = json.loads(run_file.read_text()).get("config", {}).get("classifier_label")
    images = load_generator_images(spec, G.config)
    if extractor == "classifier" and images.labels is None and classifier_label is None and images.attribute_names:
        classifier_label = "Male" if "Male" in images.attribute_names else images.attribute_names[0]
    ext = fid_extractor(extractor, images, classifier_label, download=download_weights, progress=progress)
    n = min(n_samples or 10_000, len(images))
    out = Path(out_dir) if out_dir else folder / "eval"
    out.mkdir(parents=True, exist_ok=True)
    real = images.images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]
    fake = generate_images(G, n, seed=seed, truncation_psi=truncation_psi)
    save_grid(fake[:64], out / "samples.png", nrow=8, overwrite=True)
    source = f"{folder} psi={truncation_psi}"
    rec = Recorder(out, reference=f"{images.name}/{images.split}", num_real=n, extractor=ext,
                   extra={"seed": seed, "classifier_label": classifier_label})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BiasedMetricWarning)
        fid = compute_fid(real, fake, ext, progress=progress)
        kid, kid_std = compute_kid(real, fake, ext, seed=seed, progress=progress)
    rec.add(fid_key(ext), fid, source, n, with_extractor=True)
    rec.add(kid_key(ext), kid, source, n, kid_std, with_extractor=True)
    if ppl_samples > 0:
        if perceptual is None:
            try:
                dist = load_perceptual("lpips-vgg", download=download_weights)
            except ExtractorWeightsMissing as exc:
                warnings.warn(f"{exc}; PPL uses the offline pyramid-l2 distance instead (NOT LPIPS)", stacklevel=2)
                dist = load_perceptual("pyramid-l2")
        else:
            dist = load_perceptual(perceptual, download=download_weights)
        dist = dist.to(G.device)
        ppl, _ = perceptual_path_length(G, dist, num_samples=ppl_samples, seed=seed, progress=progress)
        rec.add(KEY_PPL, ppl, source, ppl_samples, extractor=dist.name, num_real=None, reference=None,
                space="w", sampling="end", epsilon=1e-4, distance=dist.label,
                comparable_with_papers=bool(dist.is_lpips))
    provenance = [
        f"- model: `{folder}`; {trained_on(model.meta)}",
        (f"- {n} generated (truncation psi {truncation_psi}, seed {seed}) vs {n} images of "
         f"{images.name}/{images.split}. fid_clf / kid_clf use the project classifier and are NOT comparable "
         "with Inception FIDs."),
        f"- extractor: **{ext.name}** (weights `{getattr(ext, 'weights_hash', None)}`)"
        + (f", classifier label {classifier_label}" if classifier_label else ""),
        versions_line(),
    ]
    table = ["| metric | value | features / distance |", "|---|---|---|"]
    table += [f"| {r['metric']} | {fmt(r['value'])} | {r.get('extractor')} |" for r in rec.rows]
    return write_report(out, title="StyleGAN2 evaluation report", provenance=provenance, sections=[
        ("Results", table), ("Samples", ["![samples](samples.png)"]),
        ("Records", ["```json", json.dumps(rec.rows, indent=1, default=str), "```"]),
    ], footer="")


__all__ = ["classifier_data", "evaluate_stylegan2", "fid_extractor", "generate_images", "load_generator_images"]
