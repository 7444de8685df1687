"""R-peak detector: synthetic ground truth, real MIT-BIH / PTB-XL slices, edge cases."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb
import wfdb.processing as wp

from ecglatent.signal.rpeaks import (
    DETECTORS,
    detect_rpeaks,
    detect_rpeaks_multilead,
    refine_rpeaks,
)

BEAT_SYMBOLS = list("NLRBAaJSVrFejnE/fQ?")


# --- fixtures ---------------------------------------------------------------------------------


def data_root() -> Path:
    """Shared PhysioNet mirror; a missing mirror is a failure, not a skip."""
    root = Path(os.environ.get("ECGLATENT_DATA_MIRROR", "/work/shared/data"))
    if not root.is_dir():
        pytest.fail(
            f"data mirror {root} not found: set ECGLATENT_DATA_MIRROR to the folder holding "
            "mitdb/ and ptb-xl/ (PhysioNet layout)"
        )
    return root


def read_mitdb(record: str, seconds: float) -> tuple[np.ndarray, float, np.ndarray]:
    path = data_root() / "mitdb" / record
    if not path.with_suffix(".hea").is_file():
        pytest.fail(f"MIT-BIH record {path} missing from the data mirror")
    rec = wfdb.rdrecord(str(path), channels=[0], sampto=int(seconds * 360))
    ann = wfdb.rdann(str(path), "atr", sampto=int(seconds * 360))
    ref = ann.sample[np.isin(ann.symbol, BEAT_SYMBOLS)]
    return rec.p_signal[:, 0], float(rec.fs), ref


def read_ptbxl(rel: str) -> tuple[np.ndarray, float]:
    path = data_root() / "ptb-xl" / rel
    if not path.with_suffix(".hea").is_file():
        pytest.fail(f"PTB-XL record {path} missing from the data mirror")
    rec = wfdb.rdrecord(str(path))
    return rec.p_signal.T, float(rec.fs)


def _g(t: np.ndarray, mu: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - mu) / sd) ** 2)


def synth_ecg(
    fs: float,
    duration: float = 20.0,
    hr: float = 72.0,
    seed: int = 0,
    polarity: float = 1.0,
    width: float = 1.0,
    noise: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """ECG-like signal (mV) and the sample index of each true R peak.

    Q/R/S Gaussians plus P and T waves at jittered RR (PR and QT shortening with the rate as
    sqrt(RR), Bazett), 0.3 mV baseline wander and white noise. The true R peak is the extremum of
    the noise-free QRS complex.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * fs)) / fs
    beats = []
    b = 0.6
    while b < duration - 0.6:
        beats.append(b)
        b += 60.0 / hr * rng.uniform(0.9, 1.1)
    qrs = np.zeros_like(t)
    waves = np.zeros_like(t)
    for b in beats:
        qrs += polarity * (
            -0.15 * _g(t, b - 0.025 * width, 0.008 * width)
            + 1.2 * _g(t, b, 0.010 * width)
            - 0.3 * _g(t, b + 0.025 * width, 0.009 * width)
        )
        k = np.sqrt(60.0 / hr)
        waves += 0.15 * _g(t, b - 0.17 * k, 0.022) + 0.3 * _g(t, b + 0.26 * k, 0.045)
    sig = qrs + waves + 0.3 * np.sin(2 * np.pi * 0.25 * t + 1.0)
    sig += noise * rng.standard_normal(len(t))
    half = int(0.05 * fs)
    true = np.array(
        [
            int(round(b * fs))
            - half
            + int(np.argmax(polarity * qrs[int(round(b * fs)) - half :][: 2 * half + 1]))
            for b in beats
        ]
    )
    return sig, true


def match(found: np.ndarray, true: np.ndarray, tol: int) -> tuple[int, int, int]:
    """(matched, extra, missed) with each true peak matched by the nearest detection."""
    if len(found) == 0:
        return 0, 0, len(true)
    d = np.abs(found[:, None] - true[None, :])
    hit_true = d.min(axis=0) <= tol
    hit_found = d.min(axis=1) <= tol
    return int(hit_true.sum()), int((~hit_found).sum()), int((~hit_true).sum())


