"""Face studio: alignment, projection, directions, editing, uploads, attribute classifier, CLI."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentstudio.errors import ConfigError, LatentStudioError, ShapeError
from latentstudio.studio.alignment import (
    TEMPLATES,
    AlignTemplate,
    align_face,
    eye_mouth_points,
    face_quad,
    fit_template,
    quad_to_affine,
)
from latentstudio.studio.directions import (
    Direction,
    DirectionLibrary,
    condition,
    ganspace,
    learn_direction,
    load_npy_directions,
    sefa,
)
from latentstudio.studio.editing import control_edit, control_magnitude, edit, interpolate, mix, save_sweep
from latentstudio.studio.projection import (
    ProjectionConfig,
    image_metrics,
    learning_rate,
    load_latent,
    noise_regularization,
    project,
)

# ---------------------------------------------------------------------------------------------- helpers


def synthetic_landmarks(d=40.0, m=44.0, angle=0.0, scale=1.0, center=(150.0, 120.0)) -> np.ndarray:
    """68 points whose eye centres are (+-d/2, 0) and mouth corners (+-0.4 d, m), rotated/scaled/moved."""
    lm = np.zeros((68, 2))
    lm[36:42] = (-d / 2, 0.0)
    lm[42:48] = (d / 2, 0.0)
    lm[48] = (-0.4 * d, m)
    lm[54] = (0.4 * d, m)
    lm[60:68] = (0.0, m)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]]) * scale
    return lm @ rot.T + np.asarray(center)


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    from latentstudio.models.vae import VAE
    from latentstudio.models.vae.config import VAEConfig
    from latentstudio.studio.loading import load_latent_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "model"
    VAE(VAEConfig(image_channels=3, image_size=16, latent_dim=8, base_dim=4, num_scale=2, fc_dim=16)).save_pretrained(path)
    return load_latent_model(path)


@pytest.fixture(scope="module")
def tiny_stylegan():
    from latentstudio.models.stylegan2 import Generator, StyleGAN2Config
    from latentstudio.studio.stylegan import StyleGAN2Adapter

    torch.manual_seed(0)
    g = Generator(StyleGAN2Config(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=16,
                                  mapping_layers=2))
    g.estimate_w_avg(n=500)
    return StyleGAN2Adapter(g)


# ---------------------------------------------------------------------------------------------- alignment


def test_face_quad_upright_is_the_ffhq_square():
    d, m = 40.0, 44.0
    quad = face_quad(synthetic_landmarks(d, m, center=(0.0, 0.0)), "ffhq")
    # x axis = eye_to_eye + rot(eye_to_mouth) = (d + m, 0); half-side = max(2 d, 1.8 m) = 80; centre 0.1 m below
    half, cy = max(2.0 * d, 1.8 * m), 0.1 * m
    expected = np.array([[-half, cy - half], [-half, cy + half], [half, cy + half], [half, cy - half]])
    np.testing.assert_allclose(quad, expected, atol=1e-9)


@pytest.mark.parametrize("angle,scale,center", [(0.3, 1.0, (200.0, 150.0)), (-0.5, 2.5, (40.0, 400.0))])
def test_face_quad_follows_a_similarity_transform(angle, scale, center):
    base = face_quad(synthetic_landmarks(center=(0.0, 0.0)), "celeba")
    moved = face_quad(synthetic_landmarks(angle=angle, scale=scale, center=center), "celeba")
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]]) * scale
    np.testing.assert_allclose(moved, base @ rot.T + np.asarray(center), atol=1e-9)


def test_quad_to_affine_maps_corners_to_the_output_edges():
    quad = face_quad(synthetic_landmarks(angle=0.4), "ffhq")
    a = quad_to_affine(quad, 64)
    out = quad @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(out, [[-0.5, -0.5], [-0.5, 63.5], [63.5, 63.5], [63.5, -0.5]], atol=1e-9)


def test_align_face_puts_marked_eyes_and_mouth_where_the_template_says():
    """A synthetic photo with coloured discs at a rotated face's eyes and mouth corners: after alignment
    each disc's centroid is where the crop transform sends it (to within half a pixel)."""
    lm = synthetic_landmarks(d=60, m=66, angle=0.35, center=(260.0, 240.0))
    pts = eye_mouth_points(lm)
    h, w = 480, 520
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w, 3), 128, dtype=np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for (x, y), col in zip(pts, colours, strict=True):
        img[(xx - x) ** 2 + (yy - y) ** 2 <= 6**2] = col
    photo = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    res = align_face(photo, lm, 64, "ffhq")
    assert res.image.shape == (3, 64, 64) and res.image.dtype == torch.uint8 and not res.padded
    out = res.image.permute(1, 2, 0).numpy().astype(float)
    expected = res.landmarks[[36, 42, 48, 54]].copy()
    expected[0], expected[1] = res.landmarks[36:42].mean(0), res.landmarks[42:48].mean(0)
    oy, ox = np.mgrid[0:64, 0:64]
    for (ex, ey), col in zip(expected, colours, strict=True):
        weight = np.exp(-((out - np.array(col)) ** 2).sum(-1) / 2000.0)
        weight[weight < 0.5] = 0
        cx, cy = (weight * ox).sum() / weight.sum(), (weight * oy).sum() / weight.sum()
        assert abs(cx - ex) < 0.5 and abs(cy - ey) < 0.5
    # upright landmarks map onto the template's canonical points (eyes level, centred)
    assert abs(expected[0, 1] - expected[1, 1]) < 1e-6
    assert abs((expected[0, 0] + expected[1, 0]) / 2 - 31.5) < 1e-6


