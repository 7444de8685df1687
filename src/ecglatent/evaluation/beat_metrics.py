"""N-vs-V beat metrics for SiliconNet: F1/Se/PPV of class V, summaries over seeds, Wilcoxon tests,
and a markdown report shaped like the paper's Tables 2 and 4. numpy/scipy/pandas only.

Results are passed around as a long table with one row per (config, seed, eval): ``eval`` names
the test set, e.g. ``"DS2 MLII"`` (the primary score) or ``"DS2 V1"`` (one lead of DS2's
second channel).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

# Paper order of Tables 1, 2 and 4.
CONFIG_ORDER: tuple[str, ...] = ("randfeatures", "randinit", "pretrained", "finetune", "2lr")
PRIMARY_EVAL = "DS2 MLII"
RESULT_COLUMNS = ("config", "seed", "eval", "f1", "se", "ppv", "tp", "fp", "fn", "tn")


@dataclass(frozen=True)
class BeatMetrics:
    """Scores of the positive class (V); Se = recall, PPV = precision.

    Undefined scores are NaN, not 0: Se and F1 when the truth holds no V beat (e.g. DS2's V2
    records), PPV when nothing is predicted V. F1 is 0 when V beats exist and none is found.
    """

    f1: float
    se: float
    ppv: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def confusion(self) -> np.ndarray:
        """[[TN, FP], [FN, TP]]: rows true N/V, columns predicted N/V."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def beat_metrics(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> BeatMetrics:
    """F1, Se and PPV of class ``positive`` and the confusion counts."""
    t = np.asarray(y_true) == positive
    p = np.asarray(y_pred) == positive
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    tp, fp = int(np.sum(t & p)), int(np.sum(~t & p))
    fn, tn = int(np.sum(t & ~p)), int(np.sum(~t & ~p))
    nan = float("nan")
    se = tp / (tp + fn) if tp + fn else nan
    ppv = tp / (tp + fp) if tp + fp else nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else nan
    return BeatMetrics(f1, se, ppv, tp, fp, fn, tn)


def best_threshold(y_true: np.ndarray, p_pos: np.ndarray, positive: int = 1) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``positive`` when predicting p_pos >= threshold.

    Meant for validation scores only: a threshold picked on the test set is a leak.
    """
    y = np.asarray(y_true) == positive
    p = np.asarray(p_pos, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    # only the last of tied scores is a valid cut (all tied beats flip together)
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = 2 * tp / (tp + fp + y.sum())
    f1 = np.where(last, f1, -1.0)
    if not len(f1) or not y.any():
        return 0.5, 0.0
    k = int(np.argmax(f1))
    return float(ps[k]), float(f1[k])


@dataclass(frozen=True)
class SeedSummary:
    median: float
    q1: float
    q3: float
    mean: float
    std: float
    n: int


def summarise(values: Sequence[float]) -> SeedSummary:
    """Median, Q1, Q3 (linear interpolation), mean and sample std (ddof=1) of e.g. F1 over seeds."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        nan = float("nan")
        return SeedSummary(nan, nan, nan, nan, nan, 0)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return SeedSummary(float(med), float(q1), float(q3), float(v.mean()), std, len(v))


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value for paired scores; NaN when it is undefined.

    Undefined: fewer than 2 pairs or all differences zero. With 5 seeds the smallest possible
    two-sided exact p is 0.0625, so 5 seeds can never reach p < 0.05.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    if len(d) < 2 or np.all(d == 0):
        return float("nan")
    return float(stats.wilcoxon(x[ok], y[ok]).pvalue)


def per_seed(results: pd.DataFrame, eval_name: str | Sequence[str], metric: str = "f1") -> pd.DataFrame:
    """One value per (seed, config): the metric on ``eval_name``, or its mean over a list of
    evals (e.g. every lead) within each seed, so the seed stays the unit of replication."""
    evals = [eval_name] if isinstance(eval_name, str) else list(eval_name)
    sub = results[results["eval"].isin(evals)]
    return sub.pivot_table(index="seed", columns="config", values=metric, aggfunc="mean")


