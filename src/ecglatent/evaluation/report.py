"""Results tables in the shape of the paper's Table 1, with signed differences and replicates.

A row may stand for one trained model (one replicate) or summarise several replicates
(seeds, folds): :func:`summarise_replicates` turns per-replicate rows into one row with
mean ± sd, the per-replicate AUROCs, and the paired test against the task-naive model
across replicates. :func:`table1_markdown` prints either kind; :func:`evidence_markdown` says
what the numbers can and cannot show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ecglatent.evaluation.clustered import ClusteredAucDiff, PairedTest, paired_replicate_test

__all__ = [
    "MISSING",
    "Comparison",
    "EvidenceScope",
    "ResultRow",
    "evidence_markdown",
    "row_metrics",
    "starred",
    "summarise_replicates",
    "table1_markdown",
]

MISSING = "–"
EN_DASH = "–"


@dataclass(frozen=True)
class Comparison:
    """A signed difference of this row's AUROC minus its task-naive model's (specific − naive),
    its (1 − alpha) interval, p-value and the method that produced them."""

    diff: float
    lo: float | None = None
    hi: float | None = None
    p_value: float | None = None
    method: str = ""

    @classmethod
    def from_auc_diff(cls, r: ClusteredAucDiff) -> Comparison:
        """From :func:`~ecglatent.evaluation.clustered.auroc_difference` and friends, called
        with ``score_a`` = naive and ``score_b`` = this model."""
        return cls(r.diff, r.lo, r.hi, r.p_value, f"{r.method}, {r.n_clusters} units")

    @classmethod
    def from_paired(cls, t: PairedTest, n: int) -> Comparison:
        """From :func:`~ecglatent.evaluation.clustered.paired_replicate_test` (naive, this)."""
        return cls(t.mean_diff, t.lo, t.hi, t.p_value, f"paired t over {n} replicates")


@dataclass(frozen=True)
class ResultRow:
    """One model's reconstruction and prediction results on one dataset.

    ``L`` is the latent size and ``L_pred`` the number of latents trained for prediction
    (split-task models: shown as "2 (10)"). ``None`` or NaN prints "–".

    Comparisons with the task-naive model, both signed specific − naive:
    ``vs_naive`` within one replicate (or on pooled predictions), ``across`` over replicates
    paired by seed/fold. ``p_value_vs_naive`` is kept for old callers: without a
    ``vs_naive`` it is printed, but a p-value without a direction never earns a star.

    Replicates: a per-replicate row sets ``replicate`` (its seed or fold); a summary row
    (:func:`summarise_replicates`) sets ``n_replicates``, the ``*_sd`` spreads, and
    ``auroc_replicates`` in replicate order ``replicates``; its ``auroc`` etc. are means;
    ``within_significant`` counts the replicates whose own ``vs_naive`` test found specific
    significantly (better, worse); ``pooled`` is (AUROC, lo, hi) of the out-of-fold test
    predictions pooled over cross-validation folds (every record scored once).
    """

    dataset: str
    model: str
    L: int | None = None
    L_pred: int | None = None
    beta: float | None = None
    mse: float | None = None
    corr: float | None = None
    auroc: float | None = None
    auroc_lo: float | None = None
    auroc_hi: float | None = None
    f1: float | None = None
    p_value_vs_naive: float | None = None
    vs_naive: Comparison | None = None
    across: Comparison | None = None
    replicate: int | str | None = None
    n_replicates: int | None = None
    auroc_sd: float | None = None
    mse_sd: float | None = None
    corr_sd: float | None = None
    f1_sd: float | None = None
    auroc_replicates: tuple[float, ...] = field(default=())
    replicates: tuple[int | str, ...] = field(default=())
    within_significant: tuple[int, int] | None = None
    pooled: tuple[float, float, float] | None = None

    @property
    def evidence(self) -> Comparison | None:
        """The comparison the star rests on: across replicates when there are any, else
        within this replicate."""
        return self.across if self.across is not None else self.vs_naive


def _missing(x: float | int | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt_sig(x: float | None, sig: int = 3) -> str:
    """Three significant digits, plain notation: 147, 76.5, 0.0123; whole numbers from 100 up."""
    if _missing(x):
        return MISSING
    if abs(x) >= 10 ** (sig - 1) - 0.5:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    x = float(f"{x:.{sig}g}")  # round first so 9.996 becomes "10.0", not "10.00"
    mag = math.floor(math.log10(abs(x)))
    if mag < -4:
        return f"{x:.{sig - 1}e}"
    return f"{x:.{max(sig - 1 - mag, 0)}f}"


def _fmt3(x: float | None) -> str:
    return MISSING if _missing(x) else f"{x:.3f}"


def _fmt_p(p: float | None) -> str:
    if _missing(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_latent(row: ResultRow) -> str:
    if _missing(row.L):
        return MISSING if _missing(row.L_pred) else str(row.L_pred)
    if _missing(row.L_pred) or row.L_pred == row.L:
        return str(row.L)
    return f"{row.L_pred} ({row.L})"


def _fmt_mean_sd(x: float | None, sd: float | None, fmt) -> str:
    text = fmt(x)
    if text != MISSING and not _missing(sd):
        text += f" ± {fmt(sd)}"
    return text


def _fmt_auroc(row: ResultRow, star: bool) -> str:
    if _missing(row.auroc):
        return MISSING
    text = f"{row.auroc:.3f}"
    if not _missing(row.auroc_sd):
        text += f" ± {row.auroc_sd:.3f}"
    text += "*" if star else ""
    if not (_missing(row.auroc_lo) or _missing(row.auroc_hi)):
        text += f" ({row.auroc_lo:.3f}{EN_DASH}{row.auroc_hi:.3f})"
    return text


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _fmt_diff(c: Comparison | None) -> str:
    if c is None or _missing(c.diff):
        return MISSING
    text = _signed(c.diff)
    if not (_missing(c.lo) or _missing(c.hi)):
        text += f" ({_signed(c.lo)} to {_signed(c.hi)})"
    return text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def starred(row: ResultRow, significance: float | None = 0.05) -> bool:
    """The star: specific > naive (a positive signed difference) and p below ``significance``.

    Direction-aware: a significantly *worse* specific model gets no star; a p-value without a
    signed difference (``p_value_vs_naive`` alone) gets none either.
    """
    c = row.evidence
    if significance is None or c is None or _missing(c.p_value) or _missing(c.diff):
        return False
    return c.diff > 0 and c.p_value < significance


def table1_markdown(
    rows: Iterable[ResultRow],
    title: str = "Reconstruction and prediction on the test set",
    significance: float | None = 0.05,
) -> str:
    """A Markdown table shaped like the paper's Table 1, with signed differences to naive.

    Columns: Architecture, L, MSE, Correlation, AUROC (95% CI), F1, Δ AUROC vs naive (95% CI)
    and its p. Replicate summaries print mean ± sd and add a column with the number of
    replicates; rows with an across-replicate test add its Δ and p, and the count of
    replicates whose own test was significant in each direction; rows with pooled
    out-of-fold predictions add that AUROC (the Δ column then compares the pooled
    predictions). A Dataset column is added
    in front when the rows span more than one dataset. An AUROC gets "*" only when the
    specific model is *better* than its naive model with p < ``significance``
    (:func:`starred`); the footnote names the test(s).
    """
    rows = list(rows)
    multi = len({r.dataset for r in rows}) > 1
    reps = any(not _missing(r.n_replicates) for r in rows)
    across = any(r.across is not None for r in rows)
    within = any(r.within_significant is not None for r in rows)
    pooled = any(r.pooled is not None for r in rows)
    auroc_head = "AUROC mean ± sd" if reps else "AUROC (95% CI)"
    header = ["Architecture", "L", "MSE", "Correlation", auroc_head, "F1"]
    if reps:
        header.append("n")
    if pooled:
        header.append("pooled OOF AUROC (95% CI)")
    header += [f"Δ AUROC{' pooled' if pooled else ''} vs naive (95% CI)", "p"]
    if within:
        header.append("replicates sig. better / worse")
    if across:
        header += ["Δ across replicates (95% CI)", "p (replicates)"]
    if multi:
        header.insert(0, "Dataset")
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    methods: dict[str, None] = {}
    any_star = False
    for r in rows:
        star = starred(r, significance)
        if star:
            methods[r.evidence.method] = None
        any_star |= star
        p_within = r.vs_naive.p_value if r.vs_naive is not None else r.p_value_vs_naive
        cells = [
            r.model,
            _fmt_latent(r),
            _fmt_mean_sd(r.mse, r.mse_sd, _fmt_sig),
            _fmt_mean_sd(r.corr, r.corr_sd, _fmt3),
            _fmt_auroc(r, star),
            _fmt_mean_sd(r.f1, r.f1_sd, _fmt3),
        ]
        if reps:
            cells.append(MISSING if _missing(r.n_replicates) else str(r.n_replicates))
        if pooled:
            cells.append(MISSING if r.pooled is None else
                         f"{r.pooled[0]:.3f} ({r.pooled[1]:.3f}{EN_DASH}{r.pooled[2]:.3f})")  # fmt: skip
        cells += [_fmt_diff(r.vs_naive), _fmt_p(p_within)]
        if within:
            w = r.within_significant
            cells.append(MISSING if w is None else f"{w[0]} / {w[1]} of {r.n_replicates}")
        if across:
            cells += [_fmt_diff(r.across), _fmt_p(r.across.p_value if r.across else None)]
        if multi:
            cells.insert(0, r.dataset)
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if any_star:
        how = "; ".join(m for m in methods if m) or "the comparison shown"
        lines += [
            "",
            f"\\* task specific better than task naive (Δ > 0) with p < {significance:g} "
            f"({how}). Δ is signed: specific − naive.",
        ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- replicates


def _mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    v = np.array([np.nan if _missing(x) else float(x) for x in values])
    if v.size == 0 or np.isnan(v).all():
        return None, None
    if np.isnan(v).any():
        return float("nan"), float("nan")  # a missing replicate makes the summary missing
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else None


def summarise_replicates(
    rows: Sequence[ResultRow],
    naive: Sequence[ResultRow] | None = None,
    vs_naive: Comparison | None = None,
    alpha: float = 0.05,
    **overrides: Any,
) -> ResultRow:
    """One row from per-replicate rows of the same model: means ± sd (ddof = 1), the AUROCs per
    replicate, and — given the naive model's per-replicate rows — the paired t-test of the
    AUROC across replicates (specific − naive), paired by ``replicate`` id. Rows that carry
    their own ``vs_naive`` test are counted as significantly better / worse at ``alpha``.

    ``vs_naive`` (e.g. on pooled out-of-fold predictions) is carried over as the row's
    within comparison; ``overrides`` set any other field (e.g. a pooled ``auroc_lo``).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no replicate rows to summarise")
    first = rows[0]
    for r in rows[1:]:
        if (r.dataset, r.model) != (first.dataset, first.model):
            raise ValueError(f"replicates of different models: {first.model!r} and {r.model!r}")
    ids = [r.replicate for r in rows]
    if None in ids or len(set(ids)) != len(ids):
        raise ValueError(f"every replicate row needs its own replicate id, got {ids}")
    across = None
    if naive is not None:
        by_id = {r.replicate: r for r in naive}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"naive model has no replicate(s) {missing} to pair with")
        test = paired_replicate_test(
            [by_id[i].auroc for i in ids], [r.auroc for r in rows], alpha=alpha
        )
        across = Comparison.from_paired(test, len(ids))
    within = None
    tested = [r.vs_naive for r in rows if r.vs_naive is not None and not _missing(r.vs_naive.p_value)]
    if tested:
        within = (sum(c.diff > 0 and c.p_value < alpha for c in tested),
                  sum(c.diff < 0 and c.p_value < alpha for c in tested))  # fmt: skip
    auroc, auroc_sd = _mean_sd([r.auroc for r in rows])
    mse, mse_sd = _mean_sd([r.mse for r in rows])
    corr, corr_sd = _mean_sd([r.corr for r in rows])
    f1, f1_sd = _mean_sd([r.f1 for r in rows])
    summary = replace(
        first, auroc=auroc, auroc_sd=auroc_sd, auroc_lo=None, auroc_hi=None, mse=mse,
        mse_sd=mse_sd, corr=corr, corr_sd=corr_sd, f1=f1, f1_sd=f1_sd, p_value_vs_naive=None,
        vs_naive=vs_naive, across=across, replicate=None, n_replicates=len(rows),
        auroc_replicates=tuple(float(r.auroc) for r in rows), replicates=tuple(ids),
        within_significant=within,
    )  # fmt: skip
    return replace(summary, **overrides)


