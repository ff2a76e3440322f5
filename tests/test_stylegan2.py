"""StyleGAN2 networks and generation tools: modulated convolution maths, shapes, truncation, latents, videos."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from latentstudio.errors import CheckpointError, ConfigError, LatentStudioError, ShapeError
from latentstudio.models.stylegan2 import (
    Discriminator,
    Generator,
    StyleGAN2Config,
    load_generator,
    modulated_conv2d,
    save_model,
    z_from_seed,
)
from latentstudio.models.stylegan2 import generate as gen
from latentstudio.models.stylegan2.networks import setup_filter, upfirdn2d, upsample2d

SMALL = StyleGAN2Config(resolution=16, z_dim=8, w_dim=8, channel_base=64, channel_max=8, mapping_layers=2)


def _g(seed: int = 0, config: StyleGAN2Config = SMALL) -> Generator:
    torch.manual_seed(seed)
    G = Generator(config)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # noise strengths and biases away from their zero init
        G.mapping.w_avg.normal_()
    return G.eval()


def _explicit_modconv(x, weight, styles, demodulate):
    """Per-sample reference: modulate (eq. 1), demodulate (eq. 3), ordinary convolution."""
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i][None, :, None, None]
        if demodulate:
            w = w / torch.sqrt(w.pow(2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[i: i + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_explicit_per_sample_conv(fused, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, 8, generator=g)
    weight = torch.randn(4, 5, 3, 3, generator=g)
    styles = torch.randn(3, 5, generator=g) + 1
    got = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, fused=fused)
    torch.testing.assert_close(got, _explicit_modconv(x, weight, styles, demodulate), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_upsampling_modulated_conv_equals_zero_insertion_reference(fused):
    """up=2: transposed stride-2 conv == true convolution of the zero-inserted input, then the 4x4 FIR."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 5, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    styles = torch.randn(2, 3, generator=g) + 1
    f = setup_filter()
    got = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, fused=fused)
    ref = []
    for i in range(2):
        w = weight * styles[i][None, :, None, None]
        w = w / torch.sqrt(w.pow(2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        z = torch.zeros(1, 3, 10, 10)
        z[:, :, ::2, ::2] = x[i: i + 1]
        y = F.conv2d(F.pad(z, [2, 2, 2, 2]), w.flip([2, 3]))[:, :, :11, :11]  # transposed conv, output 2H+1
        ref.append(upfirdn2d(y, f, pad=(1, 1, 1, 1), gain=4))
    assert got.shape == (2, 4, 10, 10)
    torch.testing.assert_close(got, torch.cat(ref), rtol=1e-5, atol=1e-5)


def test_demodulation_gives_unit_output_variance():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 64, 16, 16, generator=g)  # unit-variance input
    weight = torch.randn(32, 64, 3, 3, generator=g)
    styles = torch.rand(16, 64, generator=g) * 3 + 0.1
    y = modulated_conv2d(x, weight, styles, padding=1)
    var = y[:, :, 1:-1, 1:-1].var(dim=[0, 2, 3])  # interior (no zero padding)
    assert var.mean().item() == pytest.approx(1.0, abs=0.05)
    assert (var - 1).abs().max().item() < 0.2
    y_raw = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    assert y_raw[:, :, 1:-1, 1:-1].var().item() > 10  # without demodulation the scale follows the styles


def test_fir_upsampling_keeps_constant_images():
    x = torch.full((1, 2, 6, 6), 0.7)
    y = upsample2d(x, setup_filter())
    assert y.shape == (1, 2, 12, 12)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.full((1, 2, 8, 8), 0.7))


@pytest.mark.parametrize("res", [16, 32, 64, 128, 256, 512, 1024])
def test_shapes_for_every_resolution(res):
    cfg = StyleGAN2Config(resolution=res, z_dim=8, w_dim=8, channel_base=4 * res, channel_max=4, mapping_layers=1)
    G, D = Generator(cfg).eval(), Discriminator(cfg)
    assert G.num_ws == cfg.num_ws == 2 * int(math.log2(res)) - 2
    ws = G.mapping(torch.randn(2, 8))
    assert ws.shape == (2, G.num_ws, 8)
    with torch.no_grad():
        img = G.synthesis(ws)
        assert img.shape == (2, 3, res, res) and img.dtype == torch.float32
        assert D(img).shape == (2, 1)


