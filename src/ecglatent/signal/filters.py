"""Band-pass filtering and resampling (scipy.signal), vectorised over leads."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as sps


def bandpass(x: np.ndarray, fs: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis.

    Zero phase (forward-backward) keeps R peaks where they are, which matters because beats
    are cut around them. ``high_hz`` above Nyquist is clipped to 0.45·fs.
    """
    # scipy's default pad for this design (3 × its taps), ×10: a band-pass of order N has N sections
    padlen = min(x.shape[-1] - 1, 3 * (2 * order + 1) * 10)
    return zero_phase_bandpass(x, fs, low_hz, min(high_hz, 0.45 * fs), order, max(padlen, 0))


def zero_phase_bandpass(
    x: np.ndarray, fs: float, low_hz: float, high_hz: float, order: int, padlen: int
) -> np.ndarray:
    """``scipy.signal.sosfiltfilt`` (odd padding of ``padlen``) along the last axis, with the
    Butterworth design and its initial state cached per (band, rate, order).

    The same arithmetic as sosfiltfilt (identical output), without redesigning the filter and
    re-solving for its initial state on every call, which cost more than filtering a 10 s lead.
    Rows of a 2-D ``x`` are filtered independently, so many records go through in one call.
    """
    sos, zi = _butter_bandpass(float(low_hz), float(high_hz), float(fs), int(order))
    sos = sos.copy()  # scipy's sosfilt wants a writable array; the cached one stays intact
    x = np.asarray(x, dtype=np.float64)
    if padlen > 0:
        if x.shape[-1] <= padlen:
            raise ValueError(f"the signal ({x.shape[-1]} samples) must be longer than padlen")
        # odd extension at both ends, as scipy.signal's 'odd' padding
        left, right = x[..., :1], x[..., -1:]
        ext = np.concatenate(
            (2 * left - x[..., padlen:0:-1], x, 2 * right - x[..., -2 : -(padlen + 2) : -1]),
            axis=-1,
        )
    else:
        ext = x
    zi = zi.reshape([len(sos)] + [1] * (x.ndim - 1) + [2])
    y, _ = sps.sosfilt(sos, ext, axis=-1, zi=zi * ext[..., :1])
    y, _ = sps.sosfilt(sos, y[..., ::-1], axis=-1, zi=zi * y[..., -1:])
    y = y[..., ::-1]
    return y[..., padlen:-padlen] if padlen > 0 else y


@lru_cache(maxsize=64)
def _butter_bandpass(
    low_hz: float, high_hz: float, fs: float, order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Second-order sections and their steady-state initial conditions (read-only, cached)."""
    sos = sps.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    zi = sps.sosfilt_zi(sos)
    sos.flags.writeable = False
    zi.flags.writeable = False
    return sos, zi


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
