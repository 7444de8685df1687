"""The study's objective: the β-VAE recipe trained and probed on each CV fold.

For fold k: pretrain (β, pretrain_lr) → fine-tune the head → fine-tune end to end (γ,
finetune_lr, L_pred) → l1/l2 logistic probes on the fold-train latents + RR, scored on the
fold-val items. The value is the mean fold-val AUROC (and, for the two-objective study, the
mean fold-val reconstruction MSE in mV², the paper's trade-off). The head's fold-val AUROC
after each end-to-end epoch is the intermediate value the pruner sees.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ecglatent.config import Params  # noqa: E402
from ecglatent.datasets.arrays import BeatArrays  # noqa: E402
from ecglatent.errors import EcglatentError  # noqa: E402
from ecglatent.evaluation.baselines import reconstruction_metrics  # noqa: E402
from ecglatent.evaluation.probes import (  # noqa: E402
    FeatureEvaluation,
    evaluate_features,
    probe_latents,
)
from ecglatent.models.registry import build_vae  # noqa: E402
from ecglatent.models.small_vae import TaskVAE  # noqa: E402
from ecglatent.tracking import runs  # noqa: E402
from ecglatent.training.normalise import Normaliser  # noqa: E402
from ecglatent.training.trainer import PhaseSpec, TensorSet, fit_phase  # noqa: E402

from .mlflow_log import trial_run  # noqa: E402
from .space import Settings, suggest  # noqa: E402

log = logging.getLogger(__name__)
PROBE_FOLDS = 5  # inner CV folds of evaluate_features: the minority class needs this many items
PhaseCallback = Callable[[str, TaskVAE, dict[str, float]], None]


@dataclass
class FoldData:
    """One CV fold on the device: train/val tensors (normalised) and what the probe needs."""

    fold: int
    norm: Normaliser
    train: TensorSet
    val: TensorSet
    x_val: np.ndarray  # fold-val beats in mV, for the reconstruction MSE
    groups_train: np.ndarray  # patient ids: the probe's inner CV never splits a patient
    device: torch.device


def n_folds_of(params: Params, data: BeatArrays) -> int:
    """``tune.n_folds`` capped at the folds the split stage made (MIT-BIH has one)."""
    available = data.fold_val.shape[0] if data.fold_val.size else 1
    if params.tune.n_folds < 1:
        raise EcglatentError("params.yaml: tune.n_folds must be >= 1")
    if params.tune.n_folds > available:
        log.warning("tune.n_folds=%d but %s has %d fold(s): using %d", params.tune.n_folds,
                    data.name, available, available)  # fmt: skip
    return min(params.tune.n_folds, available)


def check_fold(data: BeatArrays, fold: int) -> BeatArrays:
    """Fold ``fold``'s roles; refuses a fold the probe cannot score, before training is spent."""
    d = data.with_fold(fold)
    where = f"{data.name} fold {fold}"
    for name, need in (("train", PROBE_FOLDS), ("val", 1)):
        y = d.y[d.role == name]
        y = y[np.isfinite(y)]
        minority = int(min((y == 1).sum(), (y == 0).sum())) if y.size else 0
        if minority < need:
            raise EcglatentError(
                f"{where}: its {name} part has {minority} item(s) of its minority class, the "
                f"probe needs >= {need}; use more records (data.subset) or another task "
                f"(split.positive_superclasses)"
            )
    return d


def prepare_fold(params: Params, data: BeatArrays, fold: int, device: torch.device) -> FoldData:
    """Fold ``fold``'s roles on the device, scaled by a normaliser fitted on its train part."""
    d = check_fold(data, fold)
    tr = d.role == "train"
    va = d.role == "val"
    norm = Normaliser.fit(d.x[tr], d.rr[tr])
    tr_idx, va_idx = np.flatnonzero(tr), np.flatnonzero(va)
    cap = params.vae.max_val_items.get(d.name, 0)
    if cap and len(va_idx) > cap:
        va_idx = np.sort(np.random.default_rng(params.seed).choice(va_idx, cap, replace=False))

    def tensors(idx: np.ndarray) -> TensorSet:
        return TensorSet.from_numpy(norm.x(d.x[idx]), norm.rr(d.rr[idx]), d.y[idx], device)

    return FoldData(fold, norm, tensors(tr_idx), tensors(va_idx), np.asarray(d.x[va_idx]),
                    d.groups[tr_idx], device)  # fmt: skip


def phase_spec(params: Params, phase: str, lr: float, epochs: int, beta: float, gamma: float,
               cuda: bool) -> PhaseSpec:  # fmt: skip
    v = params.vae
    return PhaseSpec(phase=phase, lr=lr, max_epochs=epochs, beta=beta, gamma=gamma,
                     batch_size=v.batch_size, weight_decay=v.weight_decay, grad_clip=v.grad_clip,
                     patience=v.patience, max_train_items=v.max_train_items.get(params.tune.dataset, 0),
                     balanced=phase != "pretrain", amp=v.amp and cuda)  # fmt: skip