def test_config_f_layout_matches_the_official_networks():
    cfg = StyleGAN2Config(resolution=1024)
    G, D = Generator(cfg), Discriminator(cfg)
    assert G.num_ws == 18
    assert sum(p.numel() for p in G.parameters()) == 30_370_060  # official config-f G
    assert sum(p.numel() for p in D.parameters()) == 29_012_513  # official config-f D
    sd = G.state_dict()
    assert sd["synthesis.b1024.conv0.weight"].shape == (32, 64, 3, 3)
    assert sd["synthesis.b4.const"].shape == (512, 4, 4) and sd["mapping.w_avg"].shape == (512,)
    assert sd["synthesis.b64.conv1.noise_const"].shape == (64, 64)


def test_truncation():
    G = _g()
    z = torch.randn(4, 8)
    w = G.mapping(z)
    torch.testing.assert_close(G.mapping(z, truncation_psi=0), G.w_avg.expand(4, G.num_ws, 8))
    half = G.mapping(z, truncation_psi=0.5)
    torch.testing.assert_close(half, G.w_avg + 0.5 * (w - G.w_avg))
    cut = G.mapping(z, truncation_psi=0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], G.w_avg.expand(4, 2, 8))
    torch.testing.assert_close(cut[:, 2:], w[:, 2:])


def test_w_avg_tracks_the_mean_of_w():
    G = _g()
    G.mapping.w_avg.zero_()
    z = torch.randn(64, 8)
    w = G.mapping(z)[:, 0]
    G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.w_avg, (1 - SMALL.w_avg_beta) * w.mean(0))


def test_noise_modes():
    G = _g()
    ws = G.mapping(torch.randn(2, 8))
    a, b = G.synthesis(ws, "const"), G.synthesis(ws, "const")
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, G.synthesis(ws, "none"))
    r1 = G.synthesis(ws, "random", generator=torch.Generator().manual_seed(5))
    r2 = G.synthesis(ws, "random", generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(r1, r2)
    assert not torch.allclose(r1, a)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ConfigError, match="resolution: must be a power of two in 16..1024, got 48"):
        StyleGAN2Config(resolution=48)
    with pytest.raises(ConfigError, match="resolution"):
        StyleGAN2Config(resolution=2048)
    with pytest.raises(ConfigError, match="channel_base"):
        StyleGAN2Config(resolution=256, channel_base=128)
    G = _g()
    with pytest.raises(ShapeError, match=r"z: expected shape \[\*, 8\], got \[2, 5\]"):
        G.mapping(torch.randn(2, 5))
    with pytest.raises(ShapeError, match="ws"):
        G.synthesis(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(G.mapping(torch.randn(1, 8)), "fresh")
    with pytest.raises(ValueError, match="unconditional"):
        G.mapping(torch.randn(1, 8), c=torch.ones(1, 3))
    with pytest.raises(ShapeError, match="img"):
        Discriminator(SMALL)(torch.randn(1, 3, 32, 32))


def test_official_seed_convention():
    z = z_from_seed(42, 512)
    np.testing.assert_array_equal(z.numpy(), np.random.RandomState(42).randn(1, 512).astype(np.float32))


def test_model_folder_round_trip(tmp_path):
    G = _g(3)
    D = Discriminator(SMALL)
    save_model(tmp_path / "m", G, D)
    G2 = load_generator(tmp_path / "m")
    z = torch.randn(2, 8)
    torch.testing.assert_close(G2(z, truncation_psi=0.7), G(z, truncation_psi=0.7), rtol=0, atol=0)
    with pytest.raises(LatentStudioError, match="already exists"):
        save_model(tmp_path / "m", G)
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="latentstudio convert"):
        load_generator(tmp_path / "x.pkl")


