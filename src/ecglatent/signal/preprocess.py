"""Whole-recording preprocessing: filtered signal → R peaks → filtered beats → median beat + RR.

This is the one path from a raw recording to model input, shared by the `beats` stage and by
served models, so training and serving see identical preprocessing. :func:`prepare_recordings`
is the served entry: any recordings in, one :class:`Prepared` (median beat + RR, or the reason
it cannot be scored) out per recording, with the records of one request processed together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecglatent.config import PreprocessConfig
from ecglatent.signal.beats import (
    autocorrelation_mask,
    extract_beats,
    magnitude_mask,
    median_beat,
    rr_features,
)
from ecglatent.signal.filters import bandpass, resample
from ecglatent.signal.rpeaks import detect_rpeaks_multilead_batch
from ecglatent.sources.leads import STANDARD_12, split_standard_12

# Sampling rates outside this range are not ECG recorders (a corrupt header, or ms for Hz).
MIN_FS_HZ = 50.0
MAX_FS_HZ = 20_000.0
# Records filtered together: amortises per-call overhead; larger batches only thrash the cache.
BATCH_RECORDS = 8

# Why a recording could not be scored (the ``quality`` of a served answer; "ok" when it could).
OK = "ok"
INVALID_SIGNAL = "invalid_signal"
IMPLAUSIBLE_FS = "implausible_fs"
MISSING_LEAD = "missing_lead"
TOO_SHORT = "too_short"
NAN_OR_INF = "nan_or_inf"
FLAT_LEAD = "flat_lead"
TOO_FEW_BEATS = "too_few_beats"


class TooFewBeats(ValueError):
    """Fewer beats than ``min_beats`` survived detection and the quality filters."""


@dataclass(frozen=True)
class MedianBeatResult:
    """Median beat (leads, T) at ``fs`` plus the RR features and beat counts behind it."""

    median: np.ndarray
    fs: float
    rr_mean_s: float
    rr_std_s: float
    n_detected: int
    n_kept: int
    peaks: np.ndarray


def condition(signal: np.ndarray, fs: float, target_fs: float, cfg: PreprocessConfig) -> np.ndarray:
    """Resample to ``target_fs`` then band-pass filter; (leads, samples) in, same layout out."""
    x = resample(np.asarray(signal, dtype=np.float64), fs, target_fs)
    lo, hi = cfg.bandpass_hz
    return bandpass(x, target_fs, lo, hi, cfg.filter_order)


def median_beat_features(
    signal: np.ndarray, fs: float, target_fs: float, cfg: PreprocessConfig
) -> MedianBeatResult:
    """Median beat and RR μ/σ of one multi-lead recording (leads × samples, mV).

    Raises :class:`TooFewBeats` when fewer than ``cfg.min_beats`` beats pass the filters.
    """
    res = median_beats_batch(np.asarray(signal, dtype=np.float64)[None], fs, target_fs, cfg)[0]
    if isinstance(res, TooFewBeats):
        raise res
    return res


def median_beats_batch(
    signals: np.ndarray, fs: float, target_fs: float, cfg: PreprocessConfig
) -> list[MedianBeatResult | TooFewBeats]:
    """:func:`median_beat_features` of each record of ``signals`` (records, leads, samples).

    Resampling, filtering and the R-peak detector's filters run once over all records; each
    record gets exactly the result it gets alone (the `beats` stage calls this with one).
    """
    x = condition(signals, fs, target_fs, cfg)
    all_peaks = detect_rpeaks_multilead_batch(x, target_fs, detector=cfg.rpeak_detector)
    before, after = cfg.window(target_fs)
    out: list[MedianBeatResult | TooFewBeats] = []
    for rec, peaks in zip(x, all_peaks, strict=True):
        beats, _ = extract_beats(rec, peaks, before, after)
        keep = magnitude_mask(beats, cfg.magnitude_threshold_mv)
        keep &= autocorrelation_mask(beats, cfg.autocorr_mean_threshold, cfg.autocorr_max_threshold)
        if int(keep.sum()) < cfg.min_beats:
            out.append(
                TooFewBeats(
                    f"{int(keep.sum())} beats left after quality filters ({len(peaks)} R peaks "
                    f"detected, {beats.shape[0]} full windows); need {cfg.min_beats}"
                )
            )
            continue
        rr = rr_features(peaks, target_fs)
        out.append(
            MedianBeatResult(
                median=median_beat(beats[keep], cfg.beat_average).astype(np.float32),
                fs=target_fs,
                rr_mean_s=rr.mean_s,
                rr_std_s=rr.std_s,
                n_detected=len(peaks),
                n_kept=int(keep.sum()),
                peaks=peaks,
            )
        )
    return out


@dataclass(frozen=True)
class Prepared:
    """One recording made ready for a model, or the reason it cannot be.

    ``quality`` is "ok" or one of the codes above; ``detail`` says more in words; ``extra_leads``
    names the leads beyond the 12 standard ones (not used); ``result`` is set when "ok".
    """

    quality: str
    detail: str = ""
    extra_leads: tuple[str, ...] = ()
    result: MedianBeatResult | None = None


def check_recording(
    signal: Any, fs: Any, leads: Any, cfg: PreprocessConfig
) -> tuple[np.ndarray, float, tuple[str, ...]] | Prepared:
    """The 12 standard leads (12, samples) in mV, the rate and the extra lead names of one
    recording, or a :class:`Prepared` that says why it cannot be scored."""
    try:
        x = np.asarray(signal, dtype=np.float64)
    except (TypeError, ValueError):
        return Prepared(INVALID_SIGNAL, "signal must be a leads × samples array of numbers")
    if isinstance(leads, str) or not isinstance(leads, Sequence | np.ndarray):
        return Prepared(INVALID_SIGNAL, f"leads must be a list of lead names, got {leads!r}")
    leads = tuple(str(name) for name in leads)
    if x.ndim == 1 and len(leads) == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != len(leads):
        return Prepared(
            INVALID_SIGNAL,
            f"signal shape {x.shape} does not match {len(leads)} lead names (leads × samples)",
        )
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        return Prepared(IMPLAUSIBLE_FS, f"fs must be a number (Hz), got {fs!r}")
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:  # also false for NaN
        return Prepared(IMPLAUSIBLE_FS, f"fs {fs} Hz is outside {MIN_FS_HZ:g}–{MAX_FS_HZ:g} Hz")
    split = split_standard_12(leads)
    if isinstance(split, str):
        return Prepared(MISSING_LEAD, split)
    order, extras = split
    extra = tuple(extras)
    duration = x.shape[1] / fs
    if duration < cfg.min_duration_s:
        return Prepared(
            TOO_SHORT, f"{duration:.1f} s; at least {cfg.min_duration_s:g} s needed", extra
        )
    x = x[order]
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = [STANDARD_12[i] for i in np.flatnonzero(~finite)]
        return Prepared(NAN_OR_INF, f"NaN or infinite samples in lead(s) {bad}", extra)
    flat = x.std(axis=1) < cfg.flat_lead_std_mv
    if flat.any():
        bad = [STANDARD_12[i] for i in np.flatnonzero(flat)]
        return Prepared(
            FLAT_LEAD,
            f"flat lead(s) {bad} (std < {cfg.flat_lead_std_mv} mV): lead off or missing",
            extra,
        )
    return x, fs, extra


def prepare_recordings(
    recordings: Sequence[tuple[Any, Any, Any]], target_fs: float, cfg: PreprocessConfig
) -> list[Prepared]:
    """``(signal, fs, leads)`` per recording in; one :class:`Prepared` per recording out.

    Every input gets its answer: a malformed or unusable recording gets its quality code and
    never stops the others. Usable recordings of the same rate and length are preprocessed
    together (same result as one by one, as in the `beats` stage).
    """
    out: list[Prepared | None] = [None] * len(recordings)
    groups: dict[tuple[float, int], list[tuple[int, np.ndarray, tuple[str, ...]]]] = defaultdict(
        list
    )
    for i, (signal, fs, leads) in enumerate(recordings):
        checked = check_recording(signal, fs, leads, cfg)
        if isinstance(checked, Prepared):
            out[i] = checked
            continue
        x, rate, extra = checked
        groups[(rate, x.shape[1])].append((i, x, extra))
    for (rate, _), members in groups.items():
        for start in range(0, len(members), BATCH_RECORDS):
            chunk = members[start : start + BATCH_RECORDS]
            results = median_beats_batch(np.stack([x for _, x, _ in chunk]), rate, target_fs, cfg)
            for (i, _, extra), res in zip(chunk, results, strict=True):
                if isinstance(res, TooFewBeats):
                    out[i] = Prepared(TOO_FEW_BEATS, str(res), extra)
                else:
                    out[i] = Prepared(OK, "", extra, res)
    return out  # type: ignore[return-value]