def train_vae(params: Params, s: Settings, fd: FoldData, ckpt_dir: Path,
              on_epoch: PhaseCallback | None = None, progress: bool = False) -> TaskVAE:  # fmt: skip
    """Pretrain, fine-tune the head, fine-tune end to end: the pipeline's recipe at ``s``.

    Epoch caps come from ``tune.*_epochs``; patience, batch size and the head's learning rate
    from ``vae``. Returns the fine-tuned model (best validation epoch of each phase).
    """
    t, v = params.tune, params.vae
    n_leads, n_samples = int(fd.train.x.shape[1]), int(fd.train.x.shape[2])
    cuda = fd.device.type == "cuda"
    torch.manual_seed(params.seed)
    model = build_vae(v.arch, n_leads, n_samples, s.latent_dim, None, v.dropout).to(fd.device)

    def fit(m: TaskVAE, phase: str, lr: float, epochs: int, gamma: float) -> None:
        if epochs <= 0:
            return
        cb = (lambda row: on_epoch(phase, m, row)) if on_epoch else None
        fit_phase(m, fd.train, fd.val, phase_spec(params, phase, lr, epochs, s.beta, gamma, cuda),
                  ckpt_dir / f"{phase}.ckpt", params.seed, cb, progress)  # fmt: skip

    fit(model, "pretrain", s.pretrain_lr, t.pretrain_epochs, 0.0)
    # As the finetune stage does: same weights, plus a fresh head on the first L_pred latents.
    torch.manual_seed(params.seed)
    tuned = build_vae(v.arch, n_leads, n_samples, s.latent_dim, s.latent_pred, v.dropout)
    missing, unexpected = tuned.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing), (missing, unexpected)
    tuned = tuned.to(fd.device)
    fit(tuned, "finetune_head", v.finetune_head.lr, t.finetune_head_epochs, s.gamma)
    fit(tuned, "finetune", s.finetune_lr, t.finetune_epochs, s.gamma)
    return tuned


