"""Paths and readers/writers of the beat tables the `beats` stage writes and later stages read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REJECT_COLUMNS = ["database", "record", "path", "reason"]


@dataclass(frozen=True)
class BeatsLayout:
    """Every file of the `beats` stage, defined once (dvc.yaml names the same paths)."""

    root: Path

    @property
    def ptbxl_records(self) -> Path:
        return self.root / "ptb-xl" / "records.csv"

    @property
    def ptbxl_median_beats(self) -> Path:
        return self.root / "ptb-xl" / "median_beats.npy"

    @property
    def mitdb_beats(self) -> Path:
        return self.root / "mitdb" / "beats.csv"

    @property
    def mitdb_windows(self) -> Path:
        return self.root / "mitdb" / "beats.npy"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a CSV atomically, so a killed stage never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_array(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def write_json(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_rejects(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)
