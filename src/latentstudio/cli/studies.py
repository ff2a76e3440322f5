"""``latentstudio study fid-repeats | fid-shuffle | training-subsets | samplers`` (thesis 002 / DRAW studies).

Each command calls one ``run_*`` function of :mod:`latentstudio.studies`; the study folder keeps
``results.jsonl`` (finished cells are skipped when the same command runs again) and ``report.md``.
"""

from __future__ import annotations

import shlex

import click

from latentstudio.cli.options import data_options, friendly_errors, parse_int_list, parse_pairs
from latentstudio.cli.options import data_spec as _data_spec

EXTRACTOR_HELP = ("Features for FID: 'classifier' (a CNN trained on the dataset's training split, offline; values "
                  "are fid_clf) or 'inception' (standard FID; needs the TF Inception weights in the torch hub cache "
                  "or --download-weights).")


_FIRST = ("data_name", "data_root", "data_option", "download", "strict", "limit")
_LAST = ("out_dir", "overwrite", "no_progress")
_ALWAYS = ("data_name",)


def canonical_command(ctx: click.Context) -> str:
    """The command line that reproduces ``ctx``: ``latentstudio study NAME``, ``--data``, then every other option
    not at its default (data options first, ``--out`` and display flags last)."""
    words = ["latentstudio", *ctx.command_path.split()[1:]]
    params = [p for p in ctx.command.params if isinstance(p, click.Option) and p.name in ctx.params]

    def order(p: click.Option) -> tuple[int, int]:
        if p.name in _FIRST:
            return 0, _FIRST.index(p.name)
        if p.name in _LAST:
            return 2, _LAST.index(p.name)
        return 1, 0

    for param in sorted(params, key=order):
        value = ctx.params[param.name]
        if param.name not in _ALWAYS and (value is None or value == param.default or (param.multiple and not value)):
            continue
        if value is None:
            continue
        flag = next(o for o in param.opts if o.startswith("--"))
        if param.is_flag:
            if value:
                words.append(flag)
            continue
        for v in (value if param.multiple else (value,)):
            words += [flag, str(v)]
    return " ".join(shlex.quote(w) for w in words)


