"""DRAW model: filterbank maths, read/write identities, losses, per-step KL, generation, pictures, errors."""

from __future__ import annotations

import math

import pytest
import torch

from latentstudio.errors import ConfigError, RunExistsError, ShapeError
from latentstudio.models.draw import DRAW, DRAWConfig
from latentstudio.models.draw.attention import (
    AttentionRead,
    AttentionWrite,
    PlainRead,
    filterbank,
    read_patch,
    window_from_params,
    write_patch,
)
from latentstudio.types import Batch


def tiny(**kw) -> DRAWConfig:
    base = {"image_size": 12, "steps": 3, "latent_dim": 2, "enc_dim": 16, "dec_dim": 16, "read_n": 3, "write_n": 4}
    return DRAWConfig(**{**base, **kw})


def images(n=6, size=12, seed=0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ filterbank


def test_filterbank_matches_direct_evaluation_of_the_gaussian_formula():
    g = torch.Generator().manual_seed(0)
    b, n, size = 4, 5, 9
    centre = torch.rand(b, generator=g, dtype=torch.float64) * size
    delta = torch.rand(b, generator=g, dtype=torch.float64) * 2 + 0.2
    sigma2 = torch.rand(b, generator=g, dtype=torch.float64) * 3 + 0.1
    f = filterbank(centre, delta, sigma2, n, size)
    assert f.shape == (b, n, size)
    for k in range(b):
        for i in range(n):
            # the paper's 1-based mu^i = g + (i - N/2 - 0.5) delta, i = 1..N, written for i0 = i - 1
            mu = centre[k].item() + ((i + 1) - n / 2 - 0.5) * delta[k].item()
            row = [math.exp(-((a - mu) ** 2) / (2 * sigma2[k].item())) for a in range(size)]
            z = sum(row)
            for a in range(size):
                assert f[k, i, a].item() == pytest.approx(row[a] / z, abs=1e-12)


def test_attention_parameters_follow_the_paper_equations():
    # (g~X, g~Y, log sigma^2, log delta~, log gamma) = (0.5, -1, log 2, log 0.5, log 3) on a 28 x 20 (A x B) image
    params = torch.tensor([[0.5, -1.0, math.log(2.0), math.log(0.5), math.log(3.0)]])
    w = window_from_params(params, height=20, width=28, n=5)
    assert w.gx.item() == pytest.approx((28 + 1) / 2 * 1.5 - 1)  # 0-based pixel coordinates
    assert w.gy.item() == pytest.approx(-1.0)  # g~ = -1: the grid centre sits half a pixel outside the top edge
    assert w.delta.item() == pytest.approx((28 - 1) / (5 - 1) * 0.5)
    assert w.sigma2.item() == pytest.approx(2.0) and w.gamma.item() == pytest.approx(3.0)
    x0, y0, x1, y1 = w.box()[0].tolist()
    assert x1 - x0 == pytest.approx(4 * w.delta.item()) and (x0 + x1) / 2 == pytest.approx(w.gx.item())
    assert y1 - y0 == pytest.approx(x1 - x0) and (y0 + y1) / 2 == pytest.approx(-1.0)


def test_filterbank_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    centre = (torch.rand(2, generator=g, dtype=torch.float64) * 6).requires_grad_()
    delta = (torch.rand(2, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    sigma2 = (torch.rand(2, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, d, s: filterbank(c, d, s, 3, 7), (centre, delta, sigma2))


def _identity_params(size: int) -> torch.Tensor:
    """Raw outputs giving N = size filters at stride 1 over the whole image, tiny variance, gamma 1."""
    return torch.tensor([[0.0, 0.0, math.log(1e-4), 0.0, 0.0]])


def test_full_coverage_read_reproduces_the_image_and_write_of_read_is_identity():
    size = 10
    x = images(3, size)
    w = window_from_params(_identity_params(size).expand(3, 5), size, size, size)
    assert torch.allclose(w.gx, torch.full((3,), (size - 1) / 2)) and torch.allclose(w.delta, torch.ones(3))
    fx = filterbank(w.gx, w.delta, w.sigma2, size, size)
    fy = filterbank(w.gy, w.delta, w.sigma2, size, size)
    assert torch.allclose(fx[0], torch.eye(size), atol=1e-6)
    patch = read_patch(x, fx, fy, w.gamma)
    assert torch.allclose(patch, x, atol=1e-6)
    assert torch.allclose(write_patch(patch, fx, fy, w.gamma), x, atol=1e-6)


def test_attention_modules_read_and_write_through_their_linear_layers():
    size = 8
    x, x_hat = images(2, size), images(2, size, seed=1) - 0.5
    read = AttentionRead(1, size, size, size, dec_dim=4)
    write = AttentionWrite(1, size, size, size, dec_dim=4)
    for layer in (read.params, write.params):
        torch.nn.init.zeros_(layer.weight)
        layer.bias.data = _identity_params(size)[0]
    r, win = read(x, x_hat, torch.randn(2, 4))
    assert r.shape == (2, 2 * size * size) and win.n == size
    assert torch.allclose(r, torch.cat([x.flatten(1), x_hat.flatten(1)], dim=1), atol=1e-6)
    # the write patch comes from h_dec; with the identity window the canvas update is the patch itself
    torch.nn.init.zeros_(write.patch.weight)
    write.patch.bias.data = x[0].flatten()
    update, _ = write(torch.randn(2, 4))
    assert torch.allclose(update, x[0].expand(2, -1, -1, -1), atol=1e-6)


def test_attention_starts_centred_and_blurred_with_unit_write_gain():
    size, n = 28, 5
    write = AttentionWrite(1, size, size, n, dec_dim=4)
    torch.nn.init.zeros_(write.params.weight)  # the bias alone: the window before any training signal
    torch.nn.init.zeros_(write.patch.weight)
    write.patch.bias.data.fill_(1.0)
    update, win = write(torch.zeros(1, 4))
    delta = size / n
    assert win.gx.item() == pytest.approx((size - 1) / 2) and win.delta.item() == pytest.approx(delta)
    assert win.sigma2.item() == pytest.approx((delta / 2) ** 2) and win.gamma.item() == pytest.approx(delta**-2)
    inner = update[0, 0, 4:24, 4:24]  # a constant patch of 1 adds about 1 to every covered logit
    assert 0.95 < inner.min().item() and inner.max().item() < 1.25
    read = AttentionRead(1, size, size, n, dec_dim=4)
    torch.nn.init.zeros_(read.params.weight)
    r, rwin = read(torch.ones(1, 1, size, size), torch.zeros(1, 1, size, size), torch.zeros(1, 4))
    assert rwin.gamma.item() == pytest.approx(1.0)
    assert torch.allclose(r[0, : n * n], torch.ones(n * n), atol=1e-6)  # a read averages pixels


def test_plain_read_is_image_and_error_image():
    x, x_hat = images(2, 5), images(2, 5, seed=3)
    r, win = PlainRead(1, 5, 5)(x, x_hat, torch.zeros(2, 3))
    assert win is None and torch.equal(r, torch.cat([x.flatten(1), x_hat.flatten(1)], dim=1))


# ------------------------------------------------------------------ model


@pytest.mark.parametrize("attention", [True, False])
def test_gradients_reach_every_parameter_including_the_attention_layers(attention):
    torch.manual_seed(0)
    model = DRAW(tiny(attention=attention))
    model.loss(Batch(images()), generator=torch.Generator().manual_seed(0)).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if attention:  # centre, stride, variance and intensity all receive gradient
        for layer in (model.read.params, model.write.params):
            assert (layer.bias.grad.abs() > 0).all()


def test_per_step_kl_sums_to_the_total_and_matches_the_closed_form():
    torch.manual_seed(0)
    model = DRAW(tiny())
    x = images()
    out = model.loss(Batch(x), generator=torch.Generator().manual_seed(5))
    p = model.infer(x, generator=torch.Generator().manual_seed(5))
    kl_steps = p.kl_steps()
    assert kl_steps.shape == (6, 3)
    assert out.terms["kl"].item() == pytest.approx(kl_steps.sum(dim=1).mean().item(), rel=1e-6)
    assert out.terms["kl_first"].item() == pytest.approx(kl_steps[:, 0].mean().item(), rel=1e-6)
    # closed form of one latent: KL(N(mu, sd^2) || N(0, 1)) = (mu^2 + sd^2 - log sd^2 - 1) / 2
    mu, lv = p.mu[0, 1], p.logvar[0, 1]
    by_hand = sum(0.5 * (m**2 + math.exp(v) - v - 1) for m, v in zip(mu.tolist(), lv.tolist(), strict=True))
    assert kl_steps[0, 1].item() == pytest.approx(by_hand, rel=1e-5)
    # the loss is reconstruction + KL; with kl_reduction="mean" the KL sum is divided by T
    assert out.loss.item() == pytest.approx((out.terms["nll"] + out.terms["kl"]).item(), rel=1e-6)
    model_mean = DRAW(tiny(kl_reduction="mean"))
    model_mean.load_state_dict(model.state_dict())
    out_mean = model_mean.loss(Batch(x), generator=torch.Generator().manual_seed(5))
    assert out_mean.loss.item() == pytest.approx((out.terms["nll"] + out.terms["kl"] / 3).item(), rel=1e-6)


def test_bernoulli_and_gaussian_reconstruction_terms_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]]])
    logits = torch.tensor([[[[0.3, -1.2], [2.0, 0.0]]]])
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    assert DRAW(tiny(image_size=2, read_n=1, write_n=1)).log_px(x, logits).item() == pytest.approx(-bce.item(), rel=1e-5)
    gamma = 0.2
    model = DRAW(tiny(image_size=2, read_n=1, write_n=1, decoder="gaussian", gamma=gamma))
    by_hand = ((x - p) ** 2 / (2 * gamma**2)).sum() + 4 * (math.log(gamma) + 0.5 * math.log(2 * math.pi))
    assert model.log_px(x, logits).item() == pytest.approx(-by_hand.item(), rel=1e-5)


