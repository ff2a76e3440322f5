"""sketch-rnn commands: ``train sketch-rnn``, ``complete`` and ``render`` (``sample``, ``reconstruct``,
``interpolate`` and ``evaluate`` are the generic verbs of :mod:`latentstudio.cli.main`)."""

from __future__ import annotations

from pathlib import Path

import click

from latentstudio.cli.options import (
    apply_overrides,
    budget_options,
    drop_none,
    friendly_errors,
    parse_int_list,
    parse_pairs,
    read_config_file,
    run_options,
    seed_option,
    spec_options,
)
from latentstudio.errors import CheckpointError, LatentStudioError
from latentstudio.presets import merge

DEFAULT_TEMPERATURE = 0.5


# ----------------------------------------------------------------------------- helpers


def _load(model_path: str):
    """(model, model_dir, meta) of a sketch-rnn model or run directory."""
    from latentstudio import api  # lazy: imports torch
    from latentstudio.models.sketch_rnn import SketchRNN  # lazy: imports torch

    model = api.load(model_path)
    if not isinstance(model, SketchRNN):
        raise CheckpointError(f"{model.path} holds a {model.model_type} model, not a sketch-rnn model")
    return model, model.path, model.meta


def _split(model, meta: dict, data: str | None, split: str):
    """The ``split`` of ``data`` (default: the model's training data with its class filter, split rule and
    limit), normalised by the model's scale factor."""
    from latentstudio import api  # lazy: imports torch

    return api.data_split(model, data, split)


def _temperature(value: float | None, default: float = DEFAULT_TEMPERATURE) -> tuple[float, bool]:
    """(tau, greedy): ``0`` means greedy decoding."""
    tau = default if value is None else value
    if tau < 0:
        raise click.BadParameter(f"--temperature must be >= 0 (0 = greedy), got {tau}")
    return (1.0, True) if tau == 0 else (tau, False)


def _generator(seed: int):
    import torch  # lazy: slow import (CLI start-up)

    return torch.Generator().manual_seed(seed)


def _check_out(path: str | None) -> None:
    """Fail fast on an output name the renderer cannot write (before any sampling)."""
    from latentstudio.io.strokes_render import FORMATS  # lazy: imports torch

    if path and Path(path).suffix.lower() not in FORMATS:
        raise LatentStudioError(f"{path}: unknown picture type {Path(path).suffix!r}; use one of {list(FORMATS)}")


def _save(path: str, sketches, overwrite: bool, **kw) -> None:
    from latentstudio.io.strokes_render import save_sketches  # lazy: imports torch

    click.echo(f"wrote {save_sketches(path, sketches, overwrite=overwrite, **kw)}")


def _fmt_tau(tau: float, greedy: bool) -> str:
    return "greedy" if greedy else f"tau {tau:g}"


# ----------------------------------------------------------------------------- train


@click.command("sketch-rnn")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Strokes: a sketch-rnn .npz (train/valid/test) or a Quick, Draw! .ndjson(.gz).")
@spec_options(presets="default (the reference hyperparameters), cpu (smaller LSTMs (128x2/256) and KL annealing "
                      "over ~2k steps for hour-long CPU runs), tiny (seconds-per-step smoke runs)",
              preset_default="default", preset_choices=("default", "cpu", "tiny"),
              set_example="model.dec_model=layer_norm or train.batch_size=64")
@click.option("--dec-model", type=click.Choice(["lstm", "layer_norm", "hyper"]), default=None,
              help="Decoder cell (default: the preset's, lstm).")
@click.option("--unconditional", is_flag=True, help="Decoder only (no encoder, no latent).")
@click.option("--latent-dim", type=int, default=None, help="Latent size (default: the preset's).")
@budget_options(epochs_help="Passes over the training split (default: none; --max-steps, the preset's, decides).",
                steps_help="Optimizer steps (default: the preset's); whichever of --epochs and --max-steps ends first.")