def row_metrics(row: ResultRow, digits: int = 6) -> dict[str, Any]:
    """A JSON-ready dict of one row for ``reports/metrics.json`` (and ``dvc metrics show``):
    means, spreads, per-replicate AUROCs and both comparisons; missing values left out."""

    def num(x: Any) -> Any:
        return round(float(x), digits) if isinstance(x, (float, np.floating)) else x

    out: dict[str, Any] = {}
    for key in ("auroc", "auroc_lo", "auroc_hi", "auroc_sd", "mse", "mse_sd", "corr",
                "corr_sd", "f1", "f1_sd", "n_replicates", "replicate"):  # fmt: skip
        value = getattr(row, key)
        if not _missing(value):
            out[key] = num(value)
    if row.auroc_replicates:
        out["auroc_per_replicate"] = {
            str(i): num(v) for i, v in zip(row.replicates, row.auroc_replicates, strict=True)
        }
    for key, c in (("vs_naive", row.vs_naive), ("across_replicates", row.across)):
        if c is not None:
            out[key] = {k: num(v) for k, v in (("diff", c.diff), ("lo", c.lo), ("hi", c.hi),
                        ("p_value", c.p_value), ("method", c.method)) if not _missing(v)}  # fmt: skip
    if row.vs_naive is None and not _missing(row.p_value_vs_naive):
        out["p_vs_naive"] = num(row.p_value_vs_naive)
    if row.within_significant is not None:
        out["replicates_significantly_better"], out["replicates_significantly_worse"] = (
            row.within_significant
        )
    if row.pooled is not None:
        out["pooled_oof"] = {k: num(v) for k, v in zip(("auroc", "lo", "hi"), row.pooled, strict=True)}
    return out


