"""One way to say how long to train: work budgets (--epochs / --max-steps) and a wall-clock safety cap
(--max-minutes) on every trainer, honoured at step granularity, including the two-stage run's encoding
and GMM phases. The end-to-end stops of every trainer are in the contract suite (test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.mixture import GaussianMixture

from latentstudio.cli.main import cli
from latentstudio.errors import LatentStudioError
from latentstudio.models.distributions import DiagonalGaussian
from latentstudio.samplers import GMMSampler
from latentstudio.training import fit, runs

TRAIN_COMMANDS = sorted(cli.commands["train"].commands)


class FakeDeadline(runs.Deadline):
    """A deadline whose clock is set by the test."""

    def __init__(self, minutes, elapsed_minutes=0.0):
        super().__init__(minutes)
        self.elapsed = elapsed_minutes

    def remaining_minutes(self):
        return None if self.minutes is None else self.minutes - self.elapsed


def test_every_train_command_takes_the_same_three_budget_flags():
    assert set(TRAIN_COMMANDS) == {"two-stage-vae", "draw", "sketch-rnn", "stylegan2"}
    for name in TRAIN_COMMANDS:
        opts = {o for p in cli.commands["train"].commands[name].params for o in getattr(p, "opts", [])}
        assert {"--epochs", "--max-steps", "--max-minutes"} <= opts, name


@pytest.mark.parametrize("name", TRAIN_COMMANDS)
@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--max-steps", "-1"), ("--max-minutes", "0")])
def test_a_bad_budget_is_a_one_line_usage_error_naming_the_flag(name, flag, value):
    res = CliRunner().invoke(cli, ["train", name, flag, value, "--dry-run"])
    assert res.exit_code == 2
    assert flag in res.output and "Traceback" not in res.output


def test_deadline_shares():
    assert runs.Deadline(None).cap_for(0.75) is None
    assert runs.Deadline(None).cap_for(0.75, own=3.0) == 3.0
    d = FakeDeadline(10.0)
    assert d.cap_for(0.5) == pytest.approx(5.0, abs=0.01)
    assert d.cap_for(1.0, own=2.0) == 2.0
    assert not d.passed()
    d.elapsed = 10.5
    assert d.passed() and d.remaining_minutes() == pytest.approx(-0.5)


def test_gmm_fitted_an_iteration_at_a_time_equals_one_fit():
    x = torch.randn(1500, 3, generator=torch.Generator().manual_seed(0)).double()
    x[:500] += 4
    ours = GMMSampler(3, n_components=4, seed=1).fit(x)
    ref = GaussianMixture(4, reg_covar=1e-6, max_iter=200, random_state=1).fit(x.numpy())
    assert not ours.stopped_early
    np.testing.assert_allclose(ours.means.numpy(), ref.means_, atol=1e-5)
    np.testing.assert_allclose(ours.weights.numpy(), ref.weights_, atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the one-iteration reference
def test_gmm_stops_when_told():
    x = torch.randn(1500, 3, generator=torch.Generator().manual_seed(0)).double()
    x[:500] += 4
    calls = []
    gmm = GMMSampler(3, n_components=4, seed=1).fit(x, should_stop=lambda: calls.append(1) or True)
    assert gmm.stopped_early and len(calls) == 1 and gmm.is_fitted
    one = GaussianMixture(4, reg_covar=1e-6, max_iter=1, random_state=1).fit(x.numpy())
    np.testing.assert_allclose(gmm.means.numpy(), one.means_, atol=1e-5)


def test_encoding_for_stage_two_stops_at_the_cap_and_names_the_resume_command(monkeypatch, tmp_path):
    class Stage1:
        def encode(self, images, condition=None):
            n = images.shape[0]
            return DiagonalGaussian(torch.zeros(n, 2), torch.zeros(n, 2))

    images = torch.zeros(3 * fit.ENCODE_BATCH, 1, 4, 4, dtype=torch.uint8)
    cond = torch.zeros(len(images), 0)
    q = fit.encode_training_set(Stage1(), images, cond, deadline=FakeDeadline(5.0), progress=False, run_dir=tmp_path)
    assert q.mean.shape == (len(images), 2)
    with pytest.raises(fit.BudgetExceededError, match=r"--resume .* --max-minutes"):
        fit.encode_training_set(Stage1(), images, cond, deadline=FakeDeadline(5.0, 6.0), progress=False,
                                run_dir=tmp_path)


def test_a_resumed_run_may_change_only_its_time_cap(tmp_path):
    config = {"seed": 0, "stage1": {"epochs": 3, "max_minutes": 5.0}}
    run_dir = runs.start_run("two-stage-vae", config, runs_root=tmp_path)
    again = {"seed": 0, "stage1": {"epochs": 3, "max_minutes": 60.0}}
    assert runs.start_run("two-stage-vae", again, resume=run_dir) == run_dir
    with pytest.raises(LatentStudioError, match="stage1"):
        runs.start_run("two-stage-vae", {"seed": 0, "stage1": {"epochs": 4, "max_minutes": 5.0}}, resume=run_dir)


def test_resuming_reads_the_saved_config_with_only_the_new_caps(tmp_path):
    from latentstudio.training.config import TwoStageRunConfig

    saved = TwoStageRunConfig.from_dict({"max_minutes": 1.0, "seed": 3}).to_dict()
    run_dir = runs.start_run("two-stage-vae", saved, runs_root=tmp_path)
    given = {"max_minutes": 30.0, "seed": 4, "stage1": {"max_minutes": 20.0, "epochs": 99}}
    run = runs.read_run_config(run_dir, "two-stage-vae", TwoStageRunConfig, caps_from=given)
    assert run.max_minutes == 30.0 and run.stage1.max_minutes == 20.0
    assert run.seed == 3 and run.stage1.epochs == saved["stage1"]["epochs"]