def f1_vs_reference(ref: np.ndarray, found: np.ndarray, fs: float) -> float:
    c = wp.compare_annotations(ref, found, int(0.15 * fs))
    return 2 * c.tp / (2 * c.tp + c.fp + c.fn)


# --- synthetic ground truth -------------------------------------------------------------------


@pytest.mark.parametrize("fs", [100.0, 250.0, 360.0, 500.0, 1000.0])
@pytest.mark.parametrize(
    "kind", [{}, {"polarity": -1.0}, {"width": 2.5}, {"hr": 150.0}, {"hr": 40.0}]
)
def test_synthetic_all_beats_at_true_peak(fs: float, kind: dict) -> None:
    sig, true = synth_ecg(fs, **kind)
    found = detect_rpeaks(sig, fs)
    assert found.dtype == np.int64
    assert np.all(np.diff(found) > 0)
    # within 4 ms (one sample at the coarser rates)
    tol = max(int(round(0.004 * fs)), 1)
    matched, extra, missed = match(found, true, tol)
    assert (missed, extra) == (0, 0), f"missed {missed}, extra {extra} of {len(true)} at {fs} Hz"


@pytest.mark.parametrize("shift_s", [-0.04, -0.02, 0.03])
@pytest.mark.parametrize("polarity", [1.0, -1.0])
def test_refinement_moves_to_true_peak_not_onset(shift_s: float, polarity: float) -> None:
    fs = 500.0
    sig, true = synth_ecg(fs, polarity=polarity, noise=0.0)
    # detections placed at the QRS onset (or after the peak), as many detectors do
    off = true + int(round(shift_s * fs))
    refined = refine_rpeaks(sig, fs, off)
    assert len(refined) == len(true)
    assert np.max(np.abs(refined - true)) <= 1


def test_huge_artefact_does_not_blind_the_detector() -> None:
    fs = 360.0
    sig, true = synth_ecg(fs, duration=30.0)
    sig[int(12.0 * fs) : int(12.05 * fs)] += 40.0  # electrode pop, ~30x a QRS
    found = detect_rpeaks(sig, fs)
    _, extra, _ = match(found, true, 3)
    assert extra <= 1  # the pop itself may count as a beat
    _, _, missed_later = match(found, true[true > 13.0 * fs], 3)
    assert missed_later == 0


def test_amplitude_drop_is_followed() -> None:
    fs = 360.0
    sig, true = synth_ecg(fs, duration=30.0)
    sig[int(15.0 * fs) :] *= 0.2  # electrode contact change
    found = detect_rpeaks(sig, fs)
    _, extra, _ = match(found, true, 3)
    assert extra == 0
    _, _, missed_later = match(found, true[true > 18.0 * fs], 3)
    assert missed_later == 0


def test_nan_gap_does_not_crash() -> None:
    fs = 360.0
    sig, true = synth_ecg(fs, duration=30.0)
    sig[int(5 * fs) : int(6 * fs)] = np.nan
    matched, extra, _ = match(detect_rpeaks(sig, fs), true, 3)
    assert matched >= len(true) - 2
    assert extra <= 1


def test_flutter_wave_gives_no_beats_but_fast_wide_beats_do() -> None:
    fs = 360.0
    t = np.arange(int(10 * fs)) / fs
    flutter = 0.8 * np.sin(2 * np.pi * 4.0 * t + 0.5 * np.sin(2 * np.pi * 0.3 * t))
    assert len(detect_rpeaks(flutter, fs)) <= 2
    sig, true = synth_ecg(fs, hr=180.0, width=2.5)
    matched, extra, missed = match(detect_rpeaks(sig, fs), true, 4)
    assert (missed, extra) == (0, 0)


# --- real data --------------------------------------------------------------------------------