@click.option("--epsilon", type=float, default=None, help="ndjson: RDP simplification tolerance in pixels (2.0).")
@click.option("--words", default=None, help="ndjson: comma-separated classes to keep, e.g. cat,pig.")
@click.option("--limit", type=int, default=None, help="Use at most N sketches per split.")
@seed_option
@click.option("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine).")
@run_options
def train_sketch_rnn_cmd(data_path, preset, config_file, overrides, dec_model, unconditional, latent_dim, epochs,
                         max_steps, max_minutes, epsilon, words, limit, seed, threads, devices, accelerator, runs_root, resume,
                         dry_run, no_progress):
    """sketch-rnn (Ha & Eck 2017): bidirectional-LSTM encoder, mixture-density LSTM decoder.

    Trains on stroke data with the reference optimisation (Adam, lr 1e-3 decaying to 1e-5,
    gradient elements clipped to +-1, KL weight annealed to 0.5 with a 0.2 floor) and writes a
    numbered run directory: run.json, train/checkpoints (resumable), train/logs, train/eval.jsonl
    (valid and test losses in nats), train/samples (SVG/PNG at tau 0.5), and model/ with the
    data's scale factor.

    \b
    Examples:
      latentstudio train sketch-rnn --data aaron_sheep.npz
      latentstudio train sketch-rnn --data cat.ndjson --preset cpu --max-steps 5000 --threads 1
      latentstudio train sketch-rnn --data sheep.npz --dec-model layer_norm --set train.batch_size=64
      latentstudio train sketch-rnn --resume runs/00003-sketch-rnn-aaron-sheep
    """
    from latentstudio import api  # lazy: imports torch

    spec: dict = {}
    if not resume:
        if not data_path:
            raise click.UsageError("--data is required (a sketch-rnn .npz or a Quick, Draw! .ndjson)")
        data = drop_none({"path": str(Path(data_path).expanduser()), "epsilon": epsilon, "limit": limit})
        if words:
            data["words"] = [w.strip() for w in words.split(",") if w.strip()]
        model = drop_none({"dec_model": dec_model, "latent_dim": latent_dim})
        if unconditional:
            model["conditional"] = False
        spec = merge(read_config_file(config_file), {
            "data": data, "model": model, "train": drop_none({"epochs": epochs, "max_steps": max_steps,
                                                      "max_minutes": max_minutes}),
            "seed": seed, "threads": threads, "devices": devices, "accelerator": accelerator,
        })
        spec["preset"] = preset
        if overrides:
            resolved = api.train("sketch-rnn", spec, dry_run=True)
            spec = apply_overrides(resolved.to_dict(), parse_pairs(overrides, "--set"))
    else:  # a resumed run keeps its config; only its wall-clock cap may change
        spec = {"train": drop_none({"max_minutes": max_minutes})}
    result = api.train("sketch-rnn", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                       dry_run=dry_run)
    if dry_run:
        click.echo(result.to_json())
        return
    t = result.test
    if t:
        kl = f", L_KL {t['kl']:.4f}" if "kl" in t else ""
        click.echo(f"test (nats): L_R {t['recon']:.4f} (L_s {t['l_s']:.4f}, L_p {t['l_p']:.4f}){kl}")
    click.echo(f"run directory: {result.run_dir}\nmodel: {result.model_dir}")


# ----------------------------------------------------------------------------- complete / render


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help="Model or run directory.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Stroke file holding the sketch (default: the model's training file).")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--index", "indices", default="0", show_default=True, help="Sketches to complete, e.g. 0-3,7.")
@click.option("--keep", type=float, default=0.4, show_default=True,
              help="Part of each sketch given to the model: a fraction (< 1) or a number of points.")
@click.option("--n", "n", type=int, default=6, show_default=True, help="Completions per sketch.")
@click.option("--temperature", type=float, default=DEFAULT_TEMPERATURE, show_default=True, help="tau; 0 = greedy.")
@click.option("--latent", type=click.Choice(["encode", "prior"]), default="encode", show_default=True,
              help="Conditional models: z = posterior mean of the partial sketch, or a fresh N(0, I) draw.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="completions.svg", show_default=True,
              help=".svg, .png or .gif. One row per sketch: the original, then the completions (given part in red).")
@click.option("--overwrite", is_flag=True)
def complete(model_path, data_path, split, indices, keep, n, temperature, latent, seed, out, overwrite):
    """Complete partial sketches: the decoder reads the first points, then draws the rest.

    \b
    Examples:
      latentstudio complete --model runs/00003-sketch-rnn-aaron-sheep --index 0-3 --keep 0.3 --out done.svg
      latentstudio complete --model RUN --index 5 --keep 20 --n 8 --latent prior --out done.png
    """
    from latentstudio.models.sketch_rnn.explore import complete as run  # lazy: imports torch
    from latentstudio.models.sketch_rnn.explore import truncate  # lazy: imports torch

    _check_out(out)
    model, _, meta = _load(model_path)
    data = _split(model, meta, data_path, split)
    idx = parse_int_list(indices)
    tau, greedy = _temperature(temperature)
    keep_v = int(keep) if keep >= 1 else keep
    cells, prefixes, labels = [], [], []
    g = _generator(seed)
    for i in idx:
        full = data.subset([i]).sketches[0]
        part = truncate(full, keep_v)
        res = run(model, part, n, temperature=tau, greedy=greedy, latent=latent, generator=g)
        cells += [full, *res.strokes]
        prefixes += [len(part)] * (n + 1)
        labels.append(f"{split}[{i}]")
    _save(out, cells, overwrite, nrow=n + 1, prefix_lengths=prefixes, row_labels=labels,
          caption=f"completions ({_fmt_tau(tau, greedy)}); first column: the original, red: the given part")


