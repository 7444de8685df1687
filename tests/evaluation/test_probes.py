"""Tests for ecglatent.evaluation.probes: CV-tuned L1/L2 logistic probes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ecglatent.evaluation.probes import evaluate_features, fit_logistic_probe, probe_latents

# A coarser grid than DEFAULT_CS keeps the tests fast where the grid itself is not under test.
FAST_CS = tuple(np.logspace(-3, 3, 7))


def _signal_data(seed: int = 0, n: int = 600, n_noise: int = 8):
    """Two informative features (strong effect) plus ``n_noise`` irrelevant ones, ~30% positive."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2 + n_noise))
    logit = 2.5 * X[:, 0] - 2.0 * X[:, 1] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    # Shift and scale the raw features so the probe's standardisation actually matters.
    X = X * np.linspace(0.1, 50, X.shape[1]) + 100
    return X[:400], y[:400], X[400:], y[400:]


def test_separable_data_gives_high_auroc():
    Xtr, ytr, Xte, yte = _signal_data()
    res = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l2", seed=0)
    assert res.auroc.auc > 0.9
    assert res.auroc.lo > 0.8
    assert res.cv_auroc > 0.85
    assert res.test_scores.shape == (200,)
    assert ((res.test_scores >= 0) & (res.test_scores <= 1)).all()
    np.testing.assert_allclose(res.test_scores, 1 / (1 + np.exp(-res.test_logits)))


def test_pure_noise_gives_chance_auroc():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 6))
    y = rng.integers(0, 2, 500)
    res = fit_logistic_probe(X[:300], y[:300], X[300:], y[300:], penalty="l2", seed=0)
    assert res.auroc.lo <= 0.5 <= res.auroc.hi
    assert abs(res.auroc.auc - 0.5) < 0.1


def test_same_seed_is_deterministic():
    Xtr, ytr, Xte, yte = _signal_data(seed=1)
    for penalty in ("l1", "l2"):
        a = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty=penalty, seed=3, Cs=FAST_CS)
        b = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty=penalty, seed=3, Cs=FAST_CS)
        assert a.C == b.C and a.cv_auroc == b.cv_auroc
        np.testing.assert_array_equal(a.test_scores, b.test_scores)
        np.testing.assert_array_equal(a.coef, b.coef)


def test_l1_zeroes_irrelevant_coefficients_and_l2_does_not():
    Xtr, ytr, Xte, yte = _signal_data(seed=0)
    # At one fixed, moderate C the penalties must differ in kind: this catches a silently
    # ignored penalty argument (sklearn moved from `penalty` to `l1_ratio` in 1.8).
    l1 = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l1", seed=0, Cs=[0.05])
    l2 = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l2", seed=0, Cs=[0.05])
    assert (l1.coef[2:] == 0).all() and (l1.coef[:2] != 0).all()
    assert (l2.coef != 0).all()
    # With C tuned by inner CV (AUROC is flat over a range of C, so the chosen C is mild)
    # irrelevant features are dropped or left negligible next to the informative ones.
    tuned = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l1", seed=0)
    assert (tuned.coef[:2] != 0).all()
    assert (tuned.coef[2:] == 0).any()
    assert np.abs(tuned.coef[2:]).max() < 0.1 * np.abs(tuned.coef[:2]).min()


def test_f1_is_macro_f1_at_half_probability():
    Xtr, ytr, Xte, yte = _signal_data(seed=2)
    res = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l2", seed=0)
    expected = f1_score(yte, (res.test_scores > 0.5).astype(int), average="macro")
    assert res.f1_macro == pytest.approx(expected)
    assert 0.7 < res.f1_macro <= 1.0


def test_pipeline_pickles_and_predicts_the_reported_scores():
    Xtr, ytr, Xte, yte = _signal_data(seed=3)
    res = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l1", seed=0, Cs=FAST_CS)
    clone = pickle.loads(pickle.dumps(res.pipeline))
    np.testing.assert_allclose(clone.predict_proba(Xte)[:, 1], res.test_scores)
    assert clone[-1].C == res.C
    assert clone[-1].class_weight == "balanced"


def test_evaluate_features_selects_by_inner_cv_not_test():
    Xtr, ytr, Xte, yte = _signal_data(seed=4)
    ev = evaluate_features(Xtr, ytr, Xte, yte, seed=0, Cs=FAST_CS)
    assert ev.l1.penalty == "l1" and ev.l2.penalty == "l2"
    expected = "l1" if ev.l1.cv_auroc > ev.l2.cv_auroc else "l2"
    assert ev.best_penalty == expected and ev.best is getattr(ev, expected)
    # Test labels must not influence any choice: scramble them and nothing selected moves.
    scrambled = evaluate_features(Xtr, ytr, Xte, yte[::-1].copy(), seed=0, Cs=FAST_CS)
    assert scrambled.best_penalty == ev.best_penalty
    assert (scrambled.l1.C, scrambled.l2.C) == (ev.l1.C, ev.l2.C)
    assert scrambled.best.auroc.auc != ev.best.auroc.auc


def test_grouped_inner_cv_runs_and_validates_groups():
    Xtr, ytr, Xte, yte = _signal_data(seed=5)
    groups = np.arange(len(ytr)) // 4  # four ECGs per "patient"
    res = fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="l2", seed=0, Cs=FAST_CS, groups=groups)
    assert res.auroc.auc > 0.9
    with pytest.raises(ValueError, match="groups"):
        fit_logistic_probe(Xtr, ytr, Xte, yte, groups=groups[:-1])


def test_input_validation():
    Xtr, ytr, Xte, yte = _signal_data()
    with pytest.raises(ValueError, match="penalty"):
        fit_logistic_probe(Xtr, ytr, Xte, yte, penalty="elasticnet")
    with pytest.raises(ValueError, match="features"):
        fit_logistic_probe(Xtr, ytr, Xte[:, :3], yte)
    with pytest.raises(ValueError, match="minority"):
        fit_logistic_probe(Xtr, np.r_[np.ones(2, int), np.zeros(398, int)], Xte, yte)


def test_validation_auroc_is_the_chosen_probes_inner_cv_and_ignores_test_labels():
    Xtr, ytr, Xte, yte = _signal_data(seed=6)
    groups = np.arange(len(ytr)) // 4  # four rows per "patient"
    ev = evaluate_features(Xtr, ytr, Xte, yte, seed=0, Cs=FAST_CS, groups=groups)
    assert ev.validation_auroc == ev.best.cv_auroc == max(ev.l1.cv_auroc, ev.l2.cv_auroc)
    assert 0.85 < ev.validation_auroc < 1.0
    flipped = evaluate_features(Xtr, ytr, Xte, 1 - yte, seed=0, Cs=FAST_CS, groups=groups)
    assert flipped.validation_auroc == ev.validation_auroc
    assert flipped.best.auroc.auc == pytest.approx(1 - ev.best.auroc.auc)


def test_probe_latents_reads_the_prediction_latents_of_split_task_models():
    mu = np.arange(30.0).reshape(3, 10)
    np.testing.assert_array_equal(probe_latents(mu, 2), mu[:, :2])  # split task "2 (10)"
    np.testing.assert_array_equal(probe_latents(mu, 10), mu)  # task specific
    np.testing.assert_array_equal(probe_latents(mu, None), mu)  # task naive
    np.testing.assert_array_equal(probe_latents(mu, 0), mu)
    with pytest.raises(ValueError, match="outside 1..10"):
        probe_latents(mu, 11)
