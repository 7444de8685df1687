"""AUROC uncertainty when many items share a patient, and tests across paired replicates.

MIT-BIH DS2 holds ~47k beats of 22 patients. Beats of one patient are not independent (one
morphology, one electrode placement, one rhythm), so an interval or test that counts beats as
units (Hanley & McNeil 1982/1983, :mod:`ecglatent.evaluation.auroc`) is far too narrow and
calls almost every difference significant. Here the unit is the cluster (record or patient):

- :func:`cluster_bootstrap_auroc` / :func:`cluster_bootstrap_auroc_diff`: resample clusters
  with replacement (all items of a drawn cluster come along), percentile intervals, and a
  two-sided p-value by inverting the percentile interval (p < alpha exactly when the
  (1 − alpha) interval of the difference excludes 0, so the star and the interval agree).
- :func:`obuchowski_auroc_diff`: the closed-form clustered variance of Obuchowski (1997),
  i.e. DeLong's structural components summed per cluster; it reduces to DeLong when every
  cluster holds one item.
- :func:`paired_replicate_test`: a paired t-test of replicate values (seeds, folds).

Both AUROC methods share one exact identity: with ``P[k, l]`` the number of (positive of
cluster k, negative of cluster l) pairs ordered correctly (ties ½), a bootstrap sample that
draws cluster k ``c_k`` times has AUROC ``cᵀPc / ((c·m)(c·n))`` (m, n: positives and negatives
per cluster). So 2000 replicates cost a (2000 × I) @ (I × I) product, not 2000 re-sorts.

Keep Hanley & McNeil for PTB-XL, where every item is its own record.

References
----------
- Obuchowski NA. Nonparametric analysis of clustered ROC curve data. Biometrics
  1997;53:567-578.
- DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
  ROC curves. Biometrics 1988;44:837-845.
- Field CA, Welsh AH. Bootstrapping clustered data. J R Stat Soc B 2007;69:369-390.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from ecglatent.evaluation.auroc import _binary_labels, _scores

__all__ = [
    "MAX_CLUSTERS",
    "ClusteredAuroc",
    "ClusteredAucDiff",
    "PairedTest",
    "auroc_difference",
    "cluster_bootstrap_auroc",
    "cluster_bootstrap_auroc_diff",
    "obuchowski_auroc_diff",
    "paired_replicate_test",
    "pair_matrix",
]

# The pair matrix is I × I floats and each bootstrap batch (B × I) @ (I × I): fine for
# records or patients (tens to a few thousand), not for one cluster per beat.
MAX_CLUSTERS = 5000


@dataclass(frozen=True)
class ClusteredAuroc:
    """AUROC with a cluster-bootstrap percentile interval.

    ``se`` is the standard deviation of the bootstrap AUROCs; ``n_boot`` counts the bootstrap
    samples used and ``n_skipped`` those drawn without a positive or without a negative
    (left out, never a crash).
    """

    auc: float
    lo: float
    hi: float
    se: float
    n_clusters: int
    n_pos: int
    n_neg: int
    n_boot: int
    n_skipped: int
    alpha: float = 0.05
    method: str = "cluster bootstrap (percentile)"


@dataclass(frozen=True)
class ClusteredAucDiff:
    """Signed difference ``diff = auc_b − auc_a`` with its interval and two-sided p-value.

    For the bootstrap, ``lo``/``hi`` are percentile limits and ``p_value`` the smallest alpha
    at which the percentile interval excludes 0; for Obuchowski, a t interval and t-test
    (``n_boot`` and ``n_skipped`` are 0).
    """

    auc_a: float
    auc_b: float
    diff: float
    lo: float
    hi: float
    se: float
    p_value: float
    n_clusters: int
    n_pos: int
    n_neg: int
    n_boot: int
    n_skipped: int
    alpha: float = 0.05
    method: str = "cluster bootstrap (percentile)"


class PairedTest(NamedTuple):
    """Mean of the paired differences (b − a), its t-interval and two-sided p-value."""

    mean_diff: float
    lo: float
    hi: float
    p_value: float


# ------------------------------------------------------------------------------ inputs


def _inputs(
    y: np.ndarray, scores: list[np.ndarray], groups: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, int]:
    # the same label and score checks as the Hanley-McNeil path
    ya = _binary_labels(y)
    out = [_scores(s, ya.size, f"score {i}") for i, s in enumerate(scores)]
    ga = np.asarray(groups)
    if ga.shape != ya.shape:
        raise ValueError(f"groups has shape {ga.shape}, y has {ya.shape}")
    _, codes = np.unique(ga, return_inverse=True)
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        raise ValueError("need at least 2 clusters (groups) to estimate between-cluster spread")
    if n_clusters > MAX_CLUSTERS:
        raise ValueError(
            f"{n_clusters} clusters: more than {MAX_CLUSTERS}; with one item per unit use "
            "ecglatent.evaluation.auroc (Hanley & McNeil) instead"
        )
    return ya, out, codes.astype(np.int64), n_clusters


def pair_matrix(y: np.ndarray, score: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """``P[k, l]``: correctly ordered (positive in cluster k, negative in cluster l) pairs, ties ½.

    ``codes`` are cluster indices 0..n_clusters−1. ``P.sum() / (n_pos · n_neg)`` is the AUROC.
    """
    y = np.asarray(y, dtype=bool)
    s_pos, g_pos = score[y], codes[y]
    s_neg, g_neg = score[~y], codes[~y]
    P = np.zeros((n_clusters, n_clusters))
    order = np.argsort(g_neg, kind="stable")
    bounds = np.searchsorted(g_neg[order], np.arange(n_clusters + 1))
    for k_neg in range(n_clusters):
        neg = np.sort(s_neg[order[bounds[k_neg] : bounds[k_neg + 1]]])
        if neg.size == 0:
            continue
        below = np.searchsorted(neg, s_pos, side="left")
        tied = np.searchsorted(neg, s_pos, side="right") - below
        P[:, k_neg] = np.bincount(g_pos, weights=below + 0.5 * tied, minlength=n_clusters)
    return P


def _class_counts(y: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.bincount(codes[y], minlength=n).astype(np.float64)
    k = np.bincount(codes[~y], minlength=n).astype(np.float64)
    return m, k


def _draws(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    # Drawing I clusters with replacement = multinomial counts of each cluster.
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(
        np.float64
    )


def _quadratic(C: np.ndarray, P: np.ndarray, batch: int = 512) -> np.ndarray:
    """cᵀPc for every row c of C, in batches so memory stays at batch × I."""
    out = np.empty(C.shape[0])
    for s in range(0, C.shape[0], batch):
        c = C[s : s + batch]
        out[s : s + batch] = np.einsum("bk,bk->b", c @ P, c)
    return out


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


# --------------------------------------------------------------------------- bootstrap


def cluster_bootstrap_auroc(
    y: np.ndarray,
    score: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ClusteredAuroc:
    """AUROC (ties ½) with a percentile interval from resampling clusters with replacement."""
    _check_alpha(alpha)
    yb, (s,), codes, n_cl = _inputs(y, [score], groups)
    P = pair_matrix(yb, s, codes, n_cl)
    m, n = _class_counts(yb, codes, n_cl)
    auc = float(P.sum() / (m.sum() * n.sum()))
    C = _draws(n_cl, n_boot, seed)
    den = (C @ m) * (C @ n)
    ok = den > 0
    boot = _quadratic(C[ok], P) / den[ok]
    lo, hi = _percentiles(boot, alpha)
    return ClusteredAuroc(
        auc=auc,
        lo=lo,
        hi=hi,
        se=float(boot.std(ddof=1)) if boot.size > 1 else float("nan"),
        n_clusters=n_cl,
        n_pos=int(m.sum()),
        n_neg=int(n.sum()),
        n_boot=int(ok.sum()),
        n_skipped=int((~ok).sum()),
        alpha=alpha,
    )


def _percentiles(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    if boot.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def cluster_bootstrap_auroc_diff(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ClusteredAucDiff:
    """AUROC(b) − AUROC(a) on the same items, clusters resampled with replacement (paired).

    Both scores are evaluated on the same bootstrap samples, so their correlation is kept.
    ``p_value`` inverts the percentile interval: 2 · min(share of bootstrap differences ≤ 0,
    share ≥ 0), each with the usual +1/(B+1) so that it is never 0 and is 1 when the two
    scores are identical.
    """
    _check_alpha(alpha)
    yb, (sa, sb), codes, n_cl = _inputs(y, [score_a, score_b], groups)
    Pa = pair_matrix(yb, sa, codes, n_cl)
    Pb = pair_matrix(yb, sb, codes, n_cl)
    m, n = _class_counts(yb, codes, n_cl)
    total = m.sum() * n.sum()
    auc_a, auc_b = float(Pa.sum() / total), float(Pb.sum() / total)
    C = _draws(n_cl, n_boot, seed)
    den = (C @ m) * (C @ n)
    ok = den > 0
    boot = _quadratic(C[ok], Pb - Pa) / den[ok]  # cᵀ(Pb − Pa)c: the difference directly
    lo, hi = _percentiles(boot, alpha)
    b = boot.size
    if b == 0:
        p = float("nan")
    else:
        below = (np.count_nonzero(boot <= 0.0) + 1) / (b + 1)
        above = (np.count_nonzero(boot >= 0.0) + 1) / (b + 1)
        p = float(min(1.0, 2.0 * min(below, above)))
    return ClusteredAucDiff(
        auc_a=auc_a,
        auc_b=auc_b,
        diff=auc_b - auc_a,
        lo=lo,
        hi=hi,
        se=float(boot.std(ddof=1)) if b > 1 else float("nan"),
        p_value=p,
        n_clusters=n_cl,
        n_pos=int(m.sum()),
        n_neg=int(n.sum()),
        n_boot=int(ok.sum()),
        n_skipped=int((~ok).sum()),
        alpha=alpha,
    )


# -------------------------------------------------------------------------- Obuchowski


def _components(P: np.ndarray, m: np.ndarray, n: np.ndarray) -> tuple[float, np.ndarray]:
    """AUROC and each cluster's term T_k of its first-order (Hájek) expansion, Σ_k T_k ≈ Â − A."""
    M, N = m.sum(), n.sum()
    auc = P.sum() / (M * N)
    v10 = P.sum(axis=1) / N  # per cluster: summed placement values of its positives
    v01 = P.sum(axis=0) / M  # per cluster: summed placement values of its negatives
    return float(auc), (v10 - m * auc) / M + (v01 - n * auc) / N


