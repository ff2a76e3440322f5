"""``latentstudio``: train, sample, reconstruct and evaluate generative models.

Each command parses its options and calls one function of :mod:`latentstudio.api`; user errors
(:class:`~latentstudio.errors.LatentStudioError`) become ``Error: ...`` and exit status 1.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from latentstudio.cli.options import apply_overrides, parse_int_list, parse_pairs, run_options
from latentstudio.errors import LatentStudioError


def friendly_errors(fn):
    """Turn library errors into ``click.ClickException`` (one line, exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LatentStudioError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def data_options(fn=None, *, default: str | None = "digits"):
    """--data, --data-root, --data-option, --download, --strict, --limit (``default``: --data's default;
    None means "the dataset the model was trained on")."""
    if fn is None:
        return functools.partial(data_options, default=default)
    help_data = "Dataset: digits, mnist, fashion-mnist, cifar10, celeba, folder."
    if default is None:
        help_data += " Default: the dataset the model was trained on."
    opts = [
        click.option("--data", "data_name", default=default, show_default=default is not None, help=help_data),
        click.option("--data-root", type=click.Path(file_okay=False), default=None,
                     help="Folder holding the datasets (default: $LATENTSTUDIO_DATA, else the user data dir)."),
        click.option("--data-option", "data_option", multiple=True, metavar="KEY=VALUE",
                     help="Dataset option, e.g. path=faces.zip for folder, pad=0 for mnist (repeatable)."),
        click.option("--download", is_flag=True, help="Fetch the dataset with torchvision's downloader if missing."),
        click.option("--strict", is_flag=True, help="An unreadable image is an error (default: skip and count)."),
        click.option("--limit", type=int, default=None, help="Use only the first N images."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _data_spec(data_name, data_root, data_option, download, strict, limit) -> dict:
    return {
        "name": data_name,
        "root": data_root,
        "options": parse_pairs(data_option, "--data-option"),
        "limit": limit,
        "download": download,
        "strict": strict,
    }


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="latentstudio")
def cli() -> None:
    """Train, sample and evaluate latent-variable generative models.

    \b
    Example:
      latentstudio quickstart
      latentstudio train two-stage-vae --data mnist --data-root ~/data --preset cpu
      latentstudio sample --model runs/00000-two-stage-vae-digits --sampler gmm --out gmm.png
    """


@cli.group()
def train() -> None:
    """Train a model (one subcommand per model family).

    \b
    Example:
      latentstudio train two-stage-vae --data digits --preset quickstart
    """


@train.command("two-stage-vae")
@data_options
@click.option("--preset", default="quickstart", show_default=True, help="Starting config: quickstart, cpu, paper.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON run config (same layout as a run's run.json 'config'); applied after the preset.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Dotted override, e.g. stage1.epochs=20 or model.stage1.latent_dim=32 (repeatable).")
@click.option("--condition", type=click.Choice(["none", "class", "attributes"]), default="none", show_default=True,
              help="Conditional VAE on the class label (one-hot) or on attributes (CelebA's 40, +-1).")
@click.option("--seed", type=int, default=0, show_default=True)
@run_options
@friendly_errors
def train_two_stage(data_name, data_root, data_option, download, strict, limit, preset, config_file, overrides,
                    condition, seed, devices, accelerator, runs_root, resume, dry_run, no_progress):
    """Two-Stage VAE (Dai & Wipf 2019): stage 1 on images, stage 2 on its latents, GMM ex post.

    Writes a numbered run directory with checkpoints, TensorBoard/CSV logs, per-epoch sample and
    reconstruction grids, and the exported model (run/model/).

    \b
    Examples:
      latentstudio train two-stage-vae --data digits
      latentstudio train two-stage-vae --data mnist --data-root ~/data --condition class --set stage1.epochs=5
      latentstudio train two-stage-vae --resume runs/00002-two-stage-vae-mnist
    """
    from latentstudio import api
    from latentstudio.presets import merge
    from latentstudio.presets import preset as get_preset

    spec = get_preset(preset)
    if config_file:
        spec = merge(spec, json.loads(Path(config_file).read_text()))
    spec = merge(spec, {
        "data": _data_spec(data_name, data_root, data_option, download, strict, limit),
        "model": {"stage1": {"condition": condition}},
        "seed": seed, "devices": devices, "accelerator": accelerator,
    })
    if overrides:
        from latentstudio.training.config import TwoStageRunConfig

        full = merge(TwoStageRunConfig().to_dict(), spec)
        spec = apply_overrides(full, parse_pairs(overrides, "--set"))
    result = api.train("two-stage-vae", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                       dry_run=dry_run)
    if dry_run:
        click.echo(result.to_json())
        return
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        click.echo(f"run directory: {result.run_dir}\nmodel: {result.model_dir}")


@cli.group()
def study() -> None:
    """Run a study: a resumable grid of experiments written to results.jsonl and a report.

    Re-running the same command in the same --out folder skips every finished cell.

    \b
    Example:
      latentstudio study --help
    """


# Commands of other model families live in their own modules; each defines ``register(cli)``.
COMMAND_MODULES = (
    "latentstudio.cli.draw",
    "latentstudio.cli.sketch",
    "latentstudio.cli.stylegan2",
    "latentstudio.cli.studies",
    "latentstudio.cli.studio",
)

# Model types whose `sample` / `evaluate` differ from the image-VAE path register a handler here:
# ``handler(model_dir: Path, **the command's options)``.
SAMPLE_HANDLERS: dict[str, Callable[..., None]] = {}
EVALUATE_HANDLERS: dict[str, Callable[..., None]] = {}


def _model_type(model_path: str) -> str:
    from latentstudio.api import resolve_model_dir
    from latentstudio.io.checkpoint import read_model_config

    return read_model_config(resolve_model_dir(model_path))["model_type"]


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory.")
@click.option("--sampler", default=None, help="normal, gmm or second-stage (default: the model's best).")
@click.option("--n", "n", type=int, default=64, show_default=True, help="Number of images (one generator).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", default=None, help="One image per seed, e.g. 0-63,100 (overrides --n/--seed).")
@click.option("--condition", default=None,
              help="Class models: a class index (e.g. 3); attribute models: idx=+-1 pairs, e.g. 31=1,20=-1.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Grid PNG (default samples.png).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None, help="Write one PNG per image here.")
@click.option("--temperature", type=float, default=None,
              help="Sampling temperature for models that have one (sketch-rnn's tau); default: the model's.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@friendly_errors
def sample(model_path, sampler, n, seed, seeds, condition, out, out_dir, temperature, overwrite):
    """Sample images from a trained model with a latent sampler.

    \b
    Examples:
      latentstudio sample --model runs/00000-two-stage-vae-digits --sampler gmm --out gmm.png
      latentstudio sample --model RUN --seeds 0-15 --condition 7 --out-dir sevens/
    """
    handler = SAMPLE_HANDLERS.get(_model_type(model_path))
    if handler is not None:
        return handler(model_path, sampler=sampler, n=n, seed=seed, seeds=seeds, condition=condition, out=out,
                       out_dir=out_dir, temperature=temperature, overwrite=overwrite)
    if temperature is not None:
        raise click.UsageError("--temperature applies to models that sample with a temperature (sketch-rnn)")
    from latentstudio import api
    from latentstudio.io.images import save_folder, save_grid

    model = api.load(model_path)
    cond = _parse_condition(condition)
    images = api.generate(model, n, seed=seed, seeds=parse_int_list(seeds) if seeds else None,
                          condition=cond, sampler=sampler)
    if out_dir:
        paths = save_folder(images, out_dir, overwrite=overwrite)
        click.echo(f"wrote {len(paths)} images to {out_dir}")
    if out or not out_dir:
        path = save_grid(images, out or "samples.png", overwrite=overwrite)
        click.echo(f"wrote {path}")


def _parse_condition(text):
    if text is None:
        return None
    if text.strip().lstrip("-").isdigit():
        return int(text)
    pairs = parse_pairs(tuple(p for p in text.split(",") if p), "--condition")
    return {int(k): float(v) for k, v in pairs.items()}


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True))
@data_options(default=None)
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--n", "n", type=int, default=32, show_default=True, help="Number of images to reconstruct.")
@click.option("--out", type=click.Path(dir_okay=False), default="reconstructions.png", show_default=True,
              help="PNG grid: rows alternate originals and reconstructions.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def reconstruct(model_path, data_name, data_root, data_option, download, strict, limit, split, n, out, overwrite):
    """Reconstruct dataset images (decoder mean of the posterior mean).

    \b
    Example:
      latentstudio reconstruct --model runs/00000-two-stage-vae-digits --data digits --out recon.png
    """
    import torch

    from latentstudio import api
    from latentstudio.evaluation import data_spec_for, load_split
    from latentstudio.io.images import save_grid

    model = api.load(model_path)
    spec = data_spec_for(model, _data_spec(data_name, data_root, data_option, download, strict, limit))
    data = load_split(spec, split)
    data = data.subset(list(range(min(n, len(data)))))
    kind = model.condition_spec.kind
    cond = data.conditions(kind) if kind != "none" else None
    recon = api.reconstruct(model, data.images, condition=cond)
    rows = []
    for i in range(0, len(data), 8):
        rows += [data.images[i : i + 8], recon[i : i + 8]]
    click.echo(f"wrote {save_grid(torch.cat(rows), out, nrow=8, overwrite=overwrite)}")


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True))
@data_options(default=None)
@click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier", show_default=True,
              help="Features for FID/KID/IS: a classifier trained here (fid_clf) or standard Inception (fid).")
