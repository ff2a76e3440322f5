"""Every script the benchmark runner starts accepts ``--suite quick|full`` (read from each script's
argument parser definition, without importing torch or running anything)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_benchmarks_runner import _load

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


RUN = _load("run")


def _takes_suite(source: str) -> bool:
    """The script calls ``_common.add_suite(parser, ...)`` or adds a ``--suite`` option itself."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name == "add_suite":
            return True
        if name == "add_argument" and any(isinstance(a, ast.Constant) and a.value == "--suite" for a in node.args):
            return True
    return False


@pytest.mark.parametrize("entry", [e.name for e in RUN.ENTRIES])
def test_every_runner_entry_script_takes_the_suite_option(entry):
    e = {x.name: x for x in RUN.ENTRIES}[entry]
    script = BENCH / f"{e.script}.py"
    assert script.is_file(), f"run.py entry {entry} names a missing script {script.name}"
    assert _takes_suite(script.read_text()), (
        f"benchmarks/{script.name} has no --suite option, but run.py passes '--suite quick|full' to it")


def test_the_check_tells_a_script_without_the_option():
    assert not _takes_suite("import argparse\np = argparse.ArgumentParser()\np.add_argument('--steps')\n")
    assert _takes_suite("p.add_argument('--suite', choices=('quick', 'full'))\n")
    assert _takes_suite("from _common import add_suite\nadd_suite(p, {}, {})\n")


def test_draw_row_reads_the_final_nll_of_each_arm_and_the_paired_gap():
    run = RUN
    d = {"suite": "quick", "budget": {"optimizer_steps": 30},
         "arms": {"attention": {"final": {"nll": 90.0}}, "no-attention": {"final": {"nll": 100.0}}},
         "comparison": {"final_nll_attention_minus_no_attention": {"images": 100, "mean": -10.0, "stderr": 1.5}}}
    row = run._reader_draw(d)
    assert row["result"] == ("attention NLL 90.00 nats, no-attention NLL 100.00 nats; "
                             "attention - none -10.00 +- 1.50 (100 test images)")
    assert row["ratio"] == "0.9" and row["work"] == "30 optimizer steps per arm"
    assert run._reader_draw({"arms": {}}) == {}


def test_two_stage_sample_strip_puts_the_grids_side_by_side(tmp_path):
    import torch

    from latentstudio.io.images import load_image, save_image

    strip = _load("two_stage_mnist")
    grids = [torch.full((1, 6, 5), 40 * (i + 1), dtype=torch.uint8) for i in range(4)]
    for name, grid in zip(strip.STRIP, grids, strict=True):
        save_image(grid, tmp_path / name)
    out = load_image(strip.sample_strip(tmp_path, tmp_path / "figure.png", gap=3))
    assert out.shape == (1, 6, 4 * 5 + 3 * 3)
    for i, grid in enumerate(grids):  # N(0, I), GMM, second stage, reconstructions, left to right
        assert torch.equal(out[:, :, i * 8:i * 8 + 5], grid)
    assert (out[:, :, 5:8] == 255).all() and (out[:, :, 21:24] == 255).all()
