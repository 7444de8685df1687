"""MIT-BIH Arrhythmia Database: records, de Chazal's DS1/DS2 split and AAMI beat classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ecglatent.errors import RecordError

# de Chazal et al. 2004 inter-patient split; the paced records 102, 104, 107, 217 are in neither.
DS1: tuple[str, ...] = tuple(
    ["101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230"]
)
DS2: tuple[str, ...] = tuple(
    ["100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234"]
)
PACED: tuple[str, ...] = ("102", "104", "107", "217")

# ANSI/AAMI EC57 grouping of MIT-BIH beat symbols.
AAMI_CLASSES: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
# Every beat annotation code; '!' (flutter wave) is not a beat.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def list_records(root: Path) -> list[str]:
    """Record names from the RECORDS file, or from the .hea files when it is absent."""
    records_file = root / "RECORDS"
    if records_file.exists():
        return [line.strip() for line in records_file.read_text().split() if line.strip()]
    return sorted(p.stem for p in root.glob("*.hea"))


def split_of(record: str) -> str:
    """'DS1', 'DS2' or 'excluded' (paced and unknown records)."""
    if record in DS1:
        return "DS1"
    if record in DS2:
        return "DS2"
    return "excluded"


def read_beat_annotations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reference beat positions (samples) and symbols, non-beat annotations dropped."""
    try:
        ann = wfdb.rdann(str(path), "atr")
    except Exception as exc:
        raise RecordError(
            path.name, f"cannot read annotations ({type(exc).__name__}: {exc})"
        ) from None
    symbols = np.asarray(ann.symbol)
    keep = np.isin(symbols, list(BEAT_SYMBOLS))
    return np.asarray(ann.sample)[keep].astype(np.int64), symbols[keep]


def aami_class(symbols: np.ndarray) -> np.ndarray:
    """AAMI class per beat symbol; '' for beats outside the five classes (e.g. 'B', 'r', '?')."""
    return np.array([AAMI_CLASSES.get(s, "") for s in symbols], dtype=object)
