"""Band-pass filtering and resampling (scipy.signal), vectorised over leads."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps


def bandpass(x: np.ndarray, fs: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis.

    Zero phase (forward-backward) keeps R peaks where they are, which matters because beats
    are cut around them. ``high_hz`` above Nyquist is clipped to 0.45·fs.
    """
    high = min(high_hz, 0.45 * fs)
    sos = sps.butter(order, [low_hz, high], btype="bandpass", fs=fs, output="sos")
    padlen = min(x.shape[-1] - 1, 3 * (2 * len(sos) + 1) * 10)
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0))


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis from ``fs_in`` to ``fs_out``.

    The ratio is approximated by a fraction with denominator ≤ 1000, exact for the usual
    ECG rates (100, 125, 250, 257, 360, 500, 1000 Hz).
    """
    if fs_in == fs_out:
        return x
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def resampled_indices(idx: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Sample indices mapped to another rate (rounded)."""
    return np.round(np.asarray(idx) * (fs_out / fs_in)).astype(np.int64)