def obuchowski_auroc_diff(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    groups: np.ndarray,
    alpha: float = 0.05,
) -> ClusteredAucDiff:
    """AUROC(b) − AUROC(a) with Obuchowski's (1997) clustered variance, t interval and test.

    var(Â_b − Â_a) = I/(I−1) · Σ_k (T_k^b − T_k^a)², T_k from each cluster's structural
    components; the reference distribution is t with I − 1 degrees of freedom (Obuchowski
    uses the normal, which is what the t becomes for many clusters). With one item per
    cluster the variance is DeLong's (1988).
    """
    _check_alpha(alpha)
    yb, (sa, sb), codes, n_cl = _inputs(y, [score_a, score_b], groups)
    m, n = _class_counts(yb, codes, n_cl)
    auc_a, ta = _components(pair_matrix(yb, sa, codes, n_cl), m, n)
    auc_b, tb = _components(pair_matrix(yb, sb, codes, n_cl), m, n)
    diff = auc_b - auc_a
    se = float(np.sqrt(n_cl / (n_cl - 1) * np.sum((tb - ta) ** 2)))
    # t with I − 1 degrees of freedom rather than the normal: with ~20 clusters the variance
    # estimate is itself noisy and z-based tests reject too often (measured in the tests).
    df = n_cl - 1
    no_spread = 1.0 if diff == 0 else 0.0
    p = float(2.0 * stats.t.sf(abs(diff) / se, df)) if se > 0 else no_spread
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return ClusteredAucDiff(
        auc_a=auc_a,
        auc_b=auc_b,
        diff=diff,
        lo=diff - half,
        hi=diff + half,
        se=se,
        p_value=p,
        n_clusters=n_cl,
        n_pos=int(m.sum()),
        n_neg=int(n.sum()),
        n_boot=0,
        n_skipped=0,
        alpha=alpha,
        method="Obuchowski 1997 (clustered DeLong), t(I-1)",
    )


