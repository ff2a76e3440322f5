"""Studies of thesis 002 (fid-repeats, fid-shuffle, training-subsets, samplers): pure helpers, end-to-end
runs on a tiny synthetic dataset, resumption after a simulated interruption, report completeness, CLI."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from latentstudio.data.base import ImageData
from latentstudio.errors import ConfigError
from latentstudio.studies import common as C
from latentstudio.studies.fid_repeats import (
    default_sizes,
    repeat_to,
    repeated_set,
    run_fid_repeats,
    uniform_noise,
)
from latentstudio.studies.fid_shuffle import (
    run_fid_shuffle,
    shuffle_tiles,
    shuffled_fraction,
    tile_grid,
    tile_layout,
)

# ------------------------------------------------------------------------------------------------
# tiny synthetic dataset: 4 classes, a bright 6x6 square in one quadrant of a noisy 16x16 image


def _synthetic(n: int, seed: int, split: str) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    x = torch.randint(0, 60, (n, 1, 16, 16), generator=g).float()
    for i, c in enumerate(labels.tolist()):
        top, left = (c // 2) * 8 + 1, (c % 2) * 8 + 1
        x[i, :, top : top + 6, left : left + 6] += 150 + 40 * torch.rand(1, generator=g)
    return ImageData(images=x.clamp(0, 255).to(torch.uint8), labels=labels, class_names=list("abcd"),
                     name="synthetic", split=split, source="test")


@pytest.fixture(scope="module")
def tiny():
    return C.load_study_data({"name": "synthetic"}, train=_synthetic(96, 0, "train"), test=_synthetic(48, 1, "test"))


class Interrupt(Exception):
    """Stands for Ctrl-C / a killed process in the middle of a study."""


def _interrupt_after(monkeypatch, module, attr: str, n_ok: int) -> dict:
    """Make ``module.attr`` raise Interrupt on call number n_ok + 1; returns the call counter."""
    real = getattr(module, attr)
    calls = {"n": 0, "limit": n_ok}

    def wrapped(*a, **kw):
        calls["n"] += 1
        if calls["limit"] is not None and calls["n"] > calls["limit"]:
            raise Interrupt
        return real(*a, **kw)

    monkeypatch.setattr(module, attr, wrapped)
    return calls


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------
# pure helpers


def test_tile_grid_and_layout_rule():
    assert [tile_grid(k) for k in (1, 2, 4, 8, 16, 64, 256, 1024, 7)] == [
        (1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (8, 8), (16, 16), (32, 32), (1, 7)]
    assert tile_layout(32, 32, 1024) == {"rows": 32, "cols": 32, "tile_h": 1, "tile_w": 1, "top": 0, "left": 0}
    # 28 px into 8 rows of 3 px: 24 px tiled, centred with a 2 px border above
    assert tile_layout(28, 28, 64) == {"rows": 8, "cols": 8, "tile_h": 3, "tile_w": 3, "top": 2, "left": 2}
    assert shuffled_fraction(28, 28, 64) == pytest.approx(24 * 24 / 28**2)
    with pytest.raises(ConfigError, match="do not fit a 28x28 image"):
        tile_layout(28, 28, 1024)


@pytest.mark.parametrize("k", [2, 4, 7, 16, 64, 256])
def test_tile_shuffle_is_a_permutation_of_each_image(k):
    g = torch.Generator().manual_seed(k)
    x = torch.randint(0, 256, (6, 3, 28, 30), generator=g, dtype=torch.uint8)
    y = shuffle_tiles(x, k, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == torch.uint8
    for a, b in zip(x, y, strict=True):  # same multiset of pixel values, image by image and channel by channel
        assert torch.equal(a.flatten(1).sort(dim=1).values, b.flatten(1).sort(dim=1).values)
    lay = tile_layout(28, 30, k)
    inside = torch.zeros(28, 30, dtype=torch.bool)
    inside[lay["top"] : lay["top"] + lay["rows"] * lay["tile_h"], lay["left"] : lay["left"] + lay["cols"] * lay["tile_w"]] = True
    assert torch.equal(y[..., ~inside], x[..., ~inside])  # the border outside the tiled area stays in place
    assert not torch.equal(y, x)  # something moved


def test_tile_shuffle_moves_whole_tiles():
    # 4 tiles of constant value: every output tile is one input tile, and together they are all four
    x = torch.zeros(50, 1, 8, 8, dtype=torch.uint8)
    for t, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x[:, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = 10 * (t + 1)
    y = shuffle_tiles(x, 4, torch.Generator().manual_seed(0))
    tiles = y.reshape(50, 2, 4, 2, 4).permute(0, 1, 3, 2, 4).reshape(50, 4, 16)
    assert (tiles == tiles[..., :1]).all()  # constant inside each output tile
    assert torch.equal(tiles[..., 0].sort(dim=1).values, torch.tensor([10, 20, 30, 40]).expand(50, 4).to(torch.uint8))
    assert len({tuple(t.tolist()) for t in tiles[..., 0]}) > 5  # images get their own permutations
    assert torch.equal(shuffle_tiles(x, 1), x)


def test_repeated_sets_have_exactly_n_distinct_images():
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    for n in default_sizes(700):
        idx = repeated_set(perm, n, 700)
        assert idx.shape == (700,)
        assert torch.unique(idx).numel() == n
        assert set(idx.tolist()) == set(perm[:n].tolist())
        counts = torch.bincount(idx, minlength=1000)[perm[:n]]
        assert counts.max() - counts.min() <= 1 and counts.sum() == 700  # repeated as evenly as possible
    assert torch.equal(repeat_to(torch.tensor([4, 7, 9]), 7), torch.tensor([4, 7, 9, 4, 7, 9, 4]))
    with pytest.raises(ConfigError):
        repeated_set(perm, 1001, 10)


def test_default_sizes_follow_the_seed():
    assert default_sizes(10000) == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10000]
    assert default_sizes(64) == [10, 20, 40, 64]
    assert default_sizes(10) == [10]


def test_uniform_noise_covers_the_byte_range():
    z = uniform_noise(200, (1, 8, 8), seed=3)
    assert z.dtype == torch.uint8 and z.shape == (200, 1, 8, 8)
    assert int(z.min()) == 0 and int(z.max()) == 255
    assert abs(z.float().mean().item() - 127.5) < 2.0
    assert torch.equal(z, uniform_noise(200, (1, 8, 8), seed=3))


def test_budget_parsing_and_stage_split():
    assert C.parse_budget("5ep") == C.Budget(epochs=5)
    assert C.parse_budget("10min") == C.Budget(minutes=10.0)
    b = C.parse_budget("5ep,10min")
    assert (b.epochs, b.minutes, str(b)) == (5, 10.0, "5ep,10min")
    s1, s2 = b.stage_configs()
    assert s1 == {"epochs": 5, "max_minutes": 8.0} and s2 == {"epochs": 10, "max_minutes": 2.0}
    assert b.stage_configs(epoch_ratio=10)[1]["epochs"] == 50
    s1, s2 = C.parse_budget("3min").stage_configs(C.parse_budget("4ep"))
    assert s1["max_minutes"] == 3.0 and s1["epochs"] >= 10**6 and s2 == {"epochs": 4, "max_minutes": None}
    for bad in ("5", "five epochs", "2.5ep", "0ep", "ep"):
        with pytest.raises(ConfigError, match="budget"):
            C.parse_budget(bad)


def test_mean_var_and_monotonic():
    m, var, std = C.mean_var([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and var == pytest.approx(5 / 3) and std == pytest.approx(math.sqrt(5 / 3))
    assert C.mean_var([2.0])[1:] == (None, None)
    assert C.is_monotonic([3, 2, 1], increasing=False) == (True, [])
    assert C.is_monotonic([1, 3, 2, 4], increasing=True) == (False, [1])


def test_select_subsets_takes_the_lowest_scores():
    from latentstudio.studies.training_subsets import select_subsets

    rec = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.5])
    md = torch.tensor([0.1, 9.0, 0.2, 8.0, 7.0, 0.3])
    sub = select_subsets({"recon_error": rec, "mahalanobis": md}, 6, 3, seed=0)
    assert sub["low-recon"].tolist() == [1, 3, 5]
    assert sub["low-mahalanobis"].tolist() == [0, 2, 5]
    assert sub["half"].numel() == 3 and torch.unique(sub["half"]).numel() == 3
    with pytest.raises(ConfigError):
        select_subsets({"recon_error": rec, "mahalanobis": md}, 6, 7, seed=0)


def test_budget_errors_for_extractors(tiny):
    with pytest.raises(ConfigError, match="whole number of epochs"):
        C.build_study_extractor("classifier", tiny, budget=C.parse_budget("5min"))
    with pytest.raises(ConfigError, match="drop --budget"):
        C.build_study_extractor("inception", tiny, budget=C.parse_budget("2ep"))
    from latentstudio.errors import ExtractorWeightsMissing

    with pytest.raises(ExtractorWeightsMissing, match="classifier"):  # no weights here: the message offers the way out
        C.build_study_extractor("inception", tiny)


# ------------------------------------------------------------------------------------------------
# end to end with resumption


def test_fid_repeats_runs_resumes_and_reports_every_cell(tiny, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    kw = {"data": tiny, "repeats": 3, "sanity_size": 16, "budget": "8ep", "progress": False, "command": "latentstudio x"}
    calls = _interrupt_after(monkeypatch, C, "fid", 5)
    with pytest.raises(Interrupt):
        run_fid_repeats(out, **kw)
    assert len(_records(out)) == 5
    assert "not yet known" in (out / "report.md").read_text()  # a partial report was written on the way out
    calls.update(n=0, limit=None)
    report = run_fid_repeats(out, **kw)
    recs = _records(out)
    sizes = sorted({r["n"] for r in recs if "n" in r})
    assert sizes == [10, 20, 40, 48]  # full = min(96 training, 48 reference images)
    assert calls["n"] == len(sizes) * 3 + 2 - 5  # only the unfinished cells were computed
    assert len(recs) == len(sizes) * 3 + 2 and len({r["cell"] for r in recs}) == len(recs)
    assert all(r["distinct"] == r["n"] and r["set_size"] == 48 for r in recs if "n" in r)
    text = report.read_text()
    for n in sizes:
        vals = [r["fid"] for r in recs if r.get("n") == n]
        mean, var, std = C.mean_var(vals)
        assert re.search(rf"\| {n} \| 3 \| {re.escape(_fmt(mean))} \| {re.escape(_fmt(var))} \| {re.escape(_fmt(std))} \|",
                         text)
    for r in recs:
        if "pair" in r:
            assert _fmt(r["fid"]) in text
    noise = next(r["fid"] for r in recs if r.get("pair") == "noise")
    halves = next(r["fid"] for r in recs if r.get("pair") == "split-halves")
    assert noise > halves  # noise is farther from the test images than other test images
    for must in ("## Where this protocol differs from the seed's", "fingerprint", "weights_hash", "versions:",
                 "latentstudio x", "fid-vs-n.png", "not comparable with Inception"):
        assert must in text
    assert (out / "fid-vs-n.png").is_file()
    # a finished study re-renders its report from results.jsonl alone (artifacts are not committed)
    import shutil

    shutil.rmtree(out / "artifacts")
    calls.update(n=0)
    assert run_fid_repeats(out, **kw).read_text() == text and calls["n"] == 0
    # same folder, other protocol: refused
    from latentstudio.errors import RunExistsError

    with pytest.raises(RunExistsError, match="repeats"):
        run_fid_repeats(out, **{**kw, "repeats": 2})


def test_fid_shuffle_runs_resumes_and_reports_every_cell(tiny, tmp_path, monkeypatch):
    out = tmp_path / "shuf"
    kw = {"data": tiny, "tiles": [1, 2, 4, 16, 64], "repeats": 2, "budget": "8ep", "progress": False}
    calls = _interrupt_after(monkeypatch, C, "fid", 3)
    with pytest.raises(Interrupt):
        run_fid_shuffle(out, **kw)
    calls.update(n=0, limit=None)
    report = run_fid_shuffle(out, **kw)
    assert calls["n"] == 5 * 2 - 3
    recs = _records(out)
    assert sorted((r["k"], r["rep"]) for r in recs) == [(k, r) for k in (1, 2, 4, 16, 64) for r in range(2)]
    text = report.read_text()
    for k in (1, 2, 4, 16, 64):
        mean, var, std = C.mean_var([r["fid"] for r in recs if r["k"] == k])
        label = "1 (no shuffle)" if k == 1 else str(k)
        assert re.search(rf"\| {re.escape(label)} \| [^|]+ \| [^|]+ \| 1.000 \| 2 \| {re.escape(_fmt(mean))} \| "
                         rf"{re.escape(_fmt(var))} \| {re.escape(_fmt(std))} \|", text), k
    assert "shuffle-examples.png" in text and (out / "shuffle-examples.png").is_file()
    assert "Monotonically rising with k" in text


def _tiny_model_overrides():
    return {"model.stage1.latent_dim": 4, "model.stage1.base_dim": 4, "model.stage1.fc_dim": 16,
            "model.stage1.num_scale": 2, "model.stage2.second_dim": 16, "model.stage2.second_depth": 1,
            "stage1.batch_size": 32, "stage2.batch_size": 32, "stage1.grid_every_n_epochs": 0,
            "stage2.grid_every_n_epochs": 0}


def test_training_subsets_runs_resumes_and_reports_every_cell(tiny, tmp_path, monkeypatch):
    from latentstudio.studies import training_subsets as TS
    from latentstudio.studies import twostage as T

    out = tmp_path / "subsets"
    kw = {"data": tiny, "budget": "1ep", "overrides": _tiny_model_overrides(), "extractor_budget": "8ep",
          "n_reference": 32, "progress": False, "accelerator": "cpu"}
    trains = _interrupt_after(monkeypatch, T, "train_or_resume", 2)  # dies while training the third model
    with pytest.raises(Interrupt):
        TS.run_training_subsets(out, **kw)
    done = {r["cell"] for r in _records(out)}
    assert {"train/all", "train/half", "rank", "eval/all/gmm", "eval/half/reconstruction"} <= done
    assert "train/low-recon" not in done
    trains.update(n=0, limit=None)
    report = TS.run_training_subsets(out, **kw)
    assert trains["n"] == 2  # the two finished models were not trained again
    recs = {r["cell"]: r for r in _records(out)}
    assert len(recs) == len(_records(out))
    assert sorted(p.parent.parent.name for p in (out / "models").glob("*/*/model")) == sorted(TS.MODELS)
    assert all(recs[f"train/{k}"]["num_train"] == (96 if k == "all" else 48) for k in TS.MODELS)
    # the low-reconstruction-error half really holds the lowest errors of the all-data model
    scores = __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(out / "artifacts" / "selection-scores.safetensors"))
    sub = TS.select_subsets(scores, 96, 48, 0)
    assert scores["recon_error"][sub["low-recon"]].max() <= scores["recon_error"].sort().values[47]
    text = report.read_text()
    for k, (row, _) in TS.MODELS.items():
        fids = [recs[f"eval/{k}/{s}"]["fid"] for s in ("normal", "gmm", "reconstruction")]
        assert f"| {row} | " + " | ".join(f"{v:.4g}" for v in fids) + " |" in text
        assert f"| {row}-2STG | {'{:.4g}'.format(recs[f'eval/{k}/second-stage']['fid'])} |" in text
        assert "{:.4g}".format(recs[f"eval/{k}/latents"]["variance_law"]) in text
    for must in ("Model: the project's two-stage VAE", "Seed's table 5", "selected-examples.png", "fid-bars.png"):
        assert must in text
    # the committed form of a study (no models/, no artifacts/) still regenerates its report
    import shutil

    shutil.rmtree(out / "models")
    shutil.rmtree(out / "artifacts")
    assert TS.run_training_subsets(out, **kw).read_text() == text and trains["n"] == 2


def test_samplers_study_runs_resumes_and_reports_every_cell(tiny, tmp_path, monkeypatch):
    from latentstudio.studies import samplers as S

    out = tmp_path / "samplers"
    kw = {"data": tiny, "budget": "1ep", "overrides": _tiny_model_overrides(), "extractor_budget": "8ep",
          "gmm_components": [1, 2], "n_reference": 32, "progress": False, "accelerator": "cpu"}
    calls = _interrupt_after(monkeypatch, S, "_sampler_cell", 4)
    with pytest.raises(Interrupt):
        S.run_samplers(out, **kw)
    calls.update(n=0, limit=None)
    report = S.run_samplers(out, **kw)
    variants = S.sampler_grid([1, 2])
    assert len(variants) == 1 + 2 * 2 * 2 + 2 + 1  # N(0, I), GMMs (k x cov x fit), KDE (scott, cv), second stage
    assert calls["n"] == len(variants) - 4
    recs = {r["cell"]: r for r in _records(out)}
    assert recs["train"]["stage_seconds"] is not None
    text = report.read_text()
    for v in variants:
        r = recs[v["key"]]
        assert "{:.4g}".format(r["fid"]) in text
        if v["kind"] == "gmm":
            assert r["fit_seconds"] > 0 and math.isfinite(r["ref_log_density"])
            cells = f"| GMM | {v['k']} | {v['covariance']} | {v['fit_on']} | {'{:.4g}'.format(r['fid'])} |"
            assert cells in text
        if v["kind"] == "kde":
            assert r["bandwidth_h"] > 0 and math.isfinite(r["ref_log_density"]) and r["grid"]
            assert f"| KDE |  | bandwidth {v['bandwidth']} (h = {r['bandwidth_h']:.3g}) | mean |" in text
    assert ("cv_scores" in recs["kde/bw=cv/fit=mean"]) and ("cv_scores" not in recs["kde/bw=scott/fit=mean"])
    assert "fid-samplers.png" in text and "## Expected orderings" in text and "every GMM < N(0, I)" in text


def test_samplers_study_orderings_and_grid_options():
    from latentstudio.studies import samplers as S

    keys = [v["key"] for v in S.sampler_grid([1, 10, 50], covariances=("full",), kde_bandwidths=("scott",))]
    assert keys == ["normal", "gmm/k=1/cov=full/fit=mean", "gmm/k=1/cov=full/fit=sample", "gmm/k=10/cov=full/fit=mean",
                    "gmm/k=10/cov=full/fit=sample", "gmm/k=50/cov=full/fit=mean", "gmm/k=50/cov=full/fit=sample",
                    "kde/bw=scott/fit=mean", "second-stage"]
    assert S.DEFAULT_GMM_K == (1, 10, 50)
    fids = {"normal": 30.0, "gmm/k=10/cov=full/fit=mean": 15.0, "gmm/k=1/cov=full/fit=mean": 29.0,
            "kde/bw=scott/fit=mean": 12.0, "second-stage": 24.0, "reconstruction": 10.0}
    assert S.orderings(fids) == {"second_stage_le_0.8_normal": True, "every_gmm_lt_normal": True,
                                 "gmm10_mu_lt_normal": True, "reconstruction_lowest": True}
    fids.update({"second-stage": 24.1, "gmm/k=1/cov=full/fit=sample": 31.0, "reconstruction": 12.0})
    assert S.orderings(fids) == {"second_stage_le_0.8_normal": False, "every_gmm_lt_normal": False,
                                 "gmm10_mu_lt_normal": True, "reconstruction_lowest": False}
    assert S.orderings({"normal": 1.0})["reconstruction_lowest"] is None
    for bad in ({"gmm_covariances": ["spherical"]}, {"kde_bandwidths": ["wide"]}):
        with pytest.raises(ConfigError):
            S.run_samplers("unused", data=object(), **bad)


def test_kde_sampler_rules_density_sampling_and_state():
    import numpy as np

    from latentstudio.models.distributions import DiagonalGaussian
    from latentstudio.samplers import SAMPLERS, KDESampler
    from latentstudio.samplers.kde import CV_GRID, kde_log_density

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([0.0, 2.0, -1.0])
    scott = KDESampler(3).fit(x)
    assert scott.bandwidth_ == pytest.approx(400 ** (-1 / 7))
    silverman = KDESampler(3, bandwidth="silverman").fit(x)
    assert silverman.bandwidth_ == pytest.approx((400 * 5 / 4) ** (-1 / 7))
    # exact log-density: brute force over the standardised centres, Jacobian of the standardisation included
    q = x[:5] + 0.05
    u, c = (q - scott.loc) / scott.scale, (x - scott.loc) / scott.scale
    h = scott.bandwidth_
    d2 = ((u[:, None, :] - c[None]) ** 2).sum(-1).double()
    brute = (torch.logsumexp(-d2 / (2 * h * h), 1) - math.log(400) - 1.5 * math.log(2 * math.pi * h * h)
             - scott.scale.double().log().sum())
    assert torch.allclose(scott.log_prob(q).double(), brute, atol=1e-4)
    assert kde_log_density(u, c, h).shape == (5,)
    # samples: seeded, in the data's scale, round trip through the stored state
    a = scott.sample(2000, torch.Generator().manual_seed(1))
    assert torch.equal(a, scott.sample(2000, torch.Generator().manual_seed(1)))
    assert a.shape == (2000, 3) and np.allclose(a.std(0).numpy(), x.std(0).numpy() * math.sqrt(1 + h * h), rtol=0.15)
    again = SAMPLERS.get("kde").from_state(scott.config_dict(), scott.state_dict())
    assert again.bandwidth_ == scott.bandwidth_
    assert torch.equal(again.sample(50, torch.Generator().manual_seed(3)), scott.sample(50, torch.Generator().manual_seed(3)))
    # cross-validated bandwidth: the grid's best held-out likelihood, smaller than Scott's on clustered latents
    blobs = torch.cat([torch.randn(100, 3, generator=g) * 0.05 + m for m in (-3.0, 0.0, 3.0)])
    cv = KDESampler(3, bandwidth="cv", seed=0).fit(blobs)
    assert len(cv.cv_scores) == len(CV_GRID) and cv.bandwidth_ == max(cv.cv_scores, key=cv.cv_scores.get)
    assert cv.bandwidth_ < KDESampler(3).fit(blobs).bandwidth_
    # fit on sampled z needs a posterior; bad rules are refused
    post = DiagonalGaussian(x, torch.full_like(x, -4.0))
    assert KDESampler(3, fit_on="sample").fit(post, torch.Generator().manual_seed(0)).points.shape == (400, 3)
    with pytest.raises(ConfigError):
        KDESampler(3, fit_on="sample").fit(x)
    with pytest.raises(ConfigError):
        KDESampler(3, bandwidth="wide")
    with pytest.raises(ConfigError):
        KDESampler(3, bandwidth=0.0)


# ------------------------------------------------------------------------------------------------
# command line


def test_cli_fid_repeats_on_digits_writes_report_with_its_command(tmp_path):
    from click.testing import CliRunner

    from latentstudio.cli.main import cli

    out = tmp_path / "r"
    args = ["study", "fid-repeats", "--data", "digits", "--limit", "60", "--sizes", "10,20", "--repeats", "2",
            "--sanity-size", "10", "--budget", "1ep", "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(cli, args, prog_name="latentstudio")
    assert res.exit_code == 0, res.output
    text = (out / "report.md").read_text()
    assert (f"latentstudio study fid-repeats --data digits --limit 60 --sizes 10,20 --repeats 2 --sanity-size 10 "
            f"--budget 1ep --out {out} --no-progress") in text
    res = CliRunner().invoke(cli, [*args[:-1], "--repeats", "3"], prog_name="latentstudio")
    assert res.exit_code == 1 and "--overwrite" in res.output  # another protocol in the same folder
    res = CliRunner().invoke(cli, ["study", "fid-shuffle", "--data", "digits", "--budget", "5min",
                                   "--out", str(tmp_path / "s")], prog_name="latentstudio")
    assert res.exit_code == 1 and "whole number of epochs" in res.output
