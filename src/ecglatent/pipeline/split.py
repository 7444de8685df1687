"""`split` stage: task labels and patient-grouped, stratified train/test and CV splits."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglatent.config import Params
from ecglatent.datasets.splits import grouped_holdout_folds, stratified_group_split
from ecglatent.datasets.tables import BeatsLayout, write_json, write_table
from ecglatent.errors import EcglatentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitLayout:
    root: Path

    @property
    def ptbxl(self) -> Path:
        return self.root / "ptb-xl.csv"

    @property
    def mitdb(self) -> Path:
        return self.root / "mitdb.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


def ptbxl_labels(records: pd.DataFrame, params: Params) -> np.ndarray:
    """1 where any configured superclass or SCP code is present (at ``min_likelihood``)."""
    cfg = params.split
    supers = set(cfg.positive_superclasses)
    codes = set(cfg.positive_codes)
    has_super = records["superclasses"].fillna("").map(lambda s: bool(supers & set(s.split(";"))))
    has_code = records["scp_codes"].map(
        lambda s: any(c in codes and v >= cfg.min_likelihood for c, v in json.loads(s).items())
    )
    return (has_super | has_code).to_numpy().astype(np.int64)


def run_split(params: Params) -> dict[str, Any]:
    """Write one split table per database and a summary (DVC metrics)."""
    beats = BeatsLayout(Path(params.preprocess.out_dir))
    out = SplitLayout(Path(params.split.out_dir))
    rng = np.random.default_rng(params.seed)
    summary: dict[str, Any] = {}
    if "ptb-xl" in params.data.databases:
        summary["ptb-xl"] = _split_ptbxl(beats, out, params, rng)
    if "mitdb" in params.data.databases:
        summary["mitdb"] = _split_mitdb(beats, out, params, rng)
    write_json(summary, out.summary)
    log.info("split: %s", json.dumps(summary))
    return summary


def _split_ptbxl(beats: BeatsLayout, out: SplitLayout, params: Params, rng) -> dict[str, Any]:
    cfg = params.split
    if not beats.ptbxl_records.exists():
        raise EcglatentError(f"{beats.ptbxl_records} not found: run `dvc repro beats` first")
    records = pd.read_csv(beats.ptbxl_records)
    if records.empty:
        raise EcglatentError(f"{beats.ptbxl_records} has no records: see {beats.rejects}")
    y = ptbxl_labels(records, params)
    groups = records["patient_id"].to_numpy()
    test = stratified_group_split(y, groups, cfg.test_fraction, rng)
    train_idx = np.flatnonzero(~test)
    folds = grouped_holdout_folds(
        y[train_idx], groups[train_idx], cfg.n_folds, cfg.val_fraction, rng
    )
    df = pd.DataFrame(
        {"record_id": records["record_id"], "patient_id": groups, "label": y,
         "set": np.where(test, "test", "train")}
    )  # fmt: skip
    for k in range(cfg.n_folds):
        col = np.full(len(df), "", dtype=object)
        col[train_idx] = np.where(folds[k], "val", "train")
        df[f"fold{k}"] = col
    write_table(df, out.ptbxl)
    return {
        "task": cfg.task_name,
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "positive_rate_train": round(float(y[~test].mean()), 4),
        "positive_rate_test": round(float(y[test].mean()), 4) if test.any() else None,
    }


def _split_mitdb(beats: BeatsLayout, out: SplitLayout, params: Params, rng) -> dict[str, Any]:
    cfg = params.split
    if not beats.mitdb_beats.exists():
        raise EcglatentError(f"{beats.mitdb_beats} not found: run `dvc repro beats` first")
    table = pd.read_csv(beats.mitdb_beats, dtype={"record": str, "aami": str},
                        keep_default_na=False, na_values={"pre_rr_s": [""], "post_rr_s": [""]})  # fmt: skip
    records = table.groupby("record", sort=True)
    rec_names = np.array(list(records.groups))
    rec_split = np.array([records.get_group(r)["split"].iloc[0] for r in rec_names])
    # Validation records come from DS1 only, grouped by record (one patient each).
    ds1 = np.flatnonzero(rec_split == "DS1")
    ds1_pos = np.array(
        [int((records.get_group(r)["aami"] == cfg.mitdb_positive_class).mean() > 0.01)
         for r in rec_names[ds1]]
    )  # fmt: skip
    val = np.zeros(len(rec_names), dtype=bool)
    if len(ds1):
        val[ds1] = stratified_group_split(ds1_pos, rec_names[ds1], cfg.mitdb_val_fraction, rng)
    role = np.where(rec_split == "DS2", "test", np.where(rec_split == "DS1", "train", "excluded"))
    role = np.where(val, "val", role)
    df = pd.DataFrame({"record": rec_names, "split": rec_split, "role": role})
    write_table(df, out.mitdb)
    labelled = table[table["aami"] != ""]
    counts = labelled.groupby(["split", "aami"]).size()
    return {
        "records": {r: int((role == r).sum()) for r in ("train", "val", "test", "excluded")},
        "aami_counts": {f"{s}/{a}": int(n) for (s, a), n in counts.items()},
        "positive_class": cfg.mitdb_positive_class,
    }
