"""Tests for ecglatent.evaluation.clustered: record-level AUROC uncertainty and replicate tests.

The size test simulates what MIT-BIH DS2 looks like to a significance test: ~1,000 beats from
22 patients, each patient with its own prevalence, offset and class separation, and no true
difference between the two scores. A test at alpha = 0.05 should then reject in about 5 % of
simulations; the beat-level Hanley & McNeil (1983) test rejects in most of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from ecglatent.evaluation.auroc import compare_aucs_hanley_mcneil
from ecglatent.evaluation.clustered import (
    auroc_difference,
    cluster_bootstrap_auroc,
    cluster_bootstrap_auroc_diff,
    obuchowski_auroc_diff,
    pair_matrix,
    paired_replicate_test,
)

HM_SIMS = 50


def simulate(rng: np.random.Generator, n_patients: int = 22, effect: float = 0.0,
             beats: tuple[int, int] = (20, 70)):  # fmt: skip
    """Beats of few patients: patient-level prevalence, offsets and separations (random effects).

    Score b separates the classes by ``effect`` more than score a on average; with
    ``effect = 0`` the two have the same expected AUROC.
    """
    n_k = rng.integers(*beats, size=n_patients)
    g = np.repeat(np.arange(n_patients), n_k)
    prevalence = rng.beta(1.5, 6.0, size=n_patients)
    y = (rng.random(g.size) < prevalence[g]).astype(int)
    y[0], y[-1] = 1, 0
    sep_a = 1.0 + rng.normal(0.0, 0.8, n_patients)
    sep_b = 1.0 + effect + rng.normal(0.0, 0.8, n_patients)
    off_a, off_b = rng.normal(0.0, 1.0, n_patients), rng.normal(0.0, 1.0, n_patients)
    a = y * sep_a[g] + off_a[g] + rng.normal(0.0, 1.0, g.size)
    b = y * sep_b[g] + off_b[g] + rng.normal(0.0, 1.0, g.size)
    return y, a, b, g


def test_size_on_clustered_null_data_and_beat_level_test_as_contrast():
    rng = np.random.default_rng(2026)
    sims = 200
    boot = obu = hm = 0
    for s in range(sims):
        y, a, b, g = simulate(rng)
        boot += cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=500, seed=s).p_value < 0.05
        obu += obuchowski_auroc_diff(y, a, b, g).p_value < 0.05
        if s < HM_SIMS:  # sklearn's roc_auc_score is the slow part; fewer sims suffice here
            hm += compare_aucs_hanley_mcneil(y, a, b).p_value < 0.05
    # 22 clusters: measured ~8 % for both over 400 sims (small-cluster excess); 48 clusters ~5 %.
    assert 0.01 <= boot / sims <= 0.12, boot / sims
    assert 0.01 <= obu / sims <= 0.12, obu / sims
    # Beats as independent units: most null simulations come out "significant".
    assert hm / HM_SIMS > 0.30, hm / HM_SIMS


def test_power_a_real_difference_is_detected():
    rng = np.random.default_rng(7)
    sims = 40
    hits = 0
    for s in range(sims):
        y, a, b, g = simulate(rng, effect=2.0)
        r = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=1000, seed=s)
        hits += r.p_value < 0.05 and r.diff > 0 and r.lo > 0
    assert hits / sims >= 0.8, hits / sims


def test_point_estimates_are_the_empirical_auroc_with_ties():
    rng = np.random.default_rng(0)
    y, a, b, g = simulate(rng)
    a = np.round(a, 1)  # many ties
    r = cluster_bootstrap_auroc(y, a, g, n_boot=200)
    assert r.auc == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    d = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=200)
    assert d.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert d.diff == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a), abs=1e-12)
    assert r.n_clusters == 22 and r.n_pos == y.sum() and r.n_neg == (1 - y).sum()
    assert r.lo < r.auc < r.hi


def test_resampled_auroc_identity_matches_an_explicitly_resampled_dataset():
    """cᵀPc / ((c·m)(c·n)) is the AUROC of the data set that repeats cluster k c_k times."""
    rng = np.random.default_rng(1)
    y, a, _, g = simulate(rng, n_patients=6)
    a = np.round(a, 1)
    P = pair_matrix(y.astype(bool), a, g, 6)
    m = np.bincount(g[y == 1], minlength=6)
    n = np.bincount(g[y == 0], minlength=6)
    for c in (np.array([2, 0, 1, 0, 3, 0]), np.array([0, 1, 1, 1, 1, 2])):
        idx = np.concatenate([np.flatnonzero(g == k) for k in range(6) for _ in range(c[k])])
        if len(np.unique(y[idx])) < 2:
            continue
        expected = roc_auc_score(y[idx], a[idx])
        assert c @ P @ c / ((c @ m) * (c @ n)) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_and_obuchowski_agree_on_the_spread():
    rng = np.random.default_rng(3)
    y, a, b, g = simulate(rng, n_patients=40, effect=0.5)
    boot = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=4000, seed=1)
    obu = obuchowski_auroc_diff(y, a, b, g)
    assert boot.diff == pytest.approx(obu.diff)
    # bootstrap variance is (I − 1)/I of the jackknife-type one, plus Monte Carlo noise
    assert boot.se == pytest.approx(obu.se, rel=0.15)


def test_signed_difference_direction_and_identical_scores():
    rng = np.random.default_rng(4)
    y, a, b, g = simulate(rng, effect=2.0)
    ab = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=500)
    ba = cluster_bootstrap_auroc_diff(y, b, a, g, n_boot=500)
    assert ab.diff > 0 and ba.diff == pytest.approx(-ab.diff)
    assert ab.lo == pytest.approx(-ba.hi) and ab.hi == pytest.approx(-ba.lo)
    same = cluster_bootstrap_auroc_diff(y, a, a, g, n_boot=500)
    assert same.diff == 0.0 and same.p_value == 1.0 and same.lo == same.hi == 0.0
    assert obuchowski_auroc_diff(y, a, a, g).p_value == 1.0


def test_bootstrap_samples_missing_a_class_are_skipped_and_counted():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(5), 30)
    y = np.zeros(g.size, dtype=int)
    y[g == 0] = rng.integers(0, 2, 30)  # positives in one cluster of five
    y[:2] = [0, 1]
    a, b = rng.normal(size=g.size) + y, rng.normal(size=g.size) + 2 * y
    r = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=1000, seed=0)
    # P(cluster 0 never drawn in 5 draws) = (4/5)^5 ≈ 0.33
    assert 250 < r.n_skipped < 420 and r.n_boot + r.n_skipped == 1000
    assert np.isfinite([r.lo, r.hi, r.p_value]).all()
    one = cluster_bootstrap_auroc(y, a, g, n_boot=1000, seed=0)
    assert one.n_skipped == r.n_skipped and np.isfinite([one.lo, one.hi]).all()


def test_same_seed_same_interval_and_other_seed_differs():
    rng = np.random.default_rng(6)
    y, a, b, g = simulate(rng)
    r1 = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=300, seed=11)
    r2 = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=300, seed=11)
    r3 = cluster_bootstrap_auroc_diff(y, a, b, g, n_boot=300, seed=12)
    assert r1 == r2 and (r1.lo, r1.hi) != (r3.lo, r3.hi)


def test_input_errors_are_clear():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8])
    with pytest.raises(ValueError, match="both classes"):
        cluster_bootstrap_auroc(np.zeros(4, int), s, np.arange(4))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        cluster_bootstrap_auroc(y, s, np.zeros(4))
    with pytest.raises(ValueError, match="groups has shape"):
        cluster_bootstrap_auroc(y, s, np.arange(3))
    with pytest.raises(ValueError, match="NaN"):
        obuchowski_auroc_diff(y, s, np.array([0, np.nan, 0, 1]), np.arange(4))
    with pytest.raises(ValueError, match="alpha"):
        cluster_bootstrap_auroc_diff(y, s, s, np.arange(4), alpha=1.5)


def test_paired_replicate_test_is_the_paired_t_test():
    a = np.array([0.90, 0.92, 0.88, 0.91, 0.89])
    b = np.array([0.93, 0.94, 0.90, 0.95, 0.90])
    r = paired_replicate_test(a, b)
    ref = stats.ttest_rel(b, a)
    assert r.mean_diff == pytest.approx(np.mean(b - a))
    assert r.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (r.lo, r.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    mean_diff, lo, hi, p = paired_replicate_test(b, a)  # unpacks as a 4-tuple; sign is b − a
    assert mean_diff == pytest.approx(-r.mean_diff) and p == pytest.approx(r.p_value)
    # Why not Wilcoxon: five pairs all in one direction cannot reach 0.05 with it.
    assert stats.wilcoxon(b - a).pvalue == pytest.approx(0.0625)
    assert r.p_value < 0.05


def test_paired_replicate_test_degenerate_cases():
    one = paired_replicate_test([0.8], [0.9])
    assert one.mean_diff == pytest.approx(0.1) and np.isnan([one.lo, one.hi, one.p_value]).all()
    assert paired_replicate_test([0.8, 0.7], [0.8, 0.7]) == (0.0, 0.0, 0.0, 1.0)
    const = paired_replicate_test([0.8, 0.7, 0.6], [0.9, 0.8, 0.7])
    assert const.p_value == 0.0 and const.lo == pytest.approx(0.1)
    with pytest.raises(ValueError, match="length"):
        paired_replicate_test([1, 2], [1, 2, 3])


def test_auroc_difference_picks_the_method_by_units():
    rng = np.random.default_rng(8)
    y, a, b, g = simulate(rng)
    clustered = auroc_difference(y, a, b, g, n_boot=300)
    assert clustered.method.startswith("cluster bootstrap") and clustered.n_clusters == 22
    one_each = auroc_difference(y, a, b, np.arange(y.size))
    hm = compare_aucs_hanley_mcneil(y, a, b)
    assert one_each.method == "Hanley & McNeil 1983" and one_each.p_value == hm.p_value
    assert one_each.diff == pytest.approx(hm.auc_b - hm.auc_a)
    assert one_each.lo < one_each.diff < one_each.hi
    # the same z as the 1983 test: the interval excludes 0 exactly when p < 0.05
    assert (one_each.lo > 0 or one_each.hi < 0) == (hm.p_value < 0.05)
    assert auroc_difference(y, a, b).method == "Hanley & McNeil 1983"
    # beats as units give a far narrower interval than records as units
    assert one_each.hi - one_each.lo < 0.8 * (clustered.hi - clustered.lo)
