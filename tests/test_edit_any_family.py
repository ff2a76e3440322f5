"""``latentstudio edit`` on the latent explorer's files for the families the Face Studio does not drive
(DRAW: PNG, sketch-rnn: SVG): moves, sweeps, interpolations, amounts of 0 and refused inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageSequence
from test_contract import make

from latentstudio.api import load
from latentstudio.cli.main import cli
from latentstudio.io.strokes_render import save_sketches
from latentstudio.studio.explorer import Explorer, ExplorerError, save_directions, save_latents
from latentstudio.types import Sketches


def edit(*args) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["edit", *map(str, args)])
    return res.exit_code, res.output


def saved(tmp_path, family: str):
    """A tiny saved model of ``family``, its explorer, the seeds' latents file and a directions file, as the
    page writes them."""
    make(family).save_pretrained(tmp_path / family)
    model = load(tmp_path / family)
    ex = Explorer(model)
    z, _ = ex.draw([0, 1, 2, 3])
    lat = save_latents(tmp_path / f"{family}_seeds0-3.npz", z, model=model, space="z", seeds=[0, 1, 2, 3])
    dirs = ex.principal_directions(k=2, samples=16)
    lib = save_directions(tmp_path / f"{family}_directions.npz", dirs, model=model)
    return model, ex, z, dirs, lat, lib


def test_draw_edits_write_png_and_an_amount_of_zero_is_the_unedited_decode(tmp_path):
    model, ex, z, dirs, lat, lib = saved(tmp_path, "draw")
    c, h, w = ex.output_shape()
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--set", "pc0=0",
                     "--out", tmp_path / "zero.png")
    assert code == 0, out
    assert "holds 4 latents; editing latent 0" in out
    with Image.open(tmp_path / "zero.png") as im:
        assert im.format == "PNG" and im.size == (w, h)
        pixels = torch.from_numpy(np.array(im))
    unedited = ex.decode(z[:1])[0]
    assert torch.equal(pixels.reshape(h, w, -1).permute(2, 0, 1)[:c], unedited)
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--set", "pc0=2.5",
                     "--upscale", "2", "--out", tmp_path / "moved.png")
    assert code == 0 and "pc0 +2.5" in out, out
    with Image.open(tmp_path / "moved.png") as im:
        moved = torch.from_numpy(np.array(im))
        assert im.size == (2 * w, 2 * h)
    expected = ex.decode(ex.move(z[0], dirs, [2.5, 0.0])[None])[0]
    assert torch.equal(moved.reshape(2 * h, 2 * w, -1)[::2, ::2].permute(2, 0, 1)[:c], expected)
    assert not torch.equal(expected, unedited)
    # without --latent: the sample of --seed in the directions' space (the explorer's latent of that seed)
    code, out = edit("--model", model.path, "--seed", 2, "--directions", lib, "--out", tmp_path / "seed2.png")
    assert code == 0, out
    with Image.open(tmp_path / "seed2.png") as im:
        assert torch.equal(torch.from_numpy(np.array(im)).reshape(h, w, -1).permute(2, 0, 1)[:c],
                           ex.decode(z[2:3])[0])
    # a sweep as a strip and as a GIF; an interpolation to another latent
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--sweep", "pc1", "--range", "-2:2",
                     "--frames", 5, "--out", tmp_path / "sweep.png")
    assert code == 0 and "5 frames, pc1 from -2 to 2" in out, out
    with Image.open(tmp_path / "sweep.png") as im:
        assert im.size == (5 * (w + 2) + 2, h + 4)  # one row of 5 outputs, 2 pixels of padding
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--sweep", "pc1", "--frames", 4,
                     "--out", tmp_path / "sweep.gif")
    assert code == 0, out
    with Image.open(tmp_path / "sweep.gif") as im:
        assert im.format == "GIF" and im.n_frames == 4 and im.size == (w, h)
    other = save_latents(tmp_path / "end.npz", z[3:], model=model, space="z")
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--interpolate", other,
                     "--frames", 3, "--out", tmp_path / "path.png")
    assert code == 0 and "3 frames of interpolation" in out, out
    with Image.open(tmp_path / "path.png") as im:
        assert im.size == (3 * (w + 2) + 2, h + 4)
    # an existing file is kept without --overwrite
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--out", tmp_path / "zero.png")
    assert code == 1 and "already exists" in out and "--overwrite" in out


def test_sketch_rnn_edits_write_svg_and_an_amount_of_zero_gives_the_same_strokes(tmp_path):
    model, ex, z, dirs, lat, lib = saved(tmp_path, "sketch-rnn")
    hot = {"temperature": 1.0}  # the untrained tiny decoder draws a few points at seed 11

    def run(name: str, *args) -> str:
        code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--seed", 11,
                         "--temperature", 1.0, *args, "--out", tmp_path / name)
        assert code == 0, out
        return (tmp_path / name).read_text() if name.endswith(".svg") else ""

    def svg(name: str, sketches) -> str:
        return save_sketches(tmp_path / name, list(sketches), nrow=len(sketches)).read_text()

    got = run("zero.svg", "--set", "pc1=0")
    unedited = ex.decode(z[:1], knobs=hot, seed=11)
    assert isinstance(unedited, Sketches) and len(unedited.strokes[0]) >= 3
    assert got.startswith("<svg") and "<polyline" in got
    assert got == svg("ref.svg", unedited.strokes)  # same seed, same strokes
    moved = ex.decode(ex.move(z[0], dirs, [3.0, 0.0])[None], knobs=hot, seed=11)
    assert not np.array_equal(moved.strokes[0], unedited.strokes[0])
    assert run("moved.svg", "--set", "pc0=3") == svg("ref-moved.svg", moved.strokes)
    # a sweep: one sketch per frame, each decoded with the same seed (the amount-0 frame is the unedited sketch)
    got = run("sweep.svg", "--sweep", "pc0", "--range", "0:3", "--frames", 3)
    frames = ex.decode_each(torch.stack([z[0] + a * dirs.vectors[0] for a in (0.0, 1.5, 3.0)]), knobs=hot, seed=11)
    assert len(frames) == 3
    np.testing.assert_array_equal(frames.strokes[0], unedited.strokes[0])
    np.testing.assert_array_equal(frames.strokes[2], moved.strokes[0])
    assert got == svg("ref-sweep.svg", frames.strokes)
    run("sweep.gif", "--sweep", "pc0", "--range", "0:3", "--frames", 3)
    with Image.open(tmp_path / "sweep.gif") as im:  # 6 frames a second; equal frames would be merged
        total = sum(f.info.get("duration", 0) for f in ImageSequence.Iterator(im))
        assert im.format == "GIF" and round(total * 6 / 1000) == 3
    code, out = edit("--model", model.path, "--latent", lat, "--directions", lib, "--out", tmp_path / "x.jpg")
    assert code == 1 and "sketches are written as .svg or .png" in out, out


def test_mismatched_files_and_options_are_refused_in_one_line(tmp_path):
    model, _, z, _, lat, lib = saved(tmp_path, "draw")

    def refused(*args, code: int = 1) -> str:
        got, out = edit("--model", model.path, *args, "--out", tmp_path / "x.png")
        errors = [line for line in out.splitlines() if line.startswith("Error:")]
        assert got == code and "Traceback" not in out and len(errors) == 1, out
        return errors[0]

    # directions of another space than the latents'
    other_space = tmp_path / "u_directions.npz"
    from latentstudio.studio.directions import DirectionLibrary

    moved = DirectionLibrary.load(lib)
    moved.info["space"] = "u"
    moved.save(other_space)
    out = refused("--latent", lat, "--directions", other_space)
    assert "u_directions.npz holds directions of space 'u', the latents are of space 'z'" in out
    assert "give latents of u" in out
    out = refused("--directions", other_space)  # no latent: the file's space must be the model's
    assert "u_directions.npz" in out and "has no explorable space 'u'" in out
    # directions saved from another family
    sk = make("sketch-rnn")
    sk_ex = Explorer(sk)
    sk_lib = save_directions(tmp_path / "sk_directions.npz", sk_ex.principal_directions(k=2, samples=8), model=sk)
    out = refused("--latent", lat, "--directions", sk_lib)
    assert "sk_directions.npz holds directions of a sketch-rnn model, not of this draw model" in out
    # a direction of another shape (saved without a family)
    from latentstudio.studio.directions import Direction

    t, d = z.shape[1:]
    DirectionLibrary([Direction("flat", torch.ones(d))]).save(tmp_path / "bare.npz")  # [D], not [T, D]
    out = refused("--latent", lat, "--directions", tmp_path / "bare.npz")
    assert f"bare.npz: direction 'flat' has shape [{d}], z latents of this model have [{t}, {d}]" in out
    assert "was it saved from another model?" in out
    # latents of another family, an unknown direction name, the face studio's controls
    sk_lat = save_latents(tmp_path / "sk.npz", torch.zeros(1, *sk.latent_space().shape), model=sk, space="z")
    assert "holds latents of a sketch-rnn model" in refused("--latent", sk_lat, "--directions", lib)
    out = refused("--latent", lat, "--directions", lib, "--set", "smile=1")
    assert "no direction 'smile'" in out and "pc0, pc1" in out
    assert "--control is the face studio's" in refused("--directions", lib, "--control", "smile=yes", code=2)
    assert "give --directions FILE" in refused("--latent", lat, code=2)
    assert "unknown image type" in edit("--model", model.path, "--directions", lib, "--out", tmp_path / "x.svg")[1]


def test_explorer_directions_name_and_check_their_space():
    ex = Explorer(make("draw"))
    with pytest.raises(ExplorerError, match="no directions file given"):
        ex.read_directions()
    dirs = ex.principal_directions(k=2, samples=8)
    z, _ = ex.draw([0])
    assert torch.equal(ex.apply(z[0], dirs, {}), z[0])
    assert torch.allclose(ex.apply(z[0], dirs, {"pc1": -2.0}), z[0] - 2.0 * dirs.vectors[1])
    with pytest.raises(ExplorerError, match="no direction 'pc7'"):
        ex.apply(z[0], dirs, {"pc7": 1.0})


# ------------------------------------------------------------------ the Face Studio's families


def png(path) -> torch.Tensor:
    """A written PNG as ``uint8 [C, H, W]``."""
    with Image.open(path) as im:
        a = torch.from_numpy(np.array(im))
    return a[None] if a.ndim == 2 else a.permute(2, 0, 1)


def test_face_edit_maps_explorer_z_latents_to_w_plus_and_edits_the_first_of_several(tmp_path):
    """StyleGAN2 through the Face Studio: the file's space is read, so z latents (of the shape of a W latent
    here, z_dim == w_dim) go through the mapping network; of several latents the first is edited, with a note."""
    from latentstudio.studio.editing import interpolate
    from latentstudio.studio.loading import wrap_model

    make("stylegan2").save_pretrained(tmp_path / "gan")
    model = load(tmp_path / "gan")
    face = wrap_model(model)
    assert model.z_dim == model.w_dim
    ex = Explorer(model)
    z, _ = ex.draw([0, 1, 2, 3], space="z")
    lat = save_latents(tmp_path / "z_seeds0-3.npz", z, model=model, space="z", seeds=[0, 1, 2, 3])
    code, out = edit("--model", model.path, "--latent", lat, "--out", tmp_path / "z.png")
    assert code == 0, out
    assert "holds 4 latents; editing latent 0" in out
    want = face.images(model.to_space(z[:1], "w+"))[0]
    assert torch.equal(png(tmp_path / "z.png"), want)
    assert not torch.equal(want, face.images(z[:1])[0])  # the z taken as a W latent: another face
    code, out = edit("--model", model.path, "--latent", lat, "--truncation-psi", 0.5, "--out", tmp_path / "t.png")
    assert code == 0, out
    half = face.images(model.to_space(z[:1], "w+", truncation_psi=0.5))[0]
    assert torch.equal(png(tmp_path / "t.png"), half) and not torch.equal(half, want)
    # W and W+ files are taken as they are (a W latent on every row); an interpolation ends at a file's first
    w, _ = ex.draw([5, 6], space="w")
    w_file = save_latents(tmp_path / "w_seeds5-6.npz", w, model=model, space="w")
    code, out = edit("--model", model.path, "--latent", w_file, "--out", tmp_path / "w.png")
    assert code == 0 and "holds 2 latents" in out, out
    assert torch.equal(png(tmp_path / "w.png"), face.images(w[:1])[0])
    code, out = edit("--model", model.path, "--latent", w_file, "--interpolate", lat, "--frames", 2,
                     "--out", tmp_path / "path.png")
    assert code == 0 and "z_seeds0-3.npz holds 4 latents; interpolating to latent 0" in out, out
    ends = face.check_latents(w[:1])[0], model.to_space(z[:1], "w+")[0]  # W broadcast; the mapped z
    frames = face.images(interpolate(*ends, 2))
    strip = png(tmp_path / "path.png")  # the frames side by side, as RGB
    assert torch.equal(strip, torch.cat(list(frames), dim=2).expand(3, -1, -1))


def test_face_edit_of_a_vae_reads_explorer_files_of_either_space(tmp_path):
    """Two-stage VAE through the Face Studio: the first of the explorer's z latents (with a note), u latents
    through the second stage's decoder; a file of another family is refused in one line."""
    from latentstudio.studio.loading import wrap_model

    make("two-stage-vae").save_pretrained(tmp_path / "vae")
    model = load(tmp_path / "vae")
    face = wrap_model(model)
    ex = Explorer(model)
    z, _ = ex.draw([0, 1, 2, 3])
    lat = save_latents(tmp_path / "z_seeds0-3.npz", z, model=model, space="z")
    code, out = edit("--model", model.path, "--latent", lat, "--out", tmp_path / "z.png")
    assert code == 0 and "holds 4 latents; editing latent 0" in out, out
    assert torch.equal(png(tmp_path / "z.png"), face.images(z[:1])[0])
    u, _ = ex.draw([7], space="u")
    u_file = save_latents(tmp_path / "u_seed7.npz", u, model=model, space="u")
    code, out = edit("--model", model.path, "--latent", u_file, "--out", tmp_path / "u.png")
    assert code == 0 and "holds" not in out, out
    want = face.images(model.to_first_stage(u, "u", None))[0]
    assert torch.equal(png(tmp_path / "u.png"), want) and not torch.equal(want, face.images(u)[0])
    draw = make("draw")
    other = save_latents(tmp_path / "draw.npz", torch.zeros(1, *draw.latent_space().shape), model=draw, space="z")
    code, out = edit("--model", model.path, "--latent", other, "--out", tmp_path / "x.png")
    assert code == 1 and "Traceback" not in out and "holds latents of a draw model" in out, out