def test_generation_keeps_every_canvas_and_is_deterministic_under_a_seed():
    torch.manual_seed(0)
    model = DRAW(tiny()).eval()
    p = model.generate(5, generator=torch.Generator().manual_seed(3))
    assert p.canvases.shape == (3, 5, 1, 12, 12) and p.write_windows.shape == (5, 3, 5)
    assert p.canvases.min() >= 0 and p.canvases.max() <= 1
    again = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert again.dtype == torch.uint8
    assert torch.equal((p.canvases[-1] * 255).round().to(torch.uint8), again)  # the last canvas is the sample
    other = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(again, other)
    # the canvas accumulates: c_t - c_{t-1} is the write of step t, so consecutive canvases differ
    assert not torch.equal(p.canvases[0], p.canvases[1])


def test_importance_sampled_nll_is_exact_when_the_posterior_is_the_prior_and_z_is_unused():
    torch.manual_seed(0)
    model = DRAW(tiny(attention=False)).eval()
    torch.nn.init.zeros_(model.posterior_params.weight)
    torch.nn.init.zeros_(model.posterior_params.bias)  # q(z_t | ...) = N(0, I) = prior
    torch.nn.init.zeros_(model.decoder.weight_ih)  # the decoder ignores z: p(x | z) = p(x)
    x = (images(4) > 0.5).float()
    exact = -model.log_px(x, model.infer(x, sample=False).logits).double()
    for k in (1, 7):
        nll = model.importance_sampled_nll(x, num_samples=k, generator=torch.Generator().manual_seed(0), batch_size=5)
        assert torch.allclose(nll, exact, atol=1e-4)


