"""The typed data spec: parsing, round trips, loading images and strokes, run.json compatibility, and how
an evaluation finds a model's reference data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentstudio.data import DATASETS, DataSpec, dataset_kind, dataset_options, load_images
from latentstudio.data.strokes import StrokeSet, synthetic_sketches
from latentstudio.errors import ConfigError, DataError, UnknownNameError


@pytest.fixture
def npz(tmp_path):
    sk = [s.round().astype(np.int16) for s in synthetic_sketches(30, seed=1, max_points=20)]

    def obj(items):
        arr = np.empty(len(items), dtype=object)
        for k, s in enumerate(items):
            arr[k] = s
        return arr

    path = tmp_path / "sheep.npz"
    np.savez(path, train=obj(sk[:20]), valid=obj(sk[20:25]), test=obj(sk[25:]))
    return path


def test_parse_names_and_stroke_files():
    assert DataSpec.parse("mnist") == DataSpec(name="mnist")
    for f in ("sheep.npz", "cat.ndjson", "x/cat.ndjson.gz"):
        s = DataSpec.parse(f, limit=5)
        assert s.name == "strokes" and s.options == {"path": f} and s.limit == 5 and s.kind == "strokes"
    assert DataSpec.parse("sheep.npz").label == "sheep"
    with pytest.raises(UnknownNameError, match="unknown dataset 'nope'.*digits.*stroke file"):
        DataSpec.parse("nope")


def test_round_trip_and_validation():
    s = DataSpec(name="folder", root="/data", options={"path": "faces.zip", "image_size": 64}, limit=10, strict=True)
    d = s.to_dict()
    assert list(d) == ["name", "root", "options", "limit", "download", "strict"]
    assert DataSpec.from_dict(json.loads(json.dumps(d))) == s
    d["options"]["path"] = "other.zip"  # the dict is a copy
    assert s.options["path"] == "faces.zip"
    with pytest.raises(ConfigError, match="data.limit"):
        DataSpec(name="digits", limit=0)
    with pytest.raises(ConfigError, match="unknown DataSpec field"):
        DataSpec.from_dict({"name": "digits", "bogus": 1})


def test_coerce_and_overrides():
    assert DataSpec.coerce(None) is None
    assert DataSpec.coerce({"name": None, "root": "/r"}) is None  # no dataset named: the model's is used
    assert DataSpec.coerce("digits") == DataSpec(name="digits")
    s = DataSpec.coerce({"name": "sheep.npz", "limit": 3, "options": {"epsilon": 1.0}})
    assert s == DataSpec(name="strokes", limit=3, options={"path": "sheep.npz", "epsilon": 1.0})
    base = DataSpec(name="mnist", options={"pad": 0})
    assert base.with_overrides({"name": None, "root": "/r", "limit": 7, "options": {"x": 1}, "strict": False}) == \
        DataSpec(name="mnist", root="/r", limit=7, options={"pad": 0, "x": 1})


def test_load_images_and_the_old_data_config_alias():
    from latentstudio.training.config import DataConfig, TwoStageRunConfig

    assert DataConfig is DataSpec
    test = DataSpec(name="digits", limit=12).load("test")
    assert test.images.shape == (12, 1, 32, 32) and test.name == "digits" and test.split == "test"
    # a run.json written before the spec existed (the same six fields) still loads
    old = {"data": {"name": "digits", "root": None, "options": {}, "limit": 64, "download": False, "strict": False}}
    run = TwoStageRunConfig.from_dict(old)
    assert isinstance(run.data, DataSpec) and run.data.limit == 64
    assert run.to_dict()["data"] == old["data"]


def test_strokes_are_a_registered_dataset(npz):
    assert "strokes" in DATASETS and dataset_kind("strokes") == "strokes" and dataset_kind("digits") == "images"
    assert {"path", "epsilon", "words", "split_fractions", "split_seed", "max_seq_len", "scale_factor"} <= set(
        dataset_options("strokes"))
    spec = DataSpec.parse(str(npz))
    test = spec.load("test")
    assert isinstance(test, StrokeSet) and len(test) == 5 and test.split == "test" and test.name == "sheep"
    assert len(spec.replace(limit=2).load("train")) == 2
    scaled = spec.load("test", scale_factor=2.0)
    assert scaled.scale_factor == 2.0
    with pytest.raises(DataError, match="does not accept option.*'pad'"):
        spec.replace(options={"path": str(npz), "pad": 0}).load("test")
    with pytest.raises(DataError, match="needs option path"):
        DataSpec(name="strokes").load("train")
    with pytest.raises(DataError, match="holds strokes, not images"):
        load_images("strokes", "train", path=str(npz))


def test_sketch_data_config_becomes_a_strokes_spec(npz):
    from latentstudio.training.sketch_rnn import SketchDataConfig

    spec = SketchDataConfig(path=str(npz), epsilon=1.5, limit=4).to_spec()
    assert spec.name == "strokes" and spec.limit == 4 and spec.options["epsilon"] == 1.5
    assert spec.options["path"] == str(npz.resolve()) and spec.options["split_fractions"] == [0.9, 0.05, 0.05]
    assert DataSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert len(spec.load("test")) == 4


def test_reference_data_of_a_model(tmp_path, npz):
    from types import SimpleNamespace

    from latentstudio.evaluation import data_spec_for

    given = data_spec_for(SimpleNamespace(meta={}), {"name": "mnist", "options": {"pad": 0}})
    assert given == DataSpec(name="mnist", options={"pad": 0})
    recorded = SimpleNamespace(meta={"data": DataSpec(name="digits", limit=50).to_dict()})
    assert data_spec_for(recorded, None) == DataSpec(name="digits", limit=50)
    assert data_spec_for(recorded, {"name": None, "limit": 9}).limit == 9  # explicit fields still apply
    # older models: the run's run.json, or meta.json's dataset (a sketch model's stroke file)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "sketch-rnn", "config": {"data": {
        "path": str(npz), "epsilon": 2.0, "words": [], "split_fractions": [0.9, 0.05, 0.05], "split_seed": 0,
        "limit": None}}}))
    s = data_spec_for(SimpleNamespace(meta={"run_dir": str(run)}), None)
    assert s.name == "strokes" and s.options["path"] == str(npz) and s.options["epsilon"] == 2.0
    s = data_spec_for(SimpleNamespace(meta={"dataset": {"name": "sheep", "path": str(npz), "epsilon": 1.0}}), None)
    assert s.name == "strokes" and s.options == {"path": str(npz), "epsilon": 1.0}
    assert data_spec_for(SimpleNamespace(meta={"dataset": {"name": "digits"}}), None) == DataSpec(name="digits")
    with pytest.raises(DataError, match="does not record its dataset; pass --data"):
        data_spec_for(SimpleNamespace(meta={}), None)
