"""Where latentstudio looks for data and caches files."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

ENV_DATA = "LATENTSTUDIO_DATA"
ENV_CACHE = "LATENTSTUDIO_CACHE"


def default_data_root() -> Path:
    """``$LATENTSTUDIO_DATA`` if set, else the user data dir (``~/.local/share/latentstudio/data`` on Linux)."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return Path(user_data_dir("latentstudio")) / "data"


def resolve_data_root(root: str | Path | None) -> Path:
    """The explicit ``root`` if given, else :func:`default_data_root`."""
    return Path(root).expanduser() if root is not None else default_data_root()


def cache_dir() -> Path:
    """``$LATENTSTUDIO_CACHE`` if set, else the user cache dir (created on demand)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        p = Path(env).expanduser()
    else:
        p = Path(user_cache_dir("latentstudio"))
    p.mkdir(parents=True, exist_ok=True)
    return p