def test_saved_latents_reproduce_images(tmp_path):
    G = _g(4)
    z = gen.seeds_to_z([1, 2], 8)
    ws = gen.map_z(G, z, truncation_psi=0.7)
    img = gen.synthesize(G, ws)
    assert img.dtype == torch.uint8 and img.shape == (2, 3, 16, 16)
    gen.save_latents(tmp_path / "lat.npz", z=z, w=ws, seeds=[1, 2])
    torch.testing.assert_close(gen.load_latents(tmp_path / "lat.npz", G), ws)  # w is preferred
    torch.testing.assert_close(gen.load_latents(tmp_path / "lat.npz", G, "z", truncation_psi=0.7), ws)  # via z
    assert not torch.allclose(gen.load_latents(tmp_path / "lat.npz", G, "z"), ws)  # z without truncation
    np.savez(tmp_path / "w1.npz", w=ws[:1].numpy())  # the [1, num_ws, w_dim] layout of projections
    torch.testing.assert_close(gen.synthesize(G, gen.load_latents(tmp_path / "w1.npz", G)), img[:1])
    np.save(tmp_path / "w.npy", ws[:, 0].numpy())  # plain W, broadcast to every layer
    torch.testing.assert_close(gen.load_latents(tmp_path / "w.npy", G), ws)
    np.savez(tmp_path / "bad.npz", w=np.zeros((1, 3, 8), np.float32))
    with pytest.raises(LatentStudioError, match=r"w\+ latents must be \[N, 6, 8\]"):
        gen.load_latents(tmp_path / "bad.npz", G)
    np.savez(tmp_path / "other.npz", q=np.zeros(3))
    with pytest.raises(LatentStudioError, match="expected 'w'"):
        gen.load_latents(tmp_path / "other.npz", G)


def test_style_mixing_table():
    G = _g(5)
    table = gen.style_mix(G, [1, 2], [3, 4, 5], [0, 1, 2])
    assert table.shape == (3 * 4, 3, 16, 16)
    assert (table[0] == 255).all()
    cols = gen.synthesize(G, gen.map_z(G, gen.seeds_to_z([3, 4, 5], 8)))
    torch.testing.assert_close(table[1:4], cols)
    w_row = gen.map_z(G, gen.seeds_to_z([2], 8))[0]
    w_col = gen.map_z(G, gen.seeds_to_z([4], 8))[0]
    w_row[:3] = w_col[:3]
    torch.testing.assert_close(table[2 * 4 + 2], gen.synthesize(G, w_row[None])[0])  # row seed 2, column seed 4
    with pytest.raises(LatentStudioError, match=r"0\.\.5"):
        gen.style_mix(G, [1], [2], [6])


def test_interpolation_lerp_in_w_and_slerp_in_z():
    G = _g(6)
    ws = gen.interpolation_latents(G, [1, 2, 3], frames_per_transition=4, space="w", loop=False)
    keys = gen.map_z(G, gen.seeds_to_z([1, 2, 3], 8))
    assert ws.shape == (9, G.num_ws, 8)
    torch.testing.assert_close(ws[0], keys[0])
    torch.testing.assert_close(ws[4], keys[1])
    torch.testing.assert_close(ws[2], (keys[0] + keys[1]) / 2)
    looped = gen.interpolation_latents(G, [1, 2], frames_per_transition=3, space="z")
    assert looped.shape[0] == 6
    a, b = torch.randn(8), torch.randn(8)
    mid = gen.slerp(a, b, 0.5)
    assert mid.norm().item() == pytest.approx((a.norm().item() + b.norm().item()) / 2, rel=1e-5)
    cos = (a / a.norm()) @ (b / b.norm())
    ang = torch.acos((mid / mid.norm()) @ (a / a.norm()))
    assert ang.item() == pytest.approx(torch.acos(cos).item() / 2, rel=1e-4)
    with pytest.raises(LatentStudioError, match="at least 2 seeds"):
        gen.interpolation_latents(G, [1])


def test_video_files(tmp_path):
    from PIL import Image

    frames = torch.randint(0, 255, (5, 3, 15, 16), dtype=torch.uint8)
    gif = gen.write_video(frames, tmp_path / "walk.gif", fps=10)
    with Image.open(gif) as im:
        assert im.n_frames == 5 and im.size == (16, 15)
    with pytest.raises(LatentStudioError, match=r"\.gif or \.mp4"):
        gen.write_video(frames, tmp_path / "walk.avi")
    import importlib.util

    backends = [b for b, mod in (("imageio-ffmpeg", "imageio_ffmpeg"), ("av", "av")) if importlib.util.find_spec(mod)]
    if not backends:
        pytest.skip("no MP4 encoder installed (imageio-ffmpeg or av)")
    for b in backends:
        mp4 = gen.write_video(frames, tmp_path / f"walk-{b}.mp4", fps=10, backend=b)
        assert mp4.stat().st_size > 0 and mp4.read_bytes()[4:8] == b"ftyp"


