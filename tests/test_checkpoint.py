"""Model directories: bit-exact reload, no overwrite, clear errors, no pickle."""

from __future__ import annotations

import json

import pytest
import torch

from latentstudio.errors import CheckpointError, RunExistsError
from latentstudio.io.atomic import append_jsonl, read_jsonl, write_json
from latentstudio.io.checkpoint import read_meta
from latentstudio.io.run_dir import create_run_dir
from latentstudio.models.loading import load_model
from latentstudio.models.two_stage import SecondStageConfig, TwoStageConfig, TwoStageVAE
from latentstudio.models.vae import VAE, VAEConfig
from latentstudio.types import Batch


def make_model():
    torch.manual_seed(0)
    cfg = TwoStageConfig(
        stage1=VAEConfig(latent_dim=3, base_dim=4, fc_dim=8, num_scale=2, image_size=8, condition="class", cond_dim=2),
        stage2=SecondStageConfig(latent_dim=3, second_depth=1, second_dim=8, condition="class", cond_dim=2),
    )
    m = TwoStageVAE(cfg)
    m.stage1.loss(Batch(torch.rand(4, 1, 8, 8), torch.eye(2)[[0, 1, 0, 1]]))  # touch BN stats
    return m


def test_model_directory_reloads_bit_exactly(tmp_path):
    m = make_model()
    m.save_pretrained(tmp_path / "model", meta={"seed": 7, "dataset": {"fingerprint": "abc"}})
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["config.json", "meta.json", "model.safetensors"]
    r = TwoStageVAE.from_pretrained(tmp_path / "model")
    assert r.config == m.config
    sd_a, sd_b = m.state_dict(), r.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    meta = read_meta(tmp_path / "model")
    assert meta["seed"] == 7 and meta["dataset"]["fingerprint"] == "abc"
    assert "torch" in meta["versions"] and "python" in meta["versions"]
    m.eval()
    c = torch.eye(2)
    z = torch.randn(2, 3)
    assert torch.equal(m.stage1.decode_mean(z, c), r.stage1.decode_mean(z, c))


def test_existing_model_dir_not_overwritten(tmp_path):
    m = make_model()
    m.save_pretrained(tmp_path / "model")
    before = (tmp_path / "model" / "model.safetensors").read_bytes()
    with pytest.raises(RunExistsError, match="overwrite"):
        m.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == before
    m.save_pretrained(tmp_path / "model", overwrite=True)
    assert not list(tmp_path.glob(".model*"))  # no temporary leftovers


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")
    make_model().save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="holds a .two-stage-vae. model, not .vae."):
        VAE.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(tmp_path / "m")


def test_weights_are_safetensors_not_pickle(tmp_path):
    make_model().save_pretrained(tmp_path / "m")
    head = (tmp_path / "m" / "model.safetensors").read_bytes()[:16]
    assert not head.startswith(b"\x80")  # pickle protocol marker
    n = int.from_bytes(head[:8], "little")  # safetensors: u64 header length then JSON
    header = json.loads((tmp_path / "m" / "model.safetensors").read_bytes()[8 : 8 + n])
    assert "stage1.loggamma" in header


def test_run_dirs_numbered_and_never_reused(tmp_path):
    (tmp_path / "notes").mkdir()
    a = create_run_dir(tmp_path, "two-stage-vae-digits")
    b = create_run_dir(tmp_path, "two stage VAE/mnist")
    assert a.name == "00000-two-stage-vae-digits"
    assert b.name == "00001-two-stage-vae-mnist"
    (tmp_path / "00041-old").mkdir()
    assert create_run_dir(tmp_path, "x").name == "00042-x"


def test_atomic_json_and_jsonl(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(RunExistsError):
        write_json(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    append_jsonl(tmp_path / "m.jsonl", {"a": 1})
    append_jsonl(tmp_path / "m.jsonl", {"a": 2})
    assert read_jsonl(tmp_path / "m.jsonl") == [{"a": 1}, {"a": 2}]