def wilcoxon_pairwise(
    results: pd.DataFrame, eval_name: str | Sequence[str] = PRIMARY_EVAL, metric: str = "f1"
) -> pd.DataFrame:
    """Square table of p-values between configs, paired by seed.

    A list of evals (e.g. every lead) is first averaged within each seed: leads of one seed
    are not independent replicates. Configs missing a pair are compared on the seeds they share.
    """
    wide = per_seed(results, eval_name, metric)
    configs = _ordered(wide.columns)
    out = pd.DataFrame(np.nan, index=configs, columns=configs)
    for a, b in itertools.combinations(configs, 2):
        pair = wide[[a, b]].dropna()
        p = wilcoxon_p(pair[a].to_numpy(), pair[b].to_numpy())
        out.loc[a, b] = out.loc[b, a] = p
    return out


def pairwise_differences(
    results: pd.DataFrame, eval_name: str | Sequence[str] = PRIMARY_EVAL, metric: str = "f1"
) -> pd.DataFrame:
    """Each pair of configs (a, b): mean over seeds of b − a with a paired t 95% interval, and
    the Wilcoxon signed-rank p; the seed is the unit (see :func:`per_seed`)."""
    wide = per_seed(results, eval_name, metric)
    configs = _ordered(wide.columns)
    rows = []
    for a, b in itertools.combinations(configs, 2):
        pair = wide[[a, b]].dropna()
        d = (pair[b] - pair[a]).to_numpy(np.float64)
        n = len(d)
        mean = float(d.mean()) if n else float("nan")
        if n > 1 and d.std(ddof=1) > 0:
            half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n))
        else:
            half = float("nan") if n < 2 else 0.0
        rows.append({"a": a, "b": b, "n_seeds": n, "diff": mean, "lo": mean - half,
                     "hi": mean + half, "p_wilcoxon": wilcoxon_p(pair[a], pair[b]) if n else float("nan")})  # fmt: skip
    return pd.DataFrame(rows, columns=["a", "b", "n_seeds", "diff", "lo", "hi", "p_wilcoxon"])


def metrics_row(config: str, seed: int, eval_name: str, m: BeatMetrics) -> dict[str, object]:
    """One row of the long results table."""
    return {"config": config, "seed": int(seed), "eval": eval_name, **m.as_dict()}


def per_lead_rows(
    config: str,
    seed: int,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    leads: Sequence[str],
    prefix: str = "DS2",
    min_v_beats: int = 0,
) -> list[dict[str, object]]:
    """Rows for each lead name in ``leads`` (one per beat) and for all beats pooled (``other``).

    A lead gets its own row only when it holds at least ``min_v_beats`` V beats: an F1 on a
    handful of V beats is noise.
    """
    y_true, y_pred, leads = np.asarray(y_true), np.asarray(y_pred), np.asarray(leads)
    rows = [metrics_row(config, seed, f"{prefix} other", beat_metrics(y_true, y_pred))]
    for lead in sorted(set(leads.tolist())):
        m = leads == lead
        if int((y_true[m] == 1).sum()) < min_v_beats:
            continue
        rows.append(
            metrics_row(config, seed, f"{prefix} {lead}", beat_metrics(y_true[m], y_pred[m]))
        )
    return rows


