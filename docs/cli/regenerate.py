"""Write the ``--help`` text of every ``latentstudio`` command to docs/cli/<command>.txt.

Run after changing a command: ``python docs/cli/regenerate.py`` (tests/test_cli.py checks that
the committed files match the current help).
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from latentstudio.cli.main import cli

COMMANDS = [[], ["train"], ["train", "two-stage-vae"], ["sample"], ["reconstruct"], ["evaluate"], ["quickstart"]]
HERE = Path(__file__).parent


def help_text(cmd: list[str]) -> str:
    result = CliRunner().invoke(cli, [*cmd, "--help"], prog_name="latentstudio", terminal_width=100)
    return result.output


def file_for(cmd: list[str]) -> Path:
    return HERE / (("-".join(cmd) or "latentstudio") + ".txt")


def main() -> None:
    for cmd in COMMANDS:
        file_for(cmd).write_text(help_text(cmd))
        print(f"wrote {file_for(cmd)}")


if __name__ == "__main__":
    main()