@click.command()
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Stroke file to draw (.npz or .ndjson); without --model its sketches are drawn as they are.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--index", "indices", default="0-15", show_default=True, help="Sketches to draw, e.g. 0-15.")
@click.option("--model", "model_path", type=click.Path(exists=True), default=None,
              help="With --temperatures: a temperature grid of samples; with --reconstruct: reconstructions.")
@click.option("--temperatures", default=None, help="Comma-separated tau values, one row each, e.g. 0.1,0.3,0.5,0.7,0.9.")
@click.option("--n", "n", type=int, default=8, show_default=True, help="Temperature grid: sketches per row.")
@click.option("--reconstruct", is_flag=True, help="Rows of originals (--data/--index) and their reconstructions.")
@click.option("--temperature", type=float, default=0.2, show_default=True, help="Reconstruction tau; 0 = greedy.")
@click.option("--nrow", type=int, default=None, help="Sketches per row (default: about square).")
@click.option("--cell", type=int, default=128, show_default=True, help="Cell size in pixels.")
@click.option("--frames", type=int, default=40, show_default=True, help=".gif: animation frames.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="sketches.svg", show_default=True,
              help=".svg, .png or .gif (animated drawing).")
@click.option("--overwrite", is_flag=True)
def render(data_path, split, indices, model_path, temperatures, n, reconstruct, temperature, nrow, cell, frames,
           seed, out, overwrite):
    """Draw sketches as SVG, PNG or an animated GIF: from a stroke file, a temperature grid or reconstructions.

    \b
    Examples:
      latentstudio render --data aaron_sheep.npz --index 0-15 --out sheep.svg
      latentstudio render --data cat.ndjson --split train --index 0-3 --out cats.gif
      latentstudio render --model RUN --temperatures 0.1,0.3,0.5,0.7,0.9 --n 8 --out tau-grid.svg
      latentstudio render --model RUN --reconstruct --index 0-7 --out recon.png
    """
    from latentstudio.io.strokes_render import GridStyle, save_sketches  # lazy: imports torch

    _check_out(out)
    style = GridStyle(cell=cell)
    idx = parse_int_list(indices)
    if model_path and temperatures:
        import torch  # lazy: slow import (CLI start-up)

        model, _, meta = _load(model_path)
        taus = [float(t) for t in temperatures.split(",") if t.strip()]
        g = _generator(seed)
        z = torch.randn(n, model.config.latent_dim, generator=g) if model.config.conditional else None
        cells, labels = [], []
        for tau in taus:
            t, greedy = _temperature(tau)
            cells += model.generate(n, z=z, temperature=t, greedy=greedy, generator=_generator(seed + 1)).strokes
            labels.append(_fmt_tau(t, greedy))
        steps = meta.get("steps")
        cap = "same latent per column" if z is not None else "decoder only"
        cap += f", {steps} training steps" if steps is not None else ""
        path = save_sketches(out, cells, nrow=n, row_labels=labels, caption=cap, style=style, frames=frames,
                             overwrite=overwrite)
    elif model_path and reconstruct:
        model, _, meta = _load(model_path)
        data = _split(model, meta, data_path, split).subset(idx)
        tau, greedy = _temperature(temperature)
        rec = model.reconstruct(data.sketches, temperature=tau, greedy=greedy, generator=_generator(seed)).strokes
        import numpy as np  # lazy: slow import (CLI start-up)

        per = min(nrow or 8, len(rec))
        blank = [np.zeros((0, 3), dtype=np.float32)]
        cells, labels = [], []
        for i in range(0, len(rec), per):
            pad = blank * (per - len(rec[i : i + per]))
            cells += data.sketches[i : i + per] + pad + rec[i : i + per] + pad
            labels += ["original", "reconstructed"]
        path = save_sketches(out, cells, nrow=per, row_labels=labels, style=style, frames=frames,
                             caption=f"reconstructions, {_fmt_tau(tau, greedy)}", overwrite=overwrite)
    elif model_path:
        raise LatentStudioError("with --model give --temperatures (a temperature grid) or --reconstruct")
    else:
        from latentstudio.data.strokes import load_strokes  # lazy: imports torch

        if not data_path:
            raise click.UsageError("give --data (a stroke file) or --model with --temperatures/--reconstruct")
        data = load_strokes(data_path, max_seq_len=10**6).split(split).subset(idx)
        path = save_sketches(out, data.sketches, nrow=nrow, style=style, frames=frames, overwrite=overwrite,
                             titles=[f"{split}[{i}]" for i in idx])
    click.echo(f"wrote {path}")


def register(cli: click.Group) -> None:
    """Add ``train sketch-rnn``, ``complete`` and ``render``."""
    cli.commands["train"].add_command(_wrap(train_sketch_rnn_cmd, friendly_errors))
    for cmd in (complete, render):
        cli.add_command(_wrap(cmd, friendly_errors))


def _wrap(cmd: click.Command, friendly_errors) -> click.Command:
    cmd.callback = friendly_errors(cmd.callback)
    return cmd
