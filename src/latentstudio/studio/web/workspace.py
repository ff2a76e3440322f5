"""Where the web studio keeps files: one folder per server, one folder per browser session inside it.

Layout (``root`` is a new private temporary folder unless one is given)::

    root/                      Gradio's upload folder and cache (``GRADIO_TEMP_DIR`` while serving)
      <sha>/<name>             an upload as Gradio receives it; moved into its session at once
      sessions/<session>/
        uploads/000001/<name>  the photo and latent files this session uploaded
        renders/000001/...     images, latents and sweeps written for this session (one folder per event)

A session's folder is deleted when its browser tab closes (:meth:`Workspace.end_session`, wired to
Gradio's ``unload`` event) and the whole root when the server stops (:meth:`Workspace.close`, wired
to the server's shutdown and ``atexit``), unless ``keep_files`` is set. Each session's folder is kept
under ``max_session_bytes`` by deleting its oldest render folders first.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import os
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DEFAULT_SESSION_BYTES", "SessionEnded", "Workspace"]

#: Default cap of one session's folder (bytes).
DEFAULT_SESSION_BYTES = 200 * 1024 * 1024

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SessionEnded(RuntimeError):
    """A write for a session whose folder was already deleted (its tab closed while a request ran)."""


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                continue
    return total


class Workspace:
    """The server's folder (see the module docstring).

    Args:
        root: the folder (created if missing); default a new ``latentstudio-studio-*`` temporary folder.
        keep_files: keep every file when sessions end and when the server stops.
        max_session_bytes: cap of one session's folder; the oldest render folders are removed beyond it.
    """

    def __init__(self, root: str | Path | None = None, *, keep_files: bool = False,
                 max_session_bytes: int = DEFAULT_SESSION_BYTES) -> None:
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="latentstudio-studio-"))
        else:
            self.root = Path(root).resolve()
            self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.keep_files = bool(keep_files)
        self.max_session_bytes = int(max_session_bytes)
        self._lock = threading.Lock()
        self._ended: set[str] = set()
        self._counter = itertools.count(1)
        self._closed = False
        self._previous_env: str | None = None
        self._activated = False
        atexit.register(_close_at_exit, weakref.ref(self))

    # ---- Gradio's folder
    def activate(self) -> None:
        """Make the root Gradio's upload folder and cache (``GRADIO_TEMP_DIR``); call before building the app
        (Gradio reads it when components are created and when the server starts). :meth:`close` restores
        the previous value."""
        if not self._activated:
            self._previous_env = os.environ.get("GRADIO_TEMP_DIR")
            self._activated = True
        os.environ["GRADIO_TEMP_DIR"] = str(self.root)

    # ---- sessions
    def _key(self, session: str) -> str:
        return session if _SAFE.match(session or "") else hashlib.sha256(str(session).encode()).hexdigest()[:32]

    def session_dir(self, session: str, *, create: bool = True) -> Path:
        """The folder of ``session`` (a Gradio session hash).

        Raises:
            SessionEnded: the session already ended (nothing is written for it any more).
        """
        key = self._key(session)
        path = self.root / "sessions" / key
        if create:
            with self._lock:
                if key in self._ended or self._closed:
                    raise SessionEnded(f"session {key[:8]} has ended")
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def new_render_dir(self, session: str) -> Path:
        """A new, empty folder for the files of one event of ``session``."""
        folder = self.session_dir(session) / "renders" / f"{next(self._counter):06d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def store_upload(self, session: str, path: str | Path) -> Path:
        """Move an uploaded file from Gradio's upload folder into the session's ``uploads/`` folder
        (files outside the root, e.g. given by a script, are copied). Returns the new path."""
        src = Path(path)
        folder = self.session_dir(session) / "uploads" / f"{next(self._counter):06d}"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / (re.sub(r"[^A-Za-z0-9_.+-]+", "-", src.name).lstrip(".")[-120:] or "upload")
        if self.owns(src) and not self._in_sessions(src):
            os.replace(src, dest)
            self._remove_empty_parent(src)
        else:
            shutil.copyfile(src, dest)
        return dest

    def discard(self, path: str | Path | None) -> None:
        """Delete an uploaded file now (a refused upload), wherever in the root it is."""
        if path is None:
            return
        p = Path(path)
        if self.owns(p):
            p.unlink(missing_ok=True)
            self._remove_empty_parent(p)

    def owns(self, path: str | Path) -> bool:
        """Whether ``path`` lies inside the root."""
        try:
            Path(path).resolve().relative_to(self.root)
        except ValueError:
            return False
        return True

    def _in_sessions(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root / "sessions")
        except ValueError:
            return False
        return True

    def _remove_empty_parent(self, path: Path) -> None:
        parent = path.resolve().parent
        if parent != self.root and self.owns(parent) and not self._in_sessions(parent):
            try:
                parent.rmdir()  # Gradio's per-upload <sha>/ folder, when nothing else is in it
            except OSError:
                pass

    def session_bytes(self, session: str) -> int:
        return _tree_size(self.session_dir(session, create=False))

    def enforce_cap(self, session: str, keep: Iterable[str | Path | None] = ()) -> list[Path]:
        """Delete the session's oldest render folders until it is under ``max_session_bytes``; folders
        holding a file in ``keep`` (what the page shows now) stay. Returns the folders removed."""
        renders = self.session_dir(session, create=False) / "renders"
        if not renders.is_dir():
            return []
        kept = {Path(k).resolve().parent for k in keep if k}
        total = self.session_bytes(session)
        removed = []
        for folder in sorted(p for p in renders.iterdir() if p.is_dir()):
            if total <= self.max_session_bytes:
                break
            if folder.resolve() in kept:
                continue
            size = _tree_size(folder)
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            removed.append(folder)
        return removed

    def end_session(self, session: str) -> bool:
        """The session ended: delete its folder (kept with ``keep_files``). Returns whether it was deleted."""
        key = self._key(session)
        with self._lock:
            self._ended.add(key)
        if self.keep_files:
            return False
        shutil.rmtree(self.root / "sessions" / key, ignore_errors=True)
        return True

    def close(self) -> None:
        """The server stopped: delete the root (kept with ``keep_files``) and restore ``GRADIO_TEMP_DIR``."""
        with self._lock:
            self._closed = True
        if self._activated and os.environ.get("GRADIO_TEMP_DIR") == str(self.root):
            if self._previous_env is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = self._previous_env
        if not self.keep_files:
            shutil.rmtree(self.root, ignore_errors=True)


def _close_at_exit(ref: weakref.ref) -> None:
    ws = ref()
    if ws is not None:
        ws.close()
