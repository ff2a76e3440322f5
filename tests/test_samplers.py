"""Latent samplers: fit / sample / save / load round trips."""

from __future__ import annotations

import pytest
import torch

from latentstudio.errors import ConfigError
from latentstudio.io.checkpoint import save_model_dir
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.models.two_stage import SecondStageConfig, TwoStageConfig, TwoStageVAE
from latentstudio.models.vae import VAEConfig
from latentstudio.samplers import (
    GMMSampler,
    NormalSampler,
    SamplerNotFittedError,
    load_samplers,
)


def two_clusters(n=400, d=3):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, d, generator=g) * 0.1 + 5
    b = torch.randn(n, d, generator=g) * 0.1 - 5
    return torch.cat([a, b])


def test_normal_sampler_seeded():
    s = NormalSampler(4).fit(None)
    a = s.sample(6, torch.Generator().manual_seed(1))
    b = s.sample(6, torch.Generator().manual_seed(1))
    assert a.shape == (6, 4) and torch.equal(a, b)


def test_gmm_recovers_clusters_and_samples_them():
    z = two_clusters()
    gmm = GMMSampler(3, n_components=2).fit(z)
    means = gmm.means[gmm.means[:, 0].argsort()]
    assert torch.allclose(means, torch.tensor([[-5.0] * 3, [5.0] * 3]), atol=0.05)
    assert torch.allclose(gmm.weights, torch.tensor([0.5, 0.5]), atol=1e-3)
    s = gmm.sample(2000, torch.Generator().manual_seed(0))
    assert s.shape == (2000, 3)
    frac_pos = (s[:, 0] > 0).float().mean().item()
    assert 0.45 < frac_pos < 0.55
    # samples lie near the clusters, sd 0.1
    assert (s.abs() - 5).abs().max() < 0.6


def test_gmm_fit_on_mean_vs_sample():
    mean = two_clusters()
    q = DiagonalGaussian(mean, torch.full_like(mean, 2 * torch.log(torch.tensor(2.0))))  # sd 2
    on_mean = GMMSampler(3, n_components=2, fit_on="mean").fit(q)
    on_sample = GMMSampler(3, n_components=2, fit_on="sample").fit(q, torch.Generator().manual_seed(0))
    # sampled z carry the posterior variance: covariance ~ 0.01 + 4 instead of ~ 0.01
    assert on_mean.covariances[0].diagonal().mean() < 0.05
    assert 3.0 < on_sample.covariances[0].diagonal().mean() < 5.0
    with pytest.raises(ConfigError, match="fit_on"):
        GMMSampler(3, fit_on="sample").fit(mean)


def test_gmm_diag_and_log_prob():
    z = two_clusters()
    gmm = GMMSampler(3, n_components=2, covariance_type="diag").fit(z)
    assert gmm.covariances.shape == (2, 3)
    lp = gmm.log_prob(torch.tensor([[5.0, 5.0, 5.0], [0.0, 0.0, 0.0]]))
    assert lp[0] > lp[1]


def test_gmm_not_fitted_error_and_bad_config():
    with pytest.raises(SamplerNotFittedError, match="fit"):
        GMMSampler(2).sample(3)
    with pytest.raises(ConfigError, match="n_components"):
        GMMSampler(2, n_components=50).fit(torch.randn(10, 2))
    with pytest.raises(ConfigError, match="covariance_type"):
        GMMSampler(2, covariance_type="tied")


def tiny_two_stage():
    torch.manual_seed(0)
    cfg = TwoStageConfig(
        stage1=VAEConfig(latent_dim=3, base_dim=4, fc_dim=8, num_scale=2, image_size=8),
        stage2=SecondStageConfig(latent_dim=3, second_depth=1, second_dim=8),
    )
    return TwoStageVAE(cfg).eval()


def test_fitted_state_saved_with_model_and_reloaded(tmp_path):
    model = tiny_two_stage()
    gmm = GMMSampler(3, n_components=2, seed=3).fit(two_clusters())
    samplers = {"normal": NormalSampler(3), "gmm": gmm}
    save_model_dir(model, tmp_path / "m", samplers=samplers)
    loaded_model = TwoStageVAE.from_pretrained(tmp_path / "m")
    loaded = load_samplers(tmp_path / "m", loaded_model)
    assert set(loaded) == {"normal", "gmm"}
    g = loaded["gmm"]
    assert g.n_components == 2 and g.seed == 3
    for k, v in gmm.state_dict().items():
        assert torch.equal(g.state_dict()[k], v)
    assert torch.equal(g.sample(5, torch.Generator().manual_seed(9)), gmm.sample(5, torch.Generator().manual_seed(9)))
    # the second stage is part of the model: its latents match the original model's
    a = loaded_model.latent_sampler("second-stage").sample(4, torch.Generator().manual_seed(2))
    b = model.latent_sampler("second-stage").sample(4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_per_class_gmm_samples_the_requested_class():
    z = two_clusters()  # first half near +5, second half near -5
    labels = torch.cat([torch.zeros(400), torch.ones(400)]).long()
    gmm = GMMSampler(3, n_components=2, num_classes=2).fit(z, labels=labels)
    assert gmm.means.shape == (2, 2, 3) and gmm.weights.shape == (2, 2)
    cond = torch.nn.functional.one_hot(torch.tensor([0, 1] * 50), 2).float()
    s = gmm.sample(100, torch.Generator().manual_seed(0), cond)
    assert (s[0::2] > 4).all() and (s[1::2] < -4).all()
    lp_right = gmm.log_prob(torch.full((1, 3), 5.0), cond[:1])
    lp_wrong = gmm.log_prob(torch.full((1, 3), 5.0), cond[1:2])
    assert lp_right > lp_wrong + 100
    with pytest.raises(ConfigError, match="one-hot cond"):
        gmm.sample(4)
    with pytest.raises(ConfigError, match="labels"):
        GMMSampler(3, n_components=2, num_classes=2).fit(z)
    with pytest.raises(ConfigError, match="class 1"):
        GMMSampler(3, n_components=2, num_classes=2).fit(z[:401], labels=labels[:401])