def test_align_face_pads_a_face_at_the_border():
    lm = synthetic_landmarks(d=50, m=55, center=(30.0, 40.0))
    photo = torch.full((3, 120, 160), 200, dtype=torch.uint8)
    res = align_face(photo, lm, 32, "ffhq")
    assert res.padded and res.image.shape == (3, 32, 32)
    assert int(res.image.min()) > 150  # reflection + blur of a flat photo stays flat (no black borders)


def _sharpness(img: np.ndarray) -> float:
    """Mean |Laplacian| of a ``[H, W, C]`` float image."""
    lap = (img[1:-1, :-2] + img[1:-1, 2:] + img[:-2, 1:-1] + img[2:, 1:-1] - 4 * img[1:-1, 1:-1])
    return float(np.abs(lap).mean())


def test_padding_blurs_only_the_band_near_the_padded_edge():
    """FFHQ's padding: reflect, blur a band that fades in near the padded edge, keep the photo sharp."""
    from latentstudio.studio.alignment import _pad_blend

    rng = np.random.default_rng(0)
    photo = rng.uniform(0, 255, size=(120, 160, 3)).astype(np.float32)  # texture everywhere
    out = _pad_blend(photo, (40, 0, 0, 30), blur=4.0)  # left 40, top 0, right 0, bottom 30
    assert out.shape == (150, 200, 3)
    inner = out[:120, 40:][: 120 - 12, 14:]  # more than a third of a pad-width from the padded edges
    np.testing.assert_allclose(inner, photo[: 120 - 12, 14:], atol=1e-3)
    assert _sharpness(out[:100, 60:]) == pytest.approx(_sharpness(photo[:100, 20:]), rel=1e-4)
    assert _sharpness(out[:100, :20]) < 0.3 * _sharpness(photo)  # the padding is blurred
    assert _sharpness(out[135:, 60:]) < 0.3 * _sharpness(photo)


def _photo_texture(h: int, w: int, seed: int) -> np.ndarray:
    """``float [h, w, 3]`` in [0, 255]: noise summed over scales from 16 pixels down to one (photo-like detail)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3))
    for scale in (16, 4, 1):
        n = rng.normal(size=(h // scale + 1, w // scale + 1, 3))
        out += np.repeat(np.repeat(n, scale, 0), scale, 1)[:h, :w] * 25.0
    return np.clip(out + 128.0, 0, 255)


def test_a_padded_crop_of_a_textured_photo_keeps_its_sharpness():
    lm = synthetic_landmarks(d=50, m=55, center=(30.0, 40.0))  # the crop leaves the photo
    photo = torch.from_numpy(_photo_texture(120, 160, 1).round().astype(np.uint8)).permute(2, 0, 1).contiguous()
    padded = align_face(photo, lm, 64, "ffhq")
    assert padded.padded
    unpadded = align_face(photo, lm, 64, "ffhq", padding=False)
    a = padded.image.permute(1, 2, 0).numpy().astype(np.float32)[24:48, 24:48]  # the face region
    b = unpadded.image.permute(1, 2, 0).numpy().astype(np.float32)[24:48, 24:48]
    # the face sits near the photo's corner, partly inside the blur band; blurring the whole crop, as a
    # mask clipped to [0, 1] would, leaves a few percent of the sharpness
    assert _sharpness(a) > 0.7 * _sharpness(b)


def test_padding_leaves_the_face_region_as_sharp_as_in_an_uncut_photo():
    """The same textured photo, whole (the crop fits: no padding) and cut through the crop (padded on two
    sides): the padded crop's face region has the uncut crop's pixels and sharpness; only the corner near
    the cut, inside FFHQ's blur band, is softened."""
    tex = _photo_texture(400, 400, 2).round().astype(np.uint8)
    lm = synthetic_landmarks(d=50, m=55, center=(200.0, 190.0))  # quad: side 200 from (100, 95.5)
    whole = align_face(torch.from_numpy(tex).permute(2, 0, 1).contiguous(), lm, 64, "ffhq")
    assert not whole.padded
    cut = torch.from_numpy(np.ascontiguousarray(tex[105:, 110:])).permute(2, 0, 1).contiguous()
    padded = align_face(cut, lm - (110.0, 105.0), 64, "ffhq")
    assert padded.padded
    a = padded.image.permute(1, 2, 0).numpy().astype(np.float32)
    b = whole.image.permute(1, 2, 0).numpy().astype(np.float32)
    face_a, face_b = a[16:56, 16:56], b[16:56, 16:56]  # photo x, y >= 150: beyond the band (20 px from the cut)
    assert np.abs(face_a - face_b).max() <= 1.0
    assert _sharpness(face_a) == pytest.approx(_sharpness(face_b), rel=0.01)
    assert _sharpness(a[:8, :8]) < 0.7 * _sharpness(b[:8, :8])  # the padding and the band


