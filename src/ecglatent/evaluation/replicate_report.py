"""Table 1 over replicates: mean ± sd of each model's test results, naive vs specific tested
across replicates (paired by seed/fold) and within each one, pooled out-of-fold AUROC."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecglatent.evaluation._clustered_placeholder import paired_replicate_test
from ecglatent.evaluation.auroc import auroc_ci
from ecglatent.evaluation.probes import FeatureEvaluation

ALPHA = 0.05
DASH = "–"
MEAN_KEYS = ("auroc", "f1", "mse", "corr", "cv_auroc")


@dataclass
class ModelResults:
    """One Table 1 row: per-replicate metrics and test predictions."""

    name: str
    label: str
    L: int | None
    L_pred: int | None
    beta: float | None
    reps: dict[int, dict[str, Any]] = field(default_factory=dict)
    logits: dict[int, np.ndarray] = field(default_factory=dict)
    y: dict[int, np.ndarray] = field(default_factory=dict)
    ids: dict[int, np.ndarray] = field(default_factory=dict)
    base: str | None = None


@dataclass
class DatasetSummary:
    dataset: str
    models: dict[str, ModelResults] = field(default_factory=dict)

    def add(self, name: str, label: str, L, L_pred, beta, k: int, mse, corr,
            ev: FeatureEvaluation, y_te: np.ndarray, ids: np.ndarray) -> None:  # fmt: skip
        m = self.models.setdefault(name, ModelResults(name, label, L, L_pred, beta))
        b = ev.best
        row = {"auroc": b.auroc.auc, "auroc_lo": b.auroc.lo, "auroc_hi": b.auroc.hi,
               "f1": b.f1_macro, "cv_auroc": b.cv_auroc, "penalty": b.penalty}  # fmt: skip
        if mse is not None:
            row.update(mse=mse, corr=corr)
        m.reps[k] = {k2: (round(v, 6) if isinstance(v, float) else v) for k2, v in row.items()}
        m.logits[k], m.y[k], m.ids[k] = b.test_logits, y_te, ids

    def replicate_metrics(self, name: str, k: int) -> dict[str, Any]:
        return self.models[name].reps[k]

    def add_within(self, name: str, base: str, k: int, d, lo, hi, p) -> None:
        self.models[name].base = base

    def across(self, name: str) -> dict[str, float] | None:
        """Specific − naive AUROC over replicates, paired by replicate (None for naive rows)."""
        m = self.models[name]
        if m.base is None:
            return None
        naive = self.models[m.base]
        ks = sorted(set(m.reps) & set(naive.reps))
        res = paired_replicate_test([naive.reps[k]["auroc"] for k in ks],
                                    [m.reps[k]["auroc"] for k in ks])  # fmt: skip
        diff, lo, hi, p = (float(res.mean_diff), float(res.lo), float(res.hi), float(res.p_value))
        within = [m.reps[k] for k in ks]
        return {"diff_mean": diff, "diff_lo": lo, "diff_hi": hi, "p_paired": p,
                "n_within_significant_pos": sum(r["p_vs_naive"] < ALPHA and r["diff_vs_naive"] > 0 for r in within),
                "n_within_significant_neg": sum(r["p_vs_naive"] < ALPHA and r["diff_vs_naive"] < 0 for r in within),
                "n_replicates": len(ks)}  # fmt: skip

    def pooled(self, name: str) -> dict[str, float] | None:
        """PTB-XL: AUROC of the out-of-fold test predictions pooled over the outer folds (every
        record once); None for MIT-BIH (one test set scored by every replicate)."""
        m = self.models[name]
        if self.dataset != "ptbxl" or len(m.logits) < 2:
            return None
        ids = np.concatenate([m.ids[k] for k in sorted(m.ids)])
        if len(set(ids.tolist())) != len(ids):
            raise ValueError(f"{self.dataset}/{name}: a record is out-of-fold in two folds")
        y = np.concatenate([m.y[k] for k in sorted(m.y)])
        s = np.concatenate([m.logits[k] for k in sorted(m.logits)])
        ci = auroc_ci(y, s)
        return {"auroc": round(ci.auc, 6), "auroc_lo": round(ci.lo, 6),
                "auroc_hi": round(ci.hi, 6), "n": int(len(y))}  # fmt: skip

    def metrics(self) -> dict[str, Any]:
        """metrics.json: per model, mean and sd over replicates, each replicate, the paired
        test against the naive row and (PTB-XL) the pooled out-of-fold AUROC."""
        out: dict[str, Any] = {}
        for name, m in self.models.items():
            entry: dict[str, Any] = {}
            for key in MEAN_KEYS:
                vals = [r[key] for r in m.reps.values() if key in r]
                if vals:
                    entry[f"{key}_mean"] = round(float(np.mean(vals)), 6)
                    entry[f"{key}_sd"] = round(
                        float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, 6
                    )
            for k in sorted(m.reps):
                entry[f"rep{k}"] = m.reps[k]
            across = self.across(name)
            if across is not None:
                entry["vs_naive"] = {k: (round(v, 6) if isinstance(v, float) else v)
                                     for k, v in across.items()}  # fmt: skip
            pooled = self.pooled(name)
            if pooled is not None:
                entry["pooled_oof"] = pooled
            out[name] = entry
        return out


def _ms(vals: list[float], fmt: str = "{:.3f}") -> str:
    if not vals:
        return DASH
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return f"{fmt.format(float(np.mean(vals)))} ± {fmt.format(sd)}"


def _p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _latent(m: ModelResults) -> str:
    if m.L is None:
        return DASH
    if m.L_pred is None or m.L_pred == m.L:
        return str(m.L)
    return f"{m.L_pred} ({m.L})"


def replicate_table_markdown(summaries: list[DatasetSummary]) -> str:
    """Table 1 over replicates, one section per dataset, and what it can and cannot show."""
    lines = ["# Table 1: reconstruction and prediction on the test sets, over replicates", ""]
    for s in summaries:
        n = max((len(m.reps) for m in s.models.values()), default=0)
        if s.dataset == "ptbxl":
            what = f"{n} outer folds of PTB-XL's strat_fold (every record a test record once)"
        else:
            ids = next(iter(s.models.values())).ids if s.models else {}
            n_rec = len(set(np.concatenate(list(ids.values())).tolist())) if ids else 0
            what = f"{n} seeds, DS1 → DS2 ({n_rec} test records = patients)"
        lines += [f"## {s.dataset}: mean ± sd over {what}", ""]
        header = ["Architecture", "L", "MSE", "Correlation", "AUROC", "F1",
                  "Δ AUROC vs naive (95% CI)", "p (paired, replicates)", "within: sig. +/−"]  # fmt: skip
        if s.dataset == "ptbxl":
            header.insert(5, "pooled OOF AUROC (95% CI)")
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        for name, m in s.models.items():
            reps = list(m.reps.values())
            across = s.across(name)
            if across is None:
                diff, p, within = DASH, DASH, DASH
            else:
                star = across["p_paired"] < ALPHA and across["diff_mean"] > 0
                diff = (f"{across['diff_mean']:+.3f}{'*' if star else ''} "
                        f"({across['diff_lo']:+.3f}, {across['diff_hi']:+.3f})")  # fmt: skip
                p = _p(across["p_paired"])
                within = (f"{across['n_within_significant_pos']}/"
                          f"{across['n_within_significant_neg']} of {across['n_replicates']}")  # fmt: skip
            cells = [f"{m.label}", _latent(m), _ms([r["mse"] for r in reps if "mse" in r], "{:.4g}"),
                     _ms([r["corr"] for r in reps if "corr" in r]), _ms([r["auroc"] for r in reps]),
                     _ms([r["f1"] for r in reps]), diff, p, within]  # fmt: skip
            if s.dataset == "ptbxl":
                pooled = s.pooled(name)
                cells.insert(5, DASH if pooled is None else
                             f"{pooled['auroc']:.3f} ({pooled['auroc_lo']:.3f}–{pooled['auroc_hi']:.3f})")  # fmt: skip
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [
        "Δ AUROC: task specific (or split task) minus its task-naive base, mean over replicates "
        "with a paired t interval; \\* only where the paired p < 0.05 and the difference is "
        'positive. "within: sig. +/−": replicates whose own test (PTB-XL: Hanley & McNeil 1983, '
        "one ECG per record; MIT-BIH: bootstrap over DS2 records) found the specific model "
        "significantly better / worse at α = 0.05. Task-naive rows had the same epoch budget "
        "as the task-specific ones (continued pretraining).",
        "",
        "What this can show: differences between models that are consistent over replicates on "
        "these data. What it cannot: PTB-XL here is a 500-record subset of 21,799, so its "
        "AUROCs carry wide intervals and say little about the full benchmark; MIT-BIH's test set "
        "is 22 patients, so its intervals are over patients, not beats; nothing here was tuned "
        "on a test set, and a non-significant difference is not evidence of equality.",
        "",
    ]
    return "\n".join(lines)