def encode(model: TaskVAE, ts: TensorSet, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and reconstructions (decoded from the means), eval mode, on the host."""
    model.eval()
    mus, recs = [], []
    with torch.no_grad():
        for s in range(0, len(ts), batch):
            mu, _ = model.encode(ts.x[s : s + batch])
            mus.append(mu.float().cpu().numpy())
            recs.append(model.decode(mu).float().cpu().numpy())
    return np.concatenate(mus), np.concatenate(recs)


def head_auroc(model: TaskVAE, ts: TensorSet) -> float:
    """AUROC of the prediction head on ``ts`` (0.5 when it holds one class only)."""
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(ts.x)
        logit = model.predict_logit(mu, ts.rr)
    y = ts.y.cpu().numpy()
    ok = np.isfinite(y)
    if logit is None or len(np.unique(y[ok])) < 2:
        return 0.5
    score = logit.float().cpu().numpy()[ok]
    return float(roc_auc_score(y[ok], score)) if np.isfinite(score).all() else 0.5


def features(model: TaskVAE, ts: TensorSet) -> tuple[np.ndarray, np.ndarray]:
    """Probe features (latent means + normalised RR) and reconstructions of ``ts``.

    Split-task models contribute their ``L_pred`` prediction latents only, as in `evaluate`.
    """
    mu, rec = encode(model, ts)
    return np.hstack([probe_latents(mu, model.latent_pred), ts.rr.cpu().numpy()]), rec


def score_fold(params: Params, model: TaskVAE, fd: FoldData) -> tuple[dict[str, float],
                                                                      FeatureEvaluation]:  # fmt: skip
    """Fold-val AUROC of the probe fitted on fold-train features, and reconstruction quality."""
    f_tr, _ = features(model, fd.train)
    f_va, rec = features(model, fd.val)
    y_tr, y_va = fd.train.y.cpu().numpy(), fd.val.y.cpu().numpy()
    ok_tr, ok_va = np.isfinite(y_tr), np.isfinite(y_va)
    with warnings.catch_warnings():
        # liblinear at the extreme ends of the C grid; inner CV does not pick those C anyway.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ev = evaluate_features(f_tr[ok_tr], y_tr[ok_tr], f_va[ok_va], y_va[ok_va],
                               seed=params.seed, n_folds=PROBE_FOLDS,
                               groups=fd.groups_train[ok_tr])  # fmt: skip
    mse, corr = reconstruction_metrics(fd.x_val, fd.norm.x_inverse(rec))
    return {"auroc": ev.best.auroc.auc, "mse": mse, "corr": corr}, ev


def curves_figure(rows: list[dict[str, Any]]) -> plt.Figure:
    """Validation loss per phase (one line per fold) and the head's AUROC while fine-tuning."""
    phases = ("pretrain", "finetune_head", "finetune")
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, phase in zip(axes, phases, strict=False):
        for fold in sorted({r["fold"] for r in rows}):
            pts = [r for r in rows if r["fold"] == fold and r["phase"] == phase]
            ax.plot([r["epoch"] for r in pts], [r["val_loss"] for r in pts], marker=".",
                    label=f"fold {fold}")  # fmt: skip
        ax.set(title=f"{phase}: val loss", xlabel="epoch")
    ax = axes[-1]
    for fold in sorted({r["fold"] for r in rows}):
        pts = [r for r in rows if r["fold"] == fold and "val_head_auroc" in r]
        ax.plot([r["epoch"] for r in pts], [r["val_head_auroc"] for r in pts], marker=".",
                label=f"fold {fold}")  # fmt: skip
    ax.set(title="finetune: head val AUROC", xlabel="epoch", ylim=(0, 1))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


class Objective:
    """Callable handed to ``study.optimize``; one instance per worker process (data cached)."""

    def __init__(self, params: Params, data: BeatArrays, device: torch.device,
                 multi_objective: bool, parent_run_id: str, worker: str,
                 progress: bool = False) -> None:  # fmt: skip
        self.params = params
        self.data = data
        self.device = device
        self.multi = multi_objective
        self.parent_run_id = parent_run_id
        self.worker = worker
        self.progress = progress
        self.n_folds = n_folds_of(params, data)
        self._folds: dict[int, FoldData] = {}
        self.current: int | None = None  # the trial in progress, for Ctrl-C re-queueing

    def fold(self, k: int) -> FoldData:
        if k not in self._folds:
            self._folds[k] = prepare_fold(self.params, self.data, k, self.device)
        return self._folds[k]

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        p = self.params
        self.current = trial.number
        s = suggest(trial, p.tune.space, p)
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("latent_pred_used", s.latent_pred)
        retry_of = trial.study._storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
        tags = {"optuna_worker": self.worker, "split_task": str(s.split_task).lower()}
        if retry_of is not None:
            tags["optuna_retry_of"] = str(retry_of)
        logged = {"sampled": trial.params, "used": s.as_dict(), "n_folds": self.n_folds,
                  "dataset": p.tune.dataset}  # fmt: skip
        log.info("trial %d starts%s: %s", trial.number,
                 f" (retry of trial {retry_of})" if retry_of is not None else "", s)  # fmt: skip
        t0 = time.perf_counter()
        with trial_run(self.parent_run_id, trial.study.study_name, trial, tags, logged):
            folds, rows = [], []
            for k in range(self.n_folds):
                folds.append(self._fold(trial, k, s, rows))
                mlflow.log_metrics({f"val_auroc_fold{k}": folds[-1]["auroc"],
                                    f"val_mse_fold{k}": folds[-1]["mse"]})  # fmt: skip
            auc = float(np.mean([f["auroc"] for f in folds]))
            mse = float(np.mean([f["mse"] for f in folds]))
            final = {"val_auroc": auc, "val_auroc_std": float(np.std([f["auroc"] for f in folds])),
                     "val_mse": mse, "val_corr": float(np.nanmean([f["corr"] for f in folds])),
                     "seconds": time.perf_counter() - t0}  # fmt: skip
            mlflow.log_metrics(final)
            fig = curves_figure(rows)
            mlflow.log_figure(fig, "plots/curves.png")
            plt.close(fig)
            trial.set_user_attr("val_auroc_folds", [round(f["auroc"], 6) for f in folds])
            trial.set_user_attr("val_mse", mse)
            trial.set_user_attr("val_auroc", auc)
        log.info("trial %d: val AUROC %.4f (folds %s), MSE %.4g, %.0f s", trial.number, auc,
                 ", ".join(f"{f['auroc']:.3f}" for f in folds), mse, final["seconds"])  # fmt: skip
        return (auc, mse) if self.multi else auc

    def _fold(self, trial: optuna.Trial, k: int, s: Settings,
              rows: list[dict[str, Any]]) -> dict[str, float]:  # fmt: skip
        fd = self.fold(k)
        epochs = self.params.tune.finetune_epochs

        def on_epoch(phase: str, model: TaskVAE, row: dict[str, float]) -> None:
            runs.epoch_logger(f"fold{k}/{phase}")(row)
            rec = {"fold": k, "phase": phase, **row}
            rows.append(rec)
            if phase != "finetune":
                return
            epoch = int(row["epoch"])
            auc = head_auroc(model, fd.val)
            rec["val_head_auroc"] = auc
            mlflow.log_metric(f"fold{k}/finetune/val_head_auroc", auc, step=epoch)
            if self.multi:
                return  # Optuna cannot prune multi-objective trials
            # Steps run on across folds so a trial is compared at the same point of its work.
            step = k * epochs + epoch
            trial.report(auc, step)
            if trial.should_prune():
                mlflow.log_metric("pruned_at_step", step)
                raise optuna.TrialPruned(
                    f"head val AUROC {auc:.3f} at fold {k}, fine-tune epoch {epoch}"
                )

        with tempfile.TemporaryDirectory(prefix="ecglatent-trial-") as tmp:
            model = train_vae(self.params, s, fd, Path(tmp), on_epoch, self.progress)
        result, _ = score_fold(self.params, model, fd)
        if not all(math.isfinite(v) for v in (result["auroc"], result["mse"])):
            raise FloatingPointError(f"fold {k}: non-finite score {result}")
        return result