def test_importance_sampled_nll_is_below_the_negative_elbo_on_average():
    torch.manual_seed(0)
    model = DRAW(tiny()).eval()
    x = (images(32, seed=7) > 0.5).float()
    g = torch.Generator().manual_seed(0)
    nelbo = torch.stack([
        (-model.log_px(x, (p := model.infer(x, generator=g)).logits) + p.kl_steps().sum(1)) for _ in range(20)
    ]).mean(0)
    nll = model.importance_sampled_nll(x, num_samples=64, generator=torch.Generator().manual_seed(1))
    assert nll.dtype == torch.float64 and nll.shape == (32,)
    assert nll.mean().item() < nelbo.mean().item()
    assert (nll > 0).all()


def test_log_importance_weights_give_the_nll_and_an_elbo_above_it():
    torch.manual_seed(0)
    model = DRAW(tiny(attention=False)).eval()
    x = (images(5, seed=3) > 0.5).float()
    log_w = model.log_importance_weights(x, num_samples=6, generator=torch.Generator().manual_seed(2), batch_size=8)
    assert log_w.dtype == torch.float64 and log_w.shape == (6, 5)
    nll = model.importance_sampled_nll(x, num_samples=6, generator=torch.Generator().manual_seed(2), batch_size=8)
    assert torch.allclose(nll, -(torch.logsumexp(log_w, 0) - math.log(6)))
    assert (nll <= -log_w.mean(0) + 1e-9).all()  # Jensen: the K-sample bound is below the mean -ELBO sample


