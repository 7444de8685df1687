"""The SiliconNet report (paper Tables 2 and 4 plus the anchor), its metrics JSON, MLflow logging."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

from ecglatent.config import Params, SiliconConfig
from ecglatent.evaluation.beat_metrics import (
    CONFIG_ORDER,
    BeatMetrics,
    siliconet_markdown,
    summarise,
)
from ecglatent.pipeline.siliconet_data import SiliconPaths

# Paper Table 2, DS2 MLII median F1 per configuration, and the anchor: the best of them.
PAPER_DS2_MEDIAN: dict[str, float] = {
    "randfeatures": 0.49, "randinit": 0.90, "pretrained": 0.87, "finetune": 0.65, "2lr": 0.89,
}  # fmt: skip
PAPER_INCART_LEADS_MEDIAN: dict[str, float] = {
    "randfeatures": 0.31, "randinit": 0.53, "pretrained": 0.64, "finetune": 0.74, "2lr": 0.72,
}  # fmt: skip
ANCHOR: tuple[float, float] = (0.89, 0.90)


def primary_eval(cfg: SiliconConfig) -> str:
    return f"DS2 {cfg.train_lead}"


def gap_to_anchor(f1: float) -> float:
    """Signed distance to the anchor interval: 0 inside, negative below 0.89, positive above 0.90."""
    if not math.isfinite(f1):
        return float("nan")
    return min(0.0, f1 - ANCHOR[0]) + max(0.0, f1 - ANCHOR[1])


CORPUS_NAMES = {"ptb-xl": "PTB-XL", "challenge-2021": "CinC 2021"}


@dataclass(frozen=True)
class ReportContext:
    """What the run was: sizes, epochs, seeds, device; for the report's header."""

    primary: str
    seeds: tuple[int, ...]
    max_epochs: int
    patience: int
    n_train: int
    n_val: int
    test_sizes: dict[str, int]
    max_test_beats: int
    device: str
    pretrain_beats: int | None
    pretrain_epochs: int | None
    pretrain_max_epochs: int
    frozen_max_epochs: int = 0
    # records per lead of DS2's second channel, from the beats stage's summary
    second_channel: dict[str, int] = field(default_factory=dict)
    pretrain_corpus: str = "PTB-XL"

    @classmethod
    def build(cls, params: Params, paths: SiliconPaths, index: pd.DataFrame,
              test_sizes: dict[str, int], device: torch.device) -> ReportContext:  # fmt: skip
        cfg = params.siliconet
        n_pre = ep_pre = None
        if paths.simsiam.exists():
            saved = torch.load(paths.simsiam, map_location="cpu", weights_only=False)
            n_pre, ep_pre = int(saved["config"]["n_train"]), len(saved["history"])
        summary = json.loads(paths.summary.read_text()) if paths.summary.exists() else {}
        other = summary.get("ds2_other", {}).get("leads", {})
        return cls(primary_eval(cfg), tuple(sorted(set(index["seed"]))), cfg.downstream.max_epochs,
                   cfg.downstream.patience, int(index["n_train"].max()), int(index["n_val"].max()),
                   test_sizes, cfg.max_test_beats, str(device), n_pre, ep_pre,
                   cfg.pretrain.max_epochs, cfg.downstream.frozen_max_epochs,
                   {str(k): int(v) for k, v in other.items()},
                   " + ".join(CORPUS_NAMES.get(d, d) for d in cfg.pretrain_databases))  # fmt: skip


