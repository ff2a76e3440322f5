"""The speed / efficiency benchmark scripts and benchmarks/gpu_check.sh, on CPU at tiny sizes.

gpu_check.sh is asked for its commands (``--dry-run --device cpu --suite smoke``); each command is
then run in this process (the scripts' ``main()`` with that argument list: no interpreter start-up
per script) into a temporary results folder, the JSON keys are checked, and gpu_check.sh prints its
summary of those files. The real benchmarks are never run here.
"""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPT = BENCH / "gpu_check.sh"

#: result file -> keys every result must carry
KEYS = {
    "speed_sketch_rnn": {"command", "suite", "device", "batch", "nmax", "runs", "goal", "headline", "environment"},
    "speed_fid": {"command", "device", "threads", "batch", "weights", "end_to_end", "network_only",
                  "features_same_input", "resize_rules", "meets_goal", "headline", "load_average_start",
                  "load_average_end"},
    "stylegan2_speed": {"command", "device", "threads", "generation", "training", "official_reference", "headline",
                        "load_average_start", "load_average_end"},
    "efficiency": {"command", "device", "precision", "runs", "flop_counting", "headline"},
    "efficiency_fp32": {"command", "device", "precision", "runs", "flop_counting", "headline"},
}


def _commands(results: Path) -> list[list[str]]:
    out = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--suite", "smoke", "--no-run-py",
                          "--results-dir", str(results), "--dry-run"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]


def test_gpu_check_lists_every_script_on_the_requested_device(tmp_path):
    cmds = _commands(tmp_path)
    scripts = [Path(c[1]).name for c in cmds]
    assert scripts == ["stylegan2_speed.py", "efficiency.py", "efficiency.py", "speed_fid.py", "speed_sketch_rnn.py"]
    for c in cmds:
        assert c[c.index("--device") + 1] == "cpu" and c[c.index("--suite") + 1] == "smoke"
        assert c[c.index("--results-dir") + 1] == str(tmp_path)
    assert "bf16" in cmds[0][cmds[0].index("--precision") + 1]  # StyleGAN2 trains with bf16 autocast
    with_py = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--dry-run"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    assert "benchmarks/run.py --suite quick" in with_py
    bad = subprocess.run(["bash", str(SCRIPT), "--device", "tpu"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert bad.returncode == 2 and "--device must be cuda or cpu" in bad.stderr


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    threads = torch.get_num_threads()
    import _common

    results = _common.RESULTS
    yield
    _common.RESULTS = results
    torch.set_num_threads(threads)


def test_scripts_write_their_results_on_cpu(tmp_path, monkeypatch, bench_path, capsys):
    pytest.importorskip("pytorch_fid", reason="speed_fid needs the bench extra (pytorch-fid)")
    for cmd in _commands(tmp_path):
        module = importlib.import_module(Path(cmd[1]).stem)
        monkeypatch.setattr(sys, "argv", [cmd[1], *cmd[2:]])
        module.main()
    capsys.readouterr()
    for name, keys in KEYS.items():
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert keys <= set(data), (name, keys - set(data))
        assert data["device"] == "cpu"
        assert {"result", "reference", "ratio", "work", "time"} <= set(data["headline"])

    sk = json.loads((tmp_path / "speed_sketch_rnn.json").read_text())["runs"][0]
    assert sk["loss_check"]["equal"] and sk["threads"] == 1
    assert {"ratio_wall_median", "ratio_cpu_median", "flops", "load_average_start", "load_average_end"} <= set(sk)
    fid = json.loads((tmp_path / "speed_fid.json").read_text())
    assert fid["weights"]["all_equal"] and fid["features_same_input"]["equal"]
    assert {"images_per_s_wall", "images_per_s_cpu", "ratio_wall", "ratio_cpu"} <= set(fid["end_to_end"])
    sg = json.loads((tmp_path / "stylegan2_speed.json").read_text())
    assert sg["official_reference"].startswith("skipped")
    assert {g["precision"] for g in sg["generation"]} == {"fp32", "bf16"}
    fp32 = [t for t in sg["training"] if t["precision"] == "fp32"]
    assert fp32 and {"images_per_s", "kimg_per_s", "seconds_per_step", "cpu_seconds_per_step"} <= set(fp32[0])
    eff = json.loads((tmp_path / "efficiency_fp32.json").read_text())["runs"][0]
    assert set(eff["steps"]) == {"two-stage-vae/stage1", "two-stage-vae/stage2", "draw", "sketch-rnn", "stylegan2"}
    for step in eff["steps"].values():
        assert step["flops_per_step"] > 0 and {"wall", "cpu"} == set(step["fraction_of_matmul_rate"])

    summary = subprocess.run(["bash", str(SCRIPT), "--summary-only", "--results-dir", str(tmp_path)],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    assert "kimg/s" in summary and "images/s" in summary and "FID features" in summary