def test_mitdb_100_first_minute() -> None:
    sig, fs, ref = read_mitdb("100", 60.0)
    found = detect_rpeaks(sig, fs)
    assert f1_vs_reference(ref, found, fs) >= 0.99
    # refined onto the R peak: reference marks of record 100 sit on it too
    c = wp.compare_annotations(ref, found, int(0.15 * fs))
    offsets = found[c.matched_test_inds] - ref[c.matched_ref_inds]
    assert np.median(np.abs(offsets)) <= 0.01 * fs


@pytest.mark.parametrize("detector", DETECTORS)
def test_every_detector_runs_on_mitdb_slice(detector: str) -> None:
    sig, fs, ref = read_mitdb("100", 60.0)
    found = detect_rpeaks(sig, fs, detector)
    assert found.dtype == np.int64
    assert f1_vs_reference(ref, found, fs) >= 0.98


def test_multilead_ptbxl_500_vs_100_hz() -> None:
    hr, fs_hr = read_ptbxl("records500/00000/00001_hr")
    lr, fs_lr = read_ptbxl("records100/00000/00001_lr")
    assert hr.shape[0] == 12 and fs_hr == 500.0 and fs_lr == 100.0
    p_hr = detect_rpeaks_multilead(hr, fs_hr)
    p_lr = detect_rpeaks_multilead(lr, fs_lr)
    t_hr, t_lr = p_hr / fs_hr, p_lr / fs_lr
    duration = hr.shape[1] / fs_hr
    # plausible count for a 10 s adult record, and every interior beat found at both rates
    assert 5 <= len(t_hr) <= 30
    interior = (t_hr > 0.1) & (t_hr < duration - 0.1)
    d = np.abs(t_hr[interior, None] - t_lr[None, :]).min(axis=1)
    assert np.all(d <= 0.020), f"500 vs 100 Hz fiducials differ by up to {d.max() * 1e3:.0f} ms"
    interior_lr = (t_lr > 0.1) & (t_lr < duration - 0.1)
    assert interior_lr.sum() == interior.sum()


def test_multilead_consistent_with_single_lead_on_synthetic() -> None:
    fs = 500.0
    a, true = synth_ecg(fs, seed=1)
    b, _ = synth_ecg(fs, seed=1, polarity=-0.5)
    leads = np.stack([a, b, np.zeros_like(a)])  # a flat lead must not matter
    found = detect_rpeaks_multilead(leads, fs)
    matched, extra, missed = match(found, true, int(0.006 * fs))
    assert (missed, extra) == (0, 0)


# --- edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig",
    [
        np.array([]),
        np.array([0.3]),
        np.zeros(10),
        np.zeros(3600),
        np.full(3600, 1.5),
        np.full(3600, np.nan),
    ],
    ids=["empty", "one", "short", "zeros", "constant", "all-nan"],
)
@pytest.mark.parametrize("detector", DETECTORS)
def test_degenerate_input_returns_empty(sig: np.ndarray, detector: str) -> None:
    out = detect_rpeaks(sig, 360.0, detector)
    assert out.dtype == np.int64 and out.shape == (0,)


def test_degenerate_multilead_returns_empty() -> None:
    assert detect_rpeaks_multilead(np.zeros((12, 0)), 500.0).shape == (0,)
    assert detect_rpeaks_multilead(np.zeros((12, 5000)), 500.0).shape == (0,)
    assert detect_rpeaks_multilead(np.full((2, 50), np.nan), 500.0).shape == (0,)


def test_unknown_detector_raises_naming_known_ones() -> None:
    sig, _ = synth_ecg(360.0, duration=5.0)
    with pytest.raises(ValueError, match="ecglatent") as err:
        detect_rpeaks(sig, 360.0, "pan-tompkins")
    assert all(name in str(err.value) for name in DETECTORS)
    with pytest.raises(ValueError, match="known"):
        detect_rpeaks_multilead(np.stack([sig, sig]), 360.0, "nope")
    with pytest.raises(ValueError, match="known"):
        detect_rpeaks(np.array([]), 360.0, "nope")


def test_detectors_tuple() -> None:
    assert DETECTORS[0] == "ecglatent"
    assert {"gqrs", "xqrs", "neurokit"} <= set(DETECTORS)