def _f(x: float | None, d: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def _configs(results: pd.DataFrame) -> list[str]:
    present = set(results["config"])
    return [c for c in CONFIG_ORDER if c in present] + sorted(present - set(CONFIG_ORDER))


def _primary_summary(results: pd.DataFrame, primary: str, config: str):
    return summarise(results.loc[(results.config == config) & (results["eval"] == primary), "f1"])


def markdown(results: pd.DataFrame, index: pd.DataFrame, champion: dict[str, Any],
             ctx: ReportContext) -> str:  # fmt: skip
    """reports/siliconet.md: settings, the anchor and the gap, Tables 2 and 4, champion, notes."""
    configs = _configs(results)
    medians = {c: _primary_summary(results, ctx.primary, c).median for c in configs}
    best = max(configs, key=lambda c: -1 if not math.isfinite(medians[c]) else medians[c])
    test = ", ".join(f"{k} {v}" for k, v in ctx.test_sizes.items())
    pre = ("" if ctx.pretrain_beats is None else
           f"SimSiam on {ctx.pretrain_beats} {ctx.pretrain_corpus} 12-lead beats for {ctx.pretrain_epochs} "
           f"epoch(s) (max {ctx.pretrain_max_epochs}); ")  # fmt: skip
    lines = [
        "# SiliconNet: N vs V beat classification on MIT-BIH (Aublin et al.)",
        "",
        f"This run: {pre}downstream on {ctx.n_train} DS1 training beats per model (stratified, "
        f"seed-dependent) and {ctx.n_val} DS1 validation beats, at most {ctx.max_epochs} epochs "
        + (f"({ctx.frozen_max_epochs} for the frozen embeddings of randfeatures and finetune, "
           if ctx.frozen_max_epochs and ctx.frozen_max_epochs != ctx.max_epochs else "(")
        + f"patience {ctx.patience}), seeds {list(ctx.seeds)}, device {ctx.device}. Test beats "
        f"scored: {test}"
        + (f" (a sample of ~{ctx.max_test_beats} per DS2 set, stratified by lead and class; "
           "`siliconet.max_test_beats: 0` scores all)." if ctx.max_test_beats else " (all).")
        + " Epoch, threshold and the registered model are chosen on DS1 validation only.",
        "",
        f"**Anchor.** The paper reports a DS2 {ctx.primary.split()[-1]} median F1 of "
        f"{ANCHOR[0]:.2f}–{ANCHOR[1]:.2f} (randinit 0.90, 2lr 0.89; Table 2). Here the best "
        f"configuration, {best}, reaches {_f(medians[best])}: "
        + _gap_words(gap_to_anchor(medians[best]))
        + ". Per configuration:",
        "",
        "| configuration | paper DS2 median | this run median (Q1–Q3) | Δ vs paper | gap to 0.89–0.90 |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for c in configs:
        s = _primary_summary(results, ctx.primary, c)
        paper = PAPER_DS2_MEDIAN.get(c, float("nan"))
        delta = s.median - paper if math.isfinite(paper) else float("nan")
        lines.append(f"| {c} | {_f(paper)} | {_f(s.median)} ({_f(s.q1)}–{_f(s.q3)}) | "
                     f"{'n/a' if not math.isfinite(delta) else f'{delta:+.2f}'} | "
                     f"{_gap(gap_to_anchor(s.median))} |")  # fmt: skip
    ds2 = results[results["eval"].str.startswith("DS2")]
    ds2_leads = [
        e for e in dict.fromkeys(ds2["eval"]) if e != ctx.primary and not e.endswith(" other")
    ]
    lines += ["", siliconet_markdown(ds2, ctx.primary, ds2_leads,
                                     title="DS2: MLII and the other channel per lead").rstrip()]  # fmt: skip
    incart = results[results["eval"].str.startswith("INCART")]
    if len(incart):
        leads = [e for e in dict.fromkeys(incart["eval"]) if not e.endswith(" other")]
        both = pd.concat([results[results["eval"] == ctx.primary], incart])
        lines += ["", siliconet_markdown(both, ctx.primary, leads,
                                         title="INCART: every lead (paper Tables 2 and 4)").rstrip()]  # fmt: skip
        lines += ["", "Paper's INCART leads median: " + ", ".join(
            f"{c} {PAPER_INCART_LEADS_MEDIAN[c]:.2f}" for c in configs if c in PAPER_INCART_LEADS_MEDIAN)]  # fmt: skip
    lines += ["", "## Registered model", ""]
    lines.append(
        f"`{champion['config']}` seed {champion['seed']} has the best DS1 validation F1 "
        f"({_f(champion['val_f1'], 3)}; DS2 {_f(champion['ds2_f1'], 3)}). "
        + (f"Registered as version {champion['version']}"
           + (" and made `champion`." if champion.get("is_champion")
              else ", not made `champion`: the current champion's validation F1 is at least as high.")
           if champion.get("version") else "Not registered (`tracking.register: false`).")
    )  # fmt: skip
    lines += ["", "## What these numbers can and cannot show", ""]
    lines += [f"- {n}" for n in limits(ctx)]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in _notes(results, index, ctx)]
    return "\n".join(lines) + "\n"


def limits(ctx: ReportContext, n_ds2_records: int = 22) -> list[str]:
    """What the SiliconNet figures rest on (issue 12): units of uncertainty and their limits."""
    n = len(ctx.seeds)
    shared = []
    if ctx.pretrain_beats is not None:
        shared = [
            "Every seed's pretrained, finetune and 2lr models start from the same SimSiam "
            "pretraining run: the spreads and tests do not include that run's own randomness, so "
            "a difference involving those configurations describes this one pretrained "
            "embedding, and another pretraining run can move it by more than the seeds do."
        ]
    return [
        f"Spreads (Q1–Q3) and paired tests are over {n} seed(s): they show how much training "
        "randomness (initialisation, the seed's DS1 sample, batch order) moves DS2 F1. They do "
        f"not cover the choice of patients: DS2 is {n_ds2_records} records (patients), and one "
        "model's F1 pools the scored beats of those records, so the records with many V beats "
        "weigh most.",
        *shared,
        "A configuration that beats another across seeds does so on these patients; whether it "
        "would on other patients, devices or leads is not tested here. No correction for the "
        "number of pairwise comparisons.",
        "DS1 validation beats come from the training patients (the paper's 50/50 beat split): "
        "validation F1 ranks models for the champion but overstates DS2 performance.",
        f"The paper trains on all DS1 beats with 10 seeds; this run uses {ctx.n_train} training "
        f"beats per model and {n} seed(s), so a gap to the paper mixes training size and "
        "budget with the method itself.",
    ]


def _gap(g: float) -> str:
    return "n/a" if not math.isfinite(g) else ("within" if g == 0 else f"{g:+.2f}")


def _gap_words(g: float) -> str:
    if not math.isfinite(g):
        return "no DS2 score"
    if g == 0:
        return "within the anchor"
    return f"{abs(g):.2f} {'below' if g < 0 else 'above'} it"


def _notes(results: pd.DataFrame, index: pd.DataFrame, ctx: ReportContext) -> list[str]:
    notes = [
        "DS1 is split 50/50 by beat (the paper's split): both halves hold the same patients, so "
        "validation F1 is optimistic and DS2 (other patients) is the real test.",
        f"Validation F1 over all models: median {_f(float(np.median(index['val_f1'])), 3)}; "
        f"best epochs {sorted(set(index['best_epoch'].astype(int)))} (0-based) of at most "
        f"{max(ctx.max_epochs, ctx.frozen_max_epochs)}.",
    ]
    other = results[results["eval"].str.startswith("DS2") & ~results["eval"].isin(
        [ctx.primary, "DS2 other"])]  # fmt: skip
    if len(other):
        undefined = sorted(set(other.loc[other["tp"] + other["fn"] == 0, "eval"]))
        if undefined:
            notes.append(f"{', '.join(undefined)}: no V beat in those DS2 records (or in the "
                         "scored sample), so F1 is undefined (n/a).")  # fmt: skip
    if ctx.second_channel:
        notes.append("DS2's second channel: " + ", ".join(
            f"{lead} in {n} record(s)" for lead, n in sorted(ctx.second_channel.items()))
            + (" (V4 is the second channel of DS1's record 124 only)"
               if "V4" not in ctx.second_channel else "") + ".")  # fmt: skip
    n = len(ctx.seeds)
    floor = 2.0 / 2**n if n else float("nan")
    notes.append(f"Wilcoxon signed-rank tests pair configurations by seed ({n} pairs on DS2 "
                 f"{ctx.primary.split()[-1]}): with {n} pairs the smallest possible two-sided p "
                 f"is {_f(floor, 4)}"
                 + (", so p < 0.05 needs at least 6 seeds (the GPU profile runs 10)"
                    if floor >= 0.05 else "")
                 + ". The per-lead test averages the leads within each seed first: the seed, "
                   "not seed × lead, is the unit.")  # fmt: skip
    return notes


def metrics_json(results: pd.DataFrame, index: pd.DataFrame, champion: dict[str, Any],
                 ctx: ReportContext) -> dict[str, Any]:  # fmt: skip
    """reports/siliconet_metrics.json: per configuration DS2 median/Q1/Q3 and per-lead medians."""
    out: dict[str, Any] = {"anchor": {"low": ANCHOR[0], "high": ANCHOR[1]}, "configs": {}}
    best_c, best_m = None, -1.0
    for c in _configs(results):
        sub = results[results.config == c]
        s = _primary_summary(results, ctx.primary, c)
        entry: dict[str, Any] = {
            "ds2_f1_median": s.median, "ds2_f1_q1": s.q1, "ds2_f1_q3": s.q3,
            "ds2_f1_mean": s.mean, "ds2_f1_std": s.std, "n_seeds": s.n,
            "gap_to_anchor": gap_to_anchor(s.median), "paper_ds2_median": PAPER_DS2_MEDIAN.get(c),
            "val_f1_median": float(np.median(index.loc[index.config == c, "val_f1"])),
            "per_lead_f1_median": {},
        }  # fmt: skip
        for ev in dict.fromkeys(sub["eval"]):
            if ev != ctx.primary:
                entry["per_lead_f1_median"][ev] = summarise(sub.loc[sub["eval"] == ev, "f1"]).median
        out["configs"][c] = entry
        if math.isfinite(s.median) and s.median > best_m:
            best_c, best_m = c, s.median
    out["best_config"] = best_c
    out["best_ds2_f1_median"] = best_m if best_c else None
    out["gap_to_anchor"] = gap_to_anchor(best_m) if best_c else None
    out["champion"] = {
        k: champion.get(k) for k in ("config", "seed", "val_f1", "ds2_f1", "version")
    }
    out["test_beats"] = dict(ctx.test_sizes)
    return out


def _confusion_figure(matrices: dict[str, np.ndarray]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items(), strict=True):
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["N", "V"], yticklabels=["N", "V"],
               xlabel="predicted", ylabel="true", title=name)  # fmt: skip
    fig.tight_layout()
    return fig


