"""StyleGAN2 commands: ``train stylegan2``, ``generate``, ``convert``, ``video`` (and ``evaluate`` for
StyleGAN2 model folders)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from latentstudio.cli.main import EVALUATE_HANDLERS, _data_spec, data_options, friendly_errors
from latentstudio.cli.options import apply_overrides, parse_int_list, parse_pairs, run_options


def _run_spec(preset_name, config_file, resolution, data, seed, devices, accelerator, extractor, classifier_label,
              max_minutes, kimg, mirror, overrides) -> dict:
    from latentstudio.models.stylegan2.config import preset
    from latentstudio.presets import merge
    from latentstudio.training.stylegan2 import StyleGAN2RunConfig

    p = preset(preset_name)
    spec = {"model": p["model"], "train": p["train"]}
    if config_file:
        spec = merge(spec, json.loads(Path(config_file).read_text()))
    train: dict = {}
    if max_minutes is not None:
        train["max_minutes"] = max_minutes
    if kimg is not None:
        train["total_kimg"] = kimg
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
@click.option("--preset", "preset_name", default="tiny", show_default=True,
              help="Starting config: tiny (CPU), cifar, paper256, paper512, paper1024, config-f.")
@click.option("--resolution", type=int, default=None, help="Image side (power of two, 16..1024); default: the preset's.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON run config (run.json 'config' layout); applied after the preset.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Dotted override, e.g. train.r1_gamma=1 or model.channel_max=256 (repeatable).")
@click.option("--kimg", type=float, default=None, help="Stop after this many thousand training images.")
@click.option("--max-minutes", type=float, default=None, help="Stop after this wall-clock budget.")
@click.option("--mirror", is_flag=True, help="Random horizontal flips of the training images.")
@click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier", show_default=True,
              help="Features of the periodic FID: project classifier (fid_clf) or Inception (fid).")
@click.option("--classifier-label", default=None,
              help="Datasets without class labels (CelebA): attribute the fid_clf classifier learns, e.g. Male.")
@click.option("--init", "init_from", type=click.Path(file_okay=False, exists=True), default=None,
              help="Start from a StyleGAN2 model folder (e.g. converted official weights) of the same config.")
@click.option("--seed", type=int, default=0, show_default=True)
@run_options
@friendly_errors
def train_stylegan2(data_name, data_root, data_option, download, strict, limit, preset_name, resolution, config_file,
                    overrides, kimg, max_minutes, mirror, extractor, classifier_label, init_from, seed, devices,
                    accelerator, runs_root, resume, dry_run, no_progress):
    """StyleGAN2 (Karras et al. 2020): non-saturating loss, lazy R1, path length, style mixing, EMA.

    Writes a numbered run directory with checkpoints (resumable), TensorBoard/CSV logs, sample grids
    of the EMA generator on fixed seeds every epoch, periodic FID (fid_clf or Inception fid) and the
    exported model folder (run/model: G_ema + discriminator), usable with `latentstudio generate`.

    \b
    Examples:
      latentstudio train stylegan2 --data celeba --data-root ~/data --resolution 32 --max-minutes 40 \\
          --classifier-label Male
      latentstudio train stylegan2 --data folder --data-option path=faces.zip --preset paper256 \\
          --accelerator gpu --devices 2 --mirror
      latentstudio train stylegan2 --resume runs/00004-stylegan2-celeba
    """
    from latentstudio.training.stylegan2 import StyleGAN2RunConfig, read_run_config, train_stylegan2

    if resume:
        run = read_run_config(resume)
    else:
        data = _data_spec(data_name, data_root, data_option, download, strict, limit)
        spec = _run_spec(preset_name, config_file, resolution, data, seed, devices, accelerator, extractor,
                         classifier_label, max_minutes, kimg, mirror, overrides)
        run = StyleGAN2RunConfig.from_dict(spec, source="command line")
    if dry_run:
        click.echo(run.to_json())
        return
    result = train_stylegan2(run, runs_root=runs_root, resume=resume, progress=not no_progress, init_from=init_from)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        click.echo(f"run directory: {result.run_dir}\nmodel: {result.model_dir}")


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


def _load_g(model_path: str, device: str):
    from latentstudio.models.stylegan2 import load_generator

    return load_generator(model_path, map_location="cpu").to(_device(device))


def _styles(text: str, num_ws: int) -> list[int]:
    if text.strip() == "all":
        return list(range(num_ws))
    return parse_int_list(text)


@click.command("generate")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True),
              help="StyleGAN2 model folder (from `latentstudio convert` or a finished run).")
@click.option("--seeds", default=None, help="Seeds, e.g. 0-63,100: z = RandomState(seed).randn(1, z_dim) as the "
              "official generator.")
@click.option("--latents", "latents_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Saved latents instead of seeds: .npz with 'w' [N, num_ws, 512] / [N, 512] or 'z'; or .npy.")
@click.option("--latent-space", type=click.Choice(["auto", "z", "w"]), default="auto", show_default=True,
              help="How to read a 2-D .npy file (auto: w).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: w = w_avg + psi (w - w_avg); 1 = none.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None,
              help="Truncate only the first N styles (default all).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--mix-seeds", default=None,
              help="Style-mixing grid: columns from these seeds, rows from --seeds.")
@click.option("--mix-styles", default="0-6", show_default=True,
              help="Style indices copied from the column seed (0-6 = coarse + middle at 1024; 'all').")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Grid PNG (default generated.png).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="One PNG per image (seedNNNN.png) in this folder.")
@click.option("--nrow", type=int, default=None, help="Images per grid row (default: near-square).")
@click.option("--save-latents", type=click.Path(dir_okay=False), default=None,
              help="Also write the z and w+ latents used (.npz: z, w, seeds).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@friendly_errors
def generate(model_path, seeds, latents_file, latent_space, truncation_psi, truncation_cutoff, noise_mode,
             mix_seeds, mix_styles, out, out_dir, nrow, save_latents, device, overwrite):
    """Generate images with a StyleGAN2 generator: from seeds, from saved z/w/w+ latents, or as a
    style-mixing grid.

    The same seed gives the same latent as the official generator scripts, so converted official
    weights reproduce their published images (noise-mode const).

    \b
    Examples:
      latentstudio generate --model models/ffhq --seeds 0-63 --trunc 0.7 --out faces.png
      latentstudio generate --model models/ffhq --seeds 0-7 --out-dir faces/ --save-latents faces.npz
      latentstudio generate --model models/ffhq --latents projected_w.npz --out projected.png
      latentstudio generate --model models/ffhq --seeds 85,100,75 --mix-seeds 458,1500,1800 --mix-styles 0-6 \\
          --out mixing.png
    """
    from latentstudio.io.images import save_grid, save_image
    from latentstudio.models.stylegan2 import generate as gen

    if (seeds is None) == (latents_file is None):
        raise click.UsageError("pass exactly one of --seeds or --latents")
    G = _load_g(model_path, device)
    if mix_seeds:
        if seeds is None:
            raise click.UsageError("--mix-seeds needs --seeds (the rows of the grid)")
        rows, cols = parse_int_list(seeds), parse_int_list(mix_seeds)
        table = gen.style_mix(G, rows, cols, _styles(mix_styles, G.num_ws), truncation_psi, noise_mode)
        path = save_grid(table, out or "style-mixing.png", nrow=len(cols) + 1, overwrite=overwrite)
        click.echo(f"wrote {path} ({len(rows)} rows x {len(cols)} columns, styles {mix_styles})")
        return
    z = None
    seed_list = parse_int_list(seeds) if seeds else None
    if seed_list is not None:
        z = gen.seeds_to_z(seed_list, G.z_dim)
        ws = gen.map_z(G, z, truncation_psi, truncation_cutoff)
    else:
        ws = gen.load_latents(latents_file, G, latent_space, truncation_psi, truncation_cutoff)
    images = gen.synthesize(G, ws, noise_mode, progress=ws.shape[0] > 16)
    names = [f"seed{s:04d}.png" for s in seed_list] if seed_list else [f"latent{i:04d}.png" for i in range(len(ws))]
    if out_dir:
        for img, name in zip(images, names, strict=True):
            save_image(img, Path(out_dir) / name, overwrite=overwrite)
        click.echo(f"wrote {len(images)} images to {out_dir}")
    if out or not out_dir:
        path = save_grid(images, out or "generated.png", nrow=nrow or gen.grid_columns(len(images)), overwrite=overwrite)
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
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--no-loop", is_flag=True, help="End on the last seed instead of returning to the first.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="interpolation.mp4", show_default=True,
              help="Video file: .mp4 (H.264, needs imageio-ffmpeg) or .gif.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--overwrite", is_flag=True)
@friendly_errors
def video(model_path, seeds, space, frames_per_transition, fps, truncation_psi, no_loop, noise_mode, out, device,
          overwrite):
    """Interpolation video through the latents of several seeds (lerp in W or slerp in Z).

    \b
    Examples:
      latentstudio video --model models/ffhq --seeds 0-3 --trunc 0.7 --out walk.mp4
      latentstudio video --model runs/00004-stylegan2-celeba --seeds 1,2,3 --space z --frames 20 --out walk.gif
    """
    from latentstudio.models.stylegan2.generate import interpolation_latents, synthesize, write_video

    G = _load_g(model_path, device)
    ws = interpolation_latents(G, parse_int_list(seeds), frames_per_transition, space, truncation_psi,
                               loop=not no_loop)
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
    from latentstudio.models.stylegan2 import load_generator
    from latentstudio.models.stylegan2.convert import convert_to_folder

    path = convert_to_folder(source, out, None if fmt == "auto" else fmt, network=network,
                             include_discriminator=not no_discriminator, overwrite=overwrite)
    G = load_generator(path)
    click.echo(f"wrote {path}: {G.img_resolution}x{G.img_resolution}, z_dim {G.z_dim}, w_dim {G.w_dim}, "
               f"num_ws {G.num_ws}")


def _sample_handler(model_path, *, sampler, n, seed, seeds, condition, out, out_dir, temperature, overwrite):
    from latentstudio.io.images import save_folder, save_grid
    from latentstudio.models.stylegan2.generate import map_z, seeds_to_z, synthesize

    if condition is not None or temperature is not None:
        raise click.UsageError("StyleGAN2 models take neither --condition nor --temperature")
    G = _load_g(model_path, "cpu")
    seed_list = parse_int_list(seeds) if seeds else list(range(seed, seed + n))
    images = synthesize(G, map_z(G, seeds_to_z(seed_list, G.z_dim)))
    if out_dir:
        save_folder(images, out_dir, overwrite=overwrite)
        click.echo(f"wrote {len(images)} images to {out_dir}")
    if out or not out_dir:
        click.echo(f"wrote {save_grid(images, out or 'samples.png', overwrite=overwrite)}")


def _evaluate_handler(model_path, *, data_name, data_root, data_option, download, strict, limit, extractor,
                      n_samples, samplers, out_dir, seed, download_weights):
    from latentstudio.training.stylegan2 import evaluate_generator

    if samplers:
        raise click.UsageError("--samplers does not apply to StyleGAN2 models")
    spec = _data_spec(data_name, data_root, data_option, download, strict, limit) if data_name else None
    report = evaluate_generator(model_path, spec, extractor=extractor, n_samples=n_samples, out_dir=out_dir,
                                seed=seed, download_weights=download_weights,
                                ppl_samples=min(n_samples or 1000, 1000))
    click.echo(f"report: {report}")


def register(cli: click.Group) -> None:
    """Add the StyleGAN2 commands to the ``latentstudio`` group."""
    from latentstudio.cli.main import SAMPLE_HANDLERS

    cli.commands["train"].add_command(train_stylegan2)
    cli.add_command(generate)
    cli.add_command(video)
    cli.add_command(convert)
    SAMPLE_HANDLERS["stylegan2"] = _sample_handler
    EVALUATE_HANDLERS["stylegan2"] = _evaluate_handler
