"""Placeholder for ``ecglatent.evaluation.clustered`` (issue 12, other half) until it lands.

Same signatures; removed once the real module is on main.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class DiffResult:
    diff: float
    lo: float
    hi: float
    p_value: float


def cluster_bootstrap_auroc_diff(y, score_a, score_b, groups, n_boot: int = 2000,
                                 seed: int = 0) -> DiffResult:  # fmt: skip
    """AUROC(b) − AUROC(a) with a bootstrap over whole groups (records)."""
    y, a, b, g = (np.asarray(v) for v in (y, score_a, score_b, groups))
    diff = roc_auc_score(y, b) - roc_auc_score(y, a)
    uniq = np.unique(g)
    members = [np.flatnonzero(g == u) for u in uniq]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(uniq), len(uniq))])
        if y[idx].min() == y[idx].max():
            continue
        boots.append(roc_auc_score(y[idx], b[idx]) - roc_auc_score(y[idx], a[idx]))
    boots = np.asarray(boots)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    p = min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))
    return DiffResult(float(diff), float(lo), float(hi), float(p))


class PairedTest(NamedTuple):
    mean_diff: float
    lo: float
    hi: float
    p_value: float


def paired_replicate_test(values_a, values_b) -> PairedTest:
    """Mean of b − a over paired replicates, its t interval and paired t-test p."""
    d = np.asarray(values_b, float) - np.asarray(values_a, float)
    mean = float(d.mean())
    if len(d) < 2 or d.std(ddof=1) == 0:
        return PairedTest(mean, mean, mean, float("nan"))
    se = d.std(ddof=1) / np.sqrt(len(d))
    t = stats.t.ppf(0.975, len(d) - 1)
    p = float(stats.ttest_rel(values_b, values_a).pvalue)
    return PairedTest(mean, mean - t * se, mean + t * se, p)
