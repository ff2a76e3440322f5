"""Every hint names a flag that exists on a command that prints it, and the command line shows flags, not
Python spellings.

The texts are collected from the source: every string literal of ``src/latentstudio`` (f-strings with their
placeholders) that reads like a sentence and names a ``--flag``, except docstrings and option help. A text is
checked against the commands that can print it:

- a text that names a command (``latentstudio evaluate ... --download-weights``) against that command;
- a text inside a command's own function (``cli/*.py``) against that command;
- any other text against the commands of its module (:data:`PRINTED_BY`): the flag must exist on one of them.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import click
import pytest

from latentstudio.cli.main import cli
from latentstudio.cli.options import DEPRECATED_FLAGS, cli_message

SRC = Path(__file__).resolve().parents[1] / "src" / "latentstudio"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
NAMED_COMMAND = re.compile(r"latentstudio ((?:train|study|directions) [a-z0-9-]+|[a-z][a-z0-9-]*)")


def _commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out.update(_commands(cmd, f"{prefix}{name} "))
        else:
            out[f"{prefix}{name}"] = cmd
    return out


COMMANDS = _commands()
ROOT_FLAGS = {"--help", "--version", "--debug", "-h"}


def flags_of(name: str) -> set[str]:
    cmd = COMMANDS[name]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | ROOT_FLAGS


def _all(prefix: str) -> list[str]:
    return [c for c in COMMANDS if c.startswith(prefix)]


TRAIN = _all("train ")
STUDY = _all("study ")
DATA_VERBS = ["reconstruct", "interpolate", "evaluate", *TRAIN, *STUDY, *_all("directions ")]
MODEL_VERBS = ["sample", "generate", "reconstruct", "interpolate", "evaluate", "video", "edit", "project", "studio",
               "complete", "render", *_all("directions ")]

#: Module (path under src/latentstudio, a prefix) -> commands that can print its messages, first match wins.
PRINTED_BY: list[tuple[str, list[str]]] = [
    ("cli/", list(COMMANDS)),
    ("data/", DATA_VERBS + ["complete", "render"]),
    ("training/", TRAIN + STUDY + ["quickstart"]),
    ("evaluation/", ["evaluate", *STUDY, *TRAIN]),
    ("metrics/", ["evaluate", *STUDY, *TRAIN, "project", "studio", "edit"]),
    ("studies/", STUDY),
    ("studio/", ["studio", "edit", "project", "align", *_all("directions "), *TRAIN]),  # "train one without ..."
    ("models/stylegan2/convert", ["convert"]),
    ("", MODEL_VERBS + TRAIN + ["convert", "quickstart"]),
]


def _callback_spans() -> dict[tuple[str, int], str]:
    """(file, first line of the function) -> command name, for every command callback."""
    spans = {}
    for name, cmd in COMMANDS.items():
        fn = inspect.unwrap(cmd.callback)
        spans[(str(Path(inspect.getsourcefile(fn)).resolve()), fn.__code__.co_firstlineno)] = name
    return spans


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def collect_texts() -> list[tuple[str, int, str, list[str]]]:
    """``(path, line, text, commands that can print it)`` of every message literal naming a flag."""
    spans = _callback_spans()
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text())
        skip: set[int] = set()
        owner: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and _text(body[0].value) is not None:
                    skip.add(id(body[0].value))
            if isinstance(node, ast.FunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                cmd = spans.get((str(path.resolve()), first)) or spans.get((str(path.resolve()), node.lineno))
                if cmd:
                    for sub in ast.walk(node):
                        owner[id(sub)] = cmd
            if isinstance(node, ast.keyword) and node.arg in ("help", "metavar", "short_help"):
                for sub in ast.walk(node.value):
                    skip.add(id(sub))
        default = next(cmds for prefix, cmds in PRINTED_BY if rel.startswith(prefix))
        for node in ast.walk(tree):
            text = None if id(node) in skip else _text(node)
            if not text or " " not in text.strip() or not FLAG.search(text):
                continue
            if isinstance(node, ast.Constant) and any(id(node) in (id(v) for v in p.values)
                                                      for p in ast.walk(tree) if isinstance(p, ast.JoinedStr)):
                continue  # a piece of an f-string: checked as part of it
            named = [m.group(1) for m in NAMED_COMMAND.finditer(text) if m.group(1) in COMMANDS]
            cmds = named or ([owner[id(node)]] if id(node) in owner else default)
            out.append((rel, node.lineno, text, cmds))
    return out


TEXTS = collect_texts()


def test_the_collector_finds_the_messages():
    assert len(TEXTS) > 30
    assert any("--download-weights" in t for _, _, t, _ in TEXTS)
    assert any(p.startswith("cli/") for p, _, _, _ in TEXTS)


@pytest.mark.parametrize("path,line,text,commands", TEXTS, ids=[f"{p}:{n}" for p, n, _, _ in TEXTS])
def test_every_flag_in_a_message_exists_on_a_command_that_prints_it(path, line, text, commands):
    known = set().union(*(flags_of(c) for c in commands))
    wrong = [f for f in FLAG.findall(cli_message(text)) if f not in known and f not in DEPRECATED_FLAGS]
    assert not wrong, f"{path}:{line} names {wrong}, which none of {commands} has: {text!r}"


@pytest.mark.parametrize("path,line,text,commands", TEXTS, ids=[f"{p}:{n}" for p, n, _, _ in TEXTS])
def test_messages_say_flags_not_python_spellings(path, line, text, commands):
    shown = cli_message(text)
    assert not re.search(r"\b(?:overwrite|download|download_weights)=True\b|\bsplit='", shown), shown
    assert "(CLI" not in shown, shown


def test_the_hints_the_issue_found_name_real_flags():
    from latentstudio.metrics import extractors
    from latentstudio.training.lit_module import GenerativeLitModule

    inception = cli_message(extractors._missing_message())
    assert "--download-weights" in inception and "--download " not in inception + " "
    assert set(FLAG.findall(inception)) <= flags_of("evaluate")
    hint = inspect.signature(GenerativeLitModule).parameters["nonfinite_hint"].default
    for command in ("train two-stage-vae", "train draw"):
        assert set(FLAG.findall(hint)) <= flags_of(command), hint
    assert "--lr" not in FLAG.findall(hint) and "--grad-clip" not in FLAG.findall(hint)


def test_cli_message_turns_python_spellings_into_flags():
    assert cli_message("x exists; pass overwrite=True (CLI: --overwrite) to replace it") == \
        "x exists; pass --overwrite to replace it"
    assert cli_message("pass --download (download=True) to fetch them") == "pass --download to fetch them"
    assert cli_message("use split='train' (--split train)") == "use --split train"
    assert cli_message("no seeds; pass e.g. seeds=[0, 1] (CLI: --seeds 0-7)") == "no seeds; pass e.g. --seeds 0-7"
    assert cli_message("got 0 (CLI: --n)") == "got 0 (--n)"
    assert cli_message("two\n  lines") == "two lines"
    assert cli_message("fetch it with --download-weights (of `latentstudio evaluate`; Python: download=True)") == \
        "fetch it with --download-weights (of `latentstudio evaluate`)"
