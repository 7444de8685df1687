"""Beats around R peaks, the VAE paper's magnitude and autocorrelation filters, median beats, RR.

All functions are vectorised: beats are gathered with one fancy-indexing call and the
autocorrelation filter uses one correlation matrix per record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def extract_beats(
    signal: np.ndarray, peaks: np.ndarray, before: int, after: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``[r - before, r + after)`` around each peak.

    ``signal`` is (leads, samples); returns beats (n, leads, before + after) and the indices
    of the peaks kept (windows that would run off either end of the record are dropped).
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    n_samples = signal.shape[-1]
    ok = np.flatnonzero((peaks - before >= 0) & (peaks + after <= n_samples))
    if ok.size == 0:
        return np.empty((0, signal.shape[0], before + after), signal.dtype), ok
    idx = peaks[ok, None] + np.arange(-before, after)[None, :]
    beats = signal[:, idx]  # (leads, n, T)
    return np.ascontiguousarray(beats.transpose(1, 0, 2)), ok


def magnitude_mask(beats: np.ndarray, threshold_mv: float) -> np.ndarray:
    """Beats whose mean absolute amplitude (over leads and samples) reaches ``threshold_mv``."""
    if beats.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return np.abs(beats).mean(axis=(1, 2)) >= threshold_mv


def beat_correlations(beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max Pearson correlation of each beat with every other beat of the record.

    Beats are flattened over leads, so a beat must match in all leads at once.
    """
    n = beats.shape[0]
    if n < 2:
        return np.zeros(n), np.zeros(n)
    flat = beats.reshape(n, -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1)
    norm[norm == 0] = np.inf  # a constant beat correlates with nothing
    unit = flat / norm[:, None]
    corr = unit @ unit.T
    np.fill_diagonal(corr, np.nan)
    return np.nanmean(corr, axis=1), np.nanmax(corr, axis=1)


def autocorrelation_mask(beats: np.ndarray, mean_threshold: float, max_threshold: float) -> np.ndarray:
    """Keep a beat unless BOTH its mean and its max correlation fall below the thresholds.

    Two criteria because a record with several rhythms has a low mean correlation but, when
    clean, a high max correlation: only noise makes both low (VAE paper, §2.2).
    """
    mean_r, max_r = beat_correlations(beats)
    return ~((mean_r < mean_threshold) & (max_r < max_threshold))


BEAT_AVERAGES = ("mean", "median")


def median_beat(beats: np.ndarray, average: str = "median") -> np.ndarray:
    """Sample-wise average over beats, per lead: (n, leads, T) -> (leads, T).

    ``average``: "mean" (the VAE paper's choice: it averages the filtered beats) or "median"
    (more robust to a stray beat the filters let through).
    """
    if beats.shape[0] == 0:
        raise ValueError("median_beat needs at least one beat")
    if average == "mean":
        return beats.mean(axis=0)
    if average == "median":
        # sorted first: same values, and numpy's SIMD sort beats median's partition across beats
        # (26 beats of a 10 s record: 1.9 -> 1.0 ms)
        return np.median(np.sort(beats, axis=0), axis=0)
    raise ValueError(f"unknown beat average {average!r}; one of {BEAT_AVERAGES}")


@dataclass(frozen=True)
class RRFeatures:
    """RR-interval mean and standard deviation in seconds (NaN with fewer than 2 peaks)."""

    mean_s: float
    std_s: float


def rr_features(peaks: np.ndarray, fs: float) -> RRFeatures:
    """RR μ and σ from consecutive R peaks."""
    rr = np.diff(np.sort(np.asarray(peaks))) / fs
    if rr.size == 0:
        return RRFeatures(float("nan"), float("nan"))
    return RRFeatures(float(rr.mean()), float(rr.std()))


def pre_post_rr(peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-beat previous and next RR interval in seconds (NaN at the ends)."""
    peaks = np.asarray(peaks, dtype=np.float64)
    rr = np.diff(peaks) / fs
    pre = np.concatenate([[np.nan], rr])
    post = np.concatenate([rr, [np.nan]])
    return pre, post
