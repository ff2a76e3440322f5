"""StyleGAN2 commands: ``train stylegan2``, ``convert``, ``video``, and the StyleGAN2-only outputs of the
deprecated ``generate`` (saved latents, style mixing). ``sample``, ``interpolate`` and ``evaluate`` are the
generic verbs of :mod:`latentstudio.cli.main`."""

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
)
from latentstudio.errors import ConfigError
from latentstudio.presets import merge, preset


def _run_spec(preset_name, config_file, resolution, data, seed, devices, accelerator, extractor, classifier_label,
              max_minutes, kimg, epochs, mirror, overrides, max_steps=None) -> dict:
    from latentstudio.training.stylegan2 import StyleGAN2RunConfig  # lazy: imports torch

    p = preset("stylegan2", preset_name)
    spec = merge({"model": p["model"], "train": p["train"]}, read_config_file(config_file))
    train = drop_none({"max_minutes": max_minutes, "total_kimg": kimg, "epochs": epochs, "max_steps": max_steps})
    if mirror:
        train["mirror"] = True
    model = {"resolution": resolution} if resolution else {}
    if data["name"] in ("mnist", "fashion-mnist", "digits"):
        model["img_channels"] = 1
    spec = merge(spec, {"data": data, "model": model, "train": train, "seed": seed, "devices": devices,
                        "accelerator": accelerator, "extractor": extractor, "classifier_label": classifier_label})
    full = merge(StyleGAN2RunConfig().to_dict(), spec)
    if overrides:
        full = apply_overrides(full, parse_pairs(overrides, "--set"))
    return full


@click.command("stylegan2", short_help="StyleGAN2 (Karras et al. 2020) on an image dataset: lazy R1, path length, style mixing, EMA.")
@data_options(default="celeba")
@spec_options(presets="tiny (CPU), cifar, paper256, paper512, paper1024, config-f", preset_default="tiny",
              set_example="train.r1_gamma=1 or model.channel_max=256")
@click.option("--resolution", type=int, default=None, help="Image side (power of two, 16..1024); default: the preset's.")
@click.option("--kimg", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Thousands of training images (work); whichever of --kimg, --epochs, --max-steps ends first.")
@budget_options(epochs_help="Passes over the training images (default: the preset's).",
                steps_help="Batches (one G and one D update each); whichever of --kimg, --epochs, --max-steps ends "
                           "first.")
@click.option("--mirror", is_flag=True, help="Random horizontal flips of the training images.")
@click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier", show_default=True,
              help="Features of the periodic FID: project classifier (fid_clf) or Inception (fid).")
@click.option("--classifier-label", default=None,
              help="Datasets without class labels (CelebA): attribute the fid_clf classifier learns, e.g. Male.")
@click.option("--init", "init_from", type=click.Path(file_okay=False, exists=True), default=None,
              help="Start from a StyleGAN2 model folder (e.g. converted official weights) of the same config.")
@seed_option
@run_options
@friendly_errors
def train_stylegan2(data_name, data_root, data_option, download, strict, limit, preset, config_file, overrides,
                    resolution, kimg, epochs, max_steps, max_minutes, mirror, extractor, classifier_label, init_from, seed,
                    devices, accelerator, runs_root, resume, dry_run, no_progress):
    """StyleGAN2 (Karras et al. 2020): non-saturating loss, lazy R1, path length, style mixing, EMA.

    Writes a numbered run directory with checkpoints (resumable), TensorBoard/CSV logs, sample grids
    of the EMA generator on fixed seeds every epoch, periodic FID (fid_clf or Inception fid) and the
    exported model folder (run/model: G_ema + discriminator), usable with `latentstudio sample`.

    \b
    Examples:
      latentstudio train stylegan2 --data celeba --data-root ~/data --resolution 32 --kimg 200 \\
          --classifier-label Male
      latentstudio train stylegan2 --data folder --data-option path=faces.zip --preset paper256 \\
          --accelerator gpu --devices 2 --mirror
      latentstudio train stylegan2 --resume runs/00004-stylegan2-celeba
    """
    from latentstudio import api  # lazy: imports torch
    spec = None
    if not resume:
        data = data_spec(data_name, data_root, data_option, download, strict, limit)
        spec = _run_spec(preset, config_file, resolution, data, seed, devices, accelerator, extractor,
                         classifier_label, max_minutes, kimg, epochs, mirror, overrides, max_steps)
    else:  # a resumed run keeps its config; only its wall-clock cap may change
        spec = {"train": drop_none({"max_minutes": max_minutes})}
    result = api.train("stylegan2", spec, runs_root=runs_root, resume=resume, progress=not no_progress,
                       dry_run=dry_run, init_from=init_from)
    echo_train_result(result, dry_run)


