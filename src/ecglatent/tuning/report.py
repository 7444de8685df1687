"""The study report: trials table, best params, optimisation history and the Pareto front.

Written under ``tune.reports_dir/<study>/`` and logged to the study's parent MLflow run.
The Pareto front (validation AUROC up, reconstruction MSE down) is drawn for every study: a
two-objective study's front is Optuna's own; a single-objective study's is the
non-dominated set of its complete trials, whose MSE each trial records as well.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from ecglatent.config import Params  # noqa: E402
from ecglatent.errors import EcglatentError  # noqa: E402

from .space import Settings, dvc_args, model_keys, settings_from  # noqa: E402

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def is_multi(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def auroc_of(t: FrozenTrial) -> float:
    return float(t.values[0])


def mse_of(t: FrozenTrial) -> float | None:
    if t.values and len(t.values) > 1:
        return float(t.values[1])
    value = t.user_attrs.get("val_mse")
    return float(value) if value is not None else None


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (lower-case state names), plus ``finished`` = complete + pruned."""
    out = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name.lower()] += 1
    out["finished"] = out["complete"] + out["pruned"]
    return out


def pareto(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Non-dominated trials for (AUROC max, MSE min), sorted by AUROC (best first)."""
    pts = [(t, auroc_of(t), mse_of(t)) for t in trials if mse_of(t) is not None]
    front = [
        t for t, a, m in pts
        if not any((a2 >= a and m2 <= m) and (a2 > a or m2 < m) for _, a2, m2 in pts)
    ]  # fmt: skip
    return sorted(front, key=lambda t: (-auroc_of(t), mse_of(t)))


def front_of(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto front, best AUROC first: Optuna's for two objectives, else computed."""
    if is_multi(study):
        return sorted(study.best_trials, key=lambda t: (-auroc_of(t), mse_of(t)))
    return pareto(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def pick_best(study: optuna.Study) -> FrozenTrial:
    """The best trial: highest mean val AUROC (on the Pareto front for two objectives)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise EcglatentError(
            f"study {study.study_name!r} has no complete trial yet; run `ecglatent tune "
            f"--study {study.study_name} --n-trials N` first"
        )
    if is_multi(study):
        return max(study.best_trials, key=lambda t: (auroc_of(t), -(mse_of(t) or 0.0)))
    return study.best_trial


@dataclass(frozen=True)
class Best:
    trial: FrozenTrial
    settings: Settings

    def as_dict(self, study: optuna.Study) -> dict[str, Any]:
        base, tuned = model_keys(self.settings)
        objective = {"val_auroc": auroc_of(self.trial), "val_mse": mse_of(self.trial)}
        return {
            "study": study.study_name,
            "trial": self.trial.number,
            "objective": objective,
            "val_auroc_folds": self.trial.user_attrs.get("val_auroc_folds"),
            "sampled": self.trial.params,
            "settings": self.settings.as_dict(),
            "pipeline": {"pretrain_models": {base: {"latent_dim": self.settings.latent_dim}},
                         "finetune_models": {tuned: {"base": base,
                                                     "latent_pred": self.settings.latent_pred}}},
            "dvc_args": [a for x in dvc_args(self.settings) for a in ("-S", x)],
        }  # fmt: skip


def best_of(study: optuna.Study, params: Params) -> Best:
    trial = pick_best(study)
    return Best(trial, settings_from(trial.params, params))


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "val_auroc": t.values[0] if t.values else t.user_attrs.get("val_auroc"),
            "val_mse": mse_of(t),
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "worker": t.user_attrs.get("worker"),
            "retry_of": t.system_attrs.get("failed_trial"),
            "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
            "last_step": t.last_step,
        }
        row.update({f"param_{k}": v for k, v in t.params.items()})
        row["latent_pred_used"] = t.user_attrs.get("latent_pred_used")
        rows.append(row)
    return pd.DataFrame(rows)


def history_figure(study: optuna.Study) -> plt.Figure:
    """Mean val AUROC per trial (complete ●, pruned × at its last head AUROC), best so far."""
    fig, ax = plt.subplots(figsize=(7, 4))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    ax.scatter([t.number for t in done], [auroc_of(t) for t in done], label="complete", zorder=3)
    if pruned:
        ys = [t.intermediate_values[t.last_step] for t in pruned if t.last_step is not None]
        xs = [t.number for t in pruned if t.last_step is not None]
        ax.scatter(xs, ys, marker="x", color="grey", label="pruned (last head AUROC)")
    if done:
        order = sorted(done, key=lambda t: t.number)
        best, xs, ys = -1.0, [], []
        for t in order:
            best = max(best, auroc_of(t))
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="C1", label="best so far")
    ax.set(xlabel="trial", ylabel="mean val AUROC (CV folds)",
           title=f"{study.study_name}: optimisation history")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pareto_figure(study: optuna.Study) -> plt.Figure:
    """Val AUROC against val reconstruction MSE of every complete trial; the front joined."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if mse_of(t) is not None]  # fmt: skip
    front = sorted(front_of(study), key=lambda t: mse_of(t) or 0.0)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([mse_of(t) for t in done], [auroc_of(t) for t in done], color="lightgrey",
               edgecolor="grey", label="complete trials")  # fmt: skip
    ax.plot([mse_of(t) for t in front], [auroc_of(t) for t in front], "o-", color="C3",
            label="Pareto front")  # fmt: skip
    for t in front:
        L, Lp = t.params.get("latent_dim", "?"), t.user_attrs.get("latent_pred_used", "?")
        ax.annotate(f"#{t.number} L={L},Lp={Lp}", (mse_of(t), auroc_of(t)), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    kind = "two objectives" if is_multi(study) else "objective: AUROC only"
    ax.set(xlabel="mean val reconstruction MSE (mV²)", ylabel="mean val AUROC",
           title=f"{study.study_name}: AUROC vs reconstruction ({kind})")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def wall_time(study: optuna.Study) -> float | None:
    """Seconds during which at least one trial ran (the union of the trials' intervals), so
    the pauses between a stopped and a resumed command do not count."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in study.get_trials(deepcopy=False)
                   if t.datetime_start and t.datetime_complete)  # fmt: skip
    if not spans:
        return None
    total, (start, end) = 0.0, spans[0]
    for s, e in spans[1:]:
        if s > end:
            total += (end - start).total_seconds()
            start, end = s, e
        else:
            end = max(end, e)
    return total + (end - start).total_seconds()


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(study: optuna.Study, params: Params, meta: dict[str, Any] | None = None) -> str:
    """The report as markdown: counts, best trial, `dvc exp run` line, top trials, front."""
    meta = meta or {}
    c = counts(study)
    best = best_of(study, params)
    s = best.settings
    wall = wall_time(study)
    busy = sum(t.duration.total_seconds() for t in study.get_trials(deepcopy=False)
               if t.duration)  # fmt: skip
    directions = ", ".join(f"{m} ({d.name.lower()})" for m, d in
                           zip(study.metric_names or ["val_auroc", "val_mse"], study.directions,
                               strict=False))  # fmt: skip
    t = params.tune
    lines = [
        f"# Optuna study `{study.study_name}`",
        "",
        f"- Objective: {directions}; mean over {t.n_folds} CV fold(s) of `{t.dataset}` "
        f"(pretrain {t.pretrain_epochs} + head {t.finetune_head_epochs} + fine-tune "
        f"{t.finetune_epochs} epochs per fold; {type(study.sampler).__name__}, "
        f"{type(study.pruner).__name__}).",
        f"- Trials: {c['finished']} finished ({c['complete']} complete, {c['pruned']} pruned), "
        f"{c['fail']} failed, {c['running']} running, {c['waiting']} waiting.",
        f"- Wall time with trials running (all commands, pauses excluded): "
        f"{_fmt(wall / 60 if wall else None, 3)} min; trial time summed over workers "
        f"{busy / 60:.3g} min.",
    ]
    for key, label in (("command", "Command"), ("storage", "Optuna storage"),
                       ("parent_run_id", "MLflow parent run"), ("model", "Registered model")):  # fmt: skip
        if meta.get(key):
            lines.append(f"- {label}: `{meta[key]}`")
    lines += [
        "",
        f"## Best trial: #{best.trial.number}",
        "",
        f"Mean val AUROC **{auroc_of(best.trial):.4f}** (folds "
        f"{best.trial.user_attrs.get('val_auroc_folds')}), val reconstruction MSE "
        f"{_fmt(mse_of(best.trial))} mV².",
        "",
        "| L | L_pred | β | γ | pretrain lr | fine-tune lr |",
        "|---|---|---|---|---|---|",
        f"| {s.latent_dim} | {s.latent_pred} | {s.beta:.4g} | {s.gamma:.4g} | "
        f"{s.pretrain_lr:.3g} | {s.finetune_lr:.3g} |",
        "",
        "Into the pipeline's params (`ecglatent tune-best --study "
        f"{study.study_name} --dvc-args`):",
        "",
        "```",
        dvc_command(s),
        "```",
        "",
    ]
    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                  key=lambda t: -auroc_of(t))  # fmt: skip
    lines += ["## Complete trials (best first)", "",
              "| # | val AUROC | val MSE | L | L_pred | β | γ | pretrain lr | fine-tune lr | s |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for tr in done:
        x = settings_from(tr.params, params)
        dur = tr.duration.total_seconds() if tr.duration else None
        lines.append(f"| {tr.number} | {auroc_of(tr):.4f} | {_fmt(mse_of(tr))} | {x.latent_dim} | "
                     f"{x.latent_pred} | {x.beta:.3g} | {x.gamma:.3g} | {x.pretrain_lr:.2g} | "
                     f"{x.finetune_lr:.2g} | {_fmt(dur, 3)} |")  # fmt: skip
    front = front_of(study)
    lines += ["", "## Pareto front (val AUROC ↑, val reconstruction MSE ↓)", "",
              "| # | val AUROC | val MSE | L | L_pred | β |", "|---|---|---|---|---|---|"]  # fmt: skip
    for tr in front:
        x = settings_from(tr.params, params)
        lines.append(f"| {tr.number} | {auroc_of(tr):.4f} | {_fmt(mse_of(tr))} | "
                     f"{x.latent_dim} | {x.latent_pred} | {x.beta:.3g} |")  # fmt: skip
    lines += ["", "![optimisation history](history.png)", "", "![Pareto front](pareto.png)", ""]
    return "\n".join(lines)


def dvc_command(s: Settings) -> str:
    """The `dvc exp run` line that reproduces ``s`` through the pipeline (shell-quoted)."""
    return shlex.join(["dvc", "exp", "run", *[a for x in dvc_args(s) for a in ("-S", x)]])


def write_report(study: optuna.Study, params: Params, out_dir: Path,
                 meta: dict[str, Any] | None = None) -> dict[str, Path]:  # fmt: skip
    """All report files of ``study`` under ``out_dir``; returns them by name.

    ``meta``: the command, storage, MLflow parent run and registered model for the markdown.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("report.md", "trials.csv", "best.json",
                                               "history.png", "pareto.png", "pareto.csv",
                                               "summary.json")}  # fmt: skip
    trials_table(study).to_csv(paths["trials.csv"], index=False)
    best = best_of(study, params)
    paths["best.json"].write_text(json.dumps(best.as_dict(study), indent=2) + "\n")
    front = front_of(study)
    pd.DataFrame([{"number": t.number, "val_auroc": auroc_of(t), "val_mse": mse_of(t),
                   **settings_from(t.params, params).as_dict()}
                  for t in front]).to_csv(
        paths["pareto.csv"], index=False)  # fmt: skip
    summary = {"study": study.study_name, "directions": [d.name.lower() for d in study.directions],
               "trials": counts(study), "wall_time_s": wall_time(study),
               "best": best.as_dict(study),
               "pareto_front": [{"trial": t.number, "val_auroc": auroc_of(t),
                                 "val_mse": mse_of(t)} for t in front]}  # fmt: skip
    paths["summary.json"].write_text(json.dumps(summary, indent=2) + "\n")
    for name, make in (("history.png", history_figure), ("pareto.png", pareto_figure)):
        fig = make(study)
        fig.savefig(paths[name], dpi=100)
        plt.close(fig)
    paths["report.md"].write_text(markdown(study, params, meta))
    return paths
