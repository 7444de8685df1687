"""`evaluate` stage: Table 1 for every dataset, plots, MLflow metrics and model registration.

Features (latent means + the two RR features) are judged by l1/l2 logistic-regression probes
fitted on train+validation and scored on the test set; the head's output is never used.
"""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ecglatent.config import Params  # noqa: E402
from ecglatent.datasets.arrays import BeatArrays, load_dataset  # noqa: E402
from ecglatent.evaluation.baselines import (  # noqa: E402
    pca_features,
    reconstruction_metrics,
    sex_age_features,
)
from ecglatent.evaluation.clustered import auroc_difference  # noqa: E402
from ecglatent.evaluation.plots import factor_traversal, latent_scatter  # noqa: E402
from ecglatent.evaluation.probes import (  # noqa: E402
    FeatureEvaluation,
    evaluate_features,
    probe_latents,
)
from ecglatent.evaluation.report import (  # noqa: E402
    Comparison,
    EvidenceScope,
    ResultRow,
    evidence_markdown,
    table1_markdown,
)
from ecglatent.pipeline.vae_common import load_model, model_dir, task_of  # noqa: E402
from ecglatent.pipeline.vae_train import experiment_name  # noqa: E402
from ecglatent.tracking import registry, runs  # noqa: E402
from ecglatent.tracking.vae_pyfunc import BUNDLE, PROBE, VAEFeatureModel, save_bundle  # noqa: E402
from ecglatent.training.normalise import Normaliser  # noqa: E402

log = logging.getLogger(__name__)
SCATTER_POINTS = 4000


