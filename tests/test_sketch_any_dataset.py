"""sketch-rnn end to end on a stroke set of another kind: symbols (stars, zig-zags, crosses, dots) in a
multi-class Quick, Draw! ``.ndjson.gz`` built here, through the command line: train (a ``--words``
class filter), evaluate, sample at three temperatures, interpolate, complete and reconstruct."""

from __future__ import annotations

import gzip
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentstudio.cli.main import cli
from latentstudio.data.strokes import load_strokes

KEPT = ("star", "zigzag", "cross", "dots")
STEPS = 6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def invoke(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args], prog_name="latentstudio")
    assert res.exit_code == 0, res.output
    return res


def _symbol(word: str, rng: np.random.Generator) -> list:
    """One drawing in Quick, Draw!'s simplified format: strokes of integer [xs, ys] in 0..255."""
    c, r = rng.uniform(100, 155, size=2), rng.uniform(40, 90)
    if word == "star":  # one stroke through the five points of a pentagram
        ang = rng.uniform(0, 2 * math.pi) + np.arange(6) * 4 * math.pi / 5
        lines = [c + r * np.column_stack([np.cos(ang), np.sin(ang)])]
    elif word == "zigzag":
        m = int(rng.integers(4, 9))
        lines = [c + np.column_stack([np.linspace(-r, r, m), np.where(np.arange(m) % 2, r / 3, -r / 3)])]
    elif word == "cross":  # two strokes of two points
        lines = [c + np.array([[-r, 0.0], [r, 0.0]]), c + np.array([[0.0, -r], [0.0, r]])]
    elif word == "dots":  # taps: strokes of one point each (a single tap gives a 1-point sketch)
        k = int(rng.integers(1, 4))
        lines = [c + np.array([[(j - 1) * r / 2, 0.0]]) for j in range(k)]
    else:  # "spiral": a long single stroke, a class left out by --words
        t = np.linspace(0, 6 * math.pi, 60)
        lines = [c + (r / 20) * np.column_stack([t * np.cos(t), t * np.sin(t)])]
    out = []
    for ln in lines:
        ln = np.clip(np.round(ln + rng.normal(0, 1.5, ln.shape)), 0, 255).astype(int)
        out.append([ln[:, 0].tolist(), ln[:, 1].tolist()])
    return out


@pytest.fixture(scope="module")
def symbols(tmp_path_factory):
    """``(all.ndjson.gz with KEPT + spiral, kept.ndjson with only KEPT in the same order, runs root)``."""
    folder = tmp_path_factory.mktemp("symbols")
    rng = np.random.default_rng(5)
    lines = []
    for k in range(120):
        word = (*KEPT, "spiral")[k % 5]
        lines.append(json.dumps({"word": word, "countrycode": "XX", "recognized": True, "key_id": str(k),
                                 "drawing": _symbol(word, rng)}, separators=(",", ":")))
    full, kept = folder / "symbols.ndjson.gz", folder / "kept.ndjson"
    with gzip.open(full, "wt") as f:
        f.write("\n".join(lines) + "\n")
    kept.write_text("".join(s + "\n" for s in lines if json.loads(s)["word"] in KEPT))
    return full, kept, folder / "runs"


@pytest.fixture(scope="module")
def trained(symbols):
    full, _, runs = symbols
    res = invoke("train", "sketch-rnn", "--data", full, "--words", ",".join(KEPT), "--preset", "tiny",
                 "--max-steps", STEPS, "--threads", 1, "--no-progress", "--runs-root", runs,
                 "--set", "train.eval_every_n_steps=3", "--set", "train.batch_size=16")
    assert "test (nats): L_R" in res.output
    (run,) = sorted(runs.iterdir())
    return run


def _svg_cells(path) -> int:
    root = ET.parse(path).getroot()
    return sum(1 for el in root.iter() if el.tag.endswith("}g"))


def test_words_filter_sets_nmax_and_splits(symbols, trained):
    from latentstudio import api

    _, kept, _ = symbols
    meta = json.loads((trained / "model" / "meta.json").read_text())
    ref = load_strokes(kept)  # the same drawings in the same order: the same seeded splits
    assert meta["dataset"]["nmax"] == ref.longest < 60  # the 60-point spirals are filtered out, not counted
    assert meta["dataset"]["sizes"] == {s: len(ref.split(s)) for s in ("train", "valid", "test")}
    assert min(len(s) for s in ref.train.sketches) == 1  # a single tap trains as a 1-point sketch
    model = api.load(trained)
    test = api.data_split(model, None, "test")
    assert set(test.labels) <= set(KEPT)
    assert test.labels == ref.test.labels
    assert float(model.scale_factor) == pytest.approx(ref.scale_factor)
    for a, b in zip(test.sketches, ref.test.sketches, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    rows = [json.loads(s) for s in (trained / "train" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "test"] == [0, 3, 6]


def _two_point_indices(kept, n: int = 2) -> str:
    """The first ``n`` test sketches of at least 2 points (a 1-point tap cannot be completed)."""
    idx = [i for i, sk in enumerate(load_strokes(kept).test.sketches) if len(sk) >= 2][:n]
    assert len(idx) == n
    return ",".join(map(str, idx))


def test_evaluate_sample_interpolate_complete(symbols, trained, tmp_path):
    invoke("evaluate", "--model", trained)
    recs = [json.loads(s) for s in (trained / "eval" / "metrics.jsonl").read_text().splitlines()]
    values = {r["metric"]: r["value"] for r in recs}
    for metric in ("l_r", "l_s", "l_p", "l_kl"):
        assert math.isfinite(values[metric]), metric
    assert values["l_r"] == pytest.approx(values["l_s"] + values["l_p"], rel=1e-5)
    for tau in ("0.1", "0.5", "1.0"):
        out = tmp_path / f"tau{tau}.svg"
        invoke("sample", "--model", trained, "--n", 4, "--temperature", tau, "--out", out)
        assert _svg_cells(out) == 4
    invoke("interpolate", "--model", trained, "--pair", "0,1", "--steps", 4, "--out", tmp_path / "strip.svg")
    assert _svg_cells(tmp_path / "strip.svg") >= 4
    invoke("complete", "--model", trained, "--index", _two_point_indices(symbols[1]), "--n", 2, "--keep", "0.5", "--out", tmp_path / "c.svg")
    assert _svg_cells(tmp_path / "c.svg") == 2 * 3
    invoke("render", "--model", trained, "--temperatures", "0.1,1.0", "--n", 3, "--out", tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_one_point_sketch_completion_is_a_clear_error():
    from latentstudio.errors import DataError
    from latentstudio.models.sketch_rnn.explore import truncate

    with pytest.raises(DataError, match="1 point cannot be completed"):
        truncate(np.array([[0.0, 0.0, 1.0]], dtype=np.float32), 0.4)
    np.testing.assert_array_equal(truncate(np.array([[0, 0, 1], [1, 1, 1]], dtype=np.float32), 0.4), [[0, 0, 1]])


@pytest.mark.parametrize("command", ["complete", "reconstruct"])
def test_complete_and_reconstruct_read_the_words_filtered_split(symbols, trained, tmp_path, command):
    _, kept, _ = symbols
    args = (["complete", "--n", 2, "--keep", "0.5"] if command == "complete"
            else ["render", "--reconstruct"])
    outs = []
    for name, extra in (("given", ["--data", kept]), ("default", [])):
        out = tmp_path / f"{name}.svg"
        invoke(*args, "--model", trained, "--index", _two_point_indices(kept, 3), "--out", out, *extra)
        outs.append(out.read_text())
    assert outs[0] == outs[1]
