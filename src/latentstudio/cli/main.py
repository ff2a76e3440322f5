"""``latentstudio``: one verb per task, each a thin layer over :mod:`latentstudio.api`.

``train FAMILY`` builds a run-config dict and calls :func:`latentstudio.api.train`; ``sample``,
``reconstruct``, ``interpolate`` and ``evaluate`` work on a model of any family through the model
contract (:class:`~latentstudio.models.base.GenerativeModel`) and write what it returns by its
``output_kind``. The same concept has one spelling on every command (``--truncation-psi``,
``--temperature``, ``--seeds``, ``--data`` ...; see :mod:`latentstudio.cli.options`). User errors
(:class:`~latentstudio.errors.LatentStudioError`) become ``Error: ...`` and exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from latentstudio.cli import draw, sketch, studies, studio, stylegan2
from latentstudio.cli.options import (
    VerbGroup,
    apply_overrides,
    budget_options,
    data_options,
    data_spec,
    debug_option,
    drop_none,
    echo_train_result,
    friendly_errors,
    given_knobs,
    knob_options,
    model_knobs,
    parse_int_list,
    parse_pairs,
    read_config_file,
    run_options,
    seed_option,
    spec_options,
    train_command,
)
from latentstudio.presets import merge
from latentstudio.presets import preset as get_preset

__all__ = ["cli", "main"]


@click.group(cls=VerbGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="latentstudio")
@debug_option
def cli() -> None:
    """Train, sample and evaluate latent-variable generative models.

    The verbs work on a model of every family (two-stage VAE, DRAW, sketch-rnn, StyleGAN2).

    CPU threads: the command sets OMP_WAIT_POLICY=PASSIVE when it is not set (idle OpenMP threads sleep
    instead of spinning, so several threads stay fast on a CPU shared with other jobs); set it to keep
    another value.

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
@spec_options(presets="quickstart, cpu, paper", preset_default="quickstart",
              set_example="stage1.epochs=20 or model.stage1.latent_dim=32")
@click.option("--condition", type=click.Choice(["none", "class", "attributes"]), default="none", show_default=True,
              help="Conditional VAE on the class label (one-hot) or on attributes (CelebA's 40, +-1).")
@click.option("--latent-dim", type=int, default=None,
              help="Latent size of both stages (model.stage1/stage2.latent_dim; default: the preset's).")
@budget_options(epochs_help="Epochs of each stage (default: the preset's; --set stage2.epochs=N for stage 2 alone).",
                steps_help="Optimizer steps of each stage (default: none, the epochs decide).",
                cap_help="Wall-clock safety cap in minutes on the whole run: stage 1 stops at 3/4 of it, stage 2 "
                         "and the GMM at the cap, each at the next step (results are budgeted by --epochs / "
                         "--max-steps).")
@seed_option
@run_options
@friendly_errors
def train_two_stage(data_name, data_root, data_option, download, strict, limit, preset, config_file, overrides,
                    condition, latent_dim, epochs, max_steps, max_minutes, seed, devices, accelerator, runs_root, resume, dry_run, no_progress):
    """Two-Stage VAE (Dai & Wipf 2019): stage 1 on images, stage 2 on its latents, GMM ex post.

    Writes a numbered run directory with checkpoints, TensorBoard/CSV logs, per-epoch sample and
    reconstruction grids, and the exported model (run/model/).

    \b
    Examples:
      latentstudio train two-stage-vae --data digits
      latentstudio train two-stage-vae --data mnist --data-root ~/data --condition class --epochs 5
      latentstudio train two-stage-vae --data mnist --data-root ~/data --preset cpu --max-minutes 30
      latentstudio train two-stage-vae --resume runs/00002-two-stage-vae-mnist
    """
    spec = merge(get_preset("two-stage-vae", preset), read_config_file(config_file))
    stage = drop_none({"epochs": epochs, "max_steps": max_steps})
    stages = {"stage1": stage, "stage2": stage} if stage else {}
    latent = {"latent_dim": latent_dim} if latent_dim is not None else {}
    spec = merge(spec, {
        "data": data_spec(data_name, data_root, data_option, download, strict, limit),
        "model": {"stage1": {"condition": condition, **latent}, "stage2": latent}, **stages,
        "seed": seed, "devices": devices, "accelerator": accelerator, **drop_none({"max_minutes": max_minutes}),
    })
    if overrides:
        from latentstudio.training.config import TwoStageRunConfig  # lazy: imports torch

        spec = apply_overrides(merge(TwoStageRunConfig().to_dict(), spec), parse_pairs(overrides, "--set"))
    result = train_command("two-stage-vae", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                           dry_run=dry_run)
    echo_train_result(result, dry_run)


