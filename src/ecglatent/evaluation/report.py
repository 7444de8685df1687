"""Results tables in the shape of the paper's Table 1."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MISSING", "ResultRow", "table1_markdown"]

MISSING = "–"
EN_DASH = "–"


@dataclass(frozen=True)
class ResultRow:
    """One model's reconstruction and prediction results on one dataset.

    ``L`` is the latent size and ``L_pred`` the number of latents trained for prediction
    (split-task models: shown as "2 (10)"); ``p_value_vs_naive`` is the Hanley & McNeil (1983)
    p-value of this row's AUROC against its task-naive counterpart. ``None`` or NaN prints "–".
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


def _fmt_auroc(row: ResultRow, star: bool) -> str:
    if _missing(row.auroc):
        return MISSING
    text = f"{row.auroc:.3f}" + ("*" if star else "")
    if not (_missing(row.auroc_lo) or _missing(row.auroc_hi)):
        text += f" ({row.auroc_lo:.3f}{EN_DASH}{row.auroc_hi:.3f})"
    return text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def table1_markdown(
    rows: Iterable[ResultRow],
    title: str = "Reconstruction and prediction on the test set",
    significance: float | None = 0.01,
) -> str:
    """A Markdown table shaped like the paper's Table 1.

    Columns: Architecture, L, MSE, Correlation, AUROC (95% CI), F1, p (naive vs specific); a
    Dataset column is added in front when the rows span more than one dataset. With
    ``significance`` set, an AUROC whose p-value is below it gets the paper's "*" and a footnote.
    """
    rows = list(rows)
    multi = len({r.dataset for r in rows}) > 1
    header = ["Architecture", "L", "MSE", "Correlation", "AUROC (95% CI)", "F1"]
    header.append("p (naive vs specific)")
    if multi:
        header.insert(0, "Dataset")
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    any_star = False
    for r in rows:
        star = (
            significance is not None
            and not _missing(r.p_value_vs_naive)
            and r.p_value_vs_naive < significance
        )
        any_star |= star
        cells = [
            r.model,
            _fmt_latent(r),
            _fmt_sig(r.mse),
            _fmt3(r.corr),
            _fmt_auroc(r, star),
            _fmt3(r.f1),
            _fmt_p(r.p_value_vs_naive),
        ]
        if multi:
            cells.insert(0, r.dataset)
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if any_star:
        lines += [
            "",
            f"\\* p < {significance:g} between the AUROC of the task-naive and the task-specific "
            "model (Hanley & McNeil 1983).",
        ]
    return "\n".join(lines) + "\n"