def test_cli_generate_video_and_errors(tmp_path):
    from latentstudio.cli.main import cli

    save_model(tmp_path / "m", _g(7))
    r = CliRunner()
    # `generate` is the deprecated spelling of `sample`; its StyleGAN2-only options still work
    res = r.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--seeds", "0-3", "--trunc", "0.7",
                         "--out", str(tmp_path / "g.png"), "--out-dir", str(tmp_path / "imgs"),
                         "--save-latents", str(tmp_path / "lat.npz")])
    assert res.exit_code == 0, res.output
    assert "use --truncation-psi" in res.output and "use 'latentstudio sample'" in res.output
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir())[:2] == ["000000.png", "000001.png"]
    res = r.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--latents", str(tmp_path / "lat.npz"),
                         "--out", str(tmp_path / "g2.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g2.png").read_bytes() == (tmp_path / "g.png").read_bytes()  # same z, same truncation
    res = r.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--seeds", "1,2", "--mix-seeds", "3-5",
                         "--mix-styles", "0-2", "--out", str(tmp_path / "mix.png")])
    assert res.exit_code == 0, res.output
    res = r.invoke(cli, ["video", "--model", str(tmp_path / "m"), "--seeds", "0-2", "--frames", "2",
                         "--out", str(tmp_path / "v.gif")])
    assert res.exit_code == 0 and "6 frames" in res.output, res.output
    res = r.invoke(cli, ["generate", "--model", str(tmp_path / "m"), "--seeds", "0-1", "--latents",
                         str(tmp_path / "lat.npz"), "--out", str(tmp_path / "both.png")])
    assert res.exit_code == 2 and "either --seeds or --latents" in res.output
    res = r.invoke(cli, ["sample", "--model", str(tmp_path / "m"), "--seeds", "0-3", "--truncation-psi", "0.7",
                         "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 1 and "already exists" in res.output
    res = r.invoke(cli, ["sample", "--model", str(tmp_path / "m"), "--seeds", "0-3", "--truncation-psi", "0.7",
                         "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "g.png").read_bytes()  # the official seed rule
    res = r.invoke(cli, ["sample", "--model", str(tmp_path / "m"), "--sampler", "gmm"])
    assert res.exit_code == 1 and "stylegan2 has no sampling option 'sampler'" in res.output


def test_cli_evaluate_fid_kid_and_ppl(tmp_path):
    import json

    from latentstudio.cli.main import cli

    cfg = SMALL.replace(resolution=32, img_channels=1)
    save_model(tmp_path / "m", _g(8, cfg))
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "m"), "--data", "digits", "--limit", "300",
                                   "--n-samples", "64", "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    recs = {r["metric"]: r for r in map(json.loads, (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines())}
    assert set(recs) == {"fid_clf", "kid_clf", "ppl"}
    assert recs["fid_clf"]["value"] > 0 and recs["fid_clf"]["num_generated"] == 64
    # no VGG weights in the test environment: PPL falls back to the labelled pyramid distance
    assert recs["ppl"]["extractor"] == "pyramid-l2" and recs["ppl"]["comparable_with_papers"] is False
    assert (tmp_path / "eval" / "report.md").is_file() and (tmp_path / "eval" / "samples.png").is_file()


# ----------------------------------------------------------------------------- uint8 rule, conditional G


def test_uint8_rule_is_the_official_one_at_exact_half_levels():
    """``(x * 127.5 + 128).clamp(0, 255)`` truncated, in float32: a half level k + 0.5 of ``127.5 x + 127.5``
    gives k + 1 for even and odd k alike (round half to even would give k for even k)."""
    from latentstudio.io.images import to_uint8
    from latentstudio.models.stylegan2 import images_to_uint8

    f32 = np.float32
    xs, want = [], []
    for k in range(255):  # float32 inputs whose float32 value of x * 127.5 + 128 is exactly k + 1
        x = f32((k - 127) / 127.5)
        for _ in range(8):
            v = x * f32(127.5) + f32(128)
            if v == k + 1:
                xs.append(x)
                want.append(k + 1)
                break
            x = np.nextafter(x, f32(np.inf) if v < k + 1 else f32(-np.inf), dtype=f32)
    evens = [w - 1 for w in want if (w - 1) % 2 == 0]
    assert len(xs) > 200 and len(evens) > 100
    x = torch.from_numpy(np.array(xs, dtype=f32)).reshape(1, 1, 1, -1)
    got = images_to_uint8(x).reshape(-1)
    assert got.tolist() == want
    # the generic image rule (round half to even) differs exactly there: the StyleGAN2 path must not use it
    generic = to_uint8((x + 1) / 2).reshape(-1).int()
    assert (generic != got.int()).sum() > 50
    # ends, out of range, NaN; and random values against a numpy float32 transcription of the rule
    edge = torch.tensor([-1.0, 1.0, -3.0, 3.0, float("nan"), 0.0, float("inf"), -float("inf")]).reshape(1, 1, 1, -1)
    assert images_to_uint8(edge).reshape(-1).tolist() == [0, 255, 0, 255, 0, 128, 255, 0]
    r = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8
    ref = np.floor(np.clip(r.numpy() * f32(127.5) + f32(128), 0, 255)).astype(np.uint8)
    assert torch.equal(images_to_uint8(r), torch.from_numpy(ref))


def test_class_conditional_generator_samples_per_class():
    from latentstudio.errors import CapabilityError
    from latentstudio.models.base import ConditionSpec

    cfg = SMALL.replace(c_dim=4)
    G = _g(9, cfg)
    assert G.condition_spec == ConditionSpec("class", 4) and _g(9).condition_spec == ConditionSpec()
    assert G.mapping.embed.weight.shape == (8, 4) and G.mapping.fc0.weight.shape == (8, 16)
    # the unconditional layout is unchanged (no embed, fc0 reads z only)
    assert "mapping.embed.weight" not in _g(9).state_dict() and _g(9).mapping.fc0.weight.shape == (8, 8)
    z = torch.cat([z_from_seed(s, 8) for s in (3, 4)])
    by_class = [G.sample_seeds([3, 4], condition=k) for k in range(4)]
    for k in range(4):
        c = F.one_hot(torch.full((2,), k), 4).float()
        with torch.no_grad():
            want = G.synthesize_images(G.mapping(z, c))
        assert torch.equal(by_class[k], want)
    assert not torch.equal(by_class[0], by_class[1])
    assert torch.equal(G.sample_seeds([3, 4], condition=[2, 0])[0], by_class[2][0])
    assert torch.equal(G.decode(z, space="z", condition=1), by_class[1])
    n = G.sample(3, generator=torch.Generator().manual_seed(1), condition=2)
    assert n.shape == (3, 3, 16, 16)
    with pytest.raises(ShapeError, match=r"class-conditional \(4 classes\): pass c"):
        G.mapping(z)
    with pytest.raises(ConfigError, match="unconditional"):
        _g(9).sample_seeds([1], condition=2)
    with pytest.raises(CapabilityError, match="class-conditional"):
        G.prepare_for_training()
    # generate.py: a class for the z it maps (a walk and a mixing table keep one class)
    w = gen.map_z(G, z, condition=3)
    torch.testing.assert_close(w, G.mapping(z, F.one_hot(torch.full((2,), 3), 4).float()))
    assert gen.interpolation_latents(G, [3, 4], 2, condition=1).shape == (4, G.num_ws, 8)
    assert gen.style_mix(G, [3], [4], [0, 1]).shape == (4, 3, 16, 16)


def test_the_studio_opens_a_class_conditional_generator_with_official_pixels():
    from latentstudio.models.stylegan2 import images_to_uint8
    from latentstudio.studio.stylegan import StyleGAN2Adapter

    G = _g(9, SMALL.replace(c_dim=4))
    studio = StyleGAN2Adapter(G)
    ws = studio.draw_latents([3, 4, 5])
    # classes 0, 1, 2 in turn, the same latents as the generator's own mapping
    c = F.one_hot(torch.arange(3), 4).float()
    with torch.no_grad():
        want = G.mapping(torch.cat([z_from_seed(s, 8) for s in (3, 4, 5)]), c)
    assert torch.equal(ws, want)
    assert studio.latent_std > 0
    with torch.no_grad():
        assert torch.equal(studio.images(ws), images_to_uint8(G.synthesis(ws, noise_mode="const")))


def test_mapping_under_bf16_autocast_keeps_a_float32_w_avg():
    """Mixed-precision training (bf16 autocast, the CUDA default) updates w_avg and truncates without a
    dtype error; checked with CPU autocast."""
    G = _g(9)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ws = G.mapping(z, None, update_w_avg=True)
        ws_t = G.mapping(z, None, truncation_psi=0.7)
    assert G.mapping.w_avg.dtype == torch.float32 and torch.isfinite(G.mapping.w_avg).all()
    assert G.mapping.w_avg.abs().sum() > 0
    assert ws.shape == ws_t.shape == (4, G.num_ws, 8)