def test_fit_template_recovers_a_known_template():
    tpl = AlignTemplate("t", eye_scale=1.8, mouth_scale=1.62, center_shift=-0.12)
    lms = [synthetic_landmarks(d=40 + i, m=42 + 0.5 * i, angle=0.1 * i, center=(100 + i, 90)) for i in range(7)]
    fitted = fit_template(np.stack(lms), np.stack([face_quad(lm, tpl) for lm in lms]), "t")
    assert fitted.eye_scale == pytest.approx(1.8, abs=1e-3)
    assert fitted.center_shift == pytest.approx(-0.12, abs=1e-3)


def test_alignment_rejects_bad_landmarks_and_templates():
    with pytest.raises(ShapeError, match="68, 2"):
        face_quad(np.zeros((5, 2)))
    with pytest.raises(ConfigError, match="unknown align template"):
        face_quad(synthetic_landmarks(), "lfw")
    assert set(TEMPLATES) == {"ffhq", "celeba"}


def test_dlib_reports_no_face_clearly():
    from latentstudio.studio.alignment import DlibLandmarker, NoFaceError

    lm = DlibLandmarker()
    blank = torch.full((3, 120, 120), 90, dtype=torch.uint8)
    assert lm.detect(blank) == []
    with pytest.raises(NoFaceError, match="no face found"):
        lm.choose(blank)


def test_find_predictor_rejects_a_missing_file(tmp_path):
    from latentstudio.studio.alignment import find_predictor

    with pytest.raises(LatentStudioError, match="does not exist"):
        find_predictor(tmp_path / "nope.dat")
    assert find_predictor().name == "shape_predictor_68_face_landmarks.dat"


# ---------------------------------------------------------------------------------------------- projection


def test_learning_rate_schedule_closed_form():
    assert learning_rate(0.0, 0.1) == 0.0
    assert learning_rate(0.025, 0.1) == pytest.approx(0.05)  # half-way up the 5% ramp
    assert learning_rate(0.5, 0.1) == pytest.approx(0.1)
    assert learning_rate(0.875, 0.1) == pytest.approx(0.05)  # half-way down the cosine ramp
    assert learning_rate(1.0, 0.1) == pytest.approx(0.0)


def test_noise_regularization_closed_form():
    # constant maps: every term is mean(1 * 1)^2 = 1, two per octave; 32 -> 16 -> 8 is three octaves
    assert float(noise_regularization([torch.ones(32, 32)])) == pytest.approx(6.0)
    # a checkerboard is perfectly anti-correlated with its one-pixel shifts: (-1)^2 per term at 16x16
    cb = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 2.0 - 1.0
    assert float(noise_regularization([cb])) == pytest.approx(2.0 + 0.0, abs=1e-6)


def test_image_metrics_identity_and_known_mse():
    a = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    b = torch.full_like(a, 51)  # 0.2 in [0, 1]
    m = image_metrics(a, b)
    assert m["mse"] == pytest.approx(0.04)
    assert m["psnr"] == pytest.approx(10 * math.log10(1 / 0.04))
    assert image_metrics(a, a)["psnr"] == math.inf


def test_projection_recovers_a_generated_face(tiny_vae, tmp_path):
    """The image of a latent drawn by the model is matched from a far start (PSNR threshold)."""
    z_true = tiny_vae.random_latents([5], truncation_psi=1.5)
    target = tiny_vae.images(z_true)[0]
    start = torch.zeros(1, 8)
    cfg = ProjectionConfig(steps=120, perceptual="none", lr=0.1, seed=1, snapshot_every=40)
    res = project(tiny_vae, target, cfg, perceptual=None, init=start)
    assert res.space == "z" and res.latent.shape == (1, 8)
    assert res.metrics["psnr"] > 38.0
    assert res.metrics["psnr"] > res.metrics["initial_psnr"] + 10.0
    assert [s for s, _ in res.snapshots] == [40, 80, 120]
    assert res.metrics["seconds_per_step"] > 0 and len(res.history) == 120
    path = res.save(tmp_path / "face.npz")
    back = load_latent(path)
    assert torch.equal(back["latent"], res.latent) and back["space"] == "z"
    assert back["meta"]["metrics"]["psnr"] == pytest.approx(res.metrics["psnr"])
    assert back["meta"]["identity"] == res.identity


def test_projection_reports_identity_or_why_not(tiny_vae, monkeypatch):
    target = tiny_vae.images(tiny_vae.random_latents([3]))[0]
    cfg = ProjectionConfig(steps=2, perceptual="none")
    res = project(tiny_vae, target, cfg, perceptual=None)
    assert set(res.identity) >= {"distance", "similarity", "same_person", "threshold", "reason"}
    try:
        import dlib  # noqa: F401
    except ImportError:
        assert res.identity["distance"] is None and "dlib" in res.identity["reason"]
    else:
        assert res.identity["distance"] >= 0.0 and res.identity["reason"] == ""
        assert res.identity["box"] == "template"  # a 16-pixel face is too small for the detector
        same = project(tiny_vae, target, cfg, perceptual=None, init=tiny_vae.encode(target[None]))
        assert same.identity["distance"] >= 0.0
    assert project(tiny_vae, target, cfg, perceptual=None, identity=False).identity["reason"] == "not requested"
    from latentstudio.studio import identity

    monkeypatch.setattr(identity, "_EMBEDDER", None)
    monkeypatch.setattr(identity, "FaceEmbedder", lambda: (_ for _ in ()).throw(identity.IdentityUnavailable("no dlib")))
    res = project(tiny_vae, target, cfg, perceptual=None)
    assert res.identity["distance"] is None and res.identity["reason"] == "no dlib"


