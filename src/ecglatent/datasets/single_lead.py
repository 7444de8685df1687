"""Single-lead beat windows for SiliconNet: MIT-BIH N/V beats and PTB-XL 12-lead beats for SimSiam.

A window runs from ``before_s`` before to ``after_s`` after the QRS, both ends included, so at
250 Hz with 1.0 s / 0.2 s it has 301 samples with the QRS at index 250 (paper §2.3). Signals
are band-passed at their own rate, then resampled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from ecglatent.errors import RecordError
from ecglatent.signal.beats import extract_beats
from ecglatent.signal.filters import bandpass, resample
from ecglatent.sources import mitdb, ptbxl
from ecglatent.sources.records import (
    Record,
    check_quality,
    read_record,
    select_leads,
    to_standard_12,
)

log = logging.getLogger(__name__)

FS = 250.0
BEFORE_S = 1.0
AFTER_S = 0.2
BAND_HZ: tuple[float, float] = (0.5, 60.0)
FILTER_ORDER = 2
CLASSES: tuple[str, ...] = ("N", "V")  # label = index: N → 0, V → 1
POSITIVE_CLASS = "V"
DS1_VAL_FRACTION = 0.5
PRETRAIN_VAL_FRACTION = 0.2
PTBXL_RATE = 500  # the 100 Hz copy cannot carry the 60 Hz band edge
MIN_DURATION_S = 8.0
FLAT_LEAD_STD_MV = 0.005
TABLE_COLUMNS = ("record", "sample", "sample_orig", "symbol", "aami", "label", "lead")


def window_samples(
    fs: float, before_s: float = BEFORE_S, after_s: float = AFTER_S
) -> tuple[int, int]:
    """(before, after) for :func:`extract_beats`: after counts the QRS sample itself, hence +1."""
    return round(before_s * fs), round(after_s * fs) + 1


def condition(
    signal: np.ndarray, fs_in: float, fs: float = FS, band: tuple[float, float] = BAND_HZ
) -> np.ndarray:
    """Band-pass at the record's rate, then resample to ``fs``: (leads, samples) → float64."""
    return resample(bandpass(signal, fs_in, band[0], band[1], FILTER_ORDER), fs_in, fs)


def _pick_lead(rec, lead: str):
    """One lead by name; ``"other"`` is the channel that is not MLII (V1/V2/V4/V5 in MIT-BIH)."""
    if lead == "other":
        both = select_leads(rec, ("MLII", "other"))
        return select_leads(both, (both.leads[1],))
    return select_leads(rec, (lead,))


def annotated_windows(
    record: str,
    signal: np.ndarray,
    rec_fs: float,
    samples: np.ndarray,
    symbols: np.ndarray,
    classes: Sequence[str],
    fs: float,
    band: tuple[float, float],
    before: int,
    after: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Windows (n, leads, T) float32 around one record's reference beats of ``classes``, and rows.

    ``signal`` (leads, samples) at ``rec_fs`` is band-passed and resampled to ``fs``; the
    annotation ``samples`` are mapped to ``fs``. Rows: record, sample (at ``fs``), sample_orig
    (at ``rec_fs``), symbol, aami, label (index in ``classes``). Beats too near an edge go.
    """
    aami = mitdb.aami_class(symbols)
    keep = np.isin(aami, list(classes))
    peaks = np.round(samples[keep] * (fs / rec_fs)).astype(np.int64)
    x = condition(signal, rec_fs, fs, band)
    w, ok = extract_beats(x, peaks, before, after)
    cls = aami[keep][ok]
    rows = pd.DataFrame(
        {
            "record": record,
            "sample": peaks[ok],
            "sample_orig": samples[keep][ok],
            "symbol": symbols[keep][ok],
            "aami": cls.astype(str),
            "label": np.array([list(classes).index(c) for c in cls], dtype=np.int64),
        }
    )
    return w.astype(np.float32), rows


def mitdb_nv_beats(
    root: str | Path,
    records: Sequence[str],
    lead: str = "MLII",
    fs: float = FS,
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
    band: tuple[float, float] = BAND_HZ,
    classes: Sequence[str] = CLASSES,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Windows (n, T) float32 around the reference N and V beats of ``records`` and their table.

    Leads are chosen by name, never by channel index (record 114 stores MLII second).
    Table columns: record, sample (at ``fs``), sample_orig (at the record's rate), symbol,
    aami, label (index in ``classes``), lead (header name). Records that cannot be read or lack
    the lead are skipped with a warning and listed in ``table.attrs["rejects"]``.
    """
    root = Path(root)
    before, after = window_samples(fs, before_s, after_s)
    windows: list[np.ndarray] = []
    tables: list[pd.DataFrame] = []
    rejects: dict[str, str] = {}
    for record in records:
        try:
            rec = _pick_lead(read_record(root / record, f"mitdb/{record}"), lead)
            if not np.isfinite(rec.signal).all():
                raise RecordError(rec.record_id, "NaN or missing samples")
            samples, symbols = mitdb.read_beat_annotations(root / record)
        except RecordError as exc:
            log.warning("mitdb %s skipped: %s", record, exc.reason)
            rejects[record] = exc.reason
            continue
        w, rows = annotated_windows(record, rec.signal, rec.fs, samples, symbols, classes, fs,
                                    band, before, after)  # fmt: skip
        windows.append(w[:, 0, :])
        rows["lead"] = rec.leads[0]
        tables.append(rows)
    n_t = before + after
    x_all = np.concatenate(windows) if windows else np.empty((0, n_t), np.float32)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)
    table.attrs["rejects"] = rejects
    return x_all, table


