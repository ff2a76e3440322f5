"""No traceback reaches a user: every verb, given each bad input, answers with one ``Error: ...`` line (exit 1),
or click's usage message (exit 2) for a malformed option; ``--debug`` / ``LATENTSTUDIO_DEBUG=1`` show the
traceback. Also: a quiet first run (warnings once, as one line), outputs that match their names, and no empty
report folders left by failed evaluations."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from click.testing import CliRunner
from conftest import write_stroke_npz

from latentstudio.cli.main import cli
from latentstudio.errors import CheckpointError, ExtractorWeightsMissing
from latentstudio.models import load_all
from latentstudio.models.registry import MODELS

load_all()
FAMILIES = MODELS.names()
DEPRECATION = "Warning: 'latentstudio generate' is deprecated"


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="latentstudio", env=env)


def assert_one_error(res, code: int = 1) -> str:
    """One ``Error:`` line and no traceback; exit 1, or click's usage message with exit 2."""
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [s for s in res.output.splitlines() if s.strip() and not s.startswith(DEPRECATION)]
    errors = [s for s in lines if s.startswith("Error: ")]
    assert len(errors) == 1, res.output
    if code == 1:
        assert lines == errors, res.output
    else:
        assert lines[0].startswith("Usage: ") and lines[-1] == errors[0], res.output
    return errors[0]


