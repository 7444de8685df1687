"""R-peak detection: our classical detector plus wrapped peers, all refined to the true R peak."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as sps
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d

from ecglatent.signal.filters import zero_phase_bandpass

DETECTORS: tuple[str, ...] = ("ecglatent", "gqrs", "xqrs", "neurokit")

# --- ecglatent detector constants -------------------------------------------------------------
# QRS energy sits at ~5-20 Hz; P/T waves and baseline wander fall below, EMG and mains above.
BP_LO_HZ = 5.0
BP_HI_HZ = 18.0
BP_ORDER = 2
# Filter edge padding (odd extension), as a duration.
PAD_S = 0.5
# Moving-window integration about one QRS wide so one beat gives one hump.
MWI_S = 0.10
FEATURE_SQRT = True
# Two beats closer than this are physiologically impossible (absolute refractory period).
REFRACTORY_S = 0.25
# Threshold = noise level + TH_COEF * (signal level - noise level)  (Hamilton & Tompkins 1986).
TH_COEF = 0.40
# Exponential averaging weight of the running signal/noise peak levels.
LEVEL_ALPHA = 0.125
# A peak updates the signal level as if at most this multiple of it: one huge artefact must not
# inflate the threshold above the following beats.
LEVEL_CLIP = 2.0
# A candidate this soon after a beat is a T wave unless its slope is comparable.
TWAVE_S = 0.36
TWAVE_SLOPE_RATIO = 0.5
# Search back when the RR gap exceeds this multiple of the recent RR, at this fraction of the threshold.
SEARCHBACK_RR = 1.4
SEARCHBACK_TH = 0.5
# After this many expected RRs (and seconds) without a beat the signal level decays by LOST_DECAY
# per retry so smaller beats are found after an amplitude drop; the search-back threshold never
# falls below LOST_FLOOR x the noise level, so long pauses do not fill with noise.
LOST_RR = 3.0
LOST_S = 3.0
LOST_DECAY = 0.7
LOST_FLOOR = 3.0
# Expected RR before any beat is found (60 bpm).
INIT_RR_S = 1.0
# Number of recent RR intervals whose median sets the expected RR.
RR_HISTORY = 8
# Seconds used to initialise the running levels.
INIT_S = 8.0
# Ventricular flutter/fibrillation: the signal never returns to an isoelectric line, so the
# feature valley between consecutive detections stays high. A detection whose VF_RUN-beat
# neighbourhood has a median valley/peak ratio above VF_VALLEY is a flutter wave, not a beat.
# (Normal and ventricular beats stay below ~0.1 at the 99th percentile on MIT-BIH.)
VF_VALLEY = 0.20
VF_RUN = 7
# Half-width of the window (around the detection) that holds the QRS slope and the R peak.
QRS_HALF_S = 0.08
# Refinement signal: remove baseline and high-frequency noise but keep the QRS shape.
REFINE_LO_HZ = 0.5
REFINE_HI_HZ = 40.0
REFINE_ORDER = 2
# Local baseline window for the refinement (median over +-this) -- mostly isoelectric samples.
BASELINE_HALF_S = 0.30
# A beat takes the opposite polarity to the record's dominant one only if clearly larger.
FLIP_RATIO = 1.6
# Template alignment of the fiducial: search +-ALIGN_MAXLAG_S, trust beats correlating at least
# ALIGN_MIN_CORR with the record's median beat, then snap within +-ALIGN_SNAP_S to a local extremum.
ALIGN_MAXLAG_S = 0.04
# Alignment window half-width: the whole QRS and its surroundings, not just the extremum.
ALIGN_HALF_S = 0.10
ALIGN_ITER = 2
# Rate the alignment runs at (the refinement signal is low-passed at REFINE_HI_HZ, well below).
ALIGN_FS = 250.0
ALIGN_MIN_CORR = 0.8
ALIGN_SNAP_S = 0.01
ALIGN_MIN_BEATS = 3
# Multi-lead fiducial: spatial QRS energy smoothed over about a third of a QRS.
MAG_SMOOTH_S = 0.03
# Refined peaks closer than this are one beat (two detections converged on the same R wave).
DEDUPE_S = 0.125
# Lowest sampling rate: the QRS band (BP_HI_HZ) must stay below Nyquist.
MIN_FS = 50.0
# Percentile of a lead's feature taken as its QRS level when leads are combined.
LEAD_LEVEL_PCT = 98.0
# Shortest input handled (samples); shorter inputs hold no measurable beat.
MIN_SAMPLES = 16


def _clean(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        x = x.copy()
        bad = ~np.isfinite(x)
        if bad.all():
            return np.zeros_like(x)
        good = np.flatnonzero(~bad)
        x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return x


def _filt(band: tuple[float, float, int], x: np.ndarray, fs: float) -> np.ndarray:
    """Zero-phase band-pass ``(lo, hi, order)`` along the last axis (1-D, or independent rows)."""
    # pad by a fixed duration (not scipy's fixed sample count) so edges behave alike at any rate
    padlen = min(int(round(PAD_S * fs)), x.shape[-1] - 1)
    lo, hi, order = band
    return zero_phase_bandpass(x, fs, lo, min(hi, 0.45 * fs), order, max(padlen, 0))


def _features(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Integrated squared slope (one hump per QRS) and absolute slope of the band-passed signal.

    ``x`` is one lead or (rows, samples); rows are independent (same result as one at a time).
    """
    bp = _filt((BP_LO_HZ, BP_HI_HZ, BP_ORDER), x, fs)
    d = np.gradient(bp, axis=-1) * fs
    mwi = uniform_filter1d(d * d, max(int(round(MWI_S * fs)), 1), axis=-1, mode="nearest")
    return np.sqrt(mwi) if FEATURE_SQRT else mwi, np.abs(d)


