"""Dotted config overrides (``--set key.path=value``): one implementation in latentstudio.config."""

from __future__ import annotations

import click
import pytest

from latentstudio.config import apply_overrides
from latentstudio.errors import ConfigError, LatentStudioError

BASE = {
    "seed": 0,
    "accelerator": "auto",
    "stage1": {"epochs": 30, "lr": 0.001, "minutes": None, "deterministic": False, "milestones": [10, 20]},
    "data": {"name": "digits", "options": {}},
}


def test_sets_nested_keys_in_a_copy():
    out = apply_overrides(BASE, {"stage1.epochs": 5, "data.name": "mnist"})
    assert out["stage1"]["epochs"] == 5 and out["data"]["name"] == "mnist"
    assert BASE["stage1"]["epochs"] == 30 and BASE["data"]["name"] == "digits"  # not modified


def test_string_values_are_coerced_to_the_existing_type():
    out = apply_overrides(BASE, {
        "stage1.epochs": "7", "stage1.lr": "1e-3", "seed": 3.0, "stage1.deterministic": "true",
        "stage1.minutes": "2.5", "data.name": 123, "stage1.milestones": "[1, 2]", "data.options": '{"pad": 0}',
    })
    s1 = out["stage1"]
    assert s1["epochs"] == 7 and type(s1["epochs"]) is int
    assert s1["lr"] == 1e-3 and type(s1["lr"]) is float
    assert out["seed"] == 3 and type(out["seed"]) is int
    assert s1["deterministic"] is True
    assert s1["minutes"] == "2.5"  # a None field takes the value as given
    assert out["data"]["name"] == "123"
    assert s1["milestones"] == [1, 2] and out["data"]["options"] == {"pad": 0}
    assert apply_overrides(BASE, {"stage1.lr": 1})["stage1"]["lr"] == 1.0
    assert apply_overrides(BASE, {"stage1.epochs": None})["stage1"]["epochs"] is None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("stage1.epochs", "abc", "an int"),
        ("stage1.epochs", 2.5, "an int"),
        ("stage1.epochs", True, "an int"),
        ("stage1.lr", "fast", "a float"),
        ("stage1.deterministic", "maybe", "a bool"),
        ("stage1.milestones", "[1,", "a list"),
        ("data.options", [1], "an object"),
    ],
)
def test_unparsable_values_are_one_line_config_errors(key, value, expected):
    with pytest.raises(ConfigError) as info:
        apply_overrides(BASE, {key: value})
    msg = str(info.value)
    assert isinstance(info.value, LatentStudioError) and "\n" not in msg
    assert msg.startswith(f"--set {key}=") and expected in msg


def test_unknown_key_lists_the_known_ones_at_that_level():
    with pytest.raises(ConfigError, match=r"--set stage1\.epoch: no field 'stage1\.epoch'; known: "
                                          r"\['deterministic', 'epochs', 'lr', 'milestones', 'minutes'\]"):
        apply_overrides(BASE, {"stage1.epoch": 5})
    with pytest.raises(ConfigError, match=r"no field 'seed\.x'; known: \[\]"):
        apply_overrides(BASE, {"seed.x": 1})
    with pytest.raises(ConfigError, match=r"^-o stage3: "):
        apply_overrides(BASE, {"stage3": 1}, what="-o")


def test_partial_base_checked_against_known():
    out = apply_overrides({"seed": 1}, {"stage1.epochs": "4"}, known=BASE)
    assert out == {"seed": 1, "stage1": {"epochs": 4}}
    with pytest.raises(ConfigError, match="known: "):
        apply_overrides({}, {"stage2.epochs": 4}, known=BASE)


def test_cli_and_study_wrappers_use_the_same_rules():
    from latentstudio.cli.options import apply_overrides as cli_overrides
    from latentstudio.studies.twostage import apply_overrides as study_overrides

    assert cli_overrides(BASE, {"stage1.epochs": "9"})["stage1"]["epochs"] == 9
    with pytest.raises(click.BadParameter, match=r"--set stage1\.epochs='abc': expected an int"):
        cli_overrides(BASE, {"stage1.epochs": "abc"})
    with pytest.raises(ConfigError, match=r"--set stage1\.epochs='abc': expected an int"):
        study_overrides({}, {"stage1.epochs": "abc"}, BASE)


def test_cli_set_with_a_bad_type_is_a_one_line_error(tmp_path):
    from click.testing import CliRunner

    from latentstudio.cli.main import cli

    res = CliRunner().invoke(cli, ["train", "two-stage-vae", "--runs-root", str(tmp_path), "--dry-run",
                                   "--set", "stage1.epochs=abc"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if "Error" in line]
    assert len(errors) == 1 and "stage1.epochs='abc': expected an int" in errors[0]


def test_two_stage_study_spec_coerces_and_rejects_override_values():
    from latentstudio.data import load_images
    from latentstudio.studies import common as C
    from latentstudio.studies.twostage import model_spec

    data = C.StudyData(load_images("digits", "train"), load_images("digits", "test"), spec={"name": "digits"})
    spec = model_spec(data, budget=C.parse_budget("1ep"), overrides={"stage1.lr": "2e-3", "model.stage1.latent_dim": "4"})
    assert spec["stage1"]["lr"] == 0.002 and spec["model"]["stage1"]["latent_dim"] == 4
    with pytest.raises(ConfigError, match=r"^--set stage1\.epochs='abc': expected an int") as info:
        model_spec(data, budget=C.parse_budget("1ep"), overrides={"stage1.epochs": "abc"})
    assert "\n" not in str(info.value)
