"""Where the SiliconNet stages keep their files, and how beat sets go to and from disk.

Layout (every path derives from ``params.siliconet``; dvc.yaml declares the same ones)::

    {out_dir}/mitdb/ds1_train.{npy,csv}   DS1 training half, train_lead, raw mV (n, 301)
    {out_dir}/mitdb/ds1_val.{npy,csv}     DS1 validation half
    {out_dir}/mitdb/ds2_{lead}.{npy,csv}  DS2 per entry of test_leads ("other": V1/V2/V5)
    {out_dir}/pretrain/beats.{npy,csv}    12-lead SimSiam beats (n, 12, 301) of pretrain_databases,
                                          role train/val by patient (float16 with challenge-2021)
    {out_dir}/incartdb/beats.{npy,csv}    INCART 12-lead N/V beats (float16), when fetched
    {out_dir}/normaliser.json             mean/std of DS1 train and of the pretraining train part
    {out_dir}/example_record.json         10 s of a DS2 record: the served model's input example
    {out_dir}/rejects.csv, summary.json
    {models_dir}/pretrain/simsiam.pt, history.csv
    {models_dir}/downstream/{config}_seed{seed}.pt, index.csv
    {reports_dir}/siliconet.md, siliconet_metrics.json, siliconet_results.csv
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglatent.config import Params
from ecglatent.datasets.single_lead import BeatSet, normalise
from ecglatent.errors import EcglatentError


@dataclass(frozen=True)
class SiliconPaths:
    data: Path
    models: Path
    reports: Path

    @classmethod
    def of(cls, params: Params) -> SiliconPaths:
        s = params.siliconet
        return cls(Path(s.out_dir), Path(s.models_dir), Path(s.reports_dir))

    @property
    def mitdb(self) -> Path:
        return self.data / "mitdb"

    @property
    def pretrain_beats(self) -> Path:
        return self.data / "pretrain" / "beats"

    @property
    def incart(self) -> Path:
        return self.data / "incartdb"

    @property
    def normaliser(self) -> Path:
        return self.data / "normaliser.json"

    @property
    def example_record(self) -> Path:
        return self.data / "example_record.json"

    @property
    def rejects(self) -> Path:
        return self.data / "rejects.csv"

    @property
    def summary(self) -> Path:
        return self.data / "summary.json"

    @property
    def pretrain(self) -> Path:
        return self.models / "pretrain"

    @property
    def simsiam(self) -> Path:
        return self.pretrain / "simsiam.pt"

    @property
    def downstream(self) -> Path:
        return self.models / "downstream"

    def model(self, config: str, seed: int) -> Path:
        return self.downstream / f"{config}_seed{seed}.pt"

    @property
    def index(self) -> Path:
        return self.downstream / "index.csv"

    @property
    def report(self) -> Path:
        return self.reports / "siliconet.md"

    @property
    def metrics(self) -> Path:
        return self.reports / "siliconet_metrics.json"

    @property
    def results(self) -> Path:
        return self.reports / "siliconet_results.csv"


def ds2_name(lead: str) -> str:
    return f"ds2_{lead}"


def save_set(stem: Path, x: np.ndarray, table: pd.DataFrame) -> None:
    """``stem.npy`` (the windows) and ``stem.csv`` (one row per window)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if len(x) != len(table):
        raise ValueError(f"{stem}: {len(x)} windows but {len(table)} table rows")
    np.save(stem.with_name(stem.name + ".npy"), x)
    table.to_csv(stem.with_name(stem.name + ".csv"), index=False)


def load_set(stem: Path) -> tuple[np.ndarray, pd.DataFrame]:
    npy, csv = stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".csv")
    if not npy.exists() or not csv.exists():
        raise EcglatentError(f"{npy} not found: run `ecglatent siliconet-beats` first")
    # record names such as "100" must stay strings
    table = pd.read_csv(csv, dtype={"record": str, "lead": str})
    return np.load(npy), table


def load_beat_set(stem: Path, mean: float, std: float) -> BeatSet:
    """Single-lead windows normalised with (mean, std), as (n, 1, T) float32 with labels."""
    x, table = load_set(stem)
    return BeatSet(normalise(x, mean, std)[:, None, :], table["label"].to_numpy(np.int64), table)


def write_json(path: Path, obj: Any) -> None:
    """JSON with NaN written as null, so `dvc metrics show` and other parsers can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    if not path.exists():
        raise EcglatentError(f"{path} not found: run the stage that writes it first")
    return json.loads(path.read_text())


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def stratified_cap(groups: np.ndarray, n: int, seed: int, min_per_group: int = 1) -> np.ndarray:
    """Sorted indices of at most ~``n`` items, each group (e.g. lead × class) kept in proportion.

    Every non-empty group keeps at least ``min_per_group`` items, so a lead with a handful of
    V beats still has some; ``n <= 0`` keeps everything.
    """
    idx = np.arange(len(groups))
    if n <= 0 or n >= len(groups):
        return idx
    rng = np.random.default_rng(seed)
    frac = n / len(groups)
    keep = []
    for g in pd.unique(groups):
        members = idx[groups == g]
        k = min(len(members), max(min_per_group, round(len(members) * frac)))
        keep.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(keep))
