"""Tests for ecglatent.evaluation.baselines: reconstruction metrics, PCA and sex/age features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecglatent.evaluation.baselines import pca_features, reconstruction_metrics, sex_age_features


def _beats(n: int, seed: int, n_leads: int = 3, n_samples: int = 64) -> np.ndarray:
    """Low-rank smooth 'beats' (5 latent sources) plus a little noise, (n, leads, samples)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_samples)
    basis = np.stack(
        [np.exp(-(((t - c) / w) ** 2)) for c, w in [(0.5, 0.03), (0.3, 0.08), (0.7, 0.1)]]
        + [np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]
    )  # (5, samples)
    mixing = np.random.default_rng(99).normal(size=(5, n_leads))  # same for train and test
    coeffs = rng.normal(size=(n, 5)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5])
    clean = np.einsum("nk,kl,ks->nls", coeffs, mixing, basis)
    return clean + 0.05 * rng.normal(size=clean.shape)


def test_reconstruction_metrics_identity_and_known_values():
    x = _beats(20, seed=0)
    x[3, 1] = 0.7  # a flat lead: skipped by the correlation, still counted by the MSE
    assert reconstruction_metrics(x, x.copy()) == (0.0, pytest.approx(1.0))
    mse, corr = reconstruction_metrics(x, x + 0.5)
    assert mse == pytest.approx(0.25) and corr == pytest.approx(1.0)
    mse, corr = reconstruction_metrics(x, -x)
    assert mse == pytest.approx(4 * np.mean(x**2)) and corr == pytest.approx(-1.0)


def test_reconstruction_metrics_averages_per_sample_and_lead():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, 50))
    x_hat = x + rng.normal(size=x.shape)
    expected = np.mean(
        [np.corrcoef(x[i, j], x_hat[i, j])[0, 1] for i in range(4) for j in range(2)]
    )
    mse, corr = reconstruction_metrics(x, x_hat)
    assert corr == pytest.approx(expected, rel=1e-10)
    assert mse == pytest.approx(np.mean((x - x_hat) ** 2))
    # A 2-D array is one lead per row.
    assert reconstruction_metrics(x[:, 0], x_hat[:, 0])[1] == pytest.approx(
        np.mean([np.corrcoef(x[i, 0], x_hat[i, 0])[0, 1] for i in range(4)])
    )


def test_reconstruction_metrics_all_flat_and_bad_shapes():
    flat = np.ones((2, 3, 10))
    mse, corr = reconstruction_metrics(flat, flat * 2)
    assert mse == 1.0 and np.isnan(corr)
    with pytest.raises(ValueError, match="differ"):
        reconstruction_metrics(np.zeros((2, 3, 10)), np.zeros((2, 3, 11)))


def test_pca_error_falls_with_components_and_is_fitted_on_train():
    train, test = _beats(200, seed=2), _beats(80, seed=3)
    mses, corrs = [], []
    for k in (1, 2, 3, 5):
        tr_f, te_f, mse, corr = pca_features(train, test, n_components=k, seed=0)
        assert tr_f.shape == (200, k) and te_f.shape == (80, k)
        mses.append(mse)
        corrs.append(corr)
    assert all(a > b for a, b in zip(mses, mses[1:], strict=False))
    assert all(c <= 1.0 for c in corrs) and corrs[-1] > 0.99
    # 5 sources: beyond 5 components only the noise floor (variance 0.05²) is left.
    assert mses[-1] < 2 * 0.05**2

    # Fitted on train only: a different test set changes nothing about the train features.
    tr_again, _, _, _ = pca_features(train, _beats(80, seed=4), n_components=3, seed=0)
    tr_3, _, _, _ = pca_features(train, test, n_components=3, seed=0)
    np.testing.assert_allclose(tr_again, tr_3)


def test_pca_rejects_bad_component_count():
    with pytest.raises(ValueError, match="n_components"):
        pca_features(_beats(10, 0), _beats(5, 1), n_components=11)


def test_sex_age_features_clip_and_impute_from_train():
    train = pd.DataFrame({"age": [40.0, 300.0, np.nan, 60.0, 70.0], "sex": [0, 1, 1, 0, 1]})
    X_train, fill = sex_age_features(train)
    # Median of the clipped, observed ages (40, 90, 60, 70) is 65, not 0 and not the 300 code.
    assert fill == 65.0
    np.testing.assert_array_equal(X_train[:, 0], [40.0, 90.0, 65.0, 60.0, 70.0])
    np.testing.assert_array_equal(X_train[:, 1], [0, 1, 1, 0, 1])

    test = pd.DataFrame({"age": [np.nan, 20.0], "sex": ["F", "m"]})
    X_test, used = sex_age_features(test, age_fill=fill)
    assert used == 65.0
    np.testing.assert_array_equal(X_test, [[65.0, 1.0], [20.0, 0.0]])


def test_sex_age_features_refuses_to_guess():
    with pytest.raises(ValueError, match="sex"):
        sex_age_features(pd.DataFrame({"age": [50.0, 60.0], "sex": [0, np.nan]}))
    with pytest.raises(ValueError, match="age"):
        sex_age_features(pd.DataFrame({"age": [np.nan, np.nan], "sex": [0, 1]}))
    with pytest.raises(KeyError):
        sex_age_features(pd.DataFrame({"age": [50.0]}))
