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
from ecglatent.datasets.splits import (
    grouped_holdout_folds,
    outer_folds_from_strat_fold,
    stratified_group_split,
    verify_mitdb_split,
    verify_ptbxl_split,
)
from ecglatent.datasets.tables import BeatsLayout, write_json, write_table
from ecglatent.errors import EcglatentError
from ecglatent.sources import mitdb

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


def rep_columns(n: int) -> list[str]:
    """Split-table columns holding each replicate's roles (train / val / test)."""
    return [f"rep{k}" for k in range(n)]


def replicate_rng(seed: int, k: int) -> np.random.Generator:
    """The random stream of replicate ``k`` (its validation draw), fixed by the seed."""
    return np.random.default_rng([seed, k])


def run_split(params: Params) -> dict[str, Any]:
    """Write one split table per database and a summary (DVC metrics)."""
    beats = BeatsLayout(Path(params.preprocess.out_dir))
    out = SplitLayout(Path(params.split.out_dir))
    summary: dict[str, Any] = {}
    if "ptb-xl" in params.data.databases:
        summary["ptb-xl"] = _split_ptbxl(beats, out, params)
    if "mitdb" in params.data.databases:
        summary["mitdb"] = _split_mitdb(beats, out, params)
    write_json(summary, out.summary)
    log.info("split: %s", json.dumps(summary))
    return summary


def _split_ptbxl(beats: BeatsLayout, out: SplitLayout, params: Params) -> dict[str, Any]:
    """Replicate k tests on outer fold k (PTB-XL strat_folds merged); its validation records
    come from the other folds, grouped by patient. ``set``/``fold*`` columns: replicate 0's
    test and its inner CV folds (what `ecglatent tune` searches on)."""
    cfg = params.split
    if not beats.ptbxl_records.exists():
        raise EcglatentError(f"{beats.ptbxl_records} not found: run `dvc repro beats` first")
    records = pd.read_csv(beats.ptbxl_records)
    if records.empty:
        raise EcglatentError(f"{beats.ptbxl_records} has no records: see {beats.rejects}")
    if "strat_fold" not in records or records["strat_fold"].isna().any():
        raise EcglatentError(
            f"{beats.ptbxl_records}: strat_fold missing for some records (PTB-XL's "
            "ptbxl_database.csv holds it); re-run `dvc repro beats` on a full PTB-XL copy"
        )
    y = ptbxl_labels(records, params)
    groups = records["patient_id"].to_numpy()
    try:
        outer = outer_folds_from_strat_fold(records["strat_fold"].to_numpy(), cfg.outer_folds)
    except ValueError as exc:
        raise EcglatentError(f"{beats.ptbxl_records}: {exc}") from exc
    df = pd.DataFrame(
        {"record_id": records["record_id"], "patient_id": groups, "label": y,
         "strat_fold": records["strat_fold"].astype(int), "outer_fold": outer}
    )  # fmt: skip
    cols = rep_columns(cfg.outer_folds)
    for k, col in enumerate(cols):
        dev = np.flatnonzero(outer != k)
        role = np.full(len(df), "test", dtype=object)
        val = stratified_group_split(y[dev], groups[dev], cfg.val_fraction, replicate_rng(params.seed, k))
        role[dev] = np.where(val, "val", "train")
        df[col] = role
    test = outer == 0
    train_idx = np.flatnonzero(~test)
    df["set"] = np.where(test, "test", "train")
    folds = grouped_holdout_folds(
        y[train_idx], groups[train_idx], cfg.n_folds, cfg.val_fraction, np.random.default_rng(params.seed)
    )
    for k in range(cfg.n_folds):
        col = np.full(len(df), "", dtype=object)
        col[train_idx] = np.where(folds[k], "val", "train")
        df[f"fold{k}"] = col
    verify_ptbxl_split(df, cols)
    write_table(df, out.ptbxl)
    verify_ptbxl_split(pd.read_csv(out.ptbxl), cols)  # the file as the next stages read it
    return {
        "task": cfg.task_name,
        "outer_folds": cfg.outer_folds,
        "n_records": len(df),
        "n_test_per_fold": [int((outer == k).sum()) for k in range(cfg.outer_folds)],
        "positive_rate": round(float(y.mean()), 4),
        "positives_per_fold": [int(y[outer == k].sum()) for k in range(cfg.outer_folds)],
    }


def _split_mitdb(beats: BeatsLayout, out: SplitLayout, params: Params) -> dict[str, Any]:
    """DS1 trains, DS2 tests (de Chazal), in every replicate; each replicate draws its own
    validation records from DS1 (grouped by record = patient). ``role``: replicate 0's."""
    cfg = params.split
    if not beats.mitdb_beats.exists():
        raise EcglatentError(f"{beats.mitdb_beats} not found: run `dvc repro beats` first")
    table = pd.read_csv(beats.mitdb_beats, dtype={"record": str, "aami": str},
                        keep_default_na=False, na_values={"pre_rr_s": [""], "post_rr_s": [""]})  # fmt: skip
    records = table.groupby("record", sort=True)
    rec_names = np.array(list(records.groups))
    rec_split = np.array([mitdb.split_of(r) for r in rec_names])
    ds1 = np.flatnonzero(rec_split == "DS1")
    ds1_pos = np.array(
        [int((records.get_group(r)["aami"] == cfg.mitdb_positive_class).mean() > 0.01)
         for r in rec_names[ds1]]
    )  # fmt: skip
    df = pd.DataFrame({"record": rec_names, "split": rec_split})
    cols = rep_columns(cfg.mitdb_replicates)
    for k, col in enumerate(cols):
        val = np.zeros(len(rec_names), dtype=bool)
        if len(ds1):
            val[ds1] = stratified_group_split(ds1_pos, rec_names[ds1], cfg.mitdb_val_fraction,
                                              replicate_rng(params.seed, k))  # fmt: skip
        role = np.where(rec_split == "DS2", "test", np.where(rec_split == "DS1", "train", "excluded"))
        df[col] = np.where(val, "val", role)
    df["role"] = df[cols[0]]
    verify_mitdb_split(df, cols, mitdb.DS1, mitdb.DS2)
    write_table(df, out.mitdb)
    verify_mitdb_split(pd.read_csv(out.mitdb, dtype={"record": str}), cols, mitdb.DS1, mitdb.DS2)
    labelled = table[table["aami"] != ""]
    counts = labelled.groupby(["split", "aami"]).size()
    role = df["role"].to_numpy()
    return {
        "records": {r: int((role == r).sum()) for r in ("train", "val", "test", "excluded")},
        "replicates": cfg.mitdb_replicates,
        "aami_counts": {f"{s}/{a}": int(n) for (s, a), n in counts.items()},
        "positive_class": cfg.mitdb_positive_class,
    }