def _encode(model, x: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and reconstructions (from the means) in eval mode."""
    model.eval()
    mus, recs = [], []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.as_tensor(x[s : s + batch])
            mu, _ = model.encode(xb)
            mus.append(mu.numpy())
            recs.append(model.decode(mu).numpy())
    return np.concatenate(mus), np.concatenate(recs)


def _row(dataset: str, name: str, L: int | None, L_pred: int | None, beta: float | None,
         mse: float | None, corr: float | None, ev: FeatureEvaluation,
         vs_naive: Comparison | None = None) -> ResultRow:  # fmt: skip
    best = ev.best
    return ResultRow(dataset=dataset, model=name, L=L, L_pred=L_pred, beta=beta, mse=mse, corr=corr,
                     auroc=best.auroc.auc, auroc_lo=best.auroc.lo, auroc_hi=best.auroc.hi,
                     f1=best.f1_macro, vs_naive=vs_naive)  # fmt: skip


def run_evaluate(params: Params) -> dict[str, Any]:
    """Evaluate every dataset of ``vae.datasets``; writes reports/ and registers models."""
    reports = Path(params.tracking.reports_dir)
    all_rows: list[ResultRow] = []
    metrics: dict[str, Any] = {}
    for dataset in params.vae.datasets:
        rows, m = evaluate_dataset(params, dataset, reports)
        all_rows += rows
        metrics[dataset] = m
    table = table1_markdown(
        all_rows, title="Table 1: reconstruction and prediction on the test set"
    )
    n_comparisons = sum(r.vs_naive is not None for r in all_rows)
    scopes = [EvidenceScope(**metrics[d]["test_set"]) for d in params.vae.datasets]
    table += "\n" + evidence_markdown(scopes, n_comparisons=n_comparisons or None)
    (reports / "table1.md").write_text(table + "\n")
    (reports / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    log.info("evaluate: wrote %s", reports / "table1.md")
    return metrics


def evaluate_dataset(params: Params, dataset: str, reports: Path) -> tuple[list[ResultRow], dict]:
    data = load_dataset(dataset, params)
    dev = np.isin(data.role, ["train", "val"])
    test = data.role == "test"
    if not test.any():
        raise ValueError(f"{dataset}: no test items; check the split stage")
    y_tr, y_te = data.y[dev], data.y[test]
    groups = data.groups[dev]
    seed = params.seed
    plots = reports / "plots" / dataset
    plots.mkdir(parents=True, exist_ok=True)
    runs.configure(params.tracking, experiment_name(params, dataset))
    task = task_of(params, dataset)
    rows: list[ResultRow] = []
    metrics: dict[str, Any] = {"test_set": asdict(evidence_scope(data))}
    evals: dict[str, FeatureEvaluation] = {}

    def probe(feat_tr: np.ndarray, feat_te: np.ndarray) -> FeatureEvaluation:
        return evaluate_features(feat_tr, y_tr, feat_te, y_te, seed=seed, groups=groups)

    # Baselines first: they need no model.
    norm = Normaliser.fit(data.x[dev], data.rr[dev])
    rr_tr, rr_te = norm.rr(data.rr[dev]), norm.rr(data.rr[test])
    if dataset == "ptbxl":
        sa_tr, fill = sex_age_features(data.meta[dev])
        sa_te, _ = sex_age_features(data.meta[test], age_fill=fill)
        ev = probe(sa_tr, sa_te)
        rows.append(_row(dataset, "Sex and age", 2, None, None, None, None, ev))
        metrics["sex_age"] = _metric_dict(ev, None, None)
    for L in sorted({m.latent_dim for m in params.vae.pretrain_models.values()}):
        f_tr, f_te, mse, corr = pca_features(data.x[dev], data.x[test], L, seed)
        ev = probe(np.hstack([f_tr, rr_tr]), np.hstack([f_te, rr_te]))
        rows.append(_row(dataset, "PCA", L, None, None, mse, corr, ev))
        metrics[f"pca_L{L}"] = _metric_dict(ev, mse, corr)

    models = [("pretrain", n) for n in params.vae.pretrain_models] + [
        ("finetune", n) for n in params.vae.finetune_models
    ]
    for stage, name in models:
        model, saved = load_model(model_dir(params, dataset, stage) / f"{name}.pt")
        mnorm = Normaliser.from_dict(saved["normaliser"])
        mu_tr, _ = _encode(model, mnorm.x(data.x[dev]))
        mu_te, rec_te = _encode(model, mnorm.x(data.x[test]))
        mse, corr = reconstruction_metrics(data.x[test], mnorm.x_inverse(rec_te))
        # Split-task models ("2 (10)") are probed on their L_pred prediction latents + RR.
        lp = model.latent_pred
        ev = probe(np.hstack([probe_latents(mu_tr, lp), mnorm.rr(data.rr[dev])]),
                   np.hstack([probe_latents(mu_te, lp), mnorm.rr(data.rr[test])]))  # fmt: skip
        evals[name] = ev
        vs_naive = None
        if stage == "finetune":
            base = params.vae.finetune_models[name].base
            # signed specific − naive; record-level bootstrap when a unit holds many items
            vs_naive = Comparison.from_auc_diff(auroc_difference(
                y_te, evals[base].best.test_logits, ev.best.test_logits,
                groups=data.groups[test], seed=seed))  # fmt: skip
        label = _label(
            params, stage, name, model.latent_dim, model.latent_pred, float(saved["beta"])
        )
        rows.append(
            _row(
                dataset,
                label,
                model.latent_dim,
                model.latent_pred,
                float(saved["beta"]),
                mse,
                corr,
                ev,
                vs_naive,
            )
        )
        m = _metric_dict(ev, mse, corr)
        if vs_naive is not None:
            m.update(p_vs_naive=vs_naive.p_value, diff_vs_naive=vs_naive.diff,
                     diff_vs_naive_lo=vs_naive.lo, diff_vs_naive_hi=vs_naive.hi)  # fmt: skip
        metrics[name] = m
        figs = _plots(model, mu_tr, mu_te, y_te, data, mnorm, name, plots, params)
        _track(params, dataset, task, stage, name, model, saved, mnorm, ev, m, figs, data)
    return rows, metrics


# Records in the full PTB-XL database (v1.0.3); the default run uses a subset of them.
PTBXL_RECORDS = 21799


def evidence_scope(data: BeatArrays) -> EvidenceScope:
    """Test units and items of ``data`` for the "what these numbers can show" paragraph."""
    test = data.role == "test"
    n_units = int(np.unique(data.groups[test]).size)
    if data.name == "ptbxl":
        return EvidenceScope("PTB-XL", n_units, "patients", int(test.sum()), "ECGs (records)",
                             int(len(data.y)), PTBXL_RECORDS, "Hanley & McNeil 1983 when every "
                             "patient has one test ECG, else a bootstrap over patients",
                             population_unit="records")  # fmt: skip
    return EvidenceScope("MIT-BIH DS2", n_units, "records", int(test.sum()), "beats",
                         method="bootstrap over records")  # fmt: skip


def _label(params: Params, stage: str, name: str, L: int, L_pred: int | None, beta: float) -> str:
    arch = "Small VAE" if params.vae.arch == "small" else "FactorECG VAE"
    if stage == "pretrain":
        kind = "task naive"
    elif L_pred is not None and L_pred < L:
        kind = "split task"
    else:
        kind = "task specific"
    extra = f" β = {beta:g}" if beta != params.vae.beta else ""
    return f"{arch} {kind}{extra} [{name}]"


def _metric_dict(ev: FeatureEvaluation, mse: float | None, corr: float | None) -> dict[str, Any]:
    b = ev.best
    out = {"auroc": b.auroc.auc, "auroc_lo": b.auroc.lo, "auroc_hi": b.auroc.hi, "f1": b.f1_macro,
           "penalty": b.penalty, "auroc_l1": ev.l1.auroc.auc, "auroc_l2": ev.l2.auroc.auc,
           "val_cv_auroc": ev.validation_auroc}  # fmt: skip
    if mse is not None:
        out.update(mse=mse, corr=corr)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def _plots(model, mu_tr, mu_te, y_te, data: BeatArrays, norm: Normaliser, name: str, out: Path,
           params: Params) -> list[Path]:  # fmt: skip
    def decode(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return norm.x_inverse(model.decode(torch.as_tensor(z)).numpy())

    paths = []
    leads = data.lead_names
    show = [lead for lead in ("I", "II", "V1", "V5") if lead in leads] or None
    fig = factor_traversal(decode, mu_tr.mean(0), mu_tr.std(0), leads, params.vae.traversal_steps,
                           leads_to_show=show, fs=data.fs, path=out / f"traversal_{name}.png",
                           title=f"{data.name} {name}: factor traversals (μ ± 3σ)")  # fmt: skip
    plt.close(fig)
    paths.append(out / f"traversal_{name}.png")
    if mu_te.shape[1] >= 2:
        rng = np.random.default_rng(params.seed)
        idx = rng.choice(len(mu_te), min(SCATTER_POINTS, len(mu_te)), replace=False)
        fig = latent_scatter(mu_te[idx], y_te[idx], dims=(0, 1),
                             label_names=("rest", task_of(params, data.name)))  # fmt: skip
        fig.savefig(out / f"scatter_{name}.png", dpi=120)
        plt.close(fig)
        paths.append(out / f"scatter_{name}.png")
    return paths


def _track(params: Params, dataset: str, task: str, stage: str, name: str, model, saved: dict,
           norm: Normaliser, ev: FeatureEvaluation, metrics: dict, figs: list[Path],
           data: BeatArrays) -> None:  # fmt: skip
    """Log test metrics and plots into the model's training run; log and register the model."""
    with runs.run(name, run_id=saved["run_id"]):
        mlflow.log_metrics({("val/cv_auroc" if k == "val_cv_auroc" else f"test/{k}"): float(v)
                            for k, v in metrics.items() if isinstance(v, (int, float))})  # fmt: skip
        mlflow.log_param("probe_penalty", ev.best.penalty)
        for fig in figs:
            mlflow.log_artifact(str(fig), artifact_path="plots")
        if stage != "finetune":
            return
        info = _log_pyfunc(params, dataset, model, norm, ev, data)
        if params.tracking.register:
            # issue 12: the champion moves on the probe's validation (inner CV) AUROC; the
            # test AUROC is only reported, as a version tag
            reg_name = registry.model_name(params.tracking.model_prefix, dataset, task)
            registry.register_vae(info.model_uri, reg_name, ev, {"model": name, "dataset": dataset})


def _log_pyfunc(params: Params, dataset: str, model, norm: Normaliser, ev: FeatureEvaluation,
                data: BeatArrays):  # fmt: skip
    from ecglatent.tracking.vae_model_io import input_example, signature_for

    mode = "record" if dataset == "ptbxl" else "beat"
    target_fs = data.fs
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "vae.pt", model, norm, params.preprocess, target_fs,
                             data.lead_names, mode)  # fmt: skip
        probe_path = Path(tmp) / "probe.pkl"
        probe_path.write_bytes(pickle.dumps(ev.best.pipeline))
        example = input_example(mode, data, params)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=VAEFeatureModel(),
            artifacts={BUNDLE: str(bundle), PROBE: str(probe_path)},
            signature=signature_for(mode, model.latent_dim),
            input_example=example,
            pip_requirements=_requirements(),
            # The package travels with the model, so a fresh environment can load it.
            code_paths=[str(Path(__file__).resolve().parents[1])],
        )


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = [
        "torch",
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "wfdb",
        "mlflow",
        "pyyaml",
        "neurokit2",
    ]
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]
