"""DRAW commands: ``train draw`` and ``study draw-timesteps`` (``sample``, ``reconstruct``, ``interpolate`` and
``evaluate`` are the generic verbs of :mod:`latentstudio.cli.main`)."""

from __future__ import annotations

import click

from latentstudio.cli.options import (
    apply_overrides,
    budget_options,
    data_options,
    data_spec,
    drop_none,
    echo_train_result,
    friendly_errors,
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


def _train_command():
    @click.command("draw")
    @data_options
    @spec_options(presets="quickstart (digits, ~1 min / 10 epochs), cpu (MNIST benchmark), paper",
                  preset_default="quickstart", set_example="model.enc_dim=128 or train.lr=3e-4")
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
    @budget_options(epochs_help="Training epochs (default: the preset's).")
    @seed_option
    @run_options
    @friendly_errors
    def train_draw(data_name, data_root, data_option, download, strict, limit, preset, config_file, overrides,
                   attention, steps, latent_dim, read_n, write_n, lstm_dim, decoder, condition, binarize, epochs,
                   max_steps, max_minutes, seed, devices, accelerator, runs_root, resume, dry_run, no_progress):
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
        from latentstudio.training.draw import DRAWRunConfig  # lazy: imports torch

        spec = merge(get_preset("draw", preset), read_config_file(config_file))
        model = drop_none({"attention": attention, "steps": steps, "latent_dim": latent_dim, "read_n": read_n,
                           "write_n": write_n, "decoder": decoder, "condition": condition})
        if lstm_dim is not None:
            model.update(enc_dim=lstm_dim, dec_dim=lstm_dim)
        spec = merge(spec, {
            "data": data_spec(data_name, data_root, data_option, download, strict, limit),
            "model": model, "train": drop_none({"epochs": epochs, "max_steps": max_steps, "max_minutes": max_minutes}),
            "seed": seed,
            "devices": devices, "accelerator": accelerator, **drop_none({"binarize": binarize}),
        })
        if overrides:
            spec = apply_overrides(merge(DRAWRunConfig().to_dict(), spec), parse_pairs(overrides, "--set"))
        result = train_command("draw", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                               dry_run=dry_run)
        echo_train_result(result, dry_run, "" if dry_run else f"\ndrawing: {result.run_dir / 'canvas.gif'}")

    return train_draw


def _study_command():
    @click.command("draw-timesteps")
    @data_options
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
    @friendly_errors
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
        from latentstudio.studies.draw_timesteps import run_draw_timesteps  # lazy: imports torch

        model = parse_pairs(overrides, "--set")
        model.update(attention=attention, enc_dim=lstm_dim, dec_dim=lstm_dim)
        train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "grad_clip": 10.0}
        if max_minutes is not None:
            train["max_minutes"] = max_minutes
        report = run_draw_timesteps(
            out_dir, data_spec=data_spec(data_name, data_root, data_option, download, strict, limit),
            steps=parse_int_list(steps_list), total_latent=total_latent, model=model, train=train, binarize=binarize,
            seed=seed, extractor=extractor, n_samples=n_samples, nll_samples=nll_samples, nll_images=nll_images,
            runs_root=runs_root, overwrite=overwrite, progress=not no_progress)
        click.echo(f"report: {report}")

    return study_draw_timesteps


def register(cli: click.Group) -> None:
    """Add ``train draw`` and ``study draw-timesteps``."""
    cli.commands["train"].add_command(_train_command())
    cli.commands["study"].add_command(_study_command())
