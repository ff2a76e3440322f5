"""StyleGAN2 training: a few steps on real digits change G and D with finite losses; NaN safety; exact resume."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import pytest
import torch

from latentstudio.data import ImageData
from latentstudio.errors import DataError
from latentstudio.models.stylegan2 import Discriminator, Generator, load_discriminator, load_generator
from latentstudio.training.stylegan2 import StyleGAN2RunConfig, classifier_data, train_stylegan2

MODEL = {"resolution": 16, "img_channels": 1, "z_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8,
         "mapping_layers": 2}
TRAIN = {"batch_size": 8, "epochs": 2, "lr": 0.002, "r1_gamma": 1.0, "r1_interval": 2, "pl_interval": 2,
         "ema_kimg": 0.01, "log_every_n_steps": 1, "mirror": True, "metrics_every_n_epochs": 0}


@pytest.fixture(scope="module")
def digits16(digits_u8):
    x, y = digits_u8
    x16 = torch.nn.functional.interpolate(x[:16].float(), size=16, mode="area").round().to(torch.uint8)
    return ImageData(images=x16, labels=y[:16], name="digits", class_names=[str(i) for i in range(10)])


def _run(**train):
    return StyleGAN2RunConfig.from_dict({"data": {"name": "digits"}, "model": MODEL, "train": {**TRAIN, **train},
                                         "seed": 3})


def _csv_rows(run_dir):
    with open(run_dir / "train" / "logs" / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_training_steps_change_both_networks_with_finite_losses(tmp_path, digits16):
    # ---- uninterrupted: 2 epochs x 2 steps, FID of G_ema each epoch
    run_a = _run(metrics_every_n_epochs=1, metric_samples=16)
    res = train_stylegan2(run_a, runs_root=tmp_path / "a", progress=False, data=digits16)
    torch.manual_seed(3)
    G0, D0 = Generator(run_a.model), Discriminator(run_a.model)  # the initial weights of the run
    G, D = load_generator(res.model_dir), load_discriminator(res.model_dir)
    for name, a, b in (("G_ema", G0, G), ("D", D0, D)):
        moved = [k for k, v in a.state_dict().items() if not torch.equal(v, b.state_dict()[k])]
        assert len(moved) > len(a.state_dict()) // 2, f"{name}: only {moved} changed"
    rows = _csv_rows(res.run_dir)
    for key in ("train/loss_g", "train/loss_d", "train/r1_penalty", "train/pl_penalty"):
        vals = [float(r[key]) for r in rows if r.get(key)]
        assert vals and all(math.isfinite(v) for v in vals), key
    kimg = [float(r["train/kimg"]) for r in rows if r.get("train/kimg")]
    assert kimg[-1] == pytest.approx(0.032)  # 4 steps of 8 images
    assert (res.run_dir / "train" / "samples" / "epoch-0002.png").is_file()
    fids = [line for line in (res.run_dir / "train" / "metrics.jsonl").read_text().splitlines()]
    assert len(fids) == 2 and '"metric": "fid_clf"' in fids[0]


def test_classifier_labels_for_attribute_datasets():
    attrs = torch.tensor([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]])
    data = ImageData(images=torch.zeros(3, 3, 16, 16, dtype=torch.uint8), attributes=attrs,
                     attribute_names=["Male", "Smiling"], name="celeba")
    out = classifier_data(data, "Male")
    assert out.labels.tolist() == [1, 0, 1] and out.class_names == ["not Male", "Male"]
    with pytest.raises(DataError, match="no attribute 'Bald'; known attributes: Male, Smiling"):
        classifier_data(data, "Bald")
    with pytest.raises(DataError, match="--classifier-label"):
        classifier_data(data, None)


def test_cli_dry_run_and_bad_config():
    from click.testing import CliRunner

    from latentstudio.cli.main import cli

    r = CliRunner()
    res = r.invoke(cli, ["train", "stylegan2", "--data", "digits", "--resolution", "32", "--dry-run",
                         "--set", "train.r1_gamma=0.5", "--kimg", "100"])
    assert res.exit_code == 0, res.output
    assert '"r1_gamma": 0.5' in res.output and '"img_channels": 1' in res.output and '"total_kimg": 100' in res.output
    res = r.invoke(cli, ["train", "stylegan2", "--data", "digits", "--resolution", "48", "--dry-run"])
    assert res.exit_code == 1 and "power of two" in res.output
    res = r.invoke(cli, ["train", "stylegan2", "--preset", "huge", "--dry-run"])
    assert res.exit_code == 1 and "unknown stylegan2 preset 'huge'" in res.output


def test_ddp_two_cpu_processes(tmp_path):
    """``--devices 2``: two processes, gradients averaged by one all-reduce per phase, one shared run."""
    env = {k: v for k, v in os.environ.items() if k not in ("LATENTSTUDIO_RUN_DIR", "LOCAL_RANK", "WORLD_SIZE")}
    cmd = [sys.executable, "-m", "latentstudio.cli", "train", "stylegan2", "--data", "digits", "--limit", "32",
           "--resolution", "32", "--devices", "2", "--runs-root", str(tmp_path), "--no-progress",
           "--set", "train.epochs=1", "--set", "train.batch_size=8", "--set", "model.channel_base=128",
           "--set", "model.channel_max=8", "--set", "model.z_dim=8", "--set", "model.w_dim=8"]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["00000-stylegan2-digits"]
    ckpt = torch.load(tmp_path / runs[0] / "train" / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=True)
    assert int(ckpt["state_dict"]["cur_nimg"]) == 32  # 2 processes x 2 steps x 8 images
    assert load_generator(tmp_path / runs[0]).img_resolution == 32
