"""Whole-recording preprocessing: filtered signal → R peaks → filtered beats → median beat + RR.

This is the one path from a raw recording to model input, shared by the `beats` stage and by
served models, so training and serving see identical preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from ecglatent.signal.rpeaks import detect_rpeaks_multilead


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
    x = condition(signal, fs, target_fs, cfg)
    peaks = detect_rpeaks_multilead(x, target_fs, detector=cfg.rpeak_detector)
    before, after = cfg.window(target_fs)
    beats, ok = extract_beats(x, peaks, before, after)
    keep = magnitude_mask(beats, cfg.magnitude_threshold_mv)
    keep &= autocorrelation_mask(beats, cfg.autocorr_mean_threshold, cfg.autocorr_max_threshold)
    if int(keep.sum()) < cfg.min_beats:
        raise TooFewBeats(
            f"{int(keep.sum())} beats left after quality filters "
            f"({len(peaks)} R peaks detected, {beats.shape[0]} full windows); need {cfg.min_beats}"
        )
    rr = rr_features(peaks, target_fs)
    return MedianBeatResult(
        median=median_beat(beats[keep], cfg.beat_average).astype(np.float32),
        fs=target_fs,
        rr_mean_s=rr.mean_s,
        rr_std_s=rr.std_s,
        n_detected=len(peaks),
        n_kept=int(keep.sum()),
        peaks=peaks,
    )
