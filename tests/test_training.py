"""Lightning training: run directory contents, resume == uninterrupted, NaN keeps the last checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_run_spec

from latentstudio import api
from latentstudio.data.base import ImageData
from latentstudio.errors import LatentStudioError
from latentstudio.models.loading import load_model


@pytest.fixture(scope="module")
def small_digits(digits_u8):
    images, labels = digits_u8
    return ImageData(images[:256], labels[:256], name="digits", class_names=[str(i) for i in range(10)])




def state(model_dir):
    return load_model(model_dir).state_dict()


def test_run_directory_layout_and_logs(tmp_path, small_digits):
    res = api.train("two-stage-vae", tiny_run_spec(2, 1), runs_root=tmp_path, data=small_digits, progress=False)
    run = res.run_dir
    assert run.name == "00000-two-stage-vae-digits"
    cfg = json.loads((run / "run.json").read_text())["config"]
    assert cfg["model"]["stage1"]["image_size"] == 32 and cfg["stage1"]["epochs"] == 2
    assert (run / "stage1" / "checkpoints" / "last.ckpt").is_file()
    assert (run / "stage1" / "samples" / "epoch-0002.png").is_file()
    assert (run / "stage1" / "recon" / "epoch-0002.png").is_file()
    assert list((run / "stage1" / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    header = (run / "stage1" / "logs" / "csv" / "metrics.csv").read_text().splitlines()[0]
    for term in ("train/kl_epoch", "train/nll_epoch", "train/gamma_epoch", "train/loss_epoch", "train/lr"):
        assert term in header
    # N(0, I) and the second stage belong to the model; the fitted GMM is stored beside it
    assert set(json.loads((run / "model" / "samplers.json").read_text())) == {"gmm"}
    meta = json.loads((run / "model" / "meta.json").read_text())
    assert meta["dataset"]["fingerprint"] == small_digits.fingerprint() and meta["seed"] == 0
    # a second run gets the next number, the first is untouched
    res2 = api.train("two-stage-vae", tiny_run_spec(1, 1), runs_root=tmp_path, data=small_digits, progress=False)
    assert res2.run_dir.name == "00001-two-stage-vae-digits"


def test_lr_halves_every_k_epochs(tmp_path, small_digits):
    spec = tiny_run_spec(3, 1)
    spec["stage1"]["lr_halve_every"] = 1
    res = api.train("two-stage-vae", spec, runs_root=tmp_path, data=small_digits, progress=False)
    rows = (res.run_dir / "stage1" / "logs" / "csv" / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("train/lr")
    lrs = [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]]
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4])






def test_dry_run_resolves_config_without_writing(tmp_path, small_digits):
    run = api.train("two-stage-vae", tiny_run_spec(), runs_root=tmp_path, data=small_digits, dry_run=True)
    assert run.model.stage1.image_channels == 1 and run.model.stage1.image_size == 32
    assert run.model.stage2.latent_dim == run.model.stage1.latent_dim
    assert not any(tmp_path.iterdir())


def test_conditional_config_from_data(small_digits):
    spec = tiny_run_spec()
    spec["model"]["stage1"]["condition"] = "class"
    run = api.train("two-stage-vae", spec, data=small_digits, dry_run=True)
    assert run.model.stage1.cond_dim == 10 and run.model.stage2.cond_dim == 10


def test_fit_second_stage_trains_on_a_posterior():
    from latentstudio.models.distributions import DiagonalGaussian
    from latentstudio.training.config import TrainConfig
    from latentstudio.training.fit import fit_second_stage

    g = torch.Generator().manual_seed(0)
    q = DiagonalGaussian(torch.randn(256, 4, generator=g) * 2 + 1, torch.full((256, 4), -4.0))
    stage2 = fit_second_stage(q, train=TrainConfig(epochs=30, batch_size=64, lr=3e-3))
    assert not stage2.training
    with torch.no_grad():
        z = stage2.decode(torch.randn(2000, 4, generator=torch.Generator().manual_seed(1)))
    assert z.shape == (2000, 4)
    # the decoded prior moves toward the aggregate posterior's mean (1) from the prior's (0)
    assert (z.mean(0) > 0.5).all()


def test_attribute_conditional_training_and_sampling(tmp_path, small_digits):
    g = torch.Generator().manual_seed(0)
    attrs = torch.where(torch.rand(len(small_digits), 3, generator=g) > 0.5, 1.0, -1.0)
    data = ImageData(small_digits.images, small_digits.labels, attributes=attrs, attribute_names=["a", "b", "c"],
                     name="digits")
    spec = tiny_run_spec(1, 1)
    spec["model"]["stage1"]["condition"] = "attributes"
    res = api.train("two-stage-vae", spec, runs_root=tmp_path, data=data, progress=False)
    assert res.model.config.stage1.cond_dim == 3 and res.model.config.stage2.cond_dim == 3
    loaded = api.load(res.model_dir)
    assert loaded.samplers["gmm"].num_classes == 0  # attributes: one mixture for all latents
    for sampler in ("normal", "gmm", "second-stage"):
        images = api.generate(loaded, 4, sampler=sampler, seed=0, condition={0: 1.0, 2: -1.0})
        assert images.shape == (4, 1, 32, 32) and images.dtype == torch.uint8
    from latentstudio.models.vae import VAE, VAEConfig

    with pytest.raises(LatentStudioError, match="unconditional"):
        VAE(VAEConfig(latent_dim=2, base_dim=2, fc_dim=2, num_scale=1, image_size=4)).sample(2, condition=3)


def test_resuming_a_run_of_another_family_names_its_command(tmp_path):
    run = tmp_path / "00000-draw-digits"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "draw", "config": {}}))
    with pytest.raises(LatentStudioError, match=r"is a 'draw' run, not a 'two-stage-vae' run.*train draw --resume"):
        api.train("two-stage-vae", {}, resume=run, progress=False)
