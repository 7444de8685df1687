"""Do two runs of the default pipeline agree? (issue 12, "conclusions survive another draw")

Reads the ``reports/`` folders of two runs that differ only by their draw (another seed, thread
count or machine) and checks every comparison both reports make:

- Table 1, each task-specific row against its task-naive model: the difference across
  replicates (paired by fold/seed) and, for PTB-XL, the one on pooled out-of-fold predictions;
- SiliconNet, each pair of training configurations: the DS2 F1 difference paired by seed, on
  the primary lead and on every DS2 lead averaged within a seed.

Two runs contradict each other on a comparison when either calls it significant at ``alpha``
and the other's difference has the opposite sign or the two 95 % intervals do not overlap. A
conclusion *holds* when both runs call it significant with the same sign.

    python scripts/compare_runs.py RUN_A RUN_B [--out reports/replication]

``RUN_A``/``RUN_B`` are project roots (or their ``reports/`` folders). Writes ``<out>.md`` and
``<out>.json``; exits 1 when the runs contradict each other, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ecglatent.evaluation.beat_metrics import PRIMARY_EVAL, pairwise_differences


@dataclass(frozen=True)
class Diff:
    """One run's signed difference with its 95 % interval and p-value."""

    diff: float
    lo: float | None
    hi: float | None
    p: float | None
    method: str = ""

    def significant(self, alpha: float) -> bool:
        return self.p is not None and math.isfinite(self.p) and self.p < alpha


@dataclass(frozen=True)
class Check:
    """One comparison in both runs and the verdict."""

    family: str
    comparison: str
    a: Diff | None
    b: Diff | None
    verdict: str


def reports_dir(path: Path) -> Path:
    """``path`` itself when it holds the reports, else ``path/reports``."""
    return path if (path / "metrics.json").exists() else path / "reports"


def _num(x: object) -> float | None:
    return None if x is None else float(x)


def table1_diffs(reports: Path) -> dict[tuple[str, str], Diff]:
    """(family, comparison) -> Diff for every task-specific row of ``metrics.json``."""
    metrics = json.loads((reports / "metrics.json").read_text())
    out: dict[tuple[str, str], Diff] = {}
    for dataset, models in sorted(metrics.items()):
        if not isinstance(models, dict):
            continue
        for name, entry in sorted(models.items()):
            for key, label in (("across_replicates", "across replicates"),
                               ("vs_naive", "pooled out-of-fold")):  # fmt: skip
                c = entry.get(key) if isinstance(entry, dict) else None
                if not c or "diff" not in c:
                    continue
                out[(f"Table 1 {dataset}", f"{name} − naive, {label}")] = Diff(
                    float(c["diff"]), _num(c.get("lo")), _num(c.get("hi")),
                    _num(c.get("p_value")), c.get("method", ""))  # fmt: skip
    return out


def siliconet_diffs(reports: Path) -> dict[tuple[str, str], Diff]:
    """(family, comparison) -> Diff for every pair of SiliconNet configurations."""
    path = reports / "siliconet_results.csv"
    if not path.exists():
        return {}
    results = pd.read_csv(path)
    leads = sorted(e for e in results["eval"].unique() if str(e).startswith("DS2"))
    out: dict[tuple[str, str], Diff] = {}
    for label, evals in ((PRIMARY_EVAL, PRIMARY_EVAL), ("DS2 every lead", leads)):
        for r in pairwise_differences(results, evals).itertuples(index=False):
            out[(f"SiliconNet {label} F1", f"{r.b} − {r.a}")] = Diff(
                float(r.diff), float(r.lo), float(r.hi), float(r.p_wilcoxon),
                f"paired over {r.n_seeds} seeds")  # fmt: skip
    return out


def _overlap(a: Diff, b: Diff) -> bool | None:
    if None in (a.lo, a.hi, b.lo, b.hi) or not all(
        math.isfinite(v) for v in (a.lo, a.hi, b.lo, b.hi)
    ):
        return None
    return a.lo <= b.hi and b.lo <= a.hi


def verdict(a: Diff | None, b: Diff | None, alpha: float) -> str:
    """The verdict: "holds", "consistent", "contradiction" or "only in one run"."""
    if a is None or b is None:
        return "only in one run"
    sig_a, sig_b = a.significant(alpha), b.significant(alpha)
    if not (sig_a or sig_b):
        return "consistent"
    same_sign = (a.diff > 0) == (b.diff > 0) and a.diff != 0 and b.diff != 0
    overlap = _overlap(a, b)
    if not same_sign or overlap is False:
        return "contradiction"
    return "holds" if sig_a and sig_b else "consistent"


def compare(run_a: Path, run_b: Path, alpha: float = 0.05) -> list[Check]:
    """Every comparison either run reports, with its verdict."""
    a = {**table1_diffs(run_a), **siliconet_diffs(run_a)}
    b = {**table1_diffs(run_b), **siliconet_diffs(run_b)}
    return [Check(fam, comp, a.get((fam, comp)), b.get((fam, comp)),
                  verdict(a.get((fam, comp)), b.get((fam, comp)), alpha))
            for fam, comp in sorted(set(a) | set(b))]  # fmt: skip


def _fmt(d: Diff | None) -> str:
    if d is None:
        return "–"
    ci = "" if d.lo is None or d.hi is None else f" [{d.lo:+.3f}, {d.hi:+.3f}]"
    p = "" if d.p is None or not math.isfinite(d.p) else f", p = {d.p:.3g}"
    return f"{d.diff:+.3f}{ci}{p}"


def markdown(checks: list[Check], name_a: str, name_b: str, alpha: float) -> str:
    """The comparison table and the conclusions that hold in both runs."""
    lines = [f"# Two draws of the default pipeline: {name_a} vs {name_b}", "",
             f"Signed differences with 95 % intervals; significant at α = {alpha}. A "
             "contradiction: one run significant and the other of opposite sign or with a "
             "disjoint interval.", "",
             f"| comparison | | {name_a} | {name_b} | verdict |", "|---|---|---|---|---|"]  # fmt: skip
    for c in checks:
        lines.append(f"| {c.family} | {c.comparison} | {_fmt(c.a)} | {_fmt(c.b)} | {c.verdict} |")
    holds = [c for c in checks if c.verdict == "holds"]
    bad = [c for c in checks if c.verdict == "contradiction"]
    lines += ["", f"**{len(checks)} comparisons: {len(holds)} hold in both runs, "
              f"{len(bad)} contradictions.**", ""]  # fmt: skip
    for c in holds:
        lines.append(f"- holds: {c.family}, {c.comparison} ({'+' if c.a.diff > 0 else '−'})")
    for c in bad:
        lines.append(f"- contradiction: {c.family}, {c.comparison}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--name-a", default=None)
    parser.add_argument("--name-b", default=None)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("reports/replication"),
                        help="writes OUT.md and OUT.json")  # fmt: skip
    args = parser.parse_args(argv)
    ra, rb = reports_dir(args.run_a), reports_dir(args.run_b)
    for r in (ra, rb):
        if not (r / "metrics.json").exists():
            print(f"error: no metrics.json in {r}: run `dvc repro` there first", file=sys.stderr)
            return 2
    checks = compare(ra, rb, args.alpha)
    name_a, name_b = args.name_a or str(args.run_a), args.name_b or str(args.run_b)
    text = markdown(checks, name_a, name_b, args.alpha)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"runs": [name_a, name_b], "alpha": args.alpha,
         "checks": [asdict(c) for c in checks]}, indent=2) + "\n")  # fmt: skip
    print(text)
    return 1 if any(c.verdict == "contradiction" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
