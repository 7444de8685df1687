"""N-vs-V metrics, seed summaries, Wilcoxon tests and the Table 2/4-shaped markdown report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score, precision_score, recall_score

from ecglatent.evaluation.beat_metrics import (
    beat_metrics,
    best_threshold,
    metrics_row,
    pairwise_differences,
    per_lead_rows,
    siliconet_markdown,
    summarise,
    wilcoxon_p,
    wilcoxon_pairwise,
)


def test_metrics_by_hand_and_against_sklearn():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    p = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    m = beat_metrics(y, p)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 1, 3)
    assert m.se == pytest.approx(0.75) and m.ppv == pytest.approx(0.75)
    assert m.f1 == pytest.approx(f1_score(y, p))
    np.testing.assert_array_equal(m.confusion, [[3, 1], [1, 3]])
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    m = beat_metrics(y, p)
    assert m.f1 == pytest.approx(f1_score(y, p))
    assert m.se == pytest.approx(recall_score(y, p))
    assert m.ppv == pytest.approx(precision_score(y, p))


def test_undefined_scores_are_nan_and_missed_positives_score_zero():
    m = beat_metrics(np.zeros(5), np.array([0, 1, 0, 0, 0]))  # a lead without V beats
    assert np.isnan(m.f1) and np.isnan(m.se) and m.ppv == 0.0 and (m.fp, m.tn) == (1, 4)
    m = beat_metrics(np.array([0, 1, 1]), np.zeros(3))  # V beats, none found
    assert m.f1 == 0.0 and m.se == 0.0 and np.isnan(m.ppv)


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1).round(2)  # ties on purpose
    thr, f1 = best_threshold(y, p)
    brute = max(beat_metrics(y, (p >= t).astype(int)).f1 for t in np.unique(p))
    assert f1 == pytest.approx(brute)
    assert beat_metrics(y, (p >= thr).astype(int)).f1 == pytest.approx(f1)


def test_summary_over_seeds():
    s = summarise([0.9, 0.8, 0.85, np.nan, 0.95])
    assert s.n == 4 and s.median == pytest.approx(0.875)
    assert s.q1 == pytest.approx(np.percentile([0.8, 0.85, 0.9, 0.95], 25))
    assert s.q3 == pytest.approx(np.percentile([0.8, 0.85, 0.9, 0.95], 75))
    assert s.std == pytest.approx(np.std([0.8, 0.85, 0.9, 0.95], ddof=1))
    assert np.isnan(summarise([]).median)


def test_wilcoxon_matches_scipy_and_handles_degenerate_pairs():
    a = [0.9, 0.88, 0.91, 0.87, 0.9, 0.92, 0.89]
    b = [0.85, 0.86, 0.84, 0.88, 0.8, 0.83, 0.86]
    assert wilcoxon_p(a, b) == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert np.isnan(wilcoxon_p(a, a))
    assert np.isnan(wilcoxon_p([0.5], [0.4]))
    assert wilcoxon_p([0.9] * 5, [0.8] * 5) == pytest.approx(0.0625)  # 5 seeds: p >= 0.0625


def _results() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    base = {"randfeatures": 0.5, "randinit": 0.9, "pretrained": 0.87, "finetune": 0.65, "2lr": 0.89}
    for config in ["2lr", "randinit", "finetune", "pretrained", "randfeatures"]:
        for seed in range(5):
            y = rng.integers(0, 2, 400)
            flip = rng.random(400) < (1 - base[config]) / 2
            pred = np.where(flip, 1 - y, y)
            rows.append(metrics_row(config, seed, "DS2 MLII", beat_metrics(y, pred)))
            leads = np.where(np.arange(400) < 300, "V1", "V5")
            rows += per_lead_rows(config, seed, y, pred, leads)
    return pd.DataFrame(rows)


def test_pairwise_wilcoxon_is_symmetric_with_empty_diagonal():
    pw = wilcoxon_pairwise(_results())
    assert list(pw.columns) == ["randfeatures", "randinit", "pretrained", "finetune", "2lr"]
    assert np.allclose(pw.values, pw.values.T, equal_nan=True)
    assert np.isnan(np.diag(pw.values)).all()
    assert pw.loc["randfeatures", "randinit"] == pytest.approx(0.0625)
    # leads are averaged within each seed first: 5 seeds give 5 pairs, never seed × lead = 10
    per_lead = wilcoxon_pairwise(_results(), ["DS2 V1", "DS2 V5"])
    assert per_lead.loc["randfeatures", "randinit"] == pytest.approx(0.0625)
    # the unit is the seed: the same p as Wilcoxon on the lead-averaged F1 of each seed
    lead = _results()[_results()["eval"].isin(["DS2 V1", "DS2 V5"])]
    mean_f1 = lead.groupby(["config", "seed"])["f1"].mean()
    expected = stats.wilcoxon(mean_f1["randfeatures"], mean_f1["randinit"]).pvalue
    assert per_lead.loc["randfeatures", "randinit"] == pytest.approx(expected)


def test_pairwise_differences_use_the_seed_as_the_unit():
    res = _results()
    d = pairwise_differences(res, ["DS2 V1", "DS2 V5"])
    row = d[(d.a == "randfeatures") & (d.b == "randinit")].iloc[0]
    assert row.n_seeds == 5
    wide = res[res["eval"].isin(["DS2 V1", "DS2 V5"])].groupby(["config", "seed"])["f1"].mean()
    diffs = (wide["randinit"] - wide["randfeatures"]).to_numpy()
    assert row["diff"] == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, 4) * diffs.std(ddof=1) / np.sqrt(5)
    assert (row.lo, row.hi) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    assert row["diff"] > 0 and row.p_wilcoxon == pytest.approx(0.0625)


def test_per_lead_rows_only_for_leads_with_enough_v_beats():
    y = np.array([1] * 25 + [0] * 50 + [1] * 3 + [0] * 50)
    leads = np.array(["V1"] * 75 + ["V5"] * 53)
    rows = per_lead_rows("randinit", 0, y, y, leads, min_v_beats=20)
    assert [r["eval"] for r in rows] == ["DS2 other", "DS2 V1"]  # V5 has 3 V beats: no row
    rows = per_lead_rows("randinit", 0, y, y, leads)
    assert [r["eval"] for r in rows] == ["DS2 other", "DS2 V1", "DS2 V5"]


def test_markdown_has_the_papers_tables():
    md = siliconet_markdown(_results())
    assert "median (Q1–Q3)" in md and "mean (std)" in md and "Wilcoxon" in md
    header = next(line for line in md.splitlines() if line.startswith("| | "))
    assert header == "| | randfeatures | randinit | pretrained | finetune | 2lr |"
    for row in ("| DS2 MLII |", "| DS2 other |", "| DS2 V1 |", "| DS2 V5 |", "| Leads average |"):
        assert row in md
    res = _results()
    s = summarise(res[(res.config == "randinit") & (res["eval"] == "DS2 MLII")].f1)
    assert f"{s.median:.2f} ({s.q1:.2f}–{s.q3:.2f})" in md
