"""St Petersburg INCART 12-lead Arrhythmia Database: records, beat annotations, N/V windows.

75 records of 30 min, 12 standard leads at 257 Hz, reference beat annotations (``.atr``) with
MIT-BIH symbols, so the AAMI grouping of :mod:`ecglatent.sources.mitdb` applies unchanged.
Not on the shared mirror (PhysioNet access only); `ecglatent fetch` gets it when
``data.databases`` lists ``incartdb``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecglatent.errors import RecordError
from ecglatent.sources import mitdb
from ecglatent.sources.leads import STANDARD_12
from ecglatent.sources.records import Record, read_record, to_standard_12

log = logging.getLogger(__name__)

DATABASE = "incartdb"
FS = 257.0
LEADS: tuple[str, ...] = STANDARD_12
TABLE_COLUMNS = ("record", "sample", "sample_orig", "symbol", "aami", "label")

# The RECORDS file and the annotation reader are the same WFDB conventions as MIT-BIH.
list_records = mitdb.list_records
read_beat_annotations = mitdb.read_beat_annotations


def read_incart(root: str | Path, record: str) -> Record:
    """One record with its 12 leads in standard order (header spellings such as AVR accepted)."""
    rec = to_standard_12(read_record(Path(root) / record, f"{DATABASE}/{record}"))
    if not np.isfinite(rec.signal).all():
        raise RecordError(rec.record_id, "NaN or missing samples")
    return rec


def incart_nv_beats(
    root: str | Path,
    records: Sequence[str] | None = None,
    leads: Sequence[str] = LEADS,
    fs: float = 250.0,
    before_s: float = 1.0,
    after_s: float = 0.2,
    band: tuple[float, float] = (0.5, 60.0),
    classes: Sequence[str] = ("N", "V"),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Windows (n, len(leads), T) float32 around the reference beats of ``classes``, and their table.

    Preprocessed like the MIT-BIH beats (band-pass at 257 Hz, resample to ``fs``, the QRS at
    index ``round(before_s * fs)``). Table columns: record, sample (at ``fs``), sample_orig (at
    257 Hz), symbol, aami, label (index in ``classes``). Records that cannot be read are skipped
    and listed in ``table.attrs["rejects"]``.
    """
    # single_lead imports sources; importing it here keeps sources importable on their own.
    from ecglatent.datasets.single_lead import annotated_windows, window_samples

    root = Path(root)
    records = list_records(root) if records is None else list(records)
    before, after = window_samples(fs, before_s, after_s)
    order = [STANDARD_12.index(lead) for lead in leads]
    windows: list[np.ndarray] = []
    tables: list[pd.DataFrame] = []
    rejects: dict[str, str] = {}
    for record in records:
        try:
            rec = read_incart(root, record)
            samples, symbols = read_beat_annotations(root / record)
        except RecordError as exc:
            log.warning("incartdb %s skipped: %s", record, exc.reason)
            rejects[record] = exc.reason
            continue
        w, rows = annotated_windows(record, rec.signal[order], rec.fs, samples, symbols, classes,
                                    fs, band, before, after)  # fmt: skip
        windows.append(w)
        tables.append(rows)
    x_all = (
        np.concatenate(windows)
        if windows
        else np.empty((0, len(order), before + after), np.float32)
    )
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)
    table.attrs["rejects"] = rejects
    return x_all, table


def per_lead(x: np.ndarray, leads: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n, L, T) → single-lead beats (n·L, 1, T) and the lead name of each, lead-major.

    Lead-major order means rows ``k·n … (k+1)·n`` are lead ``leads[k]`` for every beat, so
    labels repeat with ``np.tile(y, L)``.
    """
    if x.shape[1] != len(leads):
        raise ValueError(f"{x.shape[1]} leads in the array but {len(leads)} names")
    singles = x.transpose(1, 0, 2).reshape(-1, 1, x.shape[2])
    names = np.repeat(np.asarray(leads, dtype=object), x.shape[0])
    return singles, names
