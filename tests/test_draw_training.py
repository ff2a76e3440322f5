"""DRAW runs on real digits: conditional samples of the requested class, run layout, resume, NaN safety,
the sample / evaluate / train commands and the resumable timesteps study."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from latentstudio import api
from latentstudio.cli.main import cli
from latentstudio.data import load_images
from latentstudio.data.base import ImageData
from latentstudio.errors import ConfigError
from latentstudio.metrics import get_classifier, read_records


@pytest.fixture(autouse=True)
def _one_thread():
    """DRAW's many small recurrent ops run fastest on one thread (and do not stall on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_spec(epochs: int = 1, **model) -> dict:
    return {
        "model": {"steps": 3, "latent_dim": 2, "enc_dim": 16, "dec_dim": 16, "attention": True, "read_n": 3,
                  "write_n": 4, **model},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 3e-3, "log_every_n_steps": 2},
    }


@pytest.fixture(scope="module")
def small_digits(digits_u8):
    images, labels = digits_u8
    return ImageData(images[:128], labels[:128], name="digits", class_names=[str(i) for i in range(10)])


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """Class-conditional DRAW (no attention, T = 4) trained on the 1,437 real training digits."""
    torch.set_num_threads(1)
    spec = {
        "data": {"name": "digits"},
        "model": {"steps": 4, "latent_dim": 4, "enc_dim": 64, "dec_dim": 64, "attention": False,
                  "condition": "class"},
        "train": {"epochs": 12, "batch_size": 32, "lr": 3e-3, "grad_clip": 10.0, "grid_every_n_epochs": 6},
    }
    return api.train("draw", spec, runs_root=tmp_path_factory.mktemp("runs"), progress=False)


@pytest.fixture(scope="module")
def digits_classifier():
    torch.set_num_threads(1)
    return get_classifier(load_images("digits", "train"), test=load_images("digits", "test"), progress=False)


def test_conditional_samples_are_classified_as_the_requested_class(conditional_run, digits_classifier):
    assert digits_classifier.test_accuracy >= 0.95
    loaded = api.load(conditional_run.model_dir)
    labels = torch.arange(10).repeat_interleave(100)  # 100 a digit: one odd sample moves a rate by 0.01
    images = api.generate(loaded, n=len(labels), seed=1, condition=labels.tolist())
    pred = digits_classifier.predict(images)
    per_digit = [(pred[labels == d] == d).float().mean().item() for d in range(10)]
    assert min(per_digit) >= 0.9, per_digit  # every digit


def test_run_directory_layout(conditional_run):
    run = conditional_run.run_dir
    assert run.name == "00000-draw-digits"
    cfg = json.loads((run / "run.json").read_text())
    assert cfg["kind"] == "draw" and cfg["config"]["model"]["cond_dim"] == 10
    assert cfg["config"]["model"]["image_size"] == 32
    assert (run / "train" / "checkpoints" / "last.ckpt").is_file()
    for kind in ("samples", "recon"):
        assert sorted(p.name for p in (run / "train" / kind).iterdir()) == ["epoch-0006.png", "epoch-0012.png"]
    header = (run / "train" / "logs" / "csv" / "metrics.csv").read_text().splitlines()[0]
    for term in ("train/kl_epoch", "train/nll_epoch", "train/kl_first_epoch", "train/lr"):
        assert term in header
    assert (run / "samples-steps.png").is_file() and (run / "canvas.gif").is_file()
    meta = json.loads((run / "model" / "meta.json").read_text())
    assert meta["optimizer_steps"] == 12 * 45 and meta["binarize"] == "none"