def _device(name: str):
    import torch  # lazy: slow import (CLI start-up)

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


def _load_g(model_path: str, device: str):
    from latentstudio.models.stylegan2 import load_generator  # lazy: imports torch

    return load_generator(model_path, map_location="cpu").to(_device(device))


def _styles(text: str, num_ws: int) -> list[int]:
    if text.strip() == "all":
        return list(range(num_ws))
    return parse_int_list(text)


def generate_latents(G, params: dict, *, latents_file, latent_space, mix_seeds, mix_styles, save_latents,
                     condition=None) -> None:
    """The StyleGAN2-only outputs of ``latentstudio generate``: images of saved latents (``--latents``), a
    style-mixing grid (``--mix-seeds``) and the latents used (``--save-latents``); ``params`` are the
    ``sample`` options given with them; ``condition`` the parsed ``--condition`` (a class of a
    class-conditional generator)."""
    from latentstudio.io.images import save_folder, save_grid  # lazy: imports torch
    from latentstudio.models.stylegan2 import generate as gen  # lazy: imports torch

    if G.model_type != "stylegan2":
        raise ConfigError(f"--latents, --mix-seeds and --save-latents apply to StyleGAN2 models, not {G.model_type}")
    v = G.resolve_knobs({k: params.get(k) for k in ("truncation_psi", "truncation_cutoff", "noise_mode")})
    seeds, out, out_dir, overwrite = params["seeds"], params["out"], params["out_dir"], params["overwrite"]
    if mix_seeds:
        if seeds is None:
            raise click.UsageError("--mix-seeds needs --seeds (the rows of the grid)")
        rows, cols = parse_int_list(seeds), parse_int_list(mix_seeds)
        table = gen.style_mix(G, rows, cols, _styles(mix_styles, G.num_ws), v["truncation_psi"], v["noise_mode"],
                              condition=condition)
        path = save_grid(table, out or "style-mixing.png", nrow=len(cols) + 1, overwrite=overwrite)
        click.echo(f"wrote {path} ({len(rows)} rows x {len(cols)} columns, styles {mix_styles})")
        return
    if seeds is not None and latents_file is not None:
        raise click.UsageError("pass either --seeds or --latents")
    z = None
    seed_list = parse_int_list(seeds) if seeds else list(range(params["seed"], params["seed"] + params["n"]))
    if latents_file is None:
        z = gen.seeds_to_z(seed_list, G.z_dim)
        ws = gen.map_z(G, z, v["truncation_psi"], v["truncation_cutoff"], condition=condition)
    else:
        seed_list = None
        ws = gen.load_latents(latents_file, G, latent_space, v["truncation_psi"], v["truncation_cutoff"],
                              condition=condition)
    images = gen.synthesize(G, ws, v["noise_mode"], progress=ws.shape[0] > 16)
    if out_dir:
        save_folder(images, out_dir, overwrite=overwrite)
        click.echo(f"wrote {len(images)} images to {out_dir}")
    if out or not out_dir:
        path = save_grid(images, out or "samples.png", nrow=params["nrow"] or gen.grid_columns(len(images)),
                         overwrite=overwrite)
        click.echo(f"wrote {path}")
    if save_latents:
        gen.save_latents(save_latents, z=z, w=ws, seeds=seed_list, overwrite=overwrite)
        click.echo(f"wrote {save_latents}")