# ---------------------------------------------------------------------------- dispatch


def auroc_difference(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ClusteredAucDiff:
    """AUROC(b) − AUROC(a) with the method its units call for.

    Every item its own unit (``groups`` None or all distinct, e.g. PTB-XL: one ECG per record)
    → Hanley & McNeil (1983), with the normal interval of the difference from the same
    variance. Several items per unit (MIT-BIH beats of a record) →
    :func:`cluster_bootstrap_auroc_diff` over the units.
    """
    from ecglatent.evaluation.auroc import compare_aucs_hanley_mcneil

    _check_alpha(alpha)
    ya = np.asarray(y)
    if groups is not None and np.unique(np.asarray(groups)).size < ya.size:
        return cluster_bootstrap_auroc_diff(ya, score_a, score_b, groups, n_boot, seed, alpha)
    hm = compare_aucs_hanley_mcneil(ya, score_a, score_b)
    diff = hm.auc_b - hm.auc_a
    se = float(np.sqrt(max(hm.se_a**2 + hm.se_b**2 - 2.0 * hm.r * hm.se_a * hm.se_b, 0.0)))
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se
    return ClusteredAucDiff(
        auc_a=hm.auc_a,
        auc_b=hm.auc_b,
        diff=diff,
        lo=diff - half,
        hi=diff + half,
        se=se,
        p_value=hm.p_value,
        n_clusters=int(ya.size),
        n_pos=hm.n_pos,
        n_neg=hm.n_neg,
        n_boot=0,
        n_skipped=0,
        alpha=alpha,
        method="Hanley & McNeil 1983",
    )


# -------------------------------------------------------------------------- replicates


def paired_replicate_test(
    values_a: np.ndarray | list[float],
    values_b: np.ndarray | list[float],
    alpha: float = 0.05,
) -> PairedTest:
    """Paired t-test of b − a across replicates paired by seed or fold.

    Returns the mean difference, its (1 − alpha) t-interval (n − 1 degrees of freedom) and the
    two-sided p-value. Why t and not Wilcoxon's signed-rank test: with n pairs the exact
    Wilcoxon p can never fall below 2/2ⁿ (0.0625 for 5 pairs, 0.25 for 3), so with the 5–10
    replicates we can afford it could not reach 0.05 however large and consistent the
    difference; the t-test assumes roughly normal differences, which averages of thousands of
    items (an AUROC) satisfy well. With fewer than 2 pairs the interval and p are NaN; when
    every difference is the same, the interval is that value and p is 0 (or 1 if it is 0).
    """
    _check_alpha(alpha)
    a = np.asarray(values_a, dtype=np.float64).ravel()
    b = np.asarray(values_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}")
    if a.size == 0:
        raise ValueError("no replicate values to compare")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("replicate values contain NaN or infinite values")
    d = b - a
    mean = float(d.mean())
    if d.size < 2:
        return PairedTest(mean, float("nan"), float("nan"), float("nan"))
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # equal differences up to float rounding
        return PairedTest(mean, mean, mean, 1.0 if abs(mean) <= 1e-12 else 0.0)
    se = sd / np.sqrt(d.size)
    t = mean / se
    df = d.size - 1
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return PairedTest(
        mean, float(mean - half), float(mean + half), float(2.0 * stats.t.sf(abs(t), df))
    )