@click.option("--n-samples", type=int, default=None, help="Generated images per sampler (default: test-set size).")
@click.option("--samplers", default=None, help="Comma-separated samplers (default: all fitted).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Report folder (default: <run>/eval).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--download-weights", is_flag=True, help="Let the Inception extractor download its weights.")
@friendly_errors
def evaluate(model_path, data_name, data_root, data_option, download, strict, limit, extractor, n_samples,
             samplers, out_dir, seed, download_weights):
    """Evaluate a model: FID/KID/IS per sampler, reconstruction FID, latents, report.

    Appends one record per metric to metrics.jsonl and writes report.md with the sample grids.
    Uses the test split of the dataset the model was trained on unless --data is given.

    \b
    Example:
      latentstudio evaluate --model runs/00000-two-stage-vae-digits
      latentstudio evaluate --model RUN --data mnist --data-root ~/data --extractor inception
    """
    handler = EVALUATE_HANDLERS.get(_model_type(model_path))
    if handler is not None:
        return handler(model_path, data_name=data_name, data_root=data_root, data_option=data_option,
                       download=download, strict=strict, limit=limit, extractor=extractor, n_samples=n_samples,
                       samplers=samplers, out_dir=out_dir, seed=seed, download_weights=download_weights)
    from latentstudio.evaluation import evaluate_model

    spec = _data_spec(data_name, data_root, data_option, download, strict, limit)
    report = evaluate_model(model_path, spec, extractor=extractor, n_samples=n_samples,
                            samplers=samplers.split(",") if samplers else None, out_dir=out_dir, seed=seed,
                            download_weights=download_weights)
    click.echo(f"report: {report}")


@cli.command()
@click.option("--runs-root", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True)
@friendly_errors
def quickstart(runs_root, seed, no_progress):
    """Train a two-stage VAE on the bundled real digits, sample three ways, evaluate.

    Needs no download (scikit-learn ships the 8x8 digits); about 3-4 minutes on 2 CPU cores.
    Prints where the report is.

    \b
    Example:
      latentstudio quickstart
    """
    from latentstudio.evaluation import quickstart as run_quickstart

    report = run_quickstart(runs_root=runs_root, seed=seed, progress=not no_progress)
    click.echo(f"\nreport: {report}")


def _register_command_modules() -> None:
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(cli)


_register_command_modules()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="latentstudio")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
