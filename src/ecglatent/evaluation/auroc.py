"""AUROC with Hanley & McNeil standard errors, and the 1983 test for two correlated AUROCs.

References
----------
- Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
  characteristic (ROC) curve. Radiology 1982;143:29-36.
- Hanley JA, McNeil BJ. A method of comparing the areas under receiver operating
  characteristic curves derived from the same cases. Radiology 1983;148:839-843.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

__all__ = [
    "HM1983_AREAS",
    "HM1983_AVG_CORRELATIONS",
    "HM1983_TABLE",
    "AucComparison",
    "AurocCI",
    "auroc_ci",
    "compare_aucs_hanley_mcneil",
    "hanley_mcneil_se",
    "hm1983_area_correlation",
]

# Hanley & McNeil (1983), Table I: the correlation r between two ROC areas estimated on the
# same cases, as a function of the average correlation (r_N + r_A)/2 between the two
# modalities' ratings (rows) and of the average area (A1 + A2)/2 (columns). The paper derived
# it from the binormal model; tests/evaluation/test_auroc.py re-derives every cell from that
# model by quadrature and checks agreement to 0.025, which guards this transcription.
HM1983_AVG_CORRELATIONS: np.ndarray = np.round(np.arange(0.02, 0.90 + 1e-9, 0.02), 2)
HM1983_AREAS: np.ndarray = np.round(np.arange(0.700, 0.975 + 1e-9, 0.025), 3)
# fmt: off
HM1983_TABLE: np.ndarray = np.array([
    # A: 0.700 0.725 0.750 0.775 0.800 0.825 0.850 0.875 0.900 0.925 0.950 0.975   r_avg
    (0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01, 0.01, 0.01),  # 0.02
    (0.04, 0.04, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03, 0.02, 0.02, 0.02),  # 0.04
    (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.04, 0.04, 0.04, 0.03, 0.02),  # 0.06
    (0.07, 0.07, 0.07, 0.07, 0.07, 0.06, 0.06, 0.06, 0.06, 0.05, 0.04, 0.03),  # 0.08
    (0.09, 0.09, 0.09, 0.09, 0.08, 0.08, 0.08, 0.07, 0.07, 0.06, 0.06, 0.04),  # 0.10
    (0.11, 0.11, 0.11, 0.10, 0.10, 0.10, 0.09, 0.09, 0.08, 0.08, 0.07, 0.05),  # 0.12
    (0.13, 0.12, 0.12, 0.12, 0.12, 0.11, 0.11, 0.11, 0.10, 0.09, 0.08, 0.06),  # 0.14
    (0.14, 0.14, 0.14, 0.14, 0.13, 0.13, 0.13, 0.12, 0.11, 0.11, 0.09, 0.07),  # 0.16
    (0.16, 0.16, 0.16, 0.16, 0.15, 0.15, 0.14, 0.14, 0.13, 0.12, 0.11, 0.09),  # 0.18
    (0.18, 0.18, 0.18, 0.17, 0.17, 0.17, 0.16, 0.15, 0.15, 0.14, 0.12, 0.10),  # 0.20
    (0.20, 0.20, 0.19, 0.19, 0.19, 0.18, 0.18, 0.17, 0.16, 0.15, 0.14, 0.11),  # 0.22
    (0.22, 0.22, 0.21, 0.21, 0.21, 0.20, 0.19, 0.19, 0.18, 0.17, 0.15, 0.12),  # 0.24
    (0.24, 0.23, 0.23, 0.23, 0.22, 0.22, 0.21, 0.20, 0.19, 0.18, 0.16, 0.13),  # 0.26
    (0.26, 0.25, 0.25, 0.25, 0.24, 0.24, 0.23, 0.22, 0.21, 0.20, 0.18, 0.15),  # 0.28
    (0.27, 0.27, 0.27, 0.26, 0.26, 0.25, 0.25, 0.24, 0.23, 0.21, 0.19, 0.16),  # 0.30
    (0.29, 0.29, 0.29, 0.28, 0.28, 0.27, 0.26, 0.26, 0.24, 0.23, 0.21, 0.18),  # 0.32
    (0.31, 0.31, 0.31, 0.30, 0.30, 0.29, 0.28, 0.27, 0.26, 0.25, 0.23, 0.19),  # 0.34
    (0.33, 0.33, 0.32, 0.32, 0.31, 0.31, 0.30, 0.29, 0.28, 0.26, 0.24, 0.21),  # 0.36
    (0.35, 0.35, 0.34, 0.34, 0.33, 0.33, 0.32, 0.31, 0.30, 0.28, 0.26, 0.22),  # 0.38
    (0.37, 0.37, 0.36, 0.36, 0.35, 0.35, 0.34, 0.33, 0.32, 0.30, 0.28, 0.24),  # 0.40
    (0.39, 0.39, 0.38, 0.38, 0.37, 0.36, 0.36, 0.35, 0.33, 0.32, 0.29, 0.25),  # 0.42
    (0.41, 0.40, 0.40, 0.40, 0.39, 0.38, 0.38, 0.37, 0.35, 0.34, 0.31, 0.27),  # 0.44
    (0.43, 0.42, 0.42, 0.42, 0.41, 0.40, 0.39, 0.38, 0.37, 0.35, 0.33, 0.29),  # 0.46
    (0.45, 0.44, 0.44, 0.43, 0.43, 0.42, 0.41, 0.40, 0.39, 0.37, 0.35, 0.30),  # 0.48
    (0.47, 0.46, 0.46, 0.45, 0.45, 0.44, 0.43, 0.42, 0.41, 0.39, 0.37, 0.32),  # 0.50
    (0.49, 0.48, 0.48, 0.47, 0.47, 0.46, 0.45, 0.44, 0.43, 0.41, 0.39, 0.34),  # 0.52
    (0.51, 0.50, 0.50, 0.49, 0.49, 0.48, 0.47, 0.46, 0.45, 0.43, 0.41, 0.36),  # 0.54
    (0.53, 0.52, 0.52, 0.51, 0.51, 0.50, 0.49, 0.48, 0.47, 0.45, 0.43, 0.38),  # 0.56
    (0.55, 0.54, 0.54, 0.53, 0.53, 0.52, 0.51, 0.50, 0.49, 0.47, 0.45, 0.40),  # 0.58
    (0.57, 0.56, 0.56, 0.55, 0.55, 0.54, 0.53, 0.52, 0.51, 0.49, 0.47, 0.42),  # 0.60
    (0.59, 0.58, 0.58, 0.57, 0.57, 0.56, 0.55, 0.54, 0.53, 0.51, 0.49, 0.45),  # 0.62
    (0.61, 0.60, 0.60, 0.59, 0.59, 0.58, 0.58, 0.57, 0.55, 0.54, 0.51, 0.47),  # 0.64
    (0.63, 0.62, 0.62, 0.62, 0.61, 0.60, 0.60, 0.59, 0.57, 0.56, 0.53, 0.49),  # 0.66
    (0.65, 0.64, 0.64, 0.64, 0.63, 0.62, 0.62, 0.61, 0.60, 0.58, 0.56, 0.51),  # 0.68
    (0.67, 0.66, 0.66, 0.66, 0.65, 0.65, 0.64, 0.63, 0.62, 0.60, 0.58, 0.54),  # 0.70
    (0.69, 0.69, 0.68, 0.68, 0.67, 0.67, 0.66, 0.65, 0.64, 0.63, 0.60, 0.56),  # 0.72
    (0.71, 0.71, 0.70, 0.70, 0.69, 0.69, 0.68, 0.67, 0.66, 0.65, 0.63, 0.59),  # 0.74
    (0.73, 0.73, 0.72, 0.72, 0.72, 0.71, 0.71, 0.70, 0.69, 0.67, 0.65, 0.61),  # 0.76
    (0.75, 0.75, 0.75, 0.74, 0.74, 0.73, 0.73, 0.72, 0.71, 0.70, 0.68, 0.64),  # 0.78
    (0.77, 0.77, 0.77, 0.76, 0.76, 0.76, 0.75, 0.74, 0.73, 0.72, 0.70, 0.67),  # 0.80
    (0.79, 0.79, 0.79, 0.79, 0.78, 0.78, 0.77, 0.77, 0.76, 0.75, 0.73, 0.70),  # 0.82
    (0.82, 0.81, 0.81, 0.81, 0.81, 0.80, 0.80, 0.79, 0.78, 0.77, 0.76, 0.73),  # 0.84
    (0.84, 0.84, 0.83, 0.83, 0.83, 0.82, 0.82, 0.81, 0.81, 0.80, 0.78, 0.75),  # 0.86
    (0.86, 0.86, 0.86, 0.85, 0.85, 0.85, 0.84, 0.84, 0.83, 0.82, 0.81, 0.79),  # 0.88
    (0.88, 0.88, 0.88, 0.88, 0.87, 0.87, 0.87, 0.86, 0.86, 0.85, 0.84, 0.82),  # 0.90
])
# fmt: on
HM1983_TABLE.setflags(write=False)

# The published table stops at r_avg = 0.90. Under its own binormal model the endpoints are
# exact: uncorrelated ratings give uncorrelated areas (r = 0) and identical rankings give
# identical areas (r = 1), so we pad with those rows to interpolate below 0.02 and above 0.90.
_R_GRID = np.concatenate([[0.0], HM1983_AVG_CORRELATIONS, [1.0]])
_TABLE_PADDED = np.vstack([np.zeros(HM1983_AREAS.size), HM1983_TABLE, np.ones(HM1983_AREAS.size)])


@dataclass(frozen=True)
class AurocCI:
    """AUROC with its Hanley & McNeil (1982) standard error and normal-approximation CI."""

    auc: float
    lo: float
    hi: float
    se: float
    n_pos: int
    n_neg: int
    alpha: float = 0.05


@dataclass(frozen=True)
class AucComparison:
    """Result of the Hanley & McNeil (1983) test of two AUROCs measured on the same cases.

    ``r`` is the correlation between the two areas read off Table I; ``table_extrapolated`` is
    True when the look-up left the published grid (r_avg outside [0.02, 0.90] or the average
    area outside [0.700, 0.975]) and so relied on the padding/clipping documented in
    :func:`hm1983_area_correlation`.
    """

    auc_a: float
    auc_b: float
    se_a: float
    se_b: float
    r_pos: float
    r_neg: float
    r_avg: float
    area_avg: float
    r: float
    z: float
    p_value: float
    n_pos: int
    n_neg: int
    corr_method: str
    table_extrapolated: bool


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC by Hanley & McNeil (1982), eq. 2 with their Q1, Q2 approximation.

    SE² = [A(1−A) + (n_pos−1)(Q1−A²) + (n_neg−1)(Q2−A²)] / (n_pos·n_neg),
    Q1 = A/(2−A), Q2 = 2A²/(1+A). The Q approximations are exact for exponentially
    distributed scores and close to the binormal case.
    """
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"auc must be in [0, 1], got {auc}")
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"need at least one positive and one negative, got {n_pos}, {n_neg}")
    a = float(auc)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1.0 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (
        n_pos * n_neg
    )
    # At A = 0 or 1 the variance is 0 analytically; float rounding can make it -1e-17.
    return float(np.sqrt(max(var, 0.0)))


