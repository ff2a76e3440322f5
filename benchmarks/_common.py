"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_root(arg: str | None) -> Path:
    """``--data-root``, else ``$LATENTSTUDIO_DATA``, else ../shared/data beside the repository."""
    return Path(arg or os.environ.get("LATENTSTUDIO_DATA") or DEFAULT_DATA)


def environment() -> dict[str, Any]:
    from latentstudio.io.checkpoint import library_versions

    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "versions": library_versions(),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Print ``result`` as JSON and write it to benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    print(text)
    path = RESULTS / f"{name}.json"
    path.write_text(text + "\n")
    return path