def _reference_pass(model: DRAW, x: torch.Tensor, cond, eps: list[torch.Tensor]) -> torch.Tensor:
    """DRAW's inference pass written with the encoder's nn.LSTMCell on [read, h_dec, cond] at every step."""
    cfg = model.config
    n = x.shape[0]
    extra = [] if cond is None else [cond]
    h_enc = (torch.zeros(n, cfg.enc_dim), torch.zeros(n, cfg.enc_dim))
    h_dec = (torch.zeros(n, cfg.dec_dim), torch.zeros(n, cfg.dec_dim))
    canvas = torch.zeros_like(x)
    for t in range(cfg.steps):
        r, _ = model.read(x, x - torch.sigmoid(canvas), h_dec[0])
        h_enc = model.encoder(torch.cat([r, h_dec[0], *extra], dim=1), h_enc)
        mu, logsd = model.posterior_params(h_enc[0]).chunk(2, dim=1)
        h_dec = model.decoder(torch.cat([mu + logsd.exp() * eps[t], *extra], dim=1), h_dec)
        canvas = canvas + model.write(h_dec[0])[0]
    return canvas


@pytest.mark.parametrize("attention", [True, False])
def test_encoder_projects_the_static_read_once_and_matches_the_lstm_cell(attention):
    """Without attention x is projected into the encoder once per pass; the pass (and its gradients)
    are those of the encoder's nn.LSTMCell applied to the whole read at every step."""
    torch.manual_seed(0)
    model = DRAW(tiny(attention=attention, condition="class", cond_dim=3))
    assert model.read.static_dim == (0 if attention else 144)
    x = (images(4, seed=5) > 0.5).float()
    cond = torch.eye(3)[[0, 1, 2, 0]]
    p = model.infer(x, cond, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    eps = [torch.randn(4, 2, generator=g) for _ in range(3)]
    ref = _reference_pass(model, x, cond, eps)
    assert torch.allclose(p.logits, ref, atol=1e-5)
    grads = torch.autograd.grad(p.logits.sum(), [model.encoder.weight_ih, model.encoder.bias_hh])
    ref_grads = torch.autograd.grad(ref.sum(), [model.encoder.weight_ih, model.encoder.bias_hh])
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_paper_preset_is_the_mnist_model_of_table_3():
    """Gregor et al. 2015, table 3, MNIST model: 64 glimpses, LSTM 256, #z 100 (the size of each z_t),
    read 2x2, write 5x5; binarised images."""
    from latentstudio.presets import preset

    spec = preset("draw", "paper")
    cfg = DRAWConfig(**{**spec["model"], "image_size": 28})
    assert (cfg.steps, cfg.latent_dim, cfg.enc_dim, cfg.dec_dim) == (64, 100, 256, 256)
    assert (cfg.attention, cfg.read_n, cfg.write_n, cfg.total_latent_dim) == (True, 2, 5, 6400)
    assert spec["binarize"] == "threshold" and spec["train"]["batch_size"] == 64
    model = DRAW(cfg)
    assert model.read.out_dim == 8 and model.write.patch.out_features == 25
    assert model.encoder.input_size == 8 + 256 and model.decoder.input_size == 100


def test_conditional_model_concatenates_the_class_and_checks_it():
    torch.manual_seed(0)
    model = DRAW(tiny(condition="class", cond_dim=3))
    assert model.encoder.input_size == model.read.out_dim + 16 + 3 and model.decoder.input_size == 2 + 3
    cond = torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    assert torch.isfinite(model.loss(Batch(images(), cond)).loss)
    a = model.sample(2, condition=0, generator=torch.Generator().manual_seed(0))
    b = model.sample(2, condition=[1, 1], generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, b)  # same z, another class: another image
    with pytest.raises(ShapeError, match="class-conditional; pass a one-hot cond"):
        model.run_decoder(torch.zeros(2, 3, 2))
    with pytest.raises(ConfigError, match=r"class condition must be in 0..2"):
        model.sample(2, condition=3)
    with pytest.raises(ShapeError, match=r"cond: expected one-hot \[6, 3\]"):
        model.loss(Batch(images(), torch.zeros(6, 4)))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ConfigError, match="read_n: must be in 1..image_size"):
        tiny(read_n=13)
    with pytest.raises(ConfigError, match="steps: must be >= 1"):
        tiny(steps=0)
    with pytest.raises(ConfigError, match="decoder: must be one of"):
        tiny(decoder="laplace")
    with pytest.raises(ConfigError, match="cond_dim: must be 0"):
        tiny(cond_dim=10)
    with pytest.raises(ConfigError, match="unknown DRAWConfig field"):
        DRAWConfig.from_dict({"T": 8})
    model = DRAW(tiny())
    with pytest.raises(ShapeError, match=r"expected float \[N, 1, 12, 12\].*to_float"):
        model.loss(Batch((images() * 255).to(torch.long)))
    with pytest.raises(ShapeError, match="unconditional"):
        model.loss(Batch(images(), torch.zeros(6, 2)))
    with pytest.raises(ShapeError, match=r"z: expected \[N, 3, 2\]"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        model.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="num_samples"):
        model.importance_sampled_nll(images(), num_samples=0)




