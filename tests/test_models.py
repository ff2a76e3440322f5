"""VAE / second-stage / two-stage models: losses against hand computation, shapes, errors."""

from __future__ import annotations

import math

import pytest
import torch

from latentstudio.errors import ConfigError, ShapeError
from latentstudio.models.distributions import DiagonalGaussian, standard_normal_log_prob
from latentstudio.models.losses import bernoulli_nll, gaussian_nll
from latentstudio.models.two_stage import SecondStageConfig, SecondStageVAE, TwoStageConfig
from latentstudio.models.vae import VAE, VAEConfig
from latentstudio.types import Batch


def small_vae(**kw) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=4, base_dim=4, fc_dim=8, num_scale=2, image_size=8, **kw))


def test_kl_hand_computed():
    # mean 1, sd 1: each dim (1 + 1 - 0 - 1)/2 = 0.5; mean 0, sd e: (0 + e^2 - 2 - 1)/2
    q = DiagonalGaussian(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
    expected = 0.5 + (math.e**2 - 2 - 1) / 2
    assert q.kl().item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_nll_hand_computed():
    x = torch.tensor([[0.5, 1.0]])
    x_hat = torch.tensor([[0.3, 1.0]])
    loggamma = torch.tensor(math.log(0.5))
    # ((0.2 / 0.5)^2 / 2 + log 0.5 + log(2 pi)/2) + (0 + log 0.5 + log(2 pi)/2)
    expected = 0.16 / 2 + 2 * math.log(0.5) + math.log(2 * math.pi)
    assert gaussian_nll(x, x_hat, loggamma).item() == pytest.approx(expected, rel=1e-6)


def test_bernoulli_nll_hand_computed():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = 0.5, 0.75
    expected = -math.log(0.5) - math.log(0.25)
    assert bernoulli_nll(x, logits).item() == pytest.approx(expected, rel=1e-6)


def test_posterior_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(3, 5), torch.randn(3, 5))
    z = torch.randn(3, 5)
    ref = torch.distributions.Normal(q.mean, q.std).log_prob(z).sum(-1)
    assert torch.allclose(q.log_prob(z), ref, atol=1e-5)
    assert torch.allclose(standard_normal_log_prob(z), torch.distributions.Normal(0, 1).log_prob(z).sum(-1), atol=1e-5)


@pytest.mark.parametrize("decoder", ["gaussian", "bernoulli"])
def test_vae_loss_terms_recomputed(decoder):
    m = small_vae(decoder=decoder, beta=0.5)
    x = torch.rand(5, 1, 8, 8)
    out = m.loss(Batch(x), generator=torch.Generator().manual_seed(3))
    q = m.posterior(x)
    z = q.sample(torch.Generator().manual_seed(3))
    logits = m.decode_logits(z)
    kl = q.kl().mean()
    nll = (bernoulli_nll(x, logits) if decoder == "bernoulli" else gaussian_nll(x, torch.sigmoid(logits), m.loggamma)).mean()
    assert out.terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert out.terms["nll"].item() == pytest.approx(nll.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(nll.item() + 0.5 * kl.item(), rel=1e-5)
    assert out.terms["gamma"].item() == pytest.approx(1.0)


def test_gamma_learned_or_fixed():
    learned = small_vae()
    fixed = small_vae(learn_gamma=False, gamma_init=0.1)
    assert any(p is learned.loggamma for p in learned.parameters())
    assert all(p is not fixed.loggamma for p in fixed.parameters())
    assert fixed.gamma.item() == pytest.approx(0.1)
    # a learned gamma moves toward the reconstruction error: gradient of log gamma is positive
    # when the residual is smaller than gamma (here gamma = 1, residuals < 1)
    x = torch.rand(4, 1, 8, 8)
    learned.loss(Batch(x), generator=torch.Generator().manual_seed(0)).loss.backward()
    assert learned.loggamma.grad.item() > 0


def test_shapes_and_encode_returns_posterior():
    m = VAE(VAEConfig(latent_dim=6, base_dim=4, fc_dim=8, image_size=32, image_channels=3, num_scale=3))
    x = torch.rand(2, 3, 32, 32)
    q = m.posterior(x)
    assert isinstance(q, DiagonalGaussian)
    assert q.mean.shape == q.logvar.shape == (2, 6)
    assert q.sample(torch.Generator().manual_seed(0)).shape == (2, 6)
    assert torch.equal(q.mode(), q.mean)
    assert m.decode_mean(q.mode()).shape == (2, 3, 32, 32)
    y = m.decode_mean(torch.randn(2, 6)).detach()
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_decoder_widths_double_and_cap():
    m = VAE(VAEConfig(base_dim=256, image_size=64, num_scale=4, latent_dim=2, fc_dim=4))
    assert m.dec_dims == [1024, 1024, 1024, 1024, 512, 256]  # 2x2 ... 64x64


def test_conditional_placement():
    cfg = VAEConfig(latent_dim=4, base_dim=4, fc_dim=8, num_scale=2, image_size=8, condition="class", cond_dim=3)
    m = VAE(cfg)
    # condition enters the dense block after pooling and the decoder's first dense layer
    assert m.enc_fc[0].shortcut.in_features == 8 + 3
    assert m.dec_fc.in_features == 4 + 3
    x = torch.rand(2, 1, 8, 8)
    c = torch.eye(3)[:2]
    m.eval()
    a = m.decode_mean(torch.zeros(2, 4), c)
    b = m.decode_mean(torch.zeros(2, 4), torch.eye(3)[1:])
    assert not torch.allclose(a, b)
    with pytest.raises(ShapeError, match="conditional"):
        m.posterior(x)
    with pytest.raises(ShapeError, match="cond"):
        m.posterior(x, torch.eye(4)[:2])


def test_bad_inputs_give_clear_errors():
    m = small_vae()
    with pytest.raises(ShapeError, match="to_float"):
        m.posterior(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ShapeError, match=r"\[N, 1, 8, 8\]"):
        m.posterior(torch.rand(2, 3, 8, 8))
    with pytest.raises(ShapeError, match="unconditional"):
        m.posterior(torch.rand(2, 1, 8, 8), torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="image_size"):
        VAEConfig(image_size=30)
    with pytest.raises(ConfigError, match="decoder"):
        VAEConfig(decoder="laplace")
    with pytest.raises(ConfigError, match="unknown VAEConfig field"):
        VAEConfig.from_dict({"latent_dimm": 3})
    with pytest.raises(ConfigError, match="stage2.latent_dim"):
        TwoStageConfig(stage1=VAEConfig(latent_dim=8), stage2=SecondStageConfig(latent_dim=4))


def test_second_stage_loss_and_skip_connection():
    torch.manual_seed(0)
    s = SecondStageVAE(SecondStageConfig(latent_dim=5, second_depth=2, second_dim=7))
    assert s.enc_mu.in_features == 5 + 7  # concat(input, features)
    z = torch.randn(10, 5)
    out = s.loss(Batch(z), generator=torch.Generator().manual_seed(1))
    q = s.posterior(z)
    u = q.sample(torch.Generator().manual_seed(1))
    nll = gaussian_nll(z, s.decode(u), s.loggamma).mean()
    assert out.terms["nll"].item() == pytest.approx(nll.item(), rel=1e-5)
    assert out.terms["kl"].item() == pytest.approx(q.kl().mean().item(), rel=1e-5)

