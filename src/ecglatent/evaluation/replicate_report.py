"""Table 1 over replicates: the per-replicate results of each model, collected while the
`evaluate` stage runs, summarised into one :class:`~ecglatent.evaluation.report.ResultRow` per
model for :func:`~ecglatent.evaluation.report.table1_markdown` and ``reports/metrics.json``.

A summary row holds mean ± sd over replicates, the paired test against the task-naive model
across replicates (paired by seed/fold), how many replicates' own tests were significant in
each direction, and, for PTB-XL's outer cross-validation, the AUROC of the out-of-fold test
predictions pooled over folds (every record scored once) with the pooled naive-vs-specific test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecglatent.evaluation.auroc import auroc_ci
from ecglatent.evaluation.clustered import auroc_difference
from ecglatent.evaluation.report import (
    Comparison,
    ResultRow,
    row_metrics,
    summarise_replicates,
)

# datasets whose replicates are cross-validation folds: their test sets are disjoint
POOLED = ("ptbxl",)


@dataclass
class ModelResults:
    """One model's per-replicate rows, metrics.json entries and test predictions."""

    rows: dict[int, ResultRow] = field(default_factory=dict)
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    logits: dict[int, np.ndarray] = field(default_factory=dict)
    y: dict[int, np.ndarray] = field(default_factory=dict)
    ids: dict[int, np.ndarray] = field(default_factory=dict)
    groups: dict[int, np.ndarray] = field(default_factory=dict)
    base: str | None = None


@dataclass
class DatasetSummary:
    """Every model's replicates on one dataset; ``seed``/``n_boot`` drive pooled tests."""

    dataset: str
    seed: int = 0
    n_boot: int = 2000
    alpha: float = 0.05
    models: dict[str, ModelResults] = field(default_factory=dict)

    def add(self, name: str, k: int, row: ResultRow, entry: dict[str, Any], logits: np.ndarray,
            y: np.ndarray, ids: np.ndarray, groups: np.ndarray, base: str | None = None) -> None:  # fmt: skip
        """Record replicate ``k`` of model ``name``: its row (with its own ``vs_naive``), its
        metrics.json entry, and its test logits, labels, item ids and units (patients)."""
        m = self.models.setdefault(name, ModelResults())
        m.rows[k], m.entries[k] = row, entry
        m.logits[k], m.y[k], m.ids[k], m.groups[k] = logits, y, ids, groups
        m.base = base

    def _pooled(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        m = self.models[name]
        if self.dataset not in POOLED or len(m.logits) < 2:
            return None
        ks = sorted(m.logits)
        ids = np.concatenate([m.ids[k] for k in ks])
        if len(set(ids.tolist())) != len(ids):
            raise ValueError(f"{self.dataset}/{name}: a record is out-of-fold in two folds")
        return (np.concatenate([m.y[k] for k in ks]), np.concatenate([m.logits[k] for k in ks]),
                np.concatenate([m.groups[k] for k in ks]))  # fmt: skip

    def summary(self, name: str) -> ResultRow:
        """The Table 1 row of ``name`` over its replicates."""
        m = self.models[name]
        rows = [m.rows[k] for k in sorted(m.rows)]
        naive = None if m.base is None else [self.models[m.base].rows[k] for k in sorted(m.rows)]
        vs_naive, pooled = None, None
        oof = self._pooled(name)
        if oof is not None:
            y, s, groups = oof
            ci = auroc_ci(y, s)
            pooled = (ci.auc, ci.lo, ci.hi)
            if m.base is not None:
                base = self._pooled(m.base)  # the naive model has the same folds
                vs_naive = Comparison.from_auc_diff(auroc_difference(
                    y, base[1], s, groups=groups, n_boot=self.n_boot, seed=self.seed,
                    alpha=self.alpha))  # fmt: skip
        return summarise_replicates(rows, naive=naive, vs_naive=vs_naive, alpha=self.alpha,
                                    pooled=pooled)  # fmt: skip

    def rows(self) -> dict[str, ResultRow]:
        """Every model's summary row, in the order the models were added."""
        return {name: self.summary(name) for name in self.models}

    def metrics(self, rows: dict[str, ResultRow]) -> dict[str, Any]:
        """metrics.json: per model, its summary row (means, sds, tests, pooled OOF AUROC), the
        mean validation (inner-CV) AUROC, and every replicate's own entry as ``rep<k>``."""
        out: dict[str, Any] = {}
        for name, m in self.models.items():
            entry = row_metrics(rows[name])
            cv = [e["val_cv_auroc"] for e in m.entries.values() if "val_cv_auroc" in e]
            if cv:
                entry["val_cv_auroc"] = round(float(np.mean(cv)), 6)
            for k in sorted(m.entries):
                entry[f"rep{k}"] = m.entries[k]
            out[name] = entry
        return out
