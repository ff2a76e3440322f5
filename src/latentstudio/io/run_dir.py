"""Numbered, self-describing run directories (``runs/00003-two-stage-vae-mnist/``)."""

from __future__ import annotations

import re
from pathlib import Path

# A multi-process (DDP) run publishes its directory here so that the worker processes, which
# re-run the same command, join it instead of creating a new one.
ENV_RUN_DIR = "LATENTSTUDIO_RUN_DIR"
_RUN_RE = re.compile(r"^(\d{5})-")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def create_run_dir(root: str | Path, description: str) -> Path:
    """Create ``<root>/<NNNNN>-<description>/`` with the next free number and return it.

    The number is one more than the largest existing ``NNNNN-*`` entry; creation uses
    ``mkdir(exist_ok=False)`` so two concurrent runs never share (or overwrite) a directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        path = root / f"{max(numbers, default=-1) + 1:05d}-{_slug(description)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