def _common(fn):
    """Options every study shares (extractor, output folder, seed, device, progress); data options separately."""
    opts = [
        click.option("--extractor", type=click.Choice(["classifier", "inception"]), default="classifier",
                     show_default=True, help=EXTRACTOR_HELP),
        click.option("--download-weights", is_flag=True, help="Let the inception extractor download its weights."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help="Study folder (default: studies/<study>-<data>)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--accelerator", default="auto", show_default=True,
                     help="Device for training and feature extraction: auto (a GPU when present), cpu or gpu."),
        click.option("--overwrite", is_flag=True, help="Discard the results already in --out and start again."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _out(out_dir, study: str, data_name: str) -> str:
    return out_dir or f"studies/{study}-{data_name}"


def _sizes(text):
    return None if not text else parse_int_list(text)


def _words(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; ``"none"`` or empty -> ``[]``."""
    words = [w.strip().lower() for w in str(text or "").split(",") if w.strip()]
    return [] if words == ["none"] else words


@click.command("fid-repeats")
@data_options
@click.option("--sizes", default=None, help="Set sizes n, e.g. 10,20,40 (default 10, 20, 40, ... below full, then full).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Repetitions per size.")
@click.option("--n-reference", type=int, default=10000, show_default=True,
              help="Reference images: the first N of the test split.")
@click.option("--sanity-size", type=int, default=1000, show_default=True,
              help="Images per side of the sanity pair (test halves; test vs uniform noise); 0 skips it.")
@click.option("--budget", default=None, help="Training of the classifier extractor in epochs, e.g. 3ep "
              "(default: its standard recipe).")
@_common
@friendly_errors
def fid_repeats(data_name, data_root, data_option, download, strict, limit, extractor, download_weights, out_dir,
                seed, accelerator, overwrite, no_progress, sizes, repeats, n_reference, sanity_size, budget):
    """FID of n distinct training images repeated to the reference size (thesis 002, table 1).

    For n = 10, 20, 40, ... up to the full reference size, 10 repetitions each: FID between the
    test split and n random training images repeated up to its size; mean and variance per n.
    Also the sanity pair of the DRAW thesis: first vs second 1000 test images, and 1000 test
    images vs uniform noise. Re-running the same command resumes; the report says where the
    protocol differs from the seed's.

    \b
    Example:
      latentstudio study fid-repeats --data mnist --data-root ~/data --out docs/studies/fid-repeats-mnist
      latentstudio study fid-repeats --data cifar10 --data-root ~/data --extractor inception
    """
    from latentstudio.studies.fid_repeats import run_fid_repeats  # lazy: imports torch

    ctx = click.get_current_context()
    spec = _data_spec(data_name, data_root, data_option, download, strict, limit)
    report = run_fid_repeats(_out(out_dir, "fid-repeats", data_name), spec, extractor=extractor, sizes=_sizes(sizes),
                             repeats=repeats, n_reference=n_reference, sanity_size=sanity_size, seed=seed,
                             budget=budget, download_weights=download_weights, accelerator=accelerator,
                             progress=not no_progress, overwrite=overwrite, command=canonical_command(ctx))
    click.echo(f"report: {report}")


@click.command("fid-shuffle")
@data_options
@click.option("--tiles", default="1,2,4,16,64,256,1024", show_default=True,
              help="Numbers of tiles k (1 = unshuffled baseline).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Repetitions per k.")
@click.option("--n-reference", type=int, default=10000, show_default=True,
              help="Reference images: the first N of the test split (also the size of the shuffled sets).")
@click.option("--budget", default=None, help="Training of the classifier extractor in epochs, e.g. 3ep "
              "(default: its standard recipe).")
@_common
@friendly_errors
def fid_shuffle(data_name, data_root, data_option, download, strict, limit, extractor, download_weights, out_dir,
                seed, accelerator, overwrite, no_progress, tiles, repeats, n_reference, budget):
    """FID of training images cut into k equal tiles and shuffled (thesis 002, table 2).

    Tile rule: a rows x cols grid with rows the largest divisor of k not above sqrt(k) (k = 2: left
    and right halves); tiles of H // rows x W // cols pixels; when they do not divide the image the
    tiled area is centred and the border strips stay in place (the report gives the fraction of
    pixels shuffled). Every image gets its own random permutation of its tiles.

    \b
    Example:
      latentstudio study fid-shuffle --data cifar10 --data-root ~/data --out docs/studies/fid-shuffle-cifar10
    """
    from latentstudio.studies.fid_shuffle import run_fid_shuffle  # lazy: imports torch

    ctx = click.get_current_context()
    spec = _data_spec(data_name, data_root, data_option, download, strict, limit)
    report = run_fid_shuffle(_out(out_dir, "fid-shuffle", data_name), spec, extractor=extractor,
                             tiles=parse_int_list(tiles), repeats=repeats, n_reference=n_reference, seed=seed,
                             budget=budget, download_weights=download_weights, accelerator=accelerator,
                             progress=not no_progress, overwrite=overwrite, command=canonical_command(ctx))
    click.echo(f"report: {report}")


def _training(fn):
    """Options of the studies that train two-stage VAEs."""
    opts = [
        click.option("--budget", default="5ep", show_default=True,
                     help="Training budget per model: epochs (5ep), minutes (10min) or both (5ep,10min). Stage 2 "
                          "gets the preset's ratio of stage-2 to stage-1 epochs (cpu: 10x, paper: 2x) or a fifth "
                          "of the minutes unless --budget2 is given."),
        click.option("--budget2", default=None, help="Explicit second-stage budget, same syntax."),
        click.option("--preset", default="cpu", show_default=True, help="Model and optimiser: quickstart, cpu, paper."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Dotted override of the run config, e.g. model.stage1.latent_dim=16 (repeatable)."),
        click.option("--n-reference", type=int, default=10000, show_default=True,
                     help="Reference images: the first N of the test split."),
        click.option("--n-samples", type=int, default=None, help="Generated images per sampler (default: --n-reference)."),
        click.option("--extractor-budget", default=None, help="Classifier extractor epochs, e.g. 3ep (default: its recipe)."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


@click.command("training-subsets")
@data_options
@_training
@click.option("--fraction", type=float, default=0.5, show_default=True, help="Size of the subsets (0.5: halves).")
@_common
@friendly_errors
def training_subsets(data_name, data_root, data_option, download, strict, limit, extractor, download_weights, out_dir,
                     seed, accelerator, overwrite, no_progress, budget, budget2, preset, overrides, n_reference,
                     n_samples, extractor_budget, fraction):
    """The same VAE on all data, a random half, and the halves with the lowest reconstruction error
    and the lowest Mahalanobis distance (thesis 002, table 5).

    Both selection scores come from the model trained on all data. Every model is sampled with
    N(0, I), an ex-post GMM with 10 components and its second stage; reconstruction FID too.
    Models train under --budget, so a CPU run and a GPU run are the same command; an interrupted
    study resumes the model it was training.

    \b
    Example:
      latentstudio study training-subsets --data mnist --data-root ~/data --budget 2ep
      latentstudio study training-subsets --data cifar10 --data-root ~/data --preset paper --budget 600ep
    """
    from latentstudio.studies.training_subsets import run_training_subsets  # lazy: imports torch

    ctx = click.get_current_context()
    spec = _data_spec(data_name, data_root, data_option, download, strict, limit)
    report = run_training_subsets(
        _out(out_dir, "training-subsets", data_name), spec, extractor=extractor, budget=budget, budget2=budget2,
        preset=preset, overrides=parse_pairs(overrides, "--set"), fraction=fraction, n_reference=n_reference,
        n_samples=n_samples, extractor_budget=extractor_budget, seed=seed, accelerator=accelerator,
        download_weights=download_weights, progress=not no_progress, overwrite=overwrite,
        command=canonical_command(ctx))
    click.echo(f"report: {report}")


@click.command("samplers")
@data_options
@_training
@click.option("--model", "model_path", type=click.Path(exists=True), default=None,
              help="Use this trained two-stage model (model or run directory) instead of training one.")
@click.option("--gmm-k", default="1,10,50", show_default=True, help="GMM component counts.")
@click.option("--gmm-covariance", default="full,diag", show_default=True, help="GMM covariance types: full, diag.")
@click.option("--kde-bandwidth", default="scott,cv", show_default=True,
              help="Bandwidth rules of the KDE baseline on the training mu: scott, silverman, cv (held-out "
                   "likelihood); 'none' leaves the KDE out.")
@click.option("--gmm-fit-size", type=int, default=None,
              help="Fit the GMMs and KDEs on this many training latents (random, seeded; default all).")
@_common
@friendly_errors
def samplers(data_name, data_root, data_option, download, strict, limit, extractor, download_weights, out_dir,
             seed, accelerator, overwrite, no_progress, budget, budget2, preset, overrides, n_reference, n_samples,
             extractor_budget, model_path, gmm_k, gmm_covariance, kde_bandwidth, gmm_fit_size):
    """Latent samplers of one trained VAE: N(0, I), GMMs (k components, full or diagonal covariance,
    fitted on mu or on sampled z), a KDE baseline on mu and the second stage; FID and the time to fit
    and to sample.

    \b
    Example:
      latentstudio study samplers --data mnist --data-root ~/data --budget 2ep
      latentstudio study samplers --data mnist --data-root ~/data --model runs/00000-two-stage-vae-mnist
    """
    from latentstudio.studies.samplers import run_samplers  # lazy: imports torch

    ctx = click.get_current_context()
    spec = _data_spec(data_name, data_root, data_option, download, strict, limit)
    report = run_samplers(
        _out(out_dir, "samplers", data_name), spec, extractor=extractor, budget=budget, budget2=budget2,
        preset=preset, overrides=parse_pairs(overrides, "--set"), model=model_path, gmm_components=parse_int_list(gmm_k),
        gmm_covariances=_words(gmm_covariance), kde_bandwidths=_words(kde_bandwidth), gmm_fit_size=gmm_fit_size, n_reference=n_reference, n_samples=n_samples, extractor_budget=extractor_budget,
        seed=seed, accelerator=accelerator, download_weights=download_weights, progress=not no_progress,
        overwrite=overwrite, command=canonical_command(ctx))
    click.echo(f"report: {report}")


def register(cli: click.Group) -> None:
    """Add the study commands to ``latentstudio study``."""
    group = cli.commands["study"]
    for cmd in (fid_repeats, fid_shuffle, training_subsets, samplers):
        group.add_command(cmd)