def _binary_labels(y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    values = np.unique(y)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(f"y_true must hold only 0 and 1, got values {values[:10]}")
    if values.size < 2:
        raise ValueError("y_true must contain both classes to compute an AUROC")
    return y.astype(bool)


def _scores(score: np.ndarray, n: int, name: str) -> np.ndarray:
    s = np.asarray(score, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return s


def auroc_ci(y_true: np.ndarray, score: np.ndarray, alpha: float = 0.05) -> AurocCI:
    """Empirical AUROC (ties count ½) with a two-sided (1−alpha) CI: auc ± z·SE, clipped to [0, 1].

    SE is :func:`hanley_mcneil_se`. The paper does not say how its Table 1 CIs were computed.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    y = _binary_labels(y_true)
    s = _scores(score, y.size, "score")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    auc = float(roc_auc_score(y, s))
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se
    return AurocCI(
        auc=auc,
        lo=max(0.0, auc - half),
        hi=min(1.0, auc + half),
        se=se,
        n_pos=n_pos,
        n_neg=n_neg,
        alpha=alpha,
    )


def hm1983_area_correlation(r_avg: float, area_avg: float) -> tuple[float, bool]:
    """Correlation between two areas from Hanley & McNeil (1983) Table I, bilinearly interpolated.

    Returns ``(r, extrapolated)``. Off the published grid:
    - ``r_avg`` in [0, 0.02) or (0.90, 1] interpolates towards the exact binormal endpoints
      r = 0 at r_avg = 0 and r = 1 at r_avg = 1;
    - negative ``r_avg`` uses ``-table(|r_avg|)`` (the table only covers positive correlation;
      the binormal relation is close to odd in r_avg);
    - ``area_avg`` is clipped to [0.700, 0.975]. Below 0.7 the true r is slightly larger than
      the 0.700 column, so clipping understates r and makes the test conservative.
    """
    if not np.isfinite(r_avg) or not np.isfinite(area_avg):
        raise ValueError(f"r_avg and area_avg must be finite, got {r_avg}, {area_avg}")
    sign = -1.0 if r_avg < 0 else 1.0
    ra = min(abs(float(r_avg)), 1.0)
    area = float(area_avg)
    extrapolated = not (
        HM1983_AVG_CORRELATIONS[0] - 1e-12 <= ra <= HM1983_AVG_CORRELATIONS[-1] + 1e-12
        and HM1983_AREAS[0] - 1e-12 <= area <= HM1983_AREAS[-1] + 1e-12
        and r_avg >= 0
    )
    area = min(max(area, float(HM1983_AREAS[0])), float(HM1983_AREAS[-1]))

    i = int(np.clip(np.searchsorted(_R_GRID, ra, side="right") - 1, 0, _R_GRID.size - 2))
    j = int(
        np.clip(np.searchsorted(HM1983_AREAS, area, side="right") - 1, 0, HM1983_AREAS.size - 2)
    )
    tr = (ra - _R_GRID[i]) / (_R_GRID[i + 1] - _R_GRID[i])
    ta = (area - HM1983_AREAS[j]) / (HM1983_AREAS[j + 1] - HM1983_AREAS[j])
    t = _TABLE_PADDED
    r = (
        (1 - tr) * (1 - ta) * t[i, j]
        + (1 - tr) * ta * t[i, j + 1]
        + tr * (1 - ta) * t[i + 1, j]
        + tr * ta * t[i + 1, j + 1]
    )
    return sign * float(r), extrapolated


def _correlation(a: np.ndarray, b: np.ndarray, method: str) -> float:
    # A score constant within a class has no defined correlation; its covariance with the
    # other score is 0, so 0 is the value that enters the variance of the difference.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    if method == "pearson":
        return float(np.corrcoef(a, b)[0, 1])
    return float(stats.kendalltau(a, b).statistic)


def compare_aucs_hanley_mcneil(
    y_true: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    corr_method: Literal["pearson", "kendall"] = "pearson",
) -> AucComparison:
    """Two-sided test of AUROC(a) = AUROC(b) on the same cases (Hanley & McNeil 1983).

    Method: r_pos and r_neg are the correlations between the two scores among positives and
    among negatives (Pearson by default, Kendall tau-b on request; the 1983 paper allows
    either). Their mean r_avg and the mean area index Table I (embedded as
    :data:`HM1983_TABLE`, bilinear interpolation, see :func:`hm1983_area_correlation`) to give
    r, the correlation between the two areas. Then
    z = (A_a − A_b) / sqrt(SE_a² + SE_b² − 2·r·SE_a·SE_b) with 1982 SEs, p = 2·(1 − Φ(|z|)).

    Pearson is not rank-invariant: pass scores on a roughly normal scale (logits rather than
    saturated probabilities), or use Kendall, which is smaller than the binormal correlation
    (τ = 2/π·arcsin ρ) and so errs on the conservative side.
    """
    if corr_method not in ("pearson", "kendall"):
        raise ValueError(f"corr_method must be 'pearson' or 'kendall', got {corr_method!r}")
    y = _binary_labels(y_true)
    a = _scores(score_a, y.size, "score_a")
    b = _scores(score_b, y.size, "score_b")
    ci_a = auroc_ci(y, a)
    ci_b = auroc_ci(y, b)

    r_pos = _correlation(a[y], b[y], corr_method)
    r_neg = _correlation(a[~y], b[~y], corr_method)
    r_avg = 0.5 * (r_pos + r_neg)
    area_avg = 0.5 * (ci_a.auc + ci_b.auc)
    r, extrapolated = hm1983_area_correlation(r_avg, area_avg)

    diff = ci_a.auc - ci_b.auc
    var = ci_a.se**2 + ci_b.se**2 - 2.0 * r * ci_a.se * ci_b.se
    if diff == 0.0:
        z = 0.0
    elif var <= 0.0:
        # Only reachable when both SEs vanish (areas of exactly 0 or 1) yet the areas differ.
        z = float(np.copysign(np.inf, diff))
    else:
        z = diff / float(np.sqrt(var))
    p = float(2.0 * stats.norm.sf(abs(z)))
    return AucComparison(
        auc_a=ci_a.auc,
        auc_b=ci_b.auc,
        se_a=ci_a.se,
        se_b=ci_b.se,
        r_pos=r_pos,
        r_neg=r_neg,
        r_avg=r_avg,
        area_avg=area_avg,
        r=r,
        z=z,
        p_value=min(p, 1.0),
        n_pos=ci_a.n_pos,
        n_neg=ci_a.n_neg,
        corr_method=corr_method,
        table_extrapolated=extrapolated,
    )
