import numpy as np

from ecglatent.signal.filters import bandpass, resample, resampled_indices


def _tone(freq: float, fs: float, seconds: float = 10.0) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    return np.sin(2 * np.pi * freq * t)


def test_bandpass_keeps_qrs_band_and_removes_wander_and_hf_noise():
    fs = 500.0
    x = _tone(10, fs) + 2 * _tone(0.05, fs) + _tone(120, fs)
    y = bandpass(x, fs, 0.5, 40.0, order=2)
    core = slice(1000, -1000)
    target = _tone(10, fs)[core]
    residual = y[core] - target
    assert np.sqrt(np.mean(residual**2)) < 0.15  # wander and 120 Hz noise largely gone
    assert np.corrcoef(y[core], target)[0, 1] > 0.98


def test_bandpass_is_zero_phase():
    fs = 360.0
    x = np.zeros(3600)
    x[1800] = 1.0
    y = bandpass(x, fs, 0.5, 40.0)
    assert int(np.argmax(y)) == 1800


def test_bandpass_runs_on_all_leads_at_once():
    x = np.random.default_rng(0).standard_normal((12, 5000))
    y = bandpass(x, 500, 0.5, 40)
    np.testing.assert_allclose(y[3], bandpass(x[3], 500, 0.5, 40))


def test_bandpass_clips_high_cutoff_above_nyquist():
    y = bandpass(_tone(5, 100), 100, 0.5, 150.0)  # 150 Hz > Nyquist of 50 Hz
    assert np.isfinite(y).all()


def test_resample_length_and_waveform():
    x = _tone(5, 1000)
    y = resample(x, 1000, 500)
    assert y.shape == (5000,)
    np.testing.assert_allclose(y[100:-100], _tone(5, 500)[100:-100], atol=0.01)
    z = resample(_tone(5, 360), 360, 500)
    assert z.shape == (5000,)
    np.testing.assert_allclose(z[100:-100], _tone(5, 500)[100:-100], atol=0.01)


def test_resample_identity_returns_input():
    x = _tone(5, 500)
    assert resample(x, 500, 500) is x


def test_resampled_indices():
    np.testing.assert_array_equal(
        resampled_indices(np.array([0, 360, 720]), 360, 250), [0, 250, 500]
    )


def test_cached_zero_phase_bandpass_is_scipys_sosfiltfilt_exactly():
    """The cached design + state gives sosfiltfilt's output bit for bit (beats stay identical)."""
    from scipy import signal as sps

    from ecglatent.signal.filters import zero_phase_bandpass

    x = np.random.default_rng(0).normal(size=(3, 1200)).cumsum(axis=1)
    for fs, lo, hi, order, padlen in ((500.0, 0.5, 40.0, 2, 150), (250.0, 5.0, 18.0, 2, 125),
                                      (360.0, 0.5, 60.0, 3, 0)):  # fmt: skip
        sos = sps.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
        want = sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
        assert np.array_equal(zero_phase_bandpass(x, fs, lo, hi, order, padlen), want)
        assert np.array_equal(zero_phase_bandpass(x[1], fs, lo, hi, order, padlen), want[1])
