"""Atomic writes: a file or folder is either the old version or the complete new one, never half."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from latentstudio.errors import RunExistsError


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    Raises:
        RunExistsError: if ``path`` exists and ``overwrite`` is False (nothing is written).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a new empty folder next to ``path``; on success it is renamed onto ``path``.

    Fill the yielded folder inside the ``with`` block. When the block ends without an exception the
    folder replaces ``path``: an existing ``path`` is first renamed aside to ``.<name>.old`` and
    deleted once the new folder is in place, so ``path`` is at every moment either the complete old
    folder or the complete new one (a crash in between leaves the old one in ``.<name>.old``). On an
    exception the temporary folder is deleted and ``path`` is untouched.

    Raises:
        RunExistsError: ``path`` exists and ``overwrite`` is False, checked on entry (nothing is
            created) and again before the rename.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise RunExistsError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Atomically write ``data`` to ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | Path, obj: Any, *, overwrite: bool = False) -> Path:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", overwrite=overwrite)


def append_jsonl(path: str | Path, record: dict[str, Any]) -> Path:
    """Append one JSON line to ``path`` (created if missing), flushed and fsynced.

    Appending a single ``write`` of one line is atomic enough for log files: an earlier line is
    never rewritten.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read every record of a JSON-lines file (empty list if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
