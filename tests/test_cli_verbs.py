"""The generic verbs of the command line on a tiny model of every registered family: ``sample`` writes
by output kind, knobs are the family's own, deprecated spellings still work, and ``reconstruct``,
``interpolate``, ``evaluate`` and ``train`` go through the API."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import write_stroke_npz

from latentstudio.cli.main import cli
from latentstudio.cli.options import DEPRECATED_FLAGS, KNOB_OPTIONS
from latentstudio.models import load_all
from latentstudio.models.registry import MODELS

load_all()
FAMILIES = MODELS.names()


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="latentstudio")


def save_tiny(family: str, folder, **overrides):
    cls = MODELS.get(family)
    torch.manual_seed(0)
    model = cls(cls.example_config(**overrides)).eval()
    model.save_pretrained(folder)
    return model


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [s for s in res.output.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


@pytest.fixture(scope="module")
def stroke_file(tmp_path_factory):
    return write_stroke_npz(tmp_path_factory.mktemp("strokes") / "shapes.npz", 40, seed=3, max_points=14,
                            splits=(30, 5))


def test_knob_flags_are_the_union_of_the_families_knobs():
    declared = {k.name for family in FAMILIES for k in MODELS.get(family).knobs}
    assert declared == set(KNOB_OPTIONS)


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_writes_by_output_kind(family, tmp_path):
    model = save_tiny(family, tmp_path / "m")
    ext = ".svg" if model.output_kind == "sketches" else ".png"
    res = invoke("sample", "--model", tmp_path / "m", "--n", "3", "--out", tmp_path / f"grid{ext}",
                 "--out-dir", tmp_path / "each")
    assert res.exit_code == 0, res.output
    assert (tmp_path / f"grid{ext}").stat().st_size > 0
    each = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert each == [f"00000{i}{ext}" for i in range(3)]
    if model.output_kind == "images":
        from PIL import Image

        with Image.open(tmp_path / "each" / "000000.png") as im:
            assert im.size == (model.example_batch(1).x.shape[-1],) * 2
    # one sample per seed: the same seed gives the same file whatever else is drawn
    for seeds, name in (("4", "a"), ("2-4", "b")):
        res = invoke("sample", "--model", tmp_path / "m", "--seeds", seeds, "--out-dir", tmp_path / name)
        assert res.exit_code == 0, res.output
    a = (tmp_path / "a" / f"000000{ext}").read_bytes()
    assert a == (tmp_path / "b" / f"000002{ext}").read_bytes()
    # the drawing of families that draw in steps
    if model.supports("steps"):
        assert (tmp_path / "grid-steps.png").is_file() and (tmp_path / "grid.gif").is_file()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_knob_the_family_lacks_is_its_one_line_error(family, tmp_path):
    model = save_tiny(family, tmp_path / "m")
    own = [k.name for k in model.knobs]
    other = next(name for name in KNOB_OPTIONS if name not in own and name != "greedy")
    flag = KNOB_OPTIONS[other][0][0]
    value = {"sampler": "gmm", "noise_mode": "const"}.get(other, "1")
    line = one_line_error(invoke("sample", "--model", tmp_path / "m", "--n", "1", flag, value,
                                 "--out", tmp_path / "x.png"))
    assert f"no sampling option '{other}'" in line
    for name in own:
        assert name in line
    assert not (tmp_path / "x.png").exists()


def test_sampler_is_refused_by_stylegan2_and_draw(tmp_path):
    for family in ("stylegan2", "draw"):
        save_tiny(family, tmp_path / family)
        line = one_line_error(invoke("sample", "--model", tmp_path / family, "--sampler", "prior"))
        assert f"{family} has no sampling option 'sampler'" in line


def test_knob_values_are_checked_by_the_model(tmp_path):
    save_tiny("stylegan2", tmp_path / "sg")
    res = invoke("sample", "--model", tmp_path / "sg", "--n", "2", "--truncation-psi", "0.5",
                 "--truncation-cutoff", "2", "--noise-mode", "none", "--out", tmp_path / "t.png")
    assert res.exit_code == 0, res.output
    save_tiny("sketch-rnn", tmp_path / "sk")
    line = one_line_error(invoke("sample", "--model", tmp_path / "sk", "--temperature", "-1",
                                 "--out", tmp_path / "s.svg"))
    assert "temperature" in line
    # temperature 0 means greedy decoding for models with a greedy knob
    for args, name in ((("--temperature", "0"), "g0.svg"), (("--greedy",), "g1.svg")):
        res = invoke("sample", "--model", tmp_path / "sk", "--seeds", "1", *args, "--out", tmp_path / name)
        assert res.exit_code == 0, res.output
    assert (tmp_path / "g0.svg").read_text() == (tmp_path / "g1.svg").read_text()


def test_deprecated_spellings_still_work_and_say_so(tmp_path):
    save_tiny("stylegan2", tmp_path / "m")
    res = invoke("sample", "--model", tmp_path / "m", "--seeds", "0-1", "--truncation-psi", "0.7",
                 "--out", tmp_path / "new.png")
    assert res.exit_code == 0 and "Warning" not in res.output, res.output
    res = invoke("generate", "--model", tmp_path / "m", "--seeds", "0-1", "--trunc", "0.7",
                 "--out", tmp_path / "old.png")
    assert res.exit_code == 0, res.output
    assert "Warning: --trunc is deprecated; use --truncation-psi" in res.output
    assert "'latentstudio generate' is deprecated; use 'latentstudio sample'" in res.output
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "new.png").read_bytes()
    res = invoke("video", "--model", tmp_path / "m", "--seeds", "0-1", "--frames", "2", "--trunc", "0.5",
                 "--out", tmp_path / "v.gif")
    assert res.exit_code == 0 and "use --truncation-psi" in res.output, res.output
    # a deprecated spelling is not accepted by a command without the new flag
    res = invoke("complete", "--model", tmp_path / "m", "--trunc", "0.5")
    assert res.exit_code == 2 and "No such option '--trunc'" in res.output
    assert set(DEPRECATED_FLAGS.values()) <= {"--truncation-psi", "--truncation-cutoff"}


def test_generate_keeps_latents_and_style_mixing(tmp_path):
    save_tiny("stylegan2", tmp_path / "m")
    res = invoke("generate", "--model", tmp_path / "m", "--seeds", "0-2", "--truncation-psi", "0.7",
                 "--out", tmp_path / "g.png", "--save-latents", tmp_path / "lat.npz")
    assert res.exit_code == 0, res.output
    res = invoke("generate", "--model", tmp_path / "m", "--latents", tmp_path / "lat.npz", "--out", tmp_path / "l.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "l.png").read_bytes() == (tmp_path / "g.png").read_bytes()
    res = invoke("generate", "--model", tmp_path / "m", "--seeds", "1,2", "--mix-seeds", "3", "--mix-styles", "0-1",
                 "--out", tmp_path / "mix.png")
    assert res.exit_code == 0 and "2 rows x 1 columns" in res.output, res.output
    save_tiny("draw", tmp_path / "d")
    res = invoke("generate", "--model", tmp_path / "d", "--mix-seeds", "3", "--seeds", "1")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.splitlines()[-1].startswith("Error: --latents, --mix-seeds and --save-latents apply to StyleGAN2")


def test_reconstruct_images_sketches_and_refusal(tmp_path, stroke_file):
    save_tiny("vae", tmp_path / "vae", image_size=32)
    res = invoke("reconstruct", "--model", tmp_path / "vae", "--data", "digits", "--limit", "40", "--n", "10",
                 "--out", tmp_path / "r.png")
    assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(tmp_path / "r.png") as im:  # originals and reconstructions of 8 + 2 (padded): four rows
        assert im.size == (8 * 32 + 9 * 2, 4 * 32 + 5 * 2)
    save_tiny("sketch-rnn", tmp_path / "sk")
    res = invoke("reconstruct", "--model", tmp_path / "sk", "--data", stroke_file, "--n", "3", "--seed", "1",
                 "--temperature", "0.2", "--out", tmp_path / "r.svg")
    assert res.exit_code == 0, res.output
    assert "reconstructed" in (tmp_path / "r.svg").read_text()
    save_tiny("stylegan2", tmp_path / "sg")
    line = one_line_error(invoke("reconstruct", "--model", tmp_path / "sg", "--data", "digits"))
    assert "stylegan2 models cannot reconstruct" in line


def test_interpolate_pairs_and_seeds(tmp_path, stroke_file):
    save_tiny("sketch-rnn", tmp_path / "sk")
    res = invoke("interpolate", "--model", tmp_path / "sk", "--data", stroke_file, "--pair", "0,2", "--steps", "3",
                 "--out", tmp_path / "i.svg")
    assert res.exit_code == 0, res.output
    svg = (tmp_path / "i.svg").read_text()
    assert "test[0]" in svg and "test[2]" in svg
    save_tiny("stylegan2", tmp_path / "sg")
    for name in ("walk.png", "walk.gif"):
        res = invoke("interpolate", "--model", tmp_path / "sg", "--seeds", "1,2", "--steps", "4", "--method", "lerp",
                     "--truncation-psi", "0.7", "--out", tmp_path / name)
        assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 4
    line = one_line_error(invoke("interpolate", "--model", tmp_path / "sg", "--pair", "0,1", "--data", "digits"))
    assert "stylegan2 models cannot encode" in line
    res = invoke("interpolate", "--model", tmp_path / "sg", "--seeds", "1", "--out", tmp_path / "x.png")
    assert res.exit_code == 2 and "two integers" in res.output


def test_evaluate_maps_flags_to_the_evaluator_options(tmp_path, monkeypatch):
    from latentstudio import api

    save_tiny("vae", tmp_path / "m")
    seen = {}

    def fake(model, data=None, **options):
        seen.update(model=model, data=data, **options)
        return tmp_path / "report.md"

    monkeypatch.setattr(api, "evaluate", fake)
    res = invoke("evaluate", "--model", tmp_path / "m", "--samplers", "gmm,normal", "--option", "nll_samples=5",
                 "--n-samples", "10", "--out", tmp_path / "ev", "--no-progress")
    assert res.exit_code == 0 and "report:" in res.output, res.output
    assert seen["samplers"] == ["gmm", "normal"] and seen["nll_samples"] == 5 and seen["n_samples"] == 10
    assert seen["data"] is None and seen["progress"] is False and seen["extractor"] == "classifier"
    res = invoke("evaluate", "--model", tmp_path / "m", "--data", "digits", "--limit", "50", "--truncation-psi", "0.5")
    assert res.exit_code == 0, res.output
    assert seen["data"]["name"] == "digits" and seen["data"]["limit"] == 50 and seen["truncation_psi"] == 0.5


def test_train_commands_share_their_options():
    res = invoke("train", "two-stage-vae", "--data", "digits", "--limit", "64", "--epochs", "2", "--latent-dim", "8",
                 "--dry-run")
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["stage1"]["epochs"] == cfg["stage2"]["epochs"] == 2
    assert cfg["model"]["stage1"]["latent_dim"] == cfg["model"]["stage2"]["latent_dim"] == 8
    res = invoke("train", "stylegan2", "--data", "digits", "--resolution", "32", "--epochs", "3", "--dry-run")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["train"]["epochs"] == 3
    for family in ("two-stage-vae", "draw", "sketch-rnn", "stylegan2"):
        res = invoke("train", family, "--help")
        for flag in ("--preset", "--config", "--set", "--seed", "--runs-root", "--resume", "--dry-run"):
            assert flag in res.output, (family, flag)
