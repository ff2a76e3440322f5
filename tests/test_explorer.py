"""The latent explorer's logic for every registered family, through the model contract only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_stroke_npz
from PIL import Image
from test_contract import FAMILIES, example_data, make

from latentstudio.errors import CapabilityError, ConfigError
from latentstudio.models.base import ENCODE, STEPS
from latentstudio.studio.directions import DirectionLibrary
from latentstudio.studio.explorer import (
    Explorer,
    ExplorerError,
    load_sketch_file,
    save_animation,
    save_directions,
    save_latents,
    save_outputs,
)
from latentstudio.studio.projection import load_latent
from latentstudio.types import Sketches


def n_outputs(out) -> int:
    return len(out.strokes) if isinstance(out, Sketches) else int(out.shape[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_drawable_space_samples_interpolates_and_moves(family):
    model = make(family)
    ex = Explorer(model)
    assert family in ex.headline()
    assert n_outputs(ex.sample([0, 1])) == 2
    drawable = [s for s in ex.spaces() if ex.drawable(s)]
    assert drawable or not ex.spaces()
    for s in drawable:
        z, outs = ex.draw([3, 4], space=s.name)
        assert tuple(z.shape) == (2, *s.shape) and n_outputs(outs) == 2
        again, _ = ex.draw([4], space=s.name)
        assert torch.allclose(again[0], z[1], atol=1e-5)  # one latent per seed
        for method in ("lerp", "slerp"):
            path = ex.interpolate(z[0], z[1], 5, method)
            assert tuple(path.shape) == (5, *s.shape)
            assert torch.allclose(path[0], z[0], atol=1e-5) and torch.allclose(path[-1], z[1], atol=1e-5)
            assert n_outputs(ex.decode(path, space=s.name)) == 5
        walk = ex.random_walk(z[0], 4, step_size=0.2, seed=1)
        assert tuple(walk.shape) == (4, *s.shape) and torch.equal(walk[0], z[0])
        dirs = ex.principal_directions(k=2, space=s.name, samples=24)
        assert tuple(dirs.vectors.shape) == (2, *s.shape) and dirs.names == ["pc0", "pc1"]
        assert sorted(dirs.variance_ratio, reverse=True) == list(dirs.variance_ratio)
        moved = ex.move(z[0], dirs, [1.5, 0.0])
        assert torch.allclose(moved - z[0], 1.5 * dirs.vectors[0], atol=1e-5)
        assert n_outputs(ex.decode(moved[None], space=s.name)) == 1
    with pytest.raises(ConfigError):
        ex.interpolate(torch.zeros(2), torch.zeros(2), 4, "cubic")


@pytest.mark.parametrize("family", FAMILIES)
def test_encode_gives_latents_of_the_default_space_or_is_refused(family):
    model = make(family)
    ex = Explorer(model)
    data = example_data(model)
    if not model.supports(ENCODE):
        with pytest.raises(CapabilityError):
            ex.encode(data)
        return
    z = ex.encode(data)
    assert tuple(z.shape) == (3, *ex.space().shape) and torch.isfinite(z).all()
    dirs = ex.principal_directions(z, k=5)  # of the aggregate posterior; k capped by the number of latents
    assert len(dirs.vectors) == 2 and dirs.source == "given latents"


def _close_images(a: torch.Tensor, b: torch.Tensor) -> bool:
    """uint8 images equal up to one level (rounding of floats computed in another order)."""
    return a.shape == b.shape and int((a.int() - b.int()).abs().max()) <= 1


def test_stylegan2_w_and_w_plus_are_drawn_by_mapping_the_seeds_z():
    model = make("stylegan2")
    with torch.no_grad():
        model.mapping.w_avg.copy_(torch.randn(model.w_dim, generator=torch.Generator().manual_seed(9)))
    ex = Explorer(model)
    assert [s.name for s in ex.spaces()] == ["z", "w", "w+"]
    assert [ex.drawable(s) for s in ex.spaces()] == [True, True, True]
    z, from_z = ex.draw([3, 5], space="z")
    w, from_w = ex.draw([3, 5], space="w")
    assert tuple(w.shape) == (2, model.w_dim)
    with torch.no_grad():
        assert torch.allclose(w, model.mapping(z)[:, 0], atol=1e-6)  # seed i's w is the mapping of seed i's z
    wp, from_wp = ex.draw([3, 5], space="w+")
    assert tuple(wp.shape) == (2, model.num_ws, model.w_dim) and torch.allclose(wp, w[:, None].expand_as(wp))
    assert _close_images(from_w, from_z) and _close_images(from_wp, from_z)
    assert torch.equal(ex.decode(w, space="w"), from_w)
    # truncation is applied once, in the mapping: psi = 0 gives w_avg, 0.5 halfway, and the outputs are those
    # of z decoded with the same knobs (no second truncation at decoding)
    w0, _ = ex.draw([3, 5], space="w", knobs={"truncation_psi": 0})
    assert torch.allclose(w0, model.w_avg.expand(2, -1), atol=1e-6)
    half = {"truncation_psi": 0.5}
    wh, from_wh = ex.draw([3, 5], space="w", knobs=half)
    assert torch.allclose(wh, model.w_avg.lerp(w, 0.5), atol=1e-5)
    assert _close_images(from_wh, ex.decode(z, space="z", knobs=half))
    assert torch.equal(ex.decode(wh, space="w", knobs=half), from_wh)
    cut, _ = ex.draw([3], space="w+", knobs={"truncation_psi": 0.5, "truncation_cutoff": 1})
    assert torch.allclose(cut[0, 0], wh[0], atol=1e-5) and torch.allclose(cut[0, 1:], wp[0, 1:], atol=1e-6)
    with pytest.raises(ConfigError, match="map into w\\+ instead"):
        ex.draw([0], space="w", knobs={"truncation_psi": 0.5, "truncation_cutoff": 1})
    info = {s["name"]: s for s in ex.describe()["spaces"]}
    assert info["w"]["mapped_from"] == "z" and info["w+"]["layers"] == model.num_ws and info["w"]["layers"] is None
    with pytest.raises(ExplorerError, match="no explorable space 'q'"):
        ex.space("q")
    with pytest.raises(ExplorerError, match="latents have shape"):
        ex.decode(w, space="w+")


def test_principal_directions_of_w_and_w_plus():
    model = make("stylegan2")
    ex = Explorer(model)
    d = ex.principal_directions(k=3, space="w", samples=64)
    with torch.no_grad():  # GANSpace: PCA of the mapping outputs of drawn z
        w = ex.model.to_space(torch.randn(64, model.z_dim, generator=torch.Generator().manual_seed(12345)), "w")
    assert d.space == "w" and tuple(d.vectors.shape) == (3, model.w_dim)
    assert torch.allclose(d.mean, w.mean(0), atol=1e-5)
    units = d.vectors / d.vectors.norm(dim=1, keepdim=True)
    assert torch.allclose(units @ units.T, torch.eye(3), atol=1e-4)
    spread = ((w - w.mean(0)) @ units.T).var(dim=0)  # the standard deviation along each is its length
    assert torch.allclose(spread, d.vectors.norm(dim=1) ** 2, rtol=1e-3)
    plus = ex.principal_directions(k=3, space="w+", samples=64)  # PCA of W, broadcast to every layer
    assert tuple(plus.vectors.shape) == (3, model.num_ws, model.w_dim)
    assert torch.allclose(plus.vectors, d.vectors[:, None].expand_as(plus.vectors), atol=1e-5)
    assert torch.allclose(plus.mean, d.mean.expand(model.num_ws, -1), atol=1e-5)
    assert plus.variance_ratio == pytest.approx(d.variance_ratio, abs=1e-5)
    pool, _ = ex.draw(range(6), space="w+")
    assert tuple(ex.principal_directions(pool, k=9, space="w+").vectors.shape) == (5, model.num_ws, model.w_dim)


def test_moves_on_chosen_layers_of_w_plus():
    model = make("stylegan2")
    ex = Explorer(model)
    n = model.num_ws
    assert ex.layer_count("w+") == n and ex.layer_count("w") is None and ex.layer_count("z") is None
    wp, _ = ex.draw([0, 1], space="w+")
    d = ex.principal_directions(k=2, space="w+", samples=32)
    moved = ex.move(wp[0], d, [2.0, -1.0], layers=[0, 2])
    changed = (moved - wp[0]).abs().amax(dim=1) > 1e-6
    assert changed.tolist() == [i in (0, 2) for i in range(n)]
    assert torch.allclose(moved[2], wp[0, 2] + 2.0 * d.vectors[0, 2] - d.vectors[1, 2], atol=1e-5)
    batch = ex.move(wp, d, [1.0], layers=[1])
    assert tuple(batch.shape) == tuple(wp.shape)
    assert torch.equal(batch[:, 0], wp[:, 0]) and not torch.allclose(batch[:, 1], wp[:, 1])
    assert torch.allclose(ex.move(wp[0], d, [1.0]), ex.move(wp[0], d, [1.0], layers=range(n)))  # None: every layer
    assert tuple(ex.decode(moved[None], space="w+").shape[:1]) == (1,)
    for bad in (n, -1):
        with pytest.raises(ExplorerError, match=f"layer {bad} is out of range: w\\+ has layers 0..{n - 1}"):
            ex.move(wp[0], d, [1.0], layers=[bad])
    z, _ = ex.draw([0], space="z")
    dz = ex.principal_directions(k=2, space="z", samples=16)
    with pytest.raises(ExplorerError, match="z latents have no layers"):
        ex.move(z[0], dz, [1.0], layers=[0])


def test_two_stage_spaces_and_fitted_samplers():
    model = make("two-stage-vae")
    ex = Explorer(model)
    assert [s.name for s in ex.spaces()] == ["z", "u"]
    info = ex.describe()
    assert info["knobs"]["sampler"]["choices"] == ["normal", "second-stage"]
    z, outs = ex.draw([0, 1], space="z", knobs={"sampler": "second-stage"})
    assert torch.equal(outs, ex.sample([0, 1], knobs={"sampler": "second-stage"}))  # the model's own samples
    u, _ = ex.draw([0, 1], space="u")
    assert not torch.allclose(z, u)
    with pytest.raises(ConfigError, match="sampler"):
        ex.draw([0], knobs={"sampler": "gmm"})  # not fitted


def test_steps_of_a_drawing_model():
    ex = Explorer(make("draw"))
    assert ex.describe()["steps"] and STEPS in ex.model.capabilities
    frames = ex.steps([0, 1])
    t = ex.space().shape[0]
    assert frames.dtype == torch.uint8 and frames.shape[:2] == (t, 2)
    with pytest.raises(CapabilityError):
        Explorer(make("vae")).steps([0])


def test_steps_of_any_latent():
    from latentstudio.models.registry import MODELS

    cls = MODELS.get("draw")
    torch.manual_seed(0)
    ex = Explorer(cls(cls.example_config(attention=False)).eval())  # no write boxes drawn on the frames
    z, _ = ex.draw([0, 1])
    path = ex.interpolate(z[0], z[1], 3)
    frames = ex.steps_of(path)
    t = ex.space().shape[0]
    assert frames.dtype == torch.uint8 and tuple(frames.shape[:3]) == (t, 3, 3)
    images = ex.decode(path)
    last = frames[-1][:, :, ::2, ::2]  # RGB frames at twice the size
    assert _close_images(last, images.expand(-1, 3, -1, -1))
    assert not torch.equal(frames[0], frames[-1])
    assert _close_images(ex.steps_of(z), ex.steps([0, 1]))  # the seeds' latents draw as their samples
    attending = Explorer(make("draw"))
    za, _ = attending.draw([2])
    assert tuple(attending.steps_of(za).shape[:2]) == (t, 1)
    with pytest.raises(ExplorerError, match="latents have shape"):
        ex.steps_of(torch.zeros(1, 5))
    with pytest.raises(CapabilityError):
        Explorer(make("vae")).steps_of(torch.zeros(1, *make("vae").latent_space().shape))


def test_completion_of_a_drawn_prefix():
    from latentstudio.errors import DataError
    from latentstudio.models.registry import MODELS
    from latentstudio.studio.explorer import sketch_from_drawing

    prefix = sketch_from_drawing([[[10, 60, 120, 130], [10, 12, 14, 60]], [[50, 50], [20, 200]]])
    cls = MODELS.get("sketch-rnn")
    for conditional in (True, False):
        torch.manual_seed(0)
        ex = Explorer(cls(cls.example_config(conditional=conditional)).eval())
        assert ex.can_complete() and ex.describe()["complete"]
        out = ex.complete(prefix, 5, knobs={"temperature": 0.8}, seed=7)
        assert len(out) == 5
        for s in out:
            assert s.dtype == np.float32 and s.shape[1] == 3 and len(s) >= len(prefix)
            np.testing.assert_array_equal(s[: len(prefix), :2], prefix[:, :2])  # the prefix is kept
            np.testing.assert_array_equal(s[: len(prefix) - 1, 2], prefix[:-1, 2])
        again = ex.complete(prefix, 5, knobs={"temperature": 0.8}, seed=7)
        assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))  # same seed, same sketches
        other = ex.complete(prefix, 5, knobs={"temperature": 0.8}, seed=8)
        assert not all(np.array_equal(a, b) for a, b in zip(out, other, strict=True))
    too_long = np.zeros((ex.model.config.max_seq_len, 3), dtype=np.float32)
    with pytest.raises(DataError, match="max_seq_len"):
        ex.complete(too_long)
    with pytest.raises(DataError, match="empty"):
        ex.complete(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ExplorerError, match="stroke-3"):
        ex.complete(np.zeros((4, 2), dtype=np.float32))
    assert not Explorer(make("draw")).can_complete()
    with pytest.raises(CapabilityError, match="cannot complete"):
        Explorer(make("draw")).complete(prefix)


def test_files_latents_outputs_animations_directions(tmp_path):
    for family in ("draw", "sketch-rnn"):
        model = make(family)
        model.save_pretrained(tmp_path / family)
        from latentstudio.api import load

        model = load(tmp_path / family)
        ex = Explorer(model)
        z, outs = ex.draw([0, 1, 2])
        lat = save_latents(tmp_path / f"{family}.npz", z, model=model, space="z", seeds=[0, 1, 2])
        back = load_latent(lat)
        assert torch.equal(back["latent"], z) and back["space"] == "z"
        assert back["meta"]["model_path"] == str(tmp_path / family) and back["meta"]["seeds"] == [0, 1, 2]
        with np.load(lat) as data:
            assert str(data["model_type"]) == family
        if ex.output_kind == "images":
            png = save_outputs(outs, tmp_path / "grid.png", upscale_to=32)
            assert Image.open(png).format == "PNG"
        else:
            svg = save_outputs(outs, tmp_path / "grid.svg")
            assert svg.read_text().startswith("<svg") and svg.read_text().count("<path") + \
                svg.read_text().count("<polyline") >= 0
        gif = save_animation(ex.decode(ex.interpolate(z[0], z[1], 4)), tmp_path / f"{family}.gif", pingpong=True)
        with Image.open(gif) as im:
            assert im.format == "GIF" and im.n_frames == 6
        dirs = ex.principal_directions(k=2, samples=16)
        lib = DirectionLibrary.load(save_directions(tmp_path / f"{family}-dirs.npz", dirs, model=model))
        assert lib.names() == ["pc0", "pc1"] and lib.info["space"] == "z"
        assert torch.allclose(lib["pc0"].vector, dirs.vectors[0])


def test_sketch_inputs_from_stroke_files(tmp_path):
    npz = write_stroke_npz(tmp_path / "cats.npz", n=20, max_points=12, splits=(10, 5))
    sketches = load_sketch_file(npz, limit=3)
    assert len(sketches) == 3 and all(s.shape[1] == 3 and s.dtype == np.float32 for s in sketches)
    offsets = np.concatenate([s[:, :2] for s in sketches])
    assert 0.5 < float(offsets.std()) < 2.0
    nd = tmp_path / "cat.ndjson"
    nd.write_text(json.dumps({"word": "cat", "recognized": True,
                              "drawing": [[[0, 50, 100, 100], [0, 0, 50, 100]], [[10, 60], [80, 80]]]}) + "\n")
    (one,) = load_sketch_file(nd)
    assert one[-1, 2] == 1
    ex = Explorer(make("sketch-rnn"))
    z = ex.encode(Sketches([s[:12] for s in sketches]))
    assert tuple(z.shape) == (3, 4)
    with pytest.raises(ExplorerError, match="a sketch is read from"):
        load_sketch_file(tmp_path / "x.png")


def test_image_inputs_are_resized_to_the_model(tmp_path):
    ex = Explorer(make("vae"))
    c, h, w = ex.output_shape()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "in.png")
    x = ex.read_input(tmp_path / "in.png")
    assert x.dtype == torch.uint8 and tuple(x.shape) == (1, c, h, w)
    assert tuple(ex.encode(x).shape) == (1, *ex.space().shape)
    (tmp_path / "bad.png").write_text("no image")
    with pytest.raises(ExplorerError, match="not a readable image"):
        ex.read_input(tmp_path / "bad.png")


def test_studio_command_routes_face_models_to_the_face_studio(tmp_path):
    from click.testing import CliRunner

    from latentstudio.cli.main import cli
    from latentstudio.cli.studio import _face_model
    from latentstudio.samplers import load_model_with_samplers

    routes = {}
    for family, dataset in (("vae", "celeba"), ("vae", "mnist"), ("two-stage-vae", ""), ("draw", "mnist"),
                            ("sketch-rnn", "strokes"), ("stylegan2", "")):
        folder = tmp_path / f"{family}-{dataset or 'unknown'}"
        make(family).save_pretrained(folder, meta={"dataset": dataset} if dataset else None)
        routes[folder.name] = _face_model(load_model_with_samplers(folder)) is not None
    assert routes == {"vae-celeba": True, "vae-mnist": False, "two-stage-vae-unknown": True, "draw-mnist": False,
                      "sketch-rnn-strokes": False, "stylegan2-unknown": True}
    out = CliRunner().invoke(cli, ["studio", "--help"]).output
    assert "--explorer" in out and "latent explorer" in out


@pytest.mark.parametrize(("family", "condition"), [("draw", "class"), ("vae", "attributes"),
                                                   ("two-stage-vae", "class")])
def test_conditional_models_take_their_condition_everywhere(family, condition):
    from latentstudio.models.registry import MODELS

    cls = MODELS.get(family)
    torch.manual_seed(0)
    model = cls(cls.example_config(condition=condition, cond_dim=3)).eval()
    ex = Explorer(model)
    assert ex.describe()["condition"] == {"kind": condition, "dim": 3}
    cond = 2 if condition == "class" else {0: 1.0, 2: -1.0}
    z, outs = ex.draw([0, 1], condition=cond)
    assert tuple(z.shape) == (2, *ex.space().shape) and n_outputs(outs) == 2
    assert n_outputs(ex.decode(ex.interpolate(z[0], z[1], 3), condition=cond)) == 3
    x = model.example_batch(2, torch.Generator().manual_seed(0)).x
    assert tuple(ex.encode(x, condition=cond).shape) == (2, *ex.space().shape)
    with pytest.raises(ConfigError):
        ex.draw([0], condition=7 if condition == "class" else {9: 1.0})


def test_page_inputs_seeds_and_conditions():
    from latentstudio.errors import LatentStudioError
    from latentstudio.studio.web.explorer_app import parse_condition, parse_seeds

    assert parse_seeds("0-3, 7") == [0, 1, 2, 3, 7] and parse_seeds(5) == [5]
    for bad in ("", "3-1", "x", "0-100"):
        with pytest.raises(LatentStudioError):
            parse_seeds(bad)
    assert parse_condition("class", "in turn") is None and parse_condition("class", "2") == 2
    assert parse_condition("attributes", "3:+1, 5:-1") == {3: 1.0, 5: -1.0}
    assert parse_condition("none", "2") is None
    with pytest.raises(LatentStudioError, match="index:value"):
        parse_condition("attributes", "smile")


def test_a_mouse_drawing_becomes_one_stroke3_sketch():
    from latentstudio.studio.explorer import sketch_from_drawing

    drawing = [[[10, 60, 120], [10, 12, 14]], [[50, 50], [20, 200]]]
    sketch = sketch_from_drawing(json.dumps(drawing))
    assert sketch.dtype == np.float32 and sketch.shape[1] == 3 and sketch[-1, 2] == 1
    assert list(sketch[:, 2]).count(1) == 2  # the pen lifts at the end of each stroke
    assert 0.5 < float(sketch[:, :2].std()) < 2.0
    z = Explorer(make("sketch-rnn")).encode(Sketches([sketch]))
    assert tuple(z.shape) == (1, 4)
    for nothing in ("", "[]", [[[1], [2]]]):
        with pytest.raises(ExplorerError, match="nothing drawn"):
            sketch_from_drawing(nothing)
    with pytest.raises(ExplorerError, match="not JSON"):
        sketch_from_drawing("{")


def test_explorer_files_feed_the_edit_command(tmp_path):
    from click.testing import CliRunner

    from latentstudio.api import load
    from latentstudio.cli.main import cli

    make("vae").save_pretrained(tmp_path / "m")
    model = load(tmp_path / "m")
    ex = Explorer(model)
    z, _ = ex.draw([0, 1, 2, 3, 4])
    dirs = ex.principal_directions(z, k=2)
    moved = save_latents(tmp_path / "moved.npz", ex.move(z[0], dirs, [1.0, 0.0])[None], model=model, space="z")
    lib = save_directions(tmp_path / "dirs.npz", dirs, model=model)
    res = CliRunner().invoke(cli, ["edit", "--model", str(tmp_path / "m"), "--latent", str(moved),
                                   "--directions", str(lib), "--set", "pc1=1.5", "--out", str(tmp_path / "e.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "e.png").size[0] == ex.output_shape()[-1]


def test_latent_values_as_a_grid():
    from latentstudio.studio.explorer import latent_grid

    img = latent_grid(torch.tensor([[-3.0, 0.0, 3.0], [0.0, 0.0, 0.0]]), cell=4)
    assert img.dtype == torch.uint8 and tuple(img.shape) == (3, 8, 12)
    blue, white, red = img[:, 0, 0], img[:, 0, 5], img[:, 0, 9]
    assert blue[2] > blue[0] and red[0] > red[2] and int(white.min()) > 200
    assert tuple(latent_grid(torch.zeros(5), cell=2).shape) == (3, 2, 10)


def test_nearest_training_examples_and_label_directions():
    from latentstudio.data.base import ImageData
    from latentstudio.data.strokes import StrokeSet
    from latentstudio.studio.explorer import Reference

    model = make("vae")
    images = model.example_batch(12, torch.Generator().manual_seed(5)).x
    split = ImageData(images, labels=torch.tensor([0, 1, 2] * 4), class_names=["zero", "one", "two"], name="toy")
    ex = Explorer(model, Reference.of(split))
    assert ex.reference.labels[:3] == ("zero", "one", "two")
    idx, dist, found = ex.nearest(images[7:8], k=3)
    assert idx[0] == 7 and dist[0] == 0.0 and dist == sorted(dist) and torch.equal(found[0], images[7])
    dirs = ex.label_directions()
    assert dirs.names == ["one", "two", "zero"]  # most frequent first, then by name
    z = ex.reference_latents()
    assert tuple(z.shape) == (12, *ex.space().shape)
    zero = dirs.names.index("zero")
    assert torch.allclose(dirs.vectors[zero], z[0::3].mean(0) - z.mean(0), atol=1e-6)
    with pytest.raises(ExplorerError, match="no training data"):
        Explorer(model).nearest(images[:1])
    with pytest.raises(ExplorerError, match="no labels"):
        Explorer(model, Reference(images, None, "toy")).label_directions()

    sk = make("sketch-rnn")
    sketches = list(example_data(sk, 3).strokes)
    ex = Explorer(sk, Reference.of(StrokeSet(sketches, labels=["cat", "dog", "cat"])))
    idx, _, found = ex.nearest(Sketches([sketches[1]]), k=2)
    assert idx[0] == 1 and len(found) == 2
    assert sorted(ex.label_directions().names) == ["cat", "dog"]


@pytest.mark.parametrize(("family", "condition"), [("draw", "class"), ("two-stage-vae", "class"),
                                                   ("vae", "attributes")])
def test_reference_examples_are_encoded_with_their_own_condition(family, condition):
    """A conditional model encodes each training example with its own label (or attributes), in every batch,
    so the label directions are the means of those posteriors; not classes 0, 1, 2 ... in turn."""
    from latentstudio.data.base import ImageData
    from latentstudio.models.registry import MODELS
    from latentstudio.studio.explorer import Reference

    cls = MODELS.get(family)
    torch.manual_seed(0)
    model = cls(cls.example_config(condition=condition, cond_dim=3)).eval()
    images = model.example_batch(6, torch.Generator().manual_seed(5)).x
    labels = [2, 2, 0, 1, 0, 2]  # not 0, 1, 2 in turn
    attributes = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]] * 2)
    split = ImageData(images, labels=torch.tensor(labels), class_names=["a", "b", "c"], name="toy",
                      attributes=attributes if condition == "attributes" else None)
    ex = Explorer(model, Reference.of(split))
    z = ex.reference_latents(batch=4)  # two batches: the conditions follow the examples
    own = ex.encode(images, condition=labels if condition == "class" else attributes)
    assert torch.allclose(z, own, atol=1e-6)
    assert not torch.allclose(own, ex.encode(images), atol=1e-3)  # the condition changes the posterior
    dirs = ex.label_directions()
    assert dirs.names == ["c", "a", "b"]
    assert torch.allclose(dirs.vectors[0], own[[0, 1, 5]].mean(0) - own.mean(0), atol=1e-6)
    unlabelled = Explorer(model, Reference(images, ("a",) * 6, "toy"))
    with pytest.raises(ExplorerError, match=f"{condition}-conditional.*toy"):
        unlabelled.reference_latents()


def test_animations_as_mp4(tmp_path):
    pytest.importorskip("av")
    ex = Explorer(make("draw"))
    z, _ = ex.draw([0, 1])
    mp4 = save_animation(ex.decode(ex.interpolate(z[0], z[1], 4)), tmp_path / "path.mp4", side=32)
    import av

    with av.open(str(mp4)) as f:
        frames = list(f.decode(video=0))
    assert len(frames) == 4 and frames[0].width >= ex.output_shape()[-1]
    with pytest.raises(ExplorerError, match="gif or .mp4"):
        save_animation(ex.decode(z), tmp_path / "path.avi")


def test_interpolate_command_reads_explorer_latent_files(tmp_path):
    import shutil

    from click.testing import CliRunner

    from latentstudio import api
    from latentstudio.cli.main import cli

    def run(*args):
        return CliRunner().invoke(cli, ["interpolate", *map(str, args)])

    make("stylegan2").save_pretrained(tmp_path / "sg")
    model = api.load(tmp_path / "sg")
    ex = Explorer(model)
    wp, outs = ex.draw([0, 1, 2], space="w+", knobs={"truncation_psi": 0.7})
    lat = save_latents(tmp_path / "wp.npz", wp, model=model, space="w+", seeds=[0, 1, 2])
    found = api.read_latents(model, lat)  # the round trip: the file's latents and space, checked against the model
    assert found.space == "w+" and torch.equal(found.latents, wp) and found.note is None
    a, b = found.pick(0, 2)
    strip = api.interpolate(model, a, b, steps=3, method="lerp", space=found.space)
    assert _close_images(strip[0], outs[0]) and _close_images(strip[-1], outs[2])
    res = run("--model", tmp_path / "sg", "--latents", lat, "--pair", "0,2", "--steps", "3", "--method", "lerp",
              "--out", tmp_path / "strip.png")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "strip.png").size[0] >= 3 * outs.shape[-1]
    res = run("--model", tmp_path / "sg", "--latents", lat, "--steps", "4", "--out", tmp_path / "walk.gif")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 4

    def error(*args) -> str:
        res = run("--model", tmp_path / "sg", *args, "--out", tmp_path / "x.png")
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        return res.output

    wrong_space = save_latents(tmp_path / "u.npz", wp[:, 0], model=model, space="u")
    assert "holds latents of space 'u'; this stylegan2 model's spaces: z, w, w+" in error("--latents", wrong_space)
    wrong_shape = save_latents(tmp_path / "w-as-wp.npz", wp[:, 0], model=model, space="w+")
    assert "do not fit space w+ of this model (it reads [n, " in error("--latents", wrong_shape)
    draw = make("draw")
    other = save_latents(tmp_path / "draw.npz", torch.zeros(2, *draw.latent_space().shape), model=draw, space="z")
    assert "holds latents of a draw model" in error("--latents", other)
    assert "holds 3 latents (0..2); latent 5 is not one of them" in error("--latents", lat, "--pair", "0,5")
    res = run("--model", tmp_path / "sg", "--latents", lat, "--seeds", "1,2")
    assert res.exit_code == 2 and "not both" in res.output
    res = run("--model", tmp_path / "sg", "--latents", lat, "--space", "z")
    assert res.exit_code == 2 and "holds latents of w+" in res.output
    shutil.copytree(tmp_path / "sg", tmp_path / "copy")  # another folder of the same model: used, with a note
    res = run("--model", tmp_path / "copy", "--latents", lat, "--steps", "2", "--out", tmp_path / "c.png")
    assert res.exit_code == 0 and "was saved from" in res.output, res.output
