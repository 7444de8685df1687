"""Reading WFDB records into one :class:`Record` type, with every failure turned into a reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import wfdb

from ecglatent.errors import RecordError
from ecglatent.sources.leads import normalise_lead, standard_order

# Sampling rates outside this range are header corruption, not real ECG recorders.
MIN_FS_HZ = 50.0
MAX_FS_HZ = 20_000.0
_UNIT_SCALE = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


@dataclass(frozen=True)
class Record:
    """A recording in mV: ``signal`` is (leads, samples)."""

    record_id: str
    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    path: Path

    @property
    def duration_s(self) -> float:
        return self.signal.shape[1] / self.fs


def read_record(path: str | Path, record_id: str | None = None) -> Record:
    """Read a WFDB record (path without extension) with physical units converted to mV.

    Raises :class:`RecordError` with a human-readable reason for a missing or corrupt header,
    a truncated signal file, an implausible sampling rate, or unknown units.
    """
    path = Path(path)
    rid = record_id or path.name
    if not path.with_suffix(".hea").exists():
        raise RecordError(rid, f"header {path.with_suffix('.hea')} not found")
    # one read: wfdb parses the header inside rdrecord, and parsing costs more than reading
    # a 10 s signal; rdheader runs alone only to name the problem when rdrecord fails
    try:
        rec = wfdb.rdrecord(str(path), physical=True)
    except Exception as exc:
        _check_header(path, rid)
        raise RecordError(rid, f"cannot read signal ({type(exc).__name__}: {exc})") from None
    _check_header(path, rid, rec)
    fs = float(rec.fs)
    signal = rec.p_signal
    if signal is None or signal.shape[0] < rec.sig_len:
        got = 0 if signal is None else signal.shape[0]
        raise RecordError(
            rid, f"signal file truncated: {got} of {rec.sig_len} samples declared in header"
        )
    scales = []
    for unit, name in zip(rec.units or [""] * rec.n_sig, rec.sig_name, strict=False):
        key = (unit or "").strip().lower()
        if key not in _UNIT_SCALE:
            raise RecordError(rid, f"lead {name}: unknown unit '{unit}' (expected mV or uV)")
        scales.append(_UNIT_SCALE[key])
    signal = (signal * np.asarray(scales)[None, :]).T.astype(np.float64)
    return Record(rid, signal, fs, tuple(rec.sig_name), path)


def _check_header(path: Path, rid: str, header=None) -> None:
    """:class:`RecordError` for a header that cannot be parsed or declares nonsense."""
    if header is None:
        try:
            header = wfdb.rdheader(str(path))
        except Exception as exc:  # wfdb raises many types for a malformed header
            raise RecordError(rid, f"corrupt header ({type(exc).__name__}: {exc})") from None
    fs = float(header.fs or 0)
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        raise RecordError(rid, f"implausible sampling rate {fs} Hz in header")
    if not header.sig_name or not header.sig_len:
        raise RecordError(rid, "header declares no signals or zero length")


def check_quality(rec: Record, min_duration_s: float, flat_std_mv: float) -> None:
    """Raise :class:`RecordError` for NaNs, flat leads or a record that is too short."""
    if rec.duration_s < min_duration_s:
        raise RecordError(
            rec.record_id, f"too short: {rec.duration_s:.1f} s < {min_duration_s:.1f} s minimum"
        )
    nan_leads = [rec.leads[i] for i in np.flatnonzero(~np.isfinite(rec.signal).all(axis=1))]
    if nan_leads:
        raise RecordError(rec.record_id, f"NaN or missing samples in lead(s) {nan_leads}")
    flat = [rec.leads[i] for i in np.flatnonzero(rec.signal.std(axis=1) < flat_std_mv)]
    if flat:
        raise RecordError(
            rec.record_id, f"flat lead(s) {flat} (std < {flat_std_mv} mV): lead off or missing"
        )


def to_standard_12(rec: Record) -> Record:
    """The record with its 12 standard leads in standard order, or :class:`RecordError`."""
    order = standard_order(rec.leads)
    if isinstance(order, str):
        raise RecordError(rec.record_id, order)
    leads = tuple(normalise_lead(rec.leads[i]) for i in order)
    return replace(rec, signal=rec.signal[order], leads=leads)  # type: ignore[arg-type]


def select_leads(rec: Record, wanted: tuple[str, ...]) -> Record:
    """Pick leads by (normalised) name; ``"other"`` means the first lead not otherwise chosen."""
    names = [normalise_lead(n) or n for n in rec.leads]
    chosen: list[int] = []
    for want in wanted:
        if want == "other":
            rest = [i for i in range(len(names)) if i not in chosen]
            if not rest:
                raise RecordError(rec.record_id, f"no lead left for 'other' among {rec.leads}")
            chosen.append(rest[0])
            continue
        norm = normalise_lead(want) or want
        if norm not in names:
            raise RecordError(rec.record_id, f"lead {want} not in record (has {list(rec.leads)})")
        chosen.append(names.index(norm))
    return replace(rec, signal=rec.signal[chosen], leads=tuple(rec.leads[i] for i in chosen))