@cli.group()
def study() -> None:
    """Run a study: a resumable grid of experiments written to results.jsonl and a report.

    Re-running the same command in the same --out folder skips every finished cell.

    \b
    Example:
      latentstudio study --help
    """


# Commands of the families (train subcommands, family tools) and of the studio live in their own
# modules; each defines ``register(cli)``.


# ----------------------------------------------------------------------------- shared helpers


def parse_condition(text: str | None) -> Any:
    """``--condition``: a class index (``3``), or attribute ``index=+-1`` pairs (``31=1,20=-1``), or None."""
    if text is None:
        return None
    if text.strip().lstrip("-").isdigit():
        return int(text)
    pairs = parse_pairs(tuple(p for p in text.split(",") if p), "--condition")
    try:
        return {int(k): float(v) for k, v in pairs.items()}
    except (TypeError, ValueError):
        raise click.BadParameter(f"--condition must be a class index or index=value pairs, got {text!r}") from None


def _device(name: str) -> str:
    import torch  # lazy: slow import (CLI start-up)

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return name


def load_model(model_path: str, device: str = "cpu"):
    """``api.load`` of a model or run folder on ``device`` (cpu, cuda, cuda:1 or auto)."""
    from latentstudio import api  # lazy: imports torch

    return api.load(model_path, map_location=_device(device))


def _suffix_check(model, *paths: str | Path | None) -> None:
    """Fail before any work on a sketch picture type the renderer cannot write."""
    if model.output_kind != "sketches":
        return
    from latentstudio.io.strokes_render import FORMATS  # lazy: imports torch

    for p in paths:
        if p is not None and Path(p).suffix.lower() not in FORMATS:
            raise click.BadParameter(f"{p}: unknown picture type {Path(p).suffix!r}; use one of {', '.join(FORMATS)}")


def default_name(model, stem: str) -> str:
    """``stem`` with the default picture type of the model's outputs (``.svg`` sketches, ``.png`` images)."""
    return f"{stem}.svg" if model.output_kind == "sketches" else f"{stem}.png"


def _caption(model, knobs: dict[str, Any]) -> str:
    values = model.resolve_knobs(knobs)
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
                     if v is not None)


def write_outputs(model, outputs, *, out: str | None, out_dir: str | None, nrow: int | None, overwrite: bool,
                  caption: str = "", stem: str = "samples") -> list[Path]:
    """Write typed outputs: one grid (``out``, default ``<stem>.png`` / ``.svg``) unless only ``out_dir`` is
    given, and one file per output (``000000.png`` / ``000000.svg`` ...) in ``out_dir``."""
    written: list[Path] = []
    if model.output_kind == "sketches":
        from latentstudio.io.strokes_render import save_sketches  # lazy: imports torch

        strokes = outputs.strokes
        if out_dir:
            written += [save_sketches(Path(out_dir) / f"{i:06d}.svg", [s], overwrite=overwrite)
                        for i, s in enumerate(strokes)]
            click.echo(f"wrote {len(strokes)} sketches to {out_dir}")
        if out or not out_dir:
            path = save_sketches(out or default_name(model, stem), strokes, nrow=nrow, caption=caption or None,
                                 overwrite=overwrite)
            written.append(path)
            click.echo(f"wrote {path}")
        return written
    from latentstudio.io.images import save_folder, save_grid  # lazy: imports torch

    if out_dir:
        written += save_folder(outputs, out_dir, overwrite=overwrite)
        click.echo(f"wrote {len(outputs)} images to {out_dir}")
    if out or not out_dir:
        path = save_grid(outputs, out or default_name(model, stem), nrow=nrow, overwrite=overwrite)
        written.append(path)
        click.echo(f"wrote {path}")
    return written


