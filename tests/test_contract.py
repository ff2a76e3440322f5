"""The model contract, tested once for every registered family (a new family gets these by registering).

Model level (every name in ``MODELS``): save/load bit-exact, same seed same samples, typed sample
outputs, declared knobs validated, capabilities either work or are refused with CapabilityError,
latent spaces decode, the loss is a finite scalar with gradients, and the API round trip.

Training level (every name in ``TRAINERS``): a dry run writes nothing, a resumed run equals an
uninterrupted one bit for bit, and a NaN keeps the last good checkpoint.
"""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from conftest import write_stroke_npz

from latentstudio import api
from latentstudio.config import Config
from latentstudio.data.base import ImageData
from latentstudio.data.strokes import stroke5_to_stroke3
from latentstudio.errors import CapabilityError, ConfigError, LatentStudioError, NonFiniteLossError
from latentstudio.models import load_all
from latentstudio.models.base import (
    CAPABILITIES,
    COMPLETE,
    DECODE,
    ENCODE,
    NLL,
    RECONSTRUCT,
    STEPS,
    GenerativeModel,
)
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.loading import load_model
from latentstudio.models.registry import MODELS
from latentstudio.training.registry import TRAINERS
from latentstudio.types import Sketches

load_all()
FAMILIES = MODELS.names()


def make(family: str, seed: int = 0) -> GenerativeModel:
    cls = MODELS.get(family)
    torch.manual_seed(seed)
    return cls(cls.example_config()).eval()


def example_data(model: GenerativeModel, n: int = 3):
    """Typed data the model reads: images ``uint8`` or :class:`Sketches`."""
    b = model.example_batch(n, torch.Generator().manual_seed(1))
    if model.output_kind == "images":
        return b.x
    return Sketches([stroke5_to_stroke3(b.x[k], int(b.lengths[k])) for k in range(n)])


def assert_same_output(a, b) -> None:
    if isinstance(a, Sketches):
        assert isinstance(b, Sketches) and len(a) == len(b)
        for x, y in zip(a.strokes, b.strokes, strict=True):
            np.testing.assert_array_equal(x, y)
    else:
        assert torch.equal(a, b)


def assert_typed(model: GenerativeModel, out, n: int) -> None:
    if model.output_kind == "images":
        x = model.example_batch(1).x
        assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
        assert tuple(out.shape) == (n, *x.shape[1:])
    else:
        assert isinstance(out, Sketches) and len(out) == n
        for s in out.strokes:
            assert s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == 3
            assert set(np.unique(s[:, 2])) <= {0.0, 1.0}