@dataclass
class BeatSet:
    """Normalised single-lead beats (n, 1, T) float32, labels (n,) int64 and their table."""

    x: np.ndarray
    y: np.ndarray
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> BeatSet:
        return BeatSet(self.x[idx], self.y[idx], self.table.iloc[idx].reset_index(drop=True))

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(self.x, dtype=torch.float32, device=device),
            torch.as_tensor(self.y, dtype=torch.long, device=device),
        )


@dataclass
class NVSplits:
    """DS1 train/val and DS2 tests (one per lead), all normalised with the training mean/std."""

    train: BeatSet
    val: BeatSet
    tests: dict[str, BeatSet]
    mean: float
    std: float


def fit_normaliser(x: np.ndarray) -> tuple[float, float]:
    """Global mean and std of the training windows (one pair for all samples, paper §2.3)."""
    # float16 sums would overflow and lose precision; float32 keeps its historic result
    acc = np.float64 if x.dtype == np.float16 else None
    std = float(np.std(x, dtype=acc))
    return float(np.mean(x, dtype=acc)), std if std > 0 else 1.0


def normalise(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((x - mean) / std).astype(np.float32)


def split_ds1(
    labels: np.ndarray,
    val_fraction: float = DS1_VAL_FRACTION,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train/val indices of DS1, stratified by class.

    Without ``groups`` this is the paper's beat-level split (train_test_split(stratify=labels)):
    the same patients sit on both sides, so validation F1 is optimistic. With ``groups`` (record
    ids) whole records go to one side (StratifiedGroupKFold with round(1/val_fraction) folds,
    first fold = validation), which is what the measured notes recommend for choosing the epoch
    and threshold.
    """
    idx = np.arange(len(labels))
    if groups is None:
        tr, va = train_test_split(
            idx, test_size=val_fraction, stratify=labels, random_state=seed, shuffle=True
        )
        return np.sort(tr), np.sort(va)
    n_splits = max(2, round(1 / val_fraction))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    tr, va = next(cv.split(idx, labels, groups))
    return np.sort(tr), np.sort(va)


def mitdb_nv_splits(
    root: str | Path,
    train_records: Sequence[str] = mitdb.DS1,
    test_records: Sequence[str] = mitdb.DS2,
    train_lead: str = "MLII",
    test_leads: Sequence[str] = ("MLII", "other"),
    val_fraction: float = DS1_VAL_FRACTION,
    seed: int = 0,
    split_by_record: bool = False,
    fs: float = FS,
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
    band: tuple[float, float] = BAND_HZ,
) -> NVSplits:
    """DS1 → 50/50 train/val stratified by class, DS2 → one test set per lead in ``test_leads``.

    Normalisation uses the mean/std of the training part only. Raises ValueError when a test
    record is also a training record.
    """
    shared = sorted(set(train_records) & set(test_records))
    if shared:
        raise ValueError(f"records {shared} are in both the training and the test set")
    kw = {"fs": fs, "before_s": before_s, "after_s": after_s, "band": band}
    x, table = mitdb_nv_beats(root, train_records, train_lead, **kw)
    y = table["label"].to_numpy(np.int64)
    groups = table["record"].to_numpy() if split_by_record else None
    tr, va = split_ds1(y, val_fraction, seed, groups)
    mean, std = fit_normaliser(x[tr])
    full = BeatSet(normalise(x, mean, std)[:, None, :], y, table)
    tests = {}
    for lead in test_leads:
        xt, tt = mitdb_nv_beats(root, test_records, lead, **kw)
        tests[lead] = BeatSet(
            normalise(xt, mean, std)[:, None, :], tt["label"].to_numpy(np.int64), tt
        )
    return NVSplits(full.subset(tr), full.subset(va), tests, mean, std)


def stratified_subsample(beats: BeatSet, n: int, seed: int = 0) -> BeatSet:
    """At most ``n`` beats, class proportions kept (for quick runs); n <= 0 keeps all."""
    if n <= 0 or n >= len(beats):
        return beats
    idx, _ = train_test_split(
        np.arange(len(beats)), train_size=n, stratify=beats.y, random_state=seed
    )
    return beats.subset(np.sort(idx))


def detected_beats(
    rec: Record,
    fs: float,
    band: tuple[float, float],
    detector: str,
    before: int,
    after: int,
    min_duration_s: float = MIN_DURATION_S,
    max_beats: int = 0,
    flat_std_mv: float = FLAT_LEAD_STD_MV,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, 12, before + after) float32 of a 12-lead record around R peaks detected on
    all leads, and the peaks (at ``fs``).

    Quality-checked first; ``max_beats`` > 0 keeps that many evenly spaced beats. Raises
    :class:`RecordError` for a bad record or one without a complete window.
    """
    from ecglatent.signal.rpeaks import detect_rpeaks_multilead

    check_quality(rec, min_duration_s, flat_std_mv)
    x = condition(rec.signal, rec.fs, fs, band)
    peaks = detect_rpeaks_multilead(x, fs, detector)
    w, ok = extract_beats(x, peaks, before, after)
    if not len(ok):
        raise RecordError(rec.record_id, "no complete beat window")
    if 0 < max_beats < len(ok):
        keep = np.unique(np.linspace(0, len(ok) - 1, max_beats).round().astype(int))
        w, ok = w[keep], ok[keep]
    return w.astype(np.float32), peaks[ok]


def ptbxl_multilead_beats(
    root: str | Path,
    ecg_ids: Sequence[int] | None = None,
    rate: int = PTBXL_RATE,
    fs: float = FS,
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
    band: tuple[float, float] = BAND_HZ,
    detector: str = "ecglatent",
    min_duration_s: float = MIN_DURATION_S,
    flat_std_mv: float = FLAT_LEAD_STD_MV,
    max_beats_per_record: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Beats (n, 12, T) float32 in standard lead order around R peaks detected on all 12 leads.

    Table columns: ecg_id, patient_id, strat_fold, sample (at ``fs``). Records failing to read
    or the quality check are skipped and listed in ``table.attrs["rejects"]``.
    ``max_beats_per_record`` > 0 keeps that many evenly spaced beats of each record.
    """
    root = Path(root)
    db = ptbxl.read_database(root)
    ids = list(db.index) if ecg_ids is None else list(ecg_ids)
    before, after = window_samples(fs, before_s, after_s)
    beats: list[np.ndarray] = []
    rows: list[pd.DataFrame] = []
    rejects: dict[str, str] = {}
    for ecg_id in ids:
        row = db.loc[ecg_id]
        try:
            rec = to_standard_12(
                read_record(ptbxl.record_path(root, row, rate), f"ptb-xl/{ecg_id}")
            )
            w, peaks = detected_beats(rec, fs, band, detector, before, after, min_duration_s,
                                      max_beats_per_record, flat_std_mv)  # fmt: skip
        except RecordError as exc:
            log.warning("ptb-xl %s skipped: %s", ecg_id, exc.reason)
            rejects[str(ecg_id)] = exc.reason
            continue
        beats.append(w)
        rows.append(
            pd.DataFrame(
                {
                    "ecg_id": int(ecg_id),
                    "patient_id": int(row["patient_id"]),
                    "strat_fold": int(row.get("strat_fold", -1)),
                    "sample": peaks,
                }
            )
        )
    arr = np.concatenate(beats) if beats else np.empty((0, 12, before + after), np.float32)
    table = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["ecg_id", "patient_id", "strat_fold", "sample"])
    )
    table.attrs["rejects"] = rejects
    return arr, table


def pretrain_split(
    table: pd.DataFrame,
    val_fraction: float = PRETRAIN_VAL_FRACTION,
    seed: int = 0,
    group: str = "patient_id",
) -> tuple[np.ndarray, np.ndarray]:
    """Train/val beat indices for pretraining, whole patients (``table[group]``) on one side
    (paper: 80/20)."""
    idx = np.arange(len(table))
    gss = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    tr, va = next(gss.split(idx, groups=table[group].to_numpy()))
    return np.sort(tr), np.sort(va)


def sample_two_leads(
    beats: np.ndarray | torch.Tensor, rng: np.random.Generator
) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """Two views (B, 1, T) of each beat (B, L, T): two different leads drawn uniformly at random.

    The second lead is the first shifted by 1..L-1 (mod L), so it is uniform over the other
    leads and can never equal the first. Works on numpy arrays and torch tensors (any device).
    """
    n, n_leads = beats.shape[0], beats.shape[1]
    if n_leads < 2:
        raise ValueError(f"need at least 2 leads to draw two different views, got {n_leads}")
    first = rng.integers(0, n_leads, n)
    second = (first + rng.integers(1, n_leads, n)) % n_leads
    rows = np.arange(n)
    if isinstance(beats, torch.Tensor):
        dev = beats.device
        rows_t = torch.as_tensor(rows, device=dev)
        v1 = beats[rows_t, torch.as_tensor(first, device=dev)]
        v2 = beats[rows_t, torch.as_tensor(second, device=dev)]
        return v1[:, None, :], v2[:, None, :]
    return beats[rows, first][:, None, :], beats[rows, second][:, None, :]
