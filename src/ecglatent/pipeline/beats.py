"""`beats` stage: raw records → median beats + RR (PTB-XL) and reference-beat windows (MIT-BIH).

Every record either lands in a table or in ``rejects.csv`` with its reason: nothing is
dropped silently and one bad file never stops the stage.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ecglatent.config import Params, PreprocessConfig
from ecglatent.datasets.tables import (
    REJECT_COLUMNS,
    BeatsLayout,
    write_array,
    write_json,
    write_table,
)
from ecglatent.errors import EcglatentError, RecordError
from ecglatent.signal.beats import extract_beats, pre_post_rr
from ecglatent.signal.preprocess import TooFewBeats, condition, median_beat_features
from ecglatent.sources import mitdb, ptbxl
from ecglatent.sources.records import check_quality, read_record, select_leads, to_standard_12

log = logging.getLogger(__name__)


def run_beats(params: Params) -> dict[str, Any]:
    """Run the stage for every database in ``data.databases``; returns the summary."""
    raw = Path(params.data.raw_dir)
    layout = BeatsLayout(Path(params.preprocess.out_dir))
    rejects: list[dict[str, str]] = []
    summary: dict[str, Any] = {}
    for db in params.data.databases:
        root = raw / db
        if not root.is_dir():
            raise EcglatentError(
                f"{root} not found: run `ecglatent fetch` (or `dvc repro fetch`) first"
            )
        if db == "ptb-xl":
            summary[db] = _ptbxl(root, params, layout, rejects)
        elif db == "mitdb":
            summary[db] = _mitdb(root, params.preprocess, layout, rejects)
        else:
            log.info("beats: %s has no beat-table builder yet; skipped", db)
    # dvc.yaml declares both folders; a database left out of data.databases gets empty tables.
    for missing in {"ptb-xl", "mitdb"} - set(params.data.databases):
        n_leads = 12 if missing == "ptb-xl" else len(params.preprocess.mitdb_leads)
        n_t = sum(params.preprocess.window(params.preprocess.target_fs[missing]))
        table, arr = (
            (layout.ptbxl_records, layout.ptbxl_median_beats)
            if missing == "ptb-xl"
            else (layout.mitdb_beats, layout.mitdb_windows)
        )
        write_table(pd.DataFrame(), table)
        write_array(np.empty((0, n_leads, n_t), np.float32), arr)
    write_table(pd.DataFrame(rejects, columns=REJECT_COLUMNS), layout.rejects)
    summary["rejected_records"] = len(rejects)
    write_json(summary, layout.summary)
    log.info("beats: %s", json.dumps(summary))
    return summary


def _pool(cfg: PreprocessConfig) -> ProcessPoolExecutor:
    n = cfg.n_jobs or os.cpu_count() or 1
    return ProcessPoolExecutor(max_workers=n)


def _ptbxl_one(task: tuple[int, str, str, PreprocessConfig, float]) -> dict[str, Any]:
    ecg_id, path, rid, cfg, target_fs = task
    try:
        rec = read_record(path, rid)
        rec = to_standard_12(rec)
        check_quality(rec, cfg.min_duration_s, cfg.flat_lead_std_mv)
        res = median_beat_features(rec.signal, rec.fs, target_fs, cfg)
    except RecordError as exc:
        return {"ecg_id": ecg_id, "reject": exc.reason, "path": path}
    except TooFewBeats as exc:
        return {"ecg_id": ecg_id, "reject": str(exc), "path": path}
    return {
        "ecg_id": ecg_id,
        "fs_in": rec.fs,
        "median": res.median,
        "rr_mean_s": res.rr_mean_s,
        "rr_std_s": res.rr_std_s,
        "n_beats_detected": res.n_detected,
        "n_beats_kept": res.n_kept,
    }


def _ptbxl(root: Path, params: Params, layout: BeatsLayout, rejects: list) -> dict[str, int]:
    cfg = params.preprocess
    table = ptbxl.read_database(root)
    statements = ptbxl.read_scp_statements(root)
    target_fs = float(cfg.target_fs["ptb-xl"])
    tasks = []
    for ecg_id, row in table.iterrows():
        path = ptbxl.record_path(root, row, params.data.ptbxl_rate)
        tasks.append((int(ecg_id), str(path), f"ptb-xl/{ecg_id}", cfg, target_fs))
    rows, medians = [], []
    with _pool(cfg) as pool:
        results = pool.map(_ptbxl_one, tasks, chunksize=8)
        for res in tqdm(results, total=len(tasks), desc="beats ptb-xl", unit="rec"):
            if "reject" in res:
                rejects.append(
                    {"database": "ptb-xl", "record": str(res["ecg_id"]), "path": res["path"],
                     "reason": res["reject"]}
                )  # fmt: skip
                continue
            meta = table.loc[res["ecg_id"]]
            medians.append(res.pop("median"))
            rows.append(
                {
                    "record_id": res["ecg_id"],
                    "patient_id": int(meta["patient_id"]),
                    "age": meta["age"],
                    "sex": meta["sex"],
                    "scp_codes": json.dumps(meta["scp_codes"], sort_keys=True),
                    "superclasses": ";".join(
                        ptbxl.diagnostic_superclasses(meta["scp_codes"], statements)
                    ),
                    "strat_fold": meta.get("strat_fold", np.nan),
                    "fs": target_fs,
                    **{k: v for k, v in res.items() if k != "ecg_id"},
                }
            )
    n_leads, n_t = 12, sum(cfg.window(target_fs))
    arr = np.stack(medians) if medians else np.empty((0, n_leads, n_t), np.float32)
    write_table(pd.DataFrame(rows), layout.ptbxl_records)
    write_array(arr.astype(np.float32), layout.ptbxl_median_beats)
    n_rej = sum(r["database"] == "ptb-xl" for r in rejects)
    return {"records_kept": len(rows), "records_rejected": n_rej,
            "beats_kept": int(sum(r["n_beats_kept"] for r in rows))}  # fmt: skip


def _mitdb_one(task: tuple[str, str, PreprocessConfig, float]) -> dict[str, Any]:
    record, path, cfg, target_fs = task
    try:
        rec = read_record(path, f"mitdb/{record}")
        rec = select_leads(rec, cfg.mitdb_leads)
        if not np.isfinite(rec.signal).all():
            raise RecordError(rec.record_id, "NaN or missing samples")
        samples, symbols = mitdb.read_beat_annotations(Path(path))
    except RecordError as exc:
        return {"record": record, "reject": exc.reason, "path": path}
    x = condition(rec.signal, rec.fs, target_fs, cfg)
    peaks = np.round(samples * (target_fs / rec.fs)).astype(np.int64)
    pre, post = pre_post_rr(peaks, target_fs)
    before, after = cfg.window(target_fs)
    windows, ok = extract_beats(x, peaks, before, after)
    return {
        "record": record,
        "windows": windows.astype(np.float32),
        "table": pd.DataFrame(
            {
                "record": record,
                "sample": peaks[ok],
                "symbol": symbols[ok],
                "aami": mitdb.aami_class(symbols[ok]),
                "pre_rr_s": pre[ok],
                "post_rr_s": post[ok],
                "lead0": rec.leads[0],
                "lead1": rec.leads[1] if len(rec.leads) > 1 else "",
                "split": mitdb.split_of(record),
            }
        ),
        "edge_dropped": int(len(peaks) - len(ok)),
    }


def _mitdb(root: Path, cfg: PreprocessConfig, layout: BeatsLayout, rejects: list) -> dict[str, int]:
    target_fs = float(cfg.target_fs["mitdb"])
    records = mitdb.list_records(root)
    tasks = [(r, str(root / r), cfg, target_fs) for r in records]
    tables, windows, edge = [], [], 0
    with _pool(cfg) as pool:
        results = pool.map(_mitdb_one, tasks)
        for res in tqdm(results, total=len(tasks), desc="beats mitdb", unit="rec"):
            if "reject" in res:
                rejects.append({"database": "mitdb", "record": res["record"], "path": res["path"],
                                "reason": res["reject"]})  # fmt: skip
                continue
            tables.append(res["table"])
            windows.append(res["windows"])
            edge += res["edge_dropped"]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    n_t = sum(cfg.window(target_fs))
    arr = (
        np.concatenate(windows) if windows else np.empty((0, len(cfg.mitdb_leads), n_t), np.float32)
    )
    write_table(table, layout.mitdb_beats)
    write_array(arr, layout.mitdb_windows)
    if edge:
        log.info("beats: mitdb: %d beats too close to a record's ends for a full window", edge)
    n_rej = sum(r["database"] == "mitdb" for r in rejects)
    return {"records_kept": len(tables), "records_rejected": n_rej, "beats": int(len(table)),
            "beats_at_record_edges": edge}  # fmt: skip