def _median(v: list[int]) -> float:
    # plain Python: np.median costs ~15 us per call and this runs once per beat
    o = sorted(v)
    m = len(o) // 2
    return float(o[m]) if len(o) % 2 else 0.5 * (o[m - 1] + o[m])


def _threshold(mwi: np.ndarray, slope: np.ndarray, fs: float) -> np.ndarray:
    """Adaptive dual-level thresholding with T-wave rejection and search-back."""
    refr = max(int(round(REFRACTORY_S * fs)), 1)
    cand, _ = sps.find_peaks(mwi, distance=refr)
    if len(cand) == 0:
        return cand.astype(np.int64)
    half = max(int(round(QRS_HALF_S * fs)), 1)
    h = mwi[cand]
    s = maximum_filter1d(slope, 2 * half + 1)[cand]
    n_init = max(int(INIT_S * fs), 1)
    init = mwi[:n_init]
    nwin = max(len(init) // int(fs), 1)
    maxima = [w.max() for w in np.array_split(init, nwin)]
    spk = float(np.median(maxima))
    npk = float(np.median(init))
    accepted = np.zeros(len(cand), dtype=bool)
    rr_hist: list[int] = []
    last = 0  # start of the signal acts as the previous beat for the first gap
    last_i = -1
    last_slope = 0.0
    tw = TWAVE_S * fs
    pos = cand.tolist() + [len(mwi) + refr]  # sentinel closes the final gap
    hl = h.tolist()
    sl = s.tolist()
    rr = INIT_RR_S * fs  # expected RR: median of the recent ones once there are any
    for i in range(len(pos)):
        p = pos[i]
        thr = npk + TH_COEF * (spk - npk)
        # search back for missed beats when the gap is too long
        while True:
            if p - last <= SEARCHBACK_RR * rr:
                break
            best = -1
            bh = SEARCHBACK_TH * thr
            for j in range(last_i + 1, i):
                if hl[j] > bh and pos[j] - last >= refr and p - pos[j] >= refr:
                    if (
                        last_i >= 0
                        and pos[j] - last < tw
                        and sl[j] < TWAVE_SLOPE_RATIO * last_slope
                    ):
                        continue
                    best, bh = j, hl[j]
            if best < 0:
                # Lost track (the amplitude dropped): decay the signal level and search again,
                # but never below LOST_FLOOR x the noise level, so pauses do not fill with noise.
                if (
                    p - last > max(LOST_RR * rr, LOST_S * fs)
                    and SEARCHBACK_TH * thr > LOST_FLOOR * npk
                ):
                    spk *= LOST_DECAY
                    thr = npk + TH_COEF * (spk - npk)
                    continue
                break
            accepted[best] = True
            spk = 0.25 * min(hl[best], LEVEL_CLIP * spk) + 0.75 * spk
            if last_i >= 0:
                rr_hist = [*rr_hist[-RR_HISTORY + 1 :], pos[best] - last]
                rr = _median(rr_hist)
            last, last_i, last_slope = pos[best], best, sl[best]
            thr = npk + TH_COEF * (spk - npk)
        if i == len(hl):
            break
        if hl[i] > thr:
            if last_i >= 0 and p - last < tw and sl[i] < TWAVE_SLOPE_RATIO * last_slope:
                npk = LEVEL_ALPHA * hl[i] + (1 - LEVEL_ALPHA) * npk
                continue
            accepted[i] = True
            spk = LEVEL_ALPHA * min(hl[i], LEVEL_CLIP * spk) + (1 - LEVEL_ALPHA) * spk
            if last_i >= 0:
                rr_hist = [*rr_hist[-RR_HISTORY + 1 :], p - last]
                rr = _median(rr_hist)
            last, last_i, last_slope = p, i, sl[i]
        else:
            npk = LEVEL_ALPHA * hl[i] + (1 - LEVEL_ALPHA) * npk
    return cand[accepted].astype(np.int64)


def _beat_windows(n: int, peaks: np.ndarray, offs: np.ndarray) -> np.ndarray:
    return np.clip(peaks[:, None] + offs[None, :], 0, n - 1)


def _local_baseline(y: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Median level around each beat: mostly isoelectric samples, so QRS deflections are measured
    from the baseline rather than from zero (the high-pass leaves a record-dependent offset)."""
    bhalf = max(int(round(BASELINE_HALF_S * fs)), 2)
    step = max(bhalf // 8, 1)  # coarse grid keeps this cheap
    idx = _beat_windows(y.shape[-1], peaks, np.arange(-bhalf, bhalf + 1, step))
    return np.median(y[..., idx], axis=-1)


def _align_to_template(
    y: np.ndarray, fs: float, peaks: np.ndarray, sign: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Make the fiducial consistent across beats of the record's dominant morphology.

    Complexes with two near-equal extrema (notched R, W-shaped QS) otherwise flip between them
    from beat to beat. Beats are aligned on their whole QRS shape by cross-correlation with the
    median beat (re-estimated ALIGN_ITER times, starting from the detector's energy peaks, which
    do not flip); well-correlated beats then take the template's extremum, snapped to the nearest
    local extremum of their own.
    """
    s0 = 1 if np.sum(sign) >= 0 else -1
    dom = np.flatnonzero(sign == s0)
    if len(dom) < ALIGN_MIN_BEATS:
        return peaks
    # align at ~ALIGN_FS (y is already low-passed well below that), so the cost does not grow
    # with the recording rate; only the final snap runs at full rate
    k = max(int(fs // ALIGN_FS), 1)
    yd = y[::k]
    fsd = fs / k
    n = len(yd)
    maxlag = max(int(round(ALIGN_MAXLAG_S * fsd)), 1)
    whalf = max(int(round(ALIGN_HALF_S * fsd)), maxlag + 1)
    span = np.arange(-whalf - maxlag, whalf + maxlag + 1)
    pos = start[dom] // k
    best_c = np.zeros(len(pos))
    tmpl = np.zeros(2 * whalf + 1)
    for _ in range(ALIGN_ITER):
        ext = yd[_beat_windows(n, pos, span)]  # (beats, window + 2 * maxlag)
        tmpl = np.median(ext[:, maxlag : maxlag + 2 * whalf + 1], axis=0)
        tmpl = tmpl - tmpl.mean()
        tnorm = np.linalg.norm(tmpl)
        if tnorm == 0:
            return peaks
        w = sliding_window_view(ext, 2 * whalf + 1, axis=1)  # (beats, lags, window)
        w = w - w.mean(axis=2, keepdims=True)
        c = (w @ tmpl) / (np.linalg.norm(w, axis=2) * tnorm + 1e-12)
        lag = c.argmax(axis=1)
        best_c = c[np.arange(len(pos)), lag]
        pos = pos + lag - maxlag
    # the template's own fiducial: its dominant extremum near the centre
    centre = tmpl[whalf - maxlag : whalf + maxlag + 1]
    target = (pos + int(np.argmax(s0 * centre)) - maxlag) * k
    snap = max(int(round(ALIGN_SNAP_S * fs)), 1) + k // 2
    sidx = _beat_windows(len(y), target, np.arange(-snap, snap + 1))
    snapped = sidx[np.arange(len(pos)), np.argmax(s0 * y[sidx], axis=1)]
    out = peaks.copy()
    good = best_c >= ALIGN_MIN_CORR
    out[dom[good]] = snapped[good]
    return out


def _dedupe(peaks: np.ndarray, fs: float) -> np.ndarray:
    peaks = np.unique(peaks)
    if len(peaks) > 1:
        keep = np.ones(len(peaks), dtype=bool)
        keep[1:] = np.diff(peaks) >= max(int(round(DEDUPE_S * fs)), 1)
        peaks = peaks[keep]
    return peaks.astype(np.int64)


def _refine_single(y: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    n = len(y)
    half = max(int(round(QRS_HALF_S * fs)), 1)
    idx = _beat_windows(n, peaks, np.arange(-half, half + 1))
    win = y[idx]
    base = _local_baseline(y, peaks, fs)
    rows = np.arange(len(peaks))
    imax = win.argmax(axis=1)
    imin = win.argmin(axis=1)
    up = win[rows, imax] - base
    down = base - win[rows, imin]
    polarity = 1 if np.median(up) >= np.median(down) else -1
    # the record's dominant polarity, unless a beat's opposite deflection is clearly larger
    # (e.g. a ventricular beat): one morphology always gets the same kind of fiducial
    use_max = ~(down > FLIP_RATIO * up) if polarity > 0 else up > FLIP_RATIO * down
    out = idx[rows, np.where(use_max, imax, imin)]
    return _align_to_template(y, fs, out, np.where(use_max, 1, -1), peaks)


def refine_rpeaks(signal: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """Move detections (1-D signal or (leads, samples)) onto the R peak.

    Single lead: the dominant extremum of the QRS within +-QRS_HALF_S of each detection, aligned
    consistently across beats. Several leads: the peak of the spatial magnitude (RMS over leads of
    the baseline-corrected signals), one fiducial shared by all leads.
    """
    x = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    if len(x) and x.shape[-1] >= MIN_SAMPLES:
        x = np.stack([_clean(lead) for lead in x])
    return _refine_filtered(_refine_filter(x, fs), fs, peaks)


def _refine_filter(x: np.ndarray, fs: float) -> np.ndarray:
    """The refinement band-pass of clean (rows, samples) leads, all rows in one call."""
    if x.shape[-1] < MIN_SAMPLES:
        return x
    return _filt((REFINE_LO_HZ, REFINE_HI_HZ, REFINE_ORDER), x, fs)


def _refine_filtered(y: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """:func:`refine_rpeaks` on leads already passed through :func:`_refine_filter`."""
    peaks = np.asarray(peaks, dtype=np.int64).ravel()
    n = y.shape[-1]
    peaks = peaks[(peaks >= 0) & (peaks < n)]
    if len(peaks) == 0 or n < MIN_SAMPLES:
        return np.empty(0, dtype=np.int64)
    if len(y) == 1:
        return _dedupe(_refine_single(y[0], fs, np.sort(peaks)), fs)
    peaks = np.sort(peaks)
    half = max(int(round(QRS_HALF_S * fs)), 1)
    idx = _beat_windows(n, peaks, np.arange(-half, half + 1))
    # smoothed spatial energy: R and S humps of similar size merge into one peak, so the choice
    # does not flip between them from beat to beat or between sampling rates
    mag = uniform_filter1d(np.sum(y * y, axis=0), max(int(round(MAG_SMOOTH_S * fs)), 1))
    out = idx[np.arange(len(idx)), mag[idx].argmax(axis=1)]
    return _dedupe(_align_to_template(mag, fs, out, np.ones(len(out)), peaks), fs)


def _vf_gate(peaks: np.ndarray, mwi: np.ndarray) -> np.ndarray:
    """Drop detections inside sustained flutter/fibrillation (no isoelectric valleys)."""
    if len(peaks) < 3:
        return peaks
    h = mwi[peaks]
    valley = np.minimum.reduceat(mwi, peaks)[:-1] / np.maximum(np.minimum(h[:-1], h[1:]), 1e-12)
    v = np.minimum(np.r_[valley[0], valley], np.r_[valley, valley[-1]])
    keep = median_filter(v, size=VF_RUN, mode="nearest") <= VF_VALLEY
    return peaks[keep]


def _detect_ecglatent(x: np.ndarray, fs: float) -> np.ndarray:
    mwi, slope = _features(x, fs)
    return _vf_gate(_threshold(mwi, slope, fs), mwi)


def _detect_peer(name: str, x: np.ndarray, fs: float) -> np.ndarray:
    if name in ("gqrs", "xqrs"):
        import wfdb.processing as wp

        if name == "gqrs":
            return np.asarray(wp.gqrs_detect(sig=x, fs=fs), dtype=np.int64)
        return np.asarray(wp.xqrs_detect(sig=x, fs=fs, verbose=False), dtype=np.int64)
    import neurokit2 as nk

    clean = nk.ecg_clean(x, sampling_rate=fs, method="pantompkins1985")
    info = nk.ecg_findpeaks(clean, sampling_rate=fs, method="pantompkins1985")
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def _check_fs(fs: float) -> None:
    if not np.isfinite(fs) or fs < MIN_FS:
        raise ValueError(f"sampling rate {fs!r} Hz is too low for QRS detection (min {MIN_FS} Hz)")


def _min_len(fs: float) -> int:
    return max(int(2 * REFRACTORY_S * fs) + 3, MIN_SAMPLES)


def _check(detector: str) -> None:
    if detector not in DETECTORS:
        raise ValueError(f"unknown R-peak detector {detector!r}; known: {', '.join(DETECTORS)}")


def detect_raw(signal: np.ndarray, fs: float, detector: str = "ecglatent") -> np.ndarray:
    """Detections as the detector itself places them (no refinement); for benchmarking."""
    _check(detector)
    _check_fs(fs)
    x = _clean(signal)
    if len(x) < _min_len(fs) or np.ptp(x) == 0:
        return np.empty(0, dtype=np.int64)
    peaks = _detect_ecglatent(x, fs) if detector == "ecglatent" else _detect_peer(detector, x, fs)
    peaks = np.unique(peaks[(peaks >= 0) & (peaks < len(x))])
    return peaks.astype(np.int64)


def _lead_quality(mwi: np.ndarray) -> tuple[float, float]:
    """(QRS level, weight) of one lead's feature: weight ~ log peak-to-floor ratio (0 for noise)."""
    return _level_weight(float(np.percentile(mwi, LEAD_LEVEL_PCT)), float(np.median(mwi)))


def _level_weight(level: float, floor: float) -> tuple[float, float]:
    weight = (
        float(np.log(level / floor)) if level > 0 and floor > 0 else (1.0 if level > 0 else 0.0)
    )
    return level, max(weight, 0.0)


def detect_rpeaks(signal: np.ndarray, fs: float, detector: str = "ecglatent") -> np.ndarray:
    """1-D signal in mV at rate fs -> sorted int64 sample indices of R peaks (true R extremum)."""
    peaks = detect_raw(signal, fs, detector)
    return refine_rpeaks(np.asarray(signal).ravel(), fs, peaks)


def detect_rpeaks_multilead(
    signal: np.ndarray, fs: float, detector: str = "ecglatent"
) -> np.ndarray:
    """(leads, samples) in mV -> one sorted int64 R-peak index per beat, shared by all leads.

    ecglatent detects on the weighted mean of the per-lead features (each lead normalised to its
    own QRS level, noisy leads down-weighted); peers run on the best lead. The fiducial is the peak
    of the spatial QRS magnitude, so it does not depend on which lead is chosen.
    """
    _check(detector)
    _check_fs(fs)
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        return detect_rpeaks(x, fs, detector)
    if x.ndim != 2:
        raise ValueError(f"expected a (leads, samples) array, got shape {x.shape}")
    return detect_rpeaks_multilead_batch(x[None], fs, detector)[0]


def detect_rpeaks_multilead_batch(
    signals: np.ndarray, fs: float, detector: str = "ecglatent"
) -> list[np.ndarray]:
    """:func:`detect_rpeaks_multilead` of each (leads, samples) record of ``signals``
    (records, leads, samples), all at one rate and length.

    The filters run once over every lead of every record (one call on a 2-D array instead of
    dozens of small ones); each record's peaks are those it would get on its own.
    """
    _check(detector)
    _check_fs(fs)
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected a (records, leads, samples) array, got shape {x.shape}")
    n_rec, n_leads, n = x.shape
    if n < _min_len(fs) or n_leads == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(n_rec)]
    rows = x.reshape(n_rec * n_leads, n)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        rows = rows.copy()
        for i in np.flatnonzero(bad):
            rows[i] = _clean(rows[i])
    live = (np.ptp(rows, axis=1) > 0).reshape(n_rec, n_leads)
    mwi_all, slope_all = _features(rows, fs)
    level_all = np.percentile(mwi_all, LEAD_LEVEL_PCT, axis=1)
    floor_all = np.median(mwi_all, axis=1)
    slope_level_all = np.percentile(slope_all, LEAD_LEVEL_PCT, axis=1)
    refined = _refine_filter(rows, fs)
    out = []
    for r in range(n_rec):
        idx = r * n_leads + np.flatnonzero(live[r])
        if len(idx) == 0:
            out.append(np.empty(0, dtype=np.int64))
            continue
        quality = [_level_weight(float(level_all[i]), float(floor_all[i])) for i in idx]
        weights = np.array([w for _, w in quality])
        if weights.sum() <= 0:
            weights = np.ones(len(idx))
        if detector == "ecglatent":
            mwi = np.zeros(n)
            slope = np.zeros(n)
            for i, (level, _), w in zip(idx, quality, weights, strict=True):
                if w > 0 and level > 0:
                    mwi += w * mwi_all[i] / level
                    slope += w * slope_all[i] / max(float(slope_level_all[i]), 1e-12)
            peaks = _vf_gate(_threshold(mwi, slope, fs), mwi)
        else:
            peaks = _detect_peer(detector, rows[idx[int(np.argmax(weights))]], fs)
            peaks = np.unique(peaks[(peaks >= 0) & (peaks < n)])
        out.append(_refine_filtered(refined[idx], fs, peaks))
    return out
