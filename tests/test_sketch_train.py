"""sketch-rnn training runs (layout, schedule, clipping, resume, NaN safety) and the sketch CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_stroke_npz

from latentstudio.data.strokes import synthetic_sketches

TINY = {"model": {"enc_hidden_size": 8, "dec_hidden_size": 16, "latent_dim": 4, "num_mixture": 2},
        "train": {"batch_size": 16, "max_steps": 10, "eval_every_n_steps": 5, "log_every_n_steps": 2},
        "threads": 1}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    return write_stroke_npz(tmp_path_factory.mktemp("strokes") / "shapes.npz")


def _cfg(path, **train):
    from latentstudio.presets import merge
    from latentstudio.training.sketch_rnn import build_run_config

    return build_run_config(merge(TINY, {"data": {"path": str(path)}, "train": train}), "tiny")


def test_schedule_values():
    from latentstudio.training.sketch_rnn import SketchTrainConfig, lr_at

    t = SketchTrainConfig()
    assert (t.batch_size, t.lr, t.lr_decay, t.min_lr, t.grad_clip) == (100, 1e-3, 0.9999, 1e-5, 1.0)
    assert lr_at(t, 0) == pytest.approx(1e-3)
    assert lr_at(t, 1000) == pytest.approx((1e-3 - 1e-5) * 0.9999**1000 + 1e-5)
    assert lr_at(t, 10**7) == pytest.approx(1e-5)


def test_run_layout_clipping_export(tiny_npz, tmp_path):
    import lightning as L

    from latentstudio.io.checkpoint import read_meta
    from latentstudio.models.loading import load_model
    from latentstudio.training.sketch_rnn import train_sketch_rnn

    seen = {}

    class Spy(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["clip"] = (trainer.gradient_clip_val, str(trainer.gradient_clip_algorithm))
            seen["lr0"] = trainer.optimizers[0].param_groups[0]["lr"]

        def on_train_end(self, trainer, pl_module):
            seen["lr_end"] = trainer.optimizers[0].param_groups[0]["lr"]

    res = train_sketch_rnn(_cfg(tiny_npz), runs_root=tmp_path / "runs", progress=False, callbacks=[Spy()])
    assert res.steps == 10 and res.run_dir.name.endswith("-sketch-rnn-shapes")
    assert seen["clip"][0] == 1.0 and "value" in seen["clip"][1].lower()
    assert seen["lr0"] == pytest.approx(1e-3) and seen["lr_end"] == pytest.approx((1e-3 - 1e-5) * 0.9999**10 + 1e-5)
    train = res.run_dir / "train"
    assert (res.run_dir / "run.json").is_file() and (train / "checkpoints" / "last.ckpt").is_file()
    rows = [json.loads(s) for s in (train / "eval.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows] == [(s, p) for s in (0, 5, 10) for p in ("valid", "test")]
    assert all(np.isfinite(r["recon"]) and r["recon"] == pytest.approx(r["l_s"] + r["l_p"], rel=1e-5) for r in rows)
    assert (train / "samples" / "step-0000010.svg").is_file() and (train / "samples" / "step-0000005.png").is_file()
    meta = read_meta(res.model_dir)
    model = load_model(res.model_dir)
    assert float(model.scale_factor) == pytest.approx(meta["scale_factor"]) and meta["scale_factor"] > 1
    assert meta["steps"] == 10 and meta["test"]["n"] == 10 and set(meta["test"]) >= {"recon", "kl", "ref_recon", "ref_kl"}
    # Nmax was not set: it is the data's longest sketch, saved in run.json and with the model
    longest = meta["dataset"]["nmax"]
    assert 8 <= longest <= 30 and model.config.max_seq_len == longest
    assert json.loads((res.run_dir / "run.json").read_text())["config"]["model"]["max_seq_len"] == longest
    assert meta["dataset"]["dropped_longer_than_nmax"] == {"train": 0, "valid": 0, "test": 0}


def test_user_nmax_drops_are_reported_and_limited(tiny_npz, capsys):
    from latentstudio.config import apply_overrides
    from latentstudio.errors import DataError
    from latentstudio.models.sketch_rnn import SketchRNNConfig
    from latentstudio.training.sketch_rnn import DROP_LIMIT, SketchRNNRunConfig, load_run_data, resolve_nmax

    cfg = _cfg(tiny_npz)
    splits = load_run_data(cfg)
    assert resolve_nmax(cfg, splits).model.max_seq_len == splits.longest
    lengths = sorted(len(s) for k in ("train", "valid", "test") for s in splits.split(k).sketches)
    few = lengths[-2] - 1  # drops the two longest sketches: under the limit
    many = lengths[len(lengths) // 2] - 1  # drops about half
    assert 2 / len(lengths) <= DROP_LIMIT
    small = cfg.replace(model=cfg.model.replace(max_seq_len=few))
    out = resolve_nmax(small, load_run_data(small))
    assert out.model.max_seq_len == few
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"drops {sum(1 for n in lengths if n > few)} of {len(lengths)} sketches" in err[0]
    half = cfg.replace(model=cfg.model.replace(max_seq_len=many))
    with pytest.raises(DataError, match="data.allow_dropped=true") as exc:
        resolve_nmax(half, load_run_data(half))
    assert "\n" not in str(exc.value)
    # the --set machinery reaches the new fields
    spec = apply_overrides(half.to_dict(), {"data.allow_dropped": "true", "model.parity": "reference"})
    accepted = SketchRNNRunConfig.from_dict(spec)
    assert accepted.model.parity == "reference" and isinstance(accepted.model, SketchRNNConfig)
    assert resolve_nmax(accepted, load_run_data(accepted)).model.max_seq_len == many
    assert "%" in capsys.readouterr().err






def test_augmentation_is_for_training_only(tiny_npz, monkeypatch):
    from latentstudio.data.strokes import load_strokes
    from latentstudio.evaluation.sketches import stroke_losses
    from latentstudio.models.sketch_rnn import SketchRNN, SketchRNNConfig
    from latentstudio.training.sketch_rnn import StrokeDataset

    sp = load_strokes(tiny_npz, max_seq_len=32)
    ds = StrokeDataset(sp.train.sketches, 32, seed=0, random_scale=0.15, drop_prob=0.1)
    x0, _ = ds[(3, 0)]
    x1, _ = ds[(3, 1)]
    assert torch.equal(x0, ds[(3, 0)][0]) and not torch.equal(x0, x1)  # seeded by (seed, epoch, index)
    plain = StrokeDataset(sp.train.sketches, 32, seed=0, random_scale=0.0, drop_prob=0.0)
    torch.testing.assert_close(plain[(3, 5)][0], sp.train.to_stroke5(32)[0][3])

    def boom(*a, **k):
        raise AssertionError("augmentation used outside training")

    monkeypatch.setattr("latentstudio.data.strokes.augment", boom)
    model = SketchRNN(SketchRNNConfig(max_seq_len=32, enc_hidden_size=8, dec_hidden_size=8, latent_dim=4,
                                      num_mixture=2))
    x, ln = sp.test.to_stroke5(32)
    assert stroke_losses(model, x, ln)["n"] == len(sp.test)


# ----------------------------------------------------------------------------- CLI


def _invoke(args):
    from latentstudio.cli.main import cli

    res = CliRunner().invoke(cli, args, prog_name="latentstudio", catch_exceptions=False)
    return res


def test_cli_train_sample_explore_evaluate(tiny_npz, tmp_path):
    res = _invoke(["train", "sketch-rnn", "--data", str(tiny_npz), "--preset", "tiny", "--threads", "1",
                   "--set", "train.max_steps=6", "--set", "train.batch_size=16", "--set", "train.eval_every_n_steps=3",
                   "--set", "model.max_seq_len=32", "--runs-root", str(tmp_path / "runs"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "test (nats): L_R" in res.output
    run = next((tmp_path / "runs").iterdir())
    out = tmp_path / "o"
    for args in (
        ["sample", "--model", str(run), "--n", "4", "--temperature", "0.5", "--out", str(out / "s.svg")],
        ["sample", "--model", str(run), "--seeds", "1-3", "--temperature", "0", "--out", str(out / "g.png"),
         "--out-dir", str(out / "each")],
        ["interpolate", "--model", str(run), "--pair", "0,1", "--steps", "3", "--out", str(out / "i.svg")],
        ["complete", "--model", str(run), "--index", "0-1", "--keep", "0.5", "--n", "2", "--out", str(out / "c.svg")],
        ["render", "--model", str(run), "--temperatures", "0.2,0.8", "--n", "3", "--out", str(out / "t.png")],
        ["render", "--model", str(run), "--reconstruct", "--index", "0-4", "--nrow", "3", "--out", str(out / "r.svg")],
        ["render", "--data", str(tiny_npz), "--index", "0-3", "--frames", "3", "--out", str(out / "d.gif")],
    ):
        r = _invoke(args)
        assert r.exit_code == 0, (args, r.output)
        assert "wrote" in r.output
    assert sorted(p.name for p in (out / "each").iterdir()) == ["000000.svg", "000001.svg", "000002.svg"]
    svg = (out / "c.svg").read_text()
    assert "#d62728" in svg  # the given part of each completion is drawn in red
    r = _invoke(["evaluate", "--model", str(run)])
    assert r.exit_code == 0, r.output
    records = [json.loads(s) for s in (run / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in records} == {"l_r", "l_s", "l_p", "l_kl", "kl_sum",
                                              "ref_l_r", "ref_l_s", "ref_l_p", "ref_l_kl"}
    by = {r["metric"]: r for r in records}
    assert by["ref_l_kl"]["value"] == pytest.approx(max(by["l_kl"]["value"], 0.2))  # the reference floors it
    assert by["ref_l_r"]["value"] == pytest.approx(by["ref_l_s"]["value"] + by["ref_l_p"]["value"], rel=1e-5)
    assert all(r["units"] == "nats" and r["num_real"] == 10 and r["reference"] == "shapes/test" for r in records)
    assert by["l_r"]["value"] == pytest.approx(by["l_s"]["value"] + by["l_p"]["value"], rel=1e-5)
    text = (run / "eval" / "report.md").read_text()
    assert all(f"| {m} |" in text for m in by)


def test_cli_errors_are_one_line(tiny_npz, tmp_path):
    r = CliRunner().invoke(__import__("latentstudio.cli.main", fromlist=["cli"]).cli, ["train", "sketch-rnn"])
    assert r.exit_code != 0 and "--data is required" in r.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, pictures=np.zeros(3))
    r = _invoke(["train", "sketch-rnn", "--data", str(bad), "--preset", "tiny", "--runs-root", str(tmp_path)])
    assert r.exit_code == 1 and "Error:" in r.output and "not the sketch-rnn layout" in r.output
    r = _invoke(["render", "--data", str(tiny_npz), "--out", str(tmp_path / "x.jpg")])
    assert r.exit_code == 1 and "unknown picture type" in r.output
    r = _invoke(["train", "sketch-rnn", "--data", str(tiny_npz), "--set", "model.recurrent_keep_prob=1.5",
                 "--dry-run"])
    assert r.exit_code == 1 and "recurrent_keep_prob" in r.output


def test_cli_trains_on_ndjson(tmp_path):
    lines = []
    for k, s in enumerate(synthetic_sketches(40, seed=4, max_points=20)):
        xy = np.cumsum(s[:, :2], 0) + 128
        strokes, start = [], 0
        for i in np.nonzero(s[:, 2])[0]:
            strokes.append([xy[start : i + 1, 0].round().tolist(), xy[start : i + 1, 1].round().tolist()])
            start = i + 1
        lines.append(json.dumps({"word": "shape", "key_id": str(k), "drawing": strokes}))
    path = tmp_path / "shapes.ndjson"
    path.write_text("\n".join(lines) + "\n")
    r = _invoke(["train", "sketch-rnn", "--data", str(path), "--preset", "tiny", "--threads", "1", "--max-steps", "2",
                 "--set", "train.batch_size=8", "--set", "model.max_seq_len=32", "--runs-root", str(tmp_path / "runs"),
                 "--no-progress"])
    assert r.exit_code == 0, r.output
    meta = json.loads((next((tmp_path / "runs").iterdir()) / "model" / "meta.json").read_text())
    assert meta["dataset"]["sizes"]["train"] == 36 and meta["dataset"]["epsilon"] == 2.0