def _conditions(model, data, cond_text: str | None):
    """The condition of data examples: ``--condition`` when given, else the data's own labels (conditional
    image models), else None."""
    if cond_text is not None:
        return parse_condition(cond_text)
    kind = model.condition_spec.kind
    if kind != "none" and hasattr(data, "conditions"):
        return data.conditions(kind)
    return None


# ----------------------------------------------------------------------------- sample


def sample_options(fn):
    """The options of ``sample`` (and of its deprecated alias ``generate``)."""
    opts = [
        click.option("--model", "model_path", required=True, type=click.Path(exists=True),
                     help="Model directory or run directory (any family)."),
        click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Number of samples (one generator)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generator of --n."),
        click.option("--seeds", default=None,
                     help="One sample per seed, e.g. 0-63,100 (overrides --n/--seed; StyleGAN2: the official rule)."),
        click.option("--condition", default=None,
                     help="Class models: a class index (e.g. 3); attribute models: idx=+-1 pairs, e.g. 31=1,20=-1."),
        knob_options,
        click.option("--out", type=click.Path(dir_okay=False), default=None,
                     help="Grid: .png for images; .svg, .png or .gif for sketches (default samples.png / .svg)."),
        click.option("--out-dir", type=click.Path(file_okay=False), default=None,
                     help="Write one file per sample here (000000.png / 000000.svg ...)."),
        click.option("--nrow", type=click.IntRange(min=1), default=None, help="Samples per grid row (default: about square)."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 or auto."),
        click.option("--overwrite", is_flag=True, help="Replace existing output files."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


@cli.command()
@sample_options
@friendly_errors
def sample(model_path, n, seed, seeds, condition, out, out_dir, nrow, device, overwrite, **knobs):
    """Sample a model of any family and write the samples.

    Images are written as a PNG grid (and one PNG per sample with --out-dir), sketches as SVG, PNG
    or an animated GIF. Sampling options are the family's own: --sampler (VAE family),
    --temperature (DRAW, sketch-rnn), --greedy (sketch-rnn), --truncation-psi, --truncation-cutoff
    and --noise-mode (StyleGAN2); an option the family lacks is an error naming its options.
    Models that draw in steps (DRAW) also write the drawing: <out>-steps.png and <out>.gif.

    \b
    Examples:
      latentstudio sample --model runs/00000-two-stage-vae-digits --sampler gmm --out gmm.png
      latentstudio sample --model RUN --seeds 0-15 --condition 7 --out-dir sevens/
      latentstudio sample --model models/ffhq --seeds 0-63 --truncation-psi 0.7 --out faces.png
      latentstudio sample --model runs/00003-sketch-rnn-aaron-sheep --n 16 --temperature 0.3 --out sheep.svg
    """
    from latentstudio import api  # lazy: imports torch
    from latentstudio.models.base import STEPS  # lazy: imports torch

    model = load_model(model_path, device)
    _suffix_check(model, out)
    values = model_knobs(model, given_knobs(knobs))
    seed_list = parse_int_list(seeds) if seeds else None
    cond = parse_condition(condition)
    if model.supports(STEPS):
        outputs, frames = _sample_steps(model, n, seed, seed_list, cond, values)
    else:
        outputs, frames = api.generate(model, n, seed=seed, seeds=seed_list, condition=cond, **values), None
    caption = _caption(model, values) if model.output_kind == "sketches" else ""
    write_outputs(model, outputs, out=out, out_dir=out_dir, nrow=nrow, overwrite=overwrite, caption=caption)
    if frames is not None:
        from latentstudio.models.draw.render import save_drawing  # lazy: imports torch

        # the drawing goes beside the grid (<out>-steps.png, <out>.gif), or into --out-dir when only that is given
        grid = Path(out) if out else (Path(out_dir) / "samples.png" if out_dir else Path("samples.png"))
        steps_png, gif = grid.with_name(f"{grid.stem}-steps.png"), grid.with_suffix(".gif")
        written = save_drawing(frames[:, :8], steps_png, None, overwrite=overwrite)
        written += save_drawing(frames[:, :16], None, gif, overwrite=overwrite)
        click.echo("wrote " + ", ".join(str(p) for p in written) + " (the canvas after every step)")


def _sample_steps(model, n, seed, seed_list, cond, knobs):
    """(samples, frames ``[T, N, C, H, W]``) of a model with the ``steps`` capability."""
    import torch  # lazy: slow import (CLI start-up)

    if seed_list is None:
        return model.sample_steps(n, generator=torch.Generator().manual_seed(int(seed)), condition=cond, **knobs)
    c = model.condition_spec.make(cond, len(seed_list))
    parts = [model.sample_steps(1, generator=model.seed_generator(s), condition=None if c is None else c[i : i + 1],
                                **knobs) for i, s in enumerate(seed_list)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts], dim=1)


# ----------------------------------------------------------------------------- reconstruct


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory (a family with an encoder).")
@data_options(default=None)
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True,
              help="Split of the data (valid: stroke files only).")
@click.option("--n", "n", type=click.IntRange(min=1), default=32, show_default=True,
              help="Number of examples to reconstruct.")
@click.option("--condition", default=None, help="Condition of every example (default: the data's own labels).")
@knob_options
@seed_option
@click.option("--nrow", type=click.IntRange(min=1), default=8, show_default=True, help="Examples per row.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Rows alternate originals and reconstructions: .png for images; .svg, .png or .gif for "
                   "sketches (default reconstructions.png / .svg).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@friendly_errors
def reconstruct(model_path, data_name, data_root, data_option, download, strict, limit, split, n, condition, seed,
                nrow, out, overwrite, **knobs):
    """Reconstruct examples of a dataset (decode of the posterior mean) beside the originals.

    Uses the dataset the model was trained on unless --data is given (a dataset name or a stroke
    file). A family without an encoder (StyleGAN2, decoder-only sketch-rnn) says what to use instead.

    \b
    Examples:
      latentstudio reconstruct --model runs/00000-two-stage-vae-digits --data digits --out recon.png
      latentstudio reconstruct --model runs/00003-sketch-rnn-aaron-sheep --n 8 --temperature 0.2 --out recon.svg
    """
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio import api  # lazy: imports torch
    from latentstudio.models.base import RECONSTRUCT  # lazy: imports torch

    model = load_model(model_path)
    model.require(RECONSTRUCT)
    _suffix_check(model, out)
    data = api.data_split(model, data_spec(data_name, data_root, data_option, download, strict, limit), split)
    data = data.subset(list(range(min(n, len(data)))))
    values = model_knobs(model, given_knobs(knobs))
    cond = _conditions(model, data, condition)
    if model.output_kind == "sketches":
        import numpy as np  # lazy: slow import (CLI start-up)

        from latentstudio.io.strokes_render import save_sketches  # lazy: imports torch

        rec = api.reconstruct(model, data.sketches, condition=cond, seed=seed, **values).strokes
        per = min(nrow, len(rec))
        blank = [np.zeros((0, 3), dtype=np.float32)]
        cells, labels = [], []
        for i in range(0, len(rec), per):
            pad = blank * (per - len(rec[i : i + per]))
            cells += list(data.sketches[i : i + per]) + pad + list(rec[i : i + per]) + pad
            labels += ["original", "reconstructed"]
        path = save_sketches(out or default_name(model, "reconstructions"), cells, nrow=per, row_labels=labels,
                             caption=f"reconstructions, {_caption(model, values)}", overwrite=overwrite)
    else:
        from latentstudio.io.images import save_grid  # lazy: imports torch

        recon = api.reconstruct(model, data.images, condition=cond, seed=seed, **values)
        per = min(nrow, len(recon))
        rows = []
        for i in range(0, len(recon), per):  # a short last row is padded with white cells
            pad = torch.full((per - len(recon[i : i + per]), *recon.shape[1:]), 255, dtype=torch.uint8)
            rows += [data.images[i : i + per], pad, recon[i : i + per], pad]
        nrow = per
        path = save_grid(torch.cat(rows), out or "reconstructions.png", nrow=nrow, overwrite=overwrite)
    click.echo(f"wrote {path}")


# ----------------------------------------------------------------------------- interpolate


def _two(text: str, flag: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{flag} must be two integers like 3,17, got {text!r}") from None
    return a, b


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory (any family).")
@data_options(default=None)
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True,
              help="Split holding the --pair examples (valid: stroke files only).")
@click.option("--pair", default=None,
              help="Ends: examples A,B of the split, encoded (default 0,1 for families with an encoder); with "
                   "--latents, latents A,B of the file (default 0,1).")
@click.option("--seeds", default=None,
              help="Ends: two latents A,B of the default space drawn from its prior with these seeds.")
@click.option("--latents", "latents_file", type=click.Path(dir_okay=False), default=None,
              help="Ends: two latents of a latent file (.npz from the studio, the latent explorer or project; "
                   "its space is used and checked against --model).")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True,
              help="Decoded outputs (ends included).")
@click.option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp", show_default=True)
@click.option("--space", default=None, help="Latent space (default: the model's first; StyleGAN2: z, w or w+).")
@click.option("--condition", default=None, help="Condition of every output (conditional models).")
@knob_options
@seed_option
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Strip .png (images, sketches) or .svg (sketches), or an animated .gif (default "
                   "interpolation.png / .svg).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@friendly_errors
def interpolate(model_path, data_name, data_root, data_option, download, strict, limit, split, pair, seeds,
                latents_file, steps, method, space, condition, seed, out, overwrite, **knobs):
    """Decode the latents between two ends: two encoded examples (--pair), two prior draws (--seeds) or
    two latents of a file (--latents, e.g. saved by the latent explorer; --pair picks which).

    With --pair the first and last cells of the strip show the two originals; between them, the
    outputs decoded from latents spaced from one posterior mean to the other. Latents of a file are
    decoded in the file's space as they are (W / W+ saved by the explorer already carry their
    truncation).

    \b
    Examples:
      latentstudio interpolate --model runs/00003-sketch-rnn-aaron-sheep --pair 3,17 --out strip.svg
      latentstudio interpolate --model RUN --method lerp --steps 6 --temperature 0 --out strip.png
      latentstudio interpolate --model models/ffhq --seeds 1,2 --truncation-psi 0.7 --out walk.gif
      latentstudio interpolate --model RUN --latents w_seeds0-3.npz --pair 0,2 --out walk.gif
    """
    import torch  # lazy: slow import (CLI start-up)

    from latentstudio import api  # lazy: imports torch
    from latentstudio.models.base import ENCODE  # lazy: imports torch

    if pair is not None and seeds is not None:
        raise click.UsageError("give either --pair (two examples) or --seeds (two prior latents), not both")
    if latents_file is not None and seeds is not None:
        raise click.UsageError("give either --latents (two latents of a file) or --seeds (two prior latents), not both")
    model = load_model(model_path)
    _suffix_check(model, out)
    values = model_knobs(model, given_knobs(knobs))
    cond = parse_condition(condition)
    originals, titles = None, None
    if latents_file is not None:
        found = api.read_latents(model, latents_file)
        if space not in (None, found.space):
            raise click.UsageError(f"{Path(latents_file).name} holds latents of {found.space}; drop --space {space}")
        if found.note:
            click.echo(f"note: {found.note}", err=True)
        ia, ib = _two(pair or "0,1", "--pair")
        a, b = found.pick(ia, ib)
        space = found.space
        if cond is None:
            cond = found.condition_of(ia)
        label = f"latents {ia} and {ib} of {found.path.name}"
    elif seeds is not None or (pair is None and not model.supports(ENCODE)):
        sa, sb = _two(seeds or "0,1", "--seeds")
        default = model.latent_space().name
        if space not in (None, default):
            raise click.UsageError(f"--seeds draws latents of the default space {default}; drop --space {space} "
                                   "or give --pair")
        shape = model.latent_space(space).shape
        a, b = (torch.randn(*shape, generator=model.seed_generator(s)) for s in (sa, sb))
        label = f"seeds {sa} and {sb}"
    else:
        model.require(ENCODE)
        ia, ib = _two(pair or "0,1", "--pair")
        data = api.data_split(model, data_spec(data_name, data_root, data_option, download, strict, limit), split)
        for i in (ia, ib):
            if not 0 <= i < len(data):
                raise click.BadParameter(f"--pair: index {i} is outside the {split} split (0..{len(data) - 1})")
        ends = data.subset([ia, ib])
        data_cond = _conditions(model, ends, condition)
        if model.output_kind == "sketches":
            originals = list(ends.sketches)
            a, b = originals
        else:
            originals = ends.images
            a, b = originals[0], originals[1]
        if cond is None and data_cond is not None:  # encode each end with its own label; decode with the first
            a = api.encode(model, a[None], condition=data_cond[:1]).mean[0].reshape(model.latent_space(space).shape)
            b = api.encode(model, b[None], condition=data_cond[1:]).mean[0].reshape(model.latent_space(space).shape)
            cond = data_cond[:1]
        titles = [f"{split}[{ia}]", f"{split}[{ib}]"]
        label = f"{split}[{ia}] and {split}[{ib}]"
    path_out = api.interpolate(model, a, b, steps=steps, method=method, space=space, condition=cond, seed=seed,
                               **values)
    target = Path(out or default_name(model, "interpolation"))
    if model.output_kind == "sketches":
        from latentstudio.io.strokes_render import save_sketches  # lazy: imports torch

        cells = list(path_out.strokes)
        names = [f"{t:.2f}" for t in (i / (steps - 1) for i in range(steps))]
        if originals is not None:
            cells, names = [originals[0], *cells, originals[1]], [titles[0], *names, titles[1]]
        written = save_sketches(target, cells, nrow=len(cells), titles=names, overwrite=overwrite,
                                caption=f"{method} between {label}, {_caption(model, values)}")
    elif target.suffix.lower() == ".gif":
        from latentstudio.io.media import write_gif  # lazy: imports numpy

        written = write_gif(path_out, target, fps=8, overwrite=overwrite)
    else:
        from latentstudio.io.images import save_grid  # lazy: imports torch

        cells = path_out if originals is None else torch.cat([originals[:1], path_out, originals[1:]])
        written = save_grid(cells, target, nrow=len(cells), overwrite=overwrite)
    click.echo(f"wrote {written}")


# ----------------------------------------------------------------------------- evaluate


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="Model directory or run directory (any family).")
@data_options(default=None)
@click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier", show_default=True,
              help="Features for FID/KID/IS: a classifier trained here (fid_clf) or standard Inception (fid).")
