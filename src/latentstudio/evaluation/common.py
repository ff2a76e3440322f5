"""What the evaluators share: the reference data of a model, feature extractors, FID/KID/IS values."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentstudio import metrics as M
from latentstudio.data.spec import DataSpec
from latentstudio.errors import ConfigError, DataError
from latentstudio.io.run_dir import create_run_dir

EXTRACTOR_NAMES = ("classifier", "inception")
#: Images per ``model.sample`` call when an evaluation draws its samples (one progress step each).
SAMPLE_CHUNK = 1000


@contextmanager
def phase(description: str, enabled: bool = True) -> Iterator[None]:
    """Say on stderr what a phase without a progress bar is doing, and how long it took."""
    t0 = time.perf_counter()
    if enabled:
        tqdm.write(f"{description} ...", file=sys.stderr)
    yield
    if enabled:
        tqdm.write(f"{description}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def sample_with_progress(model: Any, n: int, *, seed: int, condition: Any = None, progress: bool = True,
                         what: str = "", **knobs: Any) -> Any:
    """``model.sample`` of ``n`` items in chunks of ``SAMPLE_CHUNK`` (one generator, seeded with ``seed``,
    so the result depends only on ``seed`` and the chunk size), with a progress bar.

    ``condition``: None, or a list / tensor with one row per item (sliced per chunk).
    Returns ``uint8 [n, C, H, W]`` images.
    """
    gen = torch.Generator().manual_seed(seed)
    parts = []
    desc = f"sampling {n} images" + (f" ({what})" if what else "")
    with tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for i in range(0, n, SAMPLE_CHUNK):
            m = min(SAMPLE_CHUNK, n - i)
            c = None if condition is None else condition[i : i + m]
            parts.append(model.sample(m, generator=gen, condition=c, **knobs))
            bar.update(m)
    return torch.cat(parts)


def _run_data(run_dir: Any) -> dict[str, Any] | None:
    """The ``config.data`` dict of the run that trained a model, or None."""
    if not run_dir or not (Path(run_dir) / "run.json").is_file():
        return None
    data = json.loads((Path(run_dir) / "run.json").read_text()).get("config", {}).get("data")
    return data if isinstance(data, dict) else None


def _stroke_spec(d: dict[str, Any]) -> DataSpec:
    """A ``strokes`` spec from a sketch-rnn data config dict (``path``, ``epsilon``, ``words`` ...)."""
    options = {k: d[k] for k in ("epsilon", "words", "split_fractions", "split_seed") if d.get(k) is not None}
    return DataSpec.parse(str(d["path"]), options=options, limit=d.get("limit"))


def data_spec_for(model: Any, data: DataSpec | dict[str, Any] | str | None = None) -> DataSpec:
    """The reference data of ``model``: ``data`` when it names a dataset, else the spec the model was
    trained on (``meta.json`` ``data``, else its run's ``run.json``, else ``meta.json`` ``dataset``), with
    the fields ``data`` sets explicitly (root, limit, options, download, strict) applied.

    Raises:
        DataError: no dataset given and none recorded with the model (pass ``--data``).
    """
    given = DataSpec.coerce(data)
    if given is not None:
        return given
    meta = getattr(model, "meta", None) or {}
    overrides = data if isinstance(data, dict) else None
    if isinstance(meta.get("data"), dict):
        return DataSpec.from_dict(meta["data"], source="meta.json data").with_overrides(overrides)
    run = _run_data(meta.get("run_dir"))
    if run is not None:
        spec = _stroke_spec(run) if run.get("path") and "name" not in run else DataSpec.from_dict(run, source="run.json data")
        return spec.with_overrides(overrides)
    ds = meta.get("dataset", {})
    if ds.get("path"):
        return _stroke_spec(ds).with_overrides(overrides)
    if ds.get("name"):
        return DataSpec(name=ds["name"]).with_overrides(overrides)
    raise DataError("the model does not record its dataset; pass --data")


def load_split(spec: DataSpec | dict[str, Any] | str, split: str, **options: Any):
    """Load ``split`` of the dataset a spec describes (see :meth:`DataSpec.load`; ``options`` override the
    spec's loader options).

    Raises:
        DataError: a spec without a dataset name, or the loader's errors.
    """
    s = DataSpec.coerce(spec)
    if s is None:
        raise DataError("no dataset named; pass --data")
    return s.load(split, **options)


def model_split(model: Any, data: DataSpec | dict[str, Any] | str | None, split: str):
    """The ``split`` of ``data``, or of the dataset the model was trained on when ``data`` names none
    (its root/limit/options still apply; see :func:`data_spec_for`), in the model's own form: sketch
    models read strokes normalised by their scale factor and cut to their sequence length.

    Returns:
        ``ImageData`` (images ``uint8 [N, C, H, W]``) or a ``StrokeSet`` (stroke-3 sketches).

    Raises:
        DataError: no dataset given and none recorded with the model; an empty split.
    """
    base = data_spec_for(model, data)
    options: dict[str, Any] = {}
    if base.kind == "strokes" and model.output_kind == "sketches":
        options["scale_factor"] = float(model.scale_factor)
        options["max_seq_len"] = int(model.config.max_seq_len)
    out = base.load(split, **options)
    if len(out) == 0:
        raise DataError(f"the {split} split of {base.label} is empty")
    return out


def load_train_test(spec: DataSpec):
    """``(train, test, reference split name)``: the test split, or the training split for datasets without
    one (e.g. a folder without a split column)."""
    train = spec.load("train")
    try:
        return train, spec.load("test"), "test"
    except DataError:
        return train, train, "train"


def check_extractor_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is ``classifier`` or ``inception``."""
    if name not in EXTRACTOR_NAMES:
        raise ConfigError(f"extractor must be one of {', '.join(EXTRACTOR_NAMES)}, got {name!r}")


def load_extractor(name: str, train, test, download: bool, progress: bool):
    """The named feature extractor: ``inception`` (standard weights; ``download`` lets it fetch them) or
    ``classifier`` (the project classifier trained on ``train``, held-out accuracy on ``test``).

    Raises:
        ConfigError: another name. ExtractorWeightsMissing: Inception weights absent.
    """
    check_extractor_name(name)
    if name == "inception":
        return M.load_inception(download=download)
    return M.get_classifier(train, test=test, progress=progress)


def image_metric_values(
    f_real: torch.Tensor, images: torch.Tensor, ext, *, num_real: int, seed: int = 0, progress: bool = True
) -> list[tuple[str, float, float | None]]:
    """FID, KID (and IS when the extractor has logits) of generated images against real features.

    Args:
        f_real: features of the ``num_real`` reference images (``extract_features``).
        images: ``uint8 [N, C, H, W]`` generated (or reconstructed) images.
        ext: the feature extractor (its name decides ``fid`` vs ``fid_clf`` keys).

    Returns:
        ``[(result key, value, std or None), ...]``.
    """
    f_fake = M.extract_features(images, ext, progress=progress)
    out: list[tuple[str, float, float | None]] = [(M.fid_key(ext.name), M.fid_from_features(f_real, f_fake), None)]
    kid, kid_std = M.kid_from_features(f_real, f_fake, subset_size=min(1000, len(images), num_real), seed=seed)
    out.append((M.kid_key(ext.name), kid, kid_std))
    if ext.has_logits:
        is_mean, is_std = M.inception_score_from_logits(M.extract_logits(images, ext), splits=10, seed=seed)
        out.append((M.is_key(ext.name), is_mean, is_std))
    return out


def report_dir(model: Any, out_dir: str | Path | None, description: str) -> Path:
    """``out_dir`` (created), or a new numbered ``<run>/eval/NNNNN-<description>/`` (``<model>/../eval/`` when
    the model has no run)."""
    if out_dir is None:
        meta = getattr(model, "meta", None) or {}
        base = Path(meta["run_dir"]) if meta.get("run_dir") else Path(model.path).parent
        out_dir = create_run_dir(base / "eval", description)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def interleave_rows(x: torch.Tensor, y: torch.Tensor, per_row: int = 8) -> torch.Tensor:
    """Rows of ``per_row`` images alternating between ``x`` and ``y`` (``[N, C, H, W]`` each -> ``[2N, C, H, W]``)."""
    if x.shape[0] % per_row:
        per_row = x.shape[0]
    k = x.shape[0] // per_row
    return torch.stack([x.view(k, per_row, *x.shape[1:]), y.view(k, per_row, *y.shape[1:])], 1).flatten(0, 2)


__all__ = ["data_spec_for", "image_metric_values", "interleave_rows", "load_extractor", "load_split", "report_dir"]