@click.command("video")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True), help="StyleGAN2 model folder.")
@click.option("--seeds", required=True, help="Keyframe seeds, visited in order, e.g. 0-3 or 5,17,42.")
@click.option("--space", type=click.Choice(["w", "z"]), default="w", show_default=True,
              help="w: linear interpolation of the mapped styles; z: spherical interpolation of the inputs.")
@click.option("--frames", "frames_per_transition", type=int, default=30, show_default=True,
              help="Frames between two keyframes.")
@click.option("--fps", type=float, default=30.0, show_default=True)
@click.option("--truncation-psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: w = w_avg + psi (w - w_avg); 1 = none.")
@click.option("--no-loop", is_flag=True, help="End on the last seed instead of returning to the first.")
@click.option("--condition", type=click.IntRange(min=0), default=None,
              help="Class of a class-conditional generator (converted stylegan2-ada snapshots; default 0).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="interpolation.mp4", show_default=True,
              help="Video file: .mp4 (H.264, needs imageio-ffmpeg) or .gif.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def video(model_path, seeds, space, frames_per_transition, fps, truncation_psi, no_loop, condition, noise_mode, out,
          device, overwrite):
    """Interpolation video through the latents of several seeds (lerp in W or slerp in Z).

    \b
    Examples:
      latentstudio video --model models/ffhq --seeds 0-3 --truncation-psi 0.7 --out walk.mp4
      latentstudio video --model runs/00004-stylegan2-celeba --seeds 1,2,3 --space z --frames 20 --out walk.gif
    """
    from latentstudio.models.stylegan2.generate import (  # lazy: imports torch
        interpolation_latents,
        synthesize,
        write_video,
    )

    G = _load_g(model_path, device)
    ws = interpolation_latents(G, parse_int_list(seeds), frames_per_transition, space, truncation_psi,
                               loop=not no_loop, condition=condition)
    frames = synthesize(G, ws, noise_mode, progress=True)
    path = write_video(frames, out, fps, overwrite=overwrite)
    click.echo(f"wrote {path} ({frames.shape[0]} frames, {frames.shape[-1]}x{frames.shape[-2]}, {fps:g} fps)")


@click.command("convert")
@click.argument("source", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option("--format", "fmt", type=click.Choice(["auto", "tf", "pytorch", "rosinality"]), default="auto",
              show_default=True, help="tf: original TensorFlow .pkl; pytorch: stylegan2-ada-pytorch/stylegan3 .pkl; "
              "rosinality: .pt.")
@click.option("--network", type=click.Choice(["ema", "raw"]), default="ema", show_default=True,
              help="ema: the averaged generator (Gs / G_ema / g_ema) used for sampling; raw: G.")
@click.option("--no-discriminator", is_flag=True, help="Keep only the generator.")
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
@friendly_errors
def convert(source, out, fmt, network, no_discriminator, overwrite):
    """Convert official StyleGAN2 weights to a model folder (config.json + model.safetensors) without
    running pickled code.

    Pickles are read by a restricted unpickler that rebuilds only arrays, tensors and plain data; a
    file that references anything else (code) is refused and nothing in it is executed.

    \b
    Examples:
      latentstudio convert stylegan2-ffhq-config-f.pkl --out models/ffhq
      latentstudio convert network-snapshot-025000.pkl --out models/mine --network ema
      latentstudio convert 550000.pt --format rosinality --out models/ros
    """
    from latentstudio.models.stylegan2 import load_generator  # lazy: imports torch
    from latentstudio.models.stylegan2.convert import convert_to_folder  # lazy: imports torch

    path = convert_to_folder(source, out, None if fmt == "auto" else fmt, network=network,
                             include_discriminator=not no_discriminator, overwrite=overwrite)
    G = load_generator(path)
    classes = f", class-conditional with {G.c_dim} classes" if getattr(G, "c_dim", 0) else ""
    click.echo(f"wrote {path}: {G.img_resolution}x{G.img_resolution}, z_dim {G.z_dim}, w_dim {G.w_dim}, "
               f"num_ws {G.num_ws}{classes}")


def register(cli: click.Group) -> None:
    """Add the StyleGAN2 commands to the ``latentstudio`` group."""
    cli.commands["train"].add_command(train_stylegan2)
    cli.add_command(video)
    cli.add_command(convert)