# ------------------------------------------------------------------ pictures


def test_frames_draw_the_write_box_in_green_and_the_read_box_in_red():
    from latentstudio.models.draw.render import READ_COLOR, WRITE_COLOR, canvas_frames, step_grid

    canvases = torch.zeros(2, 1, 1, 10, 10)
    # write grid: centre (4, 5), stride 1, N = 3 -> centres 3..5 (x) and 4..6 (y)
    write = torch.tensor([[[4.0, 5.0, 1.0, 1.0, 1.0], [4.0, 5.0, 1.0, 1.0, 1.0]]])
    read = torch.tensor([[[20.0, 20.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 1.0]]])  # step 1 outside the image
    frames = canvas_frames(canvases, write_windows=write, write_n=3, read_windows=read, read_n=2, scale=1)
    assert frames.shape == (2, 1, 3, 10, 10) and frames.dtype == torch.uint8
    green = torch.tensor(WRITE_COLOR, dtype=torch.uint8)
    assert torch.equal(frames[0, 0, :, 4, 3], green) and torch.equal(frames[0, 0, :, 6, 5], green)
    assert torch.equal(frames[0, 0, :, 5, 4], torch.zeros(3, dtype=torch.uint8))  # inside the box: canvas
    red = torch.tensor(READ_COLOR, dtype=torch.uint8)
    assert not (frames[0] == red[:, None, None]).all(0).any()  # the read box of step 1 lies outside
    assert (frames[1] == red[:, None, None]).all(0).any()
    grid = step_grid(frames)
    assert grid.shape == (3, 2 + 1 * 12, 2 + 2 * 12)


def test_gif_has_one_frame_per_step_and_is_never_overwritten_silently(tmp_path):
    from PIL import Image

    from latentstudio.models.draw.render import animation_frames, generation_frames, save_drawing, save_gif

    torch.manual_seed(0)
    model = DRAW(tiny()).eval()
    final, frames = generation_frames(model, 4, generator=torch.Generator().manual_seed(0))
    assert final.shape == (4, 1, 12, 12) and frames.shape == (3, 4, 3, 24, 24)
    path = save_gif(animation_frames(frames), tmp_path / "a.gif")
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.info.get("loop") == 0
    with pytest.raises(RunExistsError):
        save_gif(animation_frames(frames), path)
    written = save_drawing(frames, tmp_path / "s.png", tmp_path / "s.gif")
    assert [p.name for p in written] == ["s.png", "s.gif"]
    with pytest.raises(RunExistsError):
        save_drawing(frames, tmp_path / "new.png", tmp_path / "s.gif")
    assert not (tmp_path / "new.png").exists()  # nothing is written when one target exists