def _ordered(configs) -> list[str]:
    known = [c for c in CONFIG_ORDER if c in set(configs)]
    return known + sorted(set(configs) - set(known))


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def siliconet_markdown(
    results: pd.DataFrame,
    primary: str = PRIMARY_EVAL,
    lead_evals: Sequence[str] | None = None,
    title: str = "SiliconNet: N vs V beat classification, DS1 → DS2",
) -> str:
    """Markdown report: Table 2 (median (Q1–Q3) over seeds), Table 4 (mean (std)), Wilcoxon p.

    ``lead_evals`` are the per-lead rows (default: every eval other than ``primary`` and the
    pooled ``… other``); their "Leads" summary pools all seeds and leads like the paper's INCART
    rows.
    """
    configs = _ordered(results["config"].unique())
    evals = list(dict.fromkeys(results["eval"]))
    if lead_evals is None:
        lead_evals = [e for e in evals if e != primary and not e.endswith(" other")]
    lines = [f"## {title}", ""]
    n_seeds = results.groupby("config")["seed"].nunique()
    lines += [
        "Seeds per configuration: "
        + ", ".join(f"{c} {int(n_seeds.get(c, 0))}" for c in configs)
        + ". F1 of class V; epoch (and threshold, if tuned) chosen on DS1 validation only.",
        "",
        "### F1 median (Q1–Q3) over seeds (paper Table 2)",
        "",
        "| | " + " | ".join(configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    table2_rows = [primary] + [e for e in evals if e.endswith(" other")]
    for ev in table2_rows:
        cells = []
        for c in configs:
            s = summarise(results.loc[(results.config == c) & (results["eval"] == ev), "f1"])
            cells.append(f"{_fmt(s.median)} ({_fmt(s.q1)}–{_fmt(s.q3)})")
        lines.append(f"| {ev} | " + " | ".join(cells) + " |")
    if lead_evals:
        cells = []
        for c in configs:
            s = summarise(
                results.loc[(results.config == c) & results["eval"].isin(lead_evals), "f1"]
            )
            cells.append(f"{_fmt(s.median)} ({_fmt(s.q1)}–{_fmt(s.q3)})")
        lines.append("| Leads (all seeds × leads) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### F1 mean (std) over seeds, per test set and lead (paper Table 4)",
        "",
        "| | " + " | ".join(configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for ev in evals:
        cells = []
        for c in configs:
            s = summarise(results.loc[(results.config == c) & (results["eval"] == ev), "f1"])
            cells.append(f"{_fmt(s.mean)} ({_fmt(s.std)})")
        lines.append(f"| {ev} | " + " | ".join(cells) + " |")
    if lead_evals:
        cells = []
        for c in configs:
            per_seed = (
                results[(results.config == c) & results["eval"].isin(lead_evals)]
                .groupby("seed")["f1"]
                .mean()
            )
            s = summarise(per_seed.to_numpy())
            cells.append(f"{_fmt(s.mean)} ({_fmt(s.std)})")
        lines.append("| Leads average | " + " | ".join(cells) + " |")
    for name, ev in [(primary, primary), ("per-lead F1 averaged within each seed", lead_evals)]:
        if not ev:
            continue
        pw = wilcoxon_pairwise(results, ev)
        lines += [
            "",
            f"### Wilcoxon signed-rank p-values, {name}",
            "",
            "| | " + " | ".join(pw.columns) + " |",
            "|---|" + "---|" * len(pw.columns),
        ]
        for a in pw.index:
            lines.append(
                f"| {a} | "
                + " | ".join("—" if a == b else _p(pw.loc[a, b]) for b in pw.columns)
                + " |"
            )
    diffs = pairwise_differences(results, primary)
    if len(diffs):
        lines += [
            "",
            f"### Pairwise differences on {primary}, seeds as the unit (F1 of b − F1 of a)",
            "",
            "| a | b | seeds | mean Δ F1 (95% CI) | Wilcoxon p |",
            "|---|---|---|---|---|",
        ]
        for r in diffs.itertuples(index=False):
            lines.append(f"| {r.a} | {r.b} | {r.n_seeds} | {_fmt(r.diff, 3)} "
                         f"({_fmt(r.lo, 3)}, {_fmt(r.hi, 3)}) | {_p(r.p_wilcoxon)} |")  # fmt: skip
    return "\n".join(lines) + "\n"
