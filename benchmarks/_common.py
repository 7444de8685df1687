"""Shared bits of the benchmark scripts: where the data is, and writing the results file."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def mirror_dir() -> Path:
    return Path(os.environ.get("ECGLATENT_DATA_MIRROR", REPO.parent / "shared" / "data"))


def machine() -> dict[str, object]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_result(name: str | Path, payload: dict) -> Path:
    """Write ``payload`` (with the machine's facts) to ``benchmarks/results/<name>.json``, or
    to ``name`` itself when it is a path."""
    path = name if isinstance(name, Path) else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
