"""The README's Quick start has exactly two command lines, and CI runs the second verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_lines_install_and_quickstart_then_tests():
    lines = quick_start_lines()
    assert len(lines) == 2
    assert "pip install" in lines[0] and lines[0].endswith("latentstudio quickstart")
    assert "pip install" in lines[1] and lines[1].endswith("pytest")


def test_ci_runs_the_readme_test_line_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_lines()[1] in ci
