"""The beats stage's tables joined with the split stage's roles, as numpy arrays per dataset.

Two datasets feed the β-VAE: ``ptbxl`` (record-level 12-lead median beats, task from params)
and ``mitdb`` (single 2-lead beats, V vs rest, trained on DS1, tested on DS2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecglatent.config import Params
from ecglatent.datasets.tables import BeatsLayout
from ecglatent.errors import EcglatentError

DATASETS: tuple[str, ...] = ("ptbxl", "mitdb")


@dataclass(frozen=True)
class BeatArrays:
    """Beats (n, leads, T) in mV, RR μ/σ-like extras (n, 2) in s, labels (n,), and roles.

    ``role`` is 'train', 'val', 'test' (or '' for unused items). ``fold_val`` (n_folds, n)
    marks each CV fold's validation items inside train+val (PTB-XL; MIT-BIH has one fold).
    """

    name: str
    x: np.ndarray
    rr: np.ndarray
    y: np.ndarray
    role: np.ndarray
    groups: np.ndarray
    lead_names: tuple[str, ...]
    fs: float
    meta: pd.DataFrame = field(repr=False)
    fold_val: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), bool))

    def subset(self, mask: np.ndarray) -> BeatArrays:
        idx = np.flatnonzero(mask)
        return BeatArrays(
            self.name, self.x[idx], self.rr[idx], self.y[idx], self.role[idx], self.groups[idx],
            self.lead_names, self.fs, self.meta.iloc[idx].reset_index(drop=True),
            self.fold_val[:, idx] if self.fold_val.size else self.fold_val,
        )  # fmt: skip

    def with_fold(self, k: int) -> BeatArrays:
        """Roles of CV fold ``k``: its validation items become 'val', the rest of train 'train'."""
        if not self.fold_val.size:
            return self
        role = self.role.copy()
        dev = np.isin(role, ["train", "val"])
        role[dev] = np.where(self.fold_val[k][dev], "val", "train")
        return BeatArrays(self.name, self.x, self.rr, self.y, role, self.groups, self.lead_names,
                          self.fs, self.meta, self.fold_val)  # fmt: skip


def load_dataset(name: str, params: Params, replicate: int | None = None) -> BeatArrays:
    """Arrays of dataset ``name`` ('ptbxl' or 'mitdb') from the beats and split stages.

    ``replicate`` k: the roles of replicate k (PTB-XL: outer fold k is the test set; MIT-BIH:
    DS2, with replicate k's validation records). None: replicate 0 with PTB-XL's inner CV
    folds (``fold_val``, for tuning).
    """
    if name == "ptbxl":
        return _ptbxl(params, replicate)
    if name == "mitdb":
        return _mitdb(params, replicate)
    raise EcglatentError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")


def _need(path: Path, stage: str) -> Path:
    if not path.exists():
        raise EcglatentError(f"{path} not found: run `dvc repro {stage}` first")
    return path


def _replicate_column(split: pd.DataFrame, replicate: int, path: Path) -> str:
    col = f"rep{replicate}"
    if col not in split.columns:
        n = sum(c.startswith("rep") for c in split.columns)
        raise EcglatentError(f"{path} has {n} replicate(s), no {col}: run `dvc repro split`")
    return col


def _ptbxl(params: Params, replicate: int | None = None) -> BeatArrays:
    beats = BeatsLayout(Path(params.preprocess.out_dir))
    split_path = _need(Path(params.split.out_dir) / "ptb-xl.csv", "split")
    records = pd.read_csv(_need(beats.ptbxl_records, "beats"))
    x = np.load(_need(beats.ptbxl_median_beats, "beats"))
    split = pd.read_csv(split_path).set_index("record_id")
    split = split.loc[records["record_id"]]
    role = split["set"].to_numpy().astype(object)
    fold_cols = sorted(c for c in split.columns if c.startswith("fold"))
    fold_val = np.stack([split[c].fillna("").to_numpy() == "val" for c in fold_cols])
    if replicate is not None:
        role = split[_replicate_column(split, replicate, split_path)].to_numpy().astype(object)
        fold_val = np.zeros((0, 0), bool)
    else:
        # Fold 0's validation set is the default; other folds come from with_fold(k).
        role = np.where((role == "train") & fold_val[0], "val", role)
    rr = records[["rr_mean_s", "rr_std_s"]].to_numpy(np.float32)
    return BeatArrays(
        "ptbxl", x.astype(np.float32), rr, split["label"].to_numpy(np.float32), role,
        records["patient_id"].to_numpy(), ("I", "II", "III", "aVR", "aVL", "aVF",
        "V1", "V2", "V3", "V4", "V5", "V6"), float(records["fs"].iloc[0]) if len(records) else 500.0,
        records, fold_val,
    )  # fmt: skip


def _mitdb(params: Params, replicate: int | None = None) -> BeatArrays:
    beats = BeatsLayout(Path(params.preprocess.out_dir))
    table = pd.read_csv(_need(beats.mitdb_beats, "beats"), dtype={"record": str},
                        keep_default_na=False, na_values={"pre_rr_s": [""], "post_rr_s": [""]})  # fmt: skip
    x = np.load(_need(beats.mitdb_windows, "beats"), mmap_mode="r")
    split_path = _need(Path(params.split.out_dir) / "mitdb.csv", "split")
    split = pd.read_csv(split_path, dtype={"record": str}).set_index("record")
    col = "role" if replicate is None else _replicate_column(split, replicate, split_path)
    roles = split[col]
    # Only beats of the five AAMI classes are used; others ('Q'-less unknowns) are not labelled.
    keep = table["aami"].isin(["N", "S", "V", "F", "Q"]).to_numpy()
    table = table[keep].reset_index(drop=True)
    x = np.asarray(x[np.flatnonzero(keep)], dtype=np.float32)
    role = table["record"].map(roles).fillna("").to_numpy().astype(object)
    role[role == "excluded"] = ""
    rr = table[["pre_rr_s", "post_rr_s"]].to_numpy(np.float32)
    # First/last beats lack one interval: use the record's median so no beat is dropped.
    med = (
        table.groupby("record")[["pre_rr_s", "post_rr_s"]].transform("median").to_numpy(np.float32)
    )
    rr = np.where(np.isfinite(rr), rr, med)
    y = (table["aami"] == params.split.mitdb_positive_class).to_numpy(np.float32)
    leads = (str(table["lead0"].iloc[0]), "other") if len(table) else ("MLII", "other")
    return BeatArrays("mitdb", x, rr, y, role, table["record"].to_numpy(), leads,
                      float(params.preprocess.target_fs["mitdb"]), table)  # fmt: skip
