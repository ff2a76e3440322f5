"""benchmarks/run.py: the entries' --suite arguments and the results table built from fake JSONs
(no benchmark runs here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file executes
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


@pytest.fixture(scope="module")
def run():
    return _load("run")


def test_every_entry_passes_its_suite_first_and_the_suites_select_entries(run):
    names = [e.name for e in run.ENTRIES]
    assert len(names) == len(set(names))
    for required in ("two_stage_mnist", "samplers", "draw_paper", "speed_sketch_rnn", "speed_fid", "stylegan2_speed",
                     "efficiency", "sketch_rnn_nmax", "studio_scale"):
        assert required in names
    for e in run.ENTRIES:
        for suite in ("quick", "full"):
            args = e.args(suite)
            assert args[:2] == ["--suite", suite] and "--suite" not in args[2:]
            cmd = e.command(suite, python="python")
            assert cmd[1].endswith(f"benchmarks/{e.script}.py") and cmd[2:] == args
    with pytest.raises(ValueError):
        run.ENTRIES[0].args("medium")
    quick = [e.name for e in run.entries_for("quick")]
    assert "two_stage_mnist" in quick and "samplers" in quick and "stylegan2_celeba" not in quick
    assert [e.name for e in run.entries_for("quick", ["stylegan2_celeba", "samplers"])] == ["stylegan2_celeba",
                                                                                           "samplers"]
    with pytest.raises(SystemExit, match="known: two_stage_mnist"):
        run.entries_for("quick", ["nope"])
    args = run.parse_args(["--suite", "full", "--only", "samplers,two_stage_mnist", "--only", "efficiency"])
    assert args.suite == "full" and args.only == ["samplers", "two_stage_mnist", "efficiency"]
    assert run.parse_args([]).suite == "quick"
    with pytest.raises(SystemExit):
        run.parse_args(["--suite", "medium"])


def test_owned_scripts_take_suite_and_the_suite_sets_their_defaults(run, monkeypatch):
    common = _load("_common")
    import argparse

    for script in ("two_stage_mnist", "samplers_study", "stylegan2_celeba", "trainer_overhead"):
        text = (BENCH / f"{script}.py").read_text()
        assert "add_suite(" in text, script
        assert "minutes1" not in text and "max_time" not in text
    for argv, want in ((["--suite", "quick"], (3, "quick")), ([], (10, "full")),
                       (["--suite", "quick", "--epochs1", "7"], (7, "quick"))):
        p = argparse.ArgumentParser()
        p.add_argument("--epochs1", type=int, default=None)
        suite = common.add_suite(p, {"epochs1": 3}, {"epochs1": 10}, argv=argv)
        args = p.parse_args(argv)
        assert (args.epochs1, args.suite) == want and suite == want[1]
    with pytest.raises(KeyError, match="epoch1"):
        common.add_suite(argparse.ArgumentParser(), {"epoch1": 3}, {}, argv=[])


def test_table_from_fake_jsons(run, tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    env = {"cpu_count": 2, "torch_threads": 2, "cuda": False}
    total = {"wall_seconds": 300.0, "cpu_seconds": 560.0, "threads": 2, "load_average_before": [0.5, 0.4, 0.3],
             "load_average_after": [2.0, 1.0, 0.5]}
    (res / "two_stage_mnist.json").write_text(json.dumps({
        "suite": "quick", "environment": env, "timing": {"total": total},
        "headline": {"result": "fid_clf: second stage 20.00", "reference": "N(0, I) 40.00", "ratio": 0.5,
                     "work": "3 + 30 epochs", "time": "300 s wall, 560 s CPU, 2 threads"},
        "checks": {"second_stage_le_0.8_normal": True}, "command": "python benchmarks/two_stage_mnist.py --suite quick"}))
    (res / "samplers_mnist.json").write_text(json.dumps({
        "suite": "full", "environment": env, "timing": {"total": total},
        "fid_clf": {"normal": 40.0, "gmm/k=10/cov=full/fit=mean": 15.0, "gmm/k=1/cov=full/fit=sample": 38.0,
                    "kde/bw=scott/fit=mean": 30.0, "second-stage": 20.0, "reconstruction": 8.0},
        "checks": {"second_stage_le_0.8_normal": True, "every_gmm_lt_normal": True, "gmm10_mu_lt_normal": True,
                   "reconstruction_lowest": True},
        "headline": {"result": "fid_clf: second stage 20.00", "reference": "N(0, I) 40.00", "ratio": 0.5,
                     "work": "10 + 100 epochs", "time": "1 h"}}))
    # an older JSON without a headline (entry reader) and one nobody knows (generic reader)
    (res / "trainer_overhead.json").write_text(json.dumps({
        "bare_images_per_s": [500.0, 510.0], "lightning_images_per_s": [490.0, 495.0],
        "ratio_lightning_over_bare": 0.97, "target": 0.95, "data": "mnist, 2 epochs", "environment": env}))
    (res / "efficiency.json").write_text(json.dumps({"speedup": 1.7, "note": "x", "seconds": 12.0,
                                                     "load_average_1min_end": 6.5}))
    (res / "speed_fid.json").write_text("{not json")
    log = {"command": "python benchmarks/run.py --suite quick", "started": "2030-01-01T00:00:00+00:00",
           "wall_seconds": 900.0, "cpu_seconds": 1700.0, "load_average_before": 0.5, "load_average_after": 2.0,
           "entries": {"two_stage_mnist": {"returncode": 0, "wall_seconds": 300.0, "cpu_seconds": 560.0},
                       "speed_sketch_rnn": {"missing_script": True},
                       "trainer_overhead": {"returncode": 1, "wall_seconds": 3.0, "cpu_seconds": 2.0}}}
    (res / run.RUN_LOG).write_text(json.dumps(log))
    path = run.write_table(res)
    text = path.read_text()
    assert path == res / "README.md"
    assert "| name | result | reference | ratio | work | time | machine |" in text
    main_table = text.split("\n## ")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in main_table.splitlines() if line.startswith("| ")}
    assert rows["two_stage_mnist"] == ("| two_stage_mnist | fid_clf: second stage 20.00 | N(0, I) 40.00 | 0.5 | "
                                       "quick: 3 + 30 epochs | 300 s wall, 560 s CPU, 2 threads | 2 CPUs, 2 threads, "
                                       "load 0.5 -> 2.0 |")
    assert "samplers: samplers_mnist" in rows and "full: 10 + 100 epochs" in rows["samplers: samplers_mnist"]
    assert "not run" in rows["samplers: samplers_fashion_mnist"]
    assert "not run" in rows["speed_fid"] and "not run (script missing)" in rows["speed_sketch_rnn"]
    assert "Lightning 495 images/s" in rows["trainer_overhead"] and "0.97 (target >= 0.95)" in rows["trainer_overhead"]
    assert "last run failed, rc 1; figures from an earlier run" in rows["trainer_overhead"]
    assert "speedup 1.7" in rows["efficiency"] and "12 s wall" in rows["efficiency"] and "load 6.5" in rows["efficiency"]
    for e in run.ENTRIES:  # one row per result JSON of every entry, present or not
        for r in e.results:
            assert (r if r == e.name else f"{e.name}: {r}") in rows
    # the samplers details: one line per sampler in the usual order, ratios and orderings
    assert "## samplers" in text
    order = ["| N(0, I) |", "| GMM k=1, cov=full, fit=sample |", "| GMM k=10, cov=full, fit=mean |",
             "| KDE bw=scott, fit=mean |", "| second stage |", "| reconstructions (reference point) |"]
    pos = [text.index(s) for s in order]
    assert pos == sorted(pos)
    assert "| second stage | 20.00 (0.50x) |" in text and "| every GMM < N(0, I) | yes |" in text
    assert "## Last run of run.py" in text and "| speed_sketch_rnn | script missing |" in text
    # optional JSONs (the quick run of a full-only entry) get a row only when present
    assert "stylegan2_celeba32_quick" not in text
    (res / "stylegan2_celeba32_quick.json").write_text(json.dumps({
        "suite": "quick", "fid_clf_trained_g_ema": 30.0, "fid_clf_initial_weights": 40.0, "kimg": 4.0}))
    assert "| stylegan2_celeba: stylegan2_celeba32_quick | fid_clf after training 30.00 | initial weights 40.00 | 0.75 |" \
        in run.build_table(res)
    # --table-only on an empty folder: every row "not run", no crash
    empty = tmp_path / "empty"
    empty.mkdir()
    text = run.build_table(empty)
    assert text.count("not run") == sum(len(e.results) for e in run.ENTRIES)


def test_missing_script_is_logged_not_run(run, tmp_path, monkeypatch):
    ghost = run.Entry("ghost", "no_such_script_here", ("ghost",))
    log = run.run_entries([ghost], "quick", threads=1, data_root=None, results_dir=tmp_path)
    assert log["entries"] == {"ghost": {"missing_script": True}}
    assert "not run (script missing)" in run.build_table(tmp_path, [ghost], log)


def test_sketch_rnn_sheep_reader_of_the_old_minutes_json(run):
    old = {"quality_cpu_preset": {"preset": "cpu", "steps": 3223, "budget_minutes": 60.0, "wall_minutes": 60.1,
                                  "test_curve_nats": [{"step": 0, "recon": 2.4, "kl": 0.0},
                                                      {"step": 3223, "recon": 0.6, "kl": 0.2}]},
           "quality_short": {"preset": "cpu", "steps": 398, "test_curve_nats": [{"step": 0, "recon": 1.0, "kl": 0.0}]},
           "speed": {"ratio_cpu_time": 1.3}}
    entry = next(e for e in run.ENTRIES if e.name == "sketch_rnn_sheep")
    row = run.row_for(entry, "sketch_rnn_sheep", old)
    assert row["result"] == "test L_R 0.600 nats after 3223 steps (L_KL 0.200)"  # the longest quality section
    assert row["reference"] == "step 0: L_R 2.400" and row["ratio"] == "0.25" and row["time"] == "3606 s wall"
    assert "old protocol: a 60-minute budget" in row["work"]
    assert "sketch_rnn_sheep_quick" in entry.results and "full" in entry.suites


def test_sketch_rnn_sheep_quality_runs_a_fixed_number_of_steps(tmp_path, monkeypatch):
    """The quality phase at tiny work (tiny preset, 3 steps) on a synthetic stroke file at the sheep path."""
    import torch
    from conftest import write_stroke_npz

    sheep_file = tmp_path / "data" / "sketches" / "sketch-rnn-datasets" / "aaron_sheep.npz"
    sheep_file.parent.mkdir(parents=True)
    write_stroke_npz(sheep_file)
    sheep = _load("sketch_rnn_sheep")
    common = sys.modules["_common"]
    monkeypatch.setattr(common, "RESULTS", common.RESULTS)  # restored afterwards: main() points it at tmp_path
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    text = (BENCH / "sketch_rnn_sheep.py").read_text()
    assert "add_suite(" in text and "--minutes" not in text and "max_minutes\": None" in text
    threads = torch.get_num_threads()
    try:
        sheep.main(["--suite", "quick", "--steps", "3", "--eval-every", "2", "--preset", "tiny",
                    "--data-root", str(tmp_path / "data"), "--runs-root", str(tmp_path / "runs"),
                    "--results-dir", str(tmp_path / "results")])
    finally:
        torch.set_num_threads(threads)
    d = json.loads((tmp_path / "results" / "sketch_rnn_sheep_quick.json").read_text())
    q = d["quality"]
    assert q["steps"] == 3 and [r["step"] for r in q["test_curve_nats"]] == [0, 2, 3]  # step 0, every 2, the end
    assert q["train_config"]["max_steps"] == 3 and q["train_config"]["max_minutes"] is None and q["no_nan"]
    assert {"wall_seconds", "cpu_seconds", "threads", "load_average_before", "load_average_after"} <= set(q["timing"])
    assert d["suite"] == "quick (custom)" and d["command"].startswith("python benchmarks/sketch_rnn_sheep.py --suite quick")
    assert "--steps 3" in d["command"] and "--eval-every 2" in d["command"] and "--threads 1" in d["command"]
    h = d["headline"]
    assert h["result"].startswith("test L_R ") and "after 3 steps" in h["result"]
    assert h["ratio"] == round(q["test_curve_nats"][-1]["recon"] / q["test_curve_nats"][0]["recon"], 4)
    assert "tiny preset, 3 steps of batch 32" in h["work"] and "wall" in h["time"]
