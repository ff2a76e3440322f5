"""DRAW commands: ``train draw``, ``study draw-timesteps``, and the DRAW paths of ``sample`` / ``evaluate``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from latentstudio.cli.options import apply_overrides, parse_int_list, parse_pairs, run_options


def _main():
    from latentstudio.cli import main

    return main


def _train_command():
    m = _main()

    @click.command("draw")
    @m.data_options
    @click.option("--preset", default="quickstart", show_default=True,
                  help="Starting config: quickstart (digits, ~1 min / 10 epochs), cpu (MNIST benchmark), paper.")
    @click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="JSON run config (the layout of a run's run.json 'config'); applied after the preset.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Dotted override, e.g. model.enc_dim=128 or train.lr=3e-4 (repeatable).")
    @click.option("--attention/--no-attention", default=None,
                  help="Gaussian filterbank read/write patches, or read the whole image and write densely "
                       "(default: the preset's, attention).")
    @click.option("--steps", type=int, default=None, help="T, the number of drawing steps.")
    @click.option("--latent-dim", type=int, default=None, help="Latent size per step (total = steps x latent-dim).")
    @click.option("--read-n", type=int, default=None, help="N of the N x N read patch (attention).")
    @click.option("--write-n", type=int, default=None, help="N of the N x N write patch (attention).")
    @click.option("--lstm-dim", type=int, default=None, help="Size of both LSTMs (encoder and decoder).")
    @click.option("--decoder", type=click.Choice(["bernoulli", "gaussian"]), default=None,
                  help="Reconstruction term: Bernoulli (BCE) or Gaussian with fixed sd (MSE). Default bernoulli.")
    @click.option("--condition", type=click.Choice(["none", "class"]), default="none", show_default=True,
                  help="Conditional DRAW on the one-hot class label.")
    @click.option("--binarize", type=click.Choice(["none", "threshold"]), default=None,
                  help="Threshold the training images at 0.5 (binarised MNIST). Default: the preset's.")
    @click.option("--epochs", type=int, default=None, help="Training epochs (default: the preset's).")
    @click.option("--max-minutes", type=float, default=None, help="Stop training after this wall-clock budget.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @run_options
    @m.friendly_errors
    def train_draw(data_name, data_root, data_option, download, strict, limit, preset, config_file, overrides,
                   attention, steps, latent_dim, read_n, write_n, lstm_dim, decoder, condition, binarize, epochs,
                   max_minutes, seed, devices, accelerator, runs_root, resume, dry_run, no_progress):
        """DRAW (Gregor et al. 2015): a recurrent canvas drawn in T steps, with or without attention.

        Writes a numbered run directory with checkpoints, TensorBoard/CSV logs, per-epoch sample and
        reconstruction grids, the exported model (run/model/), and the final model drawing 16
        samples (samples-steps.png, canvas.gif).

        \b
        Examples:
          latentstudio train draw --data digits
          latentstudio train draw --data mnist --data-root ~/data --data-option pad=0 --preset cpu --no-attention
          latentstudio train draw --data mnist --data-option pad=0 --condition class --steps 8 --epochs 5
          latentstudio train draw --resume runs/00001-draw-mnist
        """
        from latentstudio import api
        from latentstudio.presets import merge
        from latentstudio.training.draw import DRAWRunConfig, draw_preset

        spec = draw_preset(preset)
        if config_file:
            spec = merge(spec, json.loads(Path(config_file).read_text()))
        model = {k: v for k, v in {"attention": attention, "steps": steps, "latent_dim": latent_dim, "read_n": read_n,
                                   "write_n": write_n, "decoder": decoder, "condition": condition}.items()
                 if v is not None}
        if lstm_dim is not None:
            model.update(enc_dim=lstm_dim, dec_dim=lstm_dim)
        train = {k: v for k, v in {"epochs": epochs, "max_minutes": max_minutes}.items() if v is not None}
        spec = merge(spec, {
            "data": m._data_spec(data_name, data_root, data_option, download, strict, limit),
            "model": model, "train": train, "seed": seed, "devices": devices, "accelerator": accelerator,
        })
        if binarize is not None:
            spec["binarize"] = binarize
        if overrides:
            full = merge(DRAWRunConfig().to_dict(), spec)
            spec = apply_overrides(full, parse_pairs(overrides, "--set"))
        result = api.train("draw", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                           dry_run=dry_run)
        if dry_run:
            click.echo(result.to_json())
            return
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            click.echo(f"run directory: {result.run_dir}\nmodel: {result.model_dir}\n"
                       f"drawing: {result.run_dir / 'canvas.gif'}")

    return train_draw


def _study_command():
    m = _main()

    @click.command("draw-timesteps")
    @m.data_options
    @click.option("--steps", "steps_list", default="1,2,4,8,16", show_default=True,
                  help="Values of T to sweep (comma-separated; each must divide --total-latent).")
    @click.option("--total-latent", type=int, default=32, show_default=True,
                  help="Total latent size T x latent-per-step, fixed across the sweep.")
    @click.option("--attention/--no-attention", default=False, show_default=True,
                  help="Attention (read/write N x N patches) or whole-image read and dense write.")
    @click.option("--lstm-dim", type=int, default=128, show_default=True, help="Size of both LSTMs.")
    @click.option("--epochs", type=int, default=5, show_default=True, help="Training epochs per value of T.")
    @click.option("--max-minutes", type=float, default=None, help="Also stop each training after this many minutes.")
    @click.option("--batch-size", type=int, default=100, show_default=True)
    @click.option("--lr", type=float, default=1e-3, show_default=True)
    @click.option("--binarize", type=click.Choice(["none", "threshold"]), default="threshold", show_default=True)
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Other DRAW model fields for every cell, e.g. read_n=3 or decoder=gaussian (repeatable).")
    @click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier",
                  show_default=True)
    @click.option("--n-samples", type=int, default=None, help="Generated images per cell (default: test-set size).")
    @click.option("--nll-samples", type=int, default=50, show_default=True, help="Importance samples K of the NLL.")
    @click.option("--nll-images", type=int, default=500, show_default=True, help="Test images of the NLL.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), default="studies/draw-timesteps",
                  show_default=True, help="Study folder; re-running the same command there resumes it.")
    @click.option("--runs-root", type=click.Path(file_okay=False), default=None,
                  help="Folder of the training runs (checkpoints) of the cells. Default: <out>/runs.")
    @click.option("--overwrite", is_flag=True, help="Discard the results of a study with another protocol in --out.")
    @click.option("--no-progress", is_flag=True)
    @m.friendly_errors
    def study_draw_timesteps(data_name, data_root, data_option, download, strict, limit, steps_list, total_latent,
                             attention, lstm_dim, epochs, max_minutes, batch_size, lr, binarize, overrides, extractor,
                             n_samples, nll_samples, nll_images, seed, out_dir, runs_root, overwrite, no_progress):
        """Sweep DRAW's number of steps T with the total latent size fixed (the thesis' study).

        For every T: trains DRAW with total-latent / T latents per step, evaluates it
        (reconstruction error, fid_clf, importance-sampled NLL, inactive latents, KL per step) and
        writes one report (report.md + plots versus T). Interrupted studies resume where they
        stopped (finished cells are kept; an unfinished training continues from its checkpoint).

        \b
        Examples:
          latentstudio study draw-timesteps --data digits --epochs 20 --out studies/draw-t-digits
          latentstudio study draw-timesteps --data mnist --data-root ~/data --data-option pad=0 --limit 10000 \\
              --steps 1,2,4,8,16 --total-latent 32 --epochs 3
        """
        from latentstudio.studies.draw_timesteps import run_draw_timesteps

        model = parse_pairs(overrides, "--set")
        model.update(attention=attention, enc_dim=lstm_dim, dec_dim=lstm_dim)
        train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "grad_clip": 10.0}
        if max_minutes is not None:
            train["max_minutes"] = max_minutes
        report = run_draw_timesteps(
            out_dir, data_spec=m._data_spec(data_name, data_root, data_option, download, strict, limit),
            steps=parse_int_list(steps_list), total_latent=total_latent, model=model, train=train, binarize=binarize,
            seed=seed, extractor=extractor, n_samples=n_samples, nll_samples=nll_samples, nll_images=nll_images,
            runs_root=runs_root, overwrite=overwrite, progress=not no_progress)
        click.echo(f"report: {report}")

    return study_draw_timesteps


def sample_draw(model_path, *, sampler, n, seed, seeds, condition, out, out_dir, temperature, overwrite) -> None:
    """``latentstudio sample`` for DRAW: the samples, plus their drawing (per-step grid PNG and GIF)."""
    import torch

    from latentstudio import api
    from latentstudio.io.images import save_folder, save_grid
    from latentstudio.models.draw.render import generation_frames, save_drawing

    if sampler not in ("second-stage", "normal", "prior"):
        raise click.UsageError("DRAW samples z_t ~ N(0, I) at every step itself; drop --sampler (or use prior)")
    if condition is not None and not condition.strip().isdigit():
        raise click.UsageError(f"--condition for DRAW is a class index such as 3, got {condition!r}")
    model = api.load(model_path)
    t = 1.0 if temperature is None else temperature
    if not t > 0:
        raise click.UsageError(f"--temperature must be > 0, got {t}")
    seed_list = parse_int_list(seeds) if seeds else None
    count = len(seed_list) if seed_list else n
    if count < 1:
        raise click.UsageError("--n must be >= 1")
    cond = model.condition_spec.make(None if condition is None else int(condition), count)
    if seed_list:
        parts = [generation_frames(model, 1, None if cond is None else cond[i : i + 1],
                                   torch.Generator().manual_seed(s), temperature=t) for i, s in enumerate(seed_list)]
        images, frames = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts], dim=1)
    else:
        images, frames = generation_frames(model, count, cond, torch.Generator().manual_seed(seed), temperature=t)
    # the drawing goes beside the grid (<out>-steps.png, <out>.gif), or into --out-dir when only that is given
    grid = Path(out) if out else (Path(out_dir) / "samples.png" if out_dir else Path("samples.png"))
    steps_png, gif = grid.with_name(f"{grid.stem}-steps.png"), grid.with_suffix(".gif")
    if out_dir:
        paths = save_folder(images, out_dir, overwrite=overwrite)
        click.echo(f"wrote {len(paths)} images to {out_dir}")
    if out or not out_dir:
        click.echo(f"wrote {save_grid(images, grid, overwrite=overwrite)}")
    written = save_drawing(frames[:, :8], steps_png, None, overwrite=overwrite)
    written += save_drawing(frames[:, :16], None, gif, overwrite=overwrite)
    click.echo("wrote " + ", ".join(str(p) for p in written) + " (the canvas after every step)")


def evaluate_draw_handler(model_path, *, data_name, data_root, data_option, download, strict, limit, extractor,
                          n_samples, samplers, out_dir, seed, download_weights) -> None:
    """``latentstudio evaluate`` for DRAW (see :func:`latentstudio.training.draw.evaluate_draw`)."""
    from latentstudio.training.draw import evaluate_draw

    if samplers:
        raise click.UsageError("DRAW has no latent samplers (z_t ~ N(0, I) at every step); drop --samplers")
    spec = _main()._data_spec(data_name, data_root, data_option, download, strict, limit)
    report = evaluate_draw(model_path, spec, extractor=extractor, n_samples=n_samples, out_dir=out_dir, seed=seed,
                           download_weights=download_weights)
    click.echo(f"report: {report}")


def register(cli: click.Group) -> None:
    """Add ``train draw`` and ``study draw-timesteps``; route ``sample`` / ``evaluate`` of DRAW models here."""
    m = _main()
    cli.commands["train"].add_command(_train_command())
    cli.commands["study"].add_command(_study_command())
    m.SAMPLE_HANDLERS["draw"] = sample_draw
    m.EVALUATE_HANDLERS["draw"] = evaluate_draw_handler
