"""sketch-rnn model: fused kernel vs reference, mixture density vs scipy, masking, dropout, KL, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentstudio import api
from latentstudio.data.strokes import normalizing_scale_factor, pad_batch, synthetic_sketches
from latentstudio.errors import ConfigError, ShapeError
from latentstudio.evaluation.sketches import stroke_losses as evaluate
from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig, StrokeMixture, kl_weight
from latentstudio.models.sketch_rnn.cells import LSTMLayer, dropout_mask, lstm_sequence
from latentstudio.models.sketch_rnn.explore import complete, truncate
from latentstudio.types import Batch

T = 48


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: one thread is fastest, also on a busy machine
    yield
    torch.set_num_threads(old)


def tiny_config(**kw) -> SketchRNNConfig:
    base = {"max_seq_len": T, "enc_hidden_size": 16, "dec_hidden_size": 32, "latent_dim": 8, "num_mixture": 3,
                "hyper_size": 8, "hyper_embed_size": 4}
    base.update(kw)
    return SketchRNNConfig(**base)


@pytest.fixture(scope="module")
def batch():
    sk = synthetic_sketches(24, seed=0, max_points=40)
    f = normalizing_scale_factor(sk)
    sk = [np.column_stack([s[:, :2] / f, s[:, 2]]).astype(np.float32) for s in sk]
    x, ln = pad_batch(sk, T)
    return sk, x, ln


def test_reference_defaults():
    c = SketchRNNConfig()
    assert (c.enc_hidden_size, c.dec_hidden_size, c.latent_dim, c.num_mixture) == (256, 512, 128, 20)
    assert c.max_seq_len is None and c.parity == "paper"  # Nmax comes from the data; the model needs it resolved
    with pytest.raises(ConfigError, match="max_seq_len.*--set model.max_seq_len"):
        SketchRNN(c)
    assert (c.kl_weight, c.kl_tolerance, c.kl_eta_min, c.kl_decay_rate) == (0.5, 0.2, 0.01, 0.99995)
    assert c.recurrent_dropout and c.recurrent_keep_prob == 0.9 and c.dec_model == "lstm"
    assert c.output_size == 123
    m = SketchRNN(SketchRNNConfig(max_seq_len=10))
    assert m.output.out_features == 123 and m.decoder.hidden_size == 512 and m.enc_mu.in_features == 512


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="recurrent_keep_prob.*KEEPING"):
        SketchRNNConfig(recurrent_keep_prob=0.0)
    with pytest.raises(ConfigError, match="dec_model"):
        SketchRNNConfig(dec_model="gru")


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("with_mask", [False, True])
def test_fused_lstm_gradients_match_autograd(with_mask):
    torch.manual_seed(0)
    t, d, b, h, f = 6, 2, 3, 4, 3
    args = [torch.randn(t, d, b, f, dtype=torch.double, requires_grad=True),
            torch.randn(d, b, 4 * h, dtype=torch.double, requires_grad=True),
            torch.randn(d, b, h, dtype=torch.double, requires_grad=True),
            torch.randn(d, b, h, dtype=torch.double, requires_grad=True),
            torch.randn(d, h + f, 4 * h, dtype=torch.double, requires_grad=True)]
    mask = dropout_mask((t, d, b, h), 0.7, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    m = mask if with_mask else None
    assert torch.autograd.gradcheck(lambda *a: lstm_sequence(*a, m, 0.7), args)
    fused, loop = lstm_sequence(*args, m, 0.7), lstm_sequence(*args, m, 0.7, impl="loop")
    torch.testing.assert_close(fused, loop)


def test_packed_rows_match_full_computation():
    torch.manual_seed(0)
    t, d, b, h, f = 7, 2, 4, 3, 2
    x = torch.randn(t, d, b, f, dtype=torch.double)
    e = torch.randn(d, b, 4 * h, dtype=torch.double)
    w = torch.randn(d, h + f, 4 * h, dtype=torch.double, requires_grad=True)
    z = torch.zeros(d, b, h, dtype=torch.double)
    sizes = [4, 4, 3, 3, 2, 1, 1]
    active = torch.tensor([[float(r < s) for r in range(b)] for s in sizes], dtype=torch.double)[:, None, :, None]
    packed = lstm_sequence(x, e, z, z, w, None, 1.0, sizes)
    full = lstm_sequence(x, e, z, z, w, None, 1.0, impl="loop")
    torch.testing.assert_close(packed * active, full * active)
    assert (packed * (1 - active)).abs().max() == 0
    g1 = torch.autograd.grad((packed * active).sum(), w)[0]
    g2 = torch.autograd.grad((full * active).sum(), w)[0]
    torch.testing.assert_close(g1, g2)


def test_recurrent_dropout_keep_prob_semantics_and_eval():
    g = torch.Generator().manual_seed(0)
    m = dropout_mask((200, 1, 50, 64), 0.9, generator=g)
    zero = (m == 0).float().mean().item()
    assert abs(zero - 0.1) < 0.005  # keep 0.9 drops 10%, not 90%
    assert torch.allclose(m[m != 0], torch.tensor(1 / 0.9))
    assert abs(m.mean().item() - 1.0) < 0.01
    layer = LSTMLayer(3, 8, keep_prob=0.9)
    x = torch.randn(5, 1, 4, 3)
    layer.train()
    assert layer.make_mask(5, 4, None, "cpu") is not None
    a = layer(x, generator=torch.Generator().manual_seed(1))
    b = layer(x, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, b)  # masks differ in training
    layer.eval()
    assert layer.make_mask(5, 4, None, "cpu") is None
    torch.testing.assert_close(layer(x, generator=torch.Generator().manual_seed(1)),
                               layer(x, generator=torch.Generator().manual_seed(2)))
    assert LSTMLayer(3, 8, keep_prob=1.0).make_mask(5, 4, None, "cpu") is None


def test_sequence_mask_mode_reuses_one_mask():
    layer = LSTMLayer(3, 8, keep_prob=0.5, mask_mode="sequence")
    m = layer.make_mask(9, 4, torch.Generator().manual_seed(0), "cpu")
    assert m.shape == (1, 1, 4, 8)


def test_fused_and_loop_models_are_the_same_function(batch):
    _, x, ln = batch
    torch.manual_seed(0)
    fused = SketchRNN(tiny_config())
    loop = SketchRNN(tiny_config(rnn_impl="loop"))
    loop.load_state_dict(fused.state_dict())
    outs = []
    for m in (fused, loop):
        out = m.loss(Batch(x, None, ln), step=3, generator=torch.Generator().manual_seed(5))
        out.loss.backward()
        outs.append((out.loss.detach(), [p.grad.clone() for p in m.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# Training-mode loss and gradient norms (encoder W_hh, decoder W_hh, decoder W_ih) of the tiny model
# below, computed by the fused kernel before its speed-up (which stored the gates and recomputed their
# derivatives over the whole sequence in the backward pass, with torch.tanh): the optimized kernel must
# give the same numbers, dropout masks included.
_BEFORE_SPEEDUP = {
    "step": (1.7732661962509155, 0.0002527054457459599, 0.32011711597442627, 0.7103328108787537),
    "sequence": (1.7568267583847046, 0.0003003322926815599, 0.34434273838996887, 0.6102501153945923),
    "none": (1.779109001159668, 0.00021806002769153565, 0.3308853805065155, 0.5712345838546753),
}


@pytest.mark.parametrize("dropout", sorted(_BEFORE_SPEEDUP))
def test_optimized_kernel_gives_the_loss_and_gradients_of_before(batch, dropout):
    _, x, ln = batch
    kw = {"step": {}, "sequence": {"dropout_mask": "sequence"}, "none": {"recurrent_dropout": False}}[dropout]
    torch.manual_seed(0)
    m = SketchRNN(SketchRNNConfig(max_seq_len=T, enc_hidden_size=16, dec_hidden_size=32, latent_dim=8,
                                  num_mixture=3, **kw))
    out = m.loss(Batch(x, None, ln), step=3, generator=torch.Generator().manual_seed(5))
    out.loss.backward()
    got = (out.loss.item(), m.encoder.weight_hh.grad.norm().item(), m.decoder.weight_hh.grad.norm().item(),
           m.decoder.weight_ih.grad.norm().item())
    want = _BEFORE_SPEEDUP[dropout]
    assert abs(got[0] - want[0]) <= 1e-5
    for g, w in zip(got[1:], want[1:], strict=True):
        assert abs(g - w) <= 1e-5 * max(1.0, abs(w)) and abs(g - w) <= 1e-3 * abs(w)


def test_inference_path_matches_the_training_path():
    """Under no_grad the kernel skips what only the backward pass needs; the outputs are the same."""
    torch.manual_seed(0)
    t, d, b, h, f = 9, 2, 5, 6, 4
    x, e = torch.randn(t, d, b, f), torch.randn(d, b, 4 * h)
    h0, c0 = torch.randn(d, b, h), torch.randn(d, b, h)
    w = torch.randn(d, h + f, 4 * h, requires_grad=True)
    mask = dropout_mask((t, d, b, h), 0.8, generator=torch.Generator().manual_seed(1))
    sizes = [5, 5, 4, 4, 3, 2, 2, 1, 1]
    for m, bs in ((None, None), (mask, None), (mask, sizes)):
        train = lstm_sequence(x, e, h0, c0, w, m, 0.8, bs)
        with torch.no_grad():
            infer = lstm_sequence(x, e, h0, c0, w, m, 0.8, bs)
        assert train.requires_grad and not infer.requires_grad
        torch.testing.assert_close(infer, train.detach(), rtol=0, atol=0)


# ----------------------------------------------------------------------------- mixture


def test_mixture_log_density_matches_scipy():
    from scipy.stats import multivariate_normal

    torch.manual_seed(0)
    m = 5
    y = torch.randn(4, 6 * m + 3, dtype=torch.double)
    mix = StrokeMixture.from_output(y, m)
    dx, dy = torch.randn(4, dtype=torch.double), torch.randn(4, dtype=torch.double)
    got = mix.offset_log_prob(dx, dy)
    pi = torch.softmax(mix.pi_logits, -1)
    for n in range(4):
        p = 0.0
        for j in range(m):
            sx, sy, r = mix.log_sigma_x[n, j].exp().item(), mix.log_sigma_y[n, j].exp().item(), mix.rho[n, j].item()
            cov = [[sx * sx, r * sx * sy], [r * sx * sy, sy * sy]]
            p += pi[n, j].item() * multivariate_normal([mix.mu_x[n, j].item(), mix.mu_y[n, j].item()], cov).pdf(
                [dx[n].item(), dy[n].item()])
        assert got[n].item() == pytest.approx(math.log(p), rel=1e-9, abs=1e-9)
    # the guarded nll is -log(p + eps)
    nll = mix.offset_nll(dx, dy, log_eps=1e-3)
    torch.testing.assert_close(nll, -torch.log(got.exp() + 1e-3))
    onehot = torch.eye(3, dtype=torch.double)[torch.tensor([0, 1, 2, 1])]
    want = -torch.log_softmax(mix.pen_logits, -1)[torch.arange(4), torch.tensor([0, 1, 2, 1])]
    torch.testing.assert_close(mix.pen_nll(onehot), want)


def test_numerical_guards_keep_the_loss_finite():
    m = 3
    y = torch.zeros(2, 6 * m + 3)
    y[:, 3 + 3 * m : 3 + 5 * m] = -80.0  # log sigma far below the floor
    y[:, 3 + 5 * m :] = 50.0  # rho -> 1
    mix = StrokeMixture.from_output(y, m, sigma_min=1e-4, rho_max=0.99999)
    assert mix.log_sigma_x.min().item() == pytest.approx(math.log(1e-4))
    assert mix.rho.max().item() <= 0.99999
    nll = mix.offset_nll(torch.tensor([100.0, 0.0]), torch.tensor([-100.0, 0.0]))
    assert torch.isfinite(nll).all()
    assert nll[0].item() == pytest.approx(-math.log(1e-6), rel=1e-4)  # far away: capped by the log epsilon


# ----------------------------------------------------------------------------- loss


def test_kl_annealing_schedule_values():
    c = SketchRNNConfig()
    assert kl_weight(c, 0) == pytest.approx(0.5 * 0.01)
    assert kl_weight(c, 10_000) == pytest.approx(0.5 * (1 - 0.99 * 0.99995 ** 10_000))
    assert kl_weight(c, 10**7) == pytest.approx(0.5)
    r = c.replace(kl_schedule="reference")
    assert kl_weight(r, 0) == pytest.approx(0.01)
    assert kl_weight(r, 20_000) == pytest.approx(0.5 - 0.49 * 0.99995 ** 20_000)
    assert all(kl_weight(c, s) <= kl_weight(c, s + 100) for s in range(0, 5000, 100))


def test_loss_terms_and_kl_floor(batch):
    _, x, ln = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config())
    out = m.loss(Batch(x, None, ln), step=0, generator=torch.Generator().manual_seed(0))
    t = out.terms
    assert t["recon"].item() == pytest.approx(t["l_s"].item() + t["l_p"].item(), rel=1e-6)
    assert t["kl"].item() < 0.2  # a fresh encoder's posterior is N(~0, ~1): KL far below the floor
    assert out.loss.item() == pytest.approx(t["recon"].item() + kl_weight(m.config, 0) * 0.2, rel=1e-6)
    assert t["kl_sum"].item() == pytest.approx(t["kl"].item() * 8, rel=1e-5)
    # below the floor the KL term gives no gradient: the encoder heads get the reconstruction gradient only
    m.zero_grad()
    out.loss.backward()
    g_total = m.enc_logvar.weight.grad.clone()
    m.zero_grad()
    rec = m.loss(Batch(x, None, ln), step=0, generator=torch.Generator().manual_seed(0))
    (rec.loss - kl_weight(m.config, 0) * 0.2).backward()
    torch.testing.assert_close(m.enc_logvar.weight.grad, g_total)


def test_l_s_is_masked_and_l_p_counts_every_step(batch):
    _, x, ln = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config()).eval()
    q = m.posterior(x, ln)
    mix = m.teacher_forced(x, q.mean)
    terms = m.reconstruction_terms(x, ln, mix)
    # manual: L_s over real steps / Nmax, L_p over all steps / Nmax
    tgt = x.transpose(0, 1)
    nll = mix.offset_nll(tgt[..., 0], tgt[..., 1])
    want_s = torch.stack([nll[: ln[k], k].sum() / T for k in range(len(ln))])
    torch.testing.assert_close(terms["l_s"], want_s)
    pen = mix.pen_nll(tgt[..., 2:])
    torch.testing.assert_close(terms["l_p"], pen.sum(0) / T)


def test_padding_changes_nothing(batch):
    _, x, ln = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config()).eval()
    noisy = x.clone()
    pad = torch.arange(T)[None] >= ln[:, None]
    noisy[..., :2][pad] = torch.randn(int(pad.sum()), 2)  # garbage offsets in the padding
    q1, q2 = m.posterior(x, ln), m.posterior(noisy, ln)
    torch.testing.assert_close(q1.mean, q2.mean)
    torch.testing.assert_close(q1.logvar, q2.logvar)
    # a sketch's posterior does not depend on the other sketches of the batch (nor on sorting)
    alone = m.posterior(x[5:6], ln[5:6])
    torch.testing.assert_close(alone.mean[0], q1.mean[5], atol=1e-6, rtol=1e-5)
    # nor on how much padding follows it
    short = m.posterior(x[5:6, : int(ln[5])], ln[5:6])
    torch.testing.assert_close(short.mean[0], q1.mean[5], atol=1e-6, rtol=1e-5)
    # L_s and the pen losses up to each sketch's end ignore the padding
    r1 = m.reconstruction_terms(x, ln, m.teacher_forced(x, q1.mean))
    r2 = m.reconstruction_terms(noisy, ln, m.teacher_forced(noisy, q1.mean))
    torch.testing.assert_close(r1["l_s"], r2["l_s"])


def test_bad_batches_are_shape_errors(batch):
    _, x, ln = batch
    m = SketchRNN(tiny_config())
    with pytest.raises(ShapeError, match=r"\[N, 48, 5\]"):
        m.loss(Batch(x[:, :40], None, ln))
    with pytest.raises(ShapeError, match="lengths must be in 1..48"):
        m.loss(Batch(x, None, torch.zeros_like(ln)))


@pytest.mark.parametrize("dec_model", ["layer_norm", "hyper"])
def test_other_decoder_cells_train(batch, dec_model):
    _, x, ln = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config(dec_model=dec_model, enc_model="layer_norm" if dec_model == "hyper" else "lstm"))
    out = m.loss(Batch(x[:8], None, ln[:8]), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    s = m.generate(2, temperature=0.5, generator=torch.Generator().manual_seed(0), max_len=10)
    assert len(s.strokes) == 2


def test_unconditional_variant(batch):
    _, x, ln = batch
    m = SketchRNN(tiny_config(conditional=False))
    assert not hasattr(m, "encoder")
    out = m.loss(Batch(x, None, ln))
    assert "kl" not in out.terms and out.loss.item() == pytest.approx(out.terms["recon"].item())
    assert len(m.generate(3, generator=torch.Generator().manual_seed(0)).strokes) == 3
    with pytest.raises(RuntimeError, match="no encoder"):
        m.posterior(x, ln)


def test_a_few_hundred_steps_lower_the_loss():
    train = synthetic_sketches(96, seed=11, max_points=40)
    f = normalizing_scale_factor(train)
    train = [np.column_stack([s[:, :2] / f, s[:, 2]]).astype(np.float32) for s in train]
    xt, lt = pad_batch(train, T)
    torch.manual_seed(0)
    m = SketchRNN(tiny_config())
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    before = evaluate(m, xt, lt, seed=0)["recon"]
    for step in range(300):
        idx = torch.randint(0, len(train), (32,), generator=torch.Generator().manual_seed(step))
        out = m.loss(Batch(xt[idx], None, lt[idx]), step=step, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_value_(m.parameters(), 1.0)
        opt.step()
    after = evaluate(m, xt, lt, seed=0)["recon"]
    assert after < before - 0.5, (before, after)


# ----------------------------------------------------------------------------- sampling




def test_temperature_to_zero_gives_the_greedy_path():
    torch.manual_seed(1)
    m = SketchRNN(tiny_config())
    z = torch.randn(3, 8)
    greedy = m.generate(z=z, greedy=True, max_len=20).strokes
    cold = m.generate(z=z, temperature=1e-8, generator=torch.Generator().manual_seed(0), max_len=20).strokes
    for g, c in zip(greedy, cold, strict=True):
        assert g.shape == c.shape
        np.testing.assert_allclose(g, c, atol=1e-3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        m.generate(1, temperature=0.0)


def test_sampling_from_z_interpolation_and_completion(batch):
    sk, _, _ = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config())
    z = torch.randn(2, 8)
    s = m.generate(z=z, greedy=True, max_len=15)
    torch.testing.assert_close(s.z, z)
    res = api.interpolate(m, sk[0], sk[1], steps=4, greedy=True)
    assert len(res.strokes) == 4
    part = truncate(sk[2], 0.5)
    assert len(part) == math.ceil(0.5 * len(sk[2]))
    done = complete(m, part, 3, temperature=0.5, generator=torch.Generator().manual_seed(0))
    for s3 in done.strokes:
        np.testing.assert_array_equal(s3[: len(part) - 1], part[:-1])  # the given part is kept
    assert done.prefix_lengths == [len(part)] * 3
    rec = api.reconstruct(m, sk[:2], greedy=True)
    assert len(rec.strokes) == 2


def test_evaluate_is_repeatable_and_in_eval_mode(batch):
    _, x, ln = batch
    torch.manual_seed(0)
    m = SketchRNN(tiny_config())
    a, b = evaluate(m, x, ln, seed=1, batch_size=7), evaluate(m, x, ln, seed=1, batch_size=7)
    assert a == b and a["n"] == 24 and set(a) >= {"recon", "l_s", "l_p", "kl", "kl_sum"}
    assert m.training  # restored


def test_save_and_load_keep_the_scale_factor(tmp_path):
    from latentstudio.models.loading import load_model

    torch.manual_seed(0)
    m = SketchRNN(tiny_config(dec_model="layer_norm"))
    m.scale_factor.fill_(18.5)
    m.save_pretrained(tmp_path / "model")
    back = load_model(tmp_path / "model")
    assert isinstance(back, SketchRNN) and float(back.scale_factor) == 18.5
    z = torch.randn(2, 8)
    a = m.eval().generate(z=z, greedy=True, max_len=12).strokes
    b = back.generate(z=z, greedy=True, max_len=12).strokes
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", ["lstm", "layer_norm", "hyper"])
def test_step_by_step_sampling_matches_the_sequence_forward(kind):
    """Sampling runs the cells one step at a time; it must compute what training computed."""
    from latentstudio.models.sketch_rnn.cells import make_layer

    torch.manual_seed(0)
    layer = make_layer(kind, 5 + 3, 6, directions=1, hyper_size=4, embed_size=2).eval()
    x = torch.randn(7, 1, 2, 5)
    const = torch.randn(1, 2, 3)
    state0 = layer.split_state(torch.tanh(torch.randn(1, 2, layer.state_size)))
    full = layer(x, state0, const=const)
    state, outs = state0, []
    for t in range(7):
        h, state = layer.step(x[t], state, const)
        outs.append(h)
    torch.testing.assert_close(torch.stack(outs), full)


# ----------------------------------------------------------------------------- reference parity


def _hand_loss(model, x, ln, seed: int, step: int, *, nmax: int):
    """L_s, L_p, L_KL and the total written out in numpy from the model's raw outputs (the reference's
    formulas: density of each bivariate normal, -log(sum pi N + 1e-6) masked after the end, pen
    cross-entropy over all Nmax steps, both summed and divided by N * Nmax; KL averaged over the batch
    and the latent dimensions, floored at kl_tolerance, times w_KL - (w_KL - 0.01) R^step)."""
    seen = {}
    hooks = [getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
             for name in ("enc_mu", "enc_logvar", "output")]
    g = torch.Generator().manual_seed(seed)
    out = model.loss(Batch(x, None, ln), step=step, generator=g)
    for h in hooks:
        h.remove()
    y = seen["output"].detach().double().numpy()  # [T, N, 6M + 3]
    tgt = x.transpose(0, 1).double().numpy()  # [T, N, 5]
    pen_logits = y[..., :3]
    pi, mx, my, lsx, lsy, r = np.split(y[..., 3:], 6, axis=-1)
    pi = np.exp(pi - pi.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    sx, sy, rho = np.exp(lsx), np.exp(lsy), np.tanh(r)
    dx, dy = tgt[..., :1] - mx, tgt[..., 1:2] - my
    z = (dx / sx) ** 2 + (dy / sy) ** 2 - 2 * rho * dx * dy / (sx * sy)
    dens = np.exp(-z / (2 * (1 - rho**2))) / (2 * np.pi * sx * sy * np.sqrt(1 - rho**2))
    fs = 1.0 - tgt[..., 4]  # 0 on padding steps
    l_s = -(np.log((pi * dens).sum(-1) + 1e-6) * fs).sum() / (x.shape[0] * nmax)
    logq = pen_logits - pen_logits.max(-1, keepdims=True)
    logq = logq - np.log(np.exp(logq).sum(-1, keepdims=True))
    l_p = -(tgt[..., 2:] * logq).sum() / (x.shape[0] * nmax)
    mu, lv = seen["enc_mu"].detach().double().numpy(), seen["enc_logvar"].detach().double().numpy()
    kl = -0.5 * np.mean(1 + lv - mu**2 - np.exp(lv))
    return out, l_s, l_p, kl


@pytest.mark.parametrize("parity", ["paper", "reference"])
def test_loss_equals_hand_computation(batch, parity):
    _, x, ln = batch
    model = SketchRNN(tiny_config(parity=parity, kl_tolerance=0.05)).eval()  # eval: no dropout masks
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    step = 700
    out, l_s, l_p, kl = _hand_loss(model, x[:6], ln[:6], seed=11, step=step, nmax=T)
    c = model.config
    assert out.terms["l_s"].item() == pytest.approx(l_s, abs=1e-5)
    assert out.terms["l_p"].item() == pytest.approx(l_p, abs=1e-5)
    assert out.terms["kl_raw"].item() == pytest.approx(kl, abs=1e-5)
    if parity == "reference":
        w = c.kl_weight - (c.kl_weight - c.kl_eta_min) * c.kl_decay_rate**step
        assert out.terms["kl"].item() == pytest.approx(max(kl, c.kl_tolerance), abs=1e-5)  # the floored KL is reported
    else:
        w = c.kl_weight * (1 - (1 - c.kl_eta_min) * c.kl_decay_rate**step)
        assert out.terms["kl"].item() == pytest.approx(kl, abs=1e-5)
    assert out.loss.item() == pytest.approx(l_s + l_p + w * max(kl, c.kl_tolerance), abs=1e-5)


def test_losses_are_normalised_by_nmax_not_the_padding(batch):
    sk, _, _ = batch
    model = SketchRNN(tiny_config()).eval()
    x, ln = pad_batch(sk[:5], T)
    x2, _ = pad_batch(sk[:5], 2 * T)
    a = evaluate(model, x, ln, seed=1)
    b = evaluate(model, x2, ln, seed=1, nmax=T)
    # the reference values use the data's Nmax whatever the padding; the raw ones divide by the padded length
    assert b["ref_l_s"] == pytest.approx(a["ref_l_s"], rel=1e-5) and b["ref_l_p"] == pytest.approx(a["ref_l_p"], rel=1e-5)
    assert b["l_s"] == pytest.approx(a["l_s"] / 2, rel=1e-5)
    assert a["ref_kl"] == pytest.approx(max(a["kl"], model.config.kl_tolerance))
    assert a["ref_recon"] == pytest.approx(a["recon"], rel=1e-5)  # padded to the model's Nmax = the data's


def test_parity_reference_switches_every_item():
    paper = SketchRNN(tiny_config(dec_model="hyper"))
    ref = SketchRNN(tiny_config(dec_model="hyper", parity="reference"))
    assert torch.count_nonzero(paper.output.bias) == 0
    limit = math.sqrt(3.0 / ref.config.output_size)
    assert 0 < ref.output.bias.abs().max().item() <= limit and ref.output.bias.std().item() > limit / 4
    assert kl_weight(paper.config, 0) == pytest.approx(0.005) and kl_weight(ref.config, 0) == pytest.approx(0.01)
    assert kl_weight(ref.config.replace(kl_schedule="paper"), 0) == pytest.approx(0.005)  # an explicit schedule wins
    assert paper.decoder.hyper.keep_prob == 0.9 and ref.decoder.hyper.keep_prob == 1.0
    e = ref.config.hyper_embed_size
    torch.testing.assert_close(paper.decoder.scale_x.sum(1), torch.ones(4, 32))
    torch.testing.assert_close(ref.decoder.scale_x.sum(1), torch.full((4, 32), 0.1))
    assert ref.decoder.scale_h.flatten()[0].item() == pytest.approx(0.1 / e)
    # temperature: sigma * sqrt(tau) (paper) vs sigma * tau^2 (reference sampler), one component, rho = 0
    n = 20000
    mix = StrokeMixture(torch.zeros(n, 1), torch.zeros(n, 1), torch.zeros(n, 1), torch.zeros(n, 1),
                        torch.zeros(n, 1), torch.zeros(n, 1), torch.zeros(n, 3))
    for rule, want in (("paper", math.sqrt(0.25)), ("reference", 0.25**2)):
        xy, _ = mix.sample(0.25, generator=torch.Generator().manual_seed(0), rule=rule)
        assert xy.std(0).numpy() == pytest.approx([want, want], rel=0.03)


def test_input_and_output_dropout_keep_probability(batch):
    _, x, ln = batch
    base = {"recurrent_dropout": False}
    plain = SketchRNN(tiny_config(**base))
    for opts in ({"use_input_dropout": True, "input_dropout_prob": 0.5},
                 {"use_output_dropout": True, "output_dropout_prob": 0.5}):
        m = SketchRNN(tiny_config(**base, **opts))
        m.load_state_dict(plain.state_dict())
        b = Batch(x[:4], None, ln[:4])
        ev = [mm.eval().loss(b, generator=torch.Generator().manual_seed(0)).loss for mm in (plain, m)]
        assert ev[0].item() == pytest.approx(ev[1].item(), rel=1e-6)  # off in eval mode
        tr = [mm.train().loss(b, generator=torch.Generator().manual_seed(0)).loss for mm in (plain, m)]
        assert tr[0].item() != pytest.approx(tr[1].item(), rel=1e-3)  # on in training mode
    with pytest.raises(ConfigError, match="input_dropout_prob.*KEEPING"):
        tiny_config(input_dropout_prob=0.0)