# ----------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class EvidenceScope:
    """What one dataset's test numbers rest on.

    ``n_units`` independent units (``unit``: "patients", "records") hold ``n_items`` scored
    items (``item``: "beats", "ECGs"); ``n_available`` of ``n_population`` units of the
    source database were used at all (e.g. 500 of 21,799 PTB-XL records, counted in
    ``population_unit``, default ``unit``); ``method`` names how intervals and tests treat
    the units.
    """

    dataset: str
    n_units: int
    unit: str
    n_items: int | None = None
    item: str = "items"
    n_available: int | None = None
    n_population: int | None = None
    method: str = ""
    population_unit: str = ""


def evidence_markdown(
    scopes: Sequence[EvidenceScope],
    n_replicates: int | None = None,
    replicate_kind: str = "seeds",
    alpha: float = 0.05,
    n_comparisons: int | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The "What these numbers can and cannot show" paragraph under Table 1 (or any report).

    ``notes`` are further bullets (e.g. which settings were chosen how), appended last.
    """
    lines = ["### What these numbers can and cannot show", ""]
    for s in scopes:
        items = f"{s.n_items:,} {s.item} from " if s.n_items else ""
        text = (f"- **{s.dataset}**: the test set is {items}{s.n_units:,} {s.unit}. Intervals "
                f"and tests treat the {s.unit} as the independent units"
                + (f" ({s.method})" if s.method else "")
                + f", so the effective sample size is {s.n_units:,}")  # fmt: skip
        text += f", not {s.n_items:,}." if s.n_items and s.n_items > s.n_units else "."
        if s.n_available and s.n_population and s.n_available < s.n_population:
            text += (f" Only {s.n_available:,} of the database's {s.n_population:,} "
                     f"{s.population_unit or s.unit} "
                     f"({100 * s.n_available / s.n_population:.1f} %) were used, so the "
                     "figures estimate performance on this subset; they are not the published "
                     "benchmark and can differ from it.")  # fmt: skip
        lines.append(text)
    if n_replicates:
        lines.append(
            f"- **Replicates**: every model was trained {n_replicates} times ({replicate_kind})"
            "; mean ± sd shows how much a conclusion depends on that draw. The test across "
            "replicates (paired t) asks whether task-specific training beats task-naive "
            "training on average over such draws on these test units; it says nothing about "
            "patients outside them."
        )
    else:
        lines.append(
            "- **One draw**: each model was trained once. Its interval covers the sampling of "
            "test units, not the randomness of training (seed, split); another seed can move "
            "a figure by more than the interval suggests."
        )
    k = f" ({n_comparisons} comparisons)" if n_comparisons else ""
    lines += [
        f"- A star marks task specific > task naive with p < {alpha:g}; Δ is signed (specific "
        f"− naive). No correction for multiple comparisons{k}: about one in "
        f"{round(2 / alpha)} comparisons without a true difference gets a star by chance. A "
        "difference without a star is not "
        "evidence that the models are equal: its interval shows the range the data allow.",
        "- These numbers cannot show that the paper's figures hold on the paper's own cohort, "
        "how the models would do on other hospitals' devices or populations, or clinical "
        "usefulness. The registry's `champion` alias is chosen on validation data only.",
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
