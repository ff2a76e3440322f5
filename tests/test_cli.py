"""The command line: help examples, errors as one-line messages, DDP with 2 CPU processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from latentstudio.cli.main import cli
from latentstudio.cli.options import apply_overrides, parse_int_list


def _all_commands(group=cli, prefix=()):
    import click

    out = [list(prefix)]
    for name in sorted(group.commands):
        sub = group.commands[name]
        out += _all_commands(sub, (*prefix, name)) if isinstance(sub, click.Group) else [[*prefix, name]]
    return out


COMMANDS = _all_commands()


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_help_shows_an_example(cmd):
    res = CliRunner().invoke(cli, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example" in res.output and "latentstudio " in res.output


def test_int_list_and_overrides():
    assert parse_int_list("0-3,10") == [0, 1, 2, 3, 10]
    import click

    with pytest.raises(click.BadParameter, match="empty"):
        parse_int_list("5-2")
    assert apply_overrides({"a": {"b": 1}}, {"a.b": 2}) == {"a": {"b": 2}}
    with pytest.raises(click.BadParameter, match="known: \\['b'\\]"):
        apply_overrides({"a": {"b": 1}}, {"a.c": 2})


def test_unknown_dataset_is_one_line_error(tmp_path):
    res = CliRunner().invoke(cli, ["train", "two-stage-vae", "--data", "imagenet", "--runs-root", str(tmp_path)])
    assert res.exit_code == 1
    assert "Error: unknown dataset 'imagenet'" in res.output and "digits" in res.output
    assert "Traceback" not in res.output


def test_missing_data_root_names_files_and_fixes(tmp_path):
    res = CliRunner().invoke(
        cli, ["train", "two-stage-vae", "--data", "mnist", "--data-root", str(tmp_path / "nowhere"),
              "--runs-root", str(tmp_path / "runs")]
    )
    assert res.exit_code == 1
    assert "train-images-idx3-ubyte" in res.output and "--download" in res.output and "--data-root" in res.output
    assert "Traceback" not in res.output


def test_dry_run_without_the_data_uses_the_published_shape(tmp_path):
    args = ["--data", "mnist", "--data-root", str(tmp_path / "nowhere"), "--dry-run"]
    for family, size in (("two-stage-vae", '"image_size": 32'), ("draw", '"image_size": 32')):
        res = CliRunner().invoke(cli, ["train", family, *args])
        assert res.exit_code == 0, res.output
        assert size in res.output and "published shape 1x32x32" in res.output
    res = CliRunner().invoke(cli, ["train", "draw", *args, "--data-option", "pad=0"])
    assert res.exit_code == 0 and '"image_size": 28' in res.output
    # a dataset whose shape only its files tell: one line naming the flags that make it readable
    res = CliRunner().invoke(cli, ["train", "two-stage-vae", "--data", "folder", "--dry-run"])
    assert res.exit_code == 1 and "--data-option path=" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_bad_override_and_bad_model_dir(tmp_path):
    res = CliRunner().invoke(cli, ["train", "two-stage-vae", "--set", "stage1.epoch=3", "--dry-run"])
    assert res.exit_code != 0 and "stage1.epoch" in res.output
    res = CliRunner().invoke(cli, ["sample", "--model", str(tmp_path)])
    assert res.exit_code == 1 and "neither a model folder" in res.output


def test_dry_run_prints_resolved_config():
    res = CliRunner().invoke(cli, ["train", "two-stage-vae", "--data", "digits", "--dry-run", "--set", "stage1.epochs=3"])
    assert res.exit_code == 0, res.output
    assert '"epochs": 3' in res.output and '"image_size": 32' in res.output


def test_ddp_two_cpu_processes(tmp_path):
    """``--devices 2`` trains with DDP on CPU in 2 processes sharing one run directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("LATENTSTUDIO_RUN_DIR", "LOCAL_RANK", "WORLD_SIZE")}
    cmd = [
        sys.executable, "-m", "latentstudio.cli", "train", "two-stage-vae", "--data", "digits", "--limit", "256",
        "--devices", "2", "--runs-root", str(tmp_path), "--no-progress",
        "--set", "stage1.epochs=1", "--set", "stage2.epochs=1", "--set", "model.stage1.base_dim=8",
        "--set", "model.stage1.latent_dim=8", "--set", "model.stage1.fc_dim=32", "--set", "model.stage2.second_dim=32",
    ]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stderr + proc.stdout
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["00000-two-stage-vae-digits"]  # the second process joined the same run
    model = tmp_path / runs[0] / "model"
    assert (model / "model.safetensors").is_file()
    # each process saw half of the 256 images: 2 steps of 64 per epoch
    import torch

    ckpt = torch.load(tmp_path / runs[0] / "stage1" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2


def test_committed_help_snapshots_are_current():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "cli" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("regenerate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.COMMANDS == COMMANDS
    for cmd in COMMANDS:
        assert mod.file_for(cmd).exists(), f"run python {path} to write the help of {cmd}"
        assert mod.file_for(cmd).read_text() == mod.help_text(cmd), f"run python {path} to refresh {cmd}"