def test_sample_command_writes_grid_steps_and_gif(conditional_run, tmp_path):
    from PIL import Image

    out = tmp_path / "sevens.png"
    res = CliRunner().invoke(cli, ["sample", "--model", str(conditional_run.run_dir), "--n", "10", "--condition", "7",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    for f in ("sevens.png", "sevens-steps.png", "sevens.gif"):
        assert (tmp_path / f).is_file(), f
    with Image.open(tmp_path / "sevens.gif") as im:
        assert im.n_frames == 4
    res = CliRunner().invoke(cli, ["sample", "--model", str(conditional_run.run_dir), "--out", str(out)])
    assert res.exit_code == 1 and "already exists" in res.output
    folder = tmp_path / "each"
    res = CliRunner().invoke(cli, ["sample", "--model", str(conditional_run.run_dir), "--seeds", "0-2",
                                   "--out-dir", str(folder)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "000002.png", "samples-steps.png",
                                                         "samples.gif"]
    res = CliRunner().invoke(cli, ["sample", "--model", str(conditional_run.run_dir), "--condition", "12",
                                   "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "class condition must be in 0..9" in res.output
    res = CliRunner().invoke(cli, ["sample", "--model", str(conditional_run.run_dir), "--sampler", "gmm"])
    assert res.exit_code == 1 and "draw has no sampling option 'sampler'; its options: temperature" in res.output


def test_evaluate_writes_per_step_analysis_and_report(conditional_run, digits_classifier, tmp_path):
    from latentstudio.evaluation import evaluate

    report = evaluate(conditional_run.model_dir, {"name": "digits"}, n_samples=100, out_dir=tmp_path / "eval",
                      progress=False, nll_samples=10, nll_images=50)
    rows = read_records(report.parent)
    by = {r["metric"]: r for r in rows if r["source"] != "reconstruction" or r["metric"].startswith("recon")}
    kl = by["kl"]
    assert kl["unit"] == "nats" and len(kl["per_step"]) == 4
    assert sum(kl["per_step"]) == pytest.approx(kl["value"], abs=1e-3)
    assert len(by["inactive_latents"]["per_step"]) == 4 and 0 <= by["inactive_latents"]["value"] <= 16
    assert len(by["variance_law"]["per_step"]) == 4
    assert by["nll"]["k"] == 10 and by["nll"]["num_generated"] == 50
    assert 0 < by["nll"]["value"] <= by["nelbo"]["value"] + 5
    assert by["classifier_accuracy"]["value"] >= 0.8 and len(by["classifier_accuracy"]["per_class"]) == 10
    assert by["fid_clf"]["extractor"] == "classifier" and not any(r["metric"] == "fid" for r in rows)
    text = report.read_text()
    for f in ("samples.png", "samples-steps.png", "canvas.gif", "reconstructions.png", "per-step.png"):
        assert (report.parent / f).is_file() and f"]({f})" in text
    assert "not comparable" in text and "| 4 |" in text  # the per-step table reaches step T = 4
    # the command line routes DRAW models to this evaluation
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(conditional_run.run_dir), "--samplers", "gmm"])
    assert res.exit_code == 1 and "draw evaluation has no option 'samplers'" in res.output




def test_train_command_dry_run_and_errors(tmp_path):
    res = CliRunner().invoke(cli, ["train", "draw", "--data", "digits", "--dry-run", "--no-attention", "--steps", "5",
                                   "--set", "model.enc_dim=32", "--binarize", "threshold"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["model"]["attention"] is False and cfg["model"]["steps"] == 5 and cfg["model"]["enc_dim"] == 32
    assert cfg["model"]["image_size"] == 32 and cfg["binarize"] == "threshold"
    res = CliRunner().invoke(cli, ["train", "draw", "--data", "digits", "--dry-run", "--read-n", "40"])
    assert res.exit_code == 1 and "read_n: must be in 1..image_size (32)" in res.output
    res = CliRunner().invoke(cli, ["train", "draw", "--data", "digits", "--dry-run", "--set", "model.T=4"])
    assert res.exit_code != 0 and "model.T" in res.output
    res = CliRunner().invoke(cli, ["train", "draw", "--preset", "huge", "--dry-run"])
    assert res.exit_code == 1 and "unknown draw preset 'huge'" in res.output


def test_paper_preset_with_and_without_attention_resolves_to_table_3():
    for flag, attention in (("--attention", True), ("--no-attention", False)):
        res = CliRunner().invoke(cli, ["train", "draw", "--data", "digits", "--preset", "paper", flag, "--max-steps",
                                       "800", "--dry-run"])
        assert res.exit_code == 0, res.output
        cfg = json.loads(res.output)
        m = cfg["model"]
        assert (m["steps"], m["latent_dim"], m["enc_dim"], m["dec_dim"]) == (64, 100, 256, 256)
        assert (m["attention"], m["read_n"], m["write_n"]) == (attention, 2, 5)
        assert cfg["train"]["max_steps"] == 800 and cfg["binarize"] == "threshold"


def test_timesteps_study_writes_one_report_and_resumes(tmp_path, digits_classifier, monkeypatch):
    from latentstudio import evaluation
    from latentstudio.studies import draw_timesteps
    from latentstudio.training import draw as draw_training

    kwargs = {"data_spec": {"name": "digits"}, "steps": [1, 2], "total_latent": 4,
              "model": {"enc_dim": 16, "dec_dim": 16, "attention": False},
              "train": {"epochs": 1, "batch_size": 64}, "n_samples": 50, "nll_samples": 4, "nll_images": 20,
              "progress": False}
    with pytest.raises(ConfigError, match=r"--steps \[3\] do not divide --total-latent 4"):
        draw_timesteps.run_draw_timesteps(tmp_path / "bad", **{**kwargs, "steps": [1, 3]})
    # interrupt the evaluation of the second cell: its training has finished
    real_evaluate = evaluation.evaluate
    calls = {"train": 0, "evaluate": 0}
    real_train = draw_training.train_draw_spec

    def counting_train(*a, **k):
        calls["train"] += 1
        return real_train(*a, **k)

    def failing_evaluate(*a, **k):
        calls["evaluate"] += 1
        if calls["evaluate"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    monkeypatch.setattr(draw_training, "train_draw_spec", counting_train)
    monkeypatch.setattr(evaluation, "evaluate", failing_evaluate)
    out = tmp_path / "study"
    with pytest.raises(KeyboardInterrupt):
        draw_timesteps.run_draw_timesteps(out, **kwargs)
    assert calls == {"train": 2, "evaluate": 2}
    report = draw_timesteps.run_draw_timesteps(out, **kwargs)
    assert calls == {"train": 2, "evaluate": 3}  # T=1 read back; T=2 only evaluated, not retrained
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in recs] == [1, 2] and [r["latent_dim"] for r in recs] == [4, 2]
    for r in recs:
        assert len(r["kl_per_step"]) == r["steps"] and r["nll"] > 0 and r["fid_clf_samples"] > 0
    text = report.read_text()
    for f in ("draw-timesteps.png", "kl-per-step.png", "steps-T001.png", "steps-T002.png"):
        assert (out / f).is_file() and f"]({f})" in text
    draw_timesteps.run_draw_timesteps(out, **kwargs)
    assert calls == {"train": 2, "evaluate": 3}  # a finished study computes nothing
