"""PhysioNet/CinC Challenge 2021 training data: 12-lead records for SimSiam pretraining.

About 88,000 recordings from eight sources (``training/<source>/g<k>/<record>.hea``):
CPSC 2018 and its extra set, INCART, PTB, PTB-XL, Georgia, Chapman-Shaoxing and Ningbo.
Rates differ by source (257, 500 or 1000 Hz) and so do durations (5 s to 30 min). Signals are
MATLAB v4 ``.mat`` files that the headers declare as WFDB format ``16+24`` (16-bit samples
after a 24-byte MATLAB header), so wfdb reads them like any other record. Header comments
carry ``Age``, ``Sex`` and ``Dx`` (SNOMED CT codes). There are no beat annotations: beats
come from the R-peak detector, like PTB-XL's.

Not on the shared mirror. PhysioNet serves it as one archive, so `ecglatent fetch` reads it
from a mirror folder (``data.mirror``/``$ECGLATENT_DATA_MIRROR``) holding ``challenge-2021/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecglatent.errors import RecordError
from ecglatent.sources.records import Record, read_record, to_standard_12

log = logging.getLogger(__name__)

DATABASE = "challenge-2021"
DOWNLOAD_HINT = (
    "wget -r -N -c -np https://physionet.org/files/challenge-2021/1.0.3/ (or the zip on "
    "https://physionet.org/content/challenge-2021/), then point data.mirror at the folder "
    "holding challenge-2021/"
)
# The Challenge's shortest recordings (Georgia) last 5 s; PTB-XL's 8 s minimum would drop them.
MIN_DURATION_S = 5.0
TABLE_COLUMNS = ("record", "source", "sample")
# Contributing databases never read: the Challenge's INCART copy holds the very signals the
# SiliconNet evaluation tests on (INCART per lead), so pretraining on it would leak them.
EXCLUDED_SOURCES: tuple[str, ...] = ("st_petersburg_incart",)


@dataclass(frozen=True)
class HeaderInfo:
    """The labels a Challenge header carries in its comments (None or empty when absent)."""

    age: float | None
    sex: str | None
    dx: tuple[str, ...]


def list_records(root: str | Path) -> list[str]:
    """Every record under ``root`` as a path relative to it without extension, sorted.

    The Challenge nests records two folders deep and its RECORDS files vary between
    releases, so the headers themselves are the index.
    """
    root = Path(root)
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.hea"))


def source_of(record: str) -> str:
    """The contributing database of a record path, e.g. ``training/ptb-xl/g1/HR00001`` → ``ptb-xl``."""
    parts = Path(record).parts
    if "training" in parts and parts.index("training") + 1 < len(parts) - 1:
        return parts[parts.index("training") + 1]
    return parts[0] if len(parts) > 1 else ""


def read_cinc(root: str | Path, record: str) -> Record:
    """One record with its 12 leads in standard order, in mV."""
    return to_standard_12(read_record(Path(root) / record, f"{DATABASE}/{record}"))


def header_info(root: str | Path, record: str) -> HeaderInfo:
    """Age, sex and SNOMED CT diagnosis codes from the header's comments."""
    import wfdb

    rid = f"{DATABASE}/{record}"
    try:
        comments = wfdb.rdheader(str(Path(root) / record)).comments
    except Exception as exc:
        raise RecordError(rid, f"corrupt header ({type(exc).__name__}: {exc})") from None
    fields = {}
    for line in comments:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    try:
        age = float(fields["age"]) if fields.get("age", "").lower() not in ("", "nan") else None
    except ValueError:
        age = None
    sex = fields.get("sex") or None
    dx = tuple(c.strip() for c in fields.get("dx", "").split(",") if c.strip())
    return HeaderInfo(age, sex, dx)


def cinc_multilead_beats(
    root: str | Path,
    records: Sequence[str] | None = None,
    fs: float = 250.0,
    before_s: float = 1.0,
    after_s: float = 0.2,
    band: tuple[float, float] = (0.5, 60.0),
    detector: str = "ecglatent",
    max_beats_per_record: int = 0,
    skip_sources: Sequence[str] = (),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Beats (n, 12, T) float32 around R peaks detected on all 12 leads, and their table.

    Preprocessed like the PTB-XL pretraining beats. ``max_beats_per_record`` > 0 keeps that
    many evenly spaced beats of a long record (INCART's 30-min records would otherwise hold
    ~2,000 each); ``skip_sources`` leaves out contributing databases that are already in the
    corpus (e.g. ``ptb-xl``); the sources of ``EXCLUDED_SOURCES`` are always left out and
    their records listed in ``table.attrs["excluded"]``. Table columns: record, source, sample (at ``fs``). Records
    that cannot be read or fail the quality check are skipped and listed in
    ``table.attrs["rejects"]``.
    """
    from ecglatent.datasets.single_lead import detected_beats, window_samples

    root = Path(root)
    records = list_records(root) if records is None else list(records)
    before, after = window_samples(fs, before_s, after_s)
    skip = set(skip_sources) | set(EXCLUDED_SOURCES)
    excluded: list[str] = []
    beats: list[np.ndarray] = []
    rows: list[pd.DataFrame] = []
    rejects: dict[str, str] = {}
    for record in records:
        source = source_of(record)
        if source in skip:
            if source in EXCLUDED_SOURCES:
                excluded.append(record)
            continue
        try:
            rec = read_cinc(root, record)
            w, peaks = detected_beats(rec, fs, band, detector, before, after, MIN_DURATION_S,
                                      max_beats_per_record)  # fmt: skip
        except RecordError as exc:
            log.warning("%s %s skipped: %s", DATABASE, record, exc.reason)
            rejects[record] = exc.reason
            continue
        beats.append(w)
        rows.append(pd.DataFrame({"record": record, "source": source, "sample": peaks}))
    x = np.concatenate(beats) if beats else np.empty((0, 12, before + after), np.float32)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=TABLE_COLUMNS)
    table.attrs["rejects"] = rejects
    table.attrs["excluded"] = excluded
    if excluded:
        log.info("%s: %d records of %s left out (test signals)", DATABASE, len(excluded),
                 ", ".join(EXCLUDED_SOURCES))  # fmt: skip
    return x, table
