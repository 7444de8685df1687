"""Tests for ecglatent.evaluation.report: Table 1 markdown."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ecglatent.evaluation.report import (
    Comparison,
    EvidenceScope,
    ResultRow,
    evidence_markdown,
    row_metrics,
    starred,
    summarise_replicates,
    table1_markdown,
)

# A few rows of the paper's Table 1 (L = 2), with differences and p-values invented for the
# formatting test (the split-task row has only an old-style p-value, without a direction).
PAPER_ROWS = [
    ResultRow("lumc", "Sex and age", L=2, auroc=0.556, auroc_lo=0.520, auroc_hi=0.592, f1=0.474),
    ResultRow("lumc", "PCA", L=2, mse=147.0, corr=0.724, auroc=0.656, auroc_lo=0.624,
              auroc_hi=0.688, f1=0.496),
    ResultRow("lumc", "Small VAE task naive", L=2, beta=4.0, mse=133.0, corr=0.739, auroc=0.686,
              auroc_lo=0.655, auroc_hi=0.716, f1=0.503),
    ResultRow("lumc", "Small VAE task specific", L=2, beta=4.0, mse=164.0, corr=0.711,
              auroc=0.842, auroc_lo=0.822, auroc_hi=0.861, f1=0.682,
              vs_naive=Comparison(0.156, 0.121, 0.191, 1e-6, "cluster bootstrap, 22 units")),
    ResultRow("lumc", "Small VAE split task", L=10, L_pred=2, beta=4.0, mse=76.5, corr=0.838,
              auroc=0.839, auroc_lo=0.819, auroc_hi=0.859, f1=0.695, p_value_vs_naive=0.0312),
]  # fmt: skip


def _table_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_table_has_header_separator_and_one_line_per_row():
    md = table1_markdown(PAPER_ROWS, title="Table 1. LVF prediction")
    assert md.startswith("**Table 1. LVF prediction**")
    lines = _table_lines(md)
    assert len(lines) == 2 + len(PAPER_ROWS)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "Architecture",
        "L",
        "MSE",
        "Correlation",
        "AUROC (95% CI)",
        "F1",
        "Δ AUROC vs naive (95% CI)",
        "p",
    ]
    assert all(line.count("|") == len(header) + 1 for line in lines)
    for row, line in zip(PAPER_ROWS, lines[2:], strict=True):
        assert line.startswith(f"| {row.model} |")


def test_cells_are_formatted_like_the_paper():
    lines = _table_lines(table1_markdown(PAPER_ROWS))
    cells = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]
    }
    assert cells["Sex and age"] == ["2", "–", "–", "0.556 (0.520–0.592)", "0.474", "–", "–"]
    assert cells["PCA"][:3] == ["2", "147", "0.724"]
    assert cells["Small VAE task specific"][3:] == [
        "0.842* (0.822–0.861)", "0.682", "+0.156 (+0.121 to +0.191)", "<0.001"
    ]  # fmt: skip
    # Split task: 2 of 10 latents trained for prediction; a p-value without a signed
    # difference is printed but cannot earn a star (its direction is unknown).
    assert cells["Small VAE split task"] == [
        "2 (10)", "76.5", "0.838", "0.839 (0.819–0.859)", "0.695", "–", "0.031"
    ]  # fmt: skip


def test_footnote_only_when_something_is_starred():
    md = table1_markdown(PAPER_ROWS)
    assert "\\* task specific better than task naive (Δ > 0) with p < 0.05" in md
    assert "cluster bootstrap, 22 units" in md
    assert "*" not in table1_markdown(PAPER_ROWS[:3]).replace("**", "")
    assert "*" not in table1_markdown(PAPER_ROWS, significance=None).replace("**", "")


def test_missing_values_nan_and_ci_without_bounds():
    row = ResultRow("ptb-xl", "PCA", L=None, mse=float("nan"), corr=0.5, auroc=0.7)
    line = _table_lines(table1_markdown([row]))[2]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells == ["PCA", "–", "–", "0.500", "0.700", "–", "–", "–"]
    assert math.isnan(row.mse)


def test_dataset_column_appears_for_several_datasets():
    rows = [ResultRow("ptb-xl", "PCA", L=2, mse=0.0123), ResultRow("mitdb", "PCA", L=2, mse=1234.5)]
    lines = _table_lines(table1_markdown(rows))
    assert lines[0].startswith("| Dataset | Architecture |")
    assert lines[2].startswith("| ptb-xl | PCA | 2 | 0.0123 |")
    assert lines[3].startswith("| mitdb | PCA | 2 | 1,234 |")


def test_star_needs_specific_better_and_significant():
    def row(diff, p):
        return ResultRow("mitdb", "specific", auroc=0.95, vs_naive=Comparison(diff, None, None, p))

    assert starred(row(0.02, 0.01))
    assert not starred(row(-0.02, 0.01))  # significantly worse: the old table starred this
    assert not starred(row(0.02, 0.2))
    assert not starred(row(0.02, 0.01), significance=None)
    assert not starred(ResultRow("mitdb", "old", auroc=0.9, p_value_vs_naive=1e-9))
    worse = _table_lines(table1_markdown([row(-0.010, 0.001)]))[2]
    assert "*" not in worse and "−0.010" in worse
    assert "0.950*" in table1_markdown([row(0.010, 0.001)])


def _replicates(model: str, aurocs, seeds=(1, 2, 3, 4, 5)):
    return [ResultRow("mitdb", model, L=2, auroc=a, mse=100.0 + i, corr=0.8, f1=0.7,
                      replicate=s) for i, (s, a) in enumerate(zip(seeds[: len(aurocs)], aurocs, strict=True))]  # fmt: skip


def test_summarise_replicates_mean_sd_values_and_paired_test():
    naive = _replicates("naive", [0.90, 0.92, 0.88, 0.91, 0.89])
    spec = _replicates("specific", [0.93, 0.94, 0.90, 0.95, 0.90])
    # the naive rows in another order: pairing is by replicate id, not position
    summary = summarise_replicates(spec, naive=naive[::-1])
    a = np.array([r.auroc for r in spec])
    assert summary.n_replicates == 5 and summary.replicates == (1, 2, 3, 4, 5)
    assert summary.auroc == pytest.approx(a.mean()) and summary.auroc_sd == pytest.approx(
        a.std(ddof=1)
    )
    assert summary.auroc_replicates == tuple(a) and summary.mse == pytest.approx(102.0)
    ref = stats.ttest_rel(a, [r.auroc for r in naive])
    assert summary.across.diff == pytest.approx(0.024) and summary.across.p_value == pytest.approx(
        ref.pvalue
    )
    assert summary.across.method == "paired t over 5 replicates"
    assert starred(summary)  # the star rests on the across-replicate test
    lines = _table_lines(table1_markdown([summarise_replicates(naive), summary]))
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[4] == "AUROC mean ± sd" and header[6] == "n"
    assert header[-2:] == ["Δ across replicates (95% CI)", "p (replicates)"]
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[4] == f"{a.mean():.3f} ± {a.std(ddof=1):.3f}*" and cells[6] == "5"
    assert cells[-2].startswith("+0.024 (") and cells[-1] == f"{ref.pvalue:.3f}"


def test_summarise_replicates_refuses_unpaired_or_mixed_rows():
    spec = _replicates("specific", [0.9, 0.91, 0.92])
    with pytest.raises(ValueError, match="no replicate"):
        summarise_replicates(spec, naive=_replicates("naive", [0.9, 0.9, 0.9], seeds=(1, 2, 9)))
    with pytest.raises(ValueError, match="different models"):
        summarise_replicates(spec + _replicates("other", [0.9], seeds=(7,)))
    with pytest.raises(ValueError, match="own replicate id"):
        summarise_replicates(_replicates("specific", [0.9, 0.9], seeds=(1, 1)))


def test_row_metrics_for_metrics_json():
    naive = _replicates("naive", [0.90, 0.92, 0.88])
    spec = summarise_replicates(
        _replicates("specific", [0.93, 0.94, 0.90]), naive=naive,
        vs_naive=Comparison(0.02, -0.01, 0.05, 0.2, "cluster bootstrap, 22 units"),
    )  # fmt: skip
    m = row_metrics(spec)
    assert m["auroc_per_replicate"] == {"1": 0.93, "2": 0.94, "3": 0.9}
    assert m["n_replicates"] == 3 and m["auroc_sd"] == pytest.approx(0.020817, abs=1e-6)
    assert m["vs_naive"] == {"diff": 0.02, "lo": -0.01, "hi": 0.05, "p_value": 0.2,
                             "method": "cluster bootstrap, 22 units"}  # fmt: skip
    assert m["across_replicates"]["diff"] == pytest.approx(0.0233333, abs=1e-6)
    assert "auroc_lo" not in m  # a summary has no single-draw interval unless one is given


def test_evidence_paragraph_names_units_and_the_subset():
    md = evidence_markdown(
        [EvidenceScope("PTB-XL", 75, "records", 75, "ECGs", 500, 21799, "Hanley & McNeil"),
         EvidenceScope("MIT-BIH DS2", 22, "patients", 47000, "beats",
                       method="cluster bootstrap over records")],
        n_replicates=5, replicate_kind="seeds for MIT-BIH, folds for PTB-XL", n_comparisons=6,
    )  # fmt: skip
    assert md.startswith("### What these numbers can and cannot show")
    assert "500 of the database's 21,799 records (2.3 %)" in md
    assert "47,000 beats from 22 patients" in md and "effective sample size is 22, not 47,000" in md
    assert "trained 5 times (seeds for MIT-BIH, folds for PTB-XL)" in md
    assert "(6 comparisons)" in md and "one in 40" in md
    one = evidence_markdown([EvidenceScope("PTB-XL", 75, "records")], notes=["γ from CV."])
    assert one.endswith("- γ from CV.\n")
    assert "trained once" in one and "subset" not in one


def test_replicate_summary_counts_significant_replicates_and_prints_pooled_auroc():
    def rep(s, a, diff, p):
        return ResultRow("ptbxl", "specific", L=2, auroc=a, replicate=s,
                         vs_naive=Comparison(diff, diff - 0.01, diff + 0.01, p))  # fmt: skip

    rows = [rep(0, 0.9, 0.03, 0.01), rep(1, 0.9, -0.04, 0.02), rep(2, 0.9, 0.05, 0.3),
            rep(3, 0.9, 0.02, 0.001)]  # fmt: skip
    summary = summarise_replicates(rows, pooled=(0.812, 0.75, 0.87))
    assert summary.within_significant == (2, 1)  # p < 0.05: two better, one worse
    m = row_metrics(summary)
    assert (m["replicates_significantly_better"], m["replicates_significantly_worse"]) == (2, 1)
    assert m["pooled_oof"] == {"auroc": 0.812, "lo": 0.75, "hi": 0.87}
    lines = _table_lines(table1_markdown([summary]))
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cells = dict(zip(header, (c.strip() for c in lines[2].strip("|").split("|")), strict=True))
    assert cells["pooled OOF AUROC (95% CI)"] == "0.812 (0.750–0.870)"
    assert cells["replicates sig. better / worse"] == "2 / 1 of 4"
