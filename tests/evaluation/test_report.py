"""Tests for ecglatent.evaluation.report: Table 1 markdown."""

from __future__ import annotations

import math

from ecglatent.evaluation.report import ResultRow, table1_markdown

# A few rows of the paper's Table 1 (L = 2), with p-values invented for the formatting test.
PAPER_ROWS = [
    ResultRow("lumc", "Sex and age", L=2, auroc=0.556, auroc_lo=0.520, auroc_hi=0.592, f1=0.474),
    ResultRow("lumc", "PCA", L=2, mse=147.0, corr=0.724, auroc=0.656, auroc_lo=0.624,
              auroc_hi=0.688, f1=0.496),
    ResultRow("lumc", "Small VAE task naive", L=2, beta=4.0, mse=133.0, corr=0.739, auroc=0.686,
              auroc_lo=0.655, auroc_hi=0.716, f1=0.503),
    ResultRow("lumc", "Small VAE task specific", L=2, beta=4.0, mse=164.0, corr=0.711,
              auroc=0.842, auroc_lo=0.822, auroc_hi=0.861, f1=0.682, p_value_vs_naive=1e-6),
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
        "p (naive vs specific)",
    ]
    assert all(line.count("|") == len(header) + 1 for line in lines)
    for row, line in zip(PAPER_ROWS, lines[2:], strict=True):
        assert line.startswith(f"| {row.model} |")


def test_cells_are_formatted_like_the_paper():
    lines = _table_lines(table1_markdown(PAPER_ROWS))
    cells = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]
    }
    assert cells["Sex and age"] == ["2", "–", "–", "0.556 (0.520–0.592)", "0.474", "–"]
    assert cells["PCA"][:3] == ["2", "147", "0.724"]
    assert cells["Small VAE task specific"][3:] == ["0.842* (0.822–0.861)", "0.682", "<0.001"]
    # Split task: 2 of 10 latents trained for prediction; p = 0.031 is not below 0.01.
    assert cells["Small VAE split task"] == [
        "2 (10)", "76.5", "0.838", "0.839 (0.819–0.859)", "0.695", "0.031"
    ]  # fmt: skip


def test_footnote_only_when_something_is_starred():
    assert "\\* p < 0.01" in table1_markdown(PAPER_ROWS)
    assert "*" not in table1_markdown(PAPER_ROWS[:3]).replace("**", "")
    assert "*" not in table1_markdown(PAPER_ROWS, significance=None).replace("**", "")


def test_missing_values_nan_and_ci_without_bounds():
    row = ResultRow("ptb-xl", "PCA", L=None, mse=float("nan"), corr=0.5, auroc=0.7)
    line = _table_lines(table1_markdown([row]))[2]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells == ["PCA", "–", "–", "0.500", "0.700", "–", "–"]
    assert math.isnan(row.mse)


def test_dataset_column_appears_for_several_datasets():
    rows = [ResultRow("ptb-xl", "PCA", L=2, mse=0.0123), ResultRow("mitdb", "PCA", L=2, mse=1234.5)]
    lines = _table_lines(table1_markdown(rows))
    assert lines[0].startswith("| Dataset | Architecture |")
    assert lines[2].startswith("| ptb-xl | PCA | 2 | 0.0123 |")
    assert lines[3].startswith("| mitdb | PCA | 2 | 1,234 |")
