"""Synthetic ECG made of Gaussian P-QRS-T waves: known R peaks for tests, demos and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (centre offset from R in s, width in s, amplitude in mV) of P, Q, R, S, T for lead II.
_WAVES = np.array(
    [
        [-0.20, 0.025, 0.15],
        [-0.03, 0.010, -0.10],
        [0.00, 0.012, 1.20],
        [0.03, 0.010, -0.25],
        [0.28, 0.050, 0.35],
    ]
)
# Per-lead scale of the five waves, roughly the standard 12-lead morphology.
_LEAD_GAINS = {
    "I": [0.8, 0.5, 0.6, 0.4, 0.7], "II": [1, 1, 1, 1, 1], "III": [0.3, 0.6, 0.5, 0.8, 0.3],
    "aVR": [-0.9, -0.7, -0.8, -0.6, -0.8], "aVL": [0.3, 0.2, 0.2, 0.1, 0.3],
    "aVF": [0.6, 0.8, 0.8, 0.9, 0.6], "V1": [0.4, 0.0, 0.3, 3.0, -0.3],
    "V2": [0.5, 0.0, 0.6, 2.5, 1.2], "V3": [0.5, 0.2, 0.9, 1.5, 1.1],
    "V4": [0.5, 0.4, 1.4, 0.8, 1.0], "V5": [0.5, 0.5, 1.3, 0.4, 0.8],
    "V6": [0.5, 0.5, 1.0, 0.2, 0.6],
}  # fmt: skip


@dataclass(frozen=True)
class SyntheticECG:
    signal: np.ndarray  # (leads, samples), mV
    fs: float
    leads: tuple[str, ...]
    r_peaks: np.ndarray  # true R-peak sample indices


def synthetic_ecg(
    fs: float = 500.0,
    duration_s: float = 10.0,
    leads: tuple[str, ...] = tuple(_LEAD_GAINS),
    heart_rate_bpm: float = 70.0,
    rr_jitter: float = 0.03,
    noise_mv: float = 0.01,
    wander_mv: float = 0.1,
    seed: int = 0,
) -> SyntheticECG:
    """A multi-lead ECG with known R peaks; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs
    rr_mean = 60.0 / heart_rate_bpm
    n_beats = int(duration_s / rr_mean) + 2
    rr = rr_mean * (1 + rr_jitter * rng.standard_normal(n_beats))
    peaks_s = 0.4 + np.cumsum(np.concatenate([[0.0], rr[:-1]]))
    peaks_s = peaks_s[peaks_s < duration_s - 0.4]
    gains = np.array([_LEAD_GAINS.get(lead, _LEAD_GAINS["II"]) for lead in leads])  # (L, 5)
    # Sum of Gaussians: (beats, waves, samples) would be large; accumulate per beat instead.
    base = np.zeros((5, n))
    for p in peaks_s:
        centre = p + _WAVES[:, 0:1]
        base += _WAVES[:, 2:3] * np.exp(-0.5 * ((t[None, :] - centre) / _WAVES[:, 1:2]) ** 2)
    signal = gains @ base
    phase = rng.uniform(0, 2 * np.pi, size=(len(leads), 1))
    signal += wander_mv * np.sin(2 * np.pi * 0.2 * t[None, :] + phase)
    signal += noise_mv * rng.standard_normal(signal.shape)
    r_peaks = np.round(peaks_s * fs).astype(np.int64)
    return SyntheticECG(signal, float(fs), tuple(leads), r_peaks)
