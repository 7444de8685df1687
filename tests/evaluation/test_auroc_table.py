"""Hanley & McNeil (1983) Table I, cell by cell, against an independent published transcription.

Source of the transcription: GitHub repository jpbruehw/research-roc-utils, file
``hanley-mcneil-table.csv`` (commit cd31843026d1a304fe21333ed908f657a3f03c58), which carries the
table of "A Method of Comparing the Areas under Receiver Operating Characteristic Curves Derived
from the Same Cases" (Radiology 1983;148:839-843) as rows r_avg = 0.02 … 0.90 and columns
A_avg = 0.700 … 0.975. It is copied below verbatim. The project's ``HM1983_TABLE`` was typed in
separately; the two must agree exactly (both are printed to two decimals).

The paper's own worked example (its section "Example") could not be found in any stored
transcription, so it is not pinned here; the 1982 CT example pins the SEs
(tests/evaluation/test_auroc.py) and the look-up below pins r.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ecglatent.evaluation.auroc import (
    HM1983_AREAS,
    HM1983_AVG_CORRELATIONS,
    HM1983_TABLE,
    compare_aucs_hanley_mcneil,
    hm1983_area_correlation,
)

TRANSCRIPTION = """\
,0.7,0.725,0.75,0.775,0.8,0.825,0.85,0.875,0.9,0.925,0.95,0.975
0.02,0.02,0.02,0.02,0.02,0.02,0.02,0.02,0.01,0.01,0.01,0.01,0.01
0.04,0.04,0.04,0.03,0.03,0.03,0.03,0.03,0.03,0.03,0.02,0.02,0.02
0.06,0.05,0.05,0.05,0.05,0.05,0.05,0.05,0.04,0.04,0.04,0.03,0.02
0.08,0.07,0.07,0.07,0.07,0.07,0.06,0.06,0.06,0.06,0.05,0.04,0.03
0.1,0.09,0.09,0.09,0.09,0.08,0.08,0.08,0.07,0.07,0.06,0.06,0.04
0.12,0.11,0.11,0.11,0.1,0.1,0.1,0.09,0.09,0.08,0.08,0.07,0.05
0.14,0.13,0.12,0.12,0.12,0.12,0.11,0.11,0.11,0.1,0.09,0.08,0.06
0.16,0.14,0.14,0.14,0.14,0.13,0.13,0.13,0.12,0.11,0.11,0.09,0.07
0.18,0.16,0.16,0.16,0.16,0.15,0.15,0.14,0.14,0.13,0.12,0.11,0.09
0.2,0.18,0.18,0.18,0.17,0.17,0.17,0.16,0.15,0.15,0.14,0.12,0.1
0.22,0.2,0.2,0.19,0.19,0.19,0.18,0.18,0.17,0.16,0.15,0.14,0.11
0.24,0.22,0.22,0.21,0.21,0.21,0.2,0.19,0.19,0.18,0.17,0.15,0.12
0.26,0.24,0.23,0.23,0.23,0.22,0.22,0.21,0.2,0.19,0.18,0.16,0.13
0.28,0.26,0.25,0.25,0.25,0.24,0.24,0.23,0.22,0.21,0.2,0.18,0.15
0.3,0.27,0.27,0.27,0.26,0.26,0.25,0.25,0.24,0.23,0.21,0.19,0.16
0.32,0.29,0.29,0.29,0.28,0.28,0.27,0.26,0.26,0.24,0.23,0.21,0.18
0.34,0.31,0.31,0.31,0.3,0.3,0.29,0.28,0.27,0.26,0.25,0.23,0.19
0.36,0.33,0.33,0.32,0.32,0.31,0.31,0.3,0.29,0.28,0.26,0.24,0.21
0.38,0.35,0.35,0.34,0.34,0.33,0.33,0.32,0.31,0.3,0.28,0.26,0.22
0.4,0.37,0.37,0.36,0.36,0.35,0.35,0.34,0.33,0.32,0.3,0.28,0.24
0.42,0.39,0.39,0.38,0.38,0.37,0.36,0.36,0.35,0.33,0.32,0.29,0.25
0.44,0.41,0.4,0.4,0.4,0.39,0.38,0.38,0.37,0.35,0.34,0.31,0.27
0.46,0.43,0.42,0.42,0.42,0.41,0.4,0.39,0.38,0.37,0.35,0.33,0.29
0.48,0.45,0.44,0.44,0.43,0.43,0.42,0.41,0.4,0.39,0.37,0.35,0.3
0.5,0.47,0.46,0.46,0.45,0.45,0.44,0.43,0.42,0.41,0.39,0.37,0.32
0.52,0.49,0.48,0.48,0.47,0.47,0.46,0.45,0.44,0.43,0.41,0.39,0.34
0.54,0.51,0.5,0.5,0.49,0.49,0.48,0.47,0.46,0.45,0.43,0.41,0.36
0.56,0.53,0.52,0.52,0.51,0.51,0.5,0.49,0.48,0.47,0.45,0.43,0.38
0.58,0.55,0.54,0.54,0.53,0.53,0.52,0.51,0.5,0.49,0.47,0.45,0.4
0.6,0.57,0.56,0.56,0.55,0.55,0.54,0.53,0.52,0.51,0.49,0.47,0.42
0.62,0.59,0.58,0.58,0.57,0.57,0.56,0.55,0.54,0.53,0.51,0.49,0.45
0.64,0.61,0.6,0.6,0.59,0.59,0.58,0.58,0.57,0.55,0.54,0.51,0.47
0.66,0.63,0.62,0.62,0.62,0.61,0.6,0.6,0.59,0.57,0.56,0.53,0.49
0.68,0.65,0.64,0.64,0.64,0.63,0.62,0.62,0.61,0.6,0.58,0.56,0.51
0.7,0.67,0.66,0.66,0.66,0.65,0.65,0.64,0.63,0.62,0.6,0.58,0.54
0.72,0.69,0.69,0.68,0.68,0.67,0.67,0.66,0.65,0.64,0.63,0.6,0.56
0.74,0.71,0.71,0.7,0.7,0.69,0.69,0.68,0.67,0.66,0.65,0.63,0.59
0.76,0.73,0.73,0.72,0.72,0.72,0.71,0.71,0.7,0.69,0.67,0.65,0.61
0.78,0.75,0.75,0.75,0.74,0.74,0.73,0.73,0.72,0.71,0.7,0.68,0.64
0.8,0.77,0.77,0.77,0.76,0.76,0.76,0.75,0.74,0.73,0.72,0.7,0.67
0.82,0.79,0.79,0.79,0.79,0.78,0.78,0.77,0.77,0.76,0.75,0.73,0.7
0.84,0.82,0.81,0.81,0.81,0.81,0.8,0.8,0.79,0.78,0.77,0.76,0.73
0.86,0.84,0.84,0.83,0.83,0.83,0.82,0.82,0.81,0.81,0.8,0.78,0.75
0.88,0.86,0.86,0.86,0.85,0.85,0.85,0.84,0.84,0.83,0.82,0.81,0.79
0.9,0.88,0.88,0.88,0.88,0.87,0.87,0.87,0.86,0.86,0.85,0.84,0.82
"""


def reference_table() -> pd.DataFrame:
    """The transcription: index r_avg, columns A_avg (floats)."""
    t = pd.read_csv(io.StringIO(TRANSCRIPTION), index_col=0)
    t.columns = t.columns.astype(float)
    return t


def test_grid_is_the_papers():
    ref = reference_table()
    np.testing.assert_array_equal(HM1983_AVG_CORRELATIONS, ref.index.to_numpy())
    np.testing.assert_array_equal(HM1983_AREAS, ref.columns.to_numpy())


def test_every_cell_equals_the_transcription():
    ref = reference_table().to_numpy()
    assert HM1983_TABLE.shape == ref.shape == (45, 12)
    wrong = [
        (float(HM1983_AVG_CORRELATIONS[i]), float(HM1983_AREAS[j]), HM1983_TABLE[i, j], ref[i, j])
        for i, j in zip(*np.nonzero(np.abs(HM1983_TABLE - ref) > 1e-9), strict=True)
    ]
    assert not wrong, f"(r_avg, A_avg, ours, paper) differ: {wrong}"


@pytest.mark.parametrize("cell", [(0, 0), (14, 5), (29, 8), (44, 11), (22, 3)])
def test_lookup_on_a_grid_point_returns_the_published_cell(cell):
    ref = reference_table()
    i, j = cell
    r, extrapolated = hm1983_area_correlation(ref.index[i], ref.columns[j])
    assert r == pytest.approx(ref.iloc[i, j], abs=1e-12) and not extrapolated


def _hm1983_by_hand(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The 1983 test written out here: 1982 SEs, Pearson r per class, r from the transcription
    (bilinear), z = (A1 − A2) / sqrt(SE1² + SE2² − 2 r SE1 SE2)."""
    pos, neg = y == 1, y == 0

    def area(s):
        u = stats.mannwhitneyu(s[pos], s[neg]).statistic
        return u / (pos.sum() * neg.sum())

    def se(auc):
        q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
        n1, n2 = pos.sum(), neg.sum()
        return np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2))
                       / (n1 * n2))  # fmt: skip

    a1, a2 = area(a), area(b)
    r_avg = 0.5 * (np.corrcoef(a[pos], b[pos])[0, 1] + np.corrcoef(a[neg], b[neg])[0, 1])
    ref = reference_table()
    # Off the published rows, the binormal endpoints r(0) = 0 and r(1) = 1, odd in r_avg;
    # areas outside [0.700, 0.975] take the nearest column (np.interp clamps).
    rs = np.r_[0.0, ref.index.to_numpy(), 1.0]
    table = np.vstack([np.zeros(ref.shape[1]), ref.to_numpy(), np.ones(ref.shape[1])])
    areas = ref.columns.to_numpy()
    along_area = [np.interp(0.5 * (a1 + a2), areas, row) for row in table]
    r = np.sign(r_avg) * np.interp(abs(r_avg), rs, along_area)
    z = (a1 - a2) / np.sqrt(se(a1) ** 2 + se(a2) ** 2 - 2 * r * se(a1) * se(a2))
    return float(2 * stats.norm.sf(abs(z)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_p_value_equals_the_test_written_out_from_the_paper(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = (rng.random(n) < 0.4).astype(int)
    common = rng.standard_normal(n)
    a = 1.4 * y + common + 0.8 * rng.standard_normal(n)
    b = 1.1 * y + common + 0.8 * rng.standard_normal(n)
    res = compare_aucs_hanley_mcneil(y, a, b)
    assert 0.02 < res.r_avg < 0.9 and 0.7 < res.area_avg < 0.975  # inside the published grid
    assert res.p_value == pytest.approx(_hm1983_by_hand(y, a, b), rel=1e-6)
