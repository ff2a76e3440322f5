"""Numbered, self-describing run directories (``runs/00003-two-stage-vae-mnist/``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_RUN_DIR = "LATENTSTUDIO_RUN_DIR"
_RUN_RE = re.compile(r"^(\d{5})-")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def create_run_dir(root: str | Path, description: str) -> Path:
    """Create ``<root>/<NNNNN>-<description>/`` with the next free number and return it.

    The number is one more than the largest existing ``NNNNN-*`` entry; creation uses
    ``mkdir(exist_ok=False)`` so two concurrent runs never share (or overwrite) a directory.
    Worker processes of a multi-process (DDP) run reuse the directory named in
    ``$LATENTSTUDIO_RUN_DIR`` instead of creating a new one.
    """
    inherited = os.environ.get(ENV_RUN_DIR)
    if inherited:
        return Path(inherited)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        path = root / f"{max(numbers, default=-1) + 1:05d}-{_slug(description)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        os.environ[ENV_RUN_DIR] = str(path.resolve())  # inherited by DDP worker processes
        return path