# ------------------------------------------------------------------------------------ model level


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip_is_bit_exact(family, tmp_path):
    model = make(family)
    model.save_pretrained(tmp_path / "m", meta={"seed": 0})
    back = api.load(tmp_path / "m")
    assert type(back) is type(model) and back.config == model.config and back.model_type == family
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert back.meta["seed"] == 0 and back.path == tmp_path / "m"
    with pytest.raises(LatentStudioError, match="already exists"):
        model.save_pretrained(tmp_path / "m")


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_samples(family):
    model = make(family)
    a = model.sample(3, generator=torch.Generator().manual_seed(0))
    b = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert_same_output(a, b)
    by_seed = model.sample_seeds([5, 9])
    alone = model.sample_seeds([9])
    assert_typed(model, by_seed, 2)
    if isinstance(by_seed, Sketches):
        np.testing.assert_array_equal(by_seed.strokes[1], alone.strokes[0])
    else:
        assert torch.equal(by_seed[1], alone[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_are_typed(family):
    model = make(family)
    assert model.output_kind in ("images", "sketches")
    assert_typed(model, model.sample(4, generator=torch.Generator().manual_seed(2)), 4)


@pytest.mark.parametrize("family", FAMILIES)
def test_knobs_are_declared_and_validated(family):
    model = make(family)
    names = [k.name for k in model.knobs]
    assert len(set(names)) == len(names)
    defaults = model.default_knobs()
    assert set(defaults) == set(names)
    assert_typed(model, model.sample(1, generator=torch.Generator().manual_seed(0), **defaults), 1)
    with pytest.raises(ConfigError) as info:
        model.sample(1, no_such_option=1)
    assert "no_such_option" in str(info.value)
    for name in names:
        assert name in str(info.value)
    for bad_n in (0, -2, 1.5):
        with pytest.raises(ConfigError, match="number of samples"):
            model.sample(bad_n)


@pytest.mark.parametrize("family", FAMILIES)
def test_capabilities_work_or_are_refused(family):
    model = make(family)
    x = example_data(model)
    calls = {
        ENCODE: lambda: model.encode(x),
        RECONSTRUCT: lambda: model.reconstruct(x, generator=torch.Generator().manual_seed(0)),
        NLL: lambda: model.nll(x, num_samples=2, generator=torch.Generator().manual_seed(0)),
        DECODE: lambda: model.decode(torch.zeros(2, *model.latent_space().shape),
                                     generator=torch.Generator().manual_seed(0)),
    }
    assert set(calls) == set(CAPABILITIES)
    for cap, call in calls.items():
        if not model.supports(cap):
            with pytest.raises(CapabilityError, match=f"cannot {cap}"):
                call()
            continue
        out = call()
        if cap == ENCODE:
            assert isinstance(out, DiagonalGaussian)
            assert out.mean.shape == (3, int(np.prod(model.latent_space().shape)))
            assert torch.isfinite(out.mean).all() and torch.isfinite(out.logvar).all()
        elif cap == NLL:
            assert out.shape == (3,) and out.dtype == torch.float64 and torch.isfinite(out).all()
        else:
            assert_typed(model, out, 2 if cap == DECODE else 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_latent_space_decodes(family):
    model = make(family)
    spaces = model.latent_spaces()
    assert len({s.name for s in spaces}) == len(spaces)
    for s in spaces:
        assert all(isinstance(d, int) and d >= 1 for d in s.shape) and s.prior
        if s.decodable and model.supports(DECODE):
            z = torch.randn(2, *s.shape, generator=torch.Generator().manual_seed(0))
            assert_typed(model, model.decode(z, space=s.name, generator=torch.Generator().manual_seed(0)), 2)
    with pytest.raises(ConfigError, match="no latent space 'nope'"):
        model.latent_space("nope")


@pytest.mark.parametrize("family", FAMILIES)
def test_mapped_spaces_map_their_source_latents(family):
    model = make(family)
    knobs = {k.name for k in model.knobs}
    for s in model.latent_spaces():
        if s.row_space is not None:
            assert s.layers == s.shape[0] and model.latent_space(s.row_space).shape == s.shape[1:]
        if s.mapped_from is None:
            with pytest.raises(CapabilityError, match=f"do not map latents into {s.name!r}"):
                model.to_space(torch.zeros(1, *s.shape), s.name)
            continue
        assert set(s.mapping_knobs) <= knobs
        source = model.latent_space(s.mapped_from)
        z = torch.randn(3, *source.shape, generator=torch.Generator().manual_seed(0))
        mapped = model.to_space(z, s.name)
        assert mapped.dtype == torch.float32 and tuple(mapped.shape) == (3, *s.shape)
        assert torch.equal(model.to_space(z, s.name), mapped)
        if model.supports(DECODE) and s.decodable:  # mapped latents decode as their source latents
            a = model.decode(mapped, space=s.name, generator=torch.Generator().manual_seed(0))
            b = model.decode(z, space=source.name, generator=torch.Generator().manual_seed(0))
            assert int((a.int() - b.int()).abs().max()) <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_steps_of_given_latents_or_refused(family):
    model = make(family)
    spaces = model.latent_spaces()
    z = torch.randn(2, *spaces[0].shape, generator=torch.Generator().manual_seed(0)) if spaces else torch.zeros(2, 1)
    if STEPS not in model.capabilities:
        with pytest.raises(CapabilityError, match="cannot steps"):
            model.decode_steps(z)
        return
    images, frames = model.decode_steps(z)
    assert_typed(model, images, 2)
    assert torch.equal(images, model.decode(z, generator=torch.Generator().manual_seed(0)))
    assert frames.dtype == torch.uint8 and frames.ndim == 5 and frames.shape[1] == 2
    # sample_steps draws through the same code: the same draws give the same frames
    sampled, sampled_frames = model.sample_steps(2, generator=torch.Generator().manual_seed(4))
    assert_typed(model, sampled, 2)
    assert sampled_frames.shape == frames.shape


@pytest.mark.parametrize("family", FAMILIES)
def test_completion_keeps_the_prefix_or_is_refused(family):
    model = make(family)
    prefix = np.array([[0.5, 0.1, 0.0], [0.2, -0.3, 0.0], [-0.1, 0.4, 1.0]], dtype=np.float32)
    if not model.supports(COMPLETE):
        with pytest.raises(CapabilityError, match="cannot complete"):
            model.complete(prefix, 2)
        return
    out = model.complete(prefix, 3, generator=torch.Generator().manual_seed(0), temperature=0.7)
    assert_typed(model, out, 3)
    assert_same_output(out, model.complete(prefix, 3, generator=torch.Generator().manual_seed(0), temperature=0.7))
    for s in out.strokes:
        np.testing.assert_array_equal(s[:3], prefix)
    assert list(out.prefix_lengths) == [3, 3, 3]
    with pytest.raises(ConfigError, match="no sampling option"):
        model.complete(prefix, 1, no_such_option=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_is_a_finite_scalar_with_gradients(family):
    model = make(family).train()
    model.prepare_for_training()
    out = model.loss(model.example_batch(4, torch.Generator().manual_seed(3)), step=0,
                     generator=torch.Generator().manual_seed(4))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.terms and all(v.ndim == 0 for v in out.terms.values())
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("family", FAMILIES)
def test_api_round_trip(family, tmp_path):
    model = make(family)
    model.save_pretrained(tmp_path / "m")
    loaded = api.load(tmp_path / "m")
    out = api.generate(loaded, n=3, seed=0)
    assert_typed(model, out, 3)
    assert_same_output(out, model.sample(3, generator=torch.Generator().manual_seed(0)))
    assert_same_output(api.generate(loaded, seeds=[4, 2]), model.sample_seeds([4, 2]))
    if model.supports(DECODE):
        s = model.latent_space()
        a, b = (torch.randn(s.shape, generator=torch.Generator().manual_seed(k)) for k in (0, 1))
        strip = api.interpolate(loaded, a, b, steps=4)
        assert_typed(model, strip, 4)
    if model.supports(ENCODE):
        q = api.encode(loaded, example_data(model))
        assert isinstance(q, DiagonalGaussian)
    else:
        with pytest.raises(CapabilityError):
            api.encode(loaded, example_data(model))


# ------------------------------------------------------------------------------------ training level


def _digits(digits_u8, n: int, size: int | None = None) -> ImageData:
    x, y = digits_u8
    x = x[:n]
    if size is not None:
        x = torch.nn.functional.interpolate(x.float(), size=size, mode="area").round().to(torch.uint8)
    return ImageData(x, y[:n], name="digits", class_names=[str(i) for i in range(10)])


def _sketch_file(tmp_path) -> str:
    return str(write_stroke_npz(tmp_path / "shapes.npz"))


def train_case(family: str, tmp_path, digits_u8) -> tuple[dict, dict]:
    """``(spec, extra keyword arguments)`` of a seconds-long run of ``family`` (3 epochs or passes)."""
    if family == "two-stage-vae":
        spec = {"model": {"stage1": {"latent_dim": 4, "base_dim": 4, "fc_dim": 16, "num_scale": 2},
                          "stage2": {"second_depth": 1, "second_dim": 16}},
                "stage1": {"epochs": 3, "batch_size": 32, "log_every_n_steps": 2, "grid_every_n_epochs": 0},
                "stage2": {"epochs": 1, "batch_size": 32, "log_every_n_steps": 2, "grid_every_n_epochs": 0},
                "gmm_components": 2}
        return spec, {"data": _digits(digits_u8, 96)}
    if family == "draw":
        spec = {"model": {"steps": 2, "latent_dim": 2, "enc_dim": 8, "dec_dim": 8, "attention": True, "read_n": 2,
                          "write_n": 3},
                "train": {"epochs": 3, "batch_size": 32, "log_every_n_steps": 2, "grid_every_n_epochs": 0}}
        return spec, {"data": _digits(digits_u8, 96)}
    if family == "sketch-rnn":
        spec = {"data": {"path": _sketch_file(tmp_path)},
                "model": {"max_seq_len": 32, "enc_hidden_size": 8, "dec_hidden_size": 16, "latent_dim": 4,
                          "num_mixture": 2},
                "train": {"batch_size": 16, "max_steps": 10, "eval_every_n_steps": 0, "log_every_n_steps": 2},
                "threads": 1, "preset": "tiny"}
        return spec, {}
    if family == "stylegan2":
        spec = {"data": {"name": "digits"},
                "model": {"resolution": 16, "img_channels": 1, "z_dim": 8, "w_dim": 8, "channel_base": 64,
                          "channel_max": 8, "mapping_layers": 2},
                "train": {"batch_size": 8, "epochs": 3, "r1_interval": 2, "pl_interval": 2, "ema_kimg": 0.01,
                          "log_every_n_steps": 1, "metrics_every_n_epochs": 0},
                "seed": 3}
        return spec, {"data": _digits(digits_u8, 16, size=16)}
    raise AssertionError(f"no test run for the trainer {family!r}: add a seconds-long case to train_case")


class CrashAtEpoch(L.Callback):
    """A crash at the start of epoch ``epoch`` (after the previous epoch's checkpoint)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


class PoisonAtEpoch(L.Callback):
    """Every parameter of the trained module becomes NaN at the start of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def _run_dir(root):
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


@pytest.mark.parametrize("family", TRAINERS.names())
def test_dry_run_writes_nothing(family, tmp_path, digits_u8):
    spec, extra = train_case(family, tmp_path, digits_u8)
    cfg = api.train(family, spec, runs_root=tmp_path / "runs", dry_run=True, progress=False, **extra)
    assert isinstance(cfg, Config) and cfg.to_dict()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("family", TRAINERS.names())
def test_resume_equals_an_uninterrupted_run(family, tmp_path, digits_u8):
    spec, extra = train_case(family, tmp_path, digits_u8)
    full = api.train(family, dict(spec), runs_root=tmp_path / "a", progress=False, **extra)
    with pytest.raises(RuntimeError, match="simulated crash"):
        api.train(family, dict(spec), runs_root=tmp_path / "b", progress=False, callbacks=[CrashAtEpoch(1)], **extra)
    run_b = _run_dir(tmp_path / "b")
    assert not (run_b / "model").exists()
    with pytest.raises(LatentStudioError, match=f"no exported model yet.*train {family} --resume"):
        api.load(run_b)
    resumed = api.train(family, {}, resume=run_b, progress=False, **extra)
    a, b = api.load(full.model_dir), api.load(resumed.model_dir)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert a.samplers.keys() == b.samplers.keys()
    for name, s in a.samplers.items():
        for k, v in s.state_dict().items():
            assert torch.equal(v, b.samplers[name].state_dict()[k]), (name, k)
    with pytest.raises(LatentStudioError, match="already finished"):
        api.train(family, {}, resume=run_b, progress=False, **extra)


@pytest.mark.parametrize("family", TRAINERS.names())
def test_nan_keeps_the_last_good_checkpoint(family, tmp_path, digits_u8):
    spec, extra = train_case(family, tmp_path, digits_u8)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint is kept"):
        api.train(family, spec, runs_root=tmp_path, progress=False, callbacks=[PoisonAtEpoch(1)], **extra)
    run = _run_dir(tmp_path)
    assert not (run / "model").exists()
    (last,) = run.glob("*/checkpoints/last.ckpt")
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_every_family_loads_through_the_registry(tmp_path):
    for family in FAMILIES:
        make(family).save_pretrained(tmp_path / family)
        assert load_model(tmp_path / family).model_type == family


class BatchCounter(L.Callback):
    """Training batches of every fit a trainer runs (two-stage: one entry per stage)."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def on_train_start(self, trainer, pl_module):
        self.batches.append(0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches[-1] += 1


def _with_budget(family: str, spec: dict, **budget) -> dict:
    spec = dict(spec)
    for key in ("stage1", "stage2") if family == "two-stage-vae" else ("train",):
        spec[key] = {**spec[key], **budget}
    return spec


@pytest.mark.parametrize("family", TRAINERS.names())
def test_every_trainer_stops_at_max_steps_and_names_its_run_first(family, tmp_path, digits_u8, capfd):
    spec, extra = train_case(family, tmp_path, digits_u8)
    counter = BatchCounter()
    res = api.train(family, _with_budget(family, spec, max_steps=2), runs_root=tmp_path / "runs", progress=True,
                    callbacks=[counter], **extra)
    assert counter.batches == ([2, 2] if family == "two-stage-vae" else [2])
    out, err = capfd.readouterr()
    # the run folder is said before the first step; the bar counts the whole budget (2 batches), not an epoch
    assert err.lstrip().startswith(f"run directory: {res.run_dir}")
    assert "2/2" in out


@pytest.mark.parametrize("family", TRAINERS.names())
def test_every_trainer_honours_the_time_cap(family, tmp_path, digits_u8):
    spec, extra = train_case(family, tmp_path, digits_u8)
    # thousands of planned batches against a cap of a fraction of a second (each fit gets at least 1 s)
    spec = _with_budget(family, spec, epochs=1000, max_steps=5000, max_minutes=1e-4)
    if family == "two-stage-vae":
        spec["max_minutes"] = 1e-4
    counter = BatchCounter()
    res = api.train(family, spec, runs_root=tmp_path / "runs", progress=False, callbacks=[counter], **extra)
    assert counter.batches and all(0 < b < 5000 for b in counter.batches)
    if family == "two-stage-vae":
        meta = json.loads((res.model_dir / "meta.json").read_text())
        assert meta["stopped_by_cap"]["stage 1"] and meta["stopped_by_cap"]["stage 2"]