def save_tiny(family: str, folder):
    cls = MODELS.get(family)
    torch.manual_seed(0)
    model = cls(cls.example_config()).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """family -> (intact model folder, model, empty-weights folder, half-weights folder)."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for family in FAMILIES:
        model = save_tiny(family, root / family / "ok")
        weights = (root / family / "ok" / "model.safetensors").read_bytes()
        for cut, name in ((0, "empty"), (len(weights) // 2, "half")):
            save_tiny(family, root / family / name)
            (root / family / name / "model.safetensors").write_bytes(weights[:cut])
        out[family] = (root / family / "ok", model, root / family / "empty", root / family / "half")
    return out


@pytest.fixture(scope="module")
def stroke_file(tmp_path_factory):
    return write_stroke_npz(tmp_path_factory.mktemp("strokes") / "shapes.npz", 40, seed=3, max_points=14,
                            splits=(30, 5))


# ----------------------------------------------------------------------------- truncated weights


def _model_verbs(family: str, model, folder, tmp_path, stroke_file) -> list[list[str]]:
    out = str(tmp_path / ("x.svg" if model.output_kind == "sketches" else "x.png"))
    data = ["--data", stroke_file] if model.output_kind == "sketches" else ["--data", "digits"]
    verbs = [
        ["sample", "--model", folder, "--n", "2", "--out", out],
        ["generate", "--model", folder, "--n", "2", "--out", out],
        ["reconstruct", "--model", folder, *data, "--n", "2", "--out", out],
        ["interpolate", "--model", folder, "--seeds", "0,1", "--out", out],
        ["evaluate", "--model", folder, *data, "--out", tmp_path / "eval"],
    ]
    if family == "stylegan2":
        verbs += [
            ["video", "--model", folder, "--seeds", "0,1", "--frames", "2", "--out", tmp_path / "v.gif"],
            ["generate", "--model", folder, "--seeds", "0,1", "--save-latents", tmp_path / "l.npz"],
            ["directions", "discover", "--model", folder, "--n", "16", "--out", tmp_path / "d.npz"],
            ["edit", "--model", folder, "--seed", "0", "--out", tmp_path / "e.png"],
        ]
    if family == "sketch-rnn":
        verbs += [
            ["complete", "--model", folder, "--data", stroke_file, "--out", tmp_path / "c.svg"],
            ["render", "--model", folder, "--temperatures", "0.5", "--out", tmp_path / "r.svg"],
        ]
    return verbs


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("which", ["empty", "half"])
def test_truncated_weights_are_one_line_for_every_verb(family, which, models, tmp_path, stroke_file):
    _, model, empty, half = models[family]
    folder = empty if which == "empty" else half
    for args in _model_verbs(family, model, folder, tmp_path, stroke_file):
        line = assert_one_error(invoke(*args))
        assert "model.safetensors" in line and ("truncated" in line or "empty" in line), (args, line)
    assert not (tmp_path / "eval").exists()


def test_debug_flag_and_env_show_the_traceback(models):
    _, _, empty, _ = models["vae"]
    res = invoke("--debug", "sample", "--model", empty)
    assert res.exit_code == 1 and isinstance(res.exception, CheckpointError)
    res = invoke("sample", "--model", empty, env={"LATENTSTUDIO_DEBUG": "1"})
    assert res.exit_code == 1 and isinstance(res.exception, CheckpointError)
    assert "--debug" in invoke("--help").output


def test_an_unforeseen_error_is_one_line_naming_debug(models, monkeypatch, tmp_path):
    from latentstudio import api

    def broken(*a, **k):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr(api, "generate", broken)
    ok, _, _, _ = models["vae"]
    line = assert_one_error(invoke("sample", "--model", ok, "--n", "2", "--out-dir", tmp_path / "each"))
    assert "RuntimeError: something inside broke" in line and "--debug" in line


# ----------------------------------------------------------------------------- counts and overrides


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n", ["0", "-3"])
def test_n_below_one_is_a_usage_error(family, n, models, tmp_path):
    ok, _, _, _ = models[family]
    verbs = [["sample", "--model", ok, "--n", n], ["generate", "--model", ok, "--n", n],
             ["reconstruct", "--model", ok, "--n", n]]
    for args in verbs:
        line = assert_one_error(invoke(*args), code=2)
        assert "'--n'" in line and "x>=1" in line


def test_other_counts_are_checked_before_any_work(models, tmp_path):
    ok, _, _, _ = models["vae"]
    for args in (["interpolate", "--model", ok, "--seeds", "0,1", "--steps", "1"],
                 ["evaluate", "--model", ok, "--n-samples", "0"],
                 ["sample", "--model", ok, "--nrow", "0"],
                 ["train", "two-stage-vae", "--epochs", "-1", "--dry-run"],
                 ["train", "draw", "--limit", "0", "--dry-run"],
                 ["quickstart", "--seed", "x"],
                 ["quickstart", "--runs-root", __file__]):
        assert_one_error(invoke(*args), code=2)


@pytest.mark.parametrize("family,key", [("two-stage-vae", "stage1.epochs"), ("draw", "train.epochs"),
                                        ("stylegan2", "train.epochs")])
def test_a_set_value_of_the_wrong_type_names_the_key(family, key):
    line = assert_one_error(invoke("train", family, "--data", "digits", "--set", f"{key}=abc", "--dry-run"), code=2)
    assert f"--set {key}='abc'" in line and "expected an int" in line
    line = assert_one_error(invoke("train", family, "--data", "digits", "--set", "nope.key=1", "--dry-run"), code=2)
    assert "nope" in line


def test_bad_config_files(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    (tmp_path / "l.json").write_text("[1]")
    for name in ("c.json", "l.json"):
        line = assert_one_error(invoke("train", "draw", "--config", tmp_path / name, "--dry-run"), code=2)
        assert name in line


# ----------------------------------------------------------------------------- dry runs without the data


@pytest.mark.parametrize("family", ["two-stage-vae", "draw", "stylegan2"])
def test_dry_run_resolves_without_the_dataset(family, tmp_path):
    res = invoke("train", family, "--data", "mnist", "--data-root", tmp_path / "nowhere", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert '"name": "mnist"' in res.output


@pytest.mark.parametrize("family", ["two-stage-vae", "draw"])
def test_dry_run_names_the_flag_when_only_the_files_tell_the_shape(family, tmp_path):
    line = assert_one_error(invoke("train", family, "--data", "folder", "--dry-run"))
    assert "--data-option path=" in line and "--dry-run" in line
    line = assert_one_error(invoke("train", family, "--data", "folder", "--data-option",
                                   f"path={tmp_path / 'none.zip'}", "--dry-run"))
    assert "none.zip" in line


def test_training_on_missing_data_is_one_line(tmp_path):
    for family in ("two-stage-vae", "draw"):
        line = assert_one_error(invoke("train", family, "--data", "mnist", "--data-root", tmp_path / "nowhere",
                                       "--runs-root", tmp_path / "runs", "--no-progress"))
        assert "--data-root" in line and "--download" in line


# ----------------------------------------------------------------------------- unknown files and extensions


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_output_extension_is_refused_before_sampling(family, models, tmp_path):
    ok, model, _, _ = models[family]
    res = invoke("sample", "--model", ok, "--n", "2", "--out", tmp_path / "x.xyz")
    assert_one_error(res, code=2 if model.output_kind == "sketches" else 1)
    assert "'.xyz'" in res.output and not list(tmp_path.iterdir())


def test_unknown_files(tmp_path, models):
    for name, content in (("w.pkl", b"not a pickle"), ("w.xyz", b"x"), ("w.pt", b"")):
        (tmp_path / name).write_bytes(content)
        line = assert_one_error(invoke("convert", tmp_path / name, "--out", tmp_path / "conv"))
        assert name in line
        line = assert_one_error(invoke("sample", "--model", tmp_path / name))
        assert name in line and "convert" in line
    assert not (tmp_path / "conv").exists()
    for data in ("imagenet", "x.foo"):
        line = assert_one_error(invoke("train", "two-stage-vae", "--data", data, "--dry-run"))
        assert data in line and "digits" in line
    ok, _, _, _ = models["vae"]
    line = assert_one_error(invoke("reconstruct", "--model", ok, "--data", tmp_path / "w.xyz"))
    assert "w.xyz" in line
    empty = tmp_path / "empty-model"
    empty.mkdir()
    assert_one_error(invoke("sample", "--model", empty))
    (empty / "config.json").write_text("{")
    (empty / "model.safetensors").write_bytes(b"")
    line = assert_one_error(invoke("sample", "--model", empty))
    assert "config.json" in line


def test_a_missing_model_path_is_a_usage_error(tmp_path):
    for verb in ("sample", "reconstruct", "interpolate", "evaluate", "generate"):
        assert_one_error(invoke(verb, "--model", tmp_path / "nothing"), code=2)
    assert_one_error(invoke("convert", tmp_path / "nothing.pkl", "--out", tmp_path / "o"), code=2)


def test_quickstart_help_and_bad_flags():
    res = invoke("quickstart", "--help")
    assert res.exit_code == 0 and "2 CPU cores" in " ".join(res.output.split())
    assert_one_error(invoke("quickstart", "--nope"), code=2)


# ----------------------------------------------------------------------------- outputs that match their names


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_out_jpg_writes_jpeg_or_refuses_before_sampling(family, models, tmp_path, monkeypatch):
    ok, model, _, _ = models[family]
    target = tmp_path / "x.jpg"
    res = invoke("sample", "--model", ok, "--n", "2", "--out", target)
    if model.output_kind == "sketches":
        assert_one_error(res, code=2)
        assert ".jpg" in res.output and not target.exists()
        return
    assert res.exit_code == 0, res.output
    assert target.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG's start-of-image marker


def test_generate_and_sample_name_files_alike(models, tmp_path):
    ok, _, _, _ = models["stylegan2"]
    for verb in ("sample", "generate"):
        res = invoke(verb, "--model", ok, "--seeds", "3-4", "--out-dir", tmp_path / verb)
        assert res.exit_code == 0, res.output
    res = invoke("generate", "--model", ok, "--seeds", "3-4", "--out-dir", tmp_path / "latents",
                 "--save-latents", tmp_path / "l.npz")
    assert res.exit_code == 0, res.output
    names = [sorted(p.name for p in (tmp_path / v).iterdir()) for v in ("sample", "generate", "latents")]
    assert names == [["000000.png", "000001.png"]] * 3


def test_kid_spread_is_shown_only_when_meaningful():
    from latentstudio.evaluation.report import fmt_value

    assert fmt_value({"value": 0.0123, "std": 1e-14}) == "0.0123"
    assert fmt_value({"value": 0.0, "std": 1e-15}) == "0"
    assert fmt_value({"value": 0.0123, "std": None}) == "0.0123"
    assert fmt_value({"value": 0.0123, "std": 0.002}) == "0.0123 ± 0.002"
    assert fmt_value({"value": 5.2, "std": 0.1}) == "5.2 ± 0.1"


def test_a_failed_evaluation_leaves_no_empty_report_folder(models, tmp_path, monkeypatch):
    from latentstudio import evaluation
    from latentstudio.evaluation.common import report_dir

    ok, _, _, _ = models["vae"]
    real = evaluation.EVALUATORS.get("vae")

    def failing(model, data, *, out_dir, **kw):
        report_dir(model, out_dir, "digits-inception")
        raise ExtractorWeightsMissing("FID Inception-v3 weights not found")

    monkeypatch.setattr(evaluation.EVALUATORS, "get", lambda name: type(real)(**{**real.__dict__, "run": failing}))
    assert_one_error(invoke("evaluate", "--model", ok))
    assert not (ok.parent / "eval").exists()
    assert_one_error(invoke("evaluate", "--model", ok, "--out", tmp_path / "report"))
    assert not (tmp_path / "report").exists()
    (tmp_path / "kept").mkdir()
    assert_one_error(invoke("evaluate", "--model", ok, "--out", tmp_path / "kept"))
    assert (tmp_path / "kept").is_dir()


# ----------------------------------------------------------------------------- a quiet first run


def test_warnings_are_one_line_once(models, monkeypatch, tmp_path):
    from latentstudio import api
    from latentstudio.metrics import BiasedMetricWarning

    real = api.generate

    def noisy(*a, **k):
        for _ in range(3):
            warnings.warn("FID computed on 2 real and 2 generated samples (< 2048): biased\nsecond line",
                          BiasedMetricWarning, stacklevel=1)
        return real(*a, **k)

    monkeypatch.setattr(api, "generate", noisy)
    ok, _, _, _ = models["vae"]
    res = invoke("sample", "--model", ok, "--n", "2", "--out-dir", tmp_path / "each")
    assert res.exit_code == 0, res.output
    warned = [s for s in res.output.splitlines() if "FID computed" in s]
    assert warned == ["Warning: FID computed on 2 real and 2 generated samples (< 2048): biased"], res.output
    assert "warnings.warn" not in res.output and "second line" not in res.output


def test_lightning_noise_is_filtered_and_the_progress_bar_has_no_version():
    from types import SimpleNamespace

    from latentstudio.training.runs import lightning, progress_bar

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lightning()
        warnings.warn("The number of training batches (3) is smaller than the logging interval "
                      "Trainer(log_every_n_steps=10). Set a lower value for log_every_n_steps", UserWarning)
        warnings.warn("Experiment logs directory x exists and is not empty. Previous log files in this directory "
                      "will be deleted when the new ones are saved!", UserWarning)
        warnings.warn("something a user can act on", UserWarning)
    assert [str(w.message) for w in caught] == ["something a user can act on"]
    trainer = SimpleNamespace(loggers=[SimpleNamespace(version="csv")], progress_bar_metrics={"loss": 1.0})
    assert progress_bar().get_metrics(trainer, None) == {"loss": 1.0}


def test_dry_run_output_is_json_only(tmp_path):
    res = CliRunner().invoke(cli, ["train", "draw", "--data", "digits", "--dry-run"])
    assert res.exit_code == 0 and json.loads(res.stdout)["data"]["name"] == "digits"
