"""Write the ``--help`` text of every ``latentstudio`` command to docs/cli/<command>.txt.

Run after changing a command: ``python docs/cli/regenerate.py`` (tests/test_cli.py checks that
the committed files match the current help).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from latentstudio.cli.main import cli

HERE = Path(__file__).parent


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command path of the CLI, groups included: ``[[], ["train"], ["train", "draw"], ...]``."""
    out = [list(prefix)]
    for name in sorted(group.commands):
        sub = group.commands[name]
        if isinstance(sub, click.Group):
            out += all_commands(sub, (*prefix, name))
        else:
            out.append([*prefix, name])
    return out


COMMANDS = all_commands()


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