def test_projection_rejects_wrong_targets_and_spaces(tiny_vae):
    with pytest.raises(ShapeError, match=r"uint8 \[3, 16, 16\]"):
        project(tiny_vae, torch.zeros(3, 32, 32, dtype=torch.uint8), ProjectionConfig(steps=1), perceptual=None)
    with pytest.raises(LatentStudioError, match="projects into z"):
        project(tiny_vae, torch.zeros(3, 16, 16, dtype=torch.uint8), ProjectionConfig(space="w+", steps=1),
                perceptual=None)


def test_projection_with_perceptual_fallback_and_encoder_guess(tiny_vae):
    from latentstudio.metrics.perceptual import load_perceptual

    target = tiny_vae.images(tiny_vae.random_latents([2]))[0]
    res = project(tiny_vae, target, ProjectionConfig(steps=0), perceptual=load_perceptual("pyramid-l2"),
                  perceptual_label="pyramid-l2")
    enc = tiny_vae.encode(target[None])[0]
    assert torch.equal(res.latent, enc)  # 0 steps keep the encoder's guess
    assert res.perceptual == "pyramid-l2"


def test_stylegan_adapter_projects_in_w_and_w_plus(tiny_stylegan):
    g = tiny_stylegan
    assert (g.num_layers, g.latent_dim, g.spaces) == (6, 16, ("w", "w+"))
    target = g.images(g.random_latents([3], 0.7))[0]
    before = {k: v.clone() for k, v in g.noise_buffers().items()}
    assert len(before) == 5
    for space in ("w", "w+"):
        res = project(g, target, ProjectionConfig(space=space, steps=20, perceptual="none"), perceptual=None)
        assert res.latent.shape == (6, 16) and set(res.noise) == set(before)
        if space == "w":
            assert torch.equal(res.latent, res.latent[:1].expand(6, -1))
        assert res.metrics["psnr"] > res.metrics["initial_psnr"]
    for k, v in g.noise_buffers().items():  # the shared generator's noise maps are restored
        assert torch.equal(v, before[k])
    rows = sorted(r for _, rs in g.style_weights() for r in rs)
    assert rows == [0, 1, 1, 2, 3, 3, 4, 5]  # b4: conv1 0, torgb 1; b8: 1, 2, torgb 3; b16: 3, 4, torgb 5


# ---------------------------------------------------------------------------------------------- directions


def test_learned_direction_recovers_the_true_normal():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(800, 16, generator=g)
    normal = torch.randn(16, generator=g)
    normal /= normal.norm()
    labels = torch.sign(x @ normal + 0.05 * torch.randn(800, generator=g))
    for method in ("svm", "logistic", "mean-diff"):
        d = learn_direction(x, labels, "attr", method=method)
        cos = float(d.vector @ normal / d.vector.norm())
        assert cos > 0.97
        assert d.vector.norm() == pytest.approx(float((x @ (d.vector / d.vector.norm())).std()), rel=0.01)
        assert d.meta["test_accuracy"] > 0.9


def test_learn_direction_needs_both_classes():
    with pytest.raises(LatentStudioError, match="at least 2"):
        learn_direction(torch.randn(10, 4), torch.ones(10), "all_positive")


def test_ganspace_finds_the_axis_of_largest_variance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 6, generator=g) * torch.tensor([1.0, 5.0, 1.0, 2.0, 1.0, 1.0])
    dirs = ganspace(x, k=2)
    assert abs(float(dirs[0].vector[1])) == pytest.approx(5.0, rel=0.05)  # unit axis 1 times its std
    assert abs(float(dirs[1].vector[3])) == pytest.approx(2.0, rel=0.08)


def test_sefa_top_direction_is_the_top_right_singular_vector():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(30, 8, generator=g)
    w[:, 2] *= 20.0  # column 2 dominates every (row-normalised) style weight
    dirs = sefa([(w[:15], [0]), (w[15:], [1])], k=3, num_layers=4)
    assert abs(float(dirs[0].vector[2])) > 0.99
    assert dirs[0].layers == [0, 1]


def test_condition_is_orthogonal_and_keeps_length():
    g = torch.Generator().manual_seed(3)
    a, b, c = (Direction(n, torch.randn(12, generator=g)) for n in "abc")
    d = condition(a, [b, c])
    assert float(d.vector @ b.vector) == pytest.approx(0.0, abs=1e-4)
    assert float(d.vector @ c.vector) == pytest.approx(0.0, abs=1e-4)
    assert float(d.vector.norm()) == pytest.approx(float(a.vector.norm()), rel=1e-5)
    assert d.name == "a|b|c".replace("|", "-") or d.name.startswith("a")


def test_library_round_trip_keeps_names_sources_layers_and_ranges(tmp_path):
    lib = DirectionLibrary([
        Direction("smile", torch.randn(4, 6), source="npy", layers=[0, 2], range=(-15, 15), note="n"),
        Direction("pc0", torch.randn(6), source="ganspace", meta={"variance_ratio": 0.3}),
    ], info={"model": "m"})
    path = lib.save(tmp_path / "lib.npz")
    back = DirectionLibrary.load(path)
    assert back.names() == ["smile", "pc0"]
    assert back["smile"].layers == [0, 2] and back["smile"].range == (-15.0, 15.0)
    assert back["pc0"].source == "ganspace" and back["pc0"].meta["variance_ratio"] == 0.3
    assert torch.equal(back["smile"].vector, lib["smile"].vector)
    assert back.info == {"model": "m"}
    with pytest.raises(LatentStudioError, match="no direction 'age'"):
        back["age"]


