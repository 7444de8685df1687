import numpy as np
import pytest

from ecglatent.signal.beats import (
    autocorrelation_mask,
    beat_correlations,
    extract_beats,
    magnitude_mask,
    median_beat,
    pre_post_rr,
    rr_features,
)
from ecglatent.signal.synthetic import synthetic_ecg


def test_extract_beats_windows_and_edges():
    sig = np.arange(2 * 100, dtype=float).reshape(2, 100)
    beats, ok = extract_beats(sig, np.array([3, 20, 50, 97]), before=5, after=5)
    np.testing.assert_array_equal(ok, [1, 2])  # 3 and 97 run off the ends
    assert beats.shape == (2, 2, 10)
    np.testing.assert_array_equal(beats[0, 0], np.arange(15, 25))
    np.testing.assert_array_equal(beats[1, 1], np.arange(145, 155))


def test_extract_beats_none_fit():
    beats, ok = extract_beats(np.zeros((3, 10)), np.array([1, 9]), 4, 4)
    assert beats.shape == (0, 3, 8) and ok.size == 0


def test_magnitude_mask():
    beats = np.ones((3, 2, 10))
    beats[1] *= 0.001
    np.testing.assert_array_equal(magnitude_mask(beats, 0.01), [True, False, True])


def _real_like_beats(n: int = 12) -> np.ndarray:
    ecg = synthetic_ecg(fs=500, duration_s=12, heart_rate_bpm=60, seed=1)
    beats, _ = extract_beats(ecg.signal, ecg.r_peaks, 200, 200)
    return beats[:n]


def test_autocorrelation_filter_drops_noise_beat_keeps_clean_ones():
    beats = _real_like_beats()
    rng = np.random.default_rng(0)
    beats[4] = rng.standard_normal(beats[4].shape) * 0.5  # pure noise
    mask = autocorrelation_mask(beats, mean_threshold=0.7, max_threshold=0.85)
    assert not mask[4]
    assert mask[np.arange(len(beats)) != 4].all()


def test_autocorrelation_filter_keeps_second_rhythm():
    """Two morphologies (e.g. bigeminy): low mean but high max correlation → kept."""
    beats = _real_like_beats(10)
    beats[1::2] = -beats[1::2] * 0.8  # a second, consistent morphology
    mean_r, max_r = beat_correlations(beats)
    assert (mean_r < 0.7).all()
    assert (max_r > 0.9).all()
    assert autocorrelation_mask(beats, 0.7, 0.85).all()


def test_median_beat_resists_an_outlier():
    beats = np.ones((5, 2, 4))
    beats[2] = 100.0
    np.testing.assert_array_equal(median_beat(beats), np.ones((2, 4)))
    with pytest.raises(ValueError):
        median_beat(np.empty((0, 2, 4)))


def test_rr_features():
    rr = rr_features(np.array([0, 500, 1000, 1600]), fs=500)
    assert rr.mean_s == pytest.approx((1 + 1 + 1.2) / 3)
    assert rr.std_s == pytest.approx(np.std([1, 1, 1.2]))
    assert np.isnan(rr_features(np.array([10]), 500).mean_s)


def test_pre_post_rr():
    pre, post = pre_post_rr(np.array([0, 360, 900]), fs=360)
    np.testing.assert_allclose(pre, [np.nan, 1.0, 1.5])
    np.testing.assert_allclose(post, [1.0, 1.5, np.nan])


def test_beat_average_mean_is_the_default_and_median_a_choice():
    from ecglatent.config import PreprocessConfig
    from ecglatent.errors import ConfigError

    beats = np.stack([np.zeros((2, 4)), np.zeros((2, 4)), np.full((2, 4), 3.0)])
    assert PreprocessConfig().beat_average == "mean"  # the VAE paper averages its beats
    np.testing.assert_array_equal(median_beat(beats, "mean"), np.ones((2, 4)))
    np.testing.assert_array_equal(median_beat(beats, "median"), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown beat average"):
        median_beat(beats, "mode")
    with pytest.raises(ConfigError, match="beat_average"):
        PreprocessConfig(beat_average="mode")


def test_preprocessing_uses_the_configured_average():
    from ecglatent.config import PreprocessConfig
    from ecglatent.signal.preprocess import median_beat_features

    ecg = synthetic_ecg(fs=500, duration_s=10, seed=4)
    rng = np.random.default_rng(0)
    sig = ecg.signal + rng.normal(0, 0.05, ecg.signal.shape)
    mean = median_beat_features(sig, 500, 500, PreprocessConfig(beat_average="mean")).median
    med = median_beat_features(sig, 500, 500, PreprocessConfig(beat_average="median")).median
    assert mean.shape == med.shape and not np.allclose(mean, med)
