"""DRAW runs: configuration and presets, training with Lightning, export, and the evaluation report.

Layout of a run::

    runs/00001-draw-mnist/
        run.json                  resolved config, written before the first step
        train/                    checkpoints/last.ckpt (resumable state), logs/ (TensorBoard + CSV),
                                  samples/ and recon/ grids per epoch
        model/                    exported model directory (config.json, model.safetensors, meta.json)
        samples-steps.png         16 samples of the final model, one column per step
        canvas.gif                the same 16 samples being drawn (attention: write boxes in green)
        eval/NNNNN-<data>-<extractor>/   report.md, metrics.jsonl and pictures (``evaluate_draw``)
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentstudio.config import Config, require
from latentstudio.errors import DataError, LatentStudioError
from latentstudio.io.images import save_grid, to_float
from latentstudio.models.draw import DRAW, DRAWConfig
from latentstudio.training.config import DataConfig, TrainConfig
from latentstudio.training.runs import RUN_FILE, fit_module, is_rank_zero, lightning, read_run, start_run

KIND = "draw"
GRID_SEED = 1234
GRID_N = 64
DRAWING_N = 16
BINARIZE = ("none", "threshold")

#: Named starting configurations for ``latentstudio train draw --preset NAME`` (data-dependent fields,
#: image_channels / image_size / cond_dim, come from the dataset).
DRAW_PRESETS: dict[str, dict[str, Any]] = {
    # about a minute per 10 epochs on the 1,437 bundled digits (2 CPU cores)
    "quickstart": {
        "model": {"steps": 8, "latent_dim": 4, "enc_dim": 128, "dec_dim": 128, "attention": True,
                  "read_n": 4, "write_n": 6},
        "train": {"epochs": 30, "batch_size": 64, "lr": 1e-3, "grad_clip": 10.0},
    },
    # the MNIST benchmark's model (benchmarks/draw_mnist.py): a CPU-sized DRAW, 16 steps x 10 latents;
    # read 5x5 rather than the paper's 2x2: at a budget of about a thousand steps the 2x2 reader learns
    # much more slowly (see docs/draw.md)
    "cpu": {
        "model": {"steps": 16, "latent_dim": 10, "enc_dim": 256, "dec_dim": 256, "attention": True,
                  "read_n": 5, "write_n": 5},
        "train": {"epochs": 20, "batch_size": 100, "lr": 1e-3, "grad_clip": 10.0},
        "binarize": "threshold",
    },
    # Gregor et al. 2015, table 3 (MNIST with attention): T = 64, z 100 per step, LSTM 256, read 2x2,
    # write 5x5; optimiser settings are ours (Adam 1e-3, gradient-norm clip 10)
    "paper": {
        "model": {"steps": 64, "latent_dim": 100, "enc_dim": 256, "dec_dim": 256, "attention": True,
                  "read_n": 2, "write_n": 5},
        "train": {"epochs": 100, "batch_size": 64, "lr": 1e-3, "grad_clip": 10.0},
        "binarize": "threshold",
    },
}


def draw_preset(name: str) -> dict[str, Any]:
    """A deep copy of DRAW preset ``name``.

    Raises:
        UnknownNameError: listing the presets.
    """
    import copy

    from latentstudio.errors import UnknownNameError

    if name not in DRAW_PRESETS:
        raise UnknownNameError(f"unknown DRAW preset {name!r}; known presets: {', '.join(sorted(DRAW_PRESETS))}")
    return copy.deepcopy(DRAW_PRESETS[name])


@dataclass(frozen=True)
class DRAWRunConfig(Config):
    """Everything a DRAW run needs; written to ``run.json`` before the first step.

    Attributes:
        data: dataset.
        model: the DRAW architecture (image shape and cond_dim are filled from the data).
        train: optimisation (epochs, batch size, lr, max_minutes, grad_clip, grid interval).
        binarize: ``"none"`` (grey levels as Bernoulli targets) or ``"threshold"`` (pixels > 0.5 become 1,
            once, before training: the fixed binarisation under which the NLL is reported).
        seed: initial weights, shuffling and noise all derive from it.
        devices: processes (DDP when > 1).
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: DRAWConfig = field(default_factory=DRAWConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    binarize: str = "none"
    seed: int = 0
    devices: int = 1
    accelerator: str = "cpu"

    def __post_init__(self) -> None:
        require(self.binarize in BINARIZE, "binarize", f"must be one of {BINARIZE}, got {self.binarize!r}")
        require(self.devices >= 1, "devices", f"must be >= 1, got {self.devices}")


@dataclass
class DRAWTrainResult:
    """Where a finished DRAW run put its outputs."""

    run_dir: Path
    model_dir: Path
    model: DRAW


def binarize_images(images: torch.Tensor) -> torch.Tensor:
    """Fixed binarisation: ``uint8 [N, C, H, W]`` -> ``uint8`` in {0, 255}, pixel > 0.5 (i.e. >= 128) -> 255."""
    return (images >= 128).to(torch.uint8) * 255


def load_train_data(d: DataConfig):
    from latentstudio.data import load_images

    return load_images(d.name, "train", root=d.root, download=d.download, strict=d.strict, limit=d.limit, **d.options)


def build_draw_run_config(spec: dict[str, Any], data) -> DRAWRunConfig:
    """Complete a (partial) DRAW run-config dict with the dataset's image shape and class count.

    Raises:
        ConfigError: unknown or invalid fields (named). DataError: non-square images, or a
            class-conditional model on a dataset without labels.
    """
    from latentstudio.presets import merge

    c, h, w = data.image_shape
    if h != w:
        raise DataError(f"dataset {data.name!r} has {h}x{w} images; DRAW here needs square images (crop or resize)")
    m = dict(spec.get("model", {}))
    condition = m.get("condition", "none")
    cond_dim = 0 if condition == "none" else int(data.conditions(condition).shape[1])
    m.update(image_channels=c, image_size=h, condition=condition, cond_dim=cond_dim)
    return DRAWRunConfig.from_dict(merge(spec, {"model": m}), source="draw run config")


def read_draw_run_config(run_dir: str | Path) -> DRAWRunConfig:
    """The :class:`DRAWRunConfig` saved in ``run_dir/run.json``.

    Raises:
        LatentStudioError: not a DRAW run.
    """
    kind, config = read_run(run_dir)
    if kind != KIND:
        raise LatentStudioError(f"{run_dir} is a {kind!r} run, not a DRAW run")
    return DRAWRunConfig.from_dict(config, source=str(Path(run_dir) / RUN_FILE))


def train_draw_spec(
    spec: dict[str, Any],
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    data=None,
    callbacks: list | None = None,
):
    """Train DRAW from a run-config dict (see :func:`build_draw_run_config`).

    With ``resume`` the run's own ``run.json`` is used (``spec`` is ignored); with ``dry_run`` the
    resolved :class:`DRAWRunConfig` is returned and nothing is trained or written.

    Returns:
        :class:`DRAWTrainResult`, or the resolved config under ``dry_run``.
    """
    if resume is not None:
        run = read_draw_run_config(resume)
        data = data if data is not None else load_train_data(run.data)
    else:
        d = DataConfig.from_dict(spec.get("data", {}), source="data")
        data = data if data is not None else load_train_data(d)
        run = build_draw_run_config(spec, data)
    if dry_run:
        return run
    return train_draw(run, runs_root=runs_root, resume=resume, progress=progress, data=data, callbacks=callbacks)


def interleave_rows(x: torch.Tensor, y: torch.Tensor, per_row: int = 8) -> torch.Tensor:
    """Rows of ``per_row`` images alternating between ``x`` and ``y`` (``[N, C, H, W]`` each -> ``[2N, C, H, W]``)."""
    if x.shape[0] % per_row:
        per_row = x.shape[0]
    k = x.shape[0] // per_row
    return torch.stack([x.view(k, per_row, *x.shape[1:]), y.view(k, per_row, *y.shape[1:])], 1).flatten(0, 2)


def grid_conditions(cfg: DRAWConfig, n: int) -> torch.Tensor | None:
    """One-hot classes 0..K-1 in turn (a class per grid column block), or None if unconditional."""
    if cfg.cond_dim == 0:
        return None
    return torch.nn.functional.one_hot(torch.arange(n) % cfg.cond_dim, cfg.cond_dim).float()


def train_draw(
    run: DRAWRunConfig,
    *,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    data=None,
) -> DRAWTrainResult:
    """Train DRAW on images, export the model and write a drawing of 16 samples (PNG + GIF).

    Args:
        run: the resolved configuration (written to ``run.json`` before the first step).
        runs_root: parent of the numbered run directory (``<runs_root>/NNNNN-draw-<dataset>/``).
        resume: an interrupted run directory to continue (same config required); finished epochs
            are not repeated.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks.
        data: an already loaded training :class:`~latentstudio.data.ImageData` (else loaded from ``run.data``).

    Returns:
        :class:`DRAWTrainResult`.

    Raises:
        DataError: dataset problems or a dataset that does not match ``run.model``;
        NonFiniteLossError: NaN/inf loss (the last good checkpoint is kept); LatentStudioError: bad resume.
    """
    from latentstudio.models.draw.render import generation_frames, save_drawing
    from latentstudio.training.callbacks import ImageGridCallback
    from latentstudio.training.lit_module import GenerativeLitModule, TensorDataModule

    L = lightning()
    data = data if data is not None else load_train_data(run.data)
    _check_data_matches(run, data)
    run_dir = start_run(KIND, run.to_dict(), runs_root=runs_root, resume=resume, dataset=data.name,
                        devices=run.devices)
    cfg = run.model
    images = binarize_images(data.images) if run.binarize == "threshold" else data.images
    cond = data.conditions(cfg.condition) if cfg.condition != "none" else torch.zeros(len(data), 0)

    L.seed_everything(run.seed, workers=True, verbose=False)
    model = DRAW(cfg)

    grid_c = grid_conditions(cfg, GRID_N)
    grid_idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(GRID_SEED))[:32]
    grid_idx = grid_idx[: len(grid_idx) // 8 * 8]

    def samples(module):
        g = torch.Generator().manual_seed(GRID_SEED)
        return torch.sigmoid(module.model.generate(GRID_N, grid_c, g, keep_steps=False).logits)

    def recon(module):
        x = to_float(images[grid_idx]).to(module.device)
        c = cond[grid_idx].to(module.device) if cond.shape[1] else None
        return interleave_rows(x, module.model.reconstruct_mean(x, c))

    t = run.train
    module = GenerativeLitModule(model, t, run.seed, inputs="images", prog_bar_terms=("kl", "nll"))
    dm = TensorDataModule((images, cond), t.batch_size, run.seed)
    grids = ImageGridCallback(run_dir / "train", samples, recon if len(grid_idx) else None,
                              every=t.grid_every_n_epochs)
    t0 = time.perf_counter()
    trainer = fit_module(module, dm, run_dir / "train", epochs=t.epochs, max_minutes=t.max_minutes, accelerator=run.accelerator,
               devices=run.devices, callbacks=[grids, *(callbacks or [])], progress=progress,
               log_every_n_steps=t.log_every_n_steps, grad_clip=t.grad_clip)
    seconds = time.perf_counter() - t0
    model = model.cpu().eval()

    model_dir = run_dir / "model"
    if is_rank_zero():
        meta = {
            "seed": run.seed,
            "dataset": {"name": data.name, "split": data.split, "size": len(data), "fingerprint": data.fingerprint(),
                        "source": data.source},
            "binarize": run.binarize,
            "run_dir": str(run_dir),
            "train_seconds_this_session": round(seconds, 1),
            "optimizer_steps": int(trainer.global_step),
            "epochs_completed": int(trainer.current_epoch),
        }
        model.save_pretrained(model_dir, meta=meta)
        _, frames = generation_frames(model, DRAWING_N, grid_conditions(cfg, DRAWING_N),
                                      torch.Generator().manual_seed(GRID_SEED))
        save_drawing(frames, run_dir / "samples-steps.png", run_dir / "canvas.gif", overwrite=True)
    return DRAWTrainResult(run_dir=run_dir, model_dir=model_dir, model=model)


def _check_data_matches(run: DRAWRunConfig, data) -> None:
    m = run.model
    c, h, w = data.image_shape
    if (c, h, w) != (m.image_channels, m.image_size, m.image_size):
        raise DataError(
            f"dataset {data.name!r} has images [{c}, {h}, {w}] but the DRAW model expects "
            f"[{m.image_channels}, {m.image_size}, {m.image_size}]; set model.image_channels/image_size to match "
            "(the CLI does this automatically), or use the dataset options the model was trained with"
        )
    if m.condition != "none":
        dim = data.conditions(m.condition).shape[1]
        if dim != m.cond_dim:
            raise DataError(f"dataset {data.name!r} has {dim} classes, the DRAW model cond_dim={m.cond_dim}")


# ---------------------------------------------------------------------------------------------------
# evaluation


def _run_binarize(loaded) -> str:
    return loaded.meta.get("binarize", "none")


def _extractor(name: str, train, test, download: bool, progress: bool):
    from latentstudio.metrics import get_classifier, load_inception

    if name == "inception":
        return load_inception(download=download)
    return get_classifier(train, test=test, progress=progress)


def evaluate_draw(
    model_path: str | Path,
    data_spec: dict[str, Any] | None = None,
    *,
    extractor: str = "classifier",
    n_samples: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    download_weights: bool = False,
    progress: bool = True,
    nll_samples: int = 100,
    nll_images: int = 1000,
    temperature: float = 1.0,
) -> Path:
    """Evaluate a DRAW model on the test split and write ``metrics.jsonl`` + ``report.md`` + pictures.

    Values (each one record of ``metrics.jsonl``):

    - ``fid_clf`` / ``kid_clf`` / ``is_clf`` (or ``fid`` ... with Inception) of prior samples
      (z_t ~ N(0, I) at every step) and of the test reconstructions;
    - ``classifier_accuracy`` (class-conditional models): fraction of samples conditioned on class
      k that the classifier assigns to k, with the per-class fractions;
    - ``recon_mse`` / ``recon_bce`` per pixel of the reconstructions (z_t = mu_t);
    - ``kl`` in nats with ``per_step`` (KL_t, summing to the total), ``nelbo`` (the negative ELBO,
      the paper's "NLL <=" bound) on the test images as the model was trained (binarised or not);
    - ``variance_law`` with ``per_step`` means and ``inactive_latents`` with ``per_step`` counts;
    - ``nll``: importance-sampled -log p(x) in nats on the test images binarised at 0.5 (Bernoulli
      decoders only), with ``k`` samples per image and its standard error.

    Args:
        model_path: a DRAW model directory or run directory.
        data_spec: ``{"name", "root", "options", ...}``; None uses the training run's dataset.
        extractor: ``classifier`` (offline, ``*_clf``) or ``inception``.
        n_samples: generated images (default: the test-set size).
        out_dir: report folder (default: a new numbered ``<run>/eval/NNNNN-<data>-<extractor>/``).
        seed: seed of sampling and of the inference noise.
        nll_samples / nll_images: K and the number of test images of the NLL.
        temperature: prior scale of the samples.

    Returns:
        Path of ``report.md``.

    Raises:
        DataError: the test images do not match the model; CheckpointError: not a model directory;
        LatentStudioError: not a DRAW model.
    """
    from latentstudio import api
    from latentstudio import metrics as M
    from latentstudio.evaluation import data_spec_for, image_metric_values, load_split
    from latentstudio.io.run_dir import create_run_dir
    from latentstudio.models.draw.analysis import collect_posteriors
    from latentstudio.models.draw.render import generation_frames, reconstruction_frames, save_drawing

    loaded = model = api.load(model_path) if isinstance(model_path, str | Path) else model_path
    if not isinstance(model, DRAW):
        raise LatentStudioError(f"{loaded.path} holds a {model.model_type} model, not a DRAW model")
    cfg = model.config
    spec = data_spec_for(loaded, data_spec)
    train = load_split(spec, "train")
    try:
        test, ref_split = load_split(spec, "test"), "test"
    except DataError:
        test, ref_split = train, "train"
    reference = f"{test.name}/{ref_split}"
    if test.image_shape != (cfg.image_channels, cfg.image_size, cfg.image_size):
        raise DataError(f"{reference} has images {list(test.image_shape)}, the DRAW model expects "
                        f"{[cfg.image_channels, cfg.image_size, cfg.image_size]}; use the model's dataset options "
                        "(e.g. --data-option pad=0 for 28x28 MNIST)")
    if out_dir is None:
        base = Path(loaded.meta["run_dir"]) if loaded.meta.get("run_dir") else loaded.path.parent
        out_dir = create_run_dir(base / "eval", f"{test.name}-{extractor}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = out_dir / M.METRICS_FILE
    binarized = _run_binarize(loaded) == "threshold"
    test_images = binarize_images(test.images) if binarized else test.images
    class_cond = cfg.condition == "class"
    cond_test = test.conditions("class") if class_cond else None

    ext = _extractor(extractor, train, test, download_weights, progress)
    n = n_samples or len(test)
    rows: list[dict[str, Any]] = []
    common = {"model": str(loaded.path), "seed": seed}

    def record(metric, value, source, num=None, std=None, *, with_extractor=False, **extra):
        kw = {"source": source, "num_generated": num, "std": std, "num_real": len(test), "reference": reference,
              "extra": {**common, **extra}}
        rec = (M.MetricRecord.from_extractor(metric, value, ext, **kw) if with_extractor
               else M.MetricRecord(metric=metric, value=value, **kw))
        M.append_record(metrics_file, rec)
        rows.append(rec.to_dict())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.BiasedMetricWarning)
        f_real = M.extract_features(test.images, ext, progress=progress)
        labels = torch.arange(n) % cfg.cond_dim if class_cond else None
        t0 = time.perf_counter()
        samples = api.generate(loaded, n=n, seed=seed, condition=None if labels is None else labels.tolist(),
                               temperature=temperature)
        sample_seconds = time.perf_counter() - t0
        for key, value, std in image_metric_values(f_real, samples, ext, num_real=len(test), seed=seed,
                                                   progress=progress):
            record(key, value, "prior", n, std, with_extractor=True, temperature=temperature)
        if class_cond and hasattr(ext, "predict"):
            hit = (ext.predict(samples) == labels).float()
            per_class = [round(float(hit[labels == k].mean()), 4) for k in range(cfg.cond_dim) if (labels == k).any()]
            record(M.KEY_CLASSIFIER_ACCURACY, float(hit.mean()), "prior", n, with_extractor=True, per_class=per_class,
                   min_class=min(per_class), what="fraction of samples classified as the requested class")
        recon = model.reconstruct(test_images, condition=cond_test)
        for key, value, std in image_metric_values(f_real, recon, ext, num_real=len(test), seed=seed,
                                                   progress=progress):
            record(key, value, "reconstruction", len(test), std, with_extractor=True)
    x, x_hat = to_float(test_images), to_float(recon)
    record(M.KEY_RECON_MSE, float(M.reconstruction_error(x, x_hat, "mse").mean()), "reconstruction", len(test))
    record(M.KEY_RECON_BCE, float(M.reconstruction_error(x, x_hat, "bce").mean()), "reconstruction", len(test))

    # per-step latent analysis along sampled inference passes on the test images
    g = torch.Generator(device=model.device).manual_seed(seed)
    post = collect_posteriors(model, test_images, cond_test, generator=g)
    kl_steps = post.kl_steps()
    law = post.variance_law()
    inactive = post.inactive_per_step()
    source = f"test ({'binarised' if binarized else 'as trained'})"
    record("kl", float(kl_steps.sum()), source, len(test), unit="nats", per_step=[round(float(v), 4) for v in kl_steps])
    record(M.KEY_VARIANCE_LAW, float(law.mean()), source, len(test),
           per_step=[round(float(v), 4) for v in law.mean(dim=1)], min=float(law.min()), max=float(law.max()))
    record(M.KEY_INACTIVE_LATENTS, int(inactive.sum()), source, len(test), per_step=inactive.tolist(),
           latent_dim=cfg.total_latent_dim, latent_dim_per_step=cfg.latent_dim, threshold=M.INACTIVE_THRESHOLD)
    nelbo = post.negative_elbo()
    record("nelbo", float(nelbo.mean()), source, len(test), unit="nats",
           what="negative ELBO (reconstruction + sum_t KL_t), one posterior sample per image")
    if cfg.decoder == "bernoulli":
        k = min(nll_images, len(test))
        xb = (to_float(test.images[:k]) > 0.5).float()
        cb = None if cond_test is None else cond_test[:k]
        t0 = time.perf_counter()
        nll = model.importance_sampled_nll(xb, cb, num_samples=nll_samples,
                                           generator=torch.Generator(device=model.device).manual_seed(seed))
        record(M.KEY_NLL, float(nll.mean()), "test (binarised)", k, unit="nats", k=nll_samples,
               stderr=float(nll.std() / math.sqrt(k)) if k > 1 else None, seconds=round(time.perf_counter() - t0, 1))

    # pictures
    save_grid(samples[:64], out_dir / "samples.png", nrow=8, overwrite=True)
    m = min(32, len(test)) // 8 * 8 or len(test)
    save_grid(interleave_rows(test_images[:m], recon[:m]), out_dir / "reconstructions.png", nrow=min(8, m),
              overwrite=True)
    _, frames = generation_frames(model, DRAWING_N, grid_conditions(cfg, DRAWING_N), torch.Generator().manual_seed(seed),
                                  temperature=temperature)
    save_drawing(frames, out_dir / "samples-steps.png", out_dir / "canvas.gif", overwrite=True)
    _, rframes = reconstruction_frames(model, to_float(test_images[:8]), None if cond_test is None else cond_test[:8])
    save_drawing(rframes, out_dir / "reconstruction-steps.png", out_dir / "reconstruction.gif", overwrite=True)
    _plot_steps(out_dir / "per-step.png", kl_steps, inactive, cfg.latent_dim)
    return _write_report(out_dir, loaded, ext, reference, rows, n, seed, sample_seconds)


def _plot_steps(path: Path, kl_steps: torch.Tensor, inactive: torch.Tensor, latent_dim: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentstudio.io.atomic import atomic_path

    t = torch.arange(1, len(kl_steps) + 1)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].bar(t.numpy(), kl_steps.numpy(), color="#4c72b0")
    ax[0].set_xlabel("step t")
    ax[0].set_ylabel("KL_t (nats)")
    ax[0].set_title("KL per step")
    ax[1].bar(t.numpy(), inactive.numpy(), color="#dd8452")
    ax[1].set_ylim(0, latent_dim)
    ax[1].set_xlabel("step t")
    ax[1].set_ylabel(f"inactive latents (of {latent_dim})")
    ax[1].set_title("inactive latents per step")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def _write_report(out_dir: Path, loaded, ext, reference: str, rows: list[dict], n: int, seed: int,
                  sample_seconds: float) -> Path:
    from latentstudio.io.atomic import write_text
    from latentstudio.io.checkpoint import library_versions

    cfg = loaded.config
    meta = loaded.meta
    ds = meta.get("dataset", {})
    by = {(r["metric"], r["source"]): r for r in rows}
    attention = (f"attention (read {cfg.read_n}x{cfg.read_n}, write {cfg.write_n}x{cfg.write_n})" if cfg.attention
                 else "no attention")
    lines = [
        "# DRAW evaluation report",
        "",
        (f"- model: `{loaded.path}`: T = {cfg.steps} steps x {cfg.latent_dim} latents, LSTM {cfg.enc_dim}/{cfg.dec_dim},"
         f" {attention}, {cfg.decoder} decoder, condition {cfg.condition}"),
        (f"- trained on {ds.get('name')} {ds.get('split')} ({ds.get('size')} images, fingerprint "
         f"`{ds.get('fingerprint')}`, binarize {meta.get('binarize', 'none')}), seed {meta.get('seed')}"),
        f"- reference: {reference} ({rows[0]['num_real']} images); {n} generated images; seed {seed}",
        f"- extractor: **{ext.name}** (weights `{ext.weights_hash}`); resize rule: {ext.resize_rule}",
    ]
    if ext.name == "classifier":
        lines.append("- `fid_clf` uses the project's classifier features; it is **not comparable** with published "
                     "Inception FIDs.")
    if getattr(ext, "test_accuracy", None) is not None:
        lines.append(f"- classifier held-out accuracy: {ext.test_accuracy:.4f}")
    lines.append(f"- sampling {n} images took {sample_seconds:.1f} s")
    lines.append(f"- versions: {', '.join(f'{k} {v}' for k, v in library_versions().items())}")
    lines += ["", "## Results", "", "| metric | images | value | notes |", "|---|---|---|---|"]
    notes = {
        "recon_mse": "per pixel, images in [0, 1], z_t = mu_t",
        "recon_bce": "nats per pixel",
        "kl": "nats per image, sum over steps of KL_t",
        "nelbo": "nats per image: reconstruction + KL (the paper's NLL bound)",
        "variance_law": "mean over latents of Var(mu) + E[sd^2]; 1 is ideal",
        "inactive_latents": f"E[sd^2] > 0.9, of {cfg.total_latent_dim} latents",
        "classifier_accuracy": "samples classified as the requested class",
    }
    for r in rows:
        m = r["metric"]
        if m == "nll":
            note = f"nats, importance sampled (K = {r.get('k')}), standard error {_fmt(r.get('stderr'))}"
        else:
            note = notes.get(m, "")
        if m == "classifier_accuracy":
            note += f" (worst class {_fmt(r.get('min_class'))})"
        value = _fmt(r["value"]) + (f" ± {_fmt(r['std'])}" if r.get("std") else "")
        lines.append(f"| {m} | {r['source']} | {value} | {note} |")
    kl = next(r for r in rows if r["metric"] == "kl")
    law = next(r for r in rows if r["metric"] == "variance_law")
    inactive = next(r for r in rows if r["metric"] == "inactive_latents")
    lines += ["", "## Per step", "", "![per step](per-step.png)", "",
              f"| step t | KL_t (nats) | variance law (mean of {cfg.latent_dim}) | inactive latents |",
              "|---|---|---|---|"]
    for t, (k, v, i) in enumerate(zip(kl["per_step"], law["per_step"], inactive["per_step"], strict=True), 1):
        lines.append(f"| {t} | {_fmt(k)} | {_fmt(v)} | {i} / {cfg.latent_dim} |")
    if ("classifier_accuracy", "prior") in by:
        per = by[("classifier_accuracy", "prior")]["per_class"]
        lines += ["", "Per-class accuracy of conditional samples: "
                  + ", ".join(f"{k}: {v:.3f}" for k, v in enumerate(per))]
    boxes = " Green boxes: write windows; red boxes: read windows." if cfg.attention else ""
    lines += [
        "", "## Samples", "", "![samples](samples.png)", "",
        "## Drawing", "", f"Canvas after each step (columns), one sample per row.{boxes}", "",
        "![steps](samples-steps.png)", "", "![drawing](canvas.gif)", "",
        "## Reconstructions", "", "Odd rows: test images; even rows: reconstructions.", "",
        "![reconstructions](reconstructions.png)", "", "![reconstruction steps](reconstruction-steps.png)", "",
        "All values are also in `metrics.jsonl` (one JSON record per value).",
    ]
    return write_text(out_dir / "report.md", "\n".join(lines) + "\n", overwrite=True)


def summarize_records(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A flat summary of a DRAW evaluation's records (for benchmarks and studies)."""
    out: dict[str, Any] = {}
    for r in rows:
        m, src = r["metric"], r.get("source")
        if m in ("fid_clf", "kid_clf", "is_clf", "fid", "kid", "is"):
            out[f"{m}_{'samples' if src == 'prior' else src}"] = r["value"]
        elif m in ("kl", "variance_law", "inactive_latents"):
            out[m] = r["value"]
            out[f"{m}_per_step"] = r.get("per_step")
        elif m == "classifier_accuracy":
            out[m] = r["value"]
            out["classifier_accuracy_per_class"] = r.get("per_class")
        elif m == "nll":
            out["nll"] = r["value"]
            out["nll_stderr"] = r.get("stderr")
            out["nll_k"] = r.get("k")
            out["nll_images"] = r.get("num_generated")
        else:
            out[m] = r["value"]
    return out


def load_records(report: str | Path) -> list[dict[str, Any]]:
    """The records of the ``metrics.jsonl`` next to ``report``."""
    from latentstudio.metrics import read_records

    return read_records(Path(report).parent)


__all__ = [
    "DRAW_PRESETS",
    "DRAWRunConfig",
    "DRAWTrainResult",
    "binarize_images",
    "build_draw_run_config",
    "draw_preset",
    "evaluate_draw",
    "read_draw_run_config",
    "summarize_records",
    "train_draw",
    "train_draw_spec",
]