def test_npy_directions_shapes_and_refusals(tmp_path):
    np.save(tmp_path / "age.npy", np.random.rand(18, 512).astype(np.float32))
    np.save(tmp_path / "smile.npy", np.random.rand(1, 18, 512).astype(np.float32))
    np.save(tmp_path / "yaw.npy", np.random.rand(512).astype(np.float32))
    dirs = {d.name: d for d in load_npy_directions(tmp_path)}
    assert dirs["age"].vector.shape == (18, 512) and dirs["smile"].vector.shape == (18, 512)
    assert dirs["yaw"].vector.shape == (512,) and dirs["age"].range == (-15.0, 15.0)
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LatentStudioError, match="not a plain .npy"):
        load_npy_directions(bad)
    np.save(bad / "obj.npy", np.zeros((2, 3, 4, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"\[num_ws, D\]"):
        load_npy_directions(bad)


# ---------------------------------------------------------------------------------------------- editing


def test_edit_with_magnitude_zero_is_the_identity():
    latent = torch.randn(6, 16)
    dirs = [Direction("a", torch.randn(6, 16)), Direction("b", torch.randn(16), layers=[1, 2])]
    out = edit(latent, [(d, 0.0) for d in dirs])
    assert torch.equal(out, latent) and out is not latent


def test_edit_adds_magnitude_times_direction_on_its_rows_only():
    latent = torch.zeros(4, 3)
    d = Direction("a", torch.tensor([1.0, 2.0, 3.0]), layers=[1, 3])
    out = edit(latent, [(d, 2.0), (Direction("b", torch.ones(4, 3)), -1.0)])
    expected = -torch.ones(4, 3)
    expected[[1, 3]] += torch.tensor([2.0, 4.0, 6.0])
    assert torch.equal(out, expected)
    with pytest.raises(ShapeError, match="width"):
        edit(latent, [(Direction("c", torch.ones(5)), 1.0)])


def test_interpolate_and_mix():
    a, b = torch.zeros(3, 2), torch.ones(3, 2)
    path = interpolate(a, b, 5)
    assert path.shape == (5, 3, 2) and torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], torch.full((3, 2), 0.5))
    m = mix(a, b, rows=[2], amount=1.0)
    assert torch.equal(m[:2], a[:2]) and torch.equal(m[2], b[2])


def test_thesis_controls():
    assert control_magnitude("age", "old") == 8.0 and control_magnitude("gender", "female") == -8.0
    assert control_magnitude("yaw", "default") == 0.0
    with pytest.raises(ConfigError, match="choices"):
        control_magnitude("smile", "maybe")
    lib = DirectionLibrary([Direction("Young", torch.ones(4)), Direction("smile", torch.ones(4))])
    assert control_edit("smile", "yes", lib) == ("smile", 5.0)
    assert control_edit("age", "old", lib) == ("Young", -2.0)  # learned directions: +-2 std at the extremes
    with pytest.raises(LatentStudioError, match="no 'yaw' direction"):
        control_edit("yaw", "left", lib)


@pytest.mark.parametrize("suffix", [".png", ".gif", ".mp4"])
def test_save_sweep_formats(tmp_path, suffix):
    frames = torch.stack([torch.full((3, 15, 15), v, dtype=torch.uint8) for v in (0, 100, 200)])
    path = save_sweep(frames, tmp_path / f"sweep{suffix}", upscale=2)
    if suffix == ".png":
        assert Image.open(path).size == (90, 30)
    elif suffix == ".gif":
        im = Image.open(path)
        assert im.n_frames == 4 and im.size == (30, 30)  # 0, 100, 200, 100 (bounce)
    else:
        import av

        with av.open(str(path)) as c:
            n = sum(1 for _ in c.decode(video=0))
        assert n == 4


# ---------------------------------------------------------------------------------------------- uploads


def _png_bytes(w, h, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_validate_upload_accepts_and_refuses():
    from latentstudio.studio.session import UploadError, validate_upload

    img = validate_upload(_png_bytes(40, 50))
    assert img.shape == (3, 50, 40) and img.dtype == torch.uint8
    with pytest.raises(UploadError, match="not a readable image"):
        validate_upload(b"GIF89a-not really")
    with pytest.raises(UploadError, match="megapixels"):
        validate_upload(_png_bytes(300, 300), max_pixels=10_000)
    with pytest.raises(UploadError, match="limit is"):
        validate_upload(_png_bytes(64, 64), max_bytes=50)
    with pytest.raises(UploadError, match="at least 32"):
        validate_upload(_png_bytes(20, 64))
    with pytest.raises(UploadError, match="empty"):
        validate_upload(b"")
    buf = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buf, format="GIF")
    with pytest.raises(UploadError, match="GIF images are not accepted"):
        validate_upload(buf.getvalue())