def log_confusions(metrics: dict[str, BeatMetrics], artifact_stem: str) -> None:
    """Confusion matrices ([[TN, FP], [FN, TP]], rows true N/V) as JSON and PNG artifacts."""
    import matplotlib.pyplot as plt

    mats = {name: m.confusion for name, m in metrics.items()}
    mlflow.log_dict({"labels": ["N", "V"], "layout": "rows true, columns predicted",
                     "matrices": {k: v.tolist() for k, v in mats.items()}},
                    f"{artifact_stem}.json")  # fmt: skip
    fig = _confusion_figure(mats)
    mlflow.log_figure(fig, f"{artifact_stem}.png")
    plt.close(fig)


def _key(eval_name: str) -> str:
    return eval_name.replace(" ", "_")


def test_metrics(rows: list[dict[str, object]]) -> dict[str, float]:
    """``test/<set or lead>/<f1|se|ppv>`` of one model's test rows; undefined scores left out."""
    metrics = {}
    for r in rows:
        for k in ("f1", "se", "ppv"):
            v = float(r[k])  # type: ignore[arg-type]
            if math.isfinite(v):
                metrics[f"test/{_key(str(r['eval']))}/{k}"] = v
    return metrics


def log_test_metrics(rows: list[dict[str, object]], primary: str) -> None:
    """Test rows of one model into its run: F1/Se/PPV per set and lead, confusion matrices."""
    import matplotlib.pyplot as plt

    mlflow.log_metrics(test_metrics(rows))
    mats = {str(r["eval"]): np.array([[r["tn"], r["fp"]], [r["fn"], r["tp"]]], dtype=np.int64)
            for r in rows}  # fmt: skip
    mlflow.log_dict({"labels": ["N", "V"], "layout": "rows true, columns predicted",
                     "matrices": {k: v.tolist() for k, v in mats.items()}}, "confusion/test.json")  # fmt: skip
    # the figure shows the pooled sets; every lead's matrix is in the JSON
    fig = _confusion_figure({k: v for k, v in mats.items() if k == primary or k.endswith(" other")})
    mlflow.log_figure(fig, "confusion/test.png")
    plt.close(fig)


def log_summary(paths: SiliconPaths, metrics: dict[str, Any]) -> None:
    """The final tables into the evaluate run: report, long results, metrics, medians."""
    for p in (paths.report, paths.results, paths.metrics):
        mlflow.log_artifact(str(p), artifact_path="tables")
    flat = {f"ds2_f1_median/{c}": v["ds2_f1_median"] for c, v in metrics["configs"].items()
            if v["ds2_f1_median"] is not None and math.isfinite(v["ds2_f1_median"])}  # fmt: skip
    if flat:
        mlflow.log_metrics(flat)
    mlflow.log_artifact(str(paths.normaliser), artifact_path="tables")
