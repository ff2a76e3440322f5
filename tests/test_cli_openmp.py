"""The ``latentstudio`` entry point sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads OpenMP, keeps a
user's value, and ``import latentstudio`` leaves the environment alone.

Each case runs in a fresh interpreter (the variable only counts when libgomp initialises, once per
process). ``OMP_DISPLAY_ENV=VERBOSE`` makes libgomp print the settings it read when torch loads it, so
the test sees what the OpenMP runtime itself uses, not only ``os.environ``: its spin count is 0 under
``PASSIVE``, 300000 when the variable is unset (idle threads spin a while) and larger under ``ACTIVE``
(libgomp prints ``OMP_WAIT_POLICY = 'PASSIVE'`` for an unset variable too, so the spin count is the
telling line). The command itself is replaced by a stand-in that imports torch: no real command runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import os, sys
import latentstudio
import latentstudio.cli.main as m
print("after_import=" + os.environ.get("OMP_WAIT_POLICY", "unset"))
print("torch_imported_by_cli=" + str("torch" in sys.modules))

def command(**kwargs):
    import torch  # loads libgomp, which reads OMP_WAIT_POLICY now
    torch.ones(2).sum()
    print("in_command=" + os.environ.get("OMP_WAIT_POLICY", "unset"))

if sys.argv[1] == "main":
    m.cli = command
    m.main()
else:  # a user's script: the package without the entry point
    command()
"""


def _run(policy: str | None, how: str = "main") -> tuple[str, str | None]:
    """(stdout, libgomp's GOMP_SPINCOUNT line or None when torch's OpenMP runtime is not libgomp)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(OMP_DISPLAY_ENV="VERBOSE", OMP_NUM_THREADS="1")
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, how], env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    spin = [s.strip() for s in out.stderr.splitlines() if s.strip().startswith("GOMP_SPINCOUNT")]
    return out.stdout, spin[0] if spin else None


def test_entry_point_sets_passive_before_openmp_loads():
    stdout, spin = _run(None)
    assert "after_import=unset" in stdout  # importing the package (and the CLI module) changes nothing
    assert "torch_imported_by_cli=False" in stdout  # so main() runs before OpenMP initialises
    assert "in_command=PASSIVE" in stdout
    if spin is None:
        pytest.skip("torch's OpenMP runtime does not print OMP_DISPLAY_ENV (not libgomp)")
    assert spin == "GOMP_SPINCOUNT = '0'", spin  # PASSIVE: idle threads sleep at once
    # a user's script that imports the package keeps the runtime's default (spin a while, then sleep)
    stdout, spin = _run(None, how="script")
    assert "in_command=unset" in stdout and spin != "GOMP_SPINCOUNT = '0'", spin


def test_entry_point_keeps_the_users_policy():
    stdout, spin = _run("ACTIVE")
    assert "after_import=ACTIVE" in stdout and "in_command=ACTIVE" in stdout
    if spin is not None:
        assert spin != "GOMP_SPINCOUNT = '0'" and spin != "GOMP_SPINCOUNT = '300000'", spin