def test_validate_upload_applies_exif_rotation():
    from latentstudio.studio.session import validate_upload

    im = Image.new("RGB", (60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    assert validate_upload(buf.getvalue()).shape == (3, 60, 40)


# ---------------------------------------------------------------------------------------------- session


def test_session_edits_truncation_and_mixing(tiny_vae, tmp_path):
    from latentstudio.studio.session import Studio

    lib = DirectionLibrary(ganspace(tiny_vae.sample_latents(200), k=2))
    sess = Studio(tiny_vae, lib, perceptual=None).session()
    with pytest.raises(LatentStudioError, match="no face yet"):
        sess.render()
    base = sess.from_seed(4)
    assert torch.equal(sess.render(), tiny_vae.images(base[None])[0])
    sess.magnitudes = {"pc0": 0.0, "pc1": 0.0}
    assert torch.equal(sess.current_latent(), base)
    sess.magnitudes = {"pc0": 1.5}
    assert torch.allclose(sess.current_latent(), base + 1.5 * lib["pc0"].vector)
    sess.magnitudes, sess.truncation = {}, 0.0
    assert torch.allclose(sess.current_latent(), tiny_vae.latent_center)
    sess.truncation = 1.0
    other = sess.set_other(9)
    sess.mix_amount = 1.0
    assert torch.allclose(sess.current_latent(), other)
    path = sess.save_latent(tmp_path / "s.npz")
    assert torch.allclose(load_latent(path)["latent"], other)


# ---------------------------------------------------------------------------------------------- classifier


def test_attribute_classifier_learns_a_visible_attribute(tmp_path):
    from latentstudio.data import ImageData
    from latentstudio.studio.attributes import (
        load_attribute_classifier,
        most_frequent_attributes,
        train_attribute_classifier,
    )

    g = torch.Generator().manual_seed(0)
    n = 160
    bright = torch.rand(n, generator=g) < 0.5
    imgs = torch.randint(0, 60, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    imgs[bright, :, :, :8] += 150  # attribute "Left_Bright": the left half is bright
    attrs = torch.stack([bright.float() * 2 - 1, torch.where(torch.arange(n) % 4 == 0, 1.0, -1.0)], 1)
    data = ImageData(images=imgs, attributes=attrs, attribute_names=["Left_Bright", "Noise"], name="toy")
    clf = train_attribute_classifier(data, epochs=8, batch_size=16, lr=5e-3, test_fraction=0.25, progress=False)
    assert clf.config["test_accuracy"][0] > 0.9
    assert most_frequent_attributes(clf, 1) == ["Left_Bright"] or most_frequent_attributes(clf, 2)[1] == "Noise"
    clf.save(tmp_path / "clf")
    back = load_attribute_classifier(tmp_path / "clf")
    assert torch.allclose(back.logits(imgs[:8]), clf.logits(imgs[:8]))
    with pytest.raises(LatentStudioError, match="unknown attribute"):
        back.index("Smiling")


def test_attribute_classifier_cache_trains_once_per_recipe(tmp_path, monkeypatch):
    from latentstudio.data import ImageData
    from latentstudio.errors import CheckpointError
    from latentstudio.studio import attributes as A

    monkeypatch.setenv("LATENTSTUDIO_CACHE", str(tmp_path / "cache"))
    calls = []
    real = A.train_attribute_classifier
    monkeypatch.setattr(A, "train_attribute_classifier", lambda *a, **k: calls.append(k) or real(*a, **k))
    g = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 255, (24, 3, 8, 8), generator=g, dtype=torch.uint8)
    attrs = torch.where(torch.arange(24)[:, None] % 2 == torch.tensor([0, 1]), 1.0, -1.0)
    data = ImageData(images=imgs, attributes=attrs, attribute_names=["Even", "Odd"], name="toy")

    first = A.get_attribute_classifier(data, progress=False, epochs=1, batch_size=8)
    second = A.get_attribute_classifier(data, progress=False, epochs=1, batch_size=8)
    assert len(calls) == 1 and first.folder == second.folder
    assert first.folder.parent == tmp_path / "cache" / "attribute-classifiers"
    assert first.folder.name.startswith(f"toy-{data.fingerprint()}-")
    assert torch.allclose(second.logits(imgs), first.logits(imgs)) and second.names == ["Even", "Odd"]

    other = A.get_attribute_classifier(data, progress=False, epochs=2, batch_size=8)  # another recipe
    assert len(calls) == 2 and other.folder != first.folder
    assert A.get_attribute_classifier(data, progress=False, cache=False, epochs=1, batch_size=8).folder is None
    assert len(calls) == 3

    with pytest.raises(CheckpointError, match="not a saved attribute classifier.*latentstudio directions classifier"):
        A.load_attribute_classifier(tmp_path / "nowhere")
    cfg = json.loads((first.folder / "config.json").read_text())
    (first.folder / "config.json").write_text(json.dumps({**cfg, "channels": [8, 8, 8, 8]}))
    with pytest.raises(CheckpointError, match="does not match the attribute classifier config: tensor"):
        A.load_attribute_classifier(first.folder)
    with pytest.warns(UserWarning, match="attribute classifier cache .* unreadable"):
        A.get_attribute_classifier(data, progress=False, epochs=1, batch_size=8)
    assert len(calls) == 4 and A.load_attribute_classifier(first.folder).names == ["Even", "Odd"]


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_discover_list_edit_project(tiny_vae, tmp_path):
    from latentstudio.cli.main import cli

    model = str(tiny_vae.path)
    runner = CliRunner()
    lib = tmp_path / "dirs.npz"
    r = runner.invoke(cli, ["directions", "discover", "--model", model, "--k", "3", "--n", "300", "--out", str(lib)])
    assert r.exit_code == 0, r.output
    assert [d["name"] for d in json.loads(r.output)["directions"]] == ["pc0", "pc1", "pc2"]
    r = runner.invoke(cli, ["directions", "discover", "--model", model, "--method", "sefa", "--k", "2",
                            "--out", str(tmp_path / "sefa.npz")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["directions", "list", str(lib)])
    assert r.exit_code == 0 and "pc0" in r.output and "ganspace" in r.output
    out = tmp_path / "edited.png"
    r = runner.invoke(cli, ["edit", "--model", model, "--seed", "2", "--directions", str(lib), "--set", "pc1=1.5",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (16, 16)
    r = runner.invoke(cli, ["edit", "--model", model, "--seed", "2", "--directions", str(lib), "--sweep", "pc0",
                            "--frames", "4", "--out", str(tmp_path / "sweep.gif")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["edit", "--model", model, "--directions", str(lib), "--set", "nope=1",
                            "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "no direction 'nope'" in r.output
    photo = tmp_path / "photo.png"
    Image.fromarray(tiny_vae.images(tiny_vae.random_latents([8]))[0].permute(1, 2, 0).numpy()).resize(
        (48, 48)).save(photo)
    r = runner.invoke(cli, ["project", str(photo), "--aligned", "--model", model, "--steps", "5", "--perceptual",
                            "none", "--no-progress", "--out", str(tmp_path / "face.npz")])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["space"] == "z" and report["psnr"] > 0 and report["steps"] == 5
    assert {"distance", "similarity", "same_person", "reason"} <= set(report["identity"])
    assert load_latent(tmp_path / "face.npz")["latent"].shape == (1, 8)
    r = runner.invoke(cli, ["project", str(photo), "--model", model, "--out", str(tmp_path / "f2.npz"),
                            "--perceptual", "none", "--no-progress"])
    assert r.exit_code == 1 and "no face found" in r.output


def test_one_truncation_rule_for_every_studio_model(tmp_path):
    """The truncated latent of a seed is the untruncated one pulled towards the centre, whatever asks for
    it (the CLI's --truncation-psi and the web slider), for the VAE family and StyleGAN2 alike."""
    from latentstudio.models.stylegan2 import Generator
    from latentstudio.models.two_stage import TwoStageVAE
    from latentstudio.studio.loading import load_latent_model

    torch.manual_seed(0)
    TwoStageVAE(TwoStageVAE.example_config()).save_pretrained(tmp_path / "vae")
    Generator(Generator.example_config()).save_pretrained(tmp_path / "gan")
    for name in ("vae", "gan"):
        m = load_latent_model(tmp_path / name)
        full = m.random_latents([3, 7])
        c = m.latent_center
        half = m.random_latents([3, 7], truncation_psi=0.5)
        torch.testing.assert_close(half, c + 0.5 * (full - c))
        assert torch.equal(m.truncate(full, 0.5), half)
        assert torch.equal(m.random_latents([3, 7], truncation_psi=1.0), full)
    G = Generator.from_pretrained(tmp_path / "gan")
    gan = load_latent_model(tmp_path / "gan")
    from latentstudio.models.stylegan2 import z_from_seed

    assert torch.equal(G.mapping(z_from_seed(3, G.z_dim), truncation_psi=0.5), gan.random_latents([3], 0.5))


def test_edit_renders_a_projection_with_its_own_noise_maps(tmp_path):
    """``edit --latent`` of a projection file draws the face with the noise maps saved beside its latent."""
    from latentstudio.cli.main import cli
    from latentstudio.models.stylegan2 import Generator
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.projection import noise_swap

    torch.manual_seed(0)
    G = Generator(Generator.example_config())
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    G.save_pretrained(tmp_path / "gan")
    model = load_latent_model(tmp_path / "gan")
    w = model.random_latents([5])[0]
    g = torch.Generator().manual_seed(1)
    noise = {k: torch.randn(b.shape, generator=g) for k, b in model.noise_buffers().items()}
    assert noise
    np.savez(tmp_path / "face.npz", latent=w.numpy(), space="w+", **{f"noise/{k}": v.numpy() for k, v in noise.items()})
    out = tmp_path / "face.png"
    r = CliRunner().invoke(cli, ["edit", "--model", str(tmp_path / "gan"), "--latent", str(tmp_path / "face.npz"),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    with noise_swap(model.noise_buffers(), noise):
        want = model.images(w[None])[0]
    got = torch.from_numpy(np.array(Image.open(out).convert("L")))[None]  # the example generator is grey
    assert want.shape == got.shape and torch.equal(got, want)
    assert not torch.equal(model.images(w[None])[0], want)  # the model's own noise gives another face


def test_face_tab_latent_is_one_w_plus_latent_for_read_latents_and_interpolate(tmp_path):
    """A StyleGAN2 face saved by the Face tab (a row per style input) is one W+ latent: read_latents gives it
    back as such and ``interpolate --latents`` decodes it; old files that call it ``w`` read the same, while the
    explorer's files of num_ws W latents stay num_ws latents."""
    from latentstudio.api import decode, load, read_latents
    from latentstudio.cli.main import cli
    from latentstudio.models.stylegan2 import Generator
    from latentstudio.studio.explorer import save_latents
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.session import Studio

    torch.manual_seed(0)
    Generator(Generator.example_config()).save_pretrained(tmp_path / "gan")
    face = load_latent_model(tmp_path / "gan")
    sess = Studio(face, perceptual=None).session()
    sess.from_seed(3)
    sess.set_other(5)
    sess.mix_layers, sess.mix_amount = "coarse", 1.0  # rows differ: only a W+ latent holds this face
    latent = sess.current_latent()
    assert not torch.equal(latent[0], latent[-1])
    path = sess.save_latent(tmp_path / "face.npz")
    assert load_latent(path)["space"] == "w+"
    model = load(tmp_path / "gan")
    found = read_latents(model, path)
    assert found.space == "w+" and len(found) == 1 and torch.equal(found.latents[0], latent)
    assert torch.equal(decode(model, found.latents, space="w+"), sess.render()[None])
    r = CliRunner().invoke(cli, ["interpolate", "--model", str(tmp_path / "gan"), "--latents", str(path),
                                 "--pair", "0,0", "--steps", "2", "--out", str(tmp_path / "strip.png")])
    assert r.exit_code == 0, r.output
    strip = torch.from_numpy(np.array(Image.open(tmp_path / "strip.png").convert("L")))[None]
    s = face.resolution
    for k in range(2):  # both cells are the face (2 pixels of padding around each)
        assert torch.equal(strip[:, 2 : 2 + s, 2 + k * (s + 2) : 2 + k * (s + 2) + s], sess.render())
    r = CliRunner().invoke(cli, ["interpolate", "--model", str(tmp_path / "gan"), "--latents", str(path),
                                 "--out", str(tmp_path / "two.png")])
    assert r.exit_code == 1 and "face.npz holds 1 latent (0..0); latent 1 is not one of them" in r.output
    # a file written before the face tab said w+: "w" with one row per style input is the same W+ latent
    old = tmp_path / "old.npz"
    with np.load(path) as data:
        np.savez(old, **{k: (np.array("w") if k == "space" else data[k]) for k in data.files})
    found = read_latents(model, old)
    assert found.space == "w+" and len(found) == 1 and torch.equal(found.latents[0], latent)
    np.save(tmp_path / "two.npy", torch.stack([latent, latent.flip(0)]).numpy())  # bare [n, num_ws, w_dim]
    found = read_latents(model, tmp_path / "two.npy", default_space="w")
    assert found.space == "w+" and len(found) == 2 and torch.equal(found.latents[1], latent.flip(0))
    # the explorer's file of num_ws W latents (its model recorded) is read as num_ws latents of W
    ws = torch.randn(face.num_layers, face.latent_dim)
    found = read_latents(model, save_latents(tmp_path / "w.npz", ws, model=model, space="w"))
    assert found.space == "w" and len(found) == face.num_layers and torch.equal(found.latents, ws)


def test_face_tab_reads_explorer_z_files_of_a_stylegan2_through_the_mapping(tmp_path):
    """A latents file of space ``z`` (as the latent explorer saves for a StyleGAN2) loaded in the Face tab is
    mapped to W+, the first of several latents with a note; an unedited face equals the mapping of that z."""
    from latentstudio.api import load
    from latentstudio.models.stylegan2 import Generator
    from latentstudio.studio.explorer import save_latents
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.session import Studio

    torch.manual_seed(0)
    Generator(Generator.example_config()).save_pretrained(tmp_path / "gan")
    face = load_latent_model(tmp_path / "gan")
    z = torch.randn(3, face.z_dim, generator=torch.Generator().manual_seed(4))
    path = save_latents(tmp_path / "z.npz", z, model=load(tmp_path / "gan"), space="z")
    sess = Studio(face, perceptual=None).session()
    notes = sess.restore(path)
    assert notes == ["z.npz holds 3 latents of z; using latent 0"]
    want = face.G.mapping(z[:1], None)[0].float()
    assert sess.base.shape == (face.num_layers, face.latent_dim)
    assert torch.allclose(sess.base, want, atol=1e-6)
    assert not torch.allclose(sess.base[0], z[0, : face.latent_dim])  # not read as W


def test_face_tab_reads_two_stage_u_files_through_the_second_stage(tmp_path):
    """A two-stage VAE's latents file of space ``u`` (the latent explorer's second-stage space) loaded in the
    Face tab becomes z through the second stage's decoder (not u read as z), the first of several with a
    note; a space the face model cannot come from is refused with its name."""
    from test_contract import make

    from latentstudio.api import load
    from latentstudio.errors import LatentStudioError
    from latentstudio.studio.explorer import save_latents
    from latentstudio.studio.loading import load_latent_model
    from latentstudio.studio.session import Studio

    make("two-stage-vae").save_pretrained(tmp_path / "vae")
    model = load(tmp_path / "vae")
    face = load_latent_model(tmp_path / "vae")
    u = torch.randn(2, *model.latent_space("u").shape, generator=torch.Generator().manual_seed(3))
    sess = Studio(face, perceptual=None).session()
    notes = sess.restore(save_latents(tmp_path / "u.npz", u, model=model, space="u"))
    assert notes == ["u.npz holds 2 latents of u; using latent 0"]
    want = model.to_first_stage(u[:1], "u", None)[0]
    assert sess.base.shape == (1, face.latent_dim)
    assert torch.allclose(sess.base[0], want, atol=1e-6) and not torch.allclose(sess.base[0], u[0])
    with pytest.raises(LatentStudioError, match="latents of space 'w': this two-stage-vae face model reads z"):
        face.from_space(u, "w")
