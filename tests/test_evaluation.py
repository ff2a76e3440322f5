"""End to end on real digits: a conditional two-stage VAE, its samples per class, the evaluation report."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_run_spec

from latentstudio import api
from latentstudio.data import load_images
from latentstudio.evaluation import evaluate
from latentstudio.metrics import get_classifier, read_records


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    spec = tiny_run_spec(20, 20)
    spec["data"] = {"name": "digits"}
    # gamma starts at 1 (the paper's init): the strong KL keeps class identity out of z, so the
    # decoder must read the label (with gamma_init 0.3, z carries the digit and 25% of samples
    # ignore the requested class at this budget)
    spec["model"]["stage1"].update(condition="class", latent_dim=8, base_dim=8, fc_dim=64)
    root = tmp_path_factory.mktemp("runs")
    return api.train("two-stage-vae", spec, runs_root=root, progress=False)


def test_conditional_samples_are_classified_as_requested(conditional_run):
    train, test = load_images("digits", "train"), load_images("digits", "test")
    clf = get_classifier(train, test=test, progress=False)
    assert clf.test_accuracy >= 0.95
    loaded = api.load(conditional_run.model_dir)
    # 100 samples a digit: at 20 a single odd sample moves a digit's rate by 0.05, and a machine
    # with other floating-point kernels trains a slightly different model
    labels = torch.arange(10).repeat_interleave(100)
    for sampler in ("normal", "gmm", "second-stage"):  # the GMM has one mixture per class
        images = api.generate(loaded, len(labels), sampler=sampler, seed=1, condition=labels.tolist())
        pred = clf.predict(images)
        per_digit = [(pred[labels == d] == d).float().mean().item() for d in range(10)]
        assert min(per_digit) >= 0.9, (sampler, per_digit)
    # one class for the whole batch via an int condition
    sevens = api.generate(loaded, 20, sampler="gmm", seed=2, condition=7)
    assert (clf.predict(sevens) == 7).float().mean() >= 0.9


def test_evaluation_writes_stamped_records_and_a_complete_report(conditional_run, tmp_path):
    report = evaluate(conditional_run.model_dir, {"name": "digits"}, extractor="classifier", n_samples=200,
                      out_dir=tmp_path / "eval", progress=False, seed=0)
    rows = read_records(report.parent)
    by = {(r["metric"], r["source"]): r for r in rows}
    for sampler in ("normal", "gmm", "second-stage", "reconstruction"):
        r = by[("fid_clf", sampler)]
        assert r["extractor"] == "classifier" and r["weights_hash"] and r["resize_rule"]
        assert r["num_real"] == 360 and r["reference"] == "digits/test"
        assert r["num_generated"] == (360 if sampler == "reconstruction" else 200)
        assert ("kid_clf", sampler) in by and ("is_clf", sampler) in by
    for sampler in ("normal", "gmm", "second-stage"):
        assert by[("classifier_accuracy", sampler)]["value"] >= 0.8
    assert not any(r["metric"] == "fid" for r in rows)  # classifier values never named as Inception FID
    text = report.read_text()
    for r in rows:  # every value appears in the report
        if r["metric"] not in ("classifier_accuracy",):
            v = r["value"]
            assert (f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}") in text, r["metric"]
    for png in ("samples-normal.png", "samples-gmm.png", "samples-second-stage.png", "reconstructions.png"):
        assert (report.parent / png).is_file() and f"]({png})" in text
    assert "not comparable" in text
    inactive = by[("inactive_latents", "train latents")]
    assert 0 <= inactive["value"] <= 8 and inactive["latent_dim"] == 8
    json.dumps(rows)  # valid JSON throughout


def test_bernoulli_model_reports_importance_sampled_nll(tmp_path):
    spec = tiny_run_spec(1, 1)
    spec["data"] = {"name": "digits", "limit": 128}
    spec["model"]["stage1"]["decoder"] = "bernoulli"
    res = api.train("two-stage-vae", spec, runs_root=tmp_path, progress=False)
    report = evaluate(res.model_dir, {"name": "digits"}, n_samples=64, samplers=["normal"],
                      out_dir=tmp_path / "eval", progress=False, nll_samples=8, nll_images=32)
    nll = read_records(report.parent, "nll")
    assert len(nll) == 1 and nll[0]["unit"] == "nats"
    # an upper bound of -log p(x) for 1024 binary pixels: positive and below 1024 * log 2 * a few
    assert 0 < nll[0]["value"] < 1024 * 0.6931 * 4


def test_evaluate_dispatches_by_family_and_names_its_options():
    from latentstudio.errors import ConfigError
    from latentstudio.evaluation import EVALUATORS
    from latentstudio.models.draw import DRAW, DRAWConfig

    assert set(EVALUATORS.names()) == {"draw", "sketch-rnn", "stylegan2", "two-stage-vae", "vae"}
    model = DRAW(DRAWConfig(steps=2, latent_dim=2, enc_dim=8, dec_dim=8, attention=False))
    with pytest.raises(ConfigError, match="draw evaluation has no option 'samplers'; its options: temperature, "
                                          "nll_samples, nll_images"):
        evaluate(model, samplers=["gmm"])
    with pytest.raises(ConfigError, match="nll_samples=.*expected an int"):
        evaluate(model, nll_samples="many")
    with pytest.raises(ConfigError, match="extractor must be one of classifier, inception"):
        evaluate(model, extractor="vgg")