@click.option("--n-samples", type=click.IntRange(min=1), default=None,
              help="Generated samples per setting (default: test-set size).")
@click.option("--samplers", default=None, help="VAE family: comma-separated samplers (default: all fitted).")
@click.option("--truncation-psi", type=float, default=None, help="StyleGAN2: truncation psi of the samples.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Other option of the family's evaluator, e.g. nll_samples=50 (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Report folder (default: <run>/eval).")
@seed_option
@click.option("--download-weights", is_flag=True, help="Let the Inception extractor download its weights.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@friendly_errors
def evaluate(model_path, data_name, data_root, data_option, download, strict, limit, extractor, n_samples, samplers,
             truncation_psi, options, out_dir, seed, download_weights, no_progress):
    """Evaluate a model with its family's evaluator; writes metrics.jsonl and report.md.

    Uses the test split of the dataset the model was trained on unless --data is given. What is
    measured depends on the family (FID/KID/IS per sampler and reconstruction for the VAE family,
    per-step analysis and NLL for DRAW, L_R/L_s/L_p/L_KL in nats for sketch-rnn, FID/KID/PPL for
    StyleGAN2).

    \b
    Examples:
      latentstudio evaluate --model runs/00000-two-stage-vae-digits
      latentstudio evaluate --model RUN --data mnist --data-root ~/data --extractor inception
      latentstudio evaluate --model models/ffhq --data folder --data-option path=ffhq.zip --truncation-psi 0.7
    """
    from latentstudio import api  # lazy: imports torch

    family_options = parse_pairs(options, "--option")
    if samplers:
        family_options["samplers"] = [s.strip() for s in samplers.split(",") if s.strip()]
    if truncation_psi is not None:
        family_options["truncation_psi"] = truncation_psi
    spec = data_spec(data_name, data_root, data_option, download, strict, limit)
    data = spec if spec["name"] or any(spec[k] for k in ("root", "options", "limit", "download", "strict")) else None
    report = api.evaluate(model_path, data, extractor=extractor, n_samples=n_samples, out_dir=out_dir, seed=seed,
                          download_weights=download_weights, progress=not no_progress, **family_options)
    click.echo(f"report: {report}")


# ----------------------------------------------------------------------------- generate (deprecated)


@cli.command("generate", hidden=True)
@sample_options
@click.option("--latents", "latents_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="StyleGAN2: saved latents instead of seeds: .npz with 'w' [N, num_ws, 512] / [N, 512] or 'z'; "
                   "or .npy.")
@click.option("--latent-space", type=click.Choice(["auto", "z", "w"]), default="auto", show_default=True,
              help="StyleGAN2: how to read a 2-D .npy file (auto: w).")
@click.option("--mix-seeds", default=None, help="StyleGAN2 style-mixing grid: columns from these seeds, rows from --seeds.")
@click.option("--mix-styles", default="0-6", show_default=True,
              help="Style indices copied from the column seed (0-6 = coarse + middle at 1024; 'all').")
@click.option("--save-latents", type=click.Path(dir_okay=False), default=None,
              help="StyleGAN2: also write the z and w+ latents used (.npz: z, w, seeds).")
@click.pass_context
@friendly_errors
def generate(ctx, latents_file, latent_space, mix_seeds, mix_styles, save_latents, **params):
    """Deprecated: use `latentstudio sample` (same options). StyleGAN2's saved latents, style mixing
    and --save-latents still work here.

    \b
    Examples:
      latentstudio sample --model models/ffhq --seeds 0-63 --truncation-psi 0.7 --out faces.png
      latentstudio generate --model models/ffhq --latents projected_w.npz --out projected.png
      latentstudio generate --model models/ffhq --seeds 85,100,75 --mix-seeds 458,1500,1800 --out mixing.png
    """
    click.echo("Warning: 'latentstudio generate' is deprecated; use 'latentstudio sample'", err=True)
    if not (latents_file or mix_seeds or save_latents):
        return ctx.invoke(sample, **params)

    stylegan2.generate_latents(load_model(params["model_path"], params["device"]), params, latents_file=latents_file,
                               latent_space=latent_space, mix_seeds=mix_seeds, mix_styles=mix_styles,
                               save_latents=save_latents, condition=parse_condition(params.get("condition")))


@cli.command()
@click.option("--runs-root", type=click.Path(file_okay=False), default="runs", show_default=True)
@seed_option
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@friendly_errors
def quickstart(runs_root, seed, no_progress):
    """Train a two-stage VAE on the bundled real digits, sample three ways, evaluate.

    Needs no download (scikit-learn ships the 8x8 digits); about 4 minutes on 2 CPU cores.
    Prints where the report is.

    \b
    Example:
      latentstudio quickstart
    """
    from latentstudio.training.quickstart import quickstart as run_quickstart  # lazy: imports torch

    report = run_quickstart(runs_root=runs_root, seed=seed, progress=not no_progress)
    click.echo(f"\nreport: {report}")


for _module in (draw, sketch, stylegan2, studies, studio):  # each adds its family's commands
    _module.register(cli)


def main() -> None:
    """Console-script entry point.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it: idle OpenMP threads then sleep instead of
    spinning, without which 2 threads on a CPU shared with other jobs ran about 5x slower than 1
    (benchmarks/results/efficiency.json). OpenMP reads the variable once, when torch first loads it; the
    commands import torch lazily, after this line. ``import latentstudio`` never touches the environment.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cli(prog_name="latentstudio")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
